/**
 * `deno bench --allow-all bench/group_bench.ts`: group STP (SPEC §19) with 100 and 1,000
 * recipients: seal, open by a recipient (hints, hidden) and the not-a-recipient refusal.
 * For 10 to 10,000 recipients in one table see bench/group_scale.ts.
 */
import {
  createIdentity,
  defaultRegistry,
  getCryptoProvider,
  openMessage,
  sealMessage,
  textV1,
} from "../mod.ts";

const registry = defaultRegistry();
const crypto = await getCryptoProvider();
const group = registry.find("stp", "group");
const caps = { stps: [[3, 1]] as const, amps: [[1, 1]] as const };
const make = (i: number) => createIdentity(crypto, { address: `m${i}@example.org`, ...caps });
const alice = await make(-1);
const outsider = await make(-2);
const members = await Promise.all(Array.from({ length: 1000 }, (_, i) => make(i)));
const message = { text: "x".repeat(100) };

for (const n of [100, 1000]) {
  const recipients = members.slice(0, n).map((m) => m.card);
  const me = members[Math.floor(n / 2)];
  for (const hideRecipients of [false, true]) {
    const mode = hideRecipients ? "hidden" : "hints";
    const seal = () =>
      sealMessage({ stp: group, amp: textV1, message, sender: alice, recipients, hideRecipients });
    const sealed = await seal();
    const benchGroup = `group ${n} ${mode}`;
    Deno.bench(`group seal to ${n} (${mode})`, { group: benchGroup, baseline: true }, async () => {
      await seal();
    });
    Deno.bench(`group open by a recipient of ${n} (${mode})`, { group: benchGroup }, async () => {
      await openMessage(sealed, { registry, identity: me, trusted: [alice.card] });
    });
    Deno.bench(
      `group refusal of an outsider of ${n} (${mode})`,
      { group: benchGroup },
      async () => {
        await openMessage(sealed, { registry, identity: outsider }).then(
          () => {
            throw new Error("an outsider opened it");
          },
          (e) => {
            if (e.code !== "not-a-recipient") throw e;
          },
        );
      },
    );
  }
}
