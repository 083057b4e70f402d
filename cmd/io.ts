/**
 * The process edges a command touches, and the shape of a command: kept apart from
 * common.ts so that the entry point loads them without loading any command.
 * @module
 */
import { fstatSync, statSync, write } from "node:fs";
import { createRequire } from "node:module";
import process from "node:process";
import { utf8 } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";

/**
 * The process edges a command touches, so tests can run the CLI in-process with their
 * own stdin and capture what it writes. `processIo()` is the real thing.
 */
export interface Io {
  stdin(): AsyncIterable<Uint8Array>;
  /** Resolves once the bytes were handed to the OS (or the test's buffer). */
  stdout(data: Uint8Array): Promise<void>;
  stderr(line: string): void;
  stdoutIsTty: boolean;
  /** stderr is a terminal: progress lines for long streams (off when absent). */
  stderrIsTty?: boolean;
  /** stdin's descriptor, for streams to read in large blocks (absent: use `stdin()`). */
  stdinFd?: number;
  /** stdout's descriptor, for streams to write in large batches (absent: use `stdout()`). */
  stdoutFd?: number;
  env: Record<string, string | undefined>;
  /** Resolves once everything written to stdout and stderr so far has been handed on. */
  flush?(): Promise<void>;
}

/**
 * Writes to a descriptor with `node:fs`, in call order, whole. Bun builds
 * `process.stdout` on first use at a cost of 5–9 ms (issue 12: most of a tiny command's
 * start-up), so a command that never needs the stream never makes it. A descriptor left
 * non-blocking by the parent (EAGAIN) hands this and every later write to the stream,
 * which waits for the descriptor to become writable.
 */
class FdWriter {
  #tail: Promise<void> = Promise.resolve();
  #stream: NodeJS.WriteStream | undefined;

  constructor(readonly fd: 1 | 2, readonly name: string) {}

  #fallback(): NodeJS.WriteStream {
    if (!this.#stream) {
      this.#stream = this.fd === 1 ? process.stdout : process.stderr;
      // A reader that left (`missive … | head -2`) makes writes fail with EPIPE: each
      // write's callback reports it; without a listener the stream's 'error' event would
      // also crash the process with a stack trace.
      if (this.#stream.listenerCount("error") === 0) this.#stream.on("error", () => {});
    }
    return this.#stream;
  }

  #streamWrite(data: Uint8Array): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#fallback().write(
        data,
        (err) => (err ? reject(new MissiveError("io", `${this.name}: ${err.message}`)) : resolve()),
      );
    });
  }

  #fdWrite(data: Uint8Array): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const step = (offset: number) => {
        if (offset >= data.length) return resolve();
        write(this.fd, data, offset, data.length - offset, null, (err, written) => {
          if (!err) return step(offset + written);
          if (err.code === "EAGAIN") {
            return this.#streamWrite(data.subarray(offset)).then(resolve, reject);
          }
          reject(new MissiveError("io", `${this.name}: ${err.message}`));
        });
      };
      step(0);
    });
  }

  /** Resolves once `data` (and everything written before it) was handed to the OS. */
  write(data: Uint8Array): Promise<void> {
    const done = this.#tail.then(() =>
      this.#stream ? this.#streamWrite(data) : this.#fdWrite(data)
    );
    this.#tail = done.catch(() => {});
    return done;
  }

  /** Resolves once every write so far has finished (or failed). */
  flush(): Promise<void> {
    return this.#tail.then(() =>
      this.#stream
        ? new Promise<void>((resolve) => this.#stream!.write("", () => resolve()))
        : undefined
    );
  }
}

/**
 * True when `fd` is a terminal. A pipe, a file or /dev/null is not one, which fstat tells
 * at once; only another character device asks `node:tty`, whose module costs Bun 2–8 ms
 * (it loads the stream machinery), so scripts in pipes never load it (issue 12).
 */
export function isTerminal(fd: number): boolean {
  try {
    const st = fstatSync(fd);
    if (!st.isCharacterDevice()) return false;
    // /dev/null is a character device too (output thrown away, scripts and benchmarks).
    if (st.rdev === devNullRdev()) return false;
  } catch {
    return false;
  }
  const tty = createRequire(import.meta.url)("node:tty") as typeof import("node:tty");
  return tty.isatty(fd);
}

let devNull: number | null | undefined;
function devNullRdev(): number | null {
  if (devNull === undefined) {
    try {
      devNull = statSync("/dev/null").rdev;
    } catch {
      devNull = null;
    }
  }
  return devNull;
}

/** The real process's standard streams and environment. */
export function processIo(): Io {
  const out = new FdWriter(1, "stdout");
  const err = new FdWriter(2, "stderr");
  return {
    stdin: () => process.stdin as AsyncIterable<Uint8Array>,
    stdout: (data) => out.write(data),
    // Diagnostics are fire and forget: a failing stderr has nowhere to be reported.
    stderr: (line) => void err.write(utf8(line)).catch(() => {}),
    stdoutIsTty: isTerminal(1),
    stderrIsTty: isTerminal(2),
    stdinFd: 0,
    stdoutFd: 1,
    env: process.env,
    flush: () => Promise.all([out.flush(), err.flush()]).then(() => {}),
  };
}

/** A subcommand: its usage text and its runner. */
export interface Command {
  summary: string;
  usage: string;
  run(args: string[], io: Io): Promise<void>;
}
