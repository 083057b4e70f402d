/**
 * age's native recipient types (C2SP age, "Native recipient types"): X25519 (`age1…`,
 * `AGE-SECRET-KEY-1…`), the MLKEM768-X25519 hybrid (`age1pq1…`, `AGE-SECRET-KEY-PQ-1…`)
 * and scrypt (a passphrase).
 * @module
 */
import { scryptAsync } from "@noble/hashes/scrypt.js";
import { type Bytes, concatBytes, utf8, wipe } from "../../core/bytes.ts";
import { isMissiveError, MissiveError } from "../../core/errors.ts";
import type { CryptoProvider } from "../../crypto/provider.ts";
import { bech32Encode } from "./_bech32.ts";
import { encodeRawBase64, headerError, type Stanza } from "./_format.ts";
import { hpkeBaseContext, KEM_MLKEM768_X25519 } from "./_hpke.ts";
import {
  type AgeIdentity,
  type AgeRecipient,
  checkWrappedKey,
  openWrappedKey,
  stanzaArgument,
  type WrapContext,
  wrapFileKey,
} from "./_types.ts";
import { XWING_CIPHERTEXT_SIZE } from "../../crypto/xwing.ts";

const X25519_LABEL = utf8("age-encryption.org/v1/X25519");
const HYBRID_LABEL = utf8("age-encryption.org/mlkem768x25519");
const SCRYPT_LABEL = utf8("age-encryption.org/v1/scrypt");

/** scrypt work factor (log2 N) written: age's default. */
export const DEFAULT_SCRYPT_LOG_N = 18;
/** The largest scrypt work factor (log2 N) a reader runs (typage's bound; age reads 22). */
export const MAX_SCRYPT_LOG_N = 20;

/** The `age1…` text of an X25519 public key. */
export function x25519RecipientText(publicKey: Uint8Array): string {
  return bech32Encode("age", publicKey);
}

/** The `age1pq1…` text of an X-Wing public key. */
export function hybridRecipientText(publicKey: Uint8Array): string {
  return bech32Encode("age1pq", publicKey);
}

/** The `AGE-SECRET-KEY-1…` text of an X25519 private key. */
export function x25519IdentityText(privateKey: Uint8Array): string {
  return bech32Encode("AGE-SECRET-KEY-", privateKey).toUpperCase();
}

/** The `AGE-SECRET-KEY-PQ-1…` text of an X-Wing seed. */
export function hybridIdentityText(seed: Uint8Array): string {
  return bech32Encode("AGE-SECRET-KEY-PQ-", seed).toUpperCase();
}

/** An X25519 recipient (C2SP age, "X25519 recipient stanza"). */
export function x25519Recipient(publicKey: Uint8Array, label?: string): AgeRecipient {
  const recipient = new Uint8Array(publicKey);
  return {
    kind: "x25519",
    label: label ?? x25519RecipientText(recipient),
    async wrap(fileKey, ctx) {
      const ephemeral = ctx.random(32);
      try {
        const share = await ctx.crypto.x25519PublicKey(ephemeral);
        const shared = await ctx.crypto.x25519(ephemeral, recipient).catch(() => {
          throw new MissiveError("key", `${this.label}: not a usable X25519 key (low order)`);
        });
        const key = await ctx.crypto.hkdfSha256(
          shared,
          concatBytes(share, recipient),
          X25519_LABEL,
          32,
        );
        const body = await wrapFileKey(ctx.crypto, key, fileKey);
        wipe(key);
        return [{ type: "X25519", args: [encodeRawBase64(share)], body }];
      } finally {
        wipe(ephemeral);
      }
    },
  };
}

/** An X25519 identity: a 32-byte private key. */
export function x25519Identity(privateKey: Uint8Array): AgeIdentity {
  const secret = new Uint8Array(privateKey);
  let own: Promise<Bytes> | undefined;
  return {
    kind: "x25519",
    async unwrap(stanzas, crypto) {
      for (const s of stanzas) {
        if (s.type !== "X25519") continue;
        if (s.args.length !== 1) throw headerError("invalid X25519 stanza: wrong argument count");
        const share = stanzaArgument(s, s.args[0], 32);
        checkWrappedKey(s);
        const shared = await crypto.x25519(secret, share).catch(() => {
          throw headerError("invalid X25519 stanza: share of small order");
        });
        own ??= crypto.x25519PublicKey(secret);
        const salt = concatBytes(share, await own);
        const key = await crypto.hkdfSha256(shared, salt, X25519_LABEL, 32);
        const fileKey = await openWrappedKey(crypto, key, s.body);
        wipe(key);
        if (fileKey) return fileKey;
      }
      return null;
    },
  };
}

/** A hybrid recipient (C2SP age, "mlkem768x25519 recipient stanza"): HPKE SealBase. */
export function hybridRecipient(publicKey: Uint8Array, label?: string): AgeRecipient {
  const recipient = new Uint8Array(publicKey);
  return {
    kind: "hybrid",
    label: label ?? hybridRecipientText(recipient),
    async wrap(fileKey, ctx) {
      const { ciphertext, shared } = await ctx.crypto.xwingEncapsulate(recipient);
      const { key, nonce } = hpkeBaseContext(KEM_MLKEM768_X25519, shared, HYBRID_LABEL);
      const body = await wrapFileKey(ctx.crypto, key, fileKey, nonce);
      wipe(key);
      wipe(shared);
      return [{ type: "mlkem768x25519", args: [encodeRawBase64(ciphertext)], body }];
    },
  };
}

/** A hybrid identity: a 32-byte X-Wing seed. */
export function hybridIdentity(seed: Uint8Array): AgeIdentity {
  const secret = new Uint8Array(seed);
  return {
    kind: "hybrid",
    async unwrap(stanzas, crypto) {
      for (const s of stanzas) {
        if (s.type !== "mlkem768x25519") continue;
        if (s.args.length !== 1) {
          throw headerError("invalid mlkem768x25519 stanza: wrong argument count");
        }
        const enc = stanzaArgument(s, s.args[0], XWING_CIPHERTEXT_SIZE);
        checkWrappedKey(s);
        const shared = await crypto.xwingDecapsulate(secret, enc).catch((e) => {
          if (isMissiveError(e, "auth-failed")) {
            throw headerError("invalid mlkem768x25519 stanza: X25519 part of small order");
          }
          throw e;
        });
        const { key, nonce } = hpkeBaseContext(KEM_MLKEM768_X25519, shared, HYBRID_LABEL);
        const fileKey = await openWrappedKey(crypto, key, s.body, nonce);
        wipe(key);
        if (fileKey) return fileKey;
      }
      return null;
    },
  };
}

/** The public key of a hybrid identity's seed. */
export function hybridPublicKey(crypto: CryptoProvider, seed: Uint8Array): Promise<Bytes> {
  return crypto.xwingPublicKey(seed);
}

function scryptKey(passphrase: string, salt: Uint8Array, logN: number): Promise<Bytes> {
  return scryptAsync(utf8(passphrase), concatBytes(SCRYPT_LABEL, salt), {
    N: 2 ** logN,
    r: 8,
    p: 1,
    dkLen: 32,
  }) as Promise<Bytes>;
}

/**
 * A passphrase recipient (C2SP age, "scrypt recipient stanza"); it must be the file's
 * only recipient. The passphrase is used as UTF-8, not normalised (as age does).
 */
export function scryptRecipient(
  passphrase: string,
  logN: number = DEFAULT_SCRYPT_LOG_N,
): AgeRecipient {
  if (!Number.isInteger(logN) || logN < 1 || logN > MAX_SCRYPT_LOG_N) {
    throw new MissiveError("usage", `age: scrypt work factor must be 1..${MAX_SCRYPT_LOG_N}`);
  }
  return {
    kind: "scrypt",
    label: "passphrase",
    async wrap(fileKey, ctx: WrapContext) {
      const salt = ctx.random(16);
      const key = await scryptKey(passphrase, salt, logN);
      const body = await wrapFileKey(ctx.crypto, key, fileKey);
      wipe(key);
      return [{ type: "scrypt", args: [encodeRawBase64(salt), String(logN)], body }];
    },
  };
}

/** A passphrase identity; it refuses work factors above `maxLogN` (default 20). */
export function scryptIdentity(passphrase: string, maxLogN = MAX_SCRYPT_LOG_N): AgeIdentity {
  return {
    kind: "scrypt",
    async unwrap(stanzas: readonly Stanza[], crypto: CryptoProvider) {
      for (const s of stanzas) {
        if (s.type !== "scrypt") continue;
        if (s.args.length !== 2) throw headerError("invalid scrypt stanza: wrong argument count");
        const salt = stanzaArgument(s, s.args[0], 16);
        if (!/^[1-9][0-9]*$/.test(s.args[1])) {
          throw headerError("invalid scrypt stanza: work factor is not a decimal number");
        }
        const logN = Number(s.args[1]);
        if (logN > maxLogN) {
          throw headerError(`scrypt work factor ${s.args[1]} is above the limit of ${maxLogN}`);
        }
        checkWrappedKey(s);
        const key = await scryptKey(passphrase, salt, logN);
        const fileKey = await openWrappedKey(crypto, key, s.body);
        wipe(key);
        if (fileKey) return fileKey;
      }
      return null;
    },
  };
}
