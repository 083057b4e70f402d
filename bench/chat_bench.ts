/**
 * `missive chat` figures (docs/BENCHMARKS.md): end-to-end latency of a line through a
 * relay — from `send` to the receiver's `line` event — with PAIRS chatting pairs
 * simulated in one process (200 models, 200 relay links, one relay, all on 127.0.0.1),
 * p50/p99; then one real client's start-up (process start to "connected") and RSS:
 * `bin/missive` from source under Deno, or the program named by $CHAT_BENCH_BIN (the
 * compiled binary: `bash scripts/compile.sh`, then CHAT_BENCH_BIN=dist/missive). PAIRS 0
 * measures the client only.
 *
 *   npx deno run -A bench/chat_bench.ts [PAIRS] [LINES]
 *   npx bun bench/chat_bench.ts [PAIRS] [LINES]
 */
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { getCryptoProvider } from "../crypto/mod.ts";
import { createIdentity, type Identity, writeKeyFile } from "../keys/identity.ts";
import { cardToText } from "../keys/card.ts";
import { serveRelay } from "../relay/link.ts";
import { RelayServer } from "../relay/server.ts";
import { RelayStore } from "../relay/store.ts";
import { defaultRegistry } from "../stp/mod.ts";
import { type ChatEvent, ChatModel, History, RelayCarrier } from "../chat/mod.ts";
import { tempDir } from "../tests/helpers.ts";

const PAIRS = Number(process.argv[2] ?? 100);
const LINES = Number(process.argv[3] ?? 10);
const crypto = await getCryptoProvider();
const { dir, cleanup } = tempDir("missive-chat-bench-");
const { stps, amps } = defaultRegistry().list();
const caps = {
  stps: stps.map((p) => [p.type, p.version] as const),
  amps: amps.map((p) => [p.type, p.version] as const),
};
const identity = (address: string) => createIdentity(crypto, { address, ...caps });

const relayId = await identity("relay@example.org");
const store = RelayStore.open(join(dir, "relay.db"));
const server = new RelayServer({
  store,
  crypto,
  openRegistration: true,
  registrationsPerMinute: 0,
});
await server.start();
// Every client is on 127.0.0.1: lift the per-address cap (SPEC §23.12) for the simulation.
const relay = await serveRelay("tcp://127.0.0.1:0", relayId, server, { maxPerAddress: 1000 });

const until = async (ok: () => boolean) => {
  while (!ok()) await new Promise((r) => setTimeout(r, 5));
};

async function client(who: Identity) {
  const history = await History.open(crypto, who, join(dir, `${who.card.address}.db`));
  const model = await ChatModel.open(who, history, new RelayCarrier(relay.url, who, relayId.card), {
    crypto,
  });
  const events: ChatEvent[] = [];
  model.on((e) => events.push(e));
  await model.start();
  await until(() => events.some((e) => e.type === "link" && e.up));
  return { model, events };
}

const runtime = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined"
  ? `Bun ${process.versions.bun}`
  : `Deno ${process.versions.deno}`;
console.log(`bench under ${runtime}`);
if (PAIRS > 0) await chatting();

async function chatting() {
  const t0 = performance.now();
  const pairs = await Promise.all(Array.from({ length: PAIRS }, async (_, i) => {
    const a = await client(await identity(`a${i}@example.org`));
    const b = await client(await identity(`b${i}@example.org`));
    return { a, b, i };
  }));
  await Promise.all(pairs.map(async ({ a, b, i }) => {
    await a.model.request(`b${i}@example.org`);
    await until(() => b.events.some((e) => e.type === "request"));
    await b.model.accept(`a${i}@example.org`);
    await until(() => a.events.some((e) => e.type === "accepted"));
  }));
  const setupMs = performance.now() - t0;

  const latencies: number[] = [];
  const t1 = performance.now();
  await Promise.all(pairs.map(async ({ a, b, i }) => {
    for (let n = 0; n < LINES; n++) {
      const [from, to, peer] = n % 2 === 0
        ? [a, b, `b${i}@example.org`]
        : [b, a, `a${i}@example.org`];
      const text = `line ${n} of pair ${i}`;
      const start = performance.now();
      await from.model.send(peer, text);
      await until(() => to.events.some((e) => e.type === "line" && e.line.text === text));
      latencies.push(performance.now() - start);
    }
  }));
  const chatMs = performance.now() - t1;
  latencies.sort((x, y) => x - y);
  const pct = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
  console.log(
    `pairs ${PAIRS}, lines ${latencies.length}: setup (register, request, accept) ${
      (setupMs / 1000).toFixed(1)
    } s`,
  );
  console.log(
    `latency p50 ${pct(0.5).toFixed(1)} ms, p99 ${pct(0.99).toFixed(1)} ms, max ${
      latencies.at(-1)!.toFixed(1)
    } ms; ${(latencies.length / chatMs * 1000).toFixed(0)} lines/s`,
  );
  await Promise.all(pairs.flatMap(({ a, b }) => [a.model.close(), b.model.close()]));
}

// One real client: start-up to "connected" and RSS, under the runtime of bin/missive.
const me = await identity("solo@example.org");
writeFileSync(join(dir, "solo.key"), await writeKeyFile(crypto, me));
writeFileSync(join(dir, "relay.card"), cardToText(relayId.card) + "\n");
const bin = process.env.CHAT_BENCH_BIN ?? join(import.meta.dirname!, "..", "bin", "missive");
const runs: { ms: number; rssKiB: number }[] = [];
for (let run = 0; run < 3; run++) {
  const start = performance.now();
  const child = spawn(bin, [
    "chat",
    "--relay",
    relay.url,
    "--relay-card",
    join(dir, "relay.card"),
    "--key",
    join(dir, "solo.key"),
  ], {
    stdio: ["pipe", "pipe", "pipe"],
    // bin/missive would run dist/missive when it is newer than the sources: not here.
    env: { ...process.env, ...(process.env.CHAT_BENCH_BIN ? {} : { MISSIVE_FROM_SOURCE: "1" }) },
  });
  let out = "";
  await new Promise<void>((resolve) => {
    child.stdout!.on("data", (d) => {
      out += d;
      if (out.includes("connected to")) resolve();
    });
  });
  const ms = performance.now() - start;
  const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
  runs.push({ ms, rssKiB: Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) });
  child.stdin!.end("/exit\n");
  await new Promise((r) => child.on("close", r));
}
const best = runs.sort((x, y) => x.ms - y.ms)[1];
console.log(
  `client ${bin}: start-up to "connected" ${best.ms.toFixed(0)} ms (median of 3), RSS ${
    (best.rssKiB / 1024).toFixed(0)
  } MiB`,
);
await relay.close();
cleanup();
process.exit(0);
