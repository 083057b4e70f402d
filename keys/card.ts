/**
 * Public identity cards (SPEC §3): address, Ed25519 signing key, X25519 agreement key,
 * the (type, version) pairs the owner supports, a creation time, and a self-signature
 * that binds them. A card is CBOR, printed for shell use as one line
 * `missive-card:<base64url>`. Its 128-bit ID and fingerprint derive from its keys.
 * @module
 */
import { type Bytes, fromBase64, toBase64, toHex } from "../core/bytes.ts";
import { CborReader, type CborValue, decodeCbor, encodeCbor, transcript } from "../core/cbor.ts";
import type { CryptoProvider } from "../crypto/provider.ts";
import { MissiveError } from "../core/errors.ts";
import { normalizeAddress } from "./address.ts";

/** Text prefix of a one-line card. */
export const CARD_PREFIX = "missive-card:";
/** Card format version (field 1). */
export const CARD_FORMAT = 1;
/** Largest encoded card. */
export const MAX_CARD_SIZE = 4096;
/** Most (type, version) pairs a card may list per layer. */
const MAX_CAPABILITIES = 64;

const LABEL_SELF_SIG = "missive/card/v1/self-sig";
const LABEL_ID = "missive/id/v1";
const LABEL_FINGERPRINT = "missive/fingerprint/v1";

/** A (type, version) pair. */
export type ProtocolPair = readonly [type: number, version: number];

/** The public half of an identity. */
export interface Card {
  readonly address: string;
  readonly signingKey: Bytes;
  readonly agreementKey: Bytes;
  /** STP pairs the owner can open. */
  readonly stps: readonly ProtocolPair[];
  /** AMP pairs the owner can read. */
  readonly amps: readonly ProtocolPair[];
  /** Creation time, milliseconds since the Unix epoch. */
  readonly created: number;
  readonly signature: Bytes;
  /** 128-bit identity ID. */
  readonly id: Bytes;
  /** The canonical CBOR encoding of the whole card. */
  readonly bytes: Bytes;
}

/** Fields a card is made from. */
export type CardFields = Omit<Card, "signature" | "id" | "bytes">;

const pairsValue = (pairs: readonly ProtocolPair[]): CborValue[] => pairs.map((p) => [p[0], p[1]]);

function selfSigTranscript(f: CardFields): Bytes {
  return transcript(
    LABEL_SELF_SIG,
    CARD_FORMAT,
    f.address,
    f.signingKey,
    f.agreementKey,
    pairsValue(f.stps),
    pairsValue(f.amps),
    f.created,
  );
}

/** The 128-bit identity ID: SHA-256 over a transcript of both public keys, first 16 bytes. */
export async function identityId(
  provider: CryptoProvider,
  signingKey: Uint8Array,
  agreementKey: Uint8Array,
): Promise<Bytes> {
  return (await provider.sha256(transcript(LABEL_ID, signingKey, agreementKey))).slice(0, 16);
}

/**
 * A fingerprint to compare out of band: 12 groups of 5 digits (in the manner of
 * Signal's safety numbers) from SHA-512 over a transcript of both public keys.
 */
export async function fingerprint(provider: CryptoProvider, card: Card): Promise<string> {
  const h = await provider.sha512(
    transcript(LABEL_FINGERPRINT, card.signingKey, card.agreementKey),
  );
  const groups: string[] = [];
  for (let i = 0; i < 12; i++) {
    let n = 0;
    for (let j = 0; j < 5; j++) n = n * 256 + h[i * 5 + j];
    groups.push(String(n % 100000).padStart(5, "0"));
  }
  return groups.join(" ");
}

function encodeFields(f: CardFields, signature: Uint8Array): Bytes {
  return encodeCbor(
    new Map<number, CborValue>([
      [1, CARD_FORMAT],
      [2, f.address],
      [3, f.signingKey],
      [4, f.agreementKey],
      [5, pairsValue(f.stps)],
      [6, pairsValue(f.amps)],
      [7, f.created],
      [8, signature],
    ]),
  );
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
    id: await identityId(provider, fields.signingKey, fields.agreementKey),
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
  const card = await decodeUncachedCard(provider, bytes);
  if (verifiedCards.size >= VERIFIED_CARDS_MAX) {
    verifiedCards.delete(verifiedCards.keys().next().value!);
  }
  verifiedCards.set(cacheKey, card);
  return card;
}

async function decodeUncachedCard(provider: CryptoProvider, bytes: Uint8Array): Promise<Card> {
  // No unknown fields: they would not be covered by the self-signature.
  const r = CborReader.from(decodeCbor(bytes, "card"), "card").onlyKeys([1, 2, 3, 4, 5, 6, 7, 8]);
  if (r.uint(1) !== CARD_FORMAT) {
    throw new MissiveError("malformed", `card: unsupported format ${r.uint(1)}`);
  }
  const address = r.text(2, 254);
  if (normalizeAddress(address, "malformed") !== address) {
    throw new MissiveError("malformed", "card: address is not in normal form");
  }
  const fields: CardFields = {
    address,
    signingKey: r.bytes(3, 32),
    agreementKey: r.bytes(4, 32),
    stps: readPairs(r, 5),
    amps: readPairs(r, 6),
    created: r.uint(7),
  };
  const signature = r.bytes(8, 64);
  if (!(await provider.ed25519Verify(fields.signingKey, selfSigTranscript(fields), signature))) {
    throw new MissiveError("key", `card for ${address}: self-signature does not verify`);
  }
  return {
    ...fields,
    signature,
    id: await identityId(provider, fields.signingKey, fields.agreementKey),
    bytes: (bytes as Bytes).slice(),
  };
}

/** The one-line text form of a card. */
export function cardToText(card: Card): string {
  return CARD_PREFIX + toBase64(card.bytes, true);
}

/**
 * Parses a card from text: either the bare line or a card file (`#` comment lines and
 * blank lines allowed around exactly one card line).
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
  return toHex(a.id) === toHex(b.id) && toHex(a.signingKey) === toHex(b.signingKey) &&
    toHex(a.agreementKey) === toHex(b.agreementKey);
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
