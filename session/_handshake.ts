/**
 * The handshake steps of session version 1 (SPEC §22.5), for the first handshake and for
 * every re-key: the initiator's HELLO (`initiate`), the responder's HELLO_ACK and keys
 * (`answer`), the initiator's keys (`complete`); signing and verifying the signed part
 * of HELLO, HELLO_ACK and pre-key control messages; ephemeral keys; and the trust
 * decisions (a pinned or listed server card; an authorize callback or list for
 * clients). Each step's result is the smallest that works: the next message's body and
 * a `SessionCipher` (the keys never leave it). The state machine (machine.ts) decides
 * when each step runs; a later version adds its steps beside these. Internal.
 * @module
 */
import { type Bytes, equalBytes, toHex, wipe } from "../core/bytes.ts";
import type { CryptoProvider } from "../crypto/provider.ts";
import { MissiveError } from "../core/errors.ts";
import { type Card, sameKeys } from "../keys/card.ts";
import type { Identity } from "../keys/identity.ts";
import { type Role, SessionCipher } from "./_cipher.ts";
import {
  deriveKeys,
  helloContext,
  type PresharedKeys,
  signatureInput,
  signedMac,
} from "./_keyschedule.ts";
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

/** An initiator's handshake in progress (SPEC §22.5): its HELLO and the two contexts. */
export interface Initiation {
  /** The initiator's ephemeral key, until `complete` takes (and erases) it. */
  eph?: Ephemeral;
  helloBody: Bytes;
  /** Context of this side's signatures (C), and of the responder's (HC, SPEC §22.5.1). */
  myContext: Bytes;
  peerContext: Bytes;
}

/**
 * Initiator: a HELLO body with a fresh ephemeral key (or one `made` beforehand), under
 * chain value `chain`; a re-key HELLO carries the acknowledged count that made it due.
 */
export async function initiate(
  provider: CryptoProvider,
  identity: Identity,
  random: (n: number) => Bytes,
  chain: Bytes,
  acknowledged?: number,
  made?: Promise<Ephemeral>,
): Promise<Initiation> {
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
  };
}

/** What the responder needs to answer a HELLO. */
export interface AnswerInput {
  role: Role;
  chain: Bytes;
  helloBody: Bytes;
  peerEphemeral: Uint8Array;
  psk?: PresharedKeys;
  /** helloContext(chain, helloBody), when the caller has it already. */
  myContext?: Bytes;
  /** This side's ephemeral key, when made beforehand (see `respond`). */
  ephemeral?: Promise<Ephemeral>;
}

/** Responder: the HELLO_ACK body, its signature context (HC), and the new keys. */
export async function answer(
  provider: CryptoProvider,
  identity: Identity,
  random: ((n: number) => Bytes) | undefined,
  input: AnswerInput,
): Promise<{ ackBody: Bytes; myContext: Bytes; cipher: SessionCipher }> {
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
  return { ackBody, myContext, cipher: new SessionCipher(provider, keys, input.role) };
}

/** Initiator: the keys, once the peer's HELLO_ACK body arrived; the ephemeral key is erased. */
export async function complete(
  provider: CryptoProvider,
  hs: Initiation,
  input: {
    role: Role;
    chain: Bytes;
    ackBody: Bytes;
    peerEphemeral: Uint8Array;
    psk?: PresharedKeys;
  },
): Promise<SessionCipher> {
  const eph = hs.eph;
  if (!eph) throw new MissiveError("internal", "session: no ephemeral key to complete with");
  hs.eph = undefined; // one HELLO_ACK completes a handshake, once
  const keys = await deriveKeys(provider, {
    shared: await agree(provider, eph, input.peerEphemeral),
    chain: input.chain,
    helloBody: hs.helloBody,
    helloAckBody: input.ackBody,
    psk: input.psk,
  });
  return new SessionCipher(provider, keys, input.role);
}
