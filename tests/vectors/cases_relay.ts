/**
 * Relay protocol vectors (SPEC §23): relay messages as hex, and the decoded message
 * (byte strings as hex) or the error code decoding must give.
 * Part of tests/vectors/generate.ts (see there).
 * @module
 */
import { fromHex, toHex, utf8 } from "../../core/bytes.ts";
import { type CborValue, encodeCbor } from "../../core/cbor.ts";
import { encodeEnvelope } from "../../envelope/mod.ts";
import { isMissiveError } from "../../core/errors.ts";
import {
  decodeRelayMessage,
  encodeBundle,
  encodeDelivery,
  encodeReceipt,
  encodeRequest,
  encodeResponse,
  type RelayMessage,
} from "../../relay/protocol.ts";
import { failure } from "./messages.ts";
import { encodePrekeyBundle, encodePrekeyUpload } from "../../stp/ratchet/mod.ts";

const ID = new Uint8Array(16).fill(0xab);
/** An envelope (SPEC §2.1) of STP plain around "hi", as the relay would carry it. */
const ENVELOPE = encodeEnvelope({ protocolType: 7, protocolVersion: 1, payload: utf8("hi") });

/** The input bytes of a vector: `input` hex, or `inputZeros` zero bytes. */
export function vectorInput(v: { input?: string; inputZeros?: number }): Uint8Array {
  return v.inputZeros !== undefined ? new Uint8Array(v.inputZeros) : fromHex(v.input ?? "")!;
}

/** A relay message as JSON: byte strings in hex. */
export function relayMessageJson(m: RelayMessage): unknown {
  return JSON.parse(JSON.stringify(m, (_k, v) => (v instanceof Uint8Array ? toHex(v) : v)));
}

export function relayVectors() {
  const vectors: unknown[] = [];
  const ok = (name: string, comment: string, bytes: Uint8Array) => {
    vectors.push({
      name,
      comment,
      input: toHex(bytes),
      expect: { outcome: "success", message: relayMessageJson(decodeRelayMessage(bytes)) },
    });
  };
  const bad = (name: string, comment: string, bytes: Uint8Array, code = "malformed") => {
    try {
      decodeRelayMessage(bytes);
    } catch (e) {
      if (!isMissiveError(e) || e.code !== code) throw new Error(`relay vector ${name}: ${e}`);
      // Long runs of zeros are stated by their length, not spelled out.
      const zeros = bytes.length > 4096 && bytes.every((b) => b === 0);
      vectors.push({
        name,
        comment,
        ...(zeros ? { inputZeros: bytes.length } : { input: toHex(bytes) }),
        expect: failure(code as never, code as never),
      });
      return;
    }
    throw new Error(`relay vector ${name}: decoded, but should fail`);
  };
  const map = (...entries: [number, CborValue][]) => encodeCbor(new Map(entries));

  ok("register", "request 1: register", encodeRequest(1, { op: "register" }));
  ok(
    "lookup-address",
    "lookup by address",
    encodeRequest(2, { op: "lookup", target: "bob@example.org" }),
  );
  ok("lookup-id", "lookup by 16-byte ID", encodeRequest(3, { op: "lookup", target: ID }));
  ok(
    "presence-away",
    "presence away with a note",
    encodeRequest(4, { op: "presence", status: "away", note: "lunch" }),
  );
  ok(
    "send",
    "send an envelope to bob",
    encodeRequest(5, { op: "send", to: "bob@example.org", envelope: ENVELOPE }),
  );
  ok(
    "ack",
    "acknowledge message 42 as accepted",
    encodeRequest(6, { op: "ack", message: 42, receipt: "accepted" }),
  );
  ok("receive", "ask for deliveries", encodeRequest(7, { op: "receive" }));
  ok("unknown-op", "op 77: decodes; the relay answers unknown-op", map([0, 0], [1, 8], [2, 77]));
  ok(
    "grease",
    "list request with an unknown key 31, ignored",
    map([0, 0], [1, 9], [2, 2], [31, "grease"]),
  );
  ok(
    "response-send",
    "ok to a send: relay message ID 42",
    encodeResponse({ rid: 5, status: "ok", count: 42 }),
  );
  ok(
    "response-collision",
    "register refused: collision",
    encodeResponse({ rid: 1, status: "collision", detail: "address taken" }),
  );
  ok(
    "response-list",
    "list: one online user",
    encodeResponse({
      rid: 9,
      status: "ok",
      entries: [{ address: "bob@example.org", id: ID, status: "busy" }],
    }),
  );
  ok(
    "delivery",
    "delivery of message 42 from alice",
    encodeDelivery({
      message: 42,
      senderId: ID,
      sender: "alice@example.org",
      envelope: ENVELOPE,
      enqueued: 1_700_000_000_000,
    }),
  );

  const register = encodeRequest(1, { op: "register" });
  const list = encodeRequest(2, { op: "list" });
  ok("bundle", "a register and a list request in one bundle", encodeBundle([register, list]));
  ok(
    "bundle-one",
    "a bundle of one delivery",
    encodeBundle([encodeDelivery({
      message: 7,
      senderId: ID,
      sender: "carol@example.org",
      envelope: ENVELOPE,
      enqueued: 1,
    })]),
  );

  bad("empty", "no bytes", new Uint8Array());
  bad("bundle-empty", "a bundle with no items", map([0, 3], [1, []]));
  bad("bundle-nested", "a bundle inside a bundle", map([0, 3], [1, [encodeBundle([register])]]));
  bad("bundle-text-item", "a bundle item that is text", map([0, 3], [1, ["register"]]));
  bad(
    "bundle-bad-item",
    "a bundle whose second item is truncated",
    map([0, 3], [1, [register, list.slice(0, -1)]]),
  );
  bad(
    "bundle-257",
    "a bundle of 257 items",
    map([0, 3], [1, Array.from({ length: 257 }, () => register)]),
  );
  bad("not-a-map", "an array", encodeCbor([0, 1, 2]));
  bad("kind-9", "unknown kind", map([0, 9], [1, 1]));
  bad("no-kind", "key 0 missing", map([1, 1], [2, 0]));
  bad("rid-2^32", "request ID beyond 32 bits", map([0, 0], [1, 2 ** 32], [2, 0]));
  bad("lookup-15", "ID of 15 bytes", map([0, 0], [1, 1], [2, 1], [3, new Uint8Array(15)]));
  bad("presence-4", "presence status out of range", map([0, 0], [1, 1], [2, 3], [3, 4]));
  bad(
    "send-no-envelope",
    "send without key 4",
    map([0, 0], [1, 1], [2, 4], [3, "bob@example.org"]),
  );
  bad(
    "send-empty",
    "send with an empty envelope",
    map([0, 0], [1, 1], [2, 4], [3, "bob@example.org"], [4, new Uint8Array()]),
  );
  bad("ack-receipt-5", "receipt status out of range", map([0, 0], [1, 1], [2, 5], [3, 1], [4, 5]));
  bad(
    "delivery-short-id",
    "sender ID of 3 bytes",
    map([0, 2], [1, 1], [3, new Uint8Array(3)], [4, "a@b.c"], [5, utf8("x")], [6, 1]),
  );
  bad("list-entry-short", "list entry of one item", map([0, 1], [1, 1], [2, 0], [5, [["a@b.c"]]]));
  bad(
    "truncated",
    "the send request cut by one byte",
    encodeRequest(5, { op: "send", to: "bob@example.org", envelope: ENVELOPE }).slice(0, -1),
  );
  bad(
    "trailing",
    "the register request with a trailing zero",
    new Uint8Array([...encodeRequest(1, { op: "register" }), 0]),
  );
  bad("non-canonical", "request ID in a two-byte argument", fromHex("a30000011900010200")!);
  bad("float-rid", "request ID as a float", fromHex("a30000 01f93c00 0200".replaceAll(" ", ""))!);
  bad(
    "oversize",
    "one byte over the 1 MiB cap, refused before decoding",
    new Uint8Array(1024 * 1024 + 1),
    "too-large",
  );

  // Limits (SPEC §23.12): the keepalive op, the statuses of hostile-client refusals.
  ok("keepalive", "request 10: keepalive (op 8)", encodeRequest(10, { op: "keepalive" }));
  ok(
    "response-keepalive",
    "keepalive answered: the relay's idle timeout, 300 s",
    encodeResponse({ rid: 10, status: "ok", count: 300_000 }),
  );
  ok(
    "response-rate-limited",
    "register refused: rate-limited (status 12)",
    encodeResponse({
      rid: 1,
      status: "rate-limited",
      detail: "too many new registrations from 192.0.2.7 (at most 10 a minute); try again in 6 s",
    }),
  );
  ok(
    "response-store-full",
    "send refused: store-full (status 14)",
    encodeResponse({ rid: 5, status: "store-full", detail: "this relay's store is full" }),
  );
  ok(
    "response-busy",
    "the link refused on request ID 0: busy (status 16)",
    encodeResponse({ rid: 0, status: "busy", detail: "all 768 slots are taken; try later" }),
  );
  bad("keepalive-no-rid", "keepalive without a request ID", map([0, 0], [2, 8]));
  bad("keepalive-rid-text", "keepalive with a text request ID", map([0, 0], [1, "10"], [2, 8]));
  bad(
    "response-detail-1025",
    "a refusal whose detail is over 1024 characters",
    map([0, 1], [1, 1], [2, 12], [8, "x".repeat(1025)]),
  );
  bad("response-status-text", "a status as text", map([0, 1], [1, 1], [2, "busy"]));
  bad(
    "response-count-negative",
    "keepalive answer with a negative timeout",
    map([0, 1], [1, 10], [2, 0], [6, -1]),
  );

  // Prekeys (SPEC §23.13): the upload and the bundle travel as opaque bytes (SPEC §25.2).
  const signedPrekey = {
    id: 1,
    publicKey: new Uint8Array(32).fill(9),
    kemPublicKey: new Uint8Array(1216).fill(1),
    created: 1_700_000_000_000,
    signature: new Uint8Array(64).fill(2),
  };
  const upload = encodePrekeyUpload({
    identityId: ID,
    signedPrekey,
    oneTimePrekeys: [{ id: 1, publicKey: new Uint8Array(32).fill(7) }],
  });
  const bundle = encodePrekeyBundle({
    identityId: ID,
    signedPrekey,
    oneTimePrekey: { id: 1, publicKey: new Uint8Array(32).fill(7) },
  });
  ok(
    "publish-prekeys",
    "request 11: publish-prekeys (op 9) with an upload of one one-time prekey",
    encodeRequest(11, { op: "publish-prekeys", upload }),
  );
  ok(
    "fetch-prekeys",
    "request 12: fetch-prekeys (op 10) for bob",
    encodeRequest(12, { op: "fetch-prekeys", target: "bob@example.org" }),
  );
  ok(
    "response-publish-prekeys",
    "publish-prekeys answered: 1 one-time prekey held",
    encodeResponse({ rid: 11, status: "ok", count: 1 }),
  );
  ok(
    "response-fetch-prekeys",
    "fetch-prekeys answered: the card (key 4, here stand-in bytes) and the bundle (key 10)",
    encodeResponse({ rid: 12, status: "ok", card: utf8("card"), prekeys: bundle }),
  );
  ok(
    "response-invalid-prekeys",
    "publish-prekeys refused: invalid-prekeys (status 19)",
    encodeResponse({ rid: 11, status: "invalid-prekeys", detail: "not signed by bob" }),
  );
  bad(
    "publish-prekeys-empty",
    "an empty upload",
    map([0, 0], [1, 11], [2, 9], [3, new Uint8Array()]),
  );
  bad(
    "publish-prekeys-8193",
    "an upload over 8,192 bytes",
    map([0, 0], [1, 11], [2, 9], [3, new Uint8Array(8193)]),
  );
  bad("publish-prekeys-text", "an upload as text", map([0, 0], [1, 11], [2, 9], [3, "keys"]));
  bad("fetch-prekeys-no-target", "fetch-prekeys without key 3", map([0, 0], [1, 12], [2, 10]));
  bad(
    "response-prekeys-2049",
    "a bundle over 2,048 bytes",
    map([0, 1], [1, 12], [2, 0], [10, new Uint8Array(2049)]),
  );

  // Receipts (SPEC §23.7.1): asked for by send key 5, taken by receive key 3, kind 4.
  ok(
    "send-receipt",
    "send asking for a receipt (key 5: true)",
    encodeRequest(13, { op: "send", to: "bob@example.org", envelope: ENVELOPE, receipt: true }),
  );
  ok(
    "send-receipt-false",
    "send with key 5 false: no receipt (same as absent)",
    map([0, 0], [1, 13], [2, 4], [3, "bob@example.org"], [4, ENVELOPE], [5, false]),
  );
  ok(
    "receive-all",
    "receive messages and receipts (key 3: 1)",
    encodeRequest(14, { op: "receive", mode: "all" }),
  );
  ok(
    "receive-receipts",
    "receive receipts only (key 3: 2)",
    encodeRequest(15, { op: "receive", mode: "receipts" }),
  );
  const receipt = {
    id: 43,
    message: 42,
    recipientId: ID,
    recipient: "bob@example.org",
    status: "accepted" as const,
    acknowledged: 1_700_000_000_000,
  };
  ok("receipt", "receipt 43: bob acknowledged message 42 as accepted", encodeReceipt(receipt));
  ok(
    "receipt-undecryptable",
    "receipt 44: bob could not decrypt message 41",
    encodeReceipt({ ...receipt, id: 44, message: 41, status: "undecryptable" }),
  );
  ok(
    "bundle-delivery-receipt",
    "a delivery and a receipt in one bundle",
    encodeBundle([
      encodeDelivery({
        message: 45,
        senderId: ID,
        sender: "carol@example.org",
        envelope: ENVELOPE,
        enqueued: 2,
      }),
      encodeReceipt({ ...receipt, id: 46 }),
    ]),
  );
  const fields = (...over: [number, CborValue][]) => {
    const m = new Map<number, CborValue>([
      [0, 4],
      [1, 43],
      [2, 42],
      [3, ID],
      [4, "bob@example.org"],
      [5, 0],
      [6, 1_700_000_000_000],
    ]);
    for (const [k, v] of over) v === null ? m.delete(k) : m.set(k, v);
    return encodeCbor(m);
  };
  bad("receipt-status-5", "receipt status out of range", fields([5, 5]));
  bad("receipt-status-text", "receipt status as text", fields([5, "accepted"]));
  bad("receipt-short-id", "recipient ID of 15 bytes", fields([3, new Uint8Array(15)]));
  bad("receipt-no-message", "receipt without key 2 (the message it is about)", fields([2, null]));
  bad("receipt-no-id", "receipt without key 1 (its own ID, for the ack)", fields([1, null]));
  bad("receipt-address-255", "recipient address of 255 characters", fields([4, "b".repeat(255)]));
  bad("receipt-time-negative", "acknowledged time negative", fields([6, -1]));
  bad(
    "receipt-oversize",
    "a receipt over its 1024-byte cap (grease key 40), refused before its fields",
    fields([40, "x".repeat(1000)]),
    "too-large",
  );
  bad("receipt-truncated", "the receipt cut by one byte", encodeReceipt(receipt).slice(0, -1));
  bad(
    "send-receipt-uint",
    "send with key 5 as 1, not a boolean",
    map([0, 0], [1, 13], [2, 4], [3, "b@c.d"], [4, ENVELOPE], [5, 1]),
  );
  bad("receive-mode-3", "receive mode out of range", map([0, 0], [1, 14], [2, 6], [3, 3]));
  bad("receive-mode-text", "receive mode as text", map([0, 0], [1, 14], [2, 6], [3, "all"]));
  bad(
    "bundle-bad-receipt",
    "a bundle whose receipt has status 9",
    encodeBundle([register, fields([5, 9])]),
  );
  return vectors;
}
