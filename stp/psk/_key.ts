/**
 * Shared pieces of the `psk` STP (SPEC §13): reading a shared key from its text form,
 * picking the secret a caller gave (`psk` key or `passphrase`), scrypt with bounded work
 * factors, and the optional freshness check (`ttl`, `now`).
 * @module
 */
import { scryptAsync } from "@noble/hashes/scrypt.js";
import { type Bytes, fromBase64, utf8 } from "../../core/bytes.ts";
import { MissiveError } from "../../core/errors.ts";

/** scrypt work factors (log2 N) a writer may choose and a reader accepts (as typage). */
export const MIN_LOG_N = 10;
export const MAX_LOG_N = 20;
/** Default work factor for passphrases. */
export const DEFAULT_LOG_N = 16;
const MIN_PASSPHRASE_CHARS = 8;
const MAX_PASSPHRASE_CHARS = 1024;
/** Longest key text accepted (a 64-byte key in base64 is 88 characters). */
const MAX_KEY_TEXT = 256;
/** How far in the future a timestamp may be when a TTL is checked (Fernet's 60 s). */
export const MAX_CLOCK_SKEW_MS = 60_000;

/**
 * Decodes a key's text form: base64url (padded as Python's `Fernet.generate_key()`
 * writes it, or unpadded) or standard base64, trimmed; `min`..`max` bytes. `key` error
 * otherwise: a bad key file is a key problem, not a malformed message.
 */
export function parseKeyText(text: string, min: number, max: number, what = "psk key"): Bytes {
  const s = text.trim();
  if (s.length === 0 || s.length > MAX_KEY_TEXT) {
    throw new MissiveError("key", `${what}: expected one line of base64, ${min}..${max} bytes`);
  }
  let key: Bytes | undefined;
  if (/[+/]/.test(s)) {
    key = fromBase64(s);
  } else {
    const bare = s.replace(/={1,2}$/, "");
    // Padding, when present, must be the canonical amount.
    key = bare !== s && s.length % 4 !== 0 ? undefined : fromBase64(bare, true);
  }
  if (!key) throw new MissiveError("key", `${what}: not valid base64 or base64url`);
  if (key.length < min || key.length > max) {
    const want = min === max ? `${min}` : `${min}..${max}`;
    throw new MissiveError("key", `${what}: ${key.length} bytes, need ${want}`);
  }
  return key;
}

/** The secret a caller supplied through STP options. */
export type SharedSecret = { kind: "key"; key: Bytes } | { kind: "passphrase"; passphrase: Bytes };

/**
 * Reads option `psk` (a key's text form) or `passphrase` (NFC-normalised UTF-8). Both
 * at once are a usage error when sealing; when opening, `prefer` says which the message
 * needs.
 */
export function sharedSecret(
  options: Readonly<Record<string, string>>,
  name: string,
  keyBytes: { min: number; max: number },
  sealing: boolean,
  prefer?: "key" | "passphrase",
): SharedSecret {
  const { psk, passphrase } = options;
  const has = (v: string | undefined) => v !== undefined;
  if (sealing && has(psk) && has(passphrase)) {
    throw new MissiveError("usage", `${name}: give a key (--psk-file) or a passphrase, not both`);
  }
  const usePassphrase = has(passphrase) && (prefer === "passphrase" || !has(psk));
  if (usePassphrase) {
    const text = passphrase.normalize("NFC");
    if (text.length > MAX_PASSPHRASE_CHARS) {
      throw new MissiveError("usage", `${name}: passphrase longer than ${MAX_PASSPHRASE_CHARS}`);
    }
    if (sealing && [...text].length < MIN_PASSPHRASE_CHARS) {
      throw new MissiveError(
        "usage",
        `${name}: passphrase shorter than ${MIN_PASSPHRASE_CHARS} characters`,
      );
    }
    return { kind: "passphrase", passphrase: utf8(text) };
  }
  if (has(psk)) {
    return { kind: "key", key: parseKeyText(psk, keyBytes.min, keyBytes.max, `${name} key`) };
  }
  throw new MissiveError(
    "usage",
    `${name}: a shared key is required (--psk-file FILE, --passphrase, or --option psk=KEY)`,
  );
}

/** The `work-factor` option (scrypt log2 N), bounded; `DEFAULT_LOG_N` when absent. */
export function workFactor(options: Readonly<Record<string, string>>, name: string): number {
  const raw = options["work-factor"];
  if (raw === undefined) return DEFAULT_LOG_N;
  const logN = /^\d{1,2}$/.test(raw) ? Number(raw) : NaN;
  if (!(logN >= MIN_LOG_N && logN <= MAX_LOG_N)) {
    throw new MissiveError(
      "usage",
      `${name}: work-factor must be ${MIN_LOG_N}..${MAX_LOG_N}, got ${JSON.stringify(raw)}`,
    );
  }
  return logN;
}

/** scrypt (RFC 7914) with r = 8, p = 1, 32 bytes out; logN must already be bounded. */
export async function scryptKey(passphrase: Bytes, salt: Uint8Array, logN: number): Promise<Bytes> {
  if (!(Number.isInteger(logN) && logN >= MIN_LOG_N && logN <= MAX_LOG_N)) {
    throw new MissiveError("internal", `scrypt: unbounded work factor ${logN}`);
  }
  return await scryptAsync(passphrase, salt, { N: 2 ** logN, r: 8, p: 1, dkLen: 32 }) as Bytes;
}

/** Freshness policy from options: `ttl` in seconds (none: any age), `now` in ms. */
export interface Freshness {
  ttlMs?: number;
  nowMs: number;
}

/** Reads `ttl` (seconds) and `now` (ms since the epoch, default the real clock). */
export function freshnessOf(options: Readonly<Record<string, string>>, name: string): Freshness {
  const uint = (key: string) => {
    const raw = options[key];
    if (raw === undefined) return undefined;
    const n = /^\d{1,16}$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isSafeInteger(n)) {
      throw new MissiveError("usage", `${name}: ${key} must be a non-negative integer`);
    }
    return n;
  };
  const ttl = uint("ttl");
  return { ttlMs: ttl === undefined ? undefined : ttl * 1000, nowMs: uint("now") ?? Date.now() };
}

/**
 * With a TTL, refuses (`replay`) a timestamp older than the TTL or more than 60 s ahead
 * of the clock, as Fernet's verifier does; without one, accepts any time.
 */
export function checkFreshness(timestampMs: number, f: Freshness, name: string): void {
  if (f.ttlMs === undefined) return;
  if (timestampMs + f.ttlMs < f.nowMs) {
    throw new MissiveError(
      "replay",
      `${name}: expired: sent ${f.nowMs - timestampMs} ms ago, TTL ${f.ttlMs / 1000} s`,
    );
  }
  if (timestampMs > f.nowMs + MAX_CLOCK_SKEW_MS) {
    throw new MissiveError(
      "replay",
      `${name}: timestamp ${timestampMs - f.nowMs} ms in the future (clock skew over 60 s)`,
    );
  }
}
