/**
 * `group` STP, type 3, version 1 (PhoneX STPSimpleGroup; SPEC §19): one ciphertext for
 * many recipients. The inner message is sealed once under a random payload key; one
 * ephemeral X25519 key per message gives every recipient device a key slot that wraps
 * the payload key. Slots carry an 8-byte hint derived from the recipient's shared
 * secret (one X25519 to open), or none in hidden mode (the opener tries each slot with
 * its one key-encryption key). The sender signs the header, every slot (by hash), a key
 * commitment and the ciphertext hash; the signature travels encrypted.
 * @module
 */
import { type Bytes, concatBytes, equalBytes, toHex, wipe } from "../../bytes.ts";
import { CborReader, type CborValue, decodeCbor, encodeCbor, transcript } from "../../cbor.ts";
import { MissiveError } from "../../errors.ts";
import type { Card } from "../../keys/card.ts";
import type {
  Inner,
  OpenContext,
  SealContext,
  StpOpened,
  StpPlugin,
  StpProperties,
} from "../../types.ts";
import { resolveSenderCard } from "../sender.ts";
import {
  boundFields,
  compareSlots,
  decodePayload,
  encodePayload,
  GROUP_TYPE,
  type GroupPayload,
  HINT_SIZE,
  LABEL_AAD,
  LABEL_KEYS,
  LABEL_SENDER,
  LABEL_SIG,
  LABEL_SLOT,
  LABEL_WRAP,
  MAX_SLOTS,
  MIN_HIDDEN_SLOTS,
  MODE_HIDDEN,
  MODE_HINTED,
  NONCE_SIZE,
  type SlotMode,
  slotSize,
  WRAPPED_SIZE,
} from "./format.ts";

export { GROUP_TYPE } from "./format.ts";
export { decodePayload as decodeGroupPayload, describePayload } from "./format.ts";

type Ctx = SealContext | OpenContext;
const ZERO_NONCE = new Uint8Array(12);
/** Slots sealed concurrently: enough to keep WebCrypto busy, few enough to bound memory. */
const BATCH = 256;

/** hint (8) ‖ key-encryption key (32) of one recipient key (SPEC §19.3). */
async function slotSecrets(
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
async function payloadKeys(ctx: Ctx, payloadKey: Bytes, nonce: Bytes) {
  const okm = await ctx.crypto.hkdfSha256(payloadKey, nonce, transcript(LABEL_KEYS), 120);
  return {
    commitment: okm.slice(0, 32),
    bodyKey: okm.slice(32, 64),
    bodyNonce: okm.slice(64, 76),
    senderKey: okm.slice(76, 108),
    senderNonce: okm.slice(108, 120),
  };
}

const signatureTranscript = (bound: CborValue[], ctHash: Bytes, address: string, id: Bytes) =>
  transcript(LABEL_SIG, ...bound, ctHash, address, id);

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

async function seal(inner: Inner, ctx: SealContext): Promise<Uint8Array> {
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
      const slot = p.slots.subarray(at, at + size);
      if (p.mode === MODE_HINTED && !equalBytes(slot.subarray(0, HINT_SIZE), hint)) continue;
      matched++;
      const wrapped = slot.subarray(size - WRAPPED_SIZE);
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

async function open(payload: Uint8Array, ctx: OpenContext): Promise<StpOpened> {
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
  k: Awaited<ReturnType<typeof payloadKeys>>,
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

const PROPERTIES: StpProperties = {
  confidentiality: true,
  authentication: "signature",
  nonRepudiation: true,
  forwardSecrecy: false,
  multiRecipient: true,
  hiddenRecipients: true,
};

/** The `group` STP (type 3, version 1). */
export const groupStp: StpPlugin = {
  kind: "stp",
  type: GROUP_TYPE,
  version: 1,
  name: "group",
  description:
    "many recipients: one AES-256-GCM ciphertext, one X25519 key slot each, Ed25519; optional hidden recipients",
  properties: PROPERTIES,
  seal,
  open,
};
