/**
 * The CLI's stream paths (SPEC §20): reading an input that may be a stream or may grow
 * past one envelope, sealing streams to stdout or `-o FILE`, progress on a terminal.
 * `seal`, `open` and `inspect` call these; no protocol logic lives here.
 * @module
 */
import { closeSync, fstatSync, openSync } from "node:fs";
import { type Bytes, concatBytes } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import type { Card } from "../keys/card.ts";
import type { Identity } from "../keys/identity.ts";
import type { Registry } from "../plugin/registry.ts";
import type { AnyStp } from "../plugin/types.ts";
import { FILE_TYPE } from "../amp/file.ts";
import {
  type ByteSource,
  fdSource,
  iterableSource,
  looksLikeStream,
  prefixedSource,
  sealStream,
  type SealStreamRequest,
  STREAM_MAGIC,
} from "../stream/mod.ts";
import type { Io } from "./common.ts";
import { ioWords, openOutput } from "./output.ts";

/** Inputs above this many bytes are sealed as a stream (when the STP and AMP allow it). */
export const STREAM_THRESHOLD = 16 * 1024 * 1024;
/** Progress appears only for runs longer than this. */
const PROGRESS_AFTER_MS = 1000;
const PROGRESS_EVERY_MS = 250;

/**
 * The input named on the command line (FILE, or stdin for none or "-") as a source, with
 * its size when it is a regular file (pipes and devices: undefined).
 */
export function inputSource(
  io: Io,
  path: string | undefined,
): { source: ByteSource; close(): void; fileSize?: number } {
  if (path === undefined || path === "-") {
    const source = io.stdinFd !== undefined
      ? fdSource(io.stdinFd, "stdin")
      : iterableSource(io.stdin());
    return { source, close() {} };
  }
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    throw new MissiveError("io", `cannot read ${path}: ${ioWords(e)}`);
  }
  const stat = fstatSync(fd);
  return {
    source: fdSource(fd, path),
    close: () => closeSync(fd),
    fileSize: stat.isFile() ? stat.size : undefined,
  };
}

/** Reads the rest of `source`, refusing more than `max` bytes (counted as it goes). */
export async function readRest(
  source: ByteSource,
  max: number,
  what: string,
  prefix: Uint8Array = new Uint8Array(0),
): Promise<Bytes> {
  const parts: Uint8Array[] = [prefix];
  let total = prefix.length;
  for (;;) {
    const block = await source.read(Math.min(4 * 1024 * 1024, max + 1 - total));
    if (block.length === 0) break;
    total += block.length;
    if (total > max) throw new MissiveError("too-large", `${what} is larger than ${max} bytes`);
    parts.push(block);
  }
  return concatBytes(...parts);
}

/** Either a whole (small) input, or a stream to open piece by piece. */
export type SniffedInput = { input: Bytes } | { stream: ByteSource };

/** Reads an input, handing it over as a stream when it starts with the stream magic. */
export async function sniffInput(
  source: ByteSource,
  max: number,
  what: string,
): Promise<SniffedInput> {
  const first = await source.read(STREAM_MAGIC.length);
  if (looksLikeStream(first)) return { stream: prefixedSource(first, source) };
  return { input: await readRest(source, max, what, first) };
}

/** A progress line on stderr, only on a terminal, without --quiet, after a second. */
export function progress(
  io: Io,
  quiet: boolean | undefined,
  verb: string,
  clock: () => number = Date.now,
) {
  if (quiet || !io.stderrIsTty) return { update(_bytes: number) {}, done() {} };
  const start = clock();
  let lastShown = 0;
  let shown = false;
  return {
    update(bytes: number) {
      const now = clock();
      if (now - start < PROGRESS_AFTER_MS || now - lastShown < PROGRESS_EVERY_MS) return;
      lastShown = now;
      shown = true;
      const mib = bytes / 1048576;
      const rate = bytes / 1e6 / ((now - start) / 1000);
      io.stderr(`\rmissive: ${verb} ${mib.toFixed(1)} MiB (${rate.toFixed(0)} MB/s)   `);
    },
    done() {
      if (shown) io.stderr("\n");
    },
  };
}

/** `missive seal --stream` (or an input past STREAM_THRESHOLD). */
export async function sealStreamCli(io: Io, request: {
  registry: Registry;
  stp: AnyStp;
  amp: { type: number; version: number };
  fields: Record<string, string>;
  sender: Identity;
  recipients: Card[];
  source: ByteSource;
  out?: string;
  force?: boolean;
  chunkSize?: number;
  quiet?: boolean;
  sequenceNumber?: number;
  includeCard: boolean;
  hashDestination: boolean;
  options: object;
  optionPairs: Record<string, string>;
  /** More header sealing options (e.g. group's hideRecipients). */
  sealOptions?: SealStreamRequest["sealOptions"];
}): Promise<void> {
  const { amp, fields } = request;
  const isFile = amp.type === FILE_TYPE;
  const allowed = isFile ? ["name", "type"] : [];
  const unknown = Object.keys(fields).filter((k) => !allowed.includes(k));
  if (unknown.length > 0 || (isFile && fields.name === undefined)) {
    throw new MissiveError(
      "usage",
      `seal: a streamed ${
        isFile ? "file needs --field name=NAME [--field type=MEDIA/TYPE]" : "text takes no --field"
      }` +
        (unknown.length > 0 ? ` (got ${unknown[0]})` : ""),
    );
  }
  const output = openOutput(io, request.out, { mode: 0o644, force: request.force });
  const shown = progress(io, request.quiet, "sealed");
  try {
    await sealStream({
      registry: request.registry,
      stp: request.stp,
      sender: request.sender,
      recipients: request.recipients,
      content: {
        ampType: amp.type,
        ampVersion: amp.version,
        ...(isFile
          ? { name: fields.name, mediaType: fields.type ?? "application/octet-stream" }
          : {}),
      },
      source: request.source,
      sink: output.sink,
      chunkSize: request.chunkSize,
      sequenceNumber: request.sequenceNumber,
      includeCard: request.includeCard,
      hashDestination: request.hashDestination,
      sealOptions: {
        ...request.sealOptions,
        options: request.options,
        optionPairs: request.optionPairs,
      },
      onProgress: shown.update,
    });
    output.commit();
  } catch (e) {
    output.abort();
    throw e;
  } finally {
    shown.done();
  }
}
