/**
 * The handshake and re-key driver (SPEC §22.5, §22.8): the client's HELLO, the server's
 * answer, key confirmation by ACK, and the re-key the server starts after `rekeyAfter`
 * acknowledged DATA — under the current keys, with data queued meanwhile and old keys
 * erased. The crypto is in handshake.ts; this decides when and in which state. Internal
 * to the session (core.ts).
 * @module
 */
import { type Bytes, equalBytes, toHex, wipe } from "../bytes.ts";
import { MissiveError } from "../errors.ts";
import { type Card, sameKeys } from "../keys/card.ts";
import type { SessionCore } from "./core.ts";
import {
  answer,
  checkServerCard,
  complete,
  type Ephemeral,
  type Handshake,
  initiate,
  newEphemeral,
} from "./handshake.ts";
import { eraseKeys, INITIAL_CHAIN, type SessionKeys } from "./keyschedule.ts";
import { decodeHelloBody, type Frame, MessageType } from "./messages.ts";

/** The server's answer to a HELLO: the HELLO_ACK body and the keys it makes. */
export type Answer = Awaited<ReturnType<typeof answer>>;

const T = MessageType;
const EMPTY: Bytes = new Uint8Array(0);

export class KeyExchange {
  readonly #core: SessionCore;
  /** Acknowledged DATA (both directions) in all, and since the last re-key began. */
  #acknowledged = 0;
  #sinceRekey = 0;
  /** The acknowledged count a due re-key was triggered at (SPEC §22.8). */
  #rekeyDueAt = 0;
  #rekeyPending = false;
  /**
   * Server: the ephemeral key of its next HELLO_ACK or re-key HELLO, made while waiting
   * (on accept, and once keys are in place with re-keying on); see `prepareEphemeral`.
   */
  #ephemeral?: Promise<Ephemeral>;

  constructor(core: SessionCore) {
    this.#core = core;
  }

  /** Client: sends HELLO with a fresh ephemeral key (state start → hello-sent). */
  async startClient(): Promise<void> {
    const core = this.#core;
    core.moveTo("hello-sent");
    core.hs = await initiate(core.provider, core.identity, core.opts.random, INITIAL_CHAIN);
    void core.receiver.pump();
    void core.sender.send(T.HELLO, core.hs.helloBody, INITIAL_CHAIN);
    core.rules.armIdle(true);
  }

  /**
   * Server, on accept: makes the ephemeral key of the first HELLO_ACK while the client's
   * HELLO is still on its way (a fixed-base multiplication that needs nothing from it).
   */
  prepareEphemeral(): void {
    const core = this.#core;
    this.#ephemeral = newEphemeral(core.provider, core.random ?? core.opts.random);
    this.#ephemeral.catch(() => {}); // awaited by the answer, or erased at the end
  }

  /** Takes the ephemeral key made beforehand, if any. */
  #takeEphemeral(): Promise<Ephemeral> | undefined {
    const made = this.#ephemeral;
    this.#ephemeral = undefined;
    return made;
  }

  /** Server with re-keying on: the next re-key HELLO's key, made while data flows. */
  #prepareRekeyEphemeral(): void {
    const core = this.#core;
    if (core.role === "server" && core.opts.rekeyAfter > 0 && !this.#ephemeral) {
      this.prepareEphemeral();
    }
  }

  /** The session ended: an ephemeral key made and never used is erased. */
  dropEphemeral(): void {
    void this.#ephemeral?.then((eph) => wipe(eph.privateKey), () => {});
    this.#ephemeral = undefined;
  }

  /**
   * Server: starts the answer to a first HELLO (ephemeral key, X25519, key derivation)
   * while the receiver still checks its signature; `onClientHello` uses it only once the
   * HELLO proved valid and its sender admitted.
   */
  prepareAnswer(helloBody: Bytes, peerEphemeral: Uint8Array): Promise<Answer> {
    const core = this.#core;
    const ephemeral = this.#takeEphemeral();
    const answering = answer(core.provider, core.identity, core.random, {
      chain: INITIAL_CHAIN,
      helloBody,
      peerEphemeral,
      psk: core.psk,
      myContext: (core.hs as Handshake).myContext, // set when the HELLO arrived
      ephemeral,
    });
    answering.catch(() => {}); // awaited, or dropped with the session
    return answering;
  }

  /** Server: a verified HELLO from `card`; admit it and answer with HELLO_ACK. */
  async onClientHello(frame: Frame, card: Card, answering: Promise<Answer>): Promise<void> {
    const core = this.#core;
    const hs = core.hs as Handshake; // set when the HELLO arrived (receiver.ts)
    core.peer = card;
    core.receiver.expectNext(frame.seq + 1);
    const admitted = core.authorize
      ? await core.authorize(card)
      : (core.serverTrust.trusted ?? []).some((t) => sameKeys(t, card));
    if (!admitted) {
      return await core.rules.violation(
        new MissiveError(
          "untrusted",
          `session: client ${card.address} (id ${toHex(card.id)}) is not trusted; ` +
            "add its card to the trusted list",
        ),
      );
    }
    const { ackBody, keys } = await answering;
    core.keys = keys;
    core.moveTo("await-ack");
    void core.sender.send(T.HELLO_ACK, ackBody, hs.myContext);
  }

  /**
   * Client: starts deriving the keys from a fresh HELLO_ACK while the receiver checks
   * its signature; `onServerHelloAck` uses them only once the HELLO_ACK proved valid.
   */
  prepareCompletion(ackBody: Bytes, peerEphemeral: Uint8Array): Promise<SessionKeys> {
    const core = this.#core;
    const completing = complete(core.provider, core.hs as Handshake, {
      chain: INITIAL_CHAIN,
      ackBody,
      peerEphemeral,
      psk: core.psk,
    });
    completing.catch(() => {}); // awaited, or dropped with the session
    return completing;
  }

  /** Client: the server's HELLO_ACK, signed by `card`; check it, derive, confirm by ACK. */
  async onServerHelloAck(card: Card, completing: Promise<SessionKeys>): Promise<void> {
    const core = this.#core;
    try {
      checkServerCard(card, core.serverTrust);
    } catch (e) {
      return await core.rules.violation(e as MissiveError);
    }
    core.keys = await completing;
    core.chain = core.keys.chain;
    core.peer = card;
    core.sender.sealedOut = true;
    core.moveTo("open");
    void core.sender.send(T.ACK, EMPTY);
    this.#opened();
  }

  /** Server: the client's ACK under the new keys confirms them (await-ack → open). */
  onConfirmed(): void {
    const core = this.#core;
    core.chain = core.currentKeys.chain;
    core.sender.sealedOut = true;
    core.moveTo("open");
    this.#opened();
  }

  #opened(): void {
    const core = this.#core;
    const peer = core.provenPeer;
    core.event({
      type: "handshake",
      role: core.role,
      keyId: core.currentKeys.idHex,
      peer: peer.address,
      peerId: toHex(peer.id),
    });
    core.handshakeComplete();
    this.#prepareRekeyEphemeral();
    core.sender.pumpSend();
  }

  /** True when delivering `unacknowledged` more DATA makes a re-key due (server). */
  rekeyDueWith(unacknowledged: number): boolean {
    const core = this.#core;
    return core.role === "server" && core.opts.rekeyAfter > 0 &&
      this.#sinceRekey + unacknowledged >= core.opts.rekeyAfter;
  }

  /** Counts acknowledged DATA; the server starts a re-key at `rekeyAfter` (SPEC §22.8). */
  countAcknowledged(count: number): void {
    const core = this.#core;
    this.#acknowledged += count;
    this.#sinceRekey += count;
    if (core.role !== "server" || core.opts.rekeyAfter === 0) return;
    if (this.#sinceRekey < core.opts.rekeyAfter || this.#rekeyPending) return;
    this.#rekeyDueAt = this.#acknowledged;
    this.#sinceRekey = 0;
    if (core.state === "open") core.busy = this.#startRekey().catch((e) => core.abort(e));
    else if (core.state === "rekey-hello-sent") this.#rekeyPending = true;
  }

  /** Server: a re-key HELLO under the current keys (open → rekey-hello-sent). */
  async #startRekey(): Promise<void> {
    const core = this.#core;
    this.#rekeyPending = false;
    core.moveTo("rekey-hello-sent");
    const chain = core.chain;
    const hs = await initiate(
      core.provider,
      core.identity,
      core.opts.random,
      chain,
      this.#rekeyDueAt,
      this.#takeEphemeral(),
    );
    if (core.state !== "rekey-hello-sent") return;
    core.hs = hs;
    void core.sender.send(T.HELLO, hs.helloBody, chain);
    core.rules.armIdle(true);
  }

  /**
   * Client: starts the answer to the server's re-key HELLO (the card check, X25519, key
   * derivation) while the receiver checks the HELLO's signature; failures surface when
   * `onRekeyHello` awaits it, after the signature.
   */
  prepareRekeyAnswer(helloBody: Bytes): Promise<Answer & { acknowledged?: number }> {
    const core = this.#core;
    const answering = (async () => {
      const peerBody = this.#checkSameCard(helloBody);
      const answered = await answer(core.provider, core.identity, core.random, {
        chain: core.chain,
        helloBody,
        peerEphemeral: peerBody.ephemeralKey,
        psk: core.psk,
      });
      return { ...answered, acknowledged: peerBody.acknowledged };
    })();
    answering.catch(() => {}); // awaited, or dropped with the session
    return answering;
  }

  /** Client: the server's verified re-key HELLO, under the current keys. */
  async onRekeyHello(answering: ReturnType<KeyExchange["prepareRekeyAnswer"]>): Promise<void> {
    const core = this.#core;
    core.moveTo("rekey-await-ack");
    const { ackBody, keys, hs, acknowledged } = await answering;
    if (core.state !== "rekey-await-ack") return;
    core.nextKeys = keys;
    core.hs = { ...hs, dueAt: acknowledged ?? this.#acknowledged };
    void core.sender.send(T.HELLO_ACK, ackBody, hs.myContext);
    core.sender.sendNext = true;
    core.rules.armIdle(true);
  }

  /**
   * Server: starts deriving the new keys from the client's re-key HELLO_ACK while the
   * receiver checks its signature; failures surface in `onRekeyHelloAck`.
   */
  prepareRekeyCompletion(ackBody: Bytes): Promise<SessionKeys> {
    const core = this.#core;
    const hs = core.hs as Handshake;
    const completing = (async () =>
      await complete(core.provider, hs, {
        chain: core.chain,
        ackBody,
        peerEphemeral: this.#checkSameCard(ackBody).ephemeralKey,
        psk: core.psk,
      }))();
    completing.catch(() => {}); // awaited, or dropped with the session
    return completing;
  }

  /** Server: the client's verified re-key HELLO_ACK; switch keys and confirm with ACK. */
  async onRekeyHelloAck(completing: Promise<SessionKeys>): Promise<void> {
    const core = this.#core;
    const hs = core.hs as Handshake;
    const next = await completing;
    if (core.state !== "rekey-hello-sent" && core.state !== "closing") return;
    core.sender.emitAck(); // acknowledgements still due go out under the old keys
    const old = core.currentKeys;
    core.keys = next;
    core.chain = next.chain;
    void core.sender.send(T.ACK, EMPTY);
    void core.sender.afterWrites(() => eraseKeys(old));
    // Closing: the crossing CLOSE ends the session; no further re-key starts.
    const reopened = core.state === "rekey-hello-sent";
    if (reopened) core.moveTo("open");
    this.#rekeyed(old, hs.dueAt ?? this.#acknowledged);
    this.#prepareRekeyEphemeral();
    if (this.#rekeyPending && reopened) {
      core.busy = this.#startRekey().catch((e) => core.abort(e));
    }
  }

  /** Client: the ACK under the new keys ends the re-key. */
  onRekeyAck(): void {
    const core = this.#core;
    const old = core.currentKeys;
    core.keys = core.nextKeys;
    core.nextKeys = undefined;
    core.sender.sendNext = false;
    core.chain = core.currentKeys.chain;
    void core.sender.afterWrites(() => eraseKeys(old));
    if (core.state === "rekey-await-ack") core.moveTo("open");
    this.#rekeyed(old, core.hs?.dueAt ?? this.#acknowledged);
  }

  #rekeyed(old: SessionKeys, acknowledged: number): void {
    const core = this.#core;
    core.event({
      type: "rekey",
      keyId: core.currentKeys.idHex,
      previousKeyId: old.idHex,
      acknowledged,
    });
    core.checkDrained();
    core.sender.pumpSend();
  }

  /** A re-key HELLO / HELLO_ACK must carry the peer's own card again. */
  #checkSameCard(body: Bytes) {
    const h = decodeHelloBody(body);
    if (!equalBytes(h.card, this.#core.provenPeer.bytes)) {
      throw new MissiveError("untrusted", "session: the peer changed its card during a re-key");
    }
    return h;
  }
}
