/**
 * The built-in STPs (DESIGN §4), and `defaultRegistry`: every built-in STP and AMP.
 * @module
 */
import { builtinAmps } from "../amp/mod.ts";
import { Registry } from "../plugin/registry.ts";
import type { AnyStp } from "../plugin/types.ts";
import { ageV1 } from "./age/mod.ts";
import { authV1 } from "./auth.ts";
import { groupV1, groupV2 } from "./group/mod.ts";
import { plainV1 } from "./plain.ts";
import { pskV1, pskV2 } from "./psk/mod.ts";
import { ratchetV1 } from "./ratchet/mod.ts";
import { simpleV1, simpleV2, simpleV3 } from "./simple.ts";

export { AGE_TYPE, ageV1 } from "./age/mod.ts";
export { AUTH_TYPE, authV1 } from "./auth.ts";
export { GROUP_TYPE, groupV1, groupV2 } from "./group/mod.ts";
export { PLAIN_TYPE, plainV1 } from "./plain.ts";
export { PSK_TYPE, pskV1, pskV2 } from "./psk/mod.ts";
export { RATCHET_TYPE, ratchetV1 } from "./ratchet/mod.ts";
export { SIMPLE_TYPE, simpleV1, simpleV2, simpleV3 } from "./simple.ts";

/** Every built-in STP. */
export function builtinStps(): AnyStp[] {
  return [
    simpleV1,
    simpleV2,
    simpleV3,
    groupV1,
    groupV2,
    authV1,
    pskV1,
    pskV2,
    plainV1,
    ageV1,
    ratchetV1,
  ];
}

/**
 * A fresh registry holding every built-in STP and AMP (`builtinStps()`, `builtinAmps()`).
 * Not in it: `smime` (it needs X.509: `./smime`) and `session` (live sessions only).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defaultRegistry } from "../mod.ts";
 * const { stps, amps } = defaultRegistry().list();
 * assert.deepEqual(
 *   stps.map((p) => `${p.name}/v${p.version}`),
 *   [
 *     "simple/v1", "simple/v2", "simple/v3", "group/v1", "group/v2", "auth/v1", "psk/v1",
 *     "psk/v2", "plain/v1", "age/v1", "ratchet/v1",
 *   ],
 * );
 * assert.ok(amps.some((p) => p.name === "text"));
 * assert.throws(() => defaultRegistry().stp(1, 1), { code: "unknown-protocol" }); // smime
 * ```
 */
export function defaultRegistry(): Registry {
  return new Registry().register(...builtinStps(), ...builtinAmps());
}
