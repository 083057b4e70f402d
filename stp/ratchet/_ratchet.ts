/**
 * The Double Ratchet steps (SPEC §25.6; Double Ratchet §3.4–3.5): encrypting advances the
 * sending chain; decrypting tries the skipped keys, then the current receiving chain,
 * then a DH ratchet step. A decrypt computes its changes aside and returns them as a
 * `commit` to run only once the caller has accepted the plaintext: a message that fails
 * (forged, altered, replayed, too far ahead) leaves the state exactly as it was (Double
 * Ratchet §3.5: "changes to the state object are discarded").
 * @module
 */
import { type Bytes, copyBytes, equalBytes, wipe } from "../../core/bytes.ts";
import { isMissiveError, MissiveError } from "../../core/errors.ts";
import type { CryptoProvider } from "../../crypto/provider.ts";
import type { EnvelopeHeader } from "../../envelope/mod.ts";
import {
  type InitialHeader,
  MAX_MESSAGE_NUMBER,
  type RatchetHeader,
  type RatchetPayload,
} from "./_format.ts";
import { associatedData, chainStep, messageSecrets, rootStep } from "./_kdf.ts";
import {
  MAX_PREVIOUS_KEYS,
  MAX_STORED_SKIPPED,
  type RatchetState,
  skippedId,
  type SkippedKey,
} from "./_state.ts";

/** Most message keys one message may make us skip in one chain (SPEC §25.7; MAX_SKIP). */
export const MAX_SKIP = 1000;
/** How long a skipped message key is kept (SPEC §25.7): 14 days. */
export const MAX_SKIPPED_AGE = 14 * 24 * 3600 * 1000;

/** What the steps need besides the state. */
export interface StepContext {
  crypto: CryptoProvider;
  random(length: number): Bytes;
  now: number;
}

/** A message read but not yet applied to the state. */
export interface Decrypted {
  plaintext: Bytes;
  /** The inner message's 16-byte nonce (SPEC §25.5). */
  nonce: Bytes;
  /** Applies the step to the state (and wipes what it replaces). Call at most once. */
  commit(): void;
  /** Wipes what the step derived, for a plaintext the caller refuses. */
  discard(): void;
}

async function open(ctx: StepContext, messageKey: Bytes, aad: Bytes, ciphertext: Bytes) {
  const s = await messageSecrets(ctx.crypto, messageKey);
  try {
    const plaintext = await ctx.crypto.aeadDecrypt("aes-256-gcm", s.key, s.iv, ciphertext, aad);
    return { plaintext, nonce: s.nonce };
  } catch (e) {
    if (!isMissiveError(e, "auth-failed")) throw e;
    throw new MissiveError(
      "auth-failed",
      "ratchet: the message does not authenticate (altered, forged, or of another conversation)",
    );
  } finally {
    wipe(s.key);
    wipe(s.iv);
  }
}

/** The message keys of messages `from` … `until − 1` of a chain, and its key at `until`. */
async function skipTo(
  ctx: StepContext,
  chainKey: Bytes,
  range: { from: number; until: number },
  ratchetKey: Bytes,
): Promise<{ chainKey: Bytes; skipped: SkippedKey[] }> {
  const skipped: SkippedKey[] = [];
  let ck = chainKey;
  for (let n = range.from; n < range.until; n++) {
    const step = await chainStep(ctx.crypto, ck);
    if (ck !== chainKey) wipe(ck);
    skipped.push({ ratchetKey, messageNumber: n, messageKey: step.messageKey, at: ctx.now });
    ck = step.chainKey;
  }
  return { chainKey: ck, skipped };
}

function checkSkip(count: number, what: string): void {
  if (count > MAX_SKIP) {
    throw new MissiveError(
      "too-large",
      `ratchet: ${what} is ${count} messages ahead; at most ${MAX_SKIP} may be skipped ` +
        "(too many lost messages, or a forged header)",
    );
  }
}

/** Adds skipped keys, then drops (and wipes) the expired ones and, past the cap, the oldest. */
export function storeSkipped(state: RatchetState, added: SkippedKey[], now: number): void {
  for (const k of added) state.skipped.set(skippedId(k.ratchetKey, k.messageNumber), k);
  for (const [id, k] of state.skipped) {
    if (now - k.at > MAX_SKIPPED_AGE || state.skipped.size > MAX_STORED_SKIPPED) {
      wipe(k.messageKey);
      state.skipped.delete(id);
    }
  }
}

/**
 * Reads one message against the state without changing it (Double Ratchet §3.5,
 * RatchetDecrypt): the returned `commit` applies the step.
 */
export async function decryptStep(
  state: RatchetState,
  envelope: EnvelopeHeader,
  p: RatchetPayload,
  ctx: StepContext,
): Promise<Decrypted> {
  const aad = associatedData(envelope, state.binding, p);
  const id = skippedId(p.ratchetKey, p.messageNumber);
  const stored = state.skipped.get(id);
  if (stored) {
    if (ctx.now - stored.at > MAX_SKIPPED_AGE) {
      throw new MissiveError(
        "replay",
        `ratchet: the key of message ${p.messageNumber} expired (kept ${
          MAX_SKIPPED_AGE / 86_400_000
        } days)`,
      );
    }
    const out = await open(ctx, stored.messageKey, aad, p.ciphertext);
    return {
      ...out,
      commit() {
        state.skipped.delete(id);
        wipe(stored.messageKey);
      },
      discard() {},
    };
  }
  const current = state.receivingKey !== null && equalBytes(p.ratchetKey, state.receivingKey);
  if (current && state.recvChain) return await sameChain(state, p, aad, ctx);
  if (current) {
    // An initiator awaiting its first reply: the peer never sends under its signed prekey.
    throw new MissiveError("auth-failed", "ratchet: no receiving chain for this ratchet key");
  }
  if (state.previousReceivingKeys.some((k) => equalBytes(k, p.ratchetKey))) {
    throw new MissiveError(
      "replay",
      `ratchet: message ${p.messageNumber} of a finished chain was read already, or its key expired`,
    );
  }
  return await newChain(state, p, aad, ctx);
}

/** A message of the current receiving chain. */
async function sameChain(
  state: RatchetState,
  p: RatchetPayload,
  aad: Bytes,
  ctx: StepContext,
): Promise<Decrypted> {
  const chain = state.recvChain!;
  if (p.messageNumber < state.recvCount) {
    throw new MissiveError(
      "replay",
      `ratchet: message ${p.messageNumber} was read already (a duplicate, or a replay)`,
    );
  }
  checkSkip(p.messageNumber - state.recvCount, `message ${p.messageNumber}`);
  const skip = await skipTo(
    ctx,
    chain,
    { from: state.recvCount, until: p.messageNumber },
    p.ratchetKey,
  );
  const step = await chainStep(ctx.crypto, skip.chainKey);
  if (skip.chainKey !== chain) wipe(skip.chainKey);
  const drop = () => {
    wipe(step.chainKey);
    for (const k of skip.skipped) wipe(k.messageKey);
  };
  let out;
  try {
    out = await open(ctx, step.messageKey, aad, p.ciphertext);
  } catch (e) {
    drop();
    throw e;
  } finally {
    wipe(step.messageKey);
  }
  return {
    ...out,
    commit() {
      wipe(state.recvChain!);
      state.recvChain = step.chainKey;
      state.recvCount = p.messageNumber + 1;
      storeSkipped(state, skip.skipped, ctx.now);
    },
    discard: drop,
  };
}

/** A message under a new peer ratchet key: a DH ratchet step (Double Ratchet §3.5, DHRatchet). */
async function newChain(
  state: RatchetState,
  p: RatchetPayload,
  aad: Bytes,
  ctx: StepContext,
): Promise<Decrypted> {
  const oldChain = state.recvChain;
  // A PN below what was read can only be forged; the AEAD refuses such a message anyway.
  const oldSkip = oldChain ? Math.max(0, p.previousChainLength - state.recvCount) : 0;
  checkSkip(oldSkip, `the previous chain's end (message ${p.previousChainLength})`);
  checkSkip(p.messageNumber, `message ${p.messageNumber} of a new chain`);
  const made: Bytes[] = [];
  const skipped: SkippedKey[] = [];
  try {
    if (oldChain && oldSkip > 0) {
      const until = state.recvCount + oldSkip;
      const old = await skipTo(
        ctx,
        oldChain,
        { from: state.recvCount, until },
        state.receivingKey!,
      );
      skipped.push(...old.skipped);
      made.push(old.chainKey);
    }
    const r1 = await rootStep(
      ctx.crypto,
      state.rootKey,
      await ctx.crypto.x25519(state.sendingSecret, p.ratchetKey),
    );
    made.push(r1.rootKey, r1.chainKey);
    const secret = ctx.random(32);
    made.push(secret);
    const publicKey = await ctx.crypto.x25519PublicKey(secret);
    const r2 = await rootStep(
      ctx.crypto,
      r1.rootKey,
      await ctx.crypto.x25519(secret, p.ratchetKey),
    );
    made.push(r2.rootKey, r2.chainKey);
    const fresh = await skipTo(ctx, r1.chainKey, { from: 0, until: p.messageNumber }, p.ratchetKey);
    skipped.push(...fresh.skipped);
    made.push(fresh.chainKey);
    const step = await chainStep(ctx.crypto, fresh.chainKey);
    made.push(step.chainKey);
    let out;
    try {
      out = await open(ctx, step.messageKey, aad, p.ciphertext);
    } finally {
      wipe(step.messageKey);
    }
    const keep = new Set<Bytes>([r2.rootKey, r2.chainKey, secret, step.chainKey]);
    const drop = () => {
      for (const b of made) if (!keep.has(b)) wipe(b);
    };
    return {
      ...out,
      commit() {
        drop();
        for (const b of [state.rootKey, state.sendingSecret, state.sendChain, state.recvChain]) {
          wipe(b ?? undefined);
        }
        if (state.receivingKey) {
          state.previousReceivingKeys.push(state.receivingKey);
          state.previousReceivingKeys.splice(
            0,
            state.previousReceivingKeys.length - MAX_PREVIOUS_KEYS,
          );
        }
        state.rootKey = r2.rootKey;
        state.sendingSecret = secret;
        state.sendingKey = publicKey;
        state.receivingKey = copyBytes(p.ratchetKey);
        state.previousSendCount = state.sendCount;
        state.sendCount = 0;
        state.sendChain = r2.chainKey;
        state.recvChain = step.chainKey;
        state.recvCount = p.messageNumber + 1;
        storeSkipped(state, skipped, ctx.now);
      },
      discard() {
        for (const b of made) wipe(b);
        for (const k of skipped) wipe(k.messageKey);
      },
    };
  } catch (e) {
    for (const b of made) wipe(b);
    for (const k of skipped) wipe(k.messageKey);
    throw e;
  }
}

/**
 * Seals one message (Double Ratchet §3.4, RatchetEncrypt) and advances the sending chain:
 * the state changes only once the payload exists.
 */
export async function encryptStep(
  state: RatchetState,
  envelope: EnvelopeHeader,
  plaintext: Uint8Array,
  ctx: StepContext,
): Promise<{ payload: RatchetPayload; nonce: Bytes }> {
  const chain = state.sendChain;
  if (!chain) throw new MissiveError("internal", "ratchet: no sending chain");
  if (state.sendCount >= MAX_MESSAGE_NUMBER) {
    throw new MissiveError(
      "session",
      "ratchet: this sending chain is exhausted (2^32 − 1 messages without a reply); start a new conversation",
    );
  }
  const initial: InitialHeader | undefined = state.pendingInitial ?? undefined;
  const header: RatchetHeader = {
    ratchetKey: state.sendingKey,
    previousChainLength: state.previousSendCount,
    messageNumber: state.sendCount,
    ...(initial ? { initial } : {}),
  };
  const step = await chainStep(ctx.crypto, chain);
  const s = await messageSecrets(ctx.crypto, step.messageKey);
  wipe(step.messageKey);
  let ciphertext: Bytes;
  try {
    ciphertext = await ctx.crypto.aeadEncrypt(
      "aes-256-gcm",
      s.key,
      s.iv,
      plaintext,
      associatedData(envelope, state.binding, header),
    );
  } catch (e) {
    wipe(step.chainKey);
    throw e;
  } finally {
    wipe(s.key);
    wipe(s.iv);
  }
  wipe(chain);
  state.sendChain = step.chainKey;
  state.sendCount++;
  storeSkipped(state, [], ctx.now);
  return { payload: { ...header, ciphertext }, nonce: s.nonce };
}
