/**
 * Who may hold a connection to the relay (SPEC §23.12): at most `maxPerAddress` from one
 * source address, at most `maxPreauth` not yet authenticated — a pool that evicts its
 * oldest member when a newcomer arrives and it is full, so a newcomer always gets its
 * chance to authenticate — and the remaining `maxConnections - maxPreauth` slots kept
 * for authenticated sessions.
 * @module
 */
import type { LinkLimits } from "./limits.ts";

/** One connection as admission sees it. */
export interface Slot {
  readonly remote: string;
  phase: "preauth" | "authenticated" | "gone";
  /** Cuts the connection (eviction). */
  readonly evict: (reason: string) => void;
}

/** The outcome of an arrival. */
export type Arrival =
  | { admitted: true; slot: Slot; evicted?: Slot }
  | { admitted: false; reason: string };

/** The relay's connection slots. A class: it owns the pool and the counts. */
export class Admission {
  readonly #limits: LinkLimits;
  /** Pre-authentication connections, oldest first (a Set keeps insertion order). */
  readonly #pool = new Set<Slot>();
  #authenticated = 0;
  readonly #perAddress = new Map<string, number>();

  constructor(limits: LinkLimits) {
    this.#limits = limits;
  }

  /** Slots held now. */
  get counts(): { preauth: number; authenticated: number } {
    return { preauth: this.#pool.size, authenticated: this.#authenticated };
  }

  /** A TCP connection from `remote` arrived. */
  arrive(remote: string, evict: (reason: string) => void): Arrival {
    const mine = this.#perAddress.get(remote) ?? 0;
    if (mine >= this.#limits.maxPerAddress) {
      return {
        admitted: false,
        reason: `${mine} connections from ${remote} (at most ${this.#limits.maxPerAddress})`,
      };
    }
    let evicted: Slot | undefined;
    if (this.#pool.size >= this.#limits.maxPreauth) {
      evicted = this.#pool.values().next().value!;
      this.leave(evicted);
      evicted.evict("evicted: the pre-authentication pool is full and a newcomer arrived");
    }
    const slot: Slot = { remote, phase: "preauth", evict };
    this.#pool.add(slot);
    this.#perAddress.set(remote, mine + 1);
    return evicted ? { admitted: true, slot, evicted } : { admitted: true, slot };
  }

  /**
   * `slot` completed its handshake: it moves to the authenticated slots if one is free
   * (true), else it must be turned away as `busy` (false; the slot stays counted until
   * it leaves).
   */
  authenticate(slot: Slot): boolean {
    if (slot.phase !== "preauth") return false;
    this.#pool.delete(slot);
    if (this.#authenticated >= this.#limits.maxConnections - this.#limits.maxPreauth) {
      slot.phase = "gone";
      this.#release(slot.remote);
      return false;
    }
    slot.phase = "authenticated";
    this.#authenticated++;
    return true;
  }

  /** The connection is gone (idempotent). */
  leave(slot: Slot): void {
    if (slot.phase === "gone") return;
    if (slot.phase === "preauth") this.#pool.delete(slot);
    else this.#authenticated--;
    slot.phase = "gone";
    this.#release(slot.remote);
  }

  #release(remote: string): void {
    const n = (this.#perAddress.get(remote) ?? 1) - 1;
    if (n > 0) this.#perAddress.set(remote, n);
    else this.#perAddress.delete(remote);
  }
}
