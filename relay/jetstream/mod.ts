/**
 * The relay's store on a NATS JetStream cluster (docs/SCALE.md): several relay nodes
 * share one directory, one durable queue and the published prekeys, replicated by
 * JetStream's Raft groups; a node that dies loses nothing that was acknowledged, and its
 * clients go on through another node. Loaded only by `missive serve --store nats://…`
 * (a dynamic import): nothing reachable from the core entry point imports NATS.
 *
 * @example
 * ```ts ignore
 * import { openJetStreamStore } from "./mod.ts";
 * import { RelayServer } from "../server.ts";
 * const store = await openJetStreamStore({ servers: ["nats://127.0.0.1:4222"] });
 * const server = new RelayServer({ store, crypto, openRegistration: true });
 * ```
 * @module
 */
import { randomBytes, toHex } from "../../core/bytes.ts";
import { MissiveError } from "../../core/errors.ts";
import type { PrekeyStore } from "../../stp/ratchet/mod.ts";
import { RELAY_DEFAULTS } from "../limits.ts";
import type { Target } from "../protocol.ts";
import type {
  Acknowledgement,
  AckOutcome,
  NewMessage,
  PutCardResult,
  QueuedMessage,
  QueueUsage,
  RelayStorage,
  SharedDirectory,
  StoredCard,
} from "../storage.ts";
import { JetStreamDirectory, JetStreamOnline } from "./_directory.ts";
import { type Nats, type NatsOptions, openNats, type StreamLimits } from "./_nats.ts";
import { jetStreamPrekeys } from "./_prekeys.ts";
import { JetStreamQueue } from "./_queue.ts";

export type { NatsOptions } from "./_nats.ts";

/** Options of `openJetStreamStore`. */
export interface JetStreamStoreOptions extends NatsOptions {
  /** This relay node's name (presence entries, logs): [A-Za-z0-9_-], at most 64. */
  node?: string;
  /** The stream limits (cluster-wide); defaults as a relay's (SPEC §23.12). */
  quota?: number;
  storeBytes?: number;
  maxMessage?: number;
  /** Replicas (default 3 when three or more servers are listed, else 1). */
  replicas?: number;
  /** How long a node's presence claims live without a refresh (default 30 s). */
  presenceTtlMs?: number;
  /** The window in which a retried send is recognised (default 10 min). */
  duplicateWindowMs?: number;
  /** A store event worth logging (a presence refresh that failed). */
  log?: (event: { event: string; [k: string]: string | number | boolean | undefined }) => void;
}

/** The JetStream store. A class: it owns a NATS connection and watches. */
export class JetStreamStore implements RelayStorage, SharedDirectory {
  readonly kind = "jetstream";
  readonly shared = true;
  readonly node: string;
  readonly prekeys: PrekeyStore;
  readonly online: JetStreamOnline;
  readonly #nats: Nats;
  readonly #directory: JetStreamDirectory;
  readonly #queue: JetStreamQueue;
  #closed = false;

  private constructor(nats: Nats, node: string, o: JetStreamStoreOptions, ttlMs: number) {
    this.#nats = nats;
    this.node = node;
    this.#directory = new JetStreamDirectory(nats);
    this.#queue = new JetStreamQueue(nats);
    this.prekeys = jetStreamPrekeys(nats);
    this.online = new JetStreamOnline(nats, node, ttlMs, (e) =>
      o.log?.({
        event: "store-error",
        op: "presence",
        error: String((e as Error)?.message ?? e),
      }));
  }

  /** Connects and sets up the streams and buckets (idempotent across nodes). */
  static async open(o: JetStreamStoreOptions): Promise<JetStreamStore> {
    const node = o.node ?? `relay-${toHex(randomBytes(4))}`;
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(node)) {
      throw new MissiveError(
        "usage",
        `store: node name ${JSON.stringify(node)}: use [A-Za-z0-9_-]`,
      );
    }
    const replicas = o.replicas ?? (o.servers.length >= 3 ? 3 : 1);
    const presenceTtlMs = o.presenceTtlMs ?? 30_000;
    const limits: StreamLimits = {
      quota: o.quota ?? RELAY_DEFAULTS.quota,
      storeBytes: o.storeBytes ?? RELAY_DEFAULTS.storeBytes,
      maxMessage: o.maxMessage ?? RELAY_DEFAULTS.maxMessage,
      replicas,
      presenceTtlMs,
      duplicateWindowMs: o.duplicateWindowMs ?? 10 * 60_000,
    };
    const nats = await openNats({ ...o, name: o.name ?? node }, limits);
    const store = new JetStreamStore(nats, node, o, presenceTtlMs);
    try {
      await store.#directory.start();
      await store.online.start();
    } catch (e) {
      await store.close();
      throw new MissiveError("network", `store: cannot read the directory (${e})`);
    }
    return store;
  }

  get directory(): SharedDirectory {
    return this;
  }

  get queueWatch(): JetStreamQueue {
    return this.#queue;
  }

  watchCards(onCard: (card: StoredCard) => void): void {
    this.#directory.watch(onCard);
  }

  findCard(target: Target): Promise<StoredCard | undefined> {
    return this.#directory.find(target);
  }

  allCards(): Promise<StoredCard[]> {
    return Promise.resolve(this.#directory.all());
  }

  putCard(id: Uint8Array, address: string, card: Uint8Array, now: number): Promise<PutCardResult> {
    return this.#directory.put(
      new Uint8Array(id),
      address,
      new Uint8Array(card),
      now,
    );
  }

  setPresence(id: Uint8Array, presence: number, note: string | undefined): Promise<void> {
    return this.#directory.setPresence(id, presence, note);
  }

  enqueue(m: NewMessage): Promise<{ mid: number; duplicate: boolean }> {
    return this.#queue.enqueue(m);
  }

  pending(recipient: Uint8Array, afterMid: number, limit: number): Promise<QueuedMessage[]> {
    this.#queue.trim();
    return this.#queue.pending(recipient, afterMid, limit);
  }

  acknowledge(ack: Acknowledgement): Promise<AckOutcome> {
    return this.#queue.acknowledge(ack);
  }

  /** Attempts are not counted on JetStream (no write per unacknowledged delivery). */
  countAttempts(): Promise<void> {
    return Promise.resolve();
  }

  queued(recipient: Uint8Array): Promise<number> {
    return this.#queue.queued(recipient);
  }

  receiptsQueued(recipient: Uint8Array): Promise<number> {
    return this.#queue.receiptsQueued(recipient);
  }

  usage(recipient: Uint8Array): Promise<QueueUsage> {
    return this.#queue.usage(recipient);
  }

  pairUsage(recipient: Uint8Array, sender: Uint8Array): Promise<QueueUsage> {
    return this.#queue.pairUsage(recipient, sender);
  }

  get total(): number {
    return this.#queue.totals().messages;
  }

  get totalBytes(): number {
    return this.#queue.totals().bytes;
  }

  /** Every write is confirmed by a quorum before its promise resolves: nothing to flush. */
  flush(): void {}

  /** Withdraws this node's presence, stops the watches and closes the connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue.stop();
    this.#directory.stop();
    await this.online.stop();
    await this.#nats.nc.drain().catch(() => this.#nats.nc.close());
  }
}

/** Opens the JetStream store (see `JetStreamStore.open`). */
export function openJetStreamStore(o: JetStreamStoreOptions): Promise<JetStreamStore> {
  return JetStreamStore.open(o);
}
