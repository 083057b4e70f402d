/**
 * The built-in STPs (DESIGN §4). Registering them is the registry's job.
 * @module
 */
import type { StpPlugin } from "../types.ts";
import { authStp } from "./auth.ts";
import { groupStp } from "./group/mod.ts";
import { plainStp } from "./plain.ts";
import { pskStp } from "./psk/mod.ts";
import { simpleStp } from "./simple.ts";

export { AUTH_TYPE, authStp } from "./auth.ts";
export { GROUP_TYPE, groupStp } from "./group/mod.ts";
export { PLAIN_TYPE, plainStp } from "./plain.ts";
export { PSK_TYPE, pskStp } from "./psk/mod.ts";
export { SIMPLE_TYPE, simpleStp } from "./simple.ts";

/** Every built-in STP. */
export function builtinStps(): StpPlugin[] {
  return [simpleStp(1), simpleStp(2), groupStp, authStp, pskStp(1), pskStp(2), plainStp];
}
