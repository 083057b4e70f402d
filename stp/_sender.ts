/**
 * Finding the sender's card when opening a signed message, shared by `simple` and
 * `auth`: the card attached to the message, or else a trusted card with the sender's ID.
 * @module
 */
import { equalBytes, toHex } from "../core/bytes.ts";
import { type Card, decodeCard } from "../keys/card.ts";
import { MissiveError } from "../core/errors.ts";
import type { OpenContext } from "../plugin/types.ts";

/**
 * Resolves the card that must have signed a message claiming `address` and `id`. The
 * attached card must carry exactly that address and ID (a valid self-signature alone
 * does not let one identity speak for another).
 */
export async function resolveSenderCard(
  ctx: OpenContext,
  claimed: { address: string; id: Uint8Array; card?: Uint8Array },
  stpName: string,
): Promise<Card> {
  let card: Card | undefined;
  if (claimed.card) {
    try {
      card = await decodeCard(ctx.crypto, claimed.card);
    } catch (e) {
      throw new MissiveError(
        "auth-failed",
        `${stpName}: attached sender card is invalid: ${(e as Error).message}`,
      );
    }
  } else {
    card = ctx.trusted.find((c) => equalBytes(c.id, claimed.id));
    if (!card) {
      throw new MissiveError(
        "untrusted",
        `${stpName}: the message carries no sender card and no trusted card has ID ${
          toHex(claimed.id)
        } ` +
          `(${claimed.address}); pass its card with --trust`,
      );
    }
  }
  if (!equalBytes(card.id, claimed.id) || card.address !== claimed.address) {
    throw new MissiveError(
      "auth-failed",
      `${stpName}: sender card does not match the signed sender`,
    );
  }
  return card;
}
