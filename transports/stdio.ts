/**
 * `stdio:` (SPEC §21.2): frames on standard input and output in one of three forms —
 * `binary` (length-prefixed, framing.ts), `armor` (armored blocks one after another) or
 * `lines` (one base64 envelope per line). Every reader is bounded by the frame cap. The
 * text forms resynchronise at the next line, so a bad block or line is logged and skipped;
 * the binary form cannot, so a bad length ends the stream with a typed error.
 * @module
 */
import process from "node:process";
import { dearmorBlock, maxArmoredLength } from "../core/armor.ts";
import { type Bytes, fromBase64, utf8 } from "../core/bytes.ts";
import { armor, toLine } from "../envelope/mod.ts";
import { MissiveError } from "../core/errors.ts";
import { encodeFrame, FrameReader, MAX_FRAME_SIZE } from "./framing.ts";
import type { Listener, Transport } from "./types.ts";

/** The three stdio forms. */
export const STDIO_FRAMINGS = ["binary", "armor", "lines"] as const;
/** One stdio form. */
export type StdioFraming = (typeof STDIO_FRAMINGS)[number];

/** Armor label of messages (SPEC §2.2). */
const ARMOR_LABEL = "MISSIVE MESSAGE";
const BEGIN = `-----BEGIN ${ARMOR_LABEL}-----`;
const END = `-----END ${ARMOR_LABEL}-----`;
/** Longest line inside an armor block we look at (64 columns, markers, CRLF, slack). */
const MAX_ARMOR_LINE = 256;

/** Where stdio frames come from and go to (the process's streams by default). */
export interface StdioStreams {
  /** The bytes read, in blocks of any size (default: the process's stdin). */
  input(): AsyncIterable<Uint8Array>;
  /** Writes bytes out; resolves once they were handed on (default: the process's stdout). */
  output(data: Uint8Array): Promise<void>;
}

/** Options of the stdio transport. */
export interface StdioOptions {
  framing: StdioFraming;
  /** Largest frame accepted (default 64 MiB). */
  maxFrame?: number;
  /** Where skipped armor blocks and lines are reported. */
  log?: (line: string) => void;
  streams?: StdioStreams;
}

function processStreams(): StdioStreams {
  return {
    input: () => process.stdin as AsyncIterable<Uint8Array>,
    output: (data) =>
      new Promise<void>((resolve, reject) => {
        process.stdout.write(
          data,
          (e) => (e ? reject(new MissiveError("io", `stdout: ${e.message}`)) : resolve()),
        );
      }),
  };
}

/** A line, or the length of one that was too long (its bytes were discarded). */
type Line = { text: string } | { overlong: number };

/**
 * Splits a byte stream into lines of at most `max` bytes; a longer line is reported by
 * its length and never buffered beyond `max`.
 */
export async function* boundedLines(
  input: AsyncIterable<Uint8Array>,
  max: number,
): AsyncGenerator<Line> {
  let parts: Uint8Array[] = [];
  let have = 0;
  let overlong = 0; // > 0: discarding the rest of a long line
  const decoder = new TextDecoder();
  const flush = (): Line => {
    const line: Line = overlong > 0
      ? { overlong }
      : { text: parts.map((p) => decoder.decode(p, { stream: true })).join("") + decoder.decode() };
    parts = [];
    have = 0;
    overlong = 0;
    return line;
  };
  for await (const chunk of input) {
    let off = 0;
    while (off < chunk.length) {
      const nl = chunk.indexOf(0x0a, off);
      const stop = nl < 0 ? chunk.length : nl;
      const piece = stop - off;
      if (overlong > 0) overlong += piece;
      else if (have + piece > max) {
        overlong = have + piece;
        parts = [];
        have = 0;
      } else {
        parts.push(new Uint8Array(chunk.subarray(off, stop)));
        have += piece;
      }
      off = stop;
      if (nl >= 0) {
        off = nl + 1;
        yield flush();
      }
    }
  }
  if (have > 0 || overlong > 0) yield flush();
}

/** Frames of the `lines` form: each non-blank line is one base64 envelope. */
async function* lineFrames(
  input: AsyncIterable<Uint8Array>,
  cap: number,
  log: (line: string) => void,
): AsyncGenerator<Bytes> {
  let n = 0;
  for await (const line of boundedLines(input, Math.ceil(cap / 3) * 4 + 2)) {
    n++;
    if ("overlong" in line) {
      log(`stdio:lines: line ${n} skipped: ${line.overlong} bytes is over the ${cap}-byte cap`);
      continue;
    }
    const text = line.text.trim();
    if (text === "") continue;
    const bytes = fromBase64(text);
    if (!bytes || bytes.length === 0 || bytes.length > cap) {
      log(`stdio:lines: line ${n} skipped: not canonical base64 (or over the cap)`);
      continue;
    }
    yield bytes;
  }
}

/** Frames of the `armor` form: armored blocks, blank lines between them allowed. */
async function* armorFrames(
  input: AsyncIterable<Uint8Array>,
  cap: number,
  log: (line: string) => void,
): AsyncGenerator<Bytes> {
  const maxBlock = maxArmoredLength(cap);
  let block: string[] | undefined; // inside a block: its lines so far
  let size = 0;
  let skipping = false; // inside a block already refused: wait for its END line
  let outside = false; // already reported the current run of text outside blocks
  let n = 0;
  for await (const line of boundedLines(input, MAX_ARMOR_LINE)) {
    n++;
    const text = "text" in line ? line.text.replace(/\r$/, "") : undefined;
    if (block === undefined && !skipping) {
      if (text === BEGIN) {
        block = [text];
        size = text.length;
        outside = false;
      } else if (text === undefined || text.trim() !== "") {
        if (!outside) log(`stdio:armor: line ${n}: text outside an armor block skipped`);
        outside = true;
      }
      continue;
    }
    if (text === END) {
      if (block) {
        block.push(text);
        try {
          yield dearmorBlock(ARMOR_LABEL, block.join("\n"), { maxBytes: cap });
        } catch (e) {
          if (!(e instanceof MissiveError)) throw e;
          log(`stdio:armor: block ending at line ${n} skipped: ${e.message}`);
        }
      }
      block = undefined;
      skipping = false;
      continue;
    }
    size += (text?.length ?? MAX_ARMOR_LINE) + 1;
    if (block && (text === undefined || size > maxBlock)) {
      log(`stdio:armor: block at line ${n} skipped: over the ${cap}-byte cap or a long line`);
      block = undefined;
      skipping = true;
    }
    block?.push(text!);
  }
  if (block || skipping) log("stdio:armor: input ended inside an armor block");
}

/** Frames of the `binary` form; a bad length or a truncated frame throws. */
async function* binaryFrames(input: AsyncIterable<Uint8Array>, cap: number) {
  const reader = new FrameReader(cap);
  for await (const chunk of input) yield* reader.push(chunk);
  reader.end();
}

/** `input` until it ends or `closed` settles (a pending read is abandoned, not awaited). */
async function* untilClosed(
  input: AsyncIterable<Uint8Array>,
  closed: Promise<void>,
): AsyncGenerator<Uint8Array> {
  const it = input[Symbol.asyncIterator]();
  const stop = closed.then(() => undefined);
  try {
    for (;;) {
      const next = await Promise.race([it.next(), stop]);
      if (next === undefined || next.done) return;
      yield next.value;
    }
  } finally {
    void it.return?.()?.catch(() => {});
  }
}

/**
 * Frames over standard input and output. `close` ends `frames()` at once (even while
 * stdin is idle) and leaves the process's streams open.
 */
export class StdioTransport implements Transport {
  readonly remote: string;
  readonly #options: StdioOptions;
  readonly #streams: StdioStreams;
  readonly #closed: Promise<void>;
  #close!: () => void;
  #iterated = false;

  constructor(options: StdioOptions) {
    this.#options = options;
    this.#streams = options.streams ?? processStreams();
    this.remote = `stdio:${options.framing}`;
    this.#closed = new Promise((resolve) => (this.#close = resolve));
  }

  send(frame: Uint8Array): Promise<void> {
    const f = this.#options.framing;
    if (frame.length === 0 || frame.length > MAX_FRAME_SIZE) {
      return Promise.reject(
        new MissiveError("too-large", `frame: must be 1..${MAX_FRAME_SIZE} bytes`),
      );
    }
    const bytes = f === "binary"
      ? encodeFrame(frame)
      : utf8(f === "armor" ? armor(frame) : toLine(frame) + "\n");
    return this.#streams.output(bytes);
  }

  frames(): AsyncIterable<Uint8Array> {
    if (this.#iterated) throw new MissiveError("usage", "stdio: frames() can be read only once");
    this.#iterated = true;
    const cap = this.#options.maxFrame ?? MAX_FRAME_SIZE;
    const log = this.#options.log ?? (() => {});
    const input = untilClosed(this.#streams.input(), this.#closed);
    switch (this.#options.framing) {
      case "binary":
        return binaryFrames(input, cap);
      case "armor":
        return armorFrames(input, cap, log);
      case "lines":
        return lineFrames(input, cap, log);
    }
  }

  close(): Promise<void> {
    this.#close();
    return Promise.resolve();
  }
}

/** A "listener" on stdio: exactly one peer, the process's standard input. */
export class StdioListener implements Listener {
  readonly url: string;
  readonly #transport: StdioTransport;
  #given = false;

  constructor(options: StdioOptions) {
    this.#transport = new StdioTransport(options);
    this.url = this.#transport.remote;
  }

  async *connections(): AsyncGenerator<Transport> {
    if (this.#given) return;
    this.#given = true;
    yield this.#transport;
  }

  close(): Promise<void> {
    this.#given = true;
    return this.#transport.close();
  }
}
