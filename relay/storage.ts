/**
 * The store behind a relay (SPEC §23.6, docs/SCALE.md): one interface, two
 * implementations — `RelayStore` (embedded SQLite, the default, relay/store.ts) and the
 * NATS JetStream store shared by several relay nodes (relay/jetstream/, loaded only by
 * `missive serve --store nats://…`). It holds registered cards, presence, the queues of
 * sealed envelopes per recipient and the published prekeys; the relay keeps in memory
 * only what concerns its own connections. Nothing stored is readable: envelopes are
 * sealed end to end.
 *
 * Optional capabilities are separate small interfaces (`SharedDirectory`, `OnlineBoard`,
 * `QueueWatch`), present only where the store is shared between nodes. A later one — the
 * chat's control state (friend requests held for a user, SPEC §23 chat control) — is
 * added the same way, as `control?: ChatControlStore`, without widening the others.
 * @module
 */
import type { Bytes } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import { MAX_STORED_ONE_TIME, type PrekeyStore } from "../stp/ratchet/mod.ts";
import type { RelayStatus, Target } from "./protocol.ts";

/** A registered card as stored. */
export interface StoredCard {
  /** The card's identity ID (`Card.id`): one card per ID. */
  id: Bytes;
  /** The address the card is registered under: one card per address. */
  address: string;
  /** The encoded card, as registered (checked by the relay before it is stored). */
  card: Bytes;
  /** Index into PRESENCE_STATUSES. */
  presence: number;
  /** The presence note the card's owner set, if any (the peer's text: sanitise to show). */
  note?: string;
}

/**
 * A queued receipt's own fields (SPEC §23.7.1): the entry's `sender` is the recipient
 * who acknowledged, `enqueued` the time of the ack, `envelope` empty.
 */
export interface StoredReceipt {
  /** The relay message ID of the acknowledged message. */
  message: number;
  /** Index into RECEIPT_STATUSES. */
  status: number;
}

/** A queued envelope, or a receipt queued for the sender of an acknowledged message. */
export interface QueuedMessage {
  /** The relay message ID: increasing in the order the store accepted messages. */
  mid: number;
  /** The identity ID the entry is queued for. */
  recipient: Bytes;
  /** The identity ID the relay's session authenticated as the sender. */
  sender: Bytes;
  /** The sender's registered address at the time it sent. */
  senderAddress: string;
  /** The sealed envelope, opaque to the relay (empty for a receipt). */
  envelope: Bytes;
  /** When the store accepted the entry, ms since the epoch (the relay's clock). */
  enqueued: number;
  /** Deliveries that were not acknowledged (for operators; a store may not count them). */
  attempts: number;
  /** The sender asked for a receipt when this envelope's recipient acknowledges it. */
  wantsReceipt?: boolean;
  /** Set when the entry is a receipt, not an envelope. */
  receipt?: StoredReceipt;
}

/** What `enqueue` needs. */
export interface NewMessage {
  /** The identity ID to queue it for. */
  recipient: Bytes;
  /** The identity ID the relay's session authenticated as the sender. */
  sender: Bytes;
  /** The sender's registered address. */
  senderAddress: string;
  /**
   * The sealed envelope, stored as is: the relay has checked its size and that it parses
   * as an envelope, nothing of what it seals.
   */
  envelope: Uint8Array;
  /** SHA-256 of the envelope: a resend of the same bytes is the same message. */
  digest: Uint8Array;
  /** The relay's time of acceptance, ms since the epoch. */
  enqueued: number;
  /** The sender asks for a receipt (SPEC §23.7.1). */
  wantsReceipt?: boolean;
}

/**
 * What a receipt counts against the byte caps (SPEC §23.7.1), whatever it holds: a fixed
 * size, so receipts are bounded by the message counts as much as by bytes.
 */
export const RECEIPT_COST = 512;

/**
 * The limits a receipt is queued under (SPEC §23.7.1): the relay's, applied to the
 * receipt's recipient (the original sender) as to a small message; over any of them the
 * receipt is dropped, never the acknowledgement.
 */
export interface ReceiptLimits {
  /** Receipts from one acknowledging user to one sender. */
  quota: number;
  /** Entries (messages and receipts) queued for the sender. */
  recipientQuota: number;
  /** Bytes queued for the sender. */
  recipientBytes: number;
  /** Bytes queued in the store. */
  storeBytes: number;
}

/** A recipient's `ack` (SPEC §23.7), as the store needs it. */
export interface Acknowledgement {
  /** The acknowledging peer's identity ID (the session's). */
  recipient: Uint8Array;
  /** The acknowledging peer's address: the receipt names it to the sender. */
  recipientAddress: string;
  /** The relay message ID acknowledged. */
  mid: number;
  /** Index into RECEIPT_STATUSES. */
  status: number;
  /** When the relay took the ack. */
  at: number;
  /** The limits a receipt for the sender is queued under. */
  limits: ReceiptLimits;
}

/** What an `ack` did. */
export interface AckOutcome {
  /** The entry was queued for this peer and is gone now. */
  removed: boolean;
  /** The receipt queued for the message's sender (it asked for one). */
  receipt?: QueuedMessage;
  /** Why a receipt asked for was not queued (a limit of SPEC §23.7.1). */
  dropped?: string;
}

/**
 * The queue entry of the receipt an acknowledgement `a` makes for `sender` (the message's
 * sender), stored as entry `mid` (SPEC §23.7.1): from the acknowledging recipient, no
 * envelope, enqueued at the time of the ack. Every store builds its receipts with it.
 */
export function receiptEntry(a: Acknowledgement, sender: Bytes, mid: number): QueuedMessage {
  return {
    mid,
    recipient: sender,
    sender: new Uint8Array(a.recipient),
    senderAddress: a.recipientAddress,
    envelope: new Uint8Array(),
    enqueued: a.at,
    attempts: 0,
    receipt: { message: a.mid, status: a.status },
  };
}

/**
 * Refuses a prekey upload after which `held` one-time prekeys would be stored for one
 * owner (`full`, nothing stored): the one limit both relay prekey stores apply.
 */
export function checkOneTimeHeld(held: number): void {
  if (held > MAX_STORED_ONE_TIME) {
    throw new MissiveError(
      "full",
      `prekey store: ${held} one-time prekeys would be held; at most ${MAX_STORED_ONE_TIME}`,
    );
  }
}

/** What is queued for one recipient, or from one sender to one recipient. */
export interface QueueUsage {
  /** Entries: messages, and receipts where the store counts them (`receipts`). */
  messages: number;
  /** Envelope bytes, with `RECEIPT_COST` for each receipt. */
  bytes: number;
  /** How many of `messages` are receipts. */
  receipts?: number;
}

/** The outcome of `putCard`. */
export type PutCardResult =
  | { status: "ok" }
  /** The address or the ID is held by another card (on any node of a shared store). */
  | { status: "collision"; holder: StoredCard };

/**
 * A refusal decided by the store itself (a shared store enforces quotas and its cap
 * where the data is, cluster-wide): the relay answers with its status and detail.
 */
export class StoreRefusal extends MissiveError {
  /** The status the relay answers with (e.g. `quota`, `unavailable`). */
  readonly status: Exclude<RelayStatus, "ok">;
  /**
   * A refusal with `status` and `detail` (sent to the client as the answer's detail: no
   * secrets in it). Its error code is `network` for `unavailable`, else `refused`.
   */
  constructor(status: Exclude<RelayStatus, "ok">, detail: string) {
    super(status === "unavailable" ? "network" : "refused", detail);
    this.status = status;
  }
}

/** Cards changed by other nodes (a shared store). */
export interface SharedDirectory {
  /** Calls `onCard` for every card or presence change seen in the store, any node's. */
  watchCards(onCard: (card: StoredCard) => void): void;
  /** A card by address or ID straight from the store (the cache may lag another node). */
  findCard(target: Target): Promise<StoredCard | undefined>;
}

/**
 * Who is online on the other nodes (presence with expiry: a node that dies stops
 * claiming its users within the expiry).
 */
export interface OnlineBoard {
  /** This node's online identities (hex IDs) changed: published soon, then refreshed. */
  update(online: ReadonlySet<string>): void;
  /** Hex IDs online on other live nodes. */
  elsewhere(): ReadonlySet<string>;
}

/** Live delivery across nodes: messages another node queued for a local receiver. */
export interface QueueWatch {
  /**
   * Calls `onNew` when a message for `recipient` may have been queued (by any node), and
   * now and then anyway (a node that died before telling); returns the unsubscribe.
   */
  watchQueue(recipient: Bytes, onNew: () => void): () => void;
}

/** The relay's store. */
export interface RelayStorage {
  /** "sqlite" or "jetstream", for logs and --stats. */
  readonly kind: string;
  /**
   * Set when other relay nodes share the store: a delivery is then always read back from
   * the store in order, never handed over from memory, since another node may have
   * queued a message with a lower ID a moment earlier.
   */
  readonly shared: boolean;
  /** Card changes made through other nodes; only a shared store has it. */
  readonly directory?: SharedDirectory;
  /** Who is online on other nodes; only a shared store has it. */
  readonly online?: OnlineBoard;
  /** Messages other nodes queued for this node's receivers; only a shared store has it. */
  readonly queueWatch?: QueueWatch;

  // ---- directory (SPEC §23.5)
  /** Every registered card (the directory's cache at start-up). */
  allCards(): Promise<StoredCard[]>;
  /**
   * Registers `card` under `address` and `id`, or replaces the card of that ID when it
   * already holds that address; a collision when the address or ID is another's.
   */
  putCard(id: Bytes, address: string, card: Bytes, now: number): Promise<PutCardResult>;
  /** Sets the presence (index into PRESENCE_STATUSES) and note of the card `id`. */
  setPresence(id: Uint8Array, presence: number, note: string | undefined): Promise<void>;

  // ---- queues (SPEC §23.6, §23.7)
  /**
   * Queues an envelope; resolves with its message ID once durable. The same envelope
   * for the same recipient again (a sender's retry) returns the first one's ID.
   * Rejects with a StoreRefusal when the store refuses it (a shared store's quotas).
   */
  enqueue(m: NewMessage): Promise<{ mid: number; duplicate: boolean }>;
  /**
   * Up to `limit` messages for `recipient` after message `afterMid`, oldest first
   * (synchronous where the store can answer at once).
   */
  pending(
    recipient: Uint8Array,
    afterMid: number,
    limit: number,
  ): QueuedMessage[] | Promise<QueuedMessage[]>;
  /**
   * An acknowledgement: removes entry `mid` if it is queued for the acknowledging peer
   * and, when it is a message whose sender asked for a receipt, queues that receipt for
   * the sender — within `limits`, else the receipt is dropped (`dropped` says why). A
   * store shared by several nodes makes the receipt idempotent: one receipt per message
   * whichever nodes see the ack (SPEC §23.14).
   */
  acknowledge(ack: Acknowledgement): Promise<AckOutcome>;
  /** Counts deliveries that were not acknowledged (for operators; may be a no-op). */
  countAttempts(mids: readonly number[]): Promise<void>;
  /** Entries (messages and receipts) queued for `recipient`. */
  queued(recipient: Uint8Array): Promise<number>;
  /** Receipts queued for `recipient` (call after `queued`, which refreshes counts). */
  receiptsQueued(recipient: Uint8Array): Promise<number>;
  /** What is queued for `recipient`. */
  usage(recipient: Uint8Array): Promise<QueueUsage>;
  /** What `sender` has queued for `recipient`. */
  pairUsage(recipient: Uint8Array, sender: Uint8Array): Promise<QueueUsage>;
  /** Messages queued in all (a shared store's may be a second old). */
  readonly total: number;
  /** Envelope bytes queued in all (ditto). */
  readonly totalBytes: number;

  // ---- prekeys (SPEC §23.13)
  /** The published prekeys: each one-time prekey is handed out once, then gone. */
  readonly prekeys: PrekeyStore;

  /** Makes pending writes durable now (tests, shutdown). */
  flush(): void;
  /** Flushes and closes; idempotent. */
  close(): Promise<void>;
}
