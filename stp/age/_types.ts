/**
 * What every age recipient and identity type implements (age's Recipient and Identity
 * interfaces), and the stanza checks they share.
 * @module
 */
import type { Bytes } from "../../core/bytes.ts";
import { isMissiveError } from "../../core/errors.ts";
import type { CryptoProvider } from "../../crypto/provider.ts";
import { decodeRawBase64, headerError, type Stanza } from "./_format.ts";

/** The recipient types missive reads and writes. */
export type AgeKind = "x25519" | "hybrid" | "scrypt" | "ssh-ed25519" | "ssh-rsa";

/** What wrapping may use: the provider and a random source (seeded only in tests). */
export interface WrapContext {
  /** The primitives to wrap with. */
  crypto: CryptoProvider;
  /** Random bytes (ephemeral keys, salts): the CSPRNG, or a seeded source in tests. */
  random(length: number): Bytes;
}

/** Something a file key is wrapped for: one or more stanzas. */
export interface AgeRecipient {
  /** Which recipient type this is. */
  readonly kind: AgeKind;
  /** The recipient as a person would name it (`age1…`, an SSH key's type and comment). */
  readonly label: string;
  /** The stanzas that carry the 16-byte `fileKey` to this recipient (usually one). */
  wrap(fileKey: Uint8Array, ctx: WrapContext): Promise<Stanza[]>;
}

/** Something that can unwrap a file key from the stanzas meant for it. */
export interface AgeIdentity {
  /** Which recipient type this identity opens. */
  readonly kind: AgeKind;
  /**
   * The file key, or null when no stanza is for this identity ("not for me", an expected
   * outcome). A stanza of this identity's type that is malformed throws `malformed`.
   */
  unwrap(stanzas: readonly Stanza[], crypto: CryptoProvider): Promise<Bytes | null>;
}

/** Size of a file key, and of its wrapping: 16 bytes + a 16-byte tag. */
export const FILE_KEY_SIZE = 16;
export const WRAPPED_KEY_SIZE = 32;
/** The fixed all-zero ChaCha20-Poly1305 nonce of stanza bodies (each key is used once). */
export const ZERO_NONCE = new Uint8Array(12);

/**
 * A stanza argument that must be canonical unpadded base64 of exactly `size` bytes, and
 * a body of exactly 32 bytes (checked before any decryption, against partitioning
 * oracles: C2SP age, the X25519, mlkem768x25519 and scrypt stanzas).
 */
export function stanzaArgument(s: Stanza, arg: string, size: number): Bytes {
  const bytes = decodeRawBase64(arg);
  if (!bytes || bytes.length !== size) {
    throw headerError(`invalid ${s.type} stanza: argument is not ${size} bytes of base64`);
  }
  return bytes;
}

/** Refuses a stanza body that cannot hold a wrapped 16-byte file key. */
export function checkWrappedKey(s: Stanza): void {
  if (s.body.length !== WRAPPED_KEY_SIZE) {
    throw headerError(`invalid ${s.type} stanza: body is ${s.body.length} bytes, expected 32`);
  }
}

/**
 * Wraps the file key into a stanza body: ChaCha20-Poly1305 under `key` and `nonce` (the
 * all-zero nonce unless the stanza defines one), no associated data. The caller wipes `key`.
 */
export function wrapFileKey(
  crypto: CryptoProvider,
  key: Uint8Array,
  fileKey: Uint8Array,
  nonce: Uint8Array = ZERO_NONCE,
): Promise<Bytes> {
  return crypto.aeadEncrypt("chacha20-poly1305", key, nonce, fileKey, new Uint8Array(0));
}

/**
 * Opens a stanza body (ChaCha20-Poly1305 of the file key under `key`, `nonce`): the file
 * key, or null when the tag does not verify (the stanza is for another key).
 */
export async function openWrappedKey(
  crypto: CryptoProvider,
  key: Uint8Array,
  body: Uint8Array,
  nonce: Uint8Array = ZERO_NONCE,
): Promise<Bytes | null> {
  try {
    return await crypto.aeadDecrypt("chacha20-poly1305", key, nonce, body, new Uint8Array(0));
  } catch (e) {
    if (isMissiveError(e, "auth-failed")) return null;
    throw e;
  }
}
