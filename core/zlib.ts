/**
 * `node:zlib`, loaded on first use. Evaluating it costs 2–3 ms in the compiled binary
 * (issue 12), and most commands never compress: the text AMP's version 2 and the smime
 * STP's CompressedData load it when they first need it. `createRequire` loads a built-in
 * synchronously in Deno, Bun and Node alike, which the AMP's synchronous codec needs.
 * @module
 */
import { createRequire } from "node:module";

let loaded: typeof import("node:zlib") | undefined;

/** The `node:zlib` module. */
export function zlib(): typeof import("node:zlib") {
  return loaded ??= createRequire(import.meta.url)("node:zlib") as typeof import("node:zlib");
}
