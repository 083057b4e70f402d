/**
 * age files (SPEC §26): the spec's example keys, round trips at the STREAM chunk
 * boundaries through both providers, the recipient rules, the STP inside an envelope and
 * in the one opening routine, and bad input for every decoder (header, payload, armor,
 * Bech32, recipients, identity files, SSH keys): typed errors, caps before allocation.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { randomBytes, utf8 } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import { getCryptoProvider, nobleProvider } from "../crypto/mod.ts";
import { detectForm, openAny } from "../messaging/open.ts";
import { defaultRegistry, openMessage, sealMessage } from "../mod.ts";
import { MemoryReplayCache } from "../plugin/replay.ts";
import {
  AgePayloadError,
  type AgeRecipient,
  ageV1,
  armorAge,
  bech32Decode,
  decryptAge,
  hybridIdentity,
  hybridPublicKey,
  hybridRecipient,
  hybridRecipientText,
  MAX_HEADER_BYTES,
  openAgeBytes,
  parseAgeRecipient,
  parseIdentityFile,
  parseRecipientsFile,
  parseSshPrivateKey,
  parseSshPublicKey,
  scryptIdentity,
  scryptRecipient,
  sealAgeBytes,
  x25519Identity,
  x25519Recipient,
  x25519RecipientText,
} from "../stp/age/mod.ts";
import { cardToText } from "../keys/card.ts";
import { writeKeyFile } from "../keys/identity.ts";
import { fixedIdentity, runCli, tempDir } from "./helpers.ts";

const code = (c: string) => (e: unknown) => e instanceof MissiveError && e.code === c;
const crypto = await getCryptoProvider();
const secret = new Uint8Array(32).fill(7);
const recipient = x25519Recipient(await crypto.x25519PublicKey(secret));
const identity = x25519Identity(secret);
const { dir, cleanup } = tempDir("missive-age-unit-");
after(cleanup);

describe("age keys (C2SP age examples)", () => {
  it("the X25519 example identity gives the example recipient", async () => {
    const [id] = await parseIdentityFile(
      utf8("AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX\n"),
      "example",
      { crypto },
    );
    assert.equal(id.kind, "x25519");
    const { bytes } = bech32Decode(
      "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX",
      "t",
    );
    assert.equal(
      x25519RecipientText(await crypto.x25519PublicKey(bytes)),
      "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj",
    );
  });

  it("the hybrid example identity gives the example age1pq1 recipient", async () => {
    const { hrp, bytes } = bech32Decode(
      "AGE-SECRET-KEY-PQ-1XX76JRALNLXDMEW0CRK45QMCCH4X06SE84UN3VPM33W6HWDX0H3SK3ZQFR",
      "t",
    );
    assert.equal(hrp, "age-secret-key-pq-");
    const text = hybridRecipientText(await hybridPublicKey(crypto, bytes));
    assert.equal(text.length, 1959); // 1,216 bytes in 1,946 five-bit words, 6 checksum
    assert.ok(text.startsWith("age1pq1x34nzsvr0rxjsgdn8zgyhfe8j7ceq5r9rdelkjuh3y235jzxshfg87p"));
    assert.ok(text.endsWith("xpfqdkmhh6gjtqmwze9pyyzk3tlhl53k2ykx3qheyty7saeq0d3fzv49zc0k"));
  });
});

describe("age round trips", () => {
  const sizes = [0, 1, 65535, 65536, 65537, 131072, 200_000];
  for (const provider of [nobleProvider, crypto]) {
    it(`STREAM chunk boundaries, binary and armored (${provider.name})`, async () => {
      for (const size of sizes) {
        const plain = randomBytes(size);
        for (const armor of [false, true]) {
          const file = await sealAgeBytes(plain, {
            recipients: [recipient],
            armor,
            crypto: provider,
          });
          const chunks = Math.max(1, Math.ceil(size / 65536));
          if (!armor) assert.ok(file.length > size + 16 * chunks, `${size}`);
          const back = await openAgeBytes(file, { identities: [identity], crypto: provider });
          assert.deepEqual(back, plain, `${size} bytes, armor ${armor}`);
        }
      }
    });
  }

  it("hybrid, scrypt and several recipients; the right identity among several", async () => {
    const seed = new Uint8Array(32).fill(9);
    const pq = hybridRecipient(await hybridPublicKey(crypto, seed));
    const plain = utf8("post-quantum");
    const file = await sealAgeBytes(plain, { recipients: [pq] });
    assert.deepEqual(
      await openAgeBytes(file, { identities: [identity, hybridIdentity(seed)] }),
      plain,
    );
    const other = x25519Recipient(await crypto.x25519PublicKey(new Uint8Array(32).fill(3)));
    const two = await sealAgeBytes(plain, { recipients: [other, recipient] });
    assert.deepEqual(await openAgeBytes(two, { identities: [identity] }), plain);
    const locked = await sealAgeBytes(plain, { recipients: [scryptRecipient("pw", 10)] });
    assert.deepEqual(await openAgeBytes(locked, { identities: [scryptIdentity("pw")] }), plain);
    await assert.rejects(
      openAgeBytes(locked, { identities: [scryptIdentity("nope")] }),
      code("not-a-recipient"),
    );
  });

  it("refuses what age refuses to write: no recipient, a passphrase beside others, pq beside classical", async () => {
    const pq = hybridRecipient(await hybridPublicKey(crypto, new Uint8Array(32)));
    const sets: AgeRecipient[][] = [
      [],
      [scryptRecipient("pw", 10), recipient],
      [scryptRecipient("a", 10), scryptRecipient("b", 10)],
      [pq, recipient],
    ];
    for (const recipients of sets) {
      await assert.rejects(sealAgeBytes(utf8("x"), { recipients }), code("usage"));
    }
  });
});

describe("age in the one opening routine and as an STP", () => {
  it("detectForm tells binary and armored age files", async () => {
    const file = await sealAgeBytes(utf8("hi"), { recipients: [recipient] });
    assert.equal(detectForm(file), "age");
    assert.equal(detectForm(armorAge(file)), "age-armor");
    assert.equal(detectForm(utf8("\n \n" + new TextDecoder().decode(armorAge(file)))), "age-armor");
  });

  it("openAny: no sender, so --require-trust and a replay cache refuse it", async () => {
    const registry = defaultRegistry();
    const file = await sealAgeBytes(utf8("hi"), { recipients: [recipient] });
    const options = { ageIdentities: [identity] };
    const result = await openAny(file, { registry, options });
    assert.equal(result.kind, "age");
    if (result.kind === "age") assert.deepEqual(result.plaintext, utf8("hi"));
    await assert.rejects(
      openAny(file, { registry, options, requireTrust: true }),
      code("untrusted"),
    );
    await assert.rejects(
      openAny(file, { registry, options, replay: new MemoryReplayCache() }),
      code("usage"),
    );
  });

  it("ageV1 inside an envelope: the card's X25519 key, and the header bound inside", async () => {
    const [alice, bob] = [
      await fixedIdentity("alice@x.org", 1),
      await fixedIdentity("bob@x.org", 3),
    ];
    const registry = defaultRegistry();
    const text = registry.find("amp", "text/1");
    const sealed = await sealMessage({
      stp: ageV1,
      amp: text,
      message: { text: "in an envelope" },
      sender: alice,
      recipients: [bob.card],
      sequenceNumber: 5,
    });
    const opened = await openMessage(sealed, { registry, identity: bob });
    assert.deepEqual(opened.message, { text: "in an envelope" });
    assert.equal(opened.sender, undefined);
    assert.ok(opened.warnings.some((w) => /unauthenticated/.test(w)));
    // The same payload under another sequence number is refused.
    const { decodeEnvelope, encodeEnvelope } = await import("../envelope/mod.ts");
    const env = decodeEnvelope(sealed);
    await assert.rejects(
      openMessage(encodeEnvelope({ ...env, sequenceNumber: 6 }), { registry, identity: bob }),
      code("auth-failed"),
    );
  });
});

/** A source that yields `chunk` forever (a hostile, endless input). */
function endless(chunk: Uint8Array, prefix = new Uint8Array(0)) {
  let sent = 0;
  let first = true;
  return {
    sent: () => sent,
    readInto(target: Uint8Array) {
      let n = 0;
      if (first) {
        target.set(prefix.subarray(0, target.length));
        n = Math.min(prefix.length, target.length);
        first = false;
      }
      while (n < target.length) {
        const take = Math.min(chunk.length, target.length - n);
        target.set(chunk.subarray(0, take), n);
        n += take;
      }
      sent += n;
      return Promise.resolve(n);
    },
  };
}

const nullSink = { write: () => Promise.resolve() };

describe("age and missive cards (post-quantum)", () => {
  const tmp = tempDir("missive-age-cards-");
  after(tmp.cleanup);
  const dir = { path: tmp.dir };

  it("a hybrid card seals age1pq1; card --age --pq prints it; a format-1 card falls back or is refused", async () => {
    const crypto = await getCryptoProvider();
    const bob = await fixedIdentity("bob@example.org", 40);
    const dave = await fixedIdentity("dave@example.org", 50, { hybrid: false });
    const files: Record<string, string> = {};
    for (const [name, id] of [["bob", bob], ["dave", dave]] as const) {
      files[`${name}.key`] = join(dir.path, `${name}.key`);
      files[`${name}.card`] = join(dir.path, `${name}.card`);
      writeFileSync(files[`${name}.key`], await writeKeyFile(crypto, id));
      writeFileSync(files[`${name}.card`], cardToText(id.card) + "\n");
    }
    const pq = await runCli(["card", "--age", "--pq", files["bob.card"]]);
    assert.equal(pq.code, 0, pq.stderr);
    assert.equal(pq.text.trim(), hybridRecipientText(bob.card.hybridKey!));
    const noPq = await runCli(["card", "--age", "--pq", files["dave.card"]]);
    assert.equal(noPq.code, 2);
    assert.match(noPq.stderr, /no post-quantum key \(a format-1 card\)/);

    // To bob's card: one mlkem768x25519 stanza, opened by bob's key file.
    const sealed = await runCli(["seal", "--stp", "age", "--to", files["bob.card"]], {
      stdin: "to bob",
    });
    assert.equal(sealed.code, 0, sealed.stderr);
    const header = new TextDecoder().decode(sealed.stdout.subarray(0, 200));
    assert.match(header, /\n-> mlkem768x25519 /);
    const age = join(dir.path, "bob.age");
    writeFileSync(age, sealed.stdout);
    const opened = await runCli(["open", "--key", files["bob.key"], age]);
    assert.equal(opened.code, 0, opened.stderr);
    assert.equal(opened.text, "to bob");
    assert.match(opened.stderr, /post-quantum hybrid identity/);

    // bob with dave (format 1): X25519 stanzas for both, and a warning; --require-pq refuses.
    const mixed = await runCli(
      ["seal", "--stp", "age", "--to", files["bob.card"], "--to", files["dave.card"]],
      { stdin: "to both" },
    );
    assert.equal(mixed.code, 0, mixed.stderr);
    assert.match(
      mixed.stderr,
      /warning: age: sealing with X25519 \(age1…\) only: dave@example.org/,
    );
    const stanzas = new TextDecoder().decode(mixed.stdout.subarray(0, 400)).match(/\n-> X25519 /g);
    assert.equal(stanzas?.length, 2);
    const refused = await runCli(
      [
        "seal",
        "--stp",
        "age",
        "--require-pq",
        "--to",
        files["bob.card"],
        "--to",
        files["dave.card"],
      ],
      { stdin: "to both" },
    );
    assert.equal(refused.code, 2);
    assert.equal(refused.stdout.length, 0);
    assert.match(refused.stderr, /--require-pq, but dave@example.org has no post-quantum key/);
  });
});

describe("age bad input", () => {
  it("every truncation and every byte flip of a file fails with a MissiveError", async () => {
    const plain = randomBytes(70_000);
    const file = await sealAgeBytes(plain, { recipients: [recipient] });
    const cuts = [...Array(300).keys(), ...[65_536, 65_600, 70_000, file.length - 1]];
    for (const n of cuts) {
      await assert.rejects(openAgeBytes(file.subarray(0, n), { identities: [identity] }), (e) => {
        assert.ok(e instanceof MissiveError, `cut ${n}: ${e}`);
        return true;
      });
    }
    for (const i of [...Array(260).keys(), 400, 70_000, file.length - 1]) {
      const bad = file.slice();
      bad[i] ^= 0x20;
      await assert.rejects(openAgeBytes(bad, { identities: [identity] }), (e) => {
        assert.ok(e instanceof MissiveError, `flip ${i}: ${e}`);
        return true;
      });
    }
  });

  it("a payload failure reports the authenticated bytes already released", async () => {
    const plain = randomBytes(3 * 65536 + 5);
    const file = await sealAgeBytes(plain, { recipients: [recipient] });
    const bad = file.slice();
    bad[bad.length - 3] ^= 1; // in the last chunk
    const written: Uint8Array[] = [];
    let at = 0;
    const source = {
      readInto(t: Uint8Array) {
        const n = Math.min(t.length, bad.length - at);
        t.set(bad.subarray(at, at + n));
        at += n;
        return Promise.resolve(n);
      },
    };
    const sink = { write: (p: readonly Uint8Array[]) => Promise.resolve(void written.push(...p)) };
    await assert.rejects(decryptAge(source, sink, { identities: [identity] }), (e) => {
      assert.ok(e instanceof AgePayloadError);
      assert.equal(e.code, "auth-failed");
      assert.equal(e.released, 3 * 65536);
      return true;
    });
    assert.equal(written.reduce((n, p) => n + p.length, 0), 3 * 65536);
  });

  it("header caps: a line over 16 KiB and a header over 4 MiB stop early (too-large)", async () => {
    const intro = utf8("age-encryption.org/v1\n-> ");
    const longLine = endless(utf8("a"), intro);
    await assert.rejects(
      decryptAge(longLine, nullSink, { identities: [identity] }),
      code("too-large"),
    );
    assert.ok(longLine.sent() < 1024 * 1024, `read ${longLine.sent()}`);
    const stanzas = endless(utf8("-> grease x\n\n"), utf8("age-encryption.org/v1\n"));
    await assert.rejects(
      decryptAge(stanzas, nullSink, { identities: [identity] }),
      code("too-large"),
    );
    assert.ok(stanzas.sent() < MAX_HEADER_BYTES + 1024 * 1024, `read ${stanzas.sent()}`);
  });

  it("an scrypt work factor above 20 is refused before any scrypt runs", async () => {
    const file = utf8(
      "age-encryption.org/v1\n-> scrypt AAAAAAAAAAAAAAAAAAAAAA 40\n" +
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n--- " + "A".repeat(43) + "\n",
    );
    await assert.rejects(
      openAgeBytes(file, { identities: [scryptIdentity("pw")] }),
      (e) => code("malformed")(e) && /work factor 40/.test((e as Error).message),
    );
  });

  it("garbage, empty input and other versions are malformed", async () => {
    for (
      const input of [
        new Uint8Array(0),
        randomBytes(1000),
        utf8("age-encryption.org/v2\n"),
        utf8("age-encryption.org/v1"),
        utf8("age-encryption.org/v1\n--- " + "A".repeat(43) + "\n"),
      ]
    ) {
      await assert.rejects(openAgeBytes(input, { identities: [identity] }), code("malformed"));
    }
  });

  it("armor: long lines, too much white space, data after END, bad base64", async () => {
    const file = await sealAgeBytes(utf8("hi"), { recipients: [recipient] });
    const text = new TextDecoder().decode(armorAge(file));
    const bad = [
      " ".repeat(2000) + text,
      "\n".repeat(1100) + text,
      text + " ".repeat(2000),
      text + "garbage\n",
      text.replace(/\n([A-Za-z0-9+/]{64})\n/, "\n$1AAAA\n"),
      text.replace(/\n([A-Za-z0-9+/]{10})/, "\n$1!"),
      text.replace("-----END AGE ENCRYPTED FILE-----\n", ""),
      text.replace(/\n/, "\n\n"),
    ];
    for (const t of bad) {
      await assert.rejects(
        openAgeBytes(utf8(t), { identities: [identity], armored: true } as never),
        code("malformed"),
      );
    }
  });

  it("Bech32 and recipients: case, checksum, lengths, plugins (named), hardware tags", () => {
    const good = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj";
    const bad = [
      good.slice(0, -1) + "x",
      "age1ZVkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj",
      good.slice(0, 20),
      "age1" + "q".repeat(5000),
      "age1qqqqqqqqqqqqqqqqqqqqqq",
      "age1bad!",
      "not-a-recipient",
    ];
    for (const r of bad) assert.throws(() => parseAgeRecipient(r), code("key"), r);
    assert.throws(
      () =>
        parseAgeRecipient(
          "age1yubikey1qwt50d05nh5vutpdzmlg5wn80xq5negm4uj9ghv0snvdd3yysf5yw3rhl3t",
        ),
      (e) => code("key")(e) && /age plugin "yubikey"/.test((e as Error).message),
    );
    assert.throws(
      () =>
        parseAgeRecipient("age1tag1qt8lw0ual6avlwmwatk888yqnmdamm7xfd0wak53ut6elz5c4swx2yqdj4e"),
      (e) => code("key")(e) && /hardware/.test((e as Error).message),
    );
    assert.equal(parseAgeRecipient(good.toUpperCase()).kind, "x25519");
  });

  it("recipients files: comments and blank lines; a bad line is named", () => {
    const good = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj";
    const { recipients, cardLines } = parseRecipientsFile(
      `# c\n\n${good}\r\nmissive-card:abc\n`,
      "r.txt",
    );
    assert.equal(recipients.length, 1);
    assert.deepEqual(cardLines, ["missive-card:abc"]);
    assert.throws(
      () => parseRecipientsFile(`${good}\nnonsense\n`, "r.txt"),
      (e) => code("key")(e) && /r\.txt line 2/.test((e as Error).message),
    );
    assert.throws(() => parseRecipientsFile("# only comments\n", "r.txt"), code("key"));
  });

  it("identity files: garbage, plugins (named), other PEM, too large, wrong lengths", async () => {
    const cases: [string | Uint8Array, RegExp][] = [
      ["hello\n", /not an age identity/],
      ["AGE-PLUGIN-YUBIKEY-1QQQQQQQQ\n", /age plugin "yubikey"/],
      ["-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", /OpenSSH-format/],
      ["# nothing\n", /no identities/],
      [new Uint8Array(2 * 1024 * 1024), /larger than 1 MiB/],
      [new Uint8Array([0xff, 0xfe, 0x00]), /not text/],
      [
        "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ\n",
        /Bech32|not a valid/,
      ],
    ];
    for (const [input, message] of cases) {
      await assert.rejects(
        parseIdentityFile(typeof input === "string" ? utf8(input) : input, "id.txt", { crypto }),
        (e) => code("key")(e) && message.test((e as Error).message),
        String(message),
      );
    }
  });

  it("SSH keys: truncated or foreign blobs, small RSA, broken private keys", async () => {
    const blob = (parts: Uint8Array[]) => {
      const out: number[] = [];
      for (const p of parts) out.push(0, 0, p.length >> 8, p.length & 255, ...p);
      return new Uint8Array(out).toBase64();
    };
    const bad = [
      "ssh-ed25519",
      "ssh-ed25519 !!!!",
      `ssh-ed25519 ${blob([utf8("ssh-ed25519"), new Uint8Array(31)])}`,
      `ssh-dss ${blob([utf8("ssh-dss"), new Uint8Array(32)])}`,
      `ssh-rsa ${
        blob([utf8("ssh-rsa"), new Uint8Array([1, 0, 1]), new Uint8Array(128).fill(0x7f)])
      }`,
      `ssh-rsa ${blob([utf8("ssh-ed25519"), new Uint8Array(32)])}`,
    ];
    for (const line of bad) assert.throws(() => parseSshPublicKey(line), code("key"), line);
    const pem = (b64: string) =>
      `-----BEGIN OPENSSH PRIVATE KEY-----\n${b64}\n-----END OPENSSH PRIVATE KEY-----\n`;
    for (const body of ["AAAA", utf8("openssh-key-v1\0").toBase64(), "b3BlbnNzaC1rZXktdjEAAAAA"]) {
      await assert.rejects(parseSshPrivateKey(crypto, pem(body)), code("key"));
    }
  });

  it("the CLI: a failed open writes nothing to stdout and leaves no -o file", async () => {
    const file = await sealAgeBytes(randomBytes(3 * 65536), { recipients: [recipient] });
    file[file.length - 2] ^= 1;
    const id = join(dir, "id.txt");
    writeFileSync(id, "AGE-SECRET-KEY-1" + "\n");
    writeFileSync(join(dir, "bad.age"), file);
    const { x25519IdentityText } = await import("../stp/age/mod.ts");
    writeFileSync(id, x25519IdentityText(secret) + "\n");
    const out = join(dir, "out.bin");
    const r = await runCli(["open", "--identity", id, "-o", out, join(dir, "bad.age")]);
    assert.equal(r.code, 4, r.stderr);
    assert.equal(r.stdout.length, 0);
    assert.match(
      r.stderr,
      /131072 authenticated plaintext bytes had been written to a temporary file, now removed/,
    );
    const { existsSync } = await import("node:fs");
    assert.equal(existsSync(out), false);
    const piped = await runCli(["open", "--identity", id, join(dir, "bad.age")]);
    assert.equal(piped.code, 4);
    const none = await runCli(["open", join(dir, "bad.age")]);
    assert.equal(none.code, 2, none.stderr);
    assert.match(none.stderr, /no identity given/);
    const seal = await runCli([
      "seal",
      "--stp",
      "simple",
      "--to",
      "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj",
    ]);
    assert.equal(seal.code, 2);
    assert.match(seal.stderr, /need --stp age/);
  });
});
