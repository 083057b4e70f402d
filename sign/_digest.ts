/**
 * Hashing a file read in blocks (constant memory): one reused buffer, the provider's
 * incremental hash, and an optional cap so a verifier stops reading a file that is
 * already longer than the one that was signed.
 * @module
 */
import type { Bytes } from "../core/bytes.ts";
import type { CryptoProvider, HashAlgorithm } from "../crypto/provider.ts";
import { type ByteSource, bytesSource } from "../stream/mod.ts";

/** Bytes read per block. */
const BLOCK = 1024 * 1024;

/** A file's length and hash. */
export interface FileDigest {
  /** Bytes read; with `stopAfter`, at most `stopAfter + 1`. */
  size: number;
  digest: Bytes;
}

/**
 * Reads `input` to its end (or to `stopAfter + 1` bytes) through `algorithm`. With
 * `stopAfter`, a longer input is cut there and its digest is of the part read: a caller
 * sees `size > stopAfter` and knows it differs without hashing the rest.
 */
export async function digestInput(
  crypto: CryptoProvider,
  input: ByteSource | Uint8Array,
  algorithm: HashAlgorithm,
  options: { stopAfter?: number; onProgress?: (bytes: number) => void } = {},
): Promise<FileDigest> {
  const source = input instanceof Uint8Array ? bytesSource(input) : input;
  const hash = crypto.hasher(algorithm);
  const limit = options.stopAfter === undefined ? Infinity : options.stopAfter + 1;
  const buffer = new Uint8Array(BLOCK);
  let size = 0;
  while (size < limit) {
    const want = Math.min(BLOCK, limit - size);
    const n = await source.readInto(want === BLOCK ? buffer : buffer.subarray(0, want));
    if (n === 0) break;
    // Incremental hashes consume their input synchronously, so the buffer can be reused.
    hash.update(buffer.subarray(0, n));
    size += n;
    options.onProgress?.(size);
    if (n < want) break;
  }
  return { size, digest: hash.digest() };
}
