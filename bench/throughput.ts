/**
 * Runtime-neutral throughput of seal+open (100-byte text), sequential and with several
 * messages in flight, plus CPU used: `deno run -A bench/throughput.ts` or
 * `bun bench/throughput.ts`. Prints one JSON line per configuration.
 */
import process from "node:process";
import {
  createIdentity,
  defaultRegistry,
  getCryptoProvider,
  openMessage,
  providerChoice,
  sealMessage,
  textV1,
} from "../mod.ts";

const seconds = Number(process.env.BENCH_SECONDS ?? 3);
const crypto = await getCryptoProvider();
const registry = defaultRegistry();
// Classical (format-1) identities, as when these figures were first taken; bench/pq_bench.ts
// compares simple v2 with the post-quantum v3.
const caps = { stps: [[2, 2]] as const, amps: [[1, 1]] as const, hybrid: false };
const alice = await createIdentity(crypto, { address: "alice@example.org", ...caps });
const bob = await createIdentity(crypto, { address: "bob@example.org", ...caps });
const message = { text: "x".repeat(100) };
const runtime = "Deno" in globalThis
  ? `deno ${(globalThis as { Deno?: { version: { deno: string } } }).Deno!.version.deno}`
  : `bun ${process.versions.bun}`;

for (const stpName of ["simple/2", "auth/1"]) {
  const stp = registry.find("stp", stpName);
  for (const inFlight of [1, 4]) {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    let done = 0;
    await Promise.all(Array.from({ length: inFlight }, async () => {
      while (performance.now() - t0 < seconds * 1000) {
        const sealed = await sealMessage({
          stp,
          amp: textV1,
          message,
          sender: alice,
          recipients: [bob.card],
        });
        await openMessage(sealed, { registry, identity: bob, trusted: [alice.card] });
        done++;
      }
    }));
    const elapsed = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    console.log(JSON.stringify({
      runtime,
      crypto: (await providerChoice()).families,
      stp: stpName,
      inFlight,
      sealOpenPerSecond: Math.round(done / elapsed),
      coresUsed: Number(((cpu.user + cpu.system) / 1e6 / elapsed).toFixed(2)),
    }));
  }
}
