/**
 * The chat's history at rest (SPEC §27.5): a SQLite file (`node:sqlite`, 0600) of
 * records, each sealed with AES-256-GCM under a key derived from the identity's secret
 * keys. Nothing in the file is in clear but each row's number, time and size: not a
 * friend's address, a note, a line or a ratchet state. Writes that belong together (a
 * ratchet state and the message it sealed) commit in one transaction.
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { type Bytes, concatBytes, randomBytes, utf8, wipe } from "../core/bytes.ts";
import { transcript } from "../core/cbor.ts";
import { isMissiveError, MissiveError } from "../core/errors.ts";
import type { AeadKey, CryptoProvider } from "../crypto/provider.ts";
import type { Identity } from "../keys/identity.ts";
import { openQueueDb } from "../queue/sqlite.ts";

/** Labels (SPEC §27.1). */
export const HISTORY_KEY_LABEL = "missive/chat/v1/history-key";
export const HISTORY_ROW_LABEL = "missive/chat/v1/history-row";
/** Row 0 holds this text, sealed: a database of another key fails to open it. */
export const HISTORY_CHECK = "missive chat history v1";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS records (
  id INTEGER PRIMARY KEY,
  time INTEGER NOT NULL,
  sealed BLOB NOT NULL
);`;

/** The history key of an identity (SPEC §27.5). */
export async function historyKey(crypto: CryptoProvider, identity: Identity): Promise<Bytes> {
  const ikm = concatBytes(identity.signingSeed, identity.agreementKey);
  try {
    return await crypto.hkdfSha256(ikm, identity.card.id, transcript(HISTORY_KEY_LABEL), 32);
  } finally {
    wipe(ikm);
  }
}

/** Seals one row's plaintext (SPEC §27.5): nonce (12) ‖ AES-256-GCM(key, nonce, plain, aad). */
export async function sealRow(key: AeadKey, id: number, plain: Uint8Array, nonce: Bytes) {
  return concatBytes(nonce, await key.encrypt(nonce, plain, transcript(HISTORY_ROW_LABEL, id)));
}

/** Opens one row; `auth-failed` when it was altered or moved, `malformed` when too short. */
export async function openRow(key: AeadKey, id: number, sealed: Uint8Array): Promise<Bytes> {
  if (sealed.length < 12 + 16) throw new MissiveError("malformed", `history row ${id}: too short`);
  return await key.decrypt(
    sealed.subarray(0, 12),
    sealed.subarray(12),
    transcript(HISTORY_ROW_LABEL, id),
  );
}

/** One stored record. */
export interface HistoryRow {
  id: number;
  time: number;
  plain: Bytes;
}

/** One write of a batch: a new row (`id` undefined), a replacement, or a deletion. */
export type HistoryWrite =
  | { put: Uint8Array; id?: number; time?: number }
  | { delete: number };

/** An open history file. A class: it owns the database and the key. */
export class History {
  readonly #db: DatabaseSync;
  readonly #key: AeadKey;
  readonly #sql: Record<string, StatementSync>;
  #nextId: number;
  #closed = false;
  readonly #now: () => number;

  private constructor(db: DatabaseSync, key: AeadKey, now: () => number) {
    this.#db = db;
    this.#key = key;
    this.#now = now;
    const p = (sql: string) => db.prepare(sql);
    this.#sql = {
      all: p("SELECT id, time, sealed FROM records WHERE id > 0 ORDER BY id"),
      check: p("SELECT sealed FROM records WHERE id = 0"),
      put: p("INSERT OR REPLACE INTO records (id, time, sealed) VALUES (?, ?, ?)"),
      delete: p("DELETE FROM records WHERE id = ?"),
      max: p("SELECT max(id) AS m FROM records"),
    };
    this.#nextId = Number((this.#sql.max.get() as { m: number | null }).m ?? 0) + 1;
  }

  /**
   * Opens (or creates, 0600) the history at `path` for `identity`. A file sealed under
   * another identity is a `key` error; an altered one `auth-failed`.
   */
  static async open(
    crypto: CryptoProvider,
    identity: Identity,
    path: string,
    options: { now?: () => number } = {},
  ): Promise<History> {
    const raw = await historyKey(crypto, identity);
    const key = await crypto.aeadKey("aes-256-gcm", raw);
    wipe(raw);
    const db = openQueueDb(path, SCHEMA, "chat history");
    const history = new History(db, key, options.now ?? Date.now);
    try {
      const row = history.#sql.check.get() as { sealed: Uint8Array } | undefined;
      if (!row) {
        await history.write([{ id: 0, put: utf8(HISTORY_CHECK) }]);
      } else {
        try {
          await openRow(key, 0, row.sealed);
        } catch (e) {
          if (!isMissiveError(e)) throw e;
          throw new MissiveError(
            "key",
            `chat history ${path}: not sealed for ${identity.card.address} (another key?)`,
          );
        }
      }
    } catch (e) {
      db.close();
      throw e;
    }
    return history;
  }

  /** Every record but the check row, oldest first, opened. */
  async all(): Promise<HistoryRow[]> {
    const rows = this.#sql.all.all() as { id: number; time: number; sealed: Uint8Array }[];
    const out: HistoryRow[] = [];
    for (const r of rows) {
      out.push({
        id: Number(r.id),
        time: Number(r.time),
        plain: await openRow(this.#key, r.id, r.sealed),
      });
    }
    return out;
  }

  /** Reserves a row number for a record written later in a batch. */
  reserve(): number {
    return this.#nextId++;
  }

  /**
   * Seals and writes a batch in one transaction; returns the row numbers of its puts,
   * in order.
   */
  async write(batch: readonly HistoryWrite[]): Promise<number[]> {
    if (this.#closed) throw new MissiveError("usage", "chat history: closed");
    const now = this.#now();
    const rows: { id: number; time: number; sealed: Bytes }[] = [];
    const deletes: number[] = [];
    for (const w of batch) {
      if ("delete" in w) {
        deletes.push(w.delete);
        continue;
      }
      const id = w.id ?? this.#nextId++;
      rows.push({
        id,
        time: w.time ?? now,
        sealed: await sealRow(this.#key, id, w.put, randomBytes(12)),
      });
    }
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      for (const r of rows) this.#sql.put.run(r.id, r.time, r.sealed);
      for (const id of deletes) this.#sql.delete.run(id);
      this.#db.exec("COMMIT");
    } catch (e) {
      this.#db.exec("ROLLBACK");
      throw new MissiveError("io", `chat history: write failed (${(e as Error).message})`);
    }
    return rows.map((r) => r.id);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }
}
