/**
 * The local address book (SECURITY.md, "contacts"): cards kept under the user's own
 * configuration folder, so `--to bob@example.org` and `--trust bob@example.org` work
 * without a card file at hand. A contact is *verified* when the user vouched for it:
 * added from a file the user chose, or checked with `missive contacts verify` against a
 * fingerprint compared out of band. A card fetched from a relay is not verified: the
 * relay is not trusted to say who owns an address.
 *
 * The file is JSON, written atomically and 0600, read with the config file's checks (no
 * other user may have written it) and within written limits.
 * @module
 */
import { existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import { randomBytes, toHex } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import { checkOwnFile, ioReason, readTextLimited } from "../core/files.ts";
import type { CryptoProvider } from "../crypto/provider.ts";
import { normalizeAddress } from "./address.ts";
import { type Card, cardToText, parseCardText, sameKeys } from "./card.ts";

/** Most contacts a book holds. */
export const MAX_CONTACTS = 10_000;
/** Largest contacts file read. */
export const MAX_CONTACTS_FILE = 16 * 1024 * 1024;

/** Where a contact's card came from. */
export type ContactSource = "file" | "relay";

/** One contact: a card, and whether the user vouched for it. */
export interface Contact {
  card: Card;
  verified: boolean;
  source: ContactSource;
  /** When it was added or last changed, ISO 8601. */
  added: string;
}

/**
 * The contacts file: `$MISSIVE_CONTACTS`, else `contacts.json` in the user's own
 * configuration folder (`$XDG_CONFIG_HOME/missive/`, else `~/.config/missive/`).
 */
export function contactsPath(env: Readonly<Record<string, string | undefined>>): string {
  if (env.MISSIVE_CONTACTS) return env.MISSIVE_CONTACTS;
  const base = env.XDG_CONFIG_HOME || (env.HOME ? join(env.HOME, ".config") : undefined);
  if (!base || !isAbsolute(base)) {
    throw new MissiveError(
      "usage",
      "contacts: no configuration folder (set HOME, XDG_CONFIG_HOME or MISSIVE_CONTACTS)",
    );
  }
  return join(base, "missive", "contacts.json");
}

/** A contact book loaded from its file; `save` writes it back. */
export class ContactBook {
  readonly path: string;
  readonly #contacts = new Map<string, Contact>(); // by address

  private constructor(path: string) {
    this.path = path;
  }

  /** Loads the book at `path` (empty when the file does not exist yet). */
  static async open(crypto: CryptoProvider, path: string): Promise<ContactBook> {
    const book = new ContactBook(path);
    if (!existsSync(path)) return book;
    checkOwnFile(path, "contacts", "refusing to trust the cards it holds");
    let parsed: unknown;
    try {
      parsed = JSON.parse(readTextLimited(path, MAX_CONTACTS_FILE, "contacts"));
    } catch (e) {
      if (e instanceof MissiveError) throw e;
      throw new MissiveError("malformed", `contacts ${path}: not JSON (${(e as Error).message})`);
    }
    const bad = (why: string): never => {
      throw new MissiveError("malformed", `contacts ${path}: ${why}`);
    };
    const doc = parsed as { version?: unknown; contacts?: unknown };
    if (typeof doc !== "object" || doc === null || doc.version !== 1) bad("unknown version");
    if (!Array.isArray(doc.contacts)) bad('"contacts" must be a list');
    const list = doc.contacts as unknown[];
    if (list.length > MAX_CONTACTS) bad(`more than ${MAX_CONTACTS} contacts`);
    for (const [i, entry] of list.entries()) {
      const e = entry as Record<string, unknown>;
      if (
        typeof e !== "object" || e === null || typeof e.card !== "string" ||
        typeof e.verified !== "boolean" || (e.source !== "file" && e.source !== "relay") ||
        typeof e.added !== "string"
      ) bad(`entry ${i + 1} is not {card, verified, source, added}`);
      const card = await parseCardText(crypto, e.card as string);
      book.#contacts.set(card.address, {
        card,
        verified: e.verified as boolean,
        source: e.source as ContactSource,
        added: e.added as string,
      });
    }
    return book;
  }

  /** Every contact, by address. */
  list(): Contact[] {
    return [...this.#contacts.values()].sort((a, b) => a.card.address < b.card.address ? -1 : 1);
  }

  /** The contact of an address (normalised as cards are), if any. */
  get(address: string): Contact | undefined {
    return this.#contacts.get(normalizeAddress(address));
  }

  /**
   * Adds or replaces the contact of the card's address. Returns the contact it replaced
   * when that held other keys (the caller should say so: a key change is news).
   */
  add(card: Card, how: { verified: boolean; source: ContactSource }): Contact | undefined {
    const before = this.#contacts.get(card.address);
    if (!before && this.#contacts.size >= MAX_CONTACTS) {
      throw new MissiveError("refused", `contacts: already ${MAX_CONTACTS} contacts`);
    }
    this.#contacts.set(card.address, { card, ...how, added: new Date().toISOString() });
    return before && !sameKeys(before.card, card) ? before : undefined;
  }

  /** Removes a contact; false when there was none. */
  remove(address: string): boolean {
    return this.#contacts.delete(normalizeAddress(address));
  }

  /** Marks a contact verified (the user compared its fingerprint). */
  markVerified(address: string): void {
    const c = this.get(address);
    if (!c) throw new MissiveError("usage", `contacts: no contact ${address}`);
    c.verified = true;
    c.added = new Date().toISOString();
  }

  /** Writes the book: a temporary file beside it, 0600, renamed over the old one. */
  save(): void {
    const doc = {
      version: 1,
      contacts: this.list().map((c) => ({
        card: cardToText(c.card),
        verified: c.verified,
        source: c.source,
        added: c.added,
      })),
    };
    const temporary = `${this.path}.${toHex(randomBytes(6))}.partial`;
    try {
      mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
      writeFileSync(temporary, JSON.stringify(doc, null, 2) + "\n", { mode: 0o600, flag: "wx" });
      renameSync(temporary, this.path);
    } catch (e) {
      throw new MissiveError("io", `cannot write contacts ${this.path}: ${ioReason(e)}`);
    }
  }
}
