/**
 * The relay client (SPEC §23): requests over a SecureChannel to the relay, their
 * responses matched by request ID, and the stream of deliveries. Refusals become
 * MissiveErrors whose message says what the relay refused and why. A link that asked for
 * receipts (SPEC §23.7.1) gets them in the same stream as deliveries (`incoming`).
 * @module
 */
import { lowerAscii } from "../keys/address.ts";
import type { PresenceStatus } from "../amp/presence.ts";
import type { ReceiptStatus } from "../amp/receipt.ts";
import { type Bytes, toHex } from "../core/bytes.ts";
import { getCryptoProvider } from "../crypto/mod.ts";
import { type ErrorCode, MissiveError } from "../core/errors.ts";
import { type Card, decodeCard } from "../keys/card.ts";
import type { SecureChannel } from "../session/channel.ts";
import {
  decodePrekeyBundle,
  encodePrekeyUpload,
  type PrekeyBundle,
  type PrekeyUpload,
} from "../stp/ratchet/mod.ts";
import { Outbox } from "./_outbox.ts";
import {
  decodeRelayMessages,
  encodeRequest,
  LINK_STATUSES,
  type ListEntry,
  MAX_REQUEST_ID,
  type ReceiveMode,
  type RelayDelivery,
  type RelayMessage,
  type RelayReceipt,
  type RelayRequest,
  type RelayResponse,
  type RelayStatus,
  type Target,
} from "./protocol.ts";

/** Default time to wait for a response. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/** The error code a refusal status maps to (SPEC §23.4). */
const STATUS_CODES: Record<Exclude<RelayStatus, "ok">, ErrorCode> = {
  malformed: "malformed",
  "unknown-op": "refused",
  "not-registered": "refused",
  collision: "refused",
  "unknown-recipient": "refused",
  "too-large": "too-large",
  quota: "refused",
  forbidden: "refused",
  "unknown-message": "refused",
  "not-found": "refused",
  unavailable: "network",
  "rate-limited": "refused",
  "recipient-full": "refused",
  "store-full": "refused",
  "directory-full": "refused",
  busy: "network",
  idle: "network",
  "over-budget": "network",
  "invalid-prekeys": "key",
};

/**
 * A MissiveError carrying the relay's status. `detail` is the relay's text, a peer's
 * words: whatever shows the message on a terminal passes it through the sanitiser.
 */
export class RelayRefusal extends MissiveError {
  /** The relay's refusal status (SPEC §23.4); the error's `code` is derived from it. */
  readonly status: Exclude<RelayStatus, "ok">;
  /** The relay's reason, for people; absent when it gave none. */
  readonly detail?: string;
  /** The refusal of request `op` (named in the message) with the relay's `status`. */
  constructor(op: string, status: Exclude<RelayStatus, "ok">, detail: string | undefined) {
    super(STATUS_CODES[status], `relay refused ${op}: ${status}${detail ? ` (${detail})` : ""}`);
    this.status = status;
    if (detail !== undefined) this.detail = detail;
  }
}

/** A looked-up card and, when the user is online and visible, their presence. */
export interface LookupResult {
  /**
   * The card, decoded (its self-signature verified) and checked to be the one asked for.
   * It is the relay's answer, not a trusted key: compare its fingerprint out of band.
   */
  card: Card;
  /** The user's presence; absent when they are offline or invisible. */
  presence?: PresenceStatus;
}

/** What the relay pushes on a receiving link: a delivery, or a receipt. */
export type Incoming =
  | { kind: "delivery"; delivery: RelayDelivery }
  | { kind: "receipt"; receipt: RelayReceipt };

interface Waiter {
  op: string;
  resolve: (r: RelayResponse) => void;
  reject: (e: unknown) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** A connection to a relay. A class: it owns the channel's reader and pending requests. */
export class RelayClient {
  readonly #channel: SecureChannel;
  readonly #outbox: Outbox;
  readonly #timeoutMs: number;
  readonly #waiters = new Map<number, Waiter>();
  readonly #incoming: Incoming[] = [];
  #wake?: () => void;
  #nextRid = 1;
  #keepAlive: ReturnType<typeof setTimeout> | undefined;
  #state: "open" | "closed" = "open";
  #failure?: MissiveError;
  readonly #reader: Promise<void>;

  /**
   * A client over `channel`, a session already established with the relay (its peer is
   * the relay's card); `connectRelay` makes both. Starts reading at once. A request with
   * no answer within `timeoutMs` (default `DEFAULT_REQUEST_TIMEOUT_MS`) fails `timeout`.
   */
  constructor(channel: SecureChannel, options: { timeoutMs?: number } = {}) {
    this.#channel = channel;
    this.#outbox = new Outbox(channel);
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.#reader = this.#read();
  }

  /** The relay's card, proven by the session. */
  get relay(): Card {
    return this.#channel.peer;
  }

  async #read(): Promise<void> {
    try {
      for await (const bytes of this.#channel.messages()) {
        for (const m of decodeRelayMessages(bytes)) this.#onMessage(m);
      }
      this.#fail(new MissiveError("network", "relay closed the connection"));
    } catch (e) {
      this.#fail(
        e instanceof MissiveError
          ? e
          : new MissiveError("network", `relay connection failed: ${(e as Error)?.message ?? e}`),
      );
    }
  }

  #onMessage(m: RelayMessage): void {
    if (m.kind === "response") {
      const r = m.response;
      if (r.rid === 0 && r.status !== "ok" && LINK_STATUSES.includes(r.status)) {
        // The relay is ending this link (SPEC §23.4): every request fails with why.
        this.#fail(new RelayRefusal("the link", r.status, r.detail));
        return;
      }
      const w = this.#waiters.get(m.response.rid);
      if (!w) return; // a late answer to a request that timed out
      this.#waiters.delete(m.response.rid);
      clearTimeout(w.timer);
      w.resolve(m.response);
    } else if (m.kind === "delivery") {
      this.#incoming.push({ kind: "delivery", delivery: m.delivery });
      this.#wake?.();
    } else if (m.kind === "receipt") {
      this.#incoming.push({ kind: "receipt", receipt: m.receipt });
      this.#wake?.();
    } else {
      throw new MissiveError("malformed", "relay sent a request to a client");
    }
  }

  #fail(e: MissiveError): void {
    if (!this.#failure) this.#failure = e;
    for (const [rid, w] of this.#waiters) {
      clearTimeout(w.timer);
      w.reject(this.#failure);
      this.#waiters.delete(rid);
    }
    this.#wake?.();
  }

  async #request(request: RelayRequest): Promise<RelayResponse> {
    if (this.#state !== "open") throw new MissiveError("usage", "relay client: closed");
    if (this.#failure) throw this.#failure;
    const rid = this.#nextRid;
    this.#nextRid = this.#nextRid >= MAX_REQUEST_ID ? 1 : this.#nextRid + 1;
    const answer = new Promise<RelayResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(rid);
        reject(new MissiveError("timeout", `relay: no answer to ${request.op} in time`));
      }, this.#timeoutMs);
      this.#waiters.set(rid, { op: request.op, resolve, reject, timer });
    });
    answer.catch(() => {}); // observed below, unless the send itself fails first
    try {
      await this.#outbox.send(encodeRequest(rid, request));
    } catch (e) {
      const w = this.#waiters.get(rid);
      if (w) clearTimeout(w.timer);
      this.#waiters.delete(rid);
      throw e;
    }
    const response = await answer;
    if (response.status !== "ok") {
      throw new RelayRefusal(request.op, response.status, response.detail);
    }
    return response;
  }

  /** Registers this client's card (the one the session proved); returns its ID. */
  async register(): Promise<Bytes> {
    const r = await this.#request({ op: "register" });
    if (!r.id) throw new MissiveError("malformed", "relay: register answer without an ID");
    return r.id;
  }

  /** Looks up a card by address or ID, checking that it is the one asked for. */
  async lookup(target: Target): Promise<LookupResult> {
    const r = await this.#request({ op: "lookup", target });
    if (!r.card) throw new MissiveError("malformed", "relay: lookup answer without a card");
    const card = await this.#checkedCard(r.card, target, "a lookup");
    return r.presence === undefined ? { card } : { card, presence: r.presence };
  }

  /**
   * Publishes this user's prekeys (SPEC §23.13): the relay checks them against the card
   * the session proved. Resolves with the one-time prekeys it now holds; mark the upload
   * published (`PrekeyKeyring.markPublished`) once this resolves.
   */
  async publishPrekeys(upload: PrekeyUpload): Promise<number> {
    const r = await this.#request({ op: "publish-prekeys", upload: encodePrekeyUpload(upload) });
    return r.count ?? 0;
  }

  /**
   * Fetches a user's card and prekey bundle, taking one of its one-time prekeys (none
   * when they ran out). The card is checked to be the one asked for and the bundle to be
   * its owner's; `startConversation` checks the signature and age.
   */
  async fetchPrekeys(target: Target): Promise<{ card: Card; bundle: PrekeyBundle }> {
    const r = await this.#request({ op: "fetch-prekeys", target });
    if (!r.card || !r.prekeys) {
      throw new MissiveError("malformed", "relay: fetch-prekeys answer without card or bundle");
    }
    const card = await this.#checkedCard(r.card, target, "fetch-prekeys");
    const bundle = decodePrekeyBundle(r.prekeys);
    if (toHex(bundle.identityId) !== toHex(card.id)) {
      throw new MissiveError("auth-failed", "relay answered fetch-prekeys with another's bundle");
    }
    return { card, bundle };
  }

  async #checkedCard(bytes: Uint8Array, target: Target, op: string): Promise<Card> {
    const card = await decodeCard(await getCryptoProvider(), bytes);
    const matches = typeof target === "string"
      ? card.address === lowerAscii(target)
      : toHex(card.id) === toHex(target);
    if (!matches) {
      throw new MissiveError("auth-failed", `relay answered ${op} with somebody else's card`);
    }
    return card;
  }

  /** Who is online and visible. */
  async list(): Promise<ListEntry[]> {
    return (await this.#request({ op: "list" })).entries ?? [];
  }

  /** Sets this user's presence (kept by the relay across connections). */
  async setPresence(status: PresenceStatus, note?: string): Promise<void> {
    await this.#request(
      note === undefined ? { op: "presence", status } : {
        op: "presence",
        status,
        note,
      },
    );
  }

  /**
   * Hands a sealed envelope to the relay for `to`; resolves with the relay message ID
   * once the relay has stored it durably. With `receipt`, the relay queues a receipt for
   * this user when the recipient acknowledges the message (SPEC §23.7.1; take it with
   * `receive("receipts")` or `"all"`).
   */
  async send(to: Target, envelope: Bytes, options: { receipt?: boolean } = {}): Promise<number> {
    const r = await this.#request(
      options.receipt ? { op: "send", to, envelope, receipt: true } : { op: "send", to, envelope },
    );
    if (r.count === undefined) throw new MissiveError("malformed", "relay: send answer without ID");
    return r.count;
  }

  /**
   * Asks for deliveries: this user's messages (the default; this link takes them over
   * from any other), its receipts, or both (SPEC §23.3). Resolves with how many were
   * waiting.
   */
  async receive(mode: ReceiveMode = "messages"): Promise<number> {
    return (await this.#request(mode === "messages" ? { op: "receive" } : { op: "receive", mode }))
      .count ?? 0;
  }

  /** Acknowledges a delivery: the relay deletes it (SPEC §23.7). */
  async ack(message: number, receipt: ReceiptStatus = "accepted"): Promise<void> {
    await this.#request({ op: "ack", message, receipt });
  }

  /** The relay's counters. */
  async stats(): Promise<Record<string, number>> {
    return (await this.#request({ op: "stats" })).stats ?? {};
  }

  /**
   * A keep-alive request (SPEC §23.3): the relay counts the link as active. Resolves
   * with the relay's idle timeout in ms (0: it has none).
   */
  async keepAlive(): Promise<number> {
    return (await this.#request({ op: "keepalive" })).count ?? 0;
  }

  /**
   * Keeps the link from timing out while it stays open: asks once for the relay's idle
   * timeout, then sends a keep-alive every third of it. A relay without idle timeout, or
   * one that does not know the op, needs none. Stops when the client closes or fails.
   */
  async keepAliveWhileOpen(): Promise<void> {
    let idle: number;
    try {
      idle = await this.keepAlive();
    } catch (e) {
      if (e instanceof RelayRefusal && e.status === "unknown-op") return;
      throw e;
    }
    if (idle <= 0) return;
    const every = Math.max(1000, Math.floor(idle / 3));
    const tick = () => {
      this.#keepAlive = undefined;
      if (this.#state !== "open" || this.#failure) return;
      this.keepAlive().then(() => {
        if (this.#state === "open") this.#keepAlive = setTimeout(tick, every);
      }, () => {});
    };
    this.#keepAlive = setTimeout(tick, every);
  }

  /**
   * Deliveries as they arrive, in the relay's order; ends when the connection ends
   * (throwing the reason unless the client was closed). Call `receive()` first. A link
   * that asked for receipts reads `incoming()` instead (receipts are skipped here).
   */
  async *deliveries(): AsyncGenerator<RelayDelivery> {
    for await (const item of this.incoming()) if (item.kind === "delivery") yield item.delivery;
  }

  /** Deliveries and receipts as they arrive, in the relay's order (see `deliveries`). */
  async *incoming(): AsyncGenerator<Incoming> {
    for (;;) {
      const next = this.#incoming.shift();
      if (next) {
        yield next;
        continue;
      }
      if (this.#state === "closed") return;
      if (this.#failure) throw this.#failure;
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = undefined;
    }
  }

  /** Deliveries (and receipts) already received and not yet taken. */
  get buffered(): number {
    return this.#incoming.length;
  }

  /** Closes the channel; idempotent. */
  async close(): Promise<void> {
    if (this.#state === "closed") return;
    this.#state = "closed";
    clearTimeout(this.#keepAlive);
    this.#wake?.();
    await this.#channel.close();
    this.#fail(new MissiveError("network", "relay client: closed"));
    await this.#reader.catch(() => {});
  }
}
