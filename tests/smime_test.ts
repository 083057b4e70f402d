/**
 * The `smime` STP against OpenSSL (`openssl cms`, run as a subprocess; installed with
 * apt-get when missing — if that fails, these tests fail): missive → OpenSSL and
 * OpenSSL → missive for RSA, CBC and GCM; PKCS #1 v1.5 key transport; --trust chains;
 * bare S/MIME and DER forms; and every byte of a message tampered.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { describe, it } from "node:test";
import { fromUtf8, utf8 } from "../bytes.ts";
import { MissiveError } from "../errors.ts";
import { certificatesToPem, parseCertificates, parsePrivateKey } from "../keys/x509.ts";
import { openCms } from "../stp/smime/mod.ts";
import { runCli, tempDir } from "./helpers.ts";

/** Runs openssl; returns stdout, or throws with its stderr. */
function openssl(args: string[], input?: Uint8Array | string): Uint8Array {
  const r = spawnSync("openssl", args, { input, maxBuffer: 1 << 24 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr}`);
  return new Uint8Array(r.stdout);
}

function ensureOpenssl(): string {
  const probe = () => spawnSync("openssl", ["version"], { encoding: "utf8" });
  let r = probe();
  if (r.status !== 0) {
    spawnSync("apt-get", ["update"], { stdio: "ignore" });
    spawnSync("apt-get", ["install", "-y", "openssl"], { stdio: "ignore" });
    r = probe();
  }
  if (r.status !== 0) throw new Error("openssl is missing and could not be installed");
  return r.stdout.trim();
}

const version = ensureOpenssl();
const { dir, cleanup } = tempDir("missive-smime-");
const at = (name: string) => join(dir, name);
process.on("exit", cleanup);

/** A CA, and alice and bob certified by it (RSA 2048); eve is self-signed. */
function makePki(): void {
  openssl([
    ...["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", at("ca.key")],
    ...["-out", at("ca.pem"), "-subj", "/CN=Test CA", "-days", "30"],
    ...["-addext", "basicConstraints=critical,CA:TRUE"],
    ...["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
  ]);
  for (const who of ["alice", "bob"]) {
    openssl([
      ...["req", "-newkey", "rsa:2048", "-nodes", "-keyout", at(`${who}.key`)],
      ...["-out", at(`${who}.csr`), "-subj", `/CN=${who}`],
    ]);
    writeFileSync(
      at(`${who}.ext`),
      "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n" +
        `subjectAltName=email:${who}@example.org\n`,
    );
    openssl([
      ...["x509", "-req", "-in", at(`${who}.csr`), "-CA", at("ca.pem"), "-CAkey", at("ca.key")],
      ...["-CAcreateserial", "-out", at(`${who}.pem`), "-days", "30"],
      ...["-extfile", at(`${who}.ext`)],
    ]);
  }
  openssl([
    ...["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", at("eve.key")],
    ...["-out", at("eve.pem"), "-subj", "/CN=eve", "-days", "30"],
  ]);
}
makePki();

const MESSAGE = "Grüße from the smime test\nline two\n";
const alice = ["--cert", at("alice.pem"), "--key", at("alice.key")];
const bob = ["--cert", at("bob.pem"), "--key", at("bob.key")];

async function missiveSeal(extra: string[], format = "der"): Promise<Uint8Array> {
  const r = await runCli(
    ["seal", "--stp", "smime", ...alice, "--to", at("bob.pem"), "--format", format, ...extra],
    { stdin: MESSAGE },
  );
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

/** The error code of opening `input` with bob's key, trusting the CA (0 on success). */
async function missiveOpen(input: Uint8Array, trust = at("ca.pem")) {
  writeFileSync(at("in.bin"), input);
  return await runCli(["open", ...bob, "--trust", trust, at("in.bin")]);
}

describe(`smime: missive → OpenSSL (${version})`, () => {
  for (const cipher of ["aes-256-cbc", "aes-256-gcm"]) {
    for (const format of ["der", "smime"]) {
      it(`RSA, ${cipher}, --format ${format}: openssl cms -decrypt then -verify -CAfile`, async () => {
        const sealed = await missiveSeal(["--cipher", cipher], format);
        const inform = format === "der" ? ["-inform", "DER"] : [];
        const signed = openssl([
          ...["cms", "-decrypt", ...inform, "-recip", at("bob.pem"), "-inkey", at("bob.key")],
        ], sealed);
        const plain = openssl(
          ["cms", "-verify", "-inform", "DER", "-CAfile", at("ca.pem"), "-purpose", "any"],
          signed,
        );
        assert.equal(fromUtf8(plain), MESSAGE);
      });
    }
  }
});

/** OpenSSL signs (opaque, DER) then encrypts with `encryptArgs`. */
function opensslSealed(encryptArgs: string[]): Uint8Array {
  writeFileSync(at("msg.txt"), MESSAGE);
  const signed = openssl([
    ...["cms", "-sign", "-nodetach", "-binary", "-in", at("msg.txt"), "-outform", "DER"],
    ...["-signer", at("alice.pem"), "-inkey", at("alice.key")],
  ]);
  return openssl(["cms", "-encrypt", "-binary", ...encryptArgs], signed);
}
const OAEP = [
  ...["-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256"],
  ...["-keyopt", "rsa_mgf1_md:sha256"],
];
const isDeno = "Deno" in globalThis;

describe(`smime: OpenSSL (${version}) → missive`, () => {
  it("sign | encrypt (RSA-OAEP, AES-256-CBC, DER) opens, signer verified and trusted", async () => {
    const der = opensslSealed(["-aes256", "-outform", "DER", "-recip", at("bob.pem"), ...OAEP]);
    const r = await missiveOpen(der);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.text, MESSAGE);
    assert.match(r.stderr, /from alice@example\.org.*signature verified, trusted/);
  });

  it("sign | encrypt -aes-256-gcm (AuthEnvelopedData, S/MIME text) opens", async () => {
    const smime = opensslSealed(["-aes-256-gcm", "-recip", at("bob.pem"), ...OAEP]);
    assert.match(fromUtf8(smime), /application\/(x-)?pkcs7-mime/);
    const r = await missiveOpen(smime);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.text, MESSAGE);
  });

  it("default PKCS #1 v1.5 key transport: opens with a warning under Deno, refused clearly by Bun", async () => {
    const der = opensslSealed(["-aes256", "-outform", "DER", "-recip", at("bob.pem")]);
    const r = await missiveOpen(der);
    if (isDeno) {
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.text, MESSAGE);
      assert.match(r.stderr, /warning: .*PKCS #1 v1\.5 key transport/);
    } else {
      assert.equal(r.code, 9, r.stderr);
      assert.match(r.stderr, /refuses RSA PKCS #1 v1\.5 decryption/);
    }
  });

  it("a signer that does not chain to --trust is untrusted (exit 7)", async () => {
    const der = opensslSealed(["-aes256", "-outform", "DER", "-recip", at("bob.pem"), ...OAEP]);
    const r = await missiveOpen(der, at("eve.pem"));
    assert.equal(r.code, 7);
    assert.match(r.stderr, /untrusted signer: it does not chain/);
    const none = await runCli(["open", ...bob, at("in.bin")]);
    assert.equal(none.code, 0, none.stderr);
    assert.match(none.stderr, /NOT trusted|not checked against any CA/);
  });

  it("an expired signer is untrusted", async () => {
    const sealed = await missiveSeal([]);
    const later = String(Date.now() + 60 * 86_400_000);
    writeFileSync(at("in.bin"), sealed);
    const r = await runCli([
      ...["open", ...bob, "--trust", at("ca.pem"), "--option", `now=${later}`, at("in.bin")],
    ]);
    assert.equal(r.code, 7);
    assert.match(r.stderr, /not valid at/);
  });

  it("a message for another certificate is not-a-recipient (exit 5)", async () => {
    const sealed = await missiveSeal([]);
    writeFileSync(at("in.bin"), sealed);
    const r = await runCli(["open", "--cert", at("eve.pem"), "--key", at("eve.key"), at("in.bin")]);
    assert.equal(r.code, 5, r.stderr);
  });
});

describe("smime: envelope form and tampering", () => {
  it("the envelope form round-trips through the CLI", async () => {
    const sealed = await missiveSeal(["--armor"], "envelope");
    assert.match(fromUtf8(sealed), /^-----BEGIN MISSIVE MESSAGE-----/);
    const r = await missiveOpen(sealed);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.text, MESSAGE);
  });

  it("encrypted PKCS #8 keys open with the passphrase, and refuse a wrong one", async () => {
    openssl([
      ...["pkcs8", "-topk8", "-in", at("bob.key"), "-out", at("bob.p8"), "-v2", "aes-256-cbc"],
      ...["-passout", "pass:correct horse"],
    ]);
    const sealed = await missiveSeal([]);
    writeFileSync(at("in.bin"), sealed);
    const args = ["open", "--cert", at("bob.pem"), "--key", at("bob.p8"), at("in.bin")];
    const ok = await runCli(args, { env: { MISSIVE_PASSPHRASE: "correct horse" } });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.text, MESSAGE);
    const bad = await runCli(args, { env: { MISSIVE_PASSPHRASE: "wrong" } });
    assert.equal(bad.code, 9, bad.stderr);
  });

  for (const cipher of ["aes-256-cbc", "aes-256-gcm"]) {
    it(`${cipher}: flipping any bit of any byte of the DER is refused`, async () => {
      const der = await missiveSeal(["--cipher", cipher]);
      const options = {
        cert: certificatesToPem(parseCertificates(readFileSync(at("bob.pem")))),
        key: fromUtf8(readFileSync(at("bob.key"))),
        "trust-certs": certificatesToPem(parseCertificates(readFileSync(at("ca.pem")))),
      };
      await parsePrivateKey(utf8(options.key));
      const opened = await openCms(der, options);
      assert.equal(fromUtf8(opened.content), MESSAGE);
      const codes = new Set<string>();
      const survivors: number[] = [];
      for (let i = 0; i < der.length; i++) {
        const bad = Uint8Array.from(der);
        bad[i] ^= 1 << (i % 8);
        try {
          await openCms(bad, options);
          survivors.push(i);
        } catch (e) {
          if (!(e instanceof MissiveError) || e.code === "internal") throw e;
          codes.add(e.code);
        }
      }
      assert.deepEqual(survivors, []);
      assert.ok(codes.has("auth-failed") && codes.has("malformed"), [...codes].join(","));
    });
  }
});
