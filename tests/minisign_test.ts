/**
 * minisign interoperability (SPEC §24.6) against the real `minisign` (Debian's package,
 * installed with apt-get when missing; if that fails, these tests fail): missive signs
 * with --format minisign and `minisign -V` (and `-VH`) verifies with the key `missive card
 * --minisign` exports; `minisign -S` signs (prehashed, and legacy with -l) with a key made
 * by `minisign -G -W` and `missive verify --trust KEY.pub` verifies; a changed file fails
 * on both sides (exit 4 for missive, failure for minisign), an altered trusted comment
 * too; the wrong key is exit 7; and the minisign decoders refuse bad input with typed
 * errors and nothing on stdout.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { blake2b } from "@noble/hashes/blake2.js";
import { ed25519 } from "@noble/curves/ed25519.js";
import { concatBytes, fromBase64, toBase64, utf8 } from "../core/bytes.ts";
import { isMissiveError } from "../core/errors.ts";
import { nobleProvider } from "../crypto/mod.ts";
import { writeKeyFile } from "../keys/identity.ts";
import {
  formatKeyId,
  minisignKeyId,
  parseMinisignPublicKey,
  parseMinisignSignature,
  verifyFileMinisign,
} from "../sign/mod.ts";
import { fixedIdentity, runCli, tempDir } from "./helpers.ts";

function ensureMinisign(): string {
  const probe = () => spawnSync("minisign", ["-v"], { encoding: "utf8" });
  let r = probe();
  if (r.status !== 0) {
    spawnSync("apt-get", ["update"], { stdio: "ignore" });
    spawnSync("apt-get", ["install", "-y", "--no-install-recommends", "minisign"], {
      stdio: "ignore",
    });
    r = probe();
  }
  if (r.status !== 0) throw new Error("minisign is missing and could not be installed");
  return r.stdout.trim();
}

const version = ensureMinisign();
const { dir, cleanup } = tempDir("missive-minisign-");
after(cleanup);
const at = (name: string) => join(dir, name);

/** Runs minisign; returns its exit code and output. */
function minisign(args: string[]) {
  const r = spawnSync("minisign", args, { encoding: "utf8", input: "" });
  if (r.error) throw r.error;
  return { code: r.status ?? 1, out: r.stdout + r.stderr };
}

const alice = await fixedIdentity("alice@example.org", 1);
writeFileSync(at("alice.key"), await writeKeyFile(nobleProvider, alice), { mode: 0o600 });
const FILE = at("release.tar");
const CONTENT = Uint8Array.from({ length: 200_000 }, (_, i) => (i * 13 + (i >> 7)) & 0xff);
writeFileSync(FILE, CONTENT);
// A minisign key pair without a password (-W), made by minisign itself.
const made = minisign(["-G", "-W", "-p", at("ms.pub"), "-s", at("ms.key")]);
assert.equal(made.code, 0, made.out);

describe(`minisign interop: missive signs, ${version} verifies`, () => {
  it("card --minisign exports the key minisign reads; minisign -V and -VH verify", async () => {
    const pub = await runCli(["card", "--minisign", at("alice.key")]);
    assert.equal(pub.code, 0, pub.stderr);
    const keyId = formatKeyId(minisignKeyId(alice.card));
    assert.match(pub.text, new RegExp(`^untrusted comment: minisign public key ${keyId}\nRW[Q-T]`));
    writeFileSync(at("alice.pub"), pub.stdout);
    const s = await runCli([
      ...["sign", "--key", at("alice.key"), "--format", "minisign", "-t", "release 1.0", FILE],
    ]);
    assert.equal(s.code, 0, s.stderr);
    assert.match(
      s.text,
      /^untrusted comment: .*\nRU[Q-T][A-Za-z0-9+/=]+\ntrusted comment: release 1\.0\n/,
    );
    writeFileSync(at("m.minisig"), s.stdout);
    for (const flags of [["-V"], ["-V", "-H"]]) {
      const v = minisign([...flags, "-m", FILE, "-x", at("m.minisig"), "-p", at("alice.pub")]);
      assert.equal(v.code, 0, v.out);
      assert.match(
        v.out,
        /Signature and comment signature verified\nTrusted comment: release 1\.0/,
      );
    }
    // And missive reads its own minisign signature, with the .pub or with the card.
    for (const trust of [at("alice.pub"), at("alice.key")]) {
      const r = await runCli(["verify", "--trust", trust, at("m.minisig"), FILE]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`verified with key ID ${keyId}`));
    }
  });

  it("the default trusted comment is minisign's: timestamp, file name, hashed", async () => {
    const s = await runCli(["sign", "--key", at("alice.key"), "--format", "minisign", FILE]);
    assert.equal(s.code, 0, s.stderr);
    assert.match(s.text, /\ntrusted comment: timestamp:\d+\tfile:release\.tar\thashed\n/);
    writeFileSync(at("d.minisig"), s.stdout);
    const v = minisign(["-Vm", FILE, "-x", at("d.minisig"), "-p", at("alice.pub")]);
    assert.equal(v.code, 0, v.out);
  });

  it("a changed file, or an altered trusted comment, fails in minisign", () => {
    const changed = Uint8Array.from(CONTENT);
    changed[100_000] ^= 1;
    writeFileSync(at("changed.tar"), changed);
    const v = minisign(["-Vm", at("changed.tar"), "-x", at("m.minisig"), "-p", at("alice.pub")]);
    assert.notEqual(v.code, 0);
    assert.match(v.out, /Signature verification failed/);
    const text = readFileSync(at("m.minisig"), "utf8").replace("release 1.0", "release 6.6");
    writeFileSync(at("altered.minisig"), text);
    const c = minisign(["-Vm", FILE, "-x", at("altered.minisig"), "-p", at("alice.pub")]);
    assert.notEqual(c.code, 0);
    assert.match(c.out, /Comment signature verification failed/);
  });
});

describe(`minisign interop: ${version} signs, missive verifies`, () => {
  it("minisign -S (prehashed, the default) → missive verify --trust KEY.pub", async () => {
    const s = minisign(["-S", "-s", at("ms.key"), "-m", FILE, "-x", at("ms.minisig"), "-t", "v2"]);
    assert.equal(s.code, 0, s.out);
    const r = await runCli(["verify", "--trust", at("ms.pub"), at("ms.minisig"), FILE]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.length, 0);
    const keyId = readFileSync(at("ms.pub"), "utf8").match(/public key ([0-9A-F]+)/)![1];
    assert.match(r.stderr, new RegExp(`minisign signature verified with key ID ${keyId}`));
    assert.match(r.stderr, /trusted comment: v2\n/);
    // The key as its base64 line (minisign's -P) works too.
    const line = readFileSync(at("ms.pub"), "utf8").split("\n")[1];
    const p = await runCli(["verify", "--trust", line, at("ms.minisig"), FILE]);
    assert.equal(p.code, 0, p.stderr);
  });

  it("minisign -S -l (legacy, not prehashed) verifies too, and says so", async () => {
    const s = minisign(["-S", "-l", "-s", at("ms.key"), "-m", FILE, "-x", at("legacy.minisig")]);
    assert.equal(s.code, 0, s.out);
    const r = await runCli(["verify", "--trust", at("ms.pub"), at("legacy.minisig"), FILE]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /legacy, not prehashed/);
  });

  it("a changed file: exit 4; the wrong key: exit 7; no --trust: a usage error (exit 2)", async () => {
    const changed = await runCli([
      "verify",
      "--trust",
      at("ms.pub"),
      at("ms.minisig"),
      at("changed.tar"),
    ]);
    assert.equal(changed.code, 4, changed.stderr);
    assert.match(changed.stderr, /minisign signature: does not verify/);
    assert.equal(changed.stdout.length, 0);
    const legacy = await runCli([
      ...["verify", "--trust", at("ms.pub"), at("legacy.minisig"), at("changed.tar")],
    ]);
    assert.equal(legacy.code, 4, legacy.stderr);
    const wrong = await runCli(["verify", "--trust", at("alice.pub"), at("ms.minisig"), FILE]);
    assert.equal(wrong.code, 7, wrong.stderr);
    assert.match(wrong.stderr, /made with key ID [0-9A-F]+, but --trust holds [0-9A-F]+/);
    const none = await runCli(["verify", at("ms.minisig"), FILE]);
    assert.equal(none.code, 2, none.stderr);
    assert.match(none.stderr, /a minisign signature carries no key: give the signer's public key/);
    const own = await runCli(["sign", "--key", at("alice.key"), FILE]);
    writeFileSync(at("own.sig"), own.stdout);
    const mixed = await runCli(["verify", "--trust", at("ms.pub"), at("own.sig"), FILE]);
    assert.equal(mixed.code, 2, mixed.stderr);
    assert.match(mixed.stderr, /is a minisign public key; a missive signature is checked with/);
  });

  it("a trusted comment altered by hand: exit 4, and control characters are shown escaped", async () => {
    const text = readFileSync(at("ms.minisig"), "utf8").replace(
      "trusted comment: v2",
      "trusted comment: v3",
    );
    writeFileSync(at("ms-altered.minisig"), text);
    const r = await runCli(["verify", "--trust", at("ms.pub"), at("ms-altered.minisig"), FILE]);
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /trusted comment's signature does not verify/);
    const s = minisign([
      ...["-S", "-s", at("ms.key"), "-m", FILE, "-x", at("esc.minisig")],
      ...["-t", "ok \x1b[31mred\u202e"],
    ]);
    assert.equal(s.code, 0, s.out);
    const e = await runCli(["verify", "--trust", at("ms.pub"), at("esc.minisig"), FILE]);
    assert.equal(e.code, 0, e.stderr);
    assert.ok(e.stderr.includes("trusted comment: ok \\x1b[31mred\\u{202e}\n"), e.stderr);
  });
});

describe("minisign decoders: bad input", () => {
  it("signatures: truncations, flips, garbage, oversize → typed errors; none verifies", async () => {
    const good = readFileSync(at("ms.minisig"));
    const key = parseMinisignPublicKey(readFileSync(at("ms.pub")));
    const ok = await verifyFileMinisign(good, CONTENT, [key]);
    assert.equal(ok.algorithm, "ED");
    const inputs: Uint8Array[] = [];
    for (let n = 0; n < good.length - 1; n += 3) inputs.push(good.subarray(0, n));
    for (let i = 0; i < good.length - 1; i++) {
      const bad = Uint8Array.from(good);
      bad[i] ^= 0x01;
      inputs.push(bad);
    }
    inputs.push(new Uint8Array(20_000).fill(0x61));
    inputs.push(Uint8Array.from({ length: 300 }, (_, i) => (i * 57) & 0xff));
    inputs.push(utf8("untrusted comment: x\nRUQ=\ntrusted comment: y\nAAAA\n"));
    inputs.push(concatBytes(good, utf8("extra line\n")));
    const codes = new Set<string>();
    for (const input of inputs) {
      try {
        await verifyFileMinisign(input, CONTENT, [key]);
        // A flip in the untrusted comment is allowed: that line is not signed.
        assert.ok(
          parseMinisignSignature(input).untrustedComment !== "signature from minisign secret key",
        );
      } catch (e) {
        if (!isMissiveError(e)) throw e;
        assert.ok(
          ["malformed", "too-large", "unknown-protocol", "auth-failed", "untrusted"].includes(
            e.code,
          ),
          `${e.code}: ${e.message}`,
        );
        codes.add(e.code);
      }
    }
    assert.ok(codes.has("malformed") && codes.has("auth-failed") && codes.has("too-large"));
  });

  it("public keys: bad ones are `key` errors naming the file; nothing on stdout", async () => {
    const good = readFileSync(at("ms.pub"), "utf8");
    const [comment, line] = good.split("\n");
    const blob = fromBase64(line)!;
    blob[1] = 0x44; // "ED": a prehashed algorithm is not a public key algorithm
    const wrongAlgorithm = `${comment}\n${toBase64(blob)}\n`;
    const bad = [
      "",
      "untrusted comment: x\n",
      wrongAlgorithm,
      good.split("\n")[1].slice(0, 40),
      "untrusted comment: a\nuntrusted comment: b\n" + good.split("\n")[1],
      good + "more\n",
    ];
    for (const text of bad) {
      assert.throws(
        () => parseMinisignPublicKey(text),
        (e) => isMissiveError(e) && e.code === "key",
      );
    }
    writeFileSync(at("bad.pub"), wrongAlgorithm);
    const r = await runCli(["verify", "--trust", at("bad.pub"), at("ms.minisig"), FILE]);
    assert.equal(r.code, 9, r.stderr);
    assert.match(r.stderr, /bad\.pub: minisign public key: unsupported signature algorithm/);
    assert.equal(r.stdout.length, 0);
  });

  it("the signature scheme is exactly SPEC §24.6 (noble alone): Ed25519(BLAKE2b-512(file)), then over sig ‖ comment", () => {
    const sig = readFileSync(at("m.minisig"), "utf8").split("\n");
    const pub = fromBase64(readFileSync(at("alice.pub"), "utf8").split("\n")[1])!;
    const blob = fromBase64(sig[1])!;
    assert.equal(new TextDecoder().decode(blob.subarray(0, 2)), "ED");
    assert.deepEqual(blob.subarray(2, 10), pub.subarray(2, 10));
    assert.deepEqual(pub.subarray(2, 10), alice.card.id.subarray(0, 8));
    assert.ok(ed25519.verify(blob.subarray(10), blake2b(CONTENT), pub.subarray(10)));
    const comment = utf8(sig[2].slice("trusted comment: ".length));
    const global = fromBase64(sig[3])!;
    assert.ok(ed25519.verify(global, concatBytes(blob.subarray(10), comment), pub.subarray(10)));
  });
});
