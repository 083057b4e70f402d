/**
 * Opening of the `group` STP (SPEC §19.7): one X25519, the slot found by its hint or by
 * trial (hidden), commitment, sender box, signature, then the body.
 * @module
 */
import { type Bytes, equalBytes, toHex, wipe } from "../../core/bytes.ts";
import { CborReader, decodeCbor, transcript } from "../../core/cbor.ts";
import { MissiveError } from "../../core/errors.ts";
import type { Inner, OpenContext, StpOpened } from "../../plugin/types.ts";
import { resolveSenderCard } from "../_sender.ts";
import {
  boundFields,
  decodePayload,
  type GroupPayload,
  HINT_SIZE,
  LABEL_AAD,
  LABEL_SENDER,
  LABEL_WRAP,
  MODE_HIDDEN,
  MODE_HINTED,
  slotSize,
  WRAPPED_SIZE,
} from "./_format.ts";
import {
  type PayloadKeys,
  payloadKeys,
  signatureTranscript,
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
 * (hidden) every slot is tried with the one KEK. Distinguishes "no slot for me"
 * (not-a-recipient) from "my slot is there but does not unwrap" (auth-failed, hinted).
 */
async function unwrapMySlot(p: GroupPayload, ctx: OpenContext): Promise<Bytes> {
  const me = ctx.identity!;
  const shared = await ctx.crypto.x25519(me.agreementKey, p.ephemeralKey);
  const { hint, kek } = await slotSecrets(
    ctx,
    shared,
    p.ephemeralKey,
    me.card.agreementKey,
    p.nonce,
  );
  wipe(shared);
  const wrapAad = transcript(LABEL_WRAP, p.nonce);
  const size = slotSize(p.mode);
  let matched = 0;
  try {
    for (let at = 0; at < p.slots.length; at += size) {
      if (p.mode === MODE_HINTED && !hintAt(p.slots, at, hint)) continue;
      matched++;
      const wrapped = p.slots.subarray(at + size - WRAPPED_SIZE, at + size);
      try {
        return await ctx.crypto.aeadDecrypt("aes-256-gcm", kek, ZERO_NONCE, wrapped, wrapAad);
      } catch (e) {
        if (!(e instanceof MissiveError && e.code === "auth-failed")) throw e;
      }
    }
  } finally {
    wipe(kek);
  }
  if (p.mode === MODE_HINTED && matched > 0) {
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

export async function openGroup(payload: Uint8Array, ctx: OpenContext): Promise<StpOpened> {
  const p = decodePayload(payload);
  const me = ctx.identity;
  if (!me) throw new MissiveError("usage", "group: opening needs the recipient's key (--key)");
  const payloadKey = await unwrapMySlot(p, ctx);
  const k = await payloadKeys(ctx, payloadKey, p.nonce);
  wipe(payloadKey);
  try {
    return await openWithKeys(p, ctx, k);
  } finally {
    wipe(k.bodyKey);
    wipe(k.senderKey);
  }
}

/** Steps 5–9 of SPEC §19.7, once the payload key is known. */
async function openWithKeys(
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
    transcript(LABEL_SENDER, ...bound, ctHash),
    "sender box",
  );
  const s = CborReader.from(decodeCbor(senderBytes, "group sender"), "group sender")
    .onlyKeys([1, 2, 3, 4]);
  const address = s.text(1, 254);
  const senderId = s.bytes(2, 16);
  const card = await resolveSenderCard(
    ctx,
    { address, id: senderId, card: s.optBytes(3, { max: 4096 }) },
    "group",
  );
  const signed = signatureTranscript(bound, ctHash, address, senderId);
  if (!(await ctx.crypto.ed25519Verify(card.signingKey, signed, s.bytes(4, 64)))) {
    throw new MissiveError("auth-failed", "group: sender signature does not verify");
  }
  const body = await openBox(
    ctx,
    k.bodyKey,
    k.bodyNonce,
    p.bodyCiphertext,
    transcript(LABEL_AAD, ...bound),
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
