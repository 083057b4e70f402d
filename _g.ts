import { createIdentity, defaultRegistry, getCryptoProvider, openMessage, sealMessage } from "./mod.ts";
const crypto = await getCryptoProvider();
const registry = defaultRegistry();
const caps = { stps: [[2, 2]] as const, amps: [[1, 1]] as const };
const alice = await createIdentity(crypto, { address: "alice@example.org", ...caps });
const bob = await createIdentity(crypto, { address: "bob@example.org", ...caps });
const stp = registry.find("stp", "simple"), amp = registry.find("amp", "text/1");
const msg = { text: "x".repeat(100) };
for (const inflight of [1, 2, 4, 8, 16]) {
  const cpu0 = process.cpuUsage(); const t0 = performance.now(); let n = 0;
  await Promise.all(Array.from({ length: inflight }, async () => {
    while (performance.now() - t0 < 2000) { const s = await sealMessage({ stp, amp, message: msg, sender: alice, recipients: [bob.card] }); await openMessage(registry, s, { identity: bob, trusted: [alice.card] }); n++; }
  }));
  const el = (performance.now() - t0) / 1000; const cpu = process.cpuUsage(cpu0);
  console.log(inflight, "in flight:", Math.round(n / el), "/s; cpu", ((cpu.user + cpu.system) / 1e6 / el).toFixed(2), "cores");
}
