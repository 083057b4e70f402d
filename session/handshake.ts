/**
 * Handshake helpers (SPEC §22.5): signing and verifying the signed part of HELLO,
 * HELLO_ACK and pre-key control messages, ephemeral keys, and the trust decisions
 * (a pinned or listed server card; an authorize callback or list for clients).
 * @module
 */
import { type Bytes, equalBytes, toHex, wipe } from "../core/bytes.ts";
import type { CryptoProvider } from "../crypto/provider.ts";
import { MissiveError } from "../core/errors.ts";
import { type Card, sameKeys } from "../keys/card.ts";
import type { Identity } from "../keys/identity.ts";
import {
  deriveKeys,
  helloContext,
  type PresharedKeys,
  type SessionKeys,
  signatureInput,
  signedMac,
} from "./keyschedule.ts";
import { encodeHelloBody, type FrameHeader, type SignedPart } from "./messages.ts";

/** Signs (and, with s0, MACs) a body for the given header and context. */
export async function signPart(
  provider: CryptoProvider,
  identity: Identity,
  header: FrameHeader,
  body: Bytes,
  context: Uint8Array,
  psk: PresharedKeys | undefined,
): Promise<SignedPart> {
  const input = signatureInput(header, body, context);
  const signature = await provider.ed25519Sign(identity.signingSeed, input);
  const mac = psk ? await signedMac(provider, psk.macKey, input, signature) : undefined;
  return { body, signature, mac };
}

/**
 * Verifies a signed part against `signer`'s card. The MAC must be present exactly when
 * s0 is configured. Throws `auth-failed` naming what failed.
 */
export async function verifyPart(
  provider: CryptoProvider,
  signer: Card,
  header: FrameHeader,
  part: SignedPart,
  context: Uint8Array,
  psk: PresharedKeys | undefined,
): Promise<void> {
  const input = signatureInput(header, part.body, context);
  if (!(await provider.ed25519Verify(signer.signingKey, input, part.signature))) {
    throw new MissiveError("auth-failed", `session: bad signature from ${signer.address}`);
  }
  if (psk && !part.mac) {
    throw new MissiveError("auth-failed", "session: the peer sent no s0 MAC (is s0 configured?)");
  }
  if (!psk && part.mac) {
    throw new MissiveError(
      "auth-failed",
      "session: the peer MACs with a pre-shared s0 that is not configured here",
    );
  }
  if (psk && part.mac) {
    const expected = await signedMac(provider, psk.macKey, input, part.signature);
    if (!equalBytes(expected, part.mac)) {
      throw new MissiveError("auth-failed", "session: bad s0 MAC (different pre-shared secret?)");
    }
  }
}

/** A fresh ephemeral X25519 key pair. */
export interface Ephemeral {
  privateKey: Bytes;
  publicKey: Bytes;
}

export async function newEphemeral(
  provider: CryptoProvider,
  random: (n: number) => Bytes,
): Promise<Ephemeral> {
  const privateKey = random(32);
  return { privateKey, publicKey: await provider.x25519PublicKey(privateKey) };
}

/**
 * The responder's side of an exchange: a fresh ephemeral key agreed with the peer's at
 * once. A key made beforehand (`made`: the server's, while the HELLO was on its way) is
 * used and erased; with injected randomness (vectors) the key comes from `random(32)`;
 * otherwise the provider makes it and never lets the private key out.
 */
export async function respond(
  provider: CryptoProvider,
  random: ((n: number) => Bytes) | undefined,
  peerPublicKey: Uint8Array,
  made?: Promise<Ephemeral>,
): Promise<{ publicKey: Bytes; shared: Bytes }> {
  if (!made && !random) return await provider.x25519Ephemeral(peerPublicKey);
  const eph = await (made ?? newEphemeral(provider, random as (n: number) => Bytes));
  return { publicKey: eph.publicKey, shared: await agree(provider, eph, peerPublicKey) };
}

/** X25519 with the peer's ephemeral key; the private key is erased afterwards. */
export async function agree(
  provider: CryptoProvider,
  mine: Ephemeral,
  peerPublicKey: Uint8Array,
): Promise<Bytes> {
  try {
    return await provider.x25519(mine.privateKey, peerPublicKey);
  } finally {
    wipe(mine.privateKey);
  }
}

/** How a client decides whether the server's card is the right one. */
export interface ServerTrust {
  /** The pinned server card. */
  peer?: Card;
  /** Any of these cards is accepted. */
  trusted?: readonly Card[];
}

/** Throws `untrusted` unless `card` is the pinned card or one of the trusted ones. */
export function checkServerCard(card: Card, trust: ServerTrust): void {
  if (trust.peer) {
    if (sameKeys(card, trust.peer)) return;
    throw new MissiveError(
      "untrusted",
      `session: the server presented ${card.address} (id ${toHex(card.id)}), ` +
        `not the pinned card ${trust.peer.address} (id ${toHex(trust.peer.id)})`,
    );
  }
  if (trust.trusted?.some((t) => sameKeys(t, card))) return;
  throw new MissiveError(
    "untrusted",
    `session: the server ${card.address} (id ${toHex(card.id)}) is not among the trusted cards`,
  );
}

/** The cards a client may verify a pre-key CLOSE from the server with. */
export function serverCandidates(trust: ServerTrust): readonly Card[] {
  return trust.peer ? [trust.peer] : trust.trusted ?? [];
}

/** A handshake in progress (SPEC §22.5): this side's HELLO or answer, and the contexts. */
export interface Handshake {
  /** The initiator's ephemeral key, until the HELLO_ACK arrives. */
  eph?: Ephemeral;
  helloBody: Bytes;
  /** Context of this side's signatures, and of the peer's (SPEC §22.5.1). */
  myContext: Bytes;
  peerContext: Bytes;
  /** Re-key: the acknowledged count that made it due (reported in the event). */
  dueAt?: number;
}

/**
 * Initiator: a HELLO body with a fresh ephemeral key (or one `made` beforehand), under
 * chain value `chain`.
 */
export async function initiate(
  provider: CryptoProvider,
  identity: Identity,
  random: (n: number) => Bytes,
  chain: Bytes,
  acknowledged?: number,
  made?: Promise<Ephemeral>,
): Promise<Handshake> {
  const eph = await (made ?? newEphemeral(provider, random));
  const helloBody = encodeHelloBody({
    ephemeralKey: eph.publicKey,
    card: identity.card.bytes,
    acknowledged,
  });
  return {
    eph,
    helloBody,
    myContext: chain,
    peerContext: await helloContext(provider, chain, helloBody),
    dueAt: acknowledged,
  };
}

/** Responder: the HELLO_ACK body, the new keys, and this side's handshake state. */
export async function answer(
  provider: CryptoProvider,
  identity: Identity,
  random: ((n: number) => Bytes) | undefined,
  input: {
    chain: Bytes;
    helloBody: Bytes;
    peerEphemeral: Uint8Array;
    psk?: PresharedKeys;
    /** helloContext(chain, helloBody), when the caller has it already. */
    myContext?: Bytes;
    /** This side's ephemeral key, when made beforehand (see `respond`). */
    ephemeral?: Promise<Ephemeral>;
  },
): Promise<{ ackBody: Bytes; keys: SessionKeys; hs: Handshake }> {
  const { publicKey, shared } = await respond(
    provider,
    random,
    input.peerEphemeral,
    input.ephemeral,
  );
  const ackBody = encodeHelloBody({ ephemeralKey: publicKey, card: identity.card.bytes });
  const myContext = input.myContext ?? await helloContext(provider, input.chain, input.helloBody);
  const keys = await deriveKeys(provider, {
    shared,
    chain: input.chain,
    helloBody: input.helloBody,
    helloAckBody: ackBody,
    psk: input.psk,
  });
  return { ackBody, keys, hs: { helloBody: input.helloBody, myContext, peerContext: input.chain } };
}

/** Initiator: the keys, once the peer's HELLO_ACK body arrived. */
export async function complete(
  provider: CryptoProvider,
  hs: Handshake,
  input: { chain: Bytes; ackBody: Bytes; peerEphemeral: Uint8Array; psk?: PresharedKeys },
): Promise<SessionKeys> {
  if (!hs.eph) throw new MissiveError("internal", "session: no ephemeral key to complete with");
  return await deriveKeys(provider, {
    shared: await agree(provider, hs.eph, input.peerEphemeral),
    chain: input.chain,
    helloBody: hs.helloBody,
    helloAckBody: input.ackBody,
    psk: input.psk,
  });
}
