/**
 * `ratchet` STP, type 9, version 1 (SPEC §25): asynchronous forward secrecy for
 * conversations. Prekey bundles (a signed X25519 + X-Wing prekey rotated weekly, one-time
 * X25519 prekeys), a PQXDH-style initial agreement, and a Double Ratchet per
 * conversation, whose state is serialisable.
 *
 * A ratchet message only means something inside its conversation's state, and every
 * message advances that state, so the registry's one-shot `seal`/`open` do not apply:
 * they refuse with a `usage` error that points here (SPEC §25.9). The API is
 * `startConversation`, `acceptConversation`, `Conversation` (`encrypt`, `decrypt`,
 * `serialize`, `restore`, `close`), `PrekeyKeyring` for the owner's prekeys and
 * `PrekeyStore` for where they are published.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createIdentity, getCryptoProvider } from "../../mod.ts";
 * import { acceptConversation, Conversation, PrekeyKeyring, startConversation } from "./mod.ts";
 * const crypto = await getCryptoProvider();
 * const caps = { stps: [[9, 1]] as const, amps: [[1, 1]] as const };
 * const alice = await createIdentity(crypto, { address: "alice@example.org", ...caps });
 * const bob = await createIdentity(crypto, { address: "bob@example.org", ...caps });
 * const keyring = await PrekeyKeyring.create(bob, { oneTime: 10 });
 *
 * const a = await startConversation(alice, { peer: bob.card, bundle: keyring.bundle() });
 * const hello = await a.encrypt({ ampType: 1, ampVersion: 1, body: new TextEncoder().encode("hi bob") });
 * const { conversation: b, opened } = await acceptConversation(bob, hello.envelope, { keyring });
 * assert.equal(new TextDecoder().decode(opened.inner.body), "hi bob");
 *
 * const reply = await b.encrypt({ ampType: 1, ampVersion: 1, body: new TextEncoder().encode("hi alice") });
 * const restored = await Conversation.restore(a.serialize());
 * assert.equal(new TextDecoder().decode((await restored.decrypt(reply.envelope)).inner.body), "hi alice");
 * assert.equal(restored.phase, "established");
 * ```
 * @module
 */
import { toHex } from "../../core/bytes.ts";
import { MissiveError } from "../../core/errors.ts";
import type { StpPlugin } from "../../plugin/types.ts";
import { decodeRatchetPayload, RATCHET_TYPE, RATCHET_VERSION } from "./_format.ts";

export {
  acceptConversation,
  Conversation,
  type ConversationOptions,
  type ConversationPhase,
  type RatchetMessage,
  type RatchetOpened,
  startConversation,
} from "./_conversation.ts";
export {
  decodePrekeyBundle,
  decodePrekeyUpload,
  encodePrekeyBundle,
  encodePrekeyUpload,
  type InitialHeader,
  MAX_UPLOAD_ONE_TIME,
  type OneTimePrekey,
  type PrekeyBundle,
  type PrekeyUpload,
  RATCHET_TYPE,
  RATCHET_VERSION,
  type RatchetHeader,
  type SignedPrekey,
} from "./_format.ts";
export {
  type KeyringOptions,
  MAX_HELD_ONE_TIME,
  PrekeyKeyring,
  SIGNED_PREKEY_GRACE,
  SIGNED_PREKEY_ROTATION,
} from "./_keyring.ts";
export { MAX_SKIP, MAX_SKIPPED_AGE } from "./_ratchet.ts";
export { MAX_STORED_SKIPPED } from "./_state.ts";
export { MAX_CLOCK_SKEW, MAX_SIGNED_PREKEY_AGE, verifySignedPrekey } from "./_agreement.ts";
export {
  MAX_STORED_ONE_TIME,
  MemoryPrekeyStore,
  type PrekeyStore,
  verifyPrekeyUpload,
} from "./_store.ts";

const NOT_ONE_SHOT = "the ratchet STP (9, 1) needs a conversation's state: use " +
  "startConversation / acceptConversation and Conversation.encrypt / decrypt (SPEC §25.9)";

/** The `ratchet` STP registry entry: listed by `missive plugins`, named by `inspect`. */
export const ratchetV1: StpPlugin = {
  kind: "stp",
  type: RATCHET_TYPE,
  version: RATCHET_VERSION,
  name: "ratchet",
  description: "conversation: prekeys (X25519 + X-Wing, PQXDH-style) + Double Ratchet, " +
    "AES-256-GCM; library API",
  properties: {
    confidentiality: true,
    authentication: "shared-key",
    nonRepudiation: false,
    forwardSecrecy: true,
    multiRecipient: false,
    hiddenRecipients: false,
    kem: "mlkem768x25519",
  },
  seal() {
    return Promise.reject(new MissiveError("usage", NOT_ONE_SHOT));
  },
  open() {
    return Promise.reject(new MissiveError("usage", NOT_ONE_SHOT));
  },
};

/** What anyone sees of a ratchet message (`missive inspect`): its clear header. */
export interface RatchetPayloadSummary {
  /** The sender's current DH ratchet public key, hex. */
  ratchetKey: string;
  /** Messages in the sender's previous sending chain (PN). */
  previousChainLength: number;
  /** This message's number in its sending chain (N). */
  messageNumber: number;
  /** Bytes of AEAD ciphertext (inner map and tag). */
  ciphertextSize: number;
  /** Present on an initial message: what it names (the sender's card is not verified here). */
  initial: {
    recipientId: string;
    signedPrekeyId: number;
    oneTimePrekeyId: number | null;
    ephemeralKey: string;
    senderCardSize: number;
  } | null;
}

/**
 * The clear header of a ratchet payload, hex for bytes; `malformed` when it does not decode.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MissiveError } from "../../mod.ts";
 * import { describeRatchetPayload } from "./mod.ts";
 * assert.throws(
 *   () => describeRatchetPayload(new Uint8Array([0xa0])),
 *   (e) => e instanceof MissiveError && e.code === "malformed",
 * );
 * ```
 */
export function describeRatchetPayload(payload: Uint8Array): RatchetPayloadSummary {
  const p = decodeRatchetPayload(payload);
  return {
    ratchetKey: toHex(p.ratchetKey),
    previousChainLength: p.previousChainLength,
    messageNumber: p.messageNumber,
    ciphertextSize: p.ciphertext.length,
    initial: p.initial
      ? {
        recipientId: toHex(p.initial.recipientId),
        signedPrekeyId: p.initial.signedPrekeyId,
        oneTimePrekeyId: p.initial.oneTimePrekeyId ?? null,
        ephemeralKey: toHex(p.initial.ephemeralKey),
        senderCardSize: p.initial.senderCard.length,
      }
      : null,
  };
}
