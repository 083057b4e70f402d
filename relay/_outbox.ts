/**
 * Coalescing of relay messages (SPEC §23.2): what one side produces in one turn of the
 * event loop goes out as one session message — a bundle when there is more than one —
 * so a busy link pays the session's per-message cost (sealing, acknowledgement) once per
 * bundle rather than once per relay message. Order is kept.
 * @module
 */
import type { SecureChannel } from "../session/channel.ts";
import { encodeBundle, MAX_BUNDLE, MAX_RELAY_MESSAGE } from "./protocol.ts";

/** Room left in a bundle for its own CBOR framing and each item's header. */
const BUNDLE_OVERHEAD = 16;
const ITEM_OVERHEAD = 9;

interface Pending {
  bytes: Uint8Array;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** A channel's outgoing relay messages. A class: it owns a pending batch and a timer. */
export class Outbox {
  readonly #channel: SecureChannel;
  #pending: Pending[] = [];
  #scheduled = false;

  constructor(channel: SecureChannel) {
    this.#channel = channel;
  }

  /** Queues one encoded relay message; resolves once the peer acknowledged its carrier. */
  send(bytes: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ bytes, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setTimeout(() => this.#flush(), 0);
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const pending = this.#pending;
    this.#pending = [];
    let batch: Pending[] = [];
    let size = BUNDLE_OVERHEAD;
    const ship = () => {
      if (batch.length === 0) return;
      const items = batch;
      const carrier = items.length === 1 ? items[0].bytes : encodeBundle(items.map((p) => p.bytes));
      this.#channel.send(carrier).then(
        () => items.forEach((p) => p.resolve()),
        (e) => items.forEach((p) => p.reject(e)),
      );
      batch = [];
      size = BUNDLE_OVERHEAD;
    };
    for (const p of pending) {
      const cost = p.bytes.length + ITEM_OVERHEAD;
      if (batch.length === MAX_BUNDLE || size + cost > MAX_RELAY_MESSAGE) ship();
      batch.push(p);
      size += cost;
    }
    ship();
  }
}
