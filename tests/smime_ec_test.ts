/**
 * The `smime` STP with EC P-256 identities against OpenSSL (`openssl cms`, a subprocess):
 * ECDSA signers and ECDH key agreement (KeyAgreeRecipientInfo) both ways, with
 * EnvelopedData (AES-256-CBC) and AuthEnvelopedData (AES-256-GCM); and hostile input to
 * the key-agreement decoder.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fromUtf8 } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import { certificatesToPem, parseCertificates } from "../keys/x509.ts";
import { openCms, parseSmimeOptions } from "../stp/smime/mod.ts";
import { runCli, tempDir } from "./helpers.ts";
import { openssl } from "./openssl_pki.ts";

const version = fromUtf8(openssl(["version"])).trim();
const { dir, cleanup } = tempDir("missive-smime-ec-");
const at = (name: string) => join(dir, name);
after(cleanup);

const P256 = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

/** An EC CA, and alice and bob (P-256) certified by it; rsa-bob is an RSA certificate. */
function makePki(): void {
  openssl([
    ...["req", "-x509", ...P256, "-keyout", at("ca.key"), "-out", at("ca.pem")],
    ...["-subj", "/CN=EC Test CA", "-days", "30"],
    ...["-addext", "basicConstraints=critical,CA:TRUE"],
    ...["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
  ]);
  for (const who of ["alice", "bob"]) {
    openssl([
      ...["req", ...P256, "-keyout", at(`${who}-ec.key`), "-out", at(`${who}.csr`)],
      ...["-subj", `/CN=${who}`],
    ]);
    writeFileSync(
      at(`${who}.ext`),
      "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyAgreement\n" +
        `subjectAltName=email:${who}@example.org\n`,
    );
    openssl([
      ...["x509", "-req", "-in", at(`${who}.csr`), "-CA", at("ca.pem"), "-CAkey", at("ca.key")],
      ...["-CAcreateserial", "-out", at(`${who}-ec.pem`), "-days", "30"],
      ...["-extfile", at(`${who}.ext`)],
    ]);
  }
  openssl([
    ...["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", at("rsa.key")],
    ...["-out", at("rsa.pem"), "-subj", "/CN=rsa", "-days", "30"],
  ]);
}
makePki();

const MESSAGE = "EC grüße\nline two\n";
const alice = ["--cert", at("alice-ec.pem"), "--key", at("alice-ec.key")];
const bob = ["--cert", at("bob-ec.pem"), "--key", at("bob-ec.key")];

async function missiveSeal(cipher: string, format: string): Promise<Uint8Array> {
  const r = await runCli(
    ["seal", "--stp", "smime", ...alice, "--to", at("bob-ec.pem"), "--format", format].concat(
      ["--cipher", cipher],
    ),
    { stdin: MESSAGE },
  );
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

describe(`smime EC P-256: missive → OpenSSL (${version})`, () => {
  for (const [cipher, format] of [["aes-256-cbc", "der"], ["aes-256-gcm", "smime"]]) {
    it(`ECDSA + ECDH, ${cipher}, --format ${format}: openssl cms -decrypt then -verify`, async () => {
      const sealed = await missiveSeal(cipher, format);
      const inform = format === "der" ? ["-inform", "DER"] : [];
      const printed = fromUtf8(openssl(["cms", "-cmsout", "-print", ...inform], sealed));
      assert.match(printed, /d\.kari:[\s\S]*dhSinglePass-stdDH-sha256kdf-scheme/);
      assert.match(printed, /id-aes256-wrap/);
      const signed = openssl([
        ...["cms", "-decrypt", ...inform, "-recip", at("bob-ec.pem")],
        ...["-inkey", at("bob-ec.key")],
      ], sealed);
      const signedPrint = fromUtf8(openssl(["cms", "-cmsout", "-print", "-inform", "DER"], signed));
      assert.match(signedPrint, /ecdsa-with-SHA256/);
      const plain = openssl(
        ["cms", "-verify", "-inform", "DER", "-CAfile", at("ca.pem"), "-purpose", "any"],
        signed,
      );
      assert.equal(fromUtf8(plain), MESSAGE);
    });
  }
});

/** OpenSSL signs with alice's EC key (opaque, DER), then encrypts to bob's EC cert. */
function opensslSealed(encryptArgs: string[]): Uint8Array {
  writeFileSync(at("msg.txt"), MESSAGE);
  const signed = openssl([
    ...["cms", "-sign", "-nodetach", "-binary", "-in", at("msg.txt"), "-outform", "DER"],
    ...["-signer", at("alice-ec.pem"), "-inkey", at("alice-ec.key")],
  ]);
  return openssl(
    ["cms", "-encrypt", "-binary", "-recip", at("bob-ec.pem"), ...encryptArgs],
    signed,
  );
}

async function missiveOpen(input: Uint8Array) {
  writeFileSync(at("in.bin"), input);
  return await runCli(["open", ...bob, "--trust", at("ca.pem"), at("in.bin")]);
}

describe(`smime EC P-256: OpenSSL (${version}) → missive`, () => {
  const cases: [string, string[], RegExp][] = [
    ["default (sha1kdf), -aes256, DER", ["-aes256", "-outform", "DER"], /sha1kdf/],
    ["-aes-256-gcm, S/MIME text", ["-aes-256-gcm"], /sha1kdf/],
    [
      "ecdh_kdf_md:sha256, -aes256",
      ["-aes256", "-outform", "DER", "-keyopt", "ecdh_kdf_md:sha256"],
      /sha256kdf/,
    ],
  ];
  for (const [name, args, kdf] of cases) {
    it(`sign | encrypt ${name}: opens, signer verified and trusted`, async () => {
      const sealed = opensslSealed(args);
      const inform = args.includes("DER") ? ["-inform", "DER"] : [];
      assert.match(fromUtf8(openssl(["cms", "-cmsout", "-print", ...inform], sealed)), kdf);
      const r = await missiveOpen(sealed);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.text, MESSAGE);
      assert.match(r.stderr, /from alice@example\.org.*signature verified, trusted/);
    });
  }

  it("an EC message opened with an RSA identity is not-a-recipient; EC cert + RSA key is `key`", async () => {
    writeFileSync(at("in.bin"), opensslSealed(["-aes256", "-outform", "DER"]));
    const other = await runCli(["open", "--cert", at("rsa.pem"), "--key", at("rsa.key")].concat(
      at("in.bin"),
    ));
    assert.equal(other.code, 5, other.stderr);
    const mixed = await runCli(["open", "--cert", at("bob-ec.pem"), "--key", at("rsa.key")].concat(
      at("in.bin"),
    ));
    assert.equal(mixed.code, 9, mixed.stderr);
    assert.match(mixed.stderr, /EC recipient, non-EC key/);
  });
});

describe("smime EC P-256: hostile input to key agreement", () => {
  const options = () =>
    parseSmimeOptions({
      cert: certificatesToPem(parseCertificates(readFileSync(at("bob-ec.pem")))),
      key: fromUtf8(readFileSync(at("bob-ec.key"))),
      "trust-certs": certificatesToPem(parseCertificates(readFileSync(at("ca.pem")))),
    });

  it("every bit flip inside the KeyAgreeRecipientInfo is refused with a typed error", async () => {
    // The CBC and GCM tamper loops of smime_test.ts cover every byte of an RSA message;
    // here only the kari (the part that differs, shared by both ciphers) is walked.
    for (const cipher of ["aes-256-cbc"]) {
      const der = await missiveSeal(cipher, "der");
      assert.equal(fromUtf8((await openCms(der, await options())).content), MESSAGE);
      // The kari starts at its [1] IMPLICIT tag (a1) after the version; find its extent.
      const start = der.indexOf(0xa1);
      assert.ok(start > 0 && start < 40, `kari at ${start}`);
      const len = der[start + 1] === 0x81 ? der[start + 2] + 3 : der[start + 1] + 2;
      const codes = new Set<string>();
      for (let i = start; i < start + len; i++) {
        const bad = Uint8Array.from(der);
        bad[i] ^= 1 << (i % 8);
        try {
          await openCms(bad, await options());
          assert.fail(`flip at ${i} survived`);
        } catch (e) {
          if (!(e instanceof MissiveError) || e.code === "internal") throw e;
          codes.add(e.code);
        }
      }
      assert.ok(codes.has("malformed") && codes.has("auth-failed"), [...codes].join(","));
    }
  });

  it("truncations, flips and garbage via the CLI: typed errors, nothing on stdout", async () => {
    const der = await missiveSeal("aes-256-cbc", "der");
    const inputs: Uint8Array[] = [];
    for (const n of [1, 2, 10, 40, 100, der.length >> 1, der.length - 1]) {
      inputs.push(der.slice(0, n));
    }
    for (const i of [5, 30, 60, 90, 120, der.length - 5]) {
      const bad = Uint8Array.from(der);
      bad[i] ^= 0xff;
      inputs.push(bad);
    }
    inputs.push(Uint8Array.from([0x30, 0x80, 0, 0]));
    inputs.push(Uint8Array.from({ length: 300 }, (_, i) => (i * 73 + 0x30) & 0xff));
    for (const input of inputs) {
      const r = await missiveOpen(input);
      assert.ok([3, 4, 5, 8].includes(r.code), `exit ${r.code}: ${r.stderr}`);
      assert.equal(r.stdout.length, 0);
      assert.match(r.stderr, /^missive: /);
    }
  });
});
