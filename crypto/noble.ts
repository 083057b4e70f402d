/**
 * The portable provider: pure JavaScript from @noble (audited, constant-time where it
 * matters). Used wherever the runtime's WebCrypto lacks an algorithm.
 * @module
 */
import { chacha20poly1305, xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { ed25519, x25519 } from "@noble/curves/ed25519.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256, sha512 } from "@noble/hashes/sha2.js";
import { type Bytes, randomBytes, wipe } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import { isWeakEd25519Point } from "./keycheck.ts";
import { nobleHasher } from "./hasher.ts";
import type { AeadAlgorithm, CryptoProvider } from "./provider.ts";
import {
  checkLength,
  nobleXwing,
  XWING_CIPHERTEXT_SIZE,
  XWING_PUBLIC_KEY_SIZE,
  XWING_SEED_SIZE,
} from "./xwing.ts";

/**
 * noble's AES, loaded on first use: its module builds the AES tables when evaluated
 * (7–17 ms in the compiled binary), which a command on node:crypto or WebCrypto AES never
 * needs (issue 12).
 */
function nobleAes(): Promise<typeof import("@noble/ciphers/aes.js")> {
  return nobleAesModule ??= import("@noble/ciphers/aes.js");
}
let nobleAesModule: Promise<typeof import("@noble/ciphers/aes.js")> | undefined;

async function cipherFor(
  alg: AeadAlgorithm,
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
) {
  switch (alg) {
    case "aes-256-gcm":
      return (await nobleAes()).gcm(key, nonce, aad);
    case "chacha20-poly1305":
      return chacha20poly1305(key, nonce, aad);
    case "xchacha20-poly1305":
      return xchacha20poly1305(key, nonce, aad);
  }
}

const ALL_ZERO = new Uint8Array(32);

/** Refuses what AES-CBC cannot take, before any key expansion (typed errors, not noble's). */
export function checkCbcInputs(key: Uint8Array, iv: Uint8Array, ciphertext?: Uint8Array): void {
  if (key.length !== 16 && key.length !== 32) {
    throw new MissiveError("internal", `aes-cbc: key must be 16 or 32 bytes, got ${key.length}`);
  }
  if (iv.length !== 16) throw new MissiveError("internal", "aes-cbc: IV must be 16 bytes");
  if (ciphertext && (ciphertext.length === 0 || ciphertext.length % 16 !== 0)) {
    throw new MissiveError("malformed", "aes-cbc: ciphertext is not a whole number of blocks");
  }
}

/** The noble provider. */
export const nobleProvider: CryptoProvider = {
  name: "noble",
  sha256: (data) => Promise.resolve(sha256(data) as Bytes),
  sha512: (data) => Promise.resolve(sha512(data) as Bytes),
  hasher: nobleHasher,
  hmacSha256: (key, data) => Promise.resolve(hmac(sha256, key, data) as Bytes),
  hkdfSha256: (ikm, salt, info, length) =>
    Promise.resolve(hkdf(sha256, ikm, salt, info, length) as Bytes),
  async aeadEncrypt(alg, key, nonce, plaintext, aad) {
    return (await cipherFor(alg, key, nonce, aad)).encrypt(plaintext) as Bytes;
  },
  async aeadDecrypt(alg, key, nonce, ciphertext, aad) {
    const cipher = await cipherFor(alg, key, nonce, aad);
    try {
      return cipher.decrypt(ciphertext) as Bytes;
    } catch {
      throw new MissiveError("auth-failed", `${alg}: authentication failed`);
    }
  },
  aeadKey(alg, key) {
    const k = new Uint8Array(key);
    return Promise.resolve({
      algorithm: alg,
      encrypt: (nonce, plaintext, aad) => nobleProvider.aeadEncrypt(alg, k, nonce, plaintext, aad),
      decrypt: (nonce, ciphertext, aad) =>
        nobleProvider.aeadDecrypt(alg, k, nonce, ciphertext, aad),
    });
  },
  async aesCbcEncrypt(key, iv, plaintext) {
    checkCbcInputs(key, iv);
    return (await nobleAes()).cbc(key, iv).encrypt(plaintext) as Bytes;
  },
  async aesCbcDecrypt(key, iv, ciphertext) {
    checkCbcInputs(key, iv, ciphertext);
    const { cbc } = await nobleAes();
    try {
      return cbc(key, iv).decrypt(ciphertext) as Bytes;
    } catch {
      throw new MissiveError("malformed", "aes-cbc: invalid padding");
    }
  },
  ed25519PublicKey: (seed) => Promise.resolve(ed25519.getPublicKey(seed) as Bytes),
  ed25519Sign: (seed, message) => Promise.resolve(ed25519.sign(message, seed) as Bytes),
  ed25519Verify(publicKey, message, signature) {
    // noble's strict mode refuses non-canonical A and R and small-order A, not small-order R.
    if (signature.length !== 64 || isWeakEd25519Point(publicKey)) return Promise.resolve(false);
    if (isWeakEd25519Point(signature.subarray(0, 32))) return Promise.resolve(false);
    try {
      return Promise.resolve(ed25519.verify(signature, message, publicKey, { zip215: false }));
    } catch {
      return Promise.resolve(false);
    }
  },
  x25519PublicKey: (privateKey) => Promise.resolve(x25519.getPublicKey(privateKey) as Bytes),
  x25519(privateKey, publicKey) {
    let shared: Uint8Array;
    try {
      shared = x25519.getSharedSecret(privateKey, publicKey);
    } catch (e) {
      return Promise.reject(
        new MissiveError("auth-failed", `x25519: invalid public key (${(e as Error).message})`),
      );
    }
    // RFC 7748 §6.1: an all-zero output means a low-order point; refuse it.
    let diff = 0;
    for (let i = 0; i < 32; i++) diff |= shared[i] ^ ALL_ZERO[i];
    if (diff === 0) {
      return Promise.reject(new MissiveError("auth-failed", "x25519: low-order public key"));
    }
    return Promise.resolve(shared as Bytes);
  },
  async x25519Ephemeral(peerPublicKey) {
    const privateKey = randomBytes(32);
    try {
      const publicKey = x25519.getPublicKey(privateKey) as Bytes;
      return { publicKey, shared: await nobleProvider.x25519(privateKey, peerPublicKey) };
    } finally {
      wipe(privateKey);
    }
  },
  async xwingPublicKey(seed) {
    checkLength(seed, XWING_SEED_SIZE, "seed");
    return (await nobleXwing()).ml_kem768_x25519.getPublicKey(seed) as Bytes;
  },
  async xwingEncapsulate(publicKey) {
    checkLength(publicKey, XWING_PUBLIC_KEY_SIZE, "public key");
    const { ml_kem768_x25519 } = await nobleXwing();
    try {
      const { cipherText, sharedSecret } = ml_kem768_x25519.encapsulate(publicKey);
      return { ciphertext: cipherText as Bytes, shared: sharedSecret as Bytes };
    } catch (e) {
      throw new MissiveError("key", `x-wing: invalid public key (${(e as Error).message})`);
    }
  },
  async xwingDecapsulate(seed, ciphertext) {
    checkLength(seed, XWING_SEED_SIZE, "seed");
    checkLength(ciphertext, XWING_CIPHERTEXT_SIZE, "ciphertext");
    const { ml_kem768_x25519 } = await nobleXwing();
    try {
      return ml_kem768_x25519.decapsulate(ciphertext, seed) as Bytes;
    } catch (e) {
      // noble throws only for an X25519 part whose shared secret is all-zero (low order).
      throw new MissiveError(
        "auth-failed",
        `x-wing: low-order X25519 ciphertext (${(e as Error).message})`,
      );
    }
  },
};
