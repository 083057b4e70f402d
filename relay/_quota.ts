/**
 * What a relay agrees to store (SPEC §23.6, §23.12): fair quotas per (sender,
 * recipient), a cap per recipient, a cap on the whole store, and the rate of new
 * registrations per source address and relay-wide. Each refusal has its own status and
 * says which limit it met.
 * @module
 */
import type { RelayStorage, StoredCard } from "./storage.ts";
import type { RelayLimits } from "./limits.ts";
import type { RelayStatus } from "./protocol.ts";
import { BucketsByKey, TokenBucket } from "./_ratelimit.ts";

/** A refusal: its status and what it says. */
export interface Refusal {
  status: Exclude<RelayStatus, "ok">;
  detail: string;
}

const size = (n: number) =>
  n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MiB` : `${Math.ceil(n / 1024)} KiB`;

/**
 * Checks, in this order, the sender's quota for this recipient (`quota`), the
 * recipient's caps (`recipient-full`) and the store's (`store-full`) for an envelope of
 * `bytes`; undefined when it may be queued. A shared store enforces the per-sender
 * quota and its cap again when it stores the message, cluster-wide (docs/SCALE.md).
 */
export async function queueRefusal(
  store: RelayStorage,
  limits: RelayLimits,
  sender: { id: Uint8Array; address: string },
  recipient: StoredCard,
  bytes: number,
): Promise<Refusal | undefined> {
  const pair = await store.pairUsage(recipient.id, sender.id);
  if (pair.messages >= limits.quota) {
    return {
      status: "quota",
      detail: `${sender.address} already has ${pair.messages} messages waiting for ` +
        `${recipient.address} (the per-sender quota); try later`,
    };
  }
  const r = await store.usage(recipient.id);
  if (r.messages >= limits.recipientQuota || r.bytes + bytes > limits.recipientBytes) {
    return {
      status: "recipient-full",
      detail: `${recipient.address} has ${r.messages} messages (${size(r.bytes)}) waiting, ` +
        `the most this relay keeps for one recipient (${limits.recipientQuota} messages, ` +
        `${size(limits.recipientBytes)}); try later`,
    };
  }
  if (store.totalBytes + bytes > limits.storeBytes) {
    return {
      status: "store-full",
      detail: `this relay's store is full (${size(store.totalBytes)} queued of ` +
        `${size(limits.storeBytes)}); try later`,
    };
  }
  return undefined;
}

/** The rate of new registrations. A class: it holds token buckets. */
export class RegistrationGate {
  readonly #perAddress: BucketsByKey | undefined;
  readonly #relayWide: TokenBucket | undefined;
  readonly #rate: number;

  constructor(perMinute: number, now: number) {
    this.#rate = perMinute;
    if (perMinute > 0) {
      this.#perAddress = new BucketsByKey(perMinute, perMinute);
      this.#relayWide = new TokenBucket(10 * perMinute, 10 * perMinute, now);
    }
  }

  /** Takes one registration from `remote` (unknown: the relay-wide limit only). */
  admit(remote: string | undefined, now: number): Refusal | undefined {
    if (!this.#relayWide) return undefined;
    const mine = remote === undefined ? undefined : this.#perAddress!.get(remote, now);
    if (mine && !mine.take(now)) {
      const s = Math.ceil(mine.waitMs(now) / 1000);
      return {
        status: "rate-limited",
        detail: `too many new registrations from ${remote} (at most ${this.#rate} a ` +
          `minute); try again in ${s} s`,
      };
    }
    if (!this.#relayWide.take(now)) {
      const s = Math.ceil(this.#relayWide.waitMs(now) / 1000);
      return {
        status: "rate-limited",
        detail: `too many new registrations at this relay (at most ${10 * this.#rate} a ` +
          `minute); try again in ${s} s`,
      };
    }
    return undefined;
  }
}
