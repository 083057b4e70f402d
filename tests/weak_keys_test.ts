/**
 * Weak keys (issue 11, finding 8; SPEC §1.4, §3.7): small-order and non-canonical Ed25519
 * points as public keys or as a signature's R, and small-order or non-canonical X25519
 * agreement keys, refused at card decoding and in every verify, through every provider.
 * The attack: a card whose signing key is the identity point, self-signed with the
 * trivial signature (R = identity, S = 0), which "verifies" any message as that card.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Bytes, concatBytes, fromHex, utf8 } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import { getCryptoProvider, nobleProvider, webcryptoProvider } from "../crypto/mod.ts";
import type { CryptoProvider } from "../crypto/provider.ts";
import { decodeCard, makeCard } from "../keys/card.ts";
import type { Identity } from "../keys/identity.ts";
import { defaultRegistry } from "../mod.ts";
import { openMessage, sealMessage } from "../plugin/message.ts";
import { ED25519_TORSION_SUBGROUP } from "@noble/curves/ed25519.js";

const code = (c: string) => (e: unknown) => e instanceof MissiveError && e.code === c;
const providers: [string, () => Promise<CryptoProvider>][] = [
  ["noble", () => Promise.resolve(nobleProvider)],
  ["webcrypto", () => Promise.resolve(webcryptoProvider)],
  ["auto", getCryptoProvider],
];

/** The Ed25519 identity point (0, 1), canonical encoding. */
const IDENTITY_POINT = fromHex("01" + "00".repeat(31))!;
/** R = identity, S = 0: satisfies [S]B = R + [k]A for every message when A is the identity. */
const TRIVIAL_SIGNATURE = concatBytes(IDENTITY_POINT, new Uint8Array(32));
const ALICE_SEED = new Uint8Array(32).fill(7);
const MESSAGE = utf8("pay mallory 100");

/** A provider that "signs" with the trivial signature, to build the attacker's card. */
const trivialSigner = (p: CryptoProvider): CryptoProvider => ({
  ...p,
  ed25519Sign: () => Promise.resolve(TRIVIAL_SIGNATURE.slice()),
});

/** The 8 torsion points, canonical, and non-canonical encodings (y + p, x = 0 with sign 1). */
function weakEd25519Encodings(): [string, Bytes][] {
  const out: [string, Bytes][] = ED25519_TORSION_SUBGROUP.map((h, i) => [
    `torsion[${i}]`,
    fromHex(h)!,
  ]);
  // y = p + 1 (the identity) and y = p (y = 0, order 4): values ≥ p, never canonical.
  out.push(["y = p + 1", fromHex("ee" + "ff".repeat(30) + "7f")!]);
  out.push(["y = p", fromHex("ed" + "ff".repeat(30) + "7f")!]);
  // The identity with the sign bit set: x = 0 cannot be negative (RFC 8032 §5.1.3 step 4).
  out.push(["identity, sign bit set", fromHex("01" + "00".repeat(30) + "80")!]);
  return out;
}

async function attackerCard(p: CryptoProvider) {
  const x = await p.x25519PublicKey(new Uint8Array(32).fill(9));
  return await makeCard(trivialSigner(p), {
    address: "alice@example.org",
    signingKey: IDENTITY_POINT.slice(),
    agreementKey: x,
    stps: [[4, 1]],
    amps: [[1, 1]],
    created: 1_700_000_000_000,
  }, new Uint8Array(32));
}

for (const [name, get] of providers) {
  describe(`weak Ed25519 keys (${name})`, () => {
    it("verify refuses the trivial signature under the identity point", async () => {
      const p = await get();
      assert.equal(await p.ed25519Verify(IDENTITY_POINT, MESSAGE, TRIVIAL_SIGNATURE), false);
    });

    it("refuses a card whose signing key is the identity point", async () => {
      const p = await get();
      const card = await attackerCard(p);
      await assert.rejects(decodeCard(p, card.bytes), code("key"));
    });

    it("a trivial signature does not make a message verify as that card", async () => {
      const p = await get();
      const card = await attackerCard(p);
      const mallory: Identity = {
        card,
        signingSeed: new Uint8Array(32),
        agreementKey: new Uint8Array(32),
      };
      const registry = defaultRegistry();
      const sealed = await sealMessage({
        stp: registry.find("stp", "auth"),
        amp: registry.find("amp", "text/1"),
        message: { text: "pay mallory 100" },
        sender: mallory,
        crypto: trivialSigner(p),
      });
      await assert.rejects(openMessage(sealed, { registry, crypto: p }), code("auth-failed"));
    });

    it("verify refuses small-order and non-canonical public keys and R values", async () => {
      const p = await get();
      const good = await p.ed25519PublicKey(ALICE_SEED);
      const sig = await p.ed25519Sign(ALICE_SEED, MESSAGE);
      assert.equal(await p.ed25519Verify(good, MESSAGE, sig), true);
      for (const [what, point] of weakEd25519Encodings()) {
        assert.equal(await p.ed25519Verify(point, MESSAGE, sig), false, `A = ${what}`);
        const weakR = concatBytes(point, sig.subarray(32));
        assert.equal(await p.ed25519Verify(good, MESSAGE, weakR), false, `R = ${what}`);
        // The trivial forgery with this A: R = A's own small-order point, S = 0.
        const forged = concatBytes(point, new Uint8Array(32));
        assert.equal(await p.ed25519Verify(point, MESSAGE, forged), false, `A = R = ${what}`);
      }
    });

    it("refuses a card whose signing key is small-order or non-canonical", async () => {
      const p = await get();
      for (const [what, point] of weakEd25519Encodings()) {
        const card = await makeCard(trivialSigner(p), {
          address: "alice@example.org",
          signingKey: point,
          agreementKey: await p.x25519PublicKey(new Uint8Array(32).fill(9)),
          stps: [],
          amps: [],
          created: 0,
        }, new Uint8Array(32));
        await assert.rejects(decodeCard(p, card.bytes), code("key"), what);
      }
    });
  });

  describe(`weak X25519 agreement keys (${name})`, () => {
    // u-coordinates of small order on Curve25519 or its twist, and non-canonical ones
    // (≥ p, or the high bit set): the list of RFC 7748 §7 implementations reject.
    const weak: [string, string][] = [
      ["0 (order 2)", "00".repeat(32)],
      ["1 (twist, order 4)", "01" + "00".repeat(31)],
      ["order 8", "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"],
      ["order 8", "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"],
      ["p - 1 (twist, order 2)", "ec" + "ff".repeat(30) + "7f"],
      ["p (= 0)", "ed" + "ff".repeat(30) + "7f"],
      ["p + 1 (= 1)", "ee" + "ff".repeat(30) + "7f"],
      ["high bit set", "09" + "00".repeat(30) + "80"],
    ];
    for (const [what, hex] of weak) {
      it(`refuses a card whose agreement key is ${what}`, async () => {
        const p = await get();
        const card = await makeCard(p, {
          address: "alice@example.org",
          signingKey: await p.ed25519PublicKey(ALICE_SEED),
          agreementKey: fromHex(hex)!,
          stps: [],
          amps: [],
          created: 0,
        }, ALICE_SEED);
        await assert.rejects(decodeCard(p, card.bytes), code("key"));
      });
    }
  });
}
