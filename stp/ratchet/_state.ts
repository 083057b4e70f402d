/**
 * A conversation's Double Ratchet state (SPEC §25.6) as plain data, and its serialised
 * form (SPEC §25.8): what the chat stores, encrypted, between messages. Secrets are
 * separate arrays, never shared between two states, so replacing one wipes it.
 * @module
 */
import { type Bytes, copyBytes, equalBytes, toHex, wipe } from "../../core/bytes.ts";
import { CborReader, type CborValue, decodeCbor, encodeCbor } from "../../core/cbor.ts";
import { MissiveError } from "../../core/errors.ts";
import type { CryptoProvider } from "../../crypto/provider.ts";
import { type Card, decodeCard, MAX_CARD_SIZE } from "../../keys/card.ts";
import {
  ID_SIZE,
  type InitialHeader,
  initialHeaderValue,
  KEY_SIZE,
  MAX_MESSAGE_NUMBER,
  RATCHET_VERSION,
  readInitialHeader,
} from "./_format.ts";

/** Most message keys of skipped messages a conversation holds (SPEC §25.7). */
export const MAX_STORED_SKIPPED = 2000;
/** Most peer ratchet keys remembered to tell a replay of a finished chain (SPEC §25.7). */
export const MAX_PREVIOUS_KEYS = 32;

/** The message key of a message not yet received, kept until used or expired. */
export interface SkippedKey {
  ratchetKey: Bytes;
  messageNumber: number;
  messageKey: Bytes;
  /** When it was derived (ms): it expires MAX_SKIPPED_AGE later. */
  at: number;
}

/** The state of one side of a conversation (Double Ratchet §3.2, plus what binds it). */
export interface RatchetState {
  role: "initiator" | "responder";
  self: { address: string; id: Bytes };
  peer: Card;
  /** SHA-256 over both identities' keys (SPEC §25.3). */
  binding: Bytes;
  /** The initiator's ephemeral key of the initial agreement: names the conversation. */
  conversationId: Bytes;
  rootKey: Bytes;
  /** DHs: our current ratchet key pair. */
  sendingSecret: Bytes;
  sendingKey: Bytes;
  /** DHr: the peer's current ratchet key (the signed prekey, for a new initiator). */
  receivingKey: Bytes | null;
  sendChain: Bytes | null;
  sendCount: number;
  previousSendCount: number;
  recvChain: Bytes | null;
  recvCount: number;
  /** Keyed by `skippedId`, in the order derived (oldest first). */
  skipped: Map<string, SkippedKey>;
  /** Earlier values of receivingKey, newest last. */
  previousReceivingKeys: Bytes[];
  /** The initiator's initial header, sent with every message until a reply is read. */
  pendingInitial: InitialHeader | null;
}

/** The key of a skipped message key: its ratchet key and message number. */
export const skippedId = (ratchetKey: Uint8Array, n: number) => `${toHex(ratchetKey)}/${n}`;

/** Overwrites every secret of a state (best effort: the runtime may hold copies). */
export function wipeState(s: RatchetState): void {
  for (const b of [s.rootKey, s.sendingSecret, s.sendChain, s.recvChain]) wipe(b ?? undefined);
  for (const k of s.skipped.values()) wipe(k.messageKey);
  s.skipped.clear();
}

const FORMAT = RATCHET_VERSION;
const ROLES = { initiator: 1, responder: 2 } as const;

/** The serialised state (SPEC §25.8). It holds secrets: store it encrypted. */
export function encodeState(s: RatchetState): Bytes {
  const m = new Map<number, CborValue>([
    [1, FORMAT],
    [2, ROLES[s.role]],
    [3, s.self.address],
    [4, s.self.id],
    [5, s.peer.bytes],
    [6, s.binding],
    [7, s.conversationId],
    [8, s.rootKey],
    [9, s.sendingSecret],
    [10, s.sendingKey],
  ]);
  if (s.receivingKey) m.set(11, s.receivingKey);
  if (s.sendChain) m.set(12, s.sendChain);
  m.set(13, s.sendCount).set(14, s.previousSendCount);
  if (s.recvChain) m.set(15, s.recvChain);
  m.set(16, s.recvCount);
  m.set(17, [...s.skipped.values()].map(packSkipped));
  m.set(18, s.previousReceivingKeys);
  if (s.pendingInitial) m.set(19, initialHeaderValue(s.pendingInitial));
  return encodeCbor(m);
}

/**
 * A skipped key as one byte string (SPEC §25.8): ratchet key ‖ uint32be(n) ‖ message key ‖
 * uint64be(time). One CBOR item each keeps 2,000 of them within the decoder's item cap.
 */
const SKIPPED_SIZE = 32 + 4 + 32 + 8;

function packSkipped(k: SkippedKey): Bytes {
  const out = new Uint8Array(SKIPPED_SIZE);
  const view = new DataView(out.buffer);
  out.set(k.ratchetKey, 0);
  view.setUint32(32, k.messageNumber);
  out.set(k.messageKey, 36);
  view.setBigUint64(68, BigInt(k.at));
  return out;
}

function unpackSkipped(v: CborValue, what: string): SkippedKey {
  if (!(v instanceof Uint8Array) || v.length !== SKIPPED_SIZE) {
    throw new MissiveError("malformed", `ratchet state: ${what}: not ${SKIPPED_SIZE} bytes`);
  }
  const view = new DataView(v.buffer, v.byteOffset, v.length);
  const at = view.getBigUint64(68);
  if (at > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new MissiveError("malformed", `ratchet state: ${what}: time out of range`);
  }
  return {
    ratchetKey: v.slice(0, 32),
    messageNumber: view.getUint32(32),
    messageKey: v.slice(36, 68),
    at: Number(at),
  };
}

function keyAt(v: CborValue, what: string): Bytes {
  if (!(v instanceof Uint8Array) || v.length !== KEY_SIZE) {
    throw new MissiveError("malformed", `ratchet state: ${what}: not a 32-byte key`);
  }
  return copyBytes(v);
}

/** Decodes a serialised state; `malformed` on any deviation, `key` for an invalid peer card. */
export async function decodeState(
  crypto: CryptoProvider,
  bytes: Uint8Array,
): Promise<RatchetState> {
  const context = "ratchet state";
  const r = CborReader.from(decodeCbor(bytes, context), context).onlyKeys(
    Array.from({ length: 19 }, (_, i) => i + 1),
  );
  if (r.uint(1) !== FORMAT) throw new MissiveError("malformed", `${context}: unknown format`);
  const role = r.uint(2, 2);
  if (role === 0) throw new MissiveError("malformed", `${context}: field 2: unknown role`);
  const skipped = new Map<string, SkippedKey>();
  for (const [i, v] of r.array(17, MAX_STORED_SKIPPED).entries()) {
    const k = unpackSkipped(v, `skipped key ${i}`);
    skipped.set(skippedId(k.ratchetKey, k.messageNumber), k);
  }
  if (skipped.size !== r.array(17, MAX_STORED_SKIPPED).length) {
    throw new MissiveError("malformed", `${context}: skipped keys repeat`);
  }
  const peerBytes = r.bytes(5, { min: 1, max: MAX_CARD_SIZE });
  const self = { address: r.text(3, 254), id: r.bytes(4, ID_SIZE) };
  const opt = (k: number) => (r.has(k) ? copyBytes(r.bytes(k, KEY_SIZE)) : null);
  const state: RatchetState = {
    role: role === 1 ? "initiator" : "responder",
    self,
    peer: await decodeCard(crypto, peerBytes).catch((e) => {
      throw new MissiveError("key", `${context}: peer card: ${(e as Error).message}`);
    }),
    binding: r.bytes(6, KEY_SIZE),
    conversationId: r.bytes(7, KEY_SIZE),
    rootKey: copyBytes(r.bytes(8, KEY_SIZE)),
    sendingSecret: copyBytes(r.bytes(9, KEY_SIZE)),
    sendingKey: r.bytes(10, KEY_SIZE),
    receivingKey: opt(11),
    sendChain: opt(12),
    sendCount: r.uint(13, MAX_MESSAGE_NUMBER),
    previousSendCount: r.uint(14, MAX_MESSAGE_NUMBER),
    recvChain: opt(15),
    recvCount: r.uint(16, MAX_MESSAGE_NUMBER + 1),
    skipped,
    previousReceivingKeys: r.array(18, MAX_PREVIOUS_KEYS).map((v, i) =>
      keyAt(v, `previous key ${i}`)
    ),
    pendingInitial: r.has(19) ? readInitialHeader(r.raw(19), `${context}: field 19`) : null,
  };
  if (equalBytes(state.peer.id, self.id)) {
    throw new MissiveError("malformed", `${context}: the peer is the owner`);
  }
  // Every state can send; only an initiator still awaiting a reply has no receiving chain.
  if (
    !state.sendChain || !state.receivingKey || (state.recvChain === null) !== !!state.pendingInitial
  ) {
    throw new MissiveError("malformed", `${context}: chains do not fit the phase`);
  }
  if (state.pendingInitial && state.role !== "initiator") {
    throw new MissiveError("malformed", `${context}: a responder has no initial header`);
  }
  return state;
}
