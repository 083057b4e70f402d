/**
 * The built-in STPs (DESIGN §4). Registering them is the registry's job.
 * @module
 */
import type { StpPlugin } from "../types.ts";
import { authStp } from "./auth.ts";
import { plainStp } from "./plain.ts";
import { simpleStp } from "./simple.ts";

export { AUTH_TYPE, authStp } from "./auth.ts";
export { PLAIN_TYPE, plainStp } from "./plain.ts";
export { SIMPLE_TYPE, simpleStp } from "./simple.ts";

/** Every built-in STP. */
export function builtinStps(): StpPlugin[] {
  return [simpleStp(1), simpleStp(2), authStp, plainStp];
}
