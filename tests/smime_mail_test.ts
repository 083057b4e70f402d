/**
 * S/MIME as mail clients send it (SPEC §18.2), against OpenSSL (`openssl cms`, installed
 * with apt-get when missing): detached multipart/signed (OpenSSL's default `cms -sign`),
 * with -binary, -text, LF-stored, inside an encryption, and opaque signed-data without
 * encryption — each opened by missive with the bytes `openssl cms -verify` outputs; and
 * enveloped messages without a signature, opened and labelled unauthenticated, refused by
 * --require-trust. Then the multipart/signed parser against bad input: missing
 * parameters and parts, wrong protocols, oversize, truncation, garbage — typed errors,
 * nothing on stdout.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fromUtf8, utf8 } from "../core/bytes.ts";
import { isMissiveError } from "../core/errors.ts";
import { canonicalLineEnds, parseContentType, parseSmimeEntity } from "../stp/smime/detect.ts";
import { runCli, tempDir } from "./helpers.ts";
import { ensureOpenssl, makeRsaPki, openssl } from "./openssl_pki.ts";

const version = ensureOpenssl();
const { dir, cleanup } = tempDir("missive-smime-mail-");
const at = (name: string) => join(dir, name);
after(cleanup);

makeRsaPki(at);

const MESSAGE = "Grüße from a mail client\nline two\n";
writeFileSync(at("msg.txt"), MESSAGE);
const OAEP = [
  ...["-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256"],
  ...["-keyopt", "rsa_mgf1_md:sha256"],
];
const bob = ["--cert", at("bob.pem"), "--key", at("bob.key")];

/** `openssl cms -sign` as its defaults write it (detached multipart/signed), plus `extra`. */
function opensslSigned(extra: string[] = []): Uint8Array {
  return openssl([
    ...["cms", "-sign", "-in", at("msg.txt"), "-signer", at("alice.pem")],
    ...["-inkey", at("alice.key"), ...extra],
  ]);
}

/** What `openssl cms -verify` outputs for a message (the bytes missive must give). */
function opensslVerified(input: Uint8Array, inform: string[] = []): Uint8Array {
  return openssl(
    ["cms", "-verify", ...inform, "-CAfile", at("ca.pem"), "-purpose", "any"],
    input,
  );
}

async function open(input: Uint8Array, args: string[]) {
  writeFileSync(at("in.eml"), input);
  return await runCli(["open", ...args, at("in.eml")]);
}

describe(`S/MIME from mail clients: detached multipart/signed (OpenSSL ${version})`, () => {
  it("openssl cms -sign (default: detached, CRLF-canonical) opens: verified, trusted, and labelled not encrypted", async () => {
    const signed = opensslSigned();
    assert.match(
      fromUtf8(signed),
      /Content-Type: multipart\/signed; protocol="application\/pkcs7-signature"/,
    );
    const r = await open(signed, ["--trust", at("ca.pem")]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout, opensslVerified(signed));
    assert.equal(r.text, MESSAGE.replaceAll("\n", "\r\n"));
    assert.match(
      r.stderr,
      /smime v1 from alice@example\.org \(X\.509\): signature verified, trusted/,
    );
    assert.match(r.stderr, /warning: smime: signed but NOT encrypted/);
  });

  it("-binary (content as it is), -text (a text/plain entity): the signed bytes, as OpenSSL verifies them", async () => {
    for (const flags of [["-binary"], ["-text"]]) {
      const signed = opensslSigned(flags);
      const r = await open(signed, ["--trust", at("ca.pem")]);
      assert.equal(r.code, 0, `${flags}: ${r.stderr}`);
      // OpenSSL verifies -binary content only when told (else it canonicalises first).
      assert.deepEqual(r.stdout, opensslVerified(signed, flags[0] === "-binary" ? flags : []));
      if (flags[0] === "-binary") assert.equal(r.text, MESSAGE);
      else assert.match(r.text, /^Content-Type: text\/plain\r\n\r\n/);
    }
  });

  it("a message stored with LF line ends verifies in its CRLF form, with a warning", async () => {
    const lf = utf8(fromUtf8(opensslSigned()).replaceAll("\r\n", "\n"));
    const r = await open(lf, ["--trust", at("ca.pem")]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.text, MESSAGE.replaceAll("\n", "\r\n"));
    assert.match(r.stderr, /the signed part had LF line ends; it verified with CRLF/);
  });

  it("trust: no --trust is verified but NOT trusted; --require-trust and a foreign CA are exit 7", async () => {
    const signed = opensslSigned();
    const none = await open(signed, []);
    assert.equal(none.code, 0, none.stderr);
    assert.match(none.stderr, /signature verified, NOT trusted/);
    const required = await open(signed, ["--require-trust"]);
    assert.equal(required.code, 7, required.stderr);
    assert.equal(required.stdout.length, 0);
    const foreign = await open(signed, ["--trust", at("eve.pem")]);
    assert.equal(foreign.code, 7, foreign.stderr);
    assert.match(foreign.stderr, /untrusted signer: it does not chain/);
  });

  it("a changed content part is exit 4; a damaged signature part is refused; nothing on stdout", async () => {
    const text = fromUtf8(opensslSigned());
    const changed = await open(utf8(text.replace("line two", "line 2!!")), [
      "--trust",
      at("ca.pem"),
    ]);
    assert.equal(changed.code, 4, changed.stderr);
    assert.match(changed.stderr, /Message digest doesn't match/);
    assert.equal(changed.stdout.length, 0);
    const lines = text.split("\n");
    const b64 = lines.findIndex((l) => /^MII/.test(l));
    for (
      const edit of [(l: string) => l.slice(0, 20) + "A" + l.slice(21), (l: string) => l + "="]
    ) {
      const damaged = [...lines];
      damaged[b64 + 3] = edit(damaged[b64 + 3]);
      const r = await open(utf8(damaged.join("\n")), ["--trust", at("ca.pem")]);
      // This line is inside the signer's certificate: a changed certificate no longer
      // chains (7), or the structure breaks (3).
      assert.ok([3, 4, 7].includes(r.code), `exit ${r.code}: ${r.stderr}`);
      assert.equal(r.stdout.length, 0);
    }
  });

  it("signed, then encrypted (multipart/signed inside EnvelopedData): verified, no 'not encrypted' warning", async () => {
    const signed = opensslSigned();
    const sealed = openssl(
      ["cms", "-encrypt", "-aes256", "-recip", at("bob.pem"), ...OAEP],
      signed,
    );
    const r = await open(sealed, [...bob, "--trust", at("ca.pem")]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout, opensslVerified(signed));
    assert.match(r.stderr, /signature verified, trusted/);
    assert.doesNotMatch(r.stderr, /NOT encrypted/);
  });

  it("opaque signed-data without encryption (-nodetach): verified, labelled not encrypted; no key needed", async () => {
    for (const [form, extra] of [["S/MIME", []], ["DER", ["-outform", "DER"]]] as const) {
      const signed = opensslSigned(["-nodetach", "-binary", ...extra]);
      const r = await open(signed, ["--trust", at("ca.pem")]);
      assert.equal(r.code, 0, `${form}: ${r.stderr}`);
      assert.equal(r.text, MESSAGE);
      assert.match(r.stderr, /signed but NOT encrypted/);
    }
  });
});

describe(`S/MIME from mail clients: enveloped, not signed (OpenSSL ${version})`, () => {
  for (const cipher of ["-aes256", "-aes-256-gcm"]) {
    it(`openssl cms -encrypt ${cipher}: opened, no sender, labelled unauthenticated`, async () => {
      const sealed = openssl([
        ...["cms", "-encrypt", cipher, "-in", at("msg.txt"), "-recip", at("bob.pem"), ...OAEP],
      ]);
      const expected = openssl([
        "cms",
        "-decrypt",
        "-recip",
        at("bob.pem"),
        "-inkey",
        at("bob.key"),
      ], sealed);
      const r = await open(sealed, bob);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.stdout, expected);
      assert.match(r.stderr, /missive: smime v1: no sender;/);
      assert.match(
        r.stderr,
        /warning: smime: encrypted but NOT signed: the sender is unknown and unauthenticated/,
      );
      const strict = await open(sealed, [...bob, "--require-trust"]);
      assert.equal(strict.code, 7, strict.stderr);
      assert.match(strict.stderr, /untrusted sender: the message has no sender/);
      assert.equal(strict.stdout.length, 0);
      const json = await open(sealed, [...bob, "--json"]);
      assert.equal(json.code, 0, json.stderr);
      const report = JSON.parse(json.text);
      assert.equal(report.sender, null);
      assert.ok(report.warnings.some((w: string) => /NOT signed/.test(w)));
    });
  }

  it("DER form; binary content is refused (smime carries text); no key is a usage error", async () => {
    const der = openssl([
      ...["cms", "-encrypt", "-binary", "-aes256", "-outform", "DER", "-in", at("msg.txt")],
      ...["-recip", at("bob.pem"), ...OAEP],
    ]);
    const r = await open(der, bob);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.text, MESSAGE);
    writeFileSync(at("bin.dat"), Uint8Array.from({ length: 64 }, (_, i) => 0x80 + i));
    const bin = openssl([
      ...["cms", "-encrypt", "-binary", "-aes256", "-in", at("bin.dat")],
      ...["-recip", at("bob.pem"), ...OAEP],
    ]);
    const b = await open(bin, bob);
    assert.equal(b.code, 3, b.stderr);
    assert.match(b.stderr, /neither a signed message \(CMS, S\/MIME\) nor text/);
    assert.equal(b.stdout.length, 0);
    const nokey = await open(der, []);
    assert.equal(nokey.code, 2, nokey.stderr);
    assert.match(nokey.stderr, /decrypting needs an X\.509 identity/);
  });
});

describe("multipart/signed parser: bad input", () => {
  const good = fromUtf8(opensslSigned());
  const boundary = /boundary="([^"]+)"/.exec(good)![1];

  it("parses OpenSSL's output: two parts, the content byte for byte", () => {
    const e = parseSmimeEntity(utf8(good));
    assert.equal(e.kind, "detached");
    if (e.kind === "detached") {
      assert.equal(fromUtf8(e.content), MESSAGE.replaceAll("\n", "\r\n"));
      assert.equal(e.signature[0], 0x30);
    }
    assert.equal(fromUtf8(canonicalLineEnds(utf8("a\nb\r\nc\n"))), "a\r\nb\r\nc\r\n");
  });

  it("Content-Type parameters: quoted, escaped, case-insensitive names; duplicates and junk refused", () => {
    const ct = parseContentType(
      'Multipart/Signed; Protocol="application/pkcs7-signature"; micalg=sha-256; boundary="a\\"b; c"',
    );
    assert.equal(ct?.type, "multipart/signed");
    assert.equal(ct?.params.get("protocol"), "application/pkcs7-signature");
    assert.equal(ct?.params.get("boundary"), 'a"b; c');
    assert.equal(parseContentType("multipart/signed; boundary=a; boundary=b"), undefined);
    assert.equal(parseContentType("multipart/signed; boundary"), undefined);
    assert.equal(parseContentType("not a type"), undefined);
  });

  it("missing parameters, parts and boundaries, wrong protocols, oversize: typed errors", () => {
    const cases: [string, string, RegExp][] = [
      [good.replace(/ protocol="[^"]+";/, ""), "malformed", /no protocol parameter/],
      [
        good.replace('application/pkcs7-signature"', 'application/pgp-signature"'),
        "unknown-protocol",
        /is not S\/MIME/,
      ],
      [good.replace(/ boundary="[^"]+"/, ""), "malformed", /no boundary parameter/],
      [
        good.replace(`boundary="${boundary}"`, `boundary="${"x".repeat(71)}"`),
        "malformed",
        /1 to 70 characters/,
      ],
      [
        good.replaceAll(`--${boundary}--`, `--${boundary}`),
        "malformed",
        /no closing boundary|more than two/,
      ],
      [good.slice(0, good.lastIndexOf(`--${boundary}--`)), "malformed", /no closing boundary/],
      [
        good.slice(0, good.indexOf(`--${boundary}\nContent-Type: application`)) +
        `--${boundary}--\n`,
        "malformed",
        /one body part/,
      ],
      [
        good.replace(`--${boundary}--`, `--${boundary}\n\nthird\n--${boundary}--`),
        "malformed",
        /more than two body parts/,
      ],
      [
        good.replace("Content-Type: application/pkcs7-signature", "Content-Type: text/plain"),
        "malformed",
        /not application\/pkcs7-signature/,
      ],
      [
        good.replace("Content-Transfer-Encoding: base64", "Content-Transfer-Encoding: 8bit"),
        "malformed",
        /must be base64/,
      ],
      [good.replace(/\nMII/, "\n*MII"), "malformed", /not valid base64/],
      [good.replaceAll(`--${boundary}`, "--other"), "malformed", /no body part/],
      [
        good.replace(/\nMII/, "\n" + "QUFB\n".repeat(220_000) + "MII"),
        "too-large",
        /signature part larger than/,
      ],
      ["Content-Type: multipart/signed\n", "malformed", /not an application\/pkcs7-mime entity/],
      ["Content-Type: text/plain\n\nhello\n", "malformed", /not an application\/pkcs7-mime entity/],
    ];
    for (const [text, code, message] of cases) {
      assert.throws(
        () => parseSmimeEntity(utf8(text)),
        (e) => isMissiveError(e) && e.code === code && message.test(e.message),
        `${code} ${message}`,
      );
    }
  });

  it("every truncation and garbage: a typed error or a part that will not verify; through the CLI nothing on stdout", async () => {
    const bytes = utf8(good);
    for (let n = 0; n < bytes.length; n += 7) {
      try {
        parseSmimeEntity(bytes.subarray(0, n));
      } catch (e) {
        if (!isMissiveError(e)) throw e;
        assert.ok(["malformed", "too-large", "unknown-protocol"].includes(e.code), e.message);
      }
    }
    const inputs = [
      bytes.subarray(0, bytes.length >> 1),
      bytes.subarray(0, bytes.length - 40),
      utf8(good.replace("Content-Type: application/pkcs7-signature", "Content-Type: text/plain")),
      utf8(
        'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; boundary=b\n\n' +
          "\x00\xff garbage".repeat(100),
      ),
    ];
    for (const [k, input] of inputs.entries()) {
      const r = await open(input, ["--trust", at("ca.pem")]);
      assert.ok([3, 4].includes(r.code), `input ${k}: exit ${r.code}: ${r.stderr}`);
      assert.equal(r.stdout.length, 0);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    }
  });
});
