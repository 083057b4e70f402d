/**
 * The live session (STP type 5, DESIGN §6, SPEC §22): a mutually authenticated,
 * encrypted, ordered message channel over any Transport, with re-keying, the proposal's
 * timers, and an explicit state machine (session/machine.ts).
 * @module
 */
import { setImmediate } from "node:timers";
import { type Bytes, equalBytes, toHex } from "../bytes.ts";
import { getCryptoProvider } from "../crypto/mod.ts";
import type { CryptoProvider } from "../crypto/provider.ts";
import { isMissiveError, MissiveError } from "../errors.ts";
import { type Card, decodeCard, sameKeys } from "../keys/card.ts";
import type { Identity } from "../keys/identity.ts";
import type { Transport } from "../transports/types.ts";
import type { SecureChannel } from "./channel.ts";
import { type Clock, systemClock, type TimerHandle } from "./clock.ts";
import {
  answer,
  checkServerCard,
  complete,
  type Handshake,
  initiate,
  serverCandidates,
  type ServerTrust,
  signPart,
  verifyPart,
} from "./handshake.ts";
import {
  type DirectionKey,
  eraseKeys,
  helloContext,
  INITIAL_CHAIN,
  nonceAt,
  type PresharedKeys,
  presharedKeys,
  sealedAad,
  SESSION_AEAD,
  type SessionKeys,
} from "./keyschedule.ts";
import { acceptsSend, canSendData, checkTransition, EXPECTED, isTerminal } from "./machine.ts";
import type { SessionState } from "./machine.ts";
import {
  checkEmptyBody,
  decodeAckBody,
  decodeCloseBody,
  decodeDataBody,
  decodeFrame,
  decodeHelloBody,
  decodeSignedPart,
  encodeCloseBody,
  encodeDataBody,
  encodeFrame,
  encodeSignedPart,
  type Frame,
  FRAME_OVERHEAD,
  type FrameHeader,
  MAX_CLOSE_TEXT,
  MessageType,
  messageTypeName,
  type SignedPart,
  u64,
} from "./messages.ts";
import {
  type AcceptOptions,
  codeForReason,
  type ConnectOptions,
  REASON_NORMAL,
  reasonFor,
  type ResolvedOptions,
  resolveOptions,
  type SessionEvent,
} from "./options.ts";
import { AsyncQueue } from "./queue.ts";
import { DataFlow } from "./dataflow.ts";

const T = MessageType;
const EMPTY: Bytes = new Uint8Array(0);
const EVENT_LOG_LIMIT = 1024;

type Role = "client" | "server";

/** What RESEND_LAST re-sends: the last message, as a fresh frame. */
interface LastSent {
  type: MessageType;
  body: Bytes;
  signContext?: Bytes;
  keys?: SessionKeys;
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
  readonly #role: Role;
  readonly #transport: Transport;
  readonly #identity: Identity;
  readonly #provider: CryptoProvider;
  readonly #clock: Clock;
  readonly #opts: ResolvedOptions;
  readonly #onEvent?: (e: SessionEvent) => void;
  readonly #serverTrust: ServerTrust;
  readonly #authorize?: (card: Card) => boolean | Promise<boolean>;
  readonly #maxFrame: number;
  /** Injected random bytes (vectors), or undefined for the provider's own. */
  readonly #random?: (length: number) => Bytes;
  #psk?: PresharedKeys;

  #state: SessionState = "start";
  #peer?: Card;
  #chain: Bytes = INITIAL_CHAIN;
  #keys?: SessionKeys;
  #nextKeys?: SessionKeys;
  /** Client during a re-key: sends under `#nextKeys` once its HELLO_ACK went out. */
  #sendNext = false;
  #hs?: Handshake;
  /** True once this side sends sealed frames (SPEC §22.3: signed before that). */
  #sealedOut = false;
  /** True once a sealed frame from the peer was accepted. */
  #peerSealed = false;

  #sendSeq: number;
  #recvSeq?: number;
  #lastSent?: LastSent;
  #writeChain: Promise<void> = Promise.resolve();

  readonly #data = new DataFlow();
  #ackScheduled = false;
  /** Acknowledged DATA (both directions) in all, and since the last re-key began. */
  #acknowledged = 0;
  #sinceRekey = 0;
  /** The acknowledged count a due re-key was triggered at (SPEC §22.8). */
  #rekeyDueAt = 0;
  #rekeyPending = false;
  /** Work the receive loop waits for before the next frame (a re-key being started). */
  #busy: Promise<void> = Promise.resolve();

  #resends = 0;
  #resendsReceived = 0;
  #idleTimer?: TimerHandle;
  #closeTimer?: TimerHandle;
  #closeResends = 0;
  #closeBody?: Bytes;
  #closeError?: MissiveError;

  #error?: MissiveError;
  readonly #inbox: AsyncQueue<Bytes>;
  readonly #events = new AsyncQueue<SessionEvent>();
  #drainWaiters: (() => void)[] = [];
  #handshakeDone!: { resolve(): void; reject(e: unknown): void };
  readonly #handshake: Promise<void>;
  #endedResolve!: () => void;
  readonly #ended: Promise<void>;

  private constructor(
    role: Role,
    transport: Transport,
    identity: Identity,
    provider: CryptoProvider,
    options: ConnectOptions & AcceptOptions,
  ) {
    this.#role = role;
    this.#transport = transport;
    this.#identity = identity;
    this.#provider = provider;
    this.#clock = options.clock ?? systemClock;
    this.#opts = resolveOptions(options);
    this.#onEvent = options.onEvent;
    this.#serverTrust = { peer: options.peer, trusted: options.trusted };
    this.#authorize = options.authorize;
    this.#maxFrame = this.#opts.maxMessageSize + FRAME_OVERHEAD + 8192;
    this.#random = options.random;
    this.#inbox = new AsyncQueue(this.#opts.inboxLimit);
    // Sequence numbers start at a random value below 2^31 (SPEC §22.4).
    const r = this.#opts.random(4);
    this.#sendSeq = ((r[0] << 24) | (r[1] << 16) | (r[2] << 8) | r[3]) >>> 1;
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
    const s = await Session.#create("client", transport, identity, options);
    await s.#startClient();
    await s.#handshake;
    return s;
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
    const s = await Session.#create("server", transport, identity, options);
    s.#state = checkTransition(s.#state, "await-hello");
    s.#armIdle(true);
    void s.#pump();
    await s.#handshake;
    return s;
  }

  static async #create(
    role: Role,
    transport: Transport,
    identity: Identity,
    options: ConnectOptions & AcceptOptions,
  ): Promise<Session> {
    const provider = options.provider ?? await getCryptoProvider();
    const s = new Session(role, transport, identity, provider, options);
    if (options.s0) s.#psk = await presharedKeys(provider, options.s0);
    return s;
  }

  // -------------------------------------------------------------------------------------
  // Public surface

  /** The peer's card, proven during the handshake. */
  get peer(): Card {
    if (!this.#peer) throw new MissiveError("session", "session: no peer before the handshake");
    return this.#peer;
  }

  /** The current state (session/machine.ts). */
  get state(): SessionState {
    return this.#state;
  }

  /** The current key ID (16 hex digits), or undefined before the handshake. */
  get keyId(): string | undefined {
    return this.#keys?.idHex;
  }

  /** Why the session failed, once it has. */
  get error(): MissiveError | undefined {
    return this.#error;
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
    if (!acceptsSend(this.#state)) {
      return Promise.reject(
        this.#error ?? new MissiveError("session", `session: cannot send in state ${this.#state}`),
      );
    }
    if (data.length > this.#opts.maxMessageSize) {
      return Promise.reject(
        new MissiveError("too-large", `session: message larger than ${this.#opts.maxMessageSize}`),
      );
    }
    const acknowledged = this.#data.enqueue(data);
    this.#pumpSend();
    return acknowledged;
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
    if (isTerminal(this.#state)) return;
    if (this.#state === "closing") return await this.#ended;
    if (!acceptsSend(this.#state)) {
      this.#finish("failed", new MissiveError("session", "session: closed during the handshake"));
      return;
    }
    await this.#drained();
    if (acceptsSend(this.#state)) await this.#sendClose(REASON_NORMAL, "closed");
    await this.#ended;
  }

  // -------------------------------------------------------------------------------------
  // Sending

  /**
   * Emits one message as the next frame. Sequence number, time and nonce are taken
   * synchronously, so frames leave in call order; the write chain keeps them in order.
   */
  #emit(type: MessageType, body: Bytes, signContext?: Bytes, keys?: SessionKeys): Promise<void> {
    if (type !== T.DATA_ACK && this.#data.ackDue && this.#sealedOut) this.#emitAck();
    const seq = this.#sendSeq;
    if (seq >= Number.MAX_SAFE_INTEGER) {
      return Promise.reject(new MissiveError("session", "session: sequence numbers exhausted"));
    }
    this.#sendSeq++;
    const header: FrameHeader = { seq, type, time: this.#clock.now() };
    const useKeys = this.#sealedOut
      ? keys ?? (this.#sendNext ? this.#nextKeys : this.#keys)
      : undefined;
    if (type !== T.RESEND_LAST) this.#lastSent = { type, body, signContext, keys: useKeys };
    let frame: Promise<Bytes>;
    if (useKeys) {
      const direction = this.#role === "client" ? useKeys.clientToServer : useKeys.serverToClient;
      const nonce = nonceAt(direction.counter++);
      const key = direction.key;
      const aad = sealedAad(seq, type, header.time, useKeys.id);
      const keyId = useKeys.id;
      frame = (async () => {
        const plaintext = signContext
          ? encodeSignedPart(await this.#sign(header, body, signContext))
          : body;
        const ciphertext = await this.#provider.aeadEncrypt(
          SESSION_AEAD,
          key,
          nonce,
          plaintext,
          aad,
        );
        return encodeFrame({ ...header, form: "sealed", keyId, ciphertext });
      })();
    } else {
      if (!signContext) throw new MissiveError("internal", "session: signed frame without context");
      frame = this.#sign(header, body, signContext).then((part) =>
        encodeFrame({ ...header, form: "signed", ...part })
      );
    }
    frame.catch(() => {});
    const written = this.#writeChain.then(async () => await this.#transport.send(await frame));
    this.#writeChain = written.catch(() => {});
    return written;
  }

  #sign(header: FrameHeader, body: Bytes, context: Bytes): Promise<SignedPart> {
    return signPart(this.#provider, this.#identity, header, body, context, this.#psk);
  }

  /** Emits and turns a write failure into the end of the session. */
  #send(type: MessageType, body: Bytes, signContext?: Bytes, keys?: SessionKeys): Promise<void> {
    return this.#emit(type, body, signContext, keys).catch((e) => this.#abort(e));
  }

  #pumpSend(): void {
    if (canSendData(this.#state)) {
      for (const m of this.#data.takeSendable(this.#opts.window)) {
        void this.#send(T.DATA, encodeDataBody(m.index, m.data));
      }
    }
    this.#armIdle(false);
  }

  #emitAck(): void {
    const ack = this.#data.takeAck();
    if (!ack) return;
    void this.#send(T.DATA_ACK, u64(ack.index));
    if (ack.count > 0) this.#countAcknowledged(ack.count);
  }

  #scheduleAck(): void {
    if (this.#opts.ack === "immediate") return this.#emitAck();
    if (this.#ackScheduled) return;
    this.#ackScheduled = true;
    setImmediate(() => {
      this.#ackScheduled = false;
      if (!isTerminal(this.#state) && this.#sealedOut) this.#emitAck();
    });
  }

  /** Server: counts acknowledged DATA and starts a re-key at `rekeyAfter` (SPEC §22.8). */
  #countAcknowledged(count: number): void {
    this.#acknowledged += count;
    this.#sinceRekey += count;
    if (this.#role !== "server" || this.#opts.rekeyAfter === 0) return;
    if (this.#sinceRekey < this.#opts.rekeyAfter || this.#rekeyPending) return;
    this.#rekeyDueAt = this.#acknowledged;
    this.#sinceRekey = 0;
    if (this.#state === "open") this.#busy = this.#startRekey().catch((e) => this.#abort(e));
    else if (this.#state === "rekey-hello-sent") this.#rekeyPending = true;
  }

  /** Nothing queued or in flight, and no re-key in progress. */
  #quiet(): boolean {
    return this.#data.queued === 0 && this.#data.inflight === 0 &&
      this.#state !== "rekey-hello-sent" && this.#state !== "rekey-await-ack";
  }

  #drained(): Promise<void> {
    if (this.#quiet()) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  #checkDrained(): void {
    if (!this.#quiet() && !isTerminal(this.#state) && this.#state !== "closing") return;
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const w of waiters) w();
  }

  // -------------------------------------------------------------------------------------
  // Handshake

  async #startClient(): Promise<void> {
    this.#state = checkTransition(this.#state, "hello-sent");
    this.#hs = await initiate(this.#provider, this.#identity, this.#opts.random, INITIAL_CHAIN);
    void this.#pump();
    void this.#send(T.HELLO, this.#hs.helloBody, INITIAL_CHAIN);
    this.#armIdle(true);
  }

  async #onClientHello(frame: Frame, part: SignedPart, card: Card): Promise<void> {
    const body = decodeHelloBody(part.body);
    const hs = this.#hs as Handshake; // set when the HELLO arrived (#receiveSigned)
    this.#peer = card;
    this.#recvSeq = frame.seq + 1;
    const admitted = this.#authorize
      ? await this.#authorize(card)
      : (this.#serverTrust.trusted ?? []).some((t) => sameKeys(t, card));
    if (!admitted) {
      return await this.#violation(
        new MissiveError(
          "untrusted",
          `session: client ${card.address} (id ${toHex(card.id)}) is not trusted; ` +
            "add its card to the trusted list",
        ),
      );
    }
    const { ackBody, keys } = await answer(this.#provider, this.#identity, this.#random, {
      chain: INITIAL_CHAIN,
      helloBody: part.body,
      peerEphemeral: body.ephemeralKey,
      psk: this.#psk,
    });
    this.#keys = keys;
    this.#state = checkTransition(this.#state, "await-ack");
    void this.#send(T.HELLO_ACK, ackBody, hs.myContext);
  }

  async #onServerHelloAck(part: SignedPart, card: Card): Promise<void> {
    const hs = this.#hs as Handshake;
    try {
      checkServerCard(card, this.#serverTrust);
    } catch (e) {
      return await this.#violation(e as MissiveError);
    }
    this.#keys = await complete(this.#provider, hs, {
      chain: INITIAL_CHAIN,
      ackBody: part.body,
      peerEphemeral: decodeHelloBody(part.body).ephemeralKey,
      psk: this.#psk,
    });
    this.#chain = (this.#keys as SessionKeys).chain;
    this.#peer = card;
    this.#sealedOut = true;
    this.#state = checkTransition(this.#state, "open");
    void this.#send(T.ACK, EMPTY);
    this.#opened();
  }

  #opened(): void {
    const keys = this.#keys as SessionKeys;
    this.#event({
      type: "handshake",
      role: this.#role,
      keyId: keys.idHex,
      peer: this.peer.address,
      peerId: toHex(this.peer.id),
    });
    this.#handshakeDone.resolve();
    this.#pumpSend();
  }

  async #startRekey(): Promise<void> {
    this.#rekeyPending = false;
    this.#state = checkTransition(this.#state, "rekey-hello-sent");
    const chain = this.#chain;
    const hs = await initiate(
      this.#provider,
      this.#identity,
      this.#opts.random,
      chain,
      this.#rekeyDueAt,
    );
    if (this.#state !== "rekey-hello-sent") return;
    this.#hs = hs;
    void this.#send(T.HELLO, hs.helloBody, chain);
    this.#armIdle(true);
  }

  /** Client: the server's re-key HELLO, under the current keys. */
  async #onRekeyHello(part: SignedPart): Promise<void> {
    this.#state = checkTransition(this.#state, "rekey-await-ack");
    const peerBody = this.#checkSameCard(part.body);
    const { ackBody, keys, hs } = await answer(this.#provider, this.#identity, this.#random, {
      chain: this.#chain,
      helloBody: part.body,
      peerEphemeral: peerBody.ephemeralKey,
      psk: this.#psk,
    });
    if (this.#state !== "rekey-await-ack") return;
    this.#nextKeys = keys;
    this.#hs = { ...hs, dueAt: peerBody.acknowledged ?? this.#acknowledged };
    void this.#send(T.HELLO_ACK, ackBody, hs.myContext);
    this.#sendNext = true;
    this.#armIdle(true);
  }

  /** Server: the client's re-key HELLO_ACK; switch keys and confirm with ACK. */
  async #onRekeyHelloAck(part: SignedPart): Promise<void> {
    const hs = this.#hs as Handshake;
    const next = await complete(this.#provider, hs, {
      chain: this.#chain,
      ackBody: part.body,
      peerEphemeral: this.#checkSameCard(part.body).ephemeralKey,
      psk: this.#psk,
    });
    if (this.#state !== "rekey-hello-sent" && this.#state !== "closing") return;
    this.#emitAck(); // acknowledgements still due go out under the old keys
    const old = this.#keys as SessionKeys;
    this.#keys = next;
    this.#chain = next.chain;
    void this.#send(T.ACK, EMPTY);
    this.#writeChain.then(() => eraseKeys(old));
    if (this.#state === "rekey-hello-sent") this.#state = checkTransition(this.#state, "open");
    this.#rekeyed(old, hs.dueAt ?? this.#acknowledged);
    if (this.#rekeyPending && this.#state === "open") {
      this.#busy = this.#startRekey().catch((e) => this.#abort(e));
    }
  }

  /** Client: the ACK under the new keys ends the re-key. */
  #onRekeyAck(): void {
    const old = this.#keys as SessionKeys;
    this.#keys = this.#nextKeys;
    this.#nextKeys = undefined;
    this.#sendNext = false;
    this.#chain = (this.#keys as SessionKeys).chain;
    this.#writeChain.then(() => eraseKeys(old));
    if (this.#state === "rekey-await-ack") this.#state = checkTransition(this.#state, "open");
    this.#rekeyed(old, this.#hs?.dueAt ?? this.#acknowledged);
  }

  #rekeyed(old: SessionKeys, acknowledged: number): void {
    this.#event({
      type: "rekey",
      keyId: (this.#keys as SessionKeys).idHex,
      previousKeyId: old.idHex,
      acknowledged,
    });
    this.#checkDrained();
    this.#pumpSend();
  }

  /** A re-key HELLO / HELLO_ACK must carry the peer's own card again. */
  #checkSameCard(body: Bytes) {
    const h = decodeHelloBody(body);
    if (!equalBytes(h.card, this.peer.bytes)) {
      throw new MissiveError("untrusted", "session: the peer changed its card during a re-key");
    }
    return h;
  }

  // -------------------------------------------------------------------------------------
  // Receiving

  async #pump(): Promise<void> {
    try {
      for await (const bytes of this.#transport.frames()) {
        // A re-key being started completes before the next frame is looked at.
        await this.#busy;
        if (isTerminal(this.#state)) break;
        await this.#receive(bytes);
        await this.#inbox.waitForSpace();
        if (isTerminal(this.#state)) break;
      }
      if (!isTerminal(this.#state)) {
        this.#finish(
          "failed",
          this.#closeError ?? new MissiveError(
            "network",
            `session: ${this.#transport.remote} closed the connection without CLOSE`,
          ),
        );
      }
    } catch (e) {
      this.#abort(e);
    }
  }

  async #receive(bytes: Uint8Array): Promise<void> {
    try {
      await this.#receiveFrame(bytes);
    } catch (e) {
      if (!isMissiveError(e) || e.code === "internal") throw e;
      await this.#violation(e);
    }
  }

  async #receiveFrame(bytes: Uint8Array): Promise<void> {
    const frame = decodeFrame(bytes, this.#maxFrame);
    // Order of checks (SPEC §22.4): key ID, sequence number, tag, TTL, type.
    const keys = frame.form === "sealed" ? this.#keysFor(frame) : undefined;
    if (this.#recvSeq !== undefined && frame.seq !== this.#recvSeq) {
      throw new MissiveError(
        "session",
        `session: wrong sequence number ${frame.seq}, expected ${this.#recvSeq} ` +
          "(a replayed, reordered or dropped message)",
      );
    }
    const expected = EXPECTED[this.#state];
    if (frame.form === "signed") return await this.#receiveSigned(frame, expected);
    const plaintext = await this.#open(frame, keys as SessionKeys);
    this.#recvSeq = frame.seq + 1;
    this.#peerSealed = true;
    if (this.#stale(frame)) return;
    if (!expected.includes(frame.type) || !this.#roleExpects(frame.type)) {
      throw this.#unexpected(frame.type);
    }
    await this.#dispatch(frame, plaintext);
  }

  async #receiveSigned(
    frame: Frame & { form: "signed" },
    expected: readonly MessageType[],
  ): Promise<void> {
    const acceptsSigned = this.#role === "server"
      ? this.#state === "await-hello" || this.#state === "await-ack"
      : !this.#peerSealed;
    const wrongHello = (frame.type === T.HELLO && this.#state !== "await-hello") ||
      (frame.type === T.HELLO_ACK && this.#state !== "hello-sent");
    if (!acceptsSigned || wrongHello || !expected.includes(frame.type)) {
      throw this.#unexpected(frame.type);
    }
    const firstHello = frame.type === T.HELLO || frame.type === T.HELLO_ACK;
    if (frame.type === T.HELLO) {
      // The server answers even a HELLO it refuses with a signed CLOSE bound to it.
      this.#hs = {
        helloBody: frame.body,
        myContext: await helloContext(this.#provider, INITIAL_CHAIN, frame.body),
        peerContext: INITIAL_CHAIN,
      };
    }
    let signer: Card | undefined = this.#peer;
    if (firstHello) signer = await decodeCard(this.#provider, decodeHelloBody(frame.body).card);
    const context = this.#hs?.peerContext ?? INITIAL_CHAIN;
    if (!signer) {
      // Client before HELLO_ACK: a refusal may come from any acceptable server card.
      for (const card of serverCandidates(this.#serverTrust)) {
        try {
          await verifyPart(this.#provider, card, frame, frame, context, this.#psk);
          signer = card;
          break;
        } catch { /* try the next card */ }
      }
      if (!signer && frame.type === T.CLOSE) return this.#peerClosedUnverified(frame.body);
      if (!signer) throw new MissiveError("auth-failed", "session: signed by an unknown key");
    } else {
      await verifyPart(this.#provider, signer, frame, frame, context, this.#psk);
    }
    if (frame.type === T.HELLO) return await this.#onFirstHello(frame, signer);
    this.#recvSeq = frame.seq + 1;
    if (this.#stale(frame)) return;
    if (frame.type === T.HELLO_ACK) return await this.#onServerHelloAck(frame, signer);
    await this.#dispatch(frame, frame.body);
  }

  async #onFirstHello(frame: Frame & { form: "signed" }, card: Card): Promise<void> {
    if (this.#isStale(frame)) {
      // A stale HELLO may be a replay: the server keeps waiting for a fresh one.
      this.#event({ type: "discard", messageType: "HELLO", reason: "stale" });
      return;
    }
    await this.#onClientHello(frame, frame, card);
  }

  /** Decrypts a sealed frame under the keys its key ID names (SPEC §22.5.3). */
  /** The keys a sealed frame's key ID names; an old or unknown ID ends the session. */
  #keysFor(frame: Frame & { form: "sealed" }): SessionKeys {
    let keys: SessionKeys | undefined;
    if (this.#keys && equalBytes(frame.keyId, this.#keys.id)) keys = this.#keys;
    else if (this.#nextKeys && equalBytes(frame.keyId, this.#nextKeys.id)) {
      if (this.#role !== "client" || frame.type !== T.ACK) throw this.#unexpected(frame.type);
      keys = this.#nextKeys;
    }
    if (!keys) {
      throw new MissiveError(
        "session",
        `session: message under an old or unknown session key (key id ${toHex(frame.keyId)})`,
      );
    }
    return keys;
  }

  /** Decrypts a sealed frame (SPEC §22.5.3); the nonce is the direction's frame count. */
  async #open(frame: Frame & { form: "sealed" }, keys: SessionKeys): Promise<Bytes> {
    const direction: DirectionKey = this.#role === "client"
      ? keys.serverToClient
      : keys.clientToServer;
    const plaintext = await this.#provider.aeadDecrypt(
      SESSION_AEAD,
      direction.key,
      nonceAt(direction.counter),
      frame.ciphertext,
      sealedAad(frame.seq, frame.type, frame.time, frame.keyId),
    ).catch((e) => {
      throw new MissiveError(
        "auth-failed",
        `session: ${messageTypeName(frame.type)} failed authentication (bad tag)`,
        { cause: e },
      );
    });
    direction.counter++;
    return plaintext;
  }

  #isStale(frame: Frame): boolean {
    return Math.abs(this.#clock.now() - frame.time) > this.#opts.ttlMs;
  }

  /** TTL rule (SPEC §22.7): a stale message is discarded and asked for again. */
  #stale(frame: Frame): boolean {
    if (!this.#isStale(frame)) return false;
    this.#event({ type: "discard", messageType: messageTypeName(frame.type), reason: "stale" });
    this.#requestResend();
    return true;
  }

  #roleExpects(type: MessageType): boolean {
    if (type === T.HELLO) return this.#role === "client";
    if (type === T.HELLO_ACK) return this.#role === "server";
    return true;
  }

  #unexpected(type: MessageType): MissiveError {
    return new MissiveError(
      "session",
      `session: unexpected ${messageTypeName(type)} in state ${this.#state}`,
    );
  }

  async #dispatch(frame: Frame, body: Bytes): Promise<void> {
    if (frame.type !== T.RESEND_LAST) this.#progress();
    // Closing: a crossing re-key HELLO or DATA is ignored; the session is ending.
    if (this.#state === "closing" && (frame.type === T.HELLO || frame.type === T.DATA)) return;
    switch (frame.type) {
      case T.HELLO:
        return await this.#onRekeyHello(await this.#verifySealedPart(frame, body));
      case T.HELLO_ACK:
        return await this.#onRekeyHelloAck(await this.#verifySealedPart(frame, body));
      case T.ACK:
        checkEmptyBody(frame.type, body);
        if (this.#state === "await-ack") {
          this.#chain = (this.#keys as SessionKeys).chain;
          this.#sealedOut = true;
          this.#state = checkTransition(this.#state, "open");
          return this.#opened();
        }
        if (this.#nextKeys) return this.#onRekeyAck(); // rekey-await-ack or closing
        throw this.#unexpected(frame.type);
      case T.DATA:
        return this.#onData(body);
      case T.DATA_ACK:
        return this.#onDataAck(decodeAckBody(body));
      case T.RESEND_LAST:
        checkEmptyBody(frame.type, body);
        return this.#onResendRequest();
      case T.CLOSE:
        return await this.#onPeerClose(frame, decodeCloseBody(body));
      case T.CLOSE_ACK:
        checkEmptyBody(frame.type, body);
        return this.#finish(this.#closeError ? "failed" : "closed", this.#closeError, {
          by: "local",
          acknowledged: true,
        });
      case T.CLOSED_WITHOUT_ACK: {
        const c = decodeCloseBody(body);
        return this.#finish(
          this.#closeError ? "failed" : "closed",
          this.#closeError,
          { by: "peer", reason: c.reason, text: c.text, acknowledged: false },
        );
      }
    }
  }

  async #verifySealedPart(frame: Frame, body: Bytes): Promise<SignedPart> {
    const part = decodeSignedPart(body);
    const context = frame.type === T.HELLO ? this.#chain : (this.#hs as Handshake).peerContext;
    await verifyPart(this.#provider, this.peer, frame, part, context, this.#psk);
    return part;
  }

  #onData(body: Bytes): void {
    if (this.#state === "closing") return;
    const { index, data } = decodeDataBody(body);
    if (data.length > this.#opts.maxMessageSize) {
      throw new MissiveError(
        "too-large",
        `session: message larger than ${this.#opts.maxMessageSize}`,
      );
    }
    // A re-sent DATA already delivered is acknowledged again, not delivered.
    if (this.#data.arrive(index) === "duplicate") return this.#scheduleAck();
    this.#inbox.push(data);
    const dueForRekey = this.#role === "server" && this.#opts.rekeyAfter > 0 &&
      this.#sinceRekey + this.#data.unacknowledged >= this.#opts.rekeyAfter;
    if (dueForRekey) this.#emitAck();
    else this.#scheduleAck();
  }

  #onDataAck(index: number): void {
    const count = this.#data.acknowledge(index);
    if (count > 0) this.#countAcknowledged(count);
    this.#checkDrained();
    this.#pumpSend();
  }

  #onResendRequest(): void {
    this.#resendsReceived++;
    this.#event({ type: "resend", direction: "received", count: this.#resendsReceived });
    if (this.#resendsReceived > this.#opts.maxResends + 1) {
      throw new MissiveError("session", "session: the peer asks for RESEND_LAST too often");
    }
    const last = this.#lastSent;
    if (!last) return;
    const keys = last.keys && last.keys.clientToServer.key.some((b) => b !== 0)
      ? last.keys
      : undefined;
    void this.#send(last.type, last.body, last.signContext, keys);
  }

  async #onPeerClose(frame: Frame, c: { reason: number; text: string }): Promise<void> {
    const error = c.reason === REASON_NORMAL ? undefined : new MissiveError(
      codeForReason(c.reason),
      `session: the peer closed the session (reason ${c.reason}): ${c.text}`,
    );
    if (frame.form === "sealed") await this.#emit(T.CLOSE_ACK, EMPTY).catch(() => {});
    const final = error ?? this.#closeError ??
      (frame.form === "signed"
        ? new MissiveError("session", "session: the peer closed during the handshake")
        : undefined);
    this.#finish(final ? "failed" : "closed", final, {
      by: "peer",
      reason: c.reason,
      text: c.text,
      acknowledged: frame.form === "sealed",
    });
  }

  #peerClosedUnverified(body: Bytes): void {
    const c = decodeCloseBody(body);
    this.#finish(
      "failed",
      new MissiveError(
        codeForReason(c.reason),
        `session: the server closed the handshake (unverified CLOSE, reason ${c.reason}): ${c.text}`,
      ),
      { by: "peer", reason: c.reason, text: c.text, acknowledged: false },
    );
  }

  // -------------------------------------------------------------------------------------
  // Timers, errors and the end

  /** A valid expected message arrived: the resend counter starts over. */
  #progress(): void {
    this.#resends = 0;
    this.#resendsReceived = 0;
    this.#armIdle(true);
  }

  #waiting(): boolean {
    switch (this.#state) {
      case "hello-sent":
      case "await-hello":
      case "await-ack":
      case "rekey-hello-sent":
      case "rekey-await-ack":
        return true;
      case "open":
        return this.#data.inflight > 0;
      default:
        return false;
    }
  }

  #armIdle(restart: boolean): void {
    if (!this.#waiting()) {
      if (this.#idleTimer !== undefined) this.#clock.clearTimer(this.#idleTimer);
      this.#idleTimer = undefined;
      return;
    }
    if (this.#idleTimer !== undefined && !restart) return;
    if (this.#idleTimer !== undefined) this.#clock.clearTimer(this.#idleTimer);
    this.#idleTimer = this.#clock.setTimer(this.#opts.idleTimeoutMs, () => {
      this.#idleTimer = undefined;
      this.#onIdle();
    });
  }

  #onIdle(): void {
    if (isTerminal(this.#state) || this.#state === "closing" || !this.#waiting()) return;
    if (this.#state === "await-hello") {
      return this.#finish(
        "failed",
        new MissiveError("timeout", "session: no HELLO from the client in time"),
      );
    }
    this.#requestResend();
  }

  /** Sends RESEND_LAST, or CLOSE once `maxResends` went unanswered (SPEC §22.7). */
  #requestResend(): void {
    if (this.#resends >= this.#opts.maxResends) {
      void this.#sendClose(
        reasonFor(new MissiveError("timeout", "")),
        `no expected message after ${this.#resends} RESEND_LAST`,
        new MissiveError(
          "timeout",
          `session: the peer did not answer ${this.#resends} RESEND_LAST requests`,
        ),
      );
      return;
    }
    this.#resends++;
    this.#event({ type: "resend", direction: "sent", count: this.#resends });
    void this.#send(T.RESEND_LAST, EMPTY, this.#sealedOut ? undefined : this.#hs?.myContext);
    this.#armIdle(true);
  }

  /** Answers a broken rule with CLOSE (reason = the error's exit code). */
  async #violation(error: MissiveError): Promise<void> {
    if (isTerminal(this.#state)) return;
    if (this.#state === "closing") return this.#finish("failed", this.#closeError ?? error);
    await this.#sendClose(reasonFor(error), error.message, error);
  }

  /**
   * Sends CLOSE. Sealed: waits for CLOSE_ACK, re-sending CLOSE, then CLOSED_WITHOUT_ACK.
   * Signed (before keys are confirmed): no acknowledgement exists; the session ends.
   */
  async #sendClose(reason: number, text: string, error?: MissiveError): Promise<void> {
    if (isTerminal(this.#state) || this.#state === "closing") return;
    const body = encodeCloseBody({ reason, text: text.slice(0, MAX_CLOSE_TEXT) });
    if (!this.#sealedOut) {
      const context = this.#hs?.myContext;
      if (context) {
        await this.#emit(T.CLOSE, body, context).catch(() => {});
      }
      return this.#finish("failed", error ?? new MissiveError("session", text), {
        by: "local",
        reason,
        text,
        acknowledged: false,
      });
    }
    this.#state = checkTransition(this.#state, "closing");
    this.#closeError = error;
    this.#error = error;
    this.#closeBody = body;
    this.#closeResends = 0;
    this.#armIdle(false);
    this.#rejectPending(error ?? new MissiveError("session", "session: closing"));
    void this.#send(T.CLOSE, body);
    this.#armClose();
  }

  #armClose(): void {
    this.#closeTimer = this.#clock.setTimer(this.#opts.closeTimeoutMs, () => {
      this.#closeTimer = undefined;
      if (this.#state !== "closing") return;
      const body = this.#closeBody as Bytes;
      if (this.#closeResends < this.#opts.maxCloseResends) {
        this.#closeResends++;
        void this.#send(T.CLOSE, body);
        return this.#armClose();
      }
      void this.#send(T.CLOSED_WITHOUT_ACK, body);
      const c = decodeCloseBody(body);
      this.#finish("failed", this.#closeError, {
        by: "local",
        reason: c.reason,
        text: c.text,
        acknowledged: false,
      });
    });
  }

  /** The transport failed or was lost: end without sending anything. */
  #abort(e: unknown): void {
    if (isTerminal(this.#state)) return;
    const error = isMissiveError(e)
      ? e
      : new MissiveError("internal", `session: ${(e as Error)?.stack ?? e}`, { cause: e });
    this.#finish("failed", error);
  }

  #rejectPending(error: MissiveError): void {
    this.#data.rejectAll(error);
    this.#checkDrained();
  }

  #finish(
    final: "closed" | "failed",
    error?: MissiveError,
    close?: { by: "local" | "peer"; reason?: number; text?: string; acknowledged: boolean },
  ): void {
    if (isTerminal(this.#state)) return;
    this.#state = checkTransition(this.#state, final);
    this.#error = error;
    if (this.#idleTimer !== undefined) this.#clock.clearTimer(this.#idleTimer);
    if (this.#closeTimer !== undefined) this.#clock.clearTimer(this.#closeTimer);
    this.#idleTimer = this.#closeTimer = undefined;
    this.#rejectPending(
      error ?? new MissiveError("session", "session: closed before the peer acknowledged"),
    );
    this.#inbox.end(error);
    this.#handshakeDone.reject(
      error ?? new MissiveError("session", "session: closed during the handshake"),
    );
    this.#event({
      type: "close",
      by: close?.by ?? "local",
      reason: close?.reason ?? (error ? reasonFor(error) : REASON_NORMAL),
      text: close?.text ?? error?.message ?? "closed",
      acknowledged: close?.acknowledged ?? false,
    });
    this.#events.end();
    const keys = [this.#keys, this.#nextKeys];
    void this.#writeChain.then(async () => {
      for (const k of keys) eraseKeys(k);
      await this.#transport.close();
    }).catch(() => {}).finally(() => this.#endedResolve());
  }

  #event(event: SessionEvent): void {
    this.#events.push(event);
    this.#events.trim(EVENT_LOG_LIMIT);
    try {
      this.#onEvent?.(event);
    } catch { /* a listener's failure is not the session's */ }
  }
}
