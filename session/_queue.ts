/**
 * A small single-process async queue: the session's inbox of received messages and its
 * event stream. Items are taken once, in order; `end` finishes it (with an error, the
 * consumer's next read throws it). Optional limits on the count and the total weight
 * (bytes) of the items queued let a producer wait for room (`waitForSpace`). Internal.
 * @module
 */

/** Limits of a queue: `waitForSpace` waits while either is reached. */
export interface QueueLimits<T> {
  /** Items queued at most before `waitForSpace` waits. */
  count?: number;
  /** Total weight (`weigh` of each item) above which `waitForSpace` waits. */
  weight?: number;
  weigh?: (item: T) => number;
}

export class AsyncQueue<T> {
  readonly #items: T[] = [];
  #head = 0;
  readonly #count: number;
  readonly #maxWeight: number;
  readonly #weigh?: (item: T) => number;
  #weight = 0;
  #waiters: (() => void)[] = [];
  #spaceWaiters: (() => void)[] = [];
  #ended = false;
  #error: unknown;

  constructor(limits: QueueLimits<T> = {}) {
    this.#count = limits.count ?? Infinity;
    this.#maxWeight = limits.weight ?? Infinity;
    this.#weigh = limits.weigh;
  }

  get length(): number {
    return this.#items.length - this.#head;
  }

  /** The total weight of the items queued. */
  get weight(): number {
    return this.#weight;
  }

  push(item: T): void {
    if (this.#ended) return;
    this.#items.push(item);
    if (this.#weigh) this.#weight += this.#weigh(item);
    const waiting = this.#waiters;
    if (waiting.length === 0) return;
    this.#waiters = [];
    for (const resolve of waiting) resolve();
  }

  /** Drops the oldest items beyond `max` (for bounded logs such as events). */
  trim(max: number): void {
    while (this.length > max) this.#take();
  }

  end(error?: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#error = error;
    this.#wake();
  }

  /** The next item; undefined once ended and empty; throws the end error then. */
  async shift(): Promise<T | undefined> {
    while (this.length === 0 && !this.#ended) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
    if (this.length > 0) {
      const item = this.#take();
      if (this.#spaceWaiters.length > 0 && this.hasSpace) this.#wakeSpace();
      return item;
    }
    if (this.#error !== undefined) throw this.#error;
    return undefined;
  }

  /** True while below both limits (or ended): `waitForSpace` would not wait. */
  get hasSpace(): boolean {
    return this.#ended || (this.length < this.#count && this.#weight <= this.#maxWeight);
  }

  /** Resolves when the queue is below its limits (or ended). */
  async waitForSpace(): Promise<void> {
    while (!this.hasSpace) {
      await new Promise<void>((resolve) => this.#spaceWaiters.push(resolve));
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      const item = await this.shift();
      if (item === undefined) return;
      yield item;
    }
  }

  #take(): T {
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined as T;
    if (this.#weigh) this.#weight -= this.#weigh(item);
    if (this.#head > 64 && this.#head * 2 > this.#items.length) {
      this.#items.splice(0, this.#head);
      this.#head = 0;
    }
    return item;
  }

  #wakeSpace(): void {
    const space = this.#spaceWaiters;
    this.#spaceWaiters = [];
    for (const resolve of space) resolve();
  }

  #wake(): void {
    const waiting = this.#waiters;
    this.#waiters = [];
    for (const resolve of waiting) resolve();
    this.#wakeSpace();
  }
}
