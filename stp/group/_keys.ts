/**
 * The key schedule of the `group` STP shared by seal and open (SPEC §19.3, §19.10.2):
 * slot secrets (v1: hint and KEK from one X25519 secret; v2: the hint from the X25519
 * secret, the KEK from an X-Wing encapsulation), payload keys and commitment from the
 * payload key.
 * @module
 */
import { type Bytes, concatBytes } from "../../core/bytes.ts";
import { type CborValue, transcript } from "../../core/cbor.ts";
import type { OpenContext, SealContext } from "../../plugin/types.ts";
import { type GroupLabels, HINT_SIZE } from "./_format.ts";

type Ctx = SealContext | OpenContext;
/** The wrap nonce: each KEK wraps one key once (SPEC §19.3). */
export const ZERO_NONCE = new Uint8Array(12);

/** v1: hint (8) ‖ key-encryption key (32) of one recipient key (SPEC §19.3). */
export async function slotSecrets(
  ctx: Ctx,
  labels: GroupLabels,
  shared: Bytes,
  eph: Bytes,
  recipient: Uint8Array,
  nonce: Bytes,
) {
  const okm = await ctx.crypto.hkdfSha256(
    shared,
    concatBytes(eph, recipient),
    transcript(labels.slot, nonce),
    HINT_SIZE + 32,
  );
  return { hint: okm.slice(0, HINT_SIZE), kek: okm.slice(HINT_SIZE) };
}

/** v2: the 8-byte hint of one recipient, from its X25519 secret (SPEC §19.10.2). */
export async function slotHint(
  ctx: Ctx,
  labels: GroupLabels,
  shared: Bytes,
  eph: Bytes,
  recipient: Uint8Array,
  nonce: Bytes,
): Promise<Bytes> {
  const salt = concatBytes(eph, recipient);
  return await ctx.crypto.hkdfSha256(shared, salt, transcript(labels.hint, nonce), HINT_SIZE);
}

/** v2: the key-encryption key of one slot, from its X-Wing secret (SPEC §19.10.2). */
export async function slotKek(
  ctx: Ctx,
  labels: GroupLabels,
  shared: Bytes,
  kemCiphertext: Uint8Array,
  hybridKey: Uint8Array,
  nonce: Bytes,
): Promise<Bytes> {
  const salt = concatBytes(kemCiphertext, hybridKey);
  return await ctx.crypto.hkdfSha256(shared, salt, transcript(labels.kek, nonce), 32);
}

/** commitment (32) ‖ body key (32) ‖ body nonce (12) ‖ sender key (32) ‖ sender nonce (12). */
export async function payloadKeys(ctx: Ctx, labels: GroupLabels, payloadKey: Bytes, nonce: Bytes) {
  const okm = await ctx.crypto.hkdfSha256(payloadKey, nonce, transcript(labels.keys), 120);
  return {
    commitment: okm.slice(0, 32),
    bodyKey: okm.slice(32, 64),
    bodyNonce: okm.slice(64, 76),
    senderKey: okm.slice(76, 108),
    senderNonce: okm.slice(108, 120),
  };
}

/** What the sender signs (SPEC §19.5 step 7). */
export const signatureTranscript = (
  labels: GroupLabels,
  bound: CborValue[],
  ctHash: Bytes,
  address: string,
  id: Bytes,
) => transcript(labels.sig, ...bound, ctHash, address, id);

/** The payload keys and commitment of one message. */
export type PayloadKeys = Awaited<ReturnType<typeof payloadKeys>>;
