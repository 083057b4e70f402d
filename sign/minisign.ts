/**
 * minisign's formats (jedisct1/minisign, as minisign 0.11 reads and writes them; SPEC
 * §24.6): public key files, and signatures with a trusted comment and a global signature.
 * missive writes the prehashed algorithm `ED` (Ed25519 over BLAKE2b-512 of the file),
 * which every minisign since 0.8 verifies, with or without `-H`; it reads `ED` and the
 * legacy `Ed` (Ed25519 over the file itself). A missive identity's signing key is a
 * minisign key; its key ID is the first 8 bytes of the card's identity ID (SPEC §3.4).
 * @module
 */
import { type Bytes, concatBytes, equalBytes, fromBase64, toBase64, utf8 } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import type { CryptoProvider } from "../crypto/provider.ts";
import type { Card } from "../keys/card.ts";
import type { Identity } from "../keys/identity.ts";

/** minisign's signature algorithms: legacy (the file itself) and prehashed (BLAKE2b-512). */
export type MinisignAlgorithm = "Ed" | "ED";

const UNTRUSTED_PREFIX = "untrusted comment: ";
const TRUSTED_PREFIX = "trusted comment: ";
/** minisign's COMMENTMAXBYTES and TRUSTEDCOMMENTMAXBYTES (src/minisign.h). */
const COMMENT_MAX_BYTES = 1024;
const TRUSTED_COMMENT_MAX_BYTES = 8192;
/** Longest trusted comment minisign writes (it refuses len ≥ 8192 − sizeof prefix). */
export const MAX_TRUSTED_COMMENT_BYTES: number = TRUSTED_COMMENT_MAX_BYTES -
  (TRUSTED_PREFIX.length + 1) - 1;
/** Largest signature or public key file read. */
export const MAX_MINISIGN_TEXT = 16 * 1024;

/** A minisign public key: its 8-byte key ID and Ed25519 key. */
export interface MinisignPublicKey {
  /** 8 bytes; for a missive card, its identity ID's first 8 (`minisignKeyId`). */
  keyId: Bytes;
  /** The 32-byte Ed25519 public key. */
  publicKey: Bytes;
}

/** A parsed minisign signature file. */
export interface MinisignSignature {
  /** `ED` (prehashed with BLAKE2b-512) or `Ed` (legacy, over the whole file). */
  algorithm: MinisignAlgorithm;
  /** The 8-byte ID of the key that signed; picks the key among the trusted ones. */
  keyId: Bytes;
  /** The 64-byte Ed25519 signature over the file (or its BLAKE2b-512 for `ED`). */
  signature: Bytes;
  /** The trusted comment's bytes, exactly as signed by the global signature. */
  trustedComment: Bytes;
  /** The 64-byte Ed25519 signature over `signature ‖ trustedComment` (SPEC §24.6). */
  globalSignature: Bytes;
  /** Line 1's text: neither signed nor checked; never shown to a user as trusted. */
  untrustedComment: string;
}

/** The key ID of a missive card as a minisign key: the identity ID's first 8 bytes. */
export function minisignKeyId(card: Card): Bytes {
  return card.id.slice(0, 8);
}

/** A key ID as minisign prints it: the little-endian uint64 in upper-case hex (PRIX64). */
export function formatKeyId(keyId: Uint8Array): string {
  let n = 0n;
  for (let i = keyId.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(keyId[i]);
  return n.toString(16).toUpperCase();
}

/** The minisign public key of a card (its signing key and derived key ID). */
export function cardMinisignKey(card: Card): MinisignPublicKey {
  return { keyId: minisignKeyId(card), publicKey: card.signingKey.slice() };
}

/** A minisign public key file for a card, as `minisign -G` writes one. */
export function minisignPublicKeyText(card: Card): string {
  const keyId = minisignKeyId(card);
  const blob = concatBytes(utf8("Ed"), keyId, card.signingKey);
  return `${UNTRUSTED_PREFIX}minisign public key ${formatKeyId(keyId)}\n${toBase64(blob)}\n`;
}

/** Lines of a minisign file: split at LF, one trailing CR dropped per line. */
function lines(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i <= bytes.length; i++) {
    if (i === bytes.length || bytes[i] === 0x0a) {
      let end = i;
      if (end > start && bytes[end - 1] === 0x0d) end--;
      out.push(bytes.subarray(start, end));
      start = i + 1;
    }
  }
  // A final LF leaves an empty last line; trailing empty lines are allowed, nothing else.
  while (out.length > 0 && out[out.length - 1].length === 0) out.pop();
  return out;
}

function ascii(bytes: Uint8Array): string {
  return String.fromCharCode(...bytes);
}

function startsWith(line: Uint8Array, prefix: string): boolean {
  return line.length >= prefix.length && ascii(line.subarray(0, prefix.length)) === prefix;
}

function text(bytes: Uint8Array, what: string, code: "malformed" | "key"): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new MissiveError(code, `${what}: not UTF-8`);
  }
}

/**
 * Reads a minisign public key: a `.pub` file (an `untrusted comment:` line, then the key
 * line) or the bare key line (minisign's `-P`). Failures are `key` (`too-large` first).
 */
export function parseMinisignPublicKey(input: Uint8Array | string): MinisignPublicKey {
  const bytes = typeof input === "string" ? utf8(input) : input;
  if (bytes.length > MAX_MINISIGN_TEXT) {
    throw new MissiveError("too-large", `minisign public key: larger than ${MAX_MINISIGN_TEXT}`);
  }
  const fail = (why: string): never => {
    throw new MissiveError("key", `minisign public key: ${why}`);
  };
  let ls = lines(bytes);
  if (ls.length === 2) {
    if (!startsWith(ls[0], UNTRUSTED_PREFIX)) fail(`first line must start "${UNTRUSTED_PREFIX}"`);
    if (ls[0].length >= COMMENT_MAX_BYTES) fail("comment line too long");
    ls = ls.slice(1);
  }
  if (ls.length !== 1) fail("expected a comment line and a key line");
  const blob = fromBase64(text(ls[0], "minisign public key", "key"));
  if (!blob || blob.length !== 42) fail("the key line is not 42 bytes of base64");
  if (ascii(blob!.subarray(0, 2)) !== "Ed") fail("unsupported signature algorithm");
  return { keyId: blob!.slice(2, 10), publicKey: blob!.slice(10, 42) };
}

/** True when a signature file looks like minisign's (its first line). */
export function looksLikeMinisign(bytes: Uint8Array): boolean {
  return startsWith(bytes, UNTRUSTED_PREFIX);
}

/**
 * Parses a minisign signature file strictly: four lines (untrusted comment, signature,
 * trusted comment, global signature), nothing after them but empty lines. `too-large`,
 * `malformed`, or `unknown-protocol` for an algorithm other than `Ed`/`ED`.
 */
export function parseMinisignSignature(bytes: Uint8Array): MinisignSignature {
  if (bytes.length > MAX_MINISIGN_TEXT) {
    throw new MissiveError("too-large", `minisign signature: larger than ${MAX_MINISIGN_TEXT}`);
  }
  const fail = (why: string): never => {
    throw new MissiveError("malformed", `minisign signature: ${why}`);
  };
  const ls = lines(bytes);
  if (ls.length !== 4) fail(`expected 4 lines, got ${ls.length}`);
  const [untrusted, sigLine, trusted, globalLine] = ls;
  if (!startsWith(untrusted, UNTRUSTED_PREFIX)) fail(`line 1 must start "${UNTRUSTED_PREFIX}"`);
  if (untrusted.length >= COMMENT_MAX_BYTES) fail("untrusted comment too long");
  if (!startsWith(trusted, TRUSTED_PREFIX)) fail(`line 3 must start "${TRUSTED_PREFIX}"`);
  const comment = trusted.subarray(TRUSTED_PREFIX.length);
  if (comment.length > MAX_TRUSTED_COMMENT_BYTES) fail("trusted comment too long");
  // minisign keeps the comment as a C string: a NUL or CR would cut what it verifies.
  if (comment.includes(0) || comment.includes(0x0d)) fail("trusted comment holds NUL or CR");
  const sig = fromBase64(ascii(sigLine));
  if (!sig || sig.length !== 74) fail("line 2 is not 74 bytes of base64");
  const algorithm = ascii(sig!.subarray(0, 2));
  if (algorithm !== "Ed" && algorithm !== "ED") {
    throw new MissiveError(
      "unknown-protocol",
      `minisign signature: algorithm ${JSON.stringify(algorithm)} is not supported`,
    );
  }
  const global = fromBase64(ascii(globalLine));
  if (!global || global.length !== 64) fail("line 4 is not 64 bytes of base64");
  return {
    algorithm: algorithm as MinisignAlgorithm,
    keyId: sig!.slice(2, 10),
    signature: sig!.slice(10, 74),
    trustedComment: comment.slice(),
    globalSignature: global!,
    untrustedComment: text(
      untrusted.subarray(UNTRUSTED_PREFIX.length),
      "untrusted comment",
      "malformed",
    ),
  };
}

/**
 * Signs a file's BLAKE2b-512 (`ED`, minisign's default) with a missive identity; returns
 * the signature file's text.
 */
export async function minisignSign(
  crypto: CryptoProvider,
  identity: Identity,
  blake2b512: Uint8Array,
  options: { trustedComment: string; untrustedComment?: string },
): Promise<string> {
  const comment = utf8(options.trustedComment);
  const untrusted = options.untrustedComment ??
    `signature from missive key ${identity.card.address}`;
  if (comment.length > MAX_TRUSTED_COMMENT_BYTES) {
    throw new MissiveError(
      "usage",
      `trusted comment: longer than ${MAX_TRUSTED_COMMENT_BYTES} bytes`,
    );
  }
  if (/[\r\n\0]/.test(options.trustedComment) || /[\r\n\0]/.test(untrusted)) {
    throw new MissiveError("usage", "minisign comments must be one line (no CR, LF or NUL)");
  }
  if (utf8(UNTRUSTED_PREFIX + untrusted).length >= COMMENT_MAX_BYTES) {
    throw new MissiveError("usage", "untrusted comment: too long");
  }
  if (blake2b512.length !== 64) throw new MissiveError("internal", "minisign: BLAKE2b-512 is 64");
  const signature = await crypto.ed25519Sign(identity.signingSeed, blake2b512);
  const global = await crypto.ed25519Sign(identity.signingSeed, concatBytes(signature, comment));
  const blob = concatBytes(utf8("ED"), minisignKeyId(identity.card), signature);
  return `${UNTRUSTED_PREFIX}${untrusted}\n${toBase64(blob)}\n` +
    `${TRUSTED_PREFIX}${options.trustedComment}\n${toBase64(global)}\n`;
}

/** The key among `keys` whose ID the signature names; `untrusted` when none does. */
export function minisignKeyFor(
  sig: MinisignSignature,
  keys: readonly MinisignPublicKey[],
): MinisignPublicKey {
  const key = keys.find((k) => equalBytes(k.keyId, sig.keyId));
  if (!key) {
    throw new MissiveError(
      "untrusted",
      `minisign signature: made with key ID ${formatKeyId(sig.keyId)}, but --trust holds ` +
        (keys.map((k) => formatKeyId(k.keyId)).join(", ") || "no key"),
    );
  }
  return key;
}

/**
 * Verifies a minisign signature with `key` (SPEC §24.6): `message` is the file's
 * BLAKE2b-512 for `ED`, the file itself for `Ed`. Then the global signature over the
 * signature and the trusted comment. Failures are `auth-failed`.
 */
export async function minisignVerify(
  crypto: CryptoProvider,
  sig: MinisignSignature,
  key: MinisignPublicKey,
  message: Uint8Array,
): Promise<void> {
  if (!(await crypto.ed25519Verify(key.publicKey, message, sig.signature))) {
    throw new MissiveError(
      "auth-failed",
      "minisign signature: does not verify (the file changed, or the signature is not for it)",
    );
  }
  const global = concatBytes(sig.signature, sig.trustedComment);
  if (!(await crypto.ed25519Verify(key.publicKey, global, sig.globalSignature))) {
    throw new MissiveError(
      "auth-failed",
      "minisign signature: the trusted comment's signature does not verify (it was altered)",
    );
  }
}
