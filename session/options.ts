/**
 * Session options with the proposal's defaults (SPEC §22.7), the event type, and the
 * CLOSE reason codes (SPEC §22.9).
 * @module
 */
import { type Bytes, randomBytes } from "../core/bytes.ts";
import type { CryptoProvider } from "../crypto/provider.ts";
import { ERROR_CODES, type ErrorCode, MissiveError } from "../core/errors.ts";
import type { Card } from "../keys/card.ts";
import type { Clock } from "./clock.ts";
import { DEFAULT_MAX_MESSAGE, SESSION_VERSIONS, type SessionVersion } from "./messages.ts";

/** Defaults (SPEC §22.7). */
export const SESSION_DEFAULTS = {
  ttlMs: 25_000,
  idleTimeoutMs: 45_000,
  maxResends: 3,
  closeTimeoutMs: 45_000,
  maxCloseResends: 3,
  rekeyAfter: 10,
  window: 32,
  maxMessageSize: DEFAULT_MAX_MESSAGE,
  inboxLimit: 1024,
  handshakeTimeoutMs: 10_000,
  maxInboxBytes: 4 * 1024 * 1024,
} as const;

/** What both ends accept. */
export interface SessionOptions {
  /** Crypto provider (default: the runtime's, see crypto/mod.ts). */
  provider?: CryptoProvider;
  /** Time source for send times and timers (tests inject a FakeClock). */
  clock?: Clock;
  /** Pre-shared secret s0 (≥ 16 bytes): signed messages are MACed under SHA-512(s0). */
  s0?: Uint8Array;
  /** Messages whose send time is further than this from now are discarded (25 s). */
  ttlMs?: number;
  /** Waiting this long for an expected message sends RESEND_LAST (45 s). */
  idleTimeoutMs?: number;
  /** RESEND_LAST messages sent without progress before CLOSE (3). */
  maxResends?: number;
  /** Waiting this long for CLOSE_ACK re-sends CLOSE (45 s). */
  closeTimeoutMs?: number;
  /** CLOSE re-sends before CLOSED_WITHOUT_ACK (3). */
  maxCloseResends?: number;
  /** Server: re-key after this many acknowledged DATA messages; 0 never (10). */
  rekeyAfter?: number;
  /** DATA messages in flight (sent, not yet acknowledged) at most (32). */
  window?: number;
  /** Largest application message, in bytes (1 MiB). */
  maxMessageSize?: number;
  /** Received messages buffered before the session stops reading the transport (1024). */
  inboxLimit?: number;
  /**
   * Bytes of received messages the consumer has not taken yet (4 MiB). Above it the
   * session stops reading the transport until `messages()` / `receive()` drain it: a TCP
   * peer then meets back-pressure, so a peer whose messages are never read cannot make
   * this side buffer more than the budget plus one message (SPEC §22.7).
   */
  maxInboxBytes?: number;
  /**
   * The whole handshake (HELLO to the confirming ACK) must complete within this many
   * milliseconds (10 s), whatever the idle rule allows; then the session fails with
   * `timeout`, sending a signed CLOSE where it can. 0 disables the deadline (the
   * proposal's idle rule alone then bounds it: 4 × 45 s).
   */
  handshakeTimeoutMs?: number;
  /**
   * "batch" (default) acknowledges the DATA of one read batch (the frames the transport
   * had ready, at most 64) with one cumulative DATA_ACK; "immediate" sends one DATA_ACK
   * per DATA.
   */
  ack?: "batch" | "immediate";
  /**
   * The session versions this side speaks, highest first (default `[2, 1]`; SPEC
   * §22.12). A client sends its HELLO in the first and offers them all; a server accepts
   * a HELLO of any of them and refuses others with a signed CLOSE (`untrusted`).
   */
  versions?: readonly SessionVersion[];
  /**
   * Refuse classical (version 1) peers: only version 2, the post-quantum hybrid
   * (ML-KEM-768 + X25519), is offered and accepted. A refused peer gets `untrusted`.
   */
  requirePq?: boolean;
  /** Random bytes for sequence starts and ephemeral keys (vectors only; CSPRNG default). */
  random?: (length: number) => Bytes;
  /** Called with every event, from the very first (the handshake). */
  onEvent?: (event: SessionEvent) => void;
}

/** Client options: the server's card pinned, or a list of trusted cards. */
export interface ConnectOptions extends SessionOptions {
  /** The server's card, pinned: any other server is refused (`untrusted`). */
  peer?: Card;
  /** Servers accepted when no card is pinned: any of these cards. */
  trusted?: readonly Card[];
}

/** Server options: which clients to admit. */
export interface AcceptOptions extends SessionOptions {
  /** Admits a client by its card (open registration: `() => true`). */
  authorize?: (card: Card) => boolean | Promise<boolean>;
  /** Admits exactly these clients (used when `authorize` is absent). */
  trusted?: readonly Card[];
}

/** The key agreement of a session version: X25519 alone (1) or with X-Wing too (2). */
export type SessionKem = "x25519" | "mlkem768x25519";

/** The KEM a session version uses (its name in events and `--json`). */
export function kemOf(version: SessionVersion): SessionKem {
  return version === 2 ? "mlkem768x25519" : "x25519";
}

/**
 * What a session reports, for logs and tests. Key IDs are 16 hex digits; `version` and
 * `kem` name the session version and its key agreement (`"x25519"` for the classical
 * version 1, `"mlkem768x25519"` for the hybrid version 2).
 */
export type SessionEvent =
  | {
    type: "handshake";
    role: "client" | "server";
    keyId: string;
    peer: string;
    peerId: string;
    version: SessionVersion;
    kem: SessionKem;
  }
  | {
    type: "rekey";
    keyId: string;
    previousKeyId: string;
    acknowledged: number;
    version: SessionVersion;
    kem: SessionKem;
  }
  | { type: "resend"; direction: "sent" | "received"; count: number }
  | { type: "discard"; messageType: string; reason: "stale" }
  | {
    type: "close";
    by: "local" | "peer";
    reason: number;
    text: string;
    acknowledged: boolean;
  };

/** Options resolved against the defaults and checked. */
export type ResolvedOptions = Required<
  Omit<SessionOptions, "provider" | "clock" | "s0" | "onEvent">
>;

/** The versions a side speaks: `versions` (default all), less 1 under `requirePq`. */
export function resolveVersions(o: SessionOptions): readonly SessionVersion[] {
  const given = o.versions ?? SESSION_VERSIONS;
  for (const v of given) {
    if (!SESSION_VERSIONS.includes(v)) {
      throw new MissiveError("usage", `session: unknown session version ${v} (known: 2, 1)`);
    }
  }
  const versions = SESSION_VERSIONS.filter((v) => given.includes(v) && !(o.requirePq && v === 1));
  if (versions.length === 0) {
    throw new MissiveError(
      "usage",
      o.requirePq
        ? "session: requirePq needs version 2 among the session versions"
        : "session: no session version to speak",
    );
  }
  return versions;
}

/** Resolves the options against the defaults (SPEC §22.7); throws `usage` on bad ones. */
export function resolveOptions(o: SessionOptions): ResolvedOptions {
  const r = {
    versions: resolveVersions(o),
    requirePq: o.requirePq ?? false,
    ttlMs: o.ttlMs ?? SESSION_DEFAULTS.ttlMs,
    idleTimeoutMs: o.idleTimeoutMs ?? SESSION_DEFAULTS.idleTimeoutMs,
    maxResends: o.maxResends ?? SESSION_DEFAULTS.maxResends,
    closeTimeoutMs: o.closeTimeoutMs ?? SESSION_DEFAULTS.closeTimeoutMs,
    maxCloseResends: o.maxCloseResends ?? SESSION_DEFAULTS.maxCloseResends,
    rekeyAfter: o.rekeyAfter ?? SESSION_DEFAULTS.rekeyAfter,
    window: o.window ?? SESSION_DEFAULTS.window,
    maxMessageSize: o.maxMessageSize ?? SESSION_DEFAULTS.maxMessageSize,
    inboxLimit: o.inboxLimit ?? SESSION_DEFAULTS.inboxLimit,
    maxInboxBytes: o.maxInboxBytes ?? SESSION_DEFAULTS.maxInboxBytes,
    handshakeTimeoutMs: o.handshakeTimeoutMs ?? SESSION_DEFAULTS.handshakeTimeoutMs,
    ack: o.ack ?? "batch",
    random: o.random ?? randomBytes,
  };
  const positive = [
    "ttlMs",
    "idleTimeoutMs",
    "closeTimeoutMs",
    "window",
    "inboxLimit",
    "maxInboxBytes",
  ] as const;
  for (const k of positive) {
    if (!Number.isSafeInteger(r[k]) || r[k] < 1) {
      throw new MissiveError("usage", `session: option ${k} must be a positive integer`);
    }
  }
  for (const k of ["maxResends", "maxCloseResends", "rekeyAfter", "handshakeTimeoutMs"] as const) {
    if (!Number.isSafeInteger(r[k]) || r[k] < 0) {
      throw new MissiveError("usage", `session: option ${k} must be a non-negative integer`);
    }
  }
  if (!Number.isSafeInteger(r.maxMessageSize) || r.maxMessageSize < 1) {
    throw new MissiveError("usage", "session: option maxMessageSize must be a positive integer");
  }
  if (r.ack !== "batch" && r.ack !== "immediate") {
    throw new MissiveError("usage", 'session: option ack must be "batch" or "immediate"');
  }
  return r;
}

/** CLOSE reason 0: an orderly close. Other reasons are MissiveError exit codes. */
export const REASON_NORMAL = 0;

/** The CLOSE reason for an error (its documented exit code). */
export function reasonFor(error: MissiveError): number {
  return error.exitCode;
}

/** The error code a received CLOSE reason maps to (`session` for unknown ones). */
export function codeForReason(reason: number): ErrorCode {
  if (reason === ERROR_CODES.malformed) return "malformed";
  for (const [code, n] of Object.entries(ERROR_CODES)) {
    if (n === reason && code !== "internal") return code as ErrorCode;
  }
  return "session";
}

/** What a peer's CLOSE said; the `cause` of the error a session ends with then. */
export interface PeerClose {
  /** Always `"peer"`: the other side sent the CLOSE. */
  by: "peer";
  /** The CLOSE reason (SPEC §22.9): 0 orderly, else the exit code of the peer's error. */
  reason: number;
  /** The peer's words (at most 256 characters; sanitise before printing). */
  text: string;
}

/** The peer's CLOSE behind a session error, if the peer ended the session. */
export function peerCloseOf(error: unknown): PeerClose | undefined {
  const cause = error instanceof MissiveError ? error.cause : undefined;
  return (cause as PeerClose | undefined)?.by === "peer" ? cause as PeerClose : undefined;
}
