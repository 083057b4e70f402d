/**
 * `text` AMP, type 1 (SPEC §8). Version 1: the UTF-8 bytes as they are. Version 2
 * (AmpSimple): CBOR `{1: gzip(UTF-8 text), 2: nonce}`, decompressed under a cap so a
 * small body cannot expand into a memory bomb.
 * @module
 */
import { type Bytes, fromUtf8, randomBytes, utf8 } from "../core/bytes.ts";
import { CborReader, decodeCbor, encodeCbor } from "../core/cbor.ts";
import { MissiveError } from "../core/errors.ts";
import type { CliAmp } from "../plugin/types.ts";
import { zlib } from "../core/zlib.ts";

/** AMP type number of `text`. */
export const TEXT_TYPE = 1;
/** Largest text, in UTF-8 bytes, either version accepts (also the gunzip cap). */
export const MAX_TEXT_BYTES = 16 * 1024 * 1024;

/** A text message. `nonce` exists in version 2 only (random when not given). */
export interface TextMessage {
  /** The text, at most `MAX_TEXT_BYTES` (16 MiB) as UTF-8. */
  text: string;
  /** Version 2 only: 8..32 bytes; 16 random bytes when absent (SPEC §8.2). */
  nonce?: Uint8Array;
}

function decodeText(bytes: Uint8Array, context: string): string {
  if (bytes.length > MAX_TEXT_BYTES) {
    throw new MissiveError("too-large", `${context}: longer than ${MAX_TEXT_BYTES} bytes`);
  }
  try {
    return fromUtf8(bytes);
  } catch {
    throw new MissiveError("malformed", `${context}: not valid UTF-8`);
  }
}

function encodeText(text: string): Bytes {
  if (typeof text !== "string") {
    throw new MissiveError("usage", "text: message.text must be a string");
  }
  const bytes = utf8(text);
  if (bytes.length > MAX_TEXT_BYTES) {
    throw new MissiveError("too-large", `text: longer than ${MAX_TEXT_BYTES} bytes`);
  }
  return bytes;
}

const common = {
  kind: "amp",
  type: TEXT_TYPE,
  name: "text",
  fromInput: (input: Uint8Array) => ({ text: decodeText(input, "text input") }),
  toOutput: (m: TextMessage) => utf8(m.text),
  toJson: (m: TextMessage) => ({ text: m.text }),
} as const;

/** `text` v1: UTF-8 as is. */
export const textV1: CliAmp<TextMessage> = {
  ...common,
  version: 1,
  description: "UTF-8 text as is",
  encode: (m) => encodeText(m.text),
  decode: (bytes) => ({ text: decodeText(bytes, "text v1") }),
};

/** `text` v2 (AmpSimple): gzip-compressed UTF-8 with a message nonce. */
export const textV2: CliAmp<TextMessage> = {
  ...common,
  version: 2,
  description: "gzip-compressed UTF-8 text with a nonce (AmpSimple)",
  encode(m) {
    const nonce = m.nonce ?? randomBytes(16);
    if (!(nonce instanceof Uint8Array) || nonce.length < 8 || nonce.length > 32) {
      throw new MissiveError("usage", "text v2: nonce must be 8..32 bytes");
    }
    const gz = zlib().gzipSync(encodeText(m.text));
    return encodeCbor(
      new Map([[1, new Uint8Array(gz.buffer, gz.byteOffset, gz.byteLength)], [2, nonce]]),
    );
  },
  decode(bytes) {
    const r = CborReader.from(decodeCbor(bytes, "text v2"), "text v2").onlyKeys([1, 2]);
    const compressed = r.bytes(1);
    const nonce = r.bytes(2, { min: 8, max: 32 });
    let raw: Uint8Array;
    try {
      raw = zlib().gunzipSync(compressed, { maxOutputLength: MAX_TEXT_BYTES });
    } catch (e) {
      const tooBig = (e as { code?: string }).code === "ERR_BUFFER_TOO_LARGE";
      throw new MissiveError(
        tooBig ? "too-large" : "malformed",
        tooBig
          ? `text v2: decompresses to more than ${MAX_TEXT_BYTES} bytes`
          : "text v2: invalid gzip data",
      );
    }
    return { text: decodeText(raw, "text v2"), nonce };
  },
};
