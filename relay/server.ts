/**
 * The relay server (DESIGN §7, SPEC §23): serves each client's SecureChannel — the
 * directory, durable store-and-forward of sealed envelopes, deliveries and their
 * acknowledgements, presence and counters. It never holds a key that opens an envelope.
 * @module
 */
import type { PresenceStatus } from "../amp/presence.ts";
import { type Bytes, toHex } from "../core/bytes.ts";
import type { CryptoProvider } from "../crypto/provider.ts";
import { decodeEnvelope } from "../envelope/mod.ts";
import { isMissiveError, MissiveError } from "../core/errors.ts";
import type { Card } from "../keys/card.ts";
import type { SecureChannel } from "../session/channel.ts";
import { Directory } from "./_directory.ts";
import {
  decodeRelayMessages,
  encodeResponse,
  MAX_RELAY_ENVELOPE,
  type RelayMessage,
  type RelayRequest,
  type RelayStatus,
  type ResponseFields,
} from "./protocol.ts";
import { Connection, DEFAULT_WINDOW, Deliveries } from "./_delivery.ts";
import type { QueuedMessage, RelayStore, StoredCard } from "./store.ts";

/** Default cap on one envelope (SPEC §23.6). */
export const DEFAULT_MAX_MESSAGE = 64 * 1024;
/** How long a graceful shutdown waits for answers still going out. */
const SHUTDOWN_GRACE_MS = 5000;
/** Requests a client may have awaiting their answers before the relay stops reading it. */
const MAX_UNANSWERED = 1024;
/** Default number of messages queued per recipient. */
export const DEFAULT_QUOTA = 10_000;
export { DEFAULT_WINDOW } from "./_delivery.ts";

/** One structured log event. */
export interface RelayEvent {
  event: string;
  [field: string]: string | number | boolean | undefined;
}

/** Options of a relay. */
export interface RelayServerOptions {
  store: RelayStore;
  crypto: CryptoProvider;
  /** Anyone with a valid card may register (otherwise only `users`). */
  openRegistration: boolean;
  /** Pre-installed cards (`--users DIR`). */
  users?: readonly Card[];
  maxMessage?: number;
  quota?: number;
  window?: number;
  now?: () => number;
  log?: (event: RelayEvent) => void;
}

/** The relay's counters (`missive serve --stats`). */
export interface RelayStats {
  connected: number;
  connections: number;
  online: number;
  queued: number;
  accepted: number;
  delivered: number;
  acknowledged: number;
  refused: number;
  [name: string]: number;
}

type Reply = { status: RelayStatus } & ResponseFields;
/** A request whose writes were issued; `done` settles once they are committed. */
type Issued = { done: Promise<Reply> };
const now = (r: Reply): Issued => ({ done: Promise.resolve(r) });

/** The relay. A class: it owns live connections and counters. */
export class RelayServer {
  readonly #store: RelayStore;
  readonly #crypto: CryptoProvider;
  readonly #directory: Directory;
  readonly #maxMessage: number;
  readonly #quota: number;
  readonly #now: () => number;
  readonly #log?: (event: RelayEvent) => void;
  readonly #connections = new Set<Connection>();
  readonly #deliveries: Deliveries;
  readonly #pending = new Set<Promise<unknown>>();
  readonly #counters = { connections: 0, accepted: 0, delivered: 0, acknowledged: 0, refused: 0 };
  #state: "running" | "closing" | "closed" = "running";

  constructor(options: RelayServerOptions) {
    this.#store = options.store;
    this.#crypto = options.crypto;
    this.#directory = new Directory(options.store, {
      openRegistration: options.openRegistration,
      users: options.users ?? [],
    });
    this.#maxMessage = options.maxMessage ?? DEFAULT_MAX_MESSAGE;
    if (!Number.isInteger(this.#maxMessage) || this.#maxMessage < 64) {
      throw new MissiveError("usage", "relay: the message cap must be at least 64 bytes");
    }
    if (this.#maxMessage > MAX_RELAY_ENVELOPE) {
      throw new MissiveError("usage", `relay: the message cap is at most ${MAX_RELAY_ENVELOPE}`);
    }
    this.#quota = options.quota ?? DEFAULT_QUOTA;
    this.#deliveries = new Deliveries(options.store, {
      window: options.window ?? DEFAULT_WINDOW,
      running: () => this.#state === "running",
      delivered: () => this.#counters.delivered++,
    });
    this.#now = options.now ?? Date.now;
    this.#log = options.log;
  }

  /** Installs the `--users` cards; call once before serving. */
  async start(): Promise<void> {
    await this.#directory.preinstall(this.#now());
  }

  /** The session's authorize hook: may this card connect? */
  authorize(card: Card): boolean {
    return this.#directory.authorize(card);
  }

  /** Current counters. */
  stats(): RelayStats {
    return {
      ...this.#counters,
      connected: this.#connections.size,
      online: this.#directory.onlineCount,
      queued: this.#store.total,
    };
  }

  #emit(event: RelayEvent): void {
    this.#log?.(event);
  }

  /** Serves one client until its channel ends. */
  async serve(channel: SecureChannel): Promise<void> {
    if (this.#state !== "running") {
      await channel.close();
      return;
    }
    const conn = new Connection(channel);
    this.#connections.add(conn);
    this.#counters.connections++;
    this.#directory.connected(conn.card.id);
    this.#emit({ event: "connect", address: conn.card.address, id: conn.key });
    try {
      for await (const bytes of channel.messages()) {
        if (this.#state !== "running") break;
        await this.#onMessage(conn, bytes);
      }
    } catch (e) {
      this.#emit({ event: "channel-error", address: conn.card.address, error: String(e) });
    } finally {
      this.#drop(conn);
    }
  }

  #drop(conn: Connection): void {
    if (!this.#connections.delete(conn)) return;
    this.#deliveries.stop(conn, this.#state === "running");
    this.#directory.disconnected(conn.card.id);
    this.#emit({ event: "disconnect", address: conn.card.address, id: conn.key });
  }

  async #onMessage(conn: Connection, bytes: Uint8Array): Promise<void> {
    let messages: RelayMessage[];
    try {
      messages = decodeRelayMessages(bytes);
    } catch (e) {
      this.#refuseUnreadable(conn, 0, e);
      return;
    }
    for (const m of messages) {
      if (m.kind !== "request") {
        this.#refuseUnreadable(conn, 0, new MissiveError("malformed", "relay: expected a request"));
        continue;
      }
      await this.#onRequest(conn, m.rid, m.request);
    }
  }

  /** An unreadable message has no request ID to answer: the refusal carries ID 0. */
  #refuseUnreadable(conn: Connection, rid: number, e: unknown): void {
    const status = isMissiveError(e, "too-large") ? "too-large" : "malformed";
    this.#counters.refused++;
    this.#emit({ event: "refuse", status, address: conn.card.address });
    void conn.send(encodeResponse({ rid, status, detail: (e as Error).message }));
  }

  async #onRequest(conn: Connection, rid: number, request: RelayRequest): Promise<void> {
    // Requests are taken in order and each one's writes are issued in order (so sends
    // keep their order in the queue); the reply waits for the group commit without
    // holding up the next request.
    let done: Promise<Reply>;
    try {
      done = (await this.#handle(conn, request)).done;
    } catch (e) {
      done = Promise.reject(e);
    }
    const reply = done.then(
      (r) => this.#reply(conn, rid, request.op, r),
      (e) => this.#reply(conn, rid, request.op, { status: "unavailable", detail: String(e) }),
    );
    this.#track(reply);
    // A client that pipelines without reading its answers is not read any further until
    // they went out: its replies cannot pile up in memory (the transport pushes back).
    conn.unanswered++;
    void reply.finally(() => conn.unanswered--);
    if (conn.unanswered > MAX_UNANSWERED) await reply;
  }

  #track(p: Promise<unknown>): void {
    this.#pending.add(p);
    void p.finally(() => this.#pending.delete(p));
  }

  #reply(conn: Connection, rid: number, op: string, r: Reply): Promise<void> {
    if (r.status !== "ok") {
      this.#counters.refused++;
      this.#emit({
        event: "refuse",
        op,
        status: r.status,
        address: conn.card.address,
        detail: r.detail,
      });
    }
    return conn.send(encodeResponse({ rid, ...r }));
  }

  async #handle(conn: Connection, request: RelayRequest): Promise<Issued> {
    if (request.op === "register") return now(await this.#register(conn));
    if (request.op === "unknown") {
      return now({ status: "unknown-op", detail: `unknown op ${request.code}` });
    }
    conn.registered ||= this.#directory.registered(conn.card) !== undefined;
    if (!conn.registered) {
      return now({
        status: "not-registered",
        detail: `${conn.card.address} is not registered with this relay (run register first)`,
      });
    }
    switch (request.op) {
      case "lookup": {
        const found = this.#directory.find(request.target);
        if (!found) {
          const what = typeof request.target === "string" ? request.target : toHex(request.target);
          return now({ status: "not-found", detail: `no card registered for ${what}` });
        }
        return now({
          status: "ok",
          card: found.card,
          presence: this.#directory.visiblePresence(found),
        });
      }
      case "list":
        return now({ status: "ok", entries: this.#directory.list() });
      case "presence":
        return now(await this.#presence(conn, request.status, request.note));
      case "send":
        return await this.#send(conn, request.to, request.envelope);
      case "ack":
        return this.#ack(conn, request.message, request.receipt);
      case "receive":
        return now(this.#receive(conn));
      case "stats":
        return now({ status: "ok", stats: this.stats() });
    }
  }

  async #register(conn: Connection): Promise<Reply> {
    const r = await this.#directory.register(conn.card, this.#now());
    if (r.status !== "ok") return r;
    this.#emit({ event: "register", address: conn.card.address, id: conn.key });
    return { status: "ok", id: r.value };
  }

  async #presence(conn: Connection, status: PresenceStatus, note?: string): Promise<Reply> {
    await this.#directory.setPresence(conn.card.id, status, note);
    this.#emit({ event: "presence", address: conn.card.address, status });
    return { status: "ok" };
  }

  async #send(conn: Connection, to: string | Bytes, envelope: Bytes): Promise<Issued> {
    if (envelope.length > this.#maxMessage) {
      return now({
        status: "too-large",
        detail:
          `message of ${envelope.length} bytes exceeds this relay's cap of ${this.#maxMessage}`,
      });
    }
    try {
      decodeEnvelope(envelope);
    } catch (e) {
      return now({
        status: "malformed",
        detail: `not a missive envelope: ${(e as Error).message}`,
      });
    }
    const recipient = this.#directory.find(to);
    if (!recipient) {
      const what = typeof to === "string" ? to : toHex(to);
      return now({ status: "unknown-recipient", detail: `no user ${what} is registered here` });
    }
    if (this.#store.queued(recipient.id) >= this.#quota) {
      return now({
        status: "quota",
        detail: `${recipient.address} has ${this.#quota} messages waiting (the quota); try later`,
      });
    }
    // The digest happens before the write so the write itself stays in request order.
    const digest = await this.#crypto.sha256(envelope);
    const message = {
      recipient: recipient.id,
      sender: conn.card.id,
      senderAddress: conn.card.address,
      envelope,
      digest,
      enqueued: this.#now(),
    };
    const committed = this.#store.enqueue(message);
    return {
      done: committed.then(({ mid, duplicate }) =>
        this.#accepted(conn, recipient, { ...message, mid, attempts: 0 }, duplicate)
      ),
    };
  }

  #accepted(
    conn: Connection,
    recipient: StoredCard,
    message: QueuedMessage,
    duplicate: boolean,
  ): Reply {
    const { mid } = message;
    if (!duplicate) this.#counters.accepted++;
    this.#emit({
      event: "accept",
      from: conn.card.address,
      to: recipient.address,
      mid,
      bytes: message.envelope.length,
      duplicate,
    });
    if (!duplicate) this.#deliveries.offer(message);
    return { status: "ok", count: mid };
  }

  #ack(conn: Connection, mid: number, receipt: string): Issued {
    this.#deliveries.acknowledged(conn, mid);
    return {
      done: this.#store.remove(conn.card.id, mid).then((removed) =>
        this.#acked(conn, mid, receipt, removed)
      ),
    };
  }

  #acked(conn: Connection, mid: number, receipt: string, removed: boolean): Reply {
    if (!removed) {
      return { status: "unknown-message", detail: `no message ${mid} is queued for you` };
    }
    this.#counters.acknowledged++;
    this.#emit({ event: "ack", address: conn.card.address, mid, receipt });
    return { status: "ok" };
  }

  #receive(conn: Connection): Reply {
    return { status: "ok", count: this.#deliveries.start(conn) };
  }

  /**
   * Graceful shutdown: stops taking requests, lets in-flight writes commit and their
   * replies go out, closes every channel and the store. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#state !== "running") return;
    this.#state = "closing";
    // Writes commit within a turn; their answers go out unless a peer stopped reading,
    // which must not hold the shutdown for longer than a grace period.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, SHUTDOWN_GRACE_MS)));
    const drained = (async () => {
      while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
    })();
    await Promise.race([drained, grace]);
    clearTimeout(timer);
    this.#store.flush();
    await Promise.allSettled([...this.#connections].map((c) => c.channel.close()));
    this.#store.close();
    this.#state = "closed";
    this.#emit({ event: "shutdown", ...this.stats() });
  }
}
