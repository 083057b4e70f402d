/**
 * The session vectors (tests/vectors/session.json, SPEC §22; session_v2.json, §22.12):
 * each replays to exactly its recorded outputs and outcome through both crypto providers;
 * the generator reproduces the committed files; and the first-handshake keys re-derived
 * from the SPEC with noble primitives alone (X25519, and for version 2 the X-Wing
 * decapsulation) open every DATA the client sealed.
 * @module
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { type Bytes, fromHex, toHex } from "../core/bytes.ts";
import { nobleProvider, webcryptoProvider } from "../crypto/mod.ts";
import { decodeDataBody, decodeFrame, MessageType } from "../session/messages.ts";
import { makeIdentities } from "./vectors/common.ts";
import {
  runSessionVector,
  type SessionVector,
  sessionVectors,
  specInitialKeys,
} from "./vectors/cases_session.ts";
import {
  sessionV2Vectors,
  specAad,
  specAadV2,
  specInitialKeysV2,
} from "./vectors/cases_session_v2.ts";

const ids = await makeIdentities(nobleProvider);

/** One version's vector file: replay, generator, and the SPEC-only re-derivation. */
function vectorSuite(o: {
  title: string;
  file: string;
  section: string;
  version: 1 | 2;
  generate: () => Promise<unknown>;
  keys: (v: SessionVector, c2s: Bytes[], s2c: Bytes[]) => { keyId: Uint8Array; c2s: Uint8Array };
  aad: (seq: number, payloadHeader: Uint8Array) => Uint8Array;
}): void {
  const vectors = (JSON.parse(
    readFileSync(new URL(`./vectors/${o.file}`, import.meta.url), "utf8"),
  ) as { vectors: SessionVector[] }).vectors;

  describe(o.title, () => {
    it("has at least as many failures as successes", () => {
      const ok = vectors.filter((v) => v.expect.outcome === "success").length;
      assert.ok(ok >= 3 && vectors.length - ok >= ok, `${ok} of ${vectors.length}`);
    });

    for (
      const [name, provider] of [["noble", nobleProvider], [
        "webcrypto",
        webcryptoProvider,
      ]] as const
    ) {
      it(`every vector replays exactly (${name})`, async () => {
        for (const v of vectors) {
          const got = JSON.parse(
            JSON.stringify(await runSessionVector(provider, ids, v, v.expect)),
          );
          assert.deepEqual(got, v.expect, v.name);
        }
      });
    }

    it("the generator reproduces the committed vectors", async () => {
      assert.deepEqual(JSON.parse(JSON.stringify(await o.generate())), vectors);
    });

    it(`SPEC ${o.section} alone derives the keys that open the client's DATA`, () => {
      for (const v of vectors.filter((x) => x.expect.outcome === "success")) {
        const c2s = v.inputs.map((h) => fromHex(h)!);
        const s2c = v.expect.outputs.map((h) => fromHex(h)!);
        const k = o.keys(v, c2s, s2c);
        assert.equal(toHex(k.keyId), v.expect.keyIds[0], v.name);
        let counter = 0;
        const opened: string[] = [];
        for (const bytes of c2s.slice(1)) {
          const f = decodeFrame(bytes, 1 << 20);
          if (f.form !== "sealed" || toHex(f.keyId) !== toHex(k.keyId)) break;
          assert.equal(
            bytes[7],
            o.version,
            `a v${o.version} frame's envelope is (5, ${o.version})`,
          );
          const nonce = new Uint8Array(12);
          new DataView(nonce.buffer).setUint32(8, counter++);
          const payloadHeader = bytes.subarray(
            bytes.length - f.ciphertext.length - 18,
            -f.ciphertext.length,
          );
          const plain = chacha20poly1305(k.c2s, nonce, o.aad(f.seq, payloadHeader))
            .decrypt(f.ciphertext);
          if (f.type === MessageType.DATA) opened.push(toHex(decodeDataBody(plain).data));
        }
        assert.ok(opened.length > 0, v.name);
        assert.deepEqual(opened, v.expect.delivered.slice(0, opened.length), v.name);
      }
    });
  });
}

vectorSuite({
  title: "session vectors",
  file: "session.json",
  section: "§22.5",
  version: 1,
  generate: () => sessionVectors(nobleProvider, ids),
  keys: specInitialKeys,
  aad: (seq, header) => specAad(1, seq, header),
});

vectorSuite({
  title: "session v2 vectors",
  file: "session_v2.json",
  section: "§22.12",
  version: 2,
  generate: () => sessionV2Vectors(nobleProvider, ids),
  keys: specInitialKeysV2,
  aad: specAadV2,
});
