/**
 * Deliveries (SPEC §23.7): which connection receives each identity's messages, the
 * window of unacknowledged deliveries per connection, and the pump that feeds it from
 * the store — or straight from memory when a receiver has no backlog and the store is
 * this node's alone. A shared store's deliveries are always read back from it, in order,
 * and its watch wakes the pump when another node queued something.
 *
 * Receipts (SPEC §23.7.1) sit in the same queue as messages, in message-ID order. A link
 * takes what its `receive` asked for: its identity's messages (the latest such link only)
 * and/or its receipts (every link that asked: a receipt acknowledged on one is gone, the
 * others' acks of it are answered `unknown-message`); the pump skips the rest.
 * @module
 */
import { toHex } from "../core/bytes.ts";
import type { Card } from "../keys/card.ts";
import type { SecureChannel } from "../session/channel.ts";
import { Outbox } from "./_outbox.ts";
import { RECEIPT_STATUSES } from "../amp/receipt.ts";
import { encodeDelivery, encodeReceipt, type ReceiveMode } from "./protocol.ts";
import type { QueuedMessage, RelayStorage } from "./storage.ts";

/** Deliveries sent to one client and not yet acknowledged, at most. */
export const DEFAULT_WINDOW = 64;
/** Bookkeeping counted for each relay message a connection holds, beyond its bytes. */
export const HELD_OVERHEAD = 256;

/** Where a connection came from and how to cut it (serveRelay's side of a link). */
export interface LinkInfo {
  /** The peer's network address (an IP), for per-address limits and logs. */
  remote?: string;
  /** Cuts the link at once (no CLOSE exchange a hostile peer could stall). */
  abort?: (reason: string) => void;
}

/** One client connection. */
export class Connection {
  readonly channel: SecureChannel;
  readonly card: Card;
  readonly key: string;
  readonly link: LinkInfo;
  /**
   * Bytes this connection makes the relay hold (SPEC §23.12): relay messages read and
   * not yet answered, answers and deliveries not yet acknowledged by the peer, each
   * with HELD_OVERHEAD. Checked against the connection's budget before more is taken.
   */
  held = 0;
  /** Malformed relay messages received so far. */
  malformed = 0;
  /** When the peer last sent anything (for the idle timeout). */
  lastSeen: number;
  /** Set when the relay has decided to drop this connection. */
  dropped = false;
  /** Called when held bytes go down (deliveries waiting for room). */
  onRelease?: () => void;
  /** The link takes something (its identity's messages, receipts or both). */
  receiving = false;
  /** This link is its identity's message receiver (the latest `receive` for messages). */
  takesMessages = false;
  /** This link asked for receipts. */
  takesReceipts = false;
  /** Set once the peer's registration was seen (registrations are never revoked). */
  registered = false;
  /** Highest message ID pushed on this connection. */
  cursor = 0;
  readonly inFlight = new Set<number>();
  /** The store may hold messages newer than `cursor` that were not pushed yet. */
  backlog = true;
  /** A pump reading the store for this connection is running (a shared store's reads wait). */
  pumping = false;
  /** Counts `receive`s: a read started before the latest one is stale. */
  generation = 0;
  /** Stops the store's watch of this connection's queue. */
  unwatch?: () => void;
  /** Requests whose answers have not gone out yet. */
  unanswered = 0;

  readonly #outbox: Outbox;

  constructor(channel: SecureChannel, link: LinkInfo, now: number) {
    this.channel = channel;
    this.#outbox = new Outbox(channel);
    this.card = channel.peer;
    this.key = toHex(channel.peer.id);
    this.link = link;
    this.lastSeen = now;
  }

  /** Counts `n` held bytes. */
  hold(n: number): void {
    this.held += n;
  }

  /** Releases `n` held bytes. */
  release(n: number): void {
    this.held -= n;
    this.onRelease?.();
  }

  /**
   * Queues a relay message; the outbox bundles what one turn produced into one session
   * message, in order. Its bytes count as held, and an `answer` as unanswered, until the
   * peer acknowledged its carrier. A failed channel is closed; its reader then ends.
   */
  send(bytes: Uint8Array, answer = false): Promise<void> {
    const n = bytes.length + HELD_OVERHEAD;
    this.hold(n);
    if (answer) this.unanswered++;
    const settle = () => {
      if (answer) this.unanswered--;
      this.release(n);
    };
    return this.#outbox.send(bytes).then(settle, () => {
      settle();
      void this.channel.close().catch(() => {});
    });
  }

  /** Cuts the link: at once when the link can be aborted, else by closing the channel. */
  cut(reason: string): void {
    if (this.link.abort) this.link.abort(reason);
    else void this.channel.close().catch(() => {});
  }
}

/** The delivery side of a relay. A class: it owns the receivers and their windows. */
export class Deliveries {
  readonly #store: RelayStorage;
  readonly #window: number;
  /** Held bytes above which no delivery is pushed (unless none is in flight). */
  readonly #room: number;
  readonly #running: () => boolean;
  readonly #delivered: () => void;
  readonly #failed: (conn: Connection, e: unknown) => void;
  /** The connection that receives each identity's messages (the latest `receive`). */
  readonly #receivers = new Map<string, Connection>();
  /** The connections that take each identity's receipts. */
  readonly #receiptTakers = new Map<string, Set<Connection>>();

  constructor(
    store: RelayStorage,
    options: {
      window: number;
      room: number;
      running: () => boolean;
      delivered: () => void;
      /** A read of the store failed (the pump retries when woken again). */
      failed?: (conn: Connection, e: unknown) => void;
    },
  ) {
    this.#store = store;
    this.#window = options.window;
    this.#room = options.room;
    this.#running = options.running;
    this.#delivered = options.delivered;
    this.#failed = options.failed ?? (() => {});
  }

  /**
   * `receive` on `conn`: it takes over its identity's messages (unless `mode` is
   * "receipts") and takes its receipts (unless "messages"), from the oldest queued entry.
   * Returns how many of those are queued.
   */
  async start(conn: Connection, mode: ReceiveMode = "messages"): Promise<number> {
    conn.takesMessages = mode !== "receipts";
    conn.takesReceipts = mode !== "messages";
    if (conn.takesMessages) {
      const previous = this.#receivers.get(conn.key);
      if (previous && previous !== conn) {
        previous.takesMessages = false;
        previous.receiving = previous.takesReceipts;
      }
      this.#receivers.set(conn.key, conn);
    } else if (this.#receivers.get(conn.key) === conn) this.#receivers.delete(conn.key);
    const takers = this.#receiptTakers.get(conn.key) ?? new Set();
    if (conn.takesReceipts) this.#receiptTakers.set(conn.key, takers.add(conn));
    else this.#dropTaker(conn);
    conn.receiving = true;
    conn.cursor = 0;
    conn.generation++;
    conn.onRelease = () => {
      if (conn.backlog && conn.receiving && this.#hasRoom(conn)) this.#pump(conn);
    };
    this.#unacknowledged(conn);
    conn.backlog = true;
    conn.unwatch ??= this.#store.queueWatch?.watchQueue(conn.card.id, () => {
      conn.backlog = true;
      if (this.#hasRoom(conn)) this.#pump(conn);
    });
    // Deliveries start after the response is on its way.
    queueMicrotask(() => this.#pump(conn));
    const all = await this.#store.queued(conn.card.id);
    if (mode === "all") return all;
    const receipts = await this.#store.receiptsQueued(conn.card.id);
    return mode === "receipts" ? receipts : Math.max(0, all - receipts);
  }

  #dropTaker(conn: Connection): void {
    const takers = this.#receiptTakers.get(conn.key);
    if (!takers) return;
    takers.delete(conn);
    if (takers.size === 0) this.#receiptTakers.delete(conn.key);
  }

  /** Whether `conn` takes this entry (a receipt, or a message). */
  #wants(conn: Connection, m: QueuedMessage): boolean {
    return m.receipt ? conn.takesReceipts : conn.takesMessages;
  }

  /** The connection is gone; `countAttempts` unless the relay is shutting down. */
  stop(conn: Connection, countAttempts: boolean): void {
    if (countAttempts) this.#unacknowledged(conn);
    conn.receiving = false;
    conn.takesMessages = false;
    conn.takesReceipts = false;
    conn.onRelease = undefined;
    conn.unwatch?.();
    conn.unwatch = undefined;
    if (this.#receivers.get(conn.key) === conn) this.#receivers.delete(conn.key);
    this.#dropTaker(conn);
  }

  /**
   * A message (or a receipt) was committed: offered to its recipient's receiver (or to
   * every link that takes its receipts), if any.
   */
  offer(m: QueuedMessage): void {
    const key = toHex(m.recipient);
    if (!m.receipt) {
      const conn = this.#receivers.get(key);
      if (conn) this.#offerTo(conn, m);
      return;
    }
    for (const conn of this.#receiptTakers.get(key) ?? []) this.#offerTo(conn, m);
  }

  #offerTo(conn: Connection, m: QueuedMessage): void {
    if (!conn.receiving || m.mid <= conn.cursor || !this.#wants(conn, m)) return;
    if (
      this.#store.shared || conn.backlog || conn.pumping || conn.inFlight.size >= this.#window ||
      !this.#hasRoom(conn)
    ) {
      conn.backlog = true;
      this.#pump(conn);
      return;
    }
    this.#deliver(conn, m);
  }

  /**
   * Deliveries use at most the `room` part of a connection's budget, so the answers to
   * its requests always fit; one delivery is always allowed, so a message near the
   * size cap still gets through.
   */
  #hasRoom(conn: Connection): boolean {
    return conn.inFlight.size === 0 || conn.held < this.#room;
  }

  /** `conn` acknowledged `mid`: refill in batches, once half the window is free. */
  acknowledged(conn: Connection, mid: number): void {
    conn.inFlight.delete(mid);
    if (conn.receiving && conn.backlog && conn.inFlight.size <= this.#window / 2) {
      this.#pump(conn);
    }
  }

  /** Deliveries left unacknowledged count as failed attempts (kept for operators). */
  #unacknowledged(conn: Connection): void {
    if (conn.inFlight.size > 0) void this.#store.countAttempts([...conn.inFlight]);
    conn.inFlight.clear();
  }

  /**
   * Pushes queued messages from the store in order, keeping at most `window`
   * unacknowledged. Synchronous where the store's reads are (SQLite); a shared store's
   * reads are awaited, one pump per connection at a time (a wake-up meanwhile makes it
   * read once more).
   */
  #pump(conn: Connection): void {
    if (conn.pumping) {
      conn.backlog = true;
      return;
    }
    while (conn.receiving && this.#running() && !conn.dropped) {
      const room = this.#window - conn.inFlight.size;
      if (room <= 0 || !this.#hasRoom(conn)) {
        conn.backlog = true;
        return;
      }
      const read = this.#store.pending(conn.card.id, conn.cursor, room);
      if (read instanceof Promise) {
        conn.pumping = true;
        conn.backlog = false;
        const generation = conn.generation;
        read.then(
          (batch) => {
            conn.pumping = false;
            // A new `receive` meanwhile restarted from the oldest: this read is stale.
            const pushed = generation === conn.generation ? this.#push(conn, batch, room) : "full";
            if (pushed === "full" || conn.backlog) this.#pump(conn);
          },
          (e) => {
            conn.pumping = false;
            conn.backlog = true;
            this.#failed(conn, e);
          },
        );
        return;
      }
      const pushed = this.#push(conn, read, room);
      if (pushed === "blocked") return;
      if (pushed === "drained") {
        conn.backlog = false; // the store holds nothing newer for now
        return;
      }
    }
  }

  /**
   * Delivers a batch read for `conn`: "full" when it filled the `room` asked for (there
   * may be more), "blocked" when the connection ran out of room (backlog kept),
   * "drained" when the store had no more. Entries at or below the cursor (already
   * pushed from memory) are skipped.
   */
  #push(conn: Connection, batch: QueuedMessage[], room: number): "full" | "blocked" | "drained" {
    for (const m of batch) {
      if (!conn.receiving || conn.dropped) return "blocked";
      if (m.mid <= conn.cursor) continue;
      if (!this.#wants(conn, m)) {
        conn.cursor = m.mid; // not for this link (a receipt, or a message it did not ask for)
        continue;
      }
      if (!this.#hasRoom(conn)) {
        conn.backlog = true;
        return "blocked";
      }
      this.#deliver(conn, m);
    }
    return batch.length >= room ? "full" : "drained";
  }

  #deliver(conn: Connection, m: QueuedMessage): void {
    conn.cursor = m.mid;
    conn.inFlight.add(m.mid);
    this.#delivered();
    if (m.receipt) {
      void conn.send(encodeReceipt({
        id: m.mid,
        message: m.receipt.message,
        recipientId: m.sender,
        recipient: m.senderAddress,
        status: RECEIPT_STATUSES[m.receipt.status] ?? "unparsable",
        acknowledged: m.enqueued,
      }));
      return;
    }
    void conn.send(encodeDelivery({
      message: m.mid,
      senderId: m.sender,
      sender: m.senderAddress,
      envelope: m.envelope,
      enqueued: m.enqueued,
    }));
  }
}
