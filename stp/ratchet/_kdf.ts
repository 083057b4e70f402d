/**
 * The key schedule of the `ratchet` STP (SPEC §25.3, §25.5): the identity binding, the
 * prekey signature input, the PQXDH-style agreement secret, and the Double Ratchet's
 * KDF chains (root: HKDF, chain: HMAC), per-message keys and associated data. Every
 * input is a transcript (SPEC §1.3); the provider does the primitives.
 * @module
 */
import { type Bytes, concatBytes, wipe } from "../../core/bytes.ts";
import { transcript } from "../../core/cbor.ts";
import type { CryptoProvider } from "../../crypto/provider.ts";
import type { EnvelopeHeader } from "../../envelope/mod.ts";
import type { CardKeys } from "../../keys/card.ts";
import {
  type InitialHeader,
  initialHeaderFields,
  LABELS,
  type OneTimePrekey,
  type RatchetHeader,
  type SignedPrekey,
} from "./_format.ts";

const CHAIN_INPUT = transcript(LABELS.chain);
const MESSAGE_INPUT = transcript(LABELS.message);
const ROOT_INFO = transcript(LABELS.root);
const KEYS_INFO = transcript(LABELS.keys);
const EMPTY = new Uint8Array(0);

/**
 * SHA-256 over both identities' public keys, initiator first (SPEC §25.3): the HKDF salt of
 * the agreement and part of every message's AAD, so a conversation is bound to exactly
 * these two identities (X3DH §3.3's AD, PQXDH §4.10).
 */
export function identityBinding(
  crypto: CryptoProvider,
  initiator: CardKeys,
  responder: CardKeys,
): Promise<Bytes> {
  return crypto.sha256(
    transcript(
      LABELS.identities,
      initiator.signingKey,
      initiator.agreementKey,
      initiator.hybridKey ?? null,
      responder.signingKey,
      responder.agreementKey,
      responder.hybridKey ?? null,
    ),
  );
}

/** The bytes the owner's Ed25519 key signs for a signed prekey (SPEC §25.2). */
export const signedPrekeyTranscript = (
  ownerId: Uint8Array,
  s: Omit<SignedPrekey, "signature">,
): Bytes => transcript(LABELS.prekey, ownerId, s.id, s.publicKey, s.kemPublicKey, s.created);

/**
 * The agreement secret SK (SPEC §25.3; X3DH §3.3, PQXDH §3.3): HKDF over the DH outputs
 * and the KEM secret, salted with the identity binding, with every public value of the
 * agreement in the info. The inputs are wiped.
 */
export async function agreementSecret(
  crypto: CryptoProvider,
  binding: Bytes,
  secrets: { dh: Bytes[]; kem: Bytes },
  used: { signedPrekey: SignedPrekey; oneTimePrekey?: OneTimePrekey; initial: InitialHeader },
): Promise<Bytes> {
  const ikm = concatBytes(...secrets.dh, secrets.kem);
  const { signedPrekey: spk, oneTimePrekey: opk, initial } = used;
  // The two large values enter hashed: HKDF's info stays under WebCrypto's 1,024-byte cap
  // (Bun's), and SHA-256 binds them as well as their bytes would.
  const [kemKeyHash, kemCiphertextHash] = await Promise.all([
    crypto.sha256(spk.kemPublicKey),
    crypto.sha256(initial.kemCiphertext),
  ]);
  const info = transcript(
    LABELS.agreement,
    initial.recipientId,
    spk.id,
    spk.publicKey,
    kemKeyHash,
    opk?.id ?? null,
    opk?.publicKey ?? null,
    initial.ephemeralKey,
    kemCiphertextHash,
  );
  const sk = await crypto.hkdfSha256(ikm, binding, info, 32);
  for (const s of [ikm, ...secrets.dh, secrets.kem]) wipe(s);
  return sk;
}

/** KDF_RK (Double Ratchet §5.2): HKDF(ikm = DH output, salt = root key) → root key ‖ chain key. */
export async function rootStep(
  crypto: CryptoProvider,
  rootKey: Bytes,
  dhOutput: Bytes,
): Promise<{ rootKey: Bytes; chainKey: Bytes }> {
  const okm = await crypto.hkdfSha256(dhOutput, rootKey, ROOT_INFO, 64);
  const out = { rootKey: okm.slice(0, 32), chainKey: okm.slice(32) };
  wipe(okm);
  wipe(dhOutput);
  return out;
}

/** KDF_CK (Double Ratchet §5.2): HMAC with two constant inputs → message key, next chain key. */
export async function chainStep(
  crypto: CryptoProvider,
  chainKey: Bytes,
): Promise<{ messageKey: Bytes; chainKey: Bytes }> {
  const [messageKey, next] = await Promise.all([
    crypto.hmacSha256(chainKey, MESSAGE_INPUT),
    crypto.hmacSha256(chainKey, CHAIN_INPUT),
  ]);
  return { messageKey, chainKey: next };
}

/** AES-256-GCM key, its nonce, and the inner message's 16-byte nonce, from a message key. */
export async function messageSecrets(
  crypto: CryptoProvider,
  messageKey: Bytes,
): Promise<{ key: Bytes; iv: Bytes; nonce: Bytes }> {
  const okm = await crypto.hkdfSha256(messageKey, EMPTY, KEYS_INFO, 60);
  const out = { key: okm.slice(0, 32), iv: okm.slice(32, 44), nonce: okm.slice(44, 60) };
  wipe(okm);
  return out;
}

/** The AEAD associated data of a message (SPEC §25.5): envelope header, binding, ratchet header. */
export const associatedData = (
  envelope: EnvelopeHeader,
  binding: Bytes,
  h: RatchetHeader,
): Bytes =>
  transcript(
    LABELS.aad,
    envelope.protocolType,
    envelope.protocolVersion,
    envelope.sequenceNumber ?? null,
    binding,
    h.ratchetKey,
    h.previousChainLength,
    h.messageNumber,
    h.initial ? initialHeaderFields(h.initial) : null,
  );
