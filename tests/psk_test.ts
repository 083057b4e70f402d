/**
 * The `psk` STP (SPEC §13): v1 and v2 round trips through both providers, interop with
 * Python's cryptography.fernet both ways, TTL and clock skew with a fake clock, header
 * binding, tampering and truncation of bare tokens, bad key files, and the CLI flags.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { after, describe, it } from "node:test";
import { fromUtf8, toBase64, utf8 } from "../core/bytes.ts";
import { type CborValue, encodeCbor } from "../core/cbor.ts";
import { nobleProvider, webcryptoProvider } from "../crypto/mod.ts";
import { decodeEnvelope, encodeEnvelope } from "../envelope/mod.ts";
import { MissiveError } from "../core/errors.ts";
import { defaultRegistry, openMessage, sealMessage } from "../mod.ts";
import {
  detectFernetToken,
  fernetTokenText,
  openBareFernet,
  parseFernetToken,
  parsePskOptions,
  sealBareFernet,
} from "../stp/psk/mod.ts";
import { runCli, tempDir } from "./helpers.ts";

const registry = defaultRegistry();
const text = registry.find("amp", "text/1");
const KEY = toBase64(new Uint8Array(32).map((_, i) => i * 7 + 1), true) + "=";
const OTHER_KEY = toBase64(new Uint8Array(32).fill(9), true) + "=";
const LONG_KEY = toBase64(new Uint8Array(48).map((_, i) => 255 - i));
const PASS = { passphrase: "correct horse battery staple", "work-factor": "10" };
const T0 = 1_700_000_000_250;
const code = (c: string) => (e: unknown) => e instanceof MissiveError && e.code === c;

function seal(version: 1 | 2, options: Record<string, string>, extra: { seq?: number } = {}) {
  return sealMessage({
    stp: registry.find("stp", `psk/${version}`),
    amp: text,
    message: { text: `psk v${version} ✓` },
    optionPairs: options,
    sequenceNumber: extra.seq,
    now: T0,
  });
}
const open = (frame: Uint8Array, options: Record<string, string>, crypto = nobleProvider) =>
  openMessage(frame, { registry, optionPairs: options, crypto });

describe("psk STP: round trips", () => {
  for (const crypto of [nobleProvider, webcryptoProvider]) {
    for (
      const [version, name, options] of [
        [1, "key file", { psk: KEY }],
        [1, "48-byte key file", { psk: LONG_KEY }],
        [1, "passphrase", PASS],
        [2, "key file", { psk: KEY }],
        [2, "passphrase", PASS],
      ] as const
    ) {
      it(`v${version} with a ${name} via ${crypto.name}`, async () => {
        const sealed = await seal(version, { ...options, sender: "ops@example.org" }, { seq: 4 });
        const opened = await open(sealed, options, crypto);
        assert.deepEqual(opened.message, { text: `psk v${version} ✓` });
        assert.equal(opened.inner.timestamp, T0);
        assert.equal(opened.header.sequenceNumber, 4);
        assert.deepEqual(opened.sender, {
          address: "ops@example.org",
          verified: false,
          trusted: false,
        });
        assert.equal(opened.stp.properties.authentication, "shared-key");
        assert.equal(opened.stp.properties.nonRepudiation, false);
        assert.ok(opened.warnings.some((w) => /anyone who holds/.test(w)));
      });
    }
  }

  it("a wrong key or passphrase is auth-failed (no not-a-recipient for a shared key)", async () => {
    for (const version of [1, 2] as const) {
      await assert.rejects(
        open(await seal(version, { psk: KEY }), { psk: OTHER_KEY }),
        code("auth-failed"),
      );
      await assert.rejects(
        open(await seal(version, PASS), { ...PASS, passphrase: "another passphrase!" }),
        code("auth-failed"),
      );
    }
  });

  it("v1 says which kind of secret a message needs", async () => {
    await assert.rejects(open(await seal(1, PASS), { psk: KEY }), code("key"));
    await assert.rejects(open(await seal(1, { psk: KEY }), PASS), code("key"));
    await assert.rejects(open(await seal(1, { psk: KEY }), {}), code("usage"));
    await assert.rejects(seal(1, { psk: KEY, ...PASS }), code("usage"));
  });

  it("v1 refuses a work factor above 20 before running scrypt", async () => {
    const env = decodeEnvelope(await seal(1, PASS));
    const payload = encodeCbor(
      new Map<number, CborValue>([[1, new Uint8Array(16)], [2, 30], [3, new Uint8Array(24)], [
        4,
        new Uint8Array(16),
      ]]),
    );
    await assert.rejects(open(encodeEnvelope({ ...env, payload }), PASS), code("malformed"));
  });

  it("v2 binds the envelope header: a changed sequence number is refused", async () => {
    const env = decodeEnvelope(await seal(2, { psk: KEY }, { seq: 1 }));
    for (const sequenceNumber of [2, undefined]) {
      const moved = encodeEnvelope({ ...env, sequenceNumber });
      await assert.rejects(open(moved, { psk: KEY }), code("auth-failed"));
    }
  });
});

describe("psk STP: freshness with a fake clock", () => {
  for (const version of [1, 2] as const) {
    it(`v${version}: --ttl refuses expired and far-future messages with replay`, async () => {
      const sealed = await seal(version, { psk: KEY });
      const at = (now: number, ttl = "60") => open(sealed, { psk: KEY, ttl, now: String(now) });
      assert.deepEqual((await at(T0 + 59_000)).message, { text: `psk v${version} ✓` });
      await assert.rejects(at(T0 + 61_000), code("replay"));
      await assert.rejects(at(T0 - 61_000), code("replay"));
      assert.ok(await at(T0 - 59_000));
      // Without a TTL any age is accepted, as Fernet does.
      assert.ok(await open(sealed, { psk: KEY, now: String(T0 + 10 ** 10) }));
    });
  }

  it("bare tokens: TTL and clock skew, in whole seconds like Python", async () => {
    const token = parseFernetToken(
      await sealBareFernet(nobleProvider, utf8("tick"), {
        options: parsePskOptions({ psk: KEY }),
        now: T0,
      }),
    );
    const at = (now: number) =>
      openBareFernet(
        nobleProvider,
        token,
        parsePskOptions({ psk: KEY, ttl: "10", now: String(now) }),
      );
    assert.equal(fromUtf8((await at(T0 + 10_000)).plaintext), "tick");
    await assert.rejects(at(T0 + 11_000), code("replay"));
    await assert.rejects(at(T0 - 61_000), code("replay"));
  });
});

describe("psk STP: bare Fernet tokens", () => {
  it("any byte change and any truncation of a token fails with a MissiveError", async () => {
    const token = parseFernetToken(
      await sealBareFernet(webcryptoProvider, utf8("x"), {
        options: parsePskOptions({ psk: KEY }),
      }),
    );
    for (let i = 0; i < token.length; i++) {
      const bad = token.slice();
      bad[i] ^= 0x20;
      await assert.rejects(
        openBareFernet(nobleProvider, bad, parsePskOptions({ psk: KEY })),
        MissiveError,
        `byte ${i}`,
      );
    }
    for (let n = 0; n < token.length; n++) {
      await assert.rejects(
        openBareFernet(nobleProvider, token.subarray(0, n), parsePskOptions({ psk: KEY })),
        MissiveError,
      );
    }
  });

  it("detection tells tokens from envelopes in every form", async () => {
    const tokenText = await sealBareFernet(nobleProvider, utf8("y"), {
      options: parsePskOptions({ psk: KEY }),
    });
    assert.ok(detectFernetToken(utf8(tokenText + "\n")));
    assert.ok(detectFernetToken(utf8(tokenText.replace(/=+$/, ""))));
    const envelope = await seal(2, { psk: KEY });
    assert.equal(detectFernetToken(envelope), undefined);
    assert.equal(detectFernetToken(utf8(toBase64(envelope) + "\n")), undefined);
    assert.equal(detectFernetToken(utf8("gAAAA not base64")), undefined);
    assert.equal(detectFernetToken(utf8(fernetTokenText(new Uint8Array([0x81, 1, 2])))), undefined);
  });
});

/** Runs python3 with cryptography, installing Debian's python3-cryptography if missing. */
function python(code: string, input?: string): string {
  const r = spawnSync("python3", ["-c", code], { input, encoding: "utf8" });
  assert.equal(r.status, 0, `python3 failed: ${r.stderr}`);
  return r.stdout;
}
function ensurePythonCryptography(): void {
  const probe = () => spawnSync("python3", ["-c", "import cryptography.fernet"]).status === 0;
  if (probe()) return;
  const apt = (args: string[]) =>
    spawnSync("apt-get", args, {
      encoding: "utf8",
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
  let r = apt(["install", "-y", "python3-cryptography"]);
  if (r.status !== 0) {
    apt(["update"]);
    r = apt(["install", "-y", "python3-cryptography"]);
  }
  assert.ok(
    probe(),
    "the Python interop test needs python3 with cryptography; `apt-get install -y " +
      `python3-cryptography\` failed (${
        r.error?.message ?? r.stderr?.trim()
      }). Install it and rerun.`,
  );
}

describe("psk v2: Fernet interop with Python's cryptography", () => {
  it("a Python token opens with missive, and a missive token decrypts in Python", async () => {
    ensurePythonCryptography();
    const { dir, cleanup } = tempDir("missive-psk-python-");
    const keyFile = join(dir, "fernet.key");
    const key = python(
      "from cryptography.fernet import Fernet\nprint(Fernet.generate_key().decode())",
    );
    writeFileSync(keyFile, key);
    const fromPython = python(
      "from cryptography.fernet import Fernet\n" +
        `f = Fernet(open(${JSON.stringify(keyFile)}).read().strip())\n` +
        "print(f.encrypt('made in Python ✓'.encode()).decode())",
    );
    const opened = await runCli(["open", "--psk-file", keyFile, "--ttl", "600"], {
      stdin: fromPython,
    });
    assert.equal(opened.code, 0, opened.stderr);
    assert.equal(opened.text, "made in Python ✓");
    assert.match(opened.stderr, /fernet token/);

    const sealed = await runCli(
      ["seal", "--stp", "psk", "--version", "2", "--format", "fernet", "--psk-file", keyFile],
      { stdin: "made by missive ✓" },
    );
    assert.equal(sealed.code, 0, sealed.stderr);
    assert.match(sealed.text, /^gAAAAA[A-Za-z0-9_-]+=*\n$/);
    const decrypted = python(
      "import sys\nfrom cryptography.fernet import Fernet\n" +
        `f = Fernet(open(${JSON.stringify(keyFile)}).read().strip())\n` +
        "sys.stdout.write(f.decrypt(sys.stdin.read().strip(), ttl=600).decode())",
      sealed.text,
    );
    assert.equal(decrypted, "made by missive ✓");
    cleanup();
  });
});

describe("psk: CLI", () => {
  const { dir, cleanup } = tempDir("missive-psk-cli-");
  after(cleanup);
  const keyFile = join(dir, "k");
  writeFileSync(keyFile, KEY + "\n");

  it("envelopes of v1 and v2 round trip; --version picks the version", async () => {
    for (
      const flags of [["--stp", "psk/1"], ["--stp", "psk", "--version", "2"], ["--stp", "psk"]]
    ) {
      const s = await runCli(["seal", ...flags, "--psk-file", keyFile, "--lines"], { stdin: "hi" });
      assert.equal(s.code, 0, s.stderr);
      const o = await runCli(["open", "--psk-file", keyFile, "--json"], { stdin: s.stdout });
      assert.equal(o.code, 0, o.stderr);
      const report = JSON.parse(o.text);
      const want = flags.includes("psk/1") ? 1 : 2;
      assert.deepEqual([report.stp.name, report.stp.version, report.message.text], [
        "psk",
        want,
        "hi",
      ]);
    }
  });

  it("passphrase from MISSIVE_PASSPHRASE (v1)", async () => {
    const env = { MISSIVE_PASSPHRASE: "a shared passphrase" };
    const s = await runCli(
      ["seal", "--stp", "psk/1", "--passphrase", "--option", "work-factor=10", "--armor"],
      { stdin: "p", env },
    );
    assert.equal(s.code, 0, s.stderr);
    const o = await runCli(["open", "--passphrase"], { stdin: s.stdout, env });
    assert.equal([o.code, o.text].join(" "), "0 p");
  });

  it("an expired token exits 6 with --ttl (fake clock through --option now)", async () => {
    const s = await runCli(
      ["seal", "--stp", "psk/2", "--format", "fernet", "--psk-file", keyFile],
      {
        stdin: "old",
      },
    );
    const later = String(Date.now() + 3_600_000);
    const o = await runCli([
      "open",
      "--psk-file",
      keyFile,
      "--ttl",
      "60",
      "--option",
      `now=${later}`,
    ], {
      stdin: s.stdout,
    });
    assert.equal(o.code, 6, o.stderr);
    assert.equal(o.text, "");
  });

  it("usage errors: --format fernet outside psk/2, conflicting --version, bad --format", async () => {
    for (
      const flags of [
        ["--stp", "psk/1", "--format", "fernet"],
        ["--stp", "psk/2", "--format", "fernet", "--armor"],
        ["--stp", "psk/1", "--version", "2"],
        ["--stp", "psk/2", "--format", "pem"],
      ]
    ) {
      const r = await runCli(["seal", ...flags, "--psk-file", keyFile], { stdin: "x" });
      assert.equal(r.code, 2, `${flags.join(" ")}: ${r.stderr}`);
    }
  });

  it("bad key files exit 9 (key), a missing one 10 (io), no key 2 (usage)", async () => {
    const cases: [string, number][] = [
      ["", 9],
      ["not base64 at all!", 9],
      [toBase64(new Uint8Array(16), true), 9],
      [KEY + KEY, 9],
      ["x".repeat(5000), 3],
    ];
    for (const [content, want] of cases) {
      const f = join(dir, "bad");
      writeFileSync(f, content);
      for (const stp of ["psk/1", "psk/2"]) {
        const r = await runCli(["seal", "--stp", stp, "--psk-file", f, "--lines"], { stdin: "x" });
        assert.equal(r.code, want, `${stp} ${JSON.stringify(content.slice(0, 20))}: ${r.stderr}`);
      }
    }
    const missing = await runCli(["seal", "--stp", "psk", "--psk-file", join(dir, "nope")], {
      stdin: "x",
    });
    assert.equal(missing.code, 10, missing.stderr);
    const none = await runCli(["seal", "--stp", "psk", "--lines"], { stdin: "x" });
    assert.equal(none.code, 2, none.stderr);
  });
});
