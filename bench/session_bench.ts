/**
 * Session throughput (SPEC §22): DATA messages/s (100-byte payloads, several windows)
 * and handshakes/s, both ends in this process, over an in-memory pair or loopback TCP:
 *
 *     deno run -A bench/session_bench.ts [memory|tcp]      (or: bun bench/session_bench.ts tcp)
 *
 * BENCH_SECONDS (default 3) bounds each measurement. Prints one JSON line per figure.
 */
import process from "node:process";
import { createIdentity, getCryptoProvider, providerChoice } from "../mod.ts";
import { Session } from "../session/session.ts";
import { memoryTransportPair } from "../transports/memory.ts";
import type { Transport } from "../transports/types.ts";

const kind = process.argv[2] ?? process.env.BENCH_TRANSPORT ?? "tcp";
const seconds = Number(process.env.BENCH_SECONDS ?? 3);
const crypto = await getCryptoProvider();
const caps = { stps: [[5, 1]] as const, amps: [] };
const alice = await createIdentity(crypto, { address: "alice@example.org", ...caps });
const bob = await createIdentity(crypto, { address: "bob@example.org", ...caps });
const runtime = "Deno" in globalThis
  ? `deno ${(globalThis as { Deno?: { version: { deno: string } } }).Deno!.version.deno}`
  : `bun ${process.versions.bun}`;

/** A connected transport pair of the chosen kind, and how to release it. */
async function transportPair(): Promise<{ a: Transport; b: Transport; done(): Promise<void> }> {
  if (kind === "memory") {
    const [a, b] = memoryTransportPair({ capacity: 1024 });
    return { a, b, done: async () => {} };
  }
  const { connect, listen } = await import("../transports/mod.ts");
  const listener = await listen("tcp://127.0.0.1:0");
  const accepted = (async () => {
    for await (const t of listener.connections()) return t;
    throw new Error("listener closed");
  })();
  const a = await connect(listener.url);
  const b = await accepted;
  return { a, b, done: () => listener.close() };
}

async function sessionPair(rekeyAfter: number, window: number) {
  const t = await transportPair();
  const [client, server] = await Promise.all([
    Session.connect(t.a, alice, { peer: bob.card, window }),
    Session.accept(t.b, bob, { trusted: [alice.card], rekeyAfter }),
  ]);
  return { client, server, done: t.done };
}

function report(figure: Record<string, unknown>): void {
  console.log(JSON.stringify({ runtime, transport: kind, provider: crypto.name, ...figure }));
}

async function messagesPerSecond(window: number, rekeyAfter: number): Promise<void> {
  const { client, server, done } = await sessionPair(rekeyAfter, window);
  const payload = new Uint8Array(100).fill(0x61);
  let received = 0;
  const reading = (async () => {
    for await (const _ of server.messages()) received++;
  })();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let sent = 0;
  // 2 × window senders keep the session's window full; send() resolves on DATA_ACK.
  await Promise.all(Array.from({ length: window * 2 }, async () => {
    while (performance.now() - t0 < seconds * 1000) {
      sent++;
      await client.send(payload);
    }
  }));
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await client.close();
  await reading;
  await done();
  report({
    figure: "data messages/s",
    payload: 100,
    window,
    rekeyAfter,
    messages: received,
    perSecond: Math.round(received / elapsed),
    cpuPercent: Math.round(((cpu.user + cpu.system) / 1e6 / elapsed) * 100),
    perCpuSecond: Math.round(received / ((cpu.user + cpu.system) / 1e6)),
    sent,
  });
}

/** One listener (or one memory pair per session); `parallel` clients connect, shake hands, close. */
async function handshakesPerSecond(parallel: number): Promise<void> {
  let accept: (t: Transport) => void = () => {};
  let connectOne: () => Promise<Transport>;
  let stop = async () => {};
  if (kind === "memory") {
    connectOne = () => {
      const [a, b] = memoryTransportPair();
      accept(b);
      return Promise.resolve(a);
    };
  } else {
    const { connect, listen } = await import("../transports/mod.ts");
    const listener = await listen("tcp://127.0.0.1:0", { maxConnections: 4096 });
    void (async () => {
      for await (const t of listener.connections()) accept(t);
    })();
    connectOne = () => connect(listener.url);
    stop = () => listener.close();
  }
  const serving: Promise<unknown>[] = [];
  accept = (t) => {
    serving.push(
      Session.accept(t, bob, { trusted: [alice.card] }).then((s) => s.ended).catch(() => {}),
    );
  };
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
  await Promise.all(serving);
  await stop();
  report({
    figure: "handshakes/s (connection, HELLO, HELLO_ACK, ACK, CLOSE, CLOSE_ACK; both ends)",
    parallel,
    handshakes: n,
    perSecond: Math.round(n / elapsed),
    cpuPercent: Math.round(((cpu.user + cpu.system) / 1e6 / elapsed) * 100),
    perCpuSecond: Math.round(n / ((cpu.user + cpu.system) / 1e6)),
  });
}

console.error(`provider families: ${JSON.stringify((await providerChoice()).families)}`);
for (const window of [1, 32, 256]) await messagesPerSecond(window, 0);
await messagesPerSecond(256, 10);
await handshakesPerSecond(1);
await handshakesPerSecond(8);
