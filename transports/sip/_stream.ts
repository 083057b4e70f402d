/**
 * SIP over a byte stream (RFC 3261 §18.3): messages are delimited by the blank line
 * after the headers and a mandatory Content-Length. The reader buffers at most one
 * header section plus one declared body.
 * @module
 */
import { type Bytes, concatBytes } from "../../core/bytes.ts";
import { MissiveError } from "../../core/errors.ts";
import {
  bodyLength,
  findHeadEnd,
  MAX_SIP_HEAD,
  parseHead,
  SipBodyError,
  type SipHead,
  type SipMessage,
} from "./_message.ts";

/**
 * Splits a TCP byte stream into SIP messages. `push` returns the messages completed by
 * a chunk; it throws `malformed` or `too-large` once, after which the connection must be
 * closed (the reader is then failed and stays so).
 */
export class SipStreamReader {
  #buffer: Bytes = new Uint8Array(0);
  #head?: { head: SipHead; headEnd: number; length: number };
  #failed = false;

  push(chunk: Uint8Array): SipMessage[] {
    if (this.#failed) throw new MissiveError("malformed", "sip: stream already failed");
    try {
      return this.#push(chunk);
    } catch (e) {
      this.#failed = true;
      this.#buffer = new Uint8Array(0);
      throw e;
    }
  }

  /** Bytes held but not yet part of a complete message. */
  get buffered(): number {
    return this.#buffer.length;
  }

  #push(chunk: Uint8Array): SipMessage[] {
    const out: SipMessage[] = [];
    // The buffer never exceeds MAX_SIP_HEAD (no head yet) or head + declared body,
    // plus one chunk: the caps below are checked before the next concatenation.
    this.#buffer = this.#buffer.length === 0
      ? new Uint8Array(chunk)
      : concatBytes(this.#buffer, chunk);
    for (;;) {
      if (!this.#head) {
        // CRLF keep-alives between messages (RFC 5626 §3.5.1) are skipped.
        let skip = 0;
        while (this.#buffer[skip] === 13 && this.#buffer[skip + 1] === 10) skip += 2;
        if (skip > 0) this.#buffer = this.#buffer.slice(skip);
        const headEnd = findHeadEnd(this.#buffer, 0, MAX_SIP_HEAD);
        if (headEnd < 0) {
          if (this.#buffer.length >= MAX_SIP_HEAD) {
            throw new MissiveError("too-large", `sip: header section over ${MAX_SIP_HEAD} bytes`);
          }
          return out;
        }
        const head = parseHead(this.#buffer, headEnd);
        const length = bodyLength(head);
        if (length === undefined) {
          const e = new MissiveError("malformed", "sip: no Content-Length on a stream transport");
          throw new SipBodyError(e, head);
        }
        this.#head = { head, headEnd, length };
      }
      const { head, headEnd, length } = this.#head;
      if (this.#buffer.length < headEnd + length) return out;
      out.push({ ...head, body: this.#buffer.slice(headEnd, headEnd + length) } as SipMessage);
      this.#buffer = this.#buffer.slice(headEnd + length);
      this.#head = undefined;
    }
  }
}
