/**
 * Example third-party STP: `passphrase`, type 1000, version 1 (docs/PLUGINS.md).
 *
 * Everyone who knows one shared passphrase can seal and open; no keys or cards. The key
 * is scrypt(passphrase) with a fresh 16-byte salt per message (work factor chosen by the
 * sender, 2^10..2^20, default 2^16), the cipher XChaCha20-Poly1305 with a random 24-byte
 * nonce, and the AAD binds the envelope header and every clear field. The timestamp,
 * message nonce, AMP numbers and the optional sender label travel inside the ciphertext.
 *
 * Options (`--option NAME=VALUE`):
 * - `passphrase` (seal and open): required; Unicode NFC-normalised before use.
 * - `work-factor` (seal): scrypt log2(N), 10..20, default 16.
 * - `sender` (seal): a label shown to the reader as a claimed, unverified sender.
 *
 * The file imports nothing: it is a factory that receives missive's host API, so it
 * loads the same way under `deno run`, Bun and inside the compiled binary.
 *
 * Wire format of the payload (deterministic CBOR map, no other keys):
 *   {1: logN, 2: salt (16 bytes), 3: nonce (24 bytes), 4: ciphertext ‖ tag}
 * plaintext: {1: message nonce (16), 2: timestamp ms, 3: ampType, 4: ampVersion,
 *   5: body, 6?: sender label}
 * AAD: ["missive/plugin/passphrase/v1/aad", type, version, seq | null, logN, salt, nonce]
 * scrypt salt: ["missive/plugin/passphrase/v1/scrypt", salt] (domain separation, as age
 *   prefixes its scrypt salt with a label)
 * @module
 */

// Minimal local views of the host API (plugin/loader.ts PluginHost); no imports on purpose.
type Cbor = number | string | boolean | null | Uint8Array | Cbor[] | Map<number | string, Cbor>;
type ErrorCode = "usage" | "malformed" | "too-large" | "auth-failed" | "plugin";
interface Reader {
  uint(key: number, max?: number): number;
  bytes(key: number, length?: number | { min?: number; max: number }): Uint8Array;
  text(key: number, maxLength?: number): string;
  has(key: number): boolean;
  onlyKeys(allowed: readonly number[]): Reader;
}
interface Header {
  protocolType: number;
  protocolVersion: number;
  sequenceNumber?: number;
}
interface Inner {
  ampType: number;
  ampVersion: number;
  body: Uint8Array;
  timestamp: number;
  nonce: Uint8Array;
  sender?: string;
  destination?: string;
}
interface Crypto {
  aeadEncrypt(
    alg: "xchacha20-poly1305",
    key: Uint8Array,
    nonce: Uint8Array,
    plaintext: Uint8Array,
    aad: Uint8Array,
  ): Promise<Uint8Array>;
  aeadDecrypt(
    alg: "xchacha20-poly1305",
    key: Uint8Array,
    nonce: Uint8Array,
    ciphertext: Uint8Array,
    aad: Uint8Array,
  ): Promise<Uint8Array>;
}
interface SealCtx {
  header: Header;
  crypto: Crypto;
  random(length: number): Uint8Array;
  options: Readonly<Record<string, string>>;
}
interface OpenCtx {
  header: Header;
  crypto: Crypto;
  options: Readonly<Record<string, string>>;
}
/** The part of missive's host API this plugin uses. */
export interface PassphraseHost {
  cbor: {
    encodeCbor(value: Cbor): Uint8Array;
    decodeCbor(bytes: Uint8Array, context?: string): Cbor;
    CborReader: { from(value: Cbor, context: string): Reader };
    transcript(label: string, ...fields: Cbor[]): Uint8Array;
  };
  bytes: { utf8(s: string): Uint8Array; wipe(b: Uint8Array | undefined): void };
  MissiveError: new (code: ErrorCode, message: string) => Error;
  scrypt?(passphrase: Uint8Array, salt: Uint8Array, logN: number): Promise<Uint8Array>;
}

/** Third-party numbers start at 1000 (DESIGN §4). */
export const PASSPHRASE_TYPE = 1000;
const LABEL_AAD = "missive/plugin/passphrase/v1/aad";
const LABEL_SCRYPT = "missive/plugin/passphrase/v1/scrypt";
const AEAD = "xchacha20-poly1305";
const SALT_BYTES = 16;
const NONCE_BYTES = 24;
const TAG_BYTES = 16;
const MESSAGE_NONCE_BYTES = 16;
const MIN_LOG_N = 10;
const MAX_LOG_N = 20;
const DEFAULT_LOG_N = 16;
const MIN_PASSPHRASE_CHARS = 8;
const MAX_PASSPHRASE_CHARS = 1024;
const MAX_SENDER_CHARS = 254;
/** The envelope's own size limit; the payload cannot be larger. */
const MAX_CIPHERTEXT_BYTES = 64 * 1024 * 1024;
const KNOWN_OPTIONS = ["passphrase", "work-factor", "sender"];

/** Builds the `passphrase` STP from the host API. */
export default function passphrasePlugin(host: PassphraseHost) {
  const { cbor, bytes, MissiveError } = host;
  const scrypt = host.scrypt;
  if (typeof scrypt !== "function") {
    throw new MissiveError("plugin", "passphrase: this missive has no host.scrypt (too old)");
  }
  const fail = (code: ErrorCode, message: string): never => {
    throw new MissiveError(code, `passphrase: ${message}`);
  };

  function checkOptions(options: Readonly<Record<string, string>>): void {
    for (const name of Object.keys(options)) {
      if (!KNOWN_OPTIONS.includes(name)) {
        fail("usage", `unknown option "${name}" (known: ${KNOWN_OPTIONS.join(", ")})`);
      }
    }
  }

  function passphraseBytes(options: Readonly<Record<string, string>>, sealing: boolean) {
    const raw = options.passphrase;
    if (raw === undefined || raw === "") {
      return fail("usage", "a passphrase is required: --option passphrase=...");
    }
    // NFC so that the same passphrase typed on different systems gives the same key.
    const text = raw.normalize("NFC");
    if (text.length > MAX_PASSPHRASE_CHARS) {
      fail("usage", `passphrase longer than ${MAX_PASSPHRASE_CHARS} characters`);
    }
    if (sealing && [...text].length < MIN_PASSPHRASE_CHARS) {
      fail("usage", `passphrase shorter than ${MIN_PASSPHRASE_CHARS} characters`);
    }
    return bytes.utf8(text);
  }

  function workFactor(options: Readonly<Record<string, string>>): number {
    const raw = options["work-factor"];
    if (raw === undefined) return DEFAULT_LOG_N;
    const logN = /^\d{1,2}$/.test(raw) ? Number(raw) : NaN;
    if (!(logN >= MIN_LOG_N && logN <= MAX_LOG_N)) {
      fail("usage", `work-factor must be ${MIN_LOG_N}..${MAX_LOG_N}, got ${JSON.stringify(raw)}`);
    }
    return logN;
  }

  async function deriveKey(passphrase: Uint8Array, salt: Uint8Array, logN: number) {
    try {
      return await scrypt!(passphrase, cbor.transcript(LABEL_SCRYPT, salt), logN);
    } finally {
      bytes.wipe(passphrase);
    }
  }

  const aad = (header: Header, logN: number, salt: Uint8Array, nonce: Uint8Array) =>
    cbor.transcript(
      LABEL_AAD,
      header.protocolType,
      header.protocolVersion,
      header.sequenceNumber ?? null,
      logN,
      salt,
      nonce,
    );

  async function seal(inner: Inner, ctx: SealCtx): Promise<Uint8Array> {
    checkOptions(ctx.options);
    const logN = workFactor(ctx.options);
    const sender = ctx.options.sender ?? inner.sender;
    if (sender !== undefined && (sender === "" || sender.length > MAX_SENDER_CHARS)) {
      fail("usage", `sender label must be 1..${MAX_SENDER_CHARS} characters`);
    }
    const passphrase = passphraseBytes(ctx.options, true);
    const plain = new Map<number, Cbor>([
      [1, inner.nonce],
      [2, inner.timestamp],
      [3, inner.ampType],
      [4, inner.ampVersion],
      [5, inner.body],
    ]);
    if (sender !== undefined) plain.set(6, sender);
    const salt = ctx.random(SALT_BYTES);
    const nonce = ctx.random(NONCE_BYTES);
    const key = await deriveKey(passphrase, salt, logN);
    const plaintext = cbor.encodeCbor(plain);
    try {
      const sealed = await ctx.crypto.aeadEncrypt(
        AEAD,
        key,
        nonce,
        plaintext,
        aad(ctx.header, logN, salt, nonce),
      );
      return cbor.encodeCbor(
        new Map<number, Cbor>([[1, logN], [2, salt], [3, nonce], [4, sealed]]),
      );
    } finally {
      bytes.wipe(key);
      bytes.wipe(plaintext);
    }
  }

  async function open(payload: Uint8Array, ctx: OpenCtx) {
    checkOptions(ctx.options);
    const context = "passphrase payload";
    const r = cbor.CborReader.from(cbor.decodeCbor(payload, context), context).onlyKeys([
      1,
      2,
      3,
      4,
    ]);
    // Bound the work factor read from the wire before any scrypt (as typage does).
    const logN = r.uint(1, MAX_LOG_N);
    if (logN < MIN_LOG_N) fail("malformed", `work factor ${logN} is below ${MIN_LOG_N}`);
    const salt = r.bytes(2, SALT_BYTES);
    const nonce = r.bytes(3, NONCE_BYTES);
    const sealed = r.bytes(4, { min: TAG_BYTES, max: MAX_CIPHERTEXT_BYTES });
    const key = await deriveKey(passphraseBytes(ctx.options, false), salt, logN);
    let plaintext: Uint8Array;
    try {
      plaintext = await ctx.crypto.aeadDecrypt(
        AEAD,
        key,
        nonce,
        sealed,
        aad(ctx.header, logN, salt, nonce),
      );
    } catch (e) {
      if ((e as { code?: unknown })?.code !== "auth-failed") throw e;
      return fail("auth-failed", "wrong passphrase, or the message was altered");
    } finally {
      bytes.wipe(key);
    }
    const inside = "passphrase plaintext";
    const p = cbor.CborReader.from(cbor.decodeCbor(plaintext, inside), inside)
      .onlyKeys([1, 2, 3, 4, 5, 6]);
    const inner: Inner = {
      nonce: p.bytes(1, MESSAGE_NONCE_BYTES),
      timestamp: p.uint(2),
      ampType: p.uint(3, 0xffff),
      ampVersion: p.uint(4, 0xffff),
      body: p.bytes(5),
    };
    const warnings = ["passphrase: anyone who knows the passphrase could have written this"];
    if (!p.has(6)) return { inner, warnings };
    inner.sender = p.text(6, MAX_SENDER_CHARS);
    return { inner, sender: { address: inner.sender, verified: false }, warnings };
  }

  return {
    kind: "stp" as const,
    type: PASSPHRASE_TYPE,
    version: 1,
    name: "passphrase",
    description: "shared passphrase: scrypt + XChaCha20-Poly1305 (example plugin)",
    properties: {
      confidentiality: true,
      authentication: "shared-key" as const,
      nonRepudiation: false,
      forwardSecrecy: false,
      multiRecipient: true,
      // Nothing in the clear names who can read the message.
      hiddenRecipients: true,
    },
    seal,
    open,
  };
}
