import { createIdentity, defaultRegistry, getCryptoProvider, openMessage, sealMessage, decodeCard } from "./mod.ts";
const crypto = await getCryptoProvider();
const registry = defaultRegistry();
const caps = { stps: [[2, 2]] as const, amps: [[1, 1]] as const };
const alice = await createIdentity(crypto, { address: "alice@example.org", ...caps });
const bob = await createIdentity(crypto, { address: "bob@example.org", ...caps });
const stp = registry.find("stp", "simple"), amp = registry.find("amp", "text/1");
const msg = { text: "x".repeat(100) };
let s = await sealMessage({ stp, amp, message: msg, sender: alice, recipients: [bob.card] });
async function time(name: string, f: () => Promise<unknown>) { const t0 = performance.now(); let k = 0; while (performance.now() - t0 < 1000) { await f(); k++; } console.log(name, k, "/s", (1000/k).toFixed(3), "ms"); }
await time("seal", () => sealMessage({ stp, amp, message: msg, sender: alice, recipients: [bob.card] }));
await time("open", () => openMessage(registry, s, { identity: bob, trusted: [alice.card] }));
await time("decodeCard", () => decodeCard(crypto, alice.card.bytes));
await time("x25519 pub rnd", () => crypto.x25519PublicKey(globalThis.crypto.getRandomValues(new Uint8Array(32))));
await time("x25519 bob", () => crypto.x25519(bob.agreementKey, alice.card.agreementKey));
await time("sign", () => crypto.ed25519Sign(alice.signingSeed, new Uint8Array(300)));
