/**
 * `psk` STP version 2 (SPEC §13.3): the envelope payload is a Fernet token (binary) whose
 * plaintext is a CBOR map with the message nonce, the timestamp in ms, the AMP pair, the
 * body, an optional sender label and the envelope header it travels under — Fernet has
 * no associated data, so the header is bound by carrying it inside and comparing.
 * @module
 */
import { type Bytes, wipe } from "../../core/bytes.ts";
import { CborReader, type CborValue, decodeCbor, encodeCbor, transcript } from "../../core/cbor.ts";
import type { EnvelopeHeader } from "../../envelope/mod.ts";
import { MissiveError } from "../../core/errors.ts";
import type { Inner, OpenContext, SealContext, StpOpened } from "../../plugin/types.ts";
import { innerFields, openedWithLabel, readInner } from "./_inner.ts";
import {
  decryptFernet,
  encryptFernet,
  type FernetKey,
  fernetKey,
  wipeFernetKey,
} from "./_fernet.ts";
import { freshnessOf, type PskOptions, scryptKey, sharedSecret, workFactor } from "./_key.ts";

const NAME = "psk v2";
const LABEL_SCRYPT = "missive/stp/psk/v2/scrypt";
const IV_BYTES = 16;

/**
 * The Fernet key: option `psk` (the key file's text), or scrypt of `passphrase` with a
 * fixed salt (a token has no room for one: the same passphrase always gives the same
 * key, so a key file is RECOMMENDED; SPEC §13.3).
 */
export async function pskV2Key(options: PskOptions, sealing: boolean): Promise<FernetKey> {
  const secret = sharedSecret(options, NAME, { min: 32, max: 32 }, sealing);
  if (secret.kind === "key") return fernetKey(secret.key);
  const logN = workFactor(options, NAME);
  const bytes = await scryptKey(secret.passphrase, transcript(LABEL_SCRYPT), logN);
  wipe(secret.passphrase);
  const key = fernetKey(bytes);
  wipe(bytes);
  return key;
}

function headerFields(h: EnvelopeHeader): [number, CborValue][] {
  const fields: [number, CborValue][] = [[7, h.protocolType], [8, h.protocolVersion]];
  if (h.sequenceNumber !== undefined) fields.push([9, h.sequenceNumber]);
  return fields;
}

/** Seals `inner` into a Fernet token for everyone holding the key. */
export async function sealPskV2(inner: Inner, ctx: SealContext<PskOptions>): Promise<Bytes> {
  const key = await pskV2Key(ctx.options, true);
  const plain = innerFields(inner, ctx.options, NAME);
  for (const [k, v] of headerFields(ctx.header)) plain.set(k, v);
  const plaintext = encodeCbor(plain);
  try {
    return await encryptFernet(ctx.crypto, key, plaintext, {
      timestamp: Math.floor(inner.timestamp / 1000),
      iv: ctx.random(IV_BYTES),
    });
  } finally {
    wipeFernetKey(key);
    wipe(plaintext);
  }
}

/** Opens a psk v2 payload; options `ttl` (seconds) and `now` (ms) set freshness. */
export async function openPskV2(
  payload: Uint8Array,
  ctx: OpenContext<PskOptions>,
): Promise<StpOpened> {
  const freshness = freshnessOf(ctx.options, NAME);
  const key = await pskV2Key(ctx.options, false);
  let opened;
  try {
    opened = await decryptFernet(ctx.crypto, key, payload, {
      ttl: freshness.ttlMs === undefined ? undefined : freshness.ttlMs / 1000,
      now: freshness.nowMs,
    });
  } finally {
    wipeFernetKey(key);
  }
  const inside = "psk v2 plaintext";
  const p = CborReader.from(decodeCbor(opened.plaintext, inside), inside)
    .onlyKeys([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const inner = readInner(p);
  // Both times are under the HMAC; a mismatch was written by a key holder on purpose.
  if (Math.floor(inner.timestamp / 1000) !== opened.timestamp) {
    throw new MissiveError("malformed", `${inside}: timestamp disagrees with the token's`);
  }
  const h = ctx.header;
  const seq = p.has(9) ? p.uint(9) : undefined;
  if (p.uint(7, 0xffff) !== h.protocolType || p.uint(8, 0xffff) !== h.protocolVersion) {
    throw new MissiveError("auth-failed", `${NAME}: sealed under another envelope type/version`);
  }
  if (seq !== h.sequenceNumber) {
    throw new MissiveError("auth-failed", `${NAME}: envelope sequence number was changed`);
  }
  return openedWithLabel(
    inner,
    p,
    `${NAME}: anyone who holds the shared key could have written this`,
  );
}
