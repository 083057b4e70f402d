/**
 * Chat vectors (SPEC §27): `chat-message` bodies through the chat AMP decoder,
 * `announce` datagrams through the LAN receiver (decode, card, signature, then freshness
 * against `now` and replay against `last`), and `history-row` sealed rows opened with the
 * identity's history key. Announcements and rows are deterministic (Ed25519; a stated
 * GCM nonce), so success vectors are reproduced byte for byte.
 * Part of tests/vectors/generate.ts (see there).
 * @module
 */
import { type Bytes, toHex, utf8 } from "../../core/bytes.ts";
import { type CborValue, encodeCbor } from "../../core/cbor.ts";
import { isMissiveError } from "../../core/errors.ts";
import type { CryptoProvider } from "../../crypto/provider.ts";
import type { Identity } from "../../keys/identity.ts";
import {
  AnnounceGuard,
  type ChatMessage,
  decodeChatMessage,
  decodeDatagram,
  encodeAnnouncement,
  encodeChatMessage,
  encodeQuery,
} from "../../chat/mod.ts";
import { historyKey, openRow, sealRow } from "../../chat/history.ts";
import { NOW, secret } from "./common.ts";
import { fromHex } from "../../core/bytes.ts";

const h = (s: string) => fromHex(s)!;
const id16 = (n: number) => new Uint8Array(16).fill(n) as Bytes;
const json = (m: ChatMessage) =>
  JSON.parse(JSON.stringify(m, (_, v) => v instanceof Uint8Array ? toHex(v) : v));

function messageVectors() {
  const vectors: unknown[] = [];
  const good = (name: string, m: ChatMessage) => {
    const bytes = encodeChatMessage(m);
    vectors.push({
      name,
      kind: "chat-message",
      input: toHex(bytes),
      expect: { outcome: "success", message: json(decodeChatMessage(bytes)) },
    });
  };
  const bad = (name: string, value: CborValue | Uint8Array) => {
    const input = value instanceof Uint8Array ? value : encodeCbor(value);
    let code = "success";
    try {
      decodeChatMessage(input);
    } catch (e) {
      if (!isMissiveError(e)) throw e;
      code = e.code;
    }
    if (code === "success") throw new Error(`chat vector ${name}: decoded`);
    vectors.push({ name, kind: "chat-message", input: toHex(input), expect: { outcome: code } });
  };
  good("request", { kind: "request", requestId: id16(1), note: "it's alice", bundle: h("a0") });
  good("accept", { kind: "accept", requestId: id16(1) });
  good("refuse", { kind: "refuse", requestId: id16(1), reason: "who?" });
  good("text", { kind: "text", text: "hello bob ✓" });
  good("receipt", { kind: "receipt", state: "read", nonces: [id16(2), id16(3)] });
  good("presence", { kind: "presence", status: "busy", note: "lunch" });
  good("forward", { kind: "forward", text: "fwd", author: "carol@example.org", time: NOW });
  good("bye", { kind: "bye" });
  const m = (...entries: [number, CborValue][]) => new Map<number, CborValue>(entries);
  vectors.push({
    name: "grease-field-ignored",
    kind: "chat-message",
    input: toHex(encodeCbor(m([1, 3], [5, "hi"], [40, "grease"]))),
    expect: { outcome: "success", message: { kind: "text", text: "hi" } },
  });
  bad("not-a-map", [1, 3]);
  bad("unknown-kind", m([1, 8]));
  bad("missing-kind", m([5, "x"]));
  bad("text-missing", m([1, 3]));
  bad("foreign-field", m([1, 3], [5, "x"], [2, id16(1)]));
  bad("request-id-15", m([1, 1], [2, new Uint8Array(15)]));
  bad("text-too-long", m([1, 3], [5, "x".repeat(4097)]));
  bad("note-too-long", m([1, 7], [3, "x".repeat(257)]));
  bad("receipt-empty", m([1, 4], [6, 0], [7, []]));
  bad("receipt-nonce-15", m([1, 4], [6, 0], [7, [new Uint8Array(15)]]));
  bad("receipt-state-2", m([1, 4], [6, 2], [7, [id16(1)]]));
  bad("presence-status-4", m([1, 5], [8, 4]));
  bad("bundle-empty", m([1, 0], [2, id16(1)], [4, new Uint8Array(0)]));
  bad("bundle-too-large", m([1, 0], [2, id16(1)], [4, new Uint8Array(2049)]));
  bad("forward-time-negative", m([1, 6], [5, "x"], [9, "a@b"], [10, -1]));
  bad("message-truncated", encodeChatMessage({ kind: "text", text: "hello" }).subarray(0, 5));
  bad("trailing-byte", new Uint8Array([...encodeChatMessage({ kind: "bye" }), 0]));
  bad("non-shortest-kind", h("a1011803"));
  return vectors;
}

async function announceVectors(provider: CryptoProvider, ids: Map<string, Identity>) {
  const vectors: unknown[] = [];
  const alice = ids.get("alice")!;
  const mallory = ids.get("mallory")!;
  const add = async (
    name: string,
    datagram: Uint8Array,
    check: { now: number; last: number | null },
    sign?: { identity: string; role: string; presence: string; port: number; time: number },
  ) => {
    let expect: Record<string, unknown>;
    try {
      const d = await decodeDatagram(provider, datagram);
      if (d.kind === "announce") {
        const guard = new AnnounceGuard();
        const idHex = toHex(d.announcement.card.id);
        if (check.last !== null) guard.check(idHex, check.last, check.last);
        guard.check(idHex, d.announcement.time, check.now);
        const a = d.announcement;
        expect = {
          outcome: "success",
          address: a.card.address,
          id: idHex,
          role: a.role,
          presence: a.presence,
          port: a.port,
          time: a.time,
        };
      } else {
        expect = { outcome: "success", query: toHex(d.nonce) };
      }
    } catch (e) {
      if (!isMissiveError(e)) throw e;
      expect = { outcome: e.code };
    }
    vectors.push({
      name,
      kind: "announce",
      ...(sign ? { sign } : {}),
      datagram: toHex(datagram),
      ...check,
      expect,
    });
  };
  const inputs = {
    identity: "alice",
    role: "chat" as const,
    presence: "online" as const,
    port: 47900,
    time: NOW,
  };
  const good = await encodeAnnouncement(provider, alice, inputs);
  await add("announce-chat", good, { now: NOW, last: null }, inputs);
  const relayIn = {
    identity: "bob",
    role: "relay" as const,
    presence: "busy" as const,
    port: 7900,
    time: NOW + 5,
  };
  await add("announce-relay", await encodeAnnouncement(provider, ids.get("bob")!, relayIn), {
    now: NOW,
    last: null,
  }, relayIn);
  await add("announce-later-than-last", good, { now: NOW + 1000, last: NOW - 2000 }, inputs);
  await add("query", encodeQuery(id16(7)), { now: NOW, last: null });
  await add("replayed", good, { now: NOW + 10, last: NOW }, inputs);
  await add("older-than-last", good, { now: NOW, last: NOW + 1 }, inputs);
  await add("stale-31s", good, { now: NOW + 31_000, last: null }, inputs);
  await add("future-31s", good, { now: NOW - 31_000, last: null }, inputs);
  const flip = (i: number) => {
    const b = new Uint8Array(good);
    b[i] ^= 1;
    return b;
  };
  await add("signature-flipped", flip(good.length - 1), { now: NOW, last: null });
  await add(
    "port-changed",
    (() => {
      // {…, 5: 47900} → 47901, signature unchanged: not what alice signed.
      const at = toHex(good).indexOf("0519bb1c");
      const b = h(toHex(good).slice(0, at) + "0519bb1d" + toHex(good).slice(at + 8));
      return b;
    })(),
    { now: NOW, last: null },
  );
  const forged = await encodeAnnouncement(provider, mallory, inputs);
  const swapped = new Map<number, CborValue>([
    [1, 0],
    [2, alice.card.bytes],
    [3, 0],
    [4, 0],
    [5, 47900],
    [6, NOW],
    [7, forged.subarray(forged.length - 64)],
  ]);
  await add("signed-by-another", encodeCbor(swapped), { now: NOW, last: null });
  await add("garbage", utf8("HELLO missive"), { now: NOW, last: null });
  await add("truncated", good.subarray(0, 100), { now: NOW, last: null });
  await add("too-large", new Uint8Array(8193), { now: NOW, last: null });
  await add(
    "unknown-field",
    encodeCbor(new Map<number, CborValue>([[1, 1], [2, id16(7)], [3, 0]])),
    { now: NOW, last: null },
  );
  await add(
    "card-invalid",
    encodeCbor(
      new Map<number, CborValue>([[1, 0], [2, h("a0")], [3, 0], [4, 0], [5, 1], [6, NOW], [
        7,
        new Uint8Array(64),
      ]]),
    ),
    { now: NOW, last: null },
  );
  await add(
    "port-zero",
    encodeCbor(
      new Map<number, CborValue>([[1, 0], [2, alice.card.bytes], [3, 0], [4, 0], [5, 0], [6, NOW], [
        7,
        new Uint8Array(64),
      ]]),
    ),
    { now: NOW, last: null },
  );
  await add(
    "presence-invisible",
    encodeCbor(
      new Map<number, CborValue>([[1, 0], [2, alice.card.bytes], [3, 0], [4, 3], [5, 1], [6, NOW], [
        7,
        new Uint8Array(64),
      ]]),
    ),
    { now: NOW, last: null },
  );
  return vectors;
}

async function historyVectors(provider: CryptoProvider, ids: Map<string, Identity>) {
  const vectors: unknown[] = [];
  const alice = ids.get("alice")!;
  const key = await provider.aeadKey("aes-256-gcm", await historyKey(provider, alice));
  const bobKey = await provider.aeadKey("aes-256-gcm", await historyKey(provider, ids.get("bob")!));
  const nonce = h(secret("alice", "history-nonce").slice(0, 24));
  const plain = encodeCbor(
    new Map<number, CborValue>([[1, 3], [2, "bob@example.org"], [5, "hello bob"]]),
  );
  const add = async (name: string, identity: string, row: number, sealed: Uint8Array, k = key) => {
    let expect: Record<string, unknown>;
    try {
      expect = { outcome: "success", plaintext: toHex(await openRow(k, row, sealed)) };
    } catch (e) {
      if (!isMissiveError(e)) throw e;
      expect = { outcome: e.code };
    }
    vectors.push({
      name,
      kind: "history-row",
      identity,
      historyKey: toHex(await historyKey(provider, ids.get(identity)!)),
      row,
      sealed: toHex(sealed),
      expect,
    });
  };
  const sealed = await sealRow(key, 7, plain, nonce);
  await add("row-7", "alice", 7, sealed);
  await add("check-row", "alice", 0, await sealRow(key, 0, utf8("missive chat history v1"), nonce));
  await add("moved-to-row-8", "alice", 8, sealed);
  await add("another-identity", "bob", 7, sealed, bobKey);
  const flipped = new Uint8Array(sealed);
  flipped[flipped.length - 1] ^= 1;
  await add("tag-flipped", "alice", 7, flipped);
  await add("too-short", "alice", 7, sealed.subarray(0, 27));
  return vectors;
}

const COMMENTS: Record<string, string> = {
  "chat-message": "a chat AMP body (SPEC §27.2)",
  announce: "a LAN datagram (SPEC §27.3)",
  "history-row": "a sealed history row (SPEC §27.5)",
};

/** Every chat vector, in order; the outcome of a failure is its error code. */
export async function chatVectors(provider: CryptoProvider, ids: Map<string, Identity>) {
  const all = [
    ...messageVectors(),
    ...await announceVectors(provider, ids),
    ...await historyVectors(provider, ids),
  ] as { name: string; kind: string }[];
  return all.map(({ name, ...rest }) => ({
    name,
    comment: `${COMMENTS[rest.kind]}: ${name.replaceAll("-", " ")}`,
    ...rest,
  }));
}
