import { createIdentity, defaultRegistry, getCryptoProvider, openMessage, sealMessage } from "./mod.ts";
const crypto = await getCryptoProvider();
const registry = defaultRegistry();
const caps = { stps: [[2, 2]] as const, amps: [[1, 1]] as const };
const alice = await createIdentity(crypto, { address: "alice@example.org", ...caps });
const bob = await createIdentity(crypto, { address: "bob@example.org", ...caps });
const stp = registry.find("stp", "simple"), amp = registry.find("amp", "text/1");
const msg = { text: "x".repeat(100) };
const t0 = performance.now();
while (performance.now() - t0 < 4000) { const s = await sealMessage({ stp, amp, message: msg, sender: alice, recipients: [bob.card] }); await openMessage(registry, s, { identity: bob, trusted: [alice.card] }); }
