/**
 * The age payload (C2SP age, "Payload"): STREAM over ChaCha20-Poly1305 in 64 KiB chunks,
 * nonce = 11-byte big-endian chunk counter ‖ last-chunk flag. Constant memory both ways:
 * one chunk buffer, each chunk released as soon as it authenticates (as age's
 * internal/stream reader does, which the CCTV corpus's partial-payload hashes follow).
 * @module
 */
import type { Bytes } from "../../core/bytes.ts";
import { MissiveError } from "../../core/errors.ts";
import type { AeadKey } from "../../crypto/provider.ts";
import type { AgeReader, AgeSink, AgeSource } from "./_format.ts";

/** Plaintext bytes per chunk. */
export const CHUNK_SIZE = 64 * 1024;
const TAG_SIZE = 16;
const ENCRYPTED_CHUNK = CHUNK_SIZE + TAG_SIZE;
/** Bytes gathered before one write to the sink. */
const BATCH_BYTES = 1024 * 1024;
const EMPTY = new Uint8Array(0);

/**
 * A payload that failed after `released` plaintext bytes had been written to the sink,
 * all of them from chunks that authenticated. Its code is the cause's.
 */
export class AgePayloadError extends MissiveError {
  /** Plaintext bytes written to the sink before the failure, all authenticated. */
  readonly released: number;

  /** Wraps `cause` (keeping its code and message), recording `released`. */
  constructor(cause: MissiveError, released: number) {
    super(cause.code, cause.message, { cause });
    this.released = released;
  }
}

/** The 12-byte nonce of chunk `counter` (C2SP age, "Payload"). */
function chunkNonce(counter: number, last: boolean): Uint8Array {
  if (!Number.isSafeInteger(counter)) {
    throw new MissiveError("too-large", "age payload: chunk counter out of range");
  }
  const nonce = new Uint8Array(12);
  new DataView(nonce.buffer).setBigUint64(3, BigInt(counter));
  nonce[11] = last ? 1 : 0;
  return nonce;
}

/**
 * Writes parts in batches, one batch in flight while the caller goes on; `written` counts
 * bytes whose write completed. Parts must be fresh arrays (AEAD outputs are).
 */
class Batcher {
  readonly #sink: AgeSink;
  #parts: Uint8Array[] = [];
  #bytes = 0;
  #pending?: Promise<void>;
  #pendingBytes = 0;
  written = 0;

  constructor(sink: AgeSink) {
    this.#sink = sink;
  }

  async add(part: Uint8Array): Promise<void> {
    this.#parts.push(part);
    this.#bytes += part.length;
    if (this.#bytes >= BATCH_BYTES) await this.#start();
  }

  async #settle(): Promise<void> {
    if (!this.#pending) return;
    const pending = this.#pending;
    this.#pending = undefined;
    await pending;
    this.written += this.#pendingBytes;
    this.#pendingBytes = 0;
  }

  async #start(): Promise<void> {
    await this.#settle();
    if (this.#parts.length === 0) return;
    const parts = this.#parts;
    this.#pendingBytes = this.#bytes;
    this.#parts = [];
    this.#bytes = 0;
    this.#pending = this.#sink.write(parts);
    this.#pending.catch(() => {}); // observed by #settle
  }

  async finish(): Promise<void> {
    await this.#start();
    await this.#settle();
  }
}

/**
 * Encrypts `source` to `sink` as STREAM chunks under `key` (the payload key); returns the
 * plaintext length. An empty input gives one empty final chunk.
 */
export async function encryptPayload(
  key: AeadKey,
  source: AgeSource,
  sink: AgeSink,
): Promise<number> {
  const out = new Batcher(sink);
  let current = new Uint8Array(CHUNK_SIZE);
  let next = new Uint8Array(CHUNK_SIZE);
  let n = await source.readInto(current);
  let total = 0;
  for (let counter = 0;; counter++) {
    // A full chunk is the last one only if nothing follows: read ahead one chunk.
    const following = n === CHUNK_SIZE ? await source.readInto(next) : 0;
    const last = following === 0;
    await out.add(await key.encrypt(chunkNonce(counter, last), current.subarray(0, n), EMPTY));
    total += n;
    if (last) break;
    [current, next] = [next, current];
    n = following;
  }
  await out.finish();
  return total;
}

/** What a decrypted payload held. */
export interface PayloadResult {
  plaintextBytes: number;
  chunks: number;
}

/**
 * Decrypts the STREAM payload that follows the header and nonce in `reader`, writing each
 * chunk to `sink` once it authenticates. Any failure (a bad tag, no final chunk, an empty
 * final chunk after others, data after the final chunk) is an AgePayloadError carrying
 * the bytes already written; its code is `auth-failed`.
 */
export async function decryptPayload(
  key: AeadKey,
  reader: AgeReader,
  sink: AgeSink,
): Promise<PayloadResult> {
  const out = new Batcher(sink);
  const buffer = new Uint8Array(ENCRYPTED_CHUNK);
  let plaintextBytes = 0;
  const fail = async (why: string): Promise<never> => {
    await out.finish();
    throw new AgePayloadError(new MissiveError("auth-failed", `age payload: ${why}`), out.written);
  };
  for (let counter = 0;; counter++) {
    const n = await reader.readInto(buffer);
    if (n === 0) return await fail("truncated: no final chunk");
    let last = n < ENCRYPTED_CHUNK;
    // The final chunk may be empty only when it is the only one (C2SP age, "Payload").
    if (last && counter > 0 && n === TAG_SIZE) return await fail("final chunk is empty");
    const sealed = buffer.subarray(0, n);
    let plain: Bytes | undefined;
    try {
      plain = await key.decrypt(chunkNonce(counter, last), sealed, EMPTY);
    } catch {
      // A full-length chunk may be the final one (age's stream reader tries both).
      if (!last) {
        last = true;
        plain = await key.decrypt(chunkNonce(counter, true), sealed, EMPTY).catch(() => undefined);
      }
    }
    if (!plain) return await fail(`chunk ${counter} did not authenticate`);
    await out.add(plain);
    plaintextBytes += plain.length;
    if (last) {
      if ((await reader.readInto(new Uint8Array(1))) !== 0) {
        return await fail("trailing data after the final chunk");
      }
      await out.finish();
      return { plaintextBytes, chunks: counter + 1 };
    }
  }
}
