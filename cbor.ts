/**
 * Deterministic CBOR (RFC 8949 §4.2.1, core deterministic encoding) over a small data
 * model: integers (safe range), byte strings, text strings, arrays, maps with integer or
 * text keys, booleans and null. No floats, no tags, no indefinite lengths.
 *
 * Encoding sorts map keys by their encoded bytes and writes integers in their shortest
 * form. Decoding is strict: it decodes with cbor-x, validates the value against the data
 * model, then re-encodes and requires the very same bytes, so every value has exactly
 * one accepted encoding (no malleability through alternative encodings).
 * @module
 */
import { Encoder } from "cbor-x/decode";
import { type Bytes, equalBytes } from "./bytes.ts";
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

/** Maps a value to what cbor-x must be given to emit the deterministic encoding. */
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
  if (Array.isArray(value)) return value.map((v) => prepare(v, depth + 1));
  if (value instanceof Map) {
    const entries = [...value].map(([k, v]) => {
      if (typeof k !== "string" && !(typeof k === "number" && Number.isSafeInteger(k))) {
        throw new MissiveError("internal", "cbor: map keys must be integers or text");
      }
      return { key: encodeCbor(k), k: prepare(k, depth + 1), v: prepare(v, depth + 1) };
    });
    entries.sort((a, b) => compareBytes(a.key, b.key));
    return new Map(entries.map((e) => [e.k, e.v]));
  }
  throw new MissiveError("internal", `cbor: unsupported value of type ${typeof value}`);
}

/** Encodes a value deterministically. */
export function encodeCbor(value: CborValue): Bytes {
  const out = codec.encode(prepare(value, 0));
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength).slice();
}

/** Checks a decoded value against the data model and normalises it (bigint, Buffer). */
function validate(value: unknown, depth: number): CborValue {
  if (depth > MAX_DEPTH) throw new Error("nesting too deep");
  switch (typeof value) {
    case "number":
      if (!Number.isSafeInteger(value)) throw new Error("floats are not allowed");
      return value;
    case "bigint":
      if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
        throw new Error("integer out of range");
      }
      return Number(value);
    case "string":
    case "boolean":
      return value;
  }
  if (value === null) return null;
  if (value instanceof Uint8Array) return new Uint8Array(value);
  if (Array.isArray(value)) return value.map((v) => validate(v, depth + 1));
  if (value instanceof Map) {
    const out: CborMap = new Map();
    for (const [k, v] of value) {
      const key = validate(k, depth + 1);
      if (typeof key !== "number" && typeof key !== "string") {
        throw new Error("map keys must be integers or text");
      }
      out.set(key, validate(v, depth + 1));
    }
    return out;
  }
  throw new Error(`unsupported item (${value === undefined ? "undefined" : "tag or record"})`);
}

/** Most data items accepted in one decode; missive's largest structure (a card) has ~400. */
const MAX_ITEMS = 10_000;

/**
 * Walks the item headers without allocating, before cbor-x builds anything: bounds the
 * number of items and the nesting depth, checks every claimed length against the bytes
 * left, and refuses tags, indefinite lengths and reserved encodings early. Without this,
 * a 60 MiB array of zeros makes the decoder build 60 million values before the shape
 * check can refuse it.
 */
function scanCbor(bytes: Uint8Array): void {
  const pending = [1]; // items still to read at each open nesting level
  let pos = 0;
  let items = 0;
  while (pending.length > 0) {
    if (pending[pending.length - 1] === 0) {
      pending.pop();
      continue;
    }
    pending[pending.length - 1]--;
    if (++items > MAX_ITEMS) throw new Error(`more than ${MAX_ITEMS} items`);
    if (pos >= bytes.length) throw new Error("truncated");
    const initial = bytes[pos++];
    const major = initial >> 5;
    const info = initial & 31;
    let arg = info;
    if (info >= 24 && info <= 27) {
      const size = 1 << (info - 24);
      if (pos + size > bytes.length) throw new Error("truncated");
      arg = 0;
      for (let i = 0; i < size; i++) arg = arg * 256 + bytes[pos++];
    } else if (info > 27) {
      throw new Error(info === 31 ? "indefinite lengths are not allowed" : "reserved encoding");
    }
    const left = bytes.length - pos;
    switch (major) {
      case 2:
      case 3:
        if (arg > left) throw new Error("truncated string");
        pos += arg;
        break;
      case 4:
      case 5: {
        const count = major === 4 ? arg : arg * 2;
        if (count > left) throw new Error("truncated container");
        if (pending.length > MAX_DEPTH + 1) throw new Error("nesting too deep");
        pending.push(count);
        break;
      }
      case 6:
        throw new Error("tags are not allowed");
    }
  }
  if (pos !== bytes.length) throw new Error("trailing bytes");
}

/**
 * Decodes exactly one deterministic CBOR item that must span all of `bytes`.
 * Throws `MissiveError("malformed")` with `context` as the message prefix.
 */
export function decodeCbor(bytes: Uint8Array, context = "cbor"): CborValue {
  let value: CborValue;
  try {
    scanCbor(bytes);
    // A fresh view: cbor-x caches a DataView as a property on the array it is given.
    value = validate(codec.decode(bytes.subarray(0)), 0);
  } catch (e) {
    throw new MissiveError("malformed", `${context}: invalid CBOR: ${(e as Error)?.message}`, {
      cause: e,
    });
  }
  let again: Uint8Array;
  try {
    again = encodeCbor(value);
  } catch (e) {
    throw new MissiveError("malformed", `${context}: invalid CBOR: ${(e as Error)?.message}`);
  }
  if (!equalBytes(again, bytes)) {
    throw new MissiveError("malformed", `${context}: CBOR is not in deterministic encoding`);
  }
  return value;
}

/**
 * Typed access to a decoded CBOR map, with errors that name the structure and field.
 * Unknown keys are ignored unless `known` is given to `expectMap`.
 */
export class CborReader {
  readonly #map: CborMap;
  readonly #context: string;

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

  optBytes(key: number | string, length?: number | { min?: number; max: number }) {
    return this.#map.has(key) ? this.bytes(key, length) : undefined;
  }

  /** A text string of at most `maxLength` UTF-16 code units. */
  text(key: number | string, maxLength = 1024): string {
    const v = this.#map.get(key);
    if (typeof v !== "string") this.#fail(key, v === undefined ? "missing" : "not text");
    if (v.length > maxLength) this.#fail(key, `longer than ${maxLength}`);
    return v;
  }

  optText(key: number | string, maxLength?: number): string | undefined {
    return this.#map.has(key) ? this.text(key, maxLength) : undefined;
  }

  bool(key: number | string): boolean {
    const v = this.#map.get(key);
    if (typeof v !== "boolean") this.#fail(key, v === undefined ? "missing" : "not a boolean");
    return v;
  }

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
