/**
 * Byte sources and sinks for streams: a file descriptor read in large blocks, an async
 * iterable (stdin, tests), a byte array; sinks that write batches of parts with one
 * system call (`writev`) or hand them to a callback. Sources never overwrite bytes they
 * returned, so callers may keep views.
 * @module
 */
import { fstatSync, read, readSync, writev } from "node:fs";
import { type Bytes, concatBytes } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";

/** Where a stream's bytes come from. */
export interface ByteSource {
  /**
   * Up to `n` bytes: exactly `n` unless the input ends first (then fewer, possibly none).
   * The result may be a view into a buffer the source never reuses.
   */
  read(n: number): Promise<Uint8Array>;
  /**
   * Fills `target` (the hot path: the caller reuses its buffers, so a gigabyte makes no
   * gigabyte of garbage). Returns the bytes written, fewer than its length only at the end.
   */
  readInto(target: Uint8Array): Promise<number>;
}

/** Where a stream's bytes go, in order. */
export interface ByteSink {
  /** Writes the parts in order; resolves once they were handed on. */
  write(parts: readonly Uint8Array[]): Promise<void>;
}

function ioError(what: string, e: unknown): MissiveError {
  const code = (e as { code?: string }).code ?? (e as Error).message;
  return new MissiveError("io", `${what}: ${code}`);
}

/** Gathers parts into exactly-`n`-byte results, from blocks of any size. */
class Gatherer implements ByteSource {
  #block: Uint8Array = new Uint8Array(0);
  #at = 0;
  #ended = false;
  readonly #next: () => Promise<Uint8Array | undefined>;

  constructor(next: () => Promise<Uint8Array | undefined>) {
    this.#next = next;
  }

  async read(n: number): Promise<Uint8Array> {
    const available = this.#block.length - this.#at;
    if (available >= n) {
      const out = this.#block.subarray(this.#at, this.#at + n);
      this.#at += n;
      return out;
    }
    // Spans blocks: one copy into a buffer of exactly n (checked by callers before asking).
    const out = new Uint8Array(n);
    const filled = await this.readInto(out);
    return filled === n ? out : out.subarray(0, filled);
  }

  async readInto(out: Uint8Array): Promise<number> {
    const n = out.length;
    let filled = 0;
    while (filled < n) {
      if (this.#at === this.#block.length) {
        if (this.#ended) break;
        const block = await this.#next();
        if (block === undefined) {
          this.#ended = true;
          break;
        }
        this.#block = block;
        this.#at = 0;
        continue;
      }
      const take = Math.min(n - filled, this.#block.length - this.#at);
      out.set(this.#block.subarray(this.#at, this.#at + take), filled);
      this.#at += take;
      filled += take;
    }
    return filled;
  }
}

/**
 * Reads a descriptor: `readInto` straight into the caller's buffer, no copy. A regular
 * file is read synchronously (a page-cache copy: microseconds, and no hand-off to the I/O
 * pool and back per block, which cost more than the copy on a loaded machine); anything
 * else (a pipe, a terminal, a socket) off the main thread, since a read there may wait.
 */
class FdSource implements ByteSource {
  readonly #fd: number;
  readonly #what: string;
  #regular?: boolean;

  constructor(fd: number, what: string) {
    this.#fd = fd;
    this.#what = what;
  }

  #isRegularFile(): boolean {
    if (this.#regular === undefined) {
      try {
        this.#regular = fstatSync(this.#fd).isFile();
      } catch {
        this.#regular = false;
      }
    }
    return this.#regular;
  }

  #readSync(target: Uint8Array): number {
    let filled = 0;
    try {
      while (filled < target.length) {
        const got = readSync(this.#fd, target, filled, target.length - filled, null);
        if (got === 0) break;
        filled += got;
      }
    } catch (e) {
      throw ioError(`cannot read ${this.#what}`, e);
    }
    return filled;
  }

  async read(n: number): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    const filled = await this.readInto(out);
    return filled === n ? out : out.subarray(0, filled);
  }

  async readInto(target: Uint8Array): Promise<number> {
    if (this.#isRegularFile()) return this.#readSync(target);
    let filled = 0;
    while (filled < target.length) {
      let got: number;
      try {
        // Off the main thread (the runtime's I/O pool): a blocking read on a pipe must not
        // stall the event loop, or a signal (Ctrl-C) would wait for the next byte.
        got = await new Promise<number>((resolve, reject) =>
          read(
            this.#fd,
            target,
            filled,
            target.length - filled,
            null,
            (err, n) => (err ? reject(err) : resolve(n)),
          )
        );
      } catch (e) {
        // A non-blocking pipe with nothing yet: wait a little, then read again.
        if ((e as { code?: string }).code === "EAGAIN") {
          await new Promise((resolve) => setTimeout(resolve, 1));
          continue;
        }
        throw ioError(`cannot read ${this.#what}`, e);
      }
      if (got === 0) break;
      filled += got;
    }
    return filled;
  }
}

/** Reads a descriptor (a file, or a pipe as stdin). */
export function fdSource(fd: number, what = "input"): ByteSource {
  return new FdSource(fd, what);
}

/** Reads an async iterable of byte chunks (stdin, tests). */
export function iterableSource(chunks: AsyncIterable<Uint8Array>): ByteSource {
  const it = chunks[Symbol.asyncIterator]();
  return new Gatherer(async () => {
    for (;;) {
      const r = await it.next();
      if (r.done) return undefined;
      if (r.value.length > 0) return r.value;
    }
  });
}

/** Reads a byte array. */
export function bytesSource(bytes: Uint8Array): ByteSource {
  let done = false;
  return new Gatherer(() => {
    if (done) return Promise.resolve(undefined);
    done = true;
    return Promise.resolve(bytes);
  });
}

/** `prefix` (bytes already read, e.g. for sniffing) followed by the rest of `source`. */
export function prefixedSource(prefix: Uint8Array, source: ByteSource): ByteSource {
  let at = 0;
  const readInto = async (target: Uint8Array) => {
    const take = Math.min(prefix.length - at, target.length);
    target.set(prefix.subarray(at, at + take));
    at += take;
    if (at === prefix.length) {
      prefix = new Uint8Array(0); // drop it: it may be 16 MiB
      at = 0;
    }
    if (take === target.length) return take;
    return take + await source.readInto(target.subarray(take));
  };
  return {
    readInto,
    async read(n) {
      const out = new Uint8Array(n);
      const filled = await readInto(out);
      return filled === n ? out : out.subarray(0, filled);
    },
  };
}

/** Bytes between two garbage-collection hints. */
const GC_EVERY = 16 * 1024 * 1024;
let sinceHint = 0;
/** Every FORCE_EVERY-th hint is a full collection (Bun), a bound on the asynchronous ones. */
const FORCE_EVERY = 8;
let hints = 0;

/**
 * Counts bytes through a stream and, every 16 MiB, asks the runtime to collect garbage
 * where it offers that (Bun.gc; V8's `gc` when exposed). Every chunk's ciphertext or
 * plaintext is a fresh buffer (WebCrypto and node:crypto allocate their outputs); engines
 * count those as external memory and collect them late. Under Bun most hints are the
 * asynchronous kind (`Bun.gc(false)`) and every eighth (128 MiB) a full collection. Measured
 * on 1 GiB with the compiled binary: a full collection every 32 MiB handed the pages back
 * only to fault them in again (open 1.98 s, seal 0.78 s, peak RSS 83 MiB); asynchronous
 * hints alone ran open in 1.27 s and seal in 0.42 s but peaked at 127–130 MiB in some runs;
 * this mix: 0.93–1.43 s and 0.52–0.55 s at 104–109 MiB, under the 128 MiB budget
 * (docs/BENCHMARKS.md, issue 12).
 */
export function garbageHint(bytes: number): void {
  sinceHint += bytes;
  if (sinceHint < GC_EVERY) return;
  sinceHint = 0;
  const force = ++hints % FORCE_EVERY === 0;
  const g = globalThis as { Bun?: { gc?: (force: boolean) => void }; gc?: () => void };
  if (g.Bun?.gc) g.Bun.gc(force);
  else g.gc?.();
}

/** What is left of `parts` after `n` bytes of them were written. */
function rest(parts: readonly Uint8Array[], n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const p of parts) {
    if (n >= p.length) n -= p.length;
    else {
      out.push(n > 0 ? p.subarray(n) : p);
      n = 0;
    }
  }
  return out;
}

/**
 * Writes to a descriptor with `writev` off the main thread (the runtime's I/O pool), so
 * the caller can seal or open the next chunks meanwhile (see BatchWriter). Parts must not
 * change until the write resolves.
 */
export function fdSink(fd: number, what = "output"): ByteSink {
  return {
    write(parts) {
      return new Promise((resolve, reject) => {
        const go = (pending: Uint8Array[]) => {
          if (pending.length === 0) return resolve();
          writev(fd, pending, null, (err, n) => {
            // A non-blocking pipe that is full: wait a little, then write again.
            if (err?.code === "EAGAIN") setTimeout(() => go(pending), 1);
            else if (err) reject(ioError(`cannot write ${what}`, err));
            else go(rest(pending, n));
          });
        };
        go(parts.filter((p) => p.length > 0));
      });
    },
  };
}

/**
 * Gathers parts into batches of about `batchSize` bytes and keeps one batch being written
 * while the caller goes on; `finish` writes the rest and waits. `written` counts bytes
 * whose write completed. Batches hold the caller's arrays, so those must be fresh (the
 * outputs of AEAD calls are).
 */
export class BatchWriter {
  readonly #sink: ByteSink;
  readonly #batchSize: number;
  readonly #onWritten?: (written: number) => void;
  #batch: Uint8Array[] = [];
  #bytes = 0;
  #pending?: Promise<void>;
  #pendingBytes = 0;
  /** Bytes handed to the sink whose write completed. */
  written = 0;
  /** The sink failed: nothing more may be written. */
  failed = false;

  constructor(sink: ByteSink, batchSize: number, onWritten?: (written: number) => void) {
    this.#sink = sink;
    this.#batchSize = batchSize;
    this.#onWritten = onWritten;
  }

  /** Adds parts; starts a write once a batch is full (after the previous one finished). */
  async add(...parts: Uint8Array[]): Promise<void> {
    for (const p of parts) {
      this.#batch.push(p);
      this.#bytes += p.length;
    }
    if (this.#bytes >= this.#batchSize) await this.#start();
  }

  /** Writes whatever is gathered and waits for every write. */
  async finish(): Promise<void> {
    await this.#start();
    await this.#settle();
  }

  async #settle(): Promise<void> {
    const pending = this.#pending;
    if (!pending) return;
    this.#pending = undefined;
    try {
      await pending;
    } catch (e) {
      this.failed = true;
      throw e;
    }
    this.written += this.#pendingBytes;
    this.#pendingBytes = 0;
    this.#onWritten?.(this.written);
  }

  async #start(): Promise<void> {
    await this.#settle();
    if (this.#batch.length === 0) return;
    const parts = this.#batch;
    this.#pendingBytes = this.#bytes;
    this.#batch = [];
    this.#bytes = 0;
    garbageHint(this.#pendingBytes);
    this.#pending = this.#sink.write(parts);
    this.#pending.catch(() => {}); // observed by #settle
  }
}

/** Hands each batch to `write` as one array (e.g. the CLI's stdout). */
export function callbackSink(write: (data: Bytes) => Promise<void>): ByteSink {
  return {
    // Small parts (length words) are joined to their neighbours; large ones go as they are.
    async write(parts) {
      let small: Uint8Array[] = [];
      for (const p of parts) {
        if (p.length >= 64 * 1024) {
          if (small.length > 0) await write(concatBytes(...small));
          small = [];
          await write(p as Bytes);
        } else small.push(p);
      }
      if (small.length > 0) await write(concatBytes(...small));
    },
  };
}

/** Collects everything written (tests, small messages). */
export function memorySink(): ByteSink & { bytes(): Bytes; length: number } {
  const parts: Uint8Array[] = [];
  let length = 0;
  return {
    write(batch) {
      for (const p of batch) {
        parts.push(p.slice());
        length += p.length;
      }
      return Promise.resolve();
    },
    bytes: () => concatBytes(...parts),
    get length() {
      return length;
    },
  };
}
