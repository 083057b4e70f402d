/**
 * A fast path for the relay's hot messages (send, delivery, ack, their responses and
 * bundles of them): deterministic CBOR maps whose keys are unsigned integers and whose
 * values are unsigned integers, byte strings, text, or arrays of byte strings. Encoding gives exactly `encodeCbor`'s bytes;
 * decoding accepts a message only when it is such a map in deterministic encoding and
 * otherwise returns undefined, so the caller falls back to `decodeCbor` — the authority
 * on everything else, which then accepts or refuses it. tests/relay_protocol_test.ts
 * checks both directions against cbor.ts.
 * @module
 */
import type { Bytes } from "../bytes.ts";
import type { CborMap, CborValue } from "../cbor.ts";

/** A value the fast path handles. */
type FlatValue = number | string | Uint8Array | Uint8Array[];

/** Most entries a flat map, and items an array of byte strings, may have on the fast path. */
const MAX_ENTRIES = 32;
const MAX_ARRAY = 1024;

const encoder = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function isFlatValue(v: CborValue): v is FlatValue {
  return (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) ||
    typeof v === "string" || v instanceof Uint8Array ||
    (Array.isArray(v) && v.length <= MAX_ARRAY && v.every((x) => x instanceof Uint8Array));
}

/** True when `encodeFlatMap` can encode `m`. */
export function isFlatMap(m: CborMap): m is Map<number, FlatValue> {
  if (m.size > MAX_ENTRIES) return false;
  for (const [k, v] of m) {
    if (typeof k !== "number" || !Number.isSafeInteger(k) || k < 0 || !isFlatValue(v)) {
      return false;
    }
  }
  return true;
}

function headerLength(arg: number): number {
  return arg < 24 ? 1 : arg <= 0xff ? 2 : arg <= 0xffff ? 3 : arg <= 0xffff_ffff ? 5 : 9;
}

function writeHeader(out: Uint8Array, pos: number, major: number, arg: number): number {
  const m = major << 5;
  if (arg < 24) {
    out[pos] = m | arg;
    return pos + 1;
  }
  if (arg <= 0xff) {
    out[pos] = m | 24;
    out[pos + 1] = arg;
    return pos + 2;
  }
  if (arg <= 0xffff) {
    out[pos] = m | 25;
    out[pos + 1] = arg >> 8;
    out[pos + 2] = arg & 0xff;
    return pos + 3;
  }
  if (arg <= 0xffff_ffff) {
    out[pos] = m | 26;
    new DataView(out.buffer, out.byteOffset).setUint32(pos + 1, arg);
    return pos + 5;
  }
  out[pos] = m | 27;
  const view = new DataView(out.buffer, out.byteOffset);
  view.setUint32(pos + 1, Math.floor(arg / 2 ** 32));
  view.setUint32(pos + 5, arg >>> 0);
  return pos + 9;
}

/** Encodes a flat map exactly as `encodeCbor` would (keys sorted ascending). */
export function encodeFlatMap(m: Map<number, FlatValue>): Bytes {
  const keys = [...m.keys()].sort((a, b) => a - b);
  const parts: { key: number; major: number; arg: number; body?: Uint8Array | Uint8Array[] }[] = [];
  let size = headerLength(keys.length);
  for (const key of keys) {
    const v = m.get(key)!;
    const body = typeof v === "string" ? encoder.encode(v) : typeof v === "number" ? undefined : v;
    const major = typeof v === "number" ? 0 : typeof v === "string" ? 3 : Array.isArray(v) ? 4 : 2;
    const arg = body ? body.length : v as number;
    parts.push({ key, major, arg, body });
    size += headerLength(key) + headerLength(arg);
    if (Array.isArray(body)) { for (const x of body) size += headerLength(x.length) + x.length; }
    else size += body?.length ?? 0;
  }
  const out = new Uint8Array(size);
  let pos = writeHeader(out, 0, 5, keys.length);
  const put = (x: Uint8Array) => {
    out.set(x, pos);
    pos += x.length;
  };
  for (const p of parts) {
    pos = writeHeader(out, pos, 0, p.key);
    pos = writeHeader(out, pos, p.major, p.arg);
    if (Array.isArray(p.body)) {
      for (const x of p.body) {
        pos = writeHeader(out, pos, 2, x.length);
        put(x);
      }
    } else if (p.body) {
      put(p.body);
    }
  }
  return out;
}

/**
 * Decodes a flat map in deterministic encoding, or returns undefined for anything else
 * (another shape, a non-shortest header, unsorted keys, bad UTF-8, trailing bytes…).
 */
export function decodeFlatMap(bytes: Uint8Array): CborMap | undefined {
  let pos = 0;
  // Reads a header of the given major type in shortest form; -1 when it is not one.
  const header = (): [major: number, arg: number] | undefined => {
    if (pos >= bytes.length) return undefined;
    const initial = bytes[pos++];
    const major = initial >> 5;
    const info = initial & 31;
    if (info < 24) return [major, info];
    if (info > 27) return undefined;
    const size = 1 << (info - 24);
    if (pos + size > bytes.length) return undefined;
    let arg = 0;
    for (let i = 0; i < size; i++) arg = arg * 256 + bytes[pos++];
    const min = [24, 0x100, 0x1_0000, 0x1_0000_0000][info - 24];
    if (arg < min || arg > Number.MAX_SAFE_INTEGER) return undefined;
    return [major, arg];
  };
  const top = header();
  if (!top || top[0] !== 5 || top[1] > MAX_ENTRIES) return undefined;
  const out: CborMap = new Map();
  let previous = -1;
  for (let i = 0; i < top[1]; i++) {
    const k = header();
    if (!k || k[0] !== 0 || k[1] <= previous) return undefined;
    previous = k[1];
    const v = header();
    if (!v) return undefined;
    const [major, arg] = v;
    if (major === 0) {
      out.set(k[1], arg);
    } else if (major === 4) {
      if (arg > MAX_ARRAY) return undefined;
      const items: Uint8Array[] = [];
      for (let j = 0; j < arg; j++) {
        const item = header();
        if (!item || item[0] !== 2 || item[1] > bytes.length - pos) return undefined;
        items.push(bytes.slice(pos, pos + item[1]));
        pos += item[1];
      }
      out.set(k[1], items);
    } else if (major === 2 || major === 3) {
      if (arg > bytes.length - pos) return undefined;
      const body = bytes.slice(pos, pos + arg);
      pos += arg;
      if (major === 2) {
        out.set(k[1], body);
      } else {
        try {
          out.set(k[1], strictUtf8.decode(body));
        } catch {
          return undefined;
        }
      }
    } else {
      return undefined;
    }
  }
  return pos === bytes.length ? out : undefined;
}
