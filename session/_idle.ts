/**
 * The idle rule's bookkeeping (SPEC §22.7): whether the idle timer is set and when it is
 * due, and the RESEND_LAST counters in both directions. Plain arithmetic on the times the
 * machine is given; the machine turns the answers into `set-timer` / `clear-timer`
 * outputs. Internal to the session.
 * @module
 */

/** What to do with the idle timer. */
export type IdleAction = { set: number } | "clear" | undefined;

export class IdleRule {
  readonly #idleMs: number;
  #armed = false;
  /** When the idle timer is due (clock time); moved forward by each valid message. */
  #deadline = 0;
  /** RESEND_LAST sent without progress, and received without progress. */
  resends = 0;
  resendsReceived = 0;

  constructor(idleMs: number) {
    this.#idleMs = idleMs;
  }

  /** A valid expected message arrived: the resend counters start over. */
  progress(): void {
    this.resends = 0;
    this.resendsReceived = 0;
  }

  /**
   * Starts (or with `restart`, restarts) the timer while a message is due (`waiting`),
   * else stops it. A restart only moves the deadline: a timer that fires early is set
   * again for the rest, so a busy session does not clear and set one for every frame.
   */
  arm(now: number, waiting: boolean, restart: boolean): IdleAction {
    if (!waiting) {
      const was = this.#armed;
      this.#armed = false;
      return was ? "clear" : undefined;
    }
    if (this.#armed && !restart) return undefined;
    this.#deadline = now + this.#idleMs;
    if (this.#armed) return undefined;
    this.#armed = true;
    return { set: this.#deadline };
  }

  /**
   * The timer fired at `now`: "due", or the time to set it again for (the deadline moved
   * meanwhile), or undefined when it had been stopped.
   */
  fired(now: number): "due" | { set: number } | undefined {
    if (!this.#armed) return undefined;
    // Never longer than the idle time, should the clock have been set back.
    const left = Math.min(this.#deadline - now, this.#idleMs);
    if (left <= 0) {
      this.#armed = false;
      return "due";
    }
    return { set: now + left };
  }

  /** The session ended. */
  stop(): void {
    this.#armed = false;
  }
}
