/**
 * Deliveries (SPEC §23.7): which connection receives each identity's messages, the
 * window of unacknowledged deliveries per connection, and the pump that feeds it from
 * the store — or straight from memory when a receiver has no backlog.
 * @module
 */
import { toHex } from "../core/bytes.ts";
import type { Card } from "../keys/card.ts";
import type { SecureChannel } from "../session/channel.ts";
import { Outbox } from "./_outbox.ts";
import { encodeDelivery } from "./protocol.ts";
import type { QueuedMessage, RelayStore } from "./store.ts";

/** Deliveries sent to one client and not yet acknowledged, at most. */
export const DEFAULT_WINDOW = 64;

/** One client connection. */
export class Connection {
  readonly channel: SecureChannel;
  readonly card: Card;
  readonly key: string;
  receiving = false;
  /** Set once the peer's registration was seen (registrations are never revoked). */
  registered = false;
  /** Highest message ID pushed on this connection. */
  cursor = 0;
  readonly inFlight = new Set<number>();
  /** The store may hold messages newer than `cursor` that were not pushed yet. */
  backlog = true;
  /** Requests whose answers have not gone out yet. */
  unanswered = 0;

  readonly #outbox: Outbox;

  constructor(channel: SecureChannel) {
    this.channel = channel;
    this.#outbox = new Outbox(channel);
    this.card = channel.peer;
    this.key = toHex(channel.peer.id);
  }

  /**
   * Queues a relay message; the outbox bundles what one turn produced into one session
   * message, in order. A failed channel is closed; its reader then ends.
   */
  send(bytes: Uint8Array): Promise<void> {
    return this.#outbox.send(bytes).catch(() => {
      void this.channel.close().catch(() => {});
    });
  }
}

/** The delivery side of a relay. A class: it owns the receivers and their windows. */
export class Deliveries {
  readonly #store: RelayStore;
  readonly #window: number;
  readonly #running: () => boolean;
  readonly #delivered: () => void;
  /** The connection that receives each identity's deliveries (the latest `receive`). */
  readonly #receivers = new Map<string, Connection>();

  constructor(
    store: RelayStore,
    options: { window: number; running: () => boolean; delivered: () => void },
  ) {
    this.#store = store;
    this.#window = options.window;
    this.#running = options.running;
    this.#delivered = options.delivered;
  }

  /**
   * `receive` on `conn`: it takes over its identity's deliveries, from the oldest queued
   * message. Returns how many are queued.
   */
  start(conn: Connection): number {
    const previous = this.#receivers.get(conn.key);
    if (previous && previous !== conn) previous.receiving = false;
    this.#receivers.set(conn.key, conn);
    conn.receiving = true;
    conn.cursor = 0;
    this.#unacknowledged(conn);
    conn.backlog = true;
    // Deliveries start after the response is on its way.
    queueMicrotask(() => this.#pump(conn));
    return this.#store.queued(conn.card.id);
  }

  /** The connection is gone; `countAttempts` unless the relay is shutting down. */
  stop(conn: Connection, countAttempts: boolean): void {
    if (countAttempts) this.#unacknowledged(conn);
    if (this.#receivers.get(conn.key) === conn) this.#receivers.delete(conn.key);
  }

  /** A message was committed: offered to its recipient's receiver, if any. */
  offer(m: QueuedMessage): void {
    const conn = this.#receivers.get(toHex(m.recipient));
    if (!conn || !conn.receiving || m.mid <= conn.cursor) return;
    if (conn.backlog || conn.inFlight.size >= this.#window) {
      conn.backlog = true;
      this.#pump(conn);
      return;
    }
    this.#deliver(conn, m);
  }

  /** `conn` acknowledged `mid`: refill in batches, once half the window is free. */
  acknowledged(conn: Connection, mid: number): void {
    conn.inFlight.delete(mid);
    if (
      this.#receivers.get(conn.key) === conn && conn.backlog &&
      conn.inFlight.size <= this.#window / 2
    ) this.#pump(conn);
  }

  /** Deliveries left unacknowledged count as failed attempts (kept for operators). */
  #unacknowledged(conn: Connection): void {
    if (conn.inFlight.size > 0) void this.#store.countAttempts([...conn.inFlight]);
    conn.inFlight.clear();
  }

  /**
   * Pushes queued messages from the store in order, keeping at most `window`
   * unacknowledged. Synchronous: the store reads are, and sends only queue.
   */
  #pump(conn: Connection): void {
    while (conn.receiving && this.#running()) {
      const room = this.#window - conn.inFlight.size;
      if (room <= 0) {
        conn.backlog = true;
        return;
      }
      const batch = this.#store.pending(conn.card.id, conn.cursor, room);
      for (const m of batch) this.#deliver(conn, m);
      if (batch.length < room) {
        conn.backlog = false; // the store holds nothing newer for now
        return;
      }
    }
  }

  #deliver(conn: Connection, m: QueuedMessage): void {
    conn.cursor = m.mid;
    conn.inFlight.add(m.mid);
    this.#delivered();
    void conn.send(encodeDelivery({
      message: m.mid,
      senderId: m.sender,
      sender: m.senderAddress,
      envelope: m.envelope,
      enqueued: m.enqueued,
    }));
  }
}
