/**
 * Group STP at scale (SPEC §19): seal and open time for 10, 100, 1,000 and 10,000
 * recipients, with recipient hints and with hidden recipients. Runtime-neutral:
 * `deno run -A bench/group_scale.ts` or `bun bench/group_scale.ts`; `GROUP_SIZES=10,100`
 * picks the sizes. Prints one JSON line per (recipients, mode).
 *
 * seal: median of 3 seals of a 100-byte text. open: median over 5 recipients spread
 * through the list (hidden mode: a recipient's trial stops at its slot, so this is the
 * typical case); outsider: a non-recipient, who must try every slot in hidden mode.
 */
import process from "node:process";
import {
  createIdentity,
  defaultRegistry,
  getCryptoProvider,
  type Identity,
  openMessage,
  providerChoice,
  sealMessage,
  textV1,
} from "../mod.ts";

const sizes = (process.env.GROUP_SIZES ?? "10,100,1000,10000").split(",").map(Number);
const crypto = await getCryptoProvider();
const registry = defaultRegistry();
// group v1 between classical (format-1) identities, as when these figures were first taken;
// bench/pq_bench.ts compares it with the post-quantum group v2.
const group = registry.find("stp", "group/1");
const caps = { stps: [[3, 1]] as const, amps: [[1, 1]] as const, hybrid: false };
const make = (i: number) => createIdentity(crypto, { address: `m${i}@example.org`, ...caps });
const alice = await make(-1);
const outsider = await make(-2);
const members: Identity[] = [];
for (let i = 0; i < Math.max(...sizes); i += 500) {
  members.push(
    ...await Promise.all(
      Array.from({ length: Math.min(500, Math.max(...sizes) - i) }, (_, j) => make(i + j)),
    ),
  );
}
const runtime = "Deno" in globalThis
  ? `deno ${(globalThis as { Deno?: { version: { deno: string } } }).Deno!.version.deno}`
  : `bun ${process.versions.bun}`;
const message = { text: "x".repeat(100) };
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (x: number) => Number(x.toFixed(2));

async function timed<T>(f: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const r = await f();
  return [performance.now() - t0, r];
}

console.log(JSON.stringify({ runtime, crypto: (await providerChoice()).families }));
for (const n of sizes) {
  const to = members.slice(0, n);
  for (const hideRecipients of [false, true]) {
    const seal = () =>
      sealMessage({
        stp: group,
        amp: textV1,
        message,
        sender: alice,
        recipients: to.map((m) => m.card),
        hideRecipients,
      });
    await seal(); // warm-up
    const seals: number[] = [];
    let sealed = new Uint8Array();
    for (let i = 0; i < 3; i++) [seals[i], sealed] = await timed(seal);
    const opens: number[] = [];
    for (let k = 0; k < 5; k++) {
      const m = to[Math.floor((k * (n - 1)) / 4)];
      const [t, opened] = await timed(() =>
        openMessage(sealed, { registry, identity: m, trusted: [alice.card] })
      );
      if (opened.sender?.verified !== true) throw new Error("sender not verified");
      opens.push(t);
    }
    const [outsiderMs, code] = await timed(() =>
      openMessage(sealed, { registry, identity: outsider }).then(
        () => "opened?!",
        (e) => e.code,
      )
    );
    console.log(JSON.stringify({
      recipients: n,
      mode: hideRecipients ? "hidden" : "hints",
      envelopeBytes: sealed.length,
      sealMs: ms(median(seals)),
      openMs: ms(median(opens)),
      openMaxMs: ms(Math.max(...opens)),
      outsiderMs: ms(outsiderMs),
      outsider: code,
    }));
  }
}
