/**
 * The queues on JetStream (docs/SCALE.md §2.2): one replicated stream, one subject per
 * (recipient, sender) pair — `missive.q.<recipient>.<sender>` — so the stream's
 * per-subject limit is the per-sender quota and its max_bytes the store's cap, both
 * cluster-wide; a publish carries a message ID (recipient and envelope digest) so a
 * retried send is stored once; the relay message ID is the stream sequence. A message is
 * deleted (by sequence) only when its recipient acknowledges it. After each accepted
 * message the node tells the recipient's subject on `missive.notify.<recipient>`, so a
 * node where the recipient is connected reads it at once.
 * @module
 */
import type { Subscription } from "@nats-io/transport-node";
import { type Bytes, fromHex, toHex } from "../../core/bytes.ts";
import { CborReader, decodeCbor, encodeCbor } from "../../core/cbor.ts";
import type { NewMessage, QueuedMessage, QueueUsage, QueueWatch } from "../storage.ts";
import { StoreRefusal } from "../storage.ts";
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
const filterOf = (recipient: string) => `${NAMES.queueSubject}.${recipient}.>`;

function encodeEntry(m: NewMessage): Bytes {
  return encodeCbor(
    new Map<number, string | Uint8Array | number>([
      [1, m.senderAddress],
      [2, m.envelope],
      [3, m.enqueued],
    ]),
  );
}

/** Decodes a stored entry; undefined for one this relay did not write. */
function decodeEntry(seq: number, subject: string, data: Uint8Array): QueuedMessage | undefined {
  const [, , recipient, sender] = subject.split(".");
  const r = fromHex(recipient ?? ""), s = fromHex(sender ?? "");
  if (!r || !s || r.length !== 16 || s.length !== 16) return undefined;
  try {
    const m = CborReader.from(decodeCbor(data, "queued message"), "queued message");
    return {
      mid: seq,
      recipient: r,
      sender: s,
      senderAddress: m.text(1, 1024),
      envelope: m.bytes(2),
      enqueued: m.uint(3),
      attempts: 0,
    };
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
  /** Subject (recipient hex) of messages this node read: an ack needs no lookup. */
  readonly #recipientOf = new Map<number, string>();
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
        this.#recipientOf.set(m.seq, hex);
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

  /** Deletes message `mid` if it is `recipient`'s (an acknowledgement). */
  async remove(recipient: Uint8Array, mid: number): Promise<boolean> {
    const hex = toHex(recipient);
    try {
      let owner = this.#recipientOf.get(mid);
      if (owner === undefined) {
        const m = await retrying(
          this.#nats,
          () => this.#nats.jsm.streams.getMessage(NAMES.queue, { seq: mid }),
        )
          .catch((e) => {
            if (isNotFound(e)) return null;
            throw e;
          });
        owner = m?.subject.split(".")[2];
      }
      if (owner !== hex) return false;
      this.#recipientOf.delete(mid);
      // Deleted, not erased: the bytes are a sealed envelope, overwriting costs a write.
      const removed = await retrying(
        this.#nats,
        () => this.#nats.jsm.streams.deleteMessage(NAMES.queue, mid, false),
      );
      if (removed) {
        const cached = this.#usage.get(hex);
        if (cached) cached.at = 0; // recount on next use
      }
      return removed;
    } catch (e) {
      if (isNotFound(e)) return false;
      throw storeError("acknowledge", e);
    }
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

  /**
   * What is queued for `recipient`, from the stream's per-subject counts (shared by every
   * node). The stream keeps no per-subject byte count: `bytes` is 0, and the
   * per-recipient byte cap is not enforced on JetStream (docs/SCALE.md §2.3).
   */
  async usage(recipient: Uint8Array): Promise<QueueUsage> {
    let messages = 0;
    for (const n of (await this.#subjects(toHex(recipient))).values()) messages += n;
    return { messages, bytes: 0 };
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
    if (this.#recipientOf.size > 200_000) this.#recipientOf.clear();
  }

  stop(): void {
    if (this.#poll) clearInterval(this.#poll);
    for (const s of this.#subscriptions.values()) s.unsubscribe();
    this.#subscriptions.clear();
    this.#watchers.clear();
  }
}
