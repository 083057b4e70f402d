/**
 * Public identity cards (SPEC §3): address, Ed25519 signing key, X25519 agreement key,
 * in format 2 also an X-Wing (ML-KEM-768 + X25519) hybrid agreement key, the (type,
 * version) pairs the owner supports, a creation time, and a self-signature that binds
 * them. A card is CBOR, printed for shell use as one line `missive-card:<base64url>`.
 * Its 128-bit ID and fingerprint derive from its keys, under labels of its format.
 * @module
 */
import { type Bytes, fromBase64, toBase64, toHex } from "../core/bytes.ts";
import { CborReader, type CborValue, decodeCbor, encodeCbor, transcript } from "../core/cbor.ts";
import { ed25519KeyProblem, x25519EncodingProblem } from "../crypto/keycheck.ts";
import type { CryptoProvider } from "../crypto/provider.ts";
import { checkMlkemPublicKey, XWING_PUBLIC_KEY_SIZE } from "../crypto/xwing.ts";
import { MissiveError } from "../core/errors.ts";
import { normalizeAddress } from "./address.ts";

/** Text prefix of a one-line card. */
export const CARD_PREFIX = "missive-card:";
/** Card format 1 (field 1): signing and X25519 agreement keys. */
export const CARD_FORMAT = 1;
/** Card format 2: format 1 plus the X-Wing hybrid agreement key (field 9; SPEC §3.1). */
export const CARD_FORMAT_HYBRID = 2;
/**
 * Largest encoded card. A format-2 card with every field at its limit (254-character
 * address, 64 STP and 64 AMP pairs of uint16s, a 1,216-byte X-Wing key) is 2,529 bytes.
 */
export const MAX_CARD_SIZE = 4096;
/** Most (type, version) pairs a card may list per layer. */
const MAX_CAPABILITIES = 64;

/** Labels per card format (SPEC Appendix A). */
const LABELS = {
  1: {
    selfSig: "missive/card/v1/self-sig",
    id: "missive/id/v1",
    fingerprint: "missive/fingerprint/v1",
  },
  2: {
    selfSig: "missive/card/v2/self-sig",
    id: "missive/id/v2",
    fingerprint: "missive/fingerprint/v2",
  },
} as const;

/** A (type, version) pair. */
export type ProtocolPair = readonly [type: number, version: number];

/** The public half of an identity. */
export interface Card {
  /** The owner's address, in normal form (SPEC §3.2), at most 254 characters. */
  readonly address: string;
  /** Ed25519 public key (field 3), 32 bytes; it checks the self-signature. */
  readonly signingKey: Bytes;
  /** X25519 public key (field 4), 32 bytes: what classical STPs encrypt to. */
  readonly agreementKey: Bytes;
  /**
   * The X-Wing (ML-KEM-768 + X25519) public key, 1,216 bytes: present exactly in format-2
   * ("hybrid") cards; simple v3 and group v2 encrypt to it.
   */
  readonly hybridKey?: Bytes;
  /** STP pairs the owner can open. */
  readonly stps: readonly ProtocolPair[];
  /** AMP pairs the owner can read. */
  readonly amps: readonly ProtocolPair[];
  /** Creation time, milliseconds since the Unix epoch. */
  readonly created: number;
  /** The 64-byte Ed25519 self-signature over every other field (SPEC §3.3). */
  readonly signature: Bytes;
  /** 128-bit identity ID. */
  readonly id: Bytes;
  /** The canonical CBOR encoding of the whole card. */
  readonly bytes: Bytes;
}

/** Fields a card is made from. */
export type CardFields = Omit<Card, "signature" | "id" | "bytes">;

/** The public keys an ID and a fingerprint derive from. */
export type CardKeys = Pick<Card, "signingKey" | "agreementKey" | "hybridKey">;

/** A card's format: 2 when it holds a hybrid key, else 1. */
export const cardFormat = (card: Pick<Card, "hybridKey">): 1 | 2 =>
  card.hybridKey ? CARD_FORMAT_HYBRID : CARD_FORMAT;

const pairsValue = (pairs: readonly ProtocolPair[]): CborValue[] => pairs.map((p) => [p[0], p[1]]);

/** The keys, in transcript order: format 1 two, format 2 three. */
const keysOf = (k: CardKeys): Bytes[] =>
  k.hybridKey ? [k.signingKey, k.agreementKey, k.hybridKey] : [k.signingKey, k.agreementKey];

function selfSigTranscript(f: CardFields): Bytes {
  const format = cardFormat(f);
  return transcript(
    LABELS[format].selfSig,
    format,
    f.address,
    ...keysOf(f),
    pairsValue(f.stps),
    pairsValue(f.amps),
    f.created,
  );
}

/**
 * The 128-bit identity ID: SHA-256 over a transcript of the card's public keys, first 16
 * bytes (SPEC §3.4). Format-1 cards keep the IDs they always had.
 */
export async function identityId(provider: CryptoProvider, keys: CardKeys): Promise<Bytes> {
  const label = LABELS[cardFormat(keys)].id;
  return (await provider.sha256(transcript(label, ...keysOf(keys)))).slice(0, 16);
}

/**
 * A fingerprint to compare out of band: 12 groups of 5 digits (in the manner of
 * Signal's safety numbers) from SHA-512 over a transcript of the card's public keys.
 */
export async function fingerprint(provider: CryptoProvider, card: Card): Promise<string> {
  const label = LABELS[cardFormat(card)].fingerprint;
  const h = await provider.sha512(transcript(label, ...keysOf(card)));
  const groups: string[] = [];
  for (let i = 0; i < 12; i++) {
    let n = 0;
    for (let j = 0; j < 5; j++) n = n * 256 + h[i * 5 + j];
    groups.push(String(n % 100000).padStart(5, "0"));
  }
  return groups.join(" ");
}

function encodeFields(f: CardFields, signature: Uint8Array): Bytes {
  const m = new Map<number, CborValue>([
    [1, cardFormat(f)],
    [2, f.address],
    [3, f.signingKey],
    [4, f.agreementKey],
    [5, pairsValue(f.stps)],
    [6, pairsValue(f.amps)],
    [7, f.created],
    [8, signature],
  ]);
  if (f.hybridKey) m.set(9, f.hybridKey);
  return encodeCbor(m);
}

/** Makes and self-signs a card with the identity's signing seed. */
export async function makeCard(
  provider: CryptoProvider,
  fields: CardFields,
  signingSeed: Uint8Array,
): Promise<Card> {
  const signature = await provider.ed25519Sign(signingSeed, selfSigTranscript(fields));
  return {
    ...fields,
    signature,
    id: await identityId(provider, fields),
    bytes: encodeFields(fields, signature),
  };
}

function readPairs(r: CborReader, key: number): ProtocolPair[] {
  return r.array(key, MAX_CAPABILITIES).map((p) => {
    if (
      !Array.isArray(p) || p.length !== 2 ||
      !p.every((n) => typeof n === "number" && n >= 0 && n <= 0xffff)
    ) {
      throw new MissiveError("malformed", `card: field ${key}: expected [type, version] pairs`);
    }
    return [p[0] as number, p[1] as number] as const;
  });
}

/**
 * Cards already decoded and verified, by their bytes: a card is a pure function of its
 * bytes, and every signed message carries one, so this saves a signature check per open.
 */
const verifiedCards = new Map<string, Card>();
const VERIFIED_CARDS_MAX = 1024;

/** Decodes a card from CBOR and checks its self-signature. Throws `malformed` or `key`. */
export async function decodeCard(provider: CryptoProvider, bytes: Uint8Array): Promise<Card> {
  if (bytes.length > MAX_CARD_SIZE) {
    throw new MissiveError("too-large", `card: larger than ${MAX_CARD_SIZE} bytes`);
  }
  const cacheKey = toHex(bytes);
  const cached = verifiedCards.get(cacheKey);
  if (cached) return cached;
  const card = await decodeUncachedCard(provider, bytes, true);
  rememberCard(cacheKey, card);
  return card;
}

function rememberCard(cacheKey: string, card: Card): void {
  if (verifiedCards.size >= VERIFIED_CARDS_MAX) {
    verifiedCards.delete(verifiedCards.keys().next().value!);
  }
  verifiedCards.set(cacheKey, card);
}

/**
 * Decodes the card inside one's own key file without the weak-key checks: `prove` must
 * show that the card's keys derive from the file's secret keys (keys made from a seed are
 * never weak), and only then is the card remembered as verified. The self-signature is
 * checked as for any card. Saves a cold Ed25519 torsion check (3–10 ms) per command.
 */
export async function decodeOwnCard(
  provider: CryptoProvider,
  bytes: Uint8Array,
  prove: (card: Card) => Promise<void>,
): Promise<Card> {
  if (bytes.length > MAX_CARD_SIZE) {
    throw new MissiveError("too-large", `card: larger than ${MAX_CARD_SIZE} bytes`);
  }
  const cacheKey = toHex(bytes);
  const cached = verifiedCards.get(cacheKey);
  if (cached) {
    await prove(cached);
    return cached;
  }
  const card = await decodeUncachedCard(provider, bytes, false);
  await prove(card);
  rememberCard(cacheKey, card);
  return card;
}

async function decodeUncachedCard(
  provider: CryptoProvider,
  bytes: Uint8Array,
  checkKeys: boolean,
): Promise<Card> {
  const r = CborReader.from(decodeCbor(bytes, "card"), "card");
  const format = r.uint(1);
  if (format !== CARD_FORMAT && format !== CARD_FORMAT_HYBRID) {
    throw new MissiveError("malformed", `card: unsupported format ${format}`);
  }
  // No unknown fields: they would not be covered by the self-signature.
  r.onlyKeys(format === CARD_FORMAT ? [1, 2, 3, 4, 5, 6, 7, 8] : [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const address = r.text(2, 254);
  if (normalizeAddress(address, "malformed") !== address) {
    throw new MissiveError("malformed", "card: address is not in normal form");
  }
  const fields: CardFields = {
    address,
    signingKey: r.bytes(3, 32),
    agreementKey: r.bytes(4, 32),
    ...(format === CARD_FORMAT_HYBRID ? { hybridKey: r.bytes(9, XWING_PUBLIC_KEY_SIZE) } : {}),
    stps: readPairs(r, 5),
    amps: readPairs(r, 6),
    created: r.uint(7),
  };
  const signature = r.bytes(8, 64);
  if (checkKeys) await checkCardKeys(provider, fields);
  if (!(await provider.ed25519Verify(fields.signingKey, selfSigTranscript(fields), signature))) {
    throw new MissiveError("key", `card for ${address}: self-signature does not verify`);
  }
  return {
    ...fields,
    signature,
    id: await identityId(provider, fields),
    bytes: (bytes as Bytes).slice(),
  };
}

/** Any fixed scalar: clamped, it is a multiple of 8, so X25519(k, u) is zero exactly for u of small order. */
const SMALL_ORDER_PROBE = new Uint8Array(32).fill(0x5a);

/**
 * Refuses weak public keys (SPEC §3.7): a signing key that is not a canonical encoding of
 * a prime-order Ed25519 point, and X25519 keys (field 4, and the X25519 half of field 9)
 * that are not canonical or have small order on the curve or its twist; the ML-KEM half
 * of field 9 must pass FIPS 203's encapsulation-key check. All `key` errors.
 */
async function checkCardKeys(provider: CryptoProvider, f: CardFields): Promise<void> {
  const refuse = (what: string, why: string): never => {
    throw new MissiveError("key", `card for ${f.address}: the ${what} is ${why}`);
  };
  const signing = ed25519KeyProblem(f.signingKey);
  if (signing) refuse("signing key", signing);
  const x25519Keys: [string, Uint8Array][] = [["agreement key", f.agreementKey]];
  if (f.hybridKey) {
    x25519Keys.push(["X25519 part of the hybrid key", f.hybridKey.subarray(-32)]);
  }
  for (const [what, key] of x25519Keys) {
    const problem = x25519EncodingProblem(key);
    if (problem) refuse(what, `not canonical (${problem})`);
    try {
      await provider.x25519(SMALL_ORDER_PROBE, key);
    } catch (e) {
      if (!(e instanceof MissiveError && e.code === "auth-failed")) throw e;
      refuse(what, "of small order");
    }
  }
  if (f.hybridKey) checkMlkemPublicKey(f.hybridKey);
}

/** The one-line text form of a card. */
export function cardToText(card: Card): string {
  return CARD_PREFIX + toBase64(card.bytes, true);
}

/**
 * Parses a card from text: either the bare line or a card file (`#` comment lines and
 * blank lines allowed around exactly one card line), as SPEC §3.6 reads it. Text over
 * 8,192 characters is `too-large`; anything but one `missive-card:` line of canonical
 * base64url is `malformed`; the card itself is then checked as `decodeCard` does
 * (weak keys and a bad self-signature are `key` errors, SPEC §3.7).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cardFileText, cardToText, createIdentity, getCryptoProvider, parseCardText } from "../mod.ts";
 * const crypto = await getCryptoProvider();
 * const alice = await createIdentity(crypto, {
 *   address: "Alice@Example.org", stps: [[2, 3]], amps: [[1, 1]],
 * });
 * const line = cardToText(alice.card);
 * assert.ok(line.startsWith("missive-card:"));
 * const card = await parseCardText(crypto, line);
 * assert.equal(card.address, "alice@example.org");
 * assert.deepEqual(card.bytes, alice.card.bytes);
 * // A card file (comments around the line) parses to the same card:
 * const file = await cardFileText(crypto, alice.card);
 * assert.deepEqual((await parseCardText(crypto, file)).id, alice.card.id);
 * await assert.rejects(parseCardText(crypto, "missive-card:AAAA"), { code: "malformed" });
 * ```
 */
export async function parseCardText(provider: CryptoProvider, text: string): Promise<Card> {
  if (text.length > MAX_CARD_SIZE * 2) {
    throw new MissiveError("too-large", "card: text too long");
  }
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
  if (lines.length !== 1 || !lines[0].startsWith(CARD_PREFIX)) {
    throw new MissiveError("malformed", `card: expected one line starting with ${CARD_PREFIX}`);
  }
  const bytes = fromBase64(lines[0].slice(CARD_PREFIX.length), true);
  if (!bytes) throw new MissiveError("malformed", "card: not canonical base64url");
  return await decodeCard(provider, bytes);
}

/** True when two cards hold the same keys (same identity). */
export function sameKeys(a: Card, b: Card): boolean {
  const hybrid = (c: Card) => (c.hybridKey ? toHex(c.hybridKey) : "");
  return toHex(a.id) === toHex(b.id) && toHex(a.signingKey) === toHex(b.signingKey) &&
    toHex(a.agreementKey) === toHex(b.agreementKey) && hybrid(a) === hybrid(b);
}

/** A human-readable card file: comments for people, then the card line. */
export async function cardFileText(provider: CryptoProvider, card: Card): Promise<string> {
  return [
    `# missive card for ${card.address}`,
    `# id: ${toHex(card.id)}`,
    `# fingerprint: ${await fingerprint(provider, card)}`,
    cardToText(card),
    "",
  ].join("\n");
}

// ---------------------------------------------------------------------------------------
// CA signatures on cards (SPEC §23.11): a CA identity vouches for a card (e.g. a relay's)
// so that users who trust the CA's card need not pin every card it signed. The signature
// travels in a comment line of the card file, so a signed card file is still a card file.

const LABEL_CA_SIG = "missive/card/v1/ca-sig";
/** Text prefix of a CA signature line's value. */
export const CA_SIG_PREFIX = "missive-ca-sig:";
const CA_SIG_LINE = /^#\s*ca-sig:\s*(\S+)\s*$/;
const MAX_CA_SIG = 256;

/** A CA's signature over a card: the CA's ID and its Ed25519 signature. */
export interface CardSignature {
  caId: Bytes;
  signature: Bytes;
}

function caSigTranscript(card: Card, caId: Uint8Array): Bytes {
  return transcript(LABEL_CA_SIG, card.bytes, caId);
}

/** Signs `card` with the CA identity's signing seed. */
export async function signCard(
  provider: CryptoProvider,
  card: Card,
  ca: { card: Card; signingSeed: Uint8Array },
): Promise<CardSignature> {
  return {
    caId: ca.card.id,
    signature: await provider.ed25519Sign(ca.signingSeed, caSigTranscript(card, ca.card.id)),
  };
}

/** The `missive-ca-sig:` text of a signature: base64url CBOR `{1: CA ID, 2: signature}`. */
export function cardSignatureToText(sig: CardSignature): string {
  const m = new Map<number, CborValue>([[1, sig.caId], [2, sig.signature]]);
  return CA_SIG_PREFIX + toBase64(encodeCbor(m), true);
}

/** Parses one `missive-ca-sig:` value. Throws `malformed`. */
export function parseCardSignature(text: string): CardSignature {
  if (text.length > MAX_CA_SIG || !text.startsWith(CA_SIG_PREFIX)) {
    throw new MissiveError("malformed", `card signature: expected ${CA_SIG_PREFIX}…`);
  }
  const bytes = fromBase64(text.slice(CA_SIG_PREFIX.length), true);
  if (!bytes) throw new MissiveError("malformed", "card signature: not canonical base64url");
  const r = CborReader.from(decodeCbor(bytes, "card signature"), "card signature")
    .onlyKeys([1, 2]);
  return { caId: r.bytes(1, 16), signature: r.bytes(2, 64) };
}

/** The CA signatures in a card file's `# ca-sig:` comment lines. */
export function cardSignaturesInText(text: string): CardSignature[] {
  if (text.length > MAX_CARD_SIZE * 4) throw new MissiveError("too-large", "card: text too long");
  return text.split(/\r?\n/).map((l) => CA_SIG_LINE.exec(l.trim())?.[1]).filter((v) =>
    v !== undefined
  ).map((v) => parseCardSignature(v!));
}

/**
 * Checks that one of `signatures` is a valid signature over `card` by one of `cas`.
 * Returns the CA's card, or throws `untrusted` naming what was missing.
 */
export async function verifyCardSignature(
  provider: CryptoProvider,
  card: Card,
  signatures: readonly CardSignature[],
  cas: readonly Card[],
): Promise<Card> {
  for (const sig of signatures) {
    const ca = cas.find((c) => toHex(c.id) === toHex(sig.caId));
    if (!ca) continue;
    if (await provider.ed25519Verify(ca.signingKey, caSigTranscript(card, ca.id), sig.signature)) {
      return ca;
    }
  }
  throw new MissiveError(
    "untrusted",
    `card for ${card.address} carries no valid signature by a trusted CA ` +
      `(${signatures.length} signature(s), ${cas.length} CA card(s))`,
  );
}

/** A card file with CA signature lines (still readable as a plain card file). */
export async function signedCardFileText(
  provider: CryptoProvider,
  card: Card,
  signatures: readonly CardSignature[],
  cas: readonly Card[],
): Promise<string> {
  const lines = (await cardFileText(provider, card)).split("\n");
  const cardLine = lines.findIndex((l) => l.startsWith(CARD_PREFIX));
  const sigLines = signatures.flatMap((s) => {
    const ca = cas.find((c) => toHex(c.id) === toHex(s.caId));
    return [
      `# signed by ${ca ? ca.address : "a CA"} (id ${toHex(s.caId)})`,
      `# ca-sig: ${cardSignatureToText(s)}`,
    ];
  });
  lines.splice(cardLine, 0, ...sigLines);
  return lines.join("\n");
}
