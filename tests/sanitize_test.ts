/**
 * The terminal sanitiser (core/sanitize.ts, DESIGN §9): nothing a peer chose can reach a
 * terminal as a control character, escape sequence, bidi override or invisible character.
 * @module
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { hasUnsafeNameCharacters, sanitizeText } from "../core/sanitize.ts";

// What may never come out: C0 but tab (and newline in multiline), DEL, C1, bidi controls,
// zero-width characters, separators, BOM, lone surrogates.
const FORBIDDEN =
  // deno-lint-ignore no-control-regex
  /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]/;

describe("sanitizeText", () => {
  it("shows the plain-sender spoof of issue 11 visibly", () => {
    const spoof =
      "mallory\r\x1b[2K\x1b[8mmissive: simple v2 from alice: signature verified, trusted";
    const out = sanitizeText(spoof);
    assert.ok(!out.includes("\r") && !out.includes("\x1b"));
    assert.ok(out.startsWith("mallory\\r\\x1b[2K\\x1b[8m"), out);
  });

  it("escapes C0, C1, DEL, bidi, zero-width and lone surrogates; keeps the rest", () => {
    assert.equal(sanitizeText("a\u0007b\u009bc\u007fd"), "a\\x07b\\x9bc\\x7fd");
    assert.equal(
      sanitizeText("x\u202ey\u2066z\u200bw\ufeff"),
      "x\\u{202e}y\\u{2066}z\\u{200b}w\\u{feff}",
    );
    assert.equal(sanitizeText("lone \ud800 high"), "lone \\u{d800} high");
    assert.equal(
      sanitizeText("emoji \u{1f600} ok, é, 中文, tab\tok"),
      "emoji \u{1f600} ok, é, 中文, tab\tok",
    );
    assert.equal(sanitizeText("back\\slash"), "back\\\\slash");
    assert.equal(sanitizeText("one\ntwo\n"), "one\\ntwo");
    assert.equal(sanitizeText("one\ntwo\r\n", { multiline: true }), "one\ntwo\\r\n");
  });

  it("never lets a forbidden character through, for random input", () => {
    let seed = 42;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let i = 0; i < 3000; i++) {
      let s = "";
      for (let j = 0; j < 40; j++) {
        const r = rnd();
        s += String.fromCharCode(
          r < 0.3
            ? Math.floor(rnd() * 0xa0)
            : r < 0.5
            ? 0x2000 + Math.floor(rnd() * 0x80)
            : r < 0.6
            ? 0xd800 + Math.floor(rnd() * 0x800)
            : Math.floor(rnd() * 0x10000),
        );
      }
      for (const multiline of [false, true]) {
        const out = sanitizeText(s, { multiline });
        assert.ok(!FORBIDDEN.test(out), JSON.stringify(out));
        if (!multiline) assert.ok(!out.includes("\n"));
        assert.ok(out.isWellFormed(), "no lone surrogates");
      }
    }
  });
});

describe("hasUnsafeNameCharacters", () => {
  it("refuses controls and bidi overrides in names, accepts ordinary names", () => {
    for (
      const bad of ["a\u0000", "x\u001b[31m", "r\u0085", "gpj.\u202eexe", "a\u2066b", "\u200fx"]
    ) {
      assert.equal(hasUnsafeNameCharacters(bad), true, JSON.stringify(bad));
    }
    for (const good of ["report.pdf", "Übersicht 2026.txt", "日本語.md", "a b-c_d"]) {
      assert.equal(hasUnsafeNameCharacters(good), false, good);
    }
  });
});
