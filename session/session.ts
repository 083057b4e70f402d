/**
 * The live session (STP type 5, DESIGN §6, SPEC §22): a mutually authenticated,
 * encrypted, ordered message channel over any Transport, with re-keying and the
 * proposal's timers. `Session` is the driver of the sans-I/O state machine
 * (machine.ts): the only code that reads frames from the transport and writes them,
 * runs the timers through the `Clock`, feeds the machine one input at a time and carries
 * out its outputs. After each batch of frames it reads it feeds `flush`, so one DATA_ACK
 * answers the batch.
 * @module
 */
import { setImmediate } from "node:timers";
import type { Bytes } from "../core/bytes.ts";
import { getCryptoProvider } from "../crypto/mod.ts";
import { MissiveError } from "../core/errors.ts";
import type { Card } from "../keys/card.ts";
import type { Identity } from "../keys/identity.ts";
import type { Transport } from "../transports/types.ts";
import type { SessionVersion } from "./messages.ts";
import { AsyncQueue, Fifo } from "./_queue.ts";
import { acceptsSend, isTerminal } from "./_state.ts";
import type { SecureChannel } from "./channel.ts";
import { type Clock, systemClock, type TimerHandle } from "./clock.ts";
import {
  type SessionInput,
  SessionMachine,
  type SessionOutput,
  type SessionState,
  type TimerName,
} from "./machine.ts";
import {
  type AcceptOptions,
  type ConnectOptions,
  resolveOptions,
  type SessionEvent,
} from "./options.ts";

const EVENT_LOG_LIMIT = 1024;

/**
 * Frames handled before the driver flushes and yields to the event loop. A large
 * window's DATA arriving in one read would otherwise be handled in one turn, its one
 * DATA_ACK leaving only at the end: the sender idles while the receiver works and the
 * other way round (docs/BENCHMARKS.md, Session).
 */
const RECEIVE_BATCH = 64;

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** An input waiting for the machine, without its time (read when it is handled). */
type Pending = DistributiveOmit<SessionInput, "now">;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

interface Queued {
  input: Pending;
  /** Settles when the input was handled (a `send`: when the machine took it). */
  handled(): void;
  /** A `send`: the caller's promise, settled by the DATA_ACK or the session's end. */
  send?: Waiter;
}

interface Waiter {
  resolve(): void;
  reject(e: unknown): void;
}

/**
 * A live session. Create one with `Session.connect` (client) or `Session.accept`
 * (server); both resolve once the handshake is complete.
 *
 * @example
 * ```ts
 * import { createIdentity, getCryptoProvider } from "../mod.ts";
 * import { Session } from "./session.ts";
 * import { memoryTransportPair } from "../transports/memory.ts";
 * const crypto = await getCryptoProvider();
 * const caps = { stps: [[5, 1]] as const, amps: [] };
 * const alice = await createIdentity(crypto, { address: "alice@example.org", ...caps });
 * const bob = await createIdentity(crypto, { address: "bob@example.org", ...caps });
 * const [a, b] = memoryTransportPair();
 * const [client, server] = await Promise.all([
 *   Session.connect(a, alice, { peer: bob.card }),
 *   Session.accept(b, bob, { trusted: [alice.card] }),
 * ]);
 * await client.send(new TextEncoder().encode("hello"));
 * for await (const m of server.messages()) {
 *   console.log(new TextDecoder().decode(m)); // hello
 *   break;
 * }
 * await client.close();
 * ```
 */
export class Session implements SecureChannel {
  readonly #machine: SessionMachine;
  readonly #transport: Transport;
  readonly #clock: Clock;
  readonly #onEvent?: (e: SessionEvent) => void;
  readonly #timers = new Map<TimerName, TimerHandle>();
  // Inputs, handled one at a time in arrival order.
  readonly #inputs = new Fifo<Queued>();
  #running = false;
  // Frames to write, written one at a time in order.
  readonly #writes = new Fifo<Bytes>();
  #writing?: Promise<void>;
  // Sends the machine took, oldest first, until acknowledged or failed.
  readonly #unacked = new Fifo<Waiter>();
  readonly #inbox: AsyncQueue<Bytes>;
  readonly #events = new AsyncQueue<SessionEvent>();
  #flushScheduled = false;
  #done = false;
  readonly #handshake: Promise<void>;
  #handshakeDone!: Waiter;
  #handshakeSettled = false;
  readonly #ended: Promise<void>;
  #endedResolve!: () => void;

  private constructor(
    machine: SessionMachine,
    transport: Transport,
    options: ConnectOptions & AcceptOptions,
  ) {
    this.#machine = machine;
    this.#transport = transport;
    this.#clock = options.clock ?? systemClock;
    this.#onEvent = options.onEvent;
    const limits = resolveOptions(options);
    this.#inbox = new AsyncQueue({
      count: limits.inboxLimit,
      weight: limits.maxInboxBytes,
      weigh: (m) => m.length,
    });
    this.#handshake = new Promise((resolve, reject) => {
      this.#handshakeDone = { resolve, reject };
    });
    this.#handshake.catch(() => {});
    this.#ended = new Promise((resolve) => (this.#endedResolve = resolve));
  }

  /**
   * Opens a session as the client: sends HELLO, checks the server's card against
   * `peer` (pinned) or `trusted`, and resolves once the keys are confirmed. Throws
   * `untrusted` when either side refuses the other, `auth-failed`, `timeout`, `session`.
   */
  static async connect(
    transport: Transport,
    identity: Identity,
    options: ConnectOptions,
  ): Promise<Session> {
    if (!options.peer && !options.trusted?.length) {
      throw new MissiveError("usage", "session: connect needs the server's card (peer or trusted)");
    }
    return await Session.#open("client", transport, identity, options);
  }

  /**
   * Accepts a session as the server on a transport whose peer will send HELLO.
   * Clients are admitted by `authorize(card)` or by `trusted`; others are refused with
   * CLOSE (reason 7) and this throws `untrusted`.
   */
  static async accept(
    transport: Transport,
    identity: Identity,
    options: AcceptOptions,
  ): Promise<Session> {
    if (!options.authorize && !options.trusted) {
      throw new MissiveError(
        "usage",
        "session: accept needs authorize(card) or a trusted list (use () => true for open registration)",
      );
    }
    return await Session.#open("server", transport, identity, options);
  }

  static async #open(
    role: "client" | "server",
    transport: Transport,
    identity: Identity,
    options: ConnectOptions & AcceptOptions,
  ): Promise<Session> {
    const provider = options.provider ?? await getCryptoProvider();
    const machine = new SessionMachine({ ...options, role, identity, provider });
    const session = new Session(machine, transport, options);
    void session.#feed({ type: "start" });
    void session.#read();
    await session.#handshake;
    return session;
  }

  /** The peer's card, proven during the handshake. */
  get peer(): Card {
    const peer = this.#machine.peer;
    if (!peer) throw new MissiveError("session", "session: no peer before the handshake");
    return peer;
  }

  /** The current state (SPEC §22.6.1). */
  get state(): SessionState {
    return this.#machine.state;
  }

  /** The current key ID (16 hex digits), or undefined before the handshake. */
  get keyId(): string | undefined {
    return this.#machine.keyId;
  }

  /**
   * The session version (SPEC §22.12): 2, post-quantum hybrid (ML-KEM-768 + X25519), or
   * 1, classical X25519. A server knows it once the client's HELLO named it.
   */
  get version(): SessionVersion | undefined {
    return this.#machine.version;
  }

  /** Why the session failed, once it has (or the error its CLOSE was sent for). */
  get error(): MissiveError | undefined {
    return this.#machine.error;
  }

  /** Resolves when the session has ended (closed or failed); never rejects. */
  get ended(): Promise<void> {
    return this.#ended;
  }

  /**
   * Sends one message; resolves when the peer acknowledged it (DATA_ACK). During a
   * re-key the message is queued and sent, in order, under the new keys.
   */
  send(data: Uint8Array): Promise<void> {
    const m = this.#machine;
    if (!acceptsSend(m.state)) {
      return Promise.reject(
        m.error ?? new MissiveError("session", `session: cannot send in state ${m.state}`),
      );
    }
    // A copy: the caller may reuse its buffer while the message waits for its turn.
    const input: Pending = { type: "send", data: new Uint8Array(data) };
    return new Promise((resolve, reject) => {
      this.#enqueue({ input, handled: () => {}, send: { resolve, reject } });
    });
  }

  /**
   * The peer's messages, in order. The iteration ends at an orderly close and throws
   * the session's error when it failed. Several readers share one stream.
   */
  messages(): AsyncIterable<Uint8Array> {
    return this.#inbox;
  }

  /** The next message, or undefined once the session closed in order. */
  receive(): Promise<Bytes | undefined> {
    return this.#inbox.shift();
  }

  /** Events (handshake, rekey, resend, discard, close), buffered from the start. */
  events(): AsyncIterable<SessionEvent> {
    return this.#events;
  }

  /**
   * Closes in order: waits until every sent message was acknowledged, sends CLOSE and
   * waits for CLOSE_ACK (re-sending CLOSE, then CLOSED_WITHOUT_ACK). Idempotent.
   */
  async close(): Promise<void> {
    if (isTerminal(this.#machine.state)) return;
    await this.#feed({ type: "close" });
    await this.#ended;
  }

  // -------------------------------------------------------------------------------------
  // The driver

  /** Queues an input for the machine; resolves once it was handled. */
  #feed(input: Pending): Promise<void> {
    return new Promise((handled) => this.#enqueue({ input, handled }));
  }

  #enqueue(item: Queued): void {
    this.#inputs.push(item);
    if (!this.#running) void this.#run();
  }

  /** Feeds the queued inputs to the machine, one at a time, and carries out the outputs. */
  async #run(): Promise<void> {
    this.#running = true;
    while (this.#inputs.length > 0) {
      const item = this.#inputs.shift()!;
      const input = item.input;
      // A timer set again since this one fired: the firing is out of date.
      if (input.type === "timer" && this.#timers.has(input.timer)) {
        item.handled();
        continue;
      }
      let out: SessionOutput[];
      try {
        out = await this.#machine.handle({ ...input, now: this.#clock.now() } as SessionInput);
      } catch (e) {
        // Only a send the machine refused (state or size) throws: that send fails.
        // Anything else is a bug, and ends the session like a broken transport.
        if (item.send) item.send.reject(e);
        else if (input.type !== "lost") {
          this.#enqueue({ input: { type: "lost", error: e }, handled() {} });
        }
        item.handled();
        continue;
      }
      if (item.send) this.#unacked.push(item.send);
      this.#apply(out);
      item.handled();
    }
    this.#running = false;
  }

  #apply(outputs: SessionOutput[]): void {
    for (const o of outputs) {
      switch (o.type) {
        case "write":
          this.#write(o.frame);
          break;
        case "deliver":
          this.#inbox.push(o.data);
          break;
        case "acknowledged":
          this.#acknowledge(o.count);
          break;
        case "sends-failed":
          this.#failSends(o.error);
          break;
        case "event":
          this.#event(o.event);
          break;
        case "set-timer":
          this.#setTimer(o.timer, o.at);
          break;
        case "clear-timer":
          this.#clearTimer(o.timer);
          break;
        case "end":
          this.#end(o.error);
          break;
      }
    }
  }

  /**
   * Reads frames and feeds them one at a time; after each batch (the frames ready in one
   * turn of the event loop, at most RECEIVE_BATCH) the machine gets `flush`. While the
   * inbox is over its limits, reading stops: the transport's back-pressure holds the peer.
   */
  async #read(): Promise<void> {
    let error: unknown;
    try {
      let inBatch = 0;
      for await (const bytes of this.#transport.frames()) {
        if (this.#done) return;
        await this.#feed({ type: "frame", bytes });
        if (++inBatch >= RECEIVE_BATCH) {
          inBatch = 0;
          if (this.#machine.flushDue) await this.#feed({ type: "flush" });
          await nextTurn();
        } else if (this.#machine.flushDue) this.#scheduleFlush();
        if (this.#done) return;
        if (!this.#inbox.hasSpace) await this.#inbox.waitForSpace();
        if (this.#done) return;
      }
      error = new MissiveError(
        "network",
        `session: ${this.#transport.remote} closed the connection without CLOSE`,
      );
    } catch (e) {
      error = e;
    }
    if (!this.#done) await this.#feed({ type: "lost", error });
  }

  /** One `flush` once the frames ready now were handled (the end of this turn). */
  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      if (!this.#done) void this.#feed({ type: "flush" });
    });
  }

  #write(frame: Bytes): void {
    this.#writes.push(frame);
    this.#writing ??= this.#drainWrites();
  }

  async #drainWrites(): Promise<void> {
    try {
      while (this.#writes.length > 0) await this.#transport.send(this.#writes.shift()!);
    } catch (e) {
      if (!this.#done) void this.#feed({ type: "lost", error: e });
    } finally {
      this.#writes.clear();
      this.#writing = undefined;
    }
  }

  #acknowledge(count: number): void {
    for (let i = 0; i < count && this.#unacked.length > 0; i++) this.#unacked.shift()!.resolve();
  }

  #failSends(error: unknown): void {
    for (const w of this.#unacked.takeAll()) w.reject(error);
  }

  #event(event: SessionEvent): void {
    this.#events.push(event);
    this.#events.trim(EVENT_LOG_LIMIT);
    if (event.type === "handshake") {
      this.#handshakeSettled = true;
      this.#handshakeDone.resolve();
    }
    try {
      this.#onEvent?.(event);
    } catch { /* a listener's failure is not the session's */ }
  }

  #setTimer(timer: TimerName, at: number): void {
    this.#clearTimer(timer);
    const handle = this.#clock.setTimer(Math.max(0, at - this.#clock.now()), () => {
      this.#timers.delete(timer);
      if (!this.#done) void this.#feed({ type: "timer", timer });
    });
    this.#timers.set(timer, handle);
  }

  #clearTimer(timer: TimerName): void {
    const handle = this.#timers.get(timer);
    if (handle === undefined) return;
    this.#clock.clearTimer(handle);
    this.#timers.delete(timer);
  }

  /** The machine ended: timers stop, waiters fail or finish, the transport closes. */
  #end(error: MissiveError | undefined): void {
    this.#done = true;
    for (const timer of [...this.#timers.keys()]) this.#clearTimer(timer);
    this.#failSends(
      error ?? new MissiveError("session", "session: closed before the peer acknowledged"),
    );
    this.#inbox.end(error);
    this.#events.end();
    const failHandshake = () => {
      if (this.#handshakeSettled) return;
      this.#handshakeSettled = true;
      this.#handshakeDone.reject(
        error ?? new MissiveError("session", "session: closed during the handshake"),
      );
    };
    void (async () => {
      // The last frames (CLOSE_ACK, a refusal) leave before the transport closes, and
      // before a failed handshake is reported: a caller that closes the transport when
      // `accept` rejects must not cut the signed refusal off.
      while (this.#writing) await this.#writing;
      failHandshake();
      await this.#transport.close();
    })().catch(() => {}).finally(() => {
      failHandshake();
      this.#endedResolve();
    });
  }
}
