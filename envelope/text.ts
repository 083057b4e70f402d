/**
 * The envelope's two text forms (SPEC §2.2, §2.3): armor (`-----BEGIN MISSIVE
 * MESSAGE-----`, 64-column base64) and one line of base64 for `while read` loops.
 * @module
 */
import { armorBlock, dearmorBlock, isArmored, maxArmoredLength } from "../core/armor.ts";
import { type Bytes, fromBase64, toBase64 } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import { MAX_ENVELOPE_SIZE } from "./binary.ts";

const ARMOR_LABEL = "MISSIVE MESSAGE";
/** Most characters of armored text read for one envelope. */
export const MAX_ARMOR_SIZE: number = maxArmoredLength(MAX_ENVELOPE_SIZE);

/** Armors binary envelope bytes: `-----BEGIN MISSIVE MESSAGE-----`, 64-column base64. */
export function armor(bytes: Uint8Array): string {
  return armorBlock(ARMOR_LABEL, bytes);
}

/** True when text starts (after whitespace) with the message armor header. */
export function looksArmored(text: string): boolean {
  return isArmored(ARMOR_LABEL, text);
}

/** Removes message armor (strict: see core/armor.ts); throws `malformed` or `too-large`. */
export function dearmor(text: string): Bytes {
  return dearmorBlock(ARMOR_LABEL, text, { maxBytes: MAX_ENVELOPE_SIZE });
}

/** One envelope as one line of base64, for `while read` loops (no newline added). */
export function toLine(bytes: Uint8Array): string {
  return toBase64(bytes);
}

/** Parses one line form (surrounding whitespace ignored). */
export function fromLine(line: string): Bytes {
  const trimmed = line.trim();
  if (trimmed.length > Math.ceil(MAX_ENVELOPE_SIZE / 3) * 4) {
    throw new MissiveError("too-large", "line: larger than the envelope size limit");
  }
  const bytes = fromBase64(trimmed);
  if (!bytes || bytes.length === 0) {
    throw new MissiveError("malformed", "invalid line: not canonical base64");
  }
  return bytes;
}
