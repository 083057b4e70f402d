/**
 * The built-in STPs (DESIGN §4), and `defaultRegistry`: every built-in STP and AMP.
 * @module
 */
import { builtinAmps } from "../amp/mod.ts";
import { Registry } from "../plugin/registry.ts";
import type { AnyStp } from "../plugin/types.ts";
import { ageStp } from "./age/mod.ts";
import { authStp } from "./auth.ts";
import { groupStp, groupV2Stp } from "./group/mod.ts";
import { plainStp } from "./plain.ts";
import { pskStp } from "./psk/mod.ts";
import { ratchetStp } from "./ratchet/mod.ts";
import { simpleStp } from "./simple.ts";

export { AGE_TYPE, ageStp } from "./age/mod.ts";
export { AUTH_TYPE, authStp } from "./auth.ts";
export { GROUP_TYPE, groupStp, groupV2Stp } from "./group/mod.ts";
export { PLAIN_TYPE, plainStp } from "./plain.ts";
export { PSK_TYPE, pskStp } from "./psk/mod.ts";
export { RATCHET_TYPE, ratchetStp } from "./ratchet/mod.ts";
export { SIMPLE_TYPE, simpleStp } from "./simple.ts";

/** Every built-in STP. */
export function builtinStps(): AnyStp[] {
  return [
    simpleStp(1),
    simpleStp(2),
    simpleStp(3),
    groupStp,
    groupV2Stp,
    authStp,
    pskStp(1),
    pskStp(2),
    plainStp,
    ageStp,
    ratchetStp,
  ];
}

/**
 * A registry holding every built-in STP and AMP.
 *
 * @example
 * ```ts
 * import { defaultRegistry } from "../mod.ts";
 * const { stps } = defaultRegistry().list();
 * console.log(stps.map((p) => `${p.name}/v${p.version}`).join(" ")); // simple/v1 simple/v2 auth/v1 plain/v1
 * ```
 */
export function defaultRegistry(): Registry {
  return new Registry().register(...builtinStps(), ...builtinAmps());
}
