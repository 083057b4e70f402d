/**
 * The client's durable outgoing queue (SPEC §23.9, after PhoneX's message queue): every
 * message is stored before the first attempt and leaves only when the relay has
 * accepted it (stored it durably). Failed attempts are retried with a send counter and
 * exponential back-off; a refusal that retrying cannot fix (unknown recipient, too
 * large) marks the message failed and keeps it for the user, who may resend it — sealed
 * afresh, with a fresh nonce. A message written while the relay is down is sent by the
 * next flush that reaches it.
 *
 * The queue keeps the message text until the relay accepts it (a resend must reseal),
 * on the sender's own machine, in a file made 0600; the relay itself only ever sees the
 * sealed envelope.
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { Bytes } from "../core/bytes.ts";
import { openQueueDb } from "./sqlite.ts";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS outgoing (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  recipient TEXT NOT NULL,
  body BLOB NOT NULL,
  envelope BLOB,
  protocols TEXT NOT NULL DEFAULT '',
  created INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt INTEGER NOT NULL,
  state TEXT NOT NULL DEFAULT 'pending',
  last_error TEXT
);
CREATE TABLE IF NOT EXISTS cards (address TEXT PRIMARY KEY, card BLOB NOT NULL);
`;

/** First retry delay, ms; it doubles with every failed attempt. */
export const FIRST_RETRY_MS = 1000;
/** Longest retry delay, ms. */
export const MAX_RETRY_MS = 5 * 60 * 1000;

/** The delay before attempt `attempts + 1`. */
export function retryDelay(attempts: number): number {
  return Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** Math.min(30, Math.max(0, attempts - 1)));
}

/** One queued outgoing message. */
export interface OutgoingMessage {
  /** The queue's own number for the message (not the relay's message id). */
  id: number;
  /** Recipient address. */
  recipient: string;
  /** The message text (UTF-8), kept for resending. */
  body: Bytes;
  /** The sealed envelope of the latest attempt; absent until sealed. */
  envelope?: Bytes;
  /** The protocols used, for people ("simple/v2 + text/v2"). */
  protocols: string;
  /** When the message was queued, ms since the epoch. */
  created: number;
  /** Failed attempts so far (a message the relay accepts leaves the queue). */
  attempts: number;
  /** Earliest time of the next attempt, ms since the epoch (back-off: `retryDelay`). */
  nextAttempt: number;
  /**
   * `pending` is sent by the next flush once due; `failed` was refused for good and waits
   * for the user to resend it (`resendOutgoing`) or drop it.
   */
  state: "pending" | "failed";
  /** Why the latest attempt failed, as the error's message. */
  lastError?: string;
}

type Row = Record<string, unknown>;

function toMessage(row: Row): OutgoingMessage {
  const m: OutgoingMessage = {
    id: row.id as number,
    recipient: row.recipient as string,
    body: row.body as Bytes,
    protocols: row.protocols as string,
    created: row.created as number,
    attempts: row.attempts as number,
    nextAttempt: row.next_attempt as number,
    state: row.state === "failed" ? "failed" : "pending",
  };
  if (row.envelope instanceof Uint8Array) m.envelope = row.envelope as Bytes;
  if (typeof row.last_error === "string") m.lastError = row.last_error;
  return m;
}

/** The outgoing queue file. A class: it owns an open database. */
export class OutgoingQueue {
  readonly #db: DatabaseSync;
  readonly #sql: Record<string, StatementSync>;
  #closed = false;

  /**
   * Opens (or creates, mode 0600) the queue file at `path`; `":memory:"` keeps it in
   * memory, for tests. Throws `MissiveError` `io` when the file cannot be opened.
   */
  constructor(path: string) {
    this.#db = openQueueDb(path, SCHEMA, "outgoing queue");
    const p = (sql: string) => this.#db.prepare(sql);
    this.#sql = {
      add: p(
        "INSERT INTO outgoing (recipient, body, envelope, protocols, created, next_attempt) " +
          "VALUES (?, ?, ?, ?, ?, ?)",
      ),
      get: p("SELECT * FROM outgoing WHERE id = ?"),
      due: p("SELECT * FROM outgoing WHERE state = 'pending' AND next_attempt <= ? ORDER BY id"),
      all: p("SELECT * FROM outgoing ORDER BY id"),
      attempted: p(
        "UPDATE outgoing SET attempts = attempts + 1, next_attempt = ?, last_error = ? WHERE id = ?",
      ),
      failed: p(
        "UPDATE outgoing SET attempts = attempts + 1, state = 'failed', last_error = ? WHERE id = ?",
      ),
      resealed: p(
        "UPDATE outgoing SET envelope = ?, protocols = ?, state = 'pending', next_attempt = ?, " +
          "last_error = NULL WHERE id = ?",
      ),
      remove: p("DELETE FROM outgoing WHERE id = ?"),
      putCard: p("INSERT OR REPLACE INTO cards (address, card) VALUES (?, ?)"),
      getCard: p("SELECT card FROM cards WHERE address = ?"),
    };
  }

  /** Queues a message (sealed already, or not yet when `envelope` is undefined). */
  add(
    recipient: string,
    body: Uint8Array,
    envelope: Uint8Array | undefined,
    protocols: string,
    now: number = Date.now(),
  ): number {
    const info = this.#sql.add.run(recipient, body, envelope ?? null, protocols, now, now);
    return Number(info.lastInsertRowid);
  }

  /** The message queued as `id`, pending or failed; undefined once it has left. */
  get(id: number): OutgoingMessage | undefined {
    const row = this.#sql.get.get(id) as Row | undefined;
    return row && toMessage(row);
  }

  /** Pending messages whose next attempt is due, oldest first. */
  due(now: number = Date.now()): OutgoingMessage[] {
    return (this.#sql.due.all(now) as Row[]).map(toMessage);
  }

  /** Every queued message, pending and failed. */
  all(): OutgoingMessage[] {
    return (this.#sql.all.all() as Row[]).map(toMessage);
  }

  /** Counts a failed attempt that may succeed later; schedules the retry. */
  attempted(id: number, error: string, now: number = Date.now()): void {
    const current = this.get(id);
    if (!current) return;
    this.#sql.attempted.run(now + retryDelay(current.attempts + 1), error, id);
  }

  /** Marks a message failed for good (the relay refused it); it stays for the user. */
  failed(id: number, error: string): void {
    this.#sql.failed.run(error, id);
  }

  /** Stores a fresh sealing of a message (a resend) and makes it due now. */
  resealed(id: number, envelope: Uint8Array, protocols: string, now: number = Date.now()): void {
    this.#sql.resealed.run(envelope, protocols, now, id);
  }

  /** Deletes a message the relay accepted. */
  remove(id: number): void {
    this.#sql.remove.run(id);
  }

  /** Remembers a recipient's card, so a message can be sealed while the relay is down. */
  cacheCard(address: string, card: Uint8Array): void {
    this.#sql.putCard.run(address, card);
  }

  /**
   * The card last cached for `address` (encoded bytes, as received: decode and check it
   * before use), or undefined when none is.
   */
  cachedCard(address: string): Bytes | undefined {
    const row = this.#sql.getCard.get(address) as Row | undefined;
    return row?.card as Bytes | undefined;
  }

  /** Closes the file; later calls do nothing, other methods throw. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }
}
