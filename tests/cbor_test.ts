import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Encoder } from "cbor-x/decode";
import { equalBytes, fromHex, randomBytes, toHex } from "../core/bytes.ts";
import { type CborValue, decodeCbor, encodeCbor, transcript } from "../core/cbor.ts";
import { MissiveError } from "../core/errors.ts";

const hex = (v: CborValue) => toHex(encodeCbor(v));

describe("deterministic CBOR", () => {
  it("writes RFC 8949 §4.2.1 encodings (shortest integers, sorted keys)", () => {
    assert.equal(hex(0), "00");
    assert.equal(hex(23), "17");
    assert.equal(hex(24), "1818");
    assert.equal(hex(65535), "19ffff");
    assert.equal(hex(2 ** 32 - 1), "1affffffff");
    assert.equal(hex(2 ** 32), "1b0000000100000000");
    assert.equal(hex(1_700_000_000_000), "1b0000018bcfe56800");
    assert.equal(hex(-1), "20");
    assert.equal(hex(-(2 ** 32) - 1), "3b0000000100000000");
    assert.equal(hex(Number.MAX_SAFE_INTEGER), "1b001fffffffffffff");
    assert.equal(hex("a"), "6161");
    assert.equal(hex(new Uint8Array([1, 2])), "420102");
    assert.equal(hex([true, false, null]), "83f5f4f6");
    // Keys sort by their encoded bytes: 10 (0a) < 100 (1864) < -1 (20) < "a" (6161).
    const m = new Map<number | string, CborValue>([["a", 1], [-1, 2], [100, 3], [10, 4]]);
    assert.equal(hex(m), "a40a04186403200261610" + "1");
  });

  it("round-trips random values of the data model", () => {
    let seed = 12345;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const gen = (depth: number): CborValue => {
      const k = Math.floor(rnd() * (depth > 3 ? 5 : 7));
      switch (k) {
        case 0:
          return Math.floor((rnd() - 0.5) * 2 ** (Math.floor(rnd() * 53)));
        case 1:
          return "s" + Math.floor(rnd() * 1e6).toString(36) + "é";
        case 2:
          return new Uint8Array(Math.floor(rnd() * 40)).map(() => rnd() * 256);
        case 3:
          return rnd() < 0.5;
        case 4:
          return null;
        case 5:
          return Array.from({ length: Math.floor(rnd() * 4) }, () => gen(depth + 1));
        default: {
          const m = new Map<number | string, CborValue>();
          for (let i = 0; i < rnd() * 4; i++) {
            m.set(rnd() < 0.5 ? Math.floor(rnd() * 1000) : `k${i}`, gen(depth + 1));
          }
          return m;
        }
      }
    };
    for (let i = 0; i < 2000; i++) {
      const v = gen(0);
      const bytes = encodeCbor(v);
      assert.deepEqual(encodeCbor(decodeCbor(bytes)), bytes);
      assert.deepEqual(decodeCbor(bytes), v instanceof Uint8Array ? new Uint8Array(v) : v);
    }
  });

  it("refuses non-deterministic and out-of-model encodings", () => {
    const bad: [string, string][] = [
      ["1805", "non-shortest integer"],
      ["a2026161016162", "unsorted keys"],
      ["a201010102", "duplicate keys"],
      ["f93c00", "half float"],
      ["fb3ff8000000000000", "double"],
      ["c11a00000000", "tag"],
      ["5f4101ff", "indefinite bytes"],
      ["9f01ff", "indefinite array"],
      ["0001", "trailing bytes"],
      ["1b0020000000000000", "integer beyond 2^53"],
      ["f7", "undefined"],
      ["", "empty"],
      ["5a00000010", "truncated byte string"],
      ["9bffffffffffffffff", "absurd array length"],
      ["8".repeat(1) + "1".repeat(1) + "81".repeat(40) + "00", "deep nesting"],
    ];
    for (const [h, why] of bad) {
      assert.throws(
        () => decodeCbor(fromHex(h)!),
        (e) => e instanceof MissiveError && e.code === "malformed",
        why,
      );
    }
  });

  it("refuses huge item counts from their headers, before building anything", () => {
    // An array claiming and holding a million zeros: refused by the header scan.
    const n = 1_000_000;
    const bytes = new Uint8Array(5 + n);
    bytes.set([0x9a, (n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
    assert.throws(
      () => decodeCbor(bytes),
      (e) => e instanceof MissiveError && e.code === "malformed" && /items/.test(e.message),
    );
    // A map claiming more entries than there are bytes left.
    assert.throws(
      () => decodeCbor(fromHex("ba000100000000")!),
      (e) => e instanceof MissiveError && /truncated/.test(e.message),
    );
  });

  it("refuses to encode values outside the data model", () => {
    for (const v of [1.5, NaN, 2 ** 60, undefined, {}] as unknown[]) {
      assert.throws(() => encodeCbor(v as CborValue), MissiveError);
    }
  });

  it("builds transcripts as [label, ...fields]", () => {
    assert.equal(toHex(transcript("x", 1, new Uint8Array([2]))), "83617801410" + "2");
  });

  it("accepts exactly what cbor-x decodes and re-encodes to the same bytes", () => {
    // The rule the strict reader replaced: decode with cbor-x, check the data model,
    // re-encode, require the same bytes. Here it is the oracle, on valid encodings and on
    // every truncation and random bit flip of them.
    const reference = new Encoder(
      {
        useRecords: false,
        tagUint8Array: false,
        mapsAsObjects: false,
        variableMapSize: true,
      } as ConstructorParameters<typeof Encoder>[0],
    );
    const inModel = (v: unknown, depth: number): v is CborValue => {
      if (depth > 16) return false;
      if (typeof v === "number") return Number.isSafeInteger(v);
      if (typeof v === "bigint") return v >= -(2n ** 53n) + 1n && v <= 2n ** 53n - 1n;
      if (typeof v === "string" || typeof v === "boolean" || v === null) return true;
      if (v instanceof Uint8Array) return true;
      if (Array.isArray(v)) return v.every((x) => inModel(x, depth + 1));
      if (v instanceof Map) {
        return [...v].every(([k, x]) =>
          (typeof k === "string" || typeof k === "number" || typeof k === "bigint") &&
          inModel(k, depth + 1) && inModel(x, depth + 1)
        );
      }
      return false;
    };
    const normalise = (v: unknown): CborValue => {
      if (typeof v === "bigint") return Number(v);
      if (v instanceof Uint8Array) return new Uint8Array(v);
      if (Array.isArray(v)) return v.map(normalise);
      if (v instanceof Map) {
        return new Map([...v].map(([k, x]) => [normalise(k) as number | string, normalise(x)]));
      }
      return v as CborValue;
    };
    const oracle = (bytes: Uint8Array): boolean => {
      try {
        const v = reference.decode(bytes.slice());
        if (!inModel(v, 0)) return false;
        return equalBytes(encodeCbor(normalise(v)), bytes);
      } catch {
        return false;
      }
    };
    const ours = (bytes: Uint8Array): boolean => {
      try {
        decodeCbor(bytes);
        return true;
      } catch (e) {
        assert.ok(e instanceof MissiveError && e.code === "malformed", String(e));
        return false;
      }
    };
    let seed = 777;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const samples: CborValue[] = [
      0,
      23,
      24,
      255,
      256,
      65535,
      65536,
      2 ** 32 - 1,
      2 ** 32,
      -1,
      -24,
      -25,
      -(2 ** 32) - 1,
      Number.MAX_SAFE_INTEGER,
      -Number.MAX_SAFE_INTEGER,
      "",
      "é",
      "x".repeat(24),
      new Uint8Array(0),
      new Uint8Array(300),
      [],
      [1, [2, [3]]],
      true,
      false,
      null,
      new Map<number | string, CborValue>([[0, 1], [1, "a"], [24, new Uint8Array(3)]]),
      new Map<number | string, CborValue>([["b", 1], ["a", 2], [-5, 3], [7, [true]]]),
    ];
    let checked = 0;
    for (const value of samples) {
      const bytes = encodeCbor(value);
      assert.ok(ours(bytes) && oracle(bytes), toHex(bytes));
      for (let n = 0; n < bytes.length; n++) {
        assert.equal(ours(bytes.subarray(0, n)), oracle(bytes.subarray(0, n)), toHex(bytes));
        checked++;
      }
      for (let i = 0; i < 200; i++) {
        const flipped = bytes.slice();
        flipped[Math.floor(rnd() * flipped.length)] ^= 1 << Math.floor(rnd() * 8);
        assert.equal(ours(flipped), oracle(flipped), toHex(flipped));
        checked++;
      }
    }
    for (let i = 0; i < 3000; i++) {
      const garbage = randomBytes(1 + (i % 24));
      assert.equal(ours(garbage), oracle(garbage), toHex(garbage));
      checked++;
    }
    assert.ok(checked > 8000);
  });
});
