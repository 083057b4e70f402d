/**
 * Detached signatures in missive's format (SPEC §24): the incremental hashes behind them
 * (every provider, any chunking), `missive sign` / `missive verify` through the CLI
 * (trusted, not trusted, --require-trust, a changed file, stdin, comments shown after
 * sanitising, usage errors with their texts), a 48 MiB file read in 1 MiB blocks, and
 * the signature decoder against truncation, flips, oversize and garbage: a typed error
 * and nothing on stdout, every time.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { blake2b } from "@noble/hashes/blake2.js";
import { sha512 } from "@noble/hashes/sha2.js";
import { fromBase64, toHex, utf8 } from "../core/bytes.ts";
import { isMissiveError, MissiveError } from "../core/errors.ts";
import {
  type CryptoProvider,
  getCryptoProvider,
  nobleProvider,
  webcryptoProvider,
} from "../crypto/mod.ts";
import { fingerprint } from "../keys/card.ts";
import { writeKeyFile } from "../keys/identity.ts";
import {
  MAX_SIGNATURE_TEXT,
  parseSignatureText,
  signatureText,
  signFile,
  verifyFile,
} from "../sign/mod.ts";
import type { ByteSource } from "../stream/mod.ts";
import { fixedIdentity, runCli, tempDir } from "./helpers.ts";

const { dir, cleanup } = tempDir("missive-sign-");
after(cleanup);
const at = (name: string) => join(dir, name);

const alice = await fixedIdentity("alice@example.org", 1);
const bob = await fixedIdentity("bob@example.org", 3);
writeFileSync(at("alice.key"), await writeKeyFile(nobleProvider, alice), { mode: 0o600 });
writeFileSync(at("bob.key"), await writeKeyFile(nobleProvider, bob), { mode: 0o600 });
for (const [who, key] of [["alice", "alice.key"], ["bob", "bob.key"]]) {
  const r = await runCli(["card", "--file", at(key)]);
  assert.equal(r.code, 0, r.stderr);
  writeFileSync(at(`${who}.card`), r.stdout);
}
const CONTENT = utf8("release 1.0\nchecksums and all\n");
writeFileSync(at("release.txt"), CONTENT);

async function signed(extra: string[] = [], file = at("release.txt")): Promise<string> {
  const r = await runCli(["sign", "--key", at("alice.key"), ...extra, file]);
  assert.equal(r.code, 0, r.stderr);
  return r.text;
}

describe("incremental hashes (crypto provider)", () => {
  const data = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 31 + (i >> 9)) & 0xff);
  const providers: [string, CryptoProvider][] = [
    ["noble", nobleProvider],
    ["webcrypto", webcryptoProvider],
  ];
  for (const [name, provider] of providers) {
    it(`${name}: SHA-512 and BLAKE2b-512 fed in any pieces equal noble's one-shot hash`, () => {
      for (const cuts of [[], [0], [1, 2, 3], [65_536, 65_537, 200_000], [299_999]]) {
        for (const [alg, oneShot] of [["sha512", sha512(data)], ["blake2b512", blake2b(data)]]) {
          const h = provider.hasher(alg as "sha512" | "blake2b512");
          let from = 0;
          for (const cut of [...cuts, data.length]) {
            h.update(data.subarray(from, cut));
            from = cut;
          }
          assert.equal(toHex(h.digest()), toHex(oneShot as Uint8Array), `${alg} ${cuts}`);
        }
      }
    });
  }
  it("the detected provider's hasher gives the same bytes", async () => {
    const h = (await getCryptoProvider()).hasher("sha512");
    h.update(data);
    assert.equal(toHex(h.digest()), toHex(sha512(data)));
  });
});

describe("missive sign / verify (own format)", () => {
  it("sign → verify --trust: verified, trusted; the trusted comment is shown", async () => {
    const sig = await signed();
    assert.match(
      sig,
      /^-----BEGIN MISSIVE SIGNATURE-----\n[A-Za-z0-9+/=\n]+-----END MISSIVE SIGNATURE-----\n$/,
    );
    writeFileSync(at("release.txt.sig"), sig);
    const r = await runCli([
      ...["verify", "--trust", at("alice.card"), at("release.txt.sig"), at("release.txt")],
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.length, 0);
    assert.match(
      r.stderr,
      new RegExp(
        `signature by alice@example\\.org \\(id ${
          toHex(alice.card.id)
        }\\) verified, trusted; signed 20`,
      ),
    );
    assert.match(r.stderr, /trusted comment: file:release\.txt\n/);
  });

  it("without --trust: verified, NOT trusted, with the fingerprint to compare (exit 0); --require-trust exits 7", async () => {
    writeFileSync(at("release.txt.sig"), await signed());
    const r = await runCli(["verify", at("release.txt.sig"), at("release.txt")]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /verified, NOT trusted/);
    const fp = await fingerprint(nobleProvider, alice.card);
    assert.ok(r.stderr.includes(`compare its fingerprint out of band: ${fp}`), r.stderr);
    const strict = await runCli([
      ...["verify", "--require-trust", at("release.txt.sig"), at("release.txt")],
    ]);
    assert.equal(strict.code, 7, strict.stderr);
    assert.match(strict.stderr, /untrusted signer: alice@example\.org is not a trusted card/);
  });

  it("--trust naming someone else: exit 7", async () => {
    writeFileSync(at("release.txt.sig"), await signed());
    const r = await runCli([
      ...["verify", "--trust", at("bob.card"), at("release.txt.sig"), at("release.txt")],
    ]);
    assert.equal(r.code, 7, r.stderr);
    assert.equal(r.stdout.length, 0);
  });

  it("a changed file (a bit flipped, a byte added, a byte lost, emptied): exit 4", async () => {
    writeFileSync(at("release.txt.sig"), await signed());
    const flipped = Uint8Array.from(CONTENT);
    flipped[3] ^= 0x20;
    const cases: [Uint8Array, RegExp][] = [
      [flipped, /its SHA-512 is not the signed one/],
      [utf8("release 1.0\nchecksums and all\n!"), /longer than the 30 bytes signed/],
      [CONTENT.subarray(0, 29), /it is 29 bytes, the signed file was 30/],
      [new Uint8Array(0), /it is 0 bytes/],
    ];
    for (const [content, why] of cases) {
      writeFileSync(at("changed.txt"), content);
      const r = await runCli([
        ...["verify", "--trust", at("alice.card"), at("release.txt.sig"), at("changed.txt")],
      ]);
      assert.equal(r.code, 4, r.stderr);
      assert.match(r.stderr, /^missive: the file changed: /);
      assert.match(r.stderr, why);
      assert.equal(r.stdout.length, 0);
    }
  });

  it("FILE - reads stdin; signing stdin has an empty default comment", async () => {
    const sig = await runCli(["sign", "--key", at("alice.key")], { stdin: CONTENT });
    assert.equal(sig.code, 0, sig.stderr);
    writeFileSync(at("stdin.sig"), sig.stdout);
    const r = await runCli(["verify", "--trust", at("alice.card"), at("stdin.sig"), "-"], {
      stdin: CONTENT,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /trusted comment: \n/);
    const file = await runCli([
      ...["verify", "--trust", at("alice.card"), at("stdin.sig"), at("release.txt")],
    ]);
    assert.equal(file.code, 0, file.stderr);
  });

  it("-t: a comment with escape sequences and bidi controls is shown escaped; two lines are refused", async () => {
    writeFileSync(at("c.sig"), await signed(["-t", "v1 \x1b[2J\u202egnp.exe"]));
    const r = await runCli([
      ...["verify", "--trust", at("alice.card"), at("c.sig"), at("release.txt")],
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stderr.includes("trusted comment: v1 \\x1b[2J\\u{202e}gnp.exe\n"), r.stderr);
    assert.ok(!r.stderr.includes("\x1b"));
    const two = await runCli(["sign", "--key", at("alice.key"), "-t", "a\nb", at("release.txt")]);
    assert.equal(two.code, 2);
    assert.match(two.stderr, /must be one line/);
    assert.equal(two.stdout.length, 0);
  });

  it("-o writes the signature file; an existing one needs --force", async () => {
    const out = at("o.sig");
    const r = await runCli(["sign", "--key", at("alice.key"), "-o", out, at("release.txt")]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(readFileSync(out, "utf8"), /^-----BEGIN MISSIVE SIGNATURE-----/);
    const again = await runCli(["sign", "--key", at("alice.key"), "-o", out, at("release.txt")]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /already exists/);
  });

  it("usage errors say what is missing", async () => {
    const cases: [string[], RegExp][] = [
      [["sign", at("release.txt")], /sign: which key\? \(--key KEY\)/],
      [
        ["sign", "--key", at("alice.key"), "--format", "pgp", at("release.txt")],
        /--format is missive or minisign/,
      ],
      [["verify", at("release.txt.sig")], /give the signature file and the file/],
      [["verify", "-", at("release.txt")], /the signature must be a file/],
      [
        ["sign", "--key", at("alice.card"), at("release.txt")],
        /is a public card, not a secret key/,
      ],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(args);
      assert.notEqual(r.code, 0, args.join(" "));
      assert.match(r.stderr, message, args.join(" "));
      assert.equal(r.stdout.length, 0);
    }
    const help = await runCli(["sign", "--help"]);
    assert.equal(help.code, 0);
    assert.match(help.text, /Exit codes: 0 signed/);
    const vhelp = await runCli(["verify", "--help"]);
    assert.match(vhelp.text, /Exit codes: 0 verified, .*4 the file changed/s);
  });

  it("a missing file or signature is an I/O error (exit 10)", async () => {
    writeFileSync(at("release.txt.sig"), await signed());
    const r = await runCli(["verify", at("release.txt.sig"), at("nope.txt")]);
    assert.equal(r.code, 10, r.stderr);
    const s = await runCli(["verify", at("nope.sig"), at("release.txt")]);
    assert.equal(s.code, 10, s.stderr);
  });
});

describe("large files", () => {
  it("48 MiB are read in blocks of at most 1 MiB, signed and verified; one flipped byte fails", async () => {
    const SIZE = 48 * 1024 * 1024;
    const byteAt = (i: number) => (i * 7 + (i >>> 16)) & 0xff;
    const flipAt = SIZE - 12_345;
    /** A generated file: no 48 MiB buffer anywhere; records the largest read asked for. */
    const source = (flip: boolean) => {
      let at = 0;
      const stats = { largest: 0 };
      const s: ByteSource = {
        read: () => Promise.reject(new Error("read() not expected: readInto only")),
        readInto(target) {
          stats.largest = Math.max(stats.largest, target.length);
          const n = Math.min(target.length, SIZE - at);
          for (let i = 0; i < n; i++) target[i] = byteAt(at + i);
          if (flip && flipAt >= at && flipAt < at + n) target[flipAt - at] ^= 1;
          at += n;
          return Promise.resolve(n);
        },
      };
      return { s, stats };
    };
    const one = source(false);
    const sig = await signFile(one.s, alice, { fileName: "big.bin" });
    assert.ok(one.stats.largest <= 1024 * 1024, `${one.stats.largest}`);
    const two = source(false);
    const ok = await verifyFile(sig, two.s, { trusted: [alice.card] });
    assert.equal(ok.size, SIZE);
    assert.ok(two.stats.largest <= 1024 * 1024);
    await assert.rejects(verifyFile(sig, source(true).s), { code: "auth-failed" });
  });
});

/** A good signature made once, for the decoder tests. */
const good = await signFile(CONTENT, alice, { fileName: "release.txt" });

describe("signature decoder: bad input", () => {
  it("every truncation, every flipped character, garbage and oversize: a typed error", async () => {
    const inputs: string[] = [];
    for (let n = 0; n < good.length - 1; n++) inputs.push(good.slice(0, n));
    // The final LF is excluded: LF ^ 1 is VT, white space that reading trims (SPEC §2.2).
    for (let i = 0; i < good.length - 1; i++) {
      const c = good.charCodeAt(i);
      inputs.push(good.slice(0, i) + String.fromCharCode(c ^ 0x01) + good.slice(i + 1));
    }
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 8;
    for (let k = 0; k < 50; k++) {
      inputs.push(String.fromCharCode(...Array.from({ length: rand() % 900 }, () => rand() % 256)));
    }
    inputs.push("-----BEGIN MISSIVE SIGNATURE-----\n" + "A".repeat(MAX_SIGNATURE_TEXT));
    const codes = new Set<string>();
    for (const input of inputs) {
      try {
        // Parsing may succeed (a flip inside a byte field keeps the CBOR valid); the
        // signature check then fails. Nothing ever verifies.
        parseSignatureText(input);
        codes.add("parsed");
      } catch (e) {
        if (!isMissiveError(e)) throw e;
        assert.ok(["malformed", "too-large", "unknown-protocol"].includes(e.code), e.message);
        codes.add(e.code);
      }
      await assert.rejects(
        verifyFile(input, CONTENT),
        (e) => isMissiveError(e) && e.code !== "internal",
      );
    }
    assert.ok(codes.has("malformed") && codes.has("too-large") && codes.has("parsed"));
  });

  it("flipped bits inside the CBOR: refused (malformed, unknown format) or not verified", async () => {
    const bytes = fromBase64(good.split("\n").slice(1, -2).join(""))!;
    const codes = new Set<string>();
    for (let i = 0; i < bytes.length; i++) {
      const bad = Uint8Array.from(bytes);
      bad[i] ^= 1 << (i % 8);
      try {
        await verifyFile(signatureText(bad), CONTENT);
        assert.fail(`flip at ${i} verified`);
      } catch (e) {
        if (!(e instanceof MissiveError)) throw e;
        codes.add(e.code);
      }
    }
    for (const code of codes) {
      assert.ok(["malformed", "auth-failed", "unknown-protocol", "too-large"].includes(code), code);
    }
    assert.ok(codes.has("malformed") && codes.has("auth-failed"), [...codes].join());
  });

  it("through the CLI: nothing on stdout, one line on stderr, exit 3/4/8", async () => {
    const bytes = fromBase64(good.split("\n").slice(1, -2).join(""))!;
    const inputs: Uint8Array[] = [
      utf8(good.slice(0, good.length >> 1)),
      utf8(good.replace("MISSIVE SIGNATURE-----\n", "MISSIVE SIGNATURE-----\n ")),
      utf8(signatureText(bytes.subarray(0, bytes.length - 3))),
      utf8(signatureText(Uint8Array.from(bytes, (b, i) => (i === 40 ? b ^ 4 : b)))),
      new Uint8Array(MAX_SIGNATURE_TEXT + 10).fill(0x41),
      Uint8Array.from({ length: 500 }, (_, i) => (i * 91) & 0xff),
      utf8(""),
    ];
    for (const [k, input] of inputs.entries()) {
      writeFileSync(at("bad.sig"), input);
      const r = await runCli([
        "verify",
        "--trust",
        at("alice.card"),
        at("bad.sig"),
        at("release.txt"),
      ]);
      assert.ok([3, 4, 8].includes(r.code), `input ${k}: exit ${r.code}: ${r.stderr}`);
      assert.equal(r.stdout.length, 0);
      assert.equal(r.stderr.split("\n").filter(Boolean).length, 1, r.stderr);
    }
    writeFileSync(at("bad.sig"), "hello\n");
    const r = await runCli(["verify", at("bad.sig"), at("release.txt")]);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /not a signature: expected -----BEGIN MISSIVE SIGNATURE-----/);
  });
});
