/**
 * The ratchet STP (SPEC §25) side by side with simple v3 in one run:
 * `deno run -A bench/ratchet_bench.ts` or `bun bench/ratchet_bench.ts`. Prints one JSON
 * line per measurement (`BENCH_SECONDS`, default 3, per line; `ROUNDS`, default 2).
 *
 * - encrypt+decrypt of a 100-byte text per second, one direction (the symmetric-key
 *   ratchet only) and ping-pong (every message a reply: a DH ratchet step each time);
 *   simple v3 seal+open (the one-shot post-quantum STP) between the same identities as the
 *   yardstick.
 * - initial agreements per second: bundle check, PQXDH-style agreement, first encrypt,
 *   acceptance (prekey lookup, card check, decapsulation, first decrypt), from a fresh
 *   keyring bundle each time.
 * - bytes: the envelope of a 100-byte text, established and initial (hybrid and classical
 *   sender cards), minus the 100 bytes.
 */
import process from "node:process";
import {
  createIdentity,
  defaultRegistry,
  getCryptoProvider,
  openMessage,
  providerChoice,
  sealMessage,
  simpleV3,
  textV1,
} from "../mod.ts";
import {
  acceptConversation,
  type Conversation,
  PrekeyKeyring,
  startConversation,
} from "../stp/ratchet/mod.ts";

const seconds = Number(process.env.BENCH_SECONDS ?? 3);
const rounds = Number(process.env.ROUNDS ?? 2);
const crypto = await getCryptoProvider();
const registry = defaultRegistry();
const runtime = "Deno" in globalThis
  ? `deno ${(globalThis as { Deno?: { version: { deno: string } } }).Deno!.version.deno}`
  : `bun ${process.versions.bun}`;
const caps = { stps: [[2, 3], [9, 1]] as const, amps: [[1, 1]] as const };
const make = (name: string, hybrid = true) =>
  createIdentity(crypto, { address: `${name}@example.org`, ...caps, hybrid });
const [alice, bob, dave] = [await make("alice"), await make("bob"), await make("dave", false)];
const body = new Uint8Array(100).fill(0x61);
const message = { ampType: 1, ampVersion: 1, body };

console.log(JSON.stringify({ runtime, crypto: (await providerChoice()).families }));

/** Runs `f` for `seconds`; returns operations per second and cores used. */
async function rate(f: () => Promise<unknown>) {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < seconds * 1000) {
    await f();
    n++;
  }
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return {
    perSecond: Math.round(n / elapsed),
    coresUsed: Number(((cpu.user + cpu.system) / 1e6 / elapsed).toFixed(2)),
  };
}

async function pair(): Promise<[Conversation, Conversation, Uint8Array]> {
  const keyring = await PrekeyKeyring.create(bob, { oneTime: 1 });
  const a = await startConversation(alice, { peer: bob.card, bundle: keyring.bundle() });
  const first = await a.encrypt(message);
  const { conversation: b } = await acceptConversation(bob, first.envelope, { keyring });
  await a.decrypt((await b.encrypt(message)).envelope);
  return [a, b, first.envelope];
}

for (let round = 0; round < rounds; round++) {
  {
    const [a, b] = await pair();
    const r = await rate(async () => {
      await b.decrypt((await a.encrypt(message)).envelope);
    });
    console.log(JSON.stringify({ round, case: "ratchet one direction", ...r }));
  }
  {
    const [a, b] = await pair();
    let turn = 0;
    const r = await rate(async () => {
      const [from, to] = turn++ % 2 === 0 ? [a, b] : [b, a];
      await to.decrypt((await from.encrypt(message)).envelope);
    });
    console.log(JSON.stringify({ round, case: "ratchet ping-pong (DH step each)", ...r }));
  }
  {
    const stp = simpleV3;
    const r = await rate(async () => {
      const sealed = await sealMessage({
        stp,
        amp: textV1,
        message: { text: "a".repeat(100) },
        sender: alice,
        recipients: [bob.card],
      });
      await openMessage(sealed, { registry, identity: bob, trusted: [alice.card] });
    });
    console.log(JSON.stringify({ round, case: "simple v3 seal+open", ...r }));
  }
  {
    const keyring = await PrekeyKeyring.create(bob, { oneTime: 0 });
    const r = await rate(async () => {
      await keyring.addOneTimePrekeys(1);
      const a = await startConversation(alice, { peer: bob.card, bundle: keyring.bundle() });
      const first = await a.encrypt(message);
      await acceptConversation(bob, first.envelope, { keyring });
    });
    console.log(JSON.stringify({ round, case: "initial agreement", ...r }));
  }
}

// Bytes of overhead: envelope minus the 100-byte body.
const [a, b, first] = await pair();
const established = (await a.encrypt(message)).envelope.length;
const reply = (await b.encrypt(message)).envelope.length;
const keyring = await PrekeyKeyring.create(bob, { oneTime: 0 });
const classical = await startConversation(dave, { peer: bob.card, bundle: keyring.bundle() });
const classicalFirst = (await classical.encrypt(message)).envelope.length;
const simple = await sealMessage({
  stp: simpleV3,
  amp: textV1,
  message: { text: "a".repeat(100) },
  sender: alice,
  recipients: [bob.card],
  includeCard: false,
});
console.log(JSON.stringify({
  overheadBytes: {
    established: established - 100,
    reply: reply - 100,
    initialHybridCard: first.length - 100,
    initialClassicalCardNoOneTime: classicalFirst - 100,
    simpleV3WithoutCard: simple.length - 100, // text v1: the body is the 100 bytes
    hybridCard: alice.card.bytes.length,
    classicalCard: dave.card.bytes.length,
  },
}));
