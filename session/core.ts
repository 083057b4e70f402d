/**
 * The state one session's parts share (SPEC §22.6): the named state and its checked
 * transitions, the keys and handshake in progress, the inbox and event log, and the end
 * of the session. The parts — frames out (sender.ts), frames in (receiver.ts), the
 * handshake driver (exchange.ts), the re-key driver (rekey.ts) and the timer and close
 * rules (rules.ts) —
 * each hold their own counters and reach each other only through this core. Internal:
 * `Session` (session.ts) is the public face.
 * @module
 */
import type { Bytes } from "../core/bytes.ts";
import type { CryptoProvider } from "../crypto/provider.ts";
import { isMissiveError, MissiveError } from "../core/errors.ts";
import type { Card } from "../keys/card.ts";
import type { Identity } from "../keys/identity.ts";
import type { Transport } from "../transports/types.ts";
import { type Clock, systemClock } from "./clock.ts";
import { DataFlow } from "./dataflow.ts";
import { KeyExchange } from "./exchange.ts";
import type { Handshake, ServerTrust } from "./handshake.ts";
import { eraseKeys, INITIAL_CHAIN, type PresharedKeys, type SessionKeys } from "./keyschedule.ts";
import { checkTransition, isTerminal, type SessionState } from "./machine.ts";
import { FRAME_OVERHEAD } from "./messages.ts";
import {
  type AcceptOptions,
  type ConnectOptions,
  REASON_NORMAL,
  reasonFor,
  type ResolvedOptions,
  resolveOptions,
  type SessionEvent,
} from "./options.ts";
import { AsyncQueue } from "./queue.ts";
import { FrameReceiver } from "./receiver.ts";
import { Rekeying } from "./rekey.ts";
import { SessionRules } from "./rules.ts";
import { FrameSender } from "./sender.ts";

const EVENT_LOG_LIMIT = 1024;

export type Role = "client" | "server";

/** How a session ended, for the `close` event. */
export interface CloseInfo {
  by: "local" | "peer";
  reason?: number;
  text?: string;
  acknowledged: boolean;
}

export class SessionCore {
  readonly role: Role;
  readonly transport: Transport;
  readonly identity: Identity;
  readonly provider: CryptoProvider;
  readonly clock: Clock;
  readonly opts: ResolvedOptions;
  readonly serverTrust: ServerTrust;
  readonly authorize?: (card: Card) => boolean | Promise<boolean>;
  readonly maxFrame: number;
  /** Injected random bytes (vectors), or undefined for the provider's own. */
  readonly random?: (length: number) => Bytes;
  readonly #onEvent?: (e: SessionEvent) => void;
  psk?: PresharedKeys;

  #state: SessionState = "start";
  peer?: Card;
  /** The chain value the next handshake starts from (SPEC §22.5.2). */
  chain: Bytes = INITIAL_CHAIN;
  keys?: SessionKeys;
  /** Keys of a re-key in progress, until its ACK. */
  nextKeys?: SessionKeys;
  hs?: Handshake;
  readonly data = new DataFlow();
  /** Work the receive loop waits for before the next frame (a re-key being started). */
  busy: Promise<void> = Promise.resolve();
  error?: MissiveError;
  /** The error a local CLOSE was sent for; the session ends with it. */
  closeError?: MissiveError;

  readonly inbox: AsyncQueue<Bytes>;
  readonly events = new AsyncQueue<SessionEvent>();
  #drainWaiters: (() => void)[] = [];
  #handshakeDone!: { resolve(): void; reject(e: unknown): void };
  #handshakeSettled = false;
  readonly handshake: Promise<void>;
  #endedResolve!: () => void;
  readonly ended: Promise<void>;

  readonly sender: FrameSender;
  readonly receiver: FrameReceiver;
  readonly exchange: KeyExchange;
  readonly rekey: Rekeying;
  readonly rules: SessionRules;

  constructor(
    role: Role,
    transport: Transport,
    identity: Identity,
    provider: CryptoProvider,
    options: ConnectOptions & AcceptOptions,
  ) {
    this.role = role;
    this.transport = transport;
    this.identity = identity;
    this.provider = provider;
    this.clock = options.clock ?? systemClock;
    this.opts = resolveOptions(options);
    this.#onEvent = options.onEvent;
    this.serverTrust = { peer: options.peer, trusted: options.trusted };
    this.authorize = options.authorize;
    this.maxFrame = this.opts.maxMessageSize + FRAME_OVERHEAD + 8192;
    this.random = options.random;
    this.inbox = new AsyncQueue(this.opts.inboxLimit);
    this.handshake = new Promise((resolve, reject) => {
      this.#handshakeDone = { resolve, reject };
    });
    this.handshake.catch(() => {});
    this.ended = new Promise((resolve) => (this.#endedResolve = resolve));
    this.sender = new FrameSender(this);
    this.receiver = new FrameReceiver(this);
    this.exchange = new KeyExchange(this);
    this.rekey = new Rekeying(this);
    this.rules = new SessionRules(this);
  }

  get state(): SessionState {
    return this.#state;
  }

  /** Moves to `to` through the transition table (session/machine.ts). */
  moveTo(to: SessionState): void {
    this.#state = checkTransition(this.#state, to);
  }

  /** The peer's card; only after the handshake proved it. */
  get provenPeer(): Card {
    if (!this.peer) throw new MissiveError("session", "session: no peer before the handshake");
    return this.peer;
  }

  /** The keys confirmed so far (set once the handshake derived them). */
  get currentKeys(): SessionKeys {
    if (!this.keys) throw new MissiveError("internal", "session: no keys yet");
    return this.keys;
  }

  /** The handshake completed: `Session.connect` / `accept` resolve. */
  handshakeComplete(): void {
    this.#handshakeSettled = true;
    this.#handshakeDone.resolve();
  }

  event(event: SessionEvent): void {
    this.events.push(event);
    this.events.trim(EVENT_LOG_LIMIT);
    try {
      this.#onEvent?.(event);
    } catch { /* a listener's failure is not the session's */ }
  }

  /** Nothing queued or in flight, and no re-key in progress. */
  #quiet(): boolean {
    return this.data.queued === 0 && this.data.inflight === 0 &&
      this.#state !== "rekey-hello-sent" && this.#state !== "rekey-await-ack";
  }

  drained(): Promise<void> {
    if (this.#quiet()) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  checkDrained(): void {
    if (!this.#quiet() && !isTerminal(this.#state) && this.#state !== "closing") return;
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const w of waiters) w();
  }

  rejectPending(error: MissiveError): void {
    this.data.rejectAll(error);
    this.checkDrained();
  }

  /** The transport failed or was lost: end without sending anything. */
  abort(e: unknown): void {
    if (isTerminal(this.#state)) return;
    const error = isMissiveError(e)
      ? e
      : new MissiveError("internal", `session: ${(e as Error)?.stack ?? e}`, { cause: e });
    this.finish("failed", error);
  }

  /** Ends the session: timers stop, waiters fail or finish, keys are erased. */
  finish(final: "closed" | "failed", error?: MissiveError, close?: CloseInfo): void {
    if (isTerminal(this.#state)) return;
    this.moveTo(final);
    this.error = error;
    this.rules.stopTimers();
    this.exchange.dropEphemeral();
    if (this.data.queued > 0 || this.data.inflight > 0) {
      this.rejectPending(
        error ?? new MissiveError("session", "session: closed before the peer acknowledged"),
      );
    } else this.checkDrained();
    this.inbox.end(error);
    if (!this.#handshakeSettled) {
      this.#handshakeSettled = true;
      this.#handshakeDone.reject(
        error ?? new MissiveError("session", "session: closed during the handshake"),
      );
    }
    this.event({
      type: "close",
      by: close?.by ?? "local",
      reason: close?.reason ?? (error ? reasonFor(error) : REASON_NORMAL),
      text: close?.text ?? error?.message ?? "closed",
      acknowledged: close?.acknowledged ?? false,
    });
    this.events.end();
    const keys = [this.keys, this.nextKeys];
    void this.sender.afterWrites(async () => {
      for (const k of keys) eraseKeys(k);
      await this.transport.close();
    }).finally(() => this.#endedResolve());
  }
}
