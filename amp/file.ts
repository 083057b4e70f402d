/**
 * `file` AMP, type 6, version 1 (SPEC §17): a named file with its media type, size and
 * SHA-256, the content cut into fixed-size chunks. CBOR `{1: name, 2: size, 3: media type,
 * 4: sha256, 5: chunk size, 6: [chunk, …]}`. Decoding checks the size and the hash, so a
 * decoded file is the file that was sent. The chunk list is the in-memory form, capped
 * at 16 MiB; streaming larger files belongs to the streaming layer.
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { type Bytes, concatBytes, equalBytes, toBase64, toHex, utf8 } from "../core/bytes.ts";
import { CborReader, decodeCbor, encodeCbor } from "../core/cbor.ts";
import { MissiveError } from "../core/errors.ts";
import { hasUnsafeNameCharacters } from "../core/sanitize.ts";
import type { AmpSummary, CliAmp } from "../plugin/types.ts";

/** AMP type number of `file`. */
export const FILE_TYPE = 6;
/** Largest content, in bytes (the text AMP's cap). */
export const MAX_FILE_BYTES = 16 * 1024 * 1024;
/** Chunk size writers use unless told otherwise. */
export const DEFAULT_CHUNK_SIZE = 64 * 1024;
/**
 * Smallest chunk size: 16 MiB in 4096-byte chunks is 4096 items, well under the CBOR
 * decoder's 10,000-item limit (SPEC §1.2).
 */
const MIN_CHUNK_SIZE = 4096;
const MAX_NAME_BYTES = 255;
/** RFC 6838 §4.2 `type-name "/" subtype-name`, without parameters. */
const MEDIA_TYPE =
  /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;
/** Body bytes beyond the content: the header and up to 5 bytes of length per chunk. */
const MAX_OVERHEAD = 1024 + 5 * (MAX_FILE_BYTES / MIN_CHUNK_SIZE);
/** The `--field` names fromInput takes. */
const FIELDS = ["name", "type", "chunk-size"];

/** A file. `size` and `sha256` are set by decode; encode computes them from `content`. */
export interface FileMessage {
  /** A bare file name: no path, no control characters. */
  name: string;
  /** Media type, e.g. `application/pdf`. */
  type: string;
  /** The file's bytes, at most `MAX_FILE_BYTES` (16 MiB). */
  content: Uint8Array;
  /** Bytes per chunk on the wire (default 65536). */
  chunkSize?: number;
  /** The content's length in bytes; when given to encode, it must match (`usage`). */
  size?: number;
  /** The content's 32-byte SHA-256: encode refuses a wrong one (`usage`), decode checks it. */
  sha256?: Uint8Array;
}

/**
 * Why `name` is not a bare file name, or undefined when it is one (SPEC §17): not empty,
 * at most 255 UTF-8 bytes, not "." or "..", no "/" or "\\" (a path), and no C0 or C1
 * control, DEL or bidirectional control (they spoof terminals: "gpj.exe" shown reversed).
 */
export function fileNameProblem(name: unknown): string | undefined {
  if (typeof name !== "string" || name.length === 0) return "name must not be empty";
  if (utf8(name).length > MAX_NAME_BYTES) return `name longer than ${MAX_NAME_BYTES} bytes`;
  if (name === "." || name === "..") return `name must not be "${name}"`;
  if (/[/\\]/.test(name) || hasUnsafeNameCharacters(name)) {
    return "name must not contain /, \\, control characters or bidirectional controls";
  }
  return undefined;
}
const nameProblem = fileNameProblem;

function typeProblem(type: unknown): string | undefined {
  return typeof type === "string" && MEDIA_TYPE.test(type)
    ? undefined
    : "media type must look like type/subtype (RFC 6838), without parameters";
}

function chunkSizeProblem(size: unknown): string | undefined {
  return Number.isSafeInteger(size) && (size as number) >= MIN_CHUNK_SIZE &&
      (size as number) <= MAX_FILE_BYTES
    ? undefined
    : `chunk size must be ${MIN_CHUNK_SIZE}..${MAX_FILE_BYTES}`;
}

function encodeFile(m: FileMessage): Bytes {
  const fail = (why: string): never => {
    throw new MissiveError("usage", `file: ${why}`);
  };
  const chunkSize = m.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const problem = nameProblem(m.name) ?? typeProblem(m.type) ?? chunkSizeProblem(chunkSize);
  if (problem) fail(problem);
  if (!(m.content instanceof Uint8Array)) fail("content must be bytes");
  if (m.content.length > MAX_FILE_BYTES) {
    throw new MissiveError("too-large", `file: content longer than ${MAX_FILE_BYTES} bytes`);
  }
  const digest = sha256(m.content);
  if (m.size !== undefined && m.size !== m.content.length) fail("size does not match content");
  if (m.sha256 !== undefined && !equalBytes(m.sha256, digest)) {
    fail("sha256 does not match content");
  }
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < m.content.length; at += chunkSize) {
    chunks.push(m.content.subarray(at, at + chunkSize));
  }
  return encodeCbor(
    new Map<number, string | number | Uint8Array | Uint8Array[]>([
      [1, m.name],
      [2, m.content.length],
      [3, m.type],
      [4, digest],
      [5, chunkSize],
      [6, chunks],
    ]),
  );
}

function decodeFile(bytes: Uint8Array): FileMessage {
  if (bytes.length > MAX_FILE_BYTES + MAX_OVERHEAD) {
    throw new MissiveError("too-large", `file: body longer than any file of ${MAX_FILE_BYTES}`);
  }
  const r = CborReader.from(decodeCbor(bytes, "file"), "file").onlyKeys([1, 2, 3, 4, 5, 6]);
  const malformed = (why: string): never => {
    throw new MissiveError("malformed", `file: ${why}`);
  };
  const size = r.uint(2);
  if (size > MAX_FILE_BYTES) {
    throw new MissiveError("too-large", `file: size ${size} is over ${MAX_FILE_BYTES} bytes`);
  }
  const name = r.text(1, MAX_NAME_BYTES);
  const type = r.text(3, 255);
  const problem = nameProblem(name) ?? typeProblem(type);
  if (problem) malformed(problem);
  const digest = r.bytes(4, 32);
  const chunkSize = r.uint(5);
  const chunkProblem = chunkSizeProblem(chunkSize);
  if (chunkProblem) malformed(chunkProblem);
  // All chunks but the last hold exactly chunkSize bytes, the last 1..chunkSize: given
  // the size, there is one way to cut the content.
  const chunks = r.array(6, MAX_FILE_BYTES / MIN_CHUNK_SIZE);
  let total = 0;
  for (const [i, c] of chunks.entries()) {
    if (!(c instanceof Uint8Array)) return malformed(`chunk ${i} is not a byte string`);
    const last = i === chunks.length - 1;
    if (c.length === 0 || c.length > chunkSize || (!last && c.length !== chunkSize)) {
      malformed(`chunk ${i} has ${c.length} bytes, not ${last ? `1..${chunkSize}` : chunkSize}`);
    }
    total += c.length;
  }
  if (total !== size) {
    malformed(`size mismatch: field 2 says ${size} bytes, the chunks hold ${total}`);
  }
  const content = concatBytes(...(chunks as Uint8Array[]));
  // A malformed body (receipt status unparsable, SPEC §14); S2WMP would say 2 (hash mismatch).
  if (!equalBytes(sha256(content), digest)) malformed("content hash mismatch");
  return { name, type, content, chunkSize, size, sha256: digest };
}

/** `file` v1. */
export const fileV1: CliAmp<FileMessage> & AmpSummary<FileMessage> = {
  kind: "amp",
  type: FILE_TYPE,
  version: 1,
  name: "file",
  description: "a named file: media type, size, SHA-256 and the content in chunks",
  encode: encodeFile,
  decode: decodeFile,
  fromInput(input, fields) {
    const unknown = Object.keys(fields).filter((k) => !FIELDS.includes(k));
    if (unknown.length > 0 || fields.name === undefined) {
      throw new MissiveError(
        "usage",
        `file: ${unknown.length > 0 ? `unknown field ${unknown[0]}` : "no name"}; the content ` +
          "is the input; give --field name=NAME [--field type=MEDIA/TYPE] [--field chunk-size=N]",
      );
    }
    const chunkSize = fields["chunk-size"];
    if (chunkSize !== undefined && !/^\d{1,9}$/.test(chunkSize)) {
      throw new MissiveError("usage", "file: --field chunk-size= must be a number of bytes");
    }
    const m: FileMessage = {
      name: fields.name,
      type: fields.type ?? "application/octet-stream",
      content: input,
      ...(chunkSize !== undefined ? { chunkSize: Number(chunkSize) } : {}),
    };
    const problem = nameProblem(m.name) ?? typeProblem(m.type) ??
      chunkSizeProblem(m.chunkSize ?? DEFAULT_CHUNK_SIZE);
    if (problem) throw new MissiveError("usage", `file: ${problem}`);
    return m;
  },
  toOutput: (m) => m.content,
  summary: (m) =>
    `file ${JSON.stringify(m.name)} (${m.type}), ${m.content.length} bytes, sha256 ` +
    toHex(m.sha256 ?? sha256(m.content)),
  toJson: (m) => ({
    name: m.name,
    type: m.type,
    size: m.content.length,
    sha256: toHex(m.sha256 ?? sha256(m.content)),
    chunkSize: m.chunkSize ?? DEFAULT_CHUNK_SIZE,
    content: toBase64(m.content),
  }),
};
