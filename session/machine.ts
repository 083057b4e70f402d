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
 * machine by hand, input by input. The state (_state.ts) is a tagged union; the
 * handshake steps are in _handshake.ts, the keys in _cipher.ts, the receive checks in
 * _receive.ts.
 * @module
 */
import { type Bytes, equalBytes, toHex, wipe } from "../core/bytes.ts";
import type { CryptoProvider } from "../crypto/provider.ts";
import { isMissiveError, MissiveError } from "../core/errors.ts";
import { type Card, decodeCard, sameKeys } from "../keys/card.ts";
import type { Identity } from "../keys/identity.ts";
import type { Role, SessionCipher } from "./_cipher.ts";
import { DataFlow } from "./_dataflow.ts";
import {
  answer,
  checkServerCard,
  complete,
  type Ephemeral,
  initiate,
  newEphemeral,
  serverCandidates,
  type ServerTrust,
  signPart,
  verifyPart,
} from "./_handshake.ts";
import { helloContext, INITIAL_CHAIN, type PresharedKeys, presharedKeys } from "./_keyschedule.ts";
import { acceptsSigned, isStale, receiveCipher, unexpected } from "./_receive.ts";
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
  type PeerClose,
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
  /** The application sends a message (refused by throwing when the state forbids it). */
  | { type: "send"; data: Uint8Array; now: number }
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

/** How a session ended, for the `close` event. */
interface CloseInfo {
  by: "local" | "peer";
  reason?: number;
  text?: string;
  acknowledged: boolean;
}

/** What RESEND_LAST re-sends: the last message, as a fresh frame (SPEC §22.7). */
interface LastSent {
  type: MessageType;
  body: Bytes;
  sign?: Bytes;
  cipher?: SessionCipher;
}

const T = MessageType;
const EMPTY: Bytes = new Uint8Array(0);

export class SessionMachine {
  readonly role: Role;
  readonly #identity: Identity;
  readonly #provider: CryptoProvider;
  readonly #opts: ResolvedOptions;
  readonly #trust: ServerTrust;
  readonly #authorize?: (card: Card) => boolean | Promise<boolean>;
  /** Injected random bytes (vectors), or undefined for the provider's own ephemerals. */
  readonly #injected?: (length: number) => Bytes;
  readonly #s0?: Uint8Array;
  readonly #maxFrame: number;
  #psk?: PresharedKeys;
  #state: State = { name: "start" };
  // Wire counters and the timer rules, valid from start to end.
  #sendSeq: number;
  #recvSeq?: number;
  #lastSent?: LastSent;
  #resends = 0;
  #resendsReceived = 0;
  #idleArmed = false;
  #idleDeadline = 0;
  #now = 0;
  #out: SessionOutput[] = [];
  #handling = false;

  constructor(options: MachineOptions) {
    this.role = options.role;
    this.#identity = options.identity;
    this.#provider = options.provider;
    this.#opts = resolveOptions(options);
    this.#trust = { peer: options.peer, trusted: options.trusted };
    this.#authorize = options.authorize;
    this.#injected = options.random;
    if (options.s0 && options.s0.length < 16) {
      throw new MissiveError(
        "usage",
        "session: the pre-shared secret s0 must be at least 16 bytes",
      );
    }
    this.#s0 = options.s0;
    this.#maxFrame = this.#opts.maxMessageSize + FRAME_OVERHEAD + 8192;
    // Sequence numbers start at a random value below 2^31 (SPEC §22.6).
    const r = this.#opts.random(4);
    this.#sendSeq = ((r[0] << 24) | (r[1] << 16) | (r[2] << 8) | r[3]) >>> 1;
  }

  /** The current state's name. */
  get state(): SessionState {
    return this.#state.name;
  }

  /** The peer's card, once the handshake proved it. */
  get peer(): Card | undefined {
    const s = this.#state;
    if (s.name === "await-ack" || s.name === "closed" || s.name === "failed") return s.peer;
    return this.#established()?.link.peer;
  }

  /** The current key ID (16 hex digits), once keys exist. */
  get keyId(): string | undefined {
    const s = this.#state;
    if (s.name === "await-ack") return s.cipher.idHex;
    if (s.name === "closed" || s.name === "failed") return s.keyId;
    return this.#established()?.link.cipher.idHex;
  }

  /** The error the session failed with, or the one its CLOSE was sent for. */
  get error(): MissiveError | undefined {
    const s = this.#state;
    return s.name === "failed" || s.name === "closing" ? s.error : undefined;
  }

  /** The largest frame accepted (SPEC §22.3), for the driver's transport. */
  get maxFrame(): number {
    return this.#maxFrame;
  }

  /**
   * Handles one input and returns what to do, in order. Inputs are handled one at a
   * time (the driver awaits each). A `send` the state or the size forbids is refused
   * by throwing, with nothing changed; any other failure ends the session (an `end`
   * output), never a throw.
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
          this.#link()!.data.enqueue(new Uint8Array(input.data));
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
      await this.#settle();
    } catch (e) {
      this.#abort(e);
    } finally {
      this.#handling = false;
    }
    return out;
  }

  #checkSend(data: Uint8Array): void {
    if (!acceptsSend(this.#state.name)) {
      throw this.error ??
        new MissiveError("session", `session: cannot send in state ${this.#state.name}`);
    }
    if (data.length > this.#opts.maxMessageSize) {
      throw new MissiveError(
        "too-large",
        `session: message larger than ${this.#opts.maxMessageSize}`,
      );
    }
  }

  // -------------------------------------------------------------------------------------
  // States

  #moveTo(next: State): void {
    checkTransition(this.#state.name, next.name);
    this.#state = next;
  }

  /** The established part of the state (in closing: the one CLOSE was sent from). */
  #established(): Established | undefined {
    return establishedOf(this.#state);
  }

  #link(): Link | undefined {
    return this.#established()?.link;
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

  #newLink(peer: Card, cipher: SessionCipher, peerSignedContext?: Bytes): Link {
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

  // -------------------------------------------------------------------------------------
  // Start and the first handshake (SPEC §22.5)

  async #start(): Promise<void> {
    if (this.#state.name !== "start") {
      throw new MissiveError("internal", "session: started twice");
    }
    if (this.#s0) this.#psk = await presharedKeys(this.#provider, this.#s0);
    if (this.#opts.handshakeTimeoutMs > 0) {
      this.#setTimer("handshake", this.#opts.handshakeTimeoutMs);
    }
    if (this.role === "client") {
      const hs = await initiate(this.#provider, this.#identity, this.#opts.random, INITIAL_CHAIN);
      this.#moveTo({ name: "hello-sent", hs });
      await this.#emit(T.HELLO, hs.helloBody, INITIAL_CHAIN);
    } else {
      // The first HELLO_ACK's ephemeral key is made while the client's HELLO is on its
      // way (a fixed-base multiplication that needs nothing from it).
      this.#moveTo({ name: "await-hello", ephemeral: this.#makeEphemeral() });
    }
    this.#armIdle(true);
  }

  #makeEphemeral(): Promise<Ephemeral> {
    const made = newEphemeral(this.#provider, this.#injected ?? this.#opts.random);
    made.catch(() => {}); // awaited by the answer, or erased at the end
    return made;
  }

  /** A signed frame: HELLO, HELLO_ACK, or a control message before keys exist. */
  async #receiveSigned(frame: Frame & { form: "signed" }): Promise<void> {
    const s = this.#state;
    if (!acceptsSigned(this.role, s, frame.type)) throw unexpected(frame.type, s.name);
    const first = frame.type === T.HELLO || frame.type === T.HELLO_ACK;
    let hc: Bytes | undefined;
    if (s.name === "await-hello") {
      // The server answers even a HELLO it refuses with a signed CLOSE bound to it.
      hc = await helloContext(this.#provider, INITIAL_CHAIN, frame.body);
      s.helloContext = hc;
    }
    const hello = first ? decodeHelloBody(frame.body) : undefined;
    let signer: Card | undefined = hello
      ? await decodeCard(this.#provider, hello.card)
      : s.name === "await-ack"
      ? s.peer
      : this.#link()?.peer;
    // The server verifies the client's signatures with C; the client the server's with HC.
    const context = this.role === "server"
      ? INITIAL_CHAIN
      : s.name === "hello-sent"
      ? s.hs.peerContext
      : this.#link()!.peerSignedContext!;
    // A fresh HELLO / HELLO_ACK: its X25519 and key derivation run while the signature is
    // checked; the result is used only if the frame proves valid. Not for a stale one:
    // the server keeps waiting and the client asks again, with the same ephemeral key.
    const stale = isStale(frame, this.#now, this.#opts.ttlMs);
    const fresh = hello && !stale ? hello : undefined;
    const answering = fresh && s.name === "await-hello"
      ? answer(this.#provider, this.#identity, this.#injected, {
        role: this.role,
        chain: INITIAL_CHAIN,
        helloBody: frame.body,
        peerEphemeral: fresh.ephemeralKey,
        psk: this.#psk,
        myContext: hc,
        ephemeral: this.#takeEphemeral(s),
      })
      : undefined;
    const completing = fresh && s.name === "hello-sent"
      ? complete(this.#provider, s.hs, {
        role: this.role,
        chain: INITIAL_CHAIN,
        ackBody: frame.body,
        peerEphemeral: fresh.ephemeralKey,
        psk: this.#psk,
      })
      : undefined;
    answering?.catch(() => {}); // awaited below, or dropped with the session
    completing?.catch(() => {});
    if (!signer) {
      // Client before HELLO_ACK: a refusal may come from any acceptable server card.
      for (const card of serverCandidates(this.#trust)) {
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
    if (frame.type === T.HELLO) {
      if (!answering) {
        // A stale HELLO may be a replay: the server keeps waiting for a fresh one.
        this.#event({ type: "discard", messageType: "HELLO", reason: "stale" });
        return;
      }
      return await this.#onClientHello(frame, signer, answering);
    }
    this.#recvSeq = frame.seq + 1;
    if (stale) return await this.#discardStale(frame);
    if (completing) return await this.#onServerHelloAck(signer, completing);
    await this.#dispatch(frame, frame.body);
  }

  #takeEphemeral(s: State): Promise<Ephemeral> | undefined {
    if (s.name !== "await-hello") return undefined;
    const made = s.ephemeral;
    s.ephemeral = undefined;
    return made;
  }

  /** Server: a verified HELLO from `card`; admit it and answer with HELLO_ACK. */
  async #onClientHello(
    frame: Frame,
    card: Card,
    answering: ReturnType<typeof answer>,
  ): Promise<void> {
    this.#recvSeq = frame.seq + 1;
    const admitted = this.#authorize
      ? await this.#authorize(card)
      : (this.#trust.trusted ?? []).some((t) => sameKeys(t, card));
    if (!admitted) {
      return await this.#violation(
        new MissiveError(
          "untrusted",
          `session: client ${card.address} (id ${toHex(card.id)}) is not trusted; ` +
            "add its card to the trusted list",
        ),
      );
    }
    const { ackBody, myContext, cipher } = await answering;
    this.#moveTo({ name: "await-ack", peer: card, cipher, helloContext: myContext });
    await this.#emit(T.HELLO_ACK, ackBody, myContext);
  }

  /** Client: the server's HELLO_ACK, signed by `card`; check it, derive, confirm by ACK. */
  async #onServerHelloAck(card: Card, completing: Promise<SessionCipher>): Promise<void> {
    const s = this.#state as StateNamed<"hello-sent">;
    try {
      checkServerCard(card, this.#trust);
    } catch (e) {
      return await this.#violation(e as MissiveError);
    }
    const cipher = await completing;
    this.#moveTo({ name: "open", link: this.#newLink(card, cipher, s.hs.peerContext) });
    await this.#emit(T.ACK, EMPTY);
    await this.#opened();
  }

  /** Server: the client's ACK under the new keys confirms them (await-ack → open). */
  async #onConfirmed(): Promise<void> {
    const s = this.#state as StateNamed<"await-ack">;
    this.#moveTo({ name: "open", link: this.#newLink(s.peer, s.cipher) });
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
    });
    this.#prepareRekeyEphemeral(link);
    await this.#pumpSend();
  }

  /** Server with re-keying on: the next re-key HELLO's key, made while data flows. */
  #prepareRekeyEphemeral(link: Link): void {
    if (this.role === "server" && this.#opts.rekeyAfter > 0 && !link.nextEphemeral) {
      link.nextEphemeral = this.#makeEphemeral();
    }
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
    const frame = decodeFrame(bytes, this.#maxFrame);
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
    if (!EXPECTED[name].includes(frame.type) || !this.#roleExpects(frame.type)) {
      throw unexpected(frame.type, name);
    }
    await this.#dispatch(frame, plaintext, cipher);
  }

  #roleExpects(type: MessageType): boolean {
    if (type === T.HELLO) return this.role === "client";
    if (type === T.HELLO_ACK) return this.role === "server";
    return true;
  }

  /** TTL rule (SPEC §22.7): a stale message is discarded and asked for again. */
  async #discardStale(frame: Frame): Promise<void> {
    this.#event({ type: "discard", messageType: messageTypeName(frame.type), reason: "stale" });
    await this.#requestResend();
  }

  /** A valid message, to the step that handles its type (SPEC §22.6.1). */
  async #dispatch(frame: Frame, body: Bytes, cipher?: SessionCipher): Promise<void> {
    if (frame.type !== T.RESEND_LAST) this.#progress();
    const s = this.#state;
    // Closing: a crossing re-key HELLO or DATA is ignored; the session is ending.
    if (s.name === "closing" && (frame.type === T.HELLO || frame.type === T.DATA)) return;
    switch (frame.type) {
      case T.HELLO:
        return await this.#onRekeyHello(frame, decodeSignedPart(body));
      case T.HELLO_ACK:
        return await this.#onRekeyHelloAck(frame, decodeSignedPart(body));
      case T.ACK: {
        checkEmptyBody(frame.type, body);
        if (s.name === "await-ack") return await this.#onConfirmed();
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
      case T.CLOSE_ACK:
        checkEmptyBody(frame.type, body);
        return this.#onCloseAck();
      case T.CLOSED_WITHOUT_ACK:
        return this.#onClosedWithoutAck(decodeCloseBody(body));
    }
  }

  // -------------------------------------------------------------------------------------
  // Re-key (SPEC §22.8)

  /** Server: counts acknowledged DATA; a re-key becomes due every `rekeyAfter`. */
  #countAcknowledged(count: number): void {
    const link = this.#link()!;
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

  /** True when delivering `unacknowledged` more DATA makes a re-key due (server). */
  #rekeyDueWith(link: Link, unacknowledged: number): boolean {
    return this.role === "server" && this.#opts.rekeyAfter > 0 &&
      link.sinceRekey + unacknowledged >= this.#opts.rekeyAfter;
  }

  /** Server: a re-key HELLO under the current keys (open → rekey-hello-sent). */
  async #startRekey(s: Open, dueAt: number): Promise<void> {
    const link = s.link;
    const made = link.nextEphemeral;
    link.nextEphemeral = undefined;
    const chain = link.cipher.chain;
    const hs = await initiate(
      this.#provider,
      this.#identity,
      this.#opts.random,
      chain,
      dueAt,
      made,
    );
    this.#moveTo({ name: "rekey-hello-sent", link, hs, dueAt });
    await this.#emit(T.HELLO, hs.helloBody, chain);
    this.#armIdle(true);
  }

  /** Client: the server's re-key HELLO (sealed signed part, context C), answered. */
  async #onRekeyHello(frame: Frame, part: SignedPart): Promise<void> {
    const s = this.#state as Open;
    const link = s.link;
    // The answer (card check, X25519, key derivation) runs while the signature is
    // checked; a failure surfaces once the signature verified.
    const answering = (async () => {
      const peerBody = this.#sameCard(link, part.body);
      const answered = await answer(this.#provider, this.#identity, this.#injected, {
        role: this.role,
        chain: link.cipher.chain,
        helloBody: part.body,
        peerEphemeral: peerBody.ephemeralKey,
        psk: this.#psk,
      });
      return { ...answered, acknowledged: peerBody.acknowledged };
    })();
    answering.catch(() => {});
    await verifyPart(this.#provider, link.peer, frame, part, link.cipher.chain, this.#psk);
    const { ackBody, myContext, cipher, acknowledged } = await answering;
    await this.#emit(T.HELLO_ACK, ackBody, myContext); // still under the current keys
    this.#moveTo({
      name: "rekey-await-ack",
      link,
      next: cipher,
      dueAt: acknowledged ?? link.acknowledged,
    });
    this.#armIdle(true);
  }

  /** Server: the client's re-key HELLO_ACK; switch keys and confirm with ACK under them. */
  async #onRekeyHelloAck(frame: Frame, part: SignedPart): Promise<void> {
    const e = this.#established();
    if (e?.name !== "rekey-hello-sent") throw unexpected(frame.type, this.#state.name);
    const link = e.link;
    const completing = (async () =>
      await complete(this.#provider, e.hs, {
        role: this.role,
        chain: link.cipher.chain,
        ackBody: part.body,
        peerEphemeral: this.#sameCard(link, part.body).ephemeralKey,
        psk: this.#psk,
      }))();
    completing.catch(() => {});
    await verifyPart(this.#provider, link.peer, frame, part, e.hs.peerContext, this.#psk);
    const next = await completing;
    await this.#emitAck(); // acknowledgements still due go out under the old keys
    const old = link.cipher;
    link.cipher = next;
    // Closing: the crossing CLOSE ends the session; no further re-key starts.
    const closing = this.#state.name === "closing";
    this.#reestablish({ name: "open", link, due: closing ? undefined : e.again });
    await this.#emit(T.ACK, EMPTY);
    old.erase();
    this.#prepareRekeyEphemeral(link);
    await this.#rekeyed(old, e.dueAt);
  }

  /** Client: the server's ACK under the new keys ends the re-key. */
  async #onRekeyAck(e: RekeyAwaitAck): Promise<void> {
    const link = e.link;
    const old = link.cipher;
    link.cipher = e.next;
    this.#reestablish({ name: "open", link });
    old.erase();
    await this.#rekeyed(old, e.dueAt);
  }

  async #rekeyed(old: SessionCipher, acknowledged: number): Promise<void> {
    this.#event({
      type: "rekey",
      keyId: this.#link()!.cipher.idHex,
      previousKeyId: old.idHex,
      acknowledged,
    });
    await this.#pumpSend();
  }

  /** A re-key HELLO / HELLO_ACK must carry the peer's own card again. */
  #sameCard(link: Link, body: Bytes) {
    const h = decodeHelloBody(body);
    if (!equalBytes(h.card, link.peer.bytes)) {
      throw new MissiveError("untrusted", "session: the peer changed its card during a re-key");
    }
    return h;
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

  // -------------------------------------------------------------------------------------
  // DATA (SPEC §22.6.2)

  /** Sends queued DATA the window allows now; no DATA while a re-key is due or running. */
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
    if (
      this.#opts.ack === "immediate" ||
      (arrival === "deliver" && this.#rekeyDueWith(link, link.data.unacknowledged))
    ) await this.#emitAck();
  }

  /** A DATA_ACK from the peer: acknowledges the sends it covers and refills the window. */
  async #onDataAck(index: number): Promise<void> {
    const count = this.#link()!.data.acknowledge(index);
    if (count > 0) {
      this.#out.push({ type: "acknowledged", count });
      this.#countAcknowledged(count);
    }
    await this.#pumpSend();
  }

  /** Sends the DATA_ACK that is due, if any (only once frames are sealed). */
  async #emitAck(): Promise<void> {
    const link = this.#link();
    const ack = link?.data.takeAck();
    if (!ack) return;
    await this.#emit(T.DATA_ACK, u64(ack.index));
    if (ack.count > 0) this.#countAcknowledged(ack.count);
  }

  // -------------------------------------------------------------------------------------
  // Frames out (SPEC §22.3, §22.5.3)

  /**
   * Emits one message as the next frame: signed (with `sign` as context) until this side
   * seals, then sealed under `cipher` or the current sending keys. A due DATA_ACK goes
   * first (SPEC §22.6.2).
   */
  async #emit(type: MessageType, body: Bytes, sign?: Bytes, cipher?: SessionCipher): Promise<void> {
    const e = this.#established();
    if (type !== T.DATA_ACK && e?.link.data.ackDue) await this.#emitAck();
    const seq = this.#sendSeq;
    if (seq >= Number.MAX_SAFE_INTEGER) {
      throw new MissiveError("session", "session: sequence numbers exhausted");
    }
    this.#sendSeq++;
    const header: FrameHeader = { seq, type, time: this.#now };
    // This side seals once it knows both sides hold the keys (SPEC §22.3).
    const sealWith = e
      ? cipher ?? (e.name === "rekey-await-ack" ? e.next : e.link.cipher)
      : undefined;
    if (type !== T.RESEND_LAST) this.#lastSent = { type, body, sign, cipher: sealWith };
    let frame: Bytes;
    if (sealWith) {
      const plaintext = sign ? encodeSignedPart(await this.#sign(header, body, sign)) : body;
      frame = await sealWith.seal(header, plaintext);
    } else {
      if (!sign) throw new MissiveError("internal", "session: signed frame without context");
      frame = encodeFrame({ ...header, form: "signed", ...(await this.#sign(header, body, sign)) });
    }
    this.#out.push({ type: "write", frame });
  }

  #sign(header: FrameHeader, body: Bytes, context: Bytes): Promise<SignedPart> {
    return signPart(this.#provider, this.#identity, header, body, context, this.#psk);
  }

  /** Re-sends the last message as a fresh frame (RESEND_LAST, SPEC §22.7). */
  async #resendLast(): Promise<void> {
    const last = this.#lastSent;
    if (!last) return;
    // Under the keys it was first sealed with while those are held, else the current.
    const cipher = last.cipher && !last.cipher.erased ? last.cipher : undefined;
    await this.#emit(last.type, last.body, last.sign, cipher);
  }

  // -------------------------------------------------------------------------------------
  // Timers and close (SPEC §22.7, §22.9)

  /** A valid expected message arrived: the resend counters start over. */
  #progress(): void {
    this.#resends = 0;
    this.#resendsReceived = 0;
    this.#armIdle(true);
  }

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

  /**
   * Starts (or with `restart`, restarts) the idle timer while a message is due. A restart
   * only moves the deadline: a timer that fires early is set again for the rest, so a busy
   * session does not clear and set a timer for every frame.
   */
  #armIdle(restart: boolean): void {
    if (!this.#waiting()) {
      if (this.#idleArmed) this.#out.push({ type: "clear-timer", timer: "idle" });
      this.#idleArmed = false;
      return;
    }
    if (this.#idleArmed && !restart) return;
    this.#idleDeadline = this.#now + this.#opts.idleTimeoutMs;
    if (!this.#idleArmed) this.#setIdle(this.#opts.idleTimeoutMs);
  }

  #setIdle(ms: number): void {
    this.#idleArmed = true;
    this.#setTimer("idle", ms);
  }

  #setTimer(timer: TimerName, ms: number): void {
    this.#out.push({ type: "set-timer", timer, at: this.#now + ms });
  }

  async #timer(timer: TimerName): Promise<void> {
    const s = this.#state;
    if (timer === "handshake") {
      if (s.name === "hello-sent" || s.name === "await-hello" || s.name === "await-ack") {
        await this.#violation(
          new MissiveError(
            "timeout",
            `session: the handshake did not complete within ${this.#opts.handshakeTimeoutMs} ms`,
          ),
        );
      }
      return;
    }
    if (timer === "close") return await this.#closeTimer();
    if (!this.#idleArmed) return;
    this.#idleArmed = false;
    // Never longer than the idle time, should the clock have been set back.
    const left = Math.min(this.#idleDeadline - this.#now, this.#opts.idleTimeoutMs);
    if (left > 0) return this.#setIdle(left);
    if (!this.#waiting()) return;
    if (s.name === "await-hello") {
      return this.#finish(
        "failed",
        new MissiveError("timeout", "session: no HELLO from the client in time"),
      );
    }
    await this.#requestResend();
  }

  /** Sends RESEND_LAST, or CLOSE once `maxResends` went unanswered (SPEC §22.7). */
  async #requestResend(): Promise<void> {
    if (this.#resends >= this.#opts.maxResends) {
      return await this.#sendClose(
        reasonFor(new MissiveError("timeout", "")),
        `no expected message after ${this.#resends} RESEND_LAST`,
        new MissiveError(
          "timeout",
          `session: the peer did not answer ${this.#resends} RESEND_LAST requests`,
        ),
      );
    }
    this.#resends++;
    this.#event({ type: "resend", direction: "sent", count: this.#resends });
    await this.#emit(T.RESEND_LAST, EMPTY, this.#preKeyContext());
    this.#armIdle(true);
  }

  /** The peer asks for our last message again. */
  async #onResendRequest(): Promise<void> {
    this.#resendsReceived++;
    this.#event({ type: "resend", direction: "received", count: this.#resendsReceived });
    if (this.#resendsReceived > this.#opts.maxResends + 1) {
      throw new MissiveError("session", "session: the peer asks for RESEND_LAST too often");
    }
    await this.#resendLast();
  }

  /** `close()`: CLOSE once drained (see #settle); before the keys, the session just ends. */
  #close(): void {
    const s = this.#state;
    if (s.name === "closing") return;
    const e = this.#established();
    if (!e) {
      return this.#finish(
        "failed",
        new MissiveError("session", "session: closed during the handshake"),
      );
    }
    e.link.closeWhenDrained = true;
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
    const body = encodeCloseBody({ reason, text: text.slice(0, MAX_CLOSE_TEXT) });
    const e = this.#established();
    if (!e) {
      const context = this.#preKeyContext();
      if (context) await this.#emit(T.CLOSE, body, context);
      return this.#finish("failed", error ?? new MissiveError("session", text), {
        by: "local",
        reason,
        text,
        acknowledged: false,
      });
    }
    this.#failSends(e.link, error ?? new MissiveError("session", "session: closing"));
    this.#moveTo({ name: "closing", during: e, reason, text, resends: 0, error });
    this.#armIdle(false);
    await this.#emit(T.CLOSE, body);
    this.#setTimer("close", this.#opts.closeTimeoutMs);
  }

  async #closeTimer(): Promise<void> {
    const s = this.#state;
    if (s.name !== "closing") return;
    const body = encodeCloseBody({ reason: s.reason, text: s.text.slice(0, MAX_CLOSE_TEXT) });
    if (s.resends < this.#opts.maxCloseResends) {
      s.resends++;
      await this.#emit(T.CLOSE, body);
      this.#setTimer("close", this.#opts.closeTimeoutMs);
      return;
    }
    await this.#emit(T.CLOSED_WITHOUT_ACK, body);
    this.#finish("failed", s.error, {
      by: "local",
      reason: s.reason,
      text: s.text,
      acknowledged: false,
    });
  }

  /** The peer's CLOSE: acknowledged when sealed; the session ends. */
  async #onPeerClose(frame: Frame, c: { reason: number; text: string }): Promise<void> {
    const error = c.reason === REASON_NORMAL ? undefined : new MissiveError(
      codeForReason(c.reason),
      `session: the peer closed the session (reason ${c.reason}): ${c.text}`,
      { cause: { by: "peer", reason: c.reason, text: c.text } satisfies PeerClose },
    );
    const sealed = frame.form === "sealed";
    if (sealed && this.#established()) await this.#emit(T.CLOSE_ACK, EMPTY);
    const final = error ?? this.#closeError() ??
      (sealed
        ? undefined
        : new MissiveError("session", "session: the peer closed during the handshake"));
    this.#finish(final ? "failed" : "closed", final, {
      by: "peer",
      reason: c.reason,
      text: c.text,
      acknowledged: sealed,
    });
  }

  /** A signed CLOSE before HELLO_ACK that no acceptable server card verifies. */
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

  /** CLOSE_ACK: our CLOSE was acknowledged. */
  #onCloseAck(): void {
    const error = this.#closeError();
    this.#finish(error ? "failed" : "closed", error, { by: "local", acknowledged: true });
  }

  /** CLOSED_WITHOUT_ACK: the peer gave up waiting for our CLOSE_ACK. */
  #onClosedWithoutAck(c: { reason: number; text: string }): void {
    const error = this.#closeError();
    this.#finish(error ? "failed" : "closed", error, {
      by: "peer",
      reason: c.reason,
      text: c.text,
      acknowledged: false,
    });
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
    const peer = this.peer;
    const keyId = this.keyId;
    const link = this.#link();
    if (link) {
      this.#failSends(
        link,
        error ?? new MissiveError("session", "session: closed before the peer acknowledged"),
      );
    }
    eraseState(s);
    this.#moveTo(
      final === "closed" ? { name: "closed", peer, keyId } : { name: "failed", error, peer, keyId },
    );
    this.#idleArmed = false;
    this.#event({
      type: "close",
      by: close?.by ?? "local",
      reason: close?.reason ?? (error ? reasonFor(error) : REASON_NORMAL),
      text: close?.text ?? error?.message ?? "closed",
      acknowledged: close?.acknowledged ?? false,
    });
    this.#out.push({ type: "end", state: final, error });
  }

  #event(event: SessionEvent): void {
    this.#out.push({ type: "event", event });
  }
}

/** Erases every key a state holds (best effort: ephemeral keys made ahead included). */
function eraseState(s: State): void {
  const dropEphemeral = (p?: Promise<Ephemeral>) =>
    void p?.then((eph) => wipe(eph.privateKey), () => {});
  switch (s.name) {
    case "hello-sent":
      wipe(s.hs.eph?.privateKey);
      return;
    case "await-hello":
      return dropEphemeral(s.ephemeral);
    case "await-ack":
      return s.cipher.erase();
    case "closing":
      return eraseState(s.during);
    case "open":
    case "rekey-hello-sent":
    case "rekey-await-ack":
      s.link.cipher.erase();
      dropEphemeral(s.link.nextEphemeral);
      if (s.name === "rekey-hello-sent") wipe(s.hs.eph?.privateKey);
      if (s.name === "rekey-await-ack") s.next.erase();
      return;
  }
}
