/**
 * Handshake helpers (SPEC §22.5): signing and verifying the signed part of HELLO,
 * HELLO_ACK and pre-key control messages, ephemeral keys, and the trust decisions
 * (a pinned or listed server card; an authorize callback or list for clients).
 * @module
 */
import { type Bytes, equalBytes, toHex, wipe } from "../bytes.ts";
import type { CryptoProvider } from "../crypto/provider.ts";
import { MissiveError } from "../errors.ts";
import { type Card, sameKeys } from "../keys/card.ts";
import type { Identity } from "../keys/identity.ts";
import { type PresharedKeys, signatureInput, signedMac } from "./keyschedule.ts";
import type { FrameHeader, SignedPart } from "./messages.ts";

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
 * once. With injected randomness (vectors) the key comes from `random(32)`; otherwise the
 * provider makes it and never lets the private key out (one call instead of two).
 */
export async function respond(
  provider: CryptoProvider,
  random: ((n: number) => Bytes) | undefined,
  peerPublicKey: Uint8Array,
): Promise<{ publicKey: Bytes; shared: Bytes }> {
  if (!random) return await provider.x25519Ephemeral(peerPublicKey);
  const eph = await newEphemeral(provider, random);
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
