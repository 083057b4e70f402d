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

/** Lower-case hexadecimal. */
export function toHex(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

/** Parses hexadecimal; returns undefined when the text is not even-length hex. */
export function fromHex(s: string): Bytes | undefined {
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) return undefined;
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64_LOOKUP = new Int16Array(128).fill(-1);
for (let i = 0; i < 64; i++) B64_LOOKUP[B64.charCodeAt(i)] = i;

/** Standard base64 with padding (RFC 4648 §4), or base64url without padding (§5). */
export function toBase64(b: Uint8Array, url = false): string {
  let s = "";
  let i = 0;
  for (; i + 2 < b.length; i += 3) {
    const n = (b[i] << 16) | (b[i + 1] << 8) | b[i + 2];
    s += B64[n >> 18] + B64[(n >> 12) & 63] + B64[(n >> 6) & 63] + B64[n & 63];
  }
  const rest = b.length - i;
  if (rest === 1) {
    const n = b[i] << 16;
    s += B64[n >> 18] + B64[(n >> 12) & 63] + "==";
  } else if (rest === 2) {
    const n = (b[i] << 16) | (b[i + 1] << 8);
    s += B64[n >> 18] + B64[(n >> 12) & 63] + B64[(n >> 6) & 63] + "=";
  }
  if (url) s = s.replace(/=+$/, "").replaceAll("+", "-").replaceAll("/", "_");
  return s;
}

/**
 * Strict base64 decoding: canonical padding (or none in url mode), no whitespace, zero
 * trailing bits. Returns undefined for anything else, so callers raise their own typed
 * error with their layer's prefix.
 */
export function fromBase64(s: string, url = false): Bytes | undefined {
  if (url) {
    if (/[=+/]/.test(s)) return undefined;
    s = s.replaceAll("-", "+").replaceAll("_", "/");
    if (s.length % 4 === 1) return undefined;
    while (s.length % 4 !== 0) s += "=";
  }
  if (s.length % 4 !== 0) return undefined;
  const pad = s.endsWith("==") ? 2 : s.endsWith("=") ? 1 : 0;
  const out = new Uint8Array((s.length / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < s.length; i += 4) {
    let n = 0;
    for (let j = 0; j < 4; j++) {
      const c = s.charCodeAt(i + j);
      const isPad = c === 61 && i + 4 === s.length && j >= 4 - pad;
      const v = isPad ? 0 : c < 128 ? B64_LOOKUP[c] : -1;
      if (v < 0) return undefined;
      n = (n << 6) | v;
    }
    const chunk = [(n >> 16) & 255, (n >> 8) & 255, n & 255];
    const take = i + 4 === s.length ? 3 - pad : 3;
    // Non-zero bits hidden under the padding make the encoding non-canonical.
    if (chunk.slice(take).some((x) => x !== 0)) return undefined;
    for (let j = 0; j < take; j++) out[o++] = chunk[j];
  }
  return out;
}
