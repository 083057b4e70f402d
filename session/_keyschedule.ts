/**
 * The session key schedule (SPEC §22.5): signature and MAC transcripts of the signed
 * messages, the handshake hash chained across re-keys, HKDF-SHA-256 from the ephemeral
 * X25519 secret to one key per direction and a key ID, the AEAD associated data and the
 * nonce counters. Version 1's labels and derivation live here alone: a later version
 * (e.g. one mixing an ML-KEM secret into `ikm`) adds its own schedule beside this one.
 * Internal to the session.
 * @module
 */
import { type Bytes, concatBytes, toHex, utf8, wipe } from "../core/bytes.ts";
import { transcript } from "../core/cbor.ts";
import type { CryptoProvider } from "../crypto/provider.ts";
import { MissiveError } from "../core/errors.ts";
import { KEY_ID_SIZE, type MessageType, SESSION_TYPE, SESSION_VERSION } from "./messages.ts";

/** Domain-separation labels (SPEC Appendix A). */
export const LABELS = {
  sig: "missive/session/v1/sig",
  mac: "missive/session/v1/mac",
  helloContext: "missive/session/v1/hello-context",
  transcript: "missive/session/v1/transcript",
  psk: "missive/session/v1/psk",
  keys: "missive/session/v1/keys",
  aad: "missive/session/v1/aad",
} as const;

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

export async function presharedKeys(
  provider: CryptoProvider,
  s0: Uint8Array,
): Promise<PresharedKeys> {
  if (s0.length < 16) {
    throw new MissiveError("usage", "session: the pre-shared secret s0 must be at least 16 bytes");
  }
  return {
    macKey: await provider.sha512(s0),
    ikm: await provider.sha256(transcript(LABELS.psk, s0)),
  };
}

/** What a signed message's signature covers (SPEC §22.5.1). */
export function signatureInput(
  h: { seq: number; type: MessageType; time: number },
  body: Uint8Array,
  context: Uint8Array,
): Bytes {
  return transcript(
    LABELS.sig,
    SESSION_TYPE,
    SESSION_VERSION,
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
): Promise<Bytes> {
  return await provider.hmacSha256(macKey, transcript(LABELS.mac, sigInput, signature));
}

/** The context a responder's signed messages bind: the chain value and the HELLO body. */
export async function helloContext(
  provider: CryptoProvider,
  chain: Uint8Array,
  helloBody: Uint8Array,
): Promise<Bytes> {
  return await provider.sha256(transcript(LABELS.helloContext, chain, helloBody));
}

/** One direction's key and its frame counter (the nonce). */
export interface DirectionKey {
  key: Bytes;
  counter: number;
}

/** The keys of one handshake. */
export interface SessionKeys {
  /** 8 bytes naming these keys in every sealed frame; hex in events. */
  id: Bytes;
  idHex: string;
  /** The new chain value (handshake hash), input to the next re-key. */
  chain: Bytes;
  clientToServer: DirectionKey;
  serverToClient: DirectionKey;
}

/** The HKDF info of every key derivation: the transcript of the keys label alone. */
const KEYS_INFO = transcript(LABELS.keys);

/**
 * Derives session keys (SPEC §22.5.2): chain' = SHA-256([transcript label, chain,
 * HELLO body, HELLO_ACK body]); OKM = HKDF-SHA-256(ikm = X25519 secret ‖ psk ikm,
 * salt = chain', info = [keys label], 72) = client→server ‖ server→client ‖ key ID.
 */
export async function deriveKeys(
  provider: CryptoProvider,
  input: {
    shared: Uint8Array;
    chain: Uint8Array;
    helloBody: Uint8Array;
    helloAckBody: Uint8Array;
    psk?: PresharedKeys;
  },
): Promise<SessionKeys> {
  const chain = await provider.sha256(
    transcript(LABELS.transcript, input.chain, input.helloBody, input.helloAckBody),
  );
  const ikm = concatBytes(input.shared, input.psk?.ikm ?? new Uint8Array(0));
  const okm = await provider.hkdfSha256(ikm, chain, KEYS_INFO, 64 + KEY_ID_SIZE);
  wipe(ikm);
  const id = okm.slice(64, 64 + KEY_ID_SIZE);
  const keys = {
    id,
    idHex: toHex(id),
    chain,
    clientToServer: { key: okm.slice(0, 32), counter: 0 },
    serverToClient: { key: okm.slice(32, 64), counter: 0 },
  };
  wipe(okm);
  return keys;
}

const AAD_LABEL = utf8(LABELS.aad);

/**
 * The associated data of a sealed frame (SPEC §22.5.3): the label, then envelope type
 * (u16), version (u16) and sequence number (u64), then type, form, time and key ID
 * exactly as in the payload header.
 */
export function sealedAad(seq: number, type: MessageType, time: number, keyId: Uint8Array): Bytes {
  const out = new Uint8Array(AAD_LABEL.length + 12 + 10 + KEY_ID_SIZE);
  const view = new DataView(out.buffer);
  out.set(AAD_LABEL, 0);
  let o = AAD_LABEL.length;
  view.setUint16(o, SESSION_TYPE);
  view.setUint16(o + 2, SESSION_VERSION);
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
