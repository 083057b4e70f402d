/**
 * DATA bookkeeping of one session (SPEC §22.6.2): outgoing messages queued, in flight
 * (at most a window) and acknowledged; incoming indexes delivered, duplicated or
 * skipped; and the cumulative DATA_ACK still due. Plain data: no I/O, no crypto, no
 * promises — the machine decides when to send, the driver whom to tell. Internal.
 * @module
 */
import type { Bytes } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import { Fifo } from "./_queue.ts";

/** What became of a received DATA index. */
export type Arrival = "deliver" | "duplicate";

export class DataFlow {
  readonly #queue = new Fifo<Bytes>();
  /** Index of the oldest DATA in flight; `#nextIndex` is the next one to send. */
  #oldestInflight = 0;
  #nextIndex = 0;
  #expectedIndex = 0;
  #unacked = 0;
  #ackDue = false;

  /** Queues a message to send. */
  enqueue(data: Bytes): void {
    this.#queue.push(data);
  }

  /** Messages now allowed out under `window`, each with its new index. */
  takeSendable(window: number): { index: number; data: Bytes }[] {
    const out: { index: number; data: Bytes }[] = [];
    while (this.queued > 0 && this.inflight < window) {
      out.push({ index: this.#nextIndex++, data: this.#queue.shift()! });
    }
    return out;
  }

  /** A DATA_ACK for `index`: how many DATA in flight it newly acknowledges (in order). */
  acknowledge(index: number): number {
    if (index >= this.#nextIndex) {
      throw new MissiveError("session", `session: DATA_ACK ${index} for DATA never sent`);
    }
    if (index < this.#oldestInflight) return 0;
    const count = index + 1 - this.#oldestInflight;
    this.#oldestInflight = index + 1;
    return count;
  }

  /** A received DATA index: deliver it, or a re-sent duplicate (acknowledge only). */
  arrive(index: number): Arrival {
    if (index < this.#expectedIndex) {
      this.#ackDue = true;
      return "duplicate";
    }
    if (index > this.#expectedIndex) {
      throw new MissiveError("session", `session: DATA ${index} skips ${this.#expectedIndex}`);
    }
    this.#expectedIndex++;
    this.#unacked++;
    this.#ackDue = true;
    return "deliver";
  }

  /** DATA delivered and not yet acknowledged. */
  get unacknowledged(): number {
    return this.#unacked;
  }

  get ackDue(): boolean {
    return this.#ackDue;
  }

  /** Takes the due DATA_ACK: the index to acknowledge and how many DATA it newly covers. */
  takeAck(): { index: number; count: number } | undefined {
    if (!this.#ackDue) return undefined;
    const count = this.#unacked;
    this.#unacked = 0;
    this.#ackDue = false;
    return { index: this.#expectedIndex - 1, count };
  }

  /** DATA sent and not yet acknowledged. */
  get inflight(): number {
    return this.#nextIndex - this.#oldestInflight;
  }

  /** Messages waiting for room in the window. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Sends not yet acknowledged, queued or in flight: they fail if the session ends. */
  get pending(): number {
    return this.queued + this.inflight;
  }

  /**
   * Forgets every pending send (the session is closing or ended; the driver fails them):
   * queued messages go, and a late DATA_ACK for those in flight counts none.
   */
  dropPending(): void {
    this.#queue.clear();
    this.#oldestInflight = this.#nextIndex;
  }
}
