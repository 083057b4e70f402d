/**
 * A small single-process async queue: the session's inbox of received messages and its
 * event stream. Items are taken once, in order; `end` finishes it (with an error, the
 * consumer's next read throws it). Optional limits on the count and the total weight
 * (bytes) of the items queued let a producer wait for room (`waitForSpace`). Internal.
 * @module
 */

/**
 * A first-in first-out array taken from the front through a head index (no O(n) `shift`
 * per item); the consumed prefix is dropped once it outweighs the rest. The one FIFO of
 * the session's driver, data flow and queues.
 */
export class Fifo<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  /** The oldest item, removed; undefined when empty. */
  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head > 64 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  /** Every item, oldest first, removed. */
  takeAll(): T[] {
    const all = this.#items.slice(this.#head) as T[];
    this.clear();
    return all;
  }

  clear(): void {
    this.#items = [];
    this.#head = 0;
  }
}

/** Limits of a queue: `waitForSpace` waits while either is reached. */
export interface QueueLimits<T> {
  /** Items queued at most before `waitForSpace` waits. */
  count?: number;
  /** Total weight (`weigh` of each item) above which `waitForSpace` waits. */
  weight?: number;
  weigh?: (item: T) => number;
}

export class AsyncQueue<T> {
  readonly #items = new Fifo<T>();
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
    return this.#items.length;
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
    const item = this.#items.shift() as T;
    if (this.#weigh) this.#weight -= this.#weigh(item);
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
