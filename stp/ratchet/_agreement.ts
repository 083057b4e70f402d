/**
 * The initial agreement (SPEC §25.3; X3DH §3, PQXDH §3): the initiator checks the
 * responder's bundle, computes four (or three) X25519 outputs and an X-Wing encapsulation
 * to the signed KEM prekey, and derives SK; the responder recomputes SK from its prekey
 * secrets. Both then start their Double Ratchet state (Double Ratchet §3.3, §5.1: the
 * signed prekey is the responder's first ratchet key).
 * @module
 */
import { type Bytes, copyBytes, equalBytes, toHex, wipe } from "../../core/bytes.ts";
import { isMissiveError, MissiveError } from "../../core/errors.ts";
import type { CryptoProvider } from "../../crypto/provider.ts";
import { xwingEncapsulateSeeded } from "../../crypto/xwing.ts";
import type { Card } from "../../keys/card.ts";
import type { Identity } from "../../keys/identity.ts";
import type { InitialHeader, PrekeyBundle, SignedPrekey } from "./_format.ts";
import { agreementSecret, identityBinding, rootStep, signedPrekeyTranscript } from "./_kdf.ts";
import type { PrekeySecrets } from "./_keyring.ts";
import type { RatchetState } from "./_state.ts";

const DAY = 86_400_000;
/** A sender refuses a signed prekey older than this (SPEC §25.7): its owner stopped rotating. */
export const MAX_SIGNED_PREKEY_AGE = 30 * DAY;
/** …or created further in the future than this (clock skew), ms. */
export const MAX_CLOCK_SKEW: number = DAY;

/** Randomness: injected (vectors) or the provider's; X-Wing is deterministic only when injected. */
export interface AgreementRandom {
  random(length: number): Bytes;
  /** True when `random` was injected: encapsulation then draws its 64 bytes from it. */
  seeded: boolean;
}

/**
 * Checks a signed prekey against its owner's card (SPEC §25.2): `auth-failed` for a bad
 * signature, `key` for one too old or from the future.
 */
export async function verifySignedPrekey(
  crypto: CryptoProvider,
  spk: SignedPrekey,
  owner: Card,
  now: number,
): Promise<void> {
  const signed = signedPrekeyTranscript(owner.id, spk);
  if (!(await crypto.ed25519Verify(owner.signingKey, signed, spk.signature))) {
    throw new MissiveError(
      "auth-failed",
      `ratchet: signed prekey ${spk.id} is not signed by ${owner.address} (ID ${toHex(owner.id)})`,
    );
  }
  if (spk.created > now + MAX_CLOCK_SKEW) {
    throw new MissiveError("key", `ratchet: signed prekey ${spk.id} is dated in the future`);
  }
  if (now - spk.created > MAX_SIGNED_PREKEY_AGE) {
    throw new MissiveError(
      "key",
      `ratchet: signed prekey ${spk.id} of ${owner.address} is more than ` +
        `${MAX_SIGNED_PREKEY_AGE / DAY} days old (a stale bundle); fetch a new one`,
    );
  }
}

/** A key the peer chose that gives an all-zero X25519 output is the peer's `key` problem. */
async function agree(crypto: CryptoProvider, secret: Bytes, peer: Bytes, what: string) {
  try {
    return await crypto.x25519(secret, peer);
  } catch (e) {
    if (!isMissiveError(e, "auth-failed")) throw e;
    throw new MissiveError("key", `ratchet: the bundle's ${what} is a weak X25519 key`);
  }
}

/** The initiator's side: a fresh state awaiting its first reply, and the initial header. */
export async function initiate(
  crypto: CryptoProvider,
  me: Identity,
  peer: Card,
  bundle: PrekeyBundle,
  rnd: AgreementRandom & { now: number },
): Promise<RatchetState> {
  if (!equalBytes(bundle.identityId, peer.id)) {
    throw new MissiveError(
      "key",
      `ratchet: the bundle is for identity ${toHex(bundle.identityId)}, not ${peer.address} ` +
        `(${toHex(peer.id)})`,
    );
  }
  if (equalBytes(peer.id, me.card.id)) {
    throw new MissiveError("usage", "ratchet: a conversation needs two identities");
  }
  const spk = bundle.signedPrekey;
  const opk = bundle.oneTimePrekey;
  await verifySignedPrekey(crypto, spk, peer, rnd.now);
  const ephemeral = rnd.random(32);
  const ephemeralKey = await crypto.x25519PublicKey(ephemeral);
  const kem = rnd.seeded
    ? await xwingEncapsulateSeeded(spk.kemPublicKey, rnd.random(64))
    : await crypto.xwingEncapsulate(spk.kemPublicKey);
  const dh = [
    await agree(crypto, me.agreementKey, spk.publicKey, "signed prekey"),
    await agree(crypto, ephemeral, peer.agreementKey, "identity key"),
    await agree(crypto, ephemeral, spk.publicKey, "signed prekey"),
  ];
  if (opk) dh.push(await agree(crypto, ephemeral, opk.publicKey, "one-time prekey"));
  wipe(ephemeral);
  const initial: InitialHeader = {
    senderCard: me.card.bytes,
    recipientId: peer.id,
    signedPrekeyId: spk.id,
    ...(opk ? { oneTimePrekeyId: opk.id } : {}),
    ephemeralKey,
    kemCiphertext: kem.ciphertext,
  };
  const binding = await identityBinding(crypto, me.card, peer);
  const sk = await agreementSecret(crypto, binding, { dh, kem: kem.shared }, {
    signedPrekey: spk,
    oneTimePrekey: opk,
    initial,
  });
  // RatchetInitAlice (Double Ratchet §3.3): the signed prekey is the peer's ratchet key.
  const sendingSecret = rnd.random(32);
  const sendingKey = await crypto.x25519PublicKey(sendingSecret);
  const first = await rootStep(crypto, sk, await crypto.x25519(sendingSecret, spk.publicKey));
  wipe(sk);
  return {
    role: "initiator",
    self: { address: me.card.address, id: me.card.id },
    peer,
    binding,
    conversationId: ephemeralKey,
    rootKey: first.rootKey,
    sendingSecret,
    sendingKey,
    receivingKey: copyBytes(spk.publicKey),
    sendChain: first.chainKey,
    sendCount: 0,
    previousSendCount: 0,
    recvChain: null,
    recvCount: 0,
    skipped: new Map(),
    previousReceivingKeys: [],
    pendingInitial: initial,
  };
}

/**
 * The responder's side, before the first message is read: SK from the prekey secrets
 * (RatchetInitBob, Double Ratchet §3.3: the signed prekey pair is its ratchet key pair).
 */
export async function respond(
  crypto: CryptoProvider,
  me: Identity,
  sender: Card,
  initial: InitialHeader,
  secrets: PrekeySecrets,
): Promise<RatchetState> {
  const ek = initial.ephemeralKey;
  const dh = [
    await crypto.x25519(secrets.signedSecret, sender.agreementKey),
    await crypto.x25519(me.agreementKey, ek),
    await crypto.x25519(secrets.signedSecret, ek),
  ];
  if (secrets.oneTimeSecret) dh.push(await crypto.x25519(secrets.oneTimeSecret, ek));
  const kem = await crypto.xwingDecapsulate(secrets.kemSeed, initial.kemCiphertext);
  const binding = await identityBinding(crypto, sender, me.card);
  const sk = await agreementSecret(crypto, binding, { dh, kem }, {
    signedPrekey: secrets.signedPrekey,
    oneTimePrekey: secrets.oneTimePrekey,
    initial,
  });
  return {
    role: "responder",
    self: { address: me.card.address, id: me.card.id },
    peer: sender,
    binding,
    conversationId: copyBytes(ek),
    rootKey: sk,
    sendingSecret: copyBytes(secrets.signedSecret),
    sendingKey: copyBytes(secrets.signedPrekey.publicKey),
    receivingKey: null,
    sendChain: null,
    sendCount: 0,
    previousSendCount: 0,
    recvChain: null,
    recvCount: 0,
    skipped: new Map(),
    previousReceivingKeys: [],
    pendingInitial: null,
  };
}
