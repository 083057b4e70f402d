/**
 * Streams (SPEC §20): round trips of many sizes around chunk boundaries, the vector corpus
 * through both crypto providers, and every way to damage a multi-chunk stream —
 * truncation at every boundary and inside every chunk, reordering, dropping, appending,
 * a bit flip in every record and everywhere in the header — each failing with a typed
 * error after releasing exactly the plaintext of the chunks before the damaged one. A
 * recipient who holds the payload key cannot forge a signed chunk. The CLI end to end:
 * `-o FILE` removed on failure, the byte count on stderr.
 *
 * Multi-recipient STPs: `multiRecipientStps()` lists every registered STP that is
 * confidential, signs and is multi-recipient (group, once merged), plus a test-only
 * wrapper of simple that claims to be multi-recipient; each gets the same cases.
 * @module
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { type Bytes, concatBytes, fromHex, toHex, utf8 } from "../core/bytes.ts";
import {
  type CryptoProvider,
  nobleProvider,
  nodeCryptoProvider,
  webcryptoProvider,
} from "../crypto/mod.ts";
import { type ErrorCode, MissiveError } from "../core/errors.ts";
import { cardFileText } from "../keys/card.ts";
import { type Identity, writeKeyFile } from "../keys/identity.ts";
import { defaultRegistry, type Registry } from "../mod.ts";
import { streamV1 } from "../amp/stream.ts";
import { transcript } from "../core/cbor.ts";
import type { StpPlugin } from "../plugin/types.ts";
import {
  bytesSource,
  DEFAULT_CHUNK,
  DEFAULT_SIGNED_CHUNK,
  iterableSource,
  memorySink,
  openStream,
  openStreamHeader,
  readStreamHeader,
  sealStream,
  StreamError,
} from "../stream/mod.ts";
import { chunkKeys, chunkNonce, LABEL_KEY } from "../stream/_format.ts";
import { makeIdentities } from "./vectors/common.ts";
import {
  mutateStream,
  openVector,
  sealVector,
  streamLayout,
  type StreamMutation,
  type StreamSeal,
} from "./vectors/cases_stream.ts";
import { fixedIdentity, runCli, spawnCli, tempDir } from "./helpers.ts";
import type { Io } from "../cmd/common.ts";
import { progress } from "../cmd/streaming.ts";

const CHUNK = 256;
/** What damage may cause; never `internal`. */
const DAMAGE_CODES: readonly ErrorCode[] = [
  "malformed",
  "too-large",
  "auth-failed",
  "not-a-recipient",
  "unknown-protocol",
];

const alice = await fixedIdentity("alice@example.org", 1);
const bob = await fixedIdentity("bob@example.org", 3);
const carol = await fixedIdentity("carol@example.org", 5);
const dave = await fixedIdentity("dave@example.org", 7);

/** Deterministic test bytes (a xorshift stream; not secret). */
function pattern(length: number, seed = 1): Bytes {
  const out = new Uint8Array(length);
  let x = seed * 2654435761 >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** A test-only STP: simple, but claiming multiRecipient (so chunks must be signed). */
function multiSimple(registry: Registry): StpPlugin {
  const simple = registry.find("stp", "simple");
  return {
    ...simple,
    type: 250,
    version: 1,
    name: "test-multi-simple",
    properties: { ...simple.properties, multiRecipient: true },
    seal: (inner, ctx) =>
      simple.seal(inner, {
        ...ctx,
        header: { ...ctx.header, protocolType: 2, protocolVersion: simple.version },
      }),
    open: (payload, ctx) =>
      simple.open(payload, {
        ...ctx,
        header: { ...ctx.header, protocolType: 2, protocolVersion: simple.version },
      }),
  };
}

function registryWithMulti(): Registry {
  const registry = defaultRegistry();
  return registry.register(multiSimple(registry));
}

/**
 * Every multi-recipient STP to run the signed-chunk cases with, with the recipients it
 * can seal to: registered ones (group, after merge) get three; the test wrapper of simple
 * one (simple refuses more).
 */
function multiRecipientStps(registry: Registry): { stp: StpPlugin; recipients: Identity[] }[] {
  return registry.list().stps
    .filter((p) =>
      p.properties.multiRecipient && p.properties.confidentiality &&
      p.properties.authentication === "signature"
    )
    .map((stp) => ({ stp, recipients: stp.type === 250 ? [bob] : [bob, carol, dave] }));
}

async function seal(
  data: Uint8Array,
  options: {
    stp?: StpPlugin;
    registry?: Registry;
    recipients?: Identity[];
    chunkSize?: number;
    signed?: boolean;
    inFlight?: number;
    crypto?: CryptoProvider;
  } = {},
): Promise<Bytes> {
  const registry = options.registry ?? defaultRegistry();
  const sink = memorySink();
  await sealStream({
    registry,
    stp: options.stp ?? registry.find("stp", "simple"),
    sender: alice,
    recipients: (options.recipients ?? [bob]).map((r) => r.card),
    source: bytesSource(data),
    sink,
    chunkSize: options.chunkSize ?? CHUNK,
    signed: options.signed,
    inFlight: options.inFlight,
    crypto: options.crypto,
  });
  return sink.bytes();
}

/** Opens; returns what was written and the error (undefined on success). */
async function open(
  stream: Uint8Array,
  options: {
    registry?: Registry;
    identity?: Identity;
    inFlight?: number;
    crypto?: CryptoProvider;
  } = {},
) {
  const sink = memorySink();
  try {
    const result = await openStream({
      registry: options.registry ?? defaultRegistry(),
      source: bytesSource(stream),
      sink,
      identity: options.identity ?? bob,
      trusted: [alice.card],
      inFlight: options.inFlight,
      crypto: options.crypto,
    });
    return { written: sink.bytes(), result, error: undefined };
  } catch (e) {
    if (!(e instanceof MissiveError)) throw e;
    return { written: sink.bytes(), result: undefined, error: e };
  }
}

/** Asserts a typed failure that released exactly `released` bytes, all authentic. */
function assertFailed(
  got: Awaited<ReturnType<typeof open>>,
  plaintext: Uint8Array,
  released: number,
  what: string,
) {
  assert.ok(got.error, `${what}: opened`);
  assert.ok(DAMAGE_CODES.includes(got.error.code), `${what}: code ${got.error.code}`);
  assert.equal(got.written.length, released, `${what}: ${got.error.message}`);
  assert.deepEqual(got.written, plaintext.subarray(0, released), `${what}: released bytes differ`);
  const said = got.error instanceof StreamError ? got.error.released : 0;
  assert.equal(said, released, `${what}: error says ${said}`);
}

describe("stream round trips", () => {
  const sizes = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 17, 10 * CHUNK];
  for (const signed of [false, true]) {
    it(`sizes around chunk boundaries, ${signed ? "signed" : "unsigned"} chunks`, async () => {
      for (const size of sizes) {
        const data = pattern(size, size + 1);
        const stream = await seal(data, { signed });
        const got = await open(stream);
        assert.equal(got.error, undefined, `size ${size}: ${got.error?.message}`);
        assert.deepEqual(got.written, data, `size ${size}`);
        assert.equal(got.result!.chunks, Math.max(1, Math.ceil(size / CHUNK)));
        assert.equal(got.result!.descriptor.signed, signed);
        assert.equal(got.result!.opened.sender?.trusted, true);
      }
    });
  }

  it("3 MiB with the default chunk sizes, every provider path", async () => {
    const data = pattern(3 * 1024 * 1024 + 5, 9);
    for (const crypto of [webcryptoProvider, nobleProvider, nodeCryptoProvider]) {
      for (const signed of [false, true]) {
        const sink = memorySink();
        const registry = defaultRegistry();
        const r = await sealStream({
          registry,
          stp: registry.find("stp", "simple"),
          sender: alice,
          recipients: [bob.card],
          source: bytesSource(data),
          sink,
          signed,
          crypto,
        });
        assert.equal(r.chunkSize, signed ? DEFAULT_SIGNED_CHUNK : DEFAULT_CHUNK);
        const got = await open(sink.bytes(), {
          crypto: crypto === nobleProvider ? webcryptoProvider : nobleProvider,
        });
        assert.equal(got.error, undefined, got.error?.message);
        assert.equal(toHex(got.written), toHex(data));
      }
    }
  });

  it("property: random sizes near boundaries, chunk sizes, read pieces and in-flight counts", async () => {
    let seed = 12345;
    const next = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let round = 0; round < 40; round++) {
      const chunkSize = 256 + next(800);
      const size = Math.max(0, next(6) * chunkSize + next(5) - 2);
      const data = pattern(size, round + 100);
      const pieces = async function* () {
        for (let at = 0; at < data.length;) {
          const n = 1 + next(2 * chunkSize);
          yield data.slice(at, at + n);
          at += n;
        }
      };
      const registry = defaultRegistry();
      const sink = memorySink();
      await sealStream({
        registry,
        stp: registry.find("stp", "simple"),
        sender: alice,
        recipients: [bob.card],
        source: iterableSource(pieces()),
        sink,
        chunkSize,
        signed: next(2) === 1,
        inFlight: 1 + next(5),
      });
      const got = await open(sink.bytes(), { inFlight: 1 + next(5) });
      assert.equal(got.error, undefined, `round ${round}: ${got.error?.message}`);
      assert.deepEqual(got.written, data, `round ${round}: size ${size}, chunk ${chunkSize}`);
    }
  });
});

describe("stream damage: fails typed, releases only the chunks before the damage", () => {
  // 5 chunks: 4 full, 1 of 76 bytes.
  const data = pattern(4 * CHUNK + 76, 77);
  const cases = [
    { signed: false, name: "unsigned" },
    { signed: true, name: "signed" },
  ];
  for (const c of cases) {
    it(`truncation at every chunk boundary and inside every chunk (${c.name})`, async () => {
      const stream = await seal(data, { signed: c.signed });
      const { records, headerEnd } = streamLayout(stream, c.signed);
      assert.equal(records.length, 5);
      for (const [i, r] of records.entries()) {
        for (
          const cut of [r.start, r.start + 1, r.start + 3, r.start + 4, r.start + 20, r.end - 1]
        ) {
          assertFailed(await open(stream.subarray(0, cut)), data, i * CHUNK, `cut at ${cut}`);
        }
      }
      for (const cut of [0, 1, 7, 8, 11, 12, headerEnd - 1]) {
        assertFailed(await open(stream.subarray(0, cut)), data, 0, `cut in header at ${cut}`);
      }
    });

    it(`reordering, dropping and appending chunks (${c.name})`, async () => {
      const stream = await seal(data, { signed: c.signed });
      const { records } = streamLayout(stream, c.signed);
      const full = records[0].end - records[0].start;
      for (let i = 0; i + 1 < 4; i++) {
        const swapped = mutateStream(stream, [{
          swap: [records[i].start, records[i + 1].start, full],
        }]);
        assertFailed(await open(swapped), data, i * CHUNK, `swap ${i} and ${i + 1}`);
      }
      for (const [i, r] of records.entries()) {
        const dropped = mutateStream(stream, [{ delete: [r.start, r.end] }]);
        assertFailed(await open(dropped), data, i * CHUNK, `drop ${i}`);
      }
      for (
        const extra of ["00", "ffffffff", toHex(stream.subarray(records[0].start, records[0].end))]
      ) {
        const appended = mutateStream(stream, [{ append: extra }]);
        assertFailed(await open(appended), data, 4 * CHUNK, `append ${extra.slice(0, 8)}`);
      }
      // A stream's chunks under another stream's header (same keys, same sender).
      const other = await seal(data, { signed: c.signed });
      const o = streamLayout(other, c.signed);
      const spliced = concatBytes(
        stream.subarray(0, records[0].end),
        other.subarray(o.records[1].start),
      );
      assertFailed(await open(spliced), data, CHUNK, "chunks from another stream");
    });

    it(`a bit flip in every record (${c.name})`, async () => {
      const stream = await seal(data, { signed: c.signed });
      const { records } = streamLayout(stream, c.signed);
      for (const [i, r] of records.entries()) {
        const length = r.end - r.start;
        // Length word (flag bit, high and low length bits), ciphertext, tag, signature.
        const offsets = [0, 1, 3, 4, 5, Math.floor(length / 2), length - (c.signed ? 70 : 1)];
        if (c.signed) offsets.push(length - 64, length - 1);
        for (const off of offsets) {
          for (const mask of [0x01, 0x80]) {
            const bad = new Uint8Array(stream);
            bad[r.start + off] ^= mask;
            assertFailed(await open(bad), data, i * CHUNK, `chunk ${i} byte ${off} ^${mask}`);
          }
        }
      }
    });
  }

  it("a bit flip anywhere in the header releases nothing", async () => {
    const stream = await seal(data);
    const { headerEnd } = streamLayout(stream, false);
    for (let at = 0; at < headerEnd; at++) {
      const bad = new Uint8Array(stream);
      bad[at] ^= 0x04;
      const got = await open(bad);
      // A flipped STP type may name psk, which asks for a secret first (`usage`).
      if (got.error?.code === "usage") {
        assert.match(got.error.message, /psk|passphrase|secret/i);
        assert.equal(got.written.length, 0);
        continue;
      }
      assertFailed(got, data, 0, `header byte ${at}`);
    }
  });

  const multiNames = multiRecipientStps(registryWithMulti()).map((m) => m.stp.name).join(", ");
  it(`a recipient holding the payload key cannot forge a signed chunk (${multiNames})`, async () => {
    for (const { stp, recipients } of multiRecipientStps(registryWithMulti())) {
      const registry = registryWithMulti();
      const stream = await seal(data, { stp, registry, recipients, signed: true });
      const forger = recipients[recipients.length - 1];
      const victim = recipients[0];
      // The forger opens the header, as any recipient can, and re-seals chunk 1.
      const header = await readStreamHeader(bytesSource(stream));
      const opened = await openStreamHeader(header, {
        registry,
        identity: forger,
        trusted: [alice.card],
      });
      const keys = await chunkKeys(nobleProvider, opened.descriptor.payloadKey, header);
      const { records } = streamLayout(stream, true);
      const forged = pattern(CHUNK, 999);
      const sealed = await keys.aead.encrypt(chunkNonce(1, false), forged, keys.aad);
      const r = records[1];
      const tampered = concatBytes(
        stream.subarray(0, r.start + 4),
        sealed,
        stream.subarray(r.end - 64), // the sender's signature over the real chunk 1
      );
      // Its AEAD tag is valid: only the signature stops it.
      const got = await open(tampered, { registry, identity: victim });
      assertFailed(got, data, CHUNK, `${stp.name}: forged chunk`);
      assert.equal(got.error!.code, "auth-failed");
      assert.match(got.error!.message, /signature/);
      // Honest opening works for every recipient.
      for (const who of recipients) {
        const ok = await open(stream, { registry, identity: who });
        assert.equal(ok.error, undefined, `${stp.name} for ${who.card.address}`);
        assert.deepEqual(ok.written, data);
      }
    }
    assert.ok(multiRecipientStps(registryWithMulti()).length >= 1);
  });

  it("unsigned chunks under a multi-recipient STP are refused on seal and on open", async () => {
    const registry = registryWithMulti();
    const multi = registry.find("stp", "test-multi-simple");
    await assert.rejects(
      seal(data, { stp: multi, registry, signed: false }),
      (e) => e instanceof MissiveError && e.code === "usage",
    );
    // A sender that lies: sealed as if single-recipient, opened by a registry that knows
    // the STP is multi-recipient.
    const lying = { ...multi, properties: { ...multi.properties, multiRecipient: false } };
    const sealRegistry = defaultRegistry().register(lying);
    const stream = await seal(data, { stp: lying, registry: sealRegistry, signed: false });
    const got = await open(stream, { registry });
    assertFailed(got, data, 0, "unsigned under multi-recipient");
    assert.equal(got.error!.code, "auth-failed");
  });

  it("a stream's header alone opens to a description, never content or key; STPs without confidentiality are refused", async () => {
    const { dir, cleanup } = tempDir();
    try {
      writeFileSync(join(dir, "bob.key"), await writeKeyFile(nobleProvider, bob), { mode: 0o600 });
      const stream = await seal(data);
      const header = await readStreamHeader(bytesSource(stream));
      const r = await runCli(["open", "--key", join(dir, "bob.key")], { stdin: header });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(
        r.text,
        "stream header: content AMP (1, 1) in chunks of 256 bytes; the chunks are not in this envelope\n",
      );
      const json = await runCli(["open", "--json", "--key", join(dir, "bob.key")], {
        stdin: header,
      });
      const opened = await openStreamHeader(header, { registry: defaultRegistry(), identity: bob });
      assert.ok(!json.text.includes(toHex(opened.descriptor.payloadKey)));
      assert.deepEqual(JSON.parse(json.text).message, {
        amp: [1, 1],
        chunkSize: 256,
        signed: false,
      });
    } finally {
      cleanup();
    }
    const registry = defaultRegistry();
    await assert.rejects(
      seal(data, { stp: registry.find("stp", "auth"), registry }),
      (e) => e instanceof MissiveError && e.code === "usage",
    );
  });
});

describe("stream decoder: bad input", () => {
  it("garbage, magic only, oversize lengths: typed errors, nothing written", async () => {
    const magic = fromHex("894d535653540d0a")!;
    const inputs: [string, Uint8Array, ErrorCode][] = [
      ["empty", new Uint8Array(0), "malformed"],
      ["garbage", pattern(1000, 5), "malformed"],
      ["magic only", magic, "malformed"],
      ["zero header", concatBytes(magic, new Uint8Array(4)), "malformed"],
      ["header 4 GiB", concatBytes(magic, fromHex("ffffffff")!), "too-large"],
      ["header 16 MiB + 1", concatBytes(magic, fromHex("01000001")!), "too-large"],
      [
        "header longer than input",
        concatBytes(magic, fromHex("00001000")!, pattern(100)),
        "malformed",
      ],
      ["garbage header", concatBytes(magic, fromHex("00000100")!, pattern(256, 3)), "malformed"],
    ];
    for (const [name, bytes, code] of inputs) {
      const got = await open(bytes);
      assert.equal(got.error?.code, code, `${name}: ${got.error?.message}`);
      assert.equal(got.written.length, 0, name);
    }
    // Garbage records after a good header.
    const stream = await seal(pattern(700));
    const { headerEnd } = streamLayout(stream, false);
    for (let i = 0; i < 20; i++) {
      const bad = concatBytes(stream.subarray(0, headerEnd), pattern(50 + i * 37, i + 50));
      const got = await open(bad);
      assert.ok(got.error && DAMAGE_CODES.includes(got.error.code), `garbage records ${i}`);
      assert.equal(got.written.length, 0);
    }
  });

  it("the stream descriptor AMP refuses bad bodies and never shows the key", () => {
    const good = streamV1.encode({
      ampType: 1,
      ampVersion: 1,
      payloadKey: new Uint8Array(32).fill(7),
      chunkSize: 65536,
      signed: false,
    });
    assert.deepEqual(streamV1.decode(good).payloadKey, new Uint8Array(32).fill(7));
    assert.ok(!JSON.stringify(streamV1.toJson(streamV1.decode(good))).includes("7,7"));
    const bodies: Uint8Array[] = [
      new Uint8Array(0),
      pattern(40),
      good.subarray(0, good.length - 1),
      utf8("not cbor"),
      transcript("x"),
      new Uint8Array(5000),
    ];
    for (let i = 0; i < good.length; i++) {
      const b = new Uint8Array(good);
      b[i] ^= 0x01;
      bodies.push(b);
    }
    let refused = 0;
    for (const body of bodies) {
      try {
        const d = streamV1.decode(body);
        // A flip may still give a valid descriptor (another key or size); then it is whole.
        assert.equal(d.payloadKey.length, 32);
      } catch (e) {
        assert.ok(
          e instanceof MissiveError && ["malformed", "too-large"].includes(e.code),
          String(e),
        );
        refused++;
      }
    }
    assert.ok(refused >= 6);
    // fromInput (tooling): no input, known fields only, a fresh key each time.
    const made = streamV1.fromInput(new Uint8Array(0), { "chunk-size": "4096", signed: "yes" });
    assert.equal(made.chunkSize, 4096);
    assert.equal(made.signed, true);
    assert.notDeepEqual(made.payloadKey, streamV1.fromInput(new Uint8Array(0), {}).payloadKey);
    const refusedInputs: [Uint8Array, Record<string, string>][] = [
      [utf8("x"), {}],
      [new Uint8Array(0), { nope: "1" }],
      [new Uint8Array(0), { signed: "maybe" }],
      [new Uint8Array(0), { amp: "file" }],
    ];
    for (const [input, fields] of refusedInputs) {
      assert.throws(
        () => streamV1.fromInput(input, fields),
        (e) => e instanceof MissiveError && e.code === "usage",
      );
    }
    for (
      const bad of [{ chunkSize: 100 }, { chunkSize: 2 ** 25 }, { ampType: 2 }, {
        payloadKey: new Uint8Array(31),
      }]
    ) {
      assert.throws(
        () =>
          streamV1.encode({
            ampType: 1,
            ampVersion: 1,
            payloadKey: new Uint8Array(32),
            chunkSize: 1024,
            signed: false,
            ...bad,
          }),
        (e) => e instanceof MissiveError && e.code === "usage",
      );
    }
  });
});

describe("stream vectors (stream.json) through both providers", () => {
  const corpus = JSON.parse(
    readFileSync(new URL("./vectors/stream.json", import.meta.url), "utf8"),
  ) as {
    vectors: {
      name: string;
      seal?: StreamSeal;
      base?: string;
      mutations?: StreamMutation[];
      stream: string;
      open: { identity: string; trusted: string[] };
      expect: { outcome: string; released: number };
    }[];
  };
  for (const provider of [nobleProvider, webcryptoProvider, nodeCryptoProvider]) {
    it(`${provider.name}: seal reproduces the bytes; open gives the stated outcome and release`, async () => {
      const ids = await makeIdentities(provider);
      const bases = new Map<string, Bytes>();
      let failures = 0;
      for (const v of corpus.vectors) {
        let bytes: Bytes;
        if (v.seal) {
          bytes = await sealVector(provider, ids, v.seal);
          bases.set(v.name, bytes);
        } else {
          bytes = mutateStream(bases.get(v.base!)!, v.mutations!);
          failures++;
        }
        assert.equal(toHex(bytes), v.stream, `${v.name}: bytes`);
        assert.deepEqual(await openVector(provider, ids, bytes, v.open), v.expect, v.name);
      }
      assert.ok(failures >= corpus.vectors.length - failures, "failure vectors ≥ success vectors");
    });
  }

  it("the CLI opens a vector stream under MISSIVE_CRYPTO=noble, =webcrypto and =node", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const ids = await makeIdentities(nobleProvider);
      writeFileSync(join(dir, "bob.key"), await writeKeyFile(nobleProvider, ids.get("bob")!), {
        mode: 0o600,
      });
      writeFileSync(
        join(dir, "alice.card"),
        await cardFileText(nobleProvider, ids.get("alice")!.card),
      );
      const v = corpus.vectors.find((x) => x.name === "stream/three-chunks")!;
      const bad = corpus.vectors.find((x) => x.name === "stream/flipped-chunk-2-tag")!;
      for (const mode of ["noble", "webcrypto", "node"]) {
        const env = { MISSIVE_CRYPTO: mode };
        const args = ["open", "--key", join(dir, "bob.key"), "--trust", join(dir, "alice.card")];
        const ok = await spawnCli(args, { stdin: fromHex(v.stream)!, env });
        assert.equal(ok.code, 0, ok.stderr);
        assert.equal(ok.stdout.length, 700);
        assert.match(ok.stderr, /stream: 700 bytes in 3 chunks/);
        const no = await spawnCli(args, { stdin: fromHex(bad.stream)!, env });
        assert.equal(no.code, 4, no.stderr);
        assert.equal(no.stdout.length, 512);
        assert.match(no.stderr, /512 authenticated plaintext bytes had been written/);
      }
    } finally {
      cleanup();
    }
  });
});

describe("stream CLI", () => {
  async function keys(dir: string) {
    writeFileSync(join(dir, "alice.key"), await writeKeyFile(nobleProvider, alice), {
      mode: 0o600,
    });
    writeFileSync(join(dir, "bob.key"), await writeKeyFile(nobleProvider, bob), { mode: 0o600 });
    writeFileSync(join(dir, "alice.card"), await cardFileText(nobleProvider, alice.card));
    writeFileSync(join(dir, "bob.card"), await cardFileText(nobleProvider, bob.card));
  }

  it("seal --stream, inspect, open -o FILE; damage removes the file and says how much was written", async () => {
    const { dir, cleanup } = tempDir();
    try {
      await keys(dir);
      const data = pattern(5000, 4);
      writeFileSync(join(dir, "in.bin"), data);
      const sealed = await spawnCli([
        "seal",
        "--stream",
        "--chunk-size",
        "1024",
        "--amp",
        "file",
        "--field",
        "name=in.bin",
        "--from",
        join(dir, "alice.key"),
        "--to",
        join(dir, "bob.card"),
        "-o",
        join(dir, "s.msv"),
        join(dir, "in.bin"),
      ]);
      assert.equal(sealed.code, 0, sealed.stderr);
      assert.equal(sealed.stderr, ""); // no progress line in a pipe
      const stream = readFileSync(join(dir, "s.msv"));
      const shown = await runCli(["inspect", "--json", join(dir, "s.msv")]);
      assert.equal(shown.code, 0, shown.stderr);
      assert.equal(JSON.parse(shown.text).form, "stream");
      assert.equal(JSON.parse(shown.text).stp, "simple");

      const out = join(dir, "out.bin");
      const openArgs = [
        "open",
        "--key",
        join(dir, "bob.key"),
        "--trust",
        join(dir, "alice.card"),
        "-o",
        out,
      ];
      const ok = await spawnCli([...openArgs, join(dir, "s.msv")]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.deepEqual(new Uint8Array(readFileSync(out)), data);
      assert.match(ok.stderr, /signature verified, trusted/);
      assert.match(ok.stderr, /stream: 5000 bytes in 5 chunks of 1024; file "in.bin"/);

      const { records } = streamLayout(stream, false);
      const bad = new Uint8Array(stream);
      bad[records[3].start + 100] ^= 0x20;
      writeFileSync(join(dir, "bad.msv"), bad);
      // An existing -o FILE is not replaced without --force, and never on failure.
      const exists = await spawnCli([...openArgs, join(dir, "bad.msv")]);
      assert.equal(exists.code, 2, exists.stderr);
      assert.match(exists.stderr, /out\.bin already exists; .*--force/);
      const kept = await spawnCli([...openArgs, "--force", join(dir, "bad.msv")]);
      assert.equal(kept.code, 4, kept.stderr);
      assert.deepEqual(new Uint8Array(readFileSync(out)), data, "the old file is intact");
      rmSync(out);
      const no = await spawnCli([...openArgs, join(dir, "bad.msv")]);
      assert.equal(no.code, 4, no.stderr);
      assert.equal(no.stdout.length, 0);
      assert.match(no.stderr, /chunk 3/);
      assert.match(
        no.stderr,
        /3072 authenticated plaintext bytes had been written to a temporary file, now removed; .*out\.bin was not touched/,
      );
      assert.equal(no.stderr.trim().split("\n").length, 1);
      assert.equal(existsSync(out), false);
      assert.deepEqual(readdirSync(dir).filter((f) => f.includes(".partial")), []);

      // To stdout: exactly the authenticated chunks came out.
      const piped = await runCli(["open", "--key", join(dir, "bob.key"), join(dir, "bad.msv")]);
      assert.equal(piped.code, 4);
      assert.deepEqual(piped.stdout, data.subarray(0, 3072));
      assert.match(piped.stderr, /3072 authenticated plaintext bytes had been written to stdout/);

      // --require-trust: refused after the header, nothing written, no file left.
      const untrusted = await runCli([
        "open",
        "--key",
        join(dir, "bob.key"),
        "--require-trust",
        "-o",
        out,
        join(dir, "s.msv"),
      ]);
      assert.equal(untrusted.code, 7, untrusted.stderr);
      assert.equal(existsSync(out), false);
      const json = await runCli([
        "open",
        "--key",
        join(dir, "bob.key"),
        "--json",
        join(dir, "s.msv"),
      ]);
      assert.equal(json.code, 2);
    } finally {
      cleanup();
    }
  });

  it("group (and --hide-recipients): every recipient opens, signed chunks, others get exit 5", async () => {
    const { dir, cleanup } = tempDir();
    try {
      await keys(dir);
      for (const [name, id] of [["carol", carol], ["dave", dave]] as const) {
        writeFileSync(join(dir, `${name}.key`), await writeKeyFile(nobleProvider, id), {
          mode: 0o600,
        });
        writeFileSync(join(dir, `${name}.card`), await cardFileText(nobleProvider, id.card));
      }
      const data = pattern(3000, 8);
      for (const hide of [[], ["--hide-recipients"]]) {
        const sealed = await runCli([
          "seal",
          "--stream",
          "--stp",
          "group",
          "--chunk-size",
          "1024",
          ...hide,
          "--from",
          join(dir, "alice.key"),
          "--to",
          join(dir, "bob.card"),
          "--to",
          join(dir, "carol.card"),
        ], { stdin: data });
        assert.equal(sealed.code, 0, sealed.stderr);
        writeFileSync(join(dir, "g.msv"), sealed.stdout);
        const shown = JSON.parse((await runCli(["inspect", "--json", join(dir, "g.msv")])).text);
        assert.equal(shown.form, "stream");
        assert.equal(shown.stp, "group");
        assert.equal(shown.recipientsHidden, hide.length > 0);
        for (const who of ["bob", "carol"]) {
          const r = await runCli([
            "open",
            "--key",
            join(dir, `${who}.key`),
            "--trust",
            join(dir, "alice.card"),
            join(dir, "g.msv"),
          ]);
          assert.equal(r.code, 0, r.stderr);
          assert.deepEqual(r.stdout, data);
          assert.match(r.stderr, /group v2 from alice@example\.org .*trusted/);
          assert.match(r.stderr, /3000 bytes in 3 chunks of 1024, each signed by the sender/);
        }
        const no = await runCli(["open", "--key", join(dir, "dave.key"), join(dir, "g.msv")]);
        assert.equal(no.code, 5, no.stderr);
        assert.equal(no.stdout.length, 0);
      }
    } finally {
      cleanup();
    }
  });

  it("stdin to stdout in process, and inputs over 16 MiB stream without --stream", async () => {
    const { dir, cleanup } = tempDir();
    try {
      await keys(dir);
      const small = utf8("a short text, streamed on request\n");
      const s1 = await runCli(
        ["seal", "--stream", "--from", join(dir, "alice.key"), "--to", join(dir, "bob.card")],
        { stdin: small },
      );
      assert.equal(s1.code, 0, s1.stderr);
      assert.equal(toHex(s1.stdout.subarray(0, 8)), "894d535653540d0a");
      const o1 = await runCli(["open", "--key", join(dir, "bob.key")], { stdin: s1.stdout });
      assert.equal(o1.code, 0, o1.stderr);
      assert.deepEqual(o1.stdout, small);

      const big = pattern(16 * 1024 * 1024 + 10, 6);
      const s2 = await runCli(
        ["seal", "--from", join(dir, "alice.key"), "--to", join(dir, "bob.card")],
        { stdin: big },
      );
      assert.equal(s2.code, 0, s2.stderr);
      assert.equal(toHex(s2.stdout.subarray(0, 8)), "894d535653540d0a");
      const o2 = await runCli(["open", "--key", join(dir, "bob.key")], { stdin: s2.stdout });
      assert.equal(o2.code, 0, o2.stderr);
      assert.equal(o2.stdout.length, big.length);
      assert.ok(o2.stdout.every((b, i) => b === big[i]));

      // Streams need simple/group, text/1 or file/1, binary output.
      for (const extra of [["--armor"], ["--stp", "auth"], ["--amp", "notification"]]) {
        const r = await runCli(
          [
            "seal",
            "--stream",
            "--from",
            join(dir, "alice.key"),
            "--to",
            join(dir, "bob.card"),
            ...extra,
          ],
          { stdin: small },
        );
        assert.equal(r.code, 2, `${extra}: ${r.stderr}`);
        assert.equal(r.stdout.length, 0);
      }
    } finally {
      cleanup();
    }
  });
});

describe("stream progress line", () => {
  it("only on a terminal, not with --quiet, after a second, at most every 250 ms", () => {
    let t = 1_000_000;
    const clock = () => t;
    const lines: string[] = [];
    const io = (tty: boolean): Io => ({
      stdin: async function* () {},
      stdout: () => Promise.resolve(),
      stderr: (line) => void lines.push(line),
      stdoutIsTty: false,
      stderrIsTty: tty,
      env: {},
    });
    for (const [tty, quiet] of [[false, false], [true, true]]) {
      const p = progress(io(tty), quiet, "sealed", clock);
      t += 5000;
      p.update(1 << 20);
      p.done();
    }
    assert.deepEqual(lines, []);
    const p = progress(io(true), false, "sealed", clock);
    t += 500;
    p.update(1 << 20); // under a second: nothing
    assert.deepEqual(lines, []);
    t += 1000;
    p.update(3 << 20);
    t += 100;
    p.update(4 << 20); // under 250 ms since the last line: nothing
    t += 300;
    p.update(5 << 20);
    p.done();
    assert.equal(lines.length, 3);
    assert.match(lines[0], /^\rmissive: sealed 3\.0 MiB \(\d+ MB\/s\)/);
    assert.match(lines[1], /^\rmissive: sealed 5\.0 MiB/);
    assert.equal(lines[2], "\n");
  });
});

describe("crypto provider: AeadKey", () => {
  it("noble and WebCrypto give the same bytes and typed failures", async () => {
    const key = pattern(32, 1);
    const nonce = pattern(12, 2);
    const aad = pattern(32, 3);
    for (const size of [0, 1, 100, 65536]) {
      const data = pattern(size, 4);
      const a = await (await nobleProvider.aeadKey("aes-256-gcm", key)).encrypt(nonce, data, aad);
      const wk = await webcryptoProvider.aeadKey("aes-256-gcm", key);
      const b = await wk.encrypt(nonce, data, aad);
      assert.equal(toHex(a), toHex(b));
      assert.equal(
        toHex(a),
        toHex(await nobleProvider.aeadEncrypt("aes-256-gcm", key, nonce, data, aad)),
      );
      assert.deepEqual(await wk.decrypt(nonce, a, aad), data);
      a[0] ^= 1;
      for (const p of [nobleProvider, webcryptoProvider]) {
        await assert.rejects(
          (await p.aeadKey("aes-256-gcm", key)).decrypt(nonce, a, aad),
          (e) => e instanceof MissiveError && e.code === "auth-failed",
        );
      }
    }
    assert.equal(LABEL_KEY, "missive/stream/v1/key");
  });
});
