/**
 * Opening a client-side SQLite file (`node:sqlite`) for the queues: WAL, fsync on every
 * commit, 0600, and typed errors.
 * @module
 */
import { chmodSync, existsSync } from "node:fs";
import { DatabaseSync } from "node:sqlite";
import { MissiveError } from "../core/errors.ts";

/** Opens `path` (":memory:" for tests) and runs `schema`. */
export function openQueueDb(path: string, schema: string, what: string): DatabaseSync {
  try {
    const fresh = path !== ":memory:" && !existsSync(path);
    const db = new DatabaseSync(path);
    if (fresh) chmodSync(path, 0o600);
    db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;");
    db.exec(schema);
    return db;
  } catch (e) {
    throw new MissiveError("io", `${what} ${path}: cannot open (${(e as Error).message})`);
  }
}
