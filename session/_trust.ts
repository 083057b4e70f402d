/**
 * Who a session accepts as its peer (SPEC §22.5, §22.9): a client checks the server's
 * card against the one it pinned or its trusted list; a server admits a client by an
 * `authorize(card)` callback or a trusted list; and a re-key must carry the same card
 * again. Internal to the session.
 * @module
 */
import { type Bytes, equalBytes, toHex } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import { type Card, sameKeys } from "../keys/card.ts";

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

/** How a server admits clients: a callback, else a list. */
export interface ClientTrust {
  authorize?: (card: Card) => boolean | Promise<boolean>;
  trusted?: readonly Card[];
}

/** Throws `untrusted` unless the server admits the client `card`. */
export async function admitClient(card: Card, trust: ClientTrust): Promise<void> {
  const admitted = trust.authorize
    ? await trust.authorize(card)
    : (trust.trusted ?? []).some((t) => sameKeys(t, card));
  if (admitted) return;
  throw new MissiveError(
    "untrusted",
    `session: client ${card.address} (id ${toHex(card.id)}) is not trusted; ` +
      "add its card to the trusted list",
  );
}

/** A re-key HELLO / HELLO_ACK must carry the peer's own card again. */
export function checkSameCard(card: Bytes, peer: Card): void {
  if (!equalBytes(card, peer.bytes)) {
    throw new MissiveError("untrusted", "session: the peer changed its card during a re-key");
  }
}
