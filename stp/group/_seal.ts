/**
 * Sealing of the `group` STP (SPEC §19.5, §19.10.3): de-duplicated recipient keys, one
 * slot each (v1: through one ephemeral X25519 key; v2: an X-Wing encapsulation, hinted
 * through one ephemeral X25519 key), hidden-mode padding, sorted slots, signed transcript.
 * @module
 */
import { type Bytes, concatBytes, toHex, wipe } from "../../core/bytes.ts";
import { type CborValue, encodeCbor, transcript } from "../../core/cbor.ts";
import { MissiveError } from "../../core/errors.ts";
import { MAX_ENVELOPE_SIZE } from "../../envelope/mod.ts";
import { type Card, MAX_CARD_SIZE } from "../../keys/card.ts";
import type { Inner, SealContext } from "../../plugin/types.ts";
import {
  boundFields,
  compareSlots,
  encodePayload,
  GROUP_PQ_VERSION,
  groupLabels,
  type GroupVersion,
  HINT_SIZE,
  MAX_SLOTS,
  MIN_HIDDEN_SLOTS,
  MODE_HIDDEN,
  MODE_HINTED,
  NONCE_SIZE,
  type SlotMode,
  slotSize,
  WRAPPED_SIZE,
} from "./_format.ts";
import {
  payloadKeys,
  signatureTranscript,
  slotHint,
  slotKek,
  slotSecrets,
  ZERO_NONCE,
} from "./_keys.ts";

/** Slots sealed concurrently: enough to keep WebCrypto busy, few enough to bound memory. */
const BATCH = 256;
/**
 * Room an envelope needs beside its slot table and body: the clear fields, the sender box
 * with a card of the largest size, AEAD tags and CBOR headers (SPEC §19.8).
 */
const ENVELOPE_ROOM = MAX_CARD_SIZE + 1024;

/** One slot's recipient: the X25519 key (hint; v1 also the KEK) and, v2, the X-Wing key. */
interface SlotRecipient {
  agreementKey: Uint8Array;
  hybridKey?: Uint8Array;
}

/**
 * One slot per distinct recipient key (a card is one device today; SPEC §19.5): v1 the
 * X25519 key, v2 the pair of X25519 and X-Wing keys, both of which the slot uses.
 */
function distinctRecipients(version: GroupVersion, cards: readonly Card[]): SlotRecipient[] {
  const seen = new Map<string, SlotRecipient>();
  for (const card of cards) {
    if (version === GROUP_PQ_VERSION && !card.hybridKey) {
      throw new MissiveError(
        "key",
        `group v2: ${card.address}'s card has no post-quantum key (format 1); seal with group v1`,
      );
    }
    const key = version === GROUP_PQ_VERSION
      ? toHex(card.agreementKey) + toHex(card.hybridKey!)
      : toHex(card.agreementKey);
    seen.set(key, { agreementKey: card.agreementKey, hybridKey: card.hybridKey });
  }
  return [...seen.values()];
}

/** The smallest power of two ≥ n, at least MIN_HIDDEN_SLOTS (SPEC §19.6). */
function paddedCount(n: number): number {
  let p = MIN_HIDDEN_SLOTS;
  while (p < n) p *= 2;
  return p;
}

/** Refuses, before any key work, a slot table that cannot fit the 64 MiB envelope. */
function checkSize(
  version: GroupVersion,
  mode: SlotMode,
  slotCount: number,
  n: number,
  body: number,
) {
  const size = slotSize(mode, version);
  const bytes = slotCount * size + body + ENVELOPE_ROOM;
  if (bytes <= MAX_ENVELOPE_SIZE) return;
  const fit = Math.floor((MAX_ENVELOPE_SIZE - body - ENVELOPE_ROOM) / size);
  throw new MissiveError(
    "too-large",
    `group v${version}: ${n} recipients need ${slotCount} key slots of ${size} bytes ` +
      `(${slotCount * size} bytes), more than the ${MAX_ENVELOPE_SIZE}-byte envelope holds ` +
      `with this message: at most ${fit} slots${mode === MODE_HIDDEN ? " (padded count)" : ""}`,
  );
}

export async function sealGroup(
  version: GroupVersion,
  inner: Inner,
  ctx: SealContext,
): Promise<Uint8Array> {
  const sender = ctx.sender;
  if (!sender) throw new MissiveError("usage", "group: a sender identity is required (--from)");
  const recipients = distinctRecipients(version, ctx.recipients);
  if (recipients.length === 0) {
    throw new MissiveError("usage", "group: at least one recipient (--to)");
  }
  if (recipients.length > MAX_SLOTS) {
    throw new MissiveError(
      "usage",
      `group: at most ${MAX_SLOTS} recipients, got ${recipients.length}`,
    );
  }
  const mode: SlotMode = ctx.hideRecipients ? MODE_HIDDEN : MODE_HINTED;
  const slotCount = mode === MODE_HIDDEN ? paddedCount(recipients.length) : recipients.length;
  checkSize(version, mode, slotCount, recipients.length, inner.body.length);
  const nonce = new Uint8Array(inner.nonce);
  if (nonce.length !== NONCE_SIZE) {
    throw new MissiveError("internal", "group: nonce must be 16 bytes");
  }
  const labels = groupLabels(version);
  const ephemeralSecret = ctx.random(32);
  const payloadKey = ctx.random(32);
  const ephemeralKey = await ctx.crypto.x25519PublicKey(ephemeralSecret);
  const wrapAad = transcript(labels.wrap, nonce);
  const wrap = (kek: Bytes) =>
    ctx.crypto.aeadEncrypt("aes-256-gcm", kek, ZERO_NONCE, payloadKey, wrapAad);
  const kem = ctx.kemEncapsulate ?? ((k: Uint8Array) => ctx.crypto.xwingEncapsulate(k));

  const slotV1 = async (r: SlotRecipient): Promise<Bytes> => {
    const shared = await ctx.crypto.x25519(ephemeralSecret, r.agreementKey);
    const { hint, kek } = await slotSecrets(
      ctx,
      labels,
      shared,
      ephemeralKey,
      r.agreementKey,
      nonce,
    );
    const wrapped = await wrap(kek);
    wipe(shared);
    wipe(kek);
    return mode === MODE_HINTED ? concatBytes(hint, wrapped) : wrapped;
  };
  const slotV2 = async (
    r: SlotRecipient,
    encapsulated: Promise<{ ciphertext: Bytes; shared: Bytes }>,
  ): Promise<Bytes> => {
    const shared = await ctx.crypto.x25519(ephemeralSecret, r.agreementKey);
    const hint = await slotHint(ctx, labels, shared, ephemeralKey, r.agreementKey, nonce);
    wipe(shared);
    const { ciphertext, shared: kemShared } = await encapsulated;
    const kek = await slotKek(ctx, labels, kemShared, ciphertext, r.hybridKey!, nonce);
    wipe(kemShared);
    const wrapped = await wrap(kek);
    wipe(kek);
    return concatBytes(hint, ciphertext, wrapped);
  };

  const made: Bytes[] = [];
  for (let i = 0; i < recipients.length; i += BATCH) {
    const batch = recipients.slice(i, i + BATCH);
    if (version === GROUP_PQ_VERSION) {
      // Encapsulations start in recipient order, so injected randomness (vectors) is drawn
      // in that order whatever order the provider finishes in.
      const encapsulations = batch.map((r) => kem(r.hybridKey!));
      made.push(...await Promise.all(batch.map((r, j) => slotV2(r, encapsulations[j]))));
    } else {
      made.push(...await Promise.all(batch.map(slotV1)));
    }
  }
  wipe(ephemeralSecret);
  made.push(...await dummySlots(version, ctx, slotCount - recipients.length, kem));
  // Sorted, so slot order says nothing about the order recipients were given in.
  made.sort(compareSlots);
  const slots = concatBytes(...made);
  return await sealBody(version, inner, ctx, {
    nonce,
    ephemeralKey,
    mode,
    slotCount,
    slots,
    payloadKey,
  });
}

/**
 * Hidden-mode padding (SPEC §19.6, §19.10.3). v1: random 48-byte records, which look like
 * wrapped keys. v2: random hint and wrapped key around a real X-Wing encapsulation to a
 * throwaway key made for this message (random bytes would not pass for an ML-KEM
 * ciphertext or an X25519 public key), so dummies and real slots look alike.
 */
async function dummySlots(
  version: GroupVersion,
  ctx: SealContext,
  count: number,
  kem: (key: Uint8Array) => Promise<{ ciphertext: Bytes; shared: Bytes }>,
): Promise<Bytes[]> {
  if (version !== GROUP_PQ_VERSION) {
    // Drawn even when empty: v1 vectors list a zero-length padding draw (SPEC §19.5 step 3).
    const padding = ctx.random(count * WRAPPED_SIZE);
    return Array.from(
      { length: count },
      (_, i) => padding.subarray(i * WRAPPED_SIZE, (i + 1) * WRAPPED_SIZE),
    );
  }
  if (count === 0) return [];
  const padding = ctx.random(count * (HINT_SIZE + WRAPPED_SIZE));
  const throwawaySeed = ctx.random(32);
  const throwawayKey = await ctx.crypto.xwingPublicKey(throwawaySeed);
  wipe(throwawaySeed);
  const out: Bytes[] = [];
  for (let i = 0; i < count; i += BATCH) {
    const n = Math.min(BATCH, count - i);
    const encapsulations = Array.from({ length: n }, () => kem(throwawayKey));
    const done = await Promise.all(encapsulations);
    done.forEach(({ ciphertext, shared }, j) => {
      wipe(shared);
      const at = (i + j) * (HINT_SIZE + WRAPPED_SIZE);
      out.push(concatBytes(
        padding.subarray(at, at + HINT_SIZE),
        ciphertext,
        padding.subarray(at + HINT_SIZE, at + HINT_SIZE + WRAPPED_SIZE),
      ));
    });
  }
  return out;
}

/** Steps 5–9 of SPEC §19.5, once the slot table is made. */
async function sealBody(
  version: GroupVersion,
  inner: Inner,
  ctx: SealContext,
  t: {
    nonce: Bytes;
    ephemeralKey: Bytes;
    mode: SlotMode;
    slotCount: number;
    slots: Bytes;
    payloadKey: Bytes;
  },
): Promise<Bytes> {
  const sender = ctx.sender!;
  const labels = groupLabels(version);
  const k = await payloadKeys(ctx, labels, t.payloadKey, t.nonce);
  wipe(t.payloadKey);
  const clear = {
    nonce: t.nonce,
    timestamp: inner.timestamp,
    ephemeralKey: t.ephemeralKey,
    mode: t.mode,
    slotCount: t.slotCount,
    commitment: k.commitment,
  };
  const bound = boundFields(ctx.header, clear, await ctx.crypto.sha256(t.slots));
  const body = encodeCbor(
    new Map<number, CborValue>([[1, inner.ampType], [2, inner.ampVersion], [3, inner.body]]),
  );
  const bodyCiphertext = await ctx.crypto.aeadEncrypt(
    "aes-256-gcm",
    k.bodyKey,
    k.bodyNonce,
    body,
    transcript(labels.aad, ...bound),
  );
  const ctHash = await ctx.crypto.sha256(bodyCiphertext);
  const signature = await ctx.crypto.ed25519Sign(
    sender.signingSeed,
    signatureTranscript(labels, bound, ctHash, sender.card.address, sender.card.id),
  );
  const senderBox = new Map<number, CborValue>([[1, sender.card.address], [2, sender.card.id]]);
  if (ctx.includeCard) senderBox.set(3, sender.card.bytes);
  senderBox.set(4, signature);
  const senderCiphertext = await ctx.crypto.aeadEncrypt(
    "aes-256-gcm",
    k.senderKey,
    k.senderNonce,
    encodeCbor(senderBox),
    transcript(labels.sender, ...bound, ctHash),
  );
  for (const secret of [k.bodyKey, k.senderKey]) wipe(secret);
  return encodePayload({ ...clear, slots: t.slots, bodyCiphertext, senderCiphertext });
}
