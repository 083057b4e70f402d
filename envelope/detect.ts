/**
 * Form detection for envelopes (SPEC §2.4): binary, armor or one line, told apart by
 * their first bytes.
 * @module
 */
import type { Bytes } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import { looksLikeEnvelope } from "./binary.ts";
import { dearmor, fromLine, looksArmored, MAX_ARMOR_SIZE } from "./text.ts";

/**
 * Reads a message in any of the three forms (binary, armor, line) and returns the
 * binary envelope bytes. Detection: binary starts with d9 d9 f7; armor with its header;
 * anything else is tried as one base64 line.
 */
export function unwrapAnyForm(input: Uint8Array): Bytes {
  if (looksLikeEnvelope(input)) return input as Bytes;
  if (input.every((b) => b === 0x20 || (b >= 0x09 && b <= 0x0d))) {
    throw new MissiveError(
      "malformed",
      "input is empty: expected an envelope (binary, armor or one line)",
    );
  }
  if (input.length > MAX_ARMOR_SIZE) {
    throw new MissiveError("too-large", `input: larger than the envelope size limit`);
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(input);
  } catch {
    throw new MissiveError("malformed", "input is neither a binary envelope nor text");
  }
  if (looksArmored(text)) return dearmor(text);
  const lines = text.trim().split(/\r?\n/);
  if (lines.length !== 1) {
    throw new MissiveError("malformed", "input is not an envelope (binary, armor or one line)");
  }
  return fromLine(lines[0]);
}
