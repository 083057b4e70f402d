/**
 * The `smime` STP as the CLI registers it: stp/smime/mod.ts (pkijs, asn1js) is loaded on
 * first use, so a command that never meets S/MIME never evaluates it (issue 12).
 * @module
 */
import type { StpPlugin } from "../plugin/types.ts";
import { SMIME_DESCRIPTOR } from "../stp/smime/descriptor.ts";
import type { SmimeOptions } from "../stp/smime/mod.ts";

const load = async () => (await import("../stp/smime/mod.ts")).smimeV1;

/** The same plugin as `smimeV1`, loading its implementation on first use. */
export const lazySmimeV1: StpPlugin<SmimeOptions> = {
  ...SMIME_DESCRIPTOR,
  parseOptions: async (pairs) => (await load()).parseOptions!(pairs),
  seal: async (inner, ctx) => (await load()).seal(inner, ctx),
  open: async (payload, ctx) => (await load()).open(payload, ctx),
};
