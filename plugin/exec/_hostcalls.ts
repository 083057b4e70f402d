/**
 * Host calls: operations an executable STP asks missive to perform during `seal` or
 * `open`, so that the identity's secret keys never leave the missive process. Results
 * that derive from a secret key are bound to the plugin's own (type, version) with
 * labelled transcripts, so nothing a plugin obtains works against another protocol.
 * @module
 */
import { type Bytes, wipe } from "../../core/bytes.ts";
import { type CborMap, CborReader, type CborValue, transcript } from "../../core/cbor.ts";
import type { CryptoProvider } from "../../crypto/provider.ts";
import { MissiveError } from "../../core/errors.ts";
import { type Card, decodeCard, MAX_CARD_SIZE } from "../../keys/card.ts";
import type { Identity } from "../../keys/identity.ts";
import type { HostCallHandler } from "./_process.ts";

/** Signatures made for a plugin: Ed25519 over [label, type, version, data]. */
export const LABEL_EXEC_SIGN = "missive/exec-plugin/v1/sign";
/** Keys agreed for a plugin: HKDF-SHA-256 info [label, type, version]. */
export const LABEL_EXEC_AGREE = "missive/exec-plugin/v1/agree";

/** Largest `random` request and largest `data`/`plaintext` of one host call. */
const MAX_RANDOM = 65_536;
const MAX_DATA = 64 * 1024 * 1024;

/** What a host call may use: the call's identity, crypto, randomness. */
export interface HostCallContext {
  type: number;
  version: number;
  crypto: CryptoProvider;
  /** The sender (seal) or the opener (open). */
  identity?: Identity;
  random(length: number): Bytes;
  /** Seal only: a fresh ephemeral X25519 agreement (SealContext.ephemeralAgreement). */
  ephemeralAgreement?(peer: Uint8Array): Promise<{ publicKey: Bytes; shared: Bytes }>;
}

/** A card as executable plugins see it (text keys, public fields only). */
export function cardToCbor(card: Card): CborMap {
  return new Map<string, CborValue>([
    ["address", card.address],
    ["id", card.id],
    ["signingKey", card.signingKey],
    ["agreementKey", card.agreementKey],
    ["card", card.bytes],
  ]);
}

/** Builds the handler that answers host calls within one seal or open. */
export function hostCalls(ctx: HostCallContext): HostCallHandler {
  const info = () => transcript(LABEL_EXEC_AGREE, ctx.type, ctx.version);
  const signed = (data: Uint8Array) => transcript(LABEL_EXEC_SIGN, ctx.type, ctx.version, data);
  const identity = (op: string): Identity => {
    if (!ctx.identity) throw new MissiveError("key", `host call "${op}": no identity in this call`);
    return ctx.identity;
  };
  const derive = async (raw: Bytes) => {
    try {
      return await ctx.crypto.hkdfSha256(raw, new Uint8Array(0), info(), 32);
    } finally {
      wipe(raw);
    }
  };
  const ops: Record<string, (r: CborReader) => Promise<CborValue>> = {
    random: (r) => Promise.resolve(ctx.random(r.uint("length", MAX_RANDOM))),
    sign: async (r) =>
      await ctx.crypto.ed25519Sign(
        identity("sign").signingSeed,
        signed(r.bytes("data", { max: MAX_DATA })),
      ),
    verify: async (r) =>
      await ctx.crypto.ed25519Verify(
        r.bytes("key", 32),
        signed(r.bytes("data", { max: MAX_DATA })),
        r.bytes("signature", 64),
      ),
    agree: async (r) =>
      await derive(await ctx.crypto.x25519(identity("agree").agreementKey, r.bytes("peer", 32))),
    ephemeral: async (r) => {
      if (!ctx.ephemeralAgreement) {
        throw new MissiveError("usage", `host call "ephemeral" is only available in seal`);
      }
      const { publicKey, shared } = await ctx.ephemeralAgreement(r.bytes("peer", 32));
      return new Map<string, CborValue>([["publicKey", publicKey], ["key", await derive(shared)]]);
    },
    "aead-seal": async (r) =>
      await ctx.crypto.aeadEncrypt(
        "xchacha20-poly1305",
        r.bytes("key", 32),
        r.bytes("nonce", 24),
        r.bytes("plaintext", { max: MAX_DATA }),
        r.bytes("aad", { max: MAX_DATA }),
      ),
    "aead-open": async (r) =>
      await ctx.crypto.aeadDecrypt(
        "xchacha20-poly1305",
        r.bytes("key", 32),
        r.bytes("nonce", 24),
        r.bytes("ciphertext", { max: MAX_DATA + 16 }),
        r.bytes("aad", { max: MAX_DATA }),
      ),
    card: async (r) =>
      cardToCbor(await decodeCard(ctx.crypto, r.bytes("card", { max: MAX_CARD_SIZE }))),
  };
  return async (call) => {
    const op = call.get("host");
    const fn = typeof op === "string" && Object.hasOwn(ops, op) ? ops[op] : undefined;
    if (!fn) throw new MissiveError("usage", `unknown host call ${JSON.stringify(op)}`);
    return await fn(new CborReader(call, `host call "${op}"`));
  };
}
