/**
 * SHA3-256 and SHAKE256 (FIPS 202), which X-Wing needs for its seed expansion and its
 * combiner: from `node:crypto` where the table (crypto/paths.ts) says so, else noble.
 * WebCrypto has no SHA-3. Both paths give the same bytes; the X-Wing vectors run through
 * each (tests/xwing_test.ts). Noble's SHA-3 runs cold in a fresh process (~7 ms for one
 * seed expansion in the compiled binary, issue 12), the runtime's native one in µs.
 * @module
 */
import { nodeCrypto } from "./_node.ts";
import { sha3_256, shake256 } from "@noble/hashes/sha3.js";
import type { Bytes } from "../core/bytes.ts";
import { forcedPath, PATHS, runtimeName } from "./paths.ts";

/** One SHA-3 implementation. */
export interface Sha3 {
  readonly name: "node" | "noble";
  sha3_256(data: Uint8Array): Bytes;
  shake256(data: Uint8Array, length: number): Bytes;
}

/** noble's SHA-3 (every runtime). */
export const nobleSha3: Sha3 = {
  name: "noble",
  sha3_256: (data) => sha3_256(data) as Bytes,
  shake256: (data, length) => shake256(data, { dkLen: length }) as Bytes,
};

const copy = (b: Uint8Array): Bytes => new Uint8Array(b);

/** `node:crypto`'s SHA-3 (where `nodeSha3Works()`; `node:crypto` loads on first use). */
export const nodeSha3: Sha3 = {
  name: "node",
  sha3_256: (data) => copy(nodeCrypto().createHash("sha3-256").update(data).digest()),
  shake256: (data, length) =>
    copy(nodeCrypto().createHash("shake256", { outputLength: length }).update(data).digest()),
};

let nodeWorks: boolean | undefined;

/** True when this runtime's `node:crypto` has SHA3-256 and SHAKE256 (checked once). */
export function nodeSha3Works(): boolean {
  if (nodeWorks !== undefined) return nodeWorks;
  try {
    const probe = nodeCrypto().createHash("shake256", { outputLength: 8 })
      .update(new Uint8Array(1)).digest();
    nodeCrypto().createHash("sha3-256");
    nodeWorks = probe.length === 8;
  } catch {
    nodeWorks = false;
  }
  return nodeWorks;
}

let chosen: Sha3 | undefined;

/** The SHA-3 this process uses: the table's path, or what `MISSIVE_CRYPTO` forces. */
export function sha3(): Sha3 {
  if (chosen) return chosen;
  const forced = forcedPath();
  const path = forced ?? PATHS[runtimeName()].sha3;
  // webcrypto has no SHA-3: forcing it (or noble) means noble here.
  return chosen = path === "node" && nodeSha3Works() ? nodeSha3 : nobleSha3;
}
