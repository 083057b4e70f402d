/**
 * Frames out (SPEC §22.4, §22.5.3, §22.6.2): sequence numbers, sealing under the right
 * keys or signing before keys exist, one ordered write chain, the last message kept for
 * RESEND_LAST, and the DATA flow — sending under the window and acknowledging what
 * arrived. Internal to the session (core.ts).
 * @module
 */
import { setImmediate } from "node:timers";
import type { Bytes } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import type { SessionCore } from "./core.ts";
import { signPart } from "./handshake.ts";
import { nonceAt, sealedAad, SESSION_AEAD, type SessionKeys } from "./keyschedule.ts";
import { canSendData, isTerminal } from "./machine.ts";
import {
  decodeDataBody,
  encodeDataBody,
  encodeFrame,
  encodeSignedPart,
  type FrameHeader,
  MessageType,
  type SignedPart,
  u64,
} from "./messages.ts";

const T = MessageType;

/** What RESEND_LAST re-sends: the last message, as a fresh frame. */
interface LastSent {
  type: MessageType;
  body: Bytes;
  signContext?: Bytes;
  keys?: SessionKeys;
}

export class FrameSender {
  readonly #core: SessionCore;
  #sendSeq: number;
  #lastSent?: LastSent;
  #writeChain: Promise<void> = Promise.resolve();
  #ackScheduled = false;
  /** True once this side sends sealed frames (SPEC §22.3: signed before that). */
  sealedOut = false;
  /** Client during a re-key: sends under `nextKeys` once its HELLO_ACK went out. */
  sendNext = false;

  constructor(core: SessionCore) {
    this.#core = core;
    // Sequence numbers start at a random value below 2^31 (SPEC §22.4).
    const r = core.opts.random(4);
    this.#sendSeq = ((r[0] << 24) | (r[1] << 16) | (r[2] << 8) | r[3]) >>> 1;
  }

  /**
   * Emits one message as the next frame. Sequence number, time and nonce are taken
   * synchronously, so frames leave in call order; the write chain keeps them in order.
   */
  emit(type: MessageType, body: Bytes, signContext?: Bytes, keys?: SessionKeys): Promise<void> {
    const core = this.#core;
    if (type !== T.DATA_ACK && core.data.ackDue && this.sealedOut) this.emitAck();
    const seq = this.#sendSeq;
    if (seq >= Number.MAX_SAFE_INTEGER) {
      return Promise.reject(new MissiveError("session", "session: sequence numbers exhausted"));
    }
    this.#sendSeq++;
    const header: FrameHeader = { seq, type, time: core.clock.now() };
    const useKeys = this.sealedOut
      ? keys ?? (this.sendNext ? core.nextKeys : core.keys)
      : undefined;
    if (type !== T.RESEND_LAST) this.#lastSent = { type, body, signContext, keys: useKeys };
    let frame: Promise<Bytes>;
    if (useKeys) {
      const direction = core.role === "client" ? useKeys.clientToServer : useKeys.serverToClient;
      const nonce = nonceAt(direction.counter++);
      const key = direction.key;
      const aad = sealedAad(seq, type, header.time, useKeys.id);
      const keyId = useKeys.id;
      const seal = (plaintext: Bytes) =>
        core.provider.aeadEncrypt(SESSION_AEAD, key, nonce, plaintext, aad).then((ciphertext) =>
          encodeFrame({ ...header, form: "sealed", keyId, ciphertext })
        );
      frame = signContext
        ? this.#sign(header, body, signContext).then((part) => seal(encodeSignedPart(part)))
        : seal(body);
    } else {
      if (!signContext) throw new MissiveError("internal", "session: signed frame without context");
      frame = this.#sign(header, body, signContext).then((part) =>
        encodeFrame({ ...header, form: "signed", ...part })
      );
    }
    frame.catch(() => {});
    const written = this.#writeChain.then(() => frame).then((f) => core.transport.send(f));
    this.#writeChain = written.catch(() => {});
    return written;
  }

  #sign(header: FrameHeader, body: Bytes, context: Bytes): Promise<SignedPart> {
    const core = this.#core;
    return signPart(core.provider, core.identity, header, body, context, core.psk);
  }

  /** Emits and turns a write failure into the end of the session. */
  send(type: MessageType, body: Bytes, signContext?: Bytes, keys?: SessionKeys): Promise<void> {
    return this.emit(type, body, signContext, keys).catch((e) => this.#core.abort(e));
  }

  /** Runs `work` once every frame emitted so far was written (or failed); never rejects. */
  afterWrites(work: () => void | Promise<void>): Promise<void> {
    return this.#writeChain.then(work).catch(() => {});
  }

  /** Re-sends the last message as a fresh frame (RESEND_LAST, SPEC §22.7). */
  resendLast(): void {
    const last = this.#lastSent;
    if (!last) return;
    // Keys erased by a re-key since (all zero) are not used again.
    const keys = last.keys && last.keys.clientToServer.key.some((b) => b !== 0)
      ? last.keys
      : undefined;
    void this.send(last.type, last.body, last.signContext, keys);
  }

  /** Sends queued DATA the window allows now (SPEC §22.6.2). */
  pumpSend(): void {
    const core = this.#core;
    if (canSendData(core.state)) {
      for (const m of core.data.takeSendable(core.opts.window)) {
        void this.send(T.DATA, encodeDataBody(m.index, m.data));
      }
    }
    core.rules.armIdle(false);
  }

  /** Sends the DATA_ACK that is due, if any. */
  emitAck(): void {
    const ack = this.#core.data.takeAck();
    if (!ack) return;
    void this.send(T.DATA_ACK, u64(ack.index));
    if (ack.count > 0) this.#core.rekey.countAcknowledged(ack.count);
  }

  /** "batch": one DATA_ACK for all DATA read in this turn of the event loop. */
  #scheduleAck(): void {
    if (this.#core.opts.ack === "immediate") return this.emitAck();
    if (this.#ackScheduled) return;
    this.#ackScheduled = true;
    setImmediate(() => {
      this.#ackScheduled = false;
      if (!isTerminal(this.#core.state) && this.sealedOut) this.emitAck();
    });
  }

  /** A DATA from the peer: delivered in order, or a re-sent one acknowledged again. */
  onData(body: Bytes): void {
    const core = this.#core;
    if (core.state === "closing") return;
    const { index, data } = decodeDataBody(body);
    if (data.length > core.opts.maxMessageSize) {
      throw new MissiveError(
        "too-large",
        `session: message larger than ${core.opts.maxMessageSize}`,
      );
    }
    // A re-sent DATA already delivered is acknowledged again, not delivered.
    if (core.data.arrive(index) === "duplicate") return this.#scheduleAck();
    core.inbox.push(data);
    if (core.rekey.rekeyDueWith(core.data.unacknowledged)) this.emitAck();
    else this.#scheduleAck();
  }

  /** A DATA_ACK from the peer: resolves the sends it covers and refills the window. */
  onDataAck(index: number): void {
    const core = this.#core;
    const count = core.data.acknowledge(index);
    if (count > 0) core.rekey.countAcknowledged(count);
    core.checkDrained();
    this.pumpSend();
  }
}
