/**
 * Frames out (SPEC §22.3, §22.6, §22.7): this side's sequence numbers, signing before the
 * keys are confirmed and sealing after, and the last message kept for RESEND_LAST.
 * Which keys or context to use is the machine's decision; this only builds the bytes.
 * Internal to the session.
 * @module
 */
import type { Bytes } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import type { SessionCipher } from "./_cipher.ts";
import {
  encodeFrame,
  encodeSignedPart,
  type FrameHeader,
  MessageType,
  type SessionVersion,
  type SignedPart,
} from "./messages.ts";

/** How a message goes out: signed with a context, sealed under keys, or both (re-key). */
export interface Protection {
  /** The signature context (SPEC §22.5.1), for a signed part. */
  sign?: Bytes;
  /** The keys to seal under; none: a signed frame. */
  cipher?: SessionCipher;
}

/** What RESEND_LAST re-sends: the last message, as a fresh frame. */
export interface LastSent extends Protection {
  type: MessageType;
  body: Bytes;
}

/** Signs a body for a header under a context (the handshake's identity key). */
export type Signer = (header: FrameHeader, body: Bytes, context: Bytes) => Promise<SignedPart>;

export class Outbox {
  #seq: number;
  #last?: LastSent;
  readonly #sign: Signer;
  readonly #version: () => SessionVersion;

  /**
   * `random` gives the first sequence number; `sign` makes signed parts; `version` is
   * the session version signed frames are framed in (sealed frames: their keys').
   */
  constructor(
    random: (length: number) => Bytes,
    sign: Signer,
    version: () => SessionVersion = () => 1,
  ) {
    // The first sequence number: 4 random bytes, big-endian, shifted right (SPEC §22.6).
    const r = random(4);
    this.#seq = ((r[0] << 24) | (r[1] << 16) | (r[2] << 8) | r[3]) >>> 1;
    this.#sign = sign;
    this.#version = version;
  }

  /** The last message sent other than RESEND_LAST, if any. */
  get last(): LastSent | undefined {
    return this.#last;
  }

  /**
   * The next frame: `body` as a message of `type` sent at `now`, taking the next
   * sequence number; sealed under `how.cipher` (its plaintext the signed part when
   * `how.sign` is given too), else signed with `how.sign` as context.
   */
  async frame(type: MessageType, body: Bytes, now: number, how: Protection): Promise<Bytes> {
    const seq = this.#seq;
    if (seq >= Number.MAX_SAFE_INTEGER) {
      throw new MissiveError("session", "session: sequence numbers exhausted");
    }
    this.#seq++;
    const header: FrameHeader = { seq, type, time: now };
    if (type !== MessageType.RESEND_LAST) this.#last = { type, body, ...how };
    if (how.cipher) {
      const plaintext = how.sign
        ? encodeSignedPart(await this.#sign(header, body, how.sign))
        : body;
      return await how.cipher.seal(header, plaintext);
    }
    if (!how.sign) throw new MissiveError("internal", "session: signed frame without context");
    return encodeFrame(
      { ...header, form: "signed", ...(await this.#sign(header, body, how.sign)) },
      this.#version(),
    );
  }
}
