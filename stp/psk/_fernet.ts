/**
 * Fernet tokens (fernet/spec, version 0x80), the container of `psk` version 2 (SPEC §13.3):
 *
 *     token = 0x80 ‖ timestamp (u64 BE, seconds) ‖ IV (16) ‖ AES-128-CBC(PKCS #7) ‖ HMAC
 *
 * with HMAC-SHA-256 under the key's first 16 bytes over everything before it, and
 * AES-128 under its last 16. The text form is base64url with padding, as Python writes.
 * Verification order: shape, HMAC (constant time), freshness, then decryption.
 * @module
 */
import {
  type Bytes,
  concatBytes,
  equalBytes,
  fromUtf8,
  randomBytes,
  wipe,
} from "../../core/bytes.ts";
import type { CryptoProvider } from "../../crypto/provider.ts";
import { MissiveError } from "../../core/errors.ts";
import { checkFreshness, parseKeyText } from "./_key.ts";

/** The version byte of the only Fernet version. */
export const FERNET_VERSION = 0x80;
const TIMESTAMP_BYTES = 8;
const IV_BYTES = 16;
const BLOCK_BYTES = 16;
const HMAC_BYTES = 32;
const HEADER_BYTES = 1 + TIMESTAMP_BYTES + IV_BYTES;
/** Shortest token: header, one ciphertext block, HMAC. */
export const MIN_TOKEN_BYTES = HEADER_BYTES + BLOCK_BYTES + HMAC_BYTES;
/** Longest token text accepted (the envelope's own 64 MiB limit, in base64). */
export const MAX_TOKEN_TEXT = Math.ceil((64 * 1024 * 1024) / 3) * 4;

/** A Fernet key: signing key ‖ encryption key, 16 bytes each. */
export interface FernetKey {
  signing: Bytes;
  encryption: Bytes;
}

/** Splits a 32-byte key; `parseFernetKey` reads its text form. */
export function fernetKey(bytes: Uint8Array): FernetKey {
  if (bytes.length !== 32) {
    throw new MissiveError("key", `fernet key: ${bytes.length} bytes, need 32`);
  }
  return { signing: bytes.slice(0, 16), encryption: bytes.slice(16, 32) };
}

/** Reads a key file's text: one line of base64url, 32 bytes (`Fernet.generate_key()`). */
export function parseFernetKey(text: string): FernetKey {
  return fernetKey(parseKeyText(text, 32, 32, "fernet key"));
}

/** Wipes both halves. */
export function wipeFernetKey(key: FernetKey): void {
  wipe(key.signing);
  wipe(key.encryption);
}

/** Inputs of `encryptFernet`; `iv` and `timestamp` are injectable for vectors. */
export interface FernetSealOptions {
  /** Seconds since the epoch (default: now). */
  timestamp?: number;
  iv?: Uint8Array;
}

/** Makes a binary token. */
export async function encryptFernet(
  crypto: CryptoProvider,
  key: FernetKey,
  plaintext: Uint8Array,
  options: FernetSealOptions = {},
): Promise<Bytes> {
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
    throw new MissiveError("internal", "fernet: timestamp must be a non-negative integer");
  }
  const iv = options.iv ?? randomBytes(IV_BYTES);
  if (iv.length !== IV_BYTES) throw new MissiveError("internal", "fernet: IV must be 16 bytes");
  const header = new Uint8Array(HEADER_BYTES);
  header[0] = FERNET_VERSION;
  const view = new DataView(header.buffer);
  view.setUint32(1, Math.floor(timestamp / 2 ** 32));
  view.setUint32(5, timestamp >>> 0);
  header.set(iv, 1 + TIMESTAMP_BYTES);
  const ciphertext = await crypto.aesCbcEncrypt(key.encryption, iv, plaintext);
  const signed = concatBytes(header, ciphertext);
  return concatBytes(signed, await crypto.hmacSha256(key.signing, signed));
}

/** What a verified token holds. */
export interface FernetOpened {
  /** The token's plaintext, returned only after its HMAC verified. */
  plaintext: Bytes;
  /** Seconds since the epoch, as written by the token's maker. */
  timestamp: number;
}

/** Verification policy: TTL in seconds (none: any age, as Python's default) and clock. */
export interface FernetOpenOptions {
  ttl?: number;
  /** Milliseconds since the epoch (default: now); Fernet compares whole seconds. */
  now?: number;
}

/**
 * Verifies and decrypts a binary token. `malformed` for a bad shape or padding,
 * `auth-failed` when the HMAC does not verify, `replay` outside the TTL or clock skew.
 */
export async function decryptFernet(
  crypto: CryptoProvider,
  key: FernetKey,
  token: Uint8Array,
  options: FernetOpenOptions = {},
): Promise<FernetOpened> {
  if (token.length < MIN_TOKEN_BYTES) {
    throw new MissiveError("malformed", `fernet: token too short (${token.length} bytes)`);
  }
  if ((token.length - HEADER_BYTES - HMAC_BYTES) % BLOCK_BYTES !== 0) {
    throw new MissiveError("malformed", "fernet: ciphertext is not a whole number of blocks");
  }
  if (token[0] !== FERNET_VERSION) {
    throw new MissiveError("malformed", `fernet: unknown version byte 0x${token[0].toString(16)}`);
  }
  const view = new DataView(token.buffer, token.byteOffset, token.byteLength);
  const timestamp = view.getUint32(1) * 2 ** 32 + view.getUint32(5);
  if (!Number.isSafeInteger(timestamp * 1000)) {
    throw new MissiveError("malformed", "fernet: timestamp out of range");
  }
  const signedEnd = token.length - HMAC_BYTES;
  const expected = await crypto.hmacSha256(key.signing, token.subarray(0, signedEnd));
  if (!equalBytes(expected, token.subarray(signedEnd))) {
    throw new MissiveError("auth-failed", "fernet: HMAC does not verify (wrong key or altered)");
  }
  const ttl = options.ttl;
  if (ttl !== undefined && !(Number.isSafeInteger(ttl) && ttl >= 0)) {
    throw new MissiveError("usage", "fernet: ttl must be a non-negative integer");
  }
  const nowSeconds = Math.floor((options.now ?? Date.now()) / 1000);
  checkFreshness(timestamp * 1000, {
    ttlMs: ttl === undefined ? undefined : ttl * 1000,
    nowMs: nowSeconds * 1000,
  }, "fernet");
  const plaintext = await crypto.aesCbcDecrypt(
    key.encryption,
    token.subarray(1 + TIMESTAMP_BYTES, HEADER_BYTES),
    token.subarray(HEADER_BYTES, signedEnd),
  );
  return { plaintext, timestamp };
}

/** The text form: base64url with `=` padding, as Python's `Fernet.encrypt` returns. */
export function fernetTokenText(token: Uint8Array): string {
  return token.toBase64({ alphabet: "base64url" });
}

/** Decodes a token's text form (trimmed; padded or not); `malformed` otherwise. */
export function parseFernetToken(text: string): Bytes {
  const s = text.trim();
  if (s.length > MAX_TOKEN_TEXT) {
    throw new MissiveError("too-large", `fernet: token longer than ${MAX_TOKEN_TEXT} characters`);
  }
  const bare = s.replace(/={1,2}$/, "");
  const padded = bare !== s;
  if (!/^[A-Za-z0-9_-]*$/.test(bare) || (padded && s.length % 4 !== 0) || bare.length % 4 === 1) {
    throw new MissiveError("malformed", "fernet: token is not base64url");
  }
  // Python's urlsafe_b64decode ignores the bits under the padding; so do we ("loose").
  try {
    return Uint8Array.fromBase64(bare, {
      alphabet: "base64url",
      lastChunkHandling: "loose",
    }) as Bytes;
  } catch {
    throw new MissiveError("malformed", "fernet: token is not base64url");
  }
}

/**
 * Detects a bare token among `missive open`'s inputs: ASCII base64url text whose first
 * decoded byte is 0x80. Envelopes never match (binary starts d9 d9 f7, armor with
 * "-----", the line form with "2dn3", which decodes to d9). Returns the binary token.
 */
export function detectFernetToken(input: Uint8Array): Bytes | undefined {
  if (input.length === 0 || input.length > MAX_TOKEN_TEXT + 2) return undefined;
  let text: string;
  try {
    text = fromUtf8(input).trim();
  } catch {
    return undefined;
  }
  // 0x80 ‖ ... always encodes to a first character "g".
  if (!text.startsWith("g") || !/^[A-Za-z0-9_-]+={0,2}$/.test(text)) return undefined;
  try {
    const token = parseFernetToken(text);
    return token[0] === FERNET_VERSION ? token : undefined;
  } catch {
    return undefined;
  }
}
