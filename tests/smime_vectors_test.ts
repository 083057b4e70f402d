/**
 * The smime corpus (tests/vectors/smime.json, SPEC §18): CMS messages written by
 * OpenSSL for fixed identities, opened through the CLI as bare DER. Every case states the
 * recipient, the trusted CA, an optional byte flip and the outcome.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fromBase64, toHex } from "../core/bytes.ts";
import { ERROR_CODES, type ErrorCode } from "../core/errors.ts";
import { sha256 } from "@noble/hashes/sha2.js";
import { runCli, tempDir } from "./helpers.ts";

interface SmimeCase {
  name: string;
  message: string;
  recipient: string;
  trust: string;
  flip?: number;
  expect: "success" | ErrorCode;
}
interface SmimeCorpus {
  trust: Record<string, string>;
  identities: Record<string, { cert: string; key: string }>;
  plaintextSha256: string;
  messages: Record<string, string>;
  cases: SmimeCase[];
}

const corpus: SmimeCorpus = JSON.parse(
  readFileSync(new URL("./vectors/smime.json", import.meta.url), "utf8"),
);

describe("smime vectors (OpenSSL-made CMS)", () => {
  it("every case gives its stated outcome; failures ≥ successes", async () => {
    const { dir, cleanup } = tempDir();
    try {
      for (const [name, pem] of Object.entries(corpus.trust)) {
        writeFileSync(join(dir, `${name}.pem`), pem);
      }
      for (const [name, id] of Object.entries(corpus.identities)) {
        writeFileSync(join(dir, `${name}.pem`), id.cert);
        writeFileSync(join(dir, `${name}.key`), id.key);
      }
      const problems: string[] = [];
      for (const c of corpus.cases) {
        const bytes = fromBase64(corpus.messages[c.message])!;
        if (c.flip !== undefined) bytes[c.flip < 0 ? bytes.length + c.flip : c.flip] ^= 1;
        const input = join(dir, "in.der");
        writeFileSync(input, bytes);
        const r = await runCli([
          "open",
          ...["--cert", join(dir, `${c.recipient}.pem`), "--key", join(dir, `${c.recipient}.key`)],
          ...["--trust", join(dir, `${c.trust}.pem`), "--require-trust", input],
        ]);
        if (c.expect === "success") {
          if (r.code !== 0 || toHex(sha256(r.stdout)) !== corpus.plaintextSha256) {
            problems.push(`${c.name}: exit ${r.code} ${r.stderr.trim()}`);
          }
        } else if (r.code !== ERROR_CODES[c.expect] || r.stdout.length > 0) {
          problems.push(`${c.name}: exit ${r.code}, expected ${c.expect}: ${r.stderr.trim()}`);
        }
      }
      assert.deepEqual(problems, []);
      const successes = corpus.cases.filter((c) => c.expect === "success").length;
      assert.ok(successes >= 4 && corpus.cases.length - successes >= successes);
    } finally {
      cleanup();
    }
  });
});
