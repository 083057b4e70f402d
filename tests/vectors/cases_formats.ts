/**
 * Envelope and armor vectors (SPEC §2).
 * Part of tests/vectors/generate.ts (see there).
 * @module
 */
import { concatBytes, fromHex, toHex, utf8 } from "../../core/bytes.ts";
import { type CborValue, encodeCbor } from "../../core/cbor.ts";
import type { CryptoProvider } from "../../crypto/provider.ts";
import {
  armor,
  decodeEnvelope,
  encodeEnvelope,
  toLine,
  unwrapAnyForm,
} from "../../envelope/mod.ts";
import type { ErrorCode } from "../../core/errors.ts";
import type { Identity } from "../../keys/identity.ts";
import { nonCanonical, toBase64Url } from "./cases_keys.ts";
import { MAGIC, NOW } from "./common.ts";
import { failure, outcomeOf, sealFromInputs } from "./messages.ts";

// ---------------------------------------------------------------------------------------
// Envelope, armor, card, key file and AMP body vectors

export function envelopeVectors() {
  const vectors: unknown[] = [];
  const hexEnv = (m: Map<number, CborValue>) => toHex(concatBytes(MAGIC, encodeCbor(m)));
  const payload = utf8("payload");
  const ok = (
    name: string,
    comment: string,
    e: {
      protocolType: number;
      protocolVersion: number;
      sequenceNumber?: number;
      payload: Uint8Array;
    },
  ) => {
    const bytes = encodeEnvelope(e);
    const d = decodeEnvelope(bytes);
    vectors.push({
      name,
      comment,
      operation: "decode",
      input: toHex(bytes),
      expect: {
        outcome: "success",
        protocolType: d.protocolType,
        protocolVersion: d.protocolVersion,
        sequenceNumber: d.sequenceNumber ?? null,
        payload: toHex(d.payload),
      },
    });
  };
  const bad = (
    name: string,
    comment: string,
    hex: string,
    code: ErrorCode = "malformed",
    operation = "decode",
  ) => vectors.push({ name, comment, operation, input: hex, expect: failure(code, code) });

  ok("no-seq", "type 2, version 2, no sequence number", {
    protocolType: 2,
    protocolVersion: 2,
    payload,
  });
  ok("seq-7", "with sequence number 7", {
    protocolType: 2,
    protocolVersion: 2,
    sequenceNumber: 7,
    payload,
  });
  ok("seq-0", "sequence number 0 (present)", {
    protocolType: 2,
    protocolVersion: 2,
    sequenceNumber: 0,
    payload,
  });
  ok("seq-2^32", "sequence number 2^32 (eight-byte argument)", {
    protocolType: 2,
    protocolVersion: 2,
    sequenceNumber: 2 ** 32,
    payload,
  });
  ok("seq-max", "largest sequence number, 2^53 − 1", {
    protocolType: 2,
    protocolVersion: 2,
    sequenceNumber: Number.MAX_SAFE_INTEGER,
    payload,
  });
  ok("type-0-empty-payload", "type 0, version 0, empty payload", {
    protocolType: 0,
    protocolVersion: 0,
    payload: new Uint8Array(0),
  });
  ok("type-65535", "largest type and version", {
    protocolType: 65535,
    protocolVersion: 65535,
    payload,
  });
  ok("third-party-1000", "type 1000: the third-party range", {
    protocolType: 1000,
    protocolVersion: 1,
    payload,
  });
  ok("payload-24-bytes", "payload length 24 needs a one-byte length argument (58 18)", {
    protocolType: 7,
    protocolVersion: 1,
    payload: new Uint8Array(24).fill(0xaa),
  });
  ok("payload-256-bytes", "payload length 256 (59 01 00)", {
    protocolType: 7,
    protocolVersion: 1,
    payload: new Uint8Array(256).fill(0x55),
  });

  const good = encodeEnvelope({ protocolType: 2, protocolVersion: 2, payload }); // d9d9f7 a3 0102 0202 0447...
  const body = toHex(good.subarray(3));
  const p = "47" + toHex(payload); // the payload byte string, header 47
  bad("empty", "no bytes at all", "");
  bad("tag-only", "the tag and nothing else", "d9d9f7");
  bad("wrong-tag", "d9 d9 f6 instead of d9 d9 f7", "d9d9f6" + body);
  bad("no-tag", "the bare map without the self-describe tag", body);
  bad("keys-unsorted", "key 2 before key 1", "d9d9f7a3020201020447" + toHex(payload));
  bad("non-shortest-int", "type 2 written as 18 02", "d9d9f7a3011802020204" + p);
  bad("non-shortest-map-length", "map length written as b8 03", "d9d9f7b803" + body.slice(2));
  bad(
    "indefinite-map",
    "indefinite-length map (bf … ff)",
    "d9d9f7bf010202020447" + toHex(payload) + "ff",
  );
  bad(
    "indefinite-bytes",
    "indefinite-length payload byte string",
    "d9d9f7a30102020204" + "5f47" + toHex(payload) + "ff",
  );
  bad("duplicate-key", "key 1 twice", "d9d9f7a40102010202020447" + toHex(payload));
  bad(
    "unknown-key-5",
    "envelopes refuse unknown keys",
    hexEnv(new Map<number, CborValue>([[1, 2], [2, 2], [4, payload], [5, 0]])),
  );
  bad(
    "text-key",
    'key "1" instead of 1',
    hexEnv(
      new Map<number | string, CborValue>([["1", 2], [2, 2], [4, payload]]) as Map<
        number,
        CborValue
      >,
    ),
  );
  bad("missing-type", "no key 1", hexEnv(new Map<number, CborValue>([[2, 2], [4, payload]])));
  bad("missing-version", "no key 2", hexEnv(new Map<number, CborValue>([[1, 2], [4, payload]])));
  bad("missing-payload", "no key 4", hexEnv(new Map<number, CborValue>([[1, 2], [2, 2]])));
  bad(
    "type-65536",
    "type above 65535",
    hexEnv(new Map<number, CborValue>([[1, 65536], [2, 2], [4, payload]])),
  );
  bad(
    "version-negative",
    "version −1",
    hexEnv(new Map<number, CborValue>([[1, 2], [2, -1], [4, payload]])),
  );
  bad(
    "seq-negative",
    "sequence number −1",
    hexEnv(new Map<number, CborValue>([[1, 2], [2, 2], [3, -1], [4, payload]])),
  );
  bad(
    "seq-null",
    "sequence number null",
    hexEnv(new Map<number, CborValue>([[1, 2], [2, 2], [3, null], [4, payload]])),
  );
  bad(
    "seq-2^53",
    "sequence number beyond 2^53 − 1",
    "d9d9f7a40102020203" + "1b0020000000000000" + "04" + p,
  );
  bad(
    "type-float",
    "type 2.0 as a half float (f9 40 00)",
    "d9d9f7a301f9400002020447" + toHex(payload),
  );
  bad(
    "payload-text",
    "payload as a text string",
    hexEnv(new Map<number, CborValue>([[1, 2], [2, 2], [4, "payload"]])),
  );
  bad(
    "payload-array",
    "payload as an array",
    hexEnv(new Map<number, CborValue>([[1, 2], [2, 2], [4, [1]]])),
  );
  bad(
    "payload-tagged",
    "payload wrapped in tag 24 (encoded CBOR)",
    "d9d9f7a301020202" + "04d818" + p,
  );
  bad("trailing-byte", "one byte after the map", toHex(good) + "00");
  bad("truncated", "last byte cut", toHex(good.subarray(0, good.length - 1)));
  bad("array-not-map", "an array instead of a map", "d9d9f783020247" + toHex(payload));
  bad(
    "unknown-stp-99-1",
    "well formed; no STP (99, 1) is registered",
    toHex(encodeEnvelope({ protocolType: 99, protocolVersion: 1, payload })),
    "unknown-protocol",
    "open",
  );
  bad(
    "unknown-stp-2-4",
    "well formed; no STP (2, 4)",
    toHex(encodeEnvelope({ protocolType: 2, protocolVersion: 4, payload })),
    "unknown-protocol",
    "open",
  );
  bad(
    "unknown-stp-1001-1",
    "well formed; third-party STP (1001, 1) not loaded",
    toHex(encodeEnvelope({ protocolType: 1001, protocolVersion: 1, payload })),
    "unknown-protocol",
    "open",
  );
  return vectors;
}

export async function armorVectors(provider: CryptoProvider, ids: Map<string, Identity>) {
  const vectors: unknown[] = [];
  // A real message (plain STP, anonymous) so that an implementation can go on to open it.
  const { envelope } = await sealFromInputs(
    {
      stp: [7, 1],
      amp: [1, 1],
      message: { text: "armored" },
      ampBody: toHex(utf8("armored")),
      now: NOW,
      random: { seed: "armor/message" },
    },
    ids,
    provider,
  );
  const e48 = encodeEnvelope({
    protocolType: 1000,
    protocolVersion: 1,
    payload: new Uint8Array(35).fill(0x30),
  });
  const e96 = encodeEnvelope({
    protocolType: 1000,
    protocolVersion: 1,
    payload: new Uint8Array(83).fill(0x31),
  });
  if (e48.length !== 48 || e96.length !== 96) throw new Error("armor: envelope sizes");
  const a = armor(envelope);
  const lines = a.trimEnd().split("\n");
  const b64 = lines.slice(1, -1).join("");
  const line = toLine(envelope);
  const ok = (
    name: string,
    comment: string,
    input: { text: string } | { hex: string },
    env: Uint8Array,
    form: string,
    canonical: boolean,
  ) => {
    const bytes = "text" in input ? utf8(input.text) : fromHex(input.hex)!;
    const got = unwrapAnyForm(bytes);
    if (toHex(got) !== toHex(env)) throw new Error(`armor/${name}: unwrapped other bytes`);
    vectors.push({
      name,
      comment,
      input,
      expect: { outcome: "success", form, canonical, envelope: toHex(env) },
    });
  };
  const bad = async (
    name: string,
    comment: string,
    input: { text: string } | { hex: string },
    code: ErrorCode = "malformed",
  ) => {
    const bytes = "text" in input ? utf8(input.text) : fromHex(input.hex)!;
    const got = await outcomeOf(() => unwrapAnyForm(bytes));
    if (got !== code) throw new Error(`armor/${name}: expected ${code}, got ${got}`);
    vectors.push({ name, comment, input, expect: failure("armor", code) });
  };
  const wrap = (body: string[]) =>
    ["-----BEGIN MISSIVE MESSAGE-----", ...body, "-----END MISSIVE MESSAGE-----", ""].join("\n");

  ok(
    "armor/canonical",
    "as written by seal --armor: LF, 64 columns, final newline",
    { text: a },
    envelope,
    "armor",
    true,
  );
  ok(
    "armor/crlf",
    "CRLF line ends",
    { text: a.replaceAll("\n", "\r\n") },
    envelope,
    "armor",
    false,
  );
  ok(
    "armor/no-final-newline",
    "no newline after the END line",
    { text: a.trimEnd() },
    envelope,
    "armor",
    false,
  );
  ok(
    "armor/surrounding-whitespace",
    "blank lines and spaces around the block",
    { text: "\n \n  " + a + "\n\t\n" },
    envelope,
    "armor",
    false,
  );
  ok("armor/48-bytes", "one full 64-column line", { text: armor(e48) }, e48, "armor", true);
  ok("armor/96-bytes", "two full lines", { text: armor(e96) }, e96, "armor", true);
  ok(
    "line/canonical",
    "one base64 line as written by seal --lines (without its newline)",
    { text: line },
    envelope,
    "line",
    true,
  );
  ok("line/newline", "the line with its newline", { text: line + "\n" }, envelope, "line", false);
  ok(
    "line/crlf-and-spaces",
    "spaces and CRLF around the line",
    { text: "  " + line + "\r\n" },
    envelope,
    "line",
    false,
  );
  ok(
    "binary",
    "binary envelope bytes are taken as they are",
    { hex: toHex(envelope) },
    envelope,
    "binary",
    true,
  );

  await bad("armor/no-end", "END line missing", { text: lines.slice(0, -1).join("\n") + "\n" });
  await bad("armor/wrong-end-label", "END label differs", {
    text: a.replace("END MISSIVE MESSAGE", "END MISSIVE SECRET KEY"),
  });
  await bad("armor/wrong-begin-label", "BEGIN label differs: not armor, and not one line", {
    text: a.replace("BEGIN MISSIVE MESSAGE", "BEGIN MISSIVE NOTE"),
  });
  await bad("armor/lower-case-markers", "markers are case-sensitive", {
    text: a.replace("BEGIN MISSIVE MESSAGE", "begin missive message"),
  });
  await bad("armor/text-before", "a line before BEGIN", { text: "Hi bob,\n" + a });
  await bad("armor/text-after", "a line after END", { text: a + "-- \nalice\n" });
  await bad("armor/begin-trailing-space", "a space after the BEGIN marker", {
    text: a.replace("MESSAGE-----\n", "MESSAGE----- \n"),
  });
  await bad("armor/short-line", "a 63-column line before the last", {
    text: wrap([b64.slice(0, 63), b64.slice(63)]),
  });
  await bad("armor/long-line", "a 65-column line", {
    text: wrap([b64.slice(0, 65), b64.slice(65)]),
  });
  await bad("armor/empty-line-inside", "an empty line inside the body", {
    text: wrap([lines[1], "", ...lines.slice(2, -1)]),
  });
  await bad("armor/trailing-space-in-body", "a space after the last body line", {
    text: wrap([...lines.slice(1, -2), lines[lines.length - 2] + " "]),
  });
  await bad("armor/no-body", "BEGIN directly followed by END", { text: wrap([]) });
  await bad("armor/missing-padding", "final '=' padding removed", {
    text: wrap(
      lines.slice(1, -1).map((l, i, all) => (i === all.length - 1 ? l.replace(/=+$/, "") : l)),
    ),
  });
  await bad("armor/non-canonical-bits", "non-zero bits under the padding", {
    text: a.replace(
      /([A-Za-z0-9+/])(=+)\n/,
      (_, c: string, p: string) => nonCanonical(c, p.length) + p + "\n",
    ),
  });
  await bad("armor/invalid-character", "'*' in the body", {
    text: a.replace(lines[1], "*" + lines[1].slice(1)),
  });
  await bad("armor/url-alphabet", "'-' and '_' belong to base64url, not base64", {
    text: a.replace(lines[1], "-_" + lines[1].slice(2)),
  });
  await bad("armor/bare-cr", "lines ended by CR alone", { text: a.replaceAll("\n", "\r") });
  await bad("line/two-lines", "two base64 lines", { text: line + "\n" + line + "\n" });
  await bad("line/url-alphabet", "base64url is not accepted for messages", {
    text: toBase64Url(envelope),
  });
  await bad("line/missing-padding", "padding removed", {
    text: line.replace(/=+$/, "") + (line.endsWith("=") ? "" : "A"),
  });
  await bad("line/inner-space", "a space inside the line", {
    text: line.slice(0, 10) + " " + line.slice(10),
  });
  await bad("line/empty", "empty input", { text: "" });
  await bad("binary/not-utf8", "neither an envelope (no d9 d9 f7) nor UTF-8 text", {
    hex: "ff00d9d9f7",
  });
  return vectors;
}
