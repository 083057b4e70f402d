/**
 * The replay cache of `--replay-db FILE` (SPEC §10), kept in SQLite (`node:sqlite`):
 * one row per (sender, nonce) with its expiry, indexed by expiry so expired rows go in one
 * statement, and a cap on unexpired rows beyond which the cache refuses (`full`) rather
 * than forgets. The file is created 0600. Only the CLI loads this module, and only when
 * `--replay-db` is given; the library takes any `ReplayCache`.
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { toHex, utf8 } from "../core/bytes.ts";
import {
  checkReplayWindow,
  type ReplayCache,
  replayErrors,
  type ReplayOptions,
  type ReplayWindow,
  replayWindow,
} from "../plugin/replay.ts";
import { openQueueDb } from "./sqlite.ts";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS seen (
  sender TEXT NOT NULL,
  nonce TEXT NOT NULL,
  expiry INTEGER NOT NULL,
  PRIMARY KEY (sender, nonce)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_by_expiry ON seen (expiry);
`;

/** A replay cache persisted in a SQLite file. */
export class SqliteReplayCache implements ReplayCache {
  readonly #db: DatabaseSync;
  readonly #w: ReplayWindow;
  readonly #has: StatementSync;
  readonly #insert: StatementSync;
  readonly #expire: StatementSync;
  #count: number;

  constructor(path: string, options: ReplayOptions = {}) {
    this.#w = replayWindow(options);
    this.#db = openQueueDb(path, SCHEMA, "replay db");
    this.#has = this.#db.prepare("SELECT 1 FROM seen WHERE sender = ? AND nonce = ?");
    this.#insert = this.#db.prepare("INSERT INTO seen (sender, nonce, expiry) VALUES (?, ?, ?)");
    this.#expire = this.#db.prepare("DELETE FROM seen WHERE expiry < ?");
    this.#expire.run(this.#w.now());
    this.#count = Number(
      (this.#db.prepare("SELECT count(*) AS n FROM seen").get() as { n: number }).n,
    );
  }

  checkAndRemember(sender: string, nonce: Uint8Array, timestamp: number): Promise<void> {
    try {
      const now = this.#w.now();
      const expiry = checkReplayWindow(this.#w, timestamp, now);
      // The sender may be attacker-chosen text (plain STP): stored hex-encoded.
      const who = toHex(utf8(sender));
      const id = toHex(nonce);
      if (this.#has.get(who, id)) throw replayErrors.seen(sender);
      if (this.#count >= this.#w.maxEntries) {
        this.#count -= Number(this.#expire.run(now).changes);
      }
      if (this.#count >= this.#w.maxEntries) throw replayErrors.full(this.#w.maxEntries);
      this.#insert.run(who, id, expiry);
      this.#count++;
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Closes the file. */
  close(): void {
    this.#db.close();
  }
}
