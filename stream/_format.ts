/**
 * The stream wire format (SPEC §20): magic, the length-prefixed header envelope, then
 * chunk records `u32be(last << 31 | length) ‖ AES-256-GCM ciphertext ‖ tag [‖ signature]`.
 * Labels, nonces, the chunk key and the signed transcript live here, shared by the writer
 * (seal.ts) and the reader (open.ts).
 * @module
 */
import type { Bytes } from "../core/bytes.ts";
import { transcript } from "../core/cbor.ts";
import type { AeadKey, CryptoProvider } from "../crypto/provider.ts";
import { MissiveError } from "../core/errors.ts";

/** Every stream starts with these 8 bytes: "\x89MSVST\r\n" (SPEC §20.1). */
export const STREAM_MAGIC: Bytes = new Uint8Array([0x89, 0x4d, 0x53, 0x56, 0x53, 0x54, 0x0d, 0x0a]);
/** Largest header envelope (a group header to 10,000 recipients fits with room). */
export const MAX_STREAM_HEADER = 16 * 1024 * 1024;
/** AES-256-GCM tag bytes after each chunk's ciphertext. */
export const TAG_BYTES = 16;
/** Ed25519 signature bytes after each chunk's tag in signed streams. */
export const SIGNATURE_BYTES = 64;
/** Bit 31 of a record's length word: this is the final chunk. */
export const LAST_FLAG = 0x8000_0000;
/**
 * Default chunk size (SPEC §20.4): 256 KiB amortizes WebCrypto's per-call cost (64 KiB
 * chunks ran at about half the speed) and one signature per chunk in signed streams
 * (4096 per GiB), while 1 MiB chunks made the engines hold more dead output buffers.
 */
export const DEFAULT_CHUNK = 256 * 1024;
/** Default chunk size of signed streams (the same; kept separate to tune apart). */
export const DEFAULT_SIGNED_CHUNK = 256 * 1024;

/** HKDF info for the chunk key. */
export const LABEL_KEY = "missive/stream/v1/key";
/** Transcript label of each chunk's AAD. */
export const LABEL_AAD = "missive/stream/v1/aad";
/** Transcript label of the per-chunk signature. */
export const LABEL_CHUNK = "missive/stream/v1/chunk";

/** True when `bytes` starts like a stream (for format sniffing). */
export function looksLikeStream(bytes: Uint8Array): boolean {
  if (bytes.length < STREAM_MAGIC.length) return false;
  return STREAM_MAGIC.every((b, i) => bytes[i] === b);
}

/** The 12-byte nonce of chunk `index`: 11-byte big-endian counter ‖ last flag (0 or 1). */
export function chunkNonce(index: number, last: boolean): Bytes {
  const nonce = new Uint8Array(12);
  const view = new DataView(nonce.buffer);
  view.setUint32(3, Math.floor(index / 2 ** 32));
  view.setUint32(7, index >>> 0);
  nonce[11] = last ? 1 : 0;
  return nonce;
}

/** A record's 4-byte length word. */
export function recordWord(length: number, last: boolean): Bytes {
  const word = new Uint8Array(4);
  new DataView(word.buffer).setUint32(0, (last ? LAST_FLAG : 0) + length);
  return word;
}

/** The header's length prefix. */
export function headerPrefix(length: number): Bytes {
  const word = new Uint8Array(4);
  new DataView(word.buffer).setUint32(0, length);
  return word;
}

/** What the chunks of one stream are sealed with. */
export interface ChunkKeys {
  /** SHA-256 of the header envelope. */
  headerHash: Bytes;
  aead: AeadKey;
  /** transcript(LABEL_AAD, headerHash): every chunk's AAD. */
  aad: Bytes;
}

/** Derives the chunk key: HKDF-SHA-256(payload key, salt = header hash, info). */
export async function chunkKeys(
  crypto: CryptoProvider,
  payloadKey: Uint8Array,
  header: Uint8Array,
): Promise<ChunkKeys> {
  const headerHash = await crypto.sha256(header);
  const key = await crypto.hkdfSha256(payloadKey, headerHash, transcript(LABEL_KEY), 32);
  const aead = await crypto.aeadKey("aes-256-gcm", key);
  key.fill(0);
  return { headerHash, aead, aad: transcript(LABEL_AAD, headerHash) };
}

/** The bytes each chunk's signature covers. */
export function chunkTranscript(
  headerHash: Uint8Array,
  index: number,
  last: boolean,
  ciphertextHash: Uint8Array,
): Bytes {
  return transcript(LABEL_CHUNK, headerHash, index, last, ciphertextHash);
}

/**
 * A failure while opening a stream: a MissiveError that also says how many plaintext
 * bytes (all authenticated) had been released to the sink before it.
 */
export class StreamError extends MissiveError {
  /** Plaintext bytes written before the failure, all from authenticated chunks. */
  readonly released: number;

  /** Wraps `cause` (keeping its code; the message adds `released`). */
  constructor(cause: MissiveError, released: number) {
    super(
      cause.code,
      `${cause.message}; ${released} plaintext bytes were already written before this point`,
      { cause },
    );
    this.released = released;
  }
}
