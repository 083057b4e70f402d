/**
 * The session key schedule (SPEC §22.5, §22.12): signature and MAC transcripts of the
 * signed messages, the handshake hash chained across re-keys, HKDF-SHA-256 from the
 * ephemeral X25519 secret (and, in version 2, the X-Wing secret beside it) to one key per
 * direction and a key ID, the AEAD associated data and the nonce counters. Each version
 * has its own labels; the version number itself is in every signature input and AAD.
 * Internal to the session.
 * @module
 */
import { type Bytes, concatBytes, toHex, utf8, wipe } from "../core/bytes.ts";
import { transcript } from "../core/cbor.ts";
import type { CryptoProvider } from "../crypto/provider.ts";
import { MissiveError } from "../core/errors.ts";
import { KEY_ID_SIZE, type MessageType, SESSION_TYPE, type SessionVersion } from "./messages.ts";

/** The labels of one session version (SPEC Appendix A). */
export interface SessionLabels {
  sig: string;
  mac: string;
  helloContext: string;
  transcript: string;
  psk: string;
  keys: string;
  aad: string;
}

const labelsOf = (v: SessionVersion): SessionLabels => ({
  sig: `missive/session/v${v}/sig`,
  mac: `missive/session/v${v}/mac`,
  helloContext: `missive/session/v${v}/hello-context`,
  transcript: `missive/session/v${v}/transcript`,
  psk: `missive/session/v${v}/psk`,
  keys: `missive/session/v${v}/keys`,
  aad: `missive/session/v${v}/aad`,
});

/** Domain-separation labels of version 1 (SPEC Appendix A). */
export const LABELS: SessionLabels = labelsOf(1);
/** Domain-separation labels of version 2, the post-quantum hybrid (SPEC §22.12). */
export const LABELS_V2: SessionLabels = labelsOf(2);

/** The labels of `version`. */
export function labelsFor(version: SessionVersion): SessionLabels {
  return version === 2 ? LABELS_V2 : LABELS;
}

/** The AEAD of sealed frames. */
export const SESSION_AEAD = "chacha20-poly1305" as const;
/** The chain value before the first handshake: 32 zero bytes. */
export const INITIAL_CHAIN: Bytes = new Uint8Array(32);
/** Frames one direction may seal under one key; the counter refuses to go further. */
export const MAX_FRAMES_PER_KEY = 2 ** 32;

/** Pre-shared secret material derived once from s0. */
export interface PresharedKeys {
  /** SHA-512(s0): the HMAC key of signed messages. */
  macKey: Bytes;
  /** SHA-256 of the PSK transcript: mixed into every key derivation. */
  ikm: Bytes;
}

/** What s0 gives under `version`'s labels (SPEC §22.5.2). */
export async function presharedKeys(
  provider: CryptoProvider,
  s0: Uint8Array,
  version: SessionVersion = 1,
): Promise<PresharedKeys> {
  if (s0.length < 16) {
    throw new MissiveError("usage", "session: the pre-shared secret s0 must be at least 16 bytes");
  }
  return {
    macKey: await provider.sha512(s0),
    ikm: await provider.sha256(transcript(labelsFor(version).psk, s0)),
  };
}

/** What a signed message's signature covers (SPEC §22.5.1). */
export function signatureInput(
  h: { seq: number; type: MessageType; time: number },
  body: Uint8Array,
  context: Uint8Array,
  version: SessionVersion = 1,
): Bytes {
  return transcript(
    labelsFor(version).sig,
    SESSION_TYPE,
    version,
    h.seq,
    h.type,
    h.time,
    body,
    context,
  );
}

/** HMAC-SHA-256 under SHA-512(s0) over the signature input and the signature. */
export async function signedMac(
  provider: CryptoProvider,
  macKey: Uint8Array,
  sigInput: Uint8Array,
  signature: Uint8Array,
  version: SessionVersion = 1,
): Promise<Bytes> {
  const label = labelsFor(version).mac;
  return await provider.hmacSha256(macKey, transcript(label, sigInput, signature));
}

/** The context a responder's signed messages bind: the chain value and the HELLO body. */
export async function helloContext(
  provider: CryptoProvider,
  chain: Uint8Array,
  helloBody: Uint8Array,
  version: SessionVersion = 1,
): Promise<Bytes> {
  const label = labelsFor(version).helloContext;
  return await provider.sha256(transcript(label, chain, helloBody));
}

/** One direction's key and its frame counter (the nonce). */
export interface DirectionKey {
  key: Bytes;
  counter: number;
}

/** The keys of one handshake. */
export interface SessionKeys {
  /** The session version the keys were derived under (its AAD label and number). */
  version: SessionVersion;
  /** 8 bytes naming these keys in every sealed frame; hex in events. */
  id: Bytes;
  idHex: string;
  /** The new chain value (handshake hash), input to the next re-key. */
  chain: Bytes;
  clientToServer: DirectionKey;
  serverToClient: DirectionKey;
}

/**
 * Derives session keys (SPEC §22.5.2, §22.12.3): chain' = SHA-256([transcript label,
 * chain, HELLO body, HELLO_ACK body]); OKM = HKDF-SHA-256(ikm = X25519 secret ‖ X-Wing
 * secret (version 2 only) ‖ psk ikm, salt = chain', info = [keys label], 72) =
 * client→server ‖ server→client ‖ key ID.
 */
export async function deriveKeys(
  provider: CryptoProvider,
  input: {
    shared: Uint8Array;
    /** Version 2: the X-Wing shared secret of this handshake's encapsulation. */
    kemShared?: Uint8Array;
    chain: Uint8Array;
    helloBody: Uint8Array;
    helloAckBody: Uint8Array;
    psk?: PresharedKeys;
    version?: SessionVersion;
  },
): Promise<SessionKeys> {
  const version = input.version ?? 1;
  if ((version === 2) !== (input.kemShared !== undefined)) {
    throw new MissiveError("internal", "session: a KEM secret goes with version 2 alone");
  }
  const labels = labelsFor(version);
  const chain = await provider.sha256(
    transcript(labels.transcript, input.chain, input.helloBody, input.helloAckBody),
  );
  const empty = new Uint8Array(0);
  const ikm = concatBytes(input.shared, input.kemShared ?? empty, input.psk?.ikm ?? empty);
  const okm = await provider.hkdfSha256(ikm, chain, transcript(labels.keys), 64 + KEY_ID_SIZE);
  wipe(ikm);
  const id = okm.slice(64, 64 + KEY_ID_SIZE);
  const keys = {
    version,
    id,
    idHex: toHex(id),
    chain,
    clientToServer: { key: okm.slice(0, 32), counter: 0 },
    serverToClient: { key: okm.slice(32, 64), counter: 0 },
  };
  wipe(okm);
  return keys;
}

const AAD_LABELS = { 1: utf8(LABELS.aad), 2: utf8(LABELS_V2.aad) } as const;

/**
 * The associated data of a sealed frame (SPEC §22.5.3): the label, then envelope type
 * (u16), version (u16) and sequence number (u64), then type, form, time and key ID
 * exactly as in the payload header.
 */
export function sealedAad(
  seq: number,
  type: MessageType,
  time: number,
  keyId: Uint8Array,
  version: SessionVersion = 1,
): Bytes {
  const AAD_LABEL = AAD_LABELS[version];
  const out = new Uint8Array(AAD_LABEL.length + 12 + 10 + KEY_ID_SIZE);
  const view = new DataView(out.buffer);
  out.set(AAD_LABEL, 0);
  let o = AAD_LABEL.length;
  view.setUint16(o, SESSION_TYPE);
  view.setUint16(o + 2, version);
  view.setUint32(o + 4, Math.floor(seq / 2 ** 32));
  view.setUint32(o + 8, seq >>> 0);
  o += 12;
  out[o] = type;
  out[o + 1] = 1;
  view.setUint32(o + 2, Math.floor(time / 2 ** 32));
  view.setUint32(o + 6, time >>> 0);
  out.set(keyId, o + 10);
  return out;
}

/** The nonce of frame number `counter` under one key: 4 zero bytes ‖ u64 counter. */
export function nonceAt(counter: number): Bytes {
  if (counter >= MAX_FRAMES_PER_KEY) {
    throw new MissiveError("session", "session: nonce counter exhausted; re-key first");
  }
  const nonce = new Uint8Array(12);
  const view = new DataView(nonce.buffer);
  view.setUint32(4, Math.floor(counter / 2 ** 32));
  view.setUint32(8, counter >>> 0);
  return nonce;
}
