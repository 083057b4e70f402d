/**
 * `age` STP, type 8 version 1 (DESIGN §4; SPEC §26): age v1 files (C2SP age), read and
 * written so that age, rage and typage users can exchange files with missive users.
 * Recipients: X25519 (`age1…`, and a missive card's X25519 key), the post-quantum hybrid
 * (`age1pq1…`), a passphrase (scrypt), `ssh-ed25519` and `ssh-rsa` keys; binary or
 * armored. age has no sender authentication: anyone who knows a recipient can write to
 * it, so an opened file never has a sender.
 *
 * Two forms: a bare age file (`encryptAge`/`decryptAge`, `sealAgeBytes`/`openAgeBytes`;
 * the CLI's `seal --stp age`), whose plaintext is the user's bytes; and the STP inside an
 * envelope (`ageV1`), whose plaintext is the inner map of SPEC §26.3.
 * @module
 */
import { type Bytes, concatBytes, randomBytes, wipe } from "../../core/bytes.ts";
import { CborReader, type CborValue, decodeCbor, encodeCbor } from "../../core/cbor.ts";
import { MissiveError } from "../../core/errors.ts";
import { getCryptoProvider } from "../../crypto/mod.ts";
import type { CryptoProvider } from "../../crypto/provider.ts";
import type { Card } from "../../keys/card.ts";
import type { Identity } from "../../keys/identity.ts";
import type { Inner, OptionPairs, StpPlugin } from "../../plugin/types.ts";
import { type AgeDecryptOptions, type AgeEncryptOptions, decryptAge, encryptAge } from "./_file.ts";
import { dearmorSource, isArmoredAge } from "./_armor.ts";
import { AgeReader, type AgeSink, type AgeSource, readHeader } from "./_format.ts";
import { parseAgeRecipient, parseIdentityFile } from "./_keys.ts";
import {
  DEFAULT_SCRYPT_LOG_N,
  hybridIdentity,
  hybridIdentityText,
  hybridPublicKey,
  hybridRecipient,
  hybridRecipientText,
  MAX_SCRYPT_LOG_N,
  scryptIdentity,
  scryptRecipient,
  x25519Identity,
  x25519IdentityText,
  x25519Recipient,
  x25519RecipientText,
} from "./_native.ts";
import type { AgeIdentity, AgeRecipient } from "./_types.ts";

export { ARMOR_BEGIN, armorAge, looksLikeAgeArmor } from "./_armor.ts";
export { bech32Decode, bech32Encode } from "./_bech32.ts";
export {
  type AgeDecryptOptions,
  type AgeEncryptOptions,
  type AgeOpened,
  decryptAge,
  encryptAge,
} from "./_file.ts";
export {
  AGE_MAGIC,
  type AgeSink,
  type AgeSource,
  looksLikeAgeFile,
  MAX_HEADER_BYTES,
  type Stanza,
} from "./_format.ts";
export {
  type IdentityFileOptions,
  isAgeRecipientText,
  MAX_KEY_FILE_BYTES,
  parseAgeRecipient,
  parseIdentityFile,
  parseRecipientsFile,
} from "./_keys.ts";
export {
  DEFAULT_SCRYPT_LOG_N,
  hybridIdentity,
  hybridIdentityText,
  hybridPublicKey,
  hybridRecipient,
  hybridRecipientText,
  MAX_SCRYPT_LOG_N,
  scryptIdentity,
  scryptRecipient,
  x25519Identity,
  x25519IdentityText,
  x25519Recipient,
  x25519RecipientText,
} from "./_native.ts";
export {
  parseSshPrivateKey,
  parseSshPublicKey,
  type SshIdentity,
  type SshPublicKey,
  sshPublicKeyLine,
  sshRecipient,
} from "./_ssh.ts";
export { AgePayloadError, CHUNK_SIZE } from "./_stream.ts";
export type {
  AgeIdentity,
  AgeKind,
  AgeRecipient,
  WrapContext as AgeWrapContext,
} from "./_types.ts";

/** STP type number of `age`. */
export const AGE_TYPE = 8;

/** Options of the `age` STP (inside an envelope). */
export interface AgeOptions {
  /** Recipients besides the cards (seal): `age1…`, `age1pq1…`, SSH keys. */
  ageRecipients?: readonly AgeRecipient[];
  /** Identities besides the opener's missive identity (open). */
  ageIdentities?: readonly AgeIdentity[];
  /** A passphrase (scrypt): the only recipient when sealing; an identity when opening. */
  passphrase?: string;
  /** scrypt work factor (log2 N) for sealing with a passphrase (default 18). */
  workFactor?: number;
}

const OPTION_NAMES = ["recipient", "identity", "passphrase", "work-factor"];

/**
 * `AgeOptions` from `--option NAME=VALUE` text: `recipient` (one or more recipients,
 * separated by white space or commas), `identity` (`AGE-SECRET-KEY-…` lines, separated
 * likewise), `passphrase`, `work-factor`. Unknown names are `usage` errors.
 */
export async function parseAgeOptions(
  pairs: OptionPairs,
  crypto?: CryptoProvider,
): Promise<AgeOptions> {
  for (const name of Object.keys(pairs)) {
    if (!OPTION_NAMES.includes(name)) {
      throw new MissiveError(
        "usage",
        `age: unknown option ${JSON.stringify(name)} (have: ${OPTION_NAMES.join(", ")})`,
      );
    }
  }
  const list = (s: string | undefined) => (s ?? "").split(/[\s,]+/).filter(Boolean);
  const options: AgeOptions = {};
  if (pairs.recipient !== undefined) {
    options.ageRecipients = list(pairs.recipient).map((r) =>
      parseAgeRecipient(r, "option recipient")
    );
  }
  if (pairs.identity !== undefined) {
    const text = new TextEncoder().encode(list(pairs.identity).join("\n"));
    options.ageIdentities = await parseIdentityFile(text, "option identity", {
      crypto: crypto ?? await getCryptoProvider(),
    });
  }
  if (pairs.passphrase !== undefined) options.passphrase = pairs.passphrase;
  if (pairs["work-factor"] !== undefined) {
    const n = Number(pairs["work-factor"]);
    if (!/^\d{1,2}$/.test(pairs["work-factor"]) || n < 1 || n > MAX_SCRYPT_LOG_N) {
      throw new MissiveError("usage", `age: work-factor must be 1..${MAX_SCRYPT_LOG_N}`);
    }
    options.workFactor = n;
  }
  return options;
}

/**
 * A new age identity file, as age-keygen writes it (`# created:`, `# public key:`, the
 * `AGE-SECRET-KEY-1…` line), or with `pq` a hybrid one (`AGE-SECRET-KEY-PQ-1…`,
 * recipient `age1pq1…`); and its recipient.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { newAgeIdentityFile } from "./mod.ts";
 * const { text, recipient } = await newAgeIdentityFile({ now: 0 });
 * assert.match(text, /^# created: 1970-01-01T00:00:00Z\n# public key: age1/);
 * assert.match(recipient, /^age1[02-9ac-hj-np-z]{58}$/);
 * ```
 */
export async function newAgeIdentityFile(
  options: { pq?: boolean; crypto?: CryptoProvider; now?: number } = {},
): Promise<{ text: string; recipient: string }> {
  const crypto = options.crypto ?? await getCryptoProvider();
  const secret = randomBytes(32);
  try {
    const recipient = options.pq
      ? hybridRecipientText(await hybridPublicKey(crypto, secret))
      : x25519RecipientText(await crypto.x25519PublicKey(secret));
    const identity = options.pq ? hybridIdentityText(secret) : x25519IdentityText(secret);
    const created = new Date(options.now ?? Date.now()).toISOString().replace(/\.\d{3}Z$/, "Z");
    return {
      text: `# created: ${created}\n# public key: ${recipient}\n${identity}\n`,
      recipient,
    };
  } finally {
    wipe(secret);
  }
}

/**
 * The age recipient of a missive card: its X-Wing key as `age1pq1…` when it has one (a
 * format-2 card), else its X25519 key as `age1…`.
 */
export function cardRecipient(card: Card): AgeRecipient {
  return card.hybridKey
    ? hybridRecipient(card.hybridKey, card.address)
    : x25519Recipient(card.agreementKey, card.address);
}

/**
 * The age recipients of missive cards sealed to together with `others` (age1…, age1pq1…,
 * SSH keys). age allows no mix of post-quantum and classical recipients in one file, so
 * the cards give their `age1pq1…` recipient only when every card has an X-Wing key and
 * none of `others` is classical; otherwise all give `age1…` (the file is then only
 * classically protected: `onFallback` is told, and a card-only file with `requirePq` is a
 * `usage` error instead).
 */
export function cardRecipients(
  cards: readonly Card[],
  others: readonly AgeRecipient[] = [],
  options: { requirePq?: boolean; onFallback?: (reason: string) => void } = {},
): AgeRecipient[] {
  const allHybrid = cards.every((c) => c.hybridKey !== undefined);
  const othersClassical = others.some((r) => r.kind !== "hybrid");
  if (cards.length === 0 || (allHybrid && !othersClassical)) return cards.map(cardRecipient);
  const reason = allHybrid
    ? "another recipient is classical (age allows no mix)"
    : `${cards.filter((c) => !c.hybridKey).map((c) => c.address).join(", ")} has no ` +
      "post-quantum key (a format-1 card)";
  if (options.requirePq) {
    throw new MissiveError("usage", `age: --require-pq, but ${reason}`);
  }
  if (cards.some((c) => c.hybridKey)) {
    options.onFallback?.(`age: sealing with X25519 (age1…) only: ${reason}`);
  }
  return cards.map((c) => x25519Recipient(c.agreementKey, c.address));
}

/** The age identities of a missive identity: its X25519 key and, if it has one, its X-Wing seed. */
export function ageIdentities(identity: Identity): AgeIdentity[] {
  return [
    x25519Identity(identity.agreementKey),
    ...(identity.hybridSeed ? [hybridIdentity(identity.hybridSeed)] : []),
  ];
}

/**
 * The header of an age file read from `source` (binary or armored), without any key:
 * what `missive inspect` shows. Stanza bodies are left out.
 */
export async function readAgeHeader(
  source: AgeSource,
): Promise<{ armored: boolean; stanzas: { type: string; args: readonly string[] }[] }> {
  let reader = new AgeReader(source);
  const head = await reader.peek(2048);
  const armored = isArmoredAge(head);
  if (armored) reader = new AgeReader(dearmorSource(reader));
  const header = await readHeader(reader);
  return { armored, stanzas: header.stanzas.map((s) => ({ type: s.type, args: s.args })) };
}

/** A source over bytes held in memory. */
function memorySource(bytes: Uint8Array): AgeSource {
  let at = 0;
  return {
    readInto(target) {
      const n = Math.min(target.length, bytes.length - at);
      target.set(bytes.subarray(at, at + n));
      at += n;
      return Promise.resolve(n);
    },
  };
}

/** A sink that keeps what it is given (each part must be fresh, as the payload's are). */
function memorySink(): AgeSink & { bytes(): Bytes } {
  const parts: Uint8Array[] = [];
  return {
    write(batch) {
      parts.push(...batch);
      return Promise.resolve();
    },
    bytes: () => concatBytes(...parts),
  };
}

/**
 * Encrypts bytes held in memory to an age file (binary, or armored with `armor`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openAgeBytes, sealAgeBytes, x25519Identity, x25519Recipient } from "./mod.ts";
 * import { getCryptoProvider } from "../../crypto/mod.ts";
 * const crypto = await getCryptoProvider();
 * const secret = globalThis.crypto.getRandomValues(new Uint8Array(32));
 * const file = await sealAgeBytes(new TextEncoder().encode("hi"), {
 *   recipients: [x25519Recipient(await crypto.x25519PublicKey(secret))],
 * });
 * const plain = await openAgeBytes(file, { identities: [x25519Identity(secret)] });
 * assert.equal(new TextDecoder().decode(plain), "hi");
 * ```
 */
export async function sealAgeBytes(
  plaintext: Uint8Array,
  options: AgeEncryptOptions,
): Promise<Bytes> {
  const sink = memorySink();
  await encryptAge(memorySource(plaintext), sink, options);
  return sink.bytes();
}

/** Decrypts an age file (binary or armored) held in memory. */
export async function openAgeBytes(file: Uint8Array, options: AgeDecryptOptions): Promise<Bytes> {
  const sink = memorySink();
  await decryptAge(memorySource(file), sink, options);
  return sink.bytes();
}

const PROPERTIES = {
  confidentiality: true,
  authentication: "none",
  nonRepudiation: false,
  forwardSecrecy: false,
  multiRecipient: true,
  // X25519, hybrid and scrypt stanzas name nobody (ssh ones carry a 4-byte key tag).
  hiddenRecipients: true,
} as const;

/** The warning every opened age message carries: the sender is unknown. */
export const AGE_UNAUTHENTICATED =
  "age: unauthenticated: anyone who knows a recipient of this file could have written it";

/** The inner map's fields (SPEC §26.3). */
const INNER_KEYS = [1, 2, 3, 4, 5, 7, 8, 9];

/** The `age` STP: the envelope's payload is an age file holding the inner map. */
export const ageV1: StpPlugin<AgeOptions> = {
  kind: "stp",
  type: AGE_TYPE,
  version: 1,
  name: "age",
  description: "age v1 file (X25519, age1pq1 hybrid, scrypt, SSH keys); sender not authenticated",
  properties: PROPERTIES,
  parseOptions: (pairs) => parseAgeOptions(pairs),
  async seal(inner, ctx) {
    const o = ctx.options;
    const recipients: AgeRecipient[] = [
      ...cardRecipients(ctx.recipients, o.ageRecipients ?? []),
      ...(o.ageRecipients ?? []),
    ];
    if (o.passphrase !== undefined) {
      recipients.push(scryptRecipient(o.passphrase, o.workFactor ?? DEFAULT_SCRYPT_LOG_N));
    }
    const fields = new Map<number, CborValue>([
      [1, inner.nonce],
      [2, inner.timestamp],
      [3, inner.ampType],
      [4, inner.ampVersion],
      [5, inner.body],
      [7, ctx.header.protocolType],
      [8, ctx.header.protocolVersion],
    ]);
    if (ctx.header.sequenceNumber !== undefined) fields.set(9, ctx.header.sequenceNumber);
    return await sealAgeBytes(encodeCbor(fields), {
      recipients,
      crypto: ctx.crypto,
      random: ctx.random,
    });
  },
  async open(payload, ctx) {
    const o = ctx.options;
    const identities: AgeIdentity[] = [...(o.ageIdentities ?? [])];
    if (ctx.identity) identities.push(...ageIdentities(ctx.identity));
    if (o.passphrase !== undefined) identities.push(scryptIdentity(o.passphrase));
    const plain = await openAgeBytes(payload, { identities, crypto: ctx.crypto });
    const r = CborReader.from(decodeCbor(plain, "age inner"), "age inner").onlyKeys(INNER_KEYS);
    const innerMessage: Inner = {
      nonce: r.bytes(1, 16),
      timestamp: r.uint(2),
      ampType: r.uint(3, 0xffff),
      ampVersion: r.uint(4, 0xffff),
      body: r.bytes(5),
    };
    // age has no associated data: the envelope header travels inside and must match.
    const h = ctx.header;
    if (
      r.uint(7, 0xffff) !== h.protocolType || r.uint(8, 0xffff) !== h.protocolVersion ||
      r.optUint(9) !== h.sequenceNumber
    ) {
      throw new MissiveError("auth-failed", "age: the envelope header does not match the file");
    }
    return { inner: innerMessage, warnings: [AGE_UNAUTHENTICATED] };
  },
};
