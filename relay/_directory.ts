/**
 * The relay's directory (SPEC §23.5): who is registered (durably, in the store), who is
 * online now and with what presence. Registration binds an address to the card whose
 * keys the session proved; a second card claiming an address or a 128-bit ID already
 * held is a collision.
 * @module
 */
import { lowerAscii } from "../keys/address.ts";
import { PRESENCE_STATUSES, type PresenceStatus } from "../amp/presence.ts";
import { type Bytes, equalBytes, toHex } from "../core/bytes.ts";
import { type Card, sameKeys } from "../keys/card.ts";
import type { ListEntry, RelayStatus, Target } from "./protocol.ts";
import type { RelayStore, StoredCard } from "./store.ts";

/** The outcome of a directory operation that may be refused. */
export type DirectoryResult<T = undefined> =
  | { status: "ok"; value: T }
  | { status: Exclude<RelayStatus, "ok">; detail: string };

const refuse = (status: Exclude<RelayStatus, "ok">, detail: string) => ({ status, detail });

/** Directory state over a store. */
export class Directory {
  readonly #store: RelayStore;
  readonly #openRegistration: boolean;
  readonly #allowed: readonly Card[];
  /** Registered cards by hex ID and by address: a cache of the store's table. */
  readonly #byId = new Map<string, StoredCard>();
  readonly #byAddress = new Map<string, StoredCard>();
  /** Online identities (hex ID) and how many connections each has. */
  readonly #online = new Map<string, number>();

  constructor(store: RelayStore, options: { openRegistration: boolean; users: readonly Card[] }) {
    this.#store = store;
    this.#openRegistration = options.openRegistration;
    this.#allowed = options.users;
    for (const c of store.allCards()) this.#cache(c);
  }

  #cache(c: StoredCard): void {
    const old = this.#byId.get(toHex(c.id));
    if (old) this.#byAddress.delete(old.address);
    this.#byId.set(toHex(c.id), c);
    this.#byAddress.set(c.address, c);
  }

  async #put(card: Card, now: number): Promise<void> {
    await this.#store.putCard(card.id, card.address, card.bytes, now);
    const old = this.#byId.get(toHex(card.id));
    this.#cache({
      id: card.id,
      address: card.address,
      card: card.bytes,
      presence: old?.presence ?? 0,
      note: old?.note,
    });
  }

  /** Pre-installs the `--users` cards (they count as registered). */
  async preinstall(now: number): Promise<void> {
    for (const card of this.#allowed) {
      const held = this.#byAddress.get(card.address);
      if (held && !equalBytes(held.id, card.id)) continue; // keep the first holder
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
    if (byId && byId.address !== card.address) {
      return refuse(
        "collision",
        `ID ${toHex(card.id)} is already registered to ${byId.address}`,
      );
    }
    const byAddress = this.#byAddress.get(card.address);
    if (byAddress && !equalBytes(byAddress.id, card.id)) {
      return refuse(
        "collision",
        `address ${card.address} is already registered with another key (ID ${
          toHex(byAddress.id)
        })`,
      );
    }
    // The same card again changes nothing: no write a client could repeat for free.
    if (!byId || !equalBytes(byId.card, card.bytes)) await this.#put(card, now);
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

  /** Finds a registered card by address or ID. */
  find(target: Target): StoredCard | undefined {
    return typeof target === "string"
      ? this.#byAddress.get(lowerAscii(target))
      : this.#byId.get(toHex(target));
  }

  /** The presence others see, or undefined when offline or invisible. */
  visiblePresence(held: StoredCard): PresenceStatus | undefined {
    if (!this.#online.has(toHex(held.id))) return undefined;
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
    for (const hex of this.#online.keys()) {
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
    for (const hex of this.#online.keys()) {
      const held = this.#byId.get(hex);
      if (held && PRESENCE_STATUSES[held.presence] !== "invisible") n++;
    }
    return n;
  }

  /** Marks one more connection of this identity online. */
  connected(id: Bytes): void {
    const k = toHex(id);
    this.#online.set(k, (this.#online.get(k) ?? 0) + 1);
  }

  /** Marks one connection of this identity gone. */
  disconnected(id: Bytes): void {
    const k = toHex(id);
    const n = (this.#online.get(k) ?? 1) - 1;
    if (n > 0) this.#online.set(k, n);
    else this.#online.delete(k);
  }

  /** Identities with at least one connection. */
  get onlineCount(): number {
    return this.#online.size;
  }
}
