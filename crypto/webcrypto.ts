/**
 * The native provider: the runtime's WebCrypto (`crypto.subtle`). Imported key handles
 * are cached per key array (a WeakMap), so a long-lived identity key is imported once.
 * Which of these functions are actually used is decided by `crypto/mod.ts` at start-up.
 * @module
 */
import { type Bytes, concatBytes, copyBytes, fromBase64, fromHex, wipe } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import { isWeakEd25519Point } from "./keycheck.ts";
import { nobleHasher } from "./hasher.ts";
import { checkCbcInputs, nobleProvider } from "./noble.ts";
import type { CryptoProvider } from "./provider.ts";
import {
  checkLength,
  expandXwingSeed,
  MLKEM768_CIPHERTEXT_SIZE,
  MLKEM768_PUBLIC_KEY_SIZE,
  splitXwing,
  XWING_CIPHERTEXT_SIZE,
  XWING_PUBLIC_KEY_SIZE,
  XWING_SEED_SIZE,
  xwingCombine,
} from "./xwing.ts";

const subtle = globalThis.crypto?.subtle;

// PKCS #8 wrappers for raw 32-byte private keys (RFC 8410 §7): WebCrypto imports
// private CFRG keys only as PKCS #8 or JWK.
const ED25519_PKCS8 = fromHex("302e020100300506032b657004220420")!;
const X25519_PKCS8 = fromHex("302e020100300506032b656e04220420")!;
/** The X25519 base point u = 9 (RFC 7748 §4.1), to compute public keys by ECDH. */
const X25519_BASE = (() => {
  const b = new Uint8Array(32);
  b[0] = 9;
  return b;
})();

// Only asymmetric keys are cached: they are long-lived (identities, cards), while
// symmetric keys are per message. A cached key array must not be reused for other bytes.
type KeyKind = "ed-priv" | "ed-pub" | "x-priv" | "x-pub";
const cache: Record<KeyKind, WeakMap<Uint8Array, CryptoKey>> = {
  "ed-priv": new WeakMap(),
  "ed-pub": new WeakMap(),
  "x-priv": new WeakMap(),
  "x-pub": new WeakMap(),
};

async function importCached(
  kind: KeyKind,
  key: Uint8Array,
  make: (bytes: Bytes) => Promise<CryptoKey>,
): Promise<CryptoKey> {
  const hit = cache[kind].get(key);
  if (hit) return hit;
  const handle = await make(copyBytes(key));
  cache[kind].set(key, handle);
  return handle;
}

const edPrivate = (seed: Uint8Array) =>
  importCached(
    "ed-priv",
    seed,
    (b) =>
      subtle.importKey("pkcs8", concatBytes(ED25519_PKCS8, b), { name: "Ed25519" }, false, [
        "sign",
      ]),
  );
const edPublic = (pub: Uint8Array) =>
  importCached(
    "ed-pub",
    pub,
    (b) => subtle.importKey("raw", b, { name: "Ed25519" }, false, ["verify"]),
  );
const xPrivate = (priv: Uint8Array) =>
  importCached(
    "x-priv",
    priv,
    (b) =>
      subtle.importKey("pkcs8", concatBytes(X25519_PKCS8, b), { name: "X25519" }, false, [
        "deriveBits",
      ]),
  );
const xPublic = (pub: Uint8Array) =>
  importCached("x-pub", pub, (b) => subtle.importKey("raw", b, { name: "X25519" }, false, []));

function aesKey(key: Uint8Array) {
  return subtle.importKey("raw", copyBytes(key), { name: "AES-GCM" }, false, [
    "encrypt",
    "decrypt",
  ]);
}

function aesCbcKey(key: Uint8Array) {
  return subtle.importKey("raw", copyBytes(key), { name: "AES-CBC" }, false, [
    "encrypt",
    "decrypt",
  ]);
}

/** X25519 with an imported private key; refuses low-order results (RFC 7748 §6.1). */
async function agree(privateKey: CryptoKey, publicKey: Uint8Array): Promise<Bytes> {
  let bits: ArrayBuffer;
  try {
    bits = await subtle.deriveBits(
      { name: "X25519", public: await xPublic(publicKey) },
      privateKey,
      256,
    );
  } catch (e) {
    // Runtimes refuse low-order points (all-zero output) with an OperationError.
    throw new MissiveError("auth-failed", `x25519: invalid public key (${(e as Error).message})`);
  }
  const shared = new Uint8Array(bits);
  if (shared.every((x) => x === 0)) {
    throw new MissiveError("auth-failed", "x25519: low-order public key");
  }
  return shared;
}

async function x25519(privateKey: Uint8Array, publicKey: Uint8Array): Promise<Bytes> {
  return await agree(await xPrivate(privateKey), publicKey);
}

/** The WebCrypto provider (ChaCha AEADs delegate to noble). */
export const webcryptoProvider: CryptoProvider = {
  name: "webcrypto",
  // digest() copies its input when called; only views of other buffer kinds need a copy.
  sha256: async (data) =>
    new Uint8Array(
      await subtle.digest(
        "SHA-256",
        data.buffer instanceof ArrayBuffer ? data as Bytes : copyBytes(data),
      ),
    ),
  sha512: async (data) => new Uint8Array(await subtle.digest("SHA-512", copyBytes(data))),
  // WebCrypto has no incremental digest: noble's (the node path has the native one).
  hasher: nobleHasher,
  async hmacSha256(key, data) {
    const k = await subtle.importKey(
      "raw",
      copyBytes(key),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
    return new Uint8Array(await subtle.sign("HMAC", k, copyBytes(data)));
  },
  async hkdfSha256(ikm, salt, info, length) {
    const k = await subtle.importKey("raw", copyBytes(ikm), "HKDF", false, ["deriveBits"]);
    const bits = await subtle.deriveBits(
      { name: "HKDF", hash: "SHA-256", salt: copyBytes(salt), info: copyBytes(info) },
      k,
      length * 8,
    );
    return new Uint8Array(bits);
  },
  async aeadEncrypt(alg, key, nonce, plaintext, aad) {
    // WebCrypto has no ChaCha20-Poly1305: those come from noble even in this provider.
    if (alg !== "aes-256-gcm") {
      return await nobleProvider.aeadEncrypt(alg, key, nonce, plaintext, aad);
    }
    const out = await subtle.encrypt(
      { name: "AES-GCM", iv: copyBytes(nonce), additionalData: copyBytes(aad), tagLength: 128 },
      await aesKey(key),
      plaintext as Bytes,
    );
    return new Uint8Array(out);
  },
  async aeadDecrypt(alg, key, nonce, ciphertext, aad) {
    if (alg !== "aes-256-gcm") {
      return await nobleProvider.aeadDecrypt(alg, key, nonce, ciphertext, aad);
    }
    try {
      const out = await subtle.decrypt(
        { name: "AES-GCM", iv: copyBytes(nonce), additionalData: copyBytes(aad), tagLength: 128 },
        await aesKey(key),
        ciphertext as Bytes,
      );
      return new Uint8Array(out);
    } catch {
      throw new MissiveError("auth-failed", `${alg}: authentication failed`);
    }
  },
  async aeadKey(alg, key) {
    if (alg !== "aes-256-gcm") return await nobleProvider.aeadKey(alg, key);
    const handle = await aesKey(key);
    // WebCrypto copies its inputs when called (WebCrypto §14.3.1, "get a copy of the
    // bytes"), so views into the caller's buffers are passed as they are: no copies here.
    const params = (nonce: Uint8Array, aad: Uint8Array): AesGcmParams => ({
      name: "AES-GCM",
      iv: nonce as Bytes,
      additionalData: aad as Bytes,
      tagLength: 128,
    });
    return {
      algorithm: alg,
      encrypt: async (nonce, plaintext, aad) =>
        new Uint8Array(await subtle.encrypt(params(nonce, aad), handle, plaintext as Bytes)),
      async decrypt(nonce, ciphertext, aad) {
        try {
          return new Uint8Array(
            await subtle.decrypt(params(nonce, aad), handle, ciphertext as Bytes),
          );
        } catch {
          throw new MissiveError("auth-failed", `${alg}: authentication failed`);
        }
      },
    };
  },
  async aesCbcEncrypt(key, iv, plaintext) {
    checkCbcInputs(key, iv);
    // WebCrypto's AES-CBC always applies PKCS #7 padding (WebCrypto §27.4).
    const out = await subtle.encrypt(
      { name: "AES-CBC", iv: copyBytes(iv) },
      await aesCbcKey(key),
      copyBytes(plaintext),
    );
    return new Uint8Array(out);
  },
  async aesCbcDecrypt(key, iv, ciphertext) {
    checkCbcInputs(key, iv, ciphertext);
    try {
      const out = await subtle.decrypt(
        { name: "AES-CBC", iv: copyBytes(iv) },
        await aesCbcKey(key),
        copyBytes(ciphertext),
      );
      return new Uint8Array(out);
    } catch {
      throw new MissiveError("malformed", "aes-cbc: invalid padding");
    }
  },
  async ed25519PublicKey(seed) {
    // Export as JWK: the runtime computes the public point `x` from the seed.
    const k = await subtle.importKey(
      "pkcs8",
      concatBytes(ED25519_PKCS8, seed),
      { name: "Ed25519" },
      true,
      ["sign"],
    );
    const jwk = await subtle.exportKey("jwk", k);
    const x = jwk.x ? decodeJwkBase64(jwk.x) : undefined;
    if (!x || x.length !== 32) throw new MissiveError("internal", "webcrypto: no Ed25519 x");
    return x;
  },
  async ed25519Sign(seed, message) {
    return new Uint8Array(await subtle.sign("Ed25519", await edPrivate(seed), message as Bytes));
  },
  async ed25519Verify(publicKey, message, signature) {
    if (publicKey.length !== 32 || signature.length !== 64) return false;
    // Runtimes verify small-order keys (the trivial signature passes): refuse them first.
    if (isWeakEd25519Point(publicKey) || isWeakEd25519Point(signature.subarray(0, 32))) {
      return false;
    }
    try {
      return await subtle.verify(
        "Ed25519",
        await edPublic(publicKey),
        copyBytes(signature),
        message as Bytes,
      );
    } catch {
      return false;
    }
  },
  x25519PublicKey: (privateKey) => x25519(privateKey, X25519_BASE),
  x25519,
  async x25519Ephemeral(peerPublicKey) {
    // generateKey is a fixed-base multiplication, cheaper than importing random bytes
    // and multiplying the base point; the private key stays non-extractable.
    const pair = await subtle.generateKey({ name: "X25519" }, false, [
      "deriveBits",
    ]) as CryptoKeyPair;
    const publicKey = new Uint8Array(await subtle.exportKey("raw", pair.publicKey));
    const shared = await agree(pair.privateKey, peerPublicKey);
    return { publicKey, shared };
  },
  async xwingPublicKey(seed) {
    const k = await xwingKey(seed);
    return concatBytes(k.mlkemPublic, k.x25519Public);
  },
  async xwingEncapsulate(publicKey) {
    checkLength(publicKey, XWING_PUBLIC_KEY_SIZE, "public key");
    const pk = splitXwing(publicKey, MLKEM768_PUBLIC_KEY_SIZE);
    // The two halves run concurrently: each is a job on the runtime's crypto thread.
    const [encapsulated, x] = await Promise.all([
      mlkemPublic(publicKey).then((k) => mlkem.encapsulateBits(MLKEM, k)).catch((e) => {
        // Bun checks the key at import, Deno when encapsulating (FIPS 203 §7.2).
        throw new MissiveError(
          "key",
          `x-wing: invalid ML-KEM-768 public key (${(e as Error).message})`,
        );
      }),
      webcryptoProvider.x25519Ephemeral(pk.x25519).catch((e) => {
        throw new MissiveError(
          "key",
          `x-wing: invalid X25519 public key (${(e as Error).message})`,
        );
      }),
    ]);
    const mlkemShared = new Uint8Array(encapsulated.sharedKey);
    const shared = xwingCombine(mlkemShared, x.shared, x.publicKey, pk.x25519);
    wipe(mlkemShared);
    wipe(x.shared);
    return {
      ciphertext: concatBytes(new Uint8Array(encapsulated.ciphertext), x.publicKey),
      shared,
    };
  },
  async xwingDecapsulate(seed, ciphertext) {
    checkLength(ciphertext, XWING_CIPHERTEXT_SIZE, "ciphertext");
    const k = await xwingKey(seed);
    const ct = splitXwing(ciphertext, MLKEM768_CIPHERTEXT_SIZE);
    const [mlkemShared, x25519Shared] = await Promise.all([
      mlkem.decapsulateBits(MLKEM, k.mlkemPrivate, ct.mlkem as Bytes).then((b) =>
        new Uint8Array(b)
      ),
      x25519(k.x25519Private, ct.x25519),
    ]);
    const shared = xwingCombine(mlkemShared, x25519Shared, ct.x25519, k.x25519Public);
    wipe(mlkemShared);
    wipe(x25519Shared);
    return shared;
  },
};

// ---------------------------------------------------------------------------------------
// ML-KEM-768 (FIPS 203) through WebCrypto's KEM methods (WICG "Modern Algorithms in the
// Web Cryptography API": encapsulateBits, decapsulateBits, the raw-seed and raw-public
// formats, getPublicKey), which Deno and Bun ship; typed here as they are not in lib.dom.

interface KemSubtle {
  encapsulateBits(
    algorithm: { name: string },
    key: CryptoKey,
  ): Promise<{ sharedKey: ArrayBuffer; ciphertext: ArrayBuffer }>;
  decapsulateBits(algorithm: { name: string }, key: CryptoKey, ciphertext: Bytes): Promise<
    ArrayBuffer
  >;
  getPublicKey(key: CryptoKey, usages: string[]): Promise<CryptoKey>;
  importKey(
    format: "raw-seed" | "raw-public",
    data: Bytes,
    algorithm: { name: string },
    extractable: boolean,
    usages: string[],
  ): Promise<CryptoKey>;
  exportKey(format: "raw-public", key: CryptoKey): Promise<ArrayBuffer>;
}
const mlkem = subtle as unknown as KemSubtle;
const MLKEM = { name: "ML-KEM-768" };

/** An X-Wing seed's keys, made once per seed array (the seed of a long-lived identity). */
interface XwingKey {
  mlkemPrivate: CryptoKey;
  mlkemPublic: Bytes;
  /** Kept so the X25519 import cache (keyed by this array) serves every decapsulation. */
  x25519Private: Bytes;
  x25519Public: Bytes;
}
const xwingKeys = new WeakMap<Uint8Array, Promise<XwingKey>>();

function xwingKey(seed: Uint8Array): Promise<XwingKey> {
  const hit = xwingKeys.get(seed);
  if (hit) return hit;
  const made = (async () => {
    checkLength(seed, XWING_SEED_SIZE, "seed");
    const { mlkemSeed, x25519Key } = expandXwingSeed(seed);
    const mlkemPrivate = await mlkem.importKey("raw-seed", mlkemSeed, MLKEM, false, [
      "decapsulateBits",
    ]);
    wipe(mlkemSeed);
    const pub = await mlkem.getPublicKey(mlkemPrivate, ["encapsulateBits"]);
    return {
      mlkemPrivate,
      mlkemPublic: new Uint8Array(await mlkem.exportKey("raw-public", pub)),
      x25519Private: x25519Key,
      x25519Public: await x25519(x25519Key, X25519_BASE),
    };
  })();
  made.catch(() => xwingKeys.delete(seed));
  xwingKeys.set(seed, made);
  return made;
}

/** Imported ML-KEM public keys, per X-Wing public-key array (cards are long-lived). */
const mlkemPublicKeys = new WeakMap<Uint8Array, Promise<CryptoKey>>();

function mlkemPublic(xwingPublicKey: Uint8Array): Promise<CryptoKey> {
  const hit = mlkemPublicKeys.get(xwingPublicKey);
  if (hit) return hit;
  const made = mlkem.importKey(
    "raw-public",
    xwingPublicKey.slice(0, MLKEM768_PUBLIC_KEY_SIZE),
    MLKEM,
    false,
    ["encapsulateBits"],
  );
  made.catch(() => mlkemPublicKeys.delete(xwingPublicKey));
  mlkemPublicKeys.set(xwingPublicKey, made);
  return made;
}

function decodeJwkBase64(s: string): Bytes | undefined {
  return fromBase64(s, true);
}
