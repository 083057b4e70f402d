/**
 * Non-INVITE transactions (RFC 3261 §17.1.2 client, §17.2.2 server), with the timers
 * injectable so tests can run them on a fake clock.
 * @module
 */
import { MissiveError } from "../../core/errors.ts";
import type { SipResponse } from "./_message.ts";

/** RFC 3261 §17.1.1.1 timer values, in milliseconds. */
export interface SipTimers {
  /** RTT estimate; Timer E starts here and Timer F is 64·T1. Default 500. */
  t1: number;
  /** Cap on the retransmit interval. Default 4000. */
  t2: number;
}

/** The defaults of RFC 3261 §17.1.1.1. */
export const DEFAULT_TIMERS: SipTimers = { t1: 500, t2: 4000 };

/** Where timers come from; tests pass a fake clock. */
export interface Scheduler {
  set(f: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

/** The real clock. Timers are unref'd where the runtime allows so they never hold a process. */
export const realScheduler: Scheduler = {
  set(f, ms) {
    const h = setTimeout(f, ms);
    (h as { unref?: () => void }).unref?.();
    return h;
  },
  clear: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

type ClientState = "trying" | "proceeding" | "done";

/**
 * One non-INVITE client transaction. `transmit` (re)sends the request; over UDP it is
 * called again on Timer E, starting at T1 and doubling to T2 (§17.1.2.2); a provisional
 * response moves to T2 spacing; Timer F (64·T1) ends it with a `timeout` error. Over a
 * reliable transport only Timer F runs.
 */
export class ClientTransaction {
  #state: ClientState = "trying";
  #timerE: unknown;
  #timerF: unknown;
  #interval: number;
  #resolve!: (r: SipResponse) => void;
  #reject!: (e: unknown) => void;
  readonly #transmit: () => void;
  readonly #timers: SipTimers;
  readonly #clock: Scheduler;
  readonly #reliable: boolean;
  /** Settles with the final response (any 2xx–6xx), or rejects with `timeout`/`network`. */
  readonly done: Promise<SipResponse>;

  constructor(
    transmit: () => void,
    options: {
      reliable: boolean;
      timers: SipTimers;
      clock: Scheduler;
      what: string;
      /** A caller's deadline shorter than Timer F (e.g. `send --timeout`). */
      limitMs?: number;
    },
  ) {
    this.#transmit = transmit;
    this.#timers = options.timers;
    this.#clock = options.clock;
    this.#reliable = options.reliable;
    this.#interval = options.timers.t1;
    this.done = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    const timeoutMs = Math.min(64 * options.timers.t1, options.limitMs ?? Infinity);
    this.#timerF = this.#clock.set(() => {
      this.#fail(
        new MissiveError(
          "timeout",
          `sip: no final response to ${options.what} within ${timeoutMs} ms (RFC 3261 Timer F)`,
        ),
      );
    }, timeoutMs);
    this.#send();
    if (!this.#reliable) this.#armE();
  }

  #send(): void {
    try {
      this.#transmit();
    } catch (e) {
      this.#fail(e);
    }
  }

  #armE(): void {
    this.#timerE = this.#clock.set(() => {
      if (this.#state === "done") return;
      this.#send();
      // §17.1.2.2: in Trying the interval doubles up to T2; in Proceeding it is T2.
      this.#interval = this.#state === "trying"
        ? Math.min(2 * this.#interval, this.#timers.t2)
        : this.#timers.t2;
      this.#armE();
    }, this.#interval);
  }

  /** Feeds a response whose branch and method matched this transaction. */
  receive(response: SipResponse): void {
    if (this.#state === "done") return;
    if (response.status < 200) {
      if (this.#state === "trying" && !this.#reliable) {
        this.#state = "proceeding";
        this.#clock.clear(this.#timerE);
        this.#interval = this.#timers.t2;
        this.#armE();
      }
      this.#state = "proceeding";
      return;
    }
    this.#finish();
    this.#resolve(response);
  }

  /** Ends the transaction with an error (transport failure, UA closing). */
  #fail(e: unknown): void {
    if (this.#state === "done") return;
    this.#finish();
    this.#reject(e);
  }

  /** Aborts from outside (the UA closed or the connection broke). */
  abort(e: MissiveError): void {
    this.#fail(e);
  }

  #finish(): void {
    this.#state = "done";
    this.#clock.clear(this.#timerE);
    this.#clock.clear(this.#timerF);
  }
}

/** Most server transactions remembered for retransmission absorption. */
export const MAX_SERVER_TRANSACTIONS = 4096;

/**
 * Server-side memory of recent requests (§17.2.2): a retransmission (same Call-ID and
 * CSeq) is answered with the stored response and not handled again. Entries live
 * 64·T1 (Timer J) and the table is bounded, oldest evicted first.
 */
export class ServerTransactions {
  readonly #entries = new Map<string, { response?: Uint8Array; timer: unknown }>();
  readonly #ttl: number;
  readonly #clock: Scheduler;

  constructor(timers: SipTimers, clock: Scheduler) {
    this.#ttl = 64 * timers.t1;
    this.#clock = clock;
  }

  /**
   * Returns "new" the first time a key is seen (and remembers it), else the stored
   * response bytes, or "pending" when the first copy has no response yet.
   */
  check(key: string): "new" | "pending" | Uint8Array {
    const entry = this.#entries.get(key);
    if (entry) return entry.response ?? "pending";
    if (this.#entries.size >= MAX_SERVER_TRANSACTIONS) {
      const [oldest, old] = this.#entries.entries().next().value!;
      this.#clock.clear(old.timer);
      this.#entries.delete(oldest);
    }
    const timer = this.#clock.set(() => this.#entries.delete(key), this.#ttl);
    this.#entries.set(key, { timer });
    return "new";
  }

  /** Stores the response sent for `key`, for later retransmissions. */
  answered(key: string, response: Uint8Array): void {
    const entry = this.#entries.get(key);
    if (entry) entry.response = response;
  }

  /** Forgets everything and stops the timers. */
  clear(): void {
    for (const { timer } of this.#entries.values()) this.#clock.clear(timer);
    this.#entries.clear();
  }
}
