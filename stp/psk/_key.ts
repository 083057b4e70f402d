/**
 * Shared pieces of the `psk` STP (SPEC §13): its options (typed, and parsed from
 * `--option` text), reading a shared key from its text form, picking the secret a caller
 * gave (key or passphrase), scrypt with bounded work factors, and the optional freshness
 * check (TTL, clock).
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

/**
 * Options of the `psk` STP. Every field is optional; which are needed depends on the
 * message (a key or a passphrase).
 */
export interface PskOptions {
  /** The shared key's bytes (psk/1: 16..64; psk/2: 32, a Fernet key). */
  key?: Uint8Array;
  /** A shared passphrase instead of a key (scrypt; NFC-normalised). */
  passphrase?: string;
  /** scrypt work factor for sealing with a passphrase, log2 N, 10..20 (default 16). */
  workFactor?: number;
  /** Refuse (`replay`) a message older than this many ms; default: any age. */
  ttlMs?: number;
  /** The clock in ms since the epoch (tests); default the real clock. */
  nowMs?: number;
  /** A sender label to put in the message (never verified). */
  sender?: string;
}

/** The `--option` names psk accepts (text forms of `PskOptions`). */
const PSK_OPTION_NAMES = ["psk", "passphrase", "work-factor", "ttl", "now", "sender"];

/**
 * `PskOptions` from `--option NAME=VALUE` pairs: `psk` (a key's text form), `passphrase`,
 * `work-factor` (log2 N), `ttl` (seconds), `now` (ms), `sender`. Unknown names and bad
 * values are `usage` errors; a bad key is a `key` error.
 */
export function parsePskOptions(pairs: Readonly<Record<string, string>>): PskOptions {
  for (const name of Object.keys(pairs)) {
    if (!PSK_OPTION_NAMES.includes(name)) {
      throw new MissiveError(
        "usage",
        `psk: unknown option ${JSON.stringify(name)} (have: ${PSK_OPTION_NAMES.join(", ")})`,
      );
    }
  }
  const uint = (key: string, digits: number) => {
    const raw = pairs[key];
    if (raw === undefined) return undefined;
    const n = new RegExp(`^\\d{1,${digits}}$`).test(raw) ? Number(raw) : NaN;
    if (!Number.isSafeInteger(n)) {
      throw new MissiveError("usage", `psk: ${key} must be a non-negative integer`);
    }
    return n;
  };
  const ttl = uint("ttl", 16);
  const options: PskOptions = {
    key: pairs.psk === undefined ? undefined : parseKeyText(pairs.psk, 16, 64),
    passphrase: pairs.passphrase,
    workFactor: uint("work-factor", 2),
    ttlMs: ttl === undefined ? undefined : ttl * 1000,
    nowMs: uint("now", 16),
    sender: pairs.sender,
  };
  if (options.workFactor !== undefined) checkWorkFactor(options.workFactor, "psk");
  return options;
}

/** The secret a caller supplied through STP options. */
export type SharedSecret = { kind: "key"; key: Bytes } | { kind: "passphrase"; passphrase: Bytes };

/**
 * The key or the passphrase (NFC-normalised UTF-8) of the options. Both at once are a
 * usage error when sealing; when opening, `prefer` says which the message needs.
 */
export function sharedSecret(
  options: PskOptions,
  name: string,
  keyBytes: { min: number; max: number },
  sealing: boolean,
  prefer?: "key" | "passphrase",
): SharedSecret {
  const { key, passphrase } = options;
  if (sealing && key !== undefined && passphrase !== undefined) {
    throw new MissiveError("usage", `${name}: give a key (--psk-file) or a passphrase, not both`);
  }
  const usePassphrase = passphrase !== undefined && (prefer === "passphrase" || key === undefined);
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
  if (key !== undefined) {
    if (!(key instanceof Uint8Array) || key.length < keyBytes.min || key.length > keyBytes.max) {
      const want = keyBytes.min === keyBytes.max
        ? `${keyBytes.min}`
        : `${keyBytes.min}..${keyBytes.max}`;
      throw new MissiveError("key", `${name} key: ${key?.length} bytes, need ${want}`);
    }
    return { kind: "key", key: new Uint8Array(key) };
  }
  throw new MissiveError(
    "usage",
    `${name}: a shared key is required (--psk-file FILE, --passphrase, or --option psk=KEY)`,
  );
}

function checkWorkFactor(logN: number, name: string): number {
  if (!(Number.isInteger(logN) && logN >= MIN_LOG_N && logN <= MAX_LOG_N)) {
    throw new MissiveError(
      "usage",
      `${name}: work-factor must be ${MIN_LOG_N}..${MAX_LOG_N}, got ${logN}`,
    );
  }
  return logN;
}

/** The work factor (scrypt log2 N), bounded; `DEFAULT_LOG_N` when absent. */
export function workFactor(options: PskOptions, name: string): number {
  return options.workFactor === undefined
    ? DEFAULT_LOG_N
    : checkWorkFactor(options.workFactor, name);
}

/** scrypt (RFC 7914) with r = 8, p = 1, 32 bytes out; logN must already be bounded. */
export async function scryptKey(passphrase: Bytes, salt: Uint8Array, logN: number): Promise<Bytes> {
  if (!(Number.isInteger(logN) && logN >= MIN_LOG_N && logN <= MAX_LOG_N)) {
    throw new MissiveError("internal", `scrypt: unbounded work factor ${logN}`);
  }
  return await scryptAsync(passphrase, salt, { N: 2 ** logN, r: 8, p: 1, dkLen: 32 }) as Bytes;
}

/** Freshness policy: a TTL in ms (none: any age) and the clock. */
export interface Freshness {
  ttlMs?: number;
  nowMs: number;
}

/** The freshness policy of the options (`ttlMs`, `nowMs`; default the real clock). */
export function freshnessOf(options: PskOptions, name: string): Freshness {
  for (const [key, v] of [["ttl", options.ttlMs], ["now", options.nowMs]] as const) {
    if (v !== undefined && !(Number.isSafeInteger(v) && v >= 0)) {
      throw new MissiveError("usage", `${name}: ${key} must be a non-negative integer`);
    }
  }
  return { ttlMs: options.ttlMs, nowMs: options.nowMs ?? Date.now() };
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
