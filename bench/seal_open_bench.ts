/**
 * `deno bench --allow-all bench/`: the library's hot path. A 100-byte text message
 * sealed and opened with each STP, with the auto-detected provider and with noble only.
 */
import { nobleProvider } from "../crypto/mod.ts";
import {
  createIdentity,
  defaultRegistry,
  getCryptoProvider,
  openMessage,
  sealMessage,
  textV1,
} from "../mod.ts";

const registry = defaultRegistry();
const auto = await getCryptoProvider();
const caps = { stps: [[2, 2]] as const, amps: [[1, 1]] as const };
const alice = await createIdentity(auto, { address: "alice@example.org", ...caps });
const bob = await createIdentity(auto, { address: "bob@example.org", ...caps });
const message = { text: "x".repeat(100) };

for (const [label, crypto] of [["auto", auto], ["noble", nobleProvider]] as const) {
  for (const stpName of ["simple/2", "auth/1", "plain/1"]) {
    const stp = registry.find("stp", stpName);
    const seal = () =>
      sealMessage({ stp, amp: textV1, message, sender: alice, recipients: [bob.card], crypto });
    const sealed = await seal();
    const group = `${stpName} ${label}`;
    Deno.bench(`${stpName} seal+open (${label})`, { group, baseline: true }, async () => {
      await openMessage(await seal(), { registry, identity: bob, trusted: [alice.card], crypto });
    });
    Deno.bench(`${stpName} seal (${label})`, { group }, async () => {
      await seal();
    });
    Deno.bench(`${stpName} open (${label})`, { group }, async () => {
      await openMessage(sealed, { registry, identity: bob, trusted: [alice.card], crypto });
    });
  }
}
