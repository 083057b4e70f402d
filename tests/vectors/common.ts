/**
 * Deterministic inputs, CBOR values in JSON with mutations, and AMP bodies for the vector generator.
 * Part of tests/vectors/generate.ts (see there).
 * @module
 */
import { notificationV1, textV1 } from "../../amp/mod.ts";
import { type Bytes, concatBytes, fromHex, toHex, utf8 } from "../../core/bytes.ts";
import { type CborMap, type CborValue, decodeCbor, encodeCbor } from "../../core/cbor.ts";
import type { CryptoProvider } from "../../crypto/provider.ts";
import { cardToText, fingerprint } from "../../keys/card.ts";
import { createIdentity, type Identity } from "../../keys/identity.ts";

import { sha256 } from "@noble/hashes/sha2.js";

// ---------------------------------------------------------------------------------------
// Deterministic inputs

/**
 * The random stream of a vector: block i = SHA-256(UTF-8(seed) ‖ uint32be(i)), blocks
 * concatenated; each `random(n)` call takes the next n bytes.
 */
export function randomStream(seed: string): (length: number) => Bytes {
  let counter = 0;
  let buffer: Bytes = new Uint8Array(0);
  return (length) => {
    while (buffer.length < length) {
      const index = new Uint8Array(4);
      new DataView(index.buffer).setUint32(0, counter++);
      buffer = concatBytes(buffer, sha256(concatBytes(utf8(seed), index)));
    }
    const out = buffer.slice(0, length);
    buffer = buffer.slice(length);
    return out;
  };
}

/** The clock of every message vector unless a case says otherwise (2023-11-14T22:13:20Z + 1234 ms). */
export const NOW = 1_700_000_001_234;
export const CREATED = 1_700_000_000_000;
export const STPS: [number, number][] = [[2, 1], [2, 2], [4, 1], [7, 1]];
export const AMPS: [number, number][] = [[1, 1], [1, 2], [2, 1]];

/** How a vector identity is made: secret keys are SHA-256 of a fixed label. */
export interface IdentitySpec {
  name: string;
  address: string;
  created: number;
  stps: [number, number][];
  amps: [number, number][];
  signingSeed: string;
  agreementKey: string;
  /** The X-Wing seed of a hybrid (format-2) identity; absent: a format-1 identity. */
  hybridSeed?: string;
}

export const secret = (name: string, use: string) =>
  toHex(sha256(utf8(`missive test vectors/${name}/${use}`)));

export const IDENTITY_SPECS: IdentitySpec[] = ["alice", "bob", "carol", "mallory"].map((name) => ({
  name,
  address: `${name}@example.org`,
  created: CREATED,
  stps: STPS,
  amps: AMPS,
  signingSeed: secret(name, "signing"),
  agreementKey: secret(name, "agreement"),
}));

/** STP pairs of the hybrid vector identities (post-quantum and classical versions). */
export const STPS_PQ: [number, number][] = [[2, 2], [2, 3], [3, 1], [3, 2], [4, 1]];

/**
 * The hybrid identities of the post-quantum vector files (card_v2, simple_v3, group_v2):
 * the same signing and agreement secrets as the classical ones (so the same two keys),
 * plus an X-Wing seed SHA-256 of `"missive test vectors/NAME/hybrid"` (format-2 cards,
 * other IDs); and dave, classical (format 1), for the fallback to classical versions.
 */
export const PQ_IDENTITY_SPECS: IdentitySpec[] = [
  ...["alice", "bob", "carol", "mallory"].map((name) => ({
    name,
    address: `${name}@example.org`,
    created: CREATED,
    stps: STPS_PQ,
    amps: AMPS,
    signingSeed: secret(name, "signing"),
    agreementKey: secret(name, "agreement"),
    hybridSeed: secret(name, "hybrid"),
  })),
  {
    name: "dave",
    address: "dave@example.org",
    created: CREATED,
    stps: STPS,
    amps: AMPS,
    signingSeed: secret("dave", "signing"),
    agreementKey: secret("dave", "agreement"),
  },
];

/** Identities by name, made with `provider` from their specs. */
export async function makeIdentities(
  provider: CryptoProvider,
  specs: IdentitySpec[] = IDENTITY_SPECS,
): Promise<Map<string, Identity>> {
  const out = new Map<string, Identity>();
  for (const s of specs) {
    out.set(
      s.name,
      await createIdentity(provider, {
        address: s.address,
        stps: s.stps,
        amps: s.amps,
        created: s.created,
        signingSeed: fromHex(s.signingSeed)!,
        agreementKey: fromHex(s.agreementKey)!,
        hybrid: s.hybridSeed !== undefined,
        ...(s.hybridSeed ? { hybridSeed: fromHex(s.hybridSeed)! } : {}),
      }),
    );
  }
  return out;
}

/** An identity as listed in a vector file: secrets, and the public values they give. */
export async function identityJson(provider: CryptoProvider, spec: IdentitySpec, id: Identity) {
  return {
    ...spec,
    signingKey: toHex(id.card.signingKey),
    agreementPublicKey: toHex(id.card.agreementKey),
    ...(id.card.hybridKey ? { hybridKey: toHex(id.card.hybridKey) } : {}),
    id: toHex(id.card.id),
    fingerprint: await fingerprint(provider, id.card),
    card: toHex(id.card.bytes),
    cardText: cardToText(id.card),
  };
}

export function get<T>(map: Map<string, T>, name: string): T {
  const v = map.get(name);
  if (v === undefined) throw new Error(`no identity ${name}`);
  return v;
}

// ---------------------------------------------------------------------------------------
// CBOR values in JSON, and mutations

/** A CBOR value in JSON: byte strings as {"bytes": hex}, maps as {"map": [[k, v], ...]}. */
export type JsonCbor =
  | number
  | string
  | boolean
  | null
  | { bytes: string }
  | JsonCbor[]
  | { map: [number | string, JsonCbor][] };

export function fromJsonCbor(v: JsonCbor): CborValue {
  if (v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map(fromJsonCbor);
  if ("bytes" in v) return fromHex(v.bytes)!;
  return new Map(v.map.map(([k, x]) => [k, fromJsonCbor(x)]));
}

/**
 * An edit of a sealed envelope, applied in order. `target` names the CBOR map edited:
 * the envelope map (after the 3-byte tag), the STP payload (envelope field 4, after
 * which the envelope is re-encoded around it), or a bare card. set/delete/xor decode
 * the map, edit it and re-encode it deterministically; splice and append edit raw bytes
 * (for non-canonical encodings), at offsets into the target's bytes (for the envelope:
 * the whole envelope, tag included). xor offsets below zero count from the end.
 */
export type Mutation =
  | { op: "set"; target: Target; key: number; value: JsonCbor }
  | { op: "delete"; target: Target; key: number }
  | { op: "xor"; target: Target; key: number; offset: number; mask: number }
  | { op: "splice"; target: Target; offset: number; remove: number; insert: string }
  | { op: "append"; target: Target; insert: string };
export type Target = "envelope" | "payload" | "card";

export const MAGIC = new Uint8Array([0xd9, 0xd9, 0xf7]);

export function editMap(bytes: Uint8Array, m: Mutation): Bytes {
  if (m.op === "splice") {
    return concatBytes(
      bytes.subarray(0, m.offset),
      fromHex(m.insert)!,
      bytes.subarray(m.offset + m.remove),
    );
  }
  if (m.op === "append") return concatBytes(bytes, fromHex(m.insert)!);
  const map = decodeCbor(bytes) as CborMap;
  if (m.op === "set") map.set(m.key, fromJsonCbor(m.value));
  if (m.op === "delete") map.delete(m.key);
  if (m.op === "xor") {
    const field = new Uint8Array(map.get(m.key) as Uint8Array);
    field[m.offset < 0 ? field.length + m.offset : m.offset] ^= m.mask;
    map.set(m.key, field);
  }
  return encodeCbor(map);
}

/** Applies mutations to envelope bytes (or, for target "card", to card bytes). */
export function applyMutations(bytes: Uint8Array, mutations: readonly Mutation[]): Bytes {
  let out = new Uint8Array(bytes) as Bytes;
  for (const m of mutations) {
    if (m.target === "card") out = editMap(out, m);
    else if (m.target === "envelope") {
      const raw = m.op === "splice" || m.op === "append";
      out = raw ? editMap(out, m) : concatBytes(MAGIC, editMap(out.subarray(3), m));
    } else {
      const envelope = decodeCbor(out.subarray(3)) as CborMap;
      envelope.set(4, editMap(envelope.get(4) as Uint8Array, m));
      out = concatBytes(MAGIC, encodeCbor(envelope));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// AMP bodies

/** A hand-made gzip member (RFC 1952) holding one stored deflate block (RFC 1951 §3.2.4). */
export function storedGzip(data: Uint8Array): Bytes {
  if (data.length > 0xffff) throw new Error("storedGzip: one block only");
  const le = (n: number, size: number) =>
    Uint8Array.from({ length: size }, (_, i) => (n >>> (8 * i)) & 255);
  return concatBytes(
    fromHex("1f8b08000000000000ff")!, // ID1 ID2 CM=8 FLG=0 MTIME=0 XFL=0 OS=255
    new Uint8Array([0x01]), // BFINAL=1, BTYPE=00 (stored)
    le(data.length, 2),
    le(~data.length & 0xffff, 2),
    data,
    le(crc32(data), 4),
    le(data.length, 4),
  );
}

export function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

/** An AMP body: the AMP pair, its exact bytes, and the message it decodes to. */
export interface Body {
  amp: [number, number];
  body: Uint8Array;
  message?: unknown;
}

export const text1 = (text: string): Body => ({
  amp: [1, 1],
  body: textV1.encode({ text }),
  message: { text },
});
export const text2 = (text: string, nonce: Uint8Array, gz = storedGzip(utf8(text))): Body => ({
  amp: [1, 2],
  body: encodeCbor(new Map<number, CborValue>([[1, gz], [2, nonce]])),
  message: { text, nonce: toHex(nonce) },
});
export const notification = (
  n: { kind: string; title: string; body?: string; uri?: string },
): Body => ({
  amp: [2, 1],
  body: notificationV1.encode(n),
  message: n,
});
export const rawBody = (amp: [number, number], body: Uint8Array): Body => ({
  amp,
  body: new Uint8Array(body),
});

/** The decoded message as JSON: byte fields as hex. */
export function jsonMessage(m: unknown): unknown {
  if (m instanceof Uint8Array) return toHex(m);
  if (m === null || typeof m !== "object") return m;
  return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, jsonMessage(v)]));
}
