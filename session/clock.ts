/**
 * Time for the session's timers (SPEC §22.7), injectable so tests run the 25 s / 45 s
 * rules with a fake clock instead of real waits.
 * @module
 */

/** A timer handle, opaque to the session. */
export type TimerHandle = unknown;

/** What the session needs of time. */
export interface Clock {
  /** Milliseconds since the Unix epoch (the send time in every frame). */
  now(): number;
  /** Calls `fire` once, `ms` milliseconds from now; returns a handle for `clearTimer`. */
  setTimer(ms: number, fire: () => void): TimerHandle;
  /** Cancels a timer that has not fired (a fired or unknown handle: nothing happens). */
  clearTimer(handle: TimerHandle): void;
}

/** The real clock: Date.now and the runtime's timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer: (ms, fire) => setTimeout(fire, ms),
  clearTimer: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/**
 * A manual clock for tests: time moves only through `advance`, which fires the timers
 * that fall due, in order.
 *
 * @example
 * ```ts
 * import { FakeClock } from "./clock.ts";
 * const clock = new FakeClock(1_700_000_000_000);
 * let fired = 0;
 * clock.setTimer(45_000, () => fired++);
 * clock.advance(44_999);
 * clock.advance(1);
 * console.log(fired); // 1
 * ```
 */
export class FakeClock implements Clock {
  #now: number;
  #nextId = 1;
  #timers = new Map<number, { at: number; fire: () => void }>();

  /** A clock standing at `start` (ms since the Unix epoch) until `advance` moves it. */
  constructor(start = 1_700_000_000_000) {
    this.#now = start;
  }

  /** The fake time, ms since the Unix epoch. */
  now(): number {
    return this.#now;
  }

  /** Sets a timer that `advance` fires once the fake time reaches now + `ms`. */
  setTimer(ms: number, fire: () => void): TimerHandle {
    const id = this.#nextId++;
    this.#timers.set(id, { at: this.#now + ms, fire });
    return id;
  }

  /** Cancels a pending timer. */
  clearTimer(handle: TimerHandle): void {
    this.#timers.delete(handle as number);
  }

  /** Timers still pending. */
  get pending(): number {
    return this.#timers.size;
  }

  /** Moves time forward by `ms`, firing each timer that falls due at its own time. */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      let next: [number, { at: number; fire: () => void }] | undefined;
      for (const entry of this.#timers) {
        if (entry[1].at <= end && (!next || entry[1].at < next[1].at)) next = entry;
      }
      if (!next) break;
      this.#timers.delete(next[0]);
      this.#now = Math.max(this.#now, next[1].at);
      next[1].fire();
    }
    this.#now = end;
  }
}
