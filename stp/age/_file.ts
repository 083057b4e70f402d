/**
 * Encrypting and decrypting whole age v1 files (C2SP age): the file key, the header and
 * its MAC, the payload nonce and key, then STREAM; binary or armored. Sources and sinks
 * are read and written in constant memory.
 * @module
 */
import { type Bytes, equalBytes, randomBytes, utf8, wipe } from "../../core/bytes.ts";
import { MissiveError } from "../../core/errors.ts";
import { getCryptoProvider } from "../../crypto/mod.ts";
import type { CryptoProvider } from "../../crypto/provider.ts";
import { ArmorWriter, dearmorSource, isArmoredAge } from "./_armor.ts";
import {
  AgeReader,
  type AgeSink,
  type AgeSource,
  encodeHeader,
  headerError,
  headerWithoutMac,
  looksLikeAgeFile,
  readHeader,
  type Stanza,
} from "./_format.ts";
import { decryptPayload, encryptPayload } from "./_stream.ts";
import { type AgeIdentity, type AgeKind, type AgeRecipient, FILE_KEY_SIZE } from "./_types.ts";

const HEADER_INFO = utf8("header");
const PAYLOAD_INFO = utf8("payload");
const NONCE_SIZE = 16;
const EMPTY = new Uint8Array(0);
const NATIVE_TYPES = ["X25519", "mlkem768x25519", "scrypt", "ssh-ed25519", "ssh-rsa"];

/** Inputs of `encryptAge`. */
export interface AgeEncryptOptions {
  /**
   * Who can open the file; refused (`usage`), as age refuses them: none, a passphrase
   * (scrypt) beside anything, post-quantum (`age1pq1…`) beside classical recipients.
   */
  recipients: readonly AgeRecipient[];
  /** Write age's ASCII armor instead of binary. */
  armor?: boolean;
  /** The primitives; default `getCryptoProvider()`. */
  crypto?: CryptoProvider;
  /** Random bytes (file key, nonce, ephemeral keys); seeded only in tests. */
  random?: (length: number) => Bytes;
}

/** Inputs of `decryptAge`. */
export interface AgeDecryptOptions {
  /** Tried in order on the header's stanzas; none given is `usage`. */
  identities: readonly AgeIdentity[];
  /** The primitives; default `getCryptoProvider()`. */
  crypto?: CryptoProvider;
  /** The input is armored (true) or binary (false); by default told by its first bytes. */
  armored?: boolean;
  /** Called once the header authenticated, before any plaintext is written. */
  onHeader?: () => void | Promise<void>;
}

/** What `decryptAge` found. */
export interface AgeOpened {
  /** The file was in age's ASCII armor. */
  armored: boolean;
  /** The type of every stanza in the header, in order. */
  stanzaTypes: string[];
  /** The kind of identity that unwrapped the file key. */
  matched: AgeKind;
  /** Plaintext bytes written to the sink. */
  plaintextBytes: number;
  /** Payload chunks read (64 KiB of plaintext each, the last one shorter). */
  chunks: number;
}

/** HMAC-SHA-256 of the header under HKDF(file key, "", "header") (C2SP age, "Header MAC"). */
async function headerMac(
  crypto: CryptoProvider,
  fileKey: Uint8Array,
  stanzas: readonly Stanza[],
): Promise<Bytes> {
  const key = await crypto.hkdfSha256(fileKey, EMPTY, HEADER_INFO, 32);
  try {
    return await crypto.hmacSha256(key, headerWithoutMac(stanzas));
  } finally {
    wipe(key);
  }
}

/**
 * Refuses recipient sets age refuses: none; a passphrase beside anything (a passphrase
 * implies the reader knows who wrote it); hybrid beside classical recipients (the file
 * would be no safer than its weakest stanza against a quantum computer).
 */
function checkRecipients(recipients: readonly AgeRecipient[]): void {
  if (recipients.length === 0) throw new MissiveError("usage", "age: no recipients");
  if (recipients.some((r) => r.kind === "scrypt") && recipients.length > 1) {
    throw new MissiveError("usage", "age: a passphrase must be the only recipient");
  }
  const hybrid = recipients.filter((r) => r.kind === "hybrid").length;
  if (hybrid > 0 && hybrid < recipients.length) {
    throw new MissiveError(
      "usage",
      "age: cannot mix post-quantum (age1pq1…) and classical recipients: the file " +
        "would be vulnerable to quantum computers",
    );
  }
}

/**
 * Encrypts `source` to an age v1 file written to `sink`, for every recipient; returns
 * the plaintext length.
 */
export async function encryptAge(
  source: AgeSource,
  sink: AgeSink,
  options: AgeEncryptOptions,
): Promise<{ plaintextBytes: number }> {
  checkRecipients(options.recipients);
  const crypto = options.crypto ?? await getCryptoProvider();
  const random = options.random ?? randomBytes;
  const fileKey = random(FILE_KEY_SIZE);
  try {
    const stanzas: Stanza[] = [];
    for (const r of options.recipients) stanzas.push(...await r.wrap(fileKey, { crypto, random }));
    const header = encodeHeader(stanzas, await headerMac(crypto, fileKey, stanzas));
    const nonce = random(NONCE_SIZE);
    const payloadKey = await crypto.hkdfSha256(fileKey, nonce, PAYLOAD_INFO, 32);
    const aead = await crypto.aeadKey("chacha20-poly1305", payloadKey);
    wipe(payloadKey);
    const armor = options.armor ? new ArmorWriter(sink) : undefined;
    const out = armor ?? sink;
    await out.write([header, nonce]);
    const plaintextBytes = await encryptPayload(aead, source, out);
    await armor?.close();
    return { plaintextBytes };
  } finally {
    wipe(fileKey);
  }
}

/** Describes stanza types for a "no identity matched" message. */
function describeTypes(types: readonly string[]): string {
  const unique = [...new Set(types)];
  const foreign = unique.filter((t) => !NATIVE_TYPES.includes(t));
  let text = `the file is for ${unique.map((t) => JSON.stringify(t)).join(", ")} recipients`;
  if (foreign.length > 0) {
    text += `; ${foreign.map((t) => JSON.stringify(t)).join(", ")} ` +
      "is not a type missive knows (an age plugin's? missive does not run age plugins)";
  }
  return text;
}

/**
 * Decrypts an age file (binary or armored, told apart by its first bytes) from `source`,
 * writing the plaintext to `sink` chunk by chunk as each authenticates. Failures are
 * MissiveErrors: `malformed` (header, armor), `not-a-recipient` (no identity matched),
 * `auth-failed` (header MAC; a payload failure, as an AgePayloadError with the bytes
 * already written), `usage` (no identities).
 */
export async function decryptAge(
  source: AgeSource,
  sink: AgeSink,
  options: AgeDecryptOptions,
): Promise<AgeOpened> {
  const crypto = options.crypto ?? await getCryptoProvider();
  let reader = new AgeReader(source);
  let armored = options.armored;
  if (armored === undefined) {
    const head = await reader.peek(2048);
    armored = isArmoredAge(head);
    if (!armored && !looksLikeAgeFile(head) && head.length > 0) {
      throw headerError("not an age file");
    }
  }
  if (armored) reader = new AgeReader(dearmorSource(reader));
  const header = await readHeader(reader);
  const stanzaTypes = header.stanzas.map((s) => s.type);
  if (stanzaTypes.includes("scrypt") && stanzaTypes.length > 1) {
    throw headerError("an scrypt stanza must be the only stanza in the header");
  }
  if (options.identities.length === 0) {
    throw new MissiveError("usage", `age: no identity given; ${describeTypes(stanzaTypes)}`);
  }
  let fileKey: Bytes | null = null;
  let matched: AgeKind | undefined;
  for (const identity of options.identities) {
    fileKey = await identity.unwrap(header.stanzas, crypto);
    if (fileKey) {
      matched = identity.kind;
      break;
    }
  }
  if (!fileKey) {
    throw new MissiveError(
      "not-a-recipient",
      `age: no identity matched any of the recipients (${describeTypes(stanzaTypes)})`,
    );
  }
  try {
    if (fileKey.length !== FILE_KEY_SIZE) throw headerError("the file key is not 16 bytes");
    if (!equalBytes(await headerMac(crypto, fileKey, header.stanzas), header.mac)) {
      throw new MissiveError("auth-failed", "age: bad header MAC");
    }
    const nonce = new Uint8Array(NONCE_SIZE);
    if ((await reader.readInto(nonce)) !== NONCE_SIZE) {
      throw headerError("the file ends before the payload nonce");
    }
    const payloadKey = await crypto.hkdfSha256(fileKey, nonce, PAYLOAD_INFO, 32);
    const aead = await crypto.aeadKey("chacha20-poly1305", payloadKey);
    wipe(payloadKey);
    await options.onHeader?.();
    const payload = await decryptPayload(aead, reader, sink);
    return { armored, stanzaTypes, matched: matched!, ...payload };
  } finally {
    wipe(fileKey);
  }
}
