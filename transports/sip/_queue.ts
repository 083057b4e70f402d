/**
 * A bounded async queue: the SIP side pushes (and answers 503 when full), a consumer
 * iterates. Bounded so a peer that nobody reads cannot grow memory without end.
 * @module
 */

/** Most items waiting in one queue. */
export const MAX_QUEUED = 256;

/** A bounded single-consumer queue that ends on close(). */
export class BoundedQueue<T> {
  #items: T[] = [];
  #waiting?: () => void;
  #closed = false;
  readonly #cap: number;

  constructor(cap = MAX_QUEUED) {
    this.#cap = cap;
  }

  /** Adds an item; false when the queue is full or closed. */
  push(item: T): boolean {
    if (this.#closed || this.#items.length >= this.#cap) return false;
    this.#items.push(item);
    this.#wake();
    return true;
  }

  /** Ends the iteration once the queued items are consumed; idempotent. */
  close(): void {
    this.#closed = true;
    this.#wake();
  }

  /** Items waiting. */
  get size(): number {
    return this.#items.length;
  }

  get closed(): boolean {
    return this.#closed;
  }

  #wake(): void {
    const w = this.#waiting;
    this.#waiting = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    for (;;) {
      if (this.#items.length > 0) {
        yield this.#items.shift()!;
        continue;
      }
      if (this.#closed) return;
      await new Promise<void>((resolve) => (this.#waiting = resolve));
    }
  }
}
