/**
 * A small single-process async queue: the session's inbox of received messages and its
 * event stream. Items are taken once, in order; `end` finishes it (with an error, the
 * consumer's next read throws it).
 * @module
 */

export class AsyncQueue<T> {
  readonly #items: T[] = [];
  readonly #limit: number;
  #waiters: ((value: void) => void)[] = [];
  #spaceWaiters: ((value: void) => void)[] = [];
  #ended = false;
  #error: unknown;

  /** `limit` is a soft cap: `waitForSpace` resolves once fewer items are queued. */
  constructor(limit = Infinity) {
    this.#limit = limit;
  }

  get length(): number {
    return this.#items.length;
  }

  push(item: T): void {
    if (this.#ended) return;
    this.#items.push(item);
    this.#wake();
  }

  /** Drops the oldest items beyond `max` (for bounded logs such as events). */
  trim(max: number): void {
    while (this.#items.length > max) this.#items.shift();
  }

  end(error?: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#error = error;
    this.#wake();
  }

  /** The next item; undefined once ended and empty; throws the end error then. */
  async shift(): Promise<T | undefined> {
    while (this.#items.length === 0 && !this.#ended) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
    if (this.#items.length > 0) {
      const item = this.#items.shift() as T;
      const space = this.#spaceWaiters;
      this.#spaceWaiters = [];
      for (const resolve of space) resolve();
      return item;
    }
    if (this.#error !== undefined) throw this.#error;
    return undefined;
  }

  /** Resolves when the queue is below its limit (or ended). */
  async waitForSpace(): Promise<void> {
    while (this.#items.length >= this.#limit && !this.#ended) {
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

  #wake(): void {
    const waiting = this.#waiters;
    this.#waiters = [];
    for (const resolve of waiting) resolve();
    if (this.#ended) {
      const space = this.#spaceWaiters;
      this.#spaceWaiters = [];
      for (const resolve of space) resolve();
    }
  }
}
