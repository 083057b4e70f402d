/**
 * missive's detached signature of a file (SPEC §24): the signer's card, the file's
 * length and SHA-512, a signing time and a trusted comment, signed with Ed25519 over a
 * domain-separated transcript; written as armored text (`MISSIVE SIGNATURE`). This file
 * is the format only: encoding, strict decoding, and the signature over the stated
 * digest; sign/mod.ts hashes files and decides trust.
 * @module
 */
import { armorBlock, dearmorBlock, isArmored, maxArmoredLength } from "../core/armor.ts";
import type { Bytes } from "../core/bytes.ts";
import { CborReader, type CborValue, decodeCbor, encodeCbor, transcript } from "../core/cbor.ts";
import { MissiveError } from "../core/errors.ts";
import type { CryptoProvider } from "../crypto/provider.ts";
import { type Card, decodeCard, MAX_CARD_SIZE } from "../keys/card.ts";
import type { Identity } from "../keys/identity.ts";

/** Armor label of the text form. */
export const SIGNATURE_ARMOR = "MISSIVE SIGNATURE";
/** Field 1 of every signature this version writes and reads. */
export const SIGNATURE_FORMAT = 1;
/** Largest encoded signature (CBOR bytes); the armored text is limited accordingly. */
export const MAX_SIGNATURE_BYTES = 8192;
/** Longest trusted comment, in UTF-16 code units (SPEC §1.1). */
export const MAX_COMMENT_LENGTH = 1024;
/** Largest armored signature text, in characters. */
export const MAX_SIGNATURE_TEXT: number = maxArmoredLength(MAX_SIGNATURE_BYTES);

/** The signature's transcript label (SPEC §24.2, Appendix A). */
const LABEL_FILE = "missive/signature/v1/file";

/** A decoded signature: every field, not yet verified. */
export interface ParsedSignature {
  /** The attached card's bytes (field 2), exactly as signed. */
  cardBytes: Bytes;
  /** Signing time, ms since the epoch (field 3). */
  created: number;
  /** The signed file's length in bytes (field 4). */
  size: number;
  /** The signed file's SHA-512 (field 5). */
  sha512: Bytes;
  /** The trusted comment (field 6): signed, one line. */
  comment: string;
  /** Ed25519 signature (field 7). */
  signature: Bytes;
}

/** The bytes the signer signs (SPEC §24.2): rebuilt from the fields, never re-encoded. */
function signedTranscript(f: Omit<ParsedSignature, "signature">): Bytes {
  return transcript(LABEL_FILE, f.cardBytes, f.created, f.size, f.sha512, f.comment);
}

/** Refuses a trusted comment that is not one line of at most `MAX_COMMENT_LENGTH`. */
export function checkComment(comment: string, code: "usage" | "malformed" = "usage"): string {
  if (comment.length > MAX_COMMENT_LENGTH) {
    throw new MissiveError(code, `signature comment: longer than ${MAX_COMMENT_LENGTH}`);
  }
  if (/[\r\n]/.test(comment)) {
    throw new MissiveError(code, "signature comment: must be one line (no CR or LF)");
  }
  return comment;
}

/**
 * Signs a file's length and SHA-512 with `identity`; returns the signature's CBOR bytes.
 * The card attached is the identity's own.
 */
export async function signDigest(
  crypto: CryptoProvider,
  identity: Identity,
  file: { size: number; sha512: Uint8Array },
  options: { comment?: string; created?: number } = {},
): Promise<Bytes> {
  if (file.sha512.length !== 64) throw new MissiveError("internal", "sign: SHA-512 is 64 bytes");
  if (!Number.isSafeInteger(file.size) || file.size < 0) {
    throw new MissiveError("internal", "sign: file size out of range");
  }
  const fields = {
    cardBytes: identity.card.bytes,
    created: options.created ?? Date.now(),
    size: file.size,
    sha512: Uint8Array.from(file.sha512) as Bytes,
    comment: checkComment(options.comment ?? ""),
  };
  const signature = await crypto.ed25519Sign(identity.signingSeed, signedTranscript(fields));
  return encodeCbor(
    new Map<number, CborValue>([
      [1, SIGNATURE_FORMAT],
      [2, fields.cardBytes],
      [3, fields.created],
      [4, fields.size],
      [5, fields.sha512],
      [6, fields.comment],
      [7, signature],
    ]),
  );
}

/** The text form: the CBOR bytes armored under `MISSIVE SIGNATURE` (SPEC §24.1). */
export function signatureText(bytes: Uint8Array): string {
  return armorBlock(SIGNATURE_ARMOR, bytes);
}

/** True when `text` (after leading white space) starts like missive's signature armor. */
export function looksLikeSignatureText(text: string): boolean {
  return isArmored(SIGNATURE_ARMOR, text);
}

/**
 * Decodes a signature's CBOR (SPEC §24.3 steps 2–4): `too-large`, `malformed`, or
 * `unknown-protocol` for another format number. Nothing is verified yet.
 */
export function decodeSignature(bytes: Uint8Array): ParsedSignature {
  if (bytes.length > MAX_SIGNATURE_BYTES) {
    throw new MissiveError("too-large", `signature: larger than ${MAX_SIGNATURE_BYTES} bytes`);
  }
  const r = CborReader.from(decodeCbor(bytes, "signature"), "signature");
  const format = r.uint(1);
  if (format !== SIGNATURE_FORMAT) {
    throw new MissiveError(
      "unknown-protocol",
      `signature: format ${format} is not supported (this missive reads format ${SIGNATURE_FORMAT})`,
    );
  }
  r.onlyKeys([1, 2, 3, 4, 5, 6, 7]);
  return {
    cardBytes: r.bytes(2, { max: MAX_CARD_SIZE }),
    created: r.uint(3),
    size: r.uint(4),
    sha512: r.bytes(5, 64),
    comment: checkComment(r.text(6, MAX_COMMENT_LENGTH), "malformed"),
    signature: r.bytes(7, 64),
  };
}

/** Reads the text form (SPEC §24.3 step 1, then `decodeSignature`). */
export function parseSignatureText(text: string): ParsedSignature {
  const bytes = dearmorBlock(SIGNATURE_ARMOR, text, {
    maxBytes: MAX_SIGNATURE_BYTES,
    context: "signature",
  });
  return decodeSignature(bytes);
}

/**
 * Checks the attached card and the signature over the stated fields (SPEC §24.3 steps
 * 5–6); returns the signer's card. Every failure is `auth-failed`. The file itself is
 * compared by the caller.
 */
export async function verifySignedFields(
  crypto: CryptoProvider,
  parsed: ParsedSignature,
): Promise<Card> {
  let card: Card;
  try {
    card = await decodeCard(crypto, parsed.cardBytes);
  } catch (e) {
    throw new MissiveError(
      "auth-failed",
      `signature: the attached card is invalid: ${(e as Error).message}`,
    );
  }
  const ok = await crypto.ed25519Verify(
    card.signingKey,
    signedTranscript(parsed),
    parsed.signature,
  );
  if (!ok) {
    throw new MissiveError(
      "auth-failed",
      "signature: does not verify under the attached card (the signature file was altered)",
    );
  }
  return card;
}
