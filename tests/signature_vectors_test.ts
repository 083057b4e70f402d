/**
 * tests/vectors/signature.json (SPEC §24) through both crypto providers: every vector
 * gives its stated outcome through `verifyFile`; success vectors are re-derived from the
 * SPEC with noble alone (armor, fields, transcript, Ed25519, SHA-512) and re-signed from
 * their `sign` inputs to the exact text. The corpus-wide checks (failures ≥ successes,
 * regeneration) are in vectors_test.ts.
 * @module
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { ed25519 } from "@noble/curves/ed25519.js";
import { sha512 } from "@noble/hashes/sha2.js";
import { type Bytes, fromBase64, fromHex, toHex, utf8 } from "../core/bytes.ts";
import { type CborMap, type CborValue, decodeCbor, encodeCbor } from "../core/cbor.ts";
import { isMissiveError } from "../core/errors.ts";
import { type CryptoProvider, nobleProvider, webcryptoProvider } from "../crypto/mod.ts";
import { verifyFile } from "../sign/mod.ts";
import { get, IDENTITY_SPECS, makeIdentities } from "./vectors/common.ts";

interface SignatureVector {
  name: string;
  sign?: { signer: string; created: number; comment: string };
  file: string;
  signature: string;
  verify: { trusted: string[]; requireTrust: boolean };
  expect: {
    outcome: string;
    error?: string;
    signer?: { address: string; id: string; fingerprint: string };
    trusted?: boolean;
    created?: number;
    comment?: string;
    size?: number;
    sha512?: string;
    signatureInput?: string;
  };
}

const doc = JSON.parse(
  readFileSync(new URL("./vectors/signature.json", import.meta.url), "utf8"),
) as { vectors: SignatureVector[] };
const hex = (s: string): Bytes => {
  const b = fromHex(s);
  if (!b) throw new Error(`not hex: ${s.slice(0, 20)}`);
  return b;
};

for (const provider of [nobleProvider, webcryptoProvider] as CryptoProvider[]) {
  describe(`signature.json via ${provider.name}`, () => {
    it("each vector verifies to its stated report, or fails with its stated code", async () => {
      const ids = await makeIdentities(provider);
      const failures: string[] = [];
      for (const v of doc.vectors) {
        try {
          const ok = await verifyFile(v.signature, hex(v.file), {
            crypto: provider,
            trusted: v.verify.trusted.map((n) => get(ids, n).card),
            requireTrust: v.verify.requireTrust,
          });
          assert.equal(v.expect.outcome, "success", "verified");
          assert.deepEqual(
            {
              address: ok.signer.address,
              id: toHex(ok.signer.id),
              trusted: ok.trusted,
              created: ok.created,
              comment: ok.comment,
              size: ok.size,
              sha512: toHex(ok.sha512),
            },
            {
              address: v.expect.signer!.address,
              id: v.expect.signer!.id,
              trusted: v.expect.trusted,
              created: v.expect.created,
              comment: v.expect.comment,
              size: v.expect.size,
              sha512: v.expect.sha512,
            },
          );
        } catch (e) {
          if (!isMissiveError(e)) {
            failures.push(`${v.name}: ${(e as Error).message}`);
          } else if (e.code !== v.expect.error) {
            failures.push(`${v.name}: ${e.code} (${e.message}), expected ${v.expect.outcome}`);
          }
        }
      }
      assert.deepEqual(failures, []);
    });
  });
}

describe("signature.json re-derived from SPEC §24 with noble alone", () => {
  it("success vectors: armor, fields, transcript, Ed25519 and SHA-512 as the SPEC states", async () => {
    const ids = await makeIdentities(nobleProvider);
    const ok = doc.vectors.filter((v) => v.expect.outcome === "success");
    assert.ok(ok.length >= 5);
    for (const v of ok) {
      // §24.1: the text form is the armor of §2.2 under MISSIVE SIGNATURE.
      const lines = v.signature.split("\n");
      assert.equal(lines[0], "-----BEGIN MISSIVE SIGNATURE-----", v.name);
      assert.equal(lines.at(-2), "-----END MISSIVE SIGNATURE-----", v.name);
      assert.equal(lines.at(-1), "", v.name);
      const bytes = fromBase64(lines.slice(1, -2).join(""))!;
      const m = decodeCbor(bytes) as CborMap;
      assert.deepEqual([...m.keys()], [1, 2, 3, 4, 5, 6, 7], v.name);
      assert.equal(m.get(1), 1);
      const file = hex(v.file);
      const [card, created, size, hash, comment, signature] = [2, 3, 4, 5, 6, 7].map((k) =>
        m.get(k)
      ) as [Bytes, number, number, Bytes, string, Bytes];
      assert.equal(size, file.length, v.name);
      assert.equal(toHex(hash), toHex(sha512(file)), v.name);
      // §24.2: the transcript, rebuilt from the fields.
      const input = encodeCbor(["missive/signature/v1/file", card, created, size, hash, comment]);
      assert.equal(toHex(input), v.expect.signatureInput, v.name);
      const signer = get(ids, v.sign!.signer);
      assert.equal(toHex(card), toHex(signer.card.bytes), v.name);
      const spec = IDENTITY_SPECS.find((s) => s.name === v.sign!.signer)!;
      // The card's signing key (card field 3) verifies the signature; re-signing gives it.
      const signingKey = (decodeCbor(card) as CborMap).get(3) as Bytes;
      assert.ok(ed25519.verify(signature, input, signingKey), v.name);
      assert.equal(toHex(ed25519.sign(input, hex(spec.signingSeed))), toHex(signature), v.name);
      // Re-encoding the stated inputs gives the same text, byte for byte.
      const again = encodeCbor(
        new Map<number, CborValue>([
          [1, 1],
          [2, signer.card.bytes],
          [3, v.sign!.created],
          [4, file.length],
          [5, sha512(file)],
          [6, v.sign!.comment],
          [7, signature],
        ]),
      );
      assert.equal(toHex(again), toHex(bytes), v.name);
      assert.equal(new TextDecoder().decode(utf8(v.signature)), v.signature);
    }
  });
});
