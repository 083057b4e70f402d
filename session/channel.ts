/**
 * The contract between the live session protocol (STP session, DESIGN §6) and what runs
 * over it (the relay, DESIGN §7): an authenticated, encrypted, ordered channel of
 * messages with a proven peer identity.
 * @module
 */
import type { Card } from "../keys/card.ts";

/** A mutually authenticated channel; `Session` implements it. */
export interface SecureChannel {
  /** The peer's card, proven during the handshake. */
  readonly peer: Card;
  /**
   * Sends one application message. Resolves once the peer acknowledged it (the session
   * protocol's DATA_ACK); throws a MissiveError (`session`, `timeout`) if the channel
   * failed.
   */
  send(data: Uint8Array): Promise<void>;
  /** Authenticated messages from the peer, in order; ends when the channel closes. */
  messages(): AsyncIterable<Uint8Array>;
  /** Closes the channel (CLOSE / CLOSE_ACK); idempotent. */
  close(): Promise<void>;
}
