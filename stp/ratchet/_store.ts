/**
 * Where published prekeys wait for senders (SPEC §25.2): a relay's store, as data
 * operations only. `publish` keeps the newest signed prekey and adds one-time prekeys;
 * `fetch` hands out a bundle with at most one one-time prekey and deletes it in the same
 * step, so none is handed out twice; with none left, the bundle has none (X3DH §3.2).
 * Signatures are the caller's to check before `publish` (`verifyPrekeyUpload`).
 * @module
 */
import { type Bytes, equalBytes, toHex } from "../../core/bytes.ts";
import { MissiveError } from "../../core/errors.ts";
import type { CryptoProvider } from "../../crypto/provider.ts";
import type { Card } from "../../keys/card.ts";
import { verifySignedPrekey } from "./_agreement.ts";
import type { OneTimePrekey, PrekeyBundle, PrekeyUpload, SignedPrekey } from "./_format.ts";

/** Most one-time prekeys a store keeps per identity (SPEC §25.7). */
export const MAX_STORED_ONE_TIME = 200;

/** A store of published prekeys, one entry per identity ID. */
export interface PrekeyStore {
  /**
   * Stores an upload: its signed prekey unless the stored one is newer, and its one-time
   * prekeys (IDs already held are skipped). `full` when more than MAX_STORED_ONE_TIME
   * would be held; nothing is stored then. Returns the count held.
   */
  publish(upload: PrekeyUpload): Promise<{ oneTimeHeld: number }>;
  /** A bundle for a sender, taking (deleting) one one-time prekey; undefined if none published. */
  fetch(identityId: Uint8Array): Promise<PrekeyBundle | undefined>;
  /** How many one-time prekeys are held, so the owner knows when to publish more. */
  oneTimeCount(identityId: Uint8Array): Promise<number>;
  /** Forgets an identity's prekeys. */
  remove(identityId: Uint8Array): Promise<void>;
}

/**
 * Checks an upload before it is stored: it belongs to `owner` (`key` otherwise) and its
 * signed prekey verifies and is current (`auth-failed`, `key`).
 */
export async function verifyPrekeyUpload(
  crypto: CryptoProvider,
  upload: PrekeyUpload,
  owner: Card,
  now: number = Date.now(),
): Promise<void> {
  if (!equalBytes(upload.identityId, owner.id)) {
    throw new MissiveError(
      "key",
      `ratchet: the upload is for ID ${toHex(upload.identityId)}, not ${owner.address}`,
    );
  }
  await verifySignedPrekey(crypto, upload.signedPrekey, owner, now);
}

interface Entry {
  signedPrekey: SignedPrekey;
  /** By ID, in the order published. */
  oneTime: Map<number, OneTimePrekey>;
}

/**
 * A `PrekeyStore` in memory, for tests and single-process relays.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createIdentity, getCryptoProvider } from "../../mod.ts";
 * import { MemoryPrekeyStore, PrekeyKeyring } from "./mod.ts";
 * const crypto = await getCryptoProvider();
 * const bob = await createIdentity(crypto, { address: "bob@example.org", stps: [[9, 1]], amps: [[1, 1]] });
 * const keyring = await PrekeyKeyring.create(bob, { oneTime: 2 });
 * const store = new MemoryPrekeyStore();
 * await store.publish(keyring.upload());
 * const first = await store.fetch(bob.card.id);
 * const second = await store.fetch(bob.card.id);
 * const third = await store.fetch(bob.card.id);
 * assert.notEqual(first?.oneTimePrekey?.id, second?.oneTimePrekey?.id);
 * assert.equal(third?.oneTimePrekey, undefined); // none left: the agreement goes on without
 * ```
 */
export class MemoryPrekeyStore implements PrekeyStore {
  readonly #entries = new Map<string, Entry>();

  publish(upload: PrekeyUpload): Promise<{ oneTimeHeld: number }> {
    const key = toHex(upload.identityId);
    const entry = this.#entries.get(key);
    const held = new Map(entry?.oneTime ?? []);
    for (const o of upload.oneTimePrekeys) if (!held.has(o.id)) held.set(o.id, o);
    if (held.size > MAX_STORED_ONE_TIME) {
      return Promise.reject(
        new MissiveError(
          "full",
          `prekey store: ${held.size} one-time prekeys would be held; at most ${MAX_STORED_ONE_TIME}`,
        ),
      );
    }
    const newer = entry && entry.signedPrekey.created > upload.signedPrekey.created;
    this.#entries.set(key, {
      signedPrekey: newer ? entry.signedPrekey : upload.signedPrekey,
      oneTime: held,
    });
    return Promise.resolve({ oneTimeHeld: held.size });
  }

  fetch(identityId: Uint8Array): Promise<PrekeyBundle | undefined> {
    const entry = this.#entries.get(toHex(identityId));
    if (!entry) return Promise.resolve(undefined);
    const bundle: PrekeyBundle = {
      identityId: new Uint8Array(identityId) as Bytes,
      signedPrekey: entry.signedPrekey,
    };
    const first = entry.oneTime.values().next();
    if (!first.done) {
      entry.oneTime.delete(first.value.id);
      bundle.oneTimePrekey = first.value;
    }
    return Promise.resolve(bundle);
  }

  oneTimeCount(identityId: Uint8Array): Promise<number> {
    return Promise.resolve(this.#entries.get(toHex(identityId))?.oneTime.size ?? 0);
  }

  remove(identityId: Uint8Array): Promise<void> {
    this.#entries.delete(toHex(identityId));
    return Promise.resolve();
  }
}
