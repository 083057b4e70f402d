/**
 * age's SSH recipient types (age's agessh package; not in the C2SP spec): `ssh-ed25519`
 * (X25519 on the key's Montgomery form, tweaked by the key) and `ssh-rsa` (RSA-OAEP
 * SHA-256 with the label `age-encryption.org/v1/ssh-rsa`, WebCrypto). Both carry a
 * 4-byte tag of the public key, so they are not anonymous. Keys: OpenSSH public key
 * lines, and unencrypted `openssh-key-v1` private keys.
 * @module
 */
import { ed25519 } from "@noble/curves/ed25519.js";
import {
  type Bytes,
  concatBytes,
  equalBytes,
  fromBase64,
  toBase64,
  utf8,
  wipe,
} from "../../core/bytes.ts";
import { MissiveError } from "../../core/errors.ts";
import type { CryptoProvider } from "../../crypto/provider.ts";
import { encodeRawBase64, headerError, type Stanza } from "./_format.ts";
import {
  type AgeIdentity,
  type AgeRecipient,
  checkWrappedKey,
  FILE_KEY_SIZE,
  openWrappedKey,
  stanzaArgument,
  wrapFileKey,
} from "./_types.ts";

const ED25519_LABEL = utf8("age-encryption.org/v1/ssh-ed25519");
const RSA_LABEL = utf8("age-encryption.org/v1/ssh-rsa");
const EMPTY = new Uint8Array(0);
/** RSA moduli accepted: at least 2048 bits (as age), at most 16384 (a cost bound). */
const MIN_RSA_BITS = 2048;
const MAX_RSA_BITS = 16384;
/** Largest SSH key blob or private key read. */
export const MAX_SSH_KEY_BYTES = 16 * 1024;

const keyError = (why: string) => new MissiveError("key", why);

/** Reads the SSH wire format (RFC 4251 §5): uint32, string, mpint; every read bounded. */
class SshReader {
  #at = 0;
  constructor(readonly bytes: Uint8Array, readonly what: string) {}
  get done(): boolean {
    return this.#at === this.bytes.length;
  }
  uint32(): number {
    if (this.#at + 4 > this.bytes.length) throw keyError(`${this.what}: truncated`);
    const v = new DataView(this.bytes.buffer, this.bytes.byteOffset).getUint32(this.#at);
    this.#at += 4;
    return v;
  }
  string(): Bytes {
    const n = this.uint32();
    if (n > this.bytes.length - this.#at) throw keyError(`${this.what}: truncated`);
    const out = this.bytes.slice(this.#at, this.#at + n);
    this.#at += n;
    return out;
  }
  text(): string {
    return new TextDecoder().decode(this.string());
  }
  /** A positive mpint, as big-endian bytes without leading zeros. */
  mpint(): Bytes {
    const raw = this.string();
    if (raw.length > 0 && raw[0] & 0x80) throw keyError(`${this.what}: negative integer`);
    let i = 0;
    while (i < raw.length && raw[i] === 0) i++;
    return raw.slice(i);
  }
}

/** The 4-byte tag age puts in SSH stanzas: SHA-256 of the public key blob, base64. */
async function sshTag(crypto: CryptoProvider, blob: Uint8Array): Promise<string> {
  return encodeRawBase64((await crypto.sha256(blob)).subarray(0, 4));
}

const b64url = (b: Uint8Array) => toBase64(b, true);
const bigOf = (b: Uint8Array) => (b.length === 0 ? 0n : BigInt("0x" + b.toHex()));
const bytesOf = (n: bigint) => {
  const hex = n.toString(16);
  return Uint8Array.fromHex(hex.length % 2 ? "0" + hex : hex);
};

/** An SSH public key from its blob. */
export interface SshPublicKey {
  /** The key type: the two that age defines recipients for. */
  type: "ssh-ed25519" | "ssh-rsa";
  /** The key blob (RFC 4253 §6.6 encoding), whose SHA-256 gives the stanza's tag. */
  blob: Bytes;
  /** The comment after the key on its line (may be empty); peer-chosen text. */
  comment: string;
  /** ssh-ed25519: the 32-byte Ed25519 public key. */
  ed25519?: Bytes;
  /** ssh-rsa: the modulus and public exponent, big-endian, as in the blob. */
  rsa?: { n: Bytes; e: Bytes };
}

function parseBlob(blob: Bytes, comment: string, what: string): SshPublicKey {
  const r = new SshReader(blob, what);
  const type = r.text();
  if (type === "ssh-ed25519") {
    const key = r.string();
    if (key.length !== 32 || !r.done) throw keyError(`${what}: malformed ssh-ed25519 key`);
    return { type, blob, comment, ed25519: key };
  }
  if (type === "ssh-rsa") {
    const e = r.mpint(), n = r.mpint();
    if (!r.done) throw keyError(`${what}: malformed ssh-rsa key`);
    const bits = bigOf(n).toString(2).length;
    if (bits < MIN_RSA_BITS) throw keyError(`${what}: RSA key of ${bits} bits; age needs 2048+`);
    if (bits > MAX_RSA_BITS) throw keyError(`${what}: RSA key larger than ${MAX_RSA_BITS} bits`);
    return { type, blob, comment, rsa: { n, e } };
  }
  throw keyError(`${what}: SSH key type ${JSON.stringify(type)} is not an age recipient type`);
}

/** Parses an OpenSSH public key line (`ssh-ed25519 AAAA… comment`). */
export function parseSshPublicKey(line: string, what = "SSH public key"): SshPublicKey {
  const parts = line.trim().split(/[ \t]+/);
  if (parts.length < 2 || !/^ssh-/.test(parts[0])) {
    throw keyError(`${what}: expected "ssh-ed25519 AAAA…" or "ssh-rsa AAAA…"`);
  }
  const blob = fromBase64(parts[1]);
  if (!blob || blob.length > MAX_SSH_KEY_BYTES) throw keyError(`${what}: invalid base64 key`);
  const key = parseBlob(blob, parts.slice(2).join(" "), what);
  if (key.type !== parts[0]) throw keyError(`${what}: key type does not match its blob`);
  return key;
}

/** An age recipient for an SSH public key. */
export function sshRecipient(key: SshPublicKey): AgeRecipient {
  const label = `${key.type} key${key.comment ? ` ${key.comment}` : ""}`;
  if (key.type === "ssh-rsa") {
    return {
      kind: "ssh-rsa",
      label,
      async wrap(fileKey, ctx) {
        const publicKey = await globalThis.crypto.subtle.importKey(
          "jwk",
          { kty: "RSA", n: b64url(key.rsa!.n), e: b64url(key.rsa!.e), ext: true },
          { name: "RSA-OAEP", hash: "SHA-256" },
          false,
          ["encrypt"],
        );
        const body = new Uint8Array(
          await globalThis.crypto.subtle.encrypt(
            { name: "RSA-OAEP", label: RSA_LABEL },
            publicKey,
            new Uint8Array(fileKey),
          ),
        );
        return [{ type: "ssh-rsa", args: [await sshTag(ctx.crypto, key.blob)], body }];
      },
    };
  }
  let theirs: Bytes;
  try {
    theirs = ed25519.utils.toMontgomery(key.ed25519!) as Bytes;
  } catch {
    throw keyError(`${label}: not a valid Ed25519 point`);
  }
  return {
    kind: "ssh-ed25519",
    label,
    async wrap(fileKey, ctx) {
      const ephemeral = ctx.random(32);
      try {
        const ours = await ctx.crypto.x25519PublicKey(ephemeral);
        const shared = await ctx.crypto.x25519(ephemeral, theirs).catch(() => {
          throw keyError(`${label}: unusable key (small order)`);
        });
        const wrapKey = await ed25519WrapKey(ctx.crypto, key.blob, shared, ours, theirs);
        const body = await wrapFileKey(ctx.crypto, wrapKey, fileKey);
        wipe(wrapKey);
        const tag = await sshTag(ctx.crypto, key.blob);
        return [{ type: "ssh-ed25519", args: [tag, encodeRawBase64(ours)], body }];
      } finally {
        wipe(ephemeral);
      }
    },
  };
}

/**
 * The ssh-ed25519 wrap key (agessh): the X25519 secret multiplied again by a tweak
 * derived from the key blob, then HKDF over both Montgomery keys.
 */
async function ed25519WrapKey(
  crypto: CryptoProvider,
  blob: Uint8Array,
  shared: Uint8Array,
  ephemeral: Uint8Array,
  recipient: Uint8Array,
): Promise<Bytes> {
  // agessh: HKDF-SHA-256(ikm = "", salt = the key blob, info = label).
  const tweak = await crypto.hkdfSha256(EMPTY, blob, ED25519_LABEL, 32);
  const tweaked = await crypto.x25519(tweak, shared);
  return crypto.hkdfSha256(tweaked, concatBytes(ephemeral, recipient), ED25519_LABEL, 32);
}

/** An unencrypted OpenSSH private key, as an age identity (and its public key). */
export interface SshIdentity {
  /** What opens age stanzas of the key's type. */
  identity: AgeIdentity;
  /** The key's public half (its tag names the stanzas meant for it). */
  publicKey: SshPublicKey;
}

async function ed25519Identity(
  crypto: CryptoProvider,
  key: SshPublicKey,
  seed: Uint8Array,
): Promise<AgeIdentity> {
  const secret = (await crypto.sha512(seed)).slice(0, 32);
  const ours = await crypto.x25519PublicKey(secret);
  const tag = await sshTag(crypto, key.blob);
  return {
    kind: "ssh-ed25519",
    async unwrap(stanzas: readonly Stanza[], provider) {
      for (const s of stanzas) {
        if (s.type !== "ssh-ed25519") continue;
        if (s.args.length !== 2) throw headerError("invalid ssh-ed25519 stanza");
        const share = stanzaArgument(s, s.args[1], 32);
        if (s.args[0] !== tag) continue;
        checkWrappedKey(s);
        const shared = await provider.x25519(secret, share).catch(() => {
          throw headerError("invalid ssh-ed25519 stanza: share of small order");
        });
        const wrapKey = await ed25519WrapKey(provider, key.blob, shared, share, ours);
        const fileKey = await openWrappedKey(provider, wrapKey, s.body);
        wipe(wrapKey);
        // The tag matched: a body that does not open was altered (age fails here too).
        if (!fileKey) throw new MissiveError("auth-failed", "ssh-ed25519 stanza: bad file key");
        return fileKey;
      }
      return null;
    },
  };
}

async function rsaIdentity(
  crypto: CryptoProvider,
  key: SshPublicKey,
  parts: { d: Bytes; iqmp: Bytes; p: Bytes; q: Bytes },
): Promise<AgeIdentity> {
  const [d, p, q] = [bigOf(parts.d), bigOf(parts.p), bigOf(parts.q)];
  if (p * q !== bigOf(key.rsa!.n)) throw keyError("SSH private key: p·q is not the modulus");
  const privateKey = await globalThis.crypto.subtle.importKey(
    "jwk",
    {
      kty: "RSA",
      n: b64url(key.rsa!.n),
      e: b64url(key.rsa!.e),
      d: b64url(parts.d),
      p: b64url(parts.p),
      q: b64url(parts.q),
      dp: b64url(bytesOf(d % (p - 1n))),
      dq: b64url(bytesOf(d % (q - 1n))),
      qi: b64url(parts.iqmp),
      ext: true,
    },
    { name: "RSA-OAEP", hash: "SHA-256" },
    false,
    ["decrypt"],
  ).catch((e) => {
    throw keyError(`SSH private key: unusable RSA key (${(e as Error).message})`);
  });
  const tag = await sshTag(crypto, key.blob);
  return {
    kind: "ssh-rsa",
    async unwrap(stanzas: readonly Stanza[]) {
      for (const s of stanzas) {
        if (s.type !== "ssh-rsa") continue;
        if (s.args.length !== 1) throw headerError("invalid ssh-rsa stanza");
        if (s.args[0] !== tag) continue;
        let fileKey: Bytes;
        try {
          fileKey = new Uint8Array(
            await globalThis.crypto.subtle.decrypt(
              { name: "RSA-OAEP", label: RSA_LABEL },
              privateKey,
              new Uint8Array(s.body),
            ),
          );
        } catch {
          throw new MissiveError("auth-failed", "ssh-rsa stanza: the file key did not decrypt");
        }
        if (fileKey.length !== FILE_KEY_SIZE) throw headerError("ssh-rsa stanza: bad file key");
        return fileKey;
      }
      return null;
    },
  };
}

const OPENSSH_BEGIN = "-----BEGIN OPENSSH PRIVATE KEY-----";
const OPENSSH_END = "-----END OPENSSH PRIVATE KEY-----";
const OPENSSH_MAGIC = utf8("openssh-key-v1\0");

/** True when `text` holds an OpenSSH private key. */
export function looksLikeSshPrivateKey(text: string): boolean {
  return text.includes(OPENSSH_BEGIN);
}

/**
 * An age identity from an OpenSSH private key (PROTOCOL.key, `openssh-key-v1`), ed25519
 * or rsa. A passphrase-protected key is refused (`key`) with the command that makes an
 * unprotected copy: missive has no bcrypt_pbkdf.
 */
export async function parseSshPrivateKey(
  crypto: CryptoProvider,
  text: string,
  what = "SSH private key",
): Promise<SshIdentity> {
  const start = text.indexOf(OPENSSH_BEGIN), end = text.indexOf(OPENSSH_END);
  if (start < 0 || end < start) throw keyError(`${what}: no ${OPENSSH_BEGIN} block`);
  const der = fromBase64(text.slice(start + OPENSSH_BEGIN.length, end).replace(/\s+/g, ""));
  if (!der || der.length > MAX_SSH_KEY_BYTES) throw keyError(`${what}: invalid base64`);
  if (!equalBytes(der.subarray(0, OPENSSH_MAGIC.length), OPENSSH_MAGIC)) {
    throw keyError(`${what}: not an openssh-key-v1 key`);
  }
  const r = new SshReader(der.subarray(OPENSSH_MAGIC.length), what);
  const cipher = r.text(), kdf = r.text();
  r.string(); // kdf options
  if (cipher !== "none" || kdf !== "none") {
    throw keyError(
      `${what} is passphrase-protected (${cipher}, ${kdf}), which missive cannot decrypt ` +
        `(no bcrypt_pbkdf): make an unprotected copy kept private, e.g. ` +
        `"install -m 600 KEY /tmp/k && ssh-keygen -p -N '' -f /tmp/k", and use that`,
    );
  }
  if (r.uint32() !== 1) throw keyError(`${what}: expected exactly one key`);
  const publicKey = parseBlob(r.string(), "", what);
  const priv = new SshReader(r.string(), what);
  if (!r.done) throw keyError(`${what}: trailing data`);
  if (priv.uint32() !== priv.uint32()) throw keyError(`${what}: check integers differ`);
  if (priv.text() !== publicKey.type) throw keyError(`${what}: key types differ`);
  let identity: AgeIdentity;
  if (publicKey.type === "ssh-ed25519") {
    const pub = priv.string(), both = priv.string();
    if (both.length !== 64 || !equalBytes(pub, publicKey.ed25519!)) {
      throw keyError(`${what}: malformed ssh-ed25519 private key`);
    }
    const seed = both.slice(0, 32);
    if (!equalBytes(await crypto.ed25519PublicKey(seed), pub)) {
      throw keyError(`${what}: the secret does not match the public key`);
    }
    identity = await ed25519Identity(crypto, publicKey, seed);
    wipe(both);
    wipe(seed);
  } else {
    const n = priv.mpint(), e = priv.mpint();
    if (!equalBytes(n, publicKey.rsa!.n) || !equalBytes(e, publicKey.rsa!.e)) {
      throw keyError(`${what}: the private key does not match the public key`);
    }
    const d = priv.mpint(), iqmp = priv.mpint(), p = priv.mpint(), q = priv.mpint();
    identity = await rsaIdentity(crypto, publicKey, { d, iqmp, p, q });
  }
  publicKey.comment = priv.text();
  return { identity, publicKey };
}

/** The public key line of an SSH key (`TYPE BASE64 comment`). */
export function sshPublicKeyLine(key: SshPublicKey): string {
  return `${key.type} ${key.blob.toBase64()}${key.comment ? " " + key.comment : ""}`;
}
