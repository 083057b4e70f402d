/**
 * LAN announcements (SPEC §27.3): one UDP datagram, a CBOR map, either a signed
 * announcement (a card, its role — chat peer or relay —, presence, the TCP port of its
 * direct sessions, the time) or an unsigned query asking everyone to announce now.
 * Any host can send anything: an announcement counts only when its card's key signed it,
 * its time is fresh and later than the last one accepted from that card.
 * @module
 */
import type { Bytes } from "../core/bytes.ts";
import { CborReader, decodeCbor, encodeCbor, transcript } from "../core/cbor.ts";
import { MissiveError } from "../core/errors.ts";
import type { CryptoProvider } from "../crypto/provider.ts";
import { type Card, decodeCard, MAX_CARD_SIZE } from "../keys/card.ts";
import type { Identity } from "../keys/identity.ts";

/** The announcement's signature label (SPEC §27.1). */
export const ANNOUNCE_LABEL = "missive/chat/v1/announce";
/** Largest datagram read; a longer one is refused before decoding. */
export const MAX_DATAGRAM = 8192;
/** How far an announcement's time may be from the receiver's clock (ms). */
export const ANNOUNCE_FRESHNESS = 30_000;

/** Roles: a chat peer (direct sessions) or a relay (`missive serve --announce`). */
export const ANNOUNCE_ROLES = ["chat", "relay"] as const;
export type AnnounceRole = (typeof ANNOUNCE_ROLES)[number];
/** Presence in an announcement: invisible users do not announce. */
export const ANNOUNCE_PRESENCE = ["online", "busy", "away"] as const;
export type AnnouncePresence = (typeof ANNOUNCE_PRESENCE)[number];

/** An announcement's fields. */
export interface Announcement {
  card: Card;
  role: AnnounceRole;
  presence: AnnouncePresence;
  /** TCP port of the direct-session (chat) or relay listener, on the sender's address. */
  port: number;
  /** ms since the epoch; strictly increasing per card. */
  time: number;
}

/** A datagram, decoded and (for an announcement) verified. */
export type Datagram = { kind: "announce"; announcement: Announcement } | {
  kind: "query";
  nonce: Bytes;
};

function signed(card: Uint8Array, role: number, presence: number, port: number, time: number) {
  return transcript(ANNOUNCE_LABEL, card, role, presence, port, time);
}

/** Signs an announcement with `identity` (SPEC §27.3). */
export async function encodeAnnouncement(
  crypto: CryptoProvider,
  identity: Identity,
  fields: Omit<Announcement, "card">,
): Promise<Bytes> {
  if (!Number.isInteger(fields.port) || fields.port < 1 || fields.port > 65535) {
    throw new MissiveError("usage", `announce: port ${fields.port} is not 1..65535`);
  }
  const role = ANNOUNCE_ROLES.indexOf(fields.role);
  const presence = ANNOUNCE_PRESENCE.indexOf(fields.presence);
  const card = identity.card.bytes;
  const signature = await crypto.ed25519Sign(
    identity.signingSeed,
    signed(card, role, presence, fields.port, fields.time),
  );
  return encodeCbor(
    new Map<number, number | Uint8Array>([
      [1, 0],
      [2, card],
      [3, role],
      [4, presence],
      [5, fields.port],
      [6, fields.time],
      [7, signature],
    ]),
  );
}

/** A query datagram: "announce yourselves now" (unsigned, harmless: rate-limited). */
export function encodeQuery(nonce: Bytes): Bytes {
  return encodeCbor(new Map<number, number | Uint8Array>([[1, 1], [2, nonce]]));
}

/**
 * Decodes a datagram and checks an announcement's card and signature (SPEC §27.3):
 * `too-large`, `malformed`, `key` (a card that does not decode) or `auth-failed` (the
 * signature does not verify). Freshness and replay are the receiver's (`AnnounceGuard`).
 */
export async function decodeDatagram(crypto: CryptoProvider, bytes: Uint8Array): Promise<Datagram> {
  if (bytes.length > MAX_DATAGRAM) {
    throw new MissiveError("too-large", `announcement: ${bytes.length} bytes > ${MAX_DATAGRAM}`);
  }
  const r = CborReader.from(decodeCbor(bytes, "announcement"), "announcement");
  const kind = r.uint(1, 1);
  if (kind === 1) {
    r.onlyKeys([1, 2]);
    return { kind: "query", nonce: r.bytes(2, 16) };
  }
  r.onlyKeys([1, 2, 3, 4, 5, 6, 7]);
  const cardBytes = r.bytes(2, { min: 1, max: MAX_CARD_SIZE });
  const role = r.uint(3, ANNOUNCE_ROLES.length - 1);
  const presence = r.uint(4, ANNOUNCE_PRESENCE.length - 1);
  const port = r.uint(5, 65535);
  if (port < 1) throw new MissiveError("malformed", "announcement: field 5: port 0");
  const time = r.uint(6);
  const signature = r.bytes(7, 64);
  let card: Card;
  try {
    card = await decodeCard(crypto, cardBytes);
  } catch (e) {
    throw new MissiveError("key", `announcement: its card is invalid (${(e as Error).message})`);
  }
  const ok = await crypto.ed25519Verify(
    card.signingKey,
    signed(cardBytes, role, presence, port, time),
    signature,
  );
  if (!ok) {
    throw new MissiveError("auth-failed", `announcement of ${card.address}: bad signature`);
  }
  return {
    kind: "announce",
    announcement: {
      card,
      role: ANNOUNCE_ROLES[role],
      presence: ANNOUNCE_PRESENCE[presence],
      port,
      time,
    },
  };
}

/**
 * Freshness and replay of verified announcements (SPEC §27.3): the time must be within
 * ANNOUNCE_FRESHNESS of the clock (`replay`: stale) and later than the last accepted
 * from the same card ID (`replay`: replayed). At most `maxCards` IDs are remembered; the
 * oldest is forgotten first (a forgotten card's old announcements are stale by then).
 */
export class AnnounceGuard {
  readonly #last = new Map<string, number>();
  constructor(readonly maxCards = 4096) {}

  check(idHex: string, time: number, now: number): void {
    if (Math.abs(time - now) > ANNOUNCE_FRESHNESS) {
      throw new MissiveError(
        "replay",
        `stale announcement: its time is ${Math.round((now - time) / 1000)} s from ours`,
      );
    }
    const last = this.#last.get(idHex);
    if (last !== undefined && time <= last) {
      throw new MissiveError("replay", "replayed announcement: not later than the last one");
    }
    this.#last.delete(idHex);
    this.#last.set(idHex, time);
    if (this.#last.size > this.maxCards) this.#last.delete(this.#last.keys().next().value!);
  }
}
