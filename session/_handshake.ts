/**
 * The handshake of session version 1 (SPEC §22.5), for the first handshake and for every
 * re-key: the initiator's HELLO (`initiate`), the responder's HELLO_ACK and keys
 * (`answer`), the initiator's keys (`complete`), and the verified steps the state
 * machine takes on a received HELLO / HELLO_ACK. Each step's result is the smallest that
 * works: the next message's body and a `SessionCipher` (the keys never leave it). The
 * machine (machine.ts) decides when each step runs; a later version (say, one mixing an
 * ML-KEM-768 encapsulation into the key schedule) is another class with these methods.
 * Internal to the session.
 * @module
 */
import { type Bytes, wipe } from "../core/bytes.ts";
import type { CryptoProvider } from "../crypto/provider.ts";
import { MissiveError } from "../core/errors.ts";
import { type Card, decodeCard } from "../keys/card.ts";
import type { Identity } from "../keys/identity.ts";
import { type Role, SessionCipher } from "./_cipher.ts";
import {
  deriveKeys,
  helloContext,
  INITIAL_CHAIN,
  type PresharedKeys,
  presharedKeys,
} from "./_keyschedule.ts";
import { signPart, verifyPart } from "./_signed.ts";
import { checkSameCard } from "./_trust.ts";
import {
  decodeHelloBody,
  encodeHelloBody,
  type FrameHeader,
  type SignedFrame,
  type SignedPart,
} from "./messages.ts";

/** A fresh ephemeral X25519 key pair. */
export interface Ephemeral {
  privateKey: Bytes;
  publicKey: Bytes;
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

/** The responder's answer: the HELLO_ACK body, its signature context HC, the new keys. */
export interface Answer {
  ackBody: Bytes;
  myContext: Bytes;
  cipher: SessionCipher;
}

/** What a handshake needs: who this side is, its crypto, its randomness, s0. */
export interface HandshakeOptions {
  provider: CryptoProvider;
  identity: Identity;
  role: Role;
  /** Random bytes for ephemeral keys (the CSPRNG, or a vector's stream). */
  random: (length: number) => Bytes;
  /** True when `random` was injected (vectors): the responder draws its keys from it too. */
  injected: boolean;
  s0?: Uint8Array;
}

export class HandshakeV1 {
  readonly #provider: CryptoProvider;
  readonly #identity: Identity;
  readonly #role: Role;
  readonly #random: (length: number) => Bytes;
  readonly #injected: boolean;
  readonly #s0?: Uint8Array;
  #psk?: PresharedKeys;

  constructor(o: HandshakeOptions) {
    if (o.s0 && o.s0.length < 16) {
      throw new MissiveError(
        "usage",
        "session: the pre-shared secret s0 must be at least 16 bytes",
      );
    }
    this.#provider = o.provider;
    this.#identity = o.identity;
    this.#role = o.role;
    this.#random = o.random;
    this.#injected = o.injected;
    this.#s0 = o.s0;
  }

  /** Derives what s0 gives (once, before the first HELLO). */
  async setup(): Promise<void> {
    if (this.#s0) this.#psk = await presharedKeys(this.#provider, this.#s0);
  }

  /** A fresh ephemeral key, made ahead of need (the server's, while it waits). */
  makeEphemeral(): Promise<Ephemeral> {
    const made = newEphemeral(this.#provider, this.#random);
    made.catch(() => {}); // awaited by a step, or erased at the end
    return made;
  }

  /** Signs (and, with s0, MACs) a body for the given header and context. */
  sign(header: FrameHeader, body: Bytes, context: Bytes): Promise<SignedPart> {
    return signPart(this.#provider, this.#identity, header, body, context, this.#psk);
  }

  /** Verifies a signed part from `signer`; throws `auth-failed`. */
  verify(signer: Card, header: FrameHeader, part: SignedPart, context: Bytes): Promise<void> {
    return verifyPart(this.#provider, signer, header, part, context, this.#psk);
  }

  /** The first of `candidates` whose signature verifies, or undefined. */
  async identify(
    candidates: readonly Card[],
    header: FrameHeader,
    part: SignedPart,
    context: Bytes,
  ): Promise<Card | undefined> {
    for (const card of candidates) {
      try {
        await this.verify(card, header, part, context);
        return card;
      } catch { /* try the next card */ }
    }
    return undefined;
  }

  /**
   * Initiator: a HELLO body with a fresh ephemeral key (or one `made` beforehand), under
   * chain value `chain`; a re-key HELLO carries the acknowledged count that made it due.
   */
  async initiate(
    chain: Bytes,
    acknowledged?: number,
    made?: Promise<Ephemeral>,
  ): Promise<Initiation> {
    const eph = await (made ?? newEphemeral(this.#provider, this.#random));
    const helloBody = encodeHelloBody({
      ephemeralKey: eph.publicKey,
      card: this.#identity.card.bytes,
      acknowledged,
    });
    return {
      eph,
      helloBody,
      myContext: chain,
      peerContext: await helloContext(this.#provider, chain, helloBody),
    };
  }

  /** HC of a first HELLO: the context the server's answer (or refusal) is bound to. */
  firstHelloContext(helloBody: Bytes): Promise<Bytes> {
    return helloContext(this.#provider, INITIAL_CHAIN, helloBody);
  }

  /**
   * Server: a first HELLO, its context `hc` already known. Returns the signer's card,
   * verified, and (unless `stale`) the answer, computed while the signature was checked.
   */
  async hello(
    frame: SignedFrame,
    hc: Bytes,
    stale: boolean,
    made?: Promise<Ephemeral>,
  ): Promise<{ card: Card; answering?: Promise<Answer> }> {
    const hello = decodeHelloBody(frame.body);
    const card = await decodeCard(this.#provider, hello.card);
    const answering = stale ? undefined : this.#answer({
      chain: INITIAL_CHAIN,
      helloBody: frame.body,
      peerEphemeral: hello.ephemeralKey,
      myContext: hc,
      ephemeral: made,
    });
    await this.verify(card, frame, frame, INITIAL_CHAIN);
    return { card, answering };
  }

  /**
   * Client: the server's first HELLO_ACK to `hs`. Returns the signer's card, verified,
   * and (unless `stale`) the keys, derived while the signature was checked.
   */
  async helloAck(
    frame: SignedFrame,
    hs: Initiation,
    stale: boolean,
  ): Promise<{ card: Card; completing?: Promise<SessionCipher> }> {
    const ack = decodeHelloBody(frame.body);
    const card = await decodeCard(this.#provider, ack.card);
    const completing = stale ? undefined : this.#complete(hs, {
      chain: INITIAL_CHAIN,
      ackBody: frame.body,
      peerEphemeral: ack.ephemeralKey,
    });
    await this.verify(card, frame, frame, hs.peerContext);
    return { card, completing };
  }

  /**
   * Client: the server's re-key HELLO (a sealed signed part, context C = `chain`),
   * verified and answered; the answer runs while the signature is checked.
   */
  async answerRekey(
    peer: Card,
    chain: Bytes,
    header: FrameHeader,
    part: SignedPart,
  ): Promise<Answer & { acknowledged?: number }> {
    const answering = (async () => {
      const hello = decodeHelloBody(part.body);
      checkSameCard(hello.card, peer);
      const answered = await this.#answer({
        chain,
        helloBody: part.body,
        peerEphemeral: hello.ephemeralKey,
      });
      return { ...answered, acknowledged: hello.acknowledged };
    })();
    answering.catch(() => {});
    await this.verify(peer, header, part, chain);
    return await answering;
  }

  /**
   * Server: the client's re-key HELLO_ACK to `hs` (a sealed signed part, context HC),
   * verified; the new keys, derived while the signature is checked.
   */
  async completeRekey(
    peer: Card,
    hs: Initiation,
    chain: Bytes,
    header: FrameHeader,
    part: SignedPart,
  ): Promise<SessionCipher> {
    const completing = (async () => {
      const ack = decodeHelloBody(part.body);
      checkSameCard(ack.card, peer);
      return await this.#complete(hs, {
        chain,
        ackBody: part.body,
        peerEphemeral: ack.ephemeralKey,
      });
    })();
    completing.catch(() => {});
    await this.verify(peer, header, part, hs.peerContext);
    return await completing;
  }

  /** Responder: the HELLO_ACK body, its signature context (HC), and the new keys. */
  #answer(input: {
    chain: Bytes;
    helloBody: Bytes;
    peerEphemeral: Uint8Array;
    /** helloContext(chain, helloBody), when the caller has it already. */
    myContext?: Bytes;
    /** This side's ephemeral key, when made beforehand (see `respond`). */
    ephemeral?: Promise<Ephemeral>;
  }): Promise<Answer> {
    const answering = (async () => {
      const p = this.#provider;
      const random = this.#injected ? this.#random : undefined;
      const { publicKey, shared } = await respond(p, random, input.peerEphemeral, input.ephemeral);
      const ackBody = encodeHelloBody({ ephemeralKey: publicKey, card: this.#identity.card.bytes });
      const myContext = input.myContext ?? await helloContext(p, input.chain, input.helloBody);
      const keys = await deriveKeys(p, {
        shared,
        chain: input.chain,
        helloBody: input.helloBody,
        helloAckBody: ackBody,
        psk: this.#psk,
      });
      return { ackBody, myContext, cipher: new SessionCipher(p, keys, this.#role) };
    })();
    answering.catch(() => {}); // awaited once the signature verified, or dropped
    return answering;
  }

  /** Initiator: the keys, once the peer's HELLO_ACK body arrived; the ephemeral key is erased. */
  #complete(
    hs: Initiation,
    input: { chain: Bytes; ackBody: Bytes; peerEphemeral: Uint8Array },
  ): Promise<SessionCipher> {
    const eph = hs.eph;
    if (!eph) throw new MissiveError("internal", "session: no ephemeral key to complete with");
    hs.eph = undefined; // one HELLO_ACK completes a handshake, once
    const completing = (async () => {
      const p = this.#provider;
      const keys = await deriveKeys(p, {
        shared: await agree(p, eph, input.peerEphemeral),
        chain: input.chain,
        helloBody: hs.helloBody,
        helloAckBody: input.ackBody,
        psk: this.#psk,
      });
      return new SessionCipher(p, keys, this.#role);
    })();
    completing.catch(() => {});
    return completing;
  }
}

async function newEphemeral(
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
async function respond(
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
async function agree(
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
