/**
 * Picks the crypto provider once, at first use, by feature detection: for each algorithm
 * family it runs the same fixed input through WebCrypto and noble and uses WebCrypto only
 * if it answers and gives the identical bytes. `MISSIVE_CRYPTO=noble` or `=webcrypto`
 * forces one provider (tests run every vector through both).
 * @module
 */
import process from "node:process";
import { equalBytes, utf8 } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import { nobleProvider } from "./noble.ts";
import { nodeChachaKey, nodeChachaWorks } from "./nodecrypto.ts";
import type { AeadAlgorithm, CryptoProvider } from "./provider.ts";
import { webcryptoProvider } from "./webcrypto.ts";

export type { AeadAlgorithm, AeadKey, CryptoProvider } from "./provider.ts";
export { nobleProvider } from "./noble.ts";
export { webcryptoProvider } from "./webcrypto.ts";

type Family = "hash" | "aes-gcm" | "ed25519" | "x25519";

/** Below these input sizes noble beats WebCrypto's per-call overhead (measured). */
const SMALL_HASH_INPUT = 16 * 1024;
const SMALL_AEAD_INPUT = 2 * 1024;

const SEED = new Uint8Array(32).map((_, i) => i + 1);
const PEER = new Uint8Array(32).map((_, i) => 200 - i);
const MESSAGE = utf8("missive provider self-test");

/** Each probe returns the bytes a provider computes for one family. */
const PROBES: Record<Family, (p: CryptoProvider) => Promise<Uint8Array[]>> = {
  hash: async (p) => [
    await p.sha256(MESSAGE),
    await p.sha512(MESSAGE),
    await p.hmacSha256(SEED, MESSAGE),
    await p.hkdfSha256(SEED, PEER, MESSAGE, 42),
  ],
  "aes-gcm": async (p) => {
    const sealed = await p.aeadEncrypt("aes-256-gcm", SEED, SEED.subarray(0, 12), MESSAGE, PEER);
    const opened = await p.aeadDecrypt("aes-256-gcm", SEED, SEED.subarray(0, 12), sealed, PEER);
    const cbc = await p.aesCbcEncrypt(SEED.subarray(0, 16), PEER.subarray(0, 16), MESSAGE);
    return [
      sealed,
      opened,
      cbc,
      await p.aesCbcDecrypt(SEED.subarray(0, 16), PEER.subarray(0, 16), cbc),
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
    return [
      pub,
      shared,
      equalBytes(check, fresh.shared) ? SEED : PEER,
    ];
  },
};

async function worksNatively(family: Family): Promise<boolean> {
  try {
    if (!globalThis.crypto?.subtle) return false;
    const [native, portable] = await Promise.all([
      PROBES[family](webcryptoProvider),
      PROBES[family](nobleProvider),
    ]);
    return native.length === portable.length && native.every((b, i) => equalBytes(b, portable[i]));
  } catch {
    return false;
  }
}

/** Which provider serves each family; for `missive plugins`, logs and benchmarks. */
export interface ProviderChoice {
  provider: CryptoProvider;
  families: Record<Family, "webcrypto" | "noble">;
  /** Bulk ChaCha20-Poly1305 (`aeadKey`): node:crypto where it has it (Deno), else noble. */
  chacha: "node:crypto" | "noble";
}

async function detect(): Promise<ProviderChoice> {
  const forced = process.env.MISSIVE_CRYPTO;
  if (forced && forced !== "noble" && forced !== "webcrypto" && forced !== "auto") {
    throw new MissiveError(
      "usage",
      `MISSIVE_CRYPTO must be auto, noble or webcrypto, not ${forced}`,
    );
  }
  const families = {} as Record<Family, "webcrypto" | "noble">;
  for (const family of Object.keys(PROBES) as Family[]) {
    const native = forced === "noble" ? false : await worksNatively(family);
    if (forced === "webcrypto" && !native) {
      throw new MissiveError(
        "internal",
        `MISSIVE_CRYPTO=webcrypto, but this runtime lacks ${family}`,
      );
    }
    families[family] = native ? "webcrypto" : "noble";
  }
  const pick = (f: Family) => (families[f] === "webcrypto" ? webcryptoProvider : nobleProvider);
  const h = pick("hash"), a = pick("aes-gcm"), e = pick("ed25519"), x = pick("x25519");
  // WebCrypto calls cost ~70-100 µs of fixed overhead each in Deno, so for small inputs
  // noble is several times faster (docs/BENCHMARKS.md, "small inputs"); bulk data goes
  // native. Unless a provider is forced, route by size. Same bytes either way.
  const auto = forced !== "webcrypto";
  const hashFor = (n: number) => (auto && n < SMALL_HASH_INPUT ? nobleProvider : h);
  const gcmFor = (alg: AeadAlgorithm, n: number) =>
    alg !== "aes-256-gcm" || (auto && n < SMALL_AEAD_INPUT) ? nobleProvider : a;
  const chacha = forced !== "noble" && await nodeChachaWorks() ? "node:crypto" : "noble";
  const names = new Set(Object.values(families));
  const provider: CryptoProvider = {
    name: names.size === 1
      ? [...names][0]
      : `mixed(${Object.entries(families).map(([f, n]) => `${f}:${n}`).join(",")})`,
    sha256: (data) => hashFor(data.length).sha256(data),
    sha512: (data) => hashFor(data.length).sha512(data),
    hmacSha256: (key, data) => hashFor(data.length).hmacSha256(key, data),
    hkdfSha256: (...args) => (auto ? nobleProvider : h).hkdfSha256(...args),
    aeadEncrypt: (alg, key, nonce, data, aad) =>
      gcmFor(alg, data.length).aeadEncrypt(alg, key, nonce, data, aad),
    aeadDecrypt: (alg, key, nonce, data, aad) =>
      gcmFor(alg, data.length).aeadDecrypt(alg, key, nonce, data, aad),
    // Bulk data (streams): native whenever the runtime has it, whatever the chunk size.
    aeadKey: (alg, key) =>
      alg === "chacha20-poly1305" && chacha === "node:crypto"
        ? Promise.resolve(nodeChachaKey(key))
        : (alg === "aes-256-gcm" ? a : nobleProvider).aeadKey(alg, key),
    aesCbcEncrypt: (key, iv, data) =>
      (auto && data.length < SMALL_AEAD_INPUT ? nobleProvider : a).aesCbcEncrypt(key, iv, data),
    aesCbcDecrypt: (key, iv, data) =>
      (auto && data.length < SMALL_AEAD_INPUT ? nobleProvider : a).aesCbcDecrypt(key, iv, data),
    ed25519PublicKey: e.ed25519PublicKey,
    ed25519Sign: e.ed25519Sign,
    ed25519Verify: e.ed25519Verify,
    x25519PublicKey: x.x25519PublicKey,
    x25519: x.x25519,
    x25519Ephemeral: x.x25519Ephemeral,
  };
  return { provider, families, chacha };
}

let chosen: Promise<ProviderChoice> | undefined;

/** The provider choice, detected once per process. */
export function providerChoice(): Promise<ProviderChoice> {
  chosen ??= detect();
  return chosen;
}

/**
 * The crypto provider for this runtime: WebCrypto where it has the algorithm, noble
 * otherwise, identical bytes either way.
 *
 * @example
 * ```ts
 * import { getCryptoProvider } from "./mod.ts";
 * const provider = await getCryptoProvider();
 * const digest = await provider.sha256(new TextEncoder().encode("abc"));
 * console.log(digest.length); // 32
 * ```
 */
export async function getCryptoProvider(): Promise<CryptoProvider> {
  return (await providerChoice()).provider;
}
