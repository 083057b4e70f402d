/**
 * `psk` STP version 1 (SPEC §13.2): XChaCha20-Poly1305 under a key derived from a shared
 * secret — HKDF-SHA-256 of a key file's bytes, or scrypt of a passphrase — with a fresh
 * salt and nonce per message. The AAD binds the envelope header and every clear field;
 * the message nonce, timestamp, AMP pair and sender label travel inside the ciphertext.
 * @module
 */
import { type Bytes, wipe } from "../../core/bytes.ts";
import { CborReader, type CborValue, decodeCbor, encodeCbor, transcript } from "../../core/cbor.ts";
import { MissiveError } from "../../core/errors.ts";
import type { Inner, OpenContext, SealContext, StpOpened } from "../../plugin/types.ts";
import { innerFields, openedWithLabel, readInner } from "./_inner.ts";
import {
  checkFreshness,
  freshnessOf,
  MAX_LOG_N,
  MIN_LOG_N,
  type PskOptions,
  scryptKey,
  type SharedSecret,
  sharedSecret,
  workFactor,
} from "./_key.ts";

const NAME = "psk v1";
const LABEL_KEY = "missive/stp/psk/v1/key";
const LABEL_SCRYPT = "missive/stp/psk/v1/scrypt";
const LABEL_AAD = "missive/stp/psk/v1/aad";
const AEAD = "xchacha20-poly1305";
const SALT_BYTES = 16;
const NONCE_BYTES = 24;
const TAG_BYTES = 16;
/** A key file holds 32..64 bytes. */
export const PSK_V1_KEY_BYTES = { min: 32, max: 64 };
/** No payload exceeds the envelope's 64 MiB. */
const MAX_CIPHERTEXT_BYTES = 64 * 1024 * 1024;

/** The 32-byte AEAD key: HKDF for a key file, scrypt for a passphrase (SPEC §13.2). */
async function messageKey(
  ctx: SealContext<PskOptions> | OpenContext<PskOptions>,
  secret: SharedSecret,
  salt: Uint8Array,
  logN: number | undefined,
): Promise<Bytes> {
  if (secret.kind === "key") {
    return await ctx.crypto.hkdfSha256(secret.key, salt, transcript(LABEL_KEY), 32);
  }
  return await scryptKey(secret.passphrase, transcript(LABEL_SCRYPT, salt), logN!);
}

function wipeSecret(secret: SharedSecret): void {
  wipe(secret.kind === "key" ? secret.key : secret.passphrase);
}

function aad(
  ctx: SealContext<PskOptions> | OpenContext<PskOptions>,
  salt: Uint8Array,
  logN: number | undefined,
  nonce: Uint8Array,
) {
  const h = ctx.header;
  return transcript(
    LABEL_AAD,
    h.protocolType,
    h.protocolVersion,
    h.sequenceNumber ?? null,
    salt,
    logN ?? null,
    nonce,
  );
}

/** Seals `inner` for everyone holding the shared secret. */
export async function sealPskV1(inner: Inner, ctx: SealContext<PskOptions>): Promise<Bytes> {
  const secret = sharedSecret(ctx.options, NAME, PSK_V1_KEY_BYTES, true);
  const logN = secret.kind === "passphrase" ? workFactor(ctx.options, NAME) : undefined;
  const plain = innerFields(inner, ctx.options, NAME);
  const salt = ctx.random(SALT_BYTES);
  const nonce = ctx.random(NONCE_BYTES);
  const key = await messageKey(ctx, secret, salt, logN);
  wipeSecret(secret);
  const plaintext = encodeCbor(plain);
  try {
    const sealed = await ctx.crypto.aeadEncrypt(
      AEAD,
      key,
      nonce,
      plaintext,
      aad(ctx, salt, logN, nonce),
    );
    const payload = new Map<number, CborValue>([[1, salt]]);
    if (logN !== undefined) payload.set(2, logN);
    return encodeCbor(payload.set(3, nonce).set(4, sealed));
  } finally {
    wipe(key);
    wipe(plaintext);
  }
}

/** Opens a psk v1 payload; a wrong secret is `auth-failed` (SPEC §13.2). */
export async function openPskV1(
  payload: Uint8Array,
  ctx: OpenContext<PskOptions>,
): Promise<StpOpened> {
  const context = "psk v1 payload";
  const r = CborReader.from(decodeCbor(payload, context), context).onlyKeys([1, 2, 3, 4]);
  const salt = r.bytes(1, SALT_BYTES);
  // Bound the work factor read from the wire before any scrypt runs (as typage does).
  const logN = r.has(2) ? r.uint(2, MAX_LOG_N) : undefined;
  if (logN !== undefined && logN < MIN_LOG_N) {
    throw new MissiveError("malformed", `${context}: work factor ${logN} is below ${MIN_LOG_N}`);
  }
  const nonce = r.bytes(3, NONCE_BYTES);
  const sealed = r.bytes(4, { min: TAG_BYTES, max: MAX_CIPHERTEXT_BYTES });
  const freshness = freshnessOf(ctx.options, NAME);
  const needs = logN === undefined ? "key" : "passphrase";
  const secret = sharedSecret(ctx.options, NAME, PSK_V1_KEY_BYTES, false, needs);
  if (secret.kind !== needs) {
    wipeSecret(secret);
    throw new MissiveError(
      "key",
      `${NAME}: this message was sealed with a ${
        needs === "key" ? "key file (--psk-file)" : "passphrase (--passphrase)"
      }`,
    );
  }
  const key = await messageKey(ctx, secret, salt, logN);
  wipeSecret(secret);
  let plaintext: Bytes;
  try {
    plaintext = await ctx.crypto.aeadDecrypt(AEAD, key, nonce, sealed, aad(ctx, salt, logN, nonce));
  } catch (e) {
    if (!(e instanceof MissiveError && e.code === "auth-failed")) throw e;
    // A shared key has no "not for me": a wrong key and an altered message look alike.
    throw new MissiveError("auth-failed", `${NAME}: wrong ${needs}, or the message was altered`);
  } finally {
    wipe(key);
  }
  const inside = "psk v1 plaintext";
  const p = CborReader.from(decodeCbor(plaintext, inside), inside).onlyKeys([1, 2, 3, 4, 5, 6]);
  const inner = readInner(p);
  checkFreshness(inner.timestamp, freshness, NAME);
  return openedWithLabel(
    inner,
    p,
    `${NAME}: anyone who holds the shared ${needs} could have written this`,
  );
}
