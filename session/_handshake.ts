/**
 * The handshake of a session (SPEC §22.5; version 2: §22.12), for the first handshake
 * and for every re-key: the initiator's HELLO (`initiate`), the responder's HELLO_ACK and
 * keys (`answer`), the initiator's keys (`complete`), and the verified steps the state
 * machine takes on a received HELLO / HELLO_ACK. Each step's result is the smallest that
 * works: the next message's body and a `SessionCipher` (the keys never leave it). The
 * machine (machine.ts) decides when each step runs and which version's handshake runs.
 *
 * Version 2 is version 1 plus one X-Wing (ML-KEM-768 + X25519) encapsulation per
 * handshake: the initiator's HELLO carries a fresh encapsulation key, the responder's
 * HELLO_ACK the ciphertext, and both secrets feed the key derivation (_keyschedule.ts).
 * Internal to the session.
 * @module
 */
import { type Bytes, wipe } from "../core/bytes.ts";
import type { CryptoProvider } from "../crypto/provider.ts";
import {
  XWING_ENCAPSULATION_SEED_SIZE,
  XWING_SEED_SIZE,
  xwingEncapsulateSeeded,
} from "../crypto/xwing.ts";
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
  decodeHelloBodyV2,
  encodeHelloBody,
  type FrameHeader,
  type HelloBody,
  MessageType,
  type SessionVersion,
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
  /** Version 2: the seed of the initiator's X-Wing key, until `complete` erases it. */
  kemSeed?: Bytes;
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
  /** The version this handshake speaks (default 1). */
  version?: SessionVersion;
  /** Version 2, first HELLO: the versions this side offers, highest first. */
  offered?: readonly SessionVersion[];
}

/**
 * One version's handshake (SPEC §22.5, §22.12): the steps of the first handshake and of
 * every re-key, for either role. Version 2 adds an X-Wing encapsulation to each.
 */
export class Handshake {
  /** The session version this handshake speaks. */
  readonly version: SessionVersion;
  readonly #offered: readonly SessionVersion[];
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
    this.version = o.version ?? 1;
    this.#offered = o.offered ?? [this.version];
  }

  /** Derives what s0 gives (once, before the first HELLO). */
  async setup(): Promise<void> {
    if (this.#s0) this.#psk = await presharedKeys(this.#provider, this.#s0, this.version);
  }

  /** A fresh ephemeral key, made ahead of need (the server's, while it waits). */
  makeEphemeral(): Promise<Ephemeral> {
    const made = newEphemeral(this.#provider, this.#random);
    made.catch(() => {}); // awaited by a step, or erased at the end
    return made;
  }

  /** Signs (and, with s0, MACs) a body for the given header and context. */
  sign(header: FrameHeader, body: Bytes, context: Bytes): Promise<SignedPart> {
    return signPart(
      this.#provider,
      this.#identity,
      header,
      body,
      context,
      this.#psk,
      this.version,
    );
  }

  /** Verifies a signed part from `signer`; throws `auth-failed`. */
  verify(signer: Card, header: FrameHeader, part: SignedPart, context: Bytes): Promise<void> {
    return verifyPart(this.#provider, signer, header, part, context, this.#psk, this.version);
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
    const body: HelloBody = {
      ephemeralKey: eph.publicKey,
      card: this.#identity.card.bytes,
      acknowledged,
    };
    let kemSeed: Bytes | undefined;
    if (this.version === 2) {
      // A fresh X-Wing key per handshake (SPEC §22.12.2): its seed is erased once the
      // HELLO_ACK's ciphertext is decapsulated, so old keys cannot be recomputed.
      kemSeed = this.#random(XWING_SEED_SIZE);
      // A re-key keeps the version: its HELLO offers 2 alone.
      body.offered = acknowledged === undefined ? this.#offered : [2];
      body.kem = await this.#provider.xwingPublicKey(kemSeed);
    }
    const helloBody = encodeHelloBody(body);
    return {
      eph,
      kemSeed,
      helloBody,
      myContext: chain,
      peerContext: await helloContext(this.#provider, chain, helloBody, this.version),
    };
  }

  /** HC of a first HELLO: the context the server's answer (or refusal) is bound to. */
  firstHelloContext(helloBody: Bytes): Promise<Bytes> {
    return helloContext(this.#provider, INITIAL_CHAIN, helloBody, this.version);
  }

  /** Decodes a HELLO or HELLO_ACK body of this version. */
  #decode(body: Uint8Array, type: MessageType): HelloBody {
    return this.version === 2 ? decodeHelloBodyV2(body, type) : decodeHelloBody(body);
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
    const hello = this.#decode(frame.body, MessageType.HELLO);
    const card = await decodeCard(this.#provider, hello.card);
    const answering = stale ? undefined : this.#answer({
      chain: INITIAL_CHAIN,
      helloBody: frame.body,
      peerEphemeral: hello.ephemeralKey,
      peerKem: hello.kem,
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
    const ack = this.#decode(frame.body, MessageType.HELLO_ACK);
    const card = await decodeCard(this.#provider, ack.card);
    const completing = stale ? undefined : this.#complete(hs, {
      chain: INITIAL_CHAIN,
      ackBody: frame.body,
      peerEphemeral: ack.ephemeralKey,
      peerKem: ack.kem,
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
      const hello = this.#decode(part.body, MessageType.HELLO);
      checkSameCard(hello.card, peer);
      const answered = await this.#answer({
        chain,
        helloBody: part.body,
        peerEphemeral: hello.ephemeralKey,
        peerKem: hello.kem,
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
      const ack = this.#decode(part.body, MessageType.HELLO_ACK);
      checkSameCard(ack.card, peer);
      return await this.#complete(hs, {
        chain,
        ackBody: part.body,
        peerEphemeral: ack.ephemeralKey,
        peerKem: ack.kem,
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
    /** Version 2: the initiator's X-Wing encapsulation key. */
    peerKem?: Uint8Array;
    /** helloContext(chain, helloBody), when the caller has it already. */
    myContext?: Bytes;
    /** This side's ephemeral key, when made beforehand (see `respond`). */
    ephemeral?: Promise<Ephemeral>;
  }): Promise<Answer> {
    const answering = (async () => {
      const p = this.#provider;
      const random = this.#injected ? this.#random : undefined;
      const { publicKey, shared } = await respond(p, random, input.peerEphemeral, input.ephemeral);
      const body: HelloBody = { ephemeralKey: publicKey, card: this.#identity.card.bytes };
      let kemShared: Bytes | undefined;
      if (this.version === 2) {
        const kem = await encapsulate(p, random, input.peerKem!);
        kemShared = kem.shared;
        body.chosen = 2;
        body.kem = kem.ciphertext;
      }
      const ackBody = encodeHelloBody(body);
      const myContext = input.myContext ??
        await helloContext(p, input.chain, input.helloBody, this.version);
      const keys = await deriveKeys(p, {
        shared,
        kemShared,
        chain: input.chain,
        helloBody: input.helloBody,
        helloAckBody: ackBody,
        psk: this.#psk,
        version: this.version,
      });
      wipe(kemShared);
      return { ackBody, myContext, cipher: new SessionCipher(p, keys, this.#role) };
    })();
    answering.catch(() => {}); // awaited once the signature verified, or dropped
    return answering;
  }

  /** Initiator: the keys, once the peer's HELLO_ACK body arrived; the ephemeral key is erased. */
  #complete(
    hs: Initiation,
    input: { chain: Bytes; ackBody: Bytes; peerEphemeral: Uint8Array; peerKem?: Uint8Array },
  ): Promise<SessionCipher> {
    const eph = hs.eph;
    if (!eph) throw new MissiveError("internal", "session: no ephemeral key to complete with");
    const kemSeed = hs.kemSeed;
    hs.eph = undefined; // one HELLO_ACK completes a handshake, once
    hs.kemSeed = undefined;
    const completing = (async () => {
      const p = this.#provider;
      let kemShared: Bytes | undefined;
      if (this.version === 2) {
        try {
          kemShared = await p.xwingDecapsulate(kemSeed!, input.peerKem!);
        } finally {
          wipe(kemSeed);
        }
      }
      const keys = await deriveKeys(p, {
        shared: await agree(p, eph, input.peerEphemeral),
        kemShared,
        chain: input.chain,
        helloBody: hs.helloBody,
        helloAckBody: input.ackBody,
        psk: this.#psk,
        version: this.version,
      });
      wipe(kemShared);
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

/**
 * The responder's X-Wing encapsulation to the initiator's key (SPEC §22.12.2): with
 * injected randomness (vectors) its 64 bytes come from `random`, else the provider draws
 * them (WebCrypto's ML-KEM where the runtime has it).
 */
async function encapsulate(
  provider: CryptoProvider,
  random: ((n: number) => Bytes) | undefined,
  publicKey: Uint8Array,
): Promise<{ ciphertext: Bytes; shared: Bytes }> {
  if (random) return await xwingEncapsulateSeeded(publicKey, random(XWING_ENCAPSULATION_SEED_SIZE));
  return await provider.xwingEncapsulate(publicKey);
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
