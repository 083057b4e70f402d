/**
 * Sealing and opening message vectors from their stated inputs, and the message-case machinery.
 * Part of tests/vectors/generate.ts (see there).
 * @module
 */
import { type Bytes, concatBytes, equalBytes, fromHex, toHex } from "../../core/bytes.ts";
import { type CborMap, type CborValue, decodeCbor, transcript } from "../../core/cbor.ts";
import type { CryptoProvider } from "../../crypto/provider.ts";
import { decodeEnvelope } from "../../envelope/mod.ts";
import { type ErrorCode, MissiveError } from "../../core/errors.ts";

import type { Identity } from "../../keys/identity.ts";
import { defaultRegistry } from "../../mod.ts";
import type { Registry } from "../../plugin/registry.ts";
import { type OpenedMessage, openMessage, sealMessage } from "../../plugin/message.ts";
import { MemoryReplayCache } from "../../plugin/replay.ts";
import type { CliAmp } from "../../plugin/types.ts";
import {
  applyMutations,
  type Body,
  get,
  type JsonCbor,
  jsonMessage,
  type Mutation,
  NOW,
  randomStream,
  type Target,
} from "./common.ts";
import { gcm } from "@noble/ciphers/aes.js";
import { ed25519, x25519 } from "@noble/curves/ed25519.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { sha3_256, shake256 } from "@noble/hashes/sha3.js";
import { ml_kem768 } from "@noble/post-quantum/ml-kem.js";

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
  /** Several recipients, in the order given (group). */
  recipients?: string[];
  sequenceNumber?: number;
  hashDestination?: boolean;
  hideRecipients?: boolean;
  now: number;
  /** STP options (psk: `psk` key text, or `passphrase` and `work-factor`). */
  options?: Record<string, string>;
  /**
   * The random stream's seed and the draws taken from it, in order (a list for a draw
   * repeated per recipient: group v2's encapsulation seeds).
   */
  random: { seed: string } & Record<string, string | string[]>;
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

export const DRAW_NAMES: Record<string, string[]> = {
  "2/3": ["nonce", "encapsulationSeed", "messageKey"],
  "2": ["nonce", "ephemeralSecret", "messageKey"],
  "3": ["nonce", "ephemeralSecret", "payloadKey", "padding"],
  "6/1": ["nonce", "salt", "aeadNonce"],
  "6/2": ["nonce", "iv"],
};
export const drawNames = ([type, version]: [number, number]) =>
  DRAW_NAMES[`${type}/${version}`] ?? DRAW_NAMES[`${type}`] ?? ["nonce"];

/**
 * Names the draws of a seal. Group v2 (SPEC §19.10.3) draws nonce, ephemeralSecret and
 * payloadKey, one 64-byte encapsulation seed per distinct recipient, and in hidden mode
 * the padding (hints and wrapped keys of the dummies), a throwaway X-Wing seed and one
 * encapsulation seed per dummy slot.
 */
export function nameDraws(
  stp: [number, number],
  draws: Bytes[],
): Record<string, string | string[]> {
  const hex = draws.map(toHex);
  if (stp[0] !== 3 || stp[1] !== 2) {
    const names = drawNames(stp);
    if (draws.length !== names.length) throw new Error(`${draws.length} random draws`);
    return Object.fromEntries(names.map((n, i) => [n, hex[i]]));
  }
  const out: Record<string, string | string[]> = {
    nonce: hex[0],
    ephemeralSecret: hex[1],
    payloadKey: hex[2],
  };
  let i = 3;
  const seeds: string[] = [];
  while (i < draws.length && draws[i].length === 64) seeds.push(hex[i++]);
  out.encapsulationSeeds = seeds;
  if (i < draws.length) {
    out.padding = hex[i++];
    out.throwawaySeed = hex[i++];
    out.paddingEncapsulationSeeds = hex.slice(i);
  }
  return out;
}

/** The stated draws of a vector, in order (lists flattened). */
export const statedDraws = (random: SealInputs["random"]): string[] =>
  Object.entries(random).filter(([k]) => k !== "seed").flatMap(([, x]) => x);

export function fixedBodyAmp(amp: [number, number], body: Bytes): CliAmp<null> {
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
    recipients: (inputs.recipients ?? (inputs.recipient ? [inputs.recipient] : []))
      .map((n) => get(ids, n).card),
    sequenceNumber: inputs.sequenceNumber,
    includeCard: attach !== false,
    hashDestination: inputs.hashDestination ?? false,
    hideRecipients: inputs.hideRecipients ?? false,
    optionPairs: inputs.options,
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
    optionPairs: inputs.options,
    crypto: provider,
  };
  let opened: OpenedMessage | undefined;
  for (let i = 0; i < (inputs.times ?? 1); i++) {
    opened = await openMessage(envelope, { registry, ...request });
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
 * X-Wing decapsulation as draft-connolly-cfrg-xwing-kem §5 and SPEC §1.4 state it, from
 * raw noble primitives (ML-KEM-768, X25519, SHAKE256, SHA3-256), not missive's X-Wing.
 */
export function xwingDecapsulateFromSpec(seed: Uint8Array, ciphertext: Uint8Array) {
  const expanded = shake256(seed, { dkLen: 96 });
  const { secretKey } = ml_kem768.keygen(expanded.subarray(0, 64));
  const skX = expanded.slice(64);
  const pkX = x25519.getPublicKey(skX);
  const ctX = ciphertext.subarray(1088);
  const mlkem = ml_kem768.decapsulate(ciphertext.subarray(0, 1088), secretKey);
  const x = x25519.getSharedSecret(skX, ctX);
  const label = new Uint8Array([0x5c, 0x2e, 0x2f, 0x2f, 0x5e, 0x5c]); // \.//^\
  const shared = sha3_256(concatBytes(mlkem, x, ctX, pkX, label));
  return { mlkem, x25519: x, shared };
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
  // v3 (SPEC §5.10): field 5 is an X-Wing ciphertext, decapsulated with the X-Wing seed.
  const kem = version === 3 ? xwingDecapsulateFromSpec(me.hybridSeed!, eph) : undefined;
  const shared = kem ? kem.shared : x25519.getSharedSecret(me.agreementKey, eph);
  const kek = hkdf(
    sha256,
    shared,
    concatBytes(eph, kem ? me.card.hybridKey! : me.card.agreementKey),
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
    ...(kem ? { mlkemSharedSecret: toHex(kem.mlkem), x25519SharedSecret: toHex(kem.x25519) } : {}),
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
export async function outcomeOf(
  f: () => Promise<unknown> | unknown,
): Promise<ErrorCode | "success"> {
  try {
    await f();
    return "success";
  } catch (e) {
    if (e instanceof MissiveError) return e.code;
    throw e;
  }
}

/** The failure kind a vector names: the error code, or "armor" for armor failures. */
export type Outcome = "success" | ErrorCode | "armor";
export const failure = (outcome: Outcome, error: ErrorCode) => ({ outcome, error });

// ---------------------------------------------------------------------------------------
// Message cases (simple, auth, plain)

export interface MessageCase {
  name: string;
  comment: string;
  seal: {
    stp: [number, number];
    body: Body;
    sender?: string;
    signWith?: string;
    attachCard?: string | false | "bad-self-signature";
    recipient?: string;
    recipients?: string[];
    sequenceNumber?: number;
    hashDestination?: boolean;
    hideRecipients?: boolean;
    now?: number;
    options?: Record<string, string>;
  };
  mutations?: Mutation[];
  open: OpenInputs;
  expect: ErrorCode | "success";
}

/**
 * How a cases file adds message cases: `ok` (the case opens) and `bad` (it fails with
 * `expect`), opened with `defaultOpen` unless a case says otherwise.
 */
export function caseBuilder(cases: MessageCase[], defaultOpen: OpenInputs) {
  return {
    ok: (
      name: string,
      comment: string,
      seal: MessageCase["seal"],
      open: OpenInputs = defaultOpen,
      mutations?: Mutation[],
    ) => cases.push({ name, comment, seal, open, mutations, expect: "success" }),
    bad: (
      expect: ErrorCode,
      name: string,
      comment: string,
      seal: MessageCase["seal"],
      mutations?: Mutation[],
      open: OpenInputs = defaultOpen,
    ) => cases.push({ name, comment, seal, open, mutations, expect }),
  };
}

export const NONCE8 = fromHex("0001020304050607")!;
export const xor = (target: Target, key: number, offset = 0, mask = 1): Mutation => ({
  op: "xor",
  target,
  key,
  offset,
  mask,
});
export const set = (target: Target, key: number, value: JsonCbor): Mutation => ({
  op: "set",
  target,
  key,
  value,
});
export const del = (target: Target, key: number): Mutation => ({ op: "delete", target, key });
export const bytesOf = (hex: string): JsonCbor => ({ bytes: hex });

export async function buildMessageVectors(
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
      ...(s.recipients ? { recipients: s.recipients } : {}),
      ...(s.sequenceNumber === undefined ? {} : { sequenceNumber: s.sequenceNumber }),
      ...(s.hashDestination ? { hashDestination: true } : {}),
      ...(s.hideRecipients ? { hideRecipients: true } : {}),
      now: s.now ?? NOW,
      ...(s.options ? { options: s.options } : {}),
      random: { seed: `${prefix}/${c.name}` },
    };
    const { envelope: sealed, draws } = await sealFromInputs(seal, ids, provider, registry);
    Object.assign(seal.random, nameDraws(s.stp, draws));
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
      ...((prefix === "simple" || prefix === "simple3") && c.expect === "success"
        ? { intermediates: simpleIntermediates(envelope, get(ids, c.open.identity!), ids) }
        : {}),
    });
  }
  return vectors;
}

/** Replaces "@name-id" / "@name-agreement" placeholders by the identity's public values. */
export function resolvePlaceholders(
  cases: MessageCase[],
  ids: Map<string, Identity>,
): MessageCase[] {
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
