import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { MissiveError } from "../core/errors.ts";
import { FileReplayCache, MemoryReplayCache } from "../plugin/replay.ts";
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

  it("persists in a file across instances", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const path = join(dir, "seen.db");
      const now = 4_000_000_000;
      await new FileReplayCache(path, { now: () => now }).checkAndRemember("a", nonce(9), now);
      assert.match(readFileSync(path, "utf8"), /^\d+\t61\t(09){16}\n$/);
      await assert.rejects(
        new FileReplayCache(path, { now: () => now }).checkAndRemember("a", nonce(9), now),
        isReplay,
      );
    } finally {
      cleanup();
    }
  });
});
