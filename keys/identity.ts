/**
 * Secret identities (DESIGN §5) and their key files (SPEC §4). A key file is text: `#`
 * comment lines (address, ID, the public card) and an armored CBOR block that holds the
 * public card and either the secret keys or, with a passphrase, their scrypt +
 * XChaCha20-Poly1305 encryption. New identities are hybrid: beside the Ed25519 seed and
 * the X25519 key they hold an X-Wing seed, from which the card's 1,216-byte hybrid key
 * (and its ML-KEM-768 decapsulation key) is derived again on every load.
 * @module
 */
import { scryptAsync } from "@noble/hashes/scrypt.js";
import {
  type Bytes,
  concatBytes,
  equalBytes,
  randomBytes,
  toHex,
  utf8,
  wipe,
} from "../core/bytes.ts";
import { armorBlock, dearmorBlock } from "../core/armor.ts";
import { CborReader, type CborValue, decodeCbor, encodeCbor, transcript } from "../core/cbor.ts";
import type { CryptoProvider } from "../crypto/provider.ts";
import { MissiveError } from "../core/errors.ts";
import { normalizeAddress } from "./address.ts";
import {
  type Card,
  CARD_FORMAT,
  CARD_FORMAT_HYBRID,
  cardFormat,
  cardToText,
  decodeCard,
  decodeOwnCard,
  makeCard,
  type ProtocolPair,
} from "./card.ts";

/** An identity: its public card and its secret keys. */
export interface Identity {
  /** The public half: address, public keys, protocol pairs, self-signature. */
  readonly card: Card;
  /** Ed25519 seed (RFC 8032 §5.1.5), 32 bytes. */
  readonly signingSeed: Bytes;
  /** X25519 private key (RFC 7748 §5), 32 bytes. */
  readonly agreementKey: Bytes;
  /**
   * X-Wing decapsulation key, the 32-byte seed (draft-connolly-cfrg-xwing-kem §5.2):
   * present exactly when the card is hybrid (format 2).
   */
  readonly hybridSeed?: Bytes;
}

/** Options for a new identity. */
export interface CreateIdentityOptions {
  /** The address; normalised (SPEC §3.2), and a `usage` error when it is not one. */
  address: string;
  /** STP (type, version) pairs the owner can open, as the card lists them (at most 64). */
  stps: readonly ProtocolPair[];
  /** AMP (type, version) pairs the owner can read (at most 64). */
  amps: readonly ProtocolPair[];
  /** Creation time in ms; defaults to now. */
  created?: number;
  /**
   * A hybrid identity (format-2 card with an X-Wing key; the default) or a classical one
   * (format-1 card, as every card before post-quantum support).
   */
  hybrid?: boolean;
  /** Fixed secret keys (vectors and tests only); random by default. */
  signingSeed?: Uint8Array;
  /** A fixed X25519 private key, 32 bytes (vectors and tests only). */
  agreementKey?: Uint8Array;
  /** The X-Wing seed of a hybrid identity. */
  hybridSeed?: Uint8Array;
}

/**
 * Creates a new identity with fresh keys and a self-signed card: hybrid (X-Wing key in a
 * format-2 card, SPEC §3.1) unless `hybrid: false`. A bad address is `usage`; fixed
 * secret keys of the wrong length are `key`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createIdentity, fingerprint, getCryptoProvider } from "../mod.ts";
 * const crypto = await getCryptoProvider();
 * const alice = await createIdentity(crypto, {
 *   address: "alice@example.org", stps: [[2, 3]], amps: [[1, 1]],
 * });
 * assert.equal(alice.card.address, "alice@example.org");
 * assert.equal(alice.card.hybridKey?.length, 1216);
 * assert.equal(alice.card.id.length, 16);
 * assert.match(await fingerprint(crypto, alice.card), /^(\d{5} ){11}\d{5}$/);
 * const classical = await createIdentity(crypto, {
 *   address: "bob@example.org", stps: [[2, 2]], amps: [[1, 1]], hybrid: false,
 * });
 * assert.equal(classical.card.hybridKey, undefined);
 * await assert.rejects(
 *   createIdentity(crypto, { address: "not an address", stps: [], amps: [] }),
 *   { code: "usage" },
 * );
 * ```
 */
export async function createIdentity(
  provider: CryptoProvider,
  options: CreateIdentityOptions,
): Promise<Identity> {
  const hybrid = options.hybrid ?? true;
  if (!hybrid && options.hybridSeed) {
    throw new MissiveError("usage", "identity: a hybrid seed was given for a classical identity");
  }
  const signingSeed = new Uint8Array(options.signingSeed ?? randomBytes(32));
  const agreementKey = new Uint8Array(options.agreementKey ?? randomBytes(32));
  const hybridSeed = hybrid ? new Uint8Array(options.hybridSeed ?? randomBytes(32)) : undefined;
  if (
    signingSeed.length !== 32 || agreementKey.length !== 32 ||
    (hybridSeed !== undefined && hybridSeed.length !== 32)
  ) {
    throw new MissiveError("key", "identity: secret keys must be 32 bytes");
  }
  const card = await makeCard(provider, {
    address: normalizeAddress(options.address),
    signingKey: await provider.ed25519PublicKey(signingSeed),
    agreementKey: await provider.x25519PublicKey(agreementKey),
    ...(hybridSeed ? { hybridKey: await provider.xwingPublicKey(hybridSeed) } : {}),
    stps: options.stps,
    amps: options.amps,
    created: options.created ?? Date.now(),
  }, signingSeed);
  return hybridSeed ? { card, signingSeed, agreementKey, hybridSeed } : {
    card,
    signingSeed,
    agreementKey,
  };
}

const KEY_LABEL = "MISSIVE SECRET KEY";
const MAX_KEY_FILE_BYTES = 8192;
/**
 * Key-file formats follow card formats (SPEC §4): 1 holds a format-1 card and 64 secret
 * bytes, 2 a hybrid card and 96 (Ed25519 seed ‖ X25519 key ‖ X-Wing seed).
 */
const KEY_FILE = {
  1: { secretSize: 64, aeadLabel: "missive/key/v1/scrypt-xchacha20poly1305" },
  2: { secretSize: 96, aeadLabel: "missive/key/v2/scrypt-xchacha20poly1305" },
} as const;
/** Default scrypt work factor: N = 2^16, r = 8, p = 1 (64 MiB). */
export const DEFAULT_SCRYPT_LOG_N = 16;
/** Largest work factor accepted from a file (typage refuses logN > 20 likewise). */
export const MAX_SCRYPT_LOG_N = 20;

async function passphraseKey(passphrase: string, salt: Uint8Array, logN: number): Promise<Bytes> {
  return await scryptAsync(utf8(passphrase), salt, {
    N: 2 ** logN,
    r: 8,
    p: 1,
    dkLen: 32,
  }) as Bytes;
}

/**
 * Serialises an identity to key-file text, encrypted when `passphrase` is given.
 * The public card stays readable so `missive card` needs no passphrase.
 */
export async function writeKeyFile(
  provider: CryptoProvider,
  identity: Identity,
  options: { passphrase?: string; logN?: number } = {},
): Promise<string> {
  const format = cardFormat(identity.card);
  if ((format === CARD_FORMAT_HYBRID) !== (identity.hybridSeed !== undefined)) {
    throw new MissiveError("usage", "key file: the X-Wing seed and the card's format disagree");
  }
  const secret = identity.hybridSeed
    ? concatBytes(identity.signingSeed, identity.agreementKey, identity.hybridSeed)
    : concatBytes(identity.signingSeed, identity.agreementKey);
  const fields = new Map<number, CborValue>([[1, format], [2, identity.card.bytes]]);
  if (options.passphrase === undefined) {
    fields.set(3, secret);
  } else {
    const logN = options.logN ?? DEFAULT_SCRYPT_LOG_N;
    if (!Number.isInteger(logN) || logN < 10 || logN > MAX_SCRYPT_LOG_N) {
      throw new MissiveError("usage", `scrypt work factor must be 10..${MAX_SCRYPT_LOG_N}`);
    }
    const salt = randomBytes(16);
    const nonce = randomBytes(24);
    const key = await passphraseKey(options.passphrase, salt, logN);
    const aad = transcript(KEY_FILE[format].aeadLabel, identity.card.bytes, logN, salt);
    fields.set(4, logN).set(5, salt).set(6, nonce)
      .set(7, await provider.aeadEncrypt("xchacha20-poly1305", key, nonce, secret, aad));
    wipe(key);
  }
  const encoded = encodeCbor(fields);
  wipe(secret);
  const card = identity.card;
  return [
    `# missive secret key for ${card.address}${
      options.passphrase ? " (passphrase-protected)" : ""
    }`,
    `# id: ${toHex(card.id)}`,
    `# card: ${cardToText(card)}`,
    armorBlock(KEY_LABEL, encoded),
  ].join("\n");
}

/** What a key file holds before any passphrase is asked for. */
export interface KeyFileInfo {
  /** The identity's public card, checked as `decodeCard` checks any card. */
  card: Card;
  /** True when the secret keys are under a passphrase (scrypt, SPEC §4). */
  encrypted: boolean;
}

function readKeyFields(text: string) {
  const bytes = dearmorBlock(KEY_LABEL, text, {
    maxBytes: MAX_KEY_FILE_BYTES,
    allowComments: true,
    context: "key file",
  });
  const r = CborReader.from(decodeCbor(bytes, "key file"), "key file");
  const format = r.uint(1);
  if (format !== CARD_FORMAT && format !== CARD_FORMAT_HYBRID) {
    throw new MissiveError("key", `key file: unsupported format ${format}`);
  }
  return { r, format: format as 1 | 2 };
}

/** Reads the public card of a key file (no passphrase needed). */
export async function inspectKeyFile(provider: CryptoProvider, text: string): Promise<KeyFileInfo> {
  const { r } = readKeyFields(text);
  return { card: await decodeCard(provider, r.bytes(2)), encrypted: !r.has(3) };
}

/**
 * Loads an identity from key-file text. `getPassphrase` is called only when the file
 * is encrypted. A wrong passphrase or a secret that does not match the card is a `key`
 * error.
 */
export async function readKeyFile(
  provider: CryptoProvider,
  text: string,
  getPassphrase: () => Promise<string>,
): Promise<Identity> {
  try {
    const { r, format } = readKeyFields(text);
    const { secretSize, aeadLabel } = KEY_FILE[format];
    let identity: Identity | undefined;
    // The card's keys must derive from the secret keys: that also shows they are not weak.
    await decodeOwnCard(provider, r.bytes(2), async (card) => {
      if (cardFormat(card) !== format) {
        throw new MissiveError(
          "key",
          `key file: format ${format} holds a format-${cardFormat(card)} card`,
        );
      }
      let secret: Bytes;
      if (r.has(3)) {
        secret = r.bytes(3, secretSize);
      } else {
        const logN = r.uint(4, MAX_SCRYPT_LOG_N);
        if (logN < 10) throw new MissiveError("key", "key file: scrypt work factor too small");
        const salt = r.bytes(5, 16);
        const nonce = r.bytes(6, 24);
        const sealed = r.bytes(7, secretSize + 16);
        const key = await passphraseKey(await getPassphrase(), salt, logN);
        const aad = transcript(aeadLabel, card.bytes, logN, salt);
        try {
          secret = await provider.aeadDecrypt("xchacha20-poly1305", key, nonce, sealed, aad);
        } catch {
          throw new MissiveError("key", "key file: wrong passphrase (or the file was altered)");
        } finally {
          wipe(key);
        }
      }
      const id: Identity = {
        card,
        signingSeed: secret.slice(0, 32),
        agreementKey: secret.slice(32, 64),
        ...(format === CARD_FORMAT_HYBRID ? { hybridSeed: secret.slice(64) } : {}),
      };
      wipe(secret);
      const ok = equalBytes(await provider.ed25519PublicKey(id.signingSeed), card.signingKey) &&
        equalBytes(await provider.x25519PublicKey(id.agreementKey), card.agreementKey) &&
        (!id.hybridSeed ||
          equalBytes(await provider.xwingPublicKey(id.hybridSeed), card.hybridKey!));
      if (!ok) throw new MissiveError("key", "key file: secret keys do not match its card");
      identity = id;
    });
    return identity!;
  } catch (e) {
    if (e instanceof MissiveError && (e.code === "malformed" || e.code === "too-large")) {
      throw new MissiveError("key", e.message, { cause: e });
    }
    throw e;
  }
}
