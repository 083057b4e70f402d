/**
 * The relay server (DESIGN §7, SPEC §23): serves each client's SecureChannel — the
 * directory, durable store-and-forward of sealed envelopes, deliveries and their
 * acknowledgements, presence and counters. It never holds a key that opens an envelope.
 * Every client is treated as possibly hostile (SPEC §23.12): what a connection makes the
 * relay hold is counted against its budget before more is taken, quotas are fair per
 * (sender, recipient), registrations are rate-limited, quiet links time out, and each
 * link's log is rate-limited.
 * @module
 */
import type { PresenceStatus } from "../amp/presence.ts";
import { RECEIPT_STATUSES, type ReceiptStatus } from "../amp/receipt.ts";
import { type Bytes, toHex } from "../core/bytes.ts";
import type { CryptoProvider } from "../crypto/provider.ts";
import { decodeEnvelope } from "../envelope/mod.ts";
import { isMissiveError, MissiveError } from "../core/errors.ts";
import type { Card } from "../keys/card.ts";
import type { SecureChannel } from "../session/channel.ts";
import {
  decodePrekeyUpload,
  encodePrekeyBundle,
  type PrekeyUpload,
  verifyPrekeyUpload,
} from "../stp/ratchet/mod.ts";
import { Directory } from "./_directory.ts";
import {
  decodeRelayMessages,
  encodeResponse,
  type ReceiveMode,
  type RelayMessage,
  type RelayRequest,
  type RelayStatus,
  type ResponseFields,
} from "./protocol.ts";
import {
  Connection,
  DEFAULT_WINDOW,
  Deliveries,
  HELD_OVERHEAD,
  type LinkInfo,
} from "./_delivery.ts";
import { queueRefusal, RegistrationGate } from "./_quota.ts";
import { BucketsByKey, LimitedLog, type LogEvent } from "./_ratelimit.ts";
import {
  BUDGET_STALL_MS,
  LINK_LOG,
  MAX_MALFORMED,
  MAX_UNANSWERED,
  PREKEY_REQUESTS,
  RELAY_DEFAULTS,
  type RelayLimits,
  relayLimits,
} from "./limits.ts";
import {
  type AckOutcome,
  type QueuedMessage,
  type RelayStorage,
  type StoredCard,
  StoreRefusal,
} from "./storage.ts";

/** Default cap on one envelope (SPEC §23.6). */
export const DEFAULT_MAX_MESSAGE = RELAY_DEFAULTS.maxMessage;
/** Default number of messages one sender may queue for one recipient. */
export const DEFAULT_QUOTA = RELAY_DEFAULTS.quota;
/** How long a graceful shutdown waits for answers still going out. */
const SHUTDOWN_GRACE_MS = 5000;
/** How long a dropped link's parting refusal may take before the link is cut. */
const DROP_GRACE_MS = 250;
export { DEFAULT_WINDOW } from "./_delivery.ts";
export type { LinkInfo } from "./_delivery.ts";

/** One structured log event. */
export type RelayEvent = LogEvent;

/**
 * Options of a relay: where it stores, who may register, and the limits it holds
 * clients to (`RelayLimits`; each one left out takes its default, SPEC §23.12).
 */
export interface RelayServerOptions extends Partial<RelayLimits> {
  /** SQLite (`RelayStore`) or a store shared by several relay nodes (docs/SCALE.md). */
  store: RelayStorage;
  /** Hashes envelopes (a resend's digest) and verifies published prekey uploads. */
  crypto: CryptoProvider;
  /** Anyone with a valid card may register (otherwise only `users`). */
  openRegistration: boolean;
  /** Pre-installed cards (`--users DIR`). */
  users?: readonly Card[];
  /**
   * Deliveries sent to one client and not yet acknowledged, at most (default
   * `DEFAULT_WINDOW`); the rest wait in the store.
   */
  window?: number;
  /** The clock, ms since the epoch (default `Date.now`); tests pass a fake one. */
  now?: () => number;
  /**
   * Told about connections, refusals, drops and store errors; each link's events are
   * rate-limited, except its connect, disconnect and drop. Events carry peers' addresses
   * and reasons: sanitise them before they reach a terminal.
   */
  log?: (event: RelayEvent) => void;
}

/** The relay's counters (`missive serve --stats`; the operator's, not the users'). */
export interface RelayStats {
  /** Connections open now. */
  connected: number;
  /** Connections served since start. */
  connections: number;
  /** Identities with at least one connection to this node. */
  online: number;
  /** Entries queued in the store (a shared store's figure may be a second old). */
  queued: number;
  /** Envelopes stored since start (a sender's retry of the same envelope not counted). */
  accepted: number;
  /** Deliveries and receipts sent since start (a redelivery counts again). */
  delivered: number;
  /** Acknowledgements taken since start. */
  acknowledged: number;
  /** Requests refused since start, unreadable relay messages and links turned away included. */
  refused: number;
  /** Links the relay ended since start (`busy`, `idle`, `over-budget`, …). */
  dropped: number;
  /** Further counters: `receipts`, `receipts-dropped`, `dropped-STATUS` per status. */
  [name: string]: number;
}

type Reply = { status: RelayStatus } & ResponseFields;
/** A request whose writes were issued; `done` settles once they are committed. */
type Issued = { done: Promise<Reply> };
const now = (r: Reply): Issued => ({ done: Promise.resolve(r) });

/**
 * The answer to a request whose store write failed: the store's own refusal (a shared
 * store's cluster-wide quota or cap), else `unavailable` with the store's reason (a
 * JetStream cluster without quorum): nothing was stored, the client keeps the message.
 */
function storeFailure(e: unknown): Reply {
  if (e instanceof StoreRefusal) return { status: e.status, detail: e.message };
  const why = isMissiveError(e) ? e.message : String((e as Error)?.message ?? e);
  return { status: "unavailable", detail: `the relay's store is unavailable: ${why}` };
}

/** The relay. A class: it owns live connections and counters. */
export class RelayServer {
  readonly #store: RelayStorage;
  readonly #crypto: CryptoProvider;
  readonly #directory: Directory;
  readonly #limits: RelayLimits;
  readonly #now: () => number;
  readonly #log?: (event: RelayEvent) => void;
  readonly #connections = new Set<Connection>();
  readonly #logs = new WeakMap<Connection, LimitedLog>();
  readonly #deliveries: Deliveries;
  readonly #registrations: RegistrationGate;
  /** publish-prekeys and fetch-prekeys per identity (SPEC §23.12). */
  readonly #prekeyRequests = new BucketsByKey(PREKEY_REQUESTS.burst, PREKEY_REQUESTS.perMinute);
  readonly #pending = new Set<Promise<unknown>>();
  readonly #counters = {
    connections: 0,
    accepted: 0,
    delivered: 0,
    acknowledged: 0,
    refused: 0,
    dropped: 0,
    /** Receipts queued for senders (SPEC §23.7.1), and those dropped at a limit. */
    receipts: 0,
    "receipts-dropped": 0,
  };
  /** Links dropped, by status. */
  readonly #drops = new Map<string, number>();
  #sweeper: ReturnType<typeof setInterval> | undefined;
  #state: "running" | "closing" | "closed" = "running";

  /**
   * A relay over `options.store`. Throws `usage` when a limit is out of range. Call
   * `start` once before serving; `close` closes the store too.
   */
  constructor(options: RelayServerOptions) {
    this.#store = options.store;
    this.#crypto = options.crypto;
    this.#directory = new Directory(options.store, {
      openRegistration: options.openRegistration,
      users: options.users ?? [],
    });
    this.#limits = relayLimits(options);
    this.#now = options.now ?? Date.now;
    this.#deliveries = new Deliveries(options.store, {
      window: options.window ?? DEFAULT_WINDOW,
      room: this.#limits.connectionBytes / 4,
      running: () => this.#state === "running",
      delivered: () => this.#counters.delivered++,
      failed: (conn, e) =>
        this.#logOf(conn).emit({
          event: "store-error",
          op: "deliver",
          address: conn.card.address,
          error: String((e as Error)?.message ?? e),
        }),
    });
    this.#registrations = new RegistrationGate(this.#limits.registrationsPerMinute, this.#now());
    this.#log = options.log;
  }

  /** The limits in force. */
  get limits(): RelayLimits {
    return { ...this.#limits };
  }

  /** Installs the `--users` cards and starts the idle sweep; call once before serving. */
  async start(): Promise<void> {
    await this.#directory.preinstall(this.#now());
    const idle = this.#limits.idleTimeoutMs;
    if (idle > 0) {
      this.#sweeper = setInterval(() => this.sweep(), Math.min(5000, Math.max(100, idle / 4)));
      (this.#sweeper as { unref?: () => void }).unref?.();
    }
  }

  /** The session's authorize hook: may this card connect? */
  authorize(card: Card): boolean {
    return this.#directory.authorize(card);
  }

  /** Current counters. */
  stats(): RelayStats {
    const drops = Object.fromEntries([...this.#drops].map(([k, n]) => [`dropped-${k}`, n]));
    return {
      ...this.#counters,
      ...drops,
      connected: this.#connections.size,
      online: this.#directory.onlineCount,
      queued: this.#store.total,
    };
  }

  #emit(event: RelayEvent): void {
    this.#log?.(event);
  }

  /** The link's rate-limited log. */
  #logOf(conn: Connection): LimitedLog {
    let log = this.#logs.get(conn);
    if (!log) {
      log = new LimitedLog((e) => this.#emit(e), {
        ...LINK_LOG,
        now: this.#now,
        scope: { address: conn.card.address, remote: conn.link.remote },
      });
      this.#logs.set(conn, log);
    }
    return log;
  }

  /**
   * Tells a client the relay will not serve its link (`busy`, SPEC §23.4: a response to
   * request 0) and cuts it.
   */
  turnAway(channel: SecureChannel, link: LinkInfo, status: RelayStatus, detail: string): void {
    const conn = new Connection(channel, link, this.#now());
    this.#counters.refused++;
    this.#drop(conn, status, detail);
  }

  /** Serves one client until its channel ends. */
  async serve(channel: SecureChannel, link: LinkInfo = {}): Promise<void> {
    if (this.#state !== "running") {
      link.abort?.("the relay is shutting down");
      await channel.close();
      return;
    }
    const conn = new Connection(channel, link, this.#now());
    this.#connections.add(conn);
    this.#counters.connections++;
    this.#directory.connected(conn.card.id);
    this.#logOf(conn).always({
      event: "connect",
      address: conn.card.address,
      id: conn.key,
      remote: link.remote,
    });
    try {
      for await (const bytes of channel.messages()) {
        if (this.#state !== "running" || conn.dropped) break;
        conn.lastSeen = this.#now();
        if (!await this.#admitIncoming(conn, bytes.length + HELD_OVERHEAD)) break;
        await this.#onMessage(conn, bytes);
      }
    } catch (e) {
      if (!conn.dropped) {
        this.#logOf(conn).emit({
          event: "channel-error",
          address: conn.card.address,
          error: String(e),
        });
      }
    } finally {
      this.#disconnect(conn);
    }
  }

  /**
   * Room for `n` more held bytes: reading waits (the session then stops reading its
   * transport) while the connection is over its budget, and the link is dropped if that
   * lasts BUDGET_STALL_MS — a peer that does not take its answers.
   */
  async #admitIncoming(conn: Connection, n: number): Promise<boolean> {
    const budget = this.#limits.connectionBytes;
    if (conn.held + n <= budget) return true;
    const deadline = this.#now() + BUDGET_STALL_MS;
    while (conn.held + n > budget && !conn.dropped) {
      if (this.#now() >= deadline) {
        this.#drop(
          conn,
          "over-budget",
          `memory budget of ${budget} bytes exceeded: ${conn.held} bytes of requests and ` +
            `answers held for ${BUDGET_STALL_MS / 1000} s (answers not acknowledged)`,
        );
        return false;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return !conn.dropped;
  }

  #disconnect(conn: Connection): void {
    if (!this.#connections.delete(conn)) return;
    this.#deliveries.stop(conn, this.#state === "running");
    this.#directory.disconnected(conn.card.id);
    this.#logOf(conn).always({ event: "disconnect", address: conn.card.address, id: conn.key });
  }

  /**
   * Drops a link: logs why (always), tells the peer with a response to request 0
   * (best effort) and cuts the link shortly after, without waiting for the peer.
   */
  #drop(conn: Connection, status: RelayStatus, reason: string): void {
    if (conn.dropped) return;
    conn.dropped = true;
    this.#counters.dropped++;
    this.#drops.set(status, (this.#drops.get(status) ?? 0) + 1);
    this.#logOf(conn).always({
      event: "drop",
      status,
      reason,
      address: conn.card.address,
      remote: conn.link.remote,
    });
    void conn.send(encodeResponse({ rid: 0, status, detail: reason }));
    const timer = setTimeout(() => conn.cut(reason), DROP_GRACE_MS);
    (timer as { unref?: () => void }).unref?.();
  }

  /** Drops links idle for longer than the idle timeout (SPEC §23.12); called periodically. */
  sweep(): void {
    const idle = this.#limits.idleTimeoutMs;
    if (idle <= 0) return;
    const t = this.#now();
    for (const conn of this.#connections) {
      if (t - conn.lastSeen >= idle) {
        this.#drop(
          conn,
          "idle",
          `no request for ${Math.round(idle / 1000)} s; a client that stays sends keepalive`,
        );
      }
    }
  }

  async #onMessage(conn: Connection, bytes: Uint8Array): Promise<void> {
    const held = bytes.length + HELD_OVERHEAD;
    conn.hold(held);
    const handled: Promise<unknown>[] = [];
    try {
      let messages: RelayMessage[];
      try {
        messages = decodeRelayMessages(bytes);
      } catch (e) {
        this.#refuseUnreadable(conn, e);
        return;
      }
      for (const m of messages) {
        if (conn.dropped) return;
        if (m.kind !== "request") {
          this.#refuseUnreadable(conn, new MissiveError("malformed", "relay: expected a request"));
          continue;
        }
        handled.push((await this.#onRequest(conn, m.rid, m.request)).answered);
      }
    } finally {
      // The message's bytes are held until every request in it has its answer.
      const answered = handled.length === 1 ? handled[0] : Promise.allSettled(handled);
      void answered.then(() => conn.release(held));
    }
  }

  /** An unreadable message has no request ID to answer: the refusal carries ID 0. */
  #refuseUnreadable(conn: Connection, e: unknown): void {
    const status = isMissiveError(e, "too-large") ? "too-large" : "malformed";
    this.#counters.refused++;
    if (++conn.malformed > MAX_MALFORMED) {
      this.#drop(conn, "malformed", `${conn.malformed} malformed relay messages`);
      return;
    }
    this.#logOf(conn).emit({ event: "refuse", status, address: conn.card.address });
    this.#answer(conn, encodeResponse({ rid: 0, status, detail: (e as Error).message }));
  }

  /**
   * Sends an answer, counted against the connection's budget; a peer that leaves too
   * many answers, or too many bytes, unacknowledged is dropped.
   */
  #answer(conn: Connection, bytes: Uint8Array): Promise<void> {
    if (conn.dropped) return Promise.resolve();
    const budget = this.#limits.connectionBytes;
    if (conn.unanswered >= MAX_UNANSWERED || conn.held + bytes.length > budget) {
      this.#drop(
        conn,
        "over-budget",
        conn.unanswered >= MAX_UNANSWERED
          ? `${conn.unanswered} answers not acknowledged (at most ${MAX_UNANSWERED}): ` +
            "the peer is not reading"
          : `memory budget of ${budget} bytes exceeded: ${conn.held} bytes held`,
      );
      return Promise.resolve();
    }
    return conn.send(bytes, true);
  }

  /** Handles a request; `answered` settles once its answer is made (not yet sent). */
  async #onRequest(
    conn: Connection,
    rid: number,
    request: RelayRequest,
  ): Promise<{ answered: Promise<unknown> }> {
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
      (e) => this.#reply(conn, rid, request.op, storeFailure(e)),
    );
    this.#track(reply);
    return { answered: done.catch(() => {}) };
  }

  #track(p: Promise<unknown>): void {
    this.#pending.add(p);
    void p.finally(() => this.#pending.delete(p));
  }

  #reply(conn: Connection, rid: number, op: string, r: Reply): Promise<void> {
    if (r.status !== "ok") {
      this.#counters.refused++;
      this.#logOf(conn).emit({
        event: "refuse",
        op,
        status: r.status,
        address: conn.card.address,
        detail: r.detail,
      });
    }
    return this.#answer(conn, encodeResponse({ rid, ...r }));
  }

  async #handle(conn: Connection, request: RelayRequest): Promise<Issued> {
    await this.#directory.ready();
    if (request.op === "register") return now(await this.#register(conn));
    if (request.op === "keepalive") {
      return now({ status: "ok", count: this.#limits.idleTimeoutMs });
    }
    if (request.op === "unknown") {
      return now({ status: "unknown-op", detail: `unknown op ${request.code}` });
    }
    conn.registered ||= (await this.#directory.resolveRegistered(conn.card)) !== undefined;
    if (!conn.registered) {
      return now({
        status: "not-registered",
        detail: `${conn.card.address} is not registered with this relay (run register first)`,
      });
    }
    switch (request.op) {
      case "lookup": {
        const found = await this.#directory.resolve(request.target);
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
        return await this.#send(conn, request.to, request.envelope, request.receipt === true);
      case "ack":
        return this.#ack(conn, request.message, request.receipt);
      case "receive":
        return now(await this.#receive(conn, request.mode));
      case "publish-prekeys":
        return await this.#publishPrekeys(conn, request.upload);
      case "fetch-prekeys":
        return await this.#fetchPrekeys(conn, request.target);
      case "stats":
        // Users see only what does not depend on anyone's invisible activity (SPEC §23.3).
        return now({
          status: "ok",
          stats: {
            online: this.#directory.visibleCount(),
            queued: await this.#store.queued(conn.card.id),
          },
        });
    }
  }

  async #register(conn: Connection): Promise<Reply> {
    const card = conn.card;
    if (this.#directory.authorize(card) && this.#directory.isChange(card)) {
      if (this.#directory.isNew(card) && this.#directory.cardCount >= this.#limits.maxUsers) {
        return {
          status: "directory-full",
          detail: `this relay holds its maximum of ${this.#limits.maxUsers} registered cards`,
        };
      }
      const limited = this.#registrations.admit(conn.link.remote, this.#now());
      if (limited) return limited;
    }
    const r = await this.#directory.register(card, this.#now());
    if (r.status !== "ok") return r;
    this.#logOf(conn).emit({ event: "register", address: card.address, id: conn.key });
    return { status: "ok", id: r.value };
  }

  async #presence(conn: Connection, status: PresenceStatus, note?: string): Promise<Reply> {
    await this.#directory.setPresence(conn.card.id, status, note);
    this.#logOf(conn).emit({ event: "presence", address: conn.card.address, status });
    return { status: "ok" };
  }

  async #send(
    conn: Connection,
    to: string | Bytes,
    envelope: Bytes,
    wantsReceipt: boolean,
  ): Promise<Issued> {
    const cap = this.#limits.maxMessage;
    if (envelope.length > cap) {
      return now({
        status: "too-large",
        detail: `message of ${envelope.length} bytes exceeds this relay's cap of ${cap} ` +
          "(its operator sets it with missive serve --max-message)",
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
    const recipient = await this.#directory.resolve(to);
    if (!recipient) {
      const what = typeof to === "string" ? to : toHex(to);
      return now({ status: "unknown-recipient", detail: `no user ${what} is registered here` });
    }
    const full = await queueRefusal(
      this.#store,
      this.#limits,
      conn.card,
      recipient,
      envelope.length,
    );
    if (full) return now(full);
    // The digest happens before the write so the write itself stays in request order.
    const digest = await this.#crypto.sha256(envelope);
    const message = {
      recipient: recipient.id,
      sender: conn.card.id,
      senderAddress: conn.card.address,
      envelope,
      digest,
      enqueued: this.#now(),
      ...(wantsReceipt ? { wantsReceipt } : {}),
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
    this.#logOf(conn).emit({
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

  /**
   * `ack` (SPEC §23.7): the entry leaves the queue and, when its sender asked for one, a
   * receipt is queued for the sender in the same write (SPEC §23.7.1) and offered to it.
   */
  #ack(conn: Connection, mid: number, receipt: ReceiptStatus): Issued {
    this.#deliveries.acknowledged(conn, mid);
    const l = this.#limits;
    return {
      done: this.#store.acknowledge({
        recipient: conn.card.id,
        recipientAddress: conn.card.address,
        mid,
        status: RECEIPT_STATUSES.indexOf(receipt),
        at: this.#now(),
        limits: {
          quota: l.quota,
          recipientQuota: l.recipientQuota,
          recipientBytes: l.recipientBytes,
          storeBytes: l.storeBytes,
        },
      }).then((outcome) => this.#acked(conn, mid, receipt, outcome)),
    };
  }

  #acked(conn: Connection, mid: number, receipt: string, outcome: AckOutcome): Reply {
    if (!outcome.removed) {
      return { status: "unknown-message", detail: `no message ${mid} is queued for you` };
    }
    this.#counters.acknowledged++;
    this.#logOf(conn).emit({ event: "ack", address: conn.card.address, mid, receipt });
    if (outcome.receipt) {
      this.#counters.receipts++;
      this.#deliveries.offer(outcome.receipt);
    } else if (outcome.dropped) {
      // The sender's own limits: it has not read its receipts (SPEC §23.7.1).
      this.#counters["receipts-dropped"]++;
      this.#logOf(conn).emit({ event: "receipt-dropped", mid, reason: outcome.dropped });
    }
    return { status: "ok" };
  }

  /** One prekey request of this identity's, or the refusal (SPEC §23.12). */
  #prekeyRate(conn: Connection): Reply | undefined {
    const bucket = this.#prekeyRequests.get(conn.key, this.#now());
    if (bucket.take(this.#now())) return undefined;
    return {
      status: "rate-limited",
      detail: `too many prekey requests (at most ${PREKEY_REQUESTS.perMinute} a minute); ` +
        `try again in ${Math.ceil(bucket.waitMs(this.#now()) / 1000)} s`,
    };
  }

  /**
   * publish-prekeys (SPEC §23.13): the upload must be the peer's own, signed by its card
   * and current; the store keeps the newest signed prekey and adds the one-time prekeys.
   */
  async #publishPrekeys(conn: Connection, bytes: Bytes): Promise<Issued> {
    const limited = this.#prekeyRate(conn);
    if (limited) return now(limited);
    let upload: PrekeyUpload;
    try {
      upload = decodePrekeyUpload(bytes);
      await verifyPrekeyUpload(this.#crypto, upload, conn.card, this.#now());
    } catch (e) {
      if (!isMissiveError(e)) throw e;
      return now({
        status: e.code === "malformed" ? "malformed" : "invalid-prekeys",
        detail: e.message,
      });
    }
    return {
      done: this.#store.prekeys.publish(upload).then(
        ({ oneTimeHeld }): Reply => {
          this.#logOf(conn).emit({
            event: "publish-prekeys",
            address: conn.card.address,
            signedPrekey: upload.signedPrekey.id,
            oneTime: upload.oneTimePrekeys.length,
            held: oneTimeHeld,
          });
          return { status: "ok", count: oneTimeHeld };
        },
        (e): Reply => {
          if (!isMissiveError(e, "full")) throw e;
          return { status: "quota", detail: e.message };
        },
      ),
    };
  }

  /**
   * fetch-prekeys (SPEC §23.13): the target's card and a bundle; the one-time prekey in
   * it is deleted in the same transaction, before the answer goes out.
   */
  async #fetchPrekeys(conn: Connection, target: string | Bytes): Promise<Issued> {
    const limited = this.#prekeyRate(conn);
    if (limited) return now(limited);
    const found = await this.#directory.resolve(target);
    const what = typeof target === "string" ? target : toHex(target);
    if (!found) return now({ status: "not-found", detail: `no card registered for ${what}` });
    return {
      done: this.#store.prekeys.fetch(found.id).then((bundle): Reply => {
        if (!bundle) {
          return { status: "not-found", detail: `${found.address} has published no prekeys` };
        }
        this.#logOf(conn).emit({
          event: "fetch-prekeys",
          address: conn.card.address,
          target: found.address,
          oneTime: bundle.oneTimePrekey?.id ?? 0,
        });
        return { status: "ok", card: found.card, prekeys: encodePrekeyBundle(bundle) };
      }),
    };
  }

  async #receive(conn: Connection, mode: ReceiveMode | undefined): Promise<Reply> {
    return { status: "ok", count: await this.#deliveries.start(conn, mode) };
  }

  /**
   * Graceful shutdown: stops taking requests, lets in-flight writes commit and their
   * replies go out, closes every channel and the store. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#state !== "running") return;
    this.#state = "closing";
    if (this.#sweeper) clearInterval(this.#sweeper);
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
    // A peer that never acknowledges would hold its CLOSE forever: it is cut after grace.
    let closing: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.allSettled([...this.#connections].map((c) => c.channel.close())),
      new Promise((r) => (closing = setTimeout(r, SHUTDOWN_GRACE_MS))),
    ]);
    clearTimeout(closing);
    for (const c of this.#connections) c.cut("the relay is shutting down");
    await this.#store.close();
    this.#state = "closed";
    this.#emit({ event: "shutdown", ...this.stats() });
  }
}
