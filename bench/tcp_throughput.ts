/**
 * Messages per second over loopback TCP, in one process: `deno run -A
 * bench/tcp_throughput.ts` or `bun bench/tcp_throughput.ts`. Two workloads: raw 100-byte
 * frames echoed back (the transport alone), and the full send/listen exchange (simple/2
 * text sealed, opened by a MessageServer, answered with an auth-signed receipt that the
 * sender verifies). Prints one JSON line per configuration.
 */
import process from "node:process";
import { createIdentity, defaultRegistry, getCryptoProvider, providerChoice } from "../mod.ts";
import { connectTransport, listenTransport } from "../transports/mod.ts";
import { MessageServer, ReceiptChannel, sealWithNonce } from "../messaging/mod.ts";

const seconds = Number(process.env.BENCH_SECONDS ?? 3);
const runtime = "Deno" in globalThis
  ? `deno ${(globalThis as { Deno?: { version: { deno: string } } }).Deno!.version.deno}`
  : `bun ${process.versions.bun}`;

/** Runs `connections` loops of `step` for `seconds`; returns completed steps per second. */
async function measure(connections: number, step: (c: number) => Promise<void>) {
  const t0 = performance.now();
  let done = 0;
  await Promise.all(Array.from({ length: connections }, async (_, c) => {
    while (performance.now() - t0 < seconds * 1000) {
      await step(c);
      done++;
    }
  }));
  return Math.round(done / ((performance.now() - t0) / 1000));
}

// Raw frames: the transport alone (echo server, one frame in flight per connection).
{
  const listener = await listenTransport("tcp://127.0.0.1:0");
  const serving = (async () => {
    for await (const peer of listener.connections()) {
      (async () => {
        for await (const f of peer.frames()) await peer.send(f);
      })().catch(() => {});
    }
  })();
  for (const connections of [1, 16]) {
    const clients = await Promise.all(
      Array.from({ length: connections }, () => connectTransport(listener.url)),
    );
    const readers = clients.map((t) => t.frames()[Symbol.asyncIterator]());
    const frame = new Uint8Array(100).fill(7);
    const perSecond = await measure(connections, async (c) => {
      await clients[c].send(frame);
      await readers[c].next();
    });
    console.log(
      JSON.stringify({ runtime, workload: "raw 100-byte frames, echoed", connections, perSecond }),
    );
    await Promise.all(clients.map((t) => t.close()));
  }
  await listener.close();
  await serving;
}

// The send/listen exchange.
{
  const crypto = await getCryptoProvider();
  const registry = defaultRegistry();
  const caps = { stps: [[2, 2], [4, 1]] as const, amps: [[1, 1], [3, 1]] as const };
  const alice = await createIdentity(crypto, { address: "alice@example.org", ...caps });
  const bob = await createIdentity(crypto, { address: "bob@example.org", ...caps });
  const server = new MessageServer(await listenTransport("tcp://127.0.0.1:0"), {
    registry,
    identity: bob,
    trusted: [alice.card],
    deliver: () => {},
  });
  const running = server.run();
  const stp = registry.find("stp", "simple/2");
  const amp = registry.find("amp", "text/1");
  for (const connections of [1, 16]) {
    const channels = await Promise.all(Array.from({ length: connections }, async () => {
      const t = await connectTransport(server.url);
      return { t, channel: new ReceiptChannel(t, { registry, cards: [bob.card] }) };
    }));
    const perSecond = await measure(connections, async (c) => {
      const sealed = await sealWithNonce({
        registry,
        stp,
        amp,
        message: { text: "x".repeat(100) },
        sender: alice,
        recipients: [bob.card],
      });
      await channels[c].channel.send(sealed, 30_000);
    });
    console.log(JSON.stringify({
      runtime,
      crypto: (await providerChoice()).families,
      workload: "send+receipt, simple/2 text 100 B, both ends in one process",
      connections,
      perSecond,
    }));
    await Promise.all(channels.map((c) => c.t.close()));
  }
  await server.stop();
  await running;
}
