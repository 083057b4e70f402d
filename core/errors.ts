/**
 * The one error type of missive. Every failure a user can cause or meet is a
 * `MissiveError` with a stable `code`; the CLI maps codes to documented exit codes.
 * @module
 */

/** Stable error codes. Never renumber or rename: scripts match on them. */
export const ERROR_CODES = {
  /** Bad command line. */
  usage: 2,
  /** Input is not a well-formed missive structure (envelope, CBOR, armor, payload). */
  malformed: 3,
  /** Input exceeds a size limit; checked before allocation. */
  "too-large": 3,
  /** A signature, MAC or AEAD tag did not verify: the message was altered or forged. */
  "auth-failed": 4,
  /** The message is addressed to somebody else ("not for me"): an expected outcome. */
  "not-a-recipient": 5,
  /** The message was seen before, or is too old or too new to be checked for replay. */
  replay: 6,
  /** The signature is valid but the signer is in no trusted card (with --require-trust). */
  untrusted: 7,
  /** No plugin is registered for a (type, version) pair. */
  "unknown-protocol": 8,
  /** A key, card or key file is unusable (bad format, wrong passphrase, wrong kind). */
  key: 9,
  /** A file or stream could not be read or written. */
  io: 10,
  /** A plugin could not be loaded or broke its contract. */
  plugin: 11,
  /** No answer in time: a receipt, a SIP response, a session message. */
  timeout: 12,
  /** A connection could not be made, was lost, or the peer answered with a failure. */
  network: 13,
  /** A live session ended abnormally (the peer broke the protocol, closed, or vanished). */
  session: 14,
  /** A server refused a request (address taken, unknown recipient, quota). */
  refused: 15,
  /**
   * Not delivered, but kept: no relay accepted the message (unreachable, unavailable, or
   * to be retried), and it waits in the local outgoing queue for the next try.
   */
  queued: 16,
  /**
   * A local store that protects missive is full (the replay cache holds its maximum of
   * unexpired entries): refused rather than forgetting, which would let replays through.
   */
  full: 17,
  /** A bug in missive. */
  internal: 1,
} as const;

/** A stable error code, e.g. `"not-a-recipient"`. */
export type ErrorCode = keyof typeof ERROR_CODES;

/**
 * The error type thrown by every missive API.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeEnvelope, isMissiveError, MissiveError } from "../mod.ts";
 * const e = new MissiveError("malformed", "envelope: truncated");
 * assert.equal(e.code, "malformed");
 * assert.equal(e.exitCode, 3);
 * assert.equal(isMissiveError(e, "malformed"), true);
 * // Every decoder throws one, with a stable code:
 * assert.throws(() => decodeEnvelope(new Uint8Array([1, 2, 3])), { code: "malformed" });
 * ```
 */
export class MissiveError extends Error {
  /** The stable code. */
  readonly code: ErrorCode;

  /**
   * `message` says what was wrong (and, where useful, what to do); `options.cause` keeps
   * the underlying error.
   */
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "MissiveError";
    this.code = code;
  }

  /** The CLI exit code documented for this error's code. */
  get exitCode(): number {
    return ERROR_CODES[this.code];
  }
}

/** True for a MissiveError, optionally of one code. */
export function isMissiveError(e: unknown, code?: ErrorCode): e is MissiveError {
  return e instanceof MissiveError && (code === undefined || e.code === code);
}

/**
 * Runs `f` and turns any exception that is not already a MissiveError into one with
 * `code` and a message that starts with `context`. Used at decoder boundaries so that a
 * library's own exception (a RangeError from a parser, say) never escapes.
 */
export function wrapErrors<T>(code: ErrorCode, context: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof MissiveError) throw e;
    throw new MissiveError(code, `${context}: ${(e as Error)?.message ?? e}`, { cause: e });
  }
}
