/**
 * The session's states (SPEC §22.6.1) as a tagged union: each state carries exactly the
 * data valid in it — the handshake in progress, the keys, the pending re-key, the peer —
 * and nothing lives beside it that only some states use. Also the transitions allowed
 * between the states and the message types each state expects. Internal: the machine
 * (machine.ts) is the only code that moves between states.
 * @module
 */
import type { Bytes } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import type { Card } from "../keys/card.ts";
import type { SessionCipher } from "./_cipher.ts";
import type { DataFlow } from "./_dataflow.ts";
import type { Ephemeral, Initiation } from "./_handshake.ts";
import { MessageType } from "./messages.ts";

/** What both sides hold once the keys are confirmed (states open, rekey-*, closing). */
export interface Link {
  /** The peer's card, proven by the handshake. */
  readonly peer: Card;
  /** The keys frames are sealed and opened under (a re-key replaces them). */
  cipher: SessionCipher;
  readonly data: DataFlow;
  /**
   * Client: the server may still send signed control frames (it has not yet accepted the
   * ACK); their signature context HC. Cleared by the server's first sealed frame.
   */
  peerSignedContext?: Bytes;
  /** DATA acknowledged in both directions, in all and since the last re-key was due. */
  acknowledged: number;
  sinceRekey: number;
  /** Server with re-keying on: the next re-key HELLO's ephemeral key, made ahead. */
  nextEphemeral?: Promise<Ephemeral>;
  /** `close()` was asked: CLOSE goes out once nothing is queued or in flight. */
  closeWhenDrained: boolean;
}

/** Keys confirmed; DATA flows both ways. */
export interface Open {
  name: "open";
  link: Link;
  /** Server: a re-key became due at this acknowledged count; it starts before more DATA. */
  due?: number;
}

/** Server: re-key HELLO sent under the current keys, waiting for HELLO_ACK. */
export interface RekeyHelloSent {
  name: "rekey-hello-sent";
  link: Link;
  hs: Initiation;
  /** The acknowledged count that made this re-key due, and one due meanwhile. */
  dueAt: number;
  again?: number;
}

/** Client: re-key HELLO_ACK sent; sealing under `next`, waiting for the ACK under it. */
export interface RekeyAwaitAck {
  name: "rekey-await-ack";
  link: Link;
  next: SessionCipher;
  dueAt: number;
}

/** The states in which the keys are confirmed and not yet closing. */
export type Established = Open | RekeyHelloSent | RekeyAwaitAck;

/** Every state, with its data. */
export type State =
  /** Created; nothing sent or received yet. */
  | { name: "start" }
  /** Client: HELLO sent, waiting for HELLO_ACK. */
  | { name: "hello-sent"; hs: Initiation }
  /**
   * Server: waiting for the client's HELLO; its first HELLO_ACK's ephemeral key is made
   * meanwhile; `helloContext` binds a refusal to the last HELLO seen.
   */
  | { name: "await-hello"; ephemeral?: Promise<Ephemeral>; helloContext?: Bytes }
  /** Server: HELLO_ACK sent, waiting for the client's ACK (key confirmation). */
  | { name: "await-ack"; peer: Card; cipher: SessionCipher; helloContext: Bytes }
  | Open
  | RekeyHelloSent
  | RekeyAwaitAck
  /**
   * CLOSE sent under the keys of `during`, waiting for CLOSE_ACK; a re-key crossing it
   * still completes. `error` is what the CLOSE was sent for.
   */
  | {
    name: "closing";
    during: Established;
    reason: number;
    text: string;
    resends: number;
    error?: MissiveError;
  }
  /** Terminal: ended by CLOSE / CLOSE_ACK (either side). What the session was, kept. */
  | { name: "closed"; peer?: Card; keyId?: string }
  /** Terminal: ended by an error, a refusal, a timeout, or CLOSED_WITHOUT_ACK. */
  | { name: "failed"; error?: MissiveError; peer?: Card; keyId?: string };

/** A state's name (`Session.state`, SPEC §22.6.1). */
export type SessionState =
  | "start"
  | "hello-sent"
  | "await-hello"
  | "await-ack"
  | "open"
  | "rekey-hello-sent"
  | "rekey-await-ack"
  | "closing"
  | "closed"
  | "failed";

// Every state's name is a SessionState and the reverse (checked by the compiler).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _namesMatch: Same<State["name"], SessionState> = true;
void _namesMatch;

/** The transition table (SPEC §22.6.1 diagram). */
export const TRANSITIONS: Readonly<Record<SessionState, readonly SessionState[]>> = {
  start: ["hello-sent", "await-hello", "failed"],
  "hello-sent": ["open", "failed"],
  "await-hello": ["await-ack", "failed"],
  "await-ack": ["open", "closed", "failed"],
  open: ["rekey-hello-sent", "rekey-await-ack", "closing", "closed", "failed"],
  "rekey-hello-sent": ["open", "closing", "closed", "failed"],
  "rekey-await-ack": ["open", "closing", "closed", "failed"],
  closing: ["closed", "failed"],
  closed: [],
  failed: [],
};

/** Checks a transition; an impossible one is a bug, not a peer's fault. */
export function checkTransition(from: SessionState, to: SessionState): void {
  if (!TRANSITIONS[from].includes(to)) {
    throw new MissiveError("internal", `session: no transition from ${from} to ${to}`);
  }
}

/** True in the two terminal states. */
export function isTerminal(state: SessionState): boolean {
  return state === "closed" || state === "failed";
}

/** States in which `send` is accepted (sent now or queued until a re-key ends). */
export function acceptsSend(state: SessionState): boolean {
  return state === "open" || state === "rekey-hello-sent" || state === "rekey-await-ack";
}

const T = MessageType;
const ALWAYS = [T.RESEND_LAST, T.CLOSE, T.CLOSED_WITHOUT_ACK];

/**
 * The message types each state expects (SPEC §22.6.1); anything else is an unexpected
 * type and ends the session. In `closing`, DATA and HELLO are read and ignored.
 */
export const EXPECTED: Readonly<Record<SessionState, readonly MessageType[]>> = {
  start: [],
  "hello-sent": [T.HELLO_ACK, ...ALWAYS],
  "await-hello": [T.HELLO],
  "await-ack": [T.ACK, ...ALWAYS],
  open: [T.DATA, T.DATA_ACK, T.HELLO, ...ALWAYS],
  "rekey-hello-sent": [T.DATA, T.DATA_ACK, T.HELLO_ACK, ...ALWAYS],
  "rekey-await-ack": [T.DATA_ACK, T.ACK, ...ALWAYS],
  closing: [
    T.CLOSE_ACK,
    T.CLOSE,
    T.CLOSED_WITHOUT_ACK,
    T.DATA,
    T.DATA_ACK,
    T.RESEND_LAST,
    T.ACK,
    T.HELLO,
    T.HELLO_ACK,
  ],
  closed: [],
  failed: [],
};

/** The state named `N`, with its data. */
export type StateNamed<N extends SessionState> = Extract<State, { name: N }>;

/** The established part of a state (in closing: the one CLOSE was sent from). */
export function establishedOf(s: State): Established | undefined {
  if (s.name === "open" || s.name === "rekey-hello-sent" || s.name === "rekey-await-ack") return s;
  return s.name === "closing" ? s.during : undefined;
}
