/**
 * Published prekeys on JetStream (SPEC §23.13, docs/SCALE.md §2.5): the newest signed
 * prekey per identity in a key-value bucket (replaced by compare-and-swap on the
 * revision, so an older upload never wins a race), and the one-time prekeys as messages
 * of a replicated stream, one subject per (owner, prekey ID). A fetch takes the oldest
 * by deleting its sequence: a delete succeeds once, so two nodes serving two fetches at
 * the same moment never hand out the same one-time prekey — the loser takes the next.
 * @module
 */
import { type Bytes, toHex } from "../../core/bytes.ts";
import {
  decodePrekeyBundle,
  encodePrekeyBundle,
  type PrekeyBundle,
  type PrekeyStore,
  type PrekeyUpload,
} from "../../stp/ratchet/mod.ts";
import { checkOneTimeHeld } from "../storage.ts";
import { isNotFound, NAMES, type Nats, nextMessage, retrying, storeError } from "./_nats.ts";

const signedKey = (hex: string) => `spk.${hex}`;
const oneTimeFilter = (hex: string) => `${NAMES.oneTimeSubject}.${hex}.>`;

/** The one-time prekey subjects held for an owner. */
async function heldSubjects(n: Nats, hex: string): Promise<Set<string>> {
  const info = await n.jsm.streams.info(NAMES.oneTime, { subjects_filter: oneTimeFilter(hex) });
  return new Set(Object.keys(info.state.subjects ?? {}));
}

/** The JetStream PrekeyStore. */
export function jetStreamPrekeys(n: Nats): PrekeyStore {
  const kv = n.signedPrekeys;
  // Whole operations are tried again on a transient failure: each step is idempotent
  // (a one-time prekey's delete succeeds once; a publish carries its subject as ID).
  const wrap = async <T>(what: string, f: () => Promise<T>): Promise<T> => {
    try {
      return await retrying(n, f);
    } catch (e) {
      throw storeError(what, e);
    }
  };
  return {
    publish: (upload: PrekeyUpload) =>
      wrap("publish-prekeys", async () => {
        const owner = toHex(upload.identityId);
        const held = await heldSubjects(n, owner);
        const subject = (id: number) => `${NAMES.oneTimeSubject}.${owner}.${id}`;
        const fresh = upload.oneTimePrekeys.filter((o) => !held.has(subject(o.id)));
        const count = held.size + fresh.length;
        checkOneTimeHeld(count);
        const bundle = encodePrekeyBundle({
          identityId: upload.identityId,
          signedPrekey: upload.signedPrekey,
        });
        for (let attempt = 0; attempt < 5; attempt++) {
          const stored = await kv.get(signedKey(owner));
          try {
            if (!stored || stored.operation !== "PUT") {
              if (stored) await kv.update(signedKey(owner), bundle, stored.revision);
              else await kv.create(signedKey(owner), bundle);
            } else if (
              decodePrekeyBundle(stored.value).signedPrekey.created <= upload.signedPrekey.created
            ) {
              await kv.update(signedKey(owner), bundle, stored.revision);
            }
            break;
          } catch (e) {
            if (attempt === 4) throw e; // another node kept writing: give up loudly
          }
        }
        for (const o of fresh) {
          // One message per subject: an ID published twice at once is stored once.
          await n.js.publish(subject(o.id), o.publicKey, { msgID: subject(o.id) })
            .catch((e) => {
              if (!/per subject/i.test(String(e))) throw e;
            });
        }
        return { oneTimeHeld: count };
      }),
    fetch: (identityId: Uint8Array) =>
      wrap("fetch-prekeys", async (): Promise<PrekeyBundle | undefined> => {
        const owner = toHex(identityId);
        const stored = await kv.get(signedKey(owner));
        if (!stored || stored.operation !== "PUT") return undefined;
        const bundle = decodePrekeyBundle(stored.value);
        let seq = 0;
        for (;;) {
          const m = await nextMessage(n, NAMES.oneTime, seq + 1, oneTimeFilter(owner))
            .catch((e) => {
              if (isNotFound(e)) return null;
              throw e;
            });
          if (!m) return bundle;
          seq = m.seq;
          const id = Number(m.subject.split(".").at(-1));
          if (!Number.isSafeInteger(id) || m.data.length !== 32) continue;
          // The compare-and-swap: only one delete of a sequence succeeds.
          const taken = await n.jsm.streams.deleteMessage(NAMES.oneTime, m.seq, false)
            .catch((e) => {
              if (isNotFound(e)) return false;
              throw e;
            });
          if (taken) {
            bundle.oneTimePrekey = { id, publicKey: new Uint8Array(m.data) as Bytes };
            return bundle;
          }
        }
      }),
    oneTimeCount: (identityId: Uint8Array) =>
      wrap("count prekeys", async () => (await heldSubjects(n, toHex(identityId))).size),
    remove: (identityId: Uint8Array) =>
      wrap("remove prekeys", async () => {
        const owner = toHex(identityId);
        await kv.purge(signedKey(owner));
        await n.jsm.streams.purge(NAMES.oneTime, { filter: oneTimeFilter(owner) });
      }),
  };
}
