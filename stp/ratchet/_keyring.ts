/**
 * The owner's side of the prekeys (SPEC §25.2, §25.7): the signed prekey (X25519 and
 * X-Wing, rotated weekly, each replaced one kept 14 days for initial messages still on
 * their way) and the one-time prekeys, each deleted when an initial message uses it. The
 * keyring holds secrets: it is serialised for storage (encrypted by the caller) and
 * changes only through these calls.
 * @module
 */
import {
  type Bytes,
  concatBytes,
  copyBytes,
  equalBytes,
  fromHex,
  randomBytes,
  toHex,
  wipe,
} from "../../core/bytes.ts";
import { CborReader, type CborValue, decodeCbor, encodeCbor } from "../../core/cbor.ts";
import { MissiveError } from "../../core/errors.ts";
import { getCryptoProvider } from "../../crypto/mod.ts";
import type { CryptoProvider } from "../../crypto/provider.ts";
import type { Identity } from "../../keys/identity.ts";
import {
  ID_SIZE,
  type InitialHeader,
  KEY_SIZE,
  MAX_PREKEY_ID,
  MAX_UPLOAD_ONE_TIME,
  type OneTimePrekey,
  type PrekeyBundle,
  type PrekeyUpload,
  readOneTimePrekey,
  readSignedPrekey,
  type SignedPrekey,
  signedPrekeyValue,
} from "./_format.ts";
import { signedPrekeyTranscript } from "./_kdf.ts";

const DAY = 86_400_000;
/** A signed prekey is replaced once it is this old (SPEC §25.7). */
export const SIGNED_PREKEY_ROTATION = 7 * DAY;
/** A replaced signed prekey is kept this long, for initial messages still on their way. */
export const SIGNED_PREKEY_GRACE = 14 * DAY;
/** Most one-time prekeys a keyring holds. */
export const MAX_HELD_ONE_TIME = 1000;
/** Most initial messages without a one-time prekey remembered per signed prekey (replay). */
export const MAX_SEEN_PER_SIGNED_PREKEY = 10_000;
/** Signed prekeys held at once: the current one and those in their grace period. */
const MAX_HELD_SIGNED = 8;

interface HeldSigned {
  public: SignedPrekey;
  secret: Bytes;
  kemSeed: Bytes;
  /** When a newer signed prekey replaced it; absent for the current one. */
  replacedAt?: number;
  /** Ephemeral keys (hex) of initial messages accepted without a one-time prekey. */
  seen: Set<string>;
}

interface HeldOneTime {
  public: OneTimePrekey;
  secret: Bytes;
  /** Uploaded to a relay or handed out in a bundle: never handed out again. */
  published: boolean;
}

interface KeyringData {
  ownerId: Bytes;
  signed: HeldSigned[];
  oneTime: Map<number, HeldOneTime>;
  nextSignedId: number;
  nextOneTimeId: number;
}

/** Options of keyring operations that make keys. */
export interface KeyringOptions {
  /** The primitives; default `getCryptoProvider()`. */
  crypto?: CryptoProvider;
  /** Secure random bytes; a seeded source only to make vectors. */
  random?: (length: number) => Bytes;
  /** The clock, ms; `Date.now()` by default. */
  now?: number;
}

const nextId = (id: number) => (id >= MAX_PREKEY_ID ? 1 : id + 1);

async function makeSigned(
  crypto: CryptoProvider,
  identity: Identity,
  id: number,
  options: { random: (n: number) => Bytes; now: number },
): Promise<HeldSigned> {
  const secret = options.random(32);
  const kemSeed = options.random(32);
  const unsigned = {
    id,
    publicKey: await crypto.x25519PublicKey(secret),
    kemPublicKey: await crypto.xwingPublicKey(kemSeed),
    created: options.now,
  };
  const signature = await crypto.ed25519Sign(
    identity.signingSeed,
    signedPrekeyTranscript(identity.card.id, unsigned),
  );
  return { public: { ...unsigned, signature }, secret, kemSeed, seen: new Set() };
}

/**
 * A held one-time prekey as one byte string (SPEC §25.8): uint32be(id) ‖ public key ‖
 * secret ‖ published (00 or 01). One CBOR item each keeps 1,000 within the decoder's cap.
 */
const ONE_TIME_SIZE = 4 + 32 + 32 + 1;

function packOneTime(o: HeldOneTime): Bytes {
  const out = new Uint8Array(ONE_TIME_SIZE);
  new DataView(out.buffer).setUint32(0, o.public.id);
  out.set(o.public.publicKey, 4);
  out.set(o.secret, 36);
  out[68] = o.published ? 1 : 0;
  return out;
}

function unpackOneTime(v: CborValue, context: string): HeldOneTime {
  if (!(v instanceof Uint8Array) || v.length !== ONE_TIME_SIZE || v[68] > 1) {
    throw new MissiveError("malformed", `${context}: not ${ONE_TIME_SIZE} bytes ending 00 or 01`);
  }
  const pub = readOneTimePrekey(
    new Map<number, CborValue>([
      [1, new DataView(v.buffer, v.byteOffset, 4).getUint32(0)],
      [2, v.slice(4, 36)],
    ]),
    context,
  );
  return { public: pub, secret: v.slice(36, 68), published: v[68] === 1 };
}

let internals: (k: PrekeyKeyring) => KeyringData;

/**
 * An identity's prekey secrets. Make one with `PrekeyKeyring.create`, publish its
 * `upload()`, call `rotate` daily (a new signed prekey each week), and give it to
 * `acceptConversation`, which deletes the one-time prekey an initial message used.
 */
export class PrekeyKeyring {
  readonly #data: KeyringData;

  static {
    internals = (k) => k.#data;
  }

  private constructor(data: KeyringData) {
    this.#data = data;
  }

  /** A new keyring: one signed prekey and `oneTime` (default 100) one-time prekeys. */
  static async create(
    identity: Identity,
    options: KeyringOptions & { oneTime?: number } = {},
  ): Promise<PrekeyKeyring> {
    const crypto = options.crypto ?? await getCryptoProvider();
    const random = options.random ?? randomBytes;
    const signed = await makeSigned(crypto, identity, 1, {
      random,
      now: options.now ?? Date.now(),
    });
    const keyring = new PrekeyKeyring({
      ownerId: identity.card.id,
      signed: [signed],
      oneTime: new Map(),
      nextSignedId: 2,
      nextOneTimeId: 1,
    });
    await keyring.addOneTimePrekeys(options.oneTime ?? 100, { crypto, random });
    return keyring;
  }

  /** The owner's identity ID. */
  get ownerId(): Bytes {
    return this.#data.ownerId;
  }

  /** The current signed prekey (public). */
  get signedPrekey(): SignedPrekey {
    return this.#data.signed[this.#data.signed.length - 1].public;
  }

  /** One-time prekeys held (published or not), and those not yet published. */
  get oneTimeCount(): { held: number; unpublished: number } {
    let unpublished = 0;
    for (const o of this.#data.oneTime.values()) if (!o.published) unpublished++;
    return { held: this.#data.oneTime.size, unpublished };
  }

  /**
   * Replaces the signed prekey when it is `SIGNED_PREKEY_ROTATION` old, and erases those
   * replaced more than `SIGNED_PREKEY_GRACE` ago. Returns true when it made a new one
   * (publish `upload()` then).
   */
  async rotate(identity: Identity, options: KeyringOptions = {}): Promise<boolean> {
    const d = this.#data;
    this.#checkOwner(identity);
    const now = options.now ?? Date.now();
    for (
      const s of d.signed.filter((s) => s.replacedAt && now - s.replacedAt >= SIGNED_PREKEY_GRACE)
    ) {
      wipe(s.secret);
      wipe(s.kemSeed);
    }
    d.signed = d.signed.filter((s) => !(s.replacedAt && now - s.replacedAt >= SIGNED_PREKEY_GRACE));
    const current = d.signed[d.signed.length - 1];
    if (now - current.public.created < SIGNED_PREKEY_ROTATION) return false;
    const crypto = options.crypto ?? await getCryptoProvider();
    const random = options.random ?? randomBytes;
    const made = await makeSigned(crypto, identity, d.nextSignedId, { random, now });
    current.replacedAt = now;
    d.signed.push(made);
    d.nextSignedId = nextId(d.nextSignedId);
    while (d.signed.length > MAX_HELD_SIGNED) {
      const old = d.signed.shift()!;
      wipe(old.secret);
      wipe(old.kemSeed);
    }
    return true;
  }

  /** Makes `count` new one-time prekeys (unpublished); `full` beyond MAX_HELD_ONE_TIME. */
  async addOneTimePrekeys(
    count: number,
    options: Omit<KeyringOptions, "now"> = {},
  ): Promise<OneTimePrekey[]> {
    const d = this.#data;
    if (!Number.isSafeInteger(count) || count < 0) {
      throw new MissiveError("usage", `ratchet keyring: ${count} is not a prekey count`);
    }
    if (d.oneTime.size + count > MAX_HELD_ONE_TIME) {
      throw new MissiveError(
        "full",
        `ratchet keyring: ${d.oneTime.size} one-time prekeys held; ${count} more would pass ${MAX_HELD_ONE_TIME}`,
      );
    }
    const crypto = options.crypto ?? await getCryptoProvider();
    const random = options.random ?? randomBytes;
    const made: OneTimePrekey[] = [];
    for (let i = 0; i < count; i++) {
      while (d.oneTime.has(d.nextOneTimeId)) d.nextOneTimeId = nextId(d.nextOneTimeId);
      const secret = random(32);
      const pub = { id: d.nextOneTimeId, publicKey: await crypto.x25519PublicKey(secret) };
      d.oneTime.set(pub.id, { public: pub, secret, published: false });
      d.nextOneTimeId = nextId(d.nextOneTimeId);
      made.push(pub);
    }
    return made;
  }

  /**
   * What to publish: the current signed prekey and up to 100 unpublished one-time
   * prekeys. Call `markPublished` once the relay has them, so none is handed out twice.
   */
  upload(): PrekeyUpload {
    const oneTimePrekeys = [...this.#data.oneTime.values()].filter((o) => !o.published)
      .slice(0, MAX_UPLOAD_ONE_TIME).map((o) => o.public);
    return { identityId: this.ownerId, signedPrekey: this.signedPrekey, oneTimePrekeys };
  }

  /** Records that an upload's one-time prekeys are published. */
  markPublished(upload: PrekeyUpload): void {
    for (const o of upload.oneTimePrekeys) {
      const held = this.#data.oneTime.get(o.id);
      if (held && equalBytes(held.public.publicKey, o.publicKey)) held.published = true;
    }
  }

  /**
   * A bundle to hand over directly (in a friend request): the signed prekey and, when
   * `oneTime` (default true) and one is unpublished, a one-time prekey, marked published.
   */
  bundle(options: { oneTime?: boolean } = {}): PrekeyBundle {
    const bundle: PrekeyBundle = { identityId: this.ownerId, signedPrekey: this.signedPrekey };
    if (options.oneTime ?? true) {
      const free = [...this.#data.oneTime.values()].find((o) => !o.published);
      if (free) {
        free.published = true;
        bundle.oneTimePrekey = free.public;
      }
    }
    return bundle;
  }

  /** The keyring's bytes (SPEC §25.8). They hold secrets: store them encrypted. */
  serialize(): Bytes {
    const d = this.#data;
    const signed = d.signed.map((s) => {
      const m = new Map<number, CborValue>([
        [1, signedPrekeyValue(s.public)],
        [2, s.secret],
        [3, s.kemSeed],
      ]);
      if (s.replacedAt !== undefined) m.set(4, s.replacedAt);
      m.set(5, concatBytes(...[...s.seen].map((h) => fromHex(h)!)));
      return m;
    });
    const oneTime = [...d.oneTime.values()].map(packOneTime);
    return encodeCbor(
      new Map<number, CborValue>([
        [1, 1],
        [2, d.ownerId],
        [3, d.nextSignedId],
        [4, d.nextOneTimeId],
        [5, signed],
        [6, oneTime],
      ]),
    );
  }

  /** Restores a keyring from `serialize()`; `malformed` on any deviation. */
  static restore(bytes: Uint8Array): PrekeyKeyring {
    const context = "ratchet keyring";
    const r = CborReader.from(decodeCbor(bytes, context), context).onlyKeys([1, 2, 3, 4, 5, 6]);
    if (r.uint(1) !== 1) throw new MissiveError("malformed", `${context}: unknown format`);
    const signed = r.array(5, MAX_HELD_SIGNED).map((v, i) => {
      const c = `${context}: signed prekey ${i}`;
      const s = CborReader.from(v, c).onlyKeys([1, 2, 3, 4, 5]);
      const packed = s.bytes(5, { max: MAX_SEEN_PER_SIGNED_PREKEY * KEY_SIZE });
      if (packed.length % KEY_SIZE !== 0) {
        throw new MissiveError("malformed", `${c}: field 5: not whole 32-byte keys`);
      }
      const seen = Array.from(
        { length: packed.length / KEY_SIZE },
        (_, j) => toHex(packed.subarray(j * KEY_SIZE, (j + 1) * KEY_SIZE)),
      );
      const held: HeldSigned = {
        public: readSignedPrekey(s.raw(1), c),
        secret: copyBytes(s.bytes(2, KEY_SIZE)),
        kemSeed: copyBytes(s.bytes(3, KEY_SIZE)),
        seen: new Set(seen),
      };
      const replacedAt = s.optUint(4);
      if (replacedAt !== undefined) held.replacedAt = replacedAt;
      return held;
    });
    if (signed.length === 0 || signed.slice(0, -1).some((s) => s.replacedAt === undefined)) {
      throw new MissiveError("malformed", `${context}: field 5: no current signed prekey`);
    }
    const oneTime = new Map<number, HeldOneTime>();
    for (const [i, v] of r.array(6, MAX_HELD_ONE_TIME).entries()) {
      const held = unpackOneTime(v, `${context}: one-time prekey ${i}`);
      if (oneTime.has(held.public.id)) {
        throw new MissiveError("malformed", `${context}: one-time prekey ${i}: ID repeats`);
      }
      oneTime.set(held.public.id, held);
    }
    return new PrekeyKeyring({
      ownerId: copyBytes(r.bytes(2, ID_SIZE)),
      signed,
      oneTime,
      nextSignedId: r.uint(3, MAX_PREKEY_ID),
      nextOneTimeId: r.uint(4, MAX_PREKEY_ID),
    });
  }

  /** Overwrites every secret; the keyring is unusable afterwards. */
  close(): void {
    for (const s of this.#data.signed) [s.secret, s.kemSeed].forEach(wipe);
    for (const o of this.#data.oneTime.values()) wipe(o.secret);
    this.#data.signed = [];
    this.#data.oneTime.clear();
  }

  #checkOwner(identity: Identity): void {
    if (!equalBytes(identity.card.id, this.#data.ownerId)) {
      throw new MissiveError("usage", "ratchet keyring: this keyring belongs to another identity");
    }
  }
}

/** The secrets an initial message names, or the reason it cannot be accepted. */
export interface PrekeySecrets {
  signedPrekey: SignedPrekey;
  signedSecret: Bytes;
  kemSeed: Bytes;
  oneTimePrekey?: OneTimePrekey;
  oneTimeSecret?: Bytes;
}

/**
 * Finds the prekeys an initial header names (SPEC §25.6 accept steps 4–5): `key` when the
 * signed prekey is not held (expired), `replay` when its one-time prekey is gone (used)
 * or, without one, the same ephemeral key was accepted before.
 */
export function lookupPrekeys(
  keyring: PrekeyKeyring,
  identity: Identity,
  h: InitialHeader,
): PrekeySecrets {
  const d = internals(keyring);
  if (!equalBytes(identity.card.id, d.ownerId) || d.signed.length === 0) {
    throw new MissiveError(
      "usage",
      "ratchet: the keyring belongs to another identity, or is closed",
    );
  }
  const signed = d.signed.find((s) => s.public.id === h.signedPrekeyId);
  if (!signed) {
    throw new MissiveError(
      "key",
      `ratchet: signed prekey ${h.signedPrekeyId} is not held (replaced more than ` +
        `${SIGNED_PREKEY_GRACE / DAY} days ago, or never ours)`,
    );
  }
  const out: PrekeySecrets = {
    signedPrekey: signed.public,
    signedSecret: signed.secret,
    kemSeed: signed.kemSeed,
  };
  if (h.oneTimePrekeyId !== undefined) {
    const o = d.oneTime.get(h.oneTimePrekeyId);
    if (!o) {
      throw new MissiveError(
        "replay",
        `ratchet: one-time prekey ${h.oneTimePrekeyId} is used or unknown (a replayed initial message?)`,
      );
    }
    out.oneTimePrekey = o.public;
    out.oneTimeSecret = o.secret;
  } else if (signed.seen.has(toHex(h.ephemeralKey))) {
    throw new MissiveError(
      "replay",
      "ratchet: this initial message was accepted before (a replay)",
    );
  } else if (signed.seen.size >= MAX_SEEN_PER_SIGNED_PREKEY) {
    throw new MissiveError(
      "full",
      `ratchet: ${MAX_SEEN_PER_SIGNED_PREKEY} initial messages without a one-time prekey under ` +
        `signed prekey ${signed.public.id}; rotate it and publish new one-time prekeys`,
    );
  }
  return out;
}

/**
 * Deletes the one-time prekey an accepted initial message used, or remembers its
 * ephemeral key. `replay` when another acceptance of the same message got there first
 * (two calls racing between `lookupPrekeys` and here).
 */
export function consumePrekeys(keyring: PrekeyKeyring, h: InitialHeader): void {
  const d = internals(keyring);
  if (h.oneTimePrekeyId !== undefined) {
    const o = d.oneTime.get(h.oneTimePrekeyId);
    if (!o) {
      throw new MissiveError("replay", "ratchet: this initial message was accepted meanwhile");
    }
    wipe(o.secret);
    d.oneTime.delete(h.oneTimePrekeyId);
    return;
  }
  const seen = d.signed.find((s) => s.public.id === h.signedPrekeyId)?.seen;
  const ek = toHex(h.ephemeralKey);
  if (!seen || seen.has(ek)) {
    throw new MissiveError("replay", "ratchet: this initial message was accepted meanwhile");
  }
  seen.add(ek);
}

/** Raw data for tests (internal file: not re-exported). */
export const keyringData = (k: PrekeyKeyring): Readonly<KeyringData> => internals(k);
