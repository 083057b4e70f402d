/**
 * Where a command's output goes (`-o FILE` or stdout), written so that a failure or an
 * interrupt never leaves a partial or truncated file behind: a regular file is written to
 * a temporary file beside it and renamed over the target only on success; the temporary
 * file is removed on failure and on SIGINT/SIGTERM. An existing file is not overwritten
 * without `--force`. Devices and FIFOs (`/dev/null`, a named pipe) are written directly.
 * @module
 */
import {
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  openSync,
  renameSync,
  statSync,
  unlinkSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import process from "node:process";
import { randomBytes, toHex } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import { ioReason } from "../core/files.ts";
import { type ByteSink, callbackSink, fdSink } from "../stream/mod.ts";
import type { Io } from "./common.ts";

/** An output being written. */
export interface Output {
  readonly sink: ByteSink;
  /** Where it goes, for messages ("stdout" or the path). */
  readonly name: string;
  /** True for a file that is written in place of the target until `commit`. */
  readonly staged: boolean;
  /** Finishes: the temporary file becomes the target. */
  commit(): void;
  /** Gives up: the temporary file is removed. True when something was removed. */
  abort(): boolean;
}

/** Temporary files not yet committed, removed if the process is interrupted. */
const pending = new Set<string>();
let handlersInstalled = false;

function installSignalHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    process.on(signal, () => {
      for (const path of pending) {
        try {
          unlinkSync(path);
        } catch {
          // Already gone.
        }
      }
      process.exit(code);
    });
  }
}

function isRegularFile(fd: number): boolean {
  try {
    return fstatSync(fd).isFile();
  } catch {
    return false;
  }
}

/** Human words for a file-system error (see core/files.ts). */
export const ioWords: (e: unknown) => string = ioReason;

/**
 * Opens the output of a command: stdout for no path or "-", else FILE as described at the
 * top of this module. `mode` is the new file's permission (0600 for plaintext).
 */
export function openOutput(
  io: Io,
  path: string | undefined,
  options: { mode: number; force?: boolean },
): Output {
  if (path === undefined || path === "-") {
    // A regular file on stdout takes writev directly; pipes and terminals go through the
    // runtime's stdout, which waits for a full pipe properly.
    const sink = io.stdoutFd !== undefined && isRegularFile(io.stdoutFd)
      ? fdSink(io.stdoutFd, "stdout")
      : callbackSink((d) => io.stdout(d));
    return { sink, name: "stdout", staged: false, commit() {}, abort: () => false };
  }
  let existing: ReturnType<typeof statSync> | undefined;
  try {
    existing = statSync(path);
  } catch {
    existing = undefined;
  }
  if (existing && (existing.isCharacterDevice() || existing.isFIFO() || existing.isSocket())) {
    let fd: number;
    try {
      fd = openSync(path, "w");
    } catch (e) {
      throw new MissiveError("io", `cannot write ${path}: ${ioWords(e)}`);
    }
    return {
      sink: fdSink(fd, path),
      name: path,
      staged: false,
      commit: () => closeSync(fd),
      abort: () => {
        closeSync(fd);
        return false;
      },
    };
  }
  if (existing?.isDirectory()) {
    throw new MissiveError("io", `cannot write ${path}: it is a folder`);
  }
  if (existing && !options.force) {
    throw new MissiveError(
      "usage",
      `${path} already exists; choose another name or add --force to replace it`,
    );
  }
  const temporary = join(dirname(path), `.${basename(path)}.${toHex(randomBytes(6))}.partial`);
  // The handlers go in before the file exists: until then SIGINT's default action ends
  // the process at once, and a signal just after the open would leave the file behind.
  installSignalHandlers();
  pending.add(temporary);
  let fd: number | undefined;
  try {
    fd = openSync(
      temporary,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL,
      options.mode,
    );
  } catch (e) {
    pending.delete(temporary);
    throw new MissiveError("io", `cannot write ${path}: ${ioWords(e)}`);
  }
  const close = () => {
    if (fd !== undefined) closeSync(fd);
    fd = undefined;
  };
  return {
    sink: fdSink(fd, path),
    name: path,
    staged: true,
    commit() {
      try {
        fsyncSync(fd!);
        close();
        renameSync(temporary, path);
      } catch (e) {
        close();
        unlinkQuietly(temporary);
        throw new MissiveError("io", `cannot write ${path}: ${ioWords(e)}`);
      } finally {
        pending.delete(temporary);
      }
    },
    abort() {
      close();
      pending.delete(temporary);
      return unlinkQuietly(temporary);
    },
  };
}

function unlinkQuietly(path: string): boolean {
  try {
    unlinkSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Writes `data` to the output of `openOutput` and commits it; aborts on failure. */
export async function writeWhole(
  io: Io,
  path: string | undefined,
  data: Uint8Array,
  options: { mode: number; force?: boolean },
): Promise<void> {
  const out = openOutput(io, path, options);
  try {
    await out.sink.write([data]);
    out.commit();
  } catch (e) {
    out.abort();
    throw e;
  }
}
