/**
 * Example third-party AMP: `json`, type 1000, version 1 (docs/PLUGINS.md).
 *
 * The body is one JSON value (RFC 8259, restricted to I-JSON, RFC 7493) as its canonical
 * UTF-8 text: no whitespace, object members sorted by name (UTF-16 code units) and
 * numbers and strings as ECMAScript's JSON.stringify writes them, which is the
 * serialisation of RFC 8785 (JCS). Decoding is strict: valid UTF-8, valid JSON, within
 * the size and depth caps, and already canonical, so every message has one encoding.
 *
 * The file imports nothing: its factory receives missive's host API.
 * @module
 */

type ErrorCode = "usage" | "malformed" | "too-large";
/** The part of missive's host API this plugin uses. */
export interface JsonHost {
  bytes: { utf8(s: string): Uint8Array; fromUtf8(b: Uint8Array): string };
  MissiveError: new (code: ErrorCode, message: string) => Error;
}

/** A JSON value as JSON.parse returns it. */
export type Json = null | boolean | number | string | Json[] | { [name: string]: Json };

/** Third-party numbers start at 1000 (DESIGN §4). */
export const JSON_TYPE = 1000;
/** Largest canonical JSON text, in bytes. */
export const MAX_JSON_BYTES = 4 * 1024 * 1024;
/** Deepest nesting of arrays and objects (a bare scalar is depth 0). */
export const MAX_JSON_DEPTH = 64;
/** Largest input `fromInput` reads (pretty-printed JSON is larger than canonical). */
const MAX_INPUT_BYTES = 2 * MAX_JSON_BYTES;

/** Lone UTF-16 surrogates cannot be UTF-8 encoded; I-JSON (RFC 7493 §2.1) forbids them. */
const LONE_SURROGATE = /\p{Cs}/u;
/** Strings (skipped) and number tokens of a JSON text already known to be valid. */
const NUMBER_TOKENS = /"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g;

/** Builds the `json` AMP from the host API. */
export default function jsonPlugin(host: JsonHost) {
  const { bytes, MissiveError } = host;
  const fail = (code: ErrorCode, message: string): never => {
    throw new MissiveError(code, `json: ${message}`);
  };

  /** Writes the canonical text, refusing anything that is not I-JSON data. */
  function canonical(value: unknown, depth: number, code: ErrorCode): string {
    if (value === null || typeof value === "boolean") return String(value);
    if (typeof value === "number") {
      if (!Number.isFinite(value)) fail(code, `number ${value} is not valid JSON`);
      return JSON.stringify(value);
    }
    if (typeof value === "string") {
      if (LONE_SURROGATE.test(value)) fail(code, "string with a lone UTF-16 surrogate");
      return JSON.stringify(value);
    }
    if (depth >= MAX_JSON_DEPTH) fail(code, `nested deeper than ${MAX_JSON_DEPTH}`);
    if (Array.isArray(value)) {
      const items: string[] = [];
      for (let i = 0; i < value.length; i++) {
        if (!(i in value)) fail(code, "sparse array");
        items.push(canonical(value[i], depth + 1, code));
      }
      return `[${items.join(",")}]`;
    }
    if (typeof value !== "object") return fail(code, `a ${typeof value} is not JSON data`);
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      return fail(code, `a ${proto?.constructor?.name ?? "non-plain"} object is not JSON data`);
    }
    const record = value as Record<string, unknown>;
    const members = Object.keys(record).sort().map((name) => {
      if (LONE_SURROGATE.test(name)) fail(code, "member name with a lone UTF-16 surrogate");
      return `${JSON.stringify(name)}:${canonical(record[name], depth + 1, code)}`;
    });
    return `{${members.join(",")}}`;
  }

  function encodeChecked(value: unknown, code: ErrorCode): Uint8Array {
    const text = canonical(value, 0, code);
    // UTF-8 never takes fewer bytes than UTF-16 code units: refuse early when we can.
    if (text.length > MAX_JSON_BYTES) fail("too-large", `longer than ${MAX_JSON_BYTES} bytes`);
    const out = bytes.utf8(text);
    if (out.length > MAX_JSON_BYTES) fail("too-large", `longer than ${MAX_JSON_BYTES} bytes`);
    return out;
  }

  function parse(input: Uint8Array, max: number, context: string): { text: string; value: Json } {
    if (input.length > max) fail("too-large", `${context} longer than ${max} bytes`);
    let text: string;
    try {
      text = bytes.fromUtf8(input);
    } catch {
      return fail("malformed", `${context} is not valid UTF-8`);
    }
    try {
      return { text, value: JSON.parse(text) as Json };
    } catch (e) {
      return fail("malformed", `${context} is not valid JSON: ${(e as Error).message}`);
    }
  }

  /** Refuses integers that JSON.parse would silently round (I-JSON, RFC 7493 §2.2). */
  function checkExactIntegers(text: string): void {
    for (const [token] of text.matchAll(NUMBER_TOKENS)) {
      if (token.startsWith('"') || /[.eE]/.test(token)) continue;
      if (BigInt(token) !== BigInt(Number(token))) {
        fail("malformed", `integer ${token} cannot be carried exactly; send it as a string`);
      }
    }
  }

  return {
    kind: "amp" as const,
    type: JSON_TYPE,
    version: 1,
    name: "json",
    description: "one JSON value as canonical UTF-8 text (example plugin)",
    encode: (message: Json) => encodeChecked(message, "usage"),
    decode(body: Uint8Array): Json {
      const { value } = parse(body, MAX_JSON_BYTES, "message");
      const again = encodeChecked(value, "malformed");
      if (again.length !== body.length || again.some((b, i) => b !== body[i])) {
        fail("malformed", "message is not in canonical form");
      }
      return value;
    },
    fromInput(input: Uint8Array, fields: Readonly<Record<string, string>>): Json {
      const names = Object.keys(fields);
      if (names.length > 0) fail("usage", `takes no --field (got ${names.join(", ")})`);
      const { text, value } = parse(input, MAX_INPUT_BYTES, "input");
      checkExactIntegers(text);
      encodeChecked(value, "malformed");
      return value;
    },
    toOutput: (message: Json) => bytes.utf8(JSON.stringify(message, null, 2) + "\n"),
    toJson: (message: Json): unknown => message,
  };
}
