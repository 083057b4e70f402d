/**
 * DATA bookkeeping of one session (SPEC §22.6.2): outgoing messages queued, in flight
 * (at most a window) and acknowledged; incoming indexes delivered, duplicated or
 * skipped; and the cumulative DATA_ACK still due. No I/O and no crypto: `Session`
 * decides when to send.
 * @module
 */
import type { Bytes } from "../bytes.ts";
import { MissiveError } from "../errors.ts";

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
  #queue: PendingSend[] = [];
  #inflight: PendingSend[] = [];
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
    while (this.#queue.length > 0 && this.#inflight.length < window) {
      const p = this.#queue.shift() as PendingSend;
      p.index = this.#nextIndex++;
      this.#inflight.push(p);
      out.push({ index: p.index, data: p.data });
    }
    return out;
  }

  /** A DATA_ACK for `index`: resolves every send up to it; returns how many were new. */
  acknowledge(index: number): number {
    if (index >= this.#nextIndex) {
      throw new MissiveError("session", `session: DATA_ACK ${index} for DATA never sent`);
    }
    let count = 0;
    while (count < this.#inflight.length && this.#inflight[count].index <= index) {
      this.#inflight[count++].resolve();
    }
    if (count > 0) this.#inflight = this.#inflight.slice(count);
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
    return this.#inflight.length;
  }

  get queued(): number {
    return this.#queue.length;
  }

  /** Fails every queued and in-flight send. */
  rejectAll(error: unknown): void {
    for (const p of [...this.#inflight, ...this.#queue]) p.reject(error);
    this.#inflight = [];
    this.#queue = [];
  }
}
