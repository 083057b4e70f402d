/**
 * The known-answer vector corpus (docs/SPEC.md §12), made from fixed seeds:
 *
 *     node_modules/.bin/deno run -A tests/vectors/generate.ts
 *
 * writes tests/vectors/{envelope,armor,card,keyfile,simple,auth,plain,amp}.json. Every
 * vector states its inputs (secret keys, random draws, clock, plaintext), the exact
 * bytes, and the expected outcome. Each case below declares the outcome it is meant to
 * have; generation fails if the implementation disagrees, so the corpus records intent,
 * not accident. tests/vectors_test.ts re-runs `buildCorpus` and requires the committed
 * files to match byte for byte (except the few bodies made by the runtime's zlib, which
 * are flagged `"deterministic": false`).
 * @module
 */
import { writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { gcm } from "@noble/ciphers/aes.js";
import { xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { ed25519, x25519 } from "@noble/curves/ed25519.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { hmac } from "@noble/hashes/hmac.js";
import { scrypt } from "@noble/hashes/scrypt.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { armorBlock } from "../../armor.ts";
import {
  type Bytes,
  concatBytes,
  equalBytes,
  fromBase64,
  fromHex,
  toBase64,
  toHex,
  utf8,
} from "../../bytes.ts";
import { type CborMap, type CborValue, decodeCbor, encodeCbor, transcript } from "../../cbor.ts";
import type { CryptoProvider } from "../../crypto/provider.ts";
import { nobleProvider } from "../../crypto/noble.ts";
import { armor, decodeEnvelope, encodeEnvelope, toLine, unwrapAnyForm } from "../../envelope.ts";
import { type ErrorCode, MissiveError } from "../../errors.ts";
import {
  type Card,
  cardFileText,
  cardToText,
  decodeCard,
  fingerprint,
  makeCard,
  parseCardText,
} from "../../keys/card.ts";
import { createIdentity, type Identity, readKeyFile, writeKeyFile } from "../../keys/identity.ts";
import { defaultRegistry } from "../../mod.ts";
import { type OpenedMessage, openMessage, type Registry, sealMessage } from "../../registry.ts";
import { MemoryReplayCache } from "../../replay.ts";
import type { AmpPlugin } from "../../types.ts";
import { controlV1, fileV1, notificationV1, presenceV1, receiptV1, textV1 } from "../../amp/mod.ts";

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
const NOW = 1_700_000_001_234;
const CREATED = 1_700_000_000_000;
const STPS: [number, number][] = [[2, 1], [2, 2], [4, 1], [7, 1]];
const AMPS: [number, number][] = [[1, 1], [1, 2], [2, 1]];

/** How a vector identity is made: secret keys are SHA-256 of a fixed label. */
export interface IdentitySpec {
  name: string;
  address: string;
  created: number;
  stps: [number, number][];
  amps: [number, number][];
  signingSeed: string;
  agreementKey: string;
}

const secret = (name: string, use: string) =>
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
      }),
    );
  }
  return out;
}

/** An identity as listed in a vector file: secrets, and the public values they give. */
async function identityJson(provider: CryptoProvider, spec: IdentitySpec, id: Identity) {
  return {
    ...spec,
    signingKey: toHex(id.card.signingKey),
    agreementPublicKey: toHex(id.card.agreementKey),
    id: toHex(id.card.id),
    fingerprint: await fingerprint(provider, id.card),
    card: toHex(id.card.bytes),
    cardText: cardToText(id.card),
  };
}

function get<T>(map: Map<string, T>, name: string): T {
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

const MAGIC = new Uint8Array([0xd9, 0xd9, 0xf7]);

function editMap(bytes: Uint8Array, m: Mutation): Bytes {
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

function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

/** An AMP body: the AMP pair, its exact bytes, and the message it decodes to. */
interface Body {
  amp: [number, number];
  body: Uint8Array;
  message?: unknown;
}

const text1 = (text: string): Body => ({
  amp: [1, 1],
  body: textV1.encode({ text }),
  message: { text },
});
const text2 = (text: string, nonce: Uint8Array, gz = storedGzip(utf8(text))): Body => ({
  amp: [1, 2],
  body: encodeCbor(new Map<number, CborValue>([[1, gz], [2, nonce]])),
  message: { text, nonce: toHex(nonce) },
});
const notification = (n: { kind: string; title: string; body?: string; uri?: string }): Body => ({
  amp: [2, 1],
  body: notificationV1.encode(n),
  message: n,
});
const rawBody = (amp: [number, number], body: Uint8Array): Body => ({
  amp,
  body: new Uint8Array(body),
});

/** The decoded message as JSON: byte fields as hex. */
export function jsonMessage(m: unknown): unknown {
  if (m instanceof Uint8Array) return toHex(m);
  if (m === null || typeof m !== "object") return m;
  return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, jsonMessage(v)]));
}

// ---------------------------------------------------------------------------------------
// Sealing and opening message vectors from their stated inputs

/** What a message vector was sealed from. */
export interface SealInputs {
  stp: [number, number];
  amp: [number, number];
  /** The AMP message, for people; `ampBody` is what was sealed. */
  message?: unknown;
  ampBody: string;
  /** Identity whose address, ID and (by default) card and signing key seal. */
  sender?: string;
  /** Identity whose signing seed signs instead (forgeries). */
  signWith?: string;
  /** Card attached: an identity's, none (false), or these bytes. Default: the sender's. */
  attachCard?: string | false | { hex: string };
  recipient?: string;
  sequenceNumber?: number;
  hashDestination?: boolean;
  now: number;
  /** STP options (psk: `psk` key text, or `passphrase` and `work-factor`). */
  options?: Record<string, string>;
  /** The random stream's seed and the draws taken from it, in order. */
  random: { seed: string } & Record<string, string>;
}

/** How a message vector is opened. */
export interface OpenInputs {
  identity?: string;
  trusted?: string[];
  /** A replay cache with this clock (and window); absent: no replay check. */
  replay?: { now: number; skewMs?: number; lifetimeMs?: number };
  /** Opens of the same envelope with the same cache; all but the last must succeed. */
  times?: number;
  /** STP options (psk: the shared secret, `ttl` in seconds, `now` in ms). */
  options?: Record<string, string>;
}

const DRAW_NAMES: Record<string, string[]> = {
  "2": ["nonce", "ephemeralSecret", "messageKey"],
  "6/1": ["nonce", "salt", "aeadNonce"],
  "6/2": ["nonce", "iv"],
};
const drawNames = ([type, version]: [number, number]) =>
  DRAW_NAMES[`${type}/${version}`] ?? DRAW_NAMES[`${type}`] ?? ["nonce"];

function fixedBodyAmp(amp: [number, number], body: Bytes): AmpPlugin<null> {
  return {
    kind: "amp",
    type: amp[0],
    version: amp[1],
    name: "vector-body",
    description: "returns the vector's AMP body as is",
    encode: () => body,
    decode: () => null,
    fromInput: () => null,
    toOutput: () => body,
    toJson: () => null,
  };
}

/** Seals a vector from its inputs; returns the envelope and the random draws taken. */
export async function sealFromInputs(
  inputs: SealInputs,
  ids: Map<string, Identity>,
  provider: CryptoProvider,
  registry: Registry = defaultRegistry(),
): Promise<{ envelope: Bytes; draws: Bytes[] }> {
  let sender: Identity | undefined;
  const attach = inputs.attachCard ?? inputs.sender;
  if (inputs.sender) {
    const claimed = get(ids, inputs.sender);
    const signer = get(ids, inputs.signWith ?? inputs.sender);
    const cardBytes = attach === false || attach === undefined
      ? claimed.card.bytes
      : typeof attach === "string"
      ? get(ids, attach).card.bytes
      : fromHex(attach.hex)!;
    sender = {
      card: { ...claimed.card, bytes: cardBytes },
      signingSeed: signer.signingSeed,
      agreementKey: claimed.agreementKey,
    };
  }
  const stream = randomStream(inputs.random.seed);
  const draws: Bytes[] = [];
  const envelope = await sealMessage({
    stp: registry.stp(...inputs.stp),
    amp: fixedBodyAmp(inputs.amp, fromHex(inputs.ampBody)!),
    message: null,
    sender,
    recipients: inputs.recipient ? [get(ids, inputs.recipient).card] : [],
    sequenceNumber: inputs.sequenceNumber,
    includeCard: attach !== false,
    hashDestination: inputs.hashDestination ?? false,
    options: inputs.options,
    crypto: provider,
    now: inputs.now,
    random: (n) => {
      const b = stream(n);
      draws.push(b.slice()); // seal wipes what it was given
      return b;
    },
  });
  return { envelope, draws };
}

/** Opens a vector's envelope as its inputs say; returns the last open's result. */
export async function openFromInputs(
  envelope: Uint8Array,
  inputs: OpenInputs,
  ids: Map<string, Identity>,
  provider: CryptoProvider,
  registry: Registry = defaultRegistry(),
): Promise<OpenedMessage> {
  const replay = inputs.replay &&
    new MemoryReplayCache({ ...inputs.replay, now: () => inputs.replay!.now });
  const request = {
    identity: inputs.identity ? get(ids, inputs.identity) : undefined,
    trusted: (inputs.trusted ?? []).map((n) => get(ids, n).card),
    replay,
    options: inputs.options,
    crypto: provider,
  };
  let opened: OpenedMessage | undefined;
  for (let i = 0; i < (inputs.times ?? 1); i++) {
    opened = await openMessage(registry, envelope, request);
  }
  return opened!;
}

/** The facts of a successful open that a vector states. */
export function describeOpened(o: OpenedMessage) {
  return {
    outcome: "success",
    header: { ...o.header, sequenceNumber: o.header.sequenceNumber ?? null },
    amp: [o.amp.type, o.amp.version],
    timestamp: o.inner.timestamp,
    nonce: toHex(o.inner.nonce),
    sender: o.sender
      ? {
        address: o.sender.address,
        id: o.sender.card ? toHex(o.sender.card.id) : null,
        verified: o.sender.verified,
        trusted: o.sender.trusted,
      }
      : null,
    destination: o.inner.destination ?? null,
    bodySha256: toHex(sha256(o.inner.body)),
    message: jsonMessage(o.message),
  };
}

/**
 * Opens a simple (type 2) envelope as SPEC §5 describes, with @noble primitives and no
 * missive STP code, and returns every intermediate value as hex. Throws when the hashed
 * destination, the MAC or the signature does not check out. The vectors state these
 * values so that an implementer can find the first step where they go wrong.
 */
export function simpleIntermediates(
  envelope: Uint8Array,
  me: Identity,
  ids: Map<string, Identity>,
): Record<string, string> {
  const env = decodeEnvelope(envelope);
  const version = env.protocolVersion;
  const label = (use: string) => `missive/stp/simple/v${version}/${use}`;
  const p = decodeCbor(env.payload) as CborMap;
  const [nonce, eph, wrapped, ct, mac] = [1, 5, 6, 7, 8].map((k) => p.get(k) as Bytes);
  const dest = p.get(3) as string | Bytes;
  const out: Record<string, string> = {};
  if (dest instanceof Uint8Array) {
    const want = hmac(sha256, nonce, transcript(label("destination"), me.card.address, me.card.id));
    if (!equalBytes(dest, want)) throw new Error("hashed destination does not match");
    out.hashedDestination = toHex(want);
  }
  const shared = x25519.getSharedSecret(me.agreementKey, eph);
  const kek = hkdf(
    sha256,
    shared,
    concatBytes(eph, me.card.agreementKey),
    transcript(label("kek")),
    32,
  );
  const wrapAad = transcript(label("wrap"), nonce, me.card.id);
  const messageKey = gcm(kek, new Uint8Array(12), wrapAad).decrypt(wrapped);
  const okm = hkdf(sha256, messageKey, nonce, transcript(label("keys")), 76);
  const bound: CborValue[] = [
    env.protocolType,
    version,
    env.sequenceNumber ?? null,
    nonce,
    version >= 2 ? p.get(2) as number : null,
    dest,
    p.get(4) ?? null,
    eph,
    wrapped,
  ];
  const macInput = transcript(label("mac"), ...bound, ct);
  if (!equalBytes(hmac(sha256, okm.slice(44), macInput), mac)) {
    throw new Error("MAC does not verify");
  }
  const aad = transcript(label("aad"), ...bound);
  const plaintext = gcm(okm.slice(0, 32), okm.slice(32, 44), aad).decrypt(ct);
  const inner = decodeCbor(plaintext) as CborMap;
  const signer = [...ids.values()].find((i) => equalBytes(i.card.id, inner.get(5) as Bytes));
  const signed = transcript(
    label("sig"),
    ...bound,
    me.card.id,
    inner.get(4) as string,
    inner.get(5) as Bytes,
    inner.get(1) as number,
    inner.get(2) as number,
    inner.get(3) as Bytes,
  );
  if (!signer || !ed25519.verify(inner.get(7) as Bytes, signed, signer.card.signingKey)) {
    throw new Error("signature does not verify");
  }
  return {
    ...out,
    sharedSecret: toHex(shared),
    kek: toHex(kek),
    wrapAad: toHex(wrapAad),
    messageKey: toHex(messageKey),
    payloadKey: toHex(okm.slice(0, 32)),
    payloadNonce: toHex(okm.slice(32, 44)),
    macKey: toHex(okm.slice(44)),
    aad: toHex(aad),
    inner: toHex(plaintext),
    signatureInput: toHex(signed),
  };
}

/** Runs `f`; returns the MissiveError code it threw, or "success". */
async function outcomeOf(f: () => Promise<unknown> | unknown): Promise<ErrorCode | "success"> {
  try {
    await f();
    return "success";
  } catch (e) {
    if (e instanceof MissiveError) return e.code;
    throw e;
  }
}

/** The failure kind a vector names: the error code, or "armor" for armor failures. */
type Outcome = "success" | ErrorCode | "armor";
const failure = (outcome: Outcome, error: ErrorCode) => ({ outcome, error });

// ---------------------------------------------------------------------------------------
// Message cases (simple, auth, plain)

interface MessageCase {
  name: string;
  comment: string;
  seal: {
    stp: [number, number];
    body: Body;
    sender?: string;
    signWith?: string;
    attachCard?: string | false | "bad-self-signature";
    recipient?: string;
    sequenceNumber?: number;
    hashDestination?: boolean;
    now?: number;
    options?: Record<string, string>;
  };
  mutations?: Mutation[];
  open: OpenInputs;
  expect: ErrorCode | "success";
}

const NONCE8 = fromHex("0001020304050607")!;
const xor = (target: Target, key: number, offset = 0, mask = 1): Mutation => ({
  op: "xor",
  target,
  key,
  offset,
  mask,
});
const set = (target: Target, key: number, value: JsonCbor): Mutation => ({
  op: "set",
  target,
  key,
  value,
});
const del = (target: Target, key: number): Mutation => ({ op: "delete", target, key });
const bytesOf = (hex: string): JsonCbor => ({ bytes: hex });

async function buildMessageVectors(
  provider: CryptoProvider,
  ids: Map<string, Identity>,
  prefix: string,
  cases: MessageCase[],
) {
  const registry = defaultRegistry();
  const badCard = applyMutations(get(ids, "alice").card.bytes, [xor("card", 8, 0, 1)]);
  const vectors = [];
  for (const c of cases) {
    const s = c.seal;
    const attach = s.attachCard === "bad-self-signature" ? { hex: toHex(badCard) } : s.attachCard;
    const seal: SealInputs = {
      stp: s.stp,
      amp: s.body.amp,
      ...(s.body.message === undefined ? {} : { message: s.body.message }),
      ampBody: toHex(s.body.body),
      ...(s.sender ? { sender: s.sender } : {}),
      ...(s.signWith ? { signWith: s.signWith } : {}),
      ...(attach === undefined ? {} : { attachCard: attach }),
      ...(s.recipient ? { recipient: s.recipient } : {}),
      ...(s.sequenceNumber === undefined ? {} : { sequenceNumber: s.sequenceNumber }),
      ...(s.hashDestination ? { hashDestination: true } : {}),
      now: s.now ?? NOW,
      ...(s.options ? { options: s.options } : {}),
      random: { seed: `${prefix}/${c.name}` },
    };
    const { envelope: sealed, draws } = await sealFromInputs(seal, ids, provider, registry);
    const names = drawNames(s.stp);
    if (draws.length !== names.length) throw new Error(`${c.name}: ${draws.length} random draws`);
    names.forEach((n, i) => (seal.random[n] = toHex(draws[i])));
    const envelope = applyMutations(sealed, c.mutations ?? []);
    let expect: unknown;
    try {
      expect = describeOpened(await openFromInputs(envelope, c.open, ids, provider, registry));
    } catch (e) {
      if (!(e instanceof MissiveError)) throw e;
      expect = failure(e.code, e.code);
    }
    const got = (expect as { outcome: string }).outcome;
    if (got !== c.expect) throw new Error(`${prefix}/${c.name}: expected ${c.expect}, got ${got}`);
    vectors.push({
      name: c.name,
      comment: c.comment,
      seal,
      ...(c.mutations ? { mutations: c.mutations } : {}),
      envelope: toHex(envelope),
      open: c.open,
      expect,
      ...(prefix === "simple" && c.expect === "success"
        ? { intermediates: simpleIntermediates(envelope, get(ids, c.open.identity!), ids) }
        : {}),
    });
  }
  return vectors;
}

function simpleCases(): MessageCase[] {
  const cases: MessageCase[] = [];
  const v2 = [2, 2] as [number, number];
  const v1 = [2, 1] as [number, number];
  const base = (stp: [number, number], extra: Partial<MessageCase["seal"]> = {}) => ({
    stp,
    body: text1("hello bob"),
    sender: "alice",
    recipient: "bob",
    ...extra,
  });
  const bob = { identity: "bob" };
  const bobTrusts = { identity: "bob", trusted: ["alice"] };
  const ok = (
    name: string,
    comment: string,
    seal: MessageCase["seal"],
    open: OpenInputs = bob,
    mutations?: Mutation[],
  ) => cases.push({ name, comment, seal, open, mutations, expect: "success" });
  const bad = (
    expect: ErrorCode,
    name: string,
    comment: string,
    seal: MessageCase["seal"],
    mutations?: Mutation[],
    open: OpenInputs = bob,
  ) => cases.push({ name, comment, seal, open, mutations, expect });

  // Successes.
  ok("v2/plain-destination/card", "simple v2 to bob's address, alice's card attached", base(v2));
  ok("v2/plain-destination/card/trusted", "as above; bob trusts alice's card", base(v2), bobTrusts);
  ok(
    "v2/plain-destination/seq-7",
    "with envelope sequence number 7",
    base(v2, { sequenceNumber: 7 }),
  );
  ok(
    "v2/plain-destination/seq-0",
    "sequence number 0 is present, not absent",
    base(v2, { sequenceNumber: 0 }),
  );
  ok(
    "v2/hashed-destination/card",
    "destination sent as the keyed hash",
    base(v2, { hashDestination: true }),
  );
  ok(
    "v2/plain-destination/no-card",
    "no card attached; bob has alice's card",
    base(v2, { attachCard: false }),
    bobTrusts,
  );
  ok(
    "v2/hashed-destination/no-card",
    "hashed destination, no card",
    base(v2, { hashDestination: true, attachCard: false }),
    bobTrusts,
  );
  ok("v2/empty-text", "an empty text v1 body", base(v2, { body: text1("") }));
  ok(
    "v2/unicode-text",
    "UTF-8 text with non-ASCII characters",
    base(v2, { body: text1("grüße, 世界 🌍\n") }),
  );
  ok(
    "v2/text-v2",
    "text v2 body (stored-block gzip)",
    base(v2, { body: text2("hello bob, compressed", NONCE8) }),
  );
  ok(
    "v2/notification",
    "notification v1 body",
    base(v2, {
      body: notification({
        kind: "missed-call",
        title: "Missed call from alice",
        uri: "sip:alice@example.org",
      }),
    }),
  );
  ok(
    "v2/replay-cache/first-open",
    "first open with a replay cache whose clock equals the timestamp",
    base(v2),
    { identity: "bob", replay: { now: NOW } },
  );
  ok("v1/plain-destination/card", "simple v1 (legacy): the timestamp is not bound", base(v1));
  ok(
    "v1/hashed-destination/card",
    "simple v1, hashed destination",
    base(v1, { hashDestination: true }),
  );
  ok(
    "v1/plain-destination/no-card",
    "simple v1 without card; bob trusts alice",
    base(v1, { attachCard: false }),
    bobTrusts,
  );
  ok(
    "v1/timestamp-altered",
    "v1 does not authenticate the timestamp: an altered one still opens",
    base(v1),
    bob,
    [set("payload", 2, NOW + 86_400_000)],
  );

  // Not a recipient.
  bad(
    "not-a-recipient",
    "v2/plain-destination/opened-by-carol",
    "carol is not the recipient",
    base(v2),
    undefined,
    { identity: "carol" },
  );
  bad(
    "not-a-recipient",
    "v2/hashed-destination/opened-by-carol",
    "the hash does not match carol",
    base(v2, { hashDestination: true }),
    undefined,
    { identity: "carol" },
  );
  bad(
    "not-a-recipient",
    "v1/plain-destination/opened-by-carol",
    "simple v1, carol",
    base(v1),
    undefined,
    { identity: "carol" },
  );
  bad(
    "not-a-recipient",
    "v1/hashed-destination/opened-by-carol",
    "simple v1 hashed, carol",
    base(v1, { hashDestination: true }),
    undefined,
    { identity: "carol" },
  );
  bad(
    "not-a-recipient",
    "v2/recipient-id-of-carol",
    "field 4 replaced by carol's ID: address and ID must both match",
    base(v2),
    [{ op: "set", target: "payload", key: 4, value: { bytes: "@carol-id" } }],
  );
  bad(
    "not-a-recipient",
    "v2/destination-carol-address",
    "field 3 replaced by carol's address",
    base(v2),
    [set("payload", 3, "carol@example.org")],
  );
  bad(
    "not-a-recipient",
    "v2/hashed-destination/flipped",
    "one bit of the hashed destination flipped",
    base(v2, { hashDestination: true }),
    [xor("payload", 3)],
  );
  bad(
    "not-a-recipient",
    "v2/hashed-destination/nonce-flipped",
    "the nonce keys the destination hash, so the check fails first",
    base(v2, { hashDestination: true }),
    [xor("payload", 1)],
  );

  // Malformed payloads.
  bad(
    "malformed",
    "v2/payload/unknown-field-9",
    "simple payloads refuse unknown fields",
    base(v2),
    [set("payload", 9, 0)],
  );
  bad("malformed", "v2/payload/no-mac", "field 8 missing", base(v2), [del("payload", 8)]);
  bad(
    "malformed",
    "v2/payload/plain-destination-without-id",
    "field 4 missing next to a text destination",
    base(v2),
    [del("payload", 4)],
  );
  bad(
    "malformed",
    "v2/payload/hashed-destination-with-id",
    "field 4 present next to a hashed destination",
    base(v2, { hashDestination: true }),
    [{ op: "set", target: "payload", key: 4, value: { bytes: "@bob-id" } }],
  );
  bad("malformed", "v2/payload/nonce-15-bytes", "nonce must be 16 bytes", base(v2), [
    set("payload", 1, bytesOf("000102030405060708090a0b0c0d0e")),
  ]);
  bad("malformed", "v2/payload/ephemeral-31-bytes", "ephemeral key must be 32 bytes", base(v2), [
    set("payload", 5, bytesOf("09".repeat(31))),
  ]);
  bad("malformed", "v2/payload/wrapped-key-47-bytes", "wrapped key must be 48 bytes", base(v2), [
    set("payload", 6, bytesOf("00".repeat(47))),
  ]);
  bad(
    "malformed",
    "v2/payload/ciphertext-15-bytes",
    "ciphertext shorter than a GCM tag",
    base(v2),
    [set("payload", 7, bytesOf("00".repeat(15)))],
  );
  bad(
    "malformed",
    "v2/payload/destination-integer",
    "destination must be text or 32 bytes",
    base(v2),
    [set("payload", 3, 5)],
  );
  bad(
    "malformed",
    "v2/payload/hashed-destination-31-bytes",
    "a hashed destination is 32 bytes",
    base(v2, { hashDestination: true }),
    [set("payload", 3, bytesOf("00".repeat(31)))],
  );
  bad("malformed", "v2/payload/timestamp-negative", "timestamp is an unsigned integer", base(v2), [
    set("payload", 2, -1),
  ]);
  bad(
    "malformed",
    "v2/payload/non-canonical-map-length",
    "payload map length written as b8 08 instead of a8",
    base(v2),
    [{ op: "splice", target: "payload", offset: 0, remove: 1, insert: "b808" }],
  );
  bad("malformed", "v2/payload/not-a-map", "payload is a CBOR array", base(v2), [
    set("envelope", 4, bytesOf("8101")),
  ]);

  // Authentication failures.
  bad("auth-failed", "v2/mac-flipped", "first MAC byte flipped", base(v2), [xor("payload", 8)]);
  bad(
    "auth-failed",
    "v2/ciphertext-flipped",
    "first ciphertext byte flipped (the MAC check fails)",
    base(v2),
    [xor("payload", 7)],
  );
  bad("auth-failed", "v2/gcm-tag-flipped", "last ciphertext byte (GCM tag) flipped", base(v2), [
    xor("payload", 7, -1, 0x80),
  ]);
  bad("auth-failed", "v2/wrapped-key-flipped", "the message key does not unwrap", base(v2), [
    xor("payload", 6),
  ]);
  bad(
    "auth-failed",
    "v2/wrong-ephemeral",
    "ephemeral key replaced by carol's public key",
    base(v2),
    [{ op: "set", target: "payload", key: 5, value: { bytes: "@carol-agreement" } }],
  );
  bad(
    "auth-failed",
    "v2/ephemeral-zero",
    "all-zero (low-order) ephemeral key: X25519 output is zero",
    base(v2),
    [set("payload", 5, bytesOf("00".repeat(32)))],
  );
  bad("auth-failed", "v2/ephemeral-one", "u = 1 (low-order) ephemeral key", base(v2), [
    set("payload", 5, bytesOf("01" + "00".repeat(31))),
  ]);
  bad("auth-failed", "v2/nonce-flipped", "the nonce is in the wrap AAD", base(v2), [
    xor("payload", 1),
  ]);
  bad("auth-failed", "v2/timestamp-altered", "v2 binds the timestamp", base(v2), [
    set("payload", 2, NOW + 1),
  ]);
  bad(
    "auth-failed",
    "v2/seq-changed",
    "sequence number 7 changed to 8",
    base(v2, { sequenceNumber: 7 }),
    [set("envelope", 3, 8)],
  );
  bad(
    "auth-failed",
    "v2/seq-added",
    "a sequence number added to an envelope sealed without one",
    base(v2),
    [set("envelope", 3, 0)],
  );
  bad(
    "auth-failed",
    "v2/seq-removed",
    "the sequence number removed",
    base(v2, { sequenceNumber: 7 }),
    [del("envelope", 3)],
  );
  bad(
    "auth-failed",
    "v2/relabelled-v1",
    "a v2 payload under envelope version 1: v1 labels derive other keys",
    base(v2),
    [set("envelope", 2, 1)],
  );
  bad("auth-failed", "v1/relabelled-v2", "a v1 payload under envelope version 2", base(v1), [
    set("envelope", 2, 2),
  ]);
  bad(
    "auth-failed",
    "v2/forged-signature/card",
    "mallory signs as alice, attaching alice's card",
    base(v2, { signWith: "mallory" }),
  );
  bad(
    "auth-failed",
    "v2/forged-signature/trusted",
    "mallory signs as alice, no card; bob trusts alice",
    base(v2, { signWith: "mallory", attachCard: false }),
    undefined,
    bobTrusts,
  );
  bad(
    "auth-failed",
    "v1/forged-signature/card",
    "simple v1 forgery",
    base(v1, { signWith: "mallory" }),
  );
  bad(
    "auth-failed",
    "v2/card-of-another-identity",
    "claims alice but attaches mallory's (valid) card",
    base(v2, { signWith: "mallory", attachCard: "mallory" }),
  );
  bad(
    "auth-failed",
    "v2/card-bad-self-signature",
    "alice's card with its self-signature flipped",
    base(v2, { attachCard: "bad-self-signature" }),
  );

  // Untrusted: no card attached and none trusted with the sender's ID.
  bad("untrusted", "v2/no-card/no-trust", "bob trusts nobody", base(v2, { attachCard: false }));
  bad(
    "untrusted",
    "v2/hashed-destination/no-card/trusts-carol",
    "bob trusts only carol",
    base(v2, { attachCard: false, hashDestination: true }),
    undefined,
    { identity: "bob", trusted: ["carol"] },
  );
  bad(
    "untrusted",
    "v1/no-card/no-trust",
    "simple v1, bob trusts nobody",
    base(v1, { attachCard: false }),
  );

  // Replay.
  bad(
    "replay",
    "v2/replayed",
    "the same envelope opened twice with one replay cache",
    base(v2),
    undefined,
    { identity: "bob", replay: { now: NOW }, times: 2 },
  );
  bad("replay", "v1/replayed", "simple v1 opened twice", base(v1), undefined, {
    identity: "bob",
    replay: { now: NOW },
    times: 2,
  });
  bad("replay", "v2/too-old", "timestamp older than now − lifetime − skew", base(v2), undefined, {
    identity: "bob",
    replay: { now: NOW + 86_400_000 + 25_000 + 1 },
  });
  bad("replay", "v2/from-the-future", "timestamp later than now + skew", base(v2), undefined, {
    identity: "bob",
    replay: { now: NOW - 25_001 },
  });

  // Unknown protocols and bad AMP bodies inside an authentic message.
  bad("unknown-protocol", "v2/envelope-version-3", "no STP (2, 3)", base(v2), [
    set("envelope", 2, 3),
  ]);
  bad(
    "unknown-protocol",
    "v2/unknown-amp",
    "AMP (99, 1) is not registered",
    base(v2, { body: rawBody([99, 1], utf8("?")) }),
  );
  bad(
    "unknown-protocol",
    "v2/unknown-amp-version",
    "AMP (1, 3) is not registered",
    base(v2, { body: rawBody([1, 3], utf8("?")) }),
  );
  bad(
    "malformed",
    "v2/text-v1-invalid-utf8",
    "authentic message, body not UTF-8",
    base(v2, { body: rawBody([1, 1], fromHex("68c328")!) }),
  );
  bad(
    "malformed",
    "v2/text-v2-bad-gzip",
    "authentic message, text v2 body with a bad gzip stream",
    base(v2, { body: text2("x", NONCE8, fromHex("1f8b0800")!) }),
  );
  bad(
    "malformed",
    "v2/notification-empty-title",
    "authentic message, notification title empty",
    base(v2, { body: rawBody([2, 1], encodeCbor(new Map([[1, "notice"], [2, ""]]))) }),
  );
  return cases;
}

function authCases(): MessageCase[] {
  const cases: MessageCase[] = [];
  const a1 = [4, 1] as [number, number];
  const base = (extra: Partial<MessageCase["seal"]> = {}) => ({
    stp: a1,
    body: text1("signed notice"),
    sender: "alice",
    ...extra,
  });
  const anyone = {};
  const ok = (
    name: string,
    comment: string,
    seal: MessageCase["seal"],
    open: OpenInputs = anyone,
  ) => cases.push({ name, comment, seal, open, expect: "success" });
  const bad = (
    expect: ErrorCode,
    name: string,
    comment: string,
    seal: MessageCase["seal"],
    mutations?: Mutation[],
    open: OpenInputs = anyone,
  ) => cases.push({ name, comment, seal, open, mutations, expect });

  ok("card", "signed by alice, card attached, no destination", base());
  ok("card/trusted", "as above, opener trusts alice", base(), { trusted: ["alice"] });
  ok("destination", "destination bob@example.org signed in the clear", base({ recipient: "bob" }));
  ok("seq-3", "sequence number 3", base({ sequenceNumber: 3 }));
  ok("no-card/trusted", "no card; the opener trusts alice", base({ attachCard: false }), {
    trusted: ["alice"],
  });
  ok("text-v2", "text v2 body", base({ body: text2("signed and compressed", NONCE8) }));
  ok(
    "notification",
    "notification body",
    base({
      body: notification({
        kind: "notice",
        title: "Maintenance at 22:00",
        body: "The relay restarts.",
      }),
    }),
  );
  ok("replay-cache/first-open", "first open with a replay cache", base(), { replay: { now: NOW } });

  bad("auth-failed", "signature-flipped", "first signature byte flipped", base(), [
    xor("payload", 10),
  ]);
  bad("auth-failed", "body-altered", "body replaced", base(), [
    set("payload", 9, bytesOf(toHex(utf8("forged notice")))),
  ]);
  bad("auth-failed", "timestamp-altered", "timestamp + 1 ms", base(), [set("payload", 2, NOW + 1)]);
  bad("auth-failed", "nonce-flipped", "nonce bit flipped", base(), [xor("payload", 1)]);
  bad(
    "auth-failed",
    "card-stripped",
    "the signed card removed (alice trusted, so the card is not needed to verify)",
    base(),
    [del("payload", 5)],
    { trusted: ["alice"] },
  );
  bad(
    "auth-failed",
    "destination-added",
    "a destination added to a message signed without one",
    base(),
    [set("payload", 6, "bob@example.org")],
  );
  bad(
    "auth-failed",
    "destination-changed",
    "destination changed to carol",
    base({ recipient: "bob" }),
    [set("payload", 6, "carol@example.org")],
  );
  bad("auth-failed", "amp-version-changed", "AMP (1, 1) relabelled (1, 2)", base(), [
    set("payload", 8, 2),
  ]);
  bad("auth-failed", "seq-added", "sequence number added", base(), [set("envelope", 3, 1)]);
  bad("auth-failed", "seq-changed", "sequence number 3 changed to 4", base({ sequenceNumber: 3 }), [
    set("envelope", 3, 4),
  ]);
  bad(
    "auth-failed",
    "forged/card",
    "mallory signs as alice with alice's card",
    base({ signWith: "mallory" }),
  );
  bad(
    "auth-failed",
    "forged/trusted",
    "mallory signs as alice, no card, alice trusted",
    base({ signWith: "mallory", attachCard: false }),
    undefined,
    { trusted: ["alice"] },
  );
  bad(
    "auth-failed",
    "card-of-another-identity",
    "claims alice, attaches mallory's card",
    base({ signWith: "mallory", attachCard: "mallory" }),
  );
  bad(
    "auth-failed",
    "sender-address-changed",
    "sender address changed to carol: the card's address differs",
    base(),
    [set("payload", 3, "carol@example.org")],
  );
  bad(
    "auth-failed",
    "card-bad-self-signature",
    "attached card with a broken self-signature",
    base({ attachCard: "bad-self-signature" }),
  );
  bad("untrusted", "no-card/no-trust", "no card and no trusted card", base({ attachCard: false }));
  bad("malformed", "unknown-field-11", "auth payloads refuse unknown fields", base(), [
    set("payload", 11, 0),
  ]);
  bad("malformed", "no-signature", "field 10 missing", base(), [del("payload", 10)]);
  bad("malformed", "signature-63-bytes", "signature must be 64 bytes", base(), [
    set("payload", 10, bytesOf("00".repeat(63))),
  ]);
  bad("malformed", "sender-id-15-bytes", "sender ID must be 16 bytes", base(), [
    set("payload", 4, bytesOf("00".repeat(15))),
  ]);
  bad("malformed", "nonce-17-bytes", "nonce must be 16 bytes", base(), [
    set("payload", 1, bytesOf("00".repeat(17))),
  ]);
  bad("unknown-protocol", "envelope-version-2", "no STP (4, 2)", base(), [set("envelope", 2, 2)]);
  bad(
    "unknown-protocol",
    "unknown-amp",
    "AMP (1001, 1) is not registered",
    base({ body: rawBody([1001, 1], utf8("?")) }),
  );
  bad("replay", "replayed", "opened twice with one replay cache", base(), undefined, {
    replay: { now: NOW },
    times: 2,
  });
  return cases;
}

/** psk (SPEC §13): a fixed 32-byte key, its base64url text as a key file holds it. */
const PSK_KEY = toBase64(new Uint8Array(32).map((_, i) => 0xa0 + i), true) + "=";
const PSK_OTHER_KEY = toBase64(new Uint8Array(32).map((_, i) => 0x10 + i), true) + "=";
const PSK_PASSPHRASE = { passphrase: "psk vector passphrase", "work-factor": "10" };

function pskCases(): MessageCase[] {
  const cases: MessageCase[] = [];
  const v1 = [6, 1] as [number, number], v2 = [6, 2] as [number, number];
  const key = { psk: PSK_KEY };
  const base = (stp = v1, options: Record<string, string> = key) => ({
    stp,
    body: text1("shared secret"),
    options,
  });
  const add = (
    expect: ErrorCode | "success",
    name: string,
    comment: string,
    seal: MessageCase["seal"],
    open: OpenInputs,
    mutations?: Mutation[],
  ) => cases.push({ name, comment, seal, open, mutations, expect });
  const ok = "success";

  add(ok, "v1/key", "v1, key file: HKDF-SHA-256 key, XChaCha20-Poly1305", base(), { options: key });
  add(ok, "v1/key/sender-seq", "v1 with a sender label and sequence number 3", {
    ...base(),
    sender: "alice",
    sequenceNumber: 3,
  }, { options: key });
  add(ok, "v1/passphrase", "v1, passphrase: scrypt logN 10 (field 2)", base(v1, PSK_PASSPHRASE), {
    options: { passphrase: PSK_PASSPHRASE.passphrase },
  });
  add(ok, "v2/key", "v2: the payload is a Fernet token", base(v2), { options: key });
  add("auth-failed", "v1/wrong-key", "another key: no not-a-recipient for psk", base(), {
    options: { psk: PSK_OTHER_KEY },
  });
  add("auth-failed", "v1/wrong-passphrase", "another passphrase", base(v1, PSK_PASSPHRASE), {
    options: { passphrase: "not the psk passphrase" },
  });
  add(
    "key",
    "v1/passphrase-given-key",
    "sealed with a passphrase, opened with a key",
    base(v1, PSK_PASSPHRASE),
    {
      options: key,
    },
  );
  add("auth-failed", "v1/ciphertext-flip", "one ciphertext bit flipped", base(), { options: key }, [
    xor("payload", 4, 0, 1),
  ]);
  add("auth-failed", "v1/tag-flip", "last tag bit flipped", base(), { options: key }, [
    xor("payload", 4, -1, 0x80),
  ]);
  add("auth-failed", "v1/salt-flip", "salt changed: another key", base(), { options: key }, [
    xor("payload", 1, 0, 1),
  ]);
  add(
    "auth-failed",
    "v1/seq-changed",
    "envelope sequence number changed (bound in AAD)",
    {
      ...base(),
      sequenceNumber: 3,
    },
    { options: key },
    [set("envelope", 3, 4)],
  );
  add("malformed", "v1/unknown-field", "unknown payload field 5", base(), { options: key }, [
    set("payload", 5, "grease"),
  ]);
  add(
    "malformed",
    "v1/logN-21",
    "work factor above 20, refused before scrypt",
    base(v1, PSK_PASSPHRASE),
    {
      options: { passphrase: PSK_PASSPHRASE.passphrase },
    },
    [set("payload", 2, 21)],
  );
  add("malformed", "v1/nonce-short", "XChaCha20 nonce of 23 bytes", base(), { options: key }, [
    set("payload", 3, bytesOf("00".repeat(23))),
  ]);
  add("replay", "v1/expired", "TTL 60 s, opened 61 s later", base(), {
    options: { ...key, ttl: "60", now: String(NOW + 61_000) },
  });
  add("auth-failed", "v2/wrong-key", "another Fernet key", base(v2), {
    options: { psk: PSK_OTHER_KEY },
  });
  add("replay", "v2/expired", "TTL 60 s, opened 61 s later", base(v2), {
    options: { ...key, ttl: "60", now: String(NOW + 61_000) },
  });
  return cases;
}

function plainCases(): MessageCase[] {
  const cases: MessageCase[] = [];
  const p1 = [7, 1] as [number, number];
  const base = (extra: Partial<MessageCase["seal"]> = {}) => ({
    stp: p1,
    body: text1("not secret"),
    ...extra,
  });
  const ok = (
    name: string,
    comment: string,
    seal: MessageCase["seal"],
    mutations?: Mutation[],
    open: OpenInputs = {},
  ) => cases.push({ name, comment, seal, open, mutations, expect: "success" });
  const bad = (
    expect: ErrorCode,
    name: string,
    comment: string,
    seal: MessageCase["seal"],
    mutations?: Mutation[],
    open: OpenInputs = {},
  ) => cases.push({ name, comment, seal, open, mutations, expect });

  ok("anonymous", "no sender, no destination", base());
  ok(
    "sender-and-destination",
    "claimed (unverified) sender and a destination",
    base({ sender: "alice", recipient: "bob" }),
  );
  ok("seq-9", "sequence number 9", base({ sequenceNumber: 9 }));
  ok("unknown-field-ignored", "plain payloads ignore unknown fields (grease)", base(), [
    set("payload", 8, "grease"),
  ]);
  ok("text-v2", "text v2 body", base({ body: text2("plain and compressed", NONCE8) }));
  ok(
    "notification",
    "notification body",
    base({ body: notification({ kind: "receipt", title: "delivered" }) }),
  );
  ok("body-altered", "nothing is authenticated: an altered body opens", base(), [
    set("payload", 5, bytesOf(toHex(utf8("altered")))),
  ]);

  bad("malformed", "nonce-8-bytes", "nonce must be 16 bytes", base(), [
    set("payload", 1, bytesOf("00".repeat(8))),
  ]);
  bad("malformed", "no-body", "field 5 missing", base(), [del("payload", 5)]);
  bad("malformed", "amp-type-65536", "AMP type above 65535", base(), [set("payload", 3, 65536)]);
  bad("malformed", "timestamp-text", "timestamp must be an integer", base(), [
    set("payload", 2, "now"),
  ]);
  bad("malformed", "sender-255-characters", "sender text longer than 254", base(), [
    set("payload", 6, "a".repeat(255)),
  ]);
  bad("malformed", "payload-non-canonical-int", "AMP type 1 written as 18 01", base(), [{
    op: "splice",
    target: "payload",
    offset: 30,
    remove: 1,
    insert: "1801",
  }]);
  bad("malformed", "payload-trailing-byte", "one byte after the payload map", base(), [{
    op: "append",
    target: "payload",
    insert: "00",
  }]);
  bad(
    "malformed",
    "text-v1-invalid-utf8",
    "body is not UTF-8",
    base({ body: rawBody([1, 1], fromHex("ff")!) }),
  );
  bad(
    "unknown-protocol",
    "unknown-amp",
    "AMP (2, 9) is not registered",
    base({ body: rawBody([2, 9], new Uint8Array(0)) }),
  );
  bad("unknown-protocol", "envelope-version-2", "no STP (7, 2)", base(), [set("envelope", 2, 2)]);
  bad(
    "replay",
    "replayed/anonymous",
    "anonymous messages share one replay namespace",
    base(),
    undefined,
    { replay: { now: NOW }, times: 2 },
  );
  bad(
    "replay",
    "replayed/sender",
    "replayed under its claimed sender",
    base({ sender: "alice" }),
    undefined,
    { replay: { now: NOW }, times: 2 },
  );
  return cases;
}

/** Replaces "@name-id" / "@name-agreement" placeholders by the identity's public values. */
function resolvePlaceholders(cases: MessageCase[], ids: Map<string, Identity>): MessageCase[] {
  const resolve = (v: JsonCbor): JsonCbor => {
    if (v && typeof v === "object" && "bytes" in v && v.bytes.startsWith("@")) {
      const [name, what] = v.bytes.slice(1).split("-");
      const card = get(ids, name).card;
      return { bytes: toHex(what === "id" ? card.id : card.agreementKey) };
    }
    return v;
  };
  return cases.map((c) => ({
    ...c,
    mutations: c.mutations?.map((m) => (m.op === "set" ? { ...m, value: resolve(m.value) } : m)),
  }));
}

// ---------------------------------------------------------------------------------------
// Envelope, armor, card, key file and AMP body vectors

function envelopeVectors() {
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
    "unknown-stp-3-1",
    "well formed; no STP (3, 1) is registered",
    toHex(encodeEnvelope({ protocolType: 3, protocolVersion: 1, payload })),
    "unknown-protocol",
    "open",
  );
  bad(
    "unknown-stp-2-3",
    "well formed; no STP (2, 3)",
    toHex(encodeEnvelope({ protocolType: 2, protocolVersion: 3, payload })),
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

async function armorVectors(provider: CryptoProvider, ids: Map<string, Identity>) {
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

const toBase64Url = (b: Uint8Array) =>
  toLine(b).replace(/=+$/, "").replaceAll("+", "-").replaceAll("/", "_");

/** The last base64 character before padding, changed so that its padding bits are not zero. */
function nonCanonical(c: string, pad: number): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  return alphabet[alphabet.indexOf(c) | (pad === 1 ? 1 : 8)];
}

async function cardVectors(provider: CryptoProvider, ids: Map<string, Identity>) {
  const vectors: unknown[] = [];
  const describe = async (card: Card) => ({
    outcome: "success",
    address: card.address,
    signingKey: toHex(card.signingKey),
    agreementKey: toHex(card.agreementKey),
    stps: card.stps,
    amps: card.amps,
    created: card.created,
    id: toHex(card.id),
    fingerprint: await fingerprint(provider, card),
    card: toHex(card.bytes),
    cardText: cardToText(card),
  });
  const ok = async (
    name: string,
    comment: string,
    operation: "parse-text" | "decode",
    input: string,
    identity?: string,
  ) => {
    const card = operation === "decode"
      ? await decodeCard(provider, fromHex(input)!)
      : await parseCardText(provider, input);
    vectors.push({
      name,
      comment,
      ...(identity ? { identity } : {}),
      operation,
      input,
      expect: await describe(card),
    });
  };
  const bad = async (
    name: string,
    comment: string,
    operation: "parse-text" | "decode",
    input: string,
    code: ErrorCode,
    mutations?: Mutation[],
  ) => {
    const got = await outcomeOf(() =>
      operation === "decode"
        ? decodeCard(provider, fromHex(input)!)
        : parseCardText(provider, input)
    );
    if (got !== code) throw new Error(`card/${name}: expected ${code}, got ${got}`);
    vectors.push({
      name,
      comment,
      operation,
      ...(mutations ? { base: "alice", mutations } : {}),
      input,
      expect: failure(code, code),
    });
  };
  for (const name of ["alice", "bob", "carol", "mallory"]) {
    await ok(
      `${name}/text`,
      `${name}'s card as one line`,
      "parse-text",
      cardToText(get(ids, name).card),
      name,
    );
  }
  const alice = get(ids, "alice").card;
  await ok("alice/cbor", "alice's card as CBOR bytes", "decode", toHex(alice.bytes), "alice");
  await ok(
    "alice/card-file",
    "a card file: comment lines, then the card line",
    "parse-text",
    await cardFileText(provider, alice),
    "alice",
  );
  // A minimal card: no capabilities, created 0, made from its own seeds (stated here).
  const dave = {
    signingSeed: secret("dave", "signing"),
    agreementKey: secret("dave", "agreement"),
  };
  const minimal = await makeCard(provider, {
    address: "d@x.io",
    signingKey: await provider.ed25519PublicKey(fromHex(dave.signingSeed)!),
    agreementKey: await provider.x25519PublicKey(fromHex(dave.agreementKey)!),
    stps: [],
    amps: [],
    created: 0,
  }, fromHex(dave.signingSeed)!);
  vectors.push({
    name: "minimal",
    comment: "no capabilities, created 0; signing seed and agreement key stated",
    secrets: { ...dave, address: "d@x.io", stps: [], amps: [], created: 0 },
    operation: "decode",
    input: toHex(minimal.bytes),
    expect: await describe(await decodeCard(provider, minimal.bytes)),
  });

  const mutated = async (name: string, comment: string, code: ErrorCode, mutations: Mutation[]) =>
    await bad(
      name,
      comment,
      "decode",
      toHex(applyMutations(alice.bytes, mutations)),
      code,
      mutations,
    );
  const bob = get(ids, "bob").card;
  await mutated("bad-self-signature", "one bit of the self-signature flipped", "key", [
    xor("card", 8),
  ]);
  await mutated("address-changed", "address changed after signing", "key", [
    set("card", 2, "alicia@example.org"),
  ]);
  await mutated("created-changed", "creation time changed", "key", [set("card", 7, CREATED + 1)]);
  await mutated("capabilities-changed", "an STP pair removed", "key", [set("card", 5, [[2, 2]])]);
  await mutated("signing-key-swapped", "bob's signing key under alice's self-signature", "key", [
    set("card", 3, bytesOf(toHex(bob.signingKey))),
  ]);
  await mutated(
    "agreement-key-swapped",
    "bob's agreement key under alice's self-signature",
    "key",
    [set("card", 4, bytesOf(toHex(bob.agreementKey)))],
  );
  await mutated("format-2", "field 1 must be 1", "malformed", [set("card", 1, 2)]);
  await mutated("address-upper-case", "address not in normal (lower-case) form", "malformed", [
    set("card", 2, "Alice@example.org"),
  ]);
  await mutated("address-invalid", "address without a domain", "malformed", [
    set("card", 2, "alice"),
  ]);
  await mutated("signing-key-31-bytes", "signing key must be 32 bytes", "malformed", [
    set("card", 3, bytesOf("00".repeat(31))),
  ]);
  await mutated("signature-63-bytes", "signature must be 64 bytes", "malformed", [
    set("card", 8, bytesOf("00".repeat(63))),
  ]);
  await mutated("pair-out-of-range", "STP type 65536", "malformed", [set("card", 5, [[65536, 1]])]);
  await mutated("pair-three-numbers", "a pair is two numbers", "malformed", [
    set("card", 6, [[1, 1, 1]]),
  ]);
  await mutated("missing-created", "field 7 missing", "malformed", [del("card", 7)]);
  await mutated("created-negative", "created is unsigned", "malformed", [set("card", 7, -1)]);
  await mutated("non-canonical", "map length written as b8 08", "malformed", [{
    op: "splice",
    target: "card",
    offset: 0,
    remove: 1,
    insert: "b808",
  }]);
  await mutated("too-large", "4097 bytes or more (checked before decoding)", "too-large", [
    set("card", 9, bytesOf("00".repeat(4000))),
  ]);
  const text = cardToText(alice);
  await bad("text/padding", "base64url with '=' padding", "parse-text", text + "=", "malformed");
  await bad(
    "text/standard-alphabet",
    "'+' is not base64url",
    "parse-text",
    text.slice(0, 20) + "+" + text.slice(21),
    "malformed",
  );
  await bad(
    "text/wrong-prefix",
    "prefix must be missive-card:",
    "parse-text",
    text.replace("missive-card:", "missive-key:"),
    "malformed",
  );
  await bad(
    "text/no-prefix",
    "bare base64url",
    "parse-text",
    text.slice("missive-card:".length),
    "malformed",
  );
  await bad(
    "text/two-cards",
    "two card lines",
    "parse-text",
    text + "\n" + cardToText(bob) + "\n",
    "malformed",
  );
  await bad("text/empty", "nothing but comments", "parse-text", "# no card here\n", "malformed");
  return vectors;
}

/** A key file encrypted with a stated salt and nonce (SPEC §4), built without writeKeyFile. */
export function encryptedKeyFile(
  id: Identity,
  passphrase: string,
  logN: number,
  salt: Uint8Array,
  nonce: Uint8Array,
): string {
  const key = scrypt(utf8(passphrase), salt, { N: 2 ** logN, r: 8, p: 1, dkLen: 32 });
  const aad = transcript("missive/key/v1/scrypt-xchacha20poly1305", id.card.bytes, logN, salt);
  const sealed = xchacha20poly1305(key, nonce, aad).encrypt(
    concatBytes(id.signingSeed, id.agreementKey),
  );
  return keyFileText(
    id.card,
    new Map<number, CborValue>([[1, 1], [2, id.card.bytes], [4, logN], [5, salt], [6, nonce], [
      7,
      sealed,
    ]]),
    true,
  );
}

/** The text layout writeKeyFile uses: three comment lines, then the armored CBOR map. */
export function keyFileText(
  card: Card,
  fields: Map<number, CborValue>,
  encrypted: boolean,
): string {
  return [
    `# missive secret key for ${card.address}${encrypted ? " (passphrase-protected)" : ""}`,
    `# id: ${toHex(card.id)}`,
    `# card: ${cardToText(card)}`,
    armorBlock("MISSIVE SECRET KEY", encodeCbor(fields)),
  ].join("\n");
}

/** WebCrypto has no XChaCha20-Poly1305; key files borrow noble's, as crypto/mod.ts does. */
export function withNobleChaCha(p: CryptoProvider): CryptoProvider {
  return {
    ...p,
    name: `${p.name}+noble-chacha`,
    aeadEncrypt: (alg, ...rest) =>
      (alg === "aes-256-gcm" ? p : nobleProvider).aeadEncrypt(alg, ...rest),
    aeadDecrypt: (alg, ...rest) =>
      (alg === "aes-256-gcm" ? p : nobleProvider).aeadDecrypt(alg, ...rest),
  };
}

async function keyFileVectors(webProvider: CryptoProvider, ids: Map<string, Identity>) {
  const provider = withNobleChaCha(webProvider);
  const vectors: unknown[] = [];
  const alice = get(ids, "alice");
  const bob = get(ids, "bob");
  const PASS = "correct horse battery staple";
  const stream = randomStream("keyfile");
  const salt = stream(16);
  const nonce = stream(24);
  const run = async (
    name: string,
    comment: string,
    text: string,
    inputs: Record<string, unknown>,
    expect: ErrorCode | "success",
  ) => {
    let result: unknown;
    try {
      const id = await readKeyFile(
        provider,
        text,
        () => Promise.resolve(inputs.passphrase as string),
      );
      result = {
        outcome: "success",
        address: id.card.address,
        id: toHex(id.card.id),
        signingSeed: toHex(id.signingSeed),
        agreementKey: toHex(id.agreementKey),
      };
    } catch (e) {
      if (!(e instanceof MissiveError)) throw e;
      result = failure(e.code, e.code);
    }
    const got = (result as { outcome: string }).outcome;
    if (got !== expect) throw new Error(`keyfile/${name}: expected ${expect}, got ${got}`);
    vectors.push({ name, comment, inputs, text, expect: result });
  };
  const plainText = await writeKeyFile(provider, alice);
  const enc = {
    identity: "alice",
    passphrase: PASS,
    logN: 10,
    salt: toHex(salt),
    nonce: toHex(nonce),
  };
  const encText = encryptedKeyFile(alice, PASS, 10, salt, nonce);
  const plainFields = (id: Identity, card = id.card) =>
    new Map<number, CborValue>([[1, 1], [2, card.bytes], [
      3,
      concatBytes(id.signingSeed, id.agreementKey),
    ]]);

  await run("plain", "unencrypted, as writeKeyFile writes it", plainText, {
    identity: "alice",
    passphrase: null,
  }, "success");
  await run("scrypt-logN-10", "passphrase-encrypted, N = 2^10", encText, enc, "success");
  const uni = { ...enc, passphrase: "pässwörd ✓" };
  await run(
    "unicode-passphrase",
    "the passphrase's UTF-8 bytes, not normalised",
    encryptedKeyFile(alice, uni.passphrase, 10, salt, nonce),
    uni,
    "success",
  );
  await run("wrong-passphrase", "the AEAD tag does not verify", encText, {
    ...enc,
    passphrase: "Correct horse battery staple",
  }, "key");
  await run("logN-21", "work factor above 20 refused before any work", reencode(encText, 4, 21), {
    ...enc,
    logN: 21,
  }, "key");
  await run(
    "logN-9",
    "work factor below 10 refused",
    reencode(encText, 4, 9),
    { ...enc, logN: 9 },
    "key",
  );
  await run(
    "card-swapped",
    "bob's card with alice's encrypted secret: the AAD binds the card",
    reencode(encText, 2, bob.card.bytes),
    enc,
    "key",
  );
  await run(
    "secret-of-another",
    "unencrypted: bob's secret under alice's card",
    keyFileText(alice.card, plainFields(bob, alice.card), false),
    { identity: "alice", passphrase: null },
    "key",
  );
  await run("format-2", "field 1 must be 1", reencode(plainText, 1, 2), {
    identity: "alice",
    passphrase: null,
  }, "key");
  await run(
    "secret-63-bytes",
    "field 3 must be 64 bytes",
    reencode(plainText, 3, new Uint8Array(63)),
    { identity: "alice", passphrase: null },
    "key",
  );
  await run(
    "sealed-79-bytes",
    "field 7 must be 80 bytes",
    reencode(encText, 7, new Uint8Array(79)),
    enc,
    "key",
  );
  await run(
    "armor-short-line",
    "a 63-column armor line",
    plainText.replace(
      /\n([A-Za-z0-9+/]{64})\n/,
      (_, l: string) => `\n${l.slice(0, 63)}\n${l.slice(63)}`,
    ),
    { identity: "alice", passphrase: null },
    "key",
  );
  await run(
    "no-armor",
    "comments only",
    plainText.split("\n").filter((l) => l.startsWith("#")).join("\n"),
    { identity: "alice", passphrase: null },
    "key",
  );
  return vectors;
}

/** Re-encodes the CBOR map inside a key file with one field replaced (or the same layout). */
function reencode(text: string, key: number, value: CborValue): string {
  const lines = text.split("\n");
  const start = lines.findIndex((l) => l.startsWith("-----BEGIN"));
  const end = lines.findIndex((l) => l.startsWith("-----END"));
  const bytes = fromBase64(lines.slice(start + 1, end).join(""))!;
  const map = decodeCbor(bytes) as CborMap;
  map.set(key, value);
  return [...lines.slice(0, start), armorBlock("MISSIVE SECRET KEY", encodeCbor(map))].join("\n");
}

function ampVectors() {
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

type AmpCase = [string, string, [number, number], Uint8Array, ErrorCode | "success"];

/** receipt, presence, control and file (SPEC §14–17): each with more failures than successes. */
function newAmpCases(): AmpCase[] {
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

function flipAt(b: Uint8Array, offset: number): Bytes {
  const out = new Uint8Array(b);
  out[offset < 0 ? out.length + offset : offset] ^= 1;
  return out;
}

// ---------------------------------------------------------------------------------------
// The corpus

const MESSAGE_FILE_NOTE =
  "Message vectors. For each: seal.* are the inputs (identities by name, see " +
  "`identities`; random draws in the order taken; clock in ms), `mutations` edit the sealed envelope, " +
  "`envelope` is the exact result, `open` says how to open it and `expect` the outcome (SPEC §12).";

/** Every vector file, by file name, made with `provider`. */
export async function buildCorpus(provider: CryptoProvider): Promise<Record<string, unknown>> {
  const ids = await makeIdentities(provider);
  const identities = await Promise.all(
    IDENTITY_SPECS.map((s) => identityJson(provider, s, get(ids, s.name))),
  );
  const messages = async (prefix: string, description: string, cases: MessageCase[]) => ({
    description: `${description} ${MESSAGE_FILE_NOTE}`,
    identities,
    vectors: await buildMessageVectors(provider, ids, prefix, resolvePlaceholders(cases, ids)),
  });
  return {
    "envelope.json": {
      description: "Envelope decoding (SPEC §2.1): `input` hex through decodeEnvelope (operation " +
        "decode) or through the whole open path with the built-in registry (operation open).",
      vectors: envelopeVectors(),
    },
    "armor.json": {
      description: "The three message forms (SPEC §2.2–2.4): `input` (text, as UTF-8, or hex) " +
        "through form detection; success gives the binary envelope. canonical: the text is exactly " +
        "what the writer produces.",
      vectors: await armorVectors(provider, ids),
    },
    "card.json": {
      description: "Identity cards (SPEC §3). parse-text: the one-line or card-file text form; " +
        "decode: CBOR bytes. Failure inputs made from alice's card list their `mutations`.",
      identities,
      vectors: await cardVectors(provider, ids),
    },
    "keyfile.json": {
      description: "Secret key files (SPEC §4): `text` is the file; `inputs` the passphrase and, " +
        "for encrypted files, scrypt logN, salt and XChaCha20-Poly1305 nonce.",
      identities,
      vectors: await keyFileVectors(provider, ids),
    },
    "simple.json": await messages(
      "simple",
      "STP simple, type 2, versions 1 and 2 (SPEC §5).",
      simpleCases(),
    ),
    "auth.json": await messages("auth", "STP auth, type 4, version 1 (SPEC §6).", authCases()),
    "plain.json": await messages("plain", "STP plain, type 7, version 1 (SPEC §7).", plainCases()),
    "psk.json": await messages(
      "psk",
      "STP psk, type 6, versions 1 and 2 (SPEC §13); seal.options and open.options hold the " +
        "shared secret.",
      pskCases(),
    ),
    "amp.json": {
      description:
        "AMP bodies (SPEC §8–9, §14–17): `body` hex decoded by the AMP (type, version) in " +
        "`amp`. Vectors marked deterministic: false hold bytes from the generating runtime's zlib.",
      vectors: ampVectors(),
    },
  };
}

/** The JSON text of one vector file, as committed. */
export function toJsonText(doc: unknown): string {
  return jsonLines(doc, "") + "\n";
}

/** JSON with one-space indentation; arrays of scalars (and of such arrays) on one line. */
function jsonLines(v: unknown, indent: string): string {
  const flat = (x: unknown): boolean =>
    x === null || typeof x !== "object" || (Array.isArray(x) && x.every(flat));
  if (flat(v)) return JSON.stringify(v);
  const inner = indent + " ";
  if (Array.isArray(v)) {
    return `[\n${v.map((x) => inner + jsonLines(x, inner)).join(",\n")}\n${indent}]`;
  }
  const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
  if (entries.length === 0) return "{}";
  const body = entries.map(([k, x]) => `${inner}${JSON.stringify(k)}: ${jsonLines(x, inner)}`);
  return `{\n${body.join(",\n")}\n${indent}}`;
}

if (import.meta.main) {
  const corpus = await buildCorpus(nobleProvider);
  for (const [file, doc] of Object.entries(corpus)) {
    writeFileSync(new URL(file, import.meta.url), toJsonText(doc));
    console.log(`${file}: ${(doc as { vectors: unknown[] }).vectors.length} vectors`);
  }
}
