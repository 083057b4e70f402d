/**
 * Incremental hashes, for data read in pieces (detached signatures over large files, SPEC
 * §24): SHA-512 (FIPS 180-4) and BLAKE2b-512 (RFC 7693, minisign's prehash). WebCrypto's
 * `digest` takes one buffer only, so the native path is the runtime's `node:crypto`
 * `createHash` (native code in Deno and Bun: 4.5× noble's SHA-512 in `missive sign`,
 * docs/BENCHMARKS.md; same bytes, checked against noble once per algorithm before first
 * use); noble is the portable path and the fallback.
 * @module
 */
import { nodeCrypto } from "./_node.ts";
import { blake2b } from "@noble/hashes/blake2.js";
import { sha512 } from "@noble/hashes/sha2.js";
import { type Bytes, equalBytes, utf8 } from "../core/bytes.ts";
import type { HashAlgorithm, IncrementalHash } from "./provider.ts";

/** noble's incremental hash. */
export function nobleHasher(algorithm: HashAlgorithm): IncrementalHash {
  const h = algorithm === "sha512" ? sha512.create() : blake2b.create({ dkLen: 64 });
  return {
    update(data) {
      h.update(data);
    },
    digest: () => h.digest() as Bytes,
  };
}

const NODE_NAMES: Record<HashAlgorithm, string> = { sha512: "sha512", blake2b512: "blake2b512" };
const PROBE = utf8("missive incremental hash self-test");
const nativeWorks = new Map<HashAlgorithm, boolean>();

function probeNative(algorithm: HashAlgorithm): boolean {
  let ok = nativeWorks.get(algorithm);
  if (ok === undefined) {
    try {
      const native = nodeCrypto().createHash(NODE_NAMES[algorithm]);
      native.update(PROBE.subarray(0, 7));
      native.update(PROBE.subarray(7));
      const portable = nobleHasher(algorithm);
      portable.update(PROBE);
      ok = equalBytes(new Uint8Array(native.digest()), portable.digest());
    } catch {
      ok = false;
    }
    nativeWorks.set(algorithm, ok);
  }
  return ok;
}

/** The runtime's native incremental hash when it gives noble's bytes, else noble's. */
export function nativeHasher(algorithm: HashAlgorithm): IncrementalHash {
  if (!probeNative(algorithm)) return nobleHasher(algorithm);
  const h = nodeCrypto().createHash(NODE_NAMES[algorithm]);
  return {
    update(data) {
      h.update(data);
    },
    digest: () => new Uint8Array(h.digest()) as Bytes,
  };
}
