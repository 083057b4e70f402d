/**
 * `simple` STP, type 2, versions 1, 2 and 3 (PhoneX STPSimple; SPEC §5, §5.10): one
 * recipient. A random 32-byte message key is wrapped to the recipient: through an
 * ephemeral X25519 exchange with its X25519 key (v1, v2), or an X-Wing (ML-KEM-768 +
 * X25519) encapsulation to its hybrid key (v3, post-quantum); the inner message (AMP
 * pair, body, sender, Ed25519 signature) is sealed with AES-256-GCM under keys derived
 * from the message key; an HMAC-SHA-256 covers the whole payload. Versions 2 and 3 bind
 * the timestamp into signature, AAD and MAC; version 1 does not, and is accepted on open
 * with a warning.
 * @module
 */
import { type Bytes, equalBytes, toHex, wipe } from "../core/bytes.ts";
import { CborReader, type CborValue, decodeCbor, encodeCbor, transcript } from "../core/cbor.ts";
import { MissiveError } from "../core/errors.ts";
import { XWING_CIPHERTEXT_SIZE } from "../crypto/xwing.ts";
import { type Card, MAX_CARD_SIZE } from "../keys/card.ts";
import type { Identity } from "../keys/identity.ts";
import type { Inner, OpenContext, SealContext, StpOpened, StpPlugin } from "../plugin/types.ts";
import { resolveSenderCard } from "./_sender.ts";

/** STP type number of `simple`. */
export const SIMPLE_TYPE = 2;

const NONCE_SIZE = 16;
const HASHED_DESTINATION_SIZE = 32;
const ZERO_NONCE = new Uint8Array(12);
/** The version whose key agreement is X-Wing (SPEC §5.10). */
const PQ_VERSION = 3;
/** Field 5: an ephemeral X25519 key (v1, v2) or an X-Wing ciphertext (v3). */
const keyFieldSize = (version: number) => (version === PQ_VERSION ? XWING_CIPHERTEXT_SIZE : 32);

/** Domain-separation labels, one per use and version (STYLE §7). */
function labels(version: number) {
  const p = `missive/stp/simple/v${version}`;
  return {
    destination: `${p}/destination`,
    kek: `${p}/kek`,
    wrap: `${p}/wrap`,
    keys: `${p}/keys`,
    aad: `${p}/aad`,
    mac: `${p}/mac`,
    sig: `${p}/sig`,
  };
}

/** The clear header of a simple payload (fields 1–6 of SPEC §5.2). */
interface Header {
  nonce: Bytes;
  timestamp: number;
  /** The recipient's address (plain) or HMAC(nonce, [label, address, id]) (hashed). */
  destination: string | Bytes;
  /** Present only with a plain destination. */
  recipientId?: Bytes;
  /** Field 5: the ephemeral X25519 key (v1, v2) or the X-Wing ciphertext (v3). */
  ephemeralKey: Bytes;
  wrappedKey: Bytes;
}

/** Header fields as bound into AAD, MAC and signature; v1 leaves the timestamp out. */
function boundHeader(version: number, ctxHeader: SealContext["header"], h: Header): CborValue[] {
  return [
    ctxHeader.protocolType,
    ctxHeader.protocolVersion,
    ctxHeader.sequenceNumber ?? null,
    h.nonce,
    version >= 2 ? h.timestamp : null,
    h.destination,
    h.recipientId ?? null,
    h.ephemeralKey,
    h.wrappedKey,
  ];
}

async function hashedDestination(
  ctx: SealContext | OpenContext,
  version: number,
  nonce: Bytes,
  card: Card,
) {
  return await ctx.crypto.hmacSha256(
    nonce,
    transcript(labels(version).destination, card.address, card.id),
  );
}

async function keyEncryptionKey(
  ctx: SealContext | OpenContext,
  version: number,
  shared: Bytes,
  eph: Bytes,
  recipient: Bytes,
) {
  // Salt binds both public values, as age's X25519 recipient does: the ephemeral key
  // and the X25519 key, or (v3) the X-Wing ciphertext and the hybrid key.
  const salt = new Uint8Array(eph.length + recipient.length);
  salt.set(eph);
  salt.set(recipient, eph.length);
  return await ctx.crypto.hkdfSha256(shared, salt, transcript(labels(version).kek), 32);
}

/** The recipient key a version encrypts to: X25519 (v1, v2) or X-Wing (v3). */
function recipientKey(version: number, card: Card, name: string): Bytes {
  if (version !== PQ_VERSION) return card.agreementKey;
  if (!card.hybridKey) {
    throw new MissiveError(
      "key",
      `${name}: ${card.address}'s card has no post-quantum key (format 1); seal with simple v2`,
    );
  }
  return card.hybridKey;
}

/** Field 5 and the shared secret: ephemeral X25519 (v1, v2) or X-Wing encapsulation (v3). */
async function agree(version: number, ctx: SealContext, key: Bytes) {
  if (version !== PQ_VERSION) {
    const { publicKey, shared } = await ctx.ephemeralAgreement(key);
    return { field5: publicKey, shared };
  }
  const kem = ctx.kemEncapsulate ?? ((k: Bytes) => ctx.crypto.xwingEncapsulate(k));
  const { ciphertext, shared } = await kem(key);
  return { field5: ciphertext, shared };
}

/** The opener's side of `agree`. */
function agreeAsRecipient(version: number, ctx: OpenContext, me: Identity, field5: Bytes) {
  if (version !== PQ_VERSION) return ctx.crypto.x25519(me.agreementKey, field5);
  if (!me.hybridSeed) {
    throw new MissiveError("key", `simple v3: the key of ${me.card.address} has no X-Wing seed`);
  }
  return ctx.crypto.xwingDecapsulate(me.hybridSeed, field5);
}

/** payload key (32) ‖ payload nonce (12) ‖ MAC key (32), from the message key. */
async function messageKeys(
  ctx: SealContext | OpenContext,
  version: number,
  messageKey: Bytes,
  nonce: Bytes,
) {
  const okm = await ctx.crypto.hkdfSha256(messageKey, nonce, transcript(labels(version).keys), 76);
  return { payloadKey: okm.slice(0, 32), payloadNonce: okm.slice(32, 44), macKey: okm.slice(44) };
}

function signatureTranscript(
  version: number,
  bound: CborValue[],
  inner: Inner,
  senderId: Bytes,
  recipientId: Bytes,
) {
  return transcript(
    labels(version).sig,
    ...bound,
    recipientId,
    inner.sender ?? "",
    senderId,
    inner.ampType,
    inner.ampVersion,
    inner.body,
  );
}

function headerMap(h: Header, ciphertext?: Bytes, mac?: Bytes): Map<number, CborValue> {
  const m = new Map<number, CborValue>([[1, h.nonce], [2, h.timestamp], [3, h.destination]]);
  if (h.recipientId) m.set(4, h.recipientId);
  m.set(5, h.ephemeralKey).set(6, h.wrappedKey);
  if (ciphertext) m.set(7, ciphertext);
  if (mac) m.set(8, mac);
  return m;
}

async function seal(version: number, inner: Inner, ctx: SealContext): Promise<Uint8Array> {
  const sender = ctx.sender;
  if (!sender) throw new MissiveError("usage", "simple: a sender identity is required (--from)");
  if (ctx.recipients.length !== 1) {
    throw new MissiveError(
      "usage",
      ctx.recipients.length === 0
        ? "simple: a recipient is required (--to CARD)"
        : `simple: one recipient, not ${ctx.recipients.length} (--stp group seals to several)`,
    );
  }
  const recipient = ctx.recipients[0];
  const nonce = new Uint8Array(inner.nonce);
  if (nonce.length !== NONCE_SIZE) {
    throw new MissiveError("internal", "simple: nonce must be 16 bytes");
  }
  const theirKey = recipientKey(version, recipient, `simple v${version}`);
  const { field5: ephemeralKey, shared } = await agree(version, ctx, theirKey);
  const messageKey = ctx.random(32);
  const kek = await keyEncryptionKey(ctx, version, shared, ephemeralKey, theirKey);
  const wrapAad = transcript(labels(version).wrap, nonce, recipient.id);
  const header: Header = {
    nonce,
    timestamp: inner.timestamp,
    destination: ctx.hashDestination
      ? await hashedDestination(ctx, version, nonce, recipient)
      : recipient.address,
    recipientId: ctx.hashDestination ? undefined : recipient.id,
    ephemeralKey,
    wrappedKey: await ctx.crypto.aeadEncrypt("aes-256-gcm", kek, ZERO_NONCE, messageKey, wrapAad),
  };
  const bound = boundHeader(version, ctx.header, header);
  const sealedInner = { ...inner, sender: sender.card.address };
  const signature = await ctx.crypto.ed25519Sign(
    sender.signingSeed,
    signatureTranscript(version, bound, sealedInner, sender.card.id, recipient.id),
  );
  const body = new Map<number, CborValue>([
    [1, inner.ampType],
    [2, inner.ampVersion],
    [3, inner.body],
    [4, sender.card.address],
    [5, sender.card.id],
  ]);
  if (ctx.includeCard) body.set(6, sender.card.bytes);
  body.set(7, signature);
  const keys = await messageKeys(ctx, version, messageKey, nonce);
  const aad = transcript(labels(version).aad, ...bound);
  const ciphertext = await ctx.crypto.aeadEncrypt(
    "aes-256-gcm",
    keys.payloadKey,
    keys.payloadNonce,
    encodeCbor(body),
    aad,
  );
  const mac = await ctx.crypto.hmacSha256(
    keys.macKey,
    transcript(labels(version).mac, ...bound, ciphertext),
  );
  for (const secret of [messageKey, shared, kek, keys.payloadKey, keys.macKey]) wipe(secret);
  return encodeCbor(headerMap(header, ciphertext, mac));
}

function parsePayload(version: number, payload: Uint8Array) {
  const r = CborReader.from(decodeCbor(payload, "simple payload"), "simple payload")
    .onlyKeys([1, 2, 3, 4, 5, 6, 7, 8]);
  const destination = r.raw(3);
  const header: Header = {
    nonce: r.bytes(1, NONCE_SIZE),
    timestamp: r.uint(2),
    destination: typeof destination === "string"
      ? r.text(3, 254)
      : r.bytes(3, HASHED_DESTINATION_SIZE),
    recipientId: r.optBytes(4, 16),
    ephemeralKey: r.bytes(5, keyFieldSize(version)),
    wrappedKey: r.bytes(6, 48),
  };
  if ((typeof header.destination === "string") !== (header.recipientId !== undefined)) {
    throw new MissiveError(
      "malformed",
      "simple payload: a plain destination needs a recipient ID (field 4), a hashed one must not have it",
    );
  }
  return { header, ciphertext: r.bytes(7, { min: 16, max: payload.length }), mac: r.bytes(8, 32) };
}

async function open(
  version: number,
  name: string,
  payload: Uint8Array,
  ctx: OpenContext,
): Promise<StpOpened> {
  const { header, ciphertext, mac } = parsePayload(version, payload);
  const me = ctx.identity;
  if (!me) throw new MissiveError("usage", `${name}: opening needs the recipient's key (--key)`);
  // "Not for me" is decided before any expensive or failing crypto (STYLE §14).
  const forMe = typeof header.destination === "string"
    ? header.destination === me.card.address && equalBytes(header.recipientId!, me.card.id)
    : equalBytes(header.destination, await hashedDestination(ctx, version, header.nonce, me.card));
  if (!forMe) {
    const to = typeof header.destination === "string"
      ? `${header.destination} (recipient ID ${toHex(header.recipientId!)})`
      : "a hashed destination";
    throw new MissiveError(
      "not-a-recipient",
      `not a recipient: this message is for ${to}, not ${me.card.address} (ID ${
        toHex(me.card.id)
      })`,
    );
  }
  const shared = await agreeAsRecipient(version, ctx, me, header.ephemeralKey);
  const kek = await keyEncryptionKey(
    ctx,
    version,
    shared,
    header.ephemeralKey,
    recipientKey(version, me.card, name),
  );
  let messageKey: Bytes;
  try {
    messageKey = await ctx.crypto.aeadDecrypt(
      "aes-256-gcm",
      kek,
      ZERO_NONCE,
      header.wrappedKey,
      transcript(labels(version).wrap, header.nonce, me.card.id),
    );
  } catch {
    throw new MissiveError(
      "auth-failed",
      `${name}: the message key does not unwrap (altered, or sealed to another key of ${me.card.address})`,
    );
  }
  const bound = boundHeader(version, ctx.header, header);
  const keys = await messageKeys(ctx, version, messageKey, header.nonce);
  const expectedMac = await ctx.crypto.hmacSha256(
    keys.macKey,
    transcript(labels(version).mac, ...bound, ciphertext),
  );
  if (!equalBytes(expectedMac, mac)) {
    throw new MissiveError("auth-failed", `${name}: MAC does not verify`);
  }
  const plaintext = await ctx.crypto.aeadDecrypt(
    "aes-256-gcm",
    keys.payloadKey,
    keys.payloadNonce,
    ciphertext,
    transcript(labels(version).aad, ...bound),
  );
  for (const secret of [shared, kek, messageKey, keys.payloadKey, keys.macKey]) wipe(secret);
  const r = CborReader.from(decodeCbor(plaintext, "simple inner"), "simple inner").onlyKeys([
    1,
    2,
    3,
    4,
    5,
    6,
    7,
  ]);
  const inner: Inner = {
    ampType: r.uint(1, 0xffff),
    ampVersion: r.uint(2, 0xffff),
    body: r.bytes(3),
    timestamp: header.timestamp,
    nonce: header.nonce,
    sender: r.text(4, 254),
    destination: me.card.address,
  };
  const senderId = r.bytes(5, 16);
  const card = await resolveSenderCard(ctx, {
    address: inner.sender!,
    id: senderId,
    card: r.optBytes(6, { max: MAX_CARD_SIZE }),
  }, name);
  const signed = signatureTranscript(version, bound, inner, senderId, me.card.id);
  if (!(await ctx.crypto.ed25519Verify(card.signingKey, signed, r.bytes(7, 64)))) {
    throw new MissiveError("auth-failed", `${name}: sender signature does not verify`);
  }
  const warnings = version === 1
    ? ["simple v1 does not authenticate the timestamp; ask the sender to use simple v2"]
    : [];
  return { inner, sender: { address: inner.sender!, card, verified: true }, warnings };
}

const PROPERTIES = {
  confidentiality: true,
  authentication: "signature",
  nonRepudiation: true,
  forwardSecrecy: false,
  multiRecipient: false,
  hiddenRecipients: false,
} as const;

const DESCRIPTIONS = {
  1: "one recipient; X25519 + AES-256-GCM + Ed25519 + HMAC (legacy: timestamp not bound)",
  2: "one recipient; X25519 + AES-256-GCM + Ed25519 + HMAC, timestamp bound",
  3: "one recipient; X-Wing (ML-KEM-768 + X25519, post-quantum) + AES-256-GCM + Ed25519 + " +
    "HMAC, timestamp bound",
} as const;

/** The `simple` STP of a given version (the constants below are what callers use). */
function makeSimple(version: 1 | 2 | 3, classicalFallback?: StpPlugin): StpPlugin {
  const name = "simple";
  return {
    kind: "stp",
    type: SIMPLE_TYPE,
    version,
    name,
    description: DESCRIPTIONS[version],
    properties: { ...PROPERTIES, kem: version === PQ_VERSION ? "mlkem768x25519" : "x25519" },
    features: ["hash-destination"],
    ...(classicalFallback ? { classicalFallback } : {}),
    seal: (inner, ctx) => seal(version, inner, ctx),
    open: (payload, ctx) => open(version, `${name} v${version}`, payload, ctx),
  };
}

/** The `simple` STP, version 1 (SPEC §5): X25519, the first message format. */
export const simpleV1: StpPlugin = makeSimple(1);
/** The `simple` STP, version 2 (SPEC §5): X25519 with per-message keys wrapped once. */
export const simpleV2: StpPlugin = makeSimple(2);
/**
 * The `simple` STP, version 3 (SPEC §5.10): post-quantum, X-Wing; falls back to
 * `simpleV2` for a recipient card without a hybrid key (unless post-quantum is required).
 */
export const simpleV3: StpPlugin = makeSimple(3, simpleV2);
