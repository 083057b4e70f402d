/**
 * Every limit a relay puts on its clients (SPEC §23.12, docs/SECURITY.md), with its
 * default, in one place: what a hostile client may make the relay hold, store or write,
 * and how long it may hold a slot. `missive serve` exposes each as a flag.
 * @module
 */
import { MissiveError } from "../core/errors.ts";
import { MAX_RELAY_ENVELOPE, MAX_RELAY_MESSAGE } from "./protocol.ts";

const KiB = 1024;
const MiB = 1024 * KiB;

/** Limits that apply to authenticated clients (the RelayServer's). */
export interface RelayLimits {
  /** Largest envelope accepted (`too-large`). */
  maxMessage: number;
  /** Messages one sender may have queued for one recipient (`quota`). */
  quota: number;
  /** Messages queued for one recipient, from everyone (`recipient-full`). */
  recipientQuota: number;
  /** Envelope bytes queued for one recipient (`recipient-full`). */
  recipientBytes: number;
  /** Envelope bytes queued in the whole store (`store-full`). */
  storeBytes: number;
  /** Registered cards at most (`directory-full`). */
  maxUsers: number;
  /**
   * New (or changed) registrations per source address per minute, with a burst of as
   * many; relay-wide ten times that (`rate-limited`). 0: unlimited.
   */
  registrationsPerMinute: number;
  /** Bytes one connection may make the relay hold (`over-budget`). */
  connectionBytes: number;
  /** An authenticated link with no request for this long is dropped (`idle`); 0: never. */
  idleTimeoutMs: number;
}

/** Limits of connections before and around authentication (serveRelay's). */
export interface LinkLimits {
  /** Open connections at most, authenticated or not. */
  maxConnections: number;
  /**
   * Connections not yet authenticated at most (the pre-authentication pool; when it is
   * full a newcomer evicts its oldest member). The other `maxConnections - maxPreauth`
   * slots are reserved for authenticated sessions (`busy` when they are all taken).
   */
  maxPreauth: number;
  /** Open connections from one source address at most. */
  maxPerAddress: number;
  /** Time from TCP accept to a completed session handshake. */
  handshakeTimeoutMs: number;
}

/** Defaults (SPEC §23.12). */
export const RELAY_DEFAULTS: RelayLimits = {
  maxMessage: 64 * KiB,
  quota: 1000,
  recipientQuota: 10_000,
  recipientBytes: 64 * MiB,
  storeBytes: 1024 * MiB,
  maxUsers: 100_000,
  registrationsPerMinute: 10,
  connectionBytes: 4 * MiB,
  idleTimeoutMs: 300_000,
};

/** Defaults (SPEC §23.12). */
export const LINK_DEFAULTS: LinkLimits = {
  maxConnections: 1024,
  maxPreauth: 256,
  maxPerAddress: 32,
  handshakeTimeoutMs: 10_000,
};

/**
 * The frame cap before authentication: above the largest handshake frame SPEC §22.3
 * allows (a signed frame: a hello body of at most 4352 bytes, a 64-byte signature, a
 * 32-byte MAC, the CBOR, payload and envelope headers: under 4.6 KiB), with room for a
 * post-quantum HELLO carrying a hybrid card (about 3 KB).
 */
export const PREAUTH_FRAME = 8 * KiB;
/** Received frames queued before reading pauses, before authentication. */
export const PREAUTH_QUEUE = 16 * KiB;
/** The frame cap after authentication: one relay message in a session frame (§22.3). */
export const AUTH_FRAME = MAX_RELAY_MESSAGE + 8320;
/** Received frames queued before reading pauses, after authentication. */
export const AUTH_QUEUE = 256 * KiB;
/** Session messages a relay session buffers before it stops reading its transport. */
export const SESSION_INBOX_MESSAGES = 2;
/** Answers a client may leave unacknowledged before it is dropped (`over-budget`). */
export const MAX_UNANSWERED = 1024;
/** Malformed relay messages on one link before it is dropped. */
export const MAX_MALFORMED = 16;
/** How long reading may wait for a connection's budget before the link is dropped. */
export const BUDGET_STALL_MS = 10_000;
/**
 * Prekey requests (publish-prekeys, fetch-prekeys) per identity: a burst, then this many a
 * minute (`rate-limited`). Each fetch hands out one of the target's one-time prekeys, so
 * the rate bounds how fast one registered user can drain another's (SPEC §23.13).
 */
export const PREKEY_REQUESTS = { burst: 20, perMinute: 10 } as const;
/** Log events per link: a burst, then at most this many per second. */
export const LINK_LOG = { burst: 200, perSecond: 50 } as const;
/** Log events about connections before authentication, relay-wide. */
export const PREAUTH_LOG = { burst: 100, perSecond: 10 } as const;

const positive = (v: number, name: string, min = 1) => {
  if (!Number.isSafeInteger(v) || v < min) {
    throw new MissiveError("usage", `relay: ${name} must be an integer of at least ${min}`);
  }
};

/** Resolves and checks relay limits. */
export function relayLimits(o: Partial<RelayLimits>): RelayLimits {
  const l = { ...RELAY_DEFAULTS };
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (l as Record<string, number>)[k] = v;
  positive(l.maxMessage, "the message cap", 64);
  if (l.maxMessage > MAX_RELAY_ENVELOPE) {
    throw new MissiveError("usage", `relay: the message cap is at most ${MAX_RELAY_ENVELOPE}`);
  }
  positive(l.quota, "the per-sender quota");
  positive(l.recipientQuota, "the per-recipient quota");
  positive(l.recipientBytes, "the per-recipient size");
  positive(l.storeBytes, "the store size");
  positive(l.maxUsers, "the user cap");
  positive(l.registrationsPerMinute, "the registration rate", 0);
  positive(l.idleTimeoutMs, "the idle timeout", 0);
  // A full relay message, its answer and a delivery in flight must fit.
  if (!Number.isSafeInteger(l.connectionBytes) || l.connectionBytes < 2 * MAX_RELAY_MESSAGE) {
    throw new MissiveError(
      "usage",
      `relay: the per-connection memory budget must be at least ${2 * MAX_RELAY_MESSAGE} bytes`,
    );
  }
  return l;
}

/** Resolves and checks link limits. */
export function linkLimits(o: Partial<LinkLimits>): LinkLimits {
  const l = { ...LINK_DEFAULTS };
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (l as Record<string, number>)[k] = v;
  positive(l.maxConnections, "the connection cap", 2);
  positive(l.maxPreauth, "the pre-authentication pool");
  if (l.maxPreauth >= l.maxConnections) {
    throw new MissiveError(
      "usage",
      "relay: the pre-authentication pool must be smaller than the connection cap " +
        "(the rest is reserved for authenticated sessions)",
    );
  }
  positive(l.maxPerAddress, "the per-address cap");
  positive(l.handshakeTimeoutMs, "the handshake timeout");
  return l;
}
