/**
 * `auth` STP, type 4, version 1 (SPEC §6): an Ed25519 signature over the envelope
 * header and every field; the body travels in the clear. For acknowledgements and
 * public notices, where integrity and origin matter but secrecy does not.
 * @module
 */
import { CborReader, type CborValue, decodeCbor, encodeCbor, transcript } from "../core/cbor.ts";
import { MissiveError } from "../core/errors.ts";
import type { Inner, OpenContext, SealContext, StpOpened, StpPlugin } from "../plugin/types.ts";
import { resolveSenderCard } from "./_sender.ts";

/** STP type number of `auth`. */
export const AUTH_TYPE = 4;
const LABEL_SIG = "missive/stp/auth/v1/sig";

/** The signed transcript; it covers every payload field, the attached card (or null) too. */
function signed(
  ctx: SealContext | OpenContext,
  inner: Inner,
  senderId: Uint8Array,
  card: Uint8Array | undefined,
) {
  return transcript(
    LABEL_SIG,
    ctx.header.protocolType,
    ctx.header.protocolVersion,
    ctx.header.sequenceNumber ?? null,
    inner.nonce,
    inner.timestamp,
    inner.sender ?? "",
    senderId,
    card ?? null,
    inner.destination ?? null,
    inner.ampType,
    inner.ampVersion,
    inner.body,
  );
}

async function seal(inner: Inner, ctx: SealContext): Promise<Uint8Array> {
  const sender = ctx.sender;
  if (!sender) throw new MissiveError("usage", "auth: a sender identity is required (--from)");
  const signedInner = { ...inner, sender: sender.card.address };
  const m = new Map<number, CborValue>([
    [1, inner.nonce],
    [2, inner.timestamp],
    [3, sender.card.address],
    [4, sender.card.id],
  ]);
  if (ctx.includeCard) m.set(5, sender.card.bytes);
  if (inner.destination !== undefined) m.set(6, inner.destination);
  m.set(7, inner.ampType).set(8, inner.ampVersion).set(9, inner.body);
  const attached = ctx.includeCard ? sender.card.bytes : undefined;
  const transcriptBytes = signed(ctx, signedInner, sender.card.id, attached);
  m.set(10, await ctx.crypto.ed25519Sign(sender.signingSeed, transcriptBytes));
  return encodeCbor(m);
}

async function open(payload: Uint8Array, ctx: OpenContext): Promise<StpOpened> {
  const r = CborReader.from(decodeCbor(payload, "auth payload"), "auth payload")
    .onlyKeys([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  const inner: Inner = {
    nonce: r.bytes(1, 16),
    timestamp: r.uint(2),
    sender: r.text(3, 254),
    destination: r.optText(6, 254),
    ampType: r.uint(7, 0xffff),
    ampVersion: r.uint(8, 0xffff),
    body: r.bytes(9),
  };
  const senderId = r.bytes(4, 16);
  const signature = r.bytes(10, 64);
  const attached = r.optBytes(5, { max: 4096 });
  const card = await resolveSenderCard(ctx, {
    address: inner.sender!,
    id: senderId,
    card: attached,
  }, "auth");
  const transcriptBytes = signed(ctx, inner, senderId, attached);
  if (!(await ctx.crypto.ed25519Verify(card.signingKey, transcriptBytes, signature))) {
    throw new MissiveError("auth-failed", "auth: sender signature does not verify");
  }
  return {
    inner,
    sender: { address: inner.sender!, card, verified: true },
    warnings: ["auth: the body was signed but not encrypted"],
  };
}

/** The `auth` STP. */
export const authV1: StpPlugin = {
  kind: "stp",
  type: AUTH_TYPE,
  version: 1,
  name: "auth",
  description: "signature only (Ed25519); payload in the clear",
  properties: {
    confidentiality: false,
    authentication: "signature",
    nonRepudiation: true,
    forwardSecrecy: false,
    multiRecipient: false,
    hiddenRecipients: false,
  },
  seal,
  open,
};
