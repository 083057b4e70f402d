import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { toHex } from "../core/bytes.ts";
import { nobleProvider, XWING_PUBLIC_KEY_SIZE } from "../crypto/mod.ts";
import { MissiveError } from "../core/errors.ts";
import {
  cardFormat,
  cardToText,
  createIdentity,
  decodeCard,
  fingerprint,
  identityId,
  inspectKeyFile,
  makeCard,
  MAX_CARD_SIZE,
  normalizeAddress,
  parseCardText,
  readKeyFile,
  sameKeys,
  writeKeyFile,
} from "../keys/mod.ts";
import { fixedIdentity } from "./helpers.ts";

const code = (c: string) => (e: unknown) => e instanceof MissiveError && e.code === c;
const crypto = nobleProvider;

describe("addresses", () => {
  it("normalises to lower case and refuses malformed ones", () => {
    assert.equal(normalizeAddress(" Alice@Example.ORG "), "alice@example.org");
    assert.equal(normalizeAddress("a.b+tag@sub.example-1.org"), "a.b+tag@sub.example-1.org");
    for (
      const bad of [
        "",
        "alice",
        "@example.org",
        "alice@",
        "a..b@x.org",
        ".a@x.org",
        "a@-x.org",
        "a@x..org",
        "a b@x.org",
        "a@x_y.org",
        "x".repeat(65) + "@x.org",
        "a@" + "x".repeat(64) + ".org",
      ]
    ) {
      assert.throws(() => normalizeAddress(bad), code("usage"), bad);
    }
  });
});

describe("addresses: no Unicode case folding (SPEC §3.2)", () => {
  it("refuses look-alikes that full case mapping would fold into ASCII", () => {
    // U+212A KELVIN SIGN lower-cases to "k"; U+0130 (İ) to "i̇"; fullwidth letters stay.
    for (
      const homograph of ["\u212Aate@example.org", "b\u0130ll@example.org", "ａlice@example.org"]
    ) {
      assert.throws(
        () => normalizeAddress(homograph),
        (e) => e instanceof MissiveError && /only ASCII/.test(e.message),
        homograph,
      );
    }
    assert.equal(normalizeAddress("KATE@EXAMPLE.ORG"), "kate@example.org");
  });
});

describe("cards", () => {
  it("round-trip through one line and keep ID, fingerprint and capabilities", async () => {
    const alice = await fixedIdentity("alice@example.org", 1);
    const line = cardToText(alice.card);
    assert.match(line, /^missive-card:[A-Za-z0-9_-]+$/);
    const parsed = await parseCardText(crypto, `# comment\n\n${line}\n`);
    assert.ok(sameKeys(parsed, alice.card));
    assert.equal(toHex(parsed.id).length, 32);
    assert.deepEqual(parsed.stps, alice.card.stps);
    assert.match(await fingerprint(crypto, parsed), /^(\d{5} ){11}\d{5}$/);
  });

  it("IDs and fingerprints depend on the keys only, and differ between identities", async () => {
    const a = await fixedIdentity("alice@example.org", 1);
    const b = await fixedIdentity("bob@example.org", 3);
    assert.notEqual(toHex(a.card.id), toHex(b.card.id));
    assert.notEqual(await fingerprint(crypto, a.card), await fingerprint(crypto, b.card));
  });

  it("refuse a card whose address was changed (self-signature)", async () => {
    const alice = await fixedIdentity("alice@example.org", 1);
    const bytes = alice.card.bytes.slice();
    const at = toHex(bytes).indexOf(toHex(new TextEncoder().encode("alice"))) / 2;
    bytes.set(new TextEncoder().encode("mally"), at);
    await assert.rejects(decodeCard(crypto, bytes), code("key"));
  });
});

describe("card strictness", () => {
  it("refuses unknown fields (they would escape the self-signature)", async () => {
    const { decodeCbor, encodeCbor } = await import("../core/cbor.ts");
    const alice = await fixedIdentity("alice@example.org", 1);
    const map = decodeCbor(alice.card.bytes) as Map<number, unknown>;
    map.set(10, "grease");
    await assert.rejects(decodeCard(crypto, encodeCbor(map as never)), code("malformed"));
  });
});

describe("hybrid cards (format 2, SPEC §3.1)", () => {
  const caps = { stps: [[2, 3]] as const, amps: [[1, 1]] as const };

  it("createIdentity makes a hybrid identity by default; hybrid: false a classical one", async () => {
    const hybrid = await createIdentity(crypto, { address: "a@x.org", ...caps });
    assert.equal(cardFormat(hybrid.card), 2);
    assert.equal(hybrid.card.hybridKey?.length, XWING_PUBLIC_KEY_SIZE);
    assert.equal(hybrid.hybridSeed?.length, 32);
    assert.deepEqual(hybrid.card.hybridKey, await crypto.xwingPublicKey(hybrid.hybridSeed!));
    const classical = await createIdentity(crypto, { address: "a@x.org", ...caps, hybrid: false });
    assert.equal(cardFormat(classical.card), 1);
    assert.equal(classical.card.hybridKey, undefined);
    assert.equal(classical.hybridSeed, undefined);
    const decoded = await decodeCard(crypto, hybrid.card.bytes);
    assert.ok(sameKeys(decoded, hybrid.card));
    assert.ok(!sameKeys(decoded, { ...hybrid.card, hybridKey: classical.card.hybridKey }));
  });

  it("the ID and fingerprint cover the hybrid key, under format-2 labels", async () => {
    const seeds = { signingSeed: new Uint8Array(32).fill(1), agreementKey: new Uint8Array(32) };
    const base = { address: "a@x.org", ...caps, created: 0, ...seeds };
    const v1 = await createIdentity(crypto, { ...base, hybrid: false });
    const v2a = await createIdentity(crypto, { ...base, hybridSeed: new Uint8Array(32).fill(2) });
    const v2b = await createIdentity(crypto, { ...base, hybridSeed: new Uint8Array(32).fill(3) });
    const ids = new Set([v1, v2a, v2b].map((i) => toHex(i.card.id)));
    assert.equal(ids.size, 3);
    assert.notEqual(await fingerprint(crypto, v2a.card), await fingerprint(crypto, v2b.card));
    assert.deepEqual(
      v1.card.id,
      await identityId(crypto, {
        signingKey: v1.card.signingKey,
        agreementKey: v1.card.agreementKey,
      }),
    );
  });

  it("the largest card a decoder can meet fits MAX_CARD_SIZE", async () => {
    const pairs = Array.from({ length: 64 }, () => [65535, 65535] as const);
    const big = await createIdentity(crypto, {
      address: `${"x".repeat(64)}@${"d".repeat(63)}.${"e".repeat(63)}.${"f".repeat(57)}.org`,
      stps: pairs,
      amps: pairs,
      created: Number.MAX_SAFE_INTEGER,
    });
    assert.equal(big.card.address.length, 254);
    assert.equal(big.card.bytes.length, 2529);
    assert.ok(big.card.bytes.length <= MAX_CARD_SIZE);
    assert.ok(sameKeys(await decodeCard(crypto, big.card.bytes), big.card));
  });

  it("format and fields agree: no field 9 in format 1, field 9 required in format 2", async () => {
    const { decodeCbor, encodeCbor } = await import("../core/cbor.ts");
    const v2 = await fixedIdentity("alice@example.org", 1);
    const v1 = await fixedIdentity("alice@example.org", 1, { hybrid: false });
    const m2 = decodeCbor(v2.card.bytes) as Map<number, unknown>;
    m2.delete(9);
    await assert.rejects(decodeCard(crypto, encodeCbor(m2 as never)), code("malformed"));
    const m1 = decodeCbor(v1.card.bytes) as Map<number, unknown>;
    m1.set(9, v2.card.hybridKey);
    await assert.rejects(decodeCard(crypto, encodeCbor(m1 as never)), code("malformed"));
    m1.set(1, 3);
    await assert.rejects(decodeCard(crypto, encodeCbor(m1 as never)), code("malformed"));
  });

  it("refuses a hybrid key whose X25519 half has small order or whose ML-KEM half fails the check", async () => {
    const alice = await fixedIdentity("alice@example.org", 1);
    const remake = (hybridKey: Uint8Array) =>
      makeCard(crypto, { ...alice.card, hybridKey: hybridKey as never }, alice.signingSeed);
    const zeroX = alice.card.hybridKey!.slice();
    zeroX.fill(0, XWING_PUBLIC_KEY_SIZE - 32);
    await assert.rejects(decodeCard(crypto, (await remake(zeroX)).bytes), code("key"));
    const highBit = alice.card.hybridKey!.slice();
    highBit[XWING_PUBLIC_KEY_SIZE - 1] |= 0x80;
    await assert.rejects(decodeCard(crypto, (await remake(highBit)).bytes), code("key"));
    const modulus = alice.card.hybridKey!.slice();
    modulus.fill(0xff, 0, 3);
    await assert.rejects(decodeCard(crypto, (await remake(modulus)).bytes), code("key"));
  });

  it("key files keep the X-Wing seed (format 2), plain and encrypted, and re-derive the key", async () => {
    const alice = await fixedIdentity("alice@example.org", 1);
    for (const passphrase of [undefined, "correct horse"]) {
      const text = await writeKeyFile(crypto, alice, { passphrase, logN: 10 });
      const loaded = await readKeyFile(crypto, text, () => Promise.resolve("correct horse"));
      assert.deepEqual(loaded.hybridSeed, alice.hybridSeed);
      assert.ok(sameKeys(loaded.card, alice.card));
    }
    const wrongSeed = await writeKeyFile(crypto, { ...alice, hybridSeed: new Uint8Array(32) });
    await assert.rejects(readKeyFile(crypto, wrongSeed, () => Promise.resolve("")), code("key"));
    const { hybridSeed: _, ...noSeed } = alice;
    await assert.rejects(writeKeyFile(crypto, noSeed), code("usage"));
  });

  it("a key file's format must match its card's", async () => {
    const { decodeCbor, encodeCbor } = await import("../core/cbor.ts");
    const { armorBlock, dearmorBlock } = await import("../core/armor.ts");
    const alice = await fixedIdentity("alice@example.org", 1);
    const text = await writeKeyFile(crypto, alice);
    const map = decodeCbor(
      dearmorBlock("MISSIVE SECRET KEY", text, { maxBytes: 8192, allowComments: true }),
    ) as Map<number, unknown>;
    map.set(1, 1);
    const altered = armorBlock("MISSIVE SECRET KEY", encodeCbor(map as never));
    await assert.rejects(readKeyFile(crypto, altered, () => Promise.resolve("")), code("key"));
  });
});

describe("key files", () => {
  it("round-trip unencrypted, and the card is readable without secrets", async () => {
    const alice = await fixedIdentity("alice@example.org", 1);
    const text = await writeKeyFile(crypto, alice);
    assert.match(
      text,
      /^# missive secret key for alice@example.org\n# id: [0-9a-f]{32}\n# card: missive-card:/,
    );
    const loaded = await readKeyFile(
      crypto,
      text,
      () => Promise.reject(new Error("no passphrase expected")),
    );
    assert.deepEqual(loaded.signingSeed, alice.signingSeed);
    assert.deepEqual(loaded.agreementKey, alice.agreementKey);
    assert.equal((await inspectKeyFile(crypto, text)).encrypted, false);
  });

  it("round-trip with a passphrase; a wrong one is a key error", async () => {
    const alice = await fixedIdentity("alice@example.org", 1);
    const text = await writeKeyFile(crypto, alice, { passphrase: "correct horse", logN: 10 });
    assert.equal((await inspectKeyFile(crypto, text)).encrypted, true);
    assert.ok(sameKeys((await inspectKeyFile(crypto, text)).card, alice.card));
    const loaded = await readKeyFile(crypto, text, () => Promise.resolve("correct horse"));
    assert.deepEqual(loaded.signingSeed, alice.signingSeed);
    await assert.rejects(readKeyFile(crypto, text, () => Promise.resolve("wrong")), code("key"));
  });

  it("refuse a secret that does not match the card", async () => {
    const alice = await fixedIdentity("alice@example.org", 1);
    const bob = await fixedIdentity("bob@example.org", 3);
    const mixed = await writeKeyFile(crypto, { ...alice, signingSeed: bob.signingSeed });
    await assert.rejects(readKeyFile(crypto, mixed, () => Promise.resolve("")), code("key"));
  });
});
