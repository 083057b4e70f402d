/**
 * Opening of the `group` STP (SPEC §19.7, §19.10.4): one X25519, the slot found by its
 * hint or by trial (v1 hidden), then (v2) one X-Wing decapsulation of that slot,
 * commitment, sender box, signature, then the body.
 * @module
 */
import { type Bytes, equalBytes, toHex, wipe } from "../../core/bytes.ts";
import { CborReader, decodeCbor, transcript } from "../../core/cbor.ts";
import { MissiveError } from "../../core/errors.ts";
import { MAX_CARD_SIZE } from "../../keys/card.ts";
import type { Inner, OpenContext, StpOpened } from "../../plugin/types.ts";
import { resolveSenderCard } from "../_sender.ts";
import {
  boundFields,
  decodePayload,
  GROUP_PQ_VERSION,
  type GroupLabels,
  groupLabels,
  type GroupPayload,
  type GroupVersion,
  hasHints,
  HINT_SIZE,
  KEM_CIPHERTEXT_SIZE,
  MODE_HIDDEN,
  slotSize,
  WRAPPED_SIZE,
} from "./_format.ts";
import {
  type PayloadKeys,
  payloadKeys,
  signatureTranscript,
  slotHint,
  slotKek,
  slotSecrets,
  ZERO_NONCE,
} from "./_keys.ts";

/** Whether the slot at `at` starts with `hint` (no subarray per slot: tables run to 65,536). */
function hintAt(slots: Bytes, at: number, hint: Bytes): boolean {
  let diff = 0;
  for (let i = 0; i < HINT_SIZE; i++) diff |= slots[at + i] ^ hint[i];
  return diff === 0;
}

/**
 * Finds and unwraps this identity's slot: one X25519, then the hint picks the slot, or
 * (v1 hidden) every slot is tried with the one KEK; v2 decapsulates each slot whose hint
 * matches (normally one). Distinguishes "no slot for me" (not-a-recipient) from "my slot
 * is there but does not unwrap" (auth-failed, whenever a hint matched).
 */
async function unwrapMySlot(
  version: GroupVersion,
  labels: GroupLabels,
  p: GroupPayload,
  ctx: OpenContext,
): Promise<Bytes> {
  const me = ctx.identity!;
  if (version === GROUP_PQ_VERSION && !me.hybridSeed) {
    throw new MissiveError("key", `group v2: the key of ${me.card.address} has no X-Wing seed`);
  }
  const shared = await ctx.crypto.x25519(me.agreementKey, p.ephemeralKey);
  const eph = p.ephemeralKey;
  const mine = me.card.agreementKey;
  const { hint, kek } = version === GROUP_PQ_VERSION
    ? { hint: await slotHint(ctx, labels, shared, eph, mine, p.nonce), kek: undefined }
    : await slotSecrets(ctx, labels, shared, eph, mine, p.nonce);
  wipe(shared);
  const wrapAad = transcript(labels.wrap, p.nonce);
  const size = slotSize(p.mode, version);
  const hinted = hasHints(p.mode, version);
  let matched = 0;
  try {
    for (let at = 0; at < p.slots.length; at += size) {
      if (hinted && !hintAt(p.slots, at, hint)) continue;
      matched++;
      const wrapped = p.slots.subarray(at + size - WRAPPED_SIZE, at + size);
      const slotKek = kek ?? await kemKek(ctx, labels, p, at);
      try {
        return await ctx.crypto.aeadDecrypt("aes-256-gcm", slotKek, ZERO_NONCE, wrapped, wrapAad);
      } catch (e) {
        if (!(e instanceof MissiveError && e.code === "auth-failed")) throw e;
      } finally {
        if (!kek) wipe(slotKek);
      }
    }
  } finally {
    wipe(kek);
  }
  if (hinted && matched > 0) {
    throw new MissiveError(
      "auth-failed",
      "group: the slot for this key does not unwrap (the message was altered)",
    );
  }
  throw new MissiveError(
    "not-a-recipient",
    `not a recipient: none of the ${p.slotCount} ${
      p.mode === MODE_HIDDEN ? "hidden " : ""
    }key slots is for ${me.card.address} (ID ${toHex(me.card.id)})`,
  );
}

/** v2: the KEK of the slot at `at`, from decapsulating its X-Wing ciphertext. */
async function kemKek(ctx: OpenContext, labels: GroupLabels, p: GroupPayload, at: number) {
  const me = ctx.identity!;
  const ciphertext = p.slots.subarray(at + HINT_SIZE, at + HINT_SIZE + KEM_CIPHERTEXT_SIZE);
  let shared: Bytes;
  try {
    shared = await ctx.crypto.xwingDecapsulate(me.hybridSeed!, ciphertext);
  } catch (e) {
    if (!(e instanceof MissiveError && e.code === "auth-failed")) throw e;
    throw new MissiveError(
      "auth-failed",
      "group: the slot for this key does not unwrap (the message was altered)",
    );
  }
  try {
    return await slotKek(ctx, labels, shared, ciphertext, me.card.hybridKey!, p.nonce);
  } finally {
    wipe(shared);
  }
}

/** AES-256-GCM open of the body or sender box, with a group-specific failure. */
async function openBox(
  ctx: OpenContext,
  key: Bytes,
  nonce: Bytes,
  ciphertext: Bytes,
  aad: Bytes,
  what: string,
): Promise<Bytes> {
  try {
    return await ctx.crypto.aeadDecrypt("aes-256-gcm", key, nonce, ciphertext, aad);
  } catch (e) {
    if (!(e instanceof MissiveError && e.code === "auth-failed")) throw e;
    throw new MissiveError("auth-failed", `group: the ${what} does not decrypt (altered)`);
  }
}

export async function openGroup(
  version: GroupVersion,
  payload: Uint8Array,
  ctx: OpenContext,
): Promise<StpOpened> {
  const p = decodePayload(payload, version);
  const me = ctx.identity;
  if (!me) throw new MissiveError("usage", "group: opening needs the recipient's key (--key)");
  const labels = groupLabels(version);
  const payloadKey = await unwrapMySlot(version, labels, p, ctx);
  const k = await payloadKeys(ctx, labels, payloadKey, p.nonce);
  wipe(payloadKey);
  try {
    return await openWithKeys(labels, p, ctx, k);
  } finally {
    wipe(k.bodyKey);
    wipe(k.senderKey);
  }
}

/** Steps 5–9 of SPEC §19.7, once the payload key is known. */
async function openWithKeys(
  labels: GroupLabels,
  p: GroupPayload,
  ctx: OpenContext,
  k: PayloadKeys,
): Promise<StpOpened> {
  const me = ctx.identity!;
  if (!equalBytes(k.commitment, p.commitment)) {
    throw new MissiveError("auth-failed", "group: key commitment does not match the payload key");
  }
  const bound = boundFields(ctx.header, p, await ctx.crypto.sha256(p.slots));
  const ctHash = await ctx.crypto.sha256(p.bodyCiphertext);
  const senderBytes = await openBox(
    ctx,
    k.senderKey,
    k.senderNonce,
    p.senderCiphertext,
    transcript(labels.sender, ...bound, ctHash),
    "sender box",
  );
  const s = CborReader.from(decodeCbor(senderBytes, "group sender"), "group sender")
    .onlyKeys([1, 2, 3, 4]);
  const address = s.text(1, 254);
  const senderId = s.bytes(2, 16);
  const card = await resolveSenderCard(
    ctx,
    { address, id: senderId, card: s.optBytes(3, { max: MAX_CARD_SIZE }) },
    "group",
  );
  const signed = signatureTranscript(labels, bound, ctHash, address, senderId);
  if (!(await ctx.crypto.ed25519Verify(card.signingKey, signed, s.bytes(4, 64)))) {
    throw new MissiveError("auth-failed", "group: sender signature does not verify");
  }
  const body = await openBox(
    ctx,
    k.bodyKey,
    k.bodyNonce,
    p.bodyCiphertext,
    transcript(labels.aad, ...bound),
    "body",
  );
  const b = CborReader.from(decodeCbor(body, "group body"), "group body").onlyKeys([1, 2, 3]);
  const inner: Inner = {
    ampType: b.uint(1, 0xffff),
    ampVersion: b.uint(2, 0xffff),
    body: b.bytes(3),
    timestamp: p.timestamp,
    nonce: p.nonce,
    sender: address,
    destination: me.card.address,
  };
  return { inner, sender: { address, card, verified: true }, warnings: [] };
}
