/**
 * Deterministic CBOR (RFC 8949 §4.2.1, core deterministic encoding) over a small data
 * model: integers (safe range), byte strings, text strings, arrays, maps with integer or
 * text keys, booleans and null. No floats, no tags, no indefinite lengths.
 *
 * Encoding (cbor-x) sorts map keys by their encoded bytes and writes integers in their
 * shortest form. Decoding is one strict pass of our own over the bytes (`StrictReader`):
 * it accepts exactly the encodings the encoder produces, so every value has one accepted
 * encoding (no malleability through alternative encodings), and it checks every length
 * against the bytes left before allocating.
 * @module
 */
import { Encoder } from "cbor-x/decode";
import type { Bytes } from "./bytes.ts";
import { MissiveError } from "./errors.ts";

/** A value of missive's CBOR data model. */
export type CborValue =
  | number
  | string
  | boolean
  | null
  | Uint8Array
  | CborValue[]
  | CborMap;

/** A CBOR map; keys are integers or text. */
export type CborMap = Map<number | string, CborValue>;

/** Deepest nesting accepted on decode; missive's structures need far less. */
const MAX_DEPTH = 16;

const codec = new Encoder(
  {
    useRecords: false,
    tagUint8Array: false,
    mapsAsObjects: false,
    variableMapSize: true,
    // Never let the codec substitute its own structures for ours.
    structuredClone: false,
    pack: false,
  } as ConstructorParameters<typeof Encoder>[0],
);

const U32 = 0xffff_ffff;

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** The head of a data item (RFC 8949 §3) in its shortest form. */
function head(major: number, arg: number): Uint8Array {
  const m = major << 5;
  if (arg < 24) return Uint8Array.of(m | arg);
  if (arg <= 0xff) return Uint8Array.of(m | 24, arg);
  if (arg <= 0xffff) return Uint8Array.of(m | 25, arg >> 8, arg & 0xff);
  if (arg <= U32) {
    return Uint8Array.of(m | 26, arg >>> 24, (arg >> 16) & 0xff, (arg >> 8) & 0xff, arg & 0xff);
  }
  const hi = Math.floor(arg / 2 ** 32);
  const lo = arg >>> 0;
  return Uint8Array.of(
    m | 27,
    hi >>> 24,
    (hi >> 16) & 0xff,
    (hi >> 8) & 0xff,
    hi & 0xff,
    lo >>> 24,
    (lo >> 16) & 0xff,
    (lo >> 8) & 0xff,
    lo & 0xff,
  );
}

/** The deterministic encoding of a map key, to sort by (RFC 8949 §4.2.1). */
function encodedKey(k: number | string): Uint8Array {
  if (typeof k === "string") {
    const body = utf8Encoder.encode(k);
    const h = head(3, body.length);
    const out = new Uint8Array(h.length + body.length);
    out.set(h);
    out.set(body, h.length);
    return out;
  }
  return k >= 0 ? head(0, k) : head(1, -1 - k);
}

const utf8Encoder = new TextEncoder();

/**
 * Maps a value to what cbor-x must be given to emit the deterministic encoding: maps in
 * key order, integers beyond 32 bits as BigInt. Returns the value itself when nothing
 * needs changing (the common case: maps built in key order), so encoding copies nothing.
 */
function prepare(value: CborValue, depth: number): unknown {
  if (depth > MAX_DEPTH) throw new MissiveError("internal", "cbor: nesting too deep");
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) {
      throw new MissiveError("internal", `cbor: not an integer in the safe range: ${value}`);
    }
    // cbor-x writes integers beyond 32 bits as floats; a BigInt gets major type 0/1.
    return value > U32 || value < -U32 - 1 ? BigInt(value) : value;
  }
  if (typeof value === "string" || typeof value === "boolean" || value === null) return value;
  if (value instanceof Uint8Array) return value;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const p = prepare(value[i], depth + 1);
      if (p !== value[i]) (out ??= value.slice())[i] = p;
    }
    return out ?? value;
  }
  if (value instanceof Map) {
    let smallUints = true;
    let inOrder = true;
    let changed = false;
    let previous = -1;
    const prepared: unknown[] = [];
    for (const [k, v] of value) {
      if (typeof k === "string") smallUints = false;
      else if (!Number.isSafeInteger(k)) {
        throw new MissiveError("internal", "cbor: map keys must be integers or text");
      } else if (k < 0) smallUints = false;
      else if (k <= previous) inOrder = false;
      else previous = k;
      const p = prepare(v, depth + 1);
      if (p !== v) changed = true;
      prepared.push(p);
    }
    if (smallUints && inOrder && !changed) return value;
    // Non-negative integer keys sort numerically (shorter heads are smaller numbers);
    // anything else sorts by its encoded bytes.
    const entries = [...value.keys()].map((k, i) => ({ k, v: prepared[i] }));
    if (smallUints) entries.sort((a, b) => (a.k as number) - (b.k as number));
    else {
      const encoded = new Map(entries.map((e) => [e.k, encodedKey(e.k)]));
      entries.sort((a, b) => compareBytes(encoded.get(a.k)!, encoded.get(b.k)!));
    }
    return new Map(entries.map((e) => [prepare(e.k, depth + 1), e.v]));
  }
  throw new MissiveError("internal", `cbor: unsupported value of type ${typeof value}`);
}

/** Encodes a value deterministically. */
export function encodeCbor(value: CborValue): Bytes {
  const out = codec.encode(prepare(value, 0));
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength).slice();
}

/** Most data items accepted in one decode; missive's largest structure (a card) has ~400. */
const MAX_ITEMS = 10_000;

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Smallest argument each head width may carry: anything less has a shorter head. */
const MIN_ARG = [24, 0x100, 0x1_0000, 0x1_0000_0000];

class Noncanonical extends Error {}

/** compareBytes over two spans of one array, without making views. */
function compareSpans(b: Uint8Array, a0: number, a1: number, b0: number, b1: number): number {
  const n = Math.min(a1 - a0, b1 - b0);
  for (let i = 0; i < n; i++) if (b[a0 + i] !== b[b0 + i]) return b[a0 + i] - b[b0 + i];
  return (a1 - a0) - (b1 - b0);
}

/**
 * One pass over the bytes, strict (RFC 8949 §4.2.1 core deterministic encoding over
 * missive's data model): shortest heads, map keys in ascending order of their encodings
 * and unique, no tags, floats, undefined or indefinite lengths, UTF-8 text, every claimed
 * length checked against the bytes left before anything is allocated, at most MAX_ITEMS
 * items and MAX_DEPTH levels. Accepts exactly the encodings `encodeCbor` produces.
 */
class StrictReader {
  pos = 0;
  items = 0;
  constructor(readonly bytes: Uint8Array) {}

  #arg(info: number): number {
    if (info < 24) return info;
    if (info > 27) {
      throw new Error(info === 31 ? "indefinite lengths are not allowed" : "reserved encoding");
    }
    const size = 1 << (info - 24);
    const b = this.bytes;
    if (this.pos + size > b.length) throw new Error("truncated");
    let arg = 0;
    for (let i = 0; i < size; i++) arg = arg * 256 + b[this.pos++];
    if (arg < MIN_ARG[info - 24]) throw new Noncanonical();
    if (arg > Number.MAX_SAFE_INTEGER) throw new Error("integer out of range");
    return arg;
  }

  item(depth: number): CborValue {
    if (depth > MAX_DEPTH) throw new Error("nesting too deep");
    if (++this.items > MAX_ITEMS) throw new Error(`more than ${MAX_ITEMS} items`);
    const b = this.bytes;
    if (this.pos >= b.length) throw new Error("truncated");
    const initial = b[this.pos++];
    const major = initial >> 5;
    const info = initial & 31;
    if (major === 7) {
      if (info === 20) return false;
      if (info === 21) return true;
      if (info === 22) return null;
      if (info >= 25 && info <= 27) throw new Error("floats are not allowed");
      throw new Error("unsupported item (simple value)");
    }
    if (major === 6) throw new Error("tags are not allowed");
    const arg = this.#arg(info);
    const left = b.length - this.pos;
    switch (major) {
      case 0:
        return arg;
      case 1:
        if (arg > Number.MAX_SAFE_INTEGER - 1) throw new Error("integer out of range");
        return -1 - arg;
      case 2:
        if (arg > left) throw new Error("truncated string");
        this.pos += arg;
        return b.slice(this.pos - arg, this.pos);
      case 3:
        if (arg > left) throw new Error("truncated string");
        this.pos += arg;
        try {
          return strictUtf8.decode(b.subarray(this.pos - arg, this.pos));
        } catch {
          throw new Error("text is not valid UTF-8");
        }
      case 4: {
        if (arg > left) throw new Error("truncated container");
        if (arg > MAX_ITEMS - this.items) throw new Error(`more than ${MAX_ITEMS} items`);
        const out: CborValue[] = new Array(arg);
        for (let i = 0; i < arg; i++) out[i] = this.item(depth + 1);
        return out;
      }
      default: { // 5: map
        if (arg * 2 > left) throw new Error("truncated container");
        if (arg * 2 > MAX_ITEMS - this.items) throw new Error(`more than ${MAX_ITEMS} items`);
        const out: CborMap = new Map();
        let previousStart = -1;
        let previousEnd = -1;
        for (let i = 0; i < arg; i++) {
          const start = this.pos;
          const key = this.item(depth + 1);
          if (typeof key !== "number" && typeof key !== "string") {
            throw new Error("map keys must be integers or text");
          }
          // Keys strictly ascending by their encoded bytes (so also unique).
          if (
            previousStart >= 0 && compareSpans(b, previousStart, previousEnd, start, this.pos) >= 0
          ) {
            throw new Noncanonical();
          }
          previousStart = start;
          previousEnd = this.pos;
          out.set(key, this.item(depth + 1));
        }
        return out;
      }
    }
  }
}

/**
 * Decodes exactly one deterministic CBOR item that must span all of `bytes`.
 * Throws `MissiveError("malformed")` with `context` as the message prefix.
 */
export function decodeCbor(bytes: Uint8Array, context = "cbor"): CborValue {
  const reader = new StrictReader(bytes);
  try {
    const value = reader.item(0);
    if (reader.pos !== bytes.length) throw new Error("trailing bytes");
    return value;
  } catch (e) {
    if (e instanceof Noncanonical) {
      throw new MissiveError("malformed", `${context}: CBOR is not in deterministic encoding`);
    }
    throw new MissiveError("malformed", `${context}: invalid CBOR: ${(e as Error)?.message}`, {
      cause: e,
    });
  }
}

/**
 * Typed access to a decoded CBOR map, with errors that name the structure and field.
 * Unknown keys are ignored unless `known` is given to `expectMap`.
 */
export class CborReader {
  readonly #map: CborMap;
  readonly #context: string;

  /**
   * Wraps a decoded map; `context` names the structure in error messages
   * (`"envelope header"`, …). Use `CborReader.from` when the value may not be a map.
   */
  constructor(map: CborMap, context: string) {
    this.#map = map;
    this.#context = context;
  }

  /** Reads `value` as a map, refusing anything else. */
  static from(value: CborValue, context: string): CborReader {
    if (!(value instanceof Map)) {
      throw new MissiveError("malformed", `${context}: expected a CBOR map`);
    }
    return new CborReader(value, context);
  }

  #fail(key: number | string, what: string): never {
    throw new MissiveError("malformed", `${this.#context}: field ${key}: ${what}`);
  }

  /** True when the map holds `key`, whatever its value. */
  has(key: number | string): boolean {
    return this.#map.has(key);
  }

  /** A non-negative integer, optionally bounded above. */
  uint(key: number | string, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.#map.get(key);
    if (typeof v !== "number") this.#fail(key, v === undefined ? "missing" : "not an integer");
    if (v < 0 || v > max) this.#fail(key, `out of range 0..${max}`);
    return v;
  }

  /** `uint`, or undefined when the key is absent (present but wrong is `malformed`). */
  optUint(key: number | string, max?: number): number | undefined {
    return this.#map.has(key) ? this.uint(key, max) : undefined;
  }

  /** A byte string whose length is `length` or within [min, max]. */
  bytes(key: number | string, length?: number | { min?: number; max: number }): Bytes {
    const v = this.#map.get(key);
    if (!(v instanceof Uint8Array)) {
      this.#fail(key, v === undefined ? "missing" : "not a byte string");
    }
    if (typeof length === "number" && v.length !== length) {
      this.#fail(key, `expected ${length} bytes, got ${v.length}`);
    }
    if (typeof length === "object" && (v.length < (length.min ?? 0) || v.length > length.max)) {
      this.#fail(key, `length ${v.length} outside ${length.min ?? 0}..${length.max}`);
    }
    return v as Bytes;
  }

  /** `bytes`, or undefined when the key is absent (present but wrong is `malformed`). */
  optBytes(
    key: number | string,
    length?: number | { min?: number; max: number },
  ): Bytes | undefined {
    return this.#map.has(key) ? this.bytes(key, length) : undefined;
  }

  /** A text string of at most `maxLength` UTF-16 code units. */
  text(key: number | string, maxLength = 1024): string {
    const v = this.#map.get(key);
    if (typeof v !== "string") this.#fail(key, v === undefined ? "missing" : "not text");
    if (v.length > maxLength) this.#fail(key, `longer than ${maxLength}`);
    return v;
  }

  /** `text`, or undefined when the key is absent (present but wrong is `malformed`). */
  optText(key: number | string, maxLength?: number): string | undefined {
    return this.#map.has(key) ? this.text(key, maxLength) : undefined;
  }

  /** A boolean; `malformed` when missing or of another type. */
  bool(key: number | string): boolean {
    const v = this.#map.get(key);
    if (typeof v !== "boolean") this.#fail(key, v === undefined ? "missing" : "not a boolean");
    return v;
  }

  /** An array of at most `maxLength` items (checked before the items are read). */
  array(key: number | string, maxLength: number): CborValue[] {
    const v = this.#map.get(key);
    if (!Array.isArray(v)) this.#fail(key, v === undefined ? "missing" : "not an array");
    if (v.length > maxLength) this.#fail(key, `more than ${maxLength} items`);
    return v;
  }

  /** Any value (for fields that are one of several types). */
  raw(key: number | string): CborValue | undefined {
    return this.#map.get(key);
  }

  /** Refuses keys outside `allowed` (for structures whose spec forbids extensions). */
  onlyKeys(allowed: readonly (number | string)[]): this {
    for (const k of this.#map.keys()) {
      if (!allowed.includes(k)) this.#fail(k, "unknown field");
    }
    return this;
  }
}

/**
 * A domain-separated transcript for signatures, MACs and KDF inputs (DESIGN §4): the
 * deterministic CBOR array `[label, ...fields]`. Verifiers rebuild it from received
 * fields; nothing is ever re-encoded from a decoded object and hoped equal.
 */
export function transcript(label: string, ...fields: CborValue[]): Bytes {
  return encodeCbor([label, ...fields]);
}
