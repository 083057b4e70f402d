/**
 * The crypto provider: one implementation of crypto/provider.ts's operations per
 * runtime, chosen by a table of measured figures (DESIGN §4, docs/BENCHMARKS.md "Crypto
 * paths") — WebCrypto, `node:crypto` or noble per operation family and input size, all
 * producing identical bytes — without running anything at start-up. `MISSIVE_CRYPTO=noble`,
 * `=webcrypto` or `=node` forces one path (tests run every vector through each);
 * `selfTest()` (and `missive selftest`) checks that the paths agree on this runtime.
 * @module
 */
import { equalBytes, utf8 } from "../core/bytes.ts";
import { nobleProvider } from "./noble.ts";
import { nodeCryptoProvider, nodeHasAead } from "./nodecrypto.ts";
import type { AeadAlgorithm, CryptoProvider } from "./provider.ts";
import { webcryptoProvider } from "./webcrypto.ts";
import { type Family, forcedPath, type Path, PATHS, runtimeName } from "./paths.ts";
import { nobleSha3, nodeSha3, nodeSha3Works, sha3 } from "./sha3.ts";

export type {
  AeadAlgorithm,
  AeadKey,
  CryptoProvider,
  HashAlgorithm,
  IncrementalHash,
} from "./provider.ts";
export { type Family, type Path, PATHS, runtimeName } from "./paths.ts";
export { nobleSha3, nodeSha3, nodeSha3Works, type Sha3, sha3 } from "./sha3.ts";
export { nobleProvider } from "./noble.ts";
export { nodeCryptoProvider } from "./nodecrypto.ts";
export { webcryptoProvider } from "./webcrypto.ts";
export {
  checkMlkemPublicKey,
  expandXwingSeed,
  MLKEM768_CIPHERTEXT_SIZE,
  MLKEM768_PUBLIC_KEY_SIZE,
  XWING_CIPHERTEXT_SIZE,
  XWING_ENCAPSULATION_SEED_SIZE,
  XWING_KEM_NAME,
  XWING_PUBLIC_KEY_SIZE,
  XWING_SEED_SIZE,
  xwingCombine,
  xwingEncapsulateSeeded,
} from "./xwing.ts";
export { ed25519KeyProblem, isWeakEd25519Point, x25519EncodingProblem } from "./keycheck.ts";

/** Below this many bytes an AEAD call is "small" (per-call cost dominates). */
const SMALL_AEAD_INPUT = 16 * 1024;
/** Below this many bytes a hash is "small". */
const SMALL_HASH_INPUT = 16 * 1024;

const PROVIDERS: Record<Path, CryptoProvider> = {
  webcrypto: webcryptoProvider,
  node: nodeCryptoProvider,
  noble: nobleProvider,
};

/** Which path serves each family here; for `missive plugins`, logs and benchmarks. */
export interface ProviderChoice {
  /** The provider `getCryptoProvider()` returns: each call routed to its family's path. */
  provider: CryptoProvider;
  /** The runtime the table was read for: `deno`, `bun` or `other`. */
  runtime: string;
  /**
   * The path serving each family, e.g. `"webcrypto < 16 KiB ≤ node"` for size-dependent
   * ones, or the forced path's name under `MISSIVE_CRYPTO`.
   */
  families: Record<Family, string>;
}

function choose(): ProviderChoice {
  const forced = forcedPath();
  const runtime = runtimeName();
  const table = PATHS[runtime];
  // A forced path serves every family it has; ChaCha and SHA-3 stay with whoever has them.
  const pick = (path: Path): CryptoProvider => forced ? PROVIDERS[forced] : PROVIDERS[path];
  const hashFor = (n: number) => pick(n < SMALL_HASH_INPUT ? table.hash.small : table.hash.bulk);
  const chacha = (alg: AeadAlgorithm) =>
    forced === "webcrypto" ? nobleProvider : pick(nodeHasAead(alg) ? table.chacha : "noble");
  const aeadFor = (alg: AeadAlgorithm, n: number) =>
    alg === "aes-256-gcm"
      ? pick(n < SMALL_AEAD_INPUT ? table["aes-gcm"].small : table["aes-gcm"].bulk)
      : alg === "chacha20-poly1305"
      ? chacha(alg)
      : nobleProvider;
  const e = pick(table.ed25519), x = pick(table.x25519), k = pick(table["ml-kem"]);
  const cbc = pick(table["aes-gcm"].bulk);
  const provider: CryptoProvider = {
    name: forced ?? `auto(${runtime})`,
    sha256: (data) => hashFor(data.length).sha256(data),
    sha512: (data) => hashFor(data.length).sha512(data),
    // Incremental hashes serve bulk data (whole files, SPEC §24).
    hasher: (algorithm) => pick(table.hash.incremental).hasher(algorithm),
    hmacSha256: (key, data) => hashFor(data.length).hmacSha256(key, data),
    hkdfSha256: (ikm, salt, info, length) =>
      hashFor(ikm.length).hkdfSha256(ikm, salt, info, length),
    aeadEncrypt: (alg, key, nonce, data, aad) =>
      aeadFor(alg, data.length).aeadEncrypt(alg, key, nonce, data, aad),
    aeadDecrypt: (alg, key, nonce, data, aad) =>
      aeadFor(alg, data.length).aeadDecrypt(alg, key, nonce, data, aad),
    // Bulk data (streams): the bulk path, whatever the chunk size.
    aeadKey: (alg, key) => aeadFor(alg, SMALL_AEAD_INPUT).aeadKey(alg, key),
    aesCbcEncrypt: (key, iv, data) => cbc.aesCbcEncrypt(key, iv, data),
    aesCbcDecrypt: (key, iv, data) => cbc.aesCbcDecrypt(key, iv, data),
    ed25519PublicKey: e.ed25519PublicKey,
    ed25519Sign: e.ed25519Sign,
    ed25519Verify: e.ed25519Verify,
    x25519PublicKey: x.x25519PublicKey,
    x25519: x.x25519,
    x25519Ephemeral: x.x25519Ephemeral,
    xwingPublicKey: k.xwingPublicKey,
    xwingEncapsulate: k.xwingEncapsulate,
    xwingDecapsulate: k.xwingDecapsulate,
  };
  const families: Record<Family, string> = forced
    ? {
      hash: forced,
      "aes-gcm": forced,
      chacha: forced === "webcrypto" ? "noble" : forced,
      ed25519: forced,
      x25519: forced,
      "ml-kem": forced,
      sha3: sha3().name,
    }
    : {
      hash:
        `${table.hash.small} < 16 KiB ≤ ${table.hash.bulk}, incremental ${table.hash.incremental}`,
      "aes-gcm": `${table["aes-gcm"].small} < 16 KiB ≤ ${table["aes-gcm"].bulk}`,
      chacha: nodeHasAead("chacha20-poly1305") ? table.chacha : "noble",
      ed25519: table.ed25519,
      x25519: table.x25519,
      "ml-kem": table["ml-kem"],
      sha3: sha3().name,
    };
  return { provider, runtime, families };
}

const SEED = new Uint8Array(32).map((_, i) => i + 1);
const PEER = new Uint8Array(32).map((_, i) => 200 - i);
const MESSAGE = utf8("missive provider self-test");

/** Each probe returns the bytes a provider computes for one family. */
const PROBES: Record<Exclude<Family, "sha3">, (p: CryptoProvider) => Promise<Uint8Array[]>> = {
  hash: async (p) => [
    ...(["sha512", "blake2b512"] as const).map((algorithm) => {
      const h = p.hasher(algorithm);
      h.update(MESSAGE.subarray(0, 5));
      h.update(MESSAGE.subarray(5));
      return h.digest();
    }),
    await p.sha256(MESSAGE),
    await p.sha512(MESSAGE),
    await p.hmacSha256(SEED, MESSAGE),
    await p.hkdfSha256(SEED, PEER, MESSAGE, 42),
  ],
  "aes-gcm": async (p) => {
    const sealed = await p.aeadEncrypt("aes-256-gcm", SEED, SEED.subarray(0, 12), MESSAGE, PEER);
    const opened = await p.aeadDecrypt("aes-256-gcm", SEED, SEED.subarray(0, 12), sealed, PEER);
    const key = await p.aeadKey("aes-256-gcm", SEED);
    const bulk = await key.encrypt(SEED.subarray(0, 12), new Uint8Array(70_000).fill(7), PEER);
    const cbc = await p.aesCbcEncrypt(SEED.subarray(0, 16), PEER.subarray(0, 16), MESSAGE);
    return [
      sealed,
      opened,
      bulk,
      cbc,
      await p.aesCbcDecrypt(SEED.subarray(0, 16), PEER.subarray(0, 16), cbc),
    ];
  },
  chacha: async (p) => {
    const sealed = await p.aeadEncrypt(
      "chacha20-poly1305",
      SEED,
      SEED.subarray(0, 12),
      MESSAGE,
      PEER,
    );
    return [
      sealed,
      await p.aeadDecrypt("chacha20-poly1305", SEED, SEED.subarray(0, 12), sealed, PEER),
    ];
  },
  ed25519: async (p) => {
    const pub = await p.ed25519PublicKey(SEED);
    const sig = await p.ed25519Sign(SEED, MESSAGE);
    if (!(await p.ed25519Verify(pub, MESSAGE, sig))) throw new Error("verify failed");
    if (await p.ed25519Verify(pub, PEER, sig)) throw new Error("verify accepted a forgery");
    return [pub, sig];
  },
  x25519: async (p) => {
    const pub = await p.x25519PublicKey(SEED);
    const shared = await p.x25519(SEED, await nobleProvider.x25519PublicKey(PEER));
    const fresh = await p.x25519Ephemeral(await nobleProvider.x25519PublicKey(PEER));
    const check = await nobleProvider.x25519(PEER, fresh.publicKey);
    return [pub, shared, equalBytes(check, fresh.shared) ? SEED : PEER];
  },
  "ml-kem": async (p) => {
    // Key generation from a seed, and a fresh encapsulation opened by noble: the
    // encapsulation draws its own randomness, so only the round trip can be compared.
    const pub = await p.xwingPublicKey(SEED);
    const fresh = await p.xwingEncapsulate(pub);
    const opened = await nobleProvider.xwingDecapsulate(SEED, fresh.ciphertext);
    return [pub, equalBytes(opened, fresh.shared) ? SEED : PEER];
  },
};

/** One line of a self-test: a path, a family, and whether it agreed with noble. */
export interface SelfTestResult {
  path: Path | "auto";
  family: Family;
  ok: boolean;
  detail?: string;
}

/**
 * Runs the same fixed inputs through every path (and the chosen provider) and compares
 * each with noble, the portable reference: what the table picks must give identical
 * bytes. For `missive selftest` and the test suite; nothing runs this at start-up.
 */
export async function selfTest(): Promise<SelfTestResult[]> {
  const out: SelfTestResult[] = [];
  const auto = (await providerChoice()).provider;
  for (const family of Object.keys(PROBES) as Exclude<Family, "sha3">[]) {
    const reference = await PROBES[family](nobleProvider);
    for (
      const [path, p] of [...Object.entries(PROVIDERS), ["auto", auto]] as [
        Path | "auto",
        CryptoProvider,
      ][]
    ) {
      if (path === "noble") continue;
      try {
        const got = await PROBES[family](p);
        const ok = got.length === reference.length &&
          got.every((b, i) => equalBytes(b, reference[i]));
        out.push({ path, family, ok, detail: ok ? undefined : "different bytes" });
      } catch (e) {
        // A path may lack a family (WebCrypto has no ChaCha): the table never picks it then.
        const lacking = path === "webcrypto" && family === "chacha";
        out.push({ path, family, ok: lacking, detail: (e as Error).message });
      }
    }
  }
  // SHA-3 is no provider operation (X-Wing's own hash): node:crypto's against noble's.
  const sha3Probe = (h: typeof nobleSha3) => [h.sha3_256(MESSAGE), h.shake256(MESSAGE, 96)];
  if (nodeSha3Works()) {
    const ok = sha3Probe(nodeSha3).every((b, i) => equalBytes(b, sha3Probe(nobleSha3)[i]));
    out.push({ path: "node", family: "sha3", ok, detail: ok ? undefined : "different bytes" });
  }
  return out;
}

let chosen: Promise<ProviderChoice> | undefined;

/** The provider choice, made once per process from the table (no probing). */
export function providerChoice(): Promise<ProviderChoice> {
  try {
    chosen ??= Promise.resolve(choose());
  } catch (e) {
    return Promise.reject(e);
  }
  return chosen;
}

/**
 * The crypto provider for this runtime: per operation the fastest path measured here
 * (WebCrypto, node:crypto or noble), identical bytes whichever serves.
 *
 * @example
 * ```ts
 * import { getCryptoProvider } from "./mod.ts";
 * const provider = await getCryptoProvider();
 * import assert from "node:assert/strict";
 * const digest = await provider.sha256(new TextEncoder().encode("abc"));
 * assert.equal(digest.length, 32);
 * ```
 */
export async function getCryptoProvider(): Promise<CryptoProvider> {
  return (await providerChoice()).provider;
}
