/**
 * The primitive-provider contract. STPs and key code call only these functions; a
 * provider implements them with the runtime's WebCrypto or with noble, and both produce
 * identical bytes (DESIGN §4, crypto providers). All byte inputs are treated as
 * read-only; outputs are fresh arrays.
 * @module
 */
import type { Bytes } from "../core/bytes.ts";

/** AEAD algorithms a provider offers. Nonces: 12 bytes (GCM, ChaCha), 24 (XChaCha). */
export type AeadAlgorithm = "aes-256-gcm" | "chacha20-poly1305" | "xchacha20-poly1305";

/**
 * An AEAD key prepared once for many calls (bulk data: streams, SPEC §20). The input
 * arrays may be reused by the caller as soon as a call returns its promise: providers
 * copy (WebCrypto) or consume (noble) them synchronously.
 */
export interface AeadKey {
  /** The algorithm the key was prepared for; every call uses it. */
  readonly algorithm: AeadAlgorithm;
  /** Returns ciphertext ‖ 16-byte tag. */
  encrypt(nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Promise<Bytes>;
  /**
   * The same bytes as `encrypt`, as consecutive parts (ciphertext, then the tag) that were
   * not copied into one array: for bulk data written with a gathering write. Optional; a
   * path whose output is one array already has no use for it.
   */
  encryptParts?(nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Promise<Bytes[]>;
  /** Throws `MissiveError("auth-failed")` when the tag does not verify. */
  decrypt(nonce: Uint8Array, ciphertext: Uint8Array, aad: Uint8Array): Promise<Bytes>;
}

/** Algorithms of `CryptoProvider.hasher`. */
export type HashAlgorithm = "sha512" | "blake2b512";

/** A hash fed in pieces (`update` as often as needed, then `digest` once). */
export interface IncrementalHash {
  /** Feeds `data`; the caller may reuse the array once the call returns. */
  update(data: Uint8Array): void;
  /** The 64-byte digest of everything fed so far; call it once, then drop the hash. */
  digest(): Bytes;
}

/** Cryptographic primitives, all asynchronous so WebCrypto can back them. */
export interface CryptoProvider {
  /** "webcrypto", "noble", or "mixed(...)" when detection picked per algorithm. */
  readonly name: string;
  /** SHA-256 (FIPS 180-4) of `data`: 32 bytes. */
  sha256(data: Uint8Array): Promise<Bytes>;
  /** SHA-512 (FIPS 180-4) of `data`: 64 bytes. */
  sha512(data: Uint8Array): Promise<Bytes>;
  /**
   * An incremental SHA-512 or BLAKE2b-512 (64-byte output), for input read in pieces
   * (detached signatures of large files, SPEC §24).
   */
  hasher(algorithm: HashAlgorithm): IncrementalHash;
  /** HMAC-SHA-256 (RFC 2104) of `data` under `key` (any length): 32 bytes. */
  hmacSha256(key: Uint8Array, data: Uint8Array): Promise<Bytes>;
  /** HKDF-SHA-256 (RFC 5869); `length` at most 255 × 32 bytes. */
  hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Promise<Bytes>;
  /** Returns ciphertext ‖ 16-byte tag. AES keys may be 16, 24 or 32 bytes. */
  aeadEncrypt(
    alg: AeadAlgorithm,
    key: Uint8Array,
    nonce: Uint8Array,
    plaintext: Uint8Array,
    aad: Uint8Array,
  ): Promise<Bytes>;
  /** Throws `MissiveError("auth-failed")` when the tag does not verify. */
  aeadDecrypt(
    alg: AeadAlgorithm,
    key: Uint8Array,
    nonce: Uint8Array,
    ciphertext: Uint8Array,
    aad: Uint8Array,
  ): Promise<Bytes>;
  /**
   * Prepares `key` for many AEAD calls (one key import, not one per call); same bytes as
   * `aeadEncrypt`/`aeadDecrypt`.
   */
  aeadKey(alg: AeadAlgorithm, key: Uint8Array): Promise<AeadKey>;
  /**
   * AES-CBC with PKCS #7 padding (NIST SP 800-38A §6.2; RFC 5652 §6.3), for Fernet. Key 16
   * or 32 bytes, IV 16 bytes. Unauthenticated: callers MAC the result.
   */
  aesCbcEncrypt(key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array): Promise<Bytes>;
  /**
   * The inverse of `aesCbcEncrypt`. Throws `MissiveError("malformed")` when the ciphertext
   * is empty, not whole blocks, or its padding is wrong; callers verify a MAC first.
   */
  aesCbcDecrypt(key: Uint8Array, iv: Uint8Array, ciphertext: Uint8Array): Promise<Bytes>;
  /** The 32-byte Ed25519 public key of a 32-byte seed (RFC 8032 §5.1.5). */
  ed25519PublicKey(seed: Uint8Array): Promise<Bytes>;
  /** The 64-byte Ed25519 signature (RFC 8032 §5.1.6) of `message` by the 32-byte `seed`. */
  ed25519Sign(seed: Uint8Array, message: Uint8Array): Promise<Bytes>;
  /**
   * Strict RFC 8032 verification: false for any invalid input, for non-canonical
   * encodings of A or R, S ≥ L, and for A or R of small order (SPEC §1.4).
   */
  ed25519Verify(
    publicKey: Uint8Array,
    message: Uint8Array,
    signature: Uint8Array,
  ): Promise<boolean>;
  /** X25519(k, 9) (RFC 7748 §6.1). */
  x25519PublicKey(privateKey: Uint8Array): Promise<Bytes>;
  /** X25519(k, u); throws `MissiveError("auth-failed")` on an all-zero result. */
  x25519(privateKey: Uint8Array, publicKey: Uint8Array): Promise<Bytes>;
  /**
   * A fresh ephemeral key pair from the runtime's CSPRNG, agreed with `peerPublicKey` at
   * once: returns its public key and X25519(ephemeral, peer). The private key never
   * leaves the provider (WebCrypto keeps it non-extractable). Throws like `x25519`.
   */
  x25519Ephemeral(peerPublicKey: Uint8Array): Promise<{ publicKey: Bytes; shared: Bytes }>;
  /**
   * The 1,216-byte X-Wing public key of a 32-byte seed (draft-connolly-cfrg-xwing-kem
   * §5.2): ML-KEM-768 encapsulation key ‖ X25519 public key.
   */
  xwingPublicKey(seed: Uint8Array): Promise<Bytes>;
  /**
   * X-Wing encapsulation with fresh randomness from the runtime's CSPRNG (§5.4): a
   * 1,120-byte ciphertext and the 32-byte shared secret. Throws `key` for a public key
   * that fails the ML-KEM check or whose X25519 part has small order.
   */
  xwingEncapsulate(publicKey: Uint8Array): Promise<{ ciphertext: Bytes; shared: Bytes }>;
  /**
   * X-Wing decapsulation with the 32-byte seed (§5.5). ML-KEM rejects implicitly (an
   * altered ciphertext gives another secret); an X25519 part of small order throws
   * `auth-failed`.
   */
  xwingDecapsulate(seed: Uint8Array, ciphertext: Uint8Array): Promise<Bytes>;
}
