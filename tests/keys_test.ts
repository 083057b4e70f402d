import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { toHex } from "../core/bytes.ts";
import { nobleProvider } from "../crypto/mod.ts";
import { MissiveError } from "../core/errors.ts";
import {
  cardToText,
  decodeCard,
  fingerprint,
  inspectKeyFile,
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
    map.set(9, "grease");
    await assert.rejects(decodeCard(crypto, encodeCbor(map as never)), code("malformed"));
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
