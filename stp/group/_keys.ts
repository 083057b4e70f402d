/**
 * The key schedule of the `group` STP shared by seal and open (SPEC §19.3): slot secrets
 * from an X25519 shared secret, payload keys and commitment from the payload key.
 * @module
 */
import { type Bytes, concatBytes } from "../../core/bytes.ts";
import { type CborValue, transcript } from "../../core/cbor.ts";
import type { OpenContext, SealContext } from "../../plugin/types.ts";
import { HINT_SIZE, LABEL_KEYS, LABEL_SIG, LABEL_SLOT } from "./_format.ts";

type Ctx = SealContext | OpenContext;
/** The wrap nonce: each KEK wraps one key once (SPEC §19.3). */
export const ZERO_NONCE = new Uint8Array(12);

/** hint (8) ‖ key-encryption key (32) of one recipient key (SPEC §19.3). */
export async function slotSecrets(
  ctx: Ctx,
  shared: Bytes,
  eph: Bytes,
  recipient: Uint8Array,
  nonce: Bytes,
) {
  const okm = await ctx.crypto.hkdfSha256(
    shared,
    concatBytes(eph, recipient),
    transcript(LABEL_SLOT, nonce),
    HINT_SIZE + 32,
  );
  return { hint: okm.slice(0, HINT_SIZE), kek: okm.slice(HINT_SIZE) };
}

/** commitment (32) ‖ body key (32) ‖ body nonce (12) ‖ sender key (32) ‖ sender nonce (12). */
export async function payloadKeys(ctx: Ctx, payloadKey: Bytes, nonce: Bytes) {
  const okm = await ctx.crypto.hkdfSha256(payloadKey, nonce, transcript(LABEL_KEYS), 120);
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
  bound: CborValue[],
  ctHash: Bytes,
  address: string,
  id: Bytes,
) => transcript(LABEL_SIG, ...bound, ctHash, address, id);

/** The payload keys and commitment of one message. */
export type PayloadKeys = Awaited<ReturnType<typeof payloadKeys>>;
