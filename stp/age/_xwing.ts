/**
 * The one seam between age's hybrid recipients and an X-Wing KEM (ML-KEM-768 + X25519,
 * draft-connolly-cfrg-xwing-kem; the MLKEM768-X25519 KEM of draft-ietf-hpke-pq, HPKE KEM
 * id 0x647a). Today it calls @noble/post-quantum directly; once the crypto provider
 * offers X-Wing (`xwingPublicKey`, `xwingEncapsulate`, `xwingDecapsulate`, same shapes
 * and errors as here), `xwingFor` returns the provider's three functions instead and
 * nothing else in stp/age/ changes.
 * @module
 */
import { ml_kem768_x25519 } from "@noble/post-quantum/hybrid.js";
import { x25519 } from "@noble/curves/ed25519.js";
import type { Bytes } from "../../core/bytes.ts";
import { MissiveError } from "../../core/errors.ts";
import type { CryptoProvider } from "../../crypto/provider.ts";

/** Sizes of X-Wing's parts. */
export const XWING_SEED_SIZE = 32;
export const XWING_PUBLIC_KEY_SIZE = 1216;
export const XWING_CIPHERTEXT_SIZE = 1120;

/** The X-Wing operations age needs. */
export interface XwingKem {
  /** The 1,216-byte public key of a 32-byte seed. */
  xwingPublicKey(seed: Uint8Array): Promise<Bytes>;
  /** A fresh encapsulation: 1,120-byte ciphertext, 32-byte shared secret; `key` if `publicKey` is unusable. */
  xwingEncapsulate(publicKey: Uint8Array): Promise<{ ciphertext: Bytes; shared: Bytes }>;
  /** Decapsulation with the seed; `auth-failed` when the X25519 part has small order. */
  xwingDecapsulate(seed: Uint8Array, ciphertext: Uint8Array): Promise<Bytes>;
}

/** A fixed clamped scalar: X25519 of it and a point of small order is all zero. */
const PROBE_SCALAR = new Uint8Array(32).fill(0x42);

/** True when the 32-byte X25519 share has small order (its product with any clamped scalar is 0). */
function smallOrder(share: Uint8Array): boolean {
  let product: Uint8Array;
  try {
    product = x25519.getSharedSecret(PROBE_SCALAR, share);
  } catch {
    return true;
  }
  return product.every((b) => b === 0);
}

const nobleXwing: XwingKem = {
  xwingPublicKey: (seed) => Promise.resolve(ml_kem768_x25519.getPublicKey(seed) as Bytes),
  xwingEncapsulate(publicKey) {
    try {
      if (publicKey.length !== XWING_PUBLIC_KEY_SIZE) throw new Error("wrong length");
      if (smallOrder(publicKey.subarray(XWING_PUBLIC_KEY_SIZE - 32))) {
        throw new Error("X25519 part of small order");
      }
      const { cipherText, sharedSecret } = ml_kem768_x25519.encapsulate(publicKey);
      return Promise.resolve({ ciphertext: cipherText as Bytes, shared: sharedSecret as Bytes });
    } catch (e) {
      return Promise.reject(
        new MissiveError("key", `X-Wing: unusable public key (${(e as Error).message})`),
      );
    }
  },
  xwingDecapsulate(seed, ciphertext) {
    if (ciphertext.length !== XWING_CIPHERTEXT_SIZE || smallOrder(ciphertext.subarray(-32))) {
      return Promise.reject(new MissiveError("auth-failed", "X-Wing: X25519 part of small order"));
    }
    return Promise.resolve(ml_kem768_x25519.decapsulate(ciphertext, seed) as Bytes);
  },
};

/**
 * The X-Wing KEM to use with `crypto`: the provider's when it has one (after the
 * post-quantum work lands), else @noble/post-quantum.
 */
export function xwingFor(crypto: CryptoProvider): XwingKem {
  const p = crypto as Partial<XwingKem>;
  if (p.xwingPublicKey && p.xwingEncapsulate && p.xwingDecapsulate) return p as XwingKem;
  return nobleXwing;
}
