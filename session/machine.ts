/**
 * The live session (STP type 5, SPEC §22) as a sans-I/O state machine: one method,
 * `handle(input) → outputs`. Inputs are what happens to a session — `start`, a received
 * `frame`, a `send` request, a `timer` that fired, `close`, `flush` (the driver read a
 * batch of frames), the transport `lost`; outputs are what it wants done — frames to
 * `write`, messages to `deliver`, sends `acknowledged` or failed, `event`s, timers to set
 * or clear, and its `end`. It touches no socket, sets no timer and reads no clock (every
 * input carries `now`); it is async only because WebCrypto is. Modelled on h11
 * (`receive_data` / `next_event` / `send`, python-hyper/h11 `_connection.py`): the
 * driver (session.ts) owns the transport, the clock and the timers, and tests drive a
 * machine by hand, input by input.
 *
 * The state (_state.ts) is a tagged union carrying exactly the data valid in it. This
 * file decides the transitions; the handshake's cryptography is _handshake.ts, the keys
 * _cipher.ts, the receive checks _receive.ts, frames out _outbox.ts, the idle rule
 * _idle.ts, the DATA bookkeeping _dataflow.ts, the end _ending.ts.
 * @module
 */
import { type Bytes, toHex } from "../core/bytes.ts";
import type { CryptoProvider } from "../crypto/provider.ts";
import { isMissiveError, MissiveError } from "../core/errors.ts";
import type { Card } from "../keys/card.ts";
import type { Identity } from "../keys/identity.ts";
import type { Role, SessionCipher } from "./_cipher.ts";
import { DataFlow } from "./_dataflow.ts";
import {
  closeBody,
  closeEvent,
  type CloseInfo,
  eraseState,
  peerCloseError,
  unverifiedCloseError,
} from "./_ending.ts";
import { type Answer, Handshake } from "./_handshake.ts";
import { IdleRule } from "./_idle.ts";
import { INITIAL_CHAIN } from "./_keyschedule.ts";
import { Outbox } from "./_outbox.ts";
import { acceptsSigned, isStale, receiveCipher, roleExpects, unexpected } from "./_receive.ts";
import {
  acceptsSend,
  checkTransition,
  type Established,
  establishedOf,
  EXPECTED,
  isTerminal,
  type Link,
  type Open,
  type RekeyAwaitAck,
  type SessionState,
  type State,
  type StateNamed,
} from "./_state.ts";
import {
  admitClient,
  checkServerCard,
  type ClientTrust,
  serverCandidates,
  type ServerTrust,
} from "./_trust.ts";
import {
  checkEmptyBody,
  type CloseBody,
  decodeAckBody,
  decodeCloseBody,
  decodeDataBody,
  decodeSignedPart,
  decodeVersionedFrame,
  encodeDataBody,
  type Frame,
  FRAME_OVERHEAD,
  MessageType,
  messageTypeName,
  SESSION_VERSIONS,
  type SessionVersion,
  type SignedFrame,
  type SignedPart,
  u64,
} from "./messages.ts";
import {
  type AcceptOptions,
  type ConnectOptions,
  kemOf,
  REASON_NORMAL,
  reasonFor,
  type ResolvedOptions,
  resolveOptions,
  type SessionEvent,
} from "./options.ts";

export type { Role } from "./_cipher.ts";
export type { SessionState } from "./_state.ts";

/** The machine's timers; the driver runs them and feeds `timer` back when one fires. */
export type TimerName = "idle" | "close" | "handshake";

/** What happens to a session. Every input carries the driver's clock (ms since epoch). */
export type SessionInput =
  /** Begin: the client sends HELLO, the server starts waiting for one. */
  | { type: "start"; now: number }
  /** One frame read from the transport. */
  | { type: "frame"; bytes: Uint8Array; now: number }
  /**
   * The application sends a message; the machine keeps `data` until it is acknowledged
   * (do not reuse the buffer). Refused by throwing when the state or its size forbid it.
   */
  | { type: "send"; data: Bytes; now: number }
  /** A timer set by a `set-timer` output fired. */
  | { type: "timer"; timer: TimerName; now: number }
  /** The application closes: CLOSE once every sent message was acknowledged. */
  | { type: "close"; now: number }
  /** The driver read a batch of frames: the DATA_ACK due goes out now. */
  | { type: "flush"; now: number }
  /** The transport ended or failed; nothing can be sent any more. */
  | { type: "lost"; error: unknown; now: number };

/** What the session wants done, in order. */
export type SessionOutput =
  | { type: "write"; frame: Bytes }
  | { type: "deliver"; data: Bytes }
  /** The oldest `count` sends not yet acknowledged are acknowledged. */
  | { type: "acknowledged"; count: number }
  /** Every send not yet acknowledged fails with `error`. */
  | { type: "sends-failed"; error: MissiveError }
  | { type: "event"; event: SessionEvent }
  /** Fire `timer` at clock time `at` (ms since epoch), replacing one set before. */
  | { type: "set-timer"; timer: TimerName; at: number }
  | { type: "clear-timer"; timer: TimerName }
  /** The session ended (the last output); the driver closes the transport. */
  | { type: "end"; state: "closed" | "failed"; error?: MissiveError };

/** What a machine is made with: its role, identity, crypto and the session options. */
export interface MachineOptions extends ConnectOptions, AcceptOptions {
  role: Role;
  identity: Identity;
  provider: CryptoProvider;
}

const T = MessageType;
const EMPTY: Bytes = new Uint8Array(0);

/**
 * One end of a session as a state machine: feed it inputs, carry out its outputs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createIdentity, getCryptoProvider } from "../mod.ts";
 * import { SessionMachine, type SessionOutput } from "./machine.ts";
 * const provider = await getCryptoProvider();
 * const caps = { stps: [[5, 1]] as const, amps: [] };
 * const alice = await createIdentity(provider, { address: "alice@example.org", ...caps });
 * const bob = await createIdentity(provider, { address: "bob@example.org", ...caps });
 * const client = new SessionMachine({ role: "client", identity: alice, provider, peer: bob.card });
 * const server = new SessionMachine({
 *   role: "server",
 *   identity: bob,
 *   provider,
 *   trusted: [alice.card],
 * });
 * const now = Date.now();
 * const frames = (out: SessionOutput[]) => out.flatMap((o) => o.type === "write" ? [o.frame] : []);
 * await server.handle({ type: "start", now });
 * const [hello] = frames(await client.handle({ type: "start", now }));
 * const [helloAck] = frames(await server.handle({ type: "frame", bytes: hello, now }));
 * const [ack] = frames(await client.handle({ type: "frame", bytes: helloAck, now }));
 * await server.handle({ type: "frame", bytes: ack, now });
 * assert.equal(server.state, "open");
 * const data = new TextEncoder().encode("hello");
 * const [sealed] = frames(await client.handle({ type: "send", data, now }));
 * const out = await server.handle({ type: "frame", bytes: sealed, now });
 * assert.deepEqual(out.filter((o) => o.type === "deliver").length, 1);
 * ```
 */
export class SessionMachine {
  readonly role: Role;
  readonly #opts: ResolvedOptions;
  readonly #serverTrust: ServerTrust;
  readonly #clientTrust: ClientTrust;
  readonly #maxFrame: number;
  /** One handshake per version this implementation knows (a server reads any HELLO). */
  readonly #handshakes: Record<SessionVersion, Handshake>;
  /**
   * The session's version (SPEC §22.12): the client's from the start, the server's once
   * a HELLO named it; frames of any other version are `unknown-protocol`.
   */
  #version?: SessionVersion;
  readonly #outbox: Outbox;
  readonly #idle: IdleRule;
  #state: State = { name: "start" };
  /** The sequence number the next frame must carry, once the peer's first is known. */
  #recvSeq?: number;
  #now = 0;
  #out: SessionOutput[] = [];
  #handling = false;

  constructor(options: MachineOptions) {
    this.role = options.role;
    this.#opts = resolveOptions(options);
    this.#serverTrust = { peer: options.peer, trusted: options.trusted };
    this.#clientTrust = { authorize: options.authorize, trusted: options.trusted };
    this.#maxFrame = this.#opts.maxMessageSize + FRAME_OVERHEAD + 8192;
    const handshake = (version: SessionVersion) =>
      new Handshake({
        provider: options.provider,
        identity: options.identity,
        role: options.role,
        random: this.#opts.random,
        injected: options.random !== undefined,
        s0: options.s0,
        version,
        offered: this.#opts.versions,
      });
    this.#handshakes = { 1: handshake(1), 2: handshake(2) };
    if (this.role === "client") this.#version = this.#opts.versions[0];
    this.#outbox = new Outbox(
      this.#opts.random,
      (h, b, c) => this.#handshake.sign(h, b, c),
      () => this.#handshake.version,
    );
    this.#idle = new IdleRule(this.#opts.idleTimeoutMs);
  }

  /** The current (or, for a server before a HELLO, the preferred) version's handshake. */
  get #handshake(): Handshake {
    return this.#handshakes[this.#version ?? this.#opts.versions[0]];
  }

  /** The session version, once known: the client's from the start, the server's from the HELLO. */
  get version(): SessionVersion | undefined {
    return this.#version;
  }

  /** The current state's name. */
  get state(): SessionState {
    return this.#state.name;
  }

  /** The peer's card, once the handshake proved it. */
  get peer(): Card | undefined {
    const s = this.#state;
    if (s.name === "await-ack" || s.name === "closed" || s.name === "failed") return s.peer;
    return this.#link()?.peer;
  }

  /** The current key ID (16 hex digits), once keys exist. */
  get keyId(): string | undefined {
    const s = this.#state;
    if (s.name === "await-ack") return s.cipher.idHex;
    if (s.name === "closed" || s.name === "failed") return s.keyId;
    return this.#link()?.cipher.idHex;
  }

  /** True when `flush` would send something: a DATA_ACK is due ("batch" acknowledgements). */
  get flushDue(): boolean {
    return this.#link()?.data.ackDue ?? false;
  }

  /** The error the session failed with, or the one its CLOSE was sent for. */
  get error(): MissiveError | undefined {
    const s = this.#state;
    return s.name === "failed" || s.name === "closing" ? s.error : undefined;
  }

  /**
   * Handles one input and returns what to do, in order. Inputs are handled one at a
   * time (await each). A `send` the state or its size forbid is refused by throwing,
   * with nothing changed; any other failure ends the session (an `end` output).
   */
  async handle(input: SessionInput): Promise<SessionOutput[]> {
    if (this.#handling) {
      throw new MissiveError("internal", "session: handle() called before the last one ended");
    }
    if (input.type === "send") this.#checkSend(input.data);
    const out: SessionOutput[] = this.#out = [];
    if (isTerminal(this.#state.name)) return out;
    this.#handling = true;
    this.#now = input.now;
    try {
      switch (input.type) {
        case "start":
          await this.#start();
          break;
        case "frame":
          await this.#receive(input.bytes);
          break;
        case "send":
          this.#link()!.data.enqueue(input.data);
          await this.#pumpSend();
          break;
        case "timer":
          await this.#timer(input.timer);
          break;
        case "close":
          this.#close();
          break;
        case "flush":
          await this.#emitAck();
          break;
        case "lost":
          this.#abort(this.#closeError() ?? input.error);
          break;
      }
      if (this.#unsettled()) await this.#settle();
    } catch (e) {
      this.#abort(e);
    } finally {
      this.#handling = false;
    }
    return out;
  }

  #checkSend(data: Uint8Array): void {
    const name = this.#state.name;
    if (!acceptsSend(name)) {
      throw this.error ?? new MissiveError("session", `session: cannot send in state ${name}`);
    }
    if (data.length > this.#opts.maxMessageSize) {
      throw new MissiveError(
        "too-large",
        `session: message larger than ${this.#opts.maxMessageSize}`,
      );
    }
  }

  /**
   * After each input: a re-key that became due starts (before more DATA goes out), and a
   * requested close sends CLOSE once nothing is queued, in flight or being re-keyed.
   */
  async #settle(): Promise<void> {
    let s = this.#state;
    if (s.name === "open" && s.due !== undefined) await this.#startRekey(s, s.due);
    s = this.#state;
    if (s.name === "open" && s.link.closeWhenDrained && s.link.data.pending === 0) {
      await this.#sendClose(REASON_NORMAL, "closed");
    }
  }

  /** True when #settle has something to do (checked first: most inputs leave nothing). */
  #unsettled(): boolean {
    const s = this.#state;
    return s.name === "open" && (s.due !== undefined || s.link.closeWhenDrained);
  }

  // -------------------------------------------------------------------------------------
  // States

  #moveTo(next: State): void {
    checkTransition(this.#state.name, next.name);
    this.#state = next;
  }

  #established(): Established | undefined {
    return establishedOf(this.#state);
  }

  #link(): Link | undefined {
    return establishedOf(this.#state)?.link;
  }

  /** Replaces the established part: the state itself, or what a closing state came from. */
  #reestablish(next: Established): void {
    if (this.#state.name === "closing") this.#state.during = next;
    else this.#moveTo(next);
  }

  #closeError(): MissiveError | undefined {
    return this.#state.name === "closing" ? this.#state.error : undefined;
  }

  /** The context this side signs pre-key control frames with (SPEC §22.5.1). */
  #preKeyContext(): Bytes | undefined {
    const s = this.#state;
    if (s.name === "hello-sent") return s.hs.myContext;
    if (s.name === "await-hello" || s.name === "await-ack") return s.helloContext;
    return undefined;
  }

  // -------------------------------------------------------------------------------------
  // Start and the first handshake (SPEC §22.5)

  async #start(): Promise<void> {
    if (this.#state.name !== "start") throw new MissiveError("internal", "session: started twice");
    // Every version's, not only those spoken: a refusal of another version's HELLO is
    // verified and signed (and MACed, with s0) under that version's rules.
    for (const v of SESSION_VERSIONS) await this.#handshakes[v].setup();
    if (this.#opts.handshakeTimeoutMs > 0) {
      this.#setTimer("handshake", this.#opts.handshakeTimeoutMs);
    }
    if (this.role === "client") {
      const hs = await this.#handshake.initiate(INITIAL_CHAIN);
      this.#moveTo({ name: "hello-sent", hs });
      await this.#emit(T.HELLO, hs.helloBody, INITIAL_CHAIN);
    } else {
      // The first HELLO_ACK's ephemeral key is made while the client's HELLO is on its
      // way (a fixed-base multiplication that needs nothing from it).
      this.#moveTo({ name: "await-hello", ephemeral: this.#handshake.makeEphemeral() });
    }
    this.#armIdle(true);
  }

  /** A signed frame: HELLO, HELLO_ACK, or a control message before keys exist. */
  async #receiveSigned(frame: SignedFrame): Promise<void> {
    const s = this.#state;
    if (!acceptsSigned(this.role, s, frame.type)) throw unexpected(frame.type, s.name);
    // A stale HELLO / HELLO_ACK is verified but not answered: the server keeps waiting,
    // the client asks again (with the same ephemeral key).
    const stale = isStale(frame, this.#now, this.#opts.ttlMs);
    if (s.name === "await-hello") {
      // The server answers even a HELLO it refuses with a signed CLOSE bound to it, in
      // the HELLO's version (SPEC §22.12.1): #version is set by #receiveFrame.
      const hs = this.#handshake;
      const hc = await hs.firstHelloContext(frame.body);
      s.helloContext = hc;
      // A version this side does not speak (requirePq and a version 1 HELLO) is
      // refused once the HELLO verified: nothing is computed for it.
      const refused = !this.#opts.versions.includes(hs.version);
      const made = stale || refused ? undefined : s.ephemeral;
      if (made) s.ephemeral = undefined;
      const { card, answering } = await hs.hello(frame, hc, stale || refused, made);
      if (stale) {
        // A stale HELLO may be a replay: the server keeps waiting for a fresh one.
        this.#version = undefined;
        return this.#event({ type: "discard", messageType: "HELLO", reason: "stale" });
      }
      this.#recvSeq = frame.seq + 1;
      if (refused) throw this.#versionRefused(hs.version, card);
      return await this.#onClientHello(frame, card, answering!);
    }
    if (s.name === "hello-sent" && frame.type === T.HELLO_ACK) {
      const { card, completing } = await this.#handshake.helloAck(frame, s.hs, stale);
      this.#recvSeq = frame.seq + 1;
      if (!completing) return await this.#discardStale(frame);
      return await this.#onServerHelloAck(s, card, completing);
    }
    // A control frame before keys: from the known peer, or (a client before HELLO_ACK)
    // a refusal from any acceptable server card.
    const known = s.name === "await-ack" ? s.peer : this.#link()?.peer;
    const context = this.role === "server"
      ? INITIAL_CHAIN
      : s.name === "hello-sent"
      ? s.hs.peerContext
      : this.#link()!.peerSignedContext!;
    if (known) await this.#handshake.verify(known, frame, frame, context);
    else {
      const candidates = serverCandidates(this.#serverTrust);
      const signer = await this.#handshake.identify(candidates, frame, frame, context);
      if (!signer && frame.type === T.CLOSE) {
        const c = decodeCloseBody(frame.body);
        return this.#finish("failed", unverifiedCloseError(c), this.#peerInfo(c, false));
      }
      if (!signer) throw new MissiveError("auth-failed", "session: signed by an unknown key");
    }
    this.#recvSeq = frame.seq + 1;
    if (stale) return await this.#discardStale(frame);
    await this.#dispatch(frame, frame.body);
  }

  /** The refusal of a verified HELLO in a version this side does not speak. */
  #versionRefused(version: SessionVersion, card: Card): MissiveError {
    const pq = this.#opts.versions.includes(2) && !this.#opts.versions.includes(1);
    return new MissiveError(
      "untrusted",
      pq
        ? `session: ${card.address} offered only session version 1 (classical X25519); ` +
          "this side requires version 2 (post-quantum, ML-KEM-768 + X25519: --require-pq)"
        : `session: ${card.address} offered session version ${version}; this side speaks ` +
          `only version ${this.#opts.versions.join(", ")}`,
    );
  }

  /** Server: a verified HELLO from `card`; admit it and answer with HELLO_ACK. */
  async #onClientHello(frame: Frame, card: Card, answering: Promise<Answer>): Promise<void> {
    this.#recvSeq = frame.seq + 1;
    await admitClient(card, this.#clientTrust);
    const { ackBody, myContext, cipher } = await answering;
    this.#moveTo({ name: "await-ack", peer: card, cipher, helloContext: myContext });
    await this.#emit(T.HELLO_ACK, ackBody, myContext);
  }

  /** Client: the server's HELLO_ACK, signed by `card`; check it, derive, confirm by ACK. */
  async #onServerHelloAck(
    s: StateNamed<"hello-sent">,
    card: Card,
    completing: Promise<SessionCipher>,
  ): Promise<void> {
    checkServerCard(card, this.#serverTrust);
    const cipher = await completing;
    this.#moveTo({ name: "open", link: newLink(card, cipher, s.hs.peerContext) });
    await this.#emit(T.ACK, EMPTY);
    await this.#opened();
  }

  /** Server: the client's ACK under the new keys confirms them (await-ack → open). */
  async #onConfirmed(s: StateNamed<"await-ack">): Promise<void> {
    this.#moveTo({ name: "open", link: newLink(s.peer, s.cipher) });
    await this.#opened();
  }

  async #opened(): Promise<void> {
    const link = this.#link()!;
    if (this.#opts.handshakeTimeoutMs > 0) {
      this.#out.push({ type: "clear-timer", timer: "handshake" });
    }
    this.#event({
      type: "handshake",
      role: this.role,
      keyId: link.cipher.idHex,
      peer: link.peer.address,
      peerId: toHex(link.peer.id),
      version: link.cipher.version,
      kem: kemOf(link.cipher.version),
    });
    this.#prepareRekeyEphemeral(link);
    await this.#pumpSend();
  }

  // -------------------------------------------------------------------------------------
  // Frames in (SPEC §22.6)

  async #receive(bytes: Uint8Array): Promise<void> {
    try {
      await this.#receiveFrame(bytes);
    } catch (e) {
      if (!isMissiveError(e) || e.code === "internal") throw e;
      await this.#violation(e);
    }
  }

  async #receiveFrame(bytes: Uint8Array): Promise<void> {
    // A server waiting for its first HELLO reads every version it knows (to refuse one it
    // does not speak with a CLOSE the client can verify); after that, one version only.
    const accepted = this.#version ? [this.#version] : SESSION_VERSIONS;
    const { version, frame } = decodeVersionedFrame(bytes, this.#maxFrame, accepted);
    this.#version ??= version;
    // Order of checks (SPEC §22.6): key ID, sequence number, tag, TTL, type.
    const cipher = frame.form === "sealed" ? receiveCipher(this.#state, frame) : undefined;
    if (this.#recvSeq !== undefined && frame.seq !== this.#recvSeq) {
      throw new MissiveError(
        "session",
        `session: wrong sequence number ${frame.seq}, expected ${this.#recvSeq} ` +
          "(a replayed, reordered or dropped message)",
      );
    }
    if (frame.form === "signed") return await this.#receiveSigned(frame);
    const plaintext = await cipher!.open(frame);
    this.#recvSeq = frame.seq + 1;
    const link = this.#link();
    if (link) link.peerSignedContext = undefined;
    if (isStale(frame, this.#now, this.#opts.ttlMs)) return await this.#discardStale(frame);
    const name = this.#state.name;
    if (!EXPECTED[name].includes(frame.type) || !roleExpects(this.role, frame.type)) {
      throw unexpected(frame.type, name);
    }
    await this.#dispatch(frame, plaintext, cipher);
  }

  /** TTL rule (SPEC §22.7): a stale message is discarded and asked for again. */
  async #discardStale(frame: Frame): Promise<void> {
    this.#event({ type: "discard", messageType: messageTypeName(frame.type), reason: "stale" });
    await this.#requestResend();
  }

  /** A valid message, to the step that handles its type (SPEC §22.6.1). */
  async #dispatch(frame: Frame, body: Bytes, cipher?: SessionCipher): Promise<void> {
    if (frame.type !== T.RESEND_LAST) {
      this.#idle.progress();
      this.#armIdle(true);
    }
    const s = this.#state;
    // Closing: a crossing re-key HELLO or DATA is ignored; the session is ending.
    if (s.name === "closing" && (frame.type === T.HELLO || frame.type === T.DATA)) return;
    switch (frame.type) {
      case T.HELLO:
        return await this.#onRekeyHello(s as Open, frame, decodeSignedPart(body, this.#version));
      case T.HELLO_ACK:
        return await this.#onRekeyHelloAck(frame, decodeSignedPart(body, this.#version));
      case T.ACK: {
        checkEmptyBody(frame.type, body);
        if (s.name === "await-ack") return await this.#onConfirmed(s);
        const e = this.#established();
        if (e?.name === "rekey-await-ack" && cipher === e.next) return await this.#onRekeyAck(e);
        throw unexpected(frame.type, s.name);
      }
      case T.DATA:
        return await this.#onData(body);
      case T.DATA_ACK:
        return await this.#onDataAck(decodeAckBody(body));
      case T.RESEND_LAST:
        checkEmptyBody(frame.type, body);
        return await this.#onResendRequest();
      case T.CLOSE:
        return await this.#onPeerClose(frame, decodeCloseBody(body));
      case T.CLOSE_ACK: {
        checkEmptyBody(frame.type, body);
        const error = this.#closeError();
        return this.#finish(error ? "failed" : "closed", error, {
          by: "local",
          acknowledged: true,
        });
      }
      case T.CLOSED_WITHOUT_ACK: {
        // The peer gave up waiting for our CLOSE_ACK.
        const error = this.#closeError();
        const c = decodeCloseBody(body);
        return this.#finish(error ? "failed" : "closed", error, this.#peerInfo(c, false));
      }
    }
  }

  // -------------------------------------------------------------------------------------
  // Re-key (SPEC §22.8)

  /** Counts acknowledged DATA; for the server a re-key becomes due every `rekeyAfter`. */
  #countAcknowledged(link: Link, count: number): void {
    link.acknowledged += count;
    link.sinceRekey += count;
    if (this.role !== "server" || this.#opts.rekeyAfter === 0) return;
    if (link.sinceRekey < this.#opts.rekeyAfter) return;
    const s = this.#state;
    if (s.name === "open") {
      if (s.due !== undefined) return;
      s.due = link.acknowledged;
    } else if (s.name === "rekey-hello-sent") {
      if (s.again !== undefined) return;
      s.again = link.acknowledged;
    }
    link.sinceRekey = 0;
  }

  /** Server with re-keying on: the next re-key HELLO's key, made while data flows. */
  #prepareRekeyEphemeral(link: Link): void {
    if (this.role === "server" && this.#opts.rekeyAfter > 0 && !link.nextEphemeral) {
      link.nextEphemeral = this.#handshake.makeEphemeral();
    }
  }

  /** Server: a re-key HELLO under the current keys (open → rekey-hello-sent). */
  async #startRekey(s: Open, dueAt: number): Promise<void> {
    const link = s.link;
    const made = link.nextEphemeral;
    link.nextEphemeral = undefined;
    const chain = link.cipher.chain;
    const hs = await this.#handshake.initiate(chain, dueAt, made);
    this.#moveTo({ name: "rekey-hello-sent", link, hs, dueAt });
    await this.#emit(T.HELLO, hs.helloBody, chain);
    this.#armIdle(true);
  }

  /** Client: the server's re-key HELLO, verified and answered under the current keys. */
  async #onRekeyHello(s: Open, frame: Frame, part: SignedPart): Promise<void> {
    const link = s.link;
    const answer = await this.#handshake.answerRekey(link.peer, link.cipher.chain, frame, part);
    await this.#emit(T.HELLO_ACK, answer.ackBody, answer.myContext);
    this.#moveTo({
      name: "rekey-await-ack",
      link,
      next: answer.cipher,
      dueAt: answer.acknowledged ?? link.acknowledged,
    });
    this.#armIdle(true);
  }

  /** Server: the client's re-key HELLO_ACK; switch keys and confirm with ACK under them. */
  async #onRekeyHelloAck(frame: Frame, part: SignedPart): Promise<void> {
    const e = this.#established();
    if (e?.name !== "rekey-hello-sent") throw unexpected(frame.type, this.#state.name);
    const link = e.link;
    const next = await this.#handshake.completeRekey(
      link.peer,
      e.hs,
      link.cipher.chain,
      frame,
      part,
    );
    await this.#emitAck(); // acknowledgements still due go out under the old keys
    const old = link.cipher;
    link.cipher = next;
    // Closing: the crossing CLOSE ends the session; no further re-key starts.
    const closing = this.#state.name === "closing";
    this.#reestablish({ name: "open", link, due: closing ? undefined : e.again });
    await this.#emit(T.ACK, EMPTY);
    old.erase();
    this.#prepareRekeyEphemeral(link);
    await this.#rekeyed(link, old, e.dueAt);
  }

  /** Client: the server's ACK under the new keys ends the re-key. */
  async #onRekeyAck(e: RekeyAwaitAck): Promise<void> {
    const old = e.link.cipher;
    e.link.cipher = e.next;
    this.#reestablish({ name: "open", link: e.link });
    old.erase();
    await this.#rekeyed(e.link, old, e.dueAt);
  }

  async #rekeyed(link: Link, old: SessionCipher, acknowledged: number): Promise<void> {
    const keyId = link.cipher.idHex;
    const version = link.cipher.version;
    this.#event({
      type: "rekey",
      keyId,
      previousKeyId: old.idHex,
      acknowledged,
      version,
      kem: kemOf(version),
    });
    await this.#pumpSend();
  }

  // -------------------------------------------------------------------------------------
  // DATA (SPEC §22.6.2)

  /** Sends queued DATA the window allows now; none while a re-key is due or running. */
  async #pumpSend(): Promise<void> {
    const s = this.#state;
    if (s.name === "open" && s.due === undefined) {
      for (const m of s.link.data.takeSendable(this.#opts.window)) {
        await this.#emit(T.DATA, encodeDataBody(m.index, m.data));
      }
    }
    this.#armIdle(false);
  }

  /** A DATA from the peer: delivered in order, or a re-sent one acknowledged again. */
  async #onData(body: Bytes): Promise<void> {
    const link = this.#link()!;
    const { index, data } = decodeDataBody(body);
    if (data.length > this.#opts.maxMessageSize) {
      throw new MissiveError(
        "too-large",
        `session: message larger than ${this.#opts.maxMessageSize}`,
      );
    }
    // A re-sent DATA already delivered is acknowledged again, not delivered.
    const arrival = link.data.arrive(index);
    if (arrival === "deliver") this.#out.push({ type: "deliver", data });
    // "batch": the DATA_ACK waits for the driver's flush, unless it makes a re-key due.
    const rekeyDue = this.role === "server" && this.#opts.rekeyAfter > 0 &&
      link.sinceRekey + link.data.unacknowledged >= this.#opts.rekeyAfter;
    if (this.#opts.ack === "immediate" || (arrival === "deliver" && rekeyDue)) {
      await this.#emitAck();
    }
  }

  /** A DATA_ACK from the peer: acknowledges the sends it covers and refills the window. */
  async #onDataAck(index: number): Promise<void> {
    const link = this.#link()!;
    const count = link.data.acknowledge(index);
    if (count > 0) {
      this.#out.push({ type: "acknowledged", count });
      this.#countAcknowledged(link, count);
    }
    await this.#pumpSend();
  }

  /** Sends the DATA_ACK that is due, if any (only once frames are sealed). */
  async #emitAck(): Promise<void> {
    const link = this.#link();
    const ack = link?.data.takeAck();
    if (!ack) return;
    await this.#emit(T.DATA_ACK, u64(ack.index));
    if (ack.count > 0) this.#countAcknowledged(link!, ack.count);
  }

  /**
   * Emits one message as the next frame: signed (`sign`: the context) until this side
   * seals (SPEC §22.3), then sealed under `cipher` or the current sending keys. A due
   * DATA_ACK goes first (SPEC §22.6.2).
   */
  async #emit(type: MessageType, body: Bytes, sign?: Bytes, cipher?: SessionCipher): Promise<void> {
    const e = this.#established();
    if (type !== T.DATA_ACK && e?.link.data.ackDue) await this.#emitAck();
    // The client seals under the new keys once its re-key HELLO_ACK went out.
    const sealWith = e && (cipher ?? (e.name === "rekey-await-ack" ? e.next : e.link.cipher));
    const frame = await this.#outbox.frame(type, body, this.#now, { sign, cipher: sealWith });
    this.#out.push({ type: "write", frame });
  }

  // -------------------------------------------------------------------------------------
  // Timers and close (SPEC §22.7, §22.9)

  /** States in which a message from the peer is due (the idle timer runs). */
  #waiting(): boolean {
    const s = this.#state;
    switch (s.name) {
      case "hello-sent":
      case "await-hello":
      case "await-ack":
      case "rekey-hello-sent":
      case "rekey-await-ack":
        return true;
      case "open":
        return s.link.data.inflight > 0;
      default:
        return false;
    }
  }

  #armIdle(restart: boolean): void {
    const action = this.#idle.arm(this.#now, this.#waiting(), restart);
    if (action === "clear") this.#out.push({ type: "clear-timer", timer: "idle" });
    else if (action) this.#out.push({ type: "set-timer", timer: "idle", at: action.set });
  }

  #setTimer(timer: TimerName, ms: number): void {
    this.#out.push({ type: "set-timer", timer, at: this.#now + ms });
  }

  async #timer(timer: TimerName): Promise<void> {
    const s = this.#state;
    if (timer === "handshake") {
      if (s.name !== "hello-sent" && s.name !== "await-hello" && s.name !== "await-ack") return;
      const ms = this.#opts.handshakeTimeoutMs;
      const error = new MissiveError("timeout", `session: no handshake within ${ms} ms`);
      return await this.#violation(error);
    }
    if (timer === "close") return await this.#closeTimer();
    const fired = this.#idle.fired(this.#now);
    if (fired === undefined) return;
    if (fired !== "due") {
      this.#out.push({ type: "set-timer", timer: "idle", at: fired.set });
      return;
    }
    if (!this.#waiting()) return;
    if (s.name === "await-hello") {
      const error = new MissiveError("timeout", "session: no HELLO from the client in time");
      return this.#finish("failed", error);
    }
    await this.#requestResend();
  }

  /** Sends RESEND_LAST, or CLOSE once `maxResends` went unanswered (SPEC §22.7). */
  async #requestResend(): Promise<void> {
    const sent = this.#idle.resends;
    if (sent >= this.#opts.maxResends) {
      const error = new MissiveError(
        "timeout",
        `session: the peer did not answer ${sent} RESEND_LAST requests`,
      );
      return await this.#sendClose(
        reasonFor(error),
        `no expected message after ${sent} RESEND_LAST`,
        error,
      );
    }
    this.#idle.resends++;
    this.#event({ type: "resend", direction: "sent", count: this.#idle.resends });
    await this.#emit(T.RESEND_LAST, EMPTY, this.#preKeyContext());
    this.#armIdle(true);
  }

  /** The peer asks for our last message again: re-sent as a fresh frame. */
  async #onResendRequest(): Promise<void> {
    const count = ++this.#idle.resendsReceived;
    this.#event({ type: "resend", direction: "received", count });
    if (count > this.#opts.maxResends + 1) {
      throw new MissiveError("session", "session: the peer asks for RESEND_LAST too often");
    }
    const last = this.#outbox.last;
    if (!last) return;
    // Under the keys it was first sealed with while those are held, else the current.
    const cipher = last.cipher && !last.cipher.erased ? last.cipher : undefined;
    await this.#emit(last.type, last.body, last.sign, cipher);
  }

  /** `close()`: CLOSE once drained (see #settle); before the keys, the session just ends. */
  #close(): void {
    if (this.#state.name === "closing") return;
    const e = this.#established();
    if (e) e.link.closeWhenDrained = true;
    else {this.#finish(
        "failed",
        new MissiveError("session", "session: closed during the handshake"),
      );}
  }

  /** Answers a broken rule with CLOSE (reason = the error's exit code). */
  async #violation(error: MissiveError): Promise<void> {
    if (this.#state.name === "closing") return this.#finish("failed", this.#closeError() ?? error);
    await this.#sendClose(reasonFor(error), error.message, error);
  }

  /**
   * Sends CLOSE. Sealed: waits for CLOSE_ACK, re-sending CLOSE, then CLOSED_WITHOUT_ACK.
   * Signed (before keys are confirmed): no acknowledgement exists; the session ends.
   */
  async #sendClose(reason: number, text: string, error?: MissiveError): Promise<void> {
    const s = this.#state;
    if (isTerminal(s.name) || s.name === "closing") return;
    const e = this.#established();
    if (!e) {
      const context = this.#preKeyContext();
      if (context) await this.#emit(T.CLOSE, closeBody(reason, text), context);
      const info: CloseInfo = { by: "local", reason, text, acknowledged: false };
      return this.#finish("failed", error ?? new MissiveError("session", text), info);
    }
    this.#failSends(e.link, error ?? new MissiveError("session", "session: closing"));
    this.#moveTo({ name: "closing", during: e, reason, text, resends: 0, error });
    this.#armIdle(false);
    await this.#emit(T.CLOSE, closeBody(reason, text));
    this.#setTimer("close", this.#opts.closeTimeoutMs);
  }

  async #closeTimer(): Promise<void> {
    const s = this.#state;
    if (s.name !== "closing") return;
    const body = closeBody(s.reason, s.text);
    if (s.resends < this.#opts.maxCloseResends) {
      s.resends++;
      await this.#emit(T.CLOSE, body);
      return this.#setTimer("close", this.#opts.closeTimeoutMs);
    }
    await this.#emit(T.CLOSED_WITHOUT_ACK, body);
    const info: CloseInfo = { by: "local", reason: s.reason, text: s.text, acknowledged: false };
    this.#finish("failed", s.error, info);
  }

  /** The peer's CLOSE: acknowledged when sealed; the session ends. */
  async #onPeerClose(frame: Frame, c: CloseBody): Promise<void> {
    const sealed = frame.form === "sealed";
    if (sealed && this.#established()) await this.#emit(T.CLOSE_ACK, EMPTY);
    const final = peerCloseError(c) ?? this.#closeError() ??
      (sealed
        ? undefined
        : new MissiveError("session", "session: the peer closed during the handshake"));
    this.#finish(final ? "failed" : "closed", final, this.#peerInfo(c, sealed));
  }

  #peerInfo(c: CloseBody, acknowledged: boolean): CloseInfo {
    return { by: "peer", reason: c.reason, text: c.text, acknowledged };
  }

  // -------------------------------------------------------------------------------------
  // The end

  #failSends(link: Link, error: MissiveError): void {
    if (link.data.pending === 0) return;
    link.data.dropPending();
    this.#out.push({ type: "sends-failed", error });
  }

  /** The transport failed or was lost, or a bug: end without sending anything. */
  #abort(e: unknown): void {
    const error = isMissiveError(e)
      ? e
      : new MissiveError("internal", `session: ${(e as Error)?.stack ?? e}`, { cause: e });
    this.#finish("failed", error);
  }

  /** Ends the session: keys and ephemeral keys are erased; pending sends fail. */
  #finish(final: "closed" | "failed", error?: MissiveError, close?: CloseInfo): void {
    const s = this.#state;
    if (isTerminal(s.name)) return;
    const { peer, keyId } = this;
    const link = this.#link();
    if (link) {
      const failed = error ??
        new MissiveError("session", "session: closed before the peer acknowledged");
      this.#failSends(link, failed);
    }
    eraseState(s);
    this.#idle.stop();
    this.#moveTo(
      final === "closed" ? { name: "closed", peer, keyId } : { name: "failed", error, peer, keyId },
    );
    this.#event(closeEvent(error, close));
    this.#out.push({ type: "end", state: final, error });
  }

  #event(event: SessionEvent): void {
    this.#out.push({ type: "event", event });
  }
}

function newLink(peer: Card, cipher: SessionCipher, peerSignedContext?: Bytes): Link {
  return {
    peer,
    cipher,
    data: new DataFlow(),
    peerSignedContext,
    acknowledged: 0,
    sinceRekey: 0,
    closeWhenDrained: false,
  };
}
