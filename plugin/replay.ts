/**
 * Replay protection (DESIGN §4): a cache of (sender, nonce) pairs with a time window.
 * A message is refused when its pair was seen, or when its timestamp lies outside
 * [now − lifetime − skew, now + skew]: older messages could have left the cache already.
 * @module
 */
import { existsSync, renameSync, writeFileSync } from "node:fs";
import { toHex, utf8 } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import { readTextLimited } from "../core/files.ts";

/** Default clock skew tolerated (the proposal's TTL), ms. */
export const DEFAULT_SKEW_MS = 25_000;
/** Default lifetime of a cache entry, ms (one day). */
export const DEFAULT_LIFETIME_MS = 24 * 3600 * 1000;
/** Entries a file cache keeps at most; the oldest go first. */
const MAX_ENTRIES = 1_000_000;
/** Largest replay db file read: MAX_ENTRIES lines of at most ~600 bytes. */
const MAX_DB_BYTES = 600 * MAX_ENTRIES;

/** Options shared by the caches. */
export interface ReplayOptions {
  skewMs?: number;
  lifetimeMs?: number;
  /** Clock, injectable for tests. */
  now?: () => number;
}

/** Something that can say whether (sender, nonce) was seen. */
export interface ReplayCache {
  /** Throws `MissiveError("replay")` for a replay or a timestamp outside the window. */
  checkAndRemember(sender: string, nonce: Uint8Array, timestamp: number): Promise<void>;
}

/** An in-memory replay cache (for listeners and tests). */
export class MemoryReplayCache implements ReplayCache {
  protected readonly entries = new Map<string, number>(); // key → expiry (ms)
  readonly #skew: number;
  readonly #lifetime: number;
  readonly #now: () => number;

  constructor(options: ReplayOptions = {}) {
    this.#skew = options.skewMs ?? DEFAULT_SKEW_MS;
    this.#lifetime = options.lifetimeMs ?? DEFAULT_LIFETIME_MS;
    this.#now = options.now ?? Date.now;
  }

  protected prune(now: number): void {
    for (const [key, expiry] of this.entries) if (expiry < now) this.entries.delete(key);
    // Insertion order is roughly expiry order; drop the oldest beyond the cap.
    for (const key of this.entries.keys()) {
      if (this.entries.size <= MAX_ENTRIES) break;
      this.entries.delete(key);
    }
  }

  checkAndRemember(sender: string, nonce: Uint8Array, timestamp: number): Promise<void> {
    const now = this.#now();
    if (timestamp > now + this.#skew) {
      return Promise.reject(
        new MissiveError("replay", `replay: timestamp is ${timestamp - now} ms in the future`),
      );
    }
    if (timestamp < now - this.#lifetime - this.#skew) {
      return Promise.reject(
        new MissiveError("replay", "replay: message is older than the replay window"),
      );
    }
    this.prune(now);
    // The sender may be attacker-chosen text (plain STP): store it hex-encoded.
    const key = `${toHex(utf8(sender))}\t${toHex(nonce)}`;
    if (this.entries.has(key)) {
      return Promise.reject(
        new MissiveError(
          "replay",
          `replay: message from ${JSON.stringify(sender)} was already seen`,
        ),
      );
    }
    this.entries.set(key, timestamp + this.#lifetime + this.#skew);
    return Promise.resolve();
  }
}

/**
 * A replay cache persisted in a file (`--replay-db FILE`): one line per entry,
 * `expiry-ms TAB hex(UTF-8 sender) TAB nonce-hex`, rewritten atomically after each check.
 */
export class FileReplayCache extends MemoryReplayCache {
  readonly #path: string;

  constructor(path: string, options: ReplayOptions = {}) {
    super(options);
    this.#path = path;
    if (!existsSync(path)) return;
    const text = readTextLimited(path, MAX_DB_BYTES, "replay db");
    for (const [i, line] of text.split("\n").entries()) {
      if (line === "") continue;
      const fields = line.split("\t");
      const [expiry, sender, nonce] = fields;
      if (
        fields.length !== 3 ||
        !/^\d+$/.test(expiry ?? "") || !/^[0-9a-f]*$/.test(sender ?? "x") ||
        !/^[0-9a-f]+$/.test(nonce ?? "")
      ) {
        throw new MissiveError("malformed", `replay db ${path}: line ${i + 1} is corrupt`);
      }
      this.entries.set(`${sender}\t${nonce}`, Number(expiry));
    }
  }

  override async checkAndRemember(sender: string, nonce: Uint8Array, timestamp: number) {
    await super.checkAndRemember(sender, nonce, timestamp);
    const lines = [...this.entries].map(([key, expiry]) => `${expiry}\t${key}\n`);
    const tmp = `${this.#path}.tmp`;
    try {
      writeFileSync(tmp, lines.join(""), { mode: 0o600 });
      renameSync(tmp, this.#path);
    } catch (e) {
      const code = (e as { code?: string }).code ?? (e as Error).message;
      throw new MissiveError("io", `replay db ${this.#path}: cannot write (${code})`);
    }
  }
}
