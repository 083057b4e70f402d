/**
 * Recipients and identities from text, as age's command line reads them: `age1…`,
 * `age1pq1…` and SSH public keys (one per line in a recipients file, `#` comments);
 * identity files with `AGE-SECRET-KEY-1…` and `AGE-SECRET-KEY-PQ-1…` lines,
 * passphrase-encrypted identity files (an age file under scrypt, binary or armored),
 * OpenSSH private keys, and missive key files (their X25519 key).
 * @module
 */
import { isMissiveError, MissiveError } from "../../core/errors.ts";
import { type Bytes, fromUtf8, wipe } from "../../core/bytes.ts";
import type { CryptoProvider } from "../../crypto/provider.ts";
import { readKeyFile } from "../../keys/identity.ts";
import { bech32Decode } from "./_bech32.ts";
import { decryptAge } from "./_file.ts";
import { isArmoredAge } from "./_armor.ts";
import type { AgeSink } from "./_format.ts";
import { looksLikeAgeFile } from "./_format.ts";
import {
  hybridIdentity,
  hybridRecipient,
  scryptIdentity,
  x25519Identity,
  x25519Recipient,
} from "./_native.ts";
import {
  looksLikeSshPrivateKey,
  parseSshPrivateKey,
  parseSshPublicKey,
  sshRecipient,
} from "./_ssh.ts";
import type { AgeIdentity, AgeRecipient } from "./_types.ts";
import { XWING_PUBLIC_KEY_SIZE, XWING_SEED_SIZE } from "../../crypto/xwing.ts";

/** Largest identity or recipients file read (age-keygen output is under 200 bytes). */
export const MAX_KEY_FILE_BYTES = 1024 * 1024;

const keyError = (why: string) => new MissiveError("key", why);

/** Plugin names in `age1NAME1…` recipients and `AGE-PLUGIN-NAME-1…` identities. */
function pluginRefusal(kind: string, name: string): MissiveError {
  return keyError(
    `${kind} of the age plugin ${JSON.stringify(name)}: missive does not run age plugins ` +
      `(use age with age-plugin-${name}, or a native age1…/age1pq1… key)`,
  );
}

/** True when a line is an age or SSH recipient (not a missive card, not a comment). */
export function isAgeRecipientText(line: string): boolean {
  return /^(age1|ssh-)/i.test(line.trim());
}

/**
 * One recipient from its text: `age1…` (X25519), `age1pq1…` (hybrid), or an SSH public
 * key line. Plugin and hardware-tag recipients are refused (`key`), naming the plugin.
 */
export function parseAgeRecipient(text: string, where = "recipient"): AgeRecipient {
  const s = text.trim();
  if (s.startsWith("ssh-")) return sshRecipient(parseSshPublicKey(s, where));
  if (!s.toLowerCase().startsWith("age1")) {
    throw keyError(`${where}: not an age recipient (age1…, age1pq1…, ssh-ed25519, ssh-rsa)`);
  }
  const { hrp, bytes } = bech32Decode(s, where);
  if (hrp === "age") {
    if (bytes.length !== 32) throw keyError(`${where}: an age1 X25519 key is 32 bytes`);
    return x25519Recipient(bytes, s.toLowerCase());
  }
  if (hrp === "age1pq") {
    if (bytes.length !== XWING_PUBLIC_KEY_SIZE) {
      throw keyError(`${where}: an age1pq1 key is ${XWING_PUBLIC_KEY_SIZE} bytes`);
    }
    return hybridRecipient(bytes, s.toLowerCase());
  }
  if (hrp === "age1tag" || hrp === "age1tagpq") {
    throw keyError(`${where}: ${hrp}1… hardware-key recipients are not supported`);
  }
  throw pluginRefusal(`${where}: a recipient`, hrp.slice("age1".length));
}

/**
 * A recipients file as `age -R` reads it: one recipient per line, blank lines and `#`
 * comments skipped. Lines starting `missive-card:` are returned apart (the caller reads
 * them as cards); anything else that is not a recipient is a `key` error naming the line.
 */
export function parseRecipientsFile(
  text: string,
  what: string,
): { recipients: AgeRecipient[]; cardLines: string[] } {
  const recipients: AgeRecipient[] = [];
  const cardLines: string[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/\r$/, "").trim();
    if (line === "" || line.startsWith("#")) return;
    if (line.startsWith("missive-card:")) cardLines.push(line);
    else recipients.push(parseAgeRecipient(line, `${what} line ${i + 1}`));
  });
  if (recipients.length + cardLines.length === 0) {
    throw keyError(`${what}: no recipients in the file`);
  }
  return { recipients, cardLines };
}

/** One identity line: `AGE-SECRET-KEY-1…` or `AGE-SECRET-KEY-PQ-1…`. */
function parseIdentityLine(line: string, where: string): AgeIdentity {
  if (line.startsWith("AGE-PLUGIN-")) {
    const name = line.slice("AGE-PLUGIN-".length).split("-1")[0].toLowerCase();
    throw pluginRefusal(`${where}: an identity`, name);
  }
  if (!line.startsWith("AGE-SECRET-KEY-")) {
    throw keyError(`${where}: not an age identity (AGE-SECRET-KEY-1…, AGE-SECRET-KEY-PQ-1…)`);
  }
  const { hrp, bytes } = bech32Decode(line, where);
  try {
    if (hrp === "age-secret-key-" && bytes.length === 32) return x25519Identity(bytes);
    if (hrp === "age-secret-key-pq-" && bytes.length === XWING_SEED_SIZE) {
      return hybridIdentity(bytes);
    }
  } finally {
    wipe(bytes);
  }
  throw keyError(`${where}: not a valid age identity`);
}

/** What reading an identity file may need: the provider and a passphrase prompt. */
export interface IdentityFileOptions {
  /** The primitives (to decode a missive key file's card, and to derive keys). */
  crypto: CryptoProvider;
  /** Asked only for an encrypted identity file or missive key file. */
  passphrase?: () => Promise<string>;
}

/**
 * The identities in a file given to `--identity`: an age identity file, an encrypted one
 * (its passphrase asked for), an OpenSSH private key, or a missive key file.
 */
export async function parseIdentityFile(
  bytes: Uint8Array,
  what: string,
  options: IdentityFileOptions,
): Promise<AgeIdentity[]> {
  if (bytes.length > MAX_KEY_FILE_BYTES) throw keyError(`${what}: larger than 1 MiB`);
  const ask = options.passphrase ??
    (() => Promise.reject(keyError(`${what} is encrypted: a passphrase is needed`)));
  if (looksLikeAgeFile(bytes) || isArmoredAge(bytes)) {
    const plain = await decryptSmall(bytes, [scryptIdentity(await ask())], options.crypto)
      .catch((e) => {
        if (isMissiveError(e, "not-a-recipient") || isMissiveError(e, "usage")) {
          throw keyError(`${what}: wrong passphrase (or not a passphrase-encrypted file)`);
        }
        throw e;
      });
    try {
      return await parseIdentityFile(plain, `${what} (decrypted)`, options);
    } finally {
      wipe(plain);
    }
  }
  let text: string;
  try {
    text = fromUtf8(bytes);
  } catch {
    throw keyError(`${what}: not text`);
  }
  if (looksLikeSshPrivateKey(text)) {
    return [(await parseSshPrivateKey(options.crypto, text, what)).identity];
  }
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
    throw keyError(
      `${what}: only OpenSSH-format private keys (-----BEGIN OPENSSH PRIVATE KEY-----) ` +
        "are read as age identities",
    );
  }
  if (text.includes("-----BEGIN MISSIVE SECRET KEY-----")) {
    const identity = await readKeyFile(options.crypto, text, ask);
    return [
      x25519Identity(identity.agreementKey),
      ...(identity.hybridSeed ? [hybridIdentity(identity.hybridSeed)] : []),
    ];
  }
  const identities: AgeIdentity[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/\r$/, "").trim();
    if (line !== "" && !line.startsWith("#")) {
      identities.push(parseIdentityLine(line, `${what} line ${i + 1}`));
    }
  });
  if (identities.length === 0) throw keyError(`${what}: no identities in the file`);
  return identities;
}

/** Decrypts a small age file held in memory (an encrypted identity file). */
async function decryptSmall(
  file: Uint8Array,
  identities: AgeIdentity[],
  crypto: CryptoProvider,
): Promise<Bytes> {
  const parts: Uint8Array[] = [];
  let at = 0;
  const sink: AgeSink = {
    write(batch) {
      for (const p of batch) parts.push(p.slice());
      return Promise.resolve();
    },
  };
  const source = {
    readInto(target: Uint8Array) {
      const n = Math.min(target.length, file.length - at);
      target.set(file.subarray(at, at + n));
      at += n;
      return Promise.resolve(n);
    },
  };
  await decryptAge(source, sink, { identities, crypto });
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
    wipe(p);
  }
  return out;
}
