/**
 * The binary envelope (DESIGN §1, SPEC §2): `{1: protocolType, 2: protocolVersion,
 * 3: sequenceNumber?, 4: payload}` in deterministic CBOR behind the self-describe tag
 * 55799 (bytes d9 d9 f7). The envelope knows nothing of cryptography.
 * @module
 */
import { type Bytes, concatBytes } from "../core/bytes.ts";
import { CborReader, decodeCbor, encodeCbor } from "../core/cbor.ts";
import { MissiveError } from "../core/errors.ts";

/** The self-describe CBOR tag 55799 (RFC 8949 §3.4.6) that starts every envelope. */
export const ENVELOPE_MAGIC: Bytes = new Uint8Array([0xd9, 0xd9, 0xf7]);

/** Largest envelope accepted, in bytes (checked before any allocation). */
export const MAX_ENVELOPE_SIZE = 64 * 1024 * 1024;

/** Largest protocol type, version or AMP number (16 bits, as in the PhoneX draft). */
export const MAX_PROTOCOL_NUMBER = 0xffff;

/** The outer structure every missive message has. */
export interface Envelope {
  /** The STP's type number (field 1, SPEC §2.5), 0..`MAX_PROTOCOL_NUMBER`. */
  protocolType: number;
  /** The STP's version (field 2), 0..`MAX_PROTOCOL_NUMBER`. */
  protocolVersion: number;
  /** Optional per-link counter; bound into the STP's signature or AAD when present. */
  sequenceNumber?: number;
  /** The STP's payload (field 4), opaque to the envelope. */
  payload: Uint8Array;
}

/** The part of the envelope an STP binds into its signature or AAD. */
export type EnvelopeHeader = Omit<Envelope, "payload">;

function checkHeader(h: EnvelopeHeader): void {
  for (const [name, v] of [["type", h.protocolType], ["version", h.protocolVersion]] as const) {
    if (!Number.isInteger(v) || v < 0 || v > MAX_PROTOCOL_NUMBER) {
      throw new MissiveError("usage", `envelope: protocol ${name} must be 0..65535, got ${v}`);
    }
  }
  const seq = h.sequenceNumber;
  if (seq !== undefined && (!Number.isSafeInteger(seq) || seq < 0)) {
    throw new MissiveError("usage", `envelope: sequence number must be a non-negative integer`);
  }
}

/** Encodes an envelope to its binary form. */
export function encodeEnvelope(envelope: Envelope): Bytes {
  checkHeader(envelope);
  const map = new Map<number, number | Uint8Array>([
    [1, envelope.protocolType],
    [2, envelope.protocolVersion],
  ]);
  if (envelope.sequenceNumber !== undefined) map.set(3, envelope.sequenceNumber);
  map.set(4, envelope.payload);
  const body = encodeCbor(map);
  if (body.length + ENVELOPE_MAGIC.length > MAX_ENVELOPE_SIZE) {
    throw new MissiveError("too-large", `envelope: larger than ${MAX_ENVELOPE_SIZE} bytes`);
  }
  return concatBytes(ENVELOPE_MAGIC, body);
}

/** True when `bytes` starts like a binary envelope (for format sniffing). */
export function looksLikeEnvelope(bytes: Uint8Array): boolean {
  return bytes.length >= 3 && bytes[0] === 0xd9 && bytes[1] === 0xd9 && bytes[2] === 0xf7;
}

/** Decodes a binary envelope; throws `malformed` or `too-large`. */
export function decodeEnvelope(bytes: Uint8Array): Envelope {
  if (bytes.length > MAX_ENVELOPE_SIZE) {
    throw new MissiveError("too-large", `envelope: larger than ${MAX_ENVELOPE_SIZE} bytes`);
  }
  if (!looksLikeEnvelope(bytes)) {
    throw new MissiveError("malformed", "envelope: missing the d9d9f7 self-describe tag");
  }
  const r = CborReader.from(decodeCbor(bytes.subarray(3), "envelope"), "envelope")
    .onlyKeys([1, 2, 3, 4]);
  return {
    protocolType: r.uint(1, MAX_PROTOCOL_NUMBER),
    protocolVersion: r.uint(2, MAX_PROTOCOL_NUMBER),
    sequenceNumber: r.optUint(3),
    payload: r.bytes(4),
  };
}
