/**
 * The receipt, presence, control and file AMPs (SPEC §14–17): the SPEC examples byte for
 * byte, round trips over every enum value and chunk boundary, strict decoding (unknown
 * fields, out-of-range enums, wrong types, non-canonical CBOR), a bad-input test for every
 * decoder (truncation, bit flips, oversize, garbage), fromInput's usage errors, and the
 * CLI in-process: seal with --field, open to stdout, --json and -o.
 * @module
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { sha256 } from "@noble/hashes/sha2.js";
import {
  CONTROL_ACTIONS,
  controlV1,
  DEFAULT_CHUNK_SIZE,
  type FileMessage,
  fileV1,
  MAX_FILE_BYTES,
  PRESENCE_STATUSES,
  presenceV1,
  RECEIPT_STATUSES,
  receiptV1,
} from "../amp/mod.ts";
import { type Bytes, fromHex, toBase64, toHex, utf8 } from "../core/bytes.ts";
import { type CborValue, decodeCbor, encodeCbor } from "../core/cbor.ts";
import { MissiveError } from "../core/errors.ts";
import { plainV1, sealMessage } from "../mod.ts";
import type { AmpPlugin } from "../plugin/types.ts";
import { ROOT, runCli, tempDir } from "./helpers.ts";

const NONCE = fromHex("000102030405060708090a0b0c0d0e0f")!;
const hex = (s: string) => fromHex(s.replace(/\s+/g, ""))!;
const body = (...entries: [number, CborValue][]) => encodeCbor(new Map(entries));
const fails = (code: string, detail?: RegExp) => (e: unknown) =>
  e instanceof MissiveError && e.code === code && (!detail || detail.test(e.message));

/** A seeded byte source (xorshift32), so "random" cases are the same on every run. */
function seeded(seed: number): (n: number) => Bytes {
  let x = seed >>> 0 || 1;
  return (n) =>
    Uint8Array.from({ length: n }, () => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return x & 0xff;
    });
}

/** A good body of each AMP, for the generic bad-input loops. */
const GOOD: [AmpPlugin, Uint8Array][] = [
  [receiptV1, receiptV1.encode({ nonce: NONCE, status: "unparsable", detail: "bad CBOR" })],
  [presenceV1, presenceV1.encode({ status: "away", note: "lunch" })],
  [controlV1, controlV1.encode({ action: "refuse", session: NONCE, reason: "busy" })],
  [
    fileV1,
    fileV1.encode({ name: "a.bin", type: "application/octet-stream", content: seeded(1)(50) }),
  ],
];

describe("receipt, presence, control, file: the SPEC examples", () => {
  it("encode to the exact bytes SPEC §14–17 show", () => {
    assert.equal(
      toHex(receiptV1.encode({ nonce: NONCE, status: "accepted" })),
      "a2015000010203040506070809" + "0a0b0c0d0e0f0200",
    );
    assert.equal(toHex(presenceV1.encode({ status: "busy" })), "a10101");
    assert.equal(
      toHex(controlV1.encode({ action: "request", session: fromHex("0123")! })),
      "a2010002420123",
    );
    const file = fileV1.encode({ name: "a.txt", type: "text/plain", content: utf8("hi") });
    assert.equal(
      toHex(file),
      toHex(hex(`a6 01 65 612e747874 02 02 03 6a 746578742f706c61696e
        04 5820 8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4
        05 1a00010000 06 81 42 6869`)),
    );
    // The examples are listed in the SPEC itself, so a drift there is caught too.
    const spec = readFileSync(join(ROOT, "docs", "SPEC.md"), "utf8");
    for (const text of ["`a1 01 01`", "`a2 01 00 02 42 0123`", "05 1a00010000 06 81 42 6869"]) {
      assert.ok(spec.includes(text), `SPEC.md shows ${text}`);
    }
  });
});

describe("receipt, presence, control: round trips and strict decoding", () => {
  it("every status and action, with and without the optional fields, round-trips", () => {
    const random = seeded(7);
    for (const status of RECEIPT_STATUSES) {
      for (
        const m of [{ nonce: random(16), status }, { nonce: random(16), status, detail: "d ✓" }]
      ) {
        const bytes = receiptV1.encode(m);
        assert.deepEqual(receiptV1.decode(bytes), m);
      }
    }
    for (const status of PRESENCE_STATUSES) {
      for (const m of [{ status }, { status, note: "" }, { status, note: "n".repeat(256) }]) {
        assert.deepEqual(presenceV1.decode(presenceV1.encode(m)), m);
      }
    }
    for (const action of CONTROL_ACTIONS) {
      for (
        const m of [
          { action },
          { action, session: random(1) },
          { action, session: random(32), reason: "r".repeat(256) },
        ]
      ) {
        assert.deepEqual(controlV1.decode(controlV1.encode(m)), m);
      }
    }
  });

  it("enums are written as their index in SPEC order", () => {
    const index = (b: Uint8Array, key: number) =>
      (decodeCbor(b) as Map<number, CborValue>).get(key);
    RECEIPT_STATUSES.forEach((status, i) =>
      assert.equal(index(receiptV1.encode({ nonce: NONCE, status }), 2), i)
    );
    assert.deepEqual([...RECEIPT_STATUSES], [
      "accepted",
      "unknown-id",
      "hash-mismatch",
      "unparsable",
      "undecryptable",
    ]);
    assert.deepEqual([...PRESENCE_STATUSES], ["online", "busy", "away", "invisible"]);
    assert.deepEqual([...CONTROL_ACTIONS], ["request", "accept", "refuse", "bye"]);
    PRESENCE_STATUSES.forEach((status, i) =>
      assert.equal(index(presenceV1.encode({ status }), 1), i)
    );
    CONTROL_ACTIONS.forEach((action, i) => assert.equal(index(controlV1.encode({ action }), 1), i));
  });

  const malformed: [string, AmpPlugin, Uint8Array][] = [
    ["receipt: status 5", receiptV1, body([1, NONCE], [2, 5])],
    ["receipt: status -1", receiptV1, body([1, NONCE], [2, -1])],
    ["receipt: status as text", receiptV1, body([1, NONCE], [2, "accepted"])],
    ["receipt: nonce 15 bytes", receiptV1, body([1, NONCE.subarray(1)], [2, 0])],
    ["receipt: nonce as text", receiptV1, body([1, toHex(NONCE)], [2, 0])],
    ["receipt: no nonce", receiptV1, body([2, 0])],
    ["receipt: unknown field", receiptV1, body([1, NONCE], [2, 0], [9, 0])],
    [
      "receipt: text key",
      receiptV1,
      encodeCbor(new Map<number | string, CborValue>([[1, NONCE], [2, 0], ["x", 0]])),
    ],
    ["receipt: detail 1025", receiptV1, body([1, NONCE], [2, 0], [3, "d".repeat(1025)])],
    ["receipt: detail as bytes", receiptV1, body([1, NONCE], [2, 0], [3, NONCE])],
    [
      "receipt: status 0 as 18 00",
      receiptV1,
      hex("a2 01 50 000102030405060708090a0b0c0d0e0f 02 1800"),
    ],
    ["presence: status 4", presenceV1, body([1, 4])],
    ["presence: status 2^53-1", presenceV1, body([1, Number.MAX_SAFE_INTEGER])],
    ["presence: no status", presenceV1, body([2, "x"])],
    ["presence: unknown field", presenceV1, body([1, 0], [3, "grease"])],
    ["presence: note 257", presenceV1, body([1, 0], [2, "n".repeat(257)])],
    ["presence: note null", presenceV1, body([1, 0], [2, null])],
    ["presence: an array", presenceV1, encodeCbor([0])],
    ["control: action 4", controlV1, body([1, 4])],
    ["control: action true", controlV1, body([1, true])],
    ["control: no action", controlV1, body([3, "why"])],
    ["control: empty session", controlV1, body([1, 0], [2, new Uint8Array(0)])],
    ["control: session 33", controlV1, body([1, 0], [2, new Uint8Array(33)])],
    ["control: reason 257", controlV1, body([1, 2], [3, "r".repeat(257)])],
    ["control: unknown field", controlV1, body([1, 3], [0, 0])],
  ];
  it(`${malformed.length} bad field sets are malformed`, () => {
    for (const [what, amp, bytes] of malformed) {
      assert.throws(() => amp.decode(bytes), fails("malformed"), what);
    }
  });

  it("encode refuses messages outside the SPEC with usage", () => {
    const bad: [string, () => unknown][] = [
      [
        "receipt: short nonce",
        () => receiptV1.encode({ nonce: new Uint8Array(8), status: "accepted" }),
      ],
      [
        "receipt: unknown status",
        () => receiptV1.encode({ nonce: NONCE, status: "lost" as "accepted" }),
      ],
      [
        "receipt: long detail",
        () => receiptV1.encode({ nonce: NONCE, status: "accepted", detail: "d".repeat(1025) }),
      ],
      ["presence: unknown status", () => presenceV1.encode({ status: "asleep" as "away" })],
      ["presence: long note", () => presenceV1.encode({ status: "away", note: "n".repeat(257) })],
      ["control: unknown action", () => controlV1.encode({ action: "kick" as "bye" })],
      [
        "control: empty session",
        () => controlV1.encode({ action: "bye", session: new Uint8Array(0) }),
      ],
      ["control: long reason", () => controlV1.encode({ action: "bye", reason: "r".repeat(257) })],
    ];
    for (const [what, f] of bad) assert.throws(f, fails("usage"), what);
  });
});

describe("file: chunks, size and hash", () => {
  const file = (content: Uint8Array, chunkSize?: number): FileMessage => ({
    name: "data.bin",
    type: "application/octet-stream",
    content,
    ...(chunkSize ? { chunkSize } : {}),
  });
  const chunksOf = (bytes: Uint8Array) =>
    ((decodeCbor(bytes) as Map<number, CborValue>).get(6) as Uint8Array[]).map((c) => c.length);

  it("round-trips at every chunk boundary and cuts the content one way only", () => {
    const random = seeded(3);
    for (const n of [0, 1, 4095, 4096, 4097, 8192, 8193, 20_000]) {
      const content = random(n);
      const bytes = fileV1.encode(file(content, 4096));
      const m = fileV1.decode(bytes);
      assert.deepEqual(m.content, content, `${n} bytes`);
      assert.equal(m.size, n);
      assert.equal(toHex(m.sha256!), toHex(sha256(content)));
      assert.equal(m.chunkSize, 4096);
      const lengths = chunksOf(bytes);
      assert.equal(lengths.length, Math.ceil(n / 4096), `${n} bytes: chunk count`);
      assert.ok(
        lengths.every((l, i) => i === lengths.length - 1 ? l >= 1 && l <= 4096 : l === 4096),
      );
      assert.equal(toHex(fileV1.encode(m)), toHex(bytes), `${n} bytes: re-encoding`);
    }
    assert.equal(
      fileV1.decode(fileV1.encode(file(new Uint8Array(10)))).chunkSize,
      DEFAULT_CHUNK_SIZE,
    );
  });

  it("accepts exactly 16 MiB in 4096-byte chunks (4096 items, under the CBOR item limit)", () => {
    const content = new Uint8Array(MAX_FILE_BYTES).fill(0x5a);
    const bytes = fileV1.encode(file(content, 4096));
    const m = fileV1.decode(bytes);
    assert.equal(m.size, MAX_FILE_BYTES);
    assert.equal(chunksOf(bytes).length, 4096);
  });

  const hi = utf8("hi");
  /** A writer's body for "hi", then edits (undefined deletes a field). */
  const hiBody = (...edits: [number, CborValue | undefined][]) => {
    const map = new Map<number, CborValue>([
      [1, "a.txt"],
      [2, 2],
      [3, "text/plain"],
      [4, sha256(hi)],
      [5, DEFAULT_CHUNK_SIZE],
      [6, [hi]],
    ]);
    for (const [k, v] of edits) v === undefined ? map.delete(k) : map.set(k, v);
    return encodeCbor(map);
  };
  const cases: [string, Uint8Array, string, RegExp?][] = [
    ["hash of other bytes", hiBody([4, sha256(utf8("ho"))]), "malformed", /content hash mismatch/],
    ["size says 3", hiBody([2, 3]), "malformed", /size mismatch/],
    ["size says 1", hiBody([2, 1]), "malformed"],
    ["size over 16 MiB", hiBody([2, MAX_FILE_BYTES + 1]), "too-large"],
    ["size as text", hiBody([2, "2"]), "malformed"],
    ["empty chunk after the content", hiBody([6, [hi, new Uint8Array(0)]]), "malformed"],
    ["two short chunks", hiBody([5, 4096], [6, [utf8("h"), utf8("i")]]), "malformed"],
    ["chunk size 4095", hiBody([5, 4095]), "malformed", /chunk size/],
    ["chunk size over 16 MiB", hiBody([5, MAX_FILE_BYTES + 1]), "malformed", /chunk size/],
    ["chunk as text", hiBody([6, ["hi"]]), "malformed"],
    ["chunks not an array", hiBody([6, hi]), "malformed"],
    ["no chunks field", hiBody([6, undefined]), "malformed"],
    ["no chunk size", hiBody([5, undefined]), "malformed"],
    ["no hash", hiBody([4, undefined]), "malformed"],
    ["hash 33 bytes", hiBody([4, new Uint8Array(33)]), "malformed"],
    ["unknown field", hiBody([7, 0]), "malformed", /unknown field/],
    ["name with /", hiBody([1, "dir/a.txt"]), "malformed", /name/],
    ["name with \\", hiBody([1, "dir\\a.txt"]), "malformed", /name/],
    ["name .", hiBody([1, "."]), "malformed", /name/],
    ["name ..", hiBody([1, ".."]), "malformed", /name/],
    ["name with NUL", hiBody([1, "a\u0000b"]), "malformed", /name/],
    ["name with ESC", hiBody([1, "\u001b[31mred"]), "malformed", /name/],
    ["name with DEL", hiBody([1, "a\u007f"]), "malformed", /name/],
    ["empty name", hiBody([1, ""]), "malformed", /name/],
    ["name 256 bytes", hiBody([1, "é".repeat(128)]), "malformed", /name/],
    ["type without subtype", hiBody([3, "text"]), "malformed", /media type/],
    ["type with parameter", hiBody([3, "text/plain; charset=utf-8"]), "malformed", /media type/],
    ["type with space", hiBody([3, "text/ plain"]), "malformed", /media type/],
    ["type 128-char subtype", hiBody([3, "text/" + "a".repeat(128)]), "malformed"],
  ];
  it(`${cases.length} bad headers and chunk lists are refused with the right code`, () => {
    assert.deepEqual(fileV1.decode(hiBody()).content, hi, "control: the unedited body decodes");
    for (const [what, bytes, code, detail] of cases) {
      assert.throws(() => fileV1.decode(bytes), fails(code, detail), what);
    }
    // Names the SPEC allows.
    for (const name of ["résumé ✓.docx", ".hidden", "a..b", "x".repeat(255)]) {
      assert.equal(fileV1.decode(hiBody([1, name])).name, name);
    }
  });

  it("every flipped content bit is a content hash mismatch", () => {
    const content = seeded(5)(40);
    const bytes = fileV1.encode(file(content));
    const at = bytes.length - content.length; // the one chunk is last
    for (let i = at; i < bytes.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const bad = bytes.slice();
        bad[i] ^= 1 << bit;
        assert.throws(() => fileV1.decode(bad), fails("malformed", /content hash mismatch/));
      }
    }
  });

  it("refuses an oversized body before decoding it, and oversized content on encode", () => {
    const huge = new Uint8Array(MAX_FILE_BYTES + 1024 + 5 * 4096 + 1);
    assert.throws(() => fileV1.decode(huge), fails("too-large"));
    assert.throws(
      () => fileV1.encode(file(new Uint8Array(MAX_FILE_BYTES + 1))),
      fails("too-large"),
    );
  });

  it("encode refuses bad names, types, chunk sizes and stated size or hash that disagree", () => {
    const bad: FileMessage[] = [
      { ...file(hi), name: "../x" },
      { ...file(hi), name: "" },
      { ...file(hi), type: "nonsense" },
      { ...file(hi), chunkSize: 100 },
      { ...file(hi), chunkSize: 4096.5 },
      { ...file(hi), size: 3 },
      { ...file(hi), sha256: new Uint8Array(32) },
    ];
    for (const m of bad) {
      assert.throws(() => fileV1.encode(m), fails("usage"), JSON.stringify(m.name));
    }
  });
});

describe("receipt, presence, control, file: hostile bodies", () => {
  for (const [amp, good] of GOOD) {
    it(`${amp.name}: every truncation is malformed, every bit flip fails or stays canonical`, () => {
      for (let n = 0; n < good.length; n++) {
        assert.throws(() => amp.decode(good.subarray(0, n)), fails("malformed"), `${n} bytes`);
      }
      for (let i = 0; i < good.length; i++) {
        for (let bit = 0; bit < 8; bit++) {
          const bad = good.slice();
          bad[i] ^= 1 << bit;
          let decoded: unknown;
          try {
            decoded = amp.decode(bad);
          } catch (e) {
            assert.ok(
              e instanceof MissiveError && ["malformed", "too-large"].includes(e.code),
              `byte ${i} bit ${bit}: ${e}`,
            );
            continue;
          }
          // A flip that still decodes (a different status, letter or nonce byte) must be
          // the one encoding of what it decodes to.
          assert.equal(toHex(amp.encode(decoded as never)), toHex(bad), `byte ${i} bit ${bit}`);
        }
      }
    });

    it(`${amp.name}: garbage and trailing bytes are malformed`, () => {
      const random = seeded(11);
      for (let n = 0; n < 200; n++) {
        const junk = random(1 + (n % 64));
        try {
          const decoded = amp.decode(junk);
          assert.equal(toHex(amp.encode(decoded as never)), toHex(junk), "accepted garbage");
        } catch (e) {
          assert.ok(e instanceof MissiveError && e.code === "malformed", `${e}`);
        }
      }
      assert.throws(() => amp.decode(new Uint8Array([...good, 0])), fails("malformed"));
      assert.throws(() => amp.decode(utf8("garbage")), fails("malformed"));
      assert.throws(() => amp.decode(encodeCbor(new Map([[99, "grease"]]))), fails("malformed"));
    });
  }
});

describe("fromInput (the CLI's --field)", () => {
  const empty = new Uint8Array(0);
  it("builds messages from fields", () => {
    assert.deepEqual(
      receiptV1.fromInput(empty, { nonce: toHex(NONCE), status: "undecryptable", detail: "x" }),
      { nonce: NONCE, status: "undecryptable", detail: "x" },
    );
    assert.deepEqual(presenceV1.fromInput(empty, { status: "invisible" }), { status: "invisible" });
    assert.deepEqual(
      controlV1.fromInput(empty, { action: "bye", session: "ABCD", reason: "done" }),
      {
        action: "bye",
        session: fromHex("abcd"),
        reason: "done",
      },
    );
    const f = fileV1.fromInput(utf8("data"), { name: "r.pdf", type: "application/pdf" });
    assert.deepEqual(f, { name: "r.pdf", type: "application/pdf", content: utf8("data") });
    assert.equal(fileV1.fromInput(empty, { name: "e" }).type, "application/octet-stream");
    assert.equal(fileV1.fromInput(empty, { name: "e", "chunk-size": "8192" }).chunkSize, 8192);
  });

  it("refuses input it would drop, unknown fields and bad values with usage", () => {
    const bad: [string, () => unknown][] = [
      [
        "receipt with stdin",
        () => receiptV1.fromInput(utf8("x"), { nonce: toHex(NONCE), status: "accepted" }),
      ],
      ["receipt without nonce", () => receiptV1.fromInput(empty, { status: "accepted" })],
      [
        "receipt nonce not hex",
        () => receiptV1.fromInput(empty, { nonce: "zz".repeat(16), status: "accepted" }),
      ],
      [
        "receipt nonce 8 bytes",
        () => receiptV1.fromInput(empty, { nonce: "00".repeat(8), status: "accepted" }),
      ],
      [
        "receipt status number",
        () => receiptV1.fromInput(empty, { nonce: toHex(NONCE), status: "0" }),
      ],
      [
        "receipt unknown field",
        () => receiptV1.fromInput(empty, { nonce: toHex(NONCE), status: "accepted", title: "x" }),
      ],
      ["presence with stdin", () => presenceV1.fromInput(utf8("\n"), { status: "busy" })],
      ["presence without status", () => presenceV1.fromInput(empty, {})],
      ["presence bad status", () => presenceV1.fromInput(empty, { status: "Busy" })],
      ["control with stdin", () => controlV1.fromInput(utf8("hi"), { action: "request" })],
      ["control bad action", () => controlV1.fromInput(empty, { action: "invite" })],
      [
        "control session not hex",
        () => controlV1.fromInput(empty, { action: "request", session: "xyz" }),
      ],
      [
        "control session 33 bytes",
        () => controlV1.fromInput(empty, { action: "request", session: "00".repeat(33) }),
      ],
      ["file without name", () => fileV1.fromInput(utf8("x"), {})],
      ["file with a path", () => fileV1.fromInput(utf8("x"), { name: "/etc/passwd" })],
      ["file bad type", () => fileV1.fromInput(utf8("x"), { name: "x", type: "pdf" })],
      [
        "file chunk-size word",
        () => fileV1.fromInput(utf8("x"), { name: "x", "chunk-size": "big" }),
      ],
      [
        "file chunk-size small",
        () => fileV1.fromInput(utf8("x"), { name: "x", "chunk-size": "16" }),
      ],
      ["file unknown field", () => fileV1.fromInput(utf8("x"), { name: "x", title: "t" })],
    ];
    for (const [what, f] of bad) assert.throws(f, fails("usage"), what);
  });
});

describe("CLI: seal --amp receipt|presence|control|file, open", () => {
  const roundTrip = async (sealArgs: string[], stdin?: Uint8Array, openArgs: string[] = []) => {
    const sealed = await runCli(["seal", "--stp", "plain", ...sealArgs], { stdin });
    assert.equal(sealed.code, 0, sealed.stderr);
    return await runCli(["open", ...openArgs], { stdin: sealed.stdout });
  };

  it("receipt, presence and control print one line; --json gives the fields", async () => {
    const nonce = toHex(NONCE);
    let r = await roundTrip([
      "--amp",
      "receipt",
      "--field",
      `nonce=${nonce}`,
      "--field",
      "status=accepted",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.text, `receipt for ${nonce}: accepted\n`);
    r = await roundTrip(["--amp", "presence", "--field", "status=busy", "--field", "note=call"]);
    assert.equal(r.text, "presence: busy (call)\n");
    r = await roundTrip([
      "--amp",
      "control",
      "--field",
      "action=request",
      "--field",
      "session=0a0b",
    ]);
    assert.equal(r.text, "control: request session 0a0b\n");
    r = await roundTrip(
      ["--amp", "receipt", "--field", `nonce=${nonce}`, "--field", "status=hash-mismatch"],
      undefined,
      ["--json"],
    );
    const report = JSON.parse(r.text);
    assert.deepEqual(report.amp, { type: 3, version: 1, name: "receipt" });
    assert.deepEqual(report.message, { nonce, status: "hash-mismatch" });
  });

  it("refuses stdin for receipt/presence/control and unknown statuses (exit 2)", async () => {
    const r = await runCli([
      "seal",
      "--stp",
      "plain",
      "--amp",
      "presence",
      "--field",
      "status=busy",
    ], {
      stdin: "typed text\n",
    });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /takes no input/);
    assert.equal(r.stdout.length, 0);
    const s = await runCli([
      "seal",
      "--stp",
      "plain",
      "--amp",
      "control",
      "--field",
      "action=nope",
    ]);
    assert.equal(s.code, 2);
    assert.match(s.stderr, /request, accept, refuse, bye/);
  });

  it("file: stdin bytes become the content; open writes them exactly, -o and --json", async () => {
    const content = seeded(9)(70_000); // two chunks at the default size; arbitrary bytes
    const args = ["--amp", "file", "--field", "name=report.pdf", "--field", "type=application/pdf"];
    const opened = await roundTrip(args, content);
    assert.equal(opened.code, 0, opened.stderr);
    assert.deepEqual(opened.stdout, content);
    assert.ok(
      opened.stderr.includes(
        `missive: file "report.pdf" (application/pdf), 70000 bytes, sha256 ${
          toHex(sha256(content))
        }\n`,
      ),
      opened.stderr,
    );

    const json = JSON.parse((await roundTrip(args, content, ["--json"])).text);
    assert.deepEqual(
      { ...json.message, content: undefined },
      {
        name: "report.pdf",
        type: "application/pdf",
        size: 70_000,
        sha256: toHex(sha256(content)),
        chunkSize: DEFAULT_CHUNK_SIZE,
        content: undefined,
      },
    );
    assert.equal(json.message.content, toBase64(content));

    const { dir, cleanup } = tempDir();
    try {
      const out = join(dir, "out.pdf");
      const r = await roundTrip(args, content, ["-o", out]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.length, 0);
      assert.deepEqual(new Uint8Array(readFileSync(out)), content);
    } finally {
      cleanup();
    }
  });

  it("file: a body whose hash does not match is exit 3 with nothing on stdout", async () => {
    const good = fileV1.encode({ name: "a.txt", type: "text/plain", content: utf8("hello") });
    const bad = good.slice();
    bad[bad.length - 1] ^= 1;
    const carrier: AmpPlugin<null> = { ...fileV1, encode: () => bad } as never;
    const sealed = await sealMessage({ stp: plainV1, amp: carrier, message: null });
    const r = await runCli(["open"], { stdin: sealed });
    assert.equal(r.code, 3);
    assert.match(r.stderr, /content hash mismatch/);
    assert.equal(r.stdout.length, 0);
  });

  it("file: no name is a usage error", async () => {
    const r = await runCli(["seal", "--stp", "plain", "--amp", "file"], { stdin: "data" });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /name/);
  });
});
