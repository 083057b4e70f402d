/**
 * Length-prefixed frames (SPEC §21.1): a 4-byte big-endian length, then that many
 * bytes. Used by `tcp://` and by `stdio:binary`. The reader is incremental and bounded:
 * the declared length is checked against the cap before anything is kept, and it never
 * holds more than one header and one frame's bytes received so far.
 * @module
 */
import { type Bytes, concatBytes } from "../core/bytes.ts";
import { MAX_ENVELOPE_SIZE } from "../envelope/mod.ts";
import { MissiveError } from "../core/errors.ts";

/** Bytes of the length prefix. */
export const FRAME_HEADER_BYTES = 4;
/** The largest frame any missive transport carries: the envelope limit (SPEC §2.1). */
export const MAX_FRAME_SIZE = MAX_ENVELOPE_SIZE;
/** The cap a listener applies unless told otherwise (SPEC §21.1): 1 MiB. */
export const DEFAULT_LISTEN_FRAME = 1024 * 1024;

/** Checks a frame cap given by a caller: an integer 1..MAX_FRAME_SIZE. */
export function checkFrameCap(cap: number): number {
  if (!Number.isSafeInteger(cap) || cap < 1 || cap > MAX_FRAME_SIZE) {
    throw new MissiveError("usage", `frame cap must be 1..${MAX_FRAME_SIZE} bytes, got ${cap}`);
  }
  return cap;
}

/** One frame with its length prefix; refuses empty frames and frames over `cap`. */
export function encodeFrame(frame: Uint8Array, cap = MAX_FRAME_SIZE): Bytes {
  if (frame.length === 0) throw new MissiveError("usage", "frame: a frame cannot be empty");
  if (frame.length > cap) {
    throw new MissiveError("too-large", `frame: ${frame.length} bytes is over the ${cap}-byte cap`);
  }
  const header = new Uint8Array(FRAME_HEADER_BYTES);
  new DataView(header.buffer).setUint32(0, frame.length);
  return concatBytes(header, frame);
}

/** Options of a FrameReader. */
export interface FrameReaderOptions {
  /**
   * Hold a frame whose declared length is over the cap instead of failing at once: the
   * reader keeps the bytes after its length prefix (at most `MAX_HELD` of them) and
   * `push` takes no more until `release` decides, by the cap in force then. A server
   * that keeps a peer to a small cap until it authenticates (SPEC §23.12) raises the cap
   * in between, so the peer's first large frame, sent right after its last handshake
   * frame, is read rather than refused.
   */
  holdOversize?: boolean;
}

/** Bytes a held reader keeps beyond a held length prefix before it fails. */
export const MAX_HELD = 256 * 1024;

/**
 * Splits a byte stream into frames. `push` each chunk as it arrives and take the frames
 * it completes; call `end` when the stream ends (a partial frame is `malformed`). A
 * length of zero is `malformed`, one over the cap `too-large` (or held, see
 * `holdOversize`); after either failure the reader stays failed (STYLE: a reader that
 * failed stays failed). The cap can be changed between chunks (`cap`).
 */
export class FrameReader {
  #cap: number;
  readonly #hold: boolean;
  readonly #header = new Uint8Array(FRAME_HEADER_BYTES);
  #headerFill = 0;
  /** Length of the frame being read, or -1 while reading a header. */
  #need = -1;
  #parts: Uint8Array[] = [];
  #have = 0;
  #failed: MissiveError | undefined;
  /** Declared length of a held oversize frame, and the bytes received after it. */
  #heldLength: number | undefined;
  #held: Uint8Array[] = [];
  #heldBytes = 0;

  constructor(cap = MAX_FRAME_SIZE, options: FrameReaderOptions = {}) {
    this.#cap = checkFrameCap(cap);
    this.#hold = options.holdOversize ?? false;
  }

  /** The cap in force. */
  get cap(): number {
    return this.#cap;
  }

  /** Changes the cap for frames whose length prefix is read from now on. */
  set cap(cap: number) {
    this.#cap = checkFrameCap(cap);
  }

  /** Bytes held for the frame in progress (header included): at most cap + 4. */
  get pending(): number {
    return this.#headerFill + this.#have + this.#heldBytes;
  }

  /** The declared length of a frame held over the cap, or undefined. */
  get held(): number | undefined {
    return this.#heldLength;
  }

  #fail(error: MissiveError): never {
    this.#failed = error;
    this.#parts = [];
    this.#have = 0;
    this.#held = [];
    this.#heldBytes = 0;
    this.#heldLength = undefined;
    throw error;
  }

  #overCap(length: number): MissiveError {
    return new MissiveError(
      "too-large",
      `frame: declared length ${length} is over the ${this.#cap}-byte cap`,
    );
  }

  /**
   * Decides a held frame by the cap in force now: within it, reading goes on and the
   * frames the held bytes complete are returned; over it, `too-large` (failed for good).
   */
  release(): Bytes[] {
    if (this.#failed) throw this.#failed;
    const length = this.#heldLength;
    if (length === undefined) return [];
    if (length > this.#cap) this.#fail(this.#overCap(length));
    this.#heldLength = undefined;
    this.#need = length;
    const held = this.#held;
    this.#held = [];
    this.#heldBytes = 0;
    const out: Bytes[] = [];
    for (const chunk of held) out.push(...this.push(chunk));
    return out;
  }

  /** Consumes a chunk; returns the frames it completed (fresh copies), in order. */
  push(chunk: Uint8Array): Bytes[] {
    if (this.#failed) throw this.#failed;
    if (this.#heldLength !== undefined) {
      this.#keep(chunk);
      return [];
    }
    const out: Bytes[] = [];
    let off = 0;
    while (off < chunk.length) {
      if (this.#need < 0) {
        const take = Math.min(FRAME_HEADER_BYTES - this.#headerFill, chunk.length - off);
        this.#header.set(chunk.subarray(off, off + take), this.#headerFill);
        this.#headerFill += take;
        off += take;
        if (this.#headerFill < FRAME_HEADER_BYTES) break;
        const length = new DataView(this.#header.buffer).getUint32(0);
        if (length === 0) this.#fail(new MissiveError("malformed", "frame: length 0"));
        if (length > this.#cap) {
          if (!this.#hold) this.#fail(this.#overCap(length));
          this.#heldLength = length;
          this.#keep(chunk.subarray(off));
          return out;
        }
        this.#need = length;
        continue;
      }
      const take = Math.min(this.#need - this.#have, chunk.length - off);
      // Copy into a plain array: socket chunks may be views of a shared pool (and a
      // Buffer's slice() does not copy).
      this.#parts.push(new Uint8Array(chunk.subarray(off, off + take)));
      this.#have += take;
      off += take;
      if (this.#have === this.#need) {
        out.push(this.#parts.length === 1 ? this.#parts[0] as Bytes : concatBytes(...this.#parts));
        this.#parts = [];
        this.#have = 0;
        this.#need = -1;
        this.#headerFill = 0;
      }
    }
    return out;
  }

  /** Keeps bytes that arrive behind a held length prefix, up to MAX_HELD. */
  #keep(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    if (this.#heldBytes + bytes.length > MAX_HELD) this.#fail(this.#overCap(this.#heldLength!));
    this.#held.push(new Uint8Array(bytes));
    this.#heldBytes += bytes.length;
  }

  /** The stream ended: throws `malformed` when it stopped inside a frame. */
  end(): void {
    if (this.#failed) throw this.#failed;
    if (this.#heldLength !== undefined) this.#fail(this.#overCap(this.#heldLength));
    if (this.pending === 0) return;
    const what = this.#need < 0
      ? `inside a length prefix (${this.#headerFill} of ${FRAME_HEADER_BYTES} bytes)`
      : `after ${this.#have} of ${this.#need} bytes of a frame`;
    this.#fail(new MissiveError("malformed", `frame: truncated: the stream ended ${what}`));
  }
}
