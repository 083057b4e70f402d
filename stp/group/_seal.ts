/**
 * Sealing of the `group` STP (SPEC §19.5): de-duplicated recipient keys, one slot each
 * through one ephemeral X25519 key, hidden-mode padding, sorted slots, signed transcript.
 * @module
 */
import { type Bytes, concatBytes, toHex, wipe } from "../../core/bytes.ts";
import { type CborValue, encodeCbor, transcript } from "../../core/cbor.ts";
import { MissiveError } from "../../core/errors.ts";
import type { Card } from "../../keys/card.ts";
import type { Inner, SealContext } from "../../plugin/types.ts";
import {
  boundFields,
  compareSlots,
  encodePayload,
  LABEL_AAD,
  LABEL_SENDER,
  LABEL_WRAP,
  MAX_SLOTS,
  MIN_HIDDEN_SLOTS,
  MODE_HIDDEN,
  MODE_HINTED,
  NONCE_SIZE,
  type SlotMode,
  WRAPPED_SIZE,
} from "./_format.ts";
import { payloadKeys, signatureTranscript, slotSecrets, ZERO_NONCE } from "./_keys.ts";

/** Slots sealed concurrently: enough to keep WebCrypto busy, few enough to bound memory. */
const BATCH = 256;

/** One slot per distinct agreement key (a card is one device today; SPEC §19.5). */
function distinctKeys(recipients: readonly Card[]): Uint8Array[] {
  const seen = new Map<string, Uint8Array>();
  for (const card of recipients) seen.set(toHex(card.agreementKey), card.agreementKey);
  return [...seen.values()];
}

/** The smallest power of two ≥ n, at least MIN_HIDDEN_SLOTS (SPEC §19.6). */
function paddedCount(n: number): number {
  let p = MIN_HIDDEN_SLOTS;
  while (p < n) p *= 2;
  return p;
}

export async function sealGroup(inner: Inner, ctx: SealContext): Promise<Uint8Array> {
  const sender = ctx.sender;
  if (!sender) throw new MissiveError("usage", "group: a sender identity is required (--from)");
  const keys = distinctKeys(ctx.recipients);
  if (keys.length === 0) throw new MissiveError("usage", "group: at least one recipient (--to)");
  if (keys.length > MAX_SLOTS) {
    throw new MissiveError("usage", `group: at most ${MAX_SLOTS} recipients, got ${keys.length}`);
  }
  const nonce = new Uint8Array(inner.nonce);
  if (nonce.length !== NONCE_SIZE) {
    throw new MissiveError("internal", "group: nonce must be 16 bytes");
  }
  const mode: SlotMode = ctx.hideRecipients ? MODE_HIDDEN : MODE_HINTED;
  const ephemeralSecret = ctx.random(32);
  const payloadKey = ctx.random(32);
  const slotCount = mode === MODE_HIDDEN ? paddedCount(keys.length) : keys.length;
  // Dummy slots are random bytes, indistinguishable from wrapped keys without a KEK.
  const padding = ctx.random((slotCount - keys.length) * WRAPPED_SIZE);
  const ephemeralKey = await ctx.crypto.x25519PublicKey(ephemeralSecret);
  const wrapAad = transcript(LABEL_WRAP, nonce);
  const makeSlot = async (recipient: Uint8Array): Promise<Bytes> => {
    const shared = await ctx.crypto.x25519(ephemeralSecret, recipient);
    const { hint, kek } = await slotSecrets(ctx, shared, ephemeralKey, recipient, nonce);
    const wrapped = await ctx.crypto.aeadEncrypt(
      "aes-256-gcm",
      kek,
      ZERO_NONCE,
      payloadKey,
      wrapAad,
    );
    wipe(shared);
    wipe(kek);
    return mode === MODE_HINTED ? concatBytes(hint, wrapped) : wrapped;
  };
  const made: Bytes[] = [];
  for (let i = 0; i < keys.length; i += BATCH) {
    made.push(...await Promise.all(keys.slice(i, i + BATCH).map(makeSlot)));
  }
  wipe(ephemeralSecret);
  for (let i = 0; i < padding.length; i += WRAPPED_SIZE) {
    made.push(padding.subarray(i, i + WRAPPED_SIZE));
  }
  // Sorted, so slot order says nothing about the order recipients were given in.
  made.sort(compareSlots);
  const slots = concatBytes(...made);
  const k = await payloadKeys(ctx, payloadKey, nonce);
  wipe(payloadKey);
  const clear = {
    nonce,
    timestamp: inner.timestamp,
    ephemeralKey,
    mode,
    slotCount,
    commitment: k.commitment,
  };
  const bound = boundFields(ctx.header, clear, await ctx.crypto.sha256(slots));
  const body = encodeCbor(
    new Map<number, CborValue>([[1, inner.ampType], [2, inner.ampVersion], [3, inner.body]]),
  );
  const bodyCiphertext = await ctx.crypto.aeadEncrypt(
    "aes-256-gcm",
    k.bodyKey,
    k.bodyNonce,
    body,
    transcript(LABEL_AAD, ...bound),
  );
  const ctHash = await ctx.crypto.sha256(bodyCiphertext);
  const signature = await ctx.crypto.ed25519Sign(
    sender.signingSeed,
    signatureTranscript(bound, ctHash, sender.card.address, sender.card.id),
  );
  const senderBox = new Map<number, CborValue>([[1, sender.card.address], [2, sender.card.id]]);
  if (ctx.includeCard) senderBox.set(3, sender.card.bytes);
  senderBox.set(4, signature);
  const senderCiphertext = await ctx.crypto.aeadEncrypt(
    "aes-256-gcm",
    k.senderKey,
    k.senderNonce,
    encodeCbor(senderBox),
    transcript(LABEL_SENDER, ...bound, ctHash),
  );
  for (const secret of [k.bodyKey, k.senderKey]) wipe(secret);
  return encodePayload({ ...clear, slots, bodyCiphertext, senderCiphertext });
}
