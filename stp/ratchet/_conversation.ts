/**
 * A conversation (SPEC §25.6): one side's Double Ratchet state behind four verbs —
 * `encrypt`, `decrypt`, `serialize`, `close` — started from a prekey bundle
 * (`startConversation`) or from a received initial message (`acceptConversation`). Calls
 * run one at a time; a message that fails leaves the state as it was; a closed
 * conversation refuses everything.
 * @module
 */
import { type Bytes, equalBytes, randomBytes, toHex } from "../../core/bytes.ts";
import { MissiveError } from "../../core/errors.ts";
import { getCryptoProvider } from "../../crypto/mod.ts";
import type { CryptoProvider } from "../../crypto/provider.ts";
import { decodeEnvelope, encodeEnvelope, type EnvelopeHeader } from "../../envelope/mod.ts";
import { type Card, decodeCard } from "../../keys/card.ts";
import type { Identity } from "../../keys/identity.ts";
import type { Inner, SenderInfo } from "../../plugin/types.ts";
import { initiate, respond } from "./_agreement.ts";
import {
  decodeInner,
  decodeRatchetPayload,
  encodeInner,
  encodeRatchetPayload,
  type PrekeyBundle,
  RATCHET_TYPE,
  RATCHET_VERSION,
  type RatchetHeader,
  type RatchetPayload,
} from "./_format.ts";
import { consumePrekeys, lookupPrekeys, type PrekeyKeyring } from "./_keyring.ts";
import { type Decrypted, decryptStep, encryptStep, type StepContext } from "./_ratchet.ts";
import { decodeState, encodeState, type RatchetState, wipeState } from "./_state.ts";

/** Crypto, randomness and clock of a conversation; all optional. */
export interface ConversationOptions {
  /** The primitives; default `getCryptoProvider()`. */
  crypto?: CryptoProvider;
  /** Secure random bytes (ratchet keys, ephemeral keys); a seeded source only for vectors. */
  random?: (length: number) => Bytes;
  /** The clock in ms (skipped-key ages, inner timestamps); `Date.now` by default. */
  now?: () => number;
}

/** What one AMP message is, for `encrypt`. */
export interface RatchetMessage {
  /** The AMP's type number (e.g. 1, text). */
  ampType: number;
  /** The AMP's version. */
  ampVersion: number;
  /** The AMP-encoded message. */
  body: Uint8Array;
}

/** A message read from a conversation. */
export interface RatchetOpened {
  /** The inner message (SPEC §25.4); its `body` is still AMP-encoded. */
  inner: Inner;
  /** The peer: verified by the agreement (its keys are bound into every message key). */
  sender: SenderInfo;
  /** The message's clear header: ratchet key and chain counters. */
  header: RatchetHeader;
}

/** A conversation's phase (SPEC §25.6). */
export type ConversationPhase = "awaiting-reply" | "established" | "closed";

function protocolOf(frame: Uint8Array) {
  const envelope = decodeEnvelope(frame);
  if (envelope.protocolType !== RATCHET_TYPE || envelope.protocolVersion !== RATCHET_VERSION) {
    throw new MissiveError(
      "unknown-protocol",
      `ratchet: an envelope of (${envelope.protocolType}, ${envelope.protocolVersion}), not ` +
        `(${RATCHET_TYPE}, ${RATCHET_VERSION})`,
    );
  }
  const header: EnvelopeHeader = {
    protocolType: envelope.protocolType,
    protocolVersion: envelope.protocolVersion,
    sequenceNumber: envelope.sequenceNumber,
  };
  return { header, payload: decodeRatchetPayload(envelope.payload) };
}

/** One side of a conversation. Get one from `startConversation`, `acceptConversation` or `restore`. */
export class Conversation {
  #state: RatchetState | undefined;
  readonly #crypto: CryptoProvider;
  readonly #random: (length: number) => Bytes;
  readonly #now: () => number;
  #queue: Promise<unknown> = Promise.resolve();

  /** Internal: use `startConversation`, `acceptConversation` or `Conversation.restore`. */
  constructor(state: RatchetState, crypto: CryptoProvider, options: ConversationOptions) {
    this.#state = state;
    this.#crypto = crypto;
    this.#random = options.random ?? randomBytes;
    this.#now = options.now ?? Date.now;
  }

  /** Restores a conversation from `serialize()` (the latest one only: see SPEC §25.8). */
  static async restore(
    bytes: Uint8Array,
    options: ConversationOptions = {},
  ): Promise<Conversation> {
    const crypto = options.crypto ?? await getCryptoProvider();
    return new Conversation(await decodeState(crypto, bytes), crypto, options);
  }

  /** "awaiting-reply" (an initiator that has read nothing yet), "established" or "closed". */
  get phase(): ConversationPhase {
    const s = this.#state;
    return !s ? "closed" : s.pendingInitial ? "awaiting-reply" : "established";
  }

  /** The peer's card. */
  get peer(): Card {
    return this.#live().peer;
  }

  /** The conversation's name: the initiator's ephemeral key, hex (initial headers carry it). */
  get id(): string {
    return toHex(this.#live().conversationId);
  }

  #live(): RatchetState {
    if (!this.#state) throw new MissiveError("usage", "ratchet: the conversation is closed");
    return this.#state;
  }

  #context(): StepContext {
    return { crypto: this.#crypto, random: this.#random, now: this.#now() };
  }

  /** Runs `f` after every earlier call has finished: the state has one writer at a time. */
  #exclusive<T>(f: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(f, f);
    this.#queue = run.catch(() => {});
    return run;
  }

  /**
   * Seals one message: returns the binary envelope (type 9, version 1) and the inner
   * message's nonce (for receipts). The state advances: store `serialize()` before
   * sending, or a restored older state would reuse this message's key.
   */
  encrypt(
    message: RatchetMessage,
    options: { sequenceNumber?: number } = {},
  ): Promise<{ envelope: Bytes; nonce: Bytes }> {
    return this.#exclusive(async () => {
      const state = this.#live();
      const ctx = this.#context();
      const header: EnvelopeHeader = {
        protocolType: RATCHET_TYPE,
        protocolVersion: RATCHET_VERSION,
        sequenceNumber: options.sequenceNumber,
      };
      const inner = encodeInner({ ...message, timestamp: ctx.now });
      const { payload, nonce } = await encryptStep(state, header, inner, ctx);
      return {
        envelope: encodeEnvelope({ ...header, payload: encodeRatchetPayload(payload) }),
        nonce,
      };
    });
  }

  /**
   * Opens one envelope of this conversation. On any failure (typed MissiveError) the
   * state is unchanged: duplicates and expired keys are `replay`, forgeries and
   * alterations `auth-failed`, more than 1,000 skipped messages `too-large`, an initial
   * message of another conversation `session`.
   */
  decrypt(frame: Uint8Array): Promise<RatchetOpened> {
    return this.#exclusive(async () => {
      const state = this.#live();
      const { header, payload } = protocolOf(frame);
      if (
        payload.initial && (state.role === "initiator" ||
          !equalBytes(payload.initial.ephemeralKey, state.conversationId))
      ) {
        throw new MissiveError(
          "session",
          "ratchet: an initial message of another conversation (accept it with acceptConversation)",
        );
      }
      const ctx = this.#context();
      const step = await decryptStep(state, header, payload, ctx);
      const opened = readOpened(state, payload, step);
      step.commit();
      state.pendingInitial = null;
      return opened;
    });
  }

  /** The state's bytes (SPEC §25.8). They hold secrets: store them encrypted. */
  serialize(): Bytes {
    return encodeState(this.#live());
  }

  /** Overwrites the state's secrets; every later call is a `usage` error. */
  close(): void {
    if (this.#state) wipeState(this.#state);
    this.#state = undefined;
  }
}

/** The inner message of a decrypted step, or `malformed` (the step is then discarded). */
function readOpened(state: RatchetState, payload: RatchetPayload, step: Decrypted): RatchetOpened {
  try {
    const i = decodeInner(step.plaintext);
    const { ciphertext: _, ...header } = payload;
    return {
      inner: {
        ampType: i.ampType,
        ampVersion: i.ampVersion,
        body: i.body,
        timestamp: i.timestamp,
        nonce: step.nonce,
        sender: state.peer.address,
        destination: state.self.address,
      },
      sender: { address: state.peer.address, card: state.peer, verified: true },
      header,
    };
  } catch (e) {
    step.discard();
    throw e;
  }
}

async function setup(options: ConversationOptions) {
  const crypto = options.crypto ?? await getCryptoProvider();
  return { crypto, random: options.random ?? randomBytes, now: (options.now ?? Date.now)() };
}

/**
 * Starts a conversation with `peer` from its prekey bundle (SPEC §25.3): checks the
 * bundle (its owner, signature and age) and agrees on the first keys. Every message sent
 * before the peer's first reply carries the initial header.
 */
export async function startConversation(
  identity: Identity,
  options: ConversationOptions & { peer: Card; bundle: PrekeyBundle },
): Promise<Conversation> {
  const { crypto, random, now } = await setup(options);
  const state = await initiate(crypto, identity, options.peer, options.bundle, {
    random,
    seeded: options.random !== undefined,
    now,
  });
  return new Conversation(state, crypto, options);
}

/**
 * Accepts a conversation from a received initial message (SPEC §25.6): checks it is for
 * `identity` (`not-a-recipient`), the sender's card (`auth-failed`), the prekeys it names
 * (`key` for an expired signed prekey, `replay` for a used one-time prekey), agrees on the
 * keys and opens the message. Only then is the one-time prekey deleted from the keyring;
 * on any failure the keyring is unchanged.
 */
export async function acceptConversation(
  identity: Identity,
  frame: Uint8Array,
  options: ConversationOptions & { keyring: PrekeyKeyring },
): Promise<{ conversation: Conversation; opened: RatchetOpened }> {
  const { crypto, random, now } = await setup(options);
  const { header, payload } = protocolOf(frame);
  const initial = payload.initial;
  if (!initial) {
    throw new MissiveError(
      "malformed",
      "ratchet: not an initial message (no field 5): decrypt it with its conversation",
    );
  }
  if (!equalBytes(initial.recipientId, identity.card.id)) {
    throw new MissiveError(
      "not-a-recipient",
      `not a recipient: this initial message is for ID ${toHex(initial.recipientId)}, not ` +
        `${identity.card.address} (ID ${toHex(identity.card.id)})`,
    );
  }
  let sender: Card;
  try {
    sender = await decodeCard(crypto, initial.senderCard);
  } catch (e) {
    throw new MissiveError(
      "auth-failed",
      `ratchet: the sender's card is invalid: ${(e as Error).message}`,
    );
  }
  if (equalBytes(sender.id, identity.card.id)) {
    throw new MissiveError("auth-failed", "ratchet: an initial message from our own identity");
  }
  const secrets = lookupPrekeys(options.keyring, identity, initial);
  const state = await respond(crypto, identity, sender, initial, secrets);
  const conversation = new Conversation(state, crypto, options);
  let opened: RatchetOpened;
  let step: Decrypted | undefined;
  try {
    step = await decryptStep(state, header, payload, { crypto, random, now });
    opened = readOpened(state, payload, step);
    // The keyring changes first, synchronously with the commit: of two acceptances of one
    // message racing here, the second finds its prekey gone.
    consumePrekeys(options.keyring, initial);
    step.commit();
  } catch (e) {
    step?.discard();
    conversation.close();
    throw e;
  }
  return { conversation, opened };
}
