import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { randomBytes, toHex } from "../core/bytes.ts";
import {
  armor,
  dearmor,
  decodeEnvelope,
  encodeEnvelope,
  fromLine,
  MAX_ENVELOPE_SIZE,
  toLine,
  unwrapAnyForm,
} from "../envelope/mod.ts";
import { MissiveError } from "../core/errors.ts";

const code = (c: string) => (e: unknown) => e instanceof MissiveError && e.code === c;

describe("envelope", () => {
  it("encodes the header map behind the self-describe tag", () => {
    const bytes = encodeEnvelope({
      protocolType: 2,
      protocolVersion: 2,
      payload: new Uint8Array([7]),
    });
    assert.equal(toHex(bytes), "d9d9f7a3010202020441" + "07");
    const seq = encodeEnvelope({
      protocolType: 2,
      protocolVersion: 1,
      sequenceNumber: 5,
      payload: new Uint8Array(),
    });
    assert.equal(toHex(seq), "d9d9f7a4010202010305" + "0440");
  });

  it("round-trips random envelopes in all three forms", () => {
    for (let i = 0; i < 200; i++) {
      const env = {
        protocolType: i % 65536,
        protocolVersion: (i * 7) % 300,
        sequenceNumber: i % 3 === 0 ? undefined : i * 1_000_003,
        payload: randomBytes(i * 13),
      };
      const bytes = encodeEnvelope(env);
      assert.deepEqual(decodeEnvelope(bytes), env);
      assert.deepEqual(dearmor(armor(bytes)), bytes);
      assert.deepEqual(fromLine(toLine(bytes)), bytes);
      assert.deepEqual(unwrapAnyForm(new TextEncoder().encode(armor(bytes))), bytes);
      assert.deepEqual(unwrapAnyForm(new TextEncoder().encode(toLine(bytes) + "\n")), bytes);
      assert.deepEqual(unwrapAnyForm(bytes), bytes);
    }
  });

  it("armors in 64-column lines between the markers and accepts CRLF", () => {
    const text = armor(
      encodeEnvelope({ protocolType: 7, protocolVersion: 1, payload: new Uint8Array(100) }),
    );
    const lines = text.trimEnd().split("\n");
    assert.equal(lines[0], "-----BEGIN MISSIVE MESSAGE-----");
    assert.equal(lines.at(-1), "-----END MISSIVE MESSAGE-----");
    assert.ok(lines.slice(1, -2).every((l) => l.length === 64));
    assert.deepEqual(dearmor(text.replaceAll("\n", "\r\n")), dearmor(text));
  });

  it("refuses unknown fields, out-of-range numbers and oversize input", () => {
    assert.throws(
      () => encodeEnvelope({ protocolType: 65536, protocolVersion: 1, payload: new Uint8Array() }),
      code("usage"),
    );
    assert.throws(() => decodeEnvelope(new Uint8Array(MAX_ENVELOPE_SIZE + 1)), code("too-large"));
    // {1: 2, 2: 2, 4: h'', 5: 0}: an unknown key.
    assert.throws(
      () => decodeEnvelope(Uint8Array.from([0xd9, 0xd9, 0xf7, 0xa4, 1, 2, 2, 2, 4, 0x40, 5, 0])),
      code("malformed"),
    );
    // Missing the payload.
    assert.throws(
      () => decodeEnvelope(Uint8Array.from([0xd9, 0xd9, 0xf7, 0xa2, 1, 2, 2, 2])),
      code("malformed"),
    );
    // Type as a 32-bit number beyond 16 bits.
    assert.throws(
      () =>
        decodeEnvelope(
          Uint8Array.from([0xd9, 0xd9, 0xf7, 0xa3, 1, 0x1a, 0, 1, 0, 0, 2, 2, 4, 0x40]),
        ),
      code("malformed"),
    );
  });

  it("refuses sloppy armor", () => {
    const good = armor(
      encodeEnvelope({ protocolType: 2, protocolVersion: 2, payload: new Uint8Array(90) }),
    );
    const lines = good.trimEnd().split("\n");
    const variants = [
      good.replace("BEGIN MISSIVE MESSAGE", "BEGIN PGP MESSAGE"),
      lines.slice(0, -1).join("\n"),
      [lines[0], lines[1].slice(0, 60), lines[1].slice(60), ...lines.slice(2)].join("\n"),
      good.replace(lines[1], lines[1].slice(0, 10) + " " + lines[1].slice(11)),
      good.replace(/=*\n-----END/, "\n-----END"),
      "junk before\n" + good,
    ];
    for (const v of variants) {
      assert.throws(() => dearmor(v), code("malformed"), JSON.stringify(v.slice(0, 80)));
    }
  });
});
