import { createIdentity, defaultRegistry, getCryptoProvider, openMessage, sealMessage, MissiveError } from "./mod.ts";
const crypto = await getCryptoProvider();
const registry = defaultRegistry();
const caps = { stps: [[2, 2]] as const, amps: [[1, 1]] as const };
const alice = await createIdentity(crypto, { address: "alice@example.org", ...caps });
const bob = await createIdentity(crypto, { address: "bob@example.org", ...caps });
const carol = await createIdentity(crypto, { address: "carol@example.org", ...caps });
for (const stp of ["simple/1", "simple/2", "auth", "plain"]) for (const amp of ["text/1", "text/2"]) {
const sealed = await sealMessage({ stp: registry.find("stp", stp), amp: registry.find("amp", amp), message: { text: "hello bob" }, sender: alice, recipients: [bob.card], hashDestination: stp==="simple/2" });
const o = await openMessage(registry, sealed, { identity: bob, trusted: [alice.card] });
console.log(stp, amp, sealed.length, o.message, o.sender?.address, o.sender?.trusted, o.warnings);
try { await openMessage(registry, sealed, { identity: carol }); console.log("carol opened!") } catch (e) { console.log((e as MissiveError).code, (e as Error).message); }
}
const t0 = performance.now(); let n = 0;
const stp = registry.find("stp", "simple"), amp = registry.find("amp", "text/1");
while (performance.now() - t0 < 2000) { const s = await sealMessage({ stp, amp, message: { text: "x".repeat(100) }, sender: alice, recipients: [bob.card] }); await openMessage(registry, s, { identity: bob, trusted: [alice.card] }); n++; }
console.log("seal+open/s", n / 2);
