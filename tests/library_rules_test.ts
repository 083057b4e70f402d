/**
 * Rules that used to live only in the CLI and now belong to the library (issue 20):
 * options an STP cannot honour are refused by `sealMessage`, `streamSupport` is the one
 * stream rule, `requireTrust` is part of every open request, and `openAny` is the one
 * form-detection routine, tried here on every form (SPEC §2.4).
 * @module
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { fromBase64, utf8 } from "../core/bytes.ts";
import { isMissiveError } from "../core/errors.ts";
import { armor, toLine } from "../envelope/mod.ts";
import { detectForm, openAny } from "../messaging/open.ts";
import { openMessage, sealMessage } from "../plugin/message.ts";
import { MemoryReplayCache } from "../plugin/replay.ts";
import { authV1, defaultRegistry, groupV1, plainV1, pskV1, pskV2, simpleV2 } from "../stp/mod.ts";
import { parsePskOptions, sealBareFernet } from "../stp/psk/mod.ts";
import { parseSmimeOptions, smimeBytes, smimeV1 } from "../stp/smime/mod.ts";
import { bytesSource, memorySink, sealStream, streamSupport } from "../stream/mod.ts";
import { fileV1, textV1 } from "../amp/mod.ts";
import { getCryptoProvider } from "../crypto/mod.ts";
import { fixedIdentity } from "./helpers.ts";

const registry = defaultRegistry();
const alice = await fixedIdentity("alice@example.org", 1);
const bob = await fixedIdentity("bob@example.org", 2);
const carol = await fixedIdentity("carol@example.org", 3);
const message = { text: "rules live in the library" };
const KEY = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=";

const code = (c: string) => (e: unknown) => isMissiveError(e) && e.code === c;

describe("sealMessage refuses options the STP cannot honour", () => {
  it("hideRecipients with simple (the address would travel in clear)", async () => {
    await assert.rejects(
      sealMessage({
        stp: simpleV2,
        amp: textV1,
        message,
        sender: alice,
        recipients: [bob.card],
        hideRecipients: true,
      }),
      (e) => code("usage")(e) && /cannot hide its recipients/.test((e as Error).message),
    );
    // group honours it.
    await sealMessage({
      stp: groupV1,
      amp: textV1,
      message,
      sender: alice,
      recipients: [bob.card, carol.card],
      hideRecipients: true,
    });
  });

  it("two recipients for a one-recipient STP, and a hashed destination where none exists", async () => {
    await assert.rejects(
      sealMessage({
        stp: simpleV2,
        amp: textV1,
        message,
        sender: alice,
        recipients: [bob.card, carol.card],
      }),
      (e) => code("usage")(e) && /seals to one recipient, not 2/.test((e as Error).message),
    );
    await assert.rejects(
      sealMessage({ stp: authV1, amp: textV1, message, sender: alice, hashDestination: true }),
      (e) => code("usage")(e) && /cannot send the destination as a hash/.test((e as Error).message),
    );
  });

  it("unknown --option names for an STP with typed options", async () => {
    await assert.rejects(
      sealMessage({ stp: pskV2, amp: textV1, message, optionPairs: { pks: KEY } }),
      (e) => code("usage")(e) && /psk: unknown option "pks"/.test((e as Error).message),
    );
  });
});

describe("streamSupport is the one stream rule", () => {
  it("accepts simple and group with text/1 and file/1; refuses the rest with a reason", () => {
    for (const stp of [simpleV2, groupV1]) {
      for (const amp of [textV1, fileV1]) assert.deepEqual(streamSupport(stp, amp), { ok: true });
    }
    for (const stp of [authV1, plainV1, pskV1]) {
      const s = streamSupport(stp, textV1);
      assert.equal(s.ok, false);
      assert.match((s as { reason: string }).reason, new RegExp(`STP ${stp.name} cannot`));
    }
    const s = streamSupport(simpleV2, { type: 2, version: 1 });
    assert.equal(s.ok, false);
    assert.match((s as { reason: string }).reason, /cannot be streamed/);
  });

  it("sealStream applies it", async () => {
    await assert.rejects(
      sealStream({
        stp: authV1,
        sender: alice,
        recipients: [],
        source: bytesSource(utf8("x")),
        sink: memorySink(),
      }),
      (e) => code("usage")(e) && /STP auth cannot carry a stream/.test((e as Error).message),
    );
  });
});

describe("requireTrust is part of the open request", () => {
  it("refuses an untrusted signer and a claimed sender, before the replay cache records it", async () => {
    const sealed = await sealMessage({
      stp: simpleV2,
      amp: textV1,
      message,
      sender: alice,
      recipients: [bob.card],
    });
    const replay = new MemoryReplayCache();
    await assert.rejects(
      openMessage(sealed, { registry, identity: bob, requireTrust: true, replay }),
      (e) => code("untrusted")(e) && /is not a trusted card/.test((e as Error).message),
    );
    // Not recorded: the same message opens once trusted, and only then is a replay.
    await openMessage(sealed, { registry, identity: bob, trusted: [alice.card], replay });
    await assert.rejects(
      openMessage(sealed, { registry, identity: bob, trusted: [alice.card], replay }),
      code("replay"),
    );
    const plain = await sealMessage({ stp: plainV1, amp: textV1, message, sender: alice });
    await assert.rejects(
      openMessage(plain, { registry, trusted: [alice.card], requireTrust: true }),
      (e) => code("untrusted")(e) && /claimed, unverified sender/.test((e as Error).message),
    );
  });
});

describe("openAny opens every form (SPEC §2.4)", () => {
  const sealSimple = () =>
    sealMessage({ stp: simpleV2, amp: textV1, message, sender: alice, recipients: [bob.card] });
  const request = { registry, identity: bob, trusted: [alice.card] };

  it("envelope: binary, armor, line — as bytes and as a source", async () => {
    const sealed = await sealSimple();
    const forms = {
      binary: sealed,
      armor: utf8(armor(sealed)),
      line: utf8(toLine(sealed) + "\n"),
    };
    for (const [form, bytes] of Object.entries(forms)) {
      assert.equal(detectForm(bytes), form);
      for (const input of [bytes, bytesSource(bytes)]) {
        const r = await openAny(input, request);
        assert.equal(r.form, form);
        assert.ok(r.kind === "message");
        assert.deepEqual(r.opened.message, message);
        assert.equal(r.opened.sender?.trusted, true);
      }
    }
  });

  it("stream: authenticated chunks to the sink; requireTrust refuses before any byte", async () => {
    const data = new Uint8Array(70_000).map((_, i) => i % 251);
    const out = memorySink();
    await sealStream({
      stp: simpleV2,
      sender: alice,
      recipients: [bob.card],
      source: bytesSource(data),
      sink: out,
      chunkSize: 16_384,
    });
    const stream = out.bytes();
    assert.equal(detectForm(stream), "stream");
    const sink = memorySink();
    const r = await openAny(bytesSource(stream), { ...request, sink });
    assert.ok(r.kind === "stream");
    assert.equal(r.stream.plaintextBytes, data.length);
    assert.deepEqual(sink.bytes(), data);
    const none = memorySink();
    await assert.rejects(
      openAny(stream, { registry, identity: bob, requireTrust: true, sink: none }),
      code("untrusted"),
    );
    assert.equal(none.bytes().length, 0);
  });

  it("bare Fernet token: opens with the key; no sender for requireTrust, no nonce for replay", async () => {
    const options = parsePskOptions({ psk: KEY });
    const token = utf8(
      await sealBareFernet(await getCryptoProvider(), utf8("fernet ✓"), { options }) + "\n",
    );
    assert.equal(detectForm(token), "fernet");
    const r = await openAny(token, { registry, optionPairs: { psk: KEY } });
    assert.ok(r.kind === "fernet");
    assert.equal(new TextDecoder().decode(r.plaintext), "fernet ✓");
    await assert.rejects(
      openAny(token, { registry, options, requireTrust: true }),
      code("untrusted"),
    );
    await assert.rejects(
      openAny(token, { registry, options, replay: new MemoryReplayCache() }),
      code("usage"),
    );
  });

  it("bare CMS as DER and as S/MIME text (OpenSSL's output, the smime corpus)", async () => {
    const corpus = JSON.parse(readFileSync("tests/vectors/smime.json", "utf8"));
    const der = fromBase64(corpus.messages["rsa-oaep-cbc"])!;
    const options = await parseSmimeOptions({
      cert: corpus.identities.bob.cert,
      key: corpus.identities.bob.key,
      "trust-certs": corpus.trust.ca,
    });
    const withSmime = defaultRegistry().register(smimeV1);
    for (const [form, input] of [["cms", der], ["smime", smimeBytes(der)]] as const) {
      assert.equal(detectForm(input), form);
      const r = await openAny(input, { registry: withSmime, options });
      assert.ok(r.kind === "message");
      assert.equal(r.form, form);
      assert.equal(r.opened.stp.name, "smime");
    }
    // Without the smime STP registered (the core does not load pkijs), the pair is unknown.
    await assert.rejects(openAny(der, { registry, options }), code("unknown-protocol"));
  });
});
