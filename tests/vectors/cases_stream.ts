/**
 * Stream vectors (SPEC §20): streams sealed from fixed identities, seeded randomness and
 * a fixed clock, with chunk size 256 so a few hundred bytes make several chunks; failure
 * vectors apply a stated mutation to a success vector's bytes. Every vector says how many
 * plaintext bytes an opener releases before it stops (`expect.released`). Part of
 * tests/vectors/generate.ts (see there).
 * @module
 */
import { type Bytes, concatBytes, fromHex, toHex } from "../../core/bytes.ts";
import type { CryptoProvider } from "../../crypto/provider.ts";
import { MissiveError } from "../../core/errors.ts";
import type { Identity } from "../../keys/identity.ts";
import { defaultRegistry } from "../../mod.ts";
import { chunkKeys, chunkNonce } from "../../stream/_format.ts";
import {
  bytesSource,
  memorySink,
  openStream,
  openStreamHeader,
  sealStream,
  StreamError,
} from "../../stream/mod.ts";
import { get, NOW, randomStream } from "./common.ts";

import { sha256 } from "@noble/hashes/sha2.js";

/** Chunk size of every vector: small, so a few hundred bytes make several chunks. */
export const VECTOR_CHUNK = 256;

/** How a success vector is sealed. */
export interface StreamSeal {
  stp: [number, number];
  from: string;
  to: string[];
  /** Seed of the random stream (common.ts `randomStream`): payload key first, then the STP's draws. */
  random: string;
  now: number;
  chunkSize: number;
  signed: boolean;
  content: { amp: [number, number]; name?: string; mediaType?: string };
  /** Plaintext length; byte i is i mod 251. */
  plaintextLength: number;
}

/** A byte-level edit of a stream (applied in order). */
export type StreamMutation =
  | { truncate: number }
  | { flip: number }
  | { delete: [number, number] }
  | { swap: [number, number, number] }
  | { append: string }
  | { set: [number, string] };

/** The plaintext of a vector: byte i is i mod 251. */
export function vectorPlaintext(length: number): Bytes {
  return Uint8Array.from({ length }, (_, i) => i % 251);
}

/** Applies mutations to stream bytes. */
export function mutateStream(bytes: Uint8Array, mutations: readonly StreamMutation[]): Bytes {
  let b: Bytes = new Uint8Array(bytes);
  for (const m of mutations) {
    if ("truncate" in m) b = b.slice(0, m.truncate);
    else if ("flip" in m) b[m.flip] ^= 0x01;
    else if ("delete" in m) b = concatBytes(b.subarray(0, m.delete[0]), b.subarray(m.delete[1]));
    else if ("swap" in m) {
      const [x, y, n] = m.swap;
      const a = b.slice(x, x + n);
      b.copyWithin(x, y, y + n);
      b.set(a, y);
    } else if ("append" in m) b = concatBytes(b, fromHex(m.append)!);
    else b.set(fromHex(m.set[1])!, m.set[0]);
  }
  return b;
}

/** Offsets in a stream: where the header length, the header and each record start. */
export function streamLayout(bytes: Uint8Array, signed: boolean) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const headerLength = view.getUint32(8);
  const records: { start: number; end: number }[] = [];
  let at = 12 + headerLength;
  while (at < bytes.length) {
    const length = view.getUint32(at) & 0x7fffffff;
    const end = at + 4 + length + 16 + (signed ? 64 : 0);
    records.push({ start: at, end });
    at = end;
  }
  return { headerLength, headerEnd: 12 + headerLength, records };
}

/** Seals a vector's stream from its inputs. */
export async function sealVector(
  provider: CryptoProvider,
  ids: Map<string, Identity>,
  s: StreamSeal,
): Promise<Bytes> {
  const registry = defaultRegistry();
  const stp = registry.list().stps.find((p) => p.type === s.stp[0] && p.version === s.stp[1])!;
  const sink = memorySink();
  await sealStream({
    registry,
    stp,
    sender: get(ids, s.from),
    recipients: s.to.map((n) => get(ids, n).card),
    content: {
      ampType: s.content.amp[0],
      ampVersion: s.content.amp[1],
      name: s.content.name,
      mediaType: s.content.mediaType,
    },
    source: bytesSource(vectorPlaintext(s.plaintextLength)),
    sink,
    chunkSize: s.chunkSize,
    signed: s.signed,
    crypto: provider,
    now: s.now,
    random: randomStream(s.random),
  });
  return sink.bytes();
}

/** What opening gave: success with the plaintext's hash, or the failure; both with `released`. */
export async function openVector(
  provider: CryptoProvider,
  ids: Map<string, Identity>,
  bytes: Uint8Array,
  open: { identity: string; trusted: string[] },
) {
  const sink = memorySink();
  try {
    const r = await openStream({
      registry: defaultRegistry(),
      source: bytesSource(bytes),
      sink,
      identity: get(ids, open.identity),
      trusted: open.trusted.map((n) => get(ids, n).card),
      crypto: provider,
      inFlight: 3,
    });
    return {
      outcome: "success",
      released: sink.length,
      plaintextSha256: toHex(sha256(sink.bytes())),
      sender: r.opened.sender!.address,
      trusted: r.opened.sender!.trusted,
      chunks: r.chunks,
      signed: r.descriptor.signed,
    };
  } catch (e) {
    if (!(e instanceof MissiveError)) throw e;
    const released = e instanceof StreamError ? e.released : 0;
    if (released !== sink.length) throw new Error(`released ${released} but wrote ${sink.length}`);
    return { outcome: e.code, released };
  }
}

interface Base {
  name: string;
  seal: StreamSeal;
}

const simple = (name: string, length: number, extra: Partial<StreamSeal> = {}): Base => ({
  name,
  seal: {
    stp: [2, 2],
    from: "alice",
    to: ["bob"],
    random: `stream/${name}`,
    now: NOW,
    chunkSize: VECTOR_CHUNK,
    signed: false,
    content: { amp: [1, 1] },
    plaintextLength: length,
    ...extra,
  },
});

const BASES: Base[] = [
  simple("empty", 0),
  simple("one-short-chunk", 100),
  simple("one-full-chunk", 256),
  simple("three-chunks", 700),
  simple("three-chunks-signed", 700, { signed: true }),
  simple("file-two-chunks", 300, {
    content: { amp: [6, 1], name: "notes.bin", mediaType: "application/octet-stream" },
  }),
  simple("simple-v1-two-full-chunks", 512, { stp: [2, 1] }),
  simple("group-two-recipients", 600, { stp: [3, 1], to: ["bob", "carol"], signed: true }),
];

type Layout = ReturnType<typeof streamLayout>;

/** Failure cases: a base, how to mutate it (from its layout), who opens, the outcome. */
const FAILURES: {
  name: string;
  base: string;
  why: string;
  mutations: (l: Layout) => StreamMutation[];
  open?: { identity: string; trusted: string[] };
  expect: string;
}[] = [
  {
    name: "truncated-at-chunk-boundary",
    base: "three-chunks",
    why: "the final chunk is gone: no record has the last flag",
    mutations: (l) => [{ truncate: l.records[2].start }],
    expect: "malformed",
  },
  {
    name: "truncated-after-first-chunk",
    base: "three-chunks",
    why: "only chunk 0 is left",
    mutations: (l) => [{ truncate: l.records[1].start }],
    expect: "malformed",
  },
  {
    name: "truncated-mid-chunk",
    base: "three-chunks",
    why: "the input ends inside chunk 1",
    mutations: (l) => [{ truncate: l.records[1].start + 100 }],
    expect: "malformed",
  },
  {
    name: "truncated-in-header",
    base: "three-chunks",
    why: "the input ends inside the header envelope",
    mutations: (l) => [{ truncate: l.headerEnd - 10 }],
    expect: "malformed",
  },
  {
    name: "reordered-chunks",
    base: "three-chunks",
    why: "chunks 0 and 1 swapped: chunk 1's bytes fail under chunk 0's nonce",
    mutations: (l) => [{ swap: [l.records[0].start, l.records[1].start, 4 + 256 + 16] }],
    expect: "auth-failed",
  },
  {
    name: "dropped-chunk",
    base: "three-chunks",
    why: "chunk 1 removed: chunk 2 arrives as index 1",
    mutations: (l) => [{ delete: [l.records[1].start, l.records[1].end] }],
    expect: "auth-failed",
  },
  {
    name: "appended-after-final",
    base: "three-chunks",
    why: "bytes after the final chunk: refused before the final chunk is released",
    mutations: () => [{ append: "00" }],
    expect: "malformed",
  },
  {
    name: "appended-chunk-copy",
    base: "three-chunks",
    why: "a copy of chunk 0 after the final chunk",
    mutations: (l) => [{ append: "" }, { truncate: l.records[2].end }],
    expect: "malformed",
  },
  {
    name: "flipped-chunk-0",
    base: "three-chunks",
    why: "one bit of chunk 0's ciphertext",
    mutations: (l) => [{ flip: l.records[0].start + 10 }],
    expect: "auth-failed",
  },
  {
    name: "flipped-chunk-1",
    base: "three-chunks",
    why: "one bit of chunk 1's ciphertext",
    mutations: (l) => [{ flip: l.records[1].start + 10 }],
    expect: "auth-failed",
  },
  {
    name: "flipped-chunk-2-tag",
    base: "three-chunks",
    why: "one bit of the final chunk's tag",
    mutations: (l) => [{ flip: l.records[2].end - 1 }],
    expect: "auth-failed",
  },
  {
    name: "flipped-header",
    base: "three-chunks",
    why: "one bit inside the header envelope's STP payload",
    mutations: (l) => [{ flip: l.headerEnd - 40 }],
    expect: "auth-failed",
  },
  {
    name: "last-flag-set-early",
    base: "three-chunks",
    why: "chunk 0's length word claims it is final: data follows a final chunk",
    mutations: (l) => [{ flip: l.records[0].start }],
    expect: "malformed",
  },
  {
    name: "last-flag-cleared",
    base: "three-chunks",
    why: "the final chunk's flag cleared: a short chunk that is not final",
    mutations: (l) => [{ flip: l.records[2].start }],
    expect: "malformed",
  },
  {
    name: "oversize-length",
    base: "three-chunks",
    why: "chunk 1 claims 0x7fffffff bytes: refused before allocating",
    mutations: (l) => [{ set: [l.records[1].start, "7fffffff"] }],
    expect: "malformed",
  },
  {
    name: "oversize-header-length",
    base: "one-short-chunk",
    why: "header length 0xffffffff: refused before allocating",
    mutations: () => [{ set: [8, "ffffffff"] }],
    expect: "too-large",
  },
  {
    name: "bad-magic",
    base: "one-short-chunk",
    why: "first byte changed",
    mutations: () => [{ flip: 0 }],
    expect: "malformed",
  },
  {
    name: "signed-flipped-signature",
    base: "three-chunks-signed",
    why: "one bit of chunk 1's signature",
    mutations: (l) => [{ flip: l.records[1].end - 5 }],
    expect: "auth-failed",
  },
  {
    name: "signed-flipped-chunk-2",
    base: "three-chunks-signed",
    why: "one bit of chunk 2's ciphertext: signature (over its hash) and tag both fail",
    mutations: (l) => [{ flip: l.records[2].start + 6 }],
    expect: "auth-failed",
  },
  {
    name: "group-flipped-signature",
    base: "group-two-recipients",
    why: "one bit of chunk 0's signature in a group stream",
    mutations: (l) => [{ flip: l.records[0].end - 1 }],
    expect: "auth-failed",
  },
  {
    name: "group-recipient-forged-chunk",
    base: "group-two-recipients",
    why: "carol, a recipient, re-seals chunk 1 under the payload key (valid tag); only the " +
      "sender's signature stops it",
    mutations: () => [], // made in streamVectors: needs the payload key
    expect: "auth-failed",
  },
  {
    name: "group-not-a-recipient",
    base: "group-two-recipients",
    why: "mallory opens a group stream sealed to bob and carol",
    mutations: () => [],
    open: { identity: "mallory", trusted: ["alice"] },
    expect: "not-a-recipient",
  },
  {
    name: "not-a-recipient",
    base: "three-chunks",
    why: "carol opens a stream sealed to bob",
    mutations: () => [],
    open: { identity: "carol", trusted: ["alice"] },
    expect: "not-a-recipient",
  },
];

const OPEN = { identity: "bob", trusted: ["alice"] };

/**
 * What a recipient holding the payload key can do: re-seal chunk `index` (not final) with
 * other plaintext (byte i = 0x5a) under the chunk key, keeping the length word and the
 * sender's signature. Returns the `set` mutation that writes the new ciphertext and tag.
 */
async function forgeAsRecipient(
  provider: CryptoProvider,
  ids: Map<string, Identity>,
  bytes: Uint8Array,
  who: string,
  index: number,
  layout: Layout,
): Promise<StreamMutation> {
  const header = bytes.subarray(12, layout.headerEnd);
  const head = await openStreamHeader(header, {
    registry: defaultRegistry(),
    identity: get(ids, who),
    crypto: provider,
  });
  const keys = await chunkKeys(provider, head.descriptor.payloadKey, header);
  const forged = new Uint8Array(head.descriptor.chunkSize).fill(0x5a);
  const sealed = await keys.aead.encrypt(chunkNonce(index, false), forged, keys.aad);
  return { set: [layout.records[index].start + 4, toHex(sealed)] };
}

/** The vectors of stream.json; fails if any outcome differs from the declared one. */
export async function streamVectors(provider: CryptoProvider, ids: Map<string, Identity>) {
  const out: unknown[] = [];
  const made = new Map<string, { bytes: Bytes; seal: StreamSeal }>();
  for (const base of BASES) {
    const bytes = await sealVector(provider, ids, base.seal);
    made.set(base.name, { bytes, seal: base.seal });
    const expect = await openVector(provider, ids, bytes, OPEN);
    if (expect.outcome !== "success") throw new Error(`stream/${base.name}: ${expect.outcome}`);
    out.push({
      name: `stream/${base.name}`,
      seal: base.seal,
      stream: toHex(bytes),
      open: OPEN,
      expect,
    });
  }
  for (const f of FAILURES) {
    const { bytes, seal } = made.get(f.base)!;
    const layout = streamLayout(bytes, seal.signed);
    let mutations = f.mutations(layout);
    if (f.name === "appended-chunk-copy") {
      const r = layout.records[0];
      mutations = [{ append: toHex(bytes.subarray(r.start, r.end)) }];
    }
    if (f.name === "group-recipient-forged-chunk") {
      mutations = [await forgeAsRecipient(provider, ids, bytes, "carol", 1, layout)];
    }
    const mutated = mutateStream(bytes, mutations);
    const open = f.open ?? OPEN;
    const expect = await openVector(provider, ids, mutated, open);
    if (expect.outcome !== f.expect) {
      throw new Error(`stream/${f.name}: expected ${f.expect}, got ${expect.outcome}`);
    }
    out.push({
      name: `stream/${f.name}`,
      base: `stream/${f.base}`,
      why: f.why,
      mutations,
      stream: toHex(mutated),
      open,
      expect,
    });
  }
  return out;
}
