/**
 * The session wire codec (SPEC §22.2–22.4): the nine message types, the two frame forms
 * (signed before keys exist, sealed after), and the message bodies. Every decoder is
 * strict: exact lengths, known types and forms, caps checked before allocation, and a
 * typed MissiveError for anything else.
 * @module
 */
import { type Bytes, concatBytes } from "../core/bytes.ts";
import { CborReader, decodeCbor, encodeCbor } from "../core/cbor.ts";
import { decodeEnvelope } from "../envelope/mod.ts";
import { MissiveError } from "../core/errors.ts";
import { MAX_CARD_SIZE } from "../keys/card.ts";
import { XWING_CIPHERTEXT_SIZE, XWING_PUBLIC_KEY_SIZE } from "../crypto/xwing.ts";
import { SESSION_PQ_VERSION, SESSION_TYPE, SESSION_VERSION } from "../stp/session.ts";

export { SESSION_PQ_VERSION, SESSION_TYPE, SESSION_VERSION } from "../stp/session.ts";

/**
 * A session version (SPEC §22.12): 1, classical (X25519); 2, post-quantum hybrid
 * (X25519 and an X-Wing encapsulation, ML-KEM-768 + X25519).
 */
export type SessionVersion = 1 | 2;
/** Every version this implementation speaks, highest first. */
export const SESSION_VERSIONS: readonly SessionVersion[] = [2, 1];

/** The nine message types (SPEC §22.2); the numbers are on the wire. */
export const MessageType = {
  HELLO: 1,
  HELLO_ACK: 2,
  ACK: 3,
  DATA: 4,
  DATA_ACK: 5,
  RESEND_LAST: 6,
  CLOSE: 7,
  CLOSE_ACK: 8,
  CLOSED_WITHOUT_ACK: 9,
} as const;
/** A message type number. */
export type MessageType = (typeof MessageType)[keyof typeof MessageType];
/** A message type name, e.g. `"DATA_ACK"`. */
export type MessageTypeName = keyof typeof MessageType;

const TYPE_NAMES = Object.fromEntries(
  Object.entries(MessageType).map(([name, n]) => [n, name]),
) as Record<MessageType, MessageTypeName>;

/** The name of a message type number. */
export function messageTypeName(type: MessageType): MessageTypeName {
  return TYPE_NAMES[type];
}

/** Form byte: signed by the identity key (no session keys yet) or sealed (AEAD). */
const FORM_SIGNED = 0;
const FORM_SEALED = 1;

/** Which forms each type may take (SPEC §22.3). */
const ALLOWED_FORMS: Record<MessageType, readonly number[]> = {
  [MessageType.HELLO]: [FORM_SIGNED, FORM_SEALED],
  [MessageType.HELLO_ACK]: [FORM_SIGNED, FORM_SEALED],
  [MessageType.ACK]: [FORM_SEALED],
  [MessageType.DATA]: [FORM_SEALED],
  [MessageType.DATA_ACK]: [FORM_SEALED],
  [MessageType.RESEND_LAST]: [FORM_SIGNED, FORM_SEALED],
  [MessageType.CLOSE]: [FORM_SIGNED, FORM_SEALED],
  [MessageType.CLOSE_ACK]: [FORM_SEALED],
  [MessageType.CLOSED_WITHOUT_ACK]: [FORM_SIGNED, FORM_SEALED],
};

/** Fixed sizes (SPEC §22.3). */
export const KEY_ID_SIZE = 8;
export const TAG_SIZE = 16;
export const SIGNATURE_SIZE = 64;
export const MAC_SIZE = 32;
const HEADER_SIZE = 10; // type (1) ‖ form (1) ‖ time (8)
/** Largest body of a signed frame (a HELLO holds a card of at most 4 KiB). */
export const MAX_SIGNED_BODY = MAX_CARD_SIZE + 256;
/** Version 2: the same, plus the 1,216-byte X-Wing encapsulation key of a HELLO. */
export const MAX_SIGNED_BODY_V2 = MAX_SIGNED_BODY + XWING_PUBLIC_KEY_SIZE;
const maxSignedBody = (v: SessionVersion) => v === 2 ? MAX_SIGNED_BODY_V2 : MAX_SIGNED_BODY;
/** Default cap on one application message (DATA payload), in bytes. */
export const DEFAULT_MAX_MESSAGE = 1024 * 1024;
/** Bytes a frame may add around a DATA payload (envelope, header, index, tag). */
export const FRAME_OVERHEAD = 128;

/** What every frame carries in the clear: the envelope's sequence number, type, time. */
export interface FrameHeader {
  seq: number;
  type: MessageType;
  /** Send time, milliseconds since the Unix epoch. */
  time: number;
}

/** The signed part of a handshake or pre-key control message. */
export interface SignedPart {
  body: Bytes;
  signature: Bytes;
  /** HMAC under SHA-512(s0), present exactly when a pre-shared s0 is configured. */
  mac?: Bytes;
}

/** A frame sent before session keys exist. */
export interface SignedFrame extends FrameHeader, SignedPart {
  form: "signed";
}

/** A frame sealed under the session keys named by `keyId`. */
export interface SealedFrame extends FrameHeader {
  form: "sealed";
  keyId: Bytes;
  /** AEAD ciphertext ‖ tag. */
  ciphertext: Bytes;
}

export type Frame = SignedFrame | SealedFrame;

function malformed(what: string): never {
  throw new MissiveError("malformed", `session frame: ${what}`);
}

function writeU64(out: Uint8Array, offset: number, value: number): void {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  view.setUint32(offset, Math.floor(value / 2 ** 32));
  view.setUint32(offset + 4, value >>> 0);
}

function readU64(bytes: Uint8Array, offset: number, what: string): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const high = view.getUint32(offset);
  if (high > 0x1f_ffff) malformed(`${what} above 2^53 - 1`);
  return high * 2 ** 32 + view.getUint32(offset + 4);
}

/** The 8-byte big-endian form of a non-negative safe integer. */
export function u64(value: number): Bytes {
  const out = new Uint8Array(8);
  writeU64(out, 0, value);
  return out;
}

/** Encodes the signed part (SPEC §22.3): CBOR `{1: body, 2: signature, 3?: mac}`. */
export function encodeSignedPart(part: SignedPart): Bytes {
  const map = new Map<number, Bytes>([[1, part.body], [2, part.signature]]);
  if (part.mac) map.set(3, part.mac);
  return encodeCbor(map);
}

/** Decodes a signed part of a `version` session strictly. */
export function decodeSignedPart(bytes: Uint8Array, version: SessionVersion = 1): SignedPart {
  const max = maxSignedBody(version);
  if (bytes.length > max + 128) malformed("signed part too large");
  const r = CborReader.from(decodeCbor(bytes, "session frame"), "session frame")
    .onlyKeys([1, 2, 3]);
  return {
    body: r.bytes(1, { max }),
    signature: r.bytes(2, SIGNATURE_SIZE),
    mac: r.optBytes(3, MAC_SIZE),
  };
}

/** The session payload bytes of a frame (inside the envelope). */
function encodePayload(frame: Frame): Bytes {
  const rest = frame.form === "signed"
    ? encodeSignedPart(frame)
    : concatBytes(frame.keyId, frame.ciphertext);
  const out = new Uint8Array(HEADER_SIZE + rest.length);
  out[0] = frame.type;
  out[1] = frame.form === "signed" ? FORM_SIGNED : FORM_SEALED;
  writeU64(out, 2, frame.time);
  out.set(rest, HEADER_SIZE);
  return out;
}

/** Encodes a frame as an envelope (type 5, `version`, sequence number = `seq`). */
export function encodeFrame(frame: Frame, version: SessionVersion = 1): Bytes {
  if (!ALLOWED_FORMS[frame.type]?.includes(frame.form === "signed" ? 0 : 1)) {
    throw new MissiveError("internal", `session: ${frame.type} cannot be ${frame.form}`);
  }
  return encodeSessionEnvelope(frame.seq, encodePayload(frame), version);
}

// The envelope of every session frame has one layout (SPEC §2.1 with type 5, the version
// and a sequence number): d9d9f7 a4 01 05 02 vv 03 uint(seq) 04 bstr(payload). These two
// functions write and read exactly that deterministic CBOR without the general codec
// (the hot path of every DATA); tests/session_codec_test.ts checks them against
// envelope/binary.ts. Anything else goes through it for its precise error.
const VERSION_AT = 7;
const ENVELOPE_PREFIX = [0xd9, 0xd9, 0xf7, 0xa4, 0x01, SESSION_TYPE, 0x02, SESSION_VERSION, 0x03];
function cborHead(major: number, value: number): number[] {
  const m = major << 5;
  if (value < 24) return [m | value];
  if (value < 0x100) return [m | 24, value];
  if (value < 0x10000) return [m | 25, value >> 8, value & 0xff];
  const b = [(value >>> 24) & 0xff, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff];
  if (value < 2 ** 32) return [m | 26, ...b];
  const high = Math.floor(value / 2 ** 32);
  return [
    m | 27,
    (high >>> 24) & 0xff,
    (high >>> 16) & 0xff,
    (high >>> 8) & 0xff,
    high & 0xff,
    ...b,
  ];
}

/** The envelope bytes of a session frame; equal to envelope/binary.ts's encoding. */
export function encodeSessionEnvelope(
  seq: number,
  payload: Uint8Array,
  version: SessionVersion = 1,
): Bytes {
  if (!Number.isSafeInteger(seq) || seq < 0) {
    throw new MissiveError("internal", "session: bad sequence number");
  }
  const prefix = ENVELOPE_PREFIX.with(VERSION_AT, version);
  const head = [...prefix, ...cborHead(0, seq), 0x04, ...cborHead(2, payload.length)];
  const out = new Uint8Array(head.length + payload.length);
  out.set(head, 0);
  out.set(payload, head.length);
  return out;
}

/** Reads a canonical CBOR head at `pos`: [value, next position], or undefined. */
function readHead(b: Uint8Array, pos: number, major: number): [number, number] | undefined {
  if (pos >= b.length || b[pos] >> 5 !== major) return undefined;
  const ai = b[pos] & 31;
  if (ai < 24) return [ai, pos + 1];
  const size = ai === 24 ? 1 : ai === 25 ? 2 : ai === 26 ? 4 : ai === 27 ? 8 : 0;
  if (size === 0 || pos + 1 + size > b.length) return undefined;
  let value = 0;
  for (let i = 0; i < size; i++) value = value * 256 + b[pos + 1 + i];
  const min = size === 1 ? 24 : size === 2 ? 0x100 : size === 4 ? 0x10000 : 2 ** 32;
  if (value < min || value > Number.MAX_SAFE_INTEGER) return undefined;
  return [value, pos + 1 + size];
}

/** Splits a session envelope into sequence number and payload, or undefined. */
function readSessionEnvelope(
  b: Uint8Array,
  versions: readonly SessionVersion[],
): { seq: number; payload: Uint8Array; version: SessionVersion } | undefined {
  if (b.length < ENVELOPE_PREFIX.length) return undefined;
  for (let i = 0; i < ENVELOPE_PREFIX.length; i++) {
    if (i !== VERSION_AT && b[i] !== ENVELOPE_PREFIX[i]) return undefined;
  }
  const version = b[VERSION_AT] as SessionVersion;
  if (!versions.includes(version)) return undefined;
  const seq = readHead(b, ENVELOPE_PREFIX.length, 0);
  if (!seq || b[seq[1]] !== 0x04) return undefined;
  const len = readHead(b, seq[1] + 1, 2);
  if (!len || len[1] + len[0] !== b.length) return undefined;
  return { seq: seq[0], payload: b.subarray(len[1]), version };
}

/**
 * Decodes one frame of any session version; `maxFrame` caps its size before anything is
 * parsed. Throws `too-large`, `malformed`, or `unknown-protocol` (another envelope type
 * or version). The machine uses `decodeVersionedFrame` to also learn (and restrict) the
 * version.
 */
export function decodeFrame(bytes: Uint8Array, maxFrame: number): Frame {
  return decodeVersionedFrame(bytes, maxFrame, SESSION_VERSIONS).frame;
}

/**
 * Decodes one frame of any of `versions` (SPEC §22.3, §22.12): the frame and the
 * version its envelope names. Throws like `decodeFrame`; an envelope of type 5 with a
 * version not in `versions` is `unknown-protocol`.
 */
export function decodeVersionedFrame(
  bytes: Uint8Array,
  maxFrame: number,
  versions: readonly SessionVersion[],
): { version: SessionVersion; frame: Frame } {
  if (bytes.length > maxFrame) {
    throw new MissiveError("too-large", `session frame: larger than ${maxFrame} bytes`);
  }
  let env = readSessionEnvelope(bytes, versions);
  if (!env) {
    // Not the one canonical layout: the general decoder names what is wrong.
    const e = decodeEnvelope(bytes);
    const version = e.protocolVersion as SessionVersion;
    if (e.protocolType !== SESSION_TYPE || !versions.includes(version)) {
      const expected = versions.map((v) => `(5, ${v})`).join(" or ");
      throw new MissiveError(
        "unknown-protocol",
        `session frame: envelope is (${e.protocolType}, ${e.protocolVersion}), not ${expected}`,
      );
    }
    if (e.sequenceNumber === undefined) malformed("no sequence number");
    env = { seq: e.sequenceNumber, payload: e.payload, version };
  }
  return { version: env.version, frame: decodePayload(env.seq, env.payload, env.version) };
}

function decodePayload(seq: number, p: Uint8Array, version: SessionVersion): Frame {
  const env = { seq };
  if (p.length < HEADER_SIZE) malformed("payload shorter than its header");
  const type = p[0] as MessageType;
  const forms = ALLOWED_FORMS[type];
  if (!forms) malformed(`unknown message type ${p[0]}`);
  if (!forms.includes(p[1])) malformed(`${TYPE_NAMES[type]} cannot have form ${p[1]}`);
  const header = { seq: env.seq, type, time: readU64(p, 2, "time") };
  const rest = p.subarray(HEADER_SIZE);
  if (p[1] === FORM_SIGNED) {
    return { ...header, form: "signed", ...decodeSignedPart(rest, version) };
  }
  if (rest.length < KEY_ID_SIZE + TAG_SIZE) malformed("sealed payload too short");
  return {
    ...header,
    form: "sealed",
    keyId: rest.slice(0, KEY_ID_SIZE),
    ciphertext: rest.slice(KEY_ID_SIZE),
  };
}

// ---------------------------------------------------------------------------------------
// Bodies (SPEC §22.4)

/** HELLO and HELLO_ACK body: the sender's ephemeral X25519 key and its card. */
export interface HelloBody {
  ephemeralKey: Bytes;
  card: Bytes;
  /** Re-key HELLO only: the acknowledged-DATA count that made the re-key due. */
  acknowledged?: number;
  /** Version 2 HELLO: the versions the sender offers, highest (2) first (SPEC §22.12.1). */
  offered?: readonly number[];
  /** Version 2 HELLO_ACK: the version the responder chose (2). */
  chosen?: number;
  /**
   * Version 2: the X-Wing encapsulation key (HELLO, 1,216 bytes) or ciphertext
   * (HELLO_ACK, 1,120 bytes).
   */
  kem?: Bytes;
}

/** Encodes a hello body; fields 4 and 5 only when given (version 2). */
export function encodeHelloBody(h: HelloBody): Bytes {
  const map = new Map<number, Bytes | number | number[]>([
    [1, h.ephemeralKey],
    [2, h.card],
  ]);
  if (h.acknowledged !== undefined) map.set(3, h.acknowledged);
  if (h.offered !== undefined) map.set(4, [...h.offered]);
  if (h.chosen !== undefined) map.set(4, h.chosen);
  if (h.kem !== undefined) map.set(5, h.kem);
  return encodeCbor(map);
}

/** Most versions a HELLO may offer. */
export const MAX_OFFERED_VERSIONS = 8;

/**
 * Decodes a version 2 hello body (SPEC §22.12.1) strictly: a HELLO's field 4 lists 1–8
 * versions, strictly descending, each 1–65535, the first 2; its field 5 is a 1,216-byte
 * X-Wing key. A HELLO_ACK's field 4 is the chosen version, 2; its field 5 a 1,120-byte
 * X-Wing ciphertext.
 */
export function decodeHelloBodyV2(bytes: Uint8Array, type: MessageType): HelloBody {
  const isHello = type === MessageType.HELLO;
  const r = CborReader.from(decodeCbor(bytes, "session hello"), "session hello")
    .onlyKeys([1, 2, 3, 4, 5]);
  const body: HelloBody = {
    ephemeralKey: r.bytes(1, 32),
    card: r.bytes(2, { min: 1, max: MAX_CARD_SIZE }),
    acknowledged: r.optUint(3),
    kem: r.bytes(5, isHello ? XWING_PUBLIC_KEY_SIZE : XWING_CIPHERTEXT_SIZE),
  };
  if (!isHello) {
    if (body.acknowledged !== undefined) malformed("a HELLO_ACK carries no acknowledged count");
    body.chosen = r.uint(4, 0xffff);
    if (body.chosen !== SESSION_PQ_VERSION) {
      malformed(`HELLO_ACK chose version ${body.chosen} in a version 2 frame`);
    }
    return body;
  }
  const offered = r.array(4, MAX_OFFERED_VERSIONS).map((v) => {
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > 0xffff) {
      malformed("an offered version is not an integer 1–65535");
    }
    return v;
  });
  if (offered[0] !== SESSION_PQ_VERSION) {
    malformed("a version 2 HELLO must offer version 2 first");
  }
  for (let i = 1; i < offered.length; i++) {
    if (offered[i] >= offered[i - 1]) malformed("offered versions must be strictly descending");
  }
  body.offered = offered;
  return body;
}

/** Decodes a version 1 hello body (SPEC §22.4) strictly. */
export function decodeHelloBody(bytes: Uint8Array): HelloBody {
  const r = CborReader.from(decodeCbor(bytes, "session hello"), "session hello")
    .onlyKeys([1, 2, 3]);
  return {
    ephemeralKey: r.bytes(1, 32),
    card: r.bytes(2, { min: 1, max: MAX_CARD_SIZE }),
    acknowledged: r.optUint(3),
  };
}

/** CLOSE and CLOSED_WITHOUT_ACK body: a reason code (SPEC §22.9) and a short text. */
export interface CloseBody {
  reason: number;
  text: string;
}
export const MAX_CLOSE_TEXT = 256;

export function encodeCloseBody(c: CloseBody): Bytes {
  return encodeCbor(new Map<number, number | string>([[1, c.reason], [2, c.text]]));
}

export function decodeCloseBody(bytes: Uint8Array): CloseBody {
  const r = CborReader.from(decodeCbor(bytes, "session close"), "session close").onlyKeys([1, 2]);
  return { reason: r.uint(1, 255), text: r.text(2, MAX_CLOSE_TEXT) };
}

/** DATA body: the 8-byte data index, then the application bytes. */
export function encodeDataBody(index: number, data: Uint8Array): Bytes {
  const out = new Uint8Array(8 + data.length);
  writeU64(out, 0, index);
  out.set(data, 8);
  return out;
}

export function decodeDataBody(bytes: Uint8Array): { index: number; data: Bytes } {
  if (bytes.length < 8) malformed("DATA body shorter than its index");
  return { index: readU64(bytes, 0, "data index"), data: bytes.slice(8) };
}

/** DATA_ACK body: the highest data index received (cumulative). */
export function decodeAckBody(bytes: Uint8Array): number {
  if (bytes.length !== 8) malformed("DATA_ACK body must be 8 bytes");
  return readU64(bytes, 0, "acknowledged index");
}

/** ACK, RESEND_LAST and CLOSE_ACK bodies are empty. */
export function checkEmptyBody(type: MessageType, bytes: Uint8Array): void {
  if (bytes.length !== 0) malformed(`${TYPE_NAMES[type]} body must be empty`);
}
