/**
 * X-Wing, the hybrid ML-KEM-768 + X25519 KEM of draft-connolly-cfrg-xwing-kem (the KEM
 * behind age's `age1pq1` recipients, HPKE KEM id 0x647a "MLKEM768-X25519"): the parts
 * both providers share. A decapsulation key is a 32-byte seed; SHAKE256 expands it into
 * the ML-KEM-768 key-generation seed (d ‖ z) and the X25519 private key (§5.2). The
 * combiner hashes both shared secrets with the X25519 ciphertext and public key (§5.3).
 * SHA-3 and SHAKE come from noble on every path (WebCrypto has neither).
 * @module
 */
import { ml_kem768_x25519 } from "@noble/post-quantum/hybrid.js";
import { ml_kem768 } from "@noble/post-quantum/ml-kem.js";
import { sha3_256, shake256 } from "@noble/hashes/sha3.js";
import { type Bytes, concatBytes, fromHex } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";

/** Bytes of an X-Wing decapsulation key (the seed). */
export const XWING_SEED_SIZE = 32;
/** Bytes of an X-Wing public key: ML-KEM-768 encapsulation key (1,184) ‖ X25519 (32). */
export const XWING_PUBLIC_KEY_SIZE = 1216;
/** Bytes of an X-Wing ciphertext: ML-KEM-768 ciphertext (1,088) ‖ X25519 (32). */
export const XWING_CIPHERTEXT_SIZE = 1120;
/** Bytes of the randomness one encapsulation takes: ML-KEM m (32) ‖ X25519 ephemeral (32). */
export const XWING_ENCAPSULATION_SEED_SIZE = 64;
/** ML-KEM-768 encapsulation-key and ciphertext sizes (FIPS 203 Table 3). */
export const MLKEM768_PUBLIC_KEY_SIZE = 1184;
export const MLKEM768_CIPHERTEXT_SIZE = 1088;
/** The combiner's label, `\.//^\` (draft §5.3). */
export const XWING_LABEL: Bytes = fromHex("5c2e2f2f5e5c")!;
/** The KEM's name in `inspect --json` and session events (HPKE's name for it). */
export const XWING_KEM_NAME = "mlkem768x25519";

/** The seed's expansion (draft §5.2 expandDecapsulationKey). */
export interface XwingExpandedSeed {
  /** d ‖ z, the ML-KEM-768 KeyGen_internal seed (FIPS 203 Algorithm 16), 64 bytes. */
  mlkemSeed: Bytes;
  /** The X25519 private key, 32 bytes. */
  x25519Key: Bytes;
}

/** SHAKE256(seed, 96) split into the ML-KEM seed (64) and the X25519 key (32). */
export function expandXwingSeed(seed: Uint8Array): XwingExpandedSeed {
  checkLength(seed, XWING_SEED_SIZE, "seed");
  const expanded = shake256(seed, { dkLen: 96 }) as Bytes;
  return { mlkemSeed: expanded.slice(0, 64), x25519Key: expanded.slice(64) };
}

/** SHA3-256(ss_M ‖ ss_X ‖ ct_X ‖ pk_X ‖ label): the X-Wing combiner (draft §5.3). */
export function xwingCombine(
  mlkemShared: Uint8Array,
  x25519Shared: Uint8Array,
  x25519Ciphertext: Uint8Array,
  x25519PublicKey: Uint8Array,
): Bytes {
  return sha3_256(
    concatBytes(mlkemShared, x25519Shared, x25519Ciphertext, x25519PublicKey, XWING_LABEL),
  ) as Bytes;
}

/** The two parts of an X-Wing public key or ciphertext (views, not copies). */
export function splitXwing(bytes: Uint8Array, mlkemSize: number) {
  return { mlkem: bytes.subarray(0, mlkemSize), x25519: bytes.subarray(mlkemSize) };
}

export function checkLength(bytes: Uint8Array, size: number, what: string): void {
  if (bytes.length !== size) {
    throw new MissiveError(
      "internal",
      `x-wing: ${what} must be ${size} bytes, got ${bytes.length}`,
    );
  }
}

/**
 * Deterministic encapsulation from 64 bytes of randomness (draft §5.4, EncapsulateDerand):
 * for known-answer vectors and sealing with injected randomness only. noble; no provider
 * can take the randomness from outside (WebCrypto draws its own).
 */
export function xwingEncapsulateSeeded(
  publicKey: Uint8Array,
  encapsulationSeed: Uint8Array,
): { ciphertext: Bytes; shared: Bytes } {
  checkLength(publicKey, XWING_PUBLIC_KEY_SIZE, "public key");
  checkLength(encapsulationSeed, XWING_ENCAPSULATION_SEED_SIZE, "encapsulation seed");
  try {
    const { cipherText, sharedSecret } = ml_kem768_x25519.encapsulate(
      publicKey,
      encapsulationSeed,
    );
    return { ciphertext: cipherText as Bytes, shared: sharedSecret as Bytes };
  } catch (e) {
    throw new MissiveError("key", `x-wing: invalid public key (${(e as Error).message})`);
  }
}

/** A fixed ML-KEM message for the public-key check: encapsulating to check costs no randomness. */
const CHECK_MESSAGE = new Uint8Array(32);

/**
 * Throws `key` unless the ML-KEM-768 half of an X-Wing public key passes the FIPS 203
 * §7.2 encapsulation-key check (every coefficient below q). The X25519 half is checked
 * by the caller (keys/card.ts, with the other X25519 keys).
 */
export function checkMlkemPublicKey(publicKey: Uint8Array): void {
  checkLength(publicKey, XWING_PUBLIC_KEY_SIZE, "public key");
  try {
    // noble runs the modulus check first; it has no separate call for it.
    ml_kem768.encapsulate(publicKey.subarray(0, MLKEM768_PUBLIC_KEY_SIZE), CHECK_MESSAGE);
  } catch (e) {
    throw new MissiveError(
      "key",
      `x-wing: invalid ML-KEM-768 public key (${(e as Error).message})`,
    );
  }
}
