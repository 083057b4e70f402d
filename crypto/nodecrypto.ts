/**
 * ChaCha20-Poly1305 (RFC 8439) from the runtime's `node:crypto`, for bulk data (age
 * payloads), where the runtime has it: Deno does (native, several times noble's speed);
 * Bun's `node:crypto` has no chacha20-poly1305, so there noble serves. `crypto/mod.ts`
 * uses it only after `nodeChachaWorks` found identical bytes to noble's.
 * @module
 */
import { createCipheriv, createDecipheriv } from "node:crypto";
import { type Bytes, equalBytes } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import { nobleProvider } from "./noble.ts";
import type { AeadKey } from "./provider.ts";

const ALG = "chacha20-poly1305";
const TAG = 16;

/** A node:crypto Buffer as a Uint8Array over its own (never reused) memory. */
const asBytes = (b: Uint8Array): Bytes =>
  new Uint8Array(b.buffer, b.byteOffset, b.byteLength) as Bytes;

/** A ChaCha20-Poly1305 key through `node:crypto`; same bytes as noble's. */
export function nodeChachaKey(key: Uint8Array): AeadKey {
  const k = new Uint8Array(key);
  return {
    algorithm: ALG,
    encrypt(nonce, plaintext, aad) {
      try {
        const c = createCipheriv(ALG, k, nonce, { authTagLength: TAG });
        if (aad.length > 0) c.setAAD(aad, { plaintextLength: plaintext.length });
        const body = c.update(plaintext);
        c.final();
        const out = new Uint8Array(body.length + TAG);
        out.set(body);
        out.set(c.getAuthTag(), body.length);
        return Promise.resolve(out);
      } catch (e) {
        return Promise.reject(new MissiveError("internal", `${ALG}: ${(e as Error).message}`));
      }
    },
    decrypt(nonce, ciphertext, aad) {
      if (ciphertext.length < TAG) {
        return Promise.reject(new MissiveError("auth-failed", `${ALG}: authentication failed`));
      }
      try {
        const d = createDecipheriv(ALG, k, nonce, { authTagLength: TAG });
        const bodyLength = ciphertext.length - TAG;
        if (aad.length > 0) d.setAAD(aad, { plaintextLength: bodyLength });
        d.setAuthTag(ciphertext.subarray(bodyLength));
        const out = d.update(ciphertext.subarray(0, bodyLength));
        d.final(); // throws when the tag does not verify
        return Promise.resolve(asBytes(out));
      } catch {
        return Promise.reject(new MissiveError("auth-failed", `${ALG}: authentication failed`));
      }
    },
  };
}

/**
 * True when this runtime's `node:crypto` has ChaCha20-Poly1305 and gives noble's bytes
 * (sealing and opening a probe, and refusing it altered).
 */
export async function nodeChachaWorks(): Promise<boolean> {
  try {
    const key = new Uint8Array(32).map((_, i) => i + 7);
    const nonce = new Uint8Array(12).map((_, i) => i * 3);
    const data = new Uint8Array(300).map((_, i) => i);
    const aad = new Uint8Array([1, 2, 3]);
    const node = nodeChachaKey(key);
    const noble = await nobleProvider.aeadKey(ALG, key);
    const [a, b] = [await node.encrypt(nonce, data, aad), await noble.encrypt(nonce, data, aad)];
    if (!equalBytes(a, b) || !equalBytes(await node.decrypt(nonce, a, aad), data)) return false;
    a[5] ^= 1;
    return await node.decrypt(nonce, a, aad).then(() => false, () => true);
  } catch {
    return false;
  }
}
