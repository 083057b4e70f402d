/**
 * The queues on JetStream (docs/SCALE.md §2.2): one replicated stream, one subject per
 * (recipient, sender) pair — `missive.q.<recipient>.<sender>` — so the stream's
 * per-subject limit is the per-sender quota and its max_bytes the store's cap, both
 * cluster-wide; a publish carries a message ID (recipient and envelope digest) so a
 * retried send is stored once; the relay message ID is the stream sequence. A message is
 * deleted (by sequence) only when its recipient acknowledges it. After each accepted
 * message the node tells the recipient's subject on `missive.notify.<recipient>`, so a
 * node where the recipient is connected reads it at once.
 *
 * Receipts (SPEC §23.7.1) go into the same stream, for the message's sender, on
 * `missive.q.<sender>.<recipient>.r`: their own per-subject quota, read in order with the
 * sender's messages. The node that takes the ack publishes the receipt before it deletes
 * the message, with the message ID `receipt.<mid>`: a node that dies in between leaves the
 * message queued, its redelivery is acknowledged again, and the second publish is a
 * duplicate the stream drops — one receipt per message whichever nodes see the acks.
 * @module
 */
import type { Subscription } from "@nats-io/transport-node";
import { type Bytes, fromHex, toHex } from "../../core/bytes.ts";
import { CborReader, decodeCbor, encodeCbor } from "../../core/cbor.ts";
import type {
  Acknowledgement,
  AckOutcome,
  NewMessage,
  QueuedMessage,
  QueueUsage,
  QueueWatch,
} from "../storage.ts";
import { receiptEntry, StoreRefusal } from "../storage.ts";
import { isNotFound, NAMES, type Nats, nextMessage, retrying, storeError } from "./_nats.ts";

/**
 * How long a per-recipient count read from the stream is reused (the per-sender quota
 * and the store cap are the stream's own limits, exact; this count serves the
 * per-recipient cap only).
 */
const USAGE_CACHE_MS = 5000;
/** How often a watched queue is read anyway (a notice lost with a node that died). */
const WATCH_POLL_MS = 5000;

const subjectOf = (recipient: string, sender: string) =>
  `${NAMES.queueSubject}.${recipient}.${sender}`;
/** Receipts for `recipient` (the original sender) from `sender` (who acknowledged). */
const receiptSubjectOf = (recipient: string, sender: string) => `${subjectOf(recipient, sender)}.r`;
const isReceiptSubject = (subject: string) => subject.endsWith(".r");

/** What an ack needs to know of an entry this node read. */
interface ReadEntry {
  recipient: string;
  sender: Bytes;
  wantsReceipt: boolean;
}
const filterOf = (recipient: string) => `${NAMES.queueSubject}.${recipient}.>`;

/**
 * A stored entry: `{1: sender address, 2: envelope, 3: enqueued, 4?: true (a receipt is
 * wanted)}`, or a receipt `{1: acknowledging address, 3: time, 5: message, 6: status}`.
 */
function encodeEntry(m: NewMessage): Bytes {
  const entry = new Map<number, string | Uint8Array | number | boolean>([
    [1, m.senderAddress],
    [2, m.envelope],
    [3, m.enqueued],
  ]);
  if (m.wantsReceipt) entry.set(4, true);
  return encodeCbor(entry);
}

/** Decodes a stored entry; undefined for one this relay did not write. */
function decodeEntry(seq: number, subject: string, data: Uint8Array): QueuedMessage | undefined {
  const [, , recipient, sender] = subject.split(".");
  const r = fromHex(recipient ?? ""), s = fromHex(sender ?? "");
  if (!r || !s || r.length !== 16 || s.length !== 16) return undefined;
  try {
    const m = CborReader.from(decodeCbor(data, "queued message"), "queued message");
    if (isReceiptSubject(subject)) {
      return {
        mid: seq,
        recipient: r,
        sender: s,
        senderAddress: m.text(1, 1024),
        envelope: new Uint8Array(),
        enqueued: m.uint(3),
        attempts: 0,
        receipt: { message: m.uint(5), status: m.uint(6, 4) },
      };
    }
    const entry: QueuedMessage = {
      mid: seq,
      recipient: r,
      sender: s,
      senderAddress: m.text(1, 1024),
      envelope: m.bytes(2),
      enqueued: m.uint(3),
      attempts: 0,
    };
    if (m.has(4) && m.bool(4)) entry.wantsReceipt = true;
    return entry;
  } catch {
    return undefined;
  }
}

/** Why the stream refused a publish, as the relay's status. */
function refusal(e: unknown): StoreRefusal | undefined {
  const text = String((e as Error)?.message ?? e);
  if (/per subject/i.test(text)) {
    return new StoreRefusal(
      "quota",
      "this sender already has the most messages waiting for this recipient that the " +
        "relay keeps (the per-sender quota, cluster-wide); try later",
    );
  }
  if (/maximum bytes|maximum messages|insufficient storage|resources exceeded/i.test(text)) {
    return new StoreRefusal("store-full", `the relay's store is full (${text}); try later`);
  }
  if (/message size|max payload|maximum payload/i.test(text)) {
    return new StoreRefusal("too-large", `the store refused the message's size (${text})`);
  }
  return undefined;
}

/** The queue operations. A class: it caches counts and owns the watches. */
export class JetStreamQueue implements QueueWatch {
  readonly #nats: Nats;
  /** Entries this node read, by sequence: an ack needs no lookup. */
  readonly #read = new Map<number, ReadEntry>();
  readonly #usage = new Map<string, { at: number; subjects: Map<string, number> }>();
  readonly #usageLoads = new Map<string, Promise<Map<string, number>>>();
  readonly #watchers = new Map<string, Set<() => void>>();
  readonly #subscriptions = new Map<string, Subscription>();
  /**
   * The highest stream sequence known to be committed (from this node's publish acks
   * and other nodes' notices): every sequence up to it is final.
   */
  #lastKnown = 0;
  /**
   * Per recipient, a range of sequences known to hold none of its messages: a read that
   * found nothing after `from` while `to` was already committed. Messages only get
   * higher sequences, so the range stays empty, and the next read skips it instead of
   * having the stream scan it again.
   */
  readonly #empty = new Map<string, { from: number; to: number }>();
  /** When #empty was last forgotten: it is rebuilt every 30 s, and after any failure. */
  #emptySince = Date.now();
  #poll: ReturnType<typeof setInterval> | undefined;
  #totals = { messages: 0, bytes: 0, at: 0, loading: false };

  constructor(nats: Nats) {
    this.#nats = nats;
  }

  async enqueue(m: NewMessage): Promise<{ mid: number; duplicate: boolean }> {
    const recipient = toHex(m.recipient);
    const subject = subjectOf(recipient, toHex(m.sender));
    let ack;
    try {
      const entry = encodeEntry(m);
      // A retry after no answer carries the same message ID: stored once.
      ack = await retrying(this.#nats, () =>
        this.#nats.js.publish(subject, entry, {
          msgID: `${recipient}.${toHex(m.digest)}`,
          timeout: this.#nats.timeoutMs,
        }));
    } catch (e) {
      throw refusal(e) ?? storeError("send", e);
    }
    this.#lastKnown = Math.max(this.#lastKnown, ack.seq);
    if (!ack.duplicate) {
      const cached = this.#usage.get(recipient)?.subjects;
      if (cached) cached.set(subject, (cached.get(subject) ?? 0) + 1);
      this.#nats.nc.publish(`${NAMES.notify}.${recipient}`, String(ack.seq));
    }
    return { mid: ack.seq, duplicate: ack.duplicate };
  }

  /** Up to `limit` messages for `recipient` after `afterMid`, read from the stream leader. */
  async pending(recipient: Uint8Array, afterMid: number, limit: number): Promise<QueuedMessage[]> {
    const hex = toHex(recipient);
    const out: QueuedMessage[] = [];
    let seq = afterMid;
    try {
      while (out.length < limit) {
        const gap = this.#empty.get(hex);
        if (gap && seq + 1 >= gap.from && seq < gap.to) seq = gap.to;
        const from = seq + 1;
        const known = this.#lastKnown;
        const m = await retrying(
          this.#nats,
          () => nextMessage(this.#nats, NAMES.queue, from, filterOf(hex)),
        );
        if (!m) {
          if (known >= from) this.#noneBetween(hex, from, known);
          break;
        }
        seq = m.seq;
        const entry = decodeEntry(m.seq, m.subject, m.data);
        if (!entry) continue;
        this.#read.set(m.seq, {
          recipient: hex,
          sender: entry.sender,
          wantsReceipt: entry.wantsReceipt === true,
        });
        out.push(entry);
      }
    } catch (e) {
      this.#forgetEmpty();
      if (!isNotFound(e)) throw storeError("read the queue", e);
    }
    return out;
  }

  /** Records that `recipient` has no message in [from, to]. */
  #noneBetween(hex: string, from: number, to: number): void {
    // Belt and braces: a leader change could in principle answer from a replica that
    // lags, so what was learnt is forgotten regularly (a read then scans once more).
    if (Date.now() - this.#emptySince > 30_000) this.#forgetEmpty();
    const gap = this.#empty.get(hex);
    if (gap && from <= gap.to + 1 && from >= gap.from) gap.to = Math.max(gap.to, to);
    else this.#empty.set(hex, { from, to });
    if (this.#empty.size > 100_000) this.#empty.clear();
  }

  #forgetEmpty(): void {
    this.#empty.clear();
    this.#emptySince = Date.now();
  }

  /**
   * An acknowledgement: deletes entry `mid` if it is the peer's, after publishing the
   * receipt its sender asked for (idempotent: see the module's note).
   */
  async acknowledge(a: Acknowledgement): Promise<AckOutcome> {
    const hex = toHex(a.recipient);
    try {
      let entry = this.#read.get(a.mid);
      if (entry === undefined) {
        const m = await retrying(
          this.#nats,
          () => this.#nats.jsm.streams.getMessage(NAMES.queue, { seq: a.mid }),
        )
          .catch((e) => {
            if (isNotFound(e)) return null;
            throw e;
          });
        const decoded = m ? decodeEntry(a.mid, m.subject, m.data) : undefined;
        if (decoded) {
          entry = {
            recipient: toHex(decoded.recipient),
            sender: decoded.sender,
            wantsReceipt: decoded.wantsReceipt === true,
          };
        }
      }
      if (entry?.recipient !== hex) return { removed: false };
      const outcome: AckOutcome = { removed: false };
      if (entry.wantsReceipt) Object.assign(outcome, await this.#queueReceipt(a, entry.sender));
      this.#read.delete(a.mid);
      // Deleted, not erased: the bytes are a sealed envelope, overwriting costs a write.
      outcome.removed = await retrying(
        this.#nats,
        () => this.#nats.jsm.streams.deleteMessage(NAMES.queue, a.mid, false),
      );
      if (outcome.removed) {
        const cached = this.#usage.get(hex);
        if (cached) cached.at = 0; // recount on next use
      }
      return outcome;
    } catch (e) {
      if (isNotFound(e)) return { removed: false };
      throw storeError("acknowledge", e);
    }
  }

  /**
   * Publishes the receipt of `a` for `sender` (its per-subject quota and the stream's
   * size are the stream's own limits; the sender's entries are counted here); a refusal
   * drops the receipt, not the ack.
   */
  async #queueReceipt(
    a: Acknowledgement,
    sender: Bytes,
  ): Promise<Pick<AckOutcome, "receipt" | "dropped">> {
    const owner = toHex(sender);
    const mine = await this.usage(sender);
    if (mine.messages >= a.limits.recipientQuota) {
      return { dropped: `recipient-full: the sender has ${mine.messages} entries waiting` };
    }
    const data = encodeCbor(
      new Map<number, string | number>([
        [1, a.recipientAddress],
        [3, a.at],
        [5, a.mid],
        [6, a.status],
      ]),
    );
    let ack;
    try {
      ack = await retrying(
        this.#nats,
        () =>
          this.#nats.js.publish(receiptSubjectOf(owner, toHex(a.recipient)), data, {
            msgID: `receipt.${a.mid}`,
            timeout: this.#nats.timeoutMs,
          }),
      );
    } catch (e) {
      const refused = refusal(e);
      if (refused) return { dropped: `${refused.status}: ${refused.message}` };
      throw e;
    }
    this.#lastKnown = Math.max(this.#lastKnown, ack.seq);
    if (ack.duplicate) return {};
    const cached = this.#usage.get(owner);
    if (cached) cached.at = 0;
    this.#nats.nc.publish(`${NAMES.notify}.${owner}`, String(ack.seq));
    return { receipt: receiptEntry(a, sender, ack.seq) };
  }

  /** Messages per (recipient, sender) subject for `recipient`, reused for a second. */
  #subjects(recipient: string): Promise<Map<string, number>> {
    const cached = this.#usage.get(recipient);
    if (cached && Date.now() - cached.at < USAGE_CACHE_MS) return Promise.resolve(cached.subjects);
    let load = this.#usageLoads.get(recipient);
    if (!load) {
      load = retrying(
        this.#nats,
        () => this.#nats.jsm.streams.info(NAMES.queue, { subjects_filter: filterOf(recipient) }),
      )
        .then((info) => {
          const subjects = new Map(Object.entries(info.state.subjects ?? {}));
          this.#usage.set(recipient, { at: Date.now(), subjects });
          if (this.#usage.size > 100_000) this.#usage.clear();
          return subjects;
        }, (e) => {
          throw storeError("count the queue", e);
        })
        .finally(() => this.#usageLoads.delete(recipient));
      this.#usageLoads.set(recipient, load);
    }
    return load;
  }

  async queued(recipient: Uint8Array): Promise<number> {
    this.#usage.delete(toHex(recipient));
    return (await this.usage(recipient)).messages;
  }

  async receiptsQueued(recipient: Uint8Array): Promise<number> {
    return (await this.usage(recipient)).receipts ?? 0;
  }

  /**
   * What is queued for `recipient`, from the stream's per-subject counts (shared by every
   * node). The stream keeps no per-subject byte count: `bytes` is 0, and the
   * per-recipient byte cap is not enforced on JetStream (docs/SCALE.md §2.3).
   */
  async usage(recipient: Uint8Array): Promise<QueueUsage> {
    let messages = 0, receipts = 0;
    for (const [subject, n] of await this.#subjects(toHex(recipient))) {
      messages += n;
      if (isReceiptSubject(subject)) receipts += n;
    }
    return { messages, bytes: 0, receipts };
  }

  async pairUsage(recipient: Uint8Array, sender: Uint8Array): Promise<QueueUsage> {
    const hex = toHex(recipient);
    const n = (await this.#subjects(hex)).get(subjectOf(hex, toHex(sender))) ?? 0;
    return { messages: n, bytes: 0 };
  }

  /** The stream's totals, refreshed in the background at most once a second. */
  totals(): { messages: number; bytes: number } {
    const t = this.#totals;
    if (!t.loading && Date.now() - t.at > 1000) {
      t.loading = true;
      void this.#nats.jsm.streams.info(NAMES.queue).then((info) => {
        t.messages = info.state.messages;
        t.bytes = info.state.bytes;
      }, () => {}).finally(() => {
        t.at = Date.now();
        t.loading = false;
      });
    }
    return { messages: t.messages, bytes: t.bytes };
  }

  watchQueue(recipient: Uint8Array, onNew: () => void): () => void {
    const hex = toHex(recipient);
    let set = this.#watchers.get(hex);
    if (!set) {
      set = new Set();
      this.#watchers.set(hex, set);
      const watchers = set;
      this.#subscriptions.set(
        hex,
        this.#nats.nc.subscribe(`${NAMES.notify}.${hex}`, {
          callback: (_e, msg) => {
            const seq = Number(msg.string());
            if (Number.isSafeInteger(seq) && seq > 0) {
              this.#lastKnown = Math.max(this.#lastKnown, seq);
            }
            for (const f of watchers) f();
          },
        }),
      );
    }
    set.add(onNew);
    this.#poll ??= setInterval(() => {
      for (const fs of this.#watchers.values()) for (const f of fs) f();
    }, WATCH_POLL_MS);
    (this.#poll as { unref?: () => void }).unref?.();
    return () => {
      set.delete(onNew);
      if (set.size > 0) return;
      this.#watchers.delete(hex);
      this.#subscriptions.get(hex)?.unsubscribe();
      this.#subscriptions.delete(hex);
    };
  }

  /** Forgets sequences read but never acknowledged when they pile up (memory bound). */
  trim(): void {
    if (this.#read.size > 200_000) this.#read.clear();
  }

  stop(): void {
    if (this.#poll) clearInterval(this.#poll);
    for (const s of this.#subscriptions.values()) s.unsubscribe();
    this.#subscriptions.clear();
    this.#watchers.clear();
  }
}
