/**
 * A bad-input test for every decoder (DESIGN §9, STYLE §10): envelope, armor, line form,
 * any-form detection, CBOR, cards, key files, every STP payload, every AMP body, the
 * config file and the replay database. Each hostile input must give a MissiveError with
 * the right code; through the CLI in-process (`open`, `inspect`, `card`) it must give a
 * documented non-zero exit code, one line on stderr and NOTHING on stdout.
 * Every family also has a positive control, so a refusal is never an accident of setup.
 * @module
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { MAX_TEXT_BYTES, notificationV1, textV1, textV2 } from "../amp/mod.ts";
import { maxArmoredLength } from "../core/armor.ts";
import { type Bytes, concatBytes, fromHex, toBase64, toHex, utf8 } from "../core/bytes.ts";
import { type CborMap, type CborValue, decodeCbor, encodeCbor, transcript } from "../core/cbor.ts";
import { nobleProvider } from "../crypto/mod.ts";
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
import { ERROR_CODES, type ErrorCode, MissiveError } from "../core/errors.ts";
import {
  cardFileText,
  cardToText,
  decodeCard,
  MAX_CARD_SIZE,
  parseCardText,
} from "../keys/card.ts";
import { type Identity, MAX_SCRYPT_LOG_N, readKeyFile, writeKeyFile } from "../keys/identity.ts";
import { defaultRegistry, openMessage, sealMessage } from "../mod.ts";
import { SqliteReplayCache } from "../queue/replay.ts";
import type { AmpPlugin } from "../plugin/types.ts";
import { fixedIdentity, runCli, tempDir } from "./helpers.ts";

// ---------------------------------------------------------------------------------
// Helpers.

/** Runs `f` and requires a MissiveError with one of `codes`; returns it. */
async function refused(
  what: string,
  f: () => unknown,
  codes: ErrorCode | readonly ErrorCode[],
): Promise<MissiveError> {
  const expected = typeof codes === "string" ? [codes] : codes;
  try {
    await f();
  } catch (e) {
    if (!(e instanceof MissiveError)) {
      assert.fail(`${what}: threw ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
    }
    assert.ok(
      expected.includes(e.code),
      `${what}: code ${e.code} (${e.message}), expected ${expected}`,
    );
    return e;
  }
  return assert.fail(`${what}: ACCEPTED (expected ${expected})`);
}

const exitOf = (codes: ErrorCode | readonly ErrorCode[]) =>
  (typeof codes === "string" ? [codes] : codes).map((c): number => ERROR_CODES[c]);

/** Runs the CLI in-process and requires a typed failure: exit code, one stderr line, no stdout. */
async function cliRefuses(
  what: string,
  args: string[],
  options: { stdin?: Uint8Array | string; env?: Record<string, string> },
  codes: ErrorCode | readonly ErrorCode[],
): Promise<void> {
  const r = await runCli(args, options);
  const exits = exitOf(codes);
  assert.ok(exits.includes(r.code), `${what}: exit ${r.code}, expected ${exits}: ${r.stderr}`);
  assert.equal(r.stdout.length, 0, `${what}: ${r.stdout.length} bytes on stdout`);
  assert.match(r.stderr, /^missive: [^\n]+\n$/, `${what}: stderr is not one line`);
}

const MAGIC = new Uint8Array([0xd9, 0xd9, 0xf7]);
const hex = (s: string): Bytes => fromHex(s.replaceAll(" ", ""))!;
const cborMap = (...entries: [number | string, CborValue][]): CborMap => new Map(entries);
/** A binary envelope from any CBOR value, without encodeEnvelope's checks. */
const rawEnvelope = (value: CborValue) => concatBytes(MAGIC, encodeCbor(value));
const PLAINTEXT = "hello bob: bad input test\n";

/** Fixed identities and one sealed message per STP; made once. */
interface World {
  alice: Identity;
  bob: Identity;
  carol: Identity;
  sealed: Record<"simple/1" | "simple/2" | "simple/2+hash" | "auth/1" | "plain/1", Bytes>;
}

let world: Promise<World> | undefined;

function getWorld(): Promise<World> {
  world ??= (async () => {
    const alice = await fixedIdentity("alice@example.org", 1);
    const bob = await fixedIdentity("bob@example.org", 3);
    const carol = await fixedIdentity("carol@example.org", 5);
    const registry = defaultRegistry();
    const seal = (stp: string, hashDestination = false) =>
      sealMessage({
        stp: registry.find("stp", stp),
        amp: registry.find("amp", "text/1"),
        message: { text: PLAINTEXT },
        sender: alice,
        recipients: [bob.card],
        hashDestination,
        crypto: nobleProvider,
      });
    const sealed = {
      "simple/1": await seal("simple/1"),
      "simple/2": await seal("simple/2"),
      "simple/2+hash": await seal("simple/2", true),
      "auth/1": await seal("auth/1"),
      "plain/1": await seal("plain/1"),
    };
    return { alice, bob, carol, sealed };
  })();
  return world;
}

/** Key and card files of the world in a fresh folder, removed after `f`. */
async function withFiles<T>(
  f: (files: { dir: string; bobKey: string; aliceCard: string; openArgs: string[] }) => Promise<T>,
): Promise<T> {
  const w = await getWorld();
  const { dir, cleanup } = tempDir("missive-bad-input-");
  try {
    const bobKey = join(dir, "bob.key");
    const aliceCard = join(dir, "alice.card");
    writeFileSync(bobKey, await writeKeyFile(nobleProvider, w.bob), { mode: 0o600 });
    writeFileSync(aliceCard, await cardFileText(nobleProvider, w.alice.card));
    return await f({
      dir,
      bobKey,
      aliceCard,
      openArgs: ["open", "--key", bobKey, "--trust", aliceCard],
    });
  } finally {
    cleanup();
  }
}

/** Opens with Bob's identity, trusting Alice. */
async function openAsBob(frame: Uint8Array) {
  const w = await getWorld();
  return await openMessage(frame, {
    registry: defaultRegistry(),
    identity: w.bob,
    trusted: [w.alice.card],
  });
}

// ---------------------------------------------------------------------------------

describe("bad input: envelope (decodeEnvelope)", () => {
  const payload = new Uint8Array([1, 2, 3]);
  const good = rawEnvelope(cborMap([1, 2], [2, 2], [4, payload]));
  const cases: [string, Uint8Array][] = [
    ["empty", new Uint8Array(0)],
    ["the magic alone", MAGIC],
    ["no magic", encodeCbor(cborMap([1, 2], [2, 2], [4, payload]))],
    ["another tag than 55799", concatBytes(hex("d9d9f8"), good.subarray(3))],
    ["an array, not a map", rawEnvelope([2, 2, payload])],
    ["an empty map", rawEnvelope(new Map())],
    ["no payload", rawEnvelope(cborMap([1, 2], [2, 2]))],
    ["no type", rawEnvelope(cborMap([2, 2], [4, payload]))],
    ["no version", rawEnvelope(cborMap([1, 2], [4, payload]))],
    ["an unknown field 5", rawEnvelope(cborMap([1, 2], [2, 2], [4, payload], [5, 0]))],
    ["a text key", rawEnvelope(cborMap([1, 2], [2, 2], [4, payload], ["x", 0]))],
    ["type 65536", rawEnvelope(cborMap([1, 65536], [2, 2], [4, payload]))],
    ["type -1", rawEnvelope(cborMap([1, -1], [2, 2], [4, payload]))],
    ["version as text", rawEnvelope(cborMap([1, 2], [2, "2"], [4, payload]))],
    ["sequence number -1", rawEnvelope(cborMap([1, 2], [2, 2], [3, -1], [4, payload]))],
    ["sequence number as bytes", rawEnvelope(cborMap([1, 2], [2, 2], [3, payload], [4, payload]))],
    ["payload as text", rawEnvelope(cborMap([1, 2], [2, 2], [4, "abc"]))],
    ["payload as an array", rawEnvelope(cborMap([1, 2], [2, 2], [4, [1, 2, 3]]))],
    ["type in a non-shortest integer", concatBytes(MAGIC, hex("a3 01 1802 02 02 04 43010203"))],
    ["unsorted keys", concatBytes(MAGIC, hex("a3 02 02 01 02 04 43010203"))],
    ["a duplicate key", concatBytes(MAGIC, hex("a4 01 02 01 02 02 02 04 43010203"))],
    ["an indefinite-length map", concatBytes(MAGIC, hex("bf 01 02 02 02 04 43010203 ff"))],
    ["an indefinite-length payload", concatBytes(MAGIC, hex("a3 01 02 02 02 04 5f 43010203 ff"))],
    ["a float type", concatBytes(MAGIC, hex("a3 01 f94000 02 02 04 43010203"))],
    ["a tagged payload", concatBytes(MAGIC, hex("a3 01 02 02 02 04 d840 43010203"))],
    [
      "a payload longer than the input",
      concatBytes(MAGIC, hex("a3 01 02 02 02 04 5a7fffffff 010203")),
    ],
    ["a trailing byte", concatBytes(good, hex("00"))],
    ["two envelopes", concatBytes(good, good)],
  ];

  it("decodes the well-formed control", () => {
    assert.deepEqual(decodeEnvelope(good), {
      protocolType: 2,
      protocolVersion: 2,
      sequenceNumber: undefined,
      payload,
    });
  });

  it(`refuses ${cases.length} malformed envelopes with "malformed"`, async () => {
    for (const [what, bytes] of cases) {
      await refused(what, () => decodeEnvelope(bytes), "malformed");
    }
  });

  it("refuses every truncation of a real envelope", async () => {
    const { sealed } = await getWorld();
    const bytes = sealed["simple/2"];
    for (let n = 0; n < bytes.length; n++) {
      await refused(`truncated to ${n}`, () => decodeEnvelope(bytes.subarray(0, n)), "malformed");
    }
  });

  it("refuses an envelope over 64 MiB as too-large, in the library and the CLI", async () => {
    const big = new Uint8Array(MAX_ENVELOPE_SIZE + 1);
    big.set(MAGIC);
    await refused("64 MiB + 1", () => decodeEnvelope(big), "too-large");
    await cliRefuses("inspect 64 MiB + 1", ["inspect"], { stdin: big }, "too-large");
  });

  it("fails every case through `inspect` and `open` with exit 3 and no output", async () => {
    await withFiles(async ({ openArgs }) => {
      for (const [what, bytes] of cases) {
        await cliRefuses(`inspect: ${what}`, ["inspect"], { stdin: bytes }, "malformed");
        await cliRefuses(`open: ${what}`, openArgs, { stdin: bytes }, "malformed");
      }
    });
  });
});

describe("bad input: armor (dearmor)", () => {
  const BEGIN = "-----BEGIN MISSIVE MESSAGE-----";
  const END = "-----END MISSIVE MESSAGE-----";
  const body = new Uint8Array(150).map((_, i) => (i * 37 + 11) & 0xff);
  const good = armor(body);
  const lines = good.trimEnd().split("\n");
  const rewrap = (columns: number) => {
    const b64 = toBase64(body);
    const out = [BEGIN];
    for (let i = 0; i < b64.length; i += columns) out.push(b64.slice(i, i + columns));
    return [...out, END, ""].join("\n");
  };
  const block = (...bodyLines: string[]) => [BEGIN, ...bodyLines, END, ""].join("\n");
  const cases: [string, string][] = [
    ["empty text", ""],
    ["no BEGIN line", lines.slice(1).join("\n")],
    ["no END line", lines.slice(0, -1).join("\n")],
    ["the secret-key label", good.replaceAll("MISSIVE MESSAGE", "MISSIVE SECRET KEY")],
    ["a mismatched END label", good.replace(END, "-----END MISSIVE SECRET KEY-----")],
    ["a BEGIN line with trailing spaces", good.replace(BEGIN, BEGIN + "  ")],
    ["no body", [BEGIN, END].join("\n")],
    ["60-column lines", rewrap(60)],
    ["76-column lines", rewrap(76)],
    ["a blank line inside", [lines[0], lines[1], "", ...lines.slice(2)].join("\n")],
    [
      "a space inside a line",
      good.replace(lines[1], lines[1].slice(0, 10) + " " + lines[1].slice(11)),
    ],
    ["a character outside base64", good.replace(lines[1], "*" + lines[1].slice(1))],
    ["a non-ASCII character", good.replace(lines[1], "é" + lines[1].slice(2))],
    ["base64url characters", block("AAA-AAA_")],
    ["non-zero bits under the padding", block("AAAAAB==")],
    ["missing padding", block("AAAAAA")],
    ["padding in the middle", block("AA==AAAA")],
    ["text before the block", "hello\n" + good],
    ["text after the block", good + "bye\n"],
    ["two blocks", good + good],
    ["CR-only line ends", good.replaceAll("\n", "\r")],
  ];

  it("decodes the control, also with CRLF line ends", () => {
    assert.deepEqual(dearmor(good), body);
    assert.deepEqual(dearmor(good.replaceAll("\n", "\r\n")), body);
    assert.deepEqual(dearmor(block("AAAAAA==")), new Uint8Array(4));
  });

  it(`refuses ${cases.length} kinds of sloppy armor with "malformed"`, async () => {
    for (const [what, text] of cases) await refused(what, () => dearmor(text), "malformed");
  });

  it("refuses armor longer than the envelope limit as too-large, before decoding", async () => {
    const huge = BEGIN + "\n" + "A".repeat(maxArmoredLength(MAX_ENVELOPE_SIZE)) + "\n" + END;
    await refused("huge armor", () => dearmor(huge), "too-large");
  });

  it("fails every case through `inspect` with exit 3 and no output", async () => {
    for (const [what, text] of cases) {
      await cliRefuses(`inspect: ${what}`, ["inspect"], { stdin: text }, "malformed");
    }
  });
});

describe("bad input: line form (fromLine) and form detection (unwrapAnyForm)", () => {
  const lineCases: [string, string][] = [
    ["empty", ""],
    ["blanks", "   "],
    ["a space inside", "AAAA AAAA"],
    ["a length that is not a multiple of 4", "AAAAA"],
    ["padding in the middle", "AA=AAAAA"],
    ["non-zero bits under the padding", "AAAAAB=="],
    ["base64url characters", "-_-_"],
    ["a NUL byte", "AAAA\u0000"],
    ["a non-ASCII character", "AAAé"],
    ["only padding", "===="],
  ];

  it("decodes the control", async () => {
    const { sealed } = await getWorld();
    assert.deepEqual(fromLine(toLine(sealed["auth/1"]) + "\n"), sealed["auth/1"]);
    assert.deepEqual(unwrapAnyForm(utf8(toLine(sealed["auth/1"]))), sealed["auth/1"]);
    assert.deepEqual(unwrapAnyForm(utf8(armor(sealed["auth/1"]))), sealed["auth/1"]);
  });

  it(`refuses ${lineCases.length} bad lines with "malformed"`, async () => {
    for (const [what, line] of lineCases) await refused(what, () => fromLine(line), "malformed");
  });

  it("refuses a line longer than the envelope limit as too-large", async () => {
    await refused(
      "huge line",
      () => fromLine("A".repeat(Math.ceil(MAX_ENVELOPE_SIZE / 3) * 4 + 4)),
      "too-large",
    );
  });

  it("refuses input that is no form of envelope", async () => {
    const { sealed } = await getWorld();
    const line = toLine(sealed["auth/1"]);
    const cases: [string, Uint8Array][] = [
      ["invalid UTF-8", hex("fffe00")],
      ["a lone continuation byte", hex("80414141")],
      ["two lines", utf8(`${line}\n${line}\n`)],
      ["armor and then a line", utf8(armor(sealed["auth/1"]) + line + "\n")],
      ["only whitespace", utf8(" \n\t\r\n ")],
      ["binary that is not an envelope", hex("a3010202020443010203")],
    ];
    for (const [what, input] of cases) {
      await refused(what, () => unwrapAnyForm(input), "malformed");
      await cliRefuses(`inspect: ${what}`, ["inspect"], { stdin: input }, "malformed");
    }
  });

  it("refuses text input over the armored-size limit as too-large", async () => {
    const big = new Uint8Array(maxArmoredLength(MAX_ENVELOPE_SIZE) + 1).fill(0x41);
    await refused("huge text", () => unwrapAnyForm(big), "too-large");
  });
});

describe("bad input: CBOR (decodeCbor)", () => {
  /** [description, hex] of items that must be refused. */
  const bad: [string, string][] = [
    ["23 as a 1-byte argument", "1817"],
    ["23 as a 2-byte argument", "190017"],
    ["23 as a 4-byte argument", "1a00000017"],
    ["23 as an 8-byte argument", "1b0000000000000017"],
    ["-24 as a 1-byte argument", "3817"],
    ["255 as a 2-byte argument", "1900ff"],
    ["a byte-string length in a long form", "5801ff"],
    ["a text length in a long form", "780161"],
    ["an array length in a long form", "980100"],
    ["a map length in a long form", "b8010102"],
    ["unsorted integer keys", "a2020101 02"],
    ["text before integer keys", "a2616101 0a02"],
    ["a shorter key after a longer one", "a2 1864 01 0a 02"],
    ["a duplicate integer key", "a2 01 01 01 02"],
    ["a duplicate text key", "a2 6161 01 6161 02"],
    ["half-precision 0.0", "f90000"],
    ["half-precision 1.0", "f93c00"],
    ["single-precision 1.0", "fa3f800000"],
    ["double-precision 1.0", "fb3ff0000000000000"],
    ["NaN", "f97e00"],
    ["infinity", "f97c00"],
    ["-0.0", "f98000"],
    ["a float 2^53", "fb4340000000000000"],
    ["tag 0 (date text)", "c074323031332d30332d32315432303a30343a30305a"],
    ["tag 1 (epoch date)", "c11a514b67b0"],
    ["tag 2 (bignum 1)", "c24101"],
    ["tag 3 (negative bignum)", "c34101"],
    ["tag 24 (embedded CBOR)", "d8184100"],
    ["tag 28 (shareable)", "d81c8101"],
    ["tag 29 (shared reference)", "d81d00"],
    ["tag 51", "d8338101"],
    ["tag 64 (typed array)", "d8404401020304"],
    ["tag 55799 (self-describe) inside", "d9d9f700"],
    ["tag 259 (map)", "d90103a10102"],
    ["tag 57344 (record)", "d9e000830102"],
    ["an indefinite array", "9f01ff"],
    ["an empty indefinite array", "9fff"],
    ["an indefinite map", "bf0101ff"],
    ["an indefinite byte string", "5f4101ff"],
    ["an indefinite text string", "7f6161ff"],
    ["an unterminated indefinite array", "9f01"],
    ["undefined", "f7"],
    ["simple value 16", "f0"],
    ["simple value 255", "f8ff"],
    ["a stray break", "ff"],
    ["reserved additional information 28", "1c"],
    ["a trailing byte", "0100"],
    ["two items", "a0a0"],
    ["an item and a stray break", "4100ff"],
    ["empty input", ""],
    ["a truncated byte string", "42ff"],
    ["a truncated array", "8201"],
    ["a truncated map", "a101"],
    ["a truncated 8-byte integer", "1b00000000"],
    ["a truncated head", "19"],
    ["a truncated text", "6261"],
    ["a byte string claiming 2^63 bytes", "5b7fffffffffffffff00"],
    ["a byte string claiming 4 GiB", "5affffffff00"],
    ["a text claiming 2 GiB", "7a7fffffff61"],
    ["an array claiming 2^32 - 1 items", "9affffffff00"],
    ["an array claiming 2^63 items", "9b7fffffffffffffff00"],
    ["a map claiming 2^32 - 1 entries", "baffffffff0000"],
    ["a map claiming 2^63 entries", "bb7fffffffffffffff0000"],
    ["the integer 2^53", "1b0020000000000000"],
    ["the integer -2^53 - 1", "3b0020000000000000"],
    ["the integer 2^64 - 1", "1bffffffffffffffff"],
    ["a byte-string key", "a1410001"],
    ["a boolean key", "a1f500"],
    ["an array key", "a1800001"],
    ["a null key", "a1f600"],
    ["invalid UTF-8 in a text", "62c328"],
    ["a UTF-16 surrogate in a text", "63eda080"],
    ["an overlong UTF-8 NUL", "62c080"],
  ];

  it("accepts the canonical controls", () => {
    const good: [string, CborValue][] = [
      ["17", 23],
      ["1818", 24],
      ["1900ff".replace("1900ff", "18ff"), 255],
      ["190100", 256],
      ["1b001fffffffffffff", Number.MAX_SAFE_INTEGER],
      ["3b001ffffffffffffe", Number.MIN_SAFE_INTEGER],
      ["41ff", new Uint8Array([0xff])],
      ["a201020201", cborMap([1, 2], [2, 1])],
      ["a20a021864 01".replaceAll(" ", ""), cborMap([10, 2], [100, 1])],
      ["a2 0a 02 6161 01".replaceAll(" ", ""), cborMap([10, 2], ["a", 1])],
      ["8100", [0]],
      ["83f5f4f6", [true, false, null]],
    ];
    for (const [h, value] of good) assert.deepEqual(decodeCbor(hex(h)), value, h);
  });

  it(`refuses ${bad.length} non-canonical, out-of-model, truncated or oversize items`, async () => {
    for (const [what, h] of bad) {
      await refused(`${what} (${h})`, () => decodeCbor(hex(h)), "malformed");
    }
  });

  it("accepts 16 levels of nesting and refuses 17, and a very deep input, without a crash", async () => {
    const nested = (levels: number, head: number) =>
      concatBytes(new Uint8Array(levels).fill(head), new Uint8Array([0x00]));
    assert.ok(Array.isArray(decodeCbor(nested(16, 0x81))));
    await refused("17 arrays deep", () => decodeCbor(nested(17, 0x81)), "malformed");
    for (const head of [0x81, 0x9f, 0xc6, 0xd8]) {
      await refused(
        `100,000 × ${head.toString(16)}`,
        () => decodeCbor(nested(100_000, head)),
        "malformed",
      );
    }
    const deepMaps = concatBytes(...Array.from({ length: 17 }, () => hex("a101")), hex("00"));
    await refused("17 maps deep", () => decodeCbor(deepMaps), "malformed");
  });
});

// ---------------------------------------------------------------------------------
// Cards.

/** A card's CBOR map (SPEC §3 field numbers), for building broken cards. */
function cardMap(fields: {
  format?: CborValue;
  address?: CborValue;
  signingKey?: CborValue;
  agreementKey?: CborValue;
  stps?: CborValue;
  amps?: CborValue;
  created?: CborValue;
  signature?: CborValue;
  hybridKey?: CborValue;
}): CborMap {
  const m: CborMap = new Map();
  const order: [number, CborValue | undefined][] = [
    [1, fields.format],
    [2, fields.address],
    [3, fields.signingKey],
    [4, fields.agreementKey],
    [5, fields.stps],
    [6, fields.amps],
    [7, fields.created],
    [8, fields.signature],
    [9, fields.hybridKey],
  ];
  for (const [k, v] of order) if (v !== undefined) m.set(k, v);
  return m;
}

/** Signs card fields as the real self-signature does, with any seed (SPEC §3). */
async function signedCard(seed: Uint8Array, f: Parameters<typeof cardMap>[0]): Promise<Bytes> {
  // Format-2 cards sign their hybrid key too, under the v2 label (SPEC §3.3).
  const keys = f.hybridKey === undefined
    ? [f.signingKey!, f.agreementKey!]
    : [f.signingKey!, f.agreementKey!, f.hybridKey];
  const sig = await nobleProvider.ed25519Sign(
    seed,
    transcript(
      f.hybridKey === undefined ? "missive/card/v1/self-sig" : "missive/card/v2/self-sig",
      f.format!,
      f.address!,
      ...keys,
      f.stps!,
      f.amps!,
      f.created!,
    ),
  );
  return encodeCbor(cardMap({ ...f, signature: sig }));
}

function cardFields(identity: Identity) {
  const c = identity.card;
  return {
    format: c.hybridKey ? 2 : 1,
    address: c.address,
    signingKey: c.signingKey,
    agreementKey: c.agreementKey,
    stps: c.stps.map((p) => [p[0], p[1]]),
    amps: c.amps.map((p) => [p[0], p[1]]),
    created: c.created,
    ...(c.hybridKey ? { hybridKey: c.hybridKey } : {}),
  };
}

describe("bad input: cards (decodeCard, parseCardText)", () => {
  it("the control: a card rebuilt and re-signed here decodes to the same card", async () => {
    const { alice } = await getWorld();
    const bytes = await signedCard(alice.signingSeed, cardFields(alice));
    assert.deepEqual(bytes, alice.card.bytes);
    assert.equal((await decodeCard(nobleProvider, bytes)).address, "alice@example.org");
    assert.equal(
      (await parseCardText(nobleProvider, cardToText(alice.card))).address,
      "alice@example.org",
    );
  });

  it("refuses every truncation and every flipped bit pattern of a card", async () => {
    const { alice } = await getWorld();
    const bytes = alice.card.bytes;
    for (let n = 0; n < bytes.length; n++) {
      await refused(
        `truncated to ${n}`,
        () => decodeCard(nobleProvider, bytes.slice(0, n)),
        "malformed",
      );
    }
    for (let i = 0; i < bytes.length; i++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const b = bytes.slice();
        b[i] ^= mask;
        await refused(`byte ${i} ^ ${mask}`, () => decodeCard(nobleProvider, b), [
          "malformed",
          "key",
        ]);
      }
    }
    const text = cardToText(alice.card);
    for (let n = 0; n < text.length; n++) {
      await refused(
        `text cut to ${n}`,
        () => parseCardText(nobleProvider, text.slice(0, n)),
        "malformed",
      );
    }
  });

  it("refuses broken fields, bad signatures, oversize and garbage with typed codes", async () => {
    const { alice, carol } = await getWorld();
    const f = cardFields(alice);
    const seed = alice.signingSeed;
    const pairs = (n: number) => Array.from({ length: n }, (_, i) => [1000 + i, 1]);
    const cases: [string, Uint8Array, ErrorCode][] = [
      ["a signature by another key", await signedCard(carol.signingSeed, f), "key"],
      [
        "fields changed after signing",
        encodeCbor(cardMap({ ...f, created: f.created + 1, signature: alice.card.signature })),
        "key",
      ],
      ["a zero signature", encodeCbor(cardMap({ ...f, signature: new Uint8Array(64) })), "key"],
      ["format 3", await signedCard(seed, { ...f, format: 3 }), "malformed"],
      ["format 1 with a hybrid key", await signedCard(seed, { ...f, format: 1 }), "malformed"],
      [
        "format 2 without its hybrid key",
        await signedCard(seed, { ...f, hybridKey: undefined }),
        "malformed",
      ],
      [
        "a 1,215-byte hybrid key",
        await signedCard(seed, { ...f, hybridKey: alice.card.hybridKey!.slice(1) }),
        "malformed",
      ],
      [
        "an address not in normal form",
        await signedCard(seed, { ...f, address: "Alice@Example.org" }),
        "malformed",
      ],
      ["an invalid address", await signedCard(seed, { ...f, address: "alice" }), "malformed"],
      [
        "an address of 255 characters",
        await signedCard(seed, { ...f, address: "a".repeat(243) + "@example.org" }),
        "malformed",
      ],
      [
        "the address as bytes",
        await signedCard(seed, { ...f, address: utf8(f.address) }),
        "malformed",
      ],
      [
        "a 31-byte signing key",
        await signedCard(seed, { ...f, signingKey: f.signingKey.slice(1) }),
        "malformed",
      ],
      [
        "a 33-byte agreement key",
        await signedCard(seed, { ...f, agreementKey: concatBytes(f.agreementKey, hex("00")) }),
        "malformed",
      ],
      ["capabilities not an array", await signedCard(seed, { ...f, stps: 5 }), "malformed"],
      ["a pair of three numbers", await signedCard(seed, { ...f, stps: [[2, 2, 2]] }), "malformed"],
      ["a pair with 70000", await signedCard(seed, { ...f, amps: [[70000, 1]] }), "malformed"],
      ["a pair with -1", await signedCard(seed, { ...f, amps: [[1, -1]] }), "malformed"],
      ["a pair of texts", await signedCard(seed, { ...f, amps: [["1", "1"]] }), "malformed"],
      ["65 capability pairs", await signedCard(seed, { ...f, stps: pairs(65) }), "malformed"],
      ["a negative creation time", await signedCard(seed, { ...f, created: -1 }), "malformed"],
      ["no signature", encodeCbor(cardMap(f)), "malformed"],
      [
        "an unknown field 10",
        encodeCbor(new Map([...cardMap({ ...f, signature: alice.card.signature }), [10, 0]])),
        "malformed",
      ],
      [
        "a 65-byte signature",
        encodeCbor(cardMap({ ...f, signature: new Uint8Array(65) })),
        "malformed",
      ],
      ["a CBOR array", encodeCbor([1, 2, 3]), "malformed"],
      ["random bytes", new Uint8Array(100).map((_, i) => (i * 71 + 3) & 0xff), "malformed"],
      ["empty", new Uint8Array(0), "malformed"],
      ["more than 4096 bytes", new Uint8Array(MAX_CARD_SIZE + 1), "too-large"],
    ];
    // The 64-pair maximum itself is fine: the 65-pair refusal is the limit, not the shape.
    assert.equal(
      (await decodeCard(nobleProvider, await signedCard(seed, { ...f, stps: pairs(64) }))).stps
        .length,
      64,
    );
    for (const [what, bytes, code] of cases) {
      await refused(what, () => decodeCard(nobleProvider, bytes), code);
      const line = "missive-card:" + toBase64(bytes, true);
      if (line.length <= 2 * MAX_CARD_SIZE) {
        await refused(`${what} (text)`, () => parseCardText(nobleProvider, line), code);
      }
    }
  });

  it("refuses bad card text: prefix, base64url, line count, size", async () => {
    const { alice, bob } = await getWorld();
    const line = cardToText(alice.card);
    const b64 = line.slice("missive-card:".length);
    const cases: [string, string, ErrorCode][] = [
      ["empty", "", "malformed"],
      ["only comments", "# a card\n# nothing else\n", "malformed"],
      ["garbage", "hello world", "malformed"],
      ["another prefix", "missive-key:" + b64, "malformed"],
      ["an upper-case prefix", "MISSIVE-CARD:" + b64, "malformed"],
      [
        "an age recipient",
        "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p",
        "malformed",
      ],
      ["two card lines", `${line}\n${cardToText(bob.card)}\n`, "malformed"],
      ["base64url padding", line + "=", "malformed"],
      [
        "standard base64 characters",
        "missive-card:" + b64.replaceAll("-", "+").replaceAll("_", "/") + "+/",
        "malformed",
      ],
      ["a space inside", line.slice(0, 30) + " " + line.slice(30), "malformed"],
      ["a length of 4n + 1", line + "A", "malformed"],
      ["text over 8192 characters", `# ${"x".repeat(2 * MAX_CARD_SIZE)}\n${line}\n`, "too-large"],
    ];
    assert.equal(
      (await parseCardText(nobleProvider, `# comment\n\n  ${line}  \n# end\n`)).address,
      alice.card.address,
    );
    for (const [what, text, code] of cases) {
      await refused(what, () => parseCardText(nobleProvider, text), code);
    }
  });

  it("fails `card` and `open --trust` on a bad card file: typed exit, no output", async () => {
    const { alice, carol, sealed } = await getWorld();
    const f = cardFields(alice);
    const bad: [string, string, ErrorCode][] = [
      ["garbage", "hello\n", "malformed"],
      ["a truncated card", cardToText(alice.card).slice(0, 60), "malformed"],
      [
        "a bad self-signature",
        "missive-card:" + toBase64(await signedCard(carol.signingSeed, f), true),
        "key",
      ],
      ["an oversize file", "#".repeat(100_000), "too-large"],
    ];
    await withFiles(async ({ dir, bobKey }) => {
      for (const [what, text, code] of bad) {
        const path = join(dir, "bad.card");
        writeFileSync(path, text);
        await cliRefuses(`card: ${what}`, ["card", path], {}, code);
        const openArgs = ["open", "--key", bobKey, "--trust", path];
        await cliRefuses(`open --trust: ${what}`, openArgs, { stdin: sealed["simple/2"] }, code);
      }
      await cliRefuses("card: a card line with a bad signature", ["card", bad[2][1]], {}, "key");
      await cliRefuses("card: a missing file", ["card", join(dir, "nope.card")], {}, "io");
    });
  });

  it("a self-signed card created beyond what a Date can show never crashes `card`", async () => {
    // Anyone can sign such a card for their own keys: `created` is any uint (SPEC §3).
    const { alice } = await getWorld();
    const line = "missive-card:" +
      toBase64(
        await signedCard(alice.signingSeed, {
          ...cardFields(alice),
          created: Number.MAX_SAFE_INTEGER,
        }),
        true,
      );
    assert.equal((await parseCardText(nobleProvider, line)).created, Number.MAX_SAFE_INTEGER);
    const problems: string[] = [];
    for (const flags of [[], ["--json"], ["--file"]]) {
      const r = await runCli(["card", line, ...flags], {});
      const where = `card ${flags.join(" ")}: exit ${r.code}`;
      if (r.code === ERROR_CODES.internal) problems.push(`${where}: ${r.stderr.split("\n")[0]}`);
      else if (r.code !== 0 && r.stdout.length > 0) problems.push(`${where}: printed and failed`);
    }
    assert.deepEqual(problems, []);
  });
});

// ---------------------------------------------------------------------------------
// Key files.

const KEY_LABEL = "MISSIVE SECRET KEY";
const armorKey = (m: CborMap) => armor(encodeCbor(m)).replaceAll("MISSIVE MESSAGE", KEY_LABEL);

/** The lines a key-file reader looks at: comments and blank lines are not part of it. */
const significant = (text: string) =>
  text.split(/\r?\n/).filter((l) => l.trim() !== "" && !l.startsWith("#")).join("\n");

describe("bad input: key files (readKeyFile)", () => {
  const never = () => Promise.reject(new Error("the passphrase must not be asked for"));

  it("the controls: plain and passphrase-protected files load", async () => {
    const { alice } = await getWorld();
    const plain = await writeKeyFile(nobleProvider, alice);
    assert.deepEqual(
      (await readKeyFile(nobleProvider, plain, never)).signingSeed,
      alice.signingSeed,
    );
    const locked = await writeKeyFile(nobleProvider, alice, { passphrase: "right", logN: 10 });
    const opened = await readKeyFile(nobleProvider, locked, () => Promise.resolve("right"));
    assert.deepEqual(opened.agreementKey, alice.agreementKey);
  });

  it("refuses every truncation and every flipped character with the `key` code", async () => {
    const { alice } = await getWorld();
    const text = await writeKeyFile(nobleProvider, alice);
    const problems: string[] = [];
    const check = async (what: string, mutated: string) => {
      // Changes inside comments or trailing blanks leave the file what it was.
      const benign = significant(mutated) === significant(text);
      try {
        const id = await readKeyFile(nobleProvider, mutated, never);
        if (!benign) problems.push(`${what}: ACCEPTED`);
        else if (toHex(id.signingSeed) !== toHex(alice.signingSeed)) {
          problems.push(`${what}: other key`);
        }
      } catch (e) {
        if (!(e instanceof MissiveError) || e.code !== "key") {
          problems.push(
            `${what}: ${(e as Error)?.constructor?.name} ${(e as MissiveError).code}: ${
              (e as Error).message
            }`,
          );
        }
      }
    };
    for (let n = 0; n < text.length; n++) await check(`cut to ${n}`, text.slice(0, n));
    for (let i = 0; i < text.length; i++) {
      for (const mask of [0x01, 0x20]) {
        const c = String.fromCharCode(text.charCodeAt(i) ^ mask);
        await check(`char ${i} ^ ${mask}`, text.slice(0, i) + c + text.slice(i + 1));
      }
    }
    assert.deepEqual(problems, []);
  });

  it("refuses a wrong passphrase, and flips of an encrypted file, with `key`", async () => {
    const { alice } = await getWorld();
    const locked = await writeKeyFile(nobleProvider, alice, { passphrase: "right", logN: 10 });
    const right = () => Promise.resolve("right");
    await refused(
      "wrong passphrase",
      () => readKeyFile(nobleProvider, locked, () => Promise.resolve("wrong")),
      "key",
    );
    await refused(
      "empty passphrase",
      () => readKeyFile(nobleProvider, locked, () => Promise.resolve("")),
      "key",
    );
    const body = locked.slice(locked.indexOf("-----BEGIN"));
    const start = locked.length - body.length;
    for (let i = start; i < locked.length; i++) {
      const mutated = locked.slice(0, i) + String.fromCharCode(locked.charCodeAt(i) ^ 0x01) +
        locked.slice(i + 1);
      if (significant(mutated) === significant(locked)) continue;
      await refused(
        `encrypted, char ${i} ^ 1`,
        () => readKeyFile(nobleProvider, mutated, right),
        "key",
      );
    }
  });

  it("refuses scrypt work factors outside 10..20 before asking for a passphrase", async () => {
    const { alice } = await getWorld();
    const locked = (logN: number) =>
      armorKey(
        cborMap([1, 1], [2, alice.card.bytes], [4, logN], [5, new Uint8Array(16)], [
          6,
          new Uint8Array(24),
        ], [7, new Uint8Array(80)]),
      );
    for (const logN of [MAX_SCRYPT_LOG_N + 1, 30, 64, 2 ** 31, Number.MAX_SAFE_INTEGER, 9, 0]) {
      let asked = false;
      const ask = () => {
        asked = true;
        return Promise.resolve("x");
      };
      await refused(`logN ${logN}`, () => readKeyFile(nobleProvider, locked(logN), ask), "key");
      assert.equal(asked, false, `logN ${logN}: asked for a passphrase (scrypt would run)`);
    }
  });

  it("refuses broken structure, mismatched secrets, wrong labels and oversize files with `key`", async () => {
    const { alice, bob } = await getWorld();
    const secret = concatBytes(alice.signingSeed, alice.agreementKey);
    const cases: [string, string][] = [
      ["empty", ""],
      ["garbage", "hello\n"],
      ["only comments", "# missive secret key\n"],
      ["a message armor", armor(encodeCbor(cborMap([1, 1], [2, alice.card.bytes], [3, secret])))],
      ["format 2", armorKey(cborMap([1, 2], [2, alice.card.bytes], [3, secret]))],
      ["no format", armorKey(cborMap([2, alice.card.bytes], [3, secret]))],
      ["no card", armorKey(cborMap([1, 1], [3, secret]))],
      ["a garbage card", armorKey(cborMap([1, 1], [2, hex("a0")], [3, secret]))],
      ["no secret and no passphrase fields", armorKey(cborMap([1, 1], [2, alice.card.bytes]))],
      ["a 63-byte secret", armorKey(cborMap([1, 1], [2, alice.card.bytes], [3, secret.slice(1)]))],
      [
        "Bob's secret under Alice's card",
        armorKey(
          cborMap([1, 1], [2, alice.card.bytes], [
            3,
            concatBytes(bob.signingSeed, bob.agreementKey),
          ]),
        ),
      ],
      [
        "swapped secret halves",
        armorKey(
          cborMap([1, 1], [2, alice.card.bytes], [
            3,
            concatBytes(alice.agreementKey, alice.signingSeed),
          ]),
        ),
      ],
      ["a CBOR array", armorKey(encodeCbor([1, 2]) as unknown as CborMap)],
      [
        "over 8 KiB of key data",
        armorKey(cborMap([1, 1], [2, alice.card.bytes], [3, secret], [9, new Uint8Array(9000)])),
      ],
      [
        "a huge file",
        "#".repeat(20_000) + "\n" + armorKey(cborMap([1, 1], [2, alice.card.bytes], [3, secret])),
      ],
    ];
    for (const [what, text] of cases) {
      await refused(what, () => readKeyFile(nobleProvider, text, never), "key");
    }
  });

  it("fails `open --key` with exit 9 and `card` with a typed exit, never printing", async () => {
    const { alice, sealed } = await getWorld();
    const good = await writeKeyFile(nobleProvider, alice);
    const locked = await writeKeyFile(nobleProvider, alice, { passphrase: "right", logN: 10 });
    await withFiles(async ({ dir, aliceCard }) => {
      const path = join(dir, "bad.key");
      const files: [string, string][] = [
        ["garbage", "-----BEGIN MISSIVE SECRET KEY-----\nnope\n-----END MISSIVE SECRET KEY-----\n"],
        ["a truncated file", good.slice(0, good.length - 40)],
        [
          "a flipped body",
          good.replace(
            /\n([A-Za-z0-9+/]{10})/,
            (_, s: string) => `\n${s.split("").reverse().join("")}`,
          ),
        ],
      ];
      for (const [what, text] of files) {
        writeFileSync(path, text);
        const args = ["open", "--key", path, "--trust", aliceCard];
        await cliRefuses(`open --key: ${what}`, args, { stdin: sealed["simple/2"] }, "key");
        await cliRefuses(`card: ${what}`, ["card", path], {}, ["malformed", "key"]);
      }
      writeFileSync(path, locked);
      const env = { MISSIVE_PASSPHRASE: "wrong" };
      const args = ["open", "--key", path, "--trust", aliceCard];
      await cliRefuses(
        "open --key: wrong passphrase",
        args,
        { stdin: sealed["simple/2"], env },
        "key",
      );
      writeFileSync(path, "#".repeat(70_000));
      await cliRefuses("open --key: a 70 kB file", args, { stdin: sealed["simple/2"] }, [
        "too-large",
        "key",
      ]);
    });
  });
});

// ---------------------------------------------------------------------------------
// STP payloads.

type StpName = "simple/1" | "simple/2" | "auth/1" | "plain/1";
const STP_NAMES: StpName[] = ["simple/1", "simple/2", "auth/1", "plain/1"];
/** The payload map's own limits per STP, as fields that break them. */
const OVERSIZE: Record<StpName, [string, number, CborValue][]> = {
  "simple/1": [],
  "simple/2": [
    ["a 17-byte nonce", 1, new Uint8Array(17)],
    ["a 15-byte nonce", 1, new Uint8Array(15)],
    ["a 255-character destination", 3, "b".repeat(243) + "@example.org"],
    ["a 33-byte hashed destination", 3, new Uint8Array(33)],
    ["a 17-byte recipient ID", 4, new Uint8Array(17)],
    ["a 33-byte ephemeral key", 5, new Uint8Array(33)],
    ["a 49-byte wrapped key", 6, new Uint8Array(49)],
    ["a 15-byte ciphertext", 7, new Uint8Array(15)],
    ["a 33-byte MAC", 8, new Uint8Array(33)],
  ],
  "auth/1": [
    ["a 17-byte nonce", 1, new Uint8Array(17)],
    ["a 255-character sender", 3, "a".repeat(243) + "@example.org"],
    ["a 17-byte sender ID", 4, new Uint8Array(17)],
    ["a 4097-byte card", 5, new Uint8Array(4097)],
    ["a 255-character destination", 6, "b".repeat(243) + "@example.org"],
    ["AMP type 65536", 7, 65536],
    ["a 65-byte signature", 10, new Uint8Array(65)],
  ],
  "plain/1": [
    ["a 17-byte nonce", 1, new Uint8Array(17)],
    ["AMP version 65536", 4, 65536],
    ["a 255-character sender", 6, "a".repeat(243) + "@example.org"],
    ["a 255-character destination", 7, "b".repeat(243) + "@example.org"],
  ],
};
OVERSIZE["simple/1"] = OVERSIZE["simple/2"];

/** Fields of the wrong type, per STP. */
const WRONG_TYPES: Record<StpName, [string, number, CborValue][]> = {
  "simple/1": [],
  "simple/2": [
    ["a text nonce", 1, "n"],
    ["a text timestamp", 2, "now"],
    ["a negative timestamp", 2, -1],
    ["an integer destination", 3, 7],
    ["a text ephemeral key", 5, "k"],
    ["a null MAC", 8, null],
  ],
  "auth/1": [
    ["a bytes sender", 3, new Uint8Array(4)],
    ["a text AMP type", 7, "1"],
    ["a text body", 9, "body"],
    ["an array signature", 10, [1]],
  ],
  "plain/1": [
    ["a text timestamp", 2, "now"],
    ["a text AMP type", 3, "1"],
    ["a text body", 5, "body"],
    ["a bytes sender", 6, new Uint8Array(3)],
  ],
};
WRONG_TYPES["simple/1"] = WRONG_TYPES["simple/2"];

const UNKNOWN_FIELD: Record<StpName, number> = {
  "simple/1": 9,
  "simple/2": 9,
  "auth/1": 11,
  "plain/1": 8,
};

/** Rewraps a changed payload under the original envelope header. */
function withPayload(envelope: Uint8Array, payload: Uint8Array): Bytes {
  return encodeEnvelope({ ...decodeEnvelope(envelope), payload });
}

function editPayload(envelope: Uint8Array, edit: (m: CborMap) => void): Bytes {
  const m = decodeCbor(decodeEnvelope(envelope).payload) as CborMap;
  edit(m);
  return withPayload(envelope, encodeCbor(m));
}

describe("bad input: STP payloads (simple v1, simple v2, auth, plain)", () => {
  for (const stp of STP_NAMES) {
    it(`${stp}: every truncation, garbage and non-maps are malformed`, async () => {
      const envelope = (await getWorld()).sealed[stp];
      assert.deepEqual((await openAsBob(envelope)).message, { text: PLAINTEXT }, "control");
      const payload = decodeEnvelope(envelope).payload;
      for (let n = 0; n < payload.length; n++) {
        await refused(
          `cut to ${n}`,
          () => openAsBob(withPayload(envelope, payload.subarray(0, n))),
          "malformed",
        );
      }
      const garbage: [string, Uint8Array][] = [
        ["random bytes", new Uint8Array(200).map((_, i) => (i * 131 + 7) & 0xff)],
        ["an array", encodeCbor([1, 2, 3])],
        ["an integer", encodeCbor(7)],
        ["an empty map", encodeCbor(new Map())],
        ["the payload twice", concatBytes(payload, payload)],
        [
          "a non-canonical copy",
          concatBytes(hex("b8"), new Uint8Array([payload[0] & 0x1f]), payload.subarray(1)),
        ],
      ];
      for (const [what, bytes] of garbage) {
        await refused(what, () => openAsBob(withPayload(envelope, bytes)), "malformed");
      }
    });

    it(`${stp}: every flipped byte of the payload fails typed, or (plain only) opens`, async () => {
      const envelope = (await getWorld()).sealed[stp];
      const payload = decodeEnvelope(envelope).payload;
      const problems: string[] = [];
      for (let i = 0; i < payload.length; i++) {
        const p = payload.slice();
        p[i] ^= 0x01;
        try {
          const o = await openAsBob(withPayload(envelope, p));
          // plain protects nothing; simple v1 does not authenticate its timestamp.
          const allowed = stp === "plain/1" ||
            (stp === "simple/1" &&
              JSON.stringify(o.message) === JSON.stringify({ text: PLAINTEXT }));
          if (!allowed) problems.push(`byte ${i}: OPENED to ${JSON.stringify(o.message)}`);
        } catch (e) {
          if (!(e instanceof MissiveError) || e.code === "internal") {
            problems.push(
              `byte ${i}: ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`,
            );
          }
        }
      }
      assert.deepEqual(problems, []);
    });

    it(`${stp}: oversize fields and fields of the wrong type are malformed`, async () => {
      const envelope = (await getWorld()).sealed[stp];
      for (const [what, key, value] of [...OVERSIZE[stp], ...WRONG_TYPES[stp]]) {
        const bad = editPayload(envelope, (m) => m.set(key, value));
        await refused(what, () => openAsBob(bad), "malformed");
      }
    });

    it(`${stp}: an unknown field is ${stp === "plain/1" ? "ignored (grease)" : "refused"}`, async () => {
      const envelope = (await getWorld()).sealed[stp];
      const bad = editPayload(envelope, (m) => m.set(UNKNOWN_FIELD[stp], "grease"));
      if (stp === "plain/1") assert.deepEqual((await openAsBob(bad)).message, { text: PLAINTEXT });
      else await refused("unknown field", () => openAsBob(bad), "malformed");
    });
  }

  it("simple: a plain destination without its recipient ID, or a hashed one with it, is malformed", async () => {
    const { sealed } = await getWorld();
    await refused(
      "no recipient ID",
      () => openAsBob(editPayload(sealed["simple/2"], (m) => m.delete(4))),
      "malformed",
    );
    const withId = editPayload(sealed["simple/2+hash"], (m) => m.set(4, new Uint8Array(16)));
    await refused("hashed + ID", () => openAsBob(withId), "malformed");
  });

  it("simple: opening without a key is a usage error, not a crash", async () => {
    const { sealed } = await getWorld();
    await refused(
      "no identity",
      () => openMessage(sealed["simple/2"], { registry: defaultRegistry() }),
      "usage",
    );
  });

  it("bad payloads fail `open` with exit 3 and no output", async () => {
    const { sealed } = await getWorld();
    await withFiles(async ({ openArgs }) => {
      for (const stp of STP_NAMES) {
        const payload = decodeEnvelope(sealed[stp]).payload;
        const inputs: [string, Uint8Array][] = [
          ["truncated", withPayload(sealed[stp], payload.subarray(0, payload.length - 1))],
          ["garbage", withPayload(sealed[stp], utf8("garbage"))],
          ["oversize nonce", editPayload(sealed[stp], (m) => m.set(1, new Uint8Array(17)))],
        ];
        for (const [what, input] of inputs) {
          await cliRefuses(`${stp}: ${what}`, openArgs, { stdin: input }, "malformed");
          await cliRefuses(
            `${stp}: ${what} (armor)`,
            openArgs,
            { stdin: armor(input) },
            "malformed",
          );
        }
      }
    });
  });

  it("plain: a timestamp beyond what a Date can show never crashes `open`", async () => {
    const { sealed } = await getWorld();
    await withFiles(async ({ openArgs }) => {
      const problems: string[] = [];
      for (const ts of [8.64e15 + 1, Number.MAX_SAFE_INTEGER]) {
        for (const json of [false, true]) {
          const input = editPayload(sealed["plain/1"], (m) => m.set(2, ts));
          const r = await runCli(json ? [...openArgs, "--json"] : openArgs, { stdin: input });
          const where = `timestamp ${ts}${
            json ? " --json" : ""
          }: exit ${r.code}, ${r.stdout.length} bytes out`;
          if (r.code === ERROR_CODES.internal) {
            problems.push(`${where}: internal error: ${r.stderr.split("\n")[0]}`);
          } else if (r.code !== 0 && r.stdout.length > 0) {
            problems.push(`${where}: printed and failed`);
          }
        }
      }
      assert.deepEqual(problems, []);
    });
  });
});

// ---------------------------------------------------------------------------------
// AMP bodies.

/** A plain envelope carrying `body` as AMP (type, version): no key stands in the way. */
function plainCarrying(ampType: number, ampVersion: number, body: Uint8Array): Bytes {
  const payload = encodeCbor(
    cborMap(
      [1, new Uint8Array(16).fill(9)],
      [2, 1_700_000_000_000],
      [3, ampType],
      [4, ampVersion],
      [5, body],
    ),
  );
  return encodeEnvelope({ protocolType: 7, protocolVersion: 1, payload });
}

/** Seals `body` verbatim under simple v2 as AMP (type, version), as a peer could. */
async function sealedCarrying(
  ampType: number,
  ampVersion: number,
  body: Uint8Array,
): Promise<Bytes> {
  const { alice, bob } = await getWorld();
  const registry = defaultRegistry();
  const amp = {
    ...registry.amp(1, 1),
    type: ampType,
    version: ampVersion,
    encode: () => body,
  } as AmpPlugin;
  return await sealMessage({
    stp: registry.find("stp", "simple/2"),
    amp,
    message: null,
    sender: alice,
    recipients: [bob.card],
  });
}

const textV2Body = (compressed: Uint8Array, nonce: Uint8Array = new Uint8Array(16)) =>
  encodeCbor(cborMap([1, compressed], [2, nonce]));
const gz = (data: Uint8Array) => new Uint8Array(gzipSync(data));

describe("bad input: AMP bodies (text v1, text v2, notification)", () => {
  const badUtf8: [string, string][] = [
    ["a lone 0xff", "ff"],
    ["a lone continuation byte", "80"],
    ["an overlong NUL", "c080"],
    ["an overlong slash", "e080af"],
    ["a UTF-16 surrogate", "eda080"],
    ["a code point beyond U+10FFFF", "f4908080"],
    ["a truncated 3-byte sequence", "e282"],
    ["a truncated sequence at the end", "6869e2"],
  ];
  const validGzip = gz(utf8("hello"));
  const textV2Cases: [string, Uint8Array, ErrorCode][] = [
    ["not CBOR", utf8("hello"), "malformed"],
    ["an array", encodeCbor([validGzip, new Uint8Array(16)]), "malformed"],
    ["no compressed field", encodeCbor(cborMap([2, new Uint8Array(16)])), "malformed"],
    ["no nonce", encodeCbor(cborMap([1, validGzip])), "malformed"],
    ["a 7-byte nonce", textV2Body(validGzip, new Uint8Array(7)), "malformed"],
    ["a 33-byte nonce", textV2Body(validGzip, new Uint8Array(33)), "malformed"],
    [
      "an unknown field",
      encodeCbor(cborMap([1, validGzip], [2, new Uint8Array(16)], [3, 0])),
      "malformed",
    ],
    [
      "text instead of gzip",
      encodeCbor(cborMap([1, "hello"], [2, new Uint8Array(16)])),
      "malformed",
    ],
    ["data that is not gzip", textV2Body(utf8("definitely not gzip")), "malformed"],
    ["empty data", textV2Body(new Uint8Array(0)), "malformed"],
    ["truncated gzip", textV2Body(validGzip.subarray(0, validGzip.length - 5)), "malformed"],
    [
      "gzip with a wrong CRC",
      textV2Body(concatBytes(validGzip.subarray(0, -8), hex("0000000005000000"))),
      "malformed",
    ],
    ["gzip of invalid UTF-8", textV2Body(gz(hex("c080ff"))), "malformed"],
    ["gzip of 16 MiB + 1 bytes", textV2Body(gz(new Uint8Array(MAX_TEXT_BYTES + 1))), "too-large"],
  ];
  const notificationCases: [string, CborValue][] = [
    ["not a map", ["missed-call", "Missed call"]],
    ["no kind", cborMap([2, "Missed call"])],
    ["no title", cborMap([1, "missed-call"])],
    ["an upper-case kind", cborMap([1, "Missed-Call"], [2, "t"])],
    ["a kind with a space", cborMap([1, "missed call"], [2, "t"])],
    ["a kind of 65 characters", cborMap([1, "k".repeat(65)], [2, "t"])],
    ["an empty title", cborMap([1, "k"], [2, ""])],
    ["a title of 257 characters", cborMap([1, "k"], [2, "t".repeat(257)])],
    ["a title as bytes", cborMap([1, "k"], [2, utf8("t")])],
    ["a body as an integer", cborMap([1, "k"], [2, "t"], [3, 5])],
    ["a body over 64 KiB", cborMap([1, "k"], [2, "t"], [3, "b".repeat(64 * 1024 + 1)])],
    ["a URI over 2048 characters", cborMap([1, "k"], [2, "t"], [4, "u".repeat(2049)])],
  ];

  it("the controls decode", () => {
    assert.deepEqual(textV1.decode(utf8("héllo ✓")), { text: "héllo ✓" });
    assert.equal(textV2.decode(textV2Body(validGzip)).text, "hello");
    assert.deepEqual(notificationV1.decode(encodeCbor(cborMap([1, "k"], [2, "t"]))), {
      kind: "k",
      title: "t",
    });
  });

  it(`text v1: ${badUtf8.length} invalid UTF-8 sequences are malformed, over 16 MiB too-large`, async () => {
    for (const [what, h] of badUtf8) {
      await refused(what, () => textV1.decode(hex(h)), "malformed");
      await refused(`${what} (plain)`, () => openAsBob(plainCarrying(1, 1, hex(h))), "malformed");
    }
    await refused(
      "16 MiB + 1",
      () => textV1.decode(new Uint8Array(MAX_TEXT_BYTES + 1)),
      "too-large",
    );
    await refused(
      "16 MiB + 1 (plain)",
      () => openAsBob(plainCarrying(1, 1, new Uint8Array(MAX_TEXT_BYTES + 1))),
      "too-large",
    );
  });

  it(`text v2: ${textV2Cases.length} broken bodies give typed errors`, async () => {
    for (const [what, body, code] of textV2Cases) {
      await refused(what, () => textV2.decode(body), code);
      await refused(`${what} (plain)`, () => openAsBob(plainCarrying(1, 2, body)), code);
    }
  });

  it("text v2: a gzip bomb of 4.5 GiB is refused as too-large without inflating it", async () => {
    // 72 gzip members of 64 MiB of zeros each: 4.5 GiB out of ~4.7 MB in, more than any
    // buffer can hold, so only a decoder that stops at the cap can answer at all.
    const member = gz(new Uint8Array(64 * 1024 * 1024));
    const bomb = textV2Body(concatBytes(...Array.from({ length: 72 }, () => member)));
    assert.ok(bomb.length < 8 * 1024 * 1024);
    const before = process.memoryUsage().rss;
    await refused("bomb", () => textV2.decode(bomb), "too-large");
    const grown = process.memoryUsage().rss - before;
    assert.ok(grown < 512 * 1024 * 1024, `decoding the bomb grew the process by ${grown} bytes`);
    await refused("bomb (plain)", () => openAsBob(plainCarrying(1, 2, bomb)), "too-large");
    await refused(
      "bomb (simple v2)",
      async () => openAsBob(await sealedCarrying(1, 2, bomb)),
      "too-large",
    );
  });

  it(`notification: ${notificationCases.length} bad field sets are malformed`, async () => {
    for (const [what, value] of notificationCases) {
      const body = encodeCbor(value);
      await refused(what, () => notificationV1.decode(body), "malformed");
      await refused(`${what} (plain)`, () => openAsBob(plainCarrying(2, 1, body)), "malformed");
    }
    await refused("garbage", () => notificationV1.decode(utf8("garbage")), "malformed");
  });

  it("bad bodies inside authentic simple v2 messages fail `open` with exit 3 and no output", async () => {
    await withFiles(async ({ openArgs }) => {
      const inputs: [string, Bytes][] = [
        ["text v1, invalid UTF-8", await sealedCarrying(1, 1, hex("c080"))],
        ["text v2, not gzip", await sealedCarrying(1, 2, textV2Body(utf8("nope")))],
        [
          "text v2, over 16 MiB",
          await sealedCarrying(1, 2, textV2Body(gz(new Uint8Array(MAX_TEXT_BYTES + 1)))),
        ],
        ["notification, no title", await sealedCarrying(2, 1, encodeCbor(cborMap([1, "k"])))],
      ];
      for (const [what, input] of inputs) {
        await refused(what, () => openAsBob(input), ["malformed", "too-large"]);
        await cliRefuses(what, openArgs, { stdin: input }, ["malformed", "too-large"]);
        await cliRefuses(`${what} --json`, [...openArgs, "--json"], { stdin: input }, [
          "malformed",
          "too-large",
        ]);
      }
      // An unknown AMP pair is its own, named refusal.
      const unknown = await sealedCarrying(1, 9, utf8("x"));
      await cliRefuses("unknown AMP", openArgs, { stdin: unknown }, "unknown-protocol");
    });
  });
});

// ---------------------------------------------------------------------------------
// Config file and replay database.

describe("bad input: config file (MISSIVE_CONFIG)", () => {
  it("refuses bad JSON, wrong types and non-object documents with a usage error", async () => {
    const { sealed } = await getWorld();
    const { dir, cleanup } = tempDir("missive-config-");
    try {
      const path = join(dir, "missive.json");
      const env = { MISSIVE_CONFIG: path };
      writeFileSync(path, JSON.stringify({ plugins: [] }));
      const ok = await runCli(["inspect"], { stdin: sealed["auth/1"], env });
      assert.equal(ok.code, 0, `control: ${ok.stderr}`);
      const cases: [string, string | Uint8Array][] = [
        ["empty", ""],
        ["truncated JSON", '{"plugins": ['],
        ["not JSON", "plugins = []"],
        ["a trailing comma", '{"plugins": [],}'],
        ["invalid UTF-8", hex("7b22706cff7d")],
        ["plugins as a string", '{"plugins": "./x.ts"}'],
        ["plugins as an object", '{"plugins": {"a": "./x.ts"}}'],
        ["plugins with a number", '{"plugins": [1]}'],
        ["plugins as null", '{"plugins": null}'],
        ["a JSON array", "[]"],
        ["a JSON number", "42"],
        ["a JSON string", '"plugins"'],
        ["JSON null", "null"],
        ["over 1 MiB", `{"plugins": [], "pad": "${"x".repeat(1 << 20)}"}`],
      ];
      const problems: string[] = [];
      for (const [what, text] of cases) {
        writeFileSync(path, text);
        for (const args of [["inspect"], ["open"]]) {
          const r = await runCli(args, { stdin: sealed["auth/1"], env });
          const where = `${args[0]}: ${what}: exit ${r.code}`;
          if (r.code !== ERROR_CODES.usage) {
            problems.push(`${where}, expected ${ERROR_CODES.usage}: ${r.stderr.trim()}`);
          }
          if (r.stdout.length !== 0) problems.push(`${where}: ${r.stdout.length} bytes on stdout`);
        }
      }
      assert.deepEqual(problems, []);
      await cliRefuses("a missing config", ["inspect"], {
        stdin: sealed["auth/1"],
        env: { MISSIVE_CONFIG: join(dir, "nope.json") },
      }, ["usage", "io"]);
      mkdirSync(join(dir, "folder.json"));
      await cliRefuses("a folder as config", ["inspect"], {
        stdin: sealed["auth/1"],
        env: { MISSIVE_CONFIG: join(dir, "folder.json") },
      }, ["usage", "io"]);
      writeFileSync(path, JSON.stringify({ plugins: ["./does-not-exist.ts"] }));
      await cliRefuses("a missing plugin", ["inspect"], { stdin: sealed["auth/1"], env }, "plugin");
    } finally {
      cleanup();
    }
  });
});

describe("bad input: replay database (--replay-db)", () => {
  it("refuses a corrupt database before printing anything", async () => {
    const { sealed } = await getWorld();
    await withFiles(async ({ dir, openArgs }) => {
      const db = join(dir, "replay.db");
      // Control: a fresh database accepts the message once, then refuses the replay.
      const first = await runCli([...openArgs, "--replay-db", db], { stdin: sealed["simple/2"] });
      assert.equal(first.code, 0, first.stderr);
      assert.equal(readFileSync(db).subarray(0, 15).toString(), "SQLite format 3");
      await cliRefuses(
        "replay",
        [...openArgs, "--replay-db", db],
        { stdin: sealed["simple/2"] },
        "replay",
      );
      // --replay-db is a SQLite file: anything else is refused as unusable.
      const corrupt: [string, string | Uint8Array][] = [
        ["garbage", "garbage\n"],
        ["an old text replay db", "1800000000000\t616c696365\t00ff\n"],
        ["binary bytes", hex("00ff00ff0a")],
      ];
      for (const [what, content] of corrupt) {
        for (const side of ["-wal", "-shm"]) rmSync(db + side, { force: true });
        writeFileSync(db, content);
        await refused(what, () => new SqliteReplayCache(db), "io");
        const args = [...openArgs, "--replay-db", db];
        await cliRefuses(`open: ${what}`, args, { stdin: sealed["simple/2"] }, "io");
      }
      const folder = join(dir, "folder.db");
      mkdirSync(folder);
      const args = [...openArgs, "--replay-db", folder];
      await cliRefuses("a folder", args, { stdin: sealed["simple/2"] }, ["io", "malformed"]);
    });
  });
});

// ---------------------------------------------------------------------------------
// Readers whose source reports no size (pipes, devices).

/**
 * Feeds `bytes` zero bytes through a named pipe with `head` while `run` reads it. A reader
 * that keeps to its cap stops early and closes the pipe, and `head` dies of SIGPIPE; one
 * that buffers everything lets `head` finish. Pipes and devices report size 0 to stat(),
 * so a check on the size alone lets /dev/zero exhaust memory.
 */
async function throughFifo(
  bytes: number,
  run: (fifo: string) => Promise<void>,
): Promise<{ completed: boolean }> {
  const { dir, cleanup } = tempDir("missive-fifo-");
  try {
    const fifo = join(dir, "pipe");
    const made = spawnSync("mkfifo", [fifo]);
    assert.equal(made.status, 0, "mkfifo failed");
    const writer = spawn("sh", ["-c", `head -c ${bytes} /dev/zero > "$1"`, "sh", fifo], {
      stdio: "ignore",
    });
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
      writer.on("exit", (code, signal) => resolve({ code, signal }))
    );
    await run(fifo);
    // If the reader closed early, the writer is dying of SIGPIPE now: wait for it.
    const { code, signal } = await exited;
    return { completed: code === 0 && signal === null };
  } finally {
    cleanup();
  }
}

describe("bad input: files that report no size (named pipes)", () => {
  const cases: [string, number, (fifo: string, env: Record<string, string>) => string[]][] = [
    ["open --key PIPE (64 KiB cap)", 16 << 20, (fifo) => ["open", "--key", fifo]],
    ["card PIPE (64 KiB cap)", 16 << 20, (fifo) => ["card", fifo]],
    [
      "MISSIVE_CONFIG=PIPE (1 MiB cap)",
      16 << 20,
      (fifo, env) => (env.MISSIVE_CONFIG = fifo, ["inspect"]),
    ],
  ];
  for (const [what, size, argsFor] of cases) {
    it(`${what}: stops reading at the cap`, async () => {
      const { sealed } = await getWorld();
      let result: Awaited<ReturnType<typeof runCli>> | undefined;
      const { completed } = await throughFifo(size, async (fifo) => {
        const env: Record<string, string> = {};
        const args = argsFor(fifo, env);
        result = await runCli(args, { stdin: sealed["auth/1"], env });
      });
      assert.ok(result);
      assert.notEqual(result.code, 0, result.stderr);
      assert.notEqual(result.code, ERROR_CODES.internal, result.stderr);
      assert.equal(result.stdout.length, 0);
      assert.equal(
        completed,
        false,
        `the reader took all ${size} bytes of the pipe before refusing it`,
      );
    });
  }
});
