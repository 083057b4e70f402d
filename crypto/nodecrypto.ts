/**
 * The `node:crypto` provider: the runtime's native OpenSSL-style ciphers and hashes where
 * they exist (AES-256-GCM, ChaCha20-Poly1305 in Deno, SHA-2, HMAC), noble for the rest.
 * It produces the same bytes as the other two providers; crypto/mod.ts uses it only for
 * the operations where a measurement in that runtime says it is the fastest (DESIGN §4:
 * Bun's AES-256-GCM is about twice its WebCrypto; Deno's node:crypto GCM is slower than
 * its WebCrypto but its ChaCha20-Poly1305 beats noble's), and the vector and Wycheproof
 * suites run through it like the others.
 * @module
 */
import {
  type CipherGCM,
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  type DecipherGCM,
  getCiphers,
} from "node:crypto";
import type { Bytes } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import { nobleProvider } from "./noble.ts";
import type { AeadAlgorithm, AeadKey, CryptoProvider } from "./provider.ts";

const TAG = 16;

/** The AEADs this runtime's node:crypto has (Bun's has no chacha20-poly1305). */
function nativeAeads(): Set<AeadAlgorithm> {
  const have = new Set<AeadAlgorithm>();
  try {
    const ciphers = new Set(getCiphers().map((c) => c.toLowerCase()));
    if (ciphers.has("aes-256-gcm") || ciphers.has("id-aes256-gcm")) have.add("aes-256-gcm");
    if (ciphers.has("chacha20-poly1305")) {
      // Listed is not always working: one call proves it.
      createCipheriv("chacha20-poly1305", new Uint8Array(32), new Uint8Array(12), {
        authTagLength: TAG,
      });
      have.add("chacha20-poly1305");
    }
  } catch {
    // Whatever fails is simply not native here.
  }
  return have;
}

let native: Set<AeadAlgorithm> | undefined;

/** True when node:crypto in this runtime has `alg`. */
export function nodeHasAead(alg: AeadAlgorithm): boolean {
  native ??= nativeAeads();
  return native.has(alg);
}

/** A fresh array over exactly `n` bytes that owns its buffer (WebCrypto typings want it). */
function owned(n: number): Bytes {
  return new Uint8Array(n);
}

function seal(
  alg: AeadAlgorithm,
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
): Bytes {
  const cipher = createCipheriv(alg as "aes-256-gcm", key, nonce, {
    authTagLength: TAG,
  }) as CipherGCM;
  cipher.setAAD(aad, { plaintextLength: plaintext.length });
  const body = cipher.update(plaintext);
  const rest = cipher.final();
  const out = owned(body.length + rest.length + TAG);
  out.set(body, 0);
  out.set(rest, body.length);
  out.set(cipher.getAuthTag(), body.length + rest.length);
  return out;
}

function open(
  alg: AeadAlgorithm,
  key: Uint8Array,
  nonce: Uint8Array,
  sealed: Uint8Array,
  aad: Uint8Array,
): Bytes {
  if (sealed.length < TAG) throw new MissiveError("auth-failed", `${alg}: ciphertext too short`);
  const body = sealed.subarray(0, sealed.length - TAG);
  const decipher = createDecipheriv(alg as "aes-256-gcm", key, nonce, {
    authTagLength: TAG,
  }) as DecipherGCM;
  decipher.setAAD(aad, { plaintextLength: body.length });
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG));
  let head: Uint8Array;
  let rest: Uint8Array;
  try {
    head = decipher.update(body);
    rest = decipher.final();
  } catch {
    throw new MissiveError("auth-failed", `${alg}: authentication tag does not verify`);
  }
  const out = owned(head.length + rest.length);
  out.set(head, 0);
  out.set(rest, head.length);
  return out;
}

function checkInputs(alg: AeadAlgorithm, key: Uint8Array, nonce: Uint8Array): void {
  if (key.length !== 32 || nonce.length !== 12) {
    throw new MissiveError("internal", `${alg}: key must be 32 bytes and nonce 12`);
  }
}

/** The node:crypto provider (noble for whatever node:crypto lacks here). */
export const nodeCryptoProvider: CryptoProvider = {
  ...nobleProvider,
  name: "node",
  sha256: (data) => Promise.resolve(copy(createHash("sha256").update(data).digest())),
  sha512: (data) => Promise.resolve(copy(createHash("sha512").update(data).digest())),
  hmacSha256: (key, data) => Promise.resolve(copy(createHmac("sha256", key).update(data).digest())),
  aeadEncrypt(alg, key, nonce, plaintext, aad) {
    if (!nodeHasAead(alg) || key.length !== 32) {
      return nobleProvider.aeadEncrypt(alg, key, nonce, plaintext, aad);
    }
    try {
      checkInputs(alg, key, nonce);
      return Promise.resolve(seal(alg, key, nonce, plaintext, aad));
    } catch (e) {
      return Promise.reject(e);
    }
  },
  aeadDecrypt(alg, key, nonce, ciphertext, aad) {
    if (!nodeHasAead(alg) || key.length !== 32) {
      return nobleProvider.aeadDecrypt(alg, key, nonce, ciphertext, aad);
    }
    try {
      checkInputs(alg, key, nonce);
      return Promise.resolve(open(alg, key, nonce, ciphertext, aad));
    } catch (e) {
      return Promise.reject(e);
    }
  },
  aeadKey(alg, key): Promise<AeadKey> {
    if (!nodeHasAead(alg)) return nobleProvider.aeadKey(alg, key);
    if (key.length !== 32) {
      return Promise.reject(new MissiveError("internal", `${alg}: key must be 32 bytes`));
    }
    const k = new Uint8Array(key);
    return Promise.resolve({
      algorithm: alg,
      encrypt(nonce, plaintext, aad) {
        try {
          checkInputs(alg, k, nonce);
          return Promise.resolve(seal(alg, k, nonce, plaintext, aad));
        } catch (e) {
          return Promise.reject(e);
        }
      },
      decrypt(nonce, ciphertext, aad) {
        try {
          checkInputs(alg, k, nonce);
          return Promise.resolve(open(alg, k, nonce, ciphertext, aad));
        } catch (e) {
          return Promise.reject(e);
        }
      },
    });
  },
};

function copy(b: Uint8Array): Bytes {
  const out = owned(b.length);
  out.set(b);
  return out;
}
