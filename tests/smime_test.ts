/**
 * The `smime` STP against OpenSSL (`openssl cms`, run as a subprocess; installed with
 * apt-get when missing — if that fails, these tests fail): missive → OpenSSL and
 * OpenSSL → missive for RSA, CBC and GCM; PKCS #1 v1.5 key transport; --trust chains;
 * bare S/MIME and DER forms; every byte of a message tampered; keygen --x509 identities;
 * CompressedData (RFC 3274) both inside and around the signature.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { deflateSync } from "node:zlib";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import * as asn1js from "asn1js";
import { fromUtf8, utf8 } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import { certificatesToPem, parseCertificates, parsePrivateKey } from "../keys/x509.ts";
import { CMS, encodeContentInfo } from "../stp/smime/_cms.ts";
import { compressedData, decompress, MAX_DECOMPRESSED } from "../stp/smime/_compressed.ts";
import { encryptContent } from "../stp/smime/_enveloped.ts";
import { openCms, parseSmimeOptions } from "../stp/smime/mod.ts";
import { signContent } from "../stp/smime/_signed.ts";
import { runCli, tempDir } from "./helpers.ts";
import { ensureOpenssl, makeRsaPki, openssl } from "./openssl_pki.ts";

const version = ensureOpenssl();
const { dir, cleanup } = tempDir("missive-smime-");
const at = (name: string) => join(dir, name);
after(cleanup);

makeRsaPki(at);

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

describe(`smime: RSASSA-PSS signatures with OpenSSL (${version})`, () => {
  it("missive --option signature=pss verifies in OpenSSL, and OpenSSL's PSS opens in missive", async () => {
    const sealed = await missiveSeal(["--option", "signature=pss"]);
    const signed = openssl([
      ...["cms", "-decrypt", "-inform", "DER", "-recip", at("bob.pem"), "-inkey", at("bob.key")],
    ], sealed);
    assert.match(
      fromUtf8(openssl(["cms", "-cmsout", "-print", "-inform", "DER"], signed)),
      /rsassaPss/,
    );
    const plain = openssl(
      ["cms", "-verify", "-inform", "DER", "-CAfile", at("ca.pem"), "-purpose", "any"],
      signed,
    );
    assert.equal(fromUtf8(plain), MESSAGE);

    const der = opensslSealed(
      ["-aes256", "-outform", "DER", "-recip", at("bob.pem"), ...OAEP],
      ["-keyopt", "rsa_padding_mode:pss"],
    );
    const r = await missiveOpen(der);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.text, MESSAGE);
    assert.match(r.stderr, /signature verified, trusted/);
  });
});

/** OpenSSL signs (opaque, DER; `signArgs` added) then encrypts with `encryptArgs`. */
function opensslSealed(encryptArgs: string[], signArgs: string[] = []): Uint8Array {
  writeFileSync(at("msg.txt"), MESSAGE);
  const signed = openssl([
    ...["cms", "-sign", "-nodetach", "-binary", "-in", at("msg.txt"), "-outform", "DER"],
    ...["-signer", at("alice.pem"), "-inkey", at("alice.key"), ...signArgs],
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

  it("--trust DIR: a folder of certificates holding the CA makes the signer trusted", async () => {
    const der = opensslSealed(["-aes256", "-outform", "DER", "-recip", at("bob.pem"), ...OAEP]);
    const dir = at("trust.d");
    mkdirSync(dir, { recursive: true });
    copyFileSync(at("ca.pem"), join(dir, "ca.pem"));
    writeFileSync(join(dir, "notes.txt"), "not a certificate: ignored\n");
    const r = await missiveOpen(der, dir);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.text, MESSAGE);
    assert.match(r.stderr, /signature verified, trusted/);
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
      const options = await parseSmimeOptions({
        cert: certificatesToPem(parseCertificates(readFileSync(at("bob.pem")))),
        key: fromUtf8(readFileSync(at("bob.key"))),
        "trust-certs": certificatesToPem(parseCertificates(readFileSync(at("ca.pem")))),
      });
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

describe("smime: keygen --x509 identities with OpenSSL", () => {
  const cases = [
    { kind: "RSA-2048", flags: [] as string[], pass: undefined as string | undefined },
    { kind: "P-256, --passphrase (PBES2)", flags: ["--ec", "--passphrase"], pass: "kg secret" },
  ];
  for (const { kind, flags, pass } of cases) {
    it(`${kind}: self-signed; missive ↔ openssl cms both ways, verified against itself`, async () => {
      const tag = flags.length ? "ec" : "rsa";
      const [key, cert] = [at(`kg-${tag}.key`), at(`kg-${tag}.pem`)];
      const env: Record<string, string> = pass ? { MISSIVE_PASSPHRASE: pass } : {};
      const made = await runCli([
        ...["keygen", "--x509", "--name", "alice@example.org", ...flags, "-o", key],
        ...["--cert-out", cert, "--days", "30"],
      ], { env });
      assert.equal(made.code, 0, made.stderr);
      const keyText = fromUtf8(readFileSync(key));
      assert.match(
        keyText,
        pass ? /^-----BEGIN ENCRYPTED PRIVATE KEY-----/ : /^-----BEGIN PRIVATE KEY/,
      );
      const text = fromUtf8(openssl(["x509", "-in", cert, "-noout", "-text"]));
      assert.match(text, /Subject: CN ?= ?alice@example\.org/);
      assert.match(text, /email:alice@example\.org/);
      assert.match(text, pass ? /ecdsa-with-SHA256/ : /sha256WithRSAEncryption/);
      const passin = pass ? ["-passin", `pass:${pass}`] : [];
      // missive → OpenSSL: sealed to itself, decrypted and verified with the self-signed CA.
      const s = await runCli(
        ["seal", "--stp", "smime", "--cert", cert, "--key", key, "--to", cert, "--format", "der"],
        { stdin: MESSAGE, env },
      );
      assert.equal(s.code, 0, s.stderr);
      const signed = openssl(
        ["cms", "-decrypt", "-inform", "DER", "-recip", cert, "-inkey", key, ...passin],
        s.stdout,
      );
      const plain = openssl(
        ["cms", "-verify", "-inform", "DER", "-CAfile", cert, "-purpose", "smimesign"],
        signed,
      );
      assert.equal(fromUtf8(plain), MESSAGE);
      // OpenSSL → missive: signed and encrypted with these files, trusted as its own CA.
      writeFileSync(at("msg.txt"), MESSAGE);
      const osigned = openssl([
        ...["cms", "-sign", "-nodetach", "-binary", "-in", at("msg.txt"), "-outform", "DER"],
        ...["-signer", cert, "-inkey", key, ...passin],
      ]);
      const keyopt = pass ? [] : OAEP;
      const oenc = openssl(
        ["cms", "-encrypt", "-binary", "-aes-256-gcm", "-recip", cert, ...keyopt],
        osigned,
      );
      writeFileSync(at("in.bin"), oenc);
      const o = await runCli(
        ["open", "--cert", cert, "--key", key, "--trust", cert, at("in.bin")],
        { env },
      );
      assert.equal(o.code, 0, o.stderr);
      assert.equal(o.text, MESSAGE);
      assert.match(o.stderr, /from alice@example\.org.*signature verified, trusted/);
    });
  }

  it("bad keygen --x509 flags are usage errors", async () => {
    for (
      const args of [
        ["--ec"],
        ["--x509", "--days", "0"],
        ["--x509", "--days", "x"],
        ["--x509", "--card-out", at("x.card")],
      ]
    ) {
      const r = await runCli(["keygen", "--name", "a@example.org", ...args, "-o", at("x.key")]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.equal(r.stdout.length, 0);
    }
  });
});

describe("smime: CompressedData (RFC 3274, zlib)", () => {
  const LONG = MESSAGE.repeat(200);
  const bobOptions = () =>
    parseSmimeOptions({
      cert: certificatesToPem(parseCertificates(readFileSync(at("bob.pem")))),
      key: fromUtf8(readFileSync(at("bob.key"))),
      "trust-certs": certificatesToPem(parseCertificates(readFileSync(at("ca.pem")))),
    });
  const aliceSigner = async () => ({
    chain: parseCertificates(readFileSync(at("alice.pem"))),
    key: await parsePrivateKey(readFileSync(at("alice.key"))),
  });

  it("seal --compress: compress, sign, encrypt; missive opens it, OpenSSL verifies the signed CompressedData", async () => {
    const seal = async (extra: string[]) => {
      const r = await runCli(
        ["seal", "--stp", "smime", ...alice, "--to", at("bob.pem"), "--format", "der", ...extra],
        { stdin: LONG },
      );
      assert.equal(r.code, 0, r.stderr);
      return r.stdout;
    };
    const plain = await seal([]);
    for (const cipher of ["aes-256-cbc", "aes-256-gcm"]) {
      const der = await seal(["--compress", "--cipher", cipher]);
      assert.ok(der.length * 2 < plain.length, `${der.length} vs ${plain.length}`);
      const r = await missiveOpen(der);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.text, LONG);
      assert.match(r.stderr, /signature verified, trusted/);
      const signed = openssl(
        ["cms", "-decrypt", "-inform", "DER", "-recip", at("bob.pem"), "-inkey", at("bob.key")],
        der,
      );
      const printed = fromUtf8(openssl(["cms", "-cmsout", "-print", "-inform", "DER"], signed));
      assert.match(printed, /eContentType: id-smime-ct-compressedData/);
      // This OpenSSL cannot uncompress, but it verifies the signature over the CompressedData.
      const eContent = openssl(
        ["cms", "-verify", "-inform", "DER", "-CAfile", at("ca.pem"), "-purpose", "any"],
        signed,
      );
      const d = decompress(eContent);
      assert.equal(d.contentType, CMS.data);
      assert.equal(fromUtf8(d.content), LONG);
    }
    const bad = await runCli(["seal", "--compress", "--to", at("bob.pem")], { stdin: "x" });
    assert.equal(bad.code, 2, bad.stderr);
  });

  it("sign, then compress, then encrypt (pkijs-assembled, as openssl cms -compress would) opens", async () => {
    const signed = await signContent(utf8(LONG), await aliceSigner(), { time: new Date() });
    const compressed = encodeContentInfo(CMS.compressedData, compressedData(signed));
    for (const cipher of ["aes-256-cbc", "aes-256-gcm"] as const) {
      const bob = parseCertificates(readFileSync(at("bob.pem")));
      const der = await encryptContent(compressed, CMS.data, bob, cipher);
      const opened = await openCms(der, await bobOptions());
      assert.equal(fromUtf8(opened.content), LONG);
      assert.equal(opened.verified?.trusted, true);
      const r = await missiveOpen(der);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.text, LONG);
    }
  });

  it("openssl cms -compress: interoperates, or fails only with 'unsupported compression algorithm'", async () => {
    writeFileSync(at("msg.txt"), LONG);
    const signed = openssl([
      ...["cms", "-sign", "-nodetach", "-binary", "-in", at("msg.txt"), "-outform", "DER"],
      ...["-signer", at("alice.pem"), "-inkey", at("alice.key")],
    ]);
    // From a file, not stdin: this OpenSSL fails before reading, and a pipe would then
    // race its exit (EPIPE, no status) instead of giving the error below.
    writeFileSync(at("signed.der"), signed);
    const r = spawnSync(
      "openssl",
      ["cms", "-compress", "-binary", "-in", at("signed.der"), "-outform", "DER"],
      { maxBuffer: 1 << 24 },
    );
    if (r.status !== 0) {
      // This build has no zlib: the one accepted failure. The open path is covered above.
      assert.match(String(r.stderr), /CMS_compress:unsupported compression algorithm/);
      return;
    }
    const der = openssl(
      [
        "cms",
        "-encrypt",
        "-binary",
        "-aes256",
        "-outform",
        "DER",
        "-recip",
        at("bob.pem"),
        ...OAEP,
      ],
      new Uint8Array(r.stdout),
    );
    const o = await missiveOpen(der);
    assert.equal(o.code, 0, o.stderr);
    assert.equal(o.text, LONG);
  });

  it("bad CompressedData: typed errors from the decoder, nothing on stdout from the CLI", async () => {
    const good = new Uint8Array(compressedData(utf8(LONG)).toBER(false));
    assert.equal(fromUtf8(decompress(good).content), LONG);
    const variants: [Uint8Array, string][] = [
      [good.slice(0, good.length - 1), "malformed"],
      [good.slice(0, 12), "malformed"],
      [Uint8Array.from({ length: 64 }, (_, i) => (i * 37) & 0xff), "malformed"],
      [new Uint8Array(0), "malformed"],
    ];
    for (let i = 0; i < good.length; i += 7) {
      const bad = Uint8Array.from(good);
      bad[i] ^= 0x10;
      variants.push([bad, ""]);
    }
    const custom = (fields: asn1js.AsnType[]) =>
      new Uint8Array(new asn1js.Sequence({ value: fields }).toBER(false));
    const parts = compressedData(utf8("x")).valueBlock.value;
    const zlibId = (params?: asn1js.AsnType) => {
      const value: asn1js.AsnType[] = [
        new asn1js.ObjectIdentifier({ value: "1.2.840.113549.1.9.16.3.8" }),
      ];
      if (params) value.push(params);
      return new asn1js.Sequence({ value });
    };
    const encap = (z: Uint8Array) =>
      new asn1js.Sequence({
        value: [
          new asn1js.ObjectIdentifier({ value: CMS.data }),
          new asn1js.Constructed({
            idBlock: { tagClass: 3, tagNumber: 0 },
            value: [new asn1js.OctetString({ valueHex: z })],
          }),
        ],
      });
    const bomb = deflateSync(new Uint8Array(MAX_DECOMPRESSED + 1));
    variants.push(
      [custom([new asn1js.Integer({ value: 1 }), parts[1], parts[2]]), "malformed"],
      [custom([parts[0], zlibId(new asn1js.Null()), parts[2]]), "malformed"],
      [
        custom([
          parts[0],
          new asn1js.Sequence({
            value: [new asn1js.ObjectIdentifier({ value: "1.2.3.4" })],
          }),
          parts[2],
        ]),
        "unknown-protocol",
      ],
      [custom([parts[0], zlibId(), encap(utf8("not zlib at all"))]), "malformed"],
      [custom([parts[0], zlibId(), encap(new Uint8Array(bomb))]), "too-large"],
    );
    for (const [input, code] of variants) {
      try {
        const d = decompress(input);
        // Only a flip in the inner content type decodes; openCms then refuses that type.
        assert.ok(code === "" && d.contentType !== CMS.data, `decoded a bad input (${code})`);
      } catch (e) {
        if (!(e instanceof MissiveError)) throw e;
        if (code) assert.equal(e.code, code, e.message);
        else assert.ok(["malformed", "unknown-protocol", "too-large"].includes(e.code), e.code);
      }
    }
    // Through the CLI: the bomb around the signature (sign | compress | encrypt), and
    // truncations and flips of a --compress message.
    const bob = parseCertificates(readFileSync(at("bob.pem")));
    const bombed = encodeContentInfo(
      CMS.compressedData,
      new asn1js.Sequence({ value: [parts[0], zlibId(), encap(new Uint8Array(bomb))] }),
    );
    const inputs = [await encryptContent(bombed, CMS.data, bob, "aes-256-gcm")];
    const r = await runCli(
      ["seal", "--stp", "smime", ...alice, "--to", at("bob.pem"), "--format", "der", "--compress"],
      { stdin: LONG },
    );
    for (const n of [3, 50, r.stdout.length >> 1, r.stdout.length - 2]) {
      inputs.push(r.stdout.slice(0, n));
    }
    for (const i of [40, 300, r.stdout.length >> 1, r.stdout.length - 40]) {
      const bad = Uint8Array.from(r.stdout);
      bad[i] ^= 0x04;
      inputs.push(bad);
    }
    for (const [k, input] of inputs.entries()) {
      const o = await missiveOpen(input);
      assert.ok([3, 4].includes(o.code), `input ${k}: exit ${o.code}: ${o.stderr}`);
      assert.equal(o.stdout.length, 0);
      if (k === 0) assert.match(o.stderr, /more than 16777216 bytes/);
    }
  });
});
