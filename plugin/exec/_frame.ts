/**
 * Framing of the executable-plugin protocol (docs/PLUGINS.md, "Executable plugins: the
 * protocol"): each message is a 4-byte big-endian length followed by that many bytes of
 * deterministic CBOR. The length is checked against `MAX_FRAME` before anything is
 * allocated for the body.
 * @module
 */
import { type Bytes, concatBytes } from "../../core/bytes.ts";
import { type CborMap, type CborValue, decodeCbor, encodeCbor } from "../../core/cbor.ts";
import { MAX_ENVELOPE_SIZE } from "../../envelope/mod.ts";
import { MissiveError } from "../../core/errors.ts";

/** Largest message body either side may send: a full envelope plus 1 MiB of fields. */
export const MAX_FRAME = MAX_ENVELOPE_SIZE + 1024 * 1024;

/** Length prefix + CBOR of one message. */
export function encodeFrame(message: CborMap): Bytes {
  const body = encodeCbor(message);
  if (body.length > MAX_FRAME) {
    throw new MissiveError(
      "too-large",
      `plugin message of ${body.length} bytes exceeds ${MAX_FRAME}`,
    );
  }
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, body.length);
  out.set(body, 4);
  return out;
}

/**
 * Splits a byte stream into messages. `push` returns the complete messages so far;
 * it throws `Error` (a protocol violation) for an oversize length, bad CBOR or a
 * message that is not a map. Chunks are kept, not copied, until a frame is complete.
 */
export class FrameReader {
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #need = -1; // body length of the frame being read, -1 while reading the prefix

  push(chunk: Uint8Array): CborMap[] {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    const out: CborMap[] = [];
    for (;;) {
      if (this.#need < 0) {
        if (this.#buffered < 4) return out;
        const prefix = this.#take(4);
        this.#need = new DataView(prefix.buffer, prefix.byteOffset, 4).getUint32(0);
        if (this.#need > MAX_FRAME) {
          throw new Error(`announced a ${this.#need}-byte message (limit ${MAX_FRAME})`);
        }
      }
      if (this.#buffered < this.#need) return out;
      const body = this.#take(this.#need);
      this.#need = -1;
      let value: CborValue;
      try {
        value = decodeCbor(body, "plugin message");
      } catch (e) {
        throw new Error(`sent a message that is not deterministic CBOR (${(e as Error).message})`);
      }
      if (!(value instanceof Map)) throw new Error("sent a message that is not a CBOR map");
      out.push(value);
    }
  }

  /** Bytes received but not yet part of a complete message. */
  get pending(): number {
    return this.#buffered;
  }

  #take(n: number): Uint8Array {
    const all = this.#chunks.length === 1 ? this.#chunks[0] : concatBytes(...this.#chunks);
    const head = all.subarray(0, n);
    const rest = all.subarray(n);
    this.#chunks = rest.length > 0 ? [rest] : [];
    this.#buffered = rest.length;
    return head;
  }
}
