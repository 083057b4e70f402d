/**
 * X-Wing, the hybrid ML-KEM-768 + X25519 KEM of draft-connolly-cfrg-xwing-kem (the KEM
 * behind age's `age1pq1` recipients, HPKE KEM id 0x647a "MLKEM768-X25519"): the parts
 * both providers share. A decapsulation key is a 32-byte seed; SHAKE256 expands it into
 * the ML-KEM-768 key-generation seed (d ‖ z) and the X25519 private key (§5.2). The
 * combiner hashes both shared secrets with the X25519 ciphertext and public key (§5.3).
 * SHA-3 and SHAKE come from crypto/sha3.ts (node:crypto or noble; WebCrypto has neither).
 * @module
 */
import { type Bytes, concatBytes, fromHex } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import { type Sha3, sha3 } from "./sha3.ts";

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
export function expandXwingSeed(seed: Uint8Array, hash: Sha3 = sha3()): XwingExpandedSeed {
  checkLength(seed, XWING_SEED_SIZE, "seed");
  const expanded = hash.shake256(seed, 96);
  return { mlkemSeed: expanded.slice(0, 64), x25519Key: expanded.slice(64) };
}

/** SHA3-256(ss_M ‖ ss_X ‖ ct_X ‖ pk_X ‖ label): the X-Wing combiner (draft §5.3). */
export function xwingCombine(
  mlkemShared: Uint8Array,
  x25519Shared: Uint8Array,
  x25519Ciphertext: Uint8Array,
  x25519PublicKey: Uint8Array,
  hash: Sha3 = sha3(),
): Bytes {
  return hash.sha3_256(
    concatBytes(mlkemShared, x25519Shared, x25519Ciphertext, x25519PublicKey, XWING_LABEL),
  );
}

/** The two parts of an X-Wing public key or ciphertext (views, not copies). */
export function splitXwing(bytes: Uint8Array, mlkemSize: number) {
  return { mlkem: bytes.subarray(0, mlkemSize), x25519: bytes.subarray(mlkemSize) };
}

/**
 * noble's X-Wing, loaded on first use: building its tables costs start-up time that a
 * command on WebCrypto's ML-KEM never needs (issue 12).
 */
export function nobleXwing(): Promise<typeof import("@noble/post-quantum/hybrid.js")> {
  return nobleXwingModule ??= import("@noble/post-quantum/hybrid.js");
}
let nobleXwingModule: Promise<typeof import("@noble/post-quantum/hybrid.js")> | undefined;

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
export async function xwingEncapsulateSeeded(
  publicKey: Uint8Array,
  encapsulationSeed: Uint8Array,
): Promise<{ ciphertext: Bytes; shared: Bytes }> {
  checkLength(publicKey, XWING_PUBLIC_KEY_SIZE, "public key");
  checkLength(encapsulationSeed, XWING_ENCAPSULATION_SEED_SIZE, "encapsulation seed");
  const { ml_kem768_x25519 } = await nobleXwing();
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

/**
 * Throws `key` unless the ML-KEM-768 half of an X-Wing public key passes the FIPS 203
 * §7.2 encapsulation-key check (every coefficient below q). The X25519 half is checked
 * by the caller (keys/card.ts, with the other X25519 keys).
 */
export function checkMlkemPublicKey(publicKey: Uint8Array): void {
  checkLength(publicKey, XWING_PUBLIC_KEY_SIZE, "public key");
  // FIPS 203 §7.2 "modulus check": the first 3 × 384 bytes are 768 coefficients of 12
  // bits, two per 3 bytes (ByteDecode12); each must be below q = 3329, i.e. decoding then
  // re-encoding gives the same bytes. The last 32 bytes of the ML-KEM key are ρ.
  for (let i = 0; i < 1152; i += 3) {
    const b0 = publicKey[i], b1 = publicKey[i + 1], b2 = publicKey[i + 2];
    const c0 = b0 | ((b1 & 0x0f) << 8);
    const c1 = (b1 >> 4) | (b2 << 4);
    if (c0 >= 3329 || c1 >= 3329) {
      throw new MissiveError(
        "key",
        `x-wing: invalid ML-KEM-768 public key (coefficient ${c0 >= 3329 ? c0 : c1} at ` +
          `byte ${i} is not below q = 3329; FIPS 203 §7.2)`,
      );
    }
  }
}
