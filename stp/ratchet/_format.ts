/**
 * The wire formats of the `ratchet` STP (SPEC §25.2–24.4): signed and one-time prekeys,
 * the prekey bundle a sender starts from, the upload an owner publishes, and the ratchet
 * message with its optional initial header. Strict decoders: only the listed keys, every
 * length and range checked before use, X25519 keys in canonical encoding.
 * @module
 */
import type { Bytes } from "../../core/bytes.ts";
import {
  type CborMap,
  CborReader,
  type CborValue,
  decodeCbor,
  encodeCbor,
} from "../../core/cbor.ts";
import { MissiveError } from "../../core/errors.ts";
import { x25519EncodingProblem } from "../../crypto/keycheck.ts";
import { XWING_CIPHERTEXT_SIZE, XWING_PUBLIC_KEY_SIZE } from "../../crypto/xwing.ts";
import { MAX_CARD_SIZE } from "../../keys/card.ts";

/** Envelope protocol type of the ratchet (DESIGN §4). */
export const RATCHET_TYPE = 9;
/** The version: PQXDH-style agreement with an X-Wing prekey, Double Ratchet (SPEC §25). */
export const RATCHET_VERSION = 1;

const P = "missive/stp/ratchet/v1";
/** Domain-separation labels, one per use (SPEC §25.1, Appendix A). */
export const LABELS = {
  prekey: `${P}/prekey`,
  identities: `${P}/identities`,
  agreement: `${P}/agreement`,
  root: `${P}/root`,
  chain: `${P}/chain`,
  message: `${P}/message`,
  keys: `${P}/keys`,
  aad: `${P}/aad`,
} as const;

/** Largest prekey ID and message number: both are uint32 (SPEC §25.7). */
export const MAX_PREKEY_ID = 0xffff_ffff;
export const MAX_MESSAGE_NUMBER = 0xffff_ffff;
/** Most one-time prekeys in one upload (SPEC §25.7). */
export const MAX_UPLOAD_ONE_TIME = 100;
export const ID_SIZE = 16;
export const KEY_SIZE = 32;
export const SIGNATURE_SIZE = 64;
export const TAG_SIZE = 16;

/** A signed prekey: an X25519 key and an X-Wing key, signed by the owner's identity. */
export interface SignedPrekey {
  /** 1 … 2^32 − 1, counted up per keyring (SPEC §25.2). */
  id: number;
  /** X25519 public key. */
  publicKey: Bytes;
  /** X-Wing (ML-KEM-768 + X25519) public key, 1,216 bytes. */
  kemPublicKey: Bytes;
  /** Creation time, ms. */
  created: number;
  /** Ed25519 by the owner's signing key over `signedPrekeyTranscript`. */
  signature: Bytes;
}

/** A one-time prekey: an X25519 public key, used for one agreement only. */
export interface OneTimePrekey {
  /** 1 … 2^32 − 1, counted up per keyring (SPEC §25.2). */
  id: number;
  /** X25519 public key, 32 bytes, canonical. */
  publicKey: Bytes;
}

/** What a sender starts a conversation from: the owner's ID, signed prekey, at most one one-time prekey. */
export interface PrekeyBundle {
  /** The owner's 16-byte identity ID; must equal the peer card's (`key`). */
  identityId: Bytes;
  /** The owner's current signed prekey. */
  signedPrekey: SignedPrekey;
  /** A one-time prekey, handed out once; absent when the store has none left. */
  oneTimePrekey?: OneTimePrekey;
}

/** What an owner publishes: the current signed prekey and new one-time prekeys. */
export interface PrekeyUpload {
  /** The owner's 16-byte identity ID. */
  identityId: Bytes;
  /** The owner's current signed prekey. */
  signedPrekey: SignedPrekey;
  /** New one-time prekeys: at most 100, IDs distinct (SPEC §25.2). */
  oneTimePrekeys: OneTimePrekey[];
}

/** The initial header (message field 5): present until the initiator has read a reply. */
export interface InitialHeader {
  /** The initiator's card (CBOR). */
  senderCard: Bytes;
  /** The responder's 16-byte identity ID. */
  recipientId: Bytes;
  /** The ID of the signed prekey the agreement used. */
  signedPrekeyId: number;
  /** The ID of the one-time prekey the agreement used, if any. */
  oneTimePrekeyId?: number;
  /** The initiator's ephemeral X25519 public key; also names the conversation. */
  ephemeralKey: Bytes;
  /** X-Wing ciphertext to the signed prekey's KEM key. */
  kemCiphertext: Bytes;
}

/** The clear header of a ratchet message. */
export interface RatchetHeader {
  /** The sender's current DH ratchet public key. */
  ratchetKey: Bytes;
  /** Messages in the sender's previous sending chain (PN). */
  previousChainLength: number;
  /** This message's number in its sending chain (N). */
  messageNumber: number;
  /** Present until the initiator has read a reply (SPEC §25.4). */
  initial?: InitialHeader;
}

/** A whole ratchet payload: the header and the AEAD ciphertext of the inner map. */
export interface RatchetPayload extends RatchetHeader {
  ciphertext: Bytes;
}

/** An X25519 public key field: 32 bytes in canonical encoding (SPEC §1.4). */
function x25519Field(r: CborReader, key: number, context: string): Bytes {
  const k = r.bytes(key, KEY_SIZE);
  const problem = x25519EncodingProblem(k);
  if (problem) throw new MissiveError("malformed", `${context}: field ${key}: ${problem}`);
  return k;
}

function prekeyId(r: CborReader, key: number, context: string): number {
  const id = r.uint(key, MAX_PREKEY_ID);
  if (id === 0) throw new MissiveError("malformed", `${context}: field ${key}: prekey ID 0`);
  return id;
}

export function signedPrekeyValue(s: SignedPrekey): CborMap {
  return new Map<number, CborValue>([
    [1, s.id],
    [2, s.publicKey],
    [3, s.kemPublicKey],
    [4, s.created],
    [5, s.signature],
  ]);
}

export function readSignedPrekey(value: CborValue | undefined, context: string): SignedPrekey {
  const r = CborReader.from(value ?? null, context).onlyKeys([1, 2, 3, 4, 5]);
  return {
    id: prekeyId(r, 1, context),
    publicKey: x25519Field(r, 2, context),
    kemPublicKey: r.bytes(3, XWING_PUBLIC_KEY_SIZE),
    created: r.uint(4),
    signature: r.bytes(5, SIGNATURE_SIZE),
  };
}

export const oneTimePrekeyValue = (o: OneTimePrekey): CborMap =>
  new Map<number, CborValue>([[1, o.id], [2, o.publicKey]]);

export function readOneTimePrekey(value: CborValue | undefined, context: string): OneTimePrekey {
  const r = CborReader.from(value ?? null, context).onlyKeys([1, 2]);
  return { id: prekeyId(r, 1, context), publicKey: x25519Field(r, 2, context) };
}

/**
 * The prekey bundle's bytes (SPEC §25.2).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodePrekeyBundle, encodePrekeyBundle } from "./mod.ts";
 * const bundle = {
 *   identityId: new Uint8Array(16),
 *   signedPrekey: {
 *     id: 1, publicKey: new Uint8Array(32).fill(9), kemPublicKey: new Uint8Array(1216),
 *     created: 1_700_000_000_000, signature: new Uint8Array(64),
 *   },
 * };
 * assert.deepEqual(decodePrekeyBundle(encodePrekeyBundle(bundle)), bundle);
 * ```
 */
export function encodePrekeyBundle(bundle: PrekeyBundle): Bytes {
  const m = new Map<number, CborValue>([
    [1, bundle.identityId],
    [2, signedPrekeyValue(bundle.signedPrekey)],
  ]);
  if (bundle.oneTimePrekey) m.set(3, oneTimePrekeyValue(bundle.oneTimePrekey));
  return encodeCbor(m);
}

/** Decodes a prekey bundle; `malformed` on any deviation. The signature is checked on use. */
export function decodePrekeyBundle(bytes: Uint8Array): PrekeyBundle {
  const context = "ratchet prekey bundle";
  const r = CborReader.from(decodeCbor(bytes, context), context).onlyKeys([1, 2, 3]);
  const bundle: PrekeyBundle = {
    identityId: r.bytes(1, ID_SIZE),
    signedPrekey: readSignedPrekey(r.raw(2), `${context}: signed prekey`),
  };
  if (r.has(3)) bundle.oneTimePrekey = readOneTimePrekey(r.raw(3), `${context}: one-time prekey`);
  return bundle;
}

/** The prekey upload's bytes (SPEC §25.2). */
export function encodePrekeyUpload(upload: PrekeyUpload): Bytes {
  return encodeCbor(
    new Map<number, CborValue>([
      [1, upload.identityId],
      [2, signedPrekeyValue(upload.signedPrekey)],
      [3, upload.oneTimePrekeys.map(oneTimePrekeyValue)],
    ]),
  );
}

/** Decodes a prekey upload: at most 100 one-time prekeys, IDs distinct; `malformed` otherwise. */
export function decodePrekeyUpload(bytes: Uint8Array): PrekeyUpload {
  const context = "ratchet prekey upload";
  const r = CborReader.from(decodeCbor(bytes, context), context).onlyKeys([1, 2, 3]);
  const upload: PrekeyUpload = {
    identityId: r.bytes(1, ID_SIZE),
    signedPrekey: readSignedPrekey(r.raw(2), `${context}: signed prekey`),
    oneTimePrekeys: r.array(3, MAX_UPLOAD_ONE_TIME).map((v, i) =>
      readOneTimePrekey(v, `${context}: one-time prekey ${i}`)
    ),
  };
  const ids = new Set(upload.oneTimePrekeys.map((o) => o.id));
  if (ids.size !== upload.oneTimePrekeys.length) {
    throw new MissiveError("malformed", `${context}: one-time prekey IDs repeat`);
  }
  return upload;
}

/** The initial header as a CBOR map (message field 5). */
export function initialHeaderValue(h: InitialHeader): CborMap {
  const m = new Map<number, CborValue>([
    [1, h.senderCard],
    [2, h.recipientId],
    [3, h.signedPrekeyId],
  ]);
  if (h.oneTimePrekeyId !== undefined) m.set(4, h.oneTimePrekeyId);
  m.set(5, h.ephemeralKey).set(6, h.kemCiphertext);
  return m;
}

/** The initial header's fields as the AAD and the agreement bind them (SPEC §25.4). */
export const initialHeaderFields = (h: InitialHeader): CborValue[] => [
  h.senderCard,
  h.recipientId,
  h.signedPrekeyId,
  h.oneTimePrekeyId ?? null,
  h.ephemeralKey,
  h.kemCiphertext,
];

export function readInitialHeader(value: CborValue | undefined, context: string): InitialHeader {
  const r = CborReader.from(value ?? null, context).onlyKeys([1, 2, 3, 4, 5, 6]);
  const h: InitialHeader = {
    senderCard: r.bytes(1, { min: 1, max: MAX_CARD_SIZE }),
    recipientId: r.bytes(2, ID_SIZE),
    signedPrekeyId: prekeyId(r, 3, context),
    ephemeralKey: x25519Field(r, 5, context),
    kemCiphertext: r.bytes(6, XWING_CIPHERTEXT_SIZE),
  };
  if (r.has(4)) h.oneTimePrekeyId = prekeyId(r, 4, context);
  return h;
}

/** The payload bytes (envelope field 4) of a ratchet message (SPEC §25.4). */
export function encodeRatchetPayload(p: RatchetPayload): Bytes {
  const m = new Map<number, CborValue>([
    [1, p.ratchetKey],
    [2, p.previousChainLength],
    [3, p.messageNumber],
    [4, p.ciphertext],
  ]);
  if (p.initial) m.set(5, initialHeaderValue(p.initial));
  return encodeCbor(m);
}

/** Decodes a ratchet payload; `malformed` on any deviation (unknown keys included). */
export function decodeRatchetPayload(bytes: Uint8Array): RatchetPayload {
  const context = "ratchet payload";
  const r = CborReader.from(decodeCbor(bytes, context), context).onlyKeys([1, 2, 3, 4, 5]);
  const p: RatchetPayload = {
    ratchetKey: x25519Field(r, 1, context),
    previousChainLength: r.uint(2, MAX_MESSAGE_NUMBER),
    messageNumber: r.uint(3, MAX_MESSAGE_NUMBER),
    ciphertext: r.bytes(4, { min: TAG_SIZE, max: bytes.length }),
  };
  if (r.has(5)) p.initial = readInitialHeader(r.raw(5), `${context}: initial header`);
  return p;
}

/** The inner map (the plaintext of field 4): AMP pair, body, timestamp (SPEC §25.4). */
export interface RatchetInner {
  ampType: number;
  ampVersion: number;
  body: Uint8Array;
  timestamp: number;
}

export const encodeInner = (i: RatchetInner): Bytes =>
  encodeCbor(
    new Map<number, CborValue>([[1, i.ampType], [2, i.ampVersion], [3, i.body], [4, i.timestamp]]),
  );

export function decodeInner(bytes: Uint8Array): RatchetInner {
  const context = "ratchet inner";
  const r = CborReader.from(decodeCbor(bytes, context), context).onlyKeys([1, 2, 3, 4]);
  return {
    ampType: r.uint(1, 0xffff),
    ampVersion: r.uint(2, 0xffff),
    body: r.bytes(3),
    timestamp: r.uint(4),
  };
}
