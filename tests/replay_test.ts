import assert from "node:assert/strict";
import { statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { MissiveError } from "../core/errors.ts";
import { MemoryReplayCache, type ReplayCache } from "../plugin/replay.ts";
import { SqliteReplayCache } from "../queue/replay.ts";
import { tempDir } from "./helpers.ts";

const isReplay = (e: unknown) => e instanceof MissiveError && e.code === "replay";
const nonce = (n: number) => new Uint8Array(16).fill(n);

describe("replay cache", () => {
  it("refuses a (sender, nonce) seen before, accepts a new nonce or sender", async () => {
    let now = 1_000_000_000;
    const cache = new MemoryReplayCache({ now: () => now, lifetimeMs: 60_000, skewMs: 25_000 });
    await cache.checkAndRemember("a", nonce(1), now);
    await assert.rejects(cache.checkAndRemember("a", nonce(1), now), isReplay);
    await cache.checkAndRemember("a", nonce(2), now);
    await cache.checkAndRemember("b", nonce(1), now);
    now += 10_000;
    await assert.rejects(cache.checkAndRemember("a", nonce(1), now - 10_000), isReplay);
  });

  it("refuses timestamps outside [now - lifetime - skew, now + skew]", async () => {
    const now = 2_000_000_000;
    const cache = new MemoryReplayCache({ now: () => now, lifetimeMs: 60_000, skewMs: 25_000 });
    await assert.rejects(cache.checkAndRemember("a", nonce(1), now + 25_001), isReplay);
    await cache.checkAndRemember("a", nonce(2), now + 25_000);
    await assert.rejects(cache.checkAndRemember("a", nonce(3), now - 85_001), isReplay);
    await cache.checkAndRemember("a", nonce(4), now - 85_000);
  });

  it("forgets entries once they expire (their messages are then refused as too old)", async () => {
    let now = 3_000_000_000;
    const cache = new MemoryReplayCache({ now: () => now, lifetimeMs: 1000, skewMs: 0 });
    const t = now;
    await cache.checkAndRemember("a", nonce(1), t);
    now += 1001;
    await assert.rejects(
      cache.checkAndRemember("a", nonce(1), t),
      (e) => isReplay(e) && /older/.test((e as Error).message),
    );
  });

  it("persists in a SQLite file (0600) across instances", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const path = join(dir, "seen.db");
      const now = 4_000_000_000;
      const first = new SqliteReplayCache(path, { now: () => now });
      await first.checkAndRemember("a", nonce(9), now);
      first.close();
      assert.equal(statSync(path).mode & 0o777, 0o600);
      const second = new SqliteReplayCache(path, { now: () => now });
      await assert.rejects(second.checkAndRemember("a", nonce(9), now), isReplay);
      await second.checkAndRemember("a", nonce(8), now);
      second.close();
    } finally {
      cleanup();
    }
  });

  it("a file that is not a replay db is refused with a typed error", () => {
    const { dir, cleanup } = tempDir();
    try {
      const path = join(dir, "seen.db");
      writeFileSync(path, "1800000000000\t61\t0909\n");
      assert.throws(
        () => new SqliteReplayCache(path),
        (e) => e instanceof MissiveError && e.code === "io" && /replay db/.test(e.message),
      );
    } finally {
      cleanup();
    }
  });

  for (const kind of ["memory", "sqlite"] as const) {
    it(`${kind}: when full inside the window it refuses (full) rather than forgetting`, async () => {
      const { dir, cleanup } = tempDir();
      try {
        let now = 5_000_000_000;
        const options = { now: () => now, lifetimeMs: 60_000, skewMs: 0, maxEntries: 100 };
        const cache: ReplayCache = kind === "memory"
          ? new MemoryReplayCache(options)
          : new SqliteReplayCache(join(dir, "seen.db"), options);
        // A flood of 100 fresh messages fills the cache …
        for (let i = 0; i < 100; i++) await cache.checkAndRemember("mallory", nonce(i), now);
        // … and the next message is refused, not let in by evicting the oldest …
        await assert.rejects(
          cache.checkAndRemember("alice", nonce(200), now),
          (e) =>
            e instanceof MissiveError && e.code === "full" && /replay cache full/.test(e.message),
        );
        // … so the first flooded message is still a replay.
        await assert.rejects(cache.checkAndRemember("mallory", nonce(0), now), isReplay);
        // Once the window has passed, expired entries make room again.
        now += 60_001;
        await cache.checkAndRemember("alice", nonce(200), now);
      } finally {
        cleanup();
      }
    });
  }
});
