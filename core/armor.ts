/**
 * PEM-like text armor shared by messages and key files (SPEC §2.2): base64 in 64-column
 * lines between `-----BEGIN LABEL-----` and `-----END LABEL-----`. Strict on read, in
 * the manner of age's armor: canonical base64, full lines but the last, LF or CRLF.
 * @module
 */
import { type Bytes, fromBase64, toBase64 } from "./bytes.ts";
import { MissiveError } from "./errors.ts";

const COLUMNS = 64;

const begin = (label: string) => `-----BEGIN ${label}-----`;
const end = (label: string) => `-----END ${label}-----`;

/** Characters of armored text for `maxBytes` of content, plus slack for markers. */
export function maxArmoredLength(maxBytes: number): number {
  return Math.ceil(maxBytes / 3) * 4 * (COLUMNS + 2) / COLUMNS + 256;
}

/** Armors bytes under `label` (e.g. "MISSIVE MESSAGE"). Ends with a newline. */
export function armorBlock(label: string, bytes: Uint8Array): string {
  const b64 = toBase64(bytes);
  const lines = [begin(label)];
  for (let i = 0; i < b64.length; i += COLUMNS) lines.push(b64.slice(i, i + COLUMNS));
  lines.push(end(label));
  return lines.join("\n") + "\n";
}

/** True when `text` (after leading whitespace) starts with the BEGIN line of `label`. */
export function isArmored(label: string, text: string): boolean {
  return text.trimStart().startsWith(begin(label));
}

/**
 * Extracts the bytes of one armored block. Text before and after the block is refused
 * unless `allowComments`, which lets `#` comment lines and blank lines stand around it
 * (key files carry their public card as a comment).
 */
export function dearmorBlock(
  label: string,
  text: string,
  options: { maxBytes: number; allowComments?: boolean; context?: string },
): Bytes {
  const context = options.context ?? "invalid armor";
  const limit = Math.floor(maxArmoredLength(options.maxBytes));
  if (text.length > limit) {
    throw new MissiveError(
      "too-large",
      `${context}: text longer than ${limit} characters (content at most ${options.maxBytes} bytes)`,
    );
  }
  const fail = (why: string): never => {
    throw new MissiveError("malformed", `${context}: ${why}`);
  };
  let lines = text.split(/\r?\n/);
  if (options.allowComments) lines = lines.filter((l) => l.trim() !== "" && !l.startsWith("#"));
  else lines = text.trim().split(/\r?\n/);
  const first = lines.indexOf(begin(label));
  if (first !== 0) fail(`missing ${begin(label)} line`);
  if (lines.length < 3 || lines[lines.length - 1] !== end(label)) fail(`missing ${end(label)}`);
  const body = lines.slice(1, -1);
  body.forEach((line, i) => {
    const last = i === body.length - 1;
    if (line.length === 0 || line.length > COLUMNS || (!last && line.length !== COLUMNS)) {
      fail(`line ${i + 2} has ${line.length} columns, expected ${COLUMNS}`);
    }
  });
  const bytes = fromBase64(body.join(""));
  if (!bytes) fail("not canonical base64");
  if (bytes!.length > options.maxBytes) {
    throw new MissiveError("too-large", `${context}: larger than ${options.maxBytes} bytes`);
  }
  return bytes!;
}
