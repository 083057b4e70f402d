/**
 * The handshake driver (SPEC §22.5): the client's HELLO, the server's answer, key
 * confirmation by ACK, and the server's ephemeral keys made ahead of need. The crypto is
 * in handshake.ts; this decides when and in which state; re-keys are in rekey.ts.
 * Internal to the session (core.ts).
 * @module
 */
import { type Bytes, toHex, wipe } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
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
import { INITIAL_CHAIN, type SessionKeys } from "./keyschedule.ts";
import { type Frame, MessageType } from "./messages.ts";

/** The server's answer to a HELLO: the HELLO_ACK body and the keys it makes. */
export type Answer = Awaited<ReturnType<typeof answer>>;

const T = MessageType;
const EMPTY: Bytes = new Uint8Array(0);

export class KeyExchange {
  readonly #core: SessionCore;
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
  takeEphemeral(): Promise<Ephemeral> | undefined {
    const made = this.#ephemeral;
    this.#ephemeral = undefined;
    return made;
  }

  /** Server with re-keying on: the next re-key HELLO's key, made while data flows. */
  prepareRekeyEphemeral(): void {
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
    const ephemeral = this.takeEphemeral();
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
    this.prepareRekeyEphemeral();
    core.sender.pumpSend();
  }
}
