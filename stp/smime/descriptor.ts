/**
 * What the `smime` STP is, without its CMS code: its registry entry loads stp/smime/mod.ts
 * (pkijs, asn1js) on first use, so a command that never meets S/MIME never loads them
 * (issue 12: 2–4 ms of every command's start-up in the compiled binary). Its type,
 * version, name and properties are the ones stp/smime/mod.ts builds `smimeStp` from.
 * @module
 */
import type { StpPlugin } from "../../plugin/types.ts";
import type { SmimeOptions } from "./mod.ts";

/** STP type number of `smime`. */
export const SMIME_TYPE = 1;

/** The `smime` STP's registry entry apart from its operations. */
export const SMIME_DESCRIPTOR = {
  kind: "stp",
  type: SMIME_TYPE,
  version: 1,
  name: "smime",
  description: "X.509 S/MIME: CMS SignedData inside EnvelopedData/AuthEnvelopedData (openssl cms)",
  properties: {
    confidentiality: true,
    authentication: "signature",
    nonRepudiation: true,
    forwardSecrecy: false,
    multiRecipient: true,
    hiddenRecipients: false,
  },
} as const;

const load = async () => (await import("./mod.ts")).smimeStp;

/**
 * The `smime` STP, loading its implementation on first use: the same plugin as
 * `smimeStp` from stp/smime/mod.ts, for registries that should not load pkijs up front.
 */
export const lazySmimeStp: StpPlugin<SmimeOptions> = {
  ...SMIME_DESCRIPTOR,
  parseOptions: async (pairs) => (await load()).parseOptions!(pairs),
  seal: async (inner, ctx) => (await load()).seal(inner, ctx),
  open: async (payload, ctx) => (await load()).open(payload, ctx),
};
