/**
 * Session throughput (SPEC §22): DATA messages/s (100-byte payloads, several windows)
 * and handshakes/s, over an in-memory pair, loopback TCP with both ends in this process,
 * or loopback TCP to a server in a second process (one core each):
 *
 *     deno run -A bench/session_throughput.ts [memory|tcp|tcp2]      (or: bun bench/session_throughput.ts tcp2)
 *
 * BENCH_SECONDS (default 3) bounds each measurement. Prints one JSON line per figure.
 * `serve` (internal) is the second process of tcp2.
 */
import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { createIdentity, getCryptoProvider, providerChoice } from "../mod.ts";
import { Session } from "../session/session.ts";
import { memoryTransportPair } from "../transports/memory.ts";
import type { Transport } from "../transports/types.ts";

const kind = process.argv[2] ?? process.env.BENCH_TRANSPORT ?? "tcp";
const seconds = Number(process.env.BENCH_SECONDS ?? 3);
const crypto = await getCryptoProvider();
const caps = { stps: [[5, 1]] as const, amps: [] };
// Fixed keys (benchmark only), so the tcp2 server process makes the same identities.
const identity = (address: string, seed: number) =>
  createIdentity(crypto, {
    address,
    ...caps,
    created: 1_700_000_000_000,
    signingSeed: new Uint8Array(32).fill(seed),
    agreementKey: new Uint8Array(32).fill(seed + 1),
  });
const alice = await identity("alice@example.org", 1);
const bob = await identity("bob@example.org", 3);
const runtime = "Deno" in globalThis
  ? `deno ${(globalThis as { Deno?: { version: { deno: string } } }).Deno!.version.deno}`
  : `bun ${process.versions.bun}`;

/** Server side in this or another process: accepts sessions and reads their messages. */
function serve(t: Transport, rekeyAfter: number): Promise<void> {
  return Session.accept(t, bob, { trusted: [alice.card], rekeyAfter })
    .then(async (s) => {
      for await (const _ of s.messages()) { /* discard */ }
    })
    .catch(() => {});
}

if (kind === "serve") {
  const { listen } = await import("../transports/mod.ts");
  const listener = await listen("tcp://127.0.0.1:0", { maxConnections: 4096 });
  console.log(listener.url);
  const rekeyAfter = Number(process.env.BENCH_REKEY_AFTER ?? 0);
  process.stdin.on("end", () => process.exit(0));
  process.stdin.resume();
  for await (const t of listener.connections()) void serve(t, rekeyAfter);
}

/** The tcp2 server process for one rekeyAfter setting: its URL and its handle. */
async function serverProcess(rekeyAfter: number): Promise<{ url: string; child: ChildProcess }> {
  const self = fileURLToPath(import.meta.url);
  const args = "Deno" in globalThis ? ["run", "-A", self, "serve"] : [self, "serve"];
  const child = spawn(process.execPath, args, {
    env: { ...process.env, BENCH_REKEY_AFTER: String(rekeyAfter) },
    stdio: ["pipe", "pipe", "inherit"],
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.once("data", (d: Uint8Array) => resolve(new TextDecoder().decode(d).trim()));
    child.once("exit", () => reject(new Error("bench server exited")));
  });
  return { url, child };
}

/** Opens a client session (and, unless tcp2, its server); `done` releases everything. */
async function clientSession(rekeyAfter: number, window: number) {
  let a: Transport;
  let done = async () => {};
  if (kind === "memory") {
    const [x, y] = memoryTransportPair({ capacity: 1024 });
    a = x;
    void serve(y, rekeyAfter);
  } else {
    const { connect, listen } = await import("../transports/mod.ts");
    if (kind === "tcp2") {
      const server = await serverProcess(rekeyAfter);
      a = await connect(server.url);
      done = () => Promise.resolve(void server.child.stdin!.end());
    } else {
      const listener = await listen("tcp://127.0.0.1:0");
      void (async () => {
        for await (const t of listener.connections()) void serve(t, rekeyAfter);
      })();
      a = await connect(listener.url);
      done = () => listener.close();
    }
  }
  const client = await Session.connect(a, alice, { peer: bob.card, window });
  return { client, done };
}

function report(figure: Record<string, unknown>): void {
  console.log(JSON.stringify({ runtime, transport: kind, provider: crypto.name, ...figure }));
}

async function messagesPerSecond(window: number, rekeyAfter: number): Promise<void> {
  const { client, done } = await clientSession(rekeyAfter, window);
  const payload = new Uint8Array(100).fill(0x61);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let acknowledged = 0;
  // 2 × window senders keep the session's window full; send() resolves on DATA_ACK.
  await Promise.all(Array.from({ length: window * 2 }, async () => {
    while (performance.now() - t0 < seconds * 1000) {
      await client.send(payload);
      acknowledged++;
    }
  }));
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await client.close();
  await done();
  report({
    figure: "data messages/s (acknowledged)",
    payload: 100,
    window,
    rekeyAfter,
    messages: acknowledged,
    perSecond: Math.round(acknowledged / elapsed),
    cpuPercentThisProcess: Math.round(((cpu.user + cpu.system) / 1e6 / elapsed) * 100),
  });
}

/** `parallel` clients connect, shake hands and close, over and over. */
async function handshakesPerSecond(parallel: number): Promise<void> {
  let connectOne: () => Promise<Transport>;
  let stop = async () => {};
  if (kind === "memory") {
    connectOne = () => {
      const [a, b] = memoryTransportPair();
      void serve(b, 0);
      return Promise.resolve(a);
    };
  } else {
    const { connect, listen } = await import("../transports/mod.ts");
    if (kind === "tcp2") {
      const server = await serverProcess(0);
      connectOne = () => connect(server.url);
      stop = () => Promise.resolve(void server.child.stdin!.end());
    } else {
      const listener = await listen("tcp://127.0.0.1:0", { maxConnections: 4096 });
      void (async () => {
        for await (const t of listener.connections()) void serve(t, 0);
      })();
      connectOne = () => connect(listener.url);
      stop = () => listener.close();
    }
  }
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let n = 0;
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (performance.now() - t0 < seconds * 1000) {
      const client = await Session.connect(await connectOne(), alice, { peer: bob.card });
      await client.close();
      n++;
    }
  }));
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await stop();
  report({
    figure: "handshakes/s (connect, HELLO, HELLO_ACK, ACK, CLOSE, CLOSE_ACK)",
    parallel,
    handshakes: n,
    perSecond: Math.round(n / elapsed),
    cpuPercentThisProcess: Math.round(((cpu.user + cpu.system) / 1e6 / elapsed) * 100),
  });
}

if (kind !== "serve") {
  console.error(`provider families: ${JSON.stringify((await providerChoice()).families)}`);
  for (const window of [1, 32, 256]) await messagesPerSecond(window, 0);
  await messagesPerSecond(256, 10);
  await handshakesPerSecond(1);
  await handshakesPerSecond(8);
  process.exit(0);
}
