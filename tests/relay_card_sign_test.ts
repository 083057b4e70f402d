/**
 * CA-signed cards (SPEC §23.11): `missive card --sign`, the signature lines in a card
 * file, verification against CA cards, and bad input for the signature decoder.
 * @module
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { toHex } from "../core/bytes.ts";
import { nobleProvider } from "../crypto/mod.ts";
import { isMissiveError } from "../core/errors.ts";
import {
  cardSignaturesInText,
  cardSignatureToText,
  parseCardSignature,
  parseCardText,
  signCard,
  verifyCardSignature,
} from "../keys/card.ts";
import { fixedIdentity, runCli, tempDir } from "./helpers.ts";

describe("CA-signed cards", () => {
  it("a CA signature verifies for its card and CA only", async () => {
    const ca = await fixedIdentity("ca@example.org", 60);
    const other = await fixedIdentity("other-ca@example.org", 62);
    const relay = await fixedIdentity("relay@example.org", 64);
    const bob = await fixedIdentity("bob@example.org", 66);
    const sig = await signCard(nobleProvider, relay.card, ca);
    assert.equal(toHex(sig.caId), toHex(ca.card.id));
    const parsed = parseCardSignature(cardSignatureToText(sig));
    assert.equal(toHex(parsed.signature), toHex(sig.signature));
    const by = await verifyCardSignature(nobleProvider, relay.card, [parsed], [
      other.card,
      ca.card,
    ]);
    assert.equal(by.address, "ca@example.org");
    const untrusted = (p: Promise<unknown>) =>
      assert.rejects(
        p,
        (e) => isMissiveError(e, "untrusted") && /no valid signature/.test(e.message),
      );
    await untrusted(verifyCardSignature(nobleProvider, bob.card, [sig], [ca.card]));
    await untrusted(verifyCardSignature(nobleProvider, relay.card, [sig], [other.card]));
    await untrusted(verifyCardSignature(nobleProvider, relay.card, [], [ca.card]));
    const forged = { caId: sig.caId, signature: sig.signature.slice() };
    forged.signature[0] ^= 1;
    await untrusted(verifyCardSignature(nobleProvider, relay.card, [forged], [ca.card]));
  });

  it("missive card --sign writes a card file that is still a card file", async () => {
    const { dir, cleanup } = tempDir();
    const f = (n: string) => join(dir, n);
    for (const [name, address] of [["ca", "ca@example.org"], ["relay", "relay@example.org"]]) {
      const r = await runCli(["keygen", "--name", address, "-o", f(`${name}.key`)]);
      assert.equal(r.code, 0, r.stderr);
      writeFileSync(f(`${name}.card`), r.stdout);
    }
    const signed = await runCli(["card", f("relay.card"), "--sign", f("ca.key")]);
    assert.equal(signed.code, 0, signed.stderr);
    assert.match(
      signed.text,
      /# signed by ca@example\.org \(id [0-9a-f]{32}\)\n# ca-sig: missive-ca-sig:/,
    );
    writeFileSync(f("relay.signed.card"), signed.stdout);
    const card = await parseCardText(nobleProvider, signed.text);
    assert.equal(card.address, "relay@example.org");
    const caCard = await parseCardText(nobleProvider, readFileSync(f("ca.card"), "utf8"));
    await verifyCardSignature(nobleProvider, card, cardSignaturesInText(signed.text), [caCard]);
    // Signing again with the same CA replaces its signature instead of adding one.
    const again = await runCli(["card", f("relay.signed.card"), "--sign", f("ca.key")]);
    assert.equal(cardSignaturesInText(again.text).length, 1);
    cleanup();
  });

  it("refuses malformed signatures with typed errors", () => {
    const good = "missive-ca-sig:" + "A".repeat(10);
    for (
      const bad of [
        "",
        "missive-ca-sig:",
        "missive-ca-sig:!!!",
        good,
        "other:" + "A".repeat(20),
        "missive-ca-sig:" + "A".repeat(400),
        // {1: 15 bytes, 2: 64 bytes}
        "missive-ca-sig:" +
        Buffer.from([
          0xa2,
          0x01,
          0x4f,
          ...new Uint8Array(15),
          0x02,
          0x58,
          0x40,
          ...new Uint8Array(64),
        ]).toString("base64url"),
        // {1: 16 bytes, 2: 64 bytes, 3: 0} (unknown key)
        "missive-ca-sig:" +
        Buffer.from([
          0xa3,
          0x01,
          0x50,
          ...new Uint8Array(16),
          0x02,
          0x58,
          0x40,
          ...new Uint8Array(64),
          0x03,
          0x00,
        ]).toString("base64url"),
      ]
    ) {
      assert.throws(
        () => parseCardSignature(bad),
        (e) => isMissiveError(e, "malformed") || isMissiveError(e, "too-large"),
        bad,
      );
    }
    assert.throws(
      () => cardSignaturesInText("# ca-sig: missive-ca-sig:AAAA\nmissive-card:x"),
      (e) => isMissiveError(e, "malformed"),
    );
  });
});
