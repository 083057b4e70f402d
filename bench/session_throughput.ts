/**
 * Session throughput (SPEC §22): DATA messages/s (100-byte payloads, several windows)
 * and handshakes/s, over an in-memory pair, loopback TCP with both ends in this process,
 * or loopback TCP to a server in a second process (one core each):
 *
 *     deno run -A bench/session_throughput.ts [memory|tcp|tcp2]      (or: bun bench/session_throughput.ts tcp2)
 *
 * BENCH_SECONDS (default 3) bounds each measurement. BENCH_VERSIONS (default "2,1") lists
 * the session versions the client speaks, one at a time (SPEC §22.12): the DATA figures
 * use the first, the handshake figures run once per version, side by side, BENCH_ROUNDS
 * times (default 1) alternating. The server accepts both. Prints one JSON line per
 * figure. `serve` (internal) is the second process of tcp2.
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
    hybridSeed: new Uint8Array(32).fill(seed + 2),
  });
const alice = await identity("alice@example.org", 1);
const bob = await identity("bob@example.org", 3);
const versions = (process.env.BENCH_VERSIONS ?? "2,1").split(",").map((v) => Number(v) as 1 | 2);
const rounds = Number(process.env.BENCH_ROUNDS ?? 1);
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
  const { listenTransport: listen } = await import("../transports/mod.ts");
  const listener = await listen("tcp://127.0.0.1:0", { maxConnections: 4096 });
  console.log(listener.url);
  const rekeyAfter = Number(process.env.BENCH_REKEY_AFTER ?? 0);
  // Each line on stdin asks for this process's CPU time so far (µs); EOF ends it.
  process.stdin.on("data", () => {
    const { user, system } = process.cpuUsage();
    console.log(JSON.stringify({ cpu: user + system }));
  });
  process.stdin.on("end", () => process.exit(0));
  for await (const t of listener.connections()) void serve(t, rekeyAfter);
}

/** The tcp2 server process: its URL, its CPU time so far (µs), and its handle. */
interface ServerProcess {
  url: string;
  cpu(): Promise<number>;
  child: ChildProcess;
}

async function serverProcess(rekeyAfter: number): Promise<ServerProcess> {
  const self = fileURLToPath(import.meta.url);
  const args = "Deno" in globalThis ? ["run", "-A", self, "serve"] : [self, "serve"];
  const child = spawn(process.execPath, args, {
    env: { ...process.env, BENCH_REKEY_AFTER: String(rekeyAfter) },
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines: ((line: string) => void)[] = [];
  let buffered = "";
  child.stdout!.on("data", (d: Uint8Array) => {
    buffered += new TextDecoder().decode(d);
    for (let i = buffered.indexOf("\n"); i >= 0; i = buffered.indexOf("\n")) {
      const line = buffered.slice(0, i);
      buffered = buffered.slice(i + 1);
      lines.shift()?.(line);
    }
  });
  const nextLine = () => new Promise<string>((resolve) => lines.push(resolve));
  const url = await Promise.race([
    nextLine(),
    new Promise<never>((_, reject) =>
      child.once("exit", () => reject(new Error("bench server exited")))
    ),
  ]);
  const cpu = async () => {
    const line = nextLine();
    child.stdin!.write("cpu\n");
    return (JSON.parse(await line) as { cpu: number }).cpu;
  };
  return { url: url.trim(), cpu, child };
}

/** Where sessions are served: how to reach it, its CPU time (tcp2 only), how to stop it. */
interface Server {
  connectOne(): Promise<Transport>;
  /** CPU time of the server process so far (µs), or undefined in this process. */
  cpu(): Promise<number | undefined>;
  stop(): Promise<void>;
}

async function startServer(rekeyAfter: number): Promise<Server> {
  if (kind === "memory") {
    return {
      connectOne() {
        const [a, b] = memoryTransportPair({ capacity: 1024 });
        void serve(b, rekeyAfter);
        return Promise.resolve(a);
      },
      cpu: () => Promise.resolve(undefined),
      stop: () => Promise.resolve(),
    };
  }
  const { connectTransport: connect, listenTransport: listen } = await import(
    "../transports/mod.ts"
  );
  if (kind === "tcp2") {
    const server = await serverProcess(rekeyAfter);
    return {
      connectOne: () => connect(server.url),
      cpu: server.cpu,
      stop: () => Promise.resolve(void server.child.stdin!.end()),
    };
  }
  const listener = await listen("tcp://127.0.0.1:0", { maxConnections: 4096 });
  void (async () => {
    for await (const t of listener.connections()) void serve(t, rekeyAfter);
  })();
  return {
    connectOne: () => connect(listener.url),
    cpu: () => Promise.resolve(undefined),
    stop: () => listener.close(),
  };
}

function report(figure: Record<string, unknown>): void {
  console.log(JSON.stringify({ runtime, transport: kind, provider: crypto.name, ...figure }));
}

/** Runs `work` and measures the wall time and the CPU share of both processes. */
async function measured(server: Server, work: () => Promise<void>) {
  const serverCpu0 = await server.cpu();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await work();
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const serverCpu1 = await server.cpu();
  const percent = (us: number) => Math.round((us / 1e6 / elapsed) * 100);
  return {
    elapsed,
    cpuPercentThisProcess: percent(cpu.user + cpu.system),
    ...(serverCpu0 !== undefined && serverCpu1 !== undefined
      ? { cpuPercentServer: percent(serverCpu1 - serverCpu0) }
      : {}),
  };
}

async function messagesPerSecond(window: number, rekeyAfter: number): Promise<void> {
  const server = await startServer(rekeyAfter);
  const client = await Session.connect(await server.connectOne(), alice, {
    peer: bob.card,
    window,
    versions: [versions[0]],
  });
  const payload = new Uint8Array(100).fill(0x61);
  let acknowledged = 0;
  const { elapsed, ...cpu } = await measured(server, async () => {
    const t0 = performance.now();
    // 2 × window senders keep the session's window full; send() resolves on DATA_ACK.
    await Promise.all(Array.from({ length: window * 2 }, async () => {
      while (performance.now() - t0 < seconds * 1000) {
        await client.send(payload);
        acknowledged++;
      }
    }));
  });
  await client.close();
  await server.stop();
  report({
    figure: "data messages/s (acknowledged)",
    version: versions[0],
    payload: 100,
    window,
    rekeyAfter,
    messages: acknowledged,
    perSecond: Math.round(acknowledged / elapsed),
    ...cpu,
  });
}

/** `parallel` clients connect, shake hands and close, over and over. */
async function handshakesPerSecond(parallel: number, version: 1 | 2): Promise<void> {
  const server = await startServer(0);
  let n = 0;
  const { elapsed, ...cpu } = await measured(server, async () => {
    const t0 = performance.now();
    await Promise.all(Array.from({ length: parallel }, async () => {
      while (performance.now() - t0 < seconds * 1000) {
        const client = await Session.connect(await server.connectOne(), alice, {
          peer: bob.card,
          versions: [version],
        });
        await client.close();
        n++;
      }
    }));
  });
  await server.stop();
  report({
    figure: "handshakes/s (connect, HELLO, HELLO_ACK, ACK, CLOSE, CLOSE_ACK)",
    version,
    parallel,
    handshakes: n,
    perSecond: Math.round(n / elapsed),
    ...cpu,
  });
}

if (kind !== "serve") {
  // BENCH_ONLY=messages or =handshakes runs one half.
  const only = process.env.BENCH_ONLY;
  console.error(`provider families: ${JSON.stringify((await providerChoice()).families)}`);
  if (only !== "handshakes") {
    for (const window of [1, 32, 256]) await messagesPerSecond(window, 0);
    await messagesPerSecond(256, 10);
  }
  if (only !== "messages") {
    for (let round = 0; round < rounds; round++) {
      for (const parallel of [1, 8]) {
        for (const version of versions) await handshakesPerSecond(parallel, version);
      }
    }
  }
  process.exit(0);
}
