/**
 * The one sanitiser for text a peer or a sender chose (DESIGN §9): addresses, claimed
 * senders, notes, file names, message text shown in a UI, a peer's error reasons. Before
 * such text reaches a terminal, every character that could be interpreted rather than
 * shown is written as a visible escape: C0 and C1 controls (so no escape sequence, no
 * carriage return rewriting a line), DEL, bidirectional overrides and isolates (U+202E
 * turns "gpj.exe" around), zero-width and other invisible format characters, line and
 * paragraph separators, and lone surrogates. The backslash itself is doubled, so an
 * escape in the output always means an escape was made.
 * @module
 */

/**
 * Characters shown as escapes: C0 (but tab and, where allowed, newline), DEL, C1, the
 * Arabic letter mark, zero-width and direction marks, line/paragraph separators, bidi
 * embeddings/overrides/isolates, invisible operators, the BOM/ZWNBSP, interlinear
 * annotation and object replacement, and lone surrogates.
 */
const UNSAFE =
  // deno-lint-ignore no-control-regex
  /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\\]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** Bidi controls, C0/C1 controls and DEL: never acceptable in a name (file, stream). */
// deno-lint-ignore no-control-regex
const UNSAFE_IN_NAME = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

function escape(c: string): string {
  switch (c) {
    case "\\":
      return "\\\\";
    case "\n":
      return "\\n";
    case "\r":
      return "\\r";
  }
  const code = c.charCodeAt(0);
  return code <= 0xff
    ? `\\x${code.toString(16).padStart(2, "0")}`
    : `\\u{${code.toString(16).padStart(4, "0")}}`;
}

/** Options of `sanitizeText`. */
export interface SanitizeOptions {
  /** Keep newlines as newlines (message bodies shown in a UI); default false. */
  multiline?: boolean;
}

/**
 * Makes peer-chosen text safe to print on a terminal: what could be interpreted is shown
 * as an escape (`\x1b`, `\r`, `\u{202e}`, `\\`), everything else is kept. Without
 * `multiline` the result is one line: a trailing newline is dropped and the others are
 * shown as `\n`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sanitizeText } from "./sanitize.ts";
 * assert.equal(sanitizeText("alice\r\x1b[2Kbob"), "alice\\r\\x1b[2Kbob");
 * assert.equal(sanitizeText("evil\u202Etxt.exe"), "evil\\u{202e}txt.exe");
 * assert.equal(sanitizeText("two\nlines", { multiline: true }), "two\nlines");
 * ```
 */
export function sanitizeText(text: string, options: SanitizeOptions = {}): string {
  const body = options.multiline ? text : text.replace(/\r?\n$/, "");
  return body.replace(UNSAFE, (c) => (c === "\n" && options.multiline ? c : escape(c)));
}

/**
 * True when a name (a file or stream name a sender chose) holds a control character or a
 * bidirectional control, which missive refuses rather than shows (SPEC §5.6).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hasUnsafeNameCharacters } from "./sanitize.ts";
 * assert.equal(hasUnsafeNameCharacters("report.pdf"), false);
 * assert.equal(hasUnsafeNameCharacters("fdp.\u202Eexe"), true);
 * assert.equal(hasUnsafeNameCharacters("a\u0085b"), true);
 * ```
 */
export function hasUnsafeNameCharacters(name: string): boolean {
  return UNSAFE_IN_NAME.test(name);
}
