/**
 * tests/vectors/chat.json (SPEC §27) through both crypto providers: every vector gives
 * its stated outcome through the implementation; success vectors are re-derived from the
 * SPEC with raw primitive calls (noble's Ed25519, HKDF-SHA-256 and AES-256-GCM, the CBOR
 * codec): announcement signatures re-made from their `sign` inputs, history keys and rows
 * opened by hand. Corpus-wide checks (failures ≥ successes, regeneration) are in
 * vectors_test.ts.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { ed25519 } from "@noble/curves/ed25519.js";
import { gcm } from "@noble/ciphers/aes.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { type Bytes, concatBytes, fromHex, toHex } from "../core/bytes.ts";
import { type CborMap, decodeCbor, transcript } from "../core/cbor.ts";
import { isMissiveError } from "../core/errors.ts";
import { type CryptoProvider, nobleProvider, webcryptoProvider } from "../crypto/mod.ts";
import { AnnounceGuard, decodeChatMessage, decodeDatagram } from "../chat/mod.ts";
import { openRow } from "../chat/history.ts";
import { get, makeIdentities } from "./vectors/common.ts";

interface ChatVector {
  name: string;
  kind: "chat-message" | "announce" | "history-row";
  input?: string;
  datagram?: string;
  now?: number;
  last?: number | null;
  sign?: { identity: string; role: string; presence: string; port: number; time: number };
  identity?: string;
  historyKey?: string;
  row?: number;
  sealed?: string;
  expect: { outcome: string; [k: string]: unknown };
}

const doc = JSON.parse(readFileSync(new URL("./vectors/chat.json", import.meta.url), "utf8")) as {
  vectors: ChatVector[];
};
const hex = (s: string): Bytes => fromHex(s)!;
const json = (v: unknown) =>
  JSON.parse(JSON.stringify(v, (_, x) => x instanceof Uint8Array ? toHex(x) : x));

async function outcome(provider: CryptoProvider, v: ChatVector): Promise<Record<string, unknown>> {
  try {
    if (v.kind === "chat-message") {
      return { outcome: "success", message: json(decodeChatMessage(hex(v.input!))) };
    }
    if (v.kind === "history-row") {
      const key = await provider.aeadKey("aes-256-gcm", hex(v.historyKey!));
      return { outcome: "success", plaintext: toHex(await openRow(key, v.row!, hex(v.sealed!))) };
    }
    const d = await decodeDatagram(provider, hex(v.datagram!));
    if (d.kind === "query") return { outcome: "success", query: toHex(d.nonce) };
    const a = d.announcement;
    const guard = new AnnounceGuard();
    const id = toHex(a.card.id);
    if (v.last !== null && v.last !== undefined) guard.check(id, v.last, v.last);
    guard.check(id, a.time, v.now!);
    return {
      outcome: "success",
      address: a.card.address,
      id,
      role: a.role,
      presence: a.presence,
      port: a.port,
      time: a.time,
    };
  } catch (e) {
    if (!isMissiveError(e)) throw e;
    return { outcome: e.code };
  }
}

describe("chat.json", () => {
  it("has as many failures as successes, and every kind", () => {
    const fails = doc.vectors.filter((v) => v.expect.outcome !== "success").length;
    assert.ok(fails >= doc.vectors.length - fails, `${fails} failures of ${doc.vectors.length}`);
    for (const k of ["chat-message", "announce", "history-row"]) {
      assert.ok(doc.vectors.some((v) => v.kind === k && v.expect.outcome === "success"), k);
      assert.ok(doc.vectors.some((v) => v.kind === k && v.expect.outcome !== "success"), k);
    }
  });

  for (const provider of [nobleProvider, webcryptoProvider] as CryptoProvider[]) {
    it(`every vector gives its outcome via ${provider.name}`, async () => {
      for (const v of doc.vectors) assert.deepEqual(await outcome(provider, v), v.expect, v.name);
    });
  }

  it("announcements re-derived from SPEC §27.3 with noble's Ed25519", async () => {
    const ids = await makeIdentities(nobleProvider);
    const roles = ["chat", "relay"], presences = ["online", "busy", "away"];
    for (const v of doc.vectors.filter((v) => v.kind === "announce" && v.sign)) {
      const s = v.sign!;
      const who = get(ids, s.identity);
      const m = decodeCbor(hex(v.datagram!)) as CborMap;
      assert.equal(m.get(1), 0, v.name);
      assert.equal(toHex(m.get(2) as Bytes), toHex(who.card.bytes), v.name);
      const signed = transcript(
        "missive/chat/v1/announce",
        who.card.bytes,
        roles.indexOf(s.role),
        presences.indexOf(s.presence),
        s.port,
        s.time,
      );
      const signature = ed25519.sign(signed, who.signingSeed);
      assert.equal(toHex(m.get(7) as Bytes), toHex(signature), v.name);
      assert.ok(ed25519.verify(signature, signed, who.card.signingKey));
    }
  });

  it("history keys and rows re-derived from SPEC §27.5 with noble's HKDF and AES-GCM", async () => {
    const ids = await makeIdentities(nobleProvider);
    for (const v of doc.vectors.filter((v) => v.kind === "history-row")) {
      const who = get(ids, v.identity!);
      const key = hkdf(
        sha256,
        concatBytes(who.signingSeed, who.agreementKey),
        who.card.id,
        transcript("missive/chat/v1/history-key"),
        32,
      );
      assert.equal(toHex(key), v.historyKey, v.name);
      if (v.expect.outcome !== "success") continue;
      const sealed = hex(v.sealed!);
      const plain = gcm(
        key,
        sealed.subarray(0, 12),
        transcript("missive/chat/v1/history-row", v.row!),
      )
        .decrypt(sealed.subarray(12));
      assert.equal(toHex(plain), v.expect.plaintext, v.name);
    }
  });

  it("chat messages re-read from SPEC §27.2's table with the CBOR codec", () => {
    const kinds = ["request", "accept", "refuse", "text", "receipt", "presence", "forward", "bye"];
    for (
      const v of doc.vectors.filter((v) =>
        v.kind === "chat-message" && v.expect.outcome === "success"
      )
    ) {
      const m = decodeCbor(hex(v.input!)) as CborMap;
      const message = v.expect.message as Record<string, unknown>;
      assert.equal(kinds[m.get(1) as number], message.kind, v.name);
      if (m.has(5)) assert.equal(m.get(5), message.text, v.name);
      if (m.has(2)) assert.equal(toHex(m.get(2) as Bytes), message.requestId, v.name);
    }
  });
});
