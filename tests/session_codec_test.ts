/**
 * The session wire codec (SPEC §22.3–22.4) against hostile input: truncation, bit flips,
 * oversize, garbage, wrong envelope type, forms a type may not take, and bad bodies.
 * Every failure is a typed MissiveError; nothing else escapes. Also the registry entry's
 * refusal (SPEC §22.11).
 * @module
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { concatBytes, randomBytes } from "../core/bytes.ts";
import { type CborValue, encodeCbor } from "../core/cbor.ts";
import { encodeEnvelope } from "../envelope/mod.ts";
import { isMissiveError, type MissiveError } from "../core/errors.ts";
import {
  decodeAckBody,
  decodeCloseBody,
  decodeDataBody,
  decodeFrame,
  decodeHelloBody,
  decodeSignedPart,
  encodeCloseBody,
  encodeDataBody,
  encodeFrame,
  encodeHelloBody,
  encodeSessionEnvelope,
  type Frame,
  MessageType,
  u64,
} from "../session/messages.ts";
import { nonceAt, sealedAad } from "../session/_keyschedule.ts";
import { sessionV1 } from "../stp/session.ts";

const MAX = 1 << 20;
const ALLOWED = ["malformed", "too-large", "unknown-protocol"];

function expectTyped(f: () => unknown, what: string): MissiveError {
  try {
    f();
  } catch (e) {
    assert.ok(isMissiveError(e) && ALLOWED.includes(e.code), `${what}: ${e}`);
    return e as MissiveError;
  }
  throw new Error(`${what}: accepted`);
}

const sealed: Frame = {
  form: "sealed",
  seq: 1234567,
  type: MessageType.DATA,
  time: 1_700_000_000_000,
  keyId: new Uint8Array(8).fill(7),
  ciphertext: new Uint8Array(40).fill(9),
};
const signed: Frame = {
  form: "signed",
  seq: 42,
  type: MessageType.HELLO,
  time: 1_700_000_000_000,
  body: encodeHelloBody({ ephemeralKey: new Uint8Array(32).fill(1), card: new Uint8Array(100) }),
  signature: new Uint8Array(64).fill(2),
  mac: new Uint8Array(32).fill(3),
};

describe("session codec", () => {
  it("round-trips both forms", () => {
    for (const f of [sealed, signed]) assert.deepEqual(decodeFrame(encodeFrame(f), MAX), f);
    const noMac = { ...signed, mac: undefined };
    assert.deepEqual(decodeFrame(encodeFrame(noMac), MAX), noMac);
  });

  it("refuses every truncation and every single-bit flip of the header with a typed error", () => {
    for (const f of [sealed, signed]) {
      const bytes = encodeFrame(f);
      for (let n = 0; n < bytes.length; n++) {
        expectTyped(() => decodeFrame(bytes.subarray(0, n), MAX), `truncated to ${n}`);
      }
      // Flips in the envelope or payload header either fail here or change a field the
      // AEAD/signature covers (tests/session_mitm_test.ts); they never crash.
      for (let i = 0; i < 40; i++) {
        for (let bit = 0; bit < 8; bit++) {
          const bad = new Uint8Array(bytes);
          bad[i] ^= 1 << bit;
          try {
            decodeFrame(bad, MAX);
          } catch (e) {
            assert.ok(isMissiveError(e) && ALLOWED.includes(e.code), `flip ${i}/${bit}: ${e}`);
          }
        }
      }
    }
  });

  it("writes and reads session envelopes exactly as envelope/binary.ts does", () => {
    const seqs = [0, 1, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1];
    for (const seq of seqs) {
      for (const n of [0, 1, 23, 24, 255, 256, 70000]) {
        const payload = randomBytes(n);
        const fast = encodeSessionEnvelope(seq, payload);
        const slow = encodeEnvelope({
          protocolType: 5,
          protocolVersion: 1,
          sequenceNumber: seq,
          payload,
        });
        assert.deepEqual(fast, slow, `seq ${seq}, ${n} bytes`);
      }
    }
    // A non-canonical sequence number (1 written in two bytes) is refused, not read.
    const good = encodeFrame(sealed);
    const bad = concatBytes(good.subarray(0, 9), new Uint8Array([0x18, 0x01]), good.subarray(14));
    expectTyped(() => decodeFrame(bad, MAX), "non-canonical seq");
  });

  it("refuses oversize, garbage, other envelopes, missing sequence numbers", () => {
    assert.equal(
      expectTyped(() => decodeFrame(new Uint8Array(MAX + 1), MAX), "big").code,
      "too-large",
    );
    for (let i = 0; i < 50; i++) expectTyped(() => decodeFrame(randomBytes(i * 3), MAX), "garbage");
    const payload = encodeFrame(sealed).subarray(0); // any bytes
    const other = encodeEnvelope({
      protocolType: 2,
      protocolVersion: 1,
      sequenceNumber: 1,
      payload,
    });
    assert.equal(expectTyped(() => decodeFrame(other, MAX), "type 2").code, "unknown-protocol");
    const noSeq = encodeEnvelope({ protocolType: 5, protocolVersion: 1, payload });
    assert.match(expectTyped(() => decodeFrame(noSeq, MAX), "no seq").message, /sequence/);
  });

  it("refuses unknown types, forbidden forms, and times beyond 2^53", () => {
    const frame = (payload: Uint8Array) =>
      encodeEnvelope({ protocolType: 5, protocolVersion: 1, sequenceNumber: 1, payload });
    const rest = new Uint8Array(24);
    const header = (type: number, form: number, high = 0) =>
      concatBytes(new Uint8Array([type, form, high, 0, 0, 0, 0, 0, 0, 0]), rest);
    for (const type of [0, 10, 255]) {
      assert.match(
        expectTyped(() => decodeFrame(frame(header(type, 1)), MAX), "t").message,
        /type/,
      );
    }
    for (const type of [MessageType.ACK, MessageType.DATA, MessageType.DATA_ACK]) {
      assert.match(
        expectTyped(() => decodeFrame(frame(header(type, 0)), MAX), "f").message,
        /form/,
      );
    }
    assert.match(
      expectTyped(() => decodeFrame(frame(header(4, 2)), MAX), "form 2").message,
      /form/,
    );
    assert.match(
      expectTyped(() => decodeFrame(frame(header(4, 1, 0x20)), MAX), "t").message,
      /2\^53/,
    );
  });

  it("refuses bad signed parts and bodies", () => {
    const part = (m: Map<number, Uint8Array | number>) => () => decodeSignedPart(encodeCbor(m));
    const sig = new Uint8Array(64);
    expectTyped(part(new Map([[1, new Uint8Array(1)]])), "no signature");
    expectTyped(part(new Map([[1, new Uint8Array(1)], [2, new Uint8Array(63)]])), "short sig");
    expectTyped(part(new Map([[1, new Uint8Array(5000)], [2, sig]])), "big body");
    expectTyped(
      part(new Map<number, Uint8Array | number>([[1, new Uint8Array(1)], [2, sig], [4, 1]])),
      "unknown key",
    );
    expectTyped(part(new Map([[1, new Uint8Array(1)], [2, sig], [3, new Uint8Array(31)]])), "mac");
    expectTyped(() => decodeHelloBody(encodeCbor(new Map([[1, new Uint8Array(31)]]))), "eph");
    expectTyped(() => decodeHelloBody(new Uint8Array([0xa0])), "empty hello");
    expectTyped(
      () => decodeCloseBody(encodeCbor(new Map<number, CborValue>([[1, 256], [2, "x"]]))),
      "reason",
    );
    expectTyped(
      () => decodeCloseBody(encodeCbor(new Map<number, CborValue>([[1, 0], [2, "x".repeat(257)]]))),
      "text",
    );
    expectTyped(() => decodeDataBody(new Uint8Array(7)), "short data");
    expectTyped(() => decodeAckBody(new Uint8Array(9)), "long ack");
    expectTyped(() => decodeAckBody(new Uint8Array([0xff, 0, 0, 0, 0, 0, 0, 0])), "huge ack");
    assert.deepEqual(decodeCloseBody(encodeCloseBody({ reason: 7, text: "no" })), {
      reason: 7,
      text: "no",
    });
    assert.deepEqual(decodeDataBody(encodeDataBody(5, new Uint8Array([1]))), {
      index: 5,
      data: new Uint8Array([1]),
    });
    assert.deepEqual(u64(2 ** 40 + 3), new Uint8Array([0, 0, 1, 0, 0, 0, 0, 3]));
  });

  it("nonces count up and refuse to wrap; the AAD binds the header", () => {
    assert.deepEqual(nonceAt(258), new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2]));
    assert.throws(() => nonceAt(2 ** 32), (e) => isMissiveError(e, "session"));
    const a = sealedAad(1, MessageType.DATA, 5, new Uint8Array(8));
    assert.notDeepEqual(a, sealedAad(2, MessageType.DATA, 5, new Uint8Array(8)));
    assert.notDeepEqual(a, sealedAad(1, MessageType.ACK, 5, new Uint8Array(8)));
    assert.notDeepEqual(a, sealedAad(1, MessageType.DATA, 6, new Uint8Array(8)));
  });

  it("the registry entry refuses one-shot use and names missive session", async () => {
    for (
      const op of [
        () => sessionV1.seal({} as never, {} as never),
        () => sessionV1.open(new Uint8Array(), {} as never),
      ]
    ) {
      await assert.rejects(
        op(),
        (e) => isMissiveError(e, "usage") && /missive session/.test(e.message),
      );
    }
  });
});
