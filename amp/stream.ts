/**
 * `stream` AMP, type 7, version 1 (SPEC §20.2): the descriptor a stream's header carries.
 * It names the content's AMP (text/1 or file/1, with the file's name and media type), the
 * random payload key the chunks are sealed under, the chunk size, and whether every chunk
 * is signed by the sender. CBOR `{1: amp type, 2: amp version, 3: payload key, 4: chunk
 * size, 5: signed, 6?: name, 7?: media type}`; unknown keys are refused. The content
 * itself is not in the descriptor: it follows as chunks (stream/).
 * @module
 */
import { type Bytes, randomBytes, utf8 } from "../core/bytes.ts";
import { CborReader, decodeCbor, encodeCbor } from "../core/cbor.ts";
import { MissiveError } from "../core/errors.ts";
import type { AmpSummary, CliAmp } from "../plugin/types.ts";
import { FILE_TYPE, fileNameProblem } from "./file.ts";
import { TEXT_TYPE } from "./text.ts";

/** AMP type number of `stream`. */
export const STREAM_TYPE = 7;
/** Smallest chunk size a descriptor may name (small sizes are for tests and vectors). */
export const MIN_STREAM_CHUNK = 256;
/** Largest chunk size: bounds what a reader allocates per chunk. */
export const MAX_STREAM_CHUNK = 16 * 1024 * 1024;
/** Content AMPs a stream may carry in version 1: their content is the raw bytes. */
export const STREAMABLE_AMPS: readonly (readonly [number, number])[] = [
  [TEXT_TYPE, 1],
  [FILE_TYPE, 1],
];
const MAX_NAME_BYTES = 255;
const MEDIA_TYPE =
  /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;

/** A stream's descriptor. `name` and `mediaType` are set exactly for file/1 content. */
export interface StreamDescriptor {
  /** The content's AMP type: text (1) or file (6) in version 1 (`STREAMABLE_AMPS`). */
  ampType: number;
  /** The content's AMP version (1). */
  ampVersion: number;
  /** 32 random bytes; every chunk key derives from it (SPEC §20.3). Secret. */
  payloadKey: Uint8Array;
  /** Plaintext bytes per chunk, `MIN_STREAM_CHUNK`..`MAX_STREAM_CHUNK`; the last may be shorter. */
  chunkSize: number;
  /** Every chunk carries the sender's Ed25519 signature (SPEC §20.4). */
  signed: boolean;
  /** The file's bare name (file/1 only), at most 255 UTF-8 bytes. */
  name?: string;
  /** The file's media type, e.g. `application/pdf` (file/1 only). */
  mediaType?: string;
}

/** Chunk size of a descriptor made by fromInput without --field chunk-size. */
const DEFAULT_CHUNK_SIZE = 256 * 1024;

/** One line for people; no key. */
function describe(d: StreamDescriptor): string {
  const what = d.name !== undefined
    ? `file ${JSON.stringify(d.name)} (${d.mediaType})`
    : `content AMP (${d.ampType}, ${d.ampVersion})`;
  return `stream header: ${what} in chunks of ${d.chunkSize} bytes` +
    `${d.signed ? ", each signed by the sender" : ""}; the chunks are not in this envelope`;
}

/** Why a descriptor is unusable, or undefined. */
function problem(d: StreamDescriptor): string | undefined {
  if (!STREAMABLE_AMPS.some(([t, v]) => t === d.ampType && v === d.ampVersion)) {
    return `content AMP (${d.ampType}, ${d.ampVersion}) cannot be streamed (text/1 or file/1)`;
  }
  if (!(d.payloadKey instanceof Uint8Array) || d.payloadKey.length !== 32) {
    return "payload key must be 32 bytes";
  }
  if (
    !Number.isSafeInteger(d.chunkSize) || d.chunkSize < MIN_STREAM_CHUNK ||
    d.chunkSize > MAX_STREAM_CHUNK
  ) {
    return `chunk size must be ${MIN_STREAM_CHUNK}..${MAX_STREAM_CHUNK}`;
  }
  const isFile = d.ampType === FILE_TYPE;
  if (isFile !== (d.name !== undefined) || isFile !== (d.mediaType !== undefined)) {
    return "name and media type go with file/1 content, and only there";
  }
  if (d.name !== undefined) {
    const problem = fileNameProblem(d.name);
    if (problem) return problem;
  }
  if (d.mediaType !== undefined && !MEDIA_TYPE.test(d.mediaType)) {
    return "media type must look like type/subtype";
  }
  return undefined;
}

function encode(d: StreamDescriptor): Bytes {
  const why = problem(d);
  if (why) throw new MissiveError("usage", `stream: ${why}`);
  const map = new Map<number, number | boolean | string | Uint8Array>([
    [1, d.ampType],
    [2, d.ampVersion],
    [3, d.payloadKey],
    [4, d.chunkSize],
    [5, d.signed],
  ]);
  if (d.name !== undefined) map.set(6, d.name);
  if (d.mediaType !== undefined) map.set(7, d.mediaType);
  return encodeCbor(map);
}

function decode(bytes: Uint8Array): StreamDescriptor {
  if (bytes.length > 4096) {
    throw new MissiveError("too-large", "stream: descriptor over 4096 bytes");
  }
  const r = CborReader.from(decodeCbor(bytes, "stream"), "stream").onlyKeys([1, 2, 3, 4, 5, 6, 7]);
  const d: StreamDescriptor = {
    ampType: r.uint(1, 0xffff),
    ampVersion: r.uint(2, 0xffff),
    payloadKey: r.bytes(3, 32),
    chunkSize: r.uint(4),
    signed: r.bool(5),
  };
  const name = r.optText(6, MAX_NAME_BYTES);
  const mediaType = r.optText(7, 255);
  if (name !== undefined) d.name = name;
  if (mediaType !== undefined) d.mediaType = mediaType;
  const why = problem(d);
  if (why) throw new MissiveError("malformed", `stream: ${why}`);
  return d;
}

/** The `--field` names fromInput takes. */
const FIELDS = ["chunk-size", "signed", "amp", "name", "type"];

/**
 * A bare descriptor from CLI fields (tooling and tests; `missive seal --stream` makes real
 * ones): no input, a fresh random payload key.
 */
function fromInput(input: Uint8Array, fields: Readonly<Record<string, string>>): StreamDescriptor {
  const unknown = Object.keys(fields).filter((k) => !FIELDS.includes(k));
  if (input.length > 0 || unknown.length > 0) {
    throw new MissiveError(
      "usage",
      `stream: ${
        input.length > 0 ? "a descriptor takes no input" : `unknown field ${unknown[0]}`
      }` +
        "; streams are made by `missive seal --stream`",
    );
  }
  const file = fields.amp === "file" || fields.amp === "file/1";
  if (fields.amp !== undefined && !file && fields.amp !== "text" && fields.amp !== "text/1") {
    throw new MissiveError("usage", "stream: --field amp= must be text/1 or file/1");
  }
  const size = fields["chunk-size"];
  if (size !== undefined && !/^\d{1,9}$/.test(size)) {
    throw new MissiveError("usage", "stream: --field chunk-size= must be a number of bytes");
  }
  if (fields.signed !== undefined && !["yes", "no"].includes(fields.signed)) {
    throw new MissiveError("usage", "stream: --field signed= must be yes or no");
  }
  const d: StreamDescriptor = {
    ampType: file ? FILE_TYPE : TEXT_TYPE,
    ampVersion: 1,
    payloadKey: randomBytes(32),
    chunkSize: size !== undefined ? Number(size) : DEFAULT_CHUNK_SIZE,
    signed: fields.signed === "yes",
    ...(file
      ? { name: fields.name ?? "", mediaType: fields.type ?? "application/octet-stream" }
      : {}),
  };
  const why = problem(d);
  if (why) throw new MissiveError("usage", `stream: ${why}`);
  return d;
}

/** `stream` v1: made and read by the stream layer (SPEC §20.2). */
export const streamV1: CliAmp<StreamDescriptor> & AmpSummary<StreamDescriptor> = {
  kind: "amp",
  type: STREAM_TYPE,
  version: 1,
  name: "stream",
  description: "a stream's descriptor: content AMP, payload key, chunk size (SPEC §20)",
  encode,
  decode,
  fromInput,
  // A header opened alone (without its chunks): a description, never the payload key.
  toOutput: (d) => utf8(describe(d) + "\n"),
  summary: describe,
  // Never the payload key.
  toJson: (d) => ({
    amp: [d.ampType, d.ampVersion],
    chunkSize: d.chunkSize,
    signed: d.signed,
    ...(d.name !== undefined ? { name: d.name, mediaType: d.mediaType } : {}),
  }),
};
