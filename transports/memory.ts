/**
 * An in-memory Transport pair (transports/types.ts) for tests and in-process links: two
 * ends joined by bounded frame queues. `send` waits while the peer's queue is full
 * (back-pressure, like a TCP socket), so a fast sender cannot grow memory without limit.
 * @module
 */
import { MissiveError } from "../core/errors.ts";
import type { Transport } from "./types.ts";

/** Options for `memoryTransportPair`. */
export interface MemoryTransportOptions {
  /** Frames each direction may hold before `send` waits (default 64). */
  capacity?: number;
  /** Largest frame accepted by `send`, in bytes (default 16 MiB). */
  maxFrame?: number;
  /** The `remote` names of the two ends (default `memory:a`, `memory:b`). */
  names?: readonly [string, string];
}

const DEFAULT_CAPACITY = 64;
const DEFAULT_MAX_FRAME = 16 * 1024 * 1024;

/** One direction: a bounded FIFO with waiters on both sides. */
class FrameQueue {
  readonly #capacity: number;
  readonly #frames: Uint8Array[] = [];
  #closed = false;
  #readers: (() => void)[] = [];
  #writers: (() => void)[] = [];

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  get closed(): boolean {
    return this.#closed;
  }

  async push(frame: Uint8Array, remote: string): Promise<void> {
    while (!this.#closed && this.#frames.length >= this.#capacity) {
      await new Promise<void>((resolve) => this.#writers.push(resolve));
    }
    if (this.#closed) throw new MissiveError("network", `${remote}: connection closed`);
    this.#frames.push(frame);
    this.#wake("readers");
  }

  /** The next frame, or undefined once closed and drained. */
  async shift(): Promise<Uint8Array | undefined> {
    while (this.#frames.length === 0 && !this.#closed) {
      await new Promise<void>((resolve) => this.#readers.push(resolve));
    }
    const frame = this.#frames.shift();
    this.#wake("writers");
    return frame;
  }

  close(): void {
    this.#closed = true;
    this.#wake("readers");
    this.#wake("writers");
  }

  #wake(which: "readers" | "writers"): void {
    const waiting = which === "readers" ? this.#readers : this.#writers;
    if (which === "readers") this.#readers = [];
    else this.#writers = [];
    for (const resolve of waiting) resolve();
  }
}

class MemoryTransport implements Transport {
  readonly remote: string;
  readonly #inbound: FrameQueue;
  readonly #outbound: FrameQueue;
  readonly #maxFrame: number;
  #reading = false;

  constructor(remote: string, inbound: FrameQueue, outbound: FrameQueue, maxFrame: number) {
    this.remote = remote;
    this.#inbound = inbound;
    this.#outbound = outbound;
    this.#maxFrame = maxFrame;
  }

  async send(frame: Uint8Array): Promise<void> {
    if (frame.length > this.#maxFrame) {
      throw new MissiveError("too-large", `${this.remote}: frame larger than ${this.#maxFrame}`);
    }
    // A copy, so the sender may reuse its buffer (a socket would not see later writes).
    await this.#outbound.push(new Uint8Array(frame), this.remote);
  }

  async *frames(): AsyncIterable<Uint8Array> {
    if (this.#reading) {
      throw new MissiveError("usage", `${this.remote}: frames() may be iterated only once`);
    }
    this.#reading = true;
    for (;;) {
      const frame = await this.#inbound.shift();
      if (frame === undefined) return;
      yield frame;
    }
  }

  close(): Promise<void> {
    // Closing one end closes the link both ways, as a socket close does: the peer reads
    // what was already queued, then its frames() ends.
    this.#outbound.close();
    this.#inbound.close();
    return Promise.resolve();
  }
}

/**
 * Two connected in-memory transports: what one sends, the other's `frames()` yields.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { memoryTransportPair } from "./memory.ts";
 * const [a, b] = memoryTransportPair();
 * await a.send(new Uint8Array([1, 2, 3]));
 * await a.close(); // b reads what was queued, then its frames() ends
 * const frames: number[][] = [];
 * for await (const frame of b.frames()) frames.push([...frame]);
 * assert.deepEqual(frames, [[1, 2, 3]]);
 * ```
 */
export function memoryTransportPair(
  options: MemoryTransportOptions = {},
): [Transport, Transport] {
  const capacity = options.capacity ?? DEFAULT_CAPACITY;
  if (!Number.isInteger(capacity) || capacity < 1) {
    throw new MissiveError("usage", "memory transport: capacity must be a positive integer");
  }
  const maxFrame = options.maxFrame ?? DEFAULT_MAX_FRAME;
  const [nameA, nameB] = options.names ?? ["memory:a", "memory:b"];
  const aToB = new FrameQueue(capacity);
  const bToA = new FrameQueue(capacity);
  return [
    new MemoryTransport(nameA, bToA, aToB, maxFrame),
    new MemoryTransport(nameB, aToB, bToA, maxFrame),
  ];
}
