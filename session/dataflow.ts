/**
 * DATA bookkeeping of one session (SPEC §22.6.2): outgoing messages queued, in flight
 * (at most a window) and acknowledged; incoming indexes delivered, duplicated or
 * skipped; and the cumulative DATA_ACK still due. No I/O and no crypto: `Session`
 * decides when to send.
 * @module
 */
import type { Bytes } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";

/** One `send` waiting to go out or to be acknowledged. */
interface PendingSend {
  data: Bytes;
  index: number;
  resolve(): void;
  reject(e: unknown): void;
}

/** What became of a received DATA index. */
export type Arrival = "deliver" | "duplicate";

export class DataFlow {
  // Both lists are consumed from the front through a head index (no O(n) shift per
  // message); the consumed prefix is dropped once it outweighs the rest.
  #queue: PendingSend[] = [];
  #queueHead = 0;
  #inflight: PendingSend[] = [];
  #inflightHead = 0;
  #nextIndex = 0;
  #expectedIndex = 0;
  #unacked = 0;
  #ackDue = false;

  /** Queues a message; the promise settles when it is acknowledged or the session ends. */
  enqueue(data: Uint8Array): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ data: new Uint8Array(data), index: -1, resolve, reject });
    });
  }

  /** Messages now allowed out under `window`, each with its new index. */
  takeSendable(window: number): { index: number; data: Bytes }[] {
    const out: { index: number; data: Bytes }[] = [];
    while (this.queued > 0 && this.inflight < window) {
      const p = this.#queue[this.#queueHead++];
      p.index = this.#nextIndex++;
      this.#inflight.push(p);
      out.push({ index: p.index, data: p.data });
    }
    if (this.#queueHead > 64 && this.#queueHead * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#queueHead);
      this.#queueHead = 0;
    }
    return out;
  }

  /** A DATA_ACK for `index`: resolves every send up to it; returns how many were new. */
  acknowledge(index: number): number {
    if (index >= this.#nextIndex) {
      throw new MissiveError("session", `session: DATA_ACK ${index} for DATA never sent`);
    }
    let count = 0;
    const inflight = this.#inflight;
    while (this.#inflightHead < inflight.length && inflight[this.#inflightHead].index <= index) {
      inflight[this.#inflightHead++].resolve();
      count++;
    }
    if (this.#inflightHead > 64 && this.#inflightHead * 2 > inflight.length) {
      this.#inflight = inflight.slice(this.#inflightHead);
      this.#inflightHead = 0;
    }
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

  get inflight(): number {
    return this.#inflight.length - this.#inflightHead;
  }

  get queued(): number {
    return this.#queue.length - this.#queueHead;
  }

  /** Fails every queued and in-flight send. */
  rejectAll(error: unknown): void {
    const pending = [
      ...this.#inflight.slice(this.#inflightHead),
      ...this.#queue.slice(this.#queueHead),
    ];
    this.#inflight = [];
    this.#queue = [];
    this.#inflightHead = this.#queueHead = 0;
    for (const p of pending) p.reject(error);
  }
}
