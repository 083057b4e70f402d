/**
 * Detached signatures of files (SPEC §24): missive's own format, which carries the
 * signer's card, the file's length and SHA-512, a signing time and a trusted comment;
 * and minisign's, so a missive key can sign for `minisign -V` and missive can check
 * minisign's signatures. Files are read in blocks: memory stays constant whatever their
 * size.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createIdentity, getCryptoProvider } from "../mod.ts";
 * import { bytesSource } from "../stream/mod.ts";
 * import { detectSignatureFormat, signFile, verifyFile } from "./mod.ts";
 * const crypto = await getCryptoProvider();
 * const alice = await createIdentity(crypto, {
 *   address: "alice@example.org", stps: [[2, 3]], amps: [[1, 1]],
 * });
 * const file = new Uint8Array(100_000).fill(42);
 * // Bytes, or a source read in blocks (a file descriptor: fdSource in ../stream/mod.ts).
 * const sig = await signFile(bytesSource(file), alice, { comment: "build 17", created: 0 });
 * assert.equal(detectSignatureFormat(new TextEncoder().encode(sig)), "missive");
 * const ok = await verifyFile(sig, bytesSource(file), { trusted: [alice.card], requireTrust: true });
 * assert.equal(ok.size, 100_000);
 * assert.equal(ok.signer.address, "alice@example.org");
 * // A valid signature from someone not trusted: `untrusted` under requireTrust.
 * await assert.rejects(verifyFile(sig, file, { requireTrust: true }), { code: "untrusted" });
 * ```
 * @module
 */
import { type Bytes, concatBytes, equalBytes } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import { getCryptoProvider } from "../crypto/mod.ts";
import type { CryptoProvider } from "../crypto/provider.ts";
import { type Card, sameKeys } from "../keys/card.ts";
import type { Identity } from "../keys/identity.ts";
import { type ByteSource, bytesSource } from "../stream/mod.ts";
import { digestInput } from "./_digest.ts";
import {
  looksLikeSignatureText,
  type ParsedSignature,
  parseSignatureText,
  signatureText,
  signDigest,
  verifySignedFields,
} from "./format.ts";
import {
  looksLikeMinisign,
  type MinisignAlgorithm,
  minisignKeyFor,
  type MinisignPublicKey,
  minisignSign,
  type MinisignSignature,
  minisignVerify,
  parseMinisignSignature,
} from "./minisign.ts";

export {
  checkComment,
  decodeSignature,
  MAX_COMMENT_LENGTH,
  MAX_SIGNATURE_BYTES,
  MAX_SIGNATURE_TEXT,
  type ParsedSignature,
  parseSignatureText,
  SIGNATURE_ARMOR,
  SIGNATURE_FORMAT,
  signatureText,
  signDigest,
  verifySignedFields,
} from "./format.ts";
export {
  cardMinisignKey,
  formatKeyId,
  MAX_MINISIGN_TEXT,
  type MinisignAlgorithm,
  minisignKeyId,
  type MinisignPublicKey,
  minisignPublicKeyText,
  type MinisignSignature,
  parseMinisignPublicKey,
  parseMinisignSignature,
} from "./minisign.ts";

/** Largest file a legacy (`Ed`, not prehashed) minisign signature is checked over. */
export const MAX_LEGACY_MINISIGN_FILE = 64 * 1024 * 1024;

/** What a file to sign or check is: a source read in blocks, or bytes. */
export type FileInput = ByteSource | Uint8Array;

/** Options of `signFile`. */
export interface SignFileOptions {
  /** The trusted comment (one line); default `file:NAME` with `fileName`, else empty. */
  comment?: string;
  /** The file's name, for the default comment. */
  fileName?: string;
  /** Signing time in ms; default now. */
  created?: number;
  /** The primitives; default `getCryptoProvider()`. */
  crypto?: CryptoProvider;
  /** Bytes read so far (long files). */
  onProgress?: (bytes: number) => void;
}

/**
 * Signs a file in missive's format; returns the signature's text (SPEC §24).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createIdentity, getCryptoProvider } from "../mod.ts";
 * import { signFile, verifyFile } from "./mod.ts";
 * const crypto = await getCryptoProvider();
 * const alice = await createIdentity(crypto, {
 *   address: "alice@example.org", stps: [[2, 2]], amps: [[1, 1]],
 * });
 * const file = new TextEncoder().encode("release 1.0\n");
 * const sig = await signFile(file, alice, { fileName: "release.txt" });
 * assert.match(sig, /^-----BEGIN MISSIVE SIGNATURE-----\n/);
 * const ok = await verifyFile(sig, file, { trusted: [alice.card] });
 * assert.equal(ok.trusted, true);
 * assert.equal(ok.comment, "file:release.txt");
 * await assert.rejects(verifyFile(sig, new TextEncoder().encode("release 1.1\n")), {
 *   code: "auth-failed",
 * });
 * ```
 */
export async function signFile(
  input: FileInput,
  identity: Identity,
  options: SignFileOptions = {},
): Promise<string> {
  const crypto = options.crypto ?? await getCryptoProvider();
  const comment = options.comment ??
    (options.fileName !== undefined ? `file:${options.fileName}` : "");
  const { size, digest } = await digestInput(crypto, input, "sha512", options);
  const bytes = await signDigest(crypto, identity, { size, sha512: digest }, {
    comment,
    created: options.created,
  });
  return signatureText(bytes);
}

/** A missive signature that verified. */
export interface VerifiedFile {
  /** Tells the result apart from `VerifiedMinisign`. */
  format: "missive";
  /** The signer's card (attached to the signature). */
  signer: Card;
  /** The signer holds the keys of one of the trusted cards. */
  trusted: boolean;
  /** Signing time, ms since the epoch. */
  created: number;
  /** The trusted comment: signed, but chosen by the signer (sanitise before showing). */
  comment: string;
  /** The signed file's length in bytes (the file checked has this length). */
  size: number;
  /** The signed file's 64-byte SHA-512 (the file checked has this digest). */
  sha512: Bytes;
}

/** Options of `verifyFile`. */
export interface VerifyFileOptions {
  /** Cards whose holders are trusted. */
  trusted?: readonly Card[];
  /** Refuse (`untrusted`) a signer who is not trusted. */
  requireTrust?: boolean;
  /** The primitives; default `getCryptoProvider()`. */
  crypto?: CryptoProvider;
  /** Bytes of the file read so far (long files). */
  onProgress?: (bytes: number) => void;
}

/**
 * Checks a missive signature (its text or parsed form) against a file, in the order of
 * SPEC §24.3: the signature and its card (`auth-failed`), then the file's length and
 * SHA-512 (`auth-failed`: the file changed), then trust (`untrusted` with
 * `requireTrust`). Reading stops as soon as the file is longer than the signed one. See
 * `signFile` for an example.
 */
export async function verifyFile(
  signature: string | ParsedSignature,
  input: FileInput,
  options: VerifyFileOptions = {},
): Promise<VerifiedFile> {
  const crypto = options.crypto ?? await getCryptoProvider();
  const parsed = typeof signature === "string" ? parseSignatureText(signature) : signature;
  const signer = await verifySignedFields(crypto, parsed);
  const file = await digestInput(crypto, input, "sha512", {
    stopAfter: parsed.size,
    onProgress: options.onProgress,
  });
  if (file.size !== parsed.size) {
    throw new MissiveError(
      "auth-failed",
      file.size > parsed.size
        ? `the file changed: it is longer than the ${parsed.size} bytes signed`
        : `the file changed: it is ${file.size} bytes, the signed file was ${parsed.size}`,
    );
  }
  if (!equalBytes(file.digest, parsed.sha512)) {
    throw new MissiveError("auth-failed", "the file changed: its SHA-512 is not the signed one");
  }
  const trusted = (options.trusted ?? []).some((t) => sameKeys(t, signer));
  if (options.requireTrust && !trusted) {
    throw new MissiveError(
      "untrusted",
      `untrusted signer: ${signer.address} is not a trusted card (the signature is valid)`,
    );
  }
  return {
    format: "missive",
    signer,
    trusted,
    created: parsed.created,
    comment: parsed.comment,
    size: parsed.size,
    sha512: parsed.sha512,
  };
}

/** Options of `signFileMinisign`. */
export interface SignMinisignOptions {
  /**
   * The trusted comment; default minisign's own, `timestamp:SECONDS\tfile:NAME\thashed`
   * (the file part only with `fileName`).
   */
  trustedComment?: string;
  /** Line 1 of the file (unsigned); default `signature from missive key ADDRESS`. */
  untrustedComment?: string;
  /** The file's name, for the default trusted comment. */
  fileName?: string;
  /** The clock for the default comment, ms; default now. */
  now?: number;
  /** The primitives; default `getCryptoProvider()`. */
  crypto?: CryptoProvider;
  /** Bytes of the file read so far (long files). */
  onProgress?: (bytes: number) => void;
}

/**
 * Signs a file in minisign's format (prehashed `ED`, SPEC §24.6) with a missive identity:
 * `minisign -V -p KEY` verifies it with the key `minisignPublicKeyText(card)` writes. A
 * trusted comment over 8173 bytes or holding CR, LF or NUL is `usage`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createIdentity, getCryptoProvider } from "../mod.ts";
 * import {
 *   minisignPublicKeyText, parseMinisignPublicKey, signFileMinisign, verifyFileMinisign,
 * } from "./mod.ts";
 * const crypto = await getCryptoProvider();
 * const alice = await createIdentity(crypto, {
 *   address: "alice@example.org", stps: [[2, 3]], amps: [[1, 1]],
 * });
 * const file = new TextEncoder().encode("release 1.0\n");
 * const text = await signFileMinisign(file, alice, { fileName: "notes.txt", now: 1_700_000_000_000 });
 * assert.match(text, /^untrusted comment: signature from missive key alice@example.org\n/);
 * const key = parseMinisignPublicKey(minisignPublicKeyText(alice.card));
 * const sig = new TextEncoder().encode(text);
 * const ok = await verifyFileMinisign(sig, file, [key]);
 * assert.equal(ok.algorithm, "ED");
 * assert.equal(new TextDecoder().decode(ok.trustedComment), "timestamp:1700000000\tfile:notes.txt\thashed");
 * await assert.rejects(verifyFileMinisign(sig, new Uint8Array(3), [key]), { code: "auth-failed" });
 * ```
 */
export async function signFileMinisign(
  input: FileInput,
  identity: Identity,
  options: SignMinisignOptions = {},
): Promise<string> {
  const crypto = options.crypto ?? await getCryptoProvider();
  const seconds = Math.floor((options.now ?? Date.now()) / 1000);
  const trustedComment = options.trustedComment ??
    [
      `timestamp:${seconds}`,
      ...(options.fileName !== undefined ? [`file:${options.fileName}`] : []),
      "hashed",
    ].join("\t");
  const { digest } = await digestInput(crypto, input, "blake2b512", options);
  return await minisignSign(crypto, identity, digest, {
    trustedComment,
    untrustedComment: options.untrustedComment,
  });
}

/** A minisign signature that verified. */
export interface VerifiedMinisign {
  /** Tells the result apart from `VerifiedFile`. */
  format: "minisign";
  /** `ED` (prehashed) or `Ed` (legacy). */
  algorithm: MinisignAlgorithm;
  /** The key (from the trusted ones) that made it. */
  key: MinisignPublicKey;
  /** The trusted comment's bytes, as signed (sanitise before showing). */
  trustedComment: Bytes;
}

/**
 * Checks a minisign signature against a file with one of `keys` (picked by key ID, else
 * `untrusted`): the file's signature, then the global signature over the trusted comment
 * (`auth-failed`). A legacy `Ed` signature needs the whole file in memory: files over
 * `MAX_LEGACY_MINISIGN_FILE` are refused (`too-large`).
 */
export async function verifyFileMinisign(
  signature: Uint8Array | MinisignSignature,
  input: FileInput,
  keys: readonly MinisignPublicKey[],
  options: { crypto?: CryptoProvider; onProgress?: (bytes: number) => void } = {},
): Promise<VerifiedMinisign> {
  const crypto = options.crypto ?? await getCryptoProvider();
  const sig = signature instanceof Uint8Array ? parseMinisignSignature(signature) : signature;
  const key = minisignKeyFor(sig, keys);
  const message = sig.algorithm === "ED"
    ? (await digestInput(crypto, input, "blake2b512", options)).digest
    : await readWholeFile(input, MAX_LEGACY_MINISIGN_FILE);
  await minisignVerify(crypto, sig, key, message);
  return { format: "minisign", algorithm: sig.algorithm, key, trustedComment: sig.trustedComment };
}

async function readWholeFile(input: FileInput, max: number): Promise<Uint8Array> {
  const source = input instanceof Uint8Array ? bytesSource(input) : input;
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const block = await source.read(Math.min(4 * 1024 * 1024, max + 1 - total));
    if (block.length === 0) break;
    total += block.length;
    if (total > max) {
      throw new MissiveError(
        "too-large",
        `a legacy (non-prehashed) minisign signature is checked over files up to ${max} bytes ` +
          "only; sign without minisign -l",
      );
    }
    parts.push(block.slice());
  }
  return concatBytes(...parts);
}

/** The formats a signature file may be in. */
export type SignatureFormat = "missive" | "minisign";

/**
 * Which format a signature file is in, by its first line: missive's armor or minisign's
 * `untrusted comment:`. Anything else is `malformed`.
 */
export function detectSignatureFormat(bytes: Uint8Array): SignatureFormat {
  if (looksLikeMinisign(bytes)) return "minisign";
  const head = new TextDecoder().decode(bytes.subarray(0, 256));
  if (looksLikeSignatureText(head)) return "missive";
  throw new MissiveError(
    "malformed",
    "not a signature: expected -----BEGIN MISSIVE SIGNATURE----- or a minisign signature " +
      "(untrusted comment: …)",
  );
}

// Types that this entry point's signatures name (and the types those name), re-exported
// so that its documentation is complete on its own.
