/**
 * Replay protection (DESIGN §4): a cache of (sender, nonce) pairs with a time window.
 * A message is refused when its pair was seen, or when its timestamp lies outside
 * [now − lifetime − skew, now + skew]: older messages could have left the cache already.
 * @module
 */
import { toHex, utf8 } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";

/** Default clock skew tolerated (the proposal's TTL), ms. */
export const DEFAULT_SKEW_MS = 25_000;
/** Default lifetime of a cache entry, ms (one day). */
export const DEFAULT_LIFETIME_MS = 24 * 3600 * 1000;
/**
 * Unexpired entries a cache holds at most. When it is full, the cache refuses (`full`)
 * rather than forgets: evicting an entry inside its window would let that message be
 * replayed, which is what a flood would be for.
 */
export const DEFAULT_MAX_ENTRIES = 1_000_000;

/** Options shared by the caches. */
export interface ReplayOptions {
  /** Clock skew tolerated either way, ms (default `DEFAULT_SKEW_MS`, 25 s). */
  skewMs?: number;
  /** How long an entry is kept, ms (default `DEFAULT_LIFETIME_MS`, one day). */
  lifetimeMs?: number;
  /** Unexpired entries held at most (default DEFAULT_MAX_ENTRIES). */
  maxEntries?: number;
  /** Clock, injectable for tests. */
  now?: () => number;
}

/** Something that can say whether (sender, nonce) was seen. */
export interface ReplayCache {
  /**
   * Throws `MissiveError("replay")` for a replay or a timestamp outside the window, and
   * `MissiveError("full")` when the cache holds its maximum of unexpired entries;
   * otherwise remembers the pair until its expiry.
   */
  checkAndRemember(sender: string, nonce: Uint8Array, timestamp: number): Promise<void>;
}

/** The window and capacity of a cache, resolved from its options. */
export interface ReplayWindow {
  skewMs: number;
  lifetimeMs: number;
  maxEntries: number;
  now: () => number;
}

/** Options with their defaults. */
export function replayWindow(options: ReplayOptions = {}): ReplayWindow {
  const w = {
    skewMs: options.skewMs ?? DEFAULT_SKEW_MS,
    lifetimeMs: options.lifetimeMs ?? DEFAULT_LIFETIME_MS,
    maxEntries: options.maxEntries ?? DEFAULT_MAX_ENTRIES,
    now: options.now ?? Date.now,
  };
  if (!(Number.isSafeInteger(w.maxEntries) && w.maxEntries > 0)) {
    throw new MissiveError("usage", "replay: maxEntries must be a positive integer");
  }
  return w;
}

/**
 * The time check every cache makes (SPEC §10): a timestamp outside
 * [now − lifetime − skew, now + skew] is `replay`. Returns the entry's expiry.
 */
export function checkReplayWindow(w: ReplayWindow, timestamp: number, now: number): number {
  if (timestamp > now + w.skewMs) {
    throw new MissiveError("replay", `replay: timestamp is ${timestamp - now} ms in the future`);
  }
  if (timestamp < now - w.lifetimeMs - w.skewMs) {
    throw new MissiveError("replay", "replay: message is older than the replay window");
  }
  return timestamp + w.lifetimeMs + w.skewMs;
}

/** The errors every cache throws, worded once. */
export const replayErrors = {
  seen: (sender: string) =>
    new MissiveError("replay", `replay: message from ${JSON.stringify(sender)} was already seen`),
  full: (max: number) =>
    new MissiveError(
      "full",
      `replay cache full: ${max} messages inside the replay window; refusing until some expire ` +
        "(forgetting one would let it be replayed)",
    ),
};

/** An in-memory replay cache (for listeners and tests). */
export class MemoryReplayCache implements ReplayCache {
  readonly #entries = new Map<string, number>(); // key → expiry (ms), in insertion order
  readonly #w: ReplayWindow;

  /**
   * An empty cache with the window and cap of `options`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MemoryReplayCache } from "../mod.ts";
   * let clock = 1_000_000;
   * const cache = new MemoryReplayCache({ maxEntries: 2, now: () => clock });
   * const nonce = new Uint8Array(16).fill(1);
   * await cache.checkAndRemember("alice@example.org", nonce, clock);
   * await assert.rejects(cache.checkAndRemember("alice@example.org", nonce, clock), {
   *   code: "replay",
   * });
   * // Another sender may use the same nonce; a timestamp outside the window is refused.
   * await cache.checkAndRemember("bob@example.org", nonce, clock);
   * await assert.rejects(cache.checkAndRemember("carol@example.org", nonce, clock + 60_000), {
   *   code: "replay",
   * });
   * // Full: refused rather than forgetting an entry still inside its window.
   * clock += 1;
   * await assert.rejects(cache.checkAndRemember("dave@example.org", nonce, clock), {
   *   code: "full",
   * });
   * ```
   */
  constructor(options: ReplayOptions = {}) {
    this.#w = replayWindow(options);
  }

  #prune(now: number): void {
    for (const [key, expiry] of this.#entries) if (expiry < now) this.#entries.delete(key);
  }

  checkAndRemember(sender: string, nonce: Uint8Array, timestamp: number): Promise<void> {
    try {
      const now = this.#w.now();
      const expiry = checkReplayWindow(this.#w, timestamp, now);
      // The sender may be attacker-chosen text (plain STP): keyed hex-encoded.
      const key = `${toHex(utf8(sender))}\t${toHex(nonce)}`;
      if (this.#entries.has(key)) throw replayErrors.seen(sender);
      if (this.#entries.size >= this.#w.maxEntries) this.#prune(now);
      if (this.#entries.size >= this.#w.maxEntries) throw replayErrors.full(this.#w.maxEntries);
      this.#entries.set(key, expiry);
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }
}
