/**
 * `node:crypto`, loaded on first use. Bun evaluates the module in about 2 ms, which a
 * one-shot command whose operations all run on WebCrypto never needs to pay (issue 12);
 * `createRequire` loads a built-in synchronously in Deno, Bun and Node alike.
 * @module
 */
import { createRequire } from "node:module";

let loaded: typeof import("node:crypto") | undefined;

/** The `node:crypto` module. */
export function nodeCrypto(): typeof import("node:crypto") {
  return loaded ??= createRequire(import.meta.url)("node:crypto") as typeof import("node:crypto");
}
