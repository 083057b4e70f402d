/**
 * The directory on JetStream (docs/SCALE.md §2): registered cards in a replicated
 * key-value bucket, written create-only so an address or an ID taken through one node is
 * a collision on every node; presence statuses beside them; each node mirrors the
 * bucket in memory through a watch. Who is online lives in a second bucket whose
 * entries expire (one entry per node, refreshed while the node lives).
 * @module
 */
import type { KV, KvEntry } from "@nats-io/kv";
import { type Bytes, fromHex, toHex, utf8 } from "../../core/bytes.ts";
import { CborReader, decodeCbor, encodeCbor } from "../../core/cbor.ts";
import type { OnlineBoard, PutCardResult, StoredCard } from "../storage.ts";
import type { Target } from "../protocol.ts";
import { type Nats, retrying, storeError } from "./_nats.ts";

const idKey = (hex: string) => `id.${hex}`;
/** KV keys take [A-Za-z0-9_=.-]: an address goes in as the hex of its UTF-8. */
const addressKey = (address: string) => `addr.${toHex(utf8(address))}`;
const presenceKey = (hex: string) => `presence.${hex}`;

function encodeCard(address: string, card: Uint8Array, registered: number): Bytes {
  return encodeCbor(
    new Map<number, Uint8Array | string | number>([
      [1, address],
      [2, card],
      [3, registered],
    ]),
  );
}

function decodeCard(hex: string, value: Uint8Array): StoredCard {
  const r = CborReader.from(decodeCbor(value, "store card"), "store card");
  return { id: fromHex(hex)!, address: r.text(1, 1024), card: r.bytes(2), presence: 0 };
}

function decodePresence(value: Uint8Array): { presence: number; note?: string } {
  const r = CborReader.from(decodeCbor(value, "store presence"), "store presence");
  const note = r.optText(2, 1024);
  return note === undefined ? { presence: r.uint(1, 255) } : { presence: r.uint(1, 255), note };
}

/** The directory bucket and this node's mirror of it. A class: it owns a watch. */
export class JetStreamDirectory {
  readonly #nats: Nats;
  readonly #kv: KV;
  readonly #cards = new Map<string, StoredCard>();
  readonly #presence = new Map<string, { presence: number; note?: string }>();
  readonly #listeners: ((c: StoredCard) => void)[] = [];
  #stop?: () => void;

  constructor(nats: Nats) {
    this.#nats = nats;
    this.#kv = nats.directory;
  }

  /** Starts the mirror; resolves once the bucket's current content is in it. */
  async start(): Promise<void> {
    const status = await this.#kv.status();
    const watch = await this.#kv.watch({ key: ">" });
    this.#stop = () => watch.stop();
    let ready: () => void;
    const loaded = new Promise<void>((r) => (ready = r));
    if (status.values === 0) ready!();
    void (async () => {
      for await (const e of watch) {
        this.#apply(e);
        if (e.isUpdate || e.delta === 0) ready!();
      }
    })().catch(() => {});
    await loaded;
  }

  #apply(e: KvEntry): void {
    const [kind, hex] = e.key.split(".", 2);
    if (e.operation !== "PUT" || !/^[0-9a-f]{32}$/.test(hex ?? "")) return;
    try {
      if (kind === "id") {
        const card = { ...decodeCard(hex, e.value), ...this.#presence.get(hex) };
        this.#cards.set(hex, card);
        for (const f of this.#listeners) f(card);
      } else if (kind === "presence") {
        const p = decodePresence(e.value);
        this.#presence.set(hex, p);
        const card = this.#cards.get(hex);
        if (card) {
          const next: StoredCard = { ...card, presence: p.presence };
          if (p.note === undefined) delete next.note;
          else next.note = p.note;
          this.#cards.set(hex, next);
          for (const f of this.#listeners) f(next);
        }
      }
    } catch {
      // An entry this relay cannot read (written by something else) is no card.
    }
  }

  /** Cards as mirrored now. */
  all(): StoredCard[] {
    return [...this.#cards.values()];
  }

  watch(onCard: (c: StoredCard) => void): void {
    this.#listeners.push(onCard);
  }

  async #get(key: string): Promise<KvEntry | null> {
    try {
      const e = await retrying(this.#nats, () => this.#kv.get(key));
      return e && e.operation === "PUT" ? e : null;
    } catch (e) {
      throw storeError("directory", e);
    }
  }

  async #cardOf(hex: string): Promise<StoredCard | undefined> {
    const e = await this.#get(idKey(hex));
    if (!e) return undefined;
    const p = await this.#get(presenceKey(hex));
    return { ...decodeCard(hex, e.value), ...(p ? decodePresence(p.value) : {}) };
  }

  /** A card straight from the bucket. */
  async find(target: Target): Promise<StoredCard | undefined> {
    if (typeof target !== "string") return await this.#cardOf(toHex(target));
    const e = await this.#get(addressKey(target));
    const hex = e ? new TextDecoder().decode(e.value) : undefined;
    return hex && /^[0-9a-f]{32}$/.test(hex) ? await this.#cardOf(hex) : undefined;
  }

  /**
   * Registers create-only: the address key, then the ID key; a key held by another card
   * is a collision, whichever node wrote it. The same ID again with the same address
   * replaces the card (compare-and-swap on its revision).
   */
  async put(id: Bytes, address: string, card: Bytes, now: number): Promise<PutCardResult> {
    const hex = toHex(id);
    try {
      for (let attempt = 0; attempt < 5; attempt++) {
        const held = await this.#get(idKey(hex));
        if (held) {
          const holder = decodeCard(hex, held.value);
          if (holder.address !== address) return { status: "collision", holder };
          await this.#kv.update(idKey(hex), encodeCard(address, card, now), held.revision);
          return { status: "ok" };
        }
        let addressRevision: number | undefined;
        try {
          addressRevision = await this.#kv.create(addressKey(address), utf8(hex));
        } catch (e) {
          const taken = await this.#get(addressKey(address));
          if (!taken) throw e;
          const other = new TextDecoder().decode(taken.value);
          if (other !== hex) {
            const holder = await this.#cardOf(other);
            if (holder) return { status: "collision", holder };
            // An address key whose card never got written (a node died in between):
            // it is taken over once, by compare-and-swap.
            addressRevision = await this.#kv.update(addressKey(address), utf8(hex), taken.revision);
          }
        }
        try {
          await this.#kv.create(idKey(hex), encodeCard(address, card, now));
          return { status: "ok" };
        } catch {
          // Another node registered this ID meanwhile: give the address back, look again.
          if (addressRevision !== undefined) {
            await this.#kv.delete(addressKey(address), { previousSeq: addressRevision })
              .catch(() => {});
          }
        }
      }
      throw new Error("the directory kept changing under this registration");
    } catch (e) {
      throw storeError("register", e);
    }
  }

  async setPresence(id: Uint8Array, presence: number, note: string | undefined): Promise<void> {
    const m = new Map<number, number | string>([[1, presence]]);
    if (note !== undefined) m.set(2, note);
    try {
      const value = encodeCbor(m);
      await retrying(this.#nats, () => this.#kv.put(presenceKey(toHex(id)), value));
    } catch (e) {
      throw storeError("presence", e);
    }
  }

  stop(): void {
    this.#stop?.();
  }
}

/**
 * Who is online, cluster-wide (docs/SCALE.md §2.4): each node keeps one entry,
 * `node.<name>`, listing its online identities; it rewrites it on a change (batched) and
 * every third of the bucket's max age, so the entry of a node that died expires. The
 * server-side expiry is the bucket's max_age (nats-server 2.9 has no per-key TTL);
 * readers also ignore an entry older than that by its own timestamp.
 */
export class JetStreamOnline implements OnlineBoard {
  readonly #kv: KV;
  readonly #node: string;
  readonly #ttlMs: number;
  readonly #others = new Map<string, { ids: Set<string>; at: number }>();
  #mine: ReadonlySet<string> = new Set();
  #dirty: ReturnType<typeof setTimeout> | undefined;
  #refresh: ReturnType<typeof setInterval> | undefined;
  #stop?: () => void;
  #onError: (e: unknown) => void;

  constructor(nats: Nats, node: string, ttlMs: number, onError: (e: unknown) => void) {
    this.#kv = nats.online;
    this.#node = node;
    this.#ttlMs = ttlMs;
    this.#onError = onError;
  }

  async start(): Promise<void> {
    const watch = await this.#kv.watch({ key: "node.>" });
    this.#stop = () => watch.stop();
    void (async () => {
      for await (const e of watch) {
        const name = e.key.slice("node.".length);
        if (name === this.#node) continue;
        if (e.operation !== "PUT") {
          this.#others.delete(name);
          continue;
        }
        try {
          const ids = (decodeCbor(e.value, "store online") as Uint8Array[])
            .filter((b) => b instanceof Uint8Array && b.length === 16).map(toHex);
          this.#others.set(name, { ids: new Set(ids), at: e.created.getTime() });
        } catch {
          this.#others.delete(name);
        }
      }
    })().catch(() => {});
    this.#refresh = setInterval(() => this.#publish(), Math.max(1000, this.#ttlMs / 3));
    (this.#refresh as { unref?: () => void }).unref?.();
    await this.#publish();
  }

  update(online: ReadonlySet<string>): void {
    this.#mine = online;
    this.#dirty ??= setTimeout(() => {
      this.#dirty = undefined;
      void this.#publish();
    }, 100);
  }

  async #publish(): Promise<void> {
    const ids = [...this.#mine].map((h) => fromHex(h)!);
    try {
      await this.#kv.put(`node.${this.#node}`, encodeCbor(ids));
    } catch (e) {
      this.#onError(e);
    }
  }

  elsewhere(): ReadonlySet<string> {
    const out = new Set<string>();
    const fresh = Date.now() - this.#ttlMs;
    for (const { ids, at } of this.#others.values()) {
      if (at >= fresh) { for (const id of ids) out.add(id); }
    }
    return out;
  }

  /** Stops refreshing and withdraws this node's entry (a graceful stop). */
  async stop(): Promise<void> {
    if (this.#dirty) clearTimeout(this.#dirty);
    if (this.#refresh) clearInterval(this.#refresh);
    this.#stop?.();
    await this.#kv.delete(`node.${this.#node}`).catch(() => {});
  }
}
