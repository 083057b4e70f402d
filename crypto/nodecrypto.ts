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
import type { CipherGCM, DecipherGCM } from "node:crypto";
import { nodeCrypto } from "./_node.ts";
import type { Bytes } from "../core/bytes.ts";
import { nativeHasher } from "./hasher.ts";
import { MissiveError } from "../core/errors.ts";
import { nobleProvider } from "./noble.ts";
import type { AeadAlgorithm, AeadKey, CryptoProvider } from "./provider.ts";

const TAG = 16;

/** The AEADs this runtime's node:crypto has (Bun's has no chacha20-poly1305). */
function nativeAeads(): Set<AeadAlgorithm> {
  const have = new Set<AeadAlgorithm>();
  try {
    const ciphers = new Set(nodeCrypto().getCiphers().map((c) => c.toLowerCase()));
    if (ciphers.has("aes-256-gcm") || ciphers.has("id-aes256-gcm")) have.add("aes-256-gcm");
    if (ciphers.has("chacha20-poly1305")) {
      // Listed is not always working: one call proves it.
      nodeCrypto().createCipheriv("chacha20-poly1305", new Uint8Array(32), new Uint8Array(12), {
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

/**
 * A node:crypto output as `Bytes` without copying when it owns its memory: a large output
 * is its own ArrayBuffer (Bun's has a few bytes of slack past the end: the cipher's block
 * margin); small Buffers may share a pool slab, so they, and anything else, are copied.
 */
function adopt(b: Uint8Array): Bytes {
  const own = b.length >= 4096 && b.byteOffset === 0 && b.buffer instanceof ArrayBuffer &&
    b.buffer.byteLength - b.length < 64;
  return own ? new Uint8Array(b.buffer as ArrayBuffer, 0, b.length) : copy(b);
}

/** Ciphertext parts (body, GCM's empty final block when not empty, tag), uncopied. */
function sealParts(
  alg: AeadAlgorithm,
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
): Bytes[] {
  const cipher = nodeCrypto().createCipheriv(alg as "aes-256-gcm", key, nonce, {
    authTagLength: TAG,
  }) as CipherGCM;
  cipher.setAAD(aad, { plaintextLength: plaintext.length });
  const body = cipher.update(plaintext);
  const rest = cipher.final();
  const tag = cipher.getAuthTag();
  return rest.length > 0 ? [adopt(body), adopt(rest), adopt(tag)] : [adopt(body), adopt(tag)];
}

function seal(
  alg: AeadAlgorithm,
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
): Bytes {
  const parts = sealParts(alg, key, nonce, plaintext, aad);
  const out = owned(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
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
  const decipher = nodeCrypto().createDecipheriv(alg as "aes-256-gcm", key, nonce, {
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
  if (rest.length === 0) return adopt(head);
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
  sha256: (data) => Promise.resolve(copy(nodeCrypto().createHash("sha256").update(data).digest())),
  sha512: (data) => Promise.resolve(copy(nodeCrypto().createHash("sha512").update(data).digest())),
  hmacSha256: (key, data) =>
    Promise.resolve(copy(nodeCrypto().createHmac("sha256", key).update(data).digest())),
  hasher: nativeHasher,
  hkdfSha256(ikm, salt, info, length) {
    // RFC 5869 with HMAC-SHA-256; node:crypto refuses an empty input key, noble does not.
    if (ikm.length === 0 || length > 255 * 32) {
      return nobleProvider.hkdfSha256(ikm, salt, info, length);
    }
    return Promise.resolve(
      new Uint8Array(nodeCrypto().hkdfSync("sha256", ikm, salt, info, length)),
    );
  },
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
      encryptParts(nonce, plaintext, aad) {
        try {
          checkInputs(alg, k, nonce);
          return Promise.resolve(sealParts(alg, k, nonce, plaintext, aad));
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
