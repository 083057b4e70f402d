/**
 * The relay's directory (SPEC §23.5): who is registered (durably, in the store), who is
 * online now and with what presence. Registration binds an address to the card whose
 * keys the session proved; a second card claiming an address or a 128-bit ID already
 * held is a collision. A shared store (several relay nodes) decides collisions itself,
 * cluster-wide, and reports other nodes' registrations and online users.
 * @module
 */
import { lowerAscii } from "../keys/address.ts";
import { PRESENCE_STATUSES, type PresenceStatus } from "../amp/presence.ts";
import { type Bytes, equalBytes, toHex } from "../core/bytes.ts";
import { type Card, sameKeys } from "../keys/card.ts";
import type { ListEntry, RelayStatus, Target } from "./protocol.ts";
import type { RelayStorage, StoredCard } from "./storage.ts";

/** The outcome of a directory operation that may be refused. */
export type DirectoryResult<T = undefined> =
  | { status: "ok"; value: T }
  | { status: Exclude<RelayStatus, "ok">; detail: string };

const refuse = (status: Exclude<RelayStatus, "ok">, detail: string) => ({ status, detail });

/** The collision of `card` with the card `held` (same ID or same address). */
function collision(card: Card, held: StoredCard): DirectoryResult<never> {
  return equalBytes(held.id, card.id)
    ? refuse("collision", `ID ${toHex(card.id)} is already registered to ${held.address}`)
    : refuse(
      "collision",
      `address ${card.address} is already registered with another key (ID ${toHex(held.id)})`,
    );
}

/** Directory state over a store. */
export class Directory {
  readonly #store: RelayStorage;
  readonly #openRegistration: boolean;
  readonly #ready: Promise<void>;
  readonly #allowed: readonly Card[];
  /** Registered cards by hex ID and by address: a cache of the store's table. */
  readonly #byId = new Map<string, StoredCard>();
  readonly #byAddress = new Map<string, StoredCard>();
  /** Online identities (hex ID) and how many connections each has. */
  readonly #online = new Map<string, number>();

  constructor(
    store: RelayStorage,
    options: { openRegistration: boolean; users: readonly Card[] },
  ) {
    this.#store = store;
    this.#openRegistration = options.openRegistration;
    this.#allowed = options.users;
    this.#ready = store.allCards().then((cards) => {
      for (const c of cards) this.#cache(c);
      store.directory?.watchCards((c) => this.#cache(c));
    });
    this.#ready.catch(() => {});
  }

  /** Resolves once the registered cards are loaded (rejects if the store failed). */
  ready(): Promise<void> {
    return this.#ready;
  }

  #cache(c: StoredCard): void {
    const old = this.#byId.get(toHex(c.id));
    if (old) this.#byAddress.delete(old.address);
    this.#byId.set(toHex(c.id), c);
    this.#byAddress.set(c.address, c);
  }

  async #put(card: Card, now: number): Promise<DirectoryResult<Bytes>> {
    const r = await this.#store.putCard(card.id, card.address, card.bytes, now);
    if (r.status === "collision") {
      this.#cache(r.holder);
      return collision(card, r.holder);
    }
    const old = this.#byId.get(toHex(card.id));
    this.#cache({
      id: card.id,
      address: card.address,
      card: card.bytes,
      presence: old?.presence ?? 0,
      note: old?.note,
    });
    return { status: "ok", value: card.id };
  }

  /** Pre-installs the `--users` cards (they count as registered). */
  async preinstall(now: number): Promise<void> {
    await this.#ready;
    for (const card of this.#allowed) {
      const held = this.#byAddress.get(card.address);
      if (held && !equalBytes(held.id, card.id)) continue; // keep the first holder
      if (held && equalBytes(held.card, card.bytes)) continue; // already there
      await this.#put(card, now);
    }
  }

  /** May this card use the relay at all (the session's authorize hook)? */
  authorize(card: Card): boolean {
    return this.#openRegistration || this.#allowed.some((c) => sameKeys(c, card));
  }

  /** Registers the card the session proved. */
  async register(card: Card, now: number): Promise<DirectoryResult<Bytes>> {
    if (!this.authorize(card)) {
      return refuse("forbidden", "registration is closed and this card is not pre-installed");
    }
    const byId = this.#byId.get(toHex(card.id));
    if (byId && byId.address !== card.address) return collision(card, byId);
    const byAddress = this.#byAddress.get(card.address);
    if (byAddress && !equalBytes(byAddress.id, card.id)) return collision(card, byAddress);
    // The same card again changes nothing: no write a client could repeat for free.
    if (!byId || !equalBytes(byId.card, card.bytes)) return await this.#put(card, now);
    return { status: "ok", value: card.id };
  }

  /** Whether registering `card` would add or change a stored card. */
  isChange(card: Card): boolean {
    const held = this.#byId.get(toHex(card.id));
    return !held || held.address !== card.address || !equalBytes(held.card, card.bytes);
  }

  /** Whether `card`'s ID is not registered yet. */
  isNew(card: Card): boolean {
    return !this.#byId.has(toHex(card.id));
  }

  /** The registered card of `card`'s identity, if registered with these very keys. */
  registered(card: Card): StoredCard | undefined {
    const held = this.#byId.get(toHex(card.id));
    return held && held.address === card.address ? held : undefined;
  }

  /** Finds a registered card by address or ID in the cache. */
  find(target: Target): StoredCard | undefined {
    return typeof target === "string"
      ? this.#byAddress.get(lowerAscii(target))
      : this.#byId.get(toHex(target));
  }

  /**
   * Finds a registered card by address or ID: the cache, else (a shared store, where
   * another node may have registered it a moment ago) the store.
   */
  async resolve(target: Target): Promise<StoredCard | undefined> {
    const cached = this.find(target);
    if (cached || !this.#store.directory) return cached;
    const t = typeof target === "string" ? lowerAscii(target) : target;
    const found = await this.#store.directory.findCard(t);
    if (found) this.#cache(found);
    return found;
  }

  /** The card of `card`'s identity if registered with these very keys (see `registered`). */
  async resolveRegistered(card: Card): Promise<StoredCard | undefined> {
    const held = await this.resolve(card.id);
    return held && held.address === card.address ? held : undefined;
  }

  /** Whether the identity (hex ID) is online on this node or another. */
  #isOnline(hex: string): boolean {
    return this.#online.has(hex) || (this.#store.online?.elsewhere().has(hex) ?? false);
  }

  /** Hex IDs online on this node or another. */
  #onlineIds(): Set<string> {
    const ids = new Set(this.#online.keys());
    for (const hex of this.#store.online?.elsewhere() ?? []) ids.add(hex);
    return ids;
  }

  /** The presence others see, or undefined when offline or invisible. */
  visiblePresence(held: StoredCard): PresenceStatus | undefined {
    if (!this.#isOnline(toHex(held.id))) return undefined;
    const status = PRESENCE_STATUSES[held.presence];
    return status === "invisible" ? undefined : status;
  }

  async setPresence(id: Bytes, status: PresenceStatus, note?: string): Promise<void> {
    const presence = PRESENCE_STATUSES.indexOf(status);
    await this.#store.setPresence(id, presence, note);
    const held = this.#byId.get(toHex(id));
    if (held) this.#cache({ ...held, presence, note });
  }

  /** Online and visible users, by address. */
  list(): ListEntry[] {
    const out: ListEntry[] = [];
    for (const hex of this.#onlineIds()) {
      const held = this.#byId.get(hex);
      if (!held) continue;
      const status = PRESENCE_STATUSES[held.presence];
      if (status === "invisible") continue;
      const e: ListEntry = { address: held.address, id: held.id, status };
      if (held.note !== undefined) e.note = held.note;
      out.push(e);
    }
    return out.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  }

  /** Online users others can see (not invisible). */
  visibleCount(): number {
    let n = 0;
    for (const hex of this.#onlineIds()) {
      const held = this.#byId.get(hex);
      if (held && PRESENCE_STATUSES[held.presence] !== "invisible") n++;
    }
    return n;
  }

  /** Marks one more connection of this identity online. */
  connected(id: Bytes): void {
    const k = toHex(id);
    const n = this.#online.get(k) ?? 0;
    this.#online.set(k, n + 1);
    if (n === 0) this.#store.online?.update(new Set(this.#online.keys()));
  }

  /** Marks one connection of this identity gone. */
  disconnected(id: Bytes): void {
    const k = toHex(id);
    const n = (this.#online.get(k) ?? 1) - 1;
    if (n > 0) this.#online.set(k, n);
    else {
      this.#online.delete(k);
      this.#store.online?.update(new Set(this.#online.keys()));
    }
  }

  /** Identities with at least one connection to this node. */
  get onlineCount(): number {
    return this.#online.size;
  }

  /** Registered cards (on a shared store: as this node has seen them). */
  get cardCount(): number {
    return this.#byId.size;
  }
}
