/**
 * The session state machine (SPEC §22.6): the named states, the transitions allowed
 * between them, and what each state accepts. `Session` checks its state at the top of
 * every method and moves only through `transition`; an error moves to `failed` and
 * stays there.
 * @module
 */
import { MissiveError } from "../core/errors.ts";
import { MessageType } from "./messages.ts";

/** Every state a session can be in. */
export type SessionState =
  /** Created; nothing sent or received yet. */
  | "start"
  /** Client: HELLO sent, waiting for HELLO_ACK. */
  | "hello-sent"
  /** Server: waiting for the client's HELLO. */
  | "await-hello"
  /** Server: HELLO_ACK sent, waiting for the client's ACK (key confirmation). */
  | "await-ack"
  /** Keys confirmed; DATA flows both ways. */
  | "open"
  /** Server: re-key HELLO sent under the current keys, waiting for HELLO_ACK. */
  | "rekey-hello-sent"
  /** Client: re-key HELLO_ACK sent, waiting for the server's ACK under the new keys. */
  | "rekey-await-ack"
  /** CLOSE sent, waiting for CLOSE_ACK. */
  | "closing"
  /** Terminal: ended by CLOSE / CLOSE_ACK (either side). */
  | "closed"
  /** Terminal: ended by an error, a refusal, a timeout, or CLOSED_WITHOUT_ACK. */
  | "failed";

/** The transition table (SPEC §22.6 diagram). */
export const TRANSITIONS: Readonly<Record<SessionState, readonly SessionState[]>> = {
  start: ["hello-sent", "await-hello", "failed"],
  "hello-sent": ["open", "failed"],
  "await-hello": ["await-ack", "failed"],
  "await-ack": ["open", "closing", "closed", "failed"],
  open: ["rekey-hello-sent", "rekey-await-ack", "closing", "closed", "failed"],
  "rekey-hello-sent": ["open", "closing", "closed", "failed"],
  "rekey-await-ack": ["open", "closing", "closed", "failed"],
  closing: ["closed", "failed"],
  closed: [],
  failed: [],
};

/** Checks and names a transition; an impossible one is a bug, not a peer's fault. */
export function checkTransition(from: SessionState, to: SessionState): SessionState {
  if (!TRANSITIONS[from].includes(to)) {
    throw new MissiveError("internal", `session: no transition from ${from} to ${to}`);
  }
  return to;
}

/** True in the two terminal states. */
export function isTerminal(state: SessionState): boolean {
  return state === "closed" || state === "failed";
}

/** States in which the session's own data may be sent now (not queued). */
export function canSendData(state: SessionState): boolean {
  return state === "open";
}

/** States in which `send` is accepted (sent now or queued until a re-key ends). */
export function acceptsSend(state: SessionState): boolean {
  return state === "open" || state === "rekey-hello-sent" || state === "rekey-await-ack";
}

const T = MessageType;
const ALWAYS = [T.RESEND_LAST, T.CLOSE, T.CLOSED_WITHOUT_ACK];

/**
 * The message types each state expects (SPEC §22.6); anything else is an unexpected
 * type and ends the session. In `closing`, all but CLOSE_ACK / CLOSE are ignored.
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
