/**
 * The CLI's stream paths (SPEC §20): reading an input that may be a stream or may grow
 * past one envelope, sealing and opening streams to stdout or `-o FILE`, progress on a
 * terminal. `seal`, `open` and `inspect` call these; no protocol logic lives here.
 * @module
 */
import { closeSync, fstatSync, openSync, unlinkSync } from "node:fs";
import { type Bytes, concatBytes, toHex } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import type { Card } from "../keys/card.ts";
import type { Identity } from "../keys/identity.ts";
import type { Registry } from "../plugin/registry.ts";
import type { ReplayCache } from "../plugin/replay.ts";
import type { StpPlugin } from "../plugin/types.ts";
import { FILE_TYPE } from "../amp/file.ts";
import { STREAMABLE_AMPS } from "../amp/stream.ts";
import {
  type ByteSink,
  type ByteSource,
  callbackSink,
  fdSink,
  fdSource,
  iterableSource,
  looksLikeStream,
  openStream,
  prefixedSource,
  sealStream,
  type SealStreamRequest,
  STREAM_MAGIC,
  StreamError,
} from "../stream/mod.ts";
import { formatTime, type Io, note } from "./common.ts";

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
    throw new MissiveError("io", `cannot read ${path}: ${(e as { code?: string }).code ?? e}`);
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

function isRegularFile(fd: number): boolean {
  try {
    return fstatSync(fd).isFile();
  } catch {
    return false;
  }
}

/** Where the output goes: `-o FILE` (created 0600, removed on failure) or stdout. */
function outputSink(io: Io, path: string | undefined, mode: number) {
  if (path === undefined || path === "-") {
    // A regular file on stdout takes writev directly; pipes and terminals go through the
    // runtime's stdout, which waits for a full pipe properly (a non-blocking descriptor
    // would need polling).
    const sink = io.stdoutFd !== undefined && isRegularFile(io.stdoutFd)
      ? fdSink(io.stdoutFd, "stdout")
      : callbackSink((d) => io.stdout(d));
    return { sink, close() {}, remove: () => false };
  }
  let fd: number | undefined;
  try {
    fd = openSync(path, "w", mode);
  } catch (e) {
    throw new MissiveError("io", `cannot write ${path}: ${(e as { code?: string }).code ?? e}`);
  }
  const sink: ByteSink = fdSink(fd, path);
  const close = () => {
    if (fd !== undefined) closeSync(fd);
    fd = undefined;
  };
  return {
    sink,
    close,
    remove() {
      close();
      try {
        unlinkSync(path);
        return true;
      } catch {
        return false;
      }
    },
  };
}

/** True when this STP and AMP can seal a stream; else why not. */
export function streamRefusal(stp: StpPlugin, amp: { type: number; version: number }) {
  const p = stp.properties;
  if (!p.confidentiality || p.authentication !== "signature") {
    return `--stp ${stp.name} cannot carry a stream (use simple or group)`;
  }
  if (!STREAMABLE_AMPS.some(([t, v]) => t === amp.type && v === amp.version)) {
    return `--amp ${amp.type}/${amp.version} cannot be streamed (use text/1 or file/1)`;
  }
  return undefined;
}

/** `missive seal --stream` (or an input past STREAM_THRESHOLD). */
export async function sealStreamCli(io: Io, request: {
  registry: Registry;
  stp: StpPlugin;
  amp: { type: number; version: number };
  fields: Record<string, string>;
  sender: Identity;
  recipients: Card[];
  source: ByteSource;
  out?: string;
  chunkSize?: number;
  quiet?: boolean;
  sequenceNumber?: number;
  includeCard: boolean;
  hashDestination: boolean;
  options: Record<string, string>;
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
  const output = outputSink(io, request.out, 0o644);
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
      options: request.options,
      sealOptions: request.sealOptions,
      onProgress: shown.update,
    });
    output.close();
  } catch (e) {
    if (request.out !== undefined && request.out !== "-") output.remove();
    throw e;
  } finally {
    shown.done();
  }
}

/** `missive open` of a stream: chunks released as they authenticate. */
export async function openStreamCli(io: Io, request: {
  registry: Registry;
  source: ByteSource;
  identity?: Identity;
  trusted: Card[];
  requireTrust?: boolean;
  replay?: ReplayCache;
  options: Record<string, string>;
  out?: string;
  json?: boolean;
  quiet?: boolean;
}): Promise<void> {
  if (request.json) {
    throw new MissiveError("usage", "open: --json cannot hold a stream; use -o FILE or stdout");
  }
  let output: ReturnType<typeof outputSink> | undefined;
  const shown = progress(io, request.quiet, "opened");
  const sink: ByteSink = { write: (parts) => output!.sink.write(parts) };
  try {
    const result = await openStream(request.registry, {
      source: request.source,
      sink,
      identity: request.identity,
      trusted: request.trusted,
      replay: request.replay,
      options: request.options,
      onHeader({ opened }) {
        if (request.requireTrust && !opened.sender?.trusted) {
          throw new MissiveError(
            "untrusted",
            `untrusted sender: ${opened.sender?.address} is not a --trust card`,
          );
        }
        output = outputSink(io, request.out, 0o600);
      },
      onProgress: shown.update,
    });
    output?.close();
    shown.done();
    const { opened, descriptor } = result;
    const sender = opened.sender!;
    const id = sender.card ? `id ${toHex(sender.card.id)}` : "X.509";
    note(
      io,
      `missive: ${opened.stp.name} v${opened.stp.version} from ${sender.address} (${id}): ` +
        `signature verified, ${sender.trusted ? "trusted" : "NOT trusted"}; sent ${
          formatTime(opened.inner.timestamp)
        }`,
    );
    note(
      io,
      `missive: stream: ${result.plaintextBytes} bytes in ${result.chunks} chunks of ` +
        `${descriptor.chunkSize}${descriptor.signed ? ", each signed by the sender" : ""}` +
        (descriptor.name !== undefined
          ? `; file ${JSON.stringify(descriptor.name)} (${descriptor.mediaType})`
          : ""),
    );
    if (!sender.trusted) {
      note(io, `missive: warning: ${sender.address} is in no --trust card`);
    }
    for (const w of opened.warnings) note(io, `missive: warning: ${w}`);
  } catch (e) {
    shown.done();
    const removed = request.out !== undefined && request.out !== "-" && output?.remove();
    if (e instanceof StreamError) {
      const where = removed ? `; ${request.out} removed` : request.out ? "" : " to stdout";
      throw new MissiveError(
        e.code,
        `${
          (e.cause as Error).message
        }; ${e.released} authenticated plaintext bytes had been written${where}`,
      );
    }
    throw e;
  }
}
