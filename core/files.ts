/**
 * Bounded file reading. `stat().size` is 0 for pipes, FIFOs and devices, so a size check
 * before reading proves nothing: read through a descriptor into a buffer of the limit
 * plus one byte and refuse the file if it fills (STYLE: every reader has a cap).
 * @module
 */
import { closeSync, openSync, readSync, statSync } from "node:fs";
import process from "node:process";
import type { Bytes } from "./bytes.ts";
import { MissiveError } from "./errors.ts";

/** Human words for the system error codes people meet (file system and network). */
const REASONS: Readonly<Record<string, string>> = {
  ENOENT: "no such file or folder",
  EACCES: "permission denied",
  EPERM: "not permitted",
  EISDIR: "it is a folder, not a file",
  ENOTDIR: "a part of the path is not a folder",
  EEXIST: "it already exists",
  ENOSPC: "no space left on the device",
  EROFS: "the file system is read-only",
  EMFILE: "too many open files",
  EADDRINUSE: "the address is already in use (another program listens there)",
  EADDRNOTAVAIL: "the address is not available on this machine",
  ECONNREFUSED: "connection refused (nothing listens there)",
  ECONNRESET: "the connection was reset by the peer",
  EHOSTUNREACH: "the host cannot be reached",
  ENETUNREACH: "the network cannot be reached",
  ETIMEDOUT: "the connection timed out",
  ENOTFOUND: "the host name is unknown",
  EPIPE: "the reader went away (broken pipe)",
};

/**
 * What went wrong, in words, for a system error (`ENOENT` → "no such file or folder");
 * the error's own message when its code is not one people usually meet.
 */
export function ioReason(e: unknown): string {
  const code = (e as { code?: string })?.code;
  if (code && REASONS[code]) return REASONS[code];
  return code ?? (e as Error)?.message ?? String(e);
}

/**
 * Reads at most `max` bytes of `path`; a longer file is `too-large`, an unreadable one
 * `io`. `what` names the file in messages ("key file", "config", …).
 */
export function readFileLimited(path: string, max: number, what: string): Bytes {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    throw new MissiveError("io", `cannot read ${what} ${path}: ${ioReason(e)}`);
  }
  try {
    // Grow geometrically up to the cap, so small files cost small buffers.
    let buffer = new Uint8Array(Math.min(max + 1, 64 * 1024));
    let length = 0;
    for (;;) {
      if (length === buffer.length) {
        if (buffer.length > max) {
          throw new MissiveError("too-large", `${what} ${path} is larger than ${max} bytes`);
        }
        const bigger = new Uint8Array(Math.min(max + 1, buffer.length * 2));
        bigger.set(buffer);
        buffer = bigger;
      }
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) break;
      length += n;
    }
    return buffer.slice(0, length);
  } catch (e) {
    if (e instanceof MissiveError) throw e;
    throw new MissiveError("io", `cannot read ${what} ${path}: ${ioReason(e)}`);
  } finally {
    closeSync(fd);
  }
}

/** `readFileLimited` decoded as UTF-8 (invalid sequences become U+FFFD). */
export function readTextLimited(path: string, max: number, what: string): string {
  return new TextDecoder().decode(readFileLimited(path, max, what));
}

/**
 * Refuses a file another user could have written, as ssh refuses such a config: owned by
 * someone else, or writable by its group or by others. For files that decide what runs or
 * whom to trust (the config, the contacts). `uid` is the caller's user ID (absent on
 * systems without one: no check). `why` ends the message ("refusing to load code it names").
 */
export function checkOwnFile(
  path: string,
  what: string,
  why: string,
  uid: number | undefined = process.getuid?.(),
): void {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch (e) {
    throw new MissiveError("io", `cannot read ${what} ${path}: ${ioReason(e)}`);
  }
  if (uid === undefined) return;
  if (st.uid !== uid) {
    throw new MissiveError(
      "usage",
      `${what} ${path} is owned by another user (uid ${st.uid}); ${why}`,
    );
  }
  if ((st.mode & 0o022) !== 0) {
    throw new MissiveError(
      "usage",
      `${what} ${path} is writable by group or others (mode ${
        (st.mode & 0o777).toString(8)
      }); run chmod go-w ${path}`,
    );
  }
}
