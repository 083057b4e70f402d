/**
 * Opening what a carrier hands the chat (SPEC §27.4): a `simple` envelope (a request or
 * a refusal, signed by its sender) or a ratchet envelope (a friend's conversation, or the
 * accept that starts one). The sender the carrier authenticated must be the one the
 * envelope proves; anything else is refused with a typed error, never shown.
 * @module
 */
import { type Bytes, equalBytes, toHex } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import type { CryptoProvider } from "../crypto/provider.ts";
import { decodeEnvelope } from "../envelope/mod.ts";
import type { Card } from "../keys/card.ts";
import type { Identity } from "../keys/identity.ts";
import { openMessage, sealMessage } from "../plugin/message.ts";
import type { Registry } from "../plugin/registry.ts";
import { STP_PREFERENCE } from "../relay/capabilities.ts";
import { defaultRegistry } from "../stp/mod.ts";
import {
  acceptConversation,
  type Conversation,
  decodePrekeyBundle,
  describeRatchetPayload,
  type PrekeyKeyring,
  RATCHET_TYPE,
  RATCHET_VERSION,
  type RatchetOpened,
  verifySignedPrekey,
} from "../stp/ratchet/mod.ts";
import type { Sender } from "./carrier.ts";
import {
  CHAT_AMP_TYPE,
  CHAT_AMP_VERSION,
  chatAmp,
  type ChatMessage,
  decodeChatMessage,
} from "./wire.ts";

let registry: Registry | undefined;

/** missive's built-in protocols and the `chat` AMP. */
export function chatRegistry(): Registry {
  registry ??= defaultRegistry().register(chatAmp);
  return registry;
}

/** What the receiving side needs. */
export interface IncomingContext {
  identity: Identity;
  crypto: CryptoProvider;
  keyring: PrekeyKeyring;
  now: number;
}

/** An opened envelope. */
export type Incoming =
  | { via: "sealed"; card: Card; message: ChatMessage }
  | {
    via: "conversation";
    friend: { live?: Conversation };
    /** Absent when the body did not decode (`bodyError`): the ratchet advanced all the same. */
    message?: ChatMessage;
    bodyError?: MissiveError;
    nonce: Bytes;
    time: number;
  }
  | {
    via: "new-conversation";
    conversation: Conversation;
    message: ChatMessage;
    nonce: Bytes;
    time: number;
  };

/** Seals a request or a refusal for `card` with the best `simple` version both have. */
export async function sealRequestEnvelope(
  identity: Identity,
  card: Card,
  message: ChatMessage,
): Promise<Bytes> {
  if (!card.stps.some(([t, v]) => t === RATCHET_TYPE && v === RATCHET_VERSION)) {
    throw new MissiveError(
      "unknown-protocol",
      `${card.address}'s card does not list the ratchet STP (9, 1): it cannot chat`,
    );
  }
  return await sealWith(identity, card, message);
}

/** Seals a chat message with `simple` (SPEC §27.4): signed, for `card` only. */
export async function sealWith(
  identity: Identity,
  card: Card,
  message: ChatMessage,
): Promise<Bytes> {
  const reg = chatRegistry();
  const ours = reg.list().stps;
  const pair = STP_PREFERENCE.find(([t, v]) =>
    card.stps.some(([ct, cv]) => ct === t && cv === v) &&
    ours.some((p) => p.type === t && p.version === v)
  );
  if (!pair) {
    throw new MissiveError(
      "unknown-protocol",
      `${card.address}'s card lists no simple STP version`,
    );
  }
  return await sealMessage({
    registry: reg,
    stp: reg.stp(pair[0], pair[1]),
    amp: chatAmp,
    message,
    sender: identity,
    recipients: [card],
  });
}

function chatBody(opened: RatchetOpened): ChatMessage {
  const { ampType, ampVersion, body } = opened.inner;
  if (ampType !== CHAT_AMP_TYPE || ampVersion !== CHAT_AMP_VERSION) {
    throw new MissiveError(
      "unknown-protocol",
      `AMP (${ampType}, ${ampVersion}) in a chat conversation, not chat (8, 1)`,
    );
  }
  return decodeChatMessage(body);
}

function sameSender(from: Sender, card: Card): void {
  if (!equalBytes(from.id, card.id)) {
    throw new MissiveError(
      "auth-failed",
      `the envelope proves ${card.address} (ID ${toHex(card.id)}), not its carrier's sender`,
    );
  }
}

/**
 * Opens one envelope from `from`. A conversation's message whose body does not decode
 * has still advanced the ratchet: it comes back with `message` replaced by the error in
 * `bodyError`, so the caller stores the state and reports it.
 */
export async function openIncoming(
  ctx: IncomingContext,
  from: Sender,
  envelope: Bytes,
  friendOf: (address: string) => { live?: Conversation } | undefined,
): Promise<Incoming> {
  const env = decodeEnvelope(envelope);
  if (env.protocolType === RATCHET_TYPE && env.protocolVersion === RATCHET_VERSION) {
    const initial = describeRatchetPayload(env.payload).initial;
    const friend = friendOf(from.address);
    const live = friend?.live && friend.live.phase !== "closed" ? friend.live : undefined;
    if (live && (!initial || initial.ephemeralKey === live.id)) {
      const opened = await live.decrypt(envelope);
      sameSender(from, opened.sender.card!);
      const common = {
        via: "conversation" as const,
        friend: friend!,
        nonce: opened.inner.nonce as Bytes,
        time: opened.inner.timestamp,
      };
      try {
        return { ...common, message: chatBody(opened) };
      } catch (e) {
        if (!(e instanceof MissiveError)) throw e;
        return { ...common, bodyError: e };
      }
    }
    if (!initial) {
      throw new MissiveError(
        "session",
        "a conversation message, and we have no conversation with its sender",
      );
    }
    const { conversation, opened } = await acceptConversation(ctx.identity, envelope, {
      keyring: ctx.keyring,
      crypto: ctx.crypto,
    });
    try {
      sameSender(from, conversation.peer);
      return {
        via: "new-conversation",
        conversation,
        message: chatBody(opened),
        nonce: opened.inner.nonce as Bytes,
        time: opened.inner.timestamp,
      };
    } catch (e) {
      conversation.close();
      throw e;
    }
  }
  const opened = await openMessage(envelope, {
    registry: chatRegistry(),
    identity: ctx.identity,
    crypto: ctx.crypto,
  });
  const card = opened.sender?.card;
  if (!opened.sender?.verified || !card) {
    throw new MissiveError("auth-failed", "a request without a verified sender card");
  }
  sameSender(from, card);
  if (opened.amp.type !== CHAT_AMP_TYPE) {
    throw new MissiveError("unknown-protocol", `a sealed ${opened.amp.name} message, not chat`);
  }
  const message = opened.message as ChatMessage;
  if (message.kind === "request") {
    // The bundle must be the requester's and signed by it, before anyone accepts it.
    const bundle = decodePrekeyBundle(message.bundle);
    if (!equalBytes(bundle.identityId, card.id)) {
      throw new MissiveError("key", "the request's prekey bundle is not the requester's");
    }
    await verifySignedPrekey(ctx.crypto, bundle.signedPrekey, card, ctx.now);
  }
  return { via: "sealed", card, message };
}
