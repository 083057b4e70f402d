/**
 * Byte helpers shared by every layer. Nobody else rewrites these (STYLE §5).
 * @module
 */

/** A byte array backed by a plain ArrayBuffer, as WebCrypto's typings want it. */
export type Bytes = Uint8Array<ArrayBuffer>;

const textEncoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Concatenates byte arrays into one new array. */
export function concatBytes(...parts: Uint8Array[]): Bytes {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/**
 * Compares two byte arrays in time that depends only on their lengths, for MACs, tags
 * and key material.
 */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/** Returns a copy whose buffer is a plain ArrayBuffer of exactly its length. */
export function copyBytes(a: Uint8Array): Bytes {
  return new Uint8Array(a);
}

/** Cryptographically secure random bytes from the runtime's WebCrypto. */
export function randomBytes(length: number): Bytes {
  const out = new Uint8Array(length);
  // getRandomValues fills at most 65536 bytes per call.
  for (let offset = 0; offset < length; offset += 65536) {
    crypto.getRandomValues(out.subarray(offset, Math.min(length, offset + 65536)));
  }
  return out;
}

/** Overwrites a secret buffer with zeros (best effort: the runtime may hold copies). */
export function wipe(a: Uint8Array | undefined): void {
  a?.fill(0);
}

/** UTF-8 encodes a string. */
export function utf8(s: string): Bytes {
  return textEncoder.encode(s) as Bytes;
}

/** Strictly decodes UTF-8; throws a TypeError on invalid sequences. */
export function fromUtf8(b: Uint8Array): string {
  return strictDecoder.decode(b);
}

/** Lower-case hexadecimal (the runtime's `Uint8Array.prototype.toHex`). */
export function toHex(b: Uint8Array): string {
  return b.toHex();
}

/** Parses hexadecimal; returns undefined when the text is not even-length hex. */
export function fromHex(s: string): Bytes | undefined {
  // Uint8Array.fromHex refuses odd lengths and non-hex characters itself.
  try {
    return Uint8Array.fromHex(s) as Bytes;
  } catch {
    return undefined;
  }
}

/** Standard base64 with padding (RFC 4648 §4), or base64url without padding (§5). */
export function toBase64(b: Uint8Array, url = false): string {
  return url ? b.toBase64({ alphabet: "base64url", omitPadding: true }) : b.toBase64();
}

/** Characters a canonical base64 text may hold; the native decoder skips whitespace. */
const BASE64_TEXT = /^[A-Za-z0-9+/]*={0,2}$/;
const BASE64URL_TEXT = /^[A-Za-z0-9_-]*$/;

/**
 * Strict base64 decoding: canonical padding (or none in url mode), no whitespace, zero
 * trailing bits. Returns undefined for anything else, so callers raise their own typed
 * error with their layer's prefix. Decoding is the runtime's `Uint8Array.fromBase64`
 * with `lastChunkHandling: "strict"`; the character check first refuses the whitespace
 * it would otherwise skip.
 */
export function fromBase64(s: string, url = false): Bytes | undefined {
  if (!(url ? BASE64URL_TEXT : BASE64_TEXT).test(s)) return undefined;
  if (url) {
    if (s.length % 4 === 1) return undefined;
    s += "=".repeat((4 - (s.length % 4)) % 4);
  }
  try {
    return Uint8Array.fromBase64(s, {
      alphabet: url ? "base64url" : "base64",
      lastChunkHandling: "strict",
    }) as Bytes;
  } catch {
    return undefined;
  }
}
