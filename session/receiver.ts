/**
 * Frames in (SPEC §22.4, §22.6): the receive loop and the checks every frame passes, in
 * the spec's order — key ID, sequence number, signature or tag, TTL, expected type —
 * then the dispatch of a valid message to the part that handles it. A broken rule is
 * answered with CLOSE (rules.ts). Internal to the session (core.ts).
 * @module
 */
import { setImmediate } from "node:timers";
import { type Bytes, equalBytes, toHex } from "../core/bytes.ts";
import { isMissiveError, MissiveError } from "../core/errors.ts";
import { type Card, decodeCard } from "../keys/card.ts";
import type { SessionCore } from "./core.ts";
import { type Handshake, serverCandidates, verifyPart } from "./handshake.ts";
import {
  type DirectionKey,
  helloContext,
  INITIAL_CHAIN,
  nonceAt,
  sealedAad,
  SESSION_AEAD,
  type SessionKeys,
} from "./keyschedule.ts";
import { EXPECTED, isTerminal } from "./machine.ts";
import {
  checkEmptyBody,
  decodeAckBody,
  decodeCloseBody,
  decodeFrame,
  decodeHelloBody,
  decodeSignedPart,
  type Frame,
  MessageType,
  messageTypeName,
  type SignedPart,
} from "./messages.ts";

const T = MessageType;

/**
 * Frames handled before the receive loop yields to the event loop. A large window's DATA
 * arriving in one read would otherwise be handled in one turn, its one DATA_ACK leaving
 * only at the end: the sender idles while the receiver works and the other way round.
 * Yielding lets each batch's DATA_ACK out while the next batch is handled (docs/
 * BENCHMARKS.md, Session); batches of 16 cost more in DATA_ACKs than they gained.
 */
const RECEIVE_BATCH = 64;

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

export class FrameReceiver {
  readonly #core: SessionCore;
  /** The sequence number the next frame must carry, once the peer's first is known. */
  #recvSeq?: number;
  /** True once a sealed frame from the peer was accepted. */
  #peerSealed = false;

  constructor(core: SessionCore) {
    this.#core = core;
  }

  /** The next frame must carry `seq` (set by the first HELLO). */
  expectNext(seq: number): void {
    this.#recvSeq = seq;
  }

  /** Reads frames until the transport ends or the session does. */
  async pump(): Promise<void> {
    const core = this.#core;
    try {
      let inTurn = 0;
      for await (const bytes of core.transport.frames()) {
        if (++inTurn > RECEIVE_BATCH) {
          inTurn = 1;
          await nextTurn();
        }
        // A re-key being started completes before the next frame is looked at.
        await core.busy;
        if (isTerminal(core.state)) break;
        await this.#receive(bytes);
        await core.inbox.waitForSpace();
        if (isTerminal(core.state)) break;
      }
      if (!isTerminal(core.state)) {
        core.finish(
          "failed",
          core.closeError ?? new MissiveError(
            "network",
            `session: ${core.transport.remote} closed the connection without CLOSE`,
          ),
        );
      }
    } catch (e) {
      core.abort(e);
    }
  }

  async #receive(bytes: Uint8Array): Promise<void> {
    try {
      await this.#receiveFrame(bytes);
    } catch (e) {
      if (!isMissiveError(e) || e.code === "internal") throw e;
      await this.#core.rules.violation(e);
    }
  }

  async #receiveFrame(bytes: Uint8Array): Promise<void> {
    const core = this.#core;
    const frame = decodeFrame(bytes, core.maxFrame);
    // Order of checks (SPEC §22.4): key ID, sequence number, tag, TTL, type.
    const keys = frame.form === "sealed" ? this.#keysFor(frame) : undefined;
    if (this.#recvSeq !== undefined && frame.seq !== this.#recvSeq) {
      throw new MissiveError(
        "session",
        `session: wrong sequence number ${frame.seq}, expected ${this.#recvSeq} ` +
          "(a replayed, reordered or dropped message)",
      );
    }
    const expected = EXPECTED[core.state];
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

  /** A signed frame: HELLO, HELLO_ACK, or a control message before keys exist. */
  async #receiveSigned(
    frame: Frame & { form: "signed" },
    expected: readonly MessageType[],
  ): Promise<void> {
    const core = this.#core;
    const acceptsSigned = core.role === "server"
      ? core.state === "await-hello" || core.state === "await-ack"
      : !this.#peerSealed;
    const wrongHello = (frame.type === T.HELLO && core.state !== "await-hello") ||
      (frame.type === T.HELLO_ACK && core.state !== "hello-sent");
    if (!acceptsSigned || wrongHello || !expected.includes(frame.type)) {
      throw this.#unexpected(frame.type);
    }
    const firstHello = frame.type === T.HELLO || frame.type === T.HELLO_ACK;
    if (frame.type === T.HELLO) {
      // The server answers even a HELLO it refuses with a signed CLOSE bound to it.
      core.hs = {
        helloBody: frame.body,
        myContext: await helloContext(core.provider, INITIAL_CHAIN, frame.body),
        peerContext: INITIAL_CHAIN,
      };
    }
    const hello = firstHello ? decodeHelloBody(frame.body) : undefined;
    let signer: Card | undefined = core.peer;
    if (hello) signer = await decodeCard(core.provider, hello.card);
    const context = core.hs?.peerContext ?? INITIAL_CHAIN;
    // A fresh HELLO / HELLO_ACK: its X25519 and key derivation run while the signature is
    // checked; the result is used only if the frame proves valid. Not for a stale one:
    // the server keeps waiting and the client asks again, with the same ephemeral key.
    const stale = this.#isStale(frame);
    const fresh = hello && !stale ? hello : undefined;
    const answering = fresh && frame.type === T.HELLO
      ? core.exchange.prepareAnswer(frame.body, fresh.ephemeralKey)
      : undefined;
    const completing = fresh && frame.type === T.HELLO_ACK
      ? core.exchange.prepareCompletion(frame.body, fresh.ephemeralKey)
      : undefined;
    if (!signer) {
      // Client before HELLO_ACK: a refusal may come from any acceptable server card.
      for (const card of serverCandidates(core.serverTrust)) {
        try {
          await verifyPart(core.provider, card, frame, frame, context, core.psk);
          signer = card;
          break;
        } catch { /* try the next card */ }
      }
      if (!signer && frame.type === T.CLOSE) return core.rules.peerClosedUnverified(frame.body);
      if (!signer) throw new MissiveError("auth-failed", "session: signed by an unknown key");
    } else {
      await verifyPart(core.provider, signer, frame, frame, context, core.psk);
    }
    if (frame.type === T.HELLO) {
      if (!answering) {
        // A stale HELLO may be a replay: the server keeps waiting for a fresh one.
        core.event({ type: "discard", messageType: "HELLO", reason: "stale" });
        return;
      }
      return await core.exchange.onClientHello(frame, signer, answering);
    }
    this.#recvSeq = frame.seq + 1;
    if (stale) return this.#discardStale(frame);
    if (completing) return await core.exchange.onServerHelloAck(signer, completing);
    await this.#dispatch(frame, frame.body);
  }

  /** The keys a sealed frame's key ID names; an old or unknown ID ends the session. */
  #keysFor(frame: Frame & { form: "sealed" }): SessionKeys {
    const core = this.#core;
    let keys: SessionKeys | undefined;
    if (core.keys && equalBytes(frame.keyId, core.keys.id)) keys = core.keys;
    else if (core.nextKeys && equalBytes(frame.keyId, core.nextKeys.id)) {
      if (core.role !== "client" || frame.type !== T.ACK) throw this.#unexpected(frame.type);
      keys = core.nextKeys;
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
    const direction: DirectionKey = this.#core.role === "client"
      ? keys.serverToClient
      : keys.clientToServer;
    const plaintext = await this.#core.provider.aeadDecrypt(
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
    return Math.abs(this.#core.clock.now() - frame.time) > this.#core.opts.ttlMs;
  }

  /** TTL rule (SPEC §22.7): a stale message is discarded and asked for again. */
  #stale(frame: Frame): boolean {
    if (!this.#isStale(frame)) return false;
    this.#discardStale(frame);
    return true;
  }

  #discardStale(frame: Frame): void {
    const messageType = messageTypeName(frame.type);
    this.#core.event({ type: "discard", messageType, reason: "stale" });
    this.#core.rules.requestResend();
  }

  #roleExpects(type: MessageType): boolean {
    if (type === T.HELLO) return this.#core.role === "client";
    if (type === T.HELLO_ACK) return this.#core.role === "server";
    return true;
  }

  #unexpected(type: MessageType): MissiveError {
    return new MissiveError(
      "session",
      `session: unexpected ${messageTypeName(type)} in state ${this.#core.state}`,
    );
  }

  /** A valid message, to the part that handles its type (SPEC §22.6). */
  async #dispatch(frame: Frame, body: Bytes): Promise<void> {
    const core = this.#core;
    if (frame.type !== T.RESEND_LAST) core.rules.progress();
    // Closing: a crossing re-key HELLO or DATA is ignored; the session is ending.
    if (core.state === "closing" && (frame.type === T.HELLO || frame.type === T.DATA)) return;
    switch (frame.type) {
      // Re-key HELLO / HELLO_ACK: the key exchange runs while the signature is checked,
      // and is used only once it verified.
      case T.HELLO: {
        const part = decodeSignedPart(body);
        const answering = core.rekey.prepareRekeyAnswer(part.body);
        await this.#verifySealedPart(frame, part);
        return await core.rekey.onRekeyHello(answering);
      }
      case T.HELLO_ACK: {
        const part = decodeSignedPart(body);
        const completing = core.rekey.prepareRekeyCompletion(part.body);
        await this.#verifySealedPart(frame, part);
        return await core.rekey.onRekeyHelloAck(completing);
      }
      case T.ACK:
        checkEmptyBody(frame.type, body);
        if (core.state === "await-ack") return core.exchange.onConfirmed();
        if (core.nextKeys) return core.rekey.onRekeyAck(); // rekey-await-ack or closing
        throw this.#unexpected(frame.type);
      case T.DATA:
        return core.sender.onData(body);
      case T.DATA_ACK:
        return core.sender.onDataAck(decodeAckBody(body));
      case T.RESEND_LAST:
        checkEmptyBody(frame.type, body);
        return core.rules.onResendRequest();
      case T.CLOSE:
        return await core.rules.onPeerClose(frame, decodeCloseBody(body));
      case T.CLOSE_ACK:
        checkEmptyBody(frame.type, body);
        return core.rules.onCloseAck();
      case T.CLOSED_WITHOUT_ACK:
        return core.rules.onClosedWithoutAck(decodeCloseBody(body));
    }
  }

  /** Verifies the signed part inside a sealed re-key HELLO / HELLO_ACK. */
  async #verifySealedPart(frame: Frame, part: SignedPart): Promise<void> {
    const core = this.#core;
    const context = frame.type === T.HELLO ? core.chain : (core.hs as Handshake).peerContext;
    await verifyPart(core.provider, core.provenPeer, frame, part, context, core.psk);
  }
}
