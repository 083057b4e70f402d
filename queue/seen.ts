/**
 * What a relay client has already shown (SPEC §23.7): the (sender ID, inner nonce) of
 * every message handled, kept durably so a redelivery — the relay resends anything
 * whose acknowledgement it did not get — is acknowledged again but shown only once.
 * Unlike the replay cache of SPEC §10 there is no time window: a message may wait in a
 * relay's queue for longer than any window.
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { toHex } from "../core/bytes.ts";
import { openQueueDb } from "./sqlite.ts";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS seen (
  sender TEXT NOT NULL,
  nonce TEXT NOT NULL,
  seen INTEGER NOT NULL,
  PRIMARY KEY (sender, nonce)
);`;

/** A durable set of handled (sender, nonce) pairs. */
export class SeenMessages {
  readonly #db: DatabaseSync;
  readonly #has: StatementSync;
  readonly #add: StatementSync;
  #closed = false;

  /**
   * Opens (or creates, mode 0600) the file at `path`; `":memory:"` keeps it in memory,
   * for tests. Throws `MissiveError` `io` when the file cannot be opened.
   */
  constructor(path: string) {
    this.#db = openQueueDb(path, SCHEMA, "seen-messages db");
    this.#has = this.#db.prepare("SELECT 1 FROM seen WHERE sender = ? AND nonce = ?");
    this.#add = this.#db.prepare(
      "INSERT OR IGNORE INTO seen (sender, nonce, seen) VALUES (?, ?, ?)",
    );
  }

  /** True when this sender's message with this nonce was handled before. */
  has(sender: Uint8Array, nonce: Uint8Array): boolean {
    return this.#has.get(toHex(sender), toHex(nonce)) !== undefined;
  }

  /** Records a handled message (committed before this returns). */
  remember(sender: Uint8Array, nonce: Uint8Array, now: number = Date.now()): void {
    this.#add.run(toHex(sender), toHex(nonce), now);
  }

  /** Closes the file; later calls do nothing, other methods throw. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }
}
