/**
 * The relay protocol codec (SPEC §23.2–23.4): round trips of every message kind, grease
 * (unknown keys ignored, unknown ops answered), and bad input — truncation, bit flips,
 * oversize, garbage, wrong shapes — always a typed MissiveError, never anything else.
 * @module
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { randomBytes, toHex, utf8 } from "../core/bytes.ts";
import { decodeEnvelope } from "../envelope/mod.ts";
import { relayMessageJson, relayVectors, vectorInput } from "./vectors/cases_relay.ts";
import { type CborValue, encodeCbor } from "../core/cbor.ts";
import { isMissiveError, type MissiveError } from "../core/errors.ts";
import {
  decodeRelayMessage,
  encodeDelivery,
  encodeRequest,
  encodeResponse,
  MAX_RELAY_MESSAGE,
  type RelayMessage,
  type RelayRequest,
} from "../relay/protocol.ts";

const id16 = new Uint8Array(16).fill(7);

const requests: RelayRequest[] = [
  { op: "register" },
  { op: "lookup", target: "bob@example.org" },
  { op: "lookup", target: id16 },
  { op: "list" },
  { op: "presence", status: "away", note: "lunch" },
  { op: "presence", status: "invisible" },
  { op: "send", to: "bob@example.org", envelope: utf8("MSV1-envelope") },
  { op: "ack", message: 2 ** 40, receipt: "undecryptable" },
  { op: "receive" },
  { op: "stats" },
  { op: "keepalive" },
];

const samples: Uint8Array[] = [
  ...requests.map((r, i) => encodeRequest(i + 1, r)),
  encodeResponse({ rid: 1, status: "ok", id: id16 }),
  encodeResponse({ rid: 2, status: "ok", card: utf8("card bytes"), presence: "busy" }),
  encodeResponse({
    rid: 3,
    status: "ok",
    entries: [{ address: "a@b.c", id: id16, status: "online" }, {
      address: "d@e.f",
      id: id16,
      status: "away",
      note: "x",
    }],
  }),
  encodeResponse({ rid: 4, status: "collision", detail: "address taken" }),
  encodeResponse({ rid: 5, status: "ok", stats: { queued: 3, connected: 1 } }),
  encodeResponse({ rid: 6, status: "ok", count: 17 }),
  encodeDelivery({
    message: 9,
    senderId: id16,
    sender: "alice@example.org",
    envelope: utf8("sealed"),
    enqueued: 1_700_000_000_000,
  }),
];

function expectTyped(bytes: Uint8Array): RelayMessage | undefined {
  try {
    return decodeRelayMessage(bytes);
  } catch (e) {
    assert.ok(isMissiveError(e), `not a MissiveError: ${e}`);
    assert.ok(
      ["malformed", "too-large"].includes((e as MissiveError).code),
      (e as MissiveError).code,
    );
    return undefined;
  }
}

describe("relay protocol", () => {
  it("round-trips every request, response and delivery", () => {
    for (const [i, r] of requests.entries()) {
      const m = decodeRelayMessage(encodeRequest(i + 1, r));
      assert.equal(m.kind, "request");
      if (m.kind === "request") {
        assert.equal(m.rid, i + 1);
        assert.deepEqual(
          JSON.stringify(m.request, (_k, v) => v instanceof Uint8Array ? toHex(v) : v),
          JSON.stringify(r, (_k, v) => v instanceof Uint8Array ? toHex(v) : v),
        );
      }
    }
    const list = decodeRelayMessage(samples[requests.length + 2]);
    assert.ok(list.kind === "response");
    assert.deepEqual(list.response.entries?.map((e) => [e.address, e.status, e.note]), [
      ["a@b.c", "online", undefined],
      ["d@e.f", "away", "x"],
    ]);
    const d = decodeRelayMessage(samples.at(-1)!);
    assert.ok(d.kind === "delivery");
    assert.equal(d.delivery.sender, "alice@example.org");
    assert.equal(d.delivery.enqueued, 1_700_000_000_000);
  });

  it("ignores unknown keys and reports unknown ops and statuses", () => {
    const grease = new Map<number, CborValue>([[0, 0], [1, 5], [2, 3], [3, 1], [99, "grease"]]);
    const m = decodeRelayMessage(encodeCbor(grease));
    assert.ok(m.kind === "request" && m.request.op === "presence");
    const unknownOp = decodeRelayMessage(encodeCbor(new Map([[0, 0], [1, 1], [2, 4000]])));
    assert.ok(unknownOp.kind === "request");
    assert.deepEqual(unknownOp.request, { op: "unknown", code: 4000 });
    const unknownStatus = decodeRelayMessage(encodeCbor(new Map([[0, 1], [1, 1], [2, 999]])));
    assert.ok(unknownStatus.kind === "response");
    assert.equal(unknownStatus.response.status, "unavailable");
  });

  it("refuses wrong shapes with malformed", () => {
    const bad: [string, CborValue][] = [
      ["not a map", [0, 1, 2]],
      ["unknown kind", new Map([[0, 7], [1, 1]])],
      ["kind missing", new Map([[1, 1], [2, 0]])],
      ["rid too big", new Map([[0, 0], [1, 2 ** 33], [2, 0]])],
      [
        "lookup target of 15 bytes",
        new Map<number, CborValue>([[0, 0], [1, 1], [2, 1], [
          3,
          new Uint8Array(15),
        ]]),
      ],
      ["lookup target a number", new Map([[0, 0], [1, 1], [2, 1], [3, 5]])],
      ["presence status 4", new Map([[0, 0], [1, 1], [2, 3], [3, 4]])],
      ["send without envelope", new Map<number, CborValue>([[0, 0], [1, 1], [2, 4], [3, "a@b.c"]])],
      [
        "send with empty envelope",
        new Map<number, CborValue>([[0, 0], [1, 1], [2, 4], [
          3,
          "a@b.c",
        ], [4, new Uint8Array()]]),
      ],
      ["ack receipt 5", new Map([[0, 0], [1, 1], [2, 5], [3, 1], [4, 5]])],
      ["ack negative id", new Map([[0, 0], [1, 1], [2, 5], [3, -1], [4, 0]])],
      ["list entry short", new Map<number, CborValue>([[0, 1], [1, 1], [2, 0], [5, [["a@b.c"]]]])],
      ["stats not a map", new Map<number, CborValue>([[0, 1], [1, 1], [2, 0], [7, [1]]])],
      [
        "delivery sender id short",
        new Map<number, CborValue>([
          [0, 2],
          [1, 1],
          [3, new Uint8Array(3)],
          [
            4,
            "a@b.c",
          ],
          [5, utf8("x")],
          [6, 1],
        ]),
      ],
    ];
    for (const [name, value] of bad) {
      assert.throws(
        () => decodeRelayMessage(encodeCbor(value)),
        (e) => isMissiveError(e, "malformed"),
        name,
      );
    }
  });

  it("refuses oversize input before decoding, and oversize envelopes", () => {
    assert.throws(
      () => decodeRelayMessage(new Uint8Array(MAX_RELAY_MESSAGE + 1)),
      (e) => isMissiveError(e, "too-large"),
    );
    const send = encodeRequest(1, { op: "send", to: "a@b.c", envelope: new Uint8Array(2000) });
    assert.throws(() => decodeRelayMessage(send, 1000), (e) => isMissiveError(e, "too-large"));
  });

  it("truncations, bit flips and garbage give typed errors only", () => {
    for (const sample of samples) {
      for (let n = 0; n < sample.length; n++) {
        assert.equal(expectTyped(sample.subarray(0, n)), undefined, "truncated must fail");
      }
      for (let i = 0; i < sample.length; i++) {
        for (const bit of [0x01, 0x80]) {
          const flipped = sample.slice();
          flipped[i] ^= bit;
          expectTyped(flipped);
        }
      }
      const trailing = new Uint8Array(sample.length + 1);
      trailing.set(sample);
      assert.equal(expectTyped(trailing), undefined, "trailing bytes must fail");
    }
    for (let i = 0; i < 500; i++) expectTyped(randomBytes(1 + (i % 64)));
  });

  it("refuses non-deterministic encodings", () => {
    // {0: 0, 1: 1, 2: 0} with the rid written in a two-byte argument.
    const loose = new Uint8Array([0xa3, 0x00, 0x00, 0x01, 0x19, 0x00, 0x01, 0x02, 0x00]);
    assert.throws(() => decodeRelayMessage(loose), (e) => isMissiveError(e, "malformed"));
  });
});

describe("relay vectors (tests/vectors/relay.json)", () => {
  const file = JSON.parse(
    readFileSync(new URL("./vectors/relay.json", import.meta.url), "utf8"),
  ) as {
    vectors: {
      name: string;
      input?: string;
      inputZeros?: number;
      expect: Record<string, unknown>;
    }[];
  };

  it("each input decodes to the stated message or fails with the stated code", () => {
    const fails = file.vectors.filter((v) => v.expect.outcome !== "success").length;
    assert.ok(fails >= file.vectors.length - fails, "failures at least as many as successes");
    for (const v of file.vectors) {
      const input = vectorInput(v);
      if (v.expect.outcome === "success") {
        assert.deepEqual(relayMessageJson(decodeRelayMessage(input)), v.expect.message, v.name);
      } else {
        assert.throws(
          () => decodeRelayMessage(input),
          (e) => isMissiveError(e, v.expect.error as "malformed"),
          v.name,
        );
      }
    }
  });

  it("the generator reproduces the committed vectors, and their envelope is valid", () => {
    assert.deepEqual(relayVectors(), file.vectors);
    const send = decodeRelayMessage(vectorInput(file.vectors.find((v) => v.name === "send")!));
    assert.ok(send.kind === "request" && send.request.op === "send");
    const env = decodeEnvelope(send.request.envelope);
    assert.deepEqual([env.protocolType, env.protocolVersion], [7, 1]);
  });
});
