/**
 * AMP body vectors (SPEC §8–9, §14–17).
 * Part of tests/vectors/generate.ts (see there).
 * @module
 */
import { controlV1, fileV1, notificationV1, presenceV1, receiptV1 } from "../../amp/mod.ts";
import { armorBlock } from "../../core/armor.ts";
import { type Bytes, concatBytes, fromBase64, fromHex, toHex, utf8 } from "../../core/bytes.ts";
import { type CborMap, type CborValue, decodeCbor, encodeCbor } from "../../core/cbor.ts";
import { type ErrorCode, MissiveError } from "../../core/errors.ts";
import { defaultRegistry } from "../../mod.ts";
import { jsonMessage, storedGzip } from "./common.ts";
import { failure, NONCE8 } from "./messages.ts";
import { sha256 } from "@noble/hashes/sha2.js";
import { gzipSync } from "node:zlib";

export function reencode(text: string, key: number, value: CborValue): string {
  const lines = text.split("\n");
  const start = lines.findIndex((l) => l.startsWith("-----BEGIN"));
  const end = lines.findIndex((l) => l.startsWith("-----END"));
  const bytes = fromBase64(lines.slice(start + 1, end).join(""))!;
  const map = decodeCbor(bytes) as CborMap;
  map.set(key, value);
  return [...lines.slice(0, start), armorBlock("MISSIVE SECRET KEY", encodeCbor(map))].join("\n");
}

export function ampVectors() {
  const registry = defaultRegistry();
  const vectors: unknown[] = [];
  const run = (
    name: string,
    comment: string,
    amp: [number, number],
    body: Uint8Array,
    expect: ErrorCode | "success",
    deterministic = true,
  ) => {
    let result: unknown;
    try {
      const plugin = registry.amp(...amp);
      const m = plugin.decode(body);
      result = { outcome: "success", message: jsonMessage(m) };
    } catch (e) {
      if (!(e instanceof MissiveError)) throw e;
      result = failure(e.code, e.code);
    }
    const got = (result as { outcome: string }).outcome;
    if (got !== expect) throw new Error(`amp/${name}: expected ${expect}, got ${got}`);
    vectors.push({
      name,
      comment,
      ...(deterministic ? {} : { deterministic: false }),
      amp,
      body: toHex(body),
      expect: result,
    });
  };
  const t2 = (gz: Uint8Array, nonce: Uint8Array = NONCE8) =>
    encodeCbor(new Map<number, CborValue>([[1, gz], [2, nonce]]));
  const hello = utf8("hello, hello, hello, hello");

  run("text-v1/ascii", "UTF-8 as is", [1, 1], utf8("hello"), "success");
  run("text-v1/empty", "empty text", [1, 1], new Uint8Array(0), "success");
  run("text-v1/unicode", "multi-byte characters", [1, 1], utf8("ünïcödé ✓ 🌍"), "success");
  run(
    "text-v1/bom-kept",
    "a leading U+FEFF is part of the text",
    [1, 1],
    fromHex("efbbbf6869")!,
    "success",
  );
  run("text-v1/invalid-utf8", "a lone continuation byte", [1, 1], fromHex("6880")!, "malformed");
  run(
    "text-v1/overlong",
    "overlong encoding of '/' (c0 af)",
    [1, 1],
    fromHex("c0af")!,
    "malformed",
  );
  run(
    "text-v1/surrogate",
    "an encoded UTF-16 surrogate (ed a0 80)",
    [1, 1],
    fromHex("eda080")!,
    "malformed",
  );
  run("text-v1/truncated", "a truncated 3-byte sequence", [1, 1], fromHex("e282")!, "malformed");
  run("text-v2/stored", "one stored deflate block", [1, 2], t2(storedGzip(hello)), "success");
  run(
    "text-v2/empty",
    "empty text, stored block",
    [1, 2],
    t2(storedGzip(new Uint8Array(0))),
    "success",
  );
  run(
    "text-v2/zlib",
    "compressed by the generating runtime's zlib (level 9)",
    [1, 2],
    t2(gzipSync(hello, { level: 9 })),
    "success",
    false,
  );
  run(
    "text-v2/two-members",
    "two gzip members: receivers accept any valid gzip stream",
    [1, 2],
    t2(concatBytes(storedGzip(utf8("hello, ")), storedGzip(utf8("world")))),
    "success",
  );
  run(
    "text-v2/nonce-32-bytes",
    "largest nonce",
    [1, 2],
    t2(storedGzip(hello), new Uint8Array(32).fill(7)),
    "success",
  );
  run(
    "text-v2/nonce-7-bytes",
    "nonce shorter than 8 bytes",
    [1, 2],
    t2(storedGzip(hello), new Uint8Array(7)),
    "malformed",
  );
  run(
    "text-v2/nonce-33-bytes",
    "nonce longer than 32 bytes",
    [1, 2],
    t2(storedGzip(hello), new Uint8Array(33)),
    "malformed",
  );
  run(
    "text-v2/unknown-field",
    "text v2 refuses unknown fields",
    [1, 2],
    encodeCbor(new Map<number, CborValue>([[1, storedGzip(hello)], [2, NONCE8], [3, 0]])),
    "malformed",
  );
  run(
    "text-v2/no-nonce",
    "field 2 missing",
    [1, 2],
    encodeCbor(new Map<number, CborValue>([[1, storedGzip(hello)]])),
    "malformed",
  );
  run(
    "text-v2/not-gzip",
    "raw deflate without the gzip wrapper",
    [1, 2],
    t2(storedGzip(hello).subarray(10, -8)),
    "malformed",
  );
  run(
    "text-v2/bad-crc",
    "CRC-32 does not match",
    [1, 2],
    t2(flipAt(storedGzip(hello), -8)),
    "malformed",
  );
  run(
    "text-v2/bad-length",
    "ISIZE does not match",
    [1, 2],
    t2(flipAt(storedGzip(hello), -1)),
    "malformed",
  );
  run(
    "text-v2/truncated",
    "gzip member cut short",
    [1, 2],
    t2(storedGzip(hello).subarray(0, 20)),
    "malformed",
  );
  run(
    "text-v2/trailing-garbage",
    "bytes after the last member",
    [1, 2],
    t2(concatBytes(storedGzip(hello), fromHex("010203")!)),
    "malformed",
  );
  run(
    "text-v2/invalid-utf8",
    "decompresses to invalid UTF-8",
    [1, 2],
    t2(storedGzip(fromHex("ff")!)),
    "malformed",
  );
  run(
    "text-v2/bomb",
    "decompresses to 16 MiB + 1 bytes: refused at the cap",
    [1, 2],
    t2(gzipSync(new Uint8Array(16 * 1024 * 1024 + 1), { level: 9 })),
    "too-large",
    false,
  );
  const n = (m: Map<number, CborValue>) => encodeCbor(m);
  run(
    "notification/full",
    "kind, title, body and URI",
    [2, 1],
    notificationV1.encode({
      kind: "missed-call",
      title: "Missed call",
      body: "from alice",
      uri: "sip:alice@example.org",
    }),
    "success",
  );
  run(
    "notification/minimal",
    "kind and title only",
    [2, 1],
    notificationV1.encode({ kind: "x", title: "t" }),
    "success",
  );
  run(
    "notification/unknown-field",
    "unknown fields are ignored",
    [2, 1],
    n(new Map<number, CborValue>([[1, "notice"], [2, "hi"], [9, "grease"]])),
    "success",
  );
  run(
    "notification/empty-title",
    "title must not be empty",
    [2, 1],
    n(new Map<number, CborValue>([[1, "notice"], [2, ""]])),
    "malformed",
  );
  run(
    "notification/kind-upper-case",
    "kind is lower-case",
    [2, 1],
    n(new Map<number, CborValue>([[1, "Notice"], [2, "hi"]])),
    "malformed",
  );
  run(
    "notification/kind-65",
    "kind longer than 64",
    [2, 1],
    n(new Map<number, CborValue>([[1, "k".repeat(65)], [2, "hi"]])),
    "malformed",
  );
  run(
    "notification/title-257",
    "title longer than 256",
    [2, 1],
    n(new Map<number, CborValue>([[1, "notice"], [2, "t".repeat(257)]])),
    "malformed",
  );
  run(
    "notification/no-kind",
    "field 1 missing",
    [2, 1],
    n(new Map<number, CborValue>([[2, "hi"]])),
    "malformed",
  );
  run(
    "notification/body-bytes",
    "body must be text",
    [2, 1],
    n(new Map<number, CborValue>([[1, "notice"], [2, "hi"], [3, new Uint8Array(1)]])),
    "malformed",
  );
  run("notification/not-a-map", "an array", [2, 1], encodeCbor(["notice", "hi"]), "malformed");
  for (const [name, comment, amp, body, expect] of newAmpCases()) {
    run(name, comment, amp, body, expect);
  }
  return vectors;
}

export type AmpCase = [string, string, [number, number], Uint8Array, ErrorCode | "success"];

/** receipt, presence, control and file (SPEC §14–17): each with more failures than successes. */
export function newAmpCases(): AmpCase[] {
  const m = (...entries: [number, CborValue][]) => encodeCbor(new Map(entries));
  const nonce = fromHex("000102030405060708090a0b0c0d0e0f")!;
  const receipt = (name: string, comment: string, body: Uint8Array, expect = "malformed") =>
    [`receipt/${name}`, comment, [3, 1], body, expect] as AmpCase;
  const presence = (name: string, comment: string, body: Uint8Array, expect = "malformed") =>
    [`presence/${name}`, comment, [4, 1], body, expect] as AmpCase;
  const control = (name: string, comment: string, body: Uint8Array, expect = "malformed") =>
    [`control/${name}`, comment, [5, 1], body, expect] as AmpCase;
  const file = (name: string, comment: string, body: Uint8Array, expect = "malformed") =>
    [`file/${name}`, comment, [6, 1], body, expect] as AmpCase;
  const hi = utf8("hi");
  /** A file body for `content` as a writer makes it, then `edits` (undefined deletes a field). */
  const fileBody = (
    content: Uint8Array,
    edits: [number, CborValue | undefined][] = [],
    chunkSize = 65536,
  ) => {
    const chunks: CborValue[] = [];
    for (let at = 0; at < content.length; at += chunkSize) {
      chunks.push(content.slice(at, at + chunkSize));
    }
    const map = new Map<number, CborValue>([
      [1, "a.txt"],
      [2, content.length],
      [3, "text/plain"],
      [4, sha256(content)],
      [5, chunkSize],
      [6, chunks],
    ]);
    for (const [k, v] of edits) v === undefined ? map.delete(k) : map.set(k, v);
    return encodeCbor(map);
  };
  const pattern = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7) & 0xff);
  return [
    receipt("accepted", "status 0 for the nonce 00…0f", m([1, nonce], [2, 0]), "success"),
    receipt(
      "hash-mismatch-detail",
      "status 2 with a detail text",
      receiptV1.encode({ nonce, status: "hash-mismatch", detail: "file a.txt: content hash" }),
      "success",
    ),
    receipt("undecryptable", "status 4, the largest", m([1, nonce], [2, 4]), "success"),
    receipt("status-5", "status above 4", m([1, nonce], [2, 5])),
    receipt("status-negative", "status -1", m([1, nonce], [2, -1])),
    receipt("status-text", "status as text", m([1, nonce], [2, "accepted"])),
    receipt("nonce-15-bytes", "nonce shorter than 16 bytes", m([1, nonce.slice(1)], [2, 0])),
    receipt(
      "nonce-17-bytes",
      "nonce longer than 16 bytes",
      m([1, concatBytes(nonce, new Uint8Array([16]))], [2, 0]),
    ),
    receipt("no-status", "field 2 missing", m([1, nonce])),
    receipt("unknown-field", "receipt refuses unknown fields", m([1, nonce], [2, 0], [4, "x"])),
    receipt("detail-1025", "detail longer than 1024", m([1, nonce], [2, 0], [3, "d".repeat(1025)])),
    receipt(
      "non-canonical-status",
      "status 0 written as 18 00",
      fromHex(
        "a2015000010203040506070809" + "0a0b0c0d0e0f021800",
      )!,
    ),
    presence("online", "status 0, no note", m([1, 0]), "success"),
    presence(
      "invisible-note",
      "status 3 with a note",
      presenceV1.encode({ status: "invisible", note: "back at 3" }),
      "success",
    ),
    presence("status-4", "status above 3", m([1, 4])),
    presence("no-status", "field 1 missing", m([2, "note"])),
    presence("unknown-field", "presence refuses unknown fields", m([1, 1], [3, "x"])),
    presence("note-257", "note longer than 256", m([1, 1], [2, "n".repeat(257)])),
    presence("note-bytes", "note must be text", m([1, 1], [2, hi])),
    presence("not-a-map", "a bare status", encodeCbor(1)),
    control(
      "request-session",
      "request with a 16-byte session ID",
      controlV1.encode({ action: "request", session: nonce }),
      "success",
    ),
    control("accept", "action 1 only", m([1, 1]), "success"),
    control(
      "bye-reason",
      "bye with session and reason",
      controlV1.encode({ action: "bye", session: fromHex("0123")!, reason: "done" }),
      "success",
    ),
    control("action-4", "action above 3", m([1, 4])),
    control("no-action", "field 1 missing", m([2, nonce])),
    control("session-empty", "session of 0 bytes", m([1, 0], [2, new Uint8Array(0)])),
    control("session-33-bytes", "session longer than 32 bytes", m([1, 0], [2, new Uint8Array(33)])),
    control("session-text", "session must be bytes", m([1, 0], [2, "0123"])),
    control("unknown-field", "control refuses unknown fields", m([1, 3], [4, "x"])),
    file(
      "hi",
      "content 'hi' in one chunk",
      fileV1.encode({
        name: "a.txt",
        type: "text/plain",
        content: hi,
      }),
      "success",
    ),
    file("empty", "an empty file has no chunks", fileBody(new Uint8Array(0)), "success"),
    file(
      "two-chunks",
      "4097 bytes in chunks of 4096: a full chunk and one byte",
      fileBody(pattern(4097), [], 4096),
      "success",
    ),
    file(
      "unicode-name",
      "a non-ASCII name and a vendor media type",
      fileBody(hi, [
        [1, "résumé ✓.docx"],
        [3, "application/vnd.openxmlformats-officedocument.wordprocessingml.document"],
      ]),
      "success",
    ),
    file(
      "hash-mismatch",
      "field 4 is SHA-256 of other bytes",
      fileBody(hi, [[4, sha256(utf8("ho"))]]),
    ),
    file("size-mismatch", "field 2 says 3 bytes, the chunk holds 2", fileBody(hi, [[2, 3]])),
    file(
      "size-over-cap",
      "size 16 MiB + 1",
      fileBody(hi, [[2, 16 * 1024 * 1024 + 1]]),
      "too-large",
    ),
    file(
      "empty-chunk",
      "an empty file with one empty chunk",
      fileBody(new Uint8Array(0), [[6, [
        new Uint8Array(0),
      ]]]),
    ),
    file(
      "short-chunk",
      "the first of two chunks is shorter than the chunk size",
      fileBody(hi, [[
        6,
        [utf8("h"), utf8("i")],
      ]], 4096),
    ),
    file(
      "long-chunk",
      "one chunk of 4097 bytes with chunk size 4096",
      fileBody(pattern(4097), [[
        6,
        [pattern(4097)],
      ]], 4096),
    ),
    file("chunk-size-4095", "chunk size below 4096", fileBody(hi, [], 4095)),
    file("chunk-text", "a chunk must be bytes", fileBody(hi, [[6, ["hi"]]])),
    file("name-slash", "a name with a path", fileBody(hi, [[1, "../a.txt"]])),
    file("name-dotdot", "the name ..", fileBody(hi, [[1, ".."]])),
    file("name-nul", "a name with NUL", fileBody(hi, [[1, "a\u0000.txt"]])),
    file("name-empty", "an empty name", fileBody(hi, [[1, ""]])),
    file(
      "name-256-bytes",
      "name longer than 255 UTF-8 bytes",
      fileBody(hi, [[1, "é".repeat(128)]]),
    ),
    file("type-no-slash", "media type without a subtype", fileBody(hi, [[3, "text"]])),
    file(
      "type-parameters",
      "media type with a parameter",
      fileBody(hi, [[
        3,
        "text/plain; charset=utf-8",
      ]]),
    ),
    file("sha256-31-bytes", "digest one byte short", fileBody(hi, [[4, sha256(hi).slice(1)]])),
    file("no-chunks", "field 6 missing", fileBody(hi, [[6, undefined]])),
    file("unknown-field", "file refuses unknown fields", fileBody(hi, [[7, "x"]])),
  ];
}

export function flipAt(b: Uint8Array, offset: number): Bytes {
  const out = new Uint8Array(b);
  out[offset < 0 ? out.length + offset : offset] ^= 1;
  return out;
}
