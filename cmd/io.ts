/**
 * The process edges a command touches, and the shape of a command: kept apart from
 * common.ts so that the entry point loads them without loading any command.
 * @module
 */
import process from "node:process";
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
}

/** The real process's standard streams and environment. */
export function processIo(): Io {
  // A reader that left (`missive … | head -2`) makes writes fail with EPIPE: each write's
  // callback reports it; without a listener the stream's 'error' event would also crash
  // the process with a stack trace.
  if (process.stdout.listenerCount("error") === 0) process.stdout.on("error", () => {});
  return {
    stdin: () => process.stdin as AsyncIterable<Uint8Array>,
    stdout: (data) =>
      new Promise<void>((resolve, reject) => {
        process.stdout.write(
          data,
          (err) => (err ? reject(new MissiveError("io", `stdout: ${err.message}`)) : resolve()),
        );
      }),
    stderr: (line) => void process.stderr.write(line),
    stdoutIsTty: Boolean(process.stdout.isTTY),
    stderrIsTty: Boolean(process.stderr.isTTY),
    stdinFd: 0,
    stdoutFd: 1,
    env: process.env,
  };
}

/** A subcommand: its usage text and its runner. */
export interface Command {
  summary: string;
  usage: string;
  run(args: string[], io: Io): Promise<void>;
}
