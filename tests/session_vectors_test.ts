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
import { concatBytes, fromHex, toHex, utf8 } from "../core/bytes.ts";
import { nobleProvider, webcryptoProvider } from "../crypto/mod.ts";
import { decodeDataBody, decodeFrame, MessageType } from "../session/messages.ts";
import { makeIdentities } from "./vectors/common.ts";
import {
  runSessionVector,
  type SessionVector,
  sessionVectors,
  specInitialKeys,
} from "./vectors/cases_session.ts";
import { sessionV2Vectors, specAadV2, specInitialKeysV2 } from "./vectors/cases_session_v2.ts";

const file = JSON.parse(
  readFileSync(new URL("./vectors/session.json", import.meta.url), "utf8"),
) as { vectors: SessionVector[] };
const vectors = file.vectors;
const ids = await makeIdentities(nobleProvider);

describe("session vectors", () => {
  it("has at least as many failures as successes", () => {
    const ok = vectors.filter((v) => v.expect.outcome === "success").length;
    assert.ok(ok >= 3 && vectors.length - ok >= ok, `${ok} of ${vectors.length}`);
  });

  for (
    const [name, provider] of [["noble", nobleProvider], ["webcrypto", webcryptoProvider]] as const
  ) {
    it(`every vector replays exactly (${name})`, async () => {
      for (const v of vectors) {
        const got = JSON.parse(JSON.stringify(await runSessionVector(provider, ids, v, v.expect)));
        assert.deepEqual(got, v.expect, v.name);
      }
    });
  }

  it("the generator reproduces the committed vectors", async () => {
    const again = JSON.parse(JSON.stringify(await sessionVectors(nobleProvider, ids)));
    assert.deepEqual(again, vectors);
  });

  it("SPEC §22.5 alone derives the keys that open the client's DATA", () => {
    for (const v of vectors.filter((x) => x.expect.outcome === "success")) {
      const c2s = v.inputs.map((h) => fromHex(h)!);
      const s2c = v.expect.outputs.map((h) => fromHex(h)!);
      const k = specInitialKeys(v, c2s, s2c);
      assert.equal(toHex(k.keyId), v.expect.keyIds[0], v.name);
      let counter = 0;
      const opened: string[] = [];
      for (const bytes of c2s.slice(1)) {
        const f = decodeFrame(bytes, 1 << 20);
        if (f.form !== "sealed" || toHex(f.keyId) !== toHex(k.keyId)) break;
        const nonce = new Uint8Array(12);
        new DataView(nonce.buffer).setUint32(8, counter++);
        const envHeader = new Uint8Array(12);
        const view = new DataView(envHeader.buffer);
        view.setUint16(0, 5);
        view.setUint16(2, 1);
        view.setUint32(4, Math.floor(f.seq / 2 ** 32));
        view.setUint32(8, f.seq >>> 0);
        const payloadHeader = bytes.subarray(
          bytes.length - f.ciphertext.length - 18,
          -f.ciphertext.length,
        );
        const aad = concatBytes(utf8("missive/session/v1/aad"), envHeader, payloadHeader);
        const plain = chacha20poly1305(k.c2s, nonce, aad).decrypt(f.ciphertext);
        if (f.type === MessageType.DATA) opened.push(toHex(decodeDataBody(plain).data));
      }
      assert.ok(opened.length > 0, v.name);
      assert.deepEqual(opened, v.expect.delivered.slice(0, opened.length), v.name);
    }
  });
});

describe("session v2 vectors", () => {
  const v2 = (JSON.parse(
    readFileSync(new URL("./vectors/session_v2.json", import.meta.url), "utf8"),
  ) as { vectors: SessionVector[] }).vectors;

  it("has at least as many failures as successes", () => {
    const ok = v2.filter((v) => v.expect.outcome === "success").length;
    assert.ok(ok >= 3 && v2.length - ok >= ok, `${ok} of ${v2.length}`);
  });

  for (
    const [name, provider] of [["noble", nobleProvider], ["webcrypto", webcryptoProvider]] as const
  ) {
    it(`every vector replays exactly (${name})`, async () => {
      for (const v of v2) {
        const got = JSON.parse(JSON.stringify(await runSessionVector(provider, ids, v, v.expect)));
        assert.deepEqual(got, v.expect, v.name);
      }
    });
  }

  it("the generator reproduces the committed vectors", async () => {
    const again = JSON.parse(JSON.stringify(await sessionV2Vectors(nobleProvider, ids)));
    assert.deepEqual(again, v2);
  });

  it("SPEC §22.12 alone derives the keys that open the client's DATA", () => {
    for (const v of v2.filter((x) => x.expect.outcome === "success")) {
      const c2s = v.inputs.map((h) => fromHex(h)!);
      const s2c = v.expect.outputs.map((h) => fromHex(h)!);
      const k = specInitialKeysV2(v, c2s, s2c);
      assert.equal(toHex(k.keyId), v.expect.keyIds[0], v.name);
      let counter = 0;
      const opened: string[] = [];
      for (const bytes of c2s.slice(1)) {
        const f = decodeFrame(bytes, 1 << 20);
        if (f.form !== "sealed" || toHex(f.keyId) !== toHex(k.keyId)) break;
        assert.equal(bytes[7], 2, "a v2 frame's envelope is (5, 2)");
        const nonce = new Uint8Array(12);
        new DataView(nonce.buffer).setUint32(8, counter++);
        const payloadHeader = bytes.subarray(
          bytes.length - f.ciphertext.length - 18,
          -f.ciphertext.length,
        );
        const aad = specAadV2(f.seq, payloadHeader);
        const plain = chacha20poly1305(k.c2s, nonce, aad).decrypt(f.ciphertext);
        if (f.type === MessageType.DATA) opened.push(toHex(decodeDataBody(plain).data));
      }
      assert.ok(opened.length > 0, v.name);
      assert.deepEqual(opened, v.expect.delivered.slice(0, opened.length), v.name);
    }
  });
});
