/**
 * The relay's durable store (SPEC §23.6): registered cards and the queue of sealed
 * envelopes waiting for their recipients, in an embedded SQLite database (`node:sqlite`,
 * nothing to install) with WAL and `synchronous=FULL`, so a committed message survives
 * a crash. Writes are group-committed: every change made in one turn of the event loop
 * shares one transaction, and the promises of those writes resolve only after COMMIT.
 * The store holds envelopes as opaque bytes; the relay has no key that opens them.
 * @module
 */
import { closeSync, openSync } from "node:fs";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { type Bytes, utf8 } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import {
  decodePrekeyBundle,
  encodePrekeyBundle,
  type PrekeyBundle,
  type PrekeyStore,
  type PrekeyUpload,
} from "../stp/ratchet/mod.ts";
import {
  type Acknowledgement,
  type AckOutcome,
  checkOneTimeHeld,
  type NewMessage,
  type PutCardResult,
  type QueuedMessage,
  type QueueUsage,
  RECEIPT_COST,
  receiptEntry,
  type ReceiptLimits,
  type RelayStorage,
  type StoredCard,
} from "./storage.ts";

export type { NewMessage, QueuedMessage, QueueUsage, StoredCard } from "./storage.ts";

/** 2: receipts (SPEC §23.7.1) — columns want_receipt, receipt_for, receipt_status. */
const SCHEMA_VERSION = 2;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS cards (
  id BLOB PRIMARY KEY,
  address TEXT NOT NULL UNIQUE,
  card BLOB NOT NULL,
  presence INTEGER NOT NULL DEFAULT 0,
  note TEXT,
  registered INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS queue (
  mid INTEGER PRIMARY KEY AUTOINCREMENT,
  recipient BLOB NOT NULL,
  sender BLOB NOT NULL,
  sender_address TEXT NOT NULL,
  envelope BLOB NOT NULL,
  digest BLOB NOT NULL,
  enqueued INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  want_receipt INTEGER NOT NULL DEFAULT 0,
  receipt_for INTEGER,
  receipt_status INTEGER
);
CREATE INDEX IF NOT EXISTS queue_by_recipient ON queue (recipient, mid);
CREATE UNIQUE INDEX IF NOT EXISTS queue_by_digest ON queue (recipient, digest);
CREATE TABLE IF NOT EXISTS signed_prekeys (
  owner BLOB PRIMARY KEY,
  bundle BLOB NOT NULL,
  created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS one_time_prekeys (
  owner BLOB NOT NULL,
  pid INTEGER NOT NULL,
  public_key BLOB NOT NULL,
  PRIMARY KEY (owner, pid)
);
`;

/** Version 1 → 2: the queue's receipt columns (a version-1 queue holds no receipt). */
const MIGRATE_1_TO_2 = `
ALTER TABLE queue ADD COLUMN want_receipt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE queue ADD COLUMN receipt_for INTEGER;
ALTER TABLE queue ADD COLUMN receipt_status INTEGER;
`;

/** What a queued entry counts against the byte caps: a receipt its fixed cost. */
const SIZE_SQL = `CASE WHEN receipt_for IS NULL THEN length(envelope) ELSE ${RECEIPT_COST} END`;

/**
 * A receipt's digest column: the queue's (recipient, digest) uniqueness then allows one
 * receipt per message (an envelope's digest is 32 bytes of SHA-256, never this text).
 */
const receiptDigest = (mid: number) => utf8(`receipt:${mid}`);

/** A cheap map key for an ID (one char per byte; never shown). */
const idKey = (id: Uint8Array) => String.fromCharCode(...id);
/** The key of a (recipient, sender) pair. */
const pairKey = (recipient: Uint8Array, sender: Uint8Array) => idKey(recipient) + idKey(sender);

const add = (m: Map<string, QueueUsage>, key: string, messages: number, bytes: number) => {
  const u = m.get(key) ?? { messages: 0, bytes: 0 };
  u.messages += messages;
  u.bytes += bytes;
  if (u.messages > 0) m.set(key, u);
  else m.delete(key);
};

type Row = Record<string, unknown>;

function toCard(row: Row): StoredCard {
  const c: StoredCard = {
    id: row.id as Bytes,
    address: row.address as string,
    card: row.card as Bytes,
    presence: row.presence as number,
  };
  if (typeof row.note === "string") c.note = row.note;
  return c;
}

function toMessage(row: Row): QueuedMessage {
  const m: QueuedMessage = {
    mid: row.mid as number,
    recipient: row.recipient as Bytes,
    sender: row.sender as Bytes,
    senderAddress: row.sender_address as string,
    envelope: row.envelope as Bytes,
    enqueued: row.enqueued as number,
    attempts: row.attempts as number,
  };
  if (row.want_receipt) m.wantsReceipt = true;
  if (row.receipt_for !== null && row.receipt_for !== undefined) {
    m.receipt = { message: Number(row.receipt_for), status: Number(row.receipt_status) };
  }
  return m;
}

/**
 * The relay database, the default `RelayStorage` (one relay node). A class: it owns an
 * open database with a lifecycle.
 */
export class RelayStore implements RelayStorage {
  readonly kind = "sqlite";
  readonly shared = false;
  readonly #db: DatabaseSync;
  readonly #path: string;
  readonly #sql: Record<string, StatementSync>;
  /** Queued per recipient and per (recipient, sender), kept in memory for the quotas. */
  readonly #byRecipient = new Map<string, QueueUsage>();
  readonly #byPair = new Map<string, QueueUsage>();
  /** Receipts queued per recipient and per (recipient, acknowledging user). */
  readonly #receiptsByRecipient = new Map<string, QueueUsage>();
  readonly #receiptsByPair = new Map<string, QueueUsage>();
  #total = 0;
  #totalBytes = 0;
  #cards = 0;
  #inTransaction = false;
  #waiters: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  #closed = false;

  private constructor(db: DatabaseSync, path: string) {
    this.#db = db;
    this.#path = path;
    const p = (sql: string) => db.prepare(sql);
    this.#sql = {
      cardById: p("SELECT * FROM cards WHERE id = ?"),
      cardByAddress: p("SELECT * FROM cards WHERE address = ?"),
      allCards: p("SELECT * FROM cards ORDER BY address"),
      putCard: p(
        "INSERT INTO cards (id, address, card, registered) VALUES (?, ?, ?, ?) " +
          "ON CONFLICT(id) DO UPDATE SET card = excluded.card",
      ),
      presence: p("UPDATE cards SET presence = ?, note = ? WHERE id = ?"),
      find: p("SELECT mid FROM queue WHERE recipient = ? AND digest = ?"),
      insert: p(
        "INSERT INTO queue (recipient, sender, sender_address, envelope, digest, enqueued, " +
          "want_receipt) VALUES (?, ?, ?, ?, ?, ?, ?)",
      ),
      insertReceipt: p(
        "INSERT INTO queue (recipient, sender, sender_address, envelope, digest, enqueued, " +
          "receipt_for, receipt_status) VALUES (?, ?, ?, X'', ?, ?, ?, ?) " +
          "ON CONFLICT (recipient, digest) DO NOTHING",
      ),
      pending: p("SELECT * FROM queue WHERE recipient = ? AND mid > ? ORDER BY mid LIMIT ?"),
      remove: p(
        "DELETE FROM queue WHERE mid = ? AND recipient = ? " +
          `RETURNING sender, ${SIZE_SQL} AS size, want_receipt, receipt_for`,
      ),
      attempt: p("UPDATE queue SET attempts = attempts + 1 WHERE mid = ?"),
      counts: p(
        `SELECT recipient, sender, receipt_for IS NOT NULL AS receipt, COUNT(*) AS n, ` +
          `SUM(${SIZE_SQL}) AS size FROM queue GROUP BY recipient, sender, receipt`,
      ),
      cardCount: p("SELECT COUNT(*) AS n FROM cards"),
      signedPrekey: p("SELECT bundle, created FROM signed_prekeys WHERE owner = ?"),
      putSignedPrekey: p(
        "INSERT INTO signed_prekeys (owner, bundle, created) VALUES (?, ?, ?) " +
          "ON CONFLICT(owner) DO UPDATE SET bundle = excluded.bundle, created = excluded.created",
      ),
      oneTimeCount: p("SELECT COUNT(*) AS n FROM one_time_prekeys WHERE owner = ?"),
      hasOneTime: p("SELECT 1 FROM one_time_prekeys WHERE owner = ? AND pid = ?"),
      putOneTime: p("INSERT INTO one_time_prekeys (owner, pid, public_key) VALUES (?, ?, ?)"),
      // The oldest published (insertion order), deleted in the same statement.
      takeOneTime: p(
        "DELETE FROM one_time_prekeys WHERE rowid = (SELECT rowid FROM one_time_prekeys " +
          "WHERE owner = ? ORDER BY rowid LIMIT 1) RETURNING pid, public_key",
      ),
      dropSignedPrekey: p("DELETE FROM signed_prekeys WHERE owner = ?"),
      dropOneTime: p("DELETE FROM one_time_prekeys WHERE owner = ?"),
    };
    for (const row of this.#sql.counts.all() as Row[]) {
      const [n, size] = [Number(row.n), Number(row.size)];
      const [recipient, sender] = [row.recipient as Uint8Array, row.sender as Uint8Array];
      add(this.#byRecipient, idKey(recipient), n, size);
      if (row.receipt) {
        add(this.#receiptsByRecipient, idKey(recipient), n, size);
        add(this.#receiptsByPair, pairKey(recipient, sender), n, size);
      } else add(this.#byPair, pairKey(recipient, sender), n, size);
      this.#total += n;
      this.#totalBytes += size;
    }
    this.#cards = Number((this.#sql.cardCount.get() as Row).n);
  }

  /**
   * Opens (creating if needed) the database at `path` (":memory:" for tests). A new file
   * is created 0600, before SQLite opens it; SQLite gives its journal files the same mode.
   */
  static open(path: string): RelayStore {
    let db: DatabaseSync;
    try {
      if (path !== ":memory:") {
        try {
          closeSync(openSync(path, "wx", 0o600));
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
        }
      }
      db = new DatabaseSync(path);
      db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;");
      db.exec(SCHEMA);
      const row = db.prepare("SELECT value FROM meta WHERE key = 'schema'").get() as
        | Row
        | undefined;
      if (row === undefined) {
        db.prepare("INSERT INTO meta (key, value) VALUES ('schema', ?)").run(SCHEMA_VERSION);
      } else if (row.value === 1) {
        db.exec("BEGIN IMMEDIATE");
        db.exec(MIGRATE_1_TO_2);
        db.prepare("UPDATE meta SET value = ? WHERE key = 'schema'").run(SCHEMA_VERSION);
        db.exec("COMMIT");
      } else if (row.value !== SCHEMA_VERSION) {
        throw new MissiveError(
          "io",
          `relay db ${path}: schema version ${row.value}, this relay knows ${SCHEMA_VERSION}`,
        );
      }
    } catch (e) {
      if (e instanceof MissiveError) throw e;
      throw new MissiveError("io", `relay db ${path}: cannot open (${(e as Error).message})`);
    }
    return new RelayStore(db, path);
  }

  #check(): void {
    if (this.#closed) throw new MissiveError("internal", `relay db ${this.#path}: closed`);
  }

  /** Starts (or joins) this turn's transaction; resolves after its COMMIT. */
  #write<T>(f: () => T): Promise<T> {
    this.#check();
    if (!this.#inTransaction) {
      this.#db.exec("BEGIN IMMEDIATE");
      this.#inTransaction = true;
      setTimeout(() => this.#commit(), 0);
    }
    let result: T;
    try {
      result = f();
    } catch (e) {
      // A refusal decided before any statement ran (a cap) stays what it is.
      if (e instanceof MissiveError) return Promise.reject(e);
      return Promise.reject(
        new MissiveError("io", `relay db ${this.#path}: write failed (${(e as Error).message})`),
      );
    }
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve: () => resolve(result), reject });
    });
  }

  #commit(): void {
    if (!this.#inTransaction) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    this.#inTransaction = false;
    try {
      this.#db.exec("COMMIT");
    } catch (e) {
      try {
        this.#db.exec("ROLLBACK");
      } catch {
        // Nothing left to roll back.
      }
      const err = new MissiveError("io", `relay db ${this.#path}: commit failed (${e})`);
      for (const w of waiters) w.reject(err);
      return;
    }
    for (const w of waiters) w.resolve();
  }

  /** Commits whatever is pending now (tests, shutdown). */
  flush(): void {
    this.#commit();
  }

  /** The card registered with identity ID `id`, read now (synchronously). */
  cardById(id: Uint8Array): StoredCard | undefined {
    const row = this.#sql.cardById.get(id) as Row | undefined;
    return row && toCard(row);
  }

  /** The card registered under `address` (exact match), read now (synchronously). */
  cardByAddress(address: string): StoredCard | undefined {
    const row = this.#sql.cardByAddress.get(address) as Row | undefined;
    return row && toCard(row);
  }

  /** Every registered card; throws once the store is closed. */
  allCards(): Promise<StoredCard[]> {
    this.#check();
    return Promise.resolve((this.#sql.allCards.all() as Row[]).map(toCard));
  }

  /** Stores or replaces (same ID, same address) a card; a collision otherwise. */
  putCard(id: Uint8Array, address: string, card: Uint8Array, now: number): Promise<PutCardResult> {
    return this.#write((): PutCardResult => {
      const byId = this.#sql.cardById.get(id) as Row | undefined;
      if (byId && byId.address !== address) return { status: "collision", holder: toCard(byId) };
      const byAddress = this.#sql.cardByAddress.get(address) as Row | undefined;
      if (byAddress && !byId) return { status: "collision", holder: toCard(byAddress) };
      this.#sql.putCard.run(id, address, card, now);
      if (!byId) this.#cards++;
      return { status: "ok" };
    });
  }

  /** Registered cards. */
  get cardCount(): number {
    return this.#cards;
  }

  /**
   * Sets the presence (index into PRESENCE_STATUSES) and note of card `id`; resolves once
   * committed. An unknown `id` changes nothing.
   */
  setPresence(id: Uint8Array, presence: number, note: string | undefined): Promise<void> {
    return this.#write(() => void this.#sql.presence.run(presence, note ?? null, id));
  }

  /** Entries (messages and receipts) queued for `recipient`, now. */
  queuedNow(recipient: Uint8Array): number {
    return this.#byRecipient.get(idKey(recipient))?.messages ?? 0;
  }

  /** Entries (messages and receipts) queued for `recipient`. */
  queued(recipient: Uint8Array): Promise<number> {
    return Promise.resolve(this.queuedNow(recipient));
  }

  /** Receipts queued for `recipient`. */
  receiptsQueued(recipient: Uint8Array): Promise<number> {
    return Promise.resolve(this.#receiptsByRecipient.get(idKey(recipient))?.messages ?? 0);
  }

  /** What is queued for `recipient` (receipts included, and counted in `receipts`). */
  usage(recipient: Uint8Array): Promise<QueueUsage> {
    const key = idKey(recipient);
    return Promise.resolve({
      ...(this.#byRecipient.get(key) ?? { messages: 0, bytes: 0 }),
      receipts: this.#receiptsByRecipient.get(key)?.messages ?? 0,
    });
  }

  /** What `sender` has queued for `recipient`. */
  pairUsage(recipient: Uint8Array, sender: Uint8Array): Promise<QueueUsage> {
    return Promise.resolve({
      ...(this.#byPair.get(pairKey(recipient, sender)) ?? { messages: 0, bytes: 0 }),
    });
  }

  /** Messages queued in all. */
  get total(): number {
    return this.#total;
  }

  /** Envelope bytes queued in all. */
  get totalBytes(): number {
    return this.#totalBytes;
  }

  /**
   * Queues an envelope; resolves with its message ID once committed. The same envelope
   * for the same recipient again (a sender's retry) returns the first one's ID.
   */
  enqueue(m: NewMessage): Promise<{ mid: number; duplicate: boolean }> {
    return this.#write(() => {
      const found = this.#sql.find.get(m.recipient, m.digest) as Row | undefined;
      if (found) return { mid: found.mid as number, duplicate: true };
      const info = this.#sql.insert.run(
        m.recipient,
        m.sender,
        m.senderAddress,
        m.envelope,
        m.digest,
        m.enqueued,
        m.wantsReceipt ? 1 : 0,
      );
      const size = m.envelope.length;
      add(this.#byRecipient, idKey(m.recipient), 1, size);
      add(this.#byPair, pairKey(m.recipient, m.sender), 1, size);
      this.#total++;
      this.#totalBytes += size;
      return { mid: Number(info.lastInsertRowid), duplicate: false };
    });
  }

  /** Up to `limit` messages for `recipient` after message `afterMid`, oldest first. */
  pending(recipient: Uint8Array, afterMid: number, limit: number): QueuedMessage[] {
    this.#check();
    return (this.#sql.pending.all(recipient, afterMid, limit) as Row[]).map(toMessage);
  }

  /**
   * Counts a delivery that was not acknowledged (kept for operators; delivery does not
   * depend on it).
   */
  countAttempts(mids: readonly number[]): Promise<void> {
    return this.#write(() => {
      for (const mid of mids) this.#sql.attempt.run(mid);
    });
  }

  /**
   * An acknowledgement (SPEC §23.7): removes entry `mid` if it is queued for the peer
   * and, for a message whose sender asked for a receipt, queues the receipt for that
   * sender in the same transaction — so a committed ack and its receipt stand or fall
   * together. A receipt over a limit is dropped; the ack stands.
   */
  acknowledge(a: Acknowledgement): Promise<AckOutcome> {
    return this.#write((): AckOutcome => {
      const row = this.#sql.remove.get(a.mid, a.recipient) as Row | undefined;
      if (!row) return { removed: false };
      const size = Number(row.size);
      const sender = row.sender as Bytes;
      const wasReceipt = row.receipt_for !== null;
      this.#account(a.recipient, sender, wasReceipt, -1, -size);
      if (wasReceipt || !row.want_receipt) return { removed: true };
      const dropped = this.#receiptRefusal(sender, a.recipient, a.limits);
      if (dropped) return { removed: true, dropped };
      const info = this.#sql.insertReceipt.run(
        sender,
        a.recipient,
        a.recipientAddress,
        receiptDigest(a.mid),
        a.at,
        a.mid,
        a.status,
      );
      if (info.changes === 0) return { removed: true }; // already queued
      this.#account(sender, a.recipient, true, 1, RECEIPT_COST);
      return {
        removed: true,
        receipt: receiptEntry(a, sender, Number(info.lastInsertRowid)),
      };
    });
  }

  /** Counts `n` entries of `bytes` queued for `recipient` from `sender`. */
  #account(recipient: Uint8Array, sender: Uint8Array, receipt: boolean, n: number, bytes: number) {
    add(this.#byRecipient, idKey(recipient), n, bytes);
    if (receipt) {
      add(this.#receiptsByRecipient, idKey(recipient), n, bytes);
      add(this.#receiptsByPair, pairKey(recipient, sender), n, bytes);
    } else add(this.#byPair, pairKey(recipient, sender), n, bytes);
    this.#total += n;
    this.#totalBytes += bytes;
  }

  /** Why a receipt for `sender` from `acker` cannot be queued now, if it cannot. */
  #receiptRefusal(sender: Uint8Array, acker: Uint8Array, l: ReceiptLimits): string | undefined {
    const pair = this.#receiptsByPair.get(pairKey(sender, acker))?.messages ?? 0;
    if (pair >= l.quota) return `quota: ${pair} receipts from this recipient wait already`;
    const mine = this.#byRecipient.get(idKey(sender)) ?? { messages: 0, bytes: 0 };
    if (mine.messages >= l.recipientQuota || mine.bytes + RECEIPT_COST > l.recipientBytes) {
      return `recipient-full: the sender has ${mine.messages} entries waiting`;
    }
    if (this.#totalBytes + RECEIPT_COST > l.storeBytes) return "store-full";
    return undefined;
  }

  /**
   * Published prekeys (SPEC §23.13, §25.2) as a `PrekeyStore`: the newest signed prekey
   * per identity and its one-time prekeys; `fetch` deletes the one-time prekey it hands
   * out in the same transaction, so none is handed out twice, across restarts too.
   */
  get prekeys(): PrekeyStore {
    const sql = this.#sql;
    return {
      publish: (upload: PrekeyUpload) =>
        this.#write(() => {
          const owner = upload.identityId;
          const fresh = upload.oneTimePrekeys.filter((o) =>
            sql.hasOneTime.get(owner, o.id) === undefined
          );
          const held = Number((sql.oneTimeCount.get(owner) as Row).n) + fresh.length;
          checkOneTimeHeld(held);
          const stored = sql.signedPrekey.get(owner) as Row | undefined;
          if (!stored || Number(stored.created) <= upload.signedPrekey.created) {
            const bundle = encodePrekeyBundle({
              identityId: owner,
              signedPrekey: upload.signedPrekey,
            });
            sql.putSignedPrekey.run(owner, bundle, upload.signedPrekey.created);
          }
          for (const o of fresh) sql.putOneTime.run(owner, o.id, o.publicKey);
          return { oneTimeHeld: held };
        }),
      fetch: (identityId: Uint8Array) =>
        this.#write((): PrekeyBundle | undefined => {
          const stored = sql.signedPrekey.get(identityId) as Row | undefined;
          if (!stored) return undefined;
          const bundle = decodePrekeyBundle(stored.bundle as Uint8Array);
          const taken = sql.takeOneTime.get(identityId) as Row | undefined;
          if (taken) {
            bundle.oneTimePrekey = {
              id: Number(taken.pid),
              publicKey: taken.public_key as Bytes,
            };
          }
          return bundle;
        }),
      oneTimeCount: (identityId: Uint8Array) => {
        this.#check();
        return Promise.resolve(Number((sql.oneTimeCount.get(identityId) as Row).n));
      },
      remove: (identityId: Uint8Array) =>
        this.#write(() => {
          sql.dropSignedPrekey.run(identityId);
          sql.dropOneTime.run(identityId);
        }),
    };
  }

  /** Commits pending writes and closes the database; idempotent. */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#commit();
      this.#closed = true;
      this.#db.close();
    }
    return Promise.resolve();
  }
}
