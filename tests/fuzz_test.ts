/**
 * Fuzzing the receive path (DESIGN §9): more than 10,000 random and mutated inputs go
 * to `openMessage` and to the inspect path (`unwrapAnyForm` → `decodeEnvelope`), and a
 * sample through the CLI in-process. The only exception allowed out of the library is
 * a MissiveError; anything else is recorded with its input (hex) and fails the test.
 * Inputs come from a seeded xorshift generator (test data, not secrets), so a failure
 * reproduces exactly.
 *
 * Families: random bytes; the envelope magic followed by random bytes; bit flips, byte
 * insertions, deletions, overwrites, truncations and splices of valid messages of every
 * STP × AMP in binary, armor and line form; hand-built CBOR garbage (non-canonical
 * heads, huge claimed lengths, deep nesting, tags, floats, simple values, indefinite
 * lengths, duplicate keys, stray breaks); valid deterministic CBOR of wrong shapes as
 * envelopes, STP payloads and (through `plain`, which authenticates nothing) AMP bodies.
 * @module
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { describe, it } from "node:test";
import { type Bytes, concatBytes, toHex, utf8 } from "../core/bytes.ts";
import { type CborMap, type CborValue, decodeCbor, encodeCbor } from "../core/cbor.ts";
import { type CryptoProvider, nobleProvider, webcryptoProvider } from "../crypto/mod.ts";
import { armor, decodeEnvelope, encodeEnvelope, toLine, unwrapAnyForm } from "../envelope/mod.ts";
import { MissiveError } from "../core/errors.ts";
import { cardToText } from "../keys/card.ts";
import { type Identity, writeKeyFile } from "../keys/identity.ts";
import { defaultRegistry, type OpenedMessage, openMessage, sealMessage } from "../mod.ts";
import { MemoryReplayCache } from "../plugin/replay.ts";
import { fixedIdentity, runCli, tempDir } from "./helpers.ts";

/** Fixed seeds: change one to explore, keep them fixed in the tree to reproduce. */
const SEEDS = {
  corpus: 0x5eed_0001,
  random: 0x5eed_0002,
  mutate: 0x5eed_0003,
  cbor: 0x5eed_0004,
  shapes: 0x5eed_0005,
  sealed: 0x5eed_0006,
};
/** Inputs per family; their sum must exceed 10,000 (checked at the end). */
const COUNTS = {
  random: 1500,
  magic: 1000,
  mutate: 4500,
  text: 1000,
  cbor: 2000,
  shapes: 2000,
  sealed: 600,
};
const FIXED_NOW = 1_700_000_000_000;
/** Every CLI_SAMPLE-th input also runs through `missive open` and `missive inspect`. */
const CLI_SAMPLE = 25;

/** A small xorshift32 generator: deterministic test data, never secrets. */
function prng(seed: number) {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
  const int = (n: number) => next() % n;
  return {
    int,
    chance: (p: number) => next() / 0x1_0000_0000 < p,
    pick: <T>(items: readonly T[]): T => items[int(items.length)],
    bytes: (n: number): Bytes => {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = next() & 0xff;
      return out;
    },
  };
}
type Prng = ReturnType<typeof prng>;

// ---------------------------------------------------------------------------------
// The corpus: a valid message of every STP × AMP, deterministic bytes.

interface Parties {
  alice: Identity;
  bob: Identity;
}

interface Sample {
  name: string;
  stp: string;
  bytes: Bytes;
}

const registry = defaultRegistry();
const AMP_MESSAGES: [string, unknown][] = [
  ["text/1", { text: "hello bob: fuzz corpus ✓" }],
  ["text/2", { text: "hello bob, compressed ".repeat(4), nonce: new Uint8Array(16).fill(7) }],
  ["notification/1", {
    kind: "missed-call",
    title: "Missed call",
    body: "from alice",
    uri: "sip:alice@example.org",
  }],
];
const STP_SPECS: [string, boolean][] = [
  ["simple/1", false],
  ["simple/2", false],
  ["simple/2", true],
  ["auth/1", false],
  ["plain/1", false],
];

async function makeCorpus(p: Parties): Promise<Sample[]> {
  const rnd = prng(SEEDS.corpus);
  const out: Sample[] = [];
  for (const [stp, hashDestination] of STP_SPECS) {
    for (const [amp, message] of AMP_MESSAGES) {
      for (const sequenceNumber of [undefined, 3]) {
        const bytes = await sealMessage({
          stp: registry.find("stp", stp),
          amp: registry.find("amp", amp),
          message,
          sender: p.alice,
          recipients: [p.bob.card],
          hashDestination,
          sequenceNumber,
          includeCard: sequenceNumber === undefined,
          now: FIXED_NOW,
          random: (n) => rnd.bytes(n),
          crypto: nobleProvider,
        });
        const name = `${stp}${hashDestination ? "+hash" : ""}/${amp}/seq=${sequenceNumber}`;
        out.push({ name, stp, bytes });
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------
// Running one input through every target and recording what escapes.

interface Finding {
  target: string;
  thrown: string;
  hex: string;
}

interface Harness {
  parties: Parties;
  corpus: Sample[];
  findings: Finding[];
  /** Altered protected messages that opened saying what no corpus message says. */
  forgeries: string[];
  /** `content()` of every corpus message, with and without its timestamp. */
  corpusContent: Set<string>;
  /** How often each (target, code, message prefix) was seen: proof the fuzz went deep. */
  reached: Map<string, number>;
  count: number;
  /** `missive open` with Bob's key file and Alice's card. */
  cliOpenArgs: string[];
  cleanup: () => void;
}

const PROVIDERS: (CryptoProvider | undefined)[] = [undefined, nobleProvider, webcryptoProvider];
const hexOf = (
  b: Uint8Array,
) => (b.length > 1500 ? `${toHex(b.subarray(0, 1500))}…(${b.length} bytes)` : toHex(b));

function record(h: Harness, target: string, e: unknown, input: Uint8Array): void {
  if (e instanceof MissiveError) {
    // Which layer refused it: the code and the message's prefix ("simple payload", …).
    const where = `${target} ${e.code} ${e.message.split(":")[0]}`;
    h.reached.set(where, (h.reached.get(where) ?? 0) + 1);
    return;
  }
  const thrown = `${(e as Error)?.constructor?.name ?? typeof e}: ${
    (e as Error)?.message ?? String(e)
  }`;
  h.findings.push({ target, thrown, hex: hexOf(input) });
}

/** What an opened message says, for comparing against the corpus. */
function content(o: OpenedMessage, withTimestamp: boolean): string {
  const { inner, header } = o;
  return JSON.stringify([
    o.stp.name,
    o.stp.version,
    header.sequenceNumber ?? null,
    toHex(inner.nonce),
    withTimestamp ? inner.timestamp : null,
    inner.ampType,
    inner.ampVersion,
    toHex(inner.body),
    inner.sender ?? null,
    inner.destination ?? null,
    o.sender?.verified ?? null,
  ]);
}

/**
 * An altered protected message that opens must say exactly what a corpus message says
 * (simple v1: all but the timestamp, which v1 does not authenticate). Bytes may differ
 * only where nothing that is reported depends on them.
 */
function checkNoForgery(h: Harness, input: Uint8Array, opened: OpenedMessage) {
  if (opened.stp.name === "plain") return;
  const v1 = opened.stp.name === "simple" && opened.stp.version === 1;
  if (h.corpusContent.has(content(opened, !v1))) return;
  h.forgeries.push(`${opened.stp.name} v${opened.stp.version}: ${hexOf(input)}`);
}

/** Runs one input through every target; `authentic` inputs were sealed by Alice herself. */
async function feed(h: Harness, input: Uint8Array, authentic = false): Promise<void> {
  const n = h.count++;
  // The inspect path: any form, then the envelope.
  try {
    decodeEnvelope(unwrapAnyForm(input));
  } catch (e) {
    record(h, "unwrapAnyForm+decodeEnvelope", e, input);
  }
  try {
    decodeEnvelope(input);
  } catch (e) {
    record(h, "decodeEnvelope", e, input);
  }
  // The open path, through each crypto provider in turn, a third with a replay cache.
  let frame: Uint8Array | undefined;
  try {
    frame = unwrapAnyForm(input);
  } catch (e) {
    record(h, "unwrapAnyForm", e, input);
  }
  if (frame) {
    try {
      const opened = await openMessage(frame, {
        registry,
        identity: h.parties.bob,
        trusted: [h.parties.alice.card],
        crypto: PROVIDERS[n % PROVIDERS.length],
        replay: n % 3 === 2 ? new MemoryReplayCache({ now: () => FIXED_NOW }) : undefined,
      });
      if (!authentic) checkNoForgery(h, input, opened);
    } catch (e) {
      record(h, "openMessage", e, input);
    }
  }
  if (n % CLI_SAMPLE === 0) await feedCli(h, input);
}

/** The CLI must never exit 1 (internal error) and never print on failure. */
async function feedCli(h: Harness, input: Uint8Array): Promise<void> {
  for (const args of [h.cliOpenArgs, ["inspect"]]) {
    const r = await runCli(args, { stdin: input });
    if (r.code === 1 || (r.code !== 0 && r.stdout.length > 0)) {
      h.findings.push({
        target: `cli ${args[0]}`,
        thrown: `exit ${r.code}, ${r.stdout.length} bytes on stdout: ${r.stderr.slice(0, 200)}`,
        hex: hexOf(input),
      });
    }
  }
}

// ---------------------------------------------------------------------------------
// Generators.

/** Mutations of one valid input: flips, inserts, deletes, overwrites, cuts, splices. */
function mutate(r: Prng, input: Uint8Array, other: Uint8Array): Uint8Array {
  let b: Uint8Array = input.slice();
  const rounds = 1 + r.int(3);
  for (let k = 0; k < rounds; k++) {
    const at = r.int(b.length + 1);
    switch (r.int(8)) {
      case 0: // bit flip
        if (b.length) b[at % b.length] ^= 1 << r.int(8);
        break;
      case 1: // byte overwrite with an interesting value
        if (b.length) {
          b[at % b.length] = r.pick([
            0x00,
            0xff,
            0x7f,
            0x80,
            0x17,
            0x18,
            0x1b,
            0x5b,
            0x9f,
            0xbf,
            0xf7,
            r.int(256),
          ]);
        }
        break;
      case 2: // insert bytes
        b = concatBytes(b.subarray(0, at), r.bytes(1 + r.int(4)), b.subarray(at));
        break;
      case 3: // delete bytes
        b = concatBytes(b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + r.int(8))));
        break;
      case 4: // truncate
        b = b.slice(0, at);
        break;
      case 5: // splice: this input's head, another's tail
        b = concatBytes(b.subarray(0, at), other.subarray(r.int(other.length + 1)));
        break;
      case 6: // duplicate a range
        b = concatBytes(b.subarray(0, at), b.subarray(at, at + 1 + r.int(32)), b.subarray(at));
        break;
      default: // append garbage
        b = concatBytes(b, r.bytes(1 + r.int(16)));
    }
  }
  return b;
}

/** Hand-built CBOR, canonical or not: the decoder must refuse all that is not exact. */
function garbageCbor(r: Prng, depth: number): Uint8Array {
  const head = (major: number, n: number, sloppy = r.chance(0.1)): Uint8Array => {
    const m = major << 5;
    if (n < 24 && !sloppy) return new Uint8Array([m | n]);
    if (n < 0x100 && !(sloppy && r.chance(0.5))) return new Uint8Array([m | 24, n]);
    if (n < 0x10000 && !(sloppy && r.chance(0.5))) {
      return new Uint8Array([m | 25, n >> 8, n & 0xff]);
    }
    if (n < 0x1_0000_0000 && !(sloppy && r.chance(0.5))) {
      return new Uint8Array([m | 26, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
    }
    return concatBytes(new Uint8Array([m | 27]), u32(Math.floor(n / 0x1_0000_0000)), u32(n >>> 0));
  };
  const items = (count: number) => {
    const parts: Uint8Array[] = [];
    for (let i = 0; i < count; i++) parts.push(garbageCbor(r, depth + 1));
    return parts;
  };
  const small = () =>
    r.pick([0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 16, 23, 24, 32, 64, 255, 256, r.int(70000)]);
  const deep = depth > 6;
  switch (r.int(deep ? 6 : 15)) {
    case 0:
      return head(0, small());
    case 1:
      return head(1, small());
    case 2:
      return concatBytes(head(2, small() % 80), r.bytes(r.int(80)));
    case 3: { // text, often valid UTF-8, sometimes not
      const body = r.chance(0.7) ? utf8("ab€\u{1F600}".slice(0, r.int(6))) : r.bytes(r.int(6));
      return concatBytes(head(3, body.length), body);
    }
    case 4: // floats, simple values, stray break
      return r.pick([
        new Uint8Array([0xf9, 0x3c, 0x00]),
        new Uint8Array([0xfa, 0x47, 0xc3, 0x50, 0x00]),
        new Uint8Array([0xfb, 0, 0, 0, 0, 0, 0, 0, 0]),
        new Uint8Array([0xfb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0]),
        new Uint8Array([0xf4]),
        new Uint8Array([0xf5]),
        new Uint8Array([0xf6]),
        new Uint8Array([0xf7]),
        new Uint8Array([0xf0 + r.int(4)]),
        new Uint8Array([0xf8, r.int(256)]),
        new Uint8Array([0xff]),
        new Uint8Array([0x1c + r.int(3)]), // reserved additional info
      ]);
    case 5: // huge claimed lengths with little or no data behind them
      return concatBytes(
        new Uint8Array([r.pick([0x5a, 0x5b, 0x7a, 0x7b, 0x9a, 0x9b, 0xba, 0xbb])]),
        r.pick([u32(0xffff_ffff), u32(0x7fff_ffff), u32(0x0800_0000), u32(r.int(0x1000_0000))]),
        r.chance(0.5) ? u32(r.int(0x1_0000_0000)) : new Uint8Array(),
        r.bytes(r.int(8)),
      );
    case 6:
    case 7: { // arrays, definite or indefinite
      const parts = items(r.int(5));
      return r.chance(0.2)
        ? concatBytes(new Uint8Array([0x9f]), ...parts, new Uint8Array(r.chance(0.9) ? [0xff] : []))
        : concatBytes(head(4, parts.length), ...parts);
    }
    case 8:
    case 9: { // maps with integer keys near the real field numbers, duplicates, any order
      const n = r.int(6);
      const parts: Uint8Array[] = [];
      for (let i = 0; i < n; i++) {
        parts.push(r.chance(0.8) ? head(0, r.int(12)) : garbageCbor(r, depth + 1));
        parts.push(garbageCbor(r, depth + 1));
      }
      return r.chance(0.15)
        ? concatBytes(new Uint8Array([0xbf]), ...parts, new Uint8Array([0xff]))
        : concatBytes(head(5, r.chance(0.1) ? n + 1 : n), ...parts);
    }
    case 10: { // tags, including ones cbor-x gives meaning to
      const tag = r.pick([
        0,
        1,
        2,
        3,
        4,
        5,
        21,
        24,
        25,
        28,
        29,
        32,
        51,
        64,
        72,
        105,
        256,
        258,
        259,
        55799,
        57344,
        r.int(70000),
      ]);
      return concatBytes(head(6, tag), garbageCbor(r, depth + 1));
    }
    case 11: // deep nesting
      return concatBytes(
        new Uint8Array(1 + r.int(3000)).fill(r.pick([0x81, 0x9f, 0xa1, 0xc6, 0xd8])),
        new Uint8Array([0x00]),
      );
    case 12: // indefinite strings (not in the data model)
      return concatBytes(
        new Uint8Array([r.pick([0x5f, 0x7f])]),
        ...items(r.int(3)),
        new Uint8Array([0xff]),
      );
    case 13: // a valid deterministic item with trailing bytes
      return concatBytes(encodeCbor(shape(r, 0)), r.bytes(1 + r.int(4)));
    default: // a valid deterministic item of a random shape
      return encodeCbor(shape(r, 0));
  }
}

function u32(n: number): Uint8Array {
  return new Uint8Array([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
}

/** A random value of the data model: the right encoding, the wrong shape. */
function shape(r: Prng, depth: number): CborValue {
  switch (r.int(depth > 3 ? 6 : 8)) {
    case 0:
      return r.pick([
        0,
        1,
        2,
        7,
        16,
        23,
        24,
        255,
        0xffff,
        0x10000,
        2 ** 32,
        Number.MAX_SAFE_INTEGER,
        -1,
        -(2 ** 40),
        r.int(100),
      ]);
    case 1:
      return r.bytes(
        r.pick([0, 1, 15, 16, 17, 24, 31, 32, 33, 47, 48, 49, 63, 64, 65, r.int(300)]),
      );
    case 2:
      return r.pick([
        "",
        "a",
        "alice@example.org",
        "bob@example.org",
        "BOB@example.org",
        "x".repeat(300),
        "é\u0000",
      ]);
    case 3:
      return r.chance(0.5);
    case 4:
      return null;
    case 5:
      return Array.from({ length: r.int(4) }, () => shape(r, depth + 1));
    default: {
      const m: CborMap = new Map();
      for (let i = r.int(6); i > 0; i--) {
        m.set(r.chance(0.85) ? r.int(12) : r.pick(["a", -1, 100]), shape(r, depth + 1));
      }
      return m;
    }
  }
}

/** A corpus payload with some fields replaced, removed or added. */
function reshapePayload(r: Prng, payload: Uint8Array): Uint8Array {
  const map = new Map(decodeCbor(payload) as CborMap);
  const keys = [...map.keys()];
  for (let k = 1 + r.int(3); k > 0; k--) {
    const key = r.chance(0.8) ? r.pick(keys) : r.int(14);
    if (r.chance(0.2)) map.delete(key);
    else map.set(key, shape(r, 1));
  }
  return encodeCbor(map);
}

/** An AMP body of the right kind or not, carried by `plain` so no MAC stops it. */
function ampBody(r: Prng): { ampType: number; ampVersion: number; body: Uint8Array } {
  const [ampType, ampVersion] = r.pick([[1, 1], [1, 2], [2, 1], [1, 3], [9, 1]] as const);
  let body: Uint8Array;
  switch (r.int(5)) {
    case 0:
      body = r.bytes(r.int(64));
      break;
    case 1: { // text v2 shape: gzip of random bytes (often invalid UTF-8), maybe cut
      const gz = new Uint8Array(
        gzipSync(r.chance(0.5) ? r.bytes(r.int(200)) : utf8("ok ".repeat(r.int(50)))),
      );
      const data = r.chance(0.3) ? gz.subarray(0, r.int(gz.length)) : gz;
      const m: CborMap = new Map([[1, data], [2, r.bytes(r.pick([7, 8, 16, 32, 33]))]]);
      if (r.chance(0.1)) m.set(3, 1);
      body = encodeCbor(m);
      break;
    }
    case 2: { // notification shape with random field values
      const m: CborMap = new Map();
      for (const k of [1, 2, 3, 4]) {
        if (r.chance(0.8)) {
          m.set(
            k,
            r.chance(0.7)
              ? r.pick(["x", "Missed call", "Bad Kind", "", "é".repeat(300)])
              : shape(r, 1),
          );
        }
      }
      body = encodeCbor(m);
      break;
    }
    case 3:
      body = garbageCbor(r, 0);
      break;
    default:
      body = encodeCbor(shape(r, 0));
  }
  return { ampType, ampVersion, body };
}

function plainEnvelope(r: Prng): Uint8Array {
  const { ampType, ampVersion, body } = ampBody(r);
  const m: CborMap = new Map<number, CborValue>([
    [1, r.bytes(16)],
    [2, r.chance(0.8) ? FIXED_NOW : shape(r, 1)],
    [3, ampType],
    [4, ampVersion],
    [5, body],
  ]);
  if (r.chance(0.5)) m.set(6, r.pick(["alice@example.org", "", "x".repeat(300)]));
  if (r.chance(0.3)) m.set(7, "bob@example.org");
  if (r.chance(0.2)) m.set(8 + r.int(4), shape(r, 1));
  return encodeEnvelope({ protocolType: 7, protocolVersion: 1, payload: encodeCbor(m) });
}

// ---------------------------------------------------------------------------------

let harness: Harness | undefined;

async function setup(): Promise<Harness> {
  if (harness) return harness;
  const alice = await fixedIdentity("alice@example.org", 1);
  const bob = await fixedIdentity("bob@example.org", 3);
  const parties = { alice, bob };
  const corpus = await makeCorpus(parties);
  // Every corpus message opens: the fuzzing starts from valid ground.
  const corpusContent = new Set<string>();
  for (const s of corpus) {
    const o = await openMessage(s.bytes, { registry, identity: bob, trusted: [alice.card] });
    assert.equal(`${o.stp.name}/${o.stp.version}`, s.stp, s.name);
    corpusContent.add(content(o, true)).add(content(o, false));
  }
  const { dir, cleanup } = tempDir("missive-fuzz-");
  writeFileSync(join(dir, "bob.key"), await writeKeyFile(nobleProvider, bob), { mode: 0o600 });
  const cliOpenArgs = ["open", "--key", join(dir, "bob.key"), "--trust", cardToText(alice.card)];
  harness = {
    parties,
    corpus,
    findings: [],
    forgeries: [],
    corpusContent,
    reached: new Map(),
    count: 0,
    cliOpenArgs,
    cleanup,
  };
  return harness;
}

function report(h: Harness, before: number, family: string): void {
  const listing = h.findings.slice(0, 25).map((f) =>
    `${f.target}: ${f.thrown}\n    input ${f.hex}`
  );
  assert.deepEqual(
    listing,
    [],
    `${family}: ${h.findings.length} inputs escaped as non-MissiveError`,
  );
  assert.deepEqual(h.forgeries, [], `${family}: altered protected messages opened`);
  assert.ok(h.count > before, `${family}: ran no inputs`);
}

describe("fuzz: only MissiveError escapes the receive path", () => {
  it(`${COUNTS.random} random inputs`, async () => {
    const h = await setup();
    const before = h.count;
    const r = prng(SEEDS.random);
    for (let i = 0; i < COUNTS.random; i++) {
      const input = r.bytes(r.pick([0, 1, 2, 3, 4, 8, 16, 64, r.int(700)]));
      await feed(h, input);
    }
    report(h, before, "random");
    assert.equal(h.count - before, COUNTS.random);
  });

  it(`${COUNTS.magic} inputs that start like an envelope`, async () => {
    const h = await setup();
    const before = h.count;
    const r = prng(SEEDS.random ^ 0xabcd);
    const magic = new Uint8Array([0xd9, 0xd9, 0xf7]);
    for (let i = 0; i < COUNTS.magic; i++) {
      const rest = i % 2 === 0
        ? r.bytes(r.int(300))
        : concatBytes(new Uint8Array([0xa0 + r.int(6)]), garbageCbor(r, 0));
      await feed(h, concatBytes(magic, rest));
    }
    report(h, before, "magic");
  });

  it(`${COUNTS.mutate} mutations of valid binary messages of every STP and AMP`, async () => {
    const h = await setup();
    const before = h.count;
    const r = prng(SEEDS.mutate);
    const headers = [[2, 1], [2, 2], [4, 1], [7, 1]] as const;
    for (let i = 0; i < COUNTS.mutate; i++) {
      const source = h.corpus[i % h.corpus.length];
      const other = r.pick(h.corpus).bytes;
      const e = decodeEnvelope(source.bytes);
      switch (i % 3) {
        case 0: // the whole message
          await feed(h, mutate(r, source.bytes, other));
          break;
        case 1: // the payload only, in a well-formed envelope: the STP parser sees it
          await feed(
            h,
            encodeEnvelope({ ...e, payload: mutate(r, e.payload, decodeEnvelope(other).payload) }),
          );
          break;
        default: { // the intact payload under another header (protocol, version, sequence)
          const [protocolType, protocolVersion] = r.chance(0.7)
            ? r.pick(headers)
            : [e.protocolType, e.protocolVersion];
          const sequenceNumber = r.pick([undefined, 0, 3, 4, e.sequenceNumber]);
          await feed(
            h,
            encodeEnvelope({ protocolType, protocolVersion, sequenceNumber, payload: e.payload }),
          );
        }
      }
    }
    report(h, before, "mutate");
  });

  it(`${COUNTS.text} mutations of armored and line-form messages`, async () => {
    const h = await setup();
    const before = h.count;
    const r = prng(SEEDS.mutate ^ 0x7777);
    for (let i = 0; i < COUNTS.text; i++) {
      const source = h.corpus[i % h.corpus.length].bytes;
      const text = utf8(i % 2 === 0 ? armor(source) : toLine(source) + "\n");
      await feed(h, mutate(r, text, utf8(armor(r.pick(h.corpus).bytes))));
    }
    report(h, before, "text");
  });

  it(`${COUNTS.cbor} inputs of hand-built CBOR garbage`, async () => {
    const h = await setup();
    const before = h.count;
    const r = prng(SEEDS.cbor);
    const pairs = [[2, 1], [2, 2], [4, 1], [7, 1], [3, 1], [99, 1]];
    for (let i = 0; i < COUNTS.cbor; i++) {
      const garbage = garbageCbor(r, 0);
      switch (i % 4) {
        case 0: // as the whole input
          await feed(h, garbage);
          break;
        case 1: // behind the envelope magic
          await feed(h, concatBytes(new Uint8Array([0xd9, 0xd9, 0xf7]), garbage));
          break;
        default: { // as the payload of a well-formed envelope of a known pair
          const [protocolType, protocolVersion] = r.pick(pairs);
          await feed(h, encodeEnvelope({ protocolType, protocolVersion, payload: garbage }));
        }
      }
    }
    report(h, before, "cbor");
  });

  it(`${COUNTS.shapes} well-encoded inputs of the wrong shape (envelopes, payloads, AMP bodies)`, async () => {
    const h = await setup();
    const before = h.count;
    const r = prng(SEEDS.shapes);
    for (let i = 0; i < COUNTS.shapes; i++) {
      switch (i % 4) {
        case 0: { // an envelope map of the wrong shape
          const m = shape(r, 0);
          await feed(h, concatBytes(new Uint8Array([0xd9, 0xd9, 0xf7]), encodeCbor(m)));
          break;
        }
        case 1: { // a corpus payload with fields replaced, removed or added
          const s = h.corpus[r.int(h.corpus.length)];
          const e = decodeEnvelope(s.bytes);
          await feed(h, encodeEnvelope({ ...e, payload: reshapePayload(r, e.payload) }));
          break;
        }
        default: // AMP bodies of every kind through plain
          await feed(h, plainEnvelope(r));
      }
    }
    report(h, before, "shapes");
  });

  it(`${COUNTS.sealed} properly sealed messages whose AMP body is garbage`, async () => {
    const h = await setup();
    const before = h.count;
    const r = prng(SEEDS.sealed);
    for (let i = 0; i < COUNTS.sealed; i++) {
      const { ampType, ampVersion, body } = ampBody(r);
      // An AMP stand-in that emits the garbage as its encoding, so the STP seals it.
      const amp = { ...registry.amp(1, 1), type: ampType, version: ampVersion, encode: () => body };
      const sealed = await sealMessage({
        stp: registry.find("stp", r.pick(["simple/1", "simple/2", "auth/1"])),
        amp,
        message: null,
        sender: h.parties.alice,
        recipients: [h.parties.bob.card],
        now: FIXED_NOW,
      });
      await feed(h, sealed, true);
    }
    report(h, before, "sealed");
  });

  it("ran more than 10,000 inputs in all", async () => {
    const h = await setup();
    h.cleanup();
    const total = Object.values(COUNTS).reduce((a, b) => a + b, 0);
    assert.ok(total > 10_000);
    assert.equal(h.count, total);
    report(h, 0, "all");
    // The inputs reached every layer: each of these refusals happened at least once.
    const layers = [
      /^unwrapAnyForm malformed .*armor/,
      /^unwrapAnyForm malformed .*line/,
      /^openMessage malformed envelope/,
      /^openMessage unknown-protocol .*STP/,
      /^openMessage malformed simple payload/,
      /^openMessage malformed auth payload/,
      /^openMessage malformed plain payload/,
      /^openMessage malformed group payload/,
      /^openMessage not-a-recipient /,
      /^openMessage auth-failed simple v1/,
      /^openMessage auth-failed simple v2/,
      /^openMessage auth-failed auth/,
      /^openMessage untrusted /,
      /^openMessage replay /,
      /^openMessage unknown-protocol .*AMP/,
      /^openMessage malformed text v1/,
      /^openMessage malformed text v2/,
      /^openMessage malformed notification/,
    ];
    const seen = [...h.reached.keys()];
    assert.deepEqual(layers.filter((re) => !seen.some((k) => re.test(k))), [], seen.join("\n"));
  });
});
