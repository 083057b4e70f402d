/**
 * The chat's model (DESIGN §7a, SPEC §27): friends and requests, conversations (one
 * ratchet per friend, STP 9), delivery states from receipts, presence, and the encrypted
 * history — behind verbs a user interface calls (`request`, `accept`, `refuse`, `send`,
 * `forward`, `unfriend`, `setStatus`, `friends`, `online`, `lines`) and events it shows. The network
 * is a `Carrier` (relay or LAN); what cannot go now waits in the history's outbox.
 * @module
 */
import { type Bytes, equalBytes, randomBytes, toHex } from "../core/bytes.ts";
import { isMissiveError, MissiveError } from "../core/errors.ts";
import { getCryptoProvider } from "../crypto/mod.ts";
import type { CryptoProvider } from "../crypto/provider.ts";
import { type Card, decodeCard } from "../keys/card.ts";
import type { Identity } from "../keys/identity.ts";
import { normalizeAddress } from "../keys/address.ts";
import type { PresenceStatus } from "../amp/presence.ts";
import { openFailureStatus, type ReceiptStatus } from "../amp/receipt.ts";
import {
  Conversation,
  decodePrekeyBundle,
  encodePrekeyBundle,
  PrekeyKeyring,
  startConversation,
} from "../stp/ratchet/mod.ts";
import type { Carrier, CarrierSink, OnlineEntry, Sender } from "./carrier.ts";
import type { History, HistoryWrite } from "./history.ts";
import {
  type ChatRecord,
  decodeRecord,
  encodeRecord,
  type FriendRecord,
  type FriendState,
  LINE_STATES,
  type LineRecord,
  type LineState,
} from "./_records.ts";
import { type ChatMessage, encodeChatMessage, MAX_RECEIPT_NONCES } from "./wire.ts";
import { type Incoming, openIncoming, sealRequestEnvelope } from "./_incoming.ts";

export type { FriendState, LineState } from "./_records.ts";

/** A line of a conversation, with its row in the history. */
export interface ChatLine extends LineRecord {
  row: number;
}

/** A friend (or a pending request) as a user interface shows it. */
export interface FriendView {
  address: string;
  state: FriendState;
  /** "offline" unless the carrier lists them now. */
  presence: PresenceStatus | "offline";
  /** Their presence note (sent to friends only), or their request's note. */
  note?: string;
}

/** What the model reports. Every string in it may be a peer's: sanitise before showing. */
export type ChatEvent =
  | { type: "line"; line: ChatLine }
  | { type: "line-state"; line: ChatLine }
  | { type: "request"; address: string; note?: string }
  | { type: "accepted"; address: string; by: "you" | "them" }
  | { type: "refused"; address: string; by: "you" | "them"; reason?: string }
  | { type: "ended"; address: string; by: "you" | "them"; reason?: string }
  | { type: "presence"; address: string; status: PresenceStatus; note?: string }
  | { type: "link"; up: boolean; detail: string }
  | { type: "notice"; text: string }
  | { type: "problem"; reason: string };

/** Options of `ChatModel.open`. */
export interface ChatModelOptions {
  crypto?: CryptoProvider;
  now?: () => number;
  /** How often the outbox is retried while it holds anything (ms; default 2000). */
  retryMs?: number;
}

interface Friend extends FriendRecord {
  row: number;
  cardObject: Card;
  live?: Conversation;
}

const ORDER: Record<LineState, number> = { queued: 0, failed: 0, sent: 1, delivered: 2, read: 3 };

/** Lines one `forward` sends at most (SPEC §27.4). */
export const MAX_FORWARD = 100;

/** Orders identity IDs as unsigned big-endian numbers (the crossing-request tie-break). */
function compareIds(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i] - b[i];
  }
  return a.length - b.length;
}

/** The chat of one identity. A class: it owns the history, the carrier and the state. */
export class ChatModel {
  readonly identity: Identity;
  readonly #crypto: CryptoProvider;
  readonly #history: History;
  readonly #carrier: Carrier;
  readonly #now: () => number;
  readonly #retryMs: number;
  readonly #friends = new Map<string, Friend>();
  readonly #lines: ChatLine[] = [];
  readonly #byNonce = new Map<string, ChatLine>();
  readonly #outbox = new Map<number, ChatRecord & { type: "outbox" }>();
  readonly #listeners = new Set<(e: ChatEvent) => void>();
  #keyring!: PrekeyKeyring;
  #keyringRow = 0;
  #settingsRow = 0;
  #status: PresenceStatus = "online";
  #statusNote?: string;
  #view?: string;
  #lock: Promise<unknown> = Promise.resolve();
  #flushing?: Promise<void>;
  #again = false;
  #timer?: ReturnType<typeof setInterval>;
  #online: OnlineEntry[] = [];
  #closed = false;

  private constructor(
    identity: Identity,
    crypto: CryptoProvider,
    history: History,
    carrier: Carrier,
    options: ChatModelOptions,
  ) {
    this.identity = identity;
    this.#crypto = crypto;
    this.#history = history;
    this.#carrier = carrier;
    this.#now = options.now ?? Date.now;
    this.#retryMs = options.retryMs ?? 2000;
  }

  /** Loads the history (restoring every conversation) and starts the carrier. */
  static async open(
    identity: Identity,
    history: History,
    carrier: Carrier,
    options: ChatModelOptions = {},
  ): Promise<ChatModel> {
    const crypto = options.crypto ?? await getCryptoProvider();
    const model = new ChatModel(identity, crypto, history, carrier, options);
    await model.#load();
    return model;
  }

  /** Starts the network side: the carrier, presence, the outbox's retries. */
  async start(): Promise<void> {
    await this.#carrier.start(this.#sink());
    await this.#carrier.setPresence(this.#status).catch(() => {});
    this.#timer = setInterval(() => {
      if (this.#outbox.size > 0) void this.flush();
    }, this.#retryMs);
    void this.flush();
  }

  /** Listens to events; returns the function that stops listening. */
  on(listener: (e: ChatEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(e: ChatEvent): void {
    for (const l of this.#listeners) l(e);
  }

  /** Runs `f` after every earlier state change: one writer at a time. */
  #exclusive<T>(f: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(f, f);
    this.#lock = run.catch(() => {});
    return run;
  }

  async #load(): Promise<void> {
    for (const row of await this.#history.all()) {
      const r = decodeRecord(row.plain);
      if (r.type === "settings") {
        this.#settingsRow = row.id;
        this.#status = r.status;
        this.#statusNote = r.note;
      } else if (r.type === "keyring") {
        this.#keyringRow = row.id;
        this.#keyring = PrekeyKeyring.restore(r.keyring);
      } else if (r.type === "friend") {
        const { type: _, ...f } = r;
        const friend: Friend = {
          ...f,
          row: row.id,
          cardObject: await decodeCard(this.#crypto, f.card),
        };
        if (f.conversation) {
          friend.live = await Conversation.restore(f.conversation, { crypto: this.#crypto });
        }
        this.#friends.set(f.address, friend);
      } else if (r.type === "line") {
        const { type: _, ...l } = r;
        this.#addLine({ ...l, row: row.id });
      } else {
        this.#outbox.set(row.id, r);
      }
    }
    if (!this.#keyring) {
      this.#keyring = await PrekeyKeyring.create(this.identity, {
        oneTime: 20,
        crypto: this.#crypto,
      });
      this.#keyringRow = this.#history.reserve();
      await this.#history.write([this.#keyringWrite()]);
    }
    if (await this.#keyring.rotate(this.identity, { crypto: this.#crypto, now: this.#now() })) {
      await this.#history.write([this.#keyringWrite()]);
    }
  }

  #addLine(line: ChatLine): void {
    this.#lines.push(line);
    if (line.nonce) this.#byNonce.set(`${line.direction}:${toHex(line.nonce)}`, line);
  }

  #keyringWrite(): HistoryWrite {
    return {
      id: this.#keyringRow,
      put: encodeRecord({ type: "keyring", keyring: this.#keyring.serialize() }),
    };
  }

  #friendWrite(f: Friend): HistoryWrite {
    const { row: _r, cardObject: _c, live, ...record } = f;
    if (live && live.phase !== "closed") record.conversation = live.serialize();
    else delete record.conversation;
    return { id: f.row, put: encodeRecord({ type: "friend", ...record }) };
  }

  #lineWrite(l: ChatLine): HistoryWrite {
    const { row, ...record } = l;
    return { id: row, put: encodeRecord({ type: "line", ...record }), time: l.time };
  }

  #outboxWrite(row: number, peer: string, envelope: Bytes, line?: number): HistoryWrite {
    const record: ChatRecord & { type: "outbox" } = {
      type: "outbox",
      peer,
      envelope,
      ...(line !== undefined ? { line } : {}),
    };
    this.#outbox.set(row, record);
    return { id: row, put: encodeRecord(record) };
  }

  #friend(address: string, states?: readonly FriendState[]): Friend {
    const f = this.#friends.get(normalizeAddress(address));
    if (!f) throw new MissiveError("usage", `no friend or request ${address} (see /friends)`);
    if (states && !states.includes(f.state)) {
      throw new MissiveError("usage", `${f.address}: ${f.state}, not ${states.join(" or ")}`);
    }
    return f;
  }

  /** A friend (state `friend`), or a `usage` error that says what `address` is instead. */
  #friendOnly(address: string, what: string): Friend {
    const f = this.#friends.get(normalizeAddress(address));
    if (f?.state === "friend") return f;
    const is = f ? `not a friend (${f.state})` : "not a friend (no request either way)";
    throw new MissiveError("usage", `${what} ${normalizeAddress(address)}: ${is}`);
  }

  // ---- verbs -------------------------------------------------------------------------

  /** Sends a friend request with an optional note (SPEC §27.4). */
  request(address: string, note?: string): Promise<void> {
    return this.#exclusive(async () => {
      const to = normalizeAddress(address);
      if (to === this.identity.card.address) throw new MissiveError("usage", "that is you");
      const existing = this.#friends.get(to);
      if (existing?.state === "friend") {
        throw new MissiveError("usage", `${to} is a friend already`);
      }
      if (existing?.state === "request-received") {
        // They asked first: asking back is consent (SPEC §27.4, crossing requests).
        this.#emit({ type: "notice", text: `${to} had asked you: accepting their request` });
        return await this.#acceptNow(existing, "you");
      }
      const card = await this.#carrier.lookup(to);
      const requestId = randomBytes(16);
      const bundle = encodePrekeyBundle(this.#keyring.bundle());
      const envelope = await sealRequestEnvelope(this.identity, card, {
        kind: "request",
        requestId,
        ...(note ? { note } : {}),
        bundle,
      });
      const friend: Friend = {
        address: card.address,
        card: card.bytes,
        cardObject: card,
        state: "request-sent",
        requestId,
        ...(note ? { note } : {}),
        since: this.#now(),
        row: existing?.row ?? this.#history.reserve(),
      };
      existing?.live?.close();
      this.#friends.set(card.address, friend);
      await this.#history.write([
        this.#friendWrite(friend),
        this.#keyringWrite(),
        this.#outboxWrite(this.#history.reserve(), card.address, envelope),
      ]);
      this.#emit({ type: "notice", text: `request sent to ${card.address}` });
    }).then(() => this.flush());
  }

  /** Accepts a received request: starts the conversation from the requester's bundle. */
  accept(address: string): Promise<void> {
    return this.#exclusive(() =>
      this.#acceptNow(this.#friend(address, ["request-received"]), "you")
    )
      .then(() => this.flush());
  }

  /** Starts the conversation from `f`'s bundle and sends `accept` in it (under the lock). */
  async #acceptNow(f: Friend, by: "you" | "them"): Promise<void> {
    const bundle = decodePrekeyBundle(f.bundle!);
    f.live = await startConversation(this.identity, {
      peer: f.cardObject,
      bundle,
      crypto: this.#crypto,
    });
    f.state = "friend";
    delete f.bundle;
    await this.#sendIn(f, { kind: "accept", requestId: f.requestId });
    this.#emit({ type: "accepted", address: f.address, by });
    await this.#sendPresenceTo(f);
  }

  /** Refuses a received request; the requester is told (a signed refusal). */
  refuse(address: string, reason?: string): Promise<void> {
    return this.#exclusive(async () => {
      const f = this.#friend(address, ["request-received"]);
      const envelope = await sealRequestEnvelope(this.identity, f.cardObject, {
        kind: "refuse",
        requestId: f.requestId,
        ...(reason ? { reason } : {}),
      });
      f.state = "refused";
      delete f.bundle;
      await this.#history.write([
        this.#friendWrite(f),
        this.#outboxWrite(this.#history.reserve(), f.address, envelope),
      ]);
      this.#emit({ type: "refused", address: f.address, by: "you", ...(reason ? { reason } : {}) });
    }).then(() => this.flush());
  }

  /** Sends a line to a friend. */
  send(address: string, text: string): Promise<ChatLine> {
    return this.#exclusive(async () => {
      const f = this.#friend(address, ["friend"]);
      const line: ChatLine = {
        row: this.#history.reserve(),
        peer: f.address,
        direction: "out",
        author: this.identity.card.address,
        text,
        time: this.#now(),
        state: "queued",
        verified: true,
      };
      await this.#sendIn(f, { kind: "text", text }, line);
      return line;
    }).finally(() => void this.flush());
  }

  /**
   * Forwards the last `count` lines of the conversation with `from` to friend `to`: the
   * receiver sees who forwarded them and who wrote them (not verified: SPEC §27.4).
   */
  forward(from: string, to: string, count = 1): Promise<number> {
    return this.#exclusive(async () => {
      if (!Number.isSafeInteger(count) || count < 1 || count > MAX_FORWARD) {
        throw new MissiveError("usage", `forward: N is 1..${MAX_FORWARD}, not ${count}`);
      }
      const source = this.#friendOnly(from, "cannot forward from");
      const target = this.#friendOnly(to, "cannot forward to");
      const lines = this.#lines.filter((l) => l.peer === source.address).slice(-count);
      if (!lines.length) {
        throw new MissiveError("usage", `no lines with ${source.address} to forward`);
      }
      for (const l of lines) {
        const line: ChatLine = {
          row: this.#history.reserve(),
          peer: target.address,
          direction: "out",
          author: l.author,
          text: l.text,
          time: this.#now(),
          state: "queued",
          verified: false,
          forwardedBy: this.identity.card.address,
        };
        await this.#sendIn(target, {
          kind: "forward",
          text: l.text,
          author: l.author,
          time: l.time,
        }, line);
      }
      return lines.length;
    }).finally(() => void this.flush());
  }

  /**
   * Ends a friendship (SPEC §27.4): `bye` goes as the conversation's last message, then
   * the conversation is closed and its ratchet state erased. The lines stay in the
   * history; either side may `request` again (a new conversation).
   */
  unfriend(address: string, reason?: string): Promise<void> {
    return this.#exclusive(async () => {
      const f = this.#friendOnly(address, "cannot unfriend");
      await this.#sendIn(f, { kind: "bye", ...(reason ? { reason } : {}) });
      this.#end(f);
      await this.#history.write([this.#friendWrite(f)]);
      this.#emit({ type: "ended", address: f.address, by: "you", ...(reason ? { reason } : {}) });
    }).finally(() => void this.flush());
  }

  /** Closes `f`'s conversation (its state is then not stored) and marks it ended. */
  #end(f: Friend): void {
    f.live?.close();
    delete f.live;
    delete f.presence;
    delete f.presenceNote;
    f.state = "ended";
  }

  /** Sets our presence: the carrier's, and (but invisible) a note to every friend. */
  setStatus(status: PresenceStatus, note?: string): Promise<void> {
    return this.#exclusive(async () => {
      this.#status = status;
      this.#statusNote = note;
      if (!this.#settingsRow) this.#settingsRow = this.#history.reserve();
      await this.#history.write([{
        id: this.#settingsRow,
        put: encodeRecord({ type: "settings", status, ...(note ? { note } : {}) }),
      }]);
      await this.#carrier.setPresence(status).catch((e) =>
        this.#emit({ type: "problem", reason: `presence not set: ${(e as Error).message}` })
      );
      for (const f of this.#friends.values()) {
        if (f.state === "friend") await this.#sendPresenceTo(f);
      }
    }).finally(() => void this.flush());
  }

  async #sendPresenceTo(f: Friend): Promise<void> {
    if (this.#status === "invisible") return;
    const note = this.#statusNote;
    await this.#sendIn(f, { kind: "presence", status: this.#status, ...(note ? { note } : {}) });
  }

  /** The conversation now shown: its unread lines are read (a receipt goes to the friend). */
  view(address: string | undefined): Promise<void> {
    this.#view = address === undefined ? undefined : normalizeAddress(address);
    if (!this.#view) return Promise.resolve();
    return this.#exclusive(async () => {
      const f = this.#friends.get(this.#view!);
      if (!f || f.state !== "friend") return;
      const unread = this.#lines.filter((l) =>
        l.peer === f.address && l.direction === "in" && l.state !== "read" && l.nonce
      );
      for (let i = 0; i < unread.length; i += MAX_RECEIPT_NONCES) {
        const chunk = unread.slice(i, i + MAX_RECEIPT_NONCES);
        for (const l of chunk) l.state = "read";
        await this.#sendIn(
          f,
          {
            kind: "receipt",
            state: "read",
            nonces: chunk.map((l) => l.nonce!),
          },
          undefined,
          chunk.map((l) => this.#lineWrite(l)),
        );
      }
    }).finally(() => void this.flush());
  }

  /** Friends and requests, with presence as the carrier lists it now. */
  async friends(): Promise<FriendView[]> {
    await this.online().catch(() => {});
    return [...this.#friends.values()].sort((a, b) => a.address < b.address ? -1 : 1).map((f) => {
      const listed = this.#online.find((o) => o.kind === "user" && o.address === f.address);
      const presence = listed
        ? f.presence && f.presence !== "invisible" ? f.presence : listed.status
        : "offline";
      const note = f.state === "friend" ? f.presenceNote : f.note;
      return { address: f.address, state: f.state, presence, ...(note ? { note } : {}) };
    });
  }

  /** Who is online (relay directory or LAN peers); invisible users are never listed. */
  async online(): Promise<OnlineEntry[]> {
    this.#online = await this.#carrier.list();
    return this.#online;
  }

  /** The last `count` lines with `address` (all conversations when undefined). */
  lines(address?: string, count = 20): ChatLine[] {
    const peer = address === undefined ? undefined : normalizeAddress(address);
    return this.#lines.filter((l) => peer === undefined || l.peer === peer).slice(-count);
  }

  /** Messages waiting for the network. */
  get queued(): number {
    return this.#outbox.size;
  }

  /** A conversation as plain data (`missive chat --export`). */
  exportConversation(address: string): Record<string, unknown> {
    const peer = normalizeAddress(address);
    const f = this.#friends.get(peer);
    return {
      version: 1,
      self: this.identity.card.address,
      peer,
      state: f?.state ?? null,
      lines: this.#lines.filter((l) => l.peer === peer).map((l) => ({
        time: new Date(l.time).toISOString(),
        direction: l.direction,
        author: l.author,
        text: l.text,
        state: l.state,
        verified: l.verified,
        ...(l.forwardedBy ? { forwardedBy: l.forwardedBy } : {}),
      })),
    };
  }

  /**
   * Encrypts a chat message in `f`'s conversation and stores, in one transaction, the
   * advanced ratchet state, the line (if any) and the envelope in the outbox (SPEC §25.8:
   * the state is stored before the message leaves).
   */
  async #sendIn(
    f: Friend,
    m: ChatMessage,
    line?: ChatLine,
    extra: HistoryWrite[] = [],
  ): Promise<void> {
    if (!f.live) throw new MissiveError("usage", `${f.address}: no conversation`);
    const body = encodeChatMessage(m);
    const { envelope, nonce } = await f.live.encrypt({ ampType: 8, ampVersion: 1, body });
    const writes = [this.#friendWrite(f), ...extra];
    if (line) {
      line.nonce = nonce;
      this.#addLine(line);
      writes.push(this.#lineWrite(line));
    }
    writes.push(this.#outboxWrite(this.#history.reserve(), f.address, envelope, line?.row));
    await this.#history.write(writes);
    if (line) this.#emit({ type: "line", line });
  }

  /**
   * Hands every queued envelope to the carrier, in order; a peer that fails waits. A call
   * during a flush makes it run once more (what was queued meanwhile goes too).
   */
  flush(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#flushing) {
      this.#again = true;
      return this.#flushing;
    }
    this.#flushing = (async () => {
      do {
        this.#again = false;
        await this.#flushOnce();
      } while (this.#again && !this.#closed);
    })().catch((e) => this.#emit({ type: "problem", reason: `outbox: ${(e as Error).message}` }))
      .finally(() => (this.#flushing = undefined));
    return this.#flushing;
  }

  async #flushOnce(): Promise<void> {
    const blocked = new Set<string>();
    for (const [row, item] of [...this.#outbox]) {
      if (blocked.has(item.peer) || this.#closed || !this.#outbox.has(row)) continue;
      try {
        await this.#carrier.send(item.peer, item.envelope);
      } catch (e) {
        if (!isMissiveError(e)) throw e;
        if (e.code === "network" || e.code === "timeout" || e.code === "session") {
          blocked.add(item.peer);
          continue;
        }
        this.#emit({ type: "problem", reason: `to ${item.peer}: ${e.message}` });
        await this.#exclusive(() => this.#sent(row, item.line, "failed"));
        continue;
      }
      await this.#exclusive(() => this.#sent(row, item.line, "sent"));
    }
  }

  async #sent(row: number, lineRow: number | undefined, state: LineState): Promise<void> {
    this.#outbox.delete(row);
    const writes: HistoryWrite[] = [{ delete: row }];
    const line = lineRow === undefined ? undefined : this.#lines.find((l) => l.row === lineRow);
    if (line && ORDER[state] >= ORDER[line.state] && line.state !== state) {
      line.state = state;
      writes.push(this.#lineWrite(line));
    }
    if (this.#closed) return;
    await this.#history.write(writes);
    if (line?.state === state) this.#emit({ type: "line-state", line });
  }

  // ---- incoming ----------------------------------------------------------------------

  #sink(): CarrierSink {
    return {
      envelope: (from, envelope) => this.#exclusive(() => this.#receive(from, envelope)),
      link: (up, detail) => {
        this.#emit({ type: "link", up, detail });
        if (up) void this.flush();
      },
      reachable: () => void this.flush(),
      problem: (reason) => this.#emit({ type: "problem", reason }),
      notice: (text) => this.#emit({ type: "notice", text }),
    };
  }

  async #receive(from: Sender, envelope: Bytes): Promise<ReceiptStatus> {
    if (this.#closed) throw new MissiveError("network", "chat: closed");
    let incoming: Incoming;
    try {
      incoming = await openIncoming(
        { identity: this.identity, crypto: this.#crypto, keyring: this.#keyring, now: this.#now() },
        from,
        envelope,
        (address) => this.#friends.get(address),
      );
    } catch (e) {
      if (!isMissiveError(e)) throw e;
      // A redelivered message the ratchet already read: acknowledged, not shown again.
      if (e.code === "replay" && from.address && this.#friends.get(from.address)?.live) {
        return "accepted";
      }
      this.#emit({ type: "problem", reason: `from ${from.address}: ${e.message}` });
      return openFailureStatus(e);
    }
    try {
      await this.#handle(incoming);
    } catch (e) {
      if (!isMissiveError(e)) throw e;
      this.#emit({ type: "problem", reason: `from ${from.address}: ${e.message}` });
      return "unparsable";
    }
    return "accepted";
  }

  /** One incoming message, routed by how it came: sealed, opening a conversation, or in one. */
  async #handle(incoming: Incoming): Promise<void> {
    if (incoming.via === "sealed") return await this.#handleSealed(incoming.card, incoming.message);
    if (incoming.via === "new-conversation") return await this.#handleNewConversation(incoming);
    const f = incoming.friend as Friend;
    const writes: HistoryWrite[] = [this.#friendWrite(f)];
    const m = incoming.message;
    if (!m) {
      await this.#history.write(writes); // the ratchet advanced all the same
      throw incoming.bodyError!;
    }
    switch (m.kind) {
      case "text":
      case "forward":
        return await this.#receivedLine(f, m, incoming.nonce, incoming.time, writes);
      case "receipt":
        return await this.#receivedReceipt(f, m, writes);
      case "presence":
        return await this.#receivedPresence(f, m);
      case "bye":
        return await this.#receivedBye(f, m, writes);
      default:
        await this.#history.write(writes); // the ratchet advanced all the same
        throw new MissiveError("malformed", `a ${m.kind} inside a conversation`);
    }
  }

  /** A sealed message: only friend requests and refusals travel outside a conversation. */
  async #handleSealed(card: Card, m: ChatMessage): Promise<void> {
    if (m.kind === "request") return await this.#receivedRequest(card, m);
    if (m.kind === "refuse") return await this.#receivedRefusal(card, m);
    throw new MissiveError(
      "malformed",
      `a sealed ${m.kind}: only requests and refusals travel sealed`,
    );
  }

  async #receivedRequest(card: Card, m: ChatMessage & { kind: "request" }): Promise<void> {
    const existing = this.#friends.get(card.address);
    if (existing && equalBytes(existing.requestId, m.requestId)) return; // a redelivery
    if (existing?.state === "request-sent" && equalBytes(existing.cardObject.id, card.id)) {
      return await this.#crossed(existing, card, m);
    }
    existing?.live?.close();
    const f: Friend = {
      address: card.address,
      card: card.bytes,
      cardObject: card,
      state: "request-received",
      requestId: m.requestId,
      bundle: m.bundle,
      ...(m.note ? { note: m.note } : {}),
      since: this.#now(),
      row: existing?.row ?? this.#history.reserve(),
    };
    this.#friends.set(f.address, f);
    await this.#history.write([this.#friendWrite(f)]);
    this.#emit({ type: "request", address: f.address, ...(m.note ? { note: m.note } : {}) });
  }

  async #receivedRefusal(card: Card, m: ChatMessage & { kind: "refuse" }): Promise<void> {
    const f = this.#friends.get(card.address);
    if (!f || f.state !== "request-sent" || !equalBytes(f.requestId, m.requestId)) {
      throw new MissiveError("session", "a refusal of no request of ours");
    }
    f.state = "refused-by-them";
    await this.#history.write([this.#friendWrite(f)]);
    this.#emit({
      type: "refused",
      address: f.address,
      by: "them",
      ...(m.reason ? { reason: m.reason } : {}),
    });
  }

  /** The first message of a conversation the ratchet authenticated: the accept of our request. */
  async #handleNewConversation(
    incoming: Incoming & { via: "new-conversation" },
  ): Promise<void> {
    const target = this.#friends.get(incoming.conversation.peer.address);
    const fail = (why: string): never => {
      incoming.conversation.close();
      throw new MissiveError("session", `a conversation nobody asked for: ${why}`);
    };
    // The one-time prekey is spent either way: the keyring is stored before any check.
    await this.#history.write([this.#keyringWrite()]);
    const m = incoming.message;
    if (!target || target.state !== "request-sent") fail("no request of ours is pending");
    if (!equalBytes(target!.cardObject.id, incoming.conversation.peer.id)) fail("another key");
    if (m.kind !== "accept" || !equalBytes(m.requestId, target!.requestId)) {
      fail("its first message is not the accept of our request");
    }
    target!.live = incoming.conversation;
    target!.state = "friend";
    await this.#history.write([this.#friendWrite(target!)]);
    this.#emit({ type: "accepted", address: target!.address, by: "them" });
    await this.#sendPresenceTo(target!);
    void this.flush();
  }

  async #receivedLine(
    f: Friend,
    m: ChatMessage & { kind: "text" | "forward" },
    nonce: Bytes,
    time: number,
    writes: HistoryWrite[],
  ): Promise<void> {
    const shown = this.#view === f.address;
    const line: ChatLine = {
      row: this.#history.reserve(),
      peer: f.address,
      direction: "in",
      author: m.kind === "text" ? f.address : m.author,
      text: m.text,
      time: m.kind === "text" ? time : m.time,
      nonce,
      state: shown ? "read" : "delivered",
      verified: m.kind === "text",
      ...(m.kind === "forward" ? { forwardedBy: f.address } : {}),
    };
    this.#addLine(line);
    writes.push(this.#lineWrite(line));
    await this.#history.write(writes);
    this.#emit({ type: "line", line });
    await this.#sendIn(f, {
      kind: "receipt",
      state: line.state as "read" | "delivered",
      nonces: [nonce],
    });
    void this.flush();
  }

  async #receivedReceipt(
    f: Friend,
    m: ChatMessage & { kind: "receipt" },
    writes: HistoryWrite[],
  ): Promise<void> {
    const changed: ChatLine[] = [];
    for (const n of m.nonces) {
      const line = this.#byNonce.get(`out:${toHex(n)}`);
      if (!line || line.peer !== f.address || ORDER[m.state] <= ORDER[line.state]) continue;
      line.state = m.state;
      changed.push(line);
      writes.push(this.#lineWrite(line));
    }
    await this.#history.write(writes);
    for (const line of changed) this.#emit({ type: "line-state", line });
  }

  async #receivedPresence(f: Friend, m: ChatMessage & { kind: "presence" }): Promise<void> {
    f.presence = m.status;
    if (m.note) f.presenceNote = m.note;
    else delete f.presenceNote;
    await this.#history.write([this.#friendWrite(f)]);
    this.#emit({
      type: "presence",
      address: f.address,
      status: m.status,
      ...(m.note ? { note: m.note } : {}),
    });
  }

  /** They ended the friendship: what still waits for them is dropped, its lines failed. */
  async #receivedBye(
    f: Friend,
    m: ChatMessage & { kind: "bye" },
    writes: HistoryWrite[],
  ): Promise<void> {
    this.#end(f);
    // What still waits for them was sealed in the conversation they closed: dropped.
    const dropped = [...this.#outbox].filter(([, item]) => item.peer === f.address);
    const failed: ChatLine[] = [];
    for (const [row, item] of dropped) {
      this.#outbox.delete(row);
      writes.push({ delete: row });
      const line = this.#lines.find((l) => l.row === item.line);
      if (line && line.state === "queued") {
        line.state = "failed";
        failed.push(line);
        writes.push(this.#lineWrite(line));
      }
    }
    writes[0] = this.#friendWrite(f);
    await this.#history.write(writes);
    for (const line of failed) this.#emit({ type: "line-state", line });
    this.#emit({
      type: "ended",
      address: f.address,
      by: "them",
      ...(m.reason ? { reason: m.reason } : {}),
    });
  }

  /**
   * A request from `card` while ours to the same identity is pending: both asked at once
   * (SPEC §27.4). The request of the lower identity ID stands: if that is ours, theirs
   * is set aside (they will accept ours); if theirs, it counts as their answer to ours
   * and is accepted now. Both sides decide the same, whichever request arrives first.
   */
  async #crossed(
    f: Friend,
    card: Card,
    m: ChatMessage & { kind: "request" },
  ): Promise<void> {
    if (compareIds(this.identity.card.id, card.id) < 0) {
      this.#emit({
        type: "notice",
        text: `${card.address} asked you too: your request stands (the lower identity ID's does)`,
      });
      return;
    }
    f.requestId = m.requestId;
    f.bundle = m.bundle;
    f.card = card.bytes;
    f.cardObject = card;
    await this.#acceptNow(f, "them");
    void this.flush();
  }

  /** Lines' states as names, for tests and the UI. */
  static readonly LINE_STATES = LINE_STATES;

  /** Stops the carrier and closes the history; queued envelopes stay for next time. */
  async close(): Promise<void> {
    if (this.#closed) return;
    clearInterval(this.#timer);
    await this.#flushing?.catch(() => {});
    await this.#lock.catch(() => {});
    this.#closed = true;
    await this.#carrier.close().catch(() => {});
    await this.#lock.catch(() => {});
    for (const f of this.#friends.values()) f.live?.close();
    this.#history.close();
  }
}
