/**
 * Rate limits of the relay (SPEC §23.12): a token bucket (registrations per address and
 * relay-wide) and a log that a hostile peer cannot flood — past its rate, events are
 * counted instead of written, and one summary line says how many were left out.
 * @module
 */

/** A token bucket: `burst` tokens, refilled at `perMinute`. A class: it holds a level. */
export class TokenBucket {
  readonly #burst: number;
  readonly #perMs: number;
  #level: number;
  #at: number;

  constructor(burst: number, perMinute: number, now: number) {
    this.#burst = burst;
    this.#perMs = perMinute / 60_000;
    this.#level = burst;
    this.#at = now;
  }

  #refill(now: number): void {
    this.#level = Math.min(this.#burst, this.#level + (now - this.#at) * this.#perMs);
    this.#at = now;
  }

  /** Takes one token if there is one. */
  take(now: number): boolean {
    this.#refill(now);
    if (this.#level < 1) return false;
    this.#level -= 1;
    return true;
  }

  /** Milliseconds until a token is there. */
  waitMs(now: number): number {
    this.#refill(now);
    return this.#level >= 1 ? 0 : Math.ceil((1 - this.#level) / this.#perMs);
  }

  /** True when full again (the bucket can be forgotten). */
  full(now: number): boolean {
    this.#refill(now);
    return this.#level >= this.#burst;
  }
}

/** Token buckets by key (a source address), forgotten once full again. */
export class BucketsByKey {
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #burst: number;
  readonly #perMinute: number;

  constructor(burst: number, perMinute: number) {
    this.#burst = burst;
    this.#perMinute = perMinute;
  }

  /** The bucket of `key` (created full). */
  get(key: string, now: number): TokenBucket {
    let b = this.#buckets.get(key);
    if (!b) {
      // Full buckets carry no information: prune them before the map grows.
      if (this.#buckets.size >= 4096) {
        for (const [k, old] of this.#buckets) if (old.full(now)) this.#buckets.delete(k);
      }
      b = new TokenBucket(this.#burst, this.#perMinute, now);
      this.#buckets.set(key, b);
    }
    return b;
  }
}

/** One structured log event. */
export interface LogEvent {
  event: string;
  [field: string]: string | number | boolean | undefined;
}

/**
 * A log of at most `burst` events, then one per `1000 / perSecond` ms; the events left
 * out are counted by name and reported in one `log-suppressed` event, written before the
 * next event that gets through, or by `flush`.
 */
export class LimitedLog {
  readonly #sink: (e: LogEvent) => void;
  readonly #bucket: TokenBucket;
  readonly #scope: Record<string, string | undefined>;
  readonly #now: () => number;
  #suppressed = new Map<string, number>();

  constructor(
    sink: (e: LogEvent) => void,
    options: {
      burst: number;
      perSecond: number;
      now: () => number;
      scope?: Record<string, string | undefined>;
    },
  ) {
    this.#sink = sink;
    this.#now = options.now;
    this.#bucket = new TokenBucket(options.burst, options.perSecond * 60, options.now());
    this.#scope = options.scope ?? {};
  }

  /** Writes `e` if the rate allows, else counts it. */
  emit(e: LogEvent): void {
    if (!this.#bucket.take(this.#now())) {
      this.#suppressed.set(e.event, (this.#suppressed.get(e.event) ?? 0) + 1);
      return;
    }
    this.flush();
    this.#sink(e);
  }

  /** Writes an event whatever the rate (once-per-link events such as a drop). */
  always(e: LogEvent): void {
    this.flush();
    this.#sink(e);
  }

  /** Reports what was left out so far, if anything. */
  flush(): void {
    if (this.#suppressed.size === 0) return;
    let count = 0;
    const kinds: string[] = [];
    for (const [name, n] of this.#suppressed) {
      count += n;
      kinds.push(`${name}×${n}`);
    }
    this.#suppressed = new Map();
    this.#sink({ event: "log-suppressed", ...this.#scope, count, kinds: kinds.join(" ") });
  }
}
