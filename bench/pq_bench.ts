/**
 * Post-quantum STP versions against the classical ones, side by side in one run (SPEC
 * §5.10, §19.10): `deno run -A bench/pq_bench.ts` or `bun bench/pq_bench.ts`. Prints one
 * JSON line per measurement.
 *
 * - X-Wing primitives per provider path: encapsulations and decapsulations per second.
 * - simple: seal+open of a 100-byte text per second, v2 between classical (format-1)
 *   identities against v3 between hybrid ones, 1 and 4 in flight, `BENCH_SECONDS` (3) per
 *   line, `ROUNDS` (2) rounds alternating the versions.
 * - group: `GROUP_SIZES` (10,100,1000) recipients with hints, v1 between classical
 *   identities against v2 between hybrid ones: seal (median of 3), open (median of 5
 *   recipients spread through the list), envelope bytes.
 */
import process from "node:process";
import {
  createIdentity,
  defaultRegistry,
  getCryptoProvider,
  type Identity,
  nobleProvider,
  openMessage,
  providerChoice,
  sealMessage,
  textV1,
  webcryptoProvider,
} from "../mod.ts";

const seconds = Number(process.env.BENCH_SECONDS ?? 3);
const rounds = Number(process.env.ROUNDS ?? 2);
const sizes = (process.env.GROUP_SIZES ?? "10,100,1000").split(",").map(Number);
const crypto = await getCryptoProvider();
const registry = defaultRegistry();
const runtime = "Deno" in globalThis
  ? `deno ${(globalThis as { Deno?: { version: { deno: string } } }).Deno!.version.deno}`
  : `bun ${process.versions.bun}`;
const message = { text: "x".repeat(100) };
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (x: number) => Number(x.toFixed(2));
const caps = { stps: [[2, 2], [2, 3], [3, 1], [3, 2]] as const, amps: [[1, 1]] as const };
const make = (name: string, hybrid: boolean) =>
  createIdentity(crypto, { address: `${name}@example.org`, ...caps, hybrid });

console.log(JSON.stringify({ runtime, crypto: (await providerChoice()).families }));

// X-Wing through each provider path.
for (const p of [webcryptoProvider, nobleProvider]) {
  const seed = new Uint8Array(32).fill(7);
  const pk = await p.xwingPublicKey(seed);
  const { ciphertext } = await p.xwingEncapsulate(pk);
  const rate = async (f: () => Promise<unknown>) => {
    const t0 = performance.now();
    let n = 0;
    while (performance.now() - t0 < 1000) {
      await f();
      n++;
    }
    return Math.round(n / ((performance.now() - t0) / 1000));
  };
  console.log(JSON.stringify({
    xwing: p.name,
    encapsulatePerSecond: await rate(() => p.xwingEncapsulate(pk)),
    decapsulatePerSecond: await rate(() => p.xwingDecapsulate(seed, ciphertext)),
  }));
}

// simple v2 (classical) against v3 (hybrid).
const pairs = {
  "simple/2": [await make("alice", false), await make("bob", false)],
  "simple/3": [await make("alice", true), await make("bob", true)],
} as Record<string, [Identity, Identity]>;
for (let round = 0; round < rounds; round++) {
  for (const inFlight of [1, 4]) {
    for (const stpName of ["simple/2", "simple/3"]) {
      const stp = registry.find("stp", stpName);
      const [alice, bob] = pairs[stpName];
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      let done = 0;
      let bytes = 0;
      await Promise.all(Array.from({ length: inFlight }, async () => {
        while (performance.now() - t0 < seconds * 1000) {
          const sealed = await sealMessage({
            stp,
            amp: textV1,
            message,
            sender: alice,
            recipients: [bob.card],
          });
          bytes = sealed.length;
          await openMessage(sealed, { registry, identity: bob, trusted: [alice.card] });
          done++;
        }
      }));
      const elapsed = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      console.log(JSON.stringify({
        round,
        stp: stpName,
        inFlight,
        sealOpenPerSecond: Math.round(done / elapsed),
        coresUsed: Number(((cpu.user + cpu.system) / 1e6 / elapsed).toFixed(2)),
        envelopeBytes: bytes,
      }));
    }
  }
}

// group v1 (classical) against v2 (hybrid), hinted.
const most = Math.max(...sizes);
const members: Record<"v1" | "v2", Identity[]> = { v1: [], v2: [] };
for (const v of ["v1", "v2"] as const) {
  for (let i = 0; i < most; i += 250) {
    const batch = Array.from({ length: Math.min(250, most - i) }, (_, j) => i + j);
    members[v].push(...await Promise.all(batch.map((j) => make(`m${j}`, v === "v2"))));
  }
}
const senders = { v1: await make("sender", false), v2: await make("sender", true) };
async function timed<T>(f: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const r = await f();
  return [performance.now() - t0, r];
}
for (const n of sizes) {
  for (const v of ["v1", "v2"] as const) {
    const stp = registry.find("stp", v === "v1" ? "group/1" : "group/2");
    const to = members[v].slice(0, n);
    const seal = () =>
      sealMessage({
        stp,
        amp: textV1,
        message,
        sender: senders[v],
        recipients: to.map((m) => m.card),
      });
    await seal(); // warm-up
    const seals: number[] = [];
    let sealed = new Uint8Array();
    for (let i = 0; i < 3; i++) [seals[i], sealed] = await timed(seal);
    const opens: number[] = [];
    for (let k = 0; k < 5; k++) {
      const m = to[Math.floor((k * (n - 1)) / 4)];
      const [t, opened] = await timed(() =>
        openMessage(sealed, { registry, identity: m, trusted: [senders[v].card] })
      );
      if (opened.header.protocolVersion !== (v === "v1" ? 1 : 2)) throw new Error("version");
      opens.push(t);
    }
    console.log(JSON.stringify({
      group: v,
      recipients: n,
      envelopeBytes: sealed.length,
      sealMs: ms(median(seals)),
      openMs: ms(median(opens)),
    }));
  }
}
