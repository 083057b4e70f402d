/**
 * `psk` STP, type 6 (DESIGN §4; SPEC §13): everyone who holds one shared secret can seal
 * and open; no public keys, no cards. Version 1 is XChaCha20-Poly1305 under HKDF or
 * scrypt; version 2 is a Fernet token, and bare tokens interoperate with other Fernet
 * implementations (Python's `cryptography.fernet`).
 * @module
 */
import type { Bytes } from "../../core/bytes.ts";
import type { CryptoProvider } from "../../crypto/provider.ts";
import type { StpPlugin } from "../../plugin/types.ts";
import {
  decryptFernet,
  encryptFernet,
  type FernetOpened,
  fernetTokenText,
  wipeFernetKey,
} from "./_fernet.ts";
import { freshnessOf, parsePskOptions, type PskOptions } from "./_key.ts";
import { openPskV1, sealPskV1 } from "./_v1.ts";
import { openPskV2, pskV2Key, sealPskV2 } from "./_v2.ts";

export {
  decryptFernet,
  detectFernetToken,
  encryptFernet,
  fernetKey,
  type FernetOpened,
  fernetTokenText,
  parseFernetKey,
  parseFernetToken,
} from "./_fernet.ts";
export { parseKeyText, parsePskOptions, type PskOptions } from "./_key.ts";

/** STP type number of `psk`. */
export const PSK_TYPE = 6;

const PROPERTIES = {
  confidentiality: true,
  authentication: "shared-key",
  nonRepudiation: false,
  forwardSecrecy: false,
  multiRecipient: true,
  // Nothing in the clear names who can read the message.
  hiddenRecipients: true,
} as const;

/** The `psk` STP of a given version (the constants below are what callers use). */
function makePsk(version: 1 | 2): StpPlugin<PskOptions> {
  return {
    kind: "stp",
    type: PSK_TYPE,
    version,
    name: "psk",
    description: version === 1
      ? "shared key or passphrase: HKDF/scrypt + XChaCha20-Poly1305"
      : "shared key: Fernet token (AES-128-CBC + HMAC-SHA256)",
    properties: PROPERTIES,
    parseOptions: parsePskOptions,
    seal: version === 1 ? sealPskV1 : sealPskV2,
    open: version === 1 ? openPskV1 : openPskV2,
  };
}

/** The `psk` STP, version 1 (SPEC §13.2): shared key or passphrase, XChaCha20-Poly1305. */
export const pskV1: StpPlugin<PskOptions> = makePsk(1);
/** The `psk` STP, version 2 (SPEC §13.3): a Fernet token, as Python's cryptography writes. */
export const pskV2: StpPlugin<PskOptions> = makePsk(2);

/** Inputs of `sealBareFernet`. */
export interface BareFernetRequest {
  /** The key: `key` (32 bytes) or `passphrase`, as for psk v2. */
  options: PskOptions;
  /** The token's time, ms since the Unix epoch (written in whole seconds); default now. */
  now?: number;
  /** The 16-byte AES-CBC IV; random by default. Injected only for tests and vectors. */
  iv?: Uint8Array;
}

/**
 * Seals `plaintext` as a bare Fernet token, in its text form (what Python's
 * `Fernet(key).encrypt` returns).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getCryptoProvider } from "../../mod.ts";
 * import { openBareFernet, parseFernetToken, parsePskOptions, sealBareFernet } from "./mod.ts";
 * const crypto = await getCryptoProvider();
 * const options = parsePskOptions({ psk: "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=" });
 * const token = await sealBareFernet(crypto, new TextEncoder().encode("hi"), { options });
 * const opened = await openBareFernet(crypto, parseFernetToken(token), options);
 * assert.equal(new TextDecoder().decode(opened.plaintext), "hi");
 * ```
 */
export async function sealBareFernet(
  crypto: CryptoProvider,
  plaintext: Uint8Array,
  request: BareFernetRequest,
): Promise<string> {
  const key = await pskV2Key(request.options, true);
  try {
    const token = await encryptFernet(crypto, key, plaintext, {
      timestamp: Math.floor((request.now ?? Date.now()) / 1000),
      iv: request.iv,
    });
    return fernetTokenText(token);
  } finally {
    wipeFernetKey(key);
  }
}

/**
 * Opens a bare binary Fernet token (see `detectFernetToken`) with the options' `key` or
 * `passphrase`; `ttlMs` and `nowMs` set freshness.
 */
export async function openBareFernet(
  crypto: CryptoProvider,
  token: Bytes,
  options: PskOptions,
): Promise<FernetOpened> {
  const freshness = freshnessOf(options, "fernet");
  const key = await pskV2Key(options, false);
  try {
    return await decryptFernet(crypto, key, token, {
      ttl: freshness.ttlMs === undefined ? undefined : freshness.ttlMs / 1000,
      now: freshness.nowMs,
    });
  } finally {
    wipeFernetKey(key);
  }
}
