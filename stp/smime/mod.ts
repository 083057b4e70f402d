/**
 * `smime` STP, type 1 version 1 (SPEC §18): PhoneX v1's "compress, sign with the X.509
 * identity, encrypt to the recipient's certificate" in its standard form, CMS (RFC 5652)
 * as S/MIME 4.0 (RFC 8551) uses it, interoperable with `openssl cms`. The envelope
 * payload is the DER of one ContentInfo. Identities are X.509 certificates and PKCS #8
 * keys, passed as parsed objects in the STP's options (`SmimeOptions`; the CLI reads them
 * from --cert/--key/--to/--trust; `--option` text is parsed by `parseSmimeOptions`), so
 * missive cards play no part here. Not in `defaultRegistry()`: register `smimeV1` where
 * X.509 is wanted (this entry point loads pkijs).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openMessage, Registry, sealMessage, textV1 } from "../../mod.ts";
 * import { createSelfSigned } from "../../keys/x509.ts";
 * import { smimeV1 } from "./mod.ts";
 * const alice = await createSelfSigned({ address: "alice@example.org", kind: "ec-p256", days: 1 });
 * const bob = await createSelfSigned({ address: "bob@example.org", kind: "ec-p256", days: 1 });
 * const sealed = await sealMessage({
 *   stp: smimeV1, amp: textV1, message: { text: "hi" },
 *   options: { identity: { chain: [alice.cert], key: alice.key }, recipients: [bob.cert] },
 * });
 * const registry = new Registry().register(smimeV1, textV1);
 * const opened = await openMessage(sealed, {
 *   registry,
 *   options: { identity: { chain: [bob.cert], key: bob.key }, trustAnchors: [alice.cert] },
 * });
 * assert.deepEqual(opened.message, { text: "hi" });
 * assert.equal(opened.sender?.address, "alice@example.org");
 * assert.equal(opened.sender?.trusted, true); // alice's certificate is a trust anchor
 * ```
 * @module
 */
import { utf8 } from "../../core/bytes.ts";
import { MissiveError } from "../../core/errors.ts";
import {
  certificateAddress,
  parseCertificates,
  parsePrivateKey,
  type X509Certificate,
  type X509PrivateKey,
} from "../../keys/x509.ts";
import type { Inner, OpenContext, SealContext, StpOpened, StpPlugin } from "../../plugin/types.ts";
import { CMS, MAX_CMS_LAYERS, parseContentInfo } from "./_cms.ts";
import {
  type ContentCipher,
  decryptAuthEnveloped,
  decryptEnveloped,
  encryptContent,
} from "./_enveloped.ts";
import { compressedDataDer, decompress } from "./_compressed.ts";
import { canonicalLineEnds, looksLikeSmime, parseSmimeEntity } from "./detect.ts";
import { type RsaSignature, signContent, type Verified, verifySigned } from "./_signed.ts";

import { SMIME_DESCRIPTOR } from "./descriptor.ts";

export { SMIME_TYPE } from "./descriptor.ts";

export { smimeBytes, smimeText } from "./_mime.ts";
export { looksLikeSmime, parseSmimeEntity, type SmimeEntity, unwrapSmimeEntity } from "./detect.ts";

/** An X.509 identity: a certificate chain (own certificate first) and its private key. */
export interface SmimeIdentity {
  /** The own certificate first, then any intermediates sent along with signatures. */
  chain: readonly X509Certificate[];
  /** The private key of `chain[0]`: signs when sealing, decrypts when opening. */
  key: X509PrivateKey;
}

/** Options of the `smime` STP. */
export interface SmimeOptions {
  /** Own identity: sealing signs with it, opening decrypts with it. */
  identity?: SmimeIdentity;
  /** Certificates to seal to. */
  recipients?: readonly X509Certificate[];
  /** CAs a signer must chain to on open (else the sender is not trusted). */
  trustAnchors?: readonly X509Certificate[];
  /** Content encryption: aes-256-cbc (EnvelopedData, default) or aes-256-gcm. */
  cipher?: ContentCipher;
  /** RSA signature scheme: pkcs1 (default) or pss. */
  signature?: RsaSignature;
  /** zlib-compress before signing (CompressedData, RFC 3274). */
  compress?: boolean;
  /** Verification time in ms since the epoch (tests); default now. */
  nowMs?: number;
}

const SMIME_OPTION_NAMES = [
  "cert",
  "key",
  "recipient-certs",
  "trust-certs",
  "cipher",
  "signature",
  "compress",
  "now",
];

/**
 * `SmimeOptions` from `--option NAME=VALUE` text: `cert` (own certificate and chain,
 * PEM) with `key` (unencrypted PKCS #8 PEM), `recipient-certs`, `trust-certs` (PEM),
 * `cipher`, `signature`, `compress=zlib`, `now` (ms). Unknown names are `usage` errors.
 */
export async function parseSmimeOptions(
  pairs: Readonly<Record<string, string>>,
): Promise<SmimeOptions> {
  for (const name of Object.keys(pairs)) {
    if (!SMIME_OPTION_NAMES.includes(name)) {
      throw new MissiveError(
        "usage",
        `smime: unknown option ${JSON.stringify(name)} (have: ${SMIME_OPTION_NAMES.join(", ")})`,
      );
    }
  }
  const certs = (name: string) =>
    pairs[name] === undefined ? undefined : parseCertificates(utf8(pairs[name]), `option ${name}`);
  const cipher = pairs.cipher as ContentCipher | undefined;
  const signature = pairs.signature as RsaSignature | undefined;
  if (cipher !== undefined && !["aes-256-cbc", "aes-256-gcm"].includes(cipher)) {
    throw new MissiveError("usage", "smime: cipher must be aes-256-cbc or aes-256-gcm");
  }
  if (signature !== undefined && !["pkcs1", "pss"].includes(signature)) {
    throw new MissiveError("usage", "smime: signature must be pkcs1 or pss");
  }
  if (pairs.compress !== undefined && pairs.compress !== "zlib") {
    throw new MissiveError("usage", "smime: compress must be zlib");
  }
  if (pairs.now !== undefined && !/^\d{1,15}$/.test(pairs.now)) {
    throw new MissiveError("usage", "smime: now must be ms");
  }
  const chain = certs("cert");
  if ((chain === undefined) !== (pairs.key === undefined)) {
    throw new MissiveError("usage", "smime: options cert and key go together");
  }
  return {
    identity: chain && pairs.key !== undefined
      ? { chain, key: await parsePrivateKey(utf8(pairs.key)) }
      : undefined,
    recipients: certs("recipient-certs"),
    trustAnchors: certs("trust-certs"),
    cipher,
    signature,
    compress: pairs.compress === "zlib" ? true : undefined,
    nowMs: pairs.now === undefined ? undefined : Number(pairs.now),
  };
}

function identityOf(options: SmimeOptions, needed: string): SmimeIdentity {
  const id = options.identity;
  if (!id || id.chain.length === 0) {
    throw new MissiveError("usage", `smime: ${needed} needs an X.509 identity (--cert, --key)`);
  }
  return id;
}

function nowOf(options: SmimeOptions): Date {
  return options.nowMs === undefined ? new Date() : new Date(options.nowMs);
}

async function sealSmime(inner: Inner, ctx: SealContext<SmimeOptions>): Promise<Uint8Array> {
  if (inner.ampType !== 1 || inner.ampVersion !== 1) {
    throw new MissiveError("usage", "smime carries AMP text/1 only (the content is the bytes)");
  }
  if (ctx.header.sequenceNumber !== undefined) {
    throw new MissiveError("usage", "smime: a sequence number cannot be bound; drop --seq");
  }
  const o = ctx.options;
  const signer = identityOf(o, "sealing");
  const recipients = o.recipients ?? [];
  if (recipients.length === 0) {
    throw new MissiveError("usage", "smime: sealing needs recipient certificates (--to CERT)");
  }
  const cipher = o.cipher ?? "aes-256-cbc";
  const rsa = o.signature ?? "pkcs1";
  if (!["aes-256-cbc", "aes-256-gcm"].includes(cipher) || !["pkcs1", "pss"].includes(rsa)) {
    throw new MissiveError("usage", "smime: cipher aes-256-cbc|aes-256-gcm, signature pkcs1|pss");
  }
  // PhoneX's order, RFC 3274 §1: compress, then sign the CompressedData, then encrypt.
  const signed = o.compress
    ? await signContent(compressedDataDer(inner.body), signer, {
      contentType: CMS.compressedData,
      rsa,
      time: new Date(inner.timestamp),
    })
    : await signContent(inner.body, signer, { rsa, time: new Date(inner.timestamp) });
  // As `openssl cms -sign | openssl cms -encrypt`: the SignedData ContentInfo is id-data.
  return await encryptContent(signed, CMS.data, [...recipients], cipher);
}

/** What `openCms` found inside a message. */
export interface OpenedCms {
  /** The signature, when the message is signed; absent: encrypted only, no sender. */
  verified?: Verified;
  /** The innermost content: the message's bytes (UTF-8 text for smime). */
  content: Uint8Array;
  /** The message had an encryption layer. */
  encrypted: boolean;
  /** What the reader should know: not signed, not encrypted, LF line ends fixed up. */
  warnings: string[];
}

const UNSIGNED_WARNING = "smime: encrypted but NOT signed: the sender is unknown and " +
  "unauthenticated (anyone with your certificate could have written it); time shown is 0";
const UNENCRYPTED_WARNING = "smime: signed but NOT encrypted: anyone who saw the message " +
  "could read it";

/** One layer to open: a ContentInfo, or a detached signature with its content. */
type Layer =
  | { kind: "cms"; ci: ReturnType<typeof parseContentInfo> }
  | { kind: "detached"; content: Uint8Array; signature: Uint8Array };

/** A layer from DER or an S/MIME entity (pkcs7-mime or multipart/signed); errors propagate. */
function layerOf(bytes: Uint8Array, what: string): Layer {
  const entity = parseSmimeEntity(bytes);
  return entity.kind === "cms"
    ? { kind: "cms", ci: parseContentInfo(entity.der, what) }
    : { kind: "detached", content: entity.content, signature: entity.signature };
}

/**
 * The decrypted content (id-data): a signed message (a ContentInfo, or an S/MIME entity),
 * or else the content itself, unsigned — which must be UTF-8 text (smime carries AMP
 * text/1), so a damaged signed message (CBC has no integrity of its own) is refused
 * rather than shown as unsigned garbage (SPEC §18.2).
 */
function decryptedLayer(content: Uint8Array): Layer | undefined {
  if (content.length > 0 && content[0] === 0x30) {
    try {
      return { kind: "cms", ci: parseContentInfo(content, "decrypted content") };
    } catch {
      // Not one ContentInfo: text that starts with "0", or damage; decided below.
    }
  } else if (looksLikeSmime(content)) {
    return layerOf(content, "decrypted content");
  }
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(content);
  } catch {
    throw new MissiveError(
      "malformed",
      "smime: the decrypted content is neither a signed message (CMS, S/MIME) nor text",
    );
  }
  return undefined;
}

/**
 * Verifies a detached signature over its content as it stands, then, if that fails and
 * differs, over its canonical form (CRLF line ends, RFC 8551 §3.1.1), as mail stored with
 * LF line ends needs.
 */
async function verifyDetached(
  layer: { content: Uint8Array; signature: Uint8Array },
  options: { anchors: readonly X509Certificate[]; now: Date },
  warnings: string[],
): Promise<Verified> {
  const ci = parseContentInfo(layer.signature, "detached signature");
  if (ci.contentType !== CMS.signedData) {
    throw new MissiveError("malformed", "smime: the signature part is not a SignedData");
  }
  try {
    return await verifySigned(ci.content, { ...options, detached: layer.content });
  } catch (e) {
    const canonical = canonicalLineEnds(layer.content);
    if (!(e instanceof MissiveError) || e.code !== "auth-failed") throw e;
    if (canonical.length === layer.content.length) throw e;
    const verified = await verifySigned(ci.content, { ...options, detached: canonical });
    warnings.push("smime: the signed part had LF line ends; it verified with CRLF, as signed");
    return verified;
  }
}

/**
 * Opens the layers of a CMS message (SPEC §18.2): at most one encryption layer outside
 * (EnvelopedData or AuthEnvelopedData; decrypting needs `identity`), at most one
 * SignedData (encapsulated, or detached in multipart/signed), and at most one
 * CompressedData: around the SignedData (sign, then compress) or inside it (compress,
 * then sign). An encrypted message whose content is text rather than a signed message is
 * returned without `verified`; a signed message without encryption says so in a warning.
 * `payload` is DER, or an S/MIME entity (multipart/signed).
 */
export async function openCms(payload: Uint8Array, options: SmimeOptions): Promise<OpenedCms> {
  const anchors = [...(options.trustAnchors ?? [])];
  const verifyOptions = { anchors, now: nowOf(options) };
  const warnings: string[] = [];
  let layer = layerOf(payload, "CMS");
  let decrypted = false;
  let decompressed = false;
  const done = (verified: Verified, content: Uint8Array): OpenedCms => {
    warnings.push(...verified.warnings);
    if (!decrypted) warnings.push(UNENCRYPTED_WARNING);
    return { verified, content, encrypted: decrypted, warnings };
  };
  for (let depth = 0; depth < MAX_CMS_LAYERS; depth++) {
    if (layer.kind === "detached") {
      const verified = await verifyDetached(layer, verifyOptions, warnings);
      return done(verified, verified.content);
    }
    const ci = layer.ci;
    const type = ci.contentType;
    if (type === CMS.envelopedData || type === CMS.authEnvelopedData) {
      if (decrypted) throw new MissiveError("malformed", "smime: nested encryption");
      if (decompressed) throw new MissiveError("malformed", "smime: encryption inside compression");
      const { chain, key } = identityOf(options, "decrypting");
      const d = type === CMS.envelopedData
        ? await decryptEnveloped(ci.content, chain[0], key, warnings)
        : await decryptAuthEnveloped(ci.content, chain[0], key, warnings);
      decrypted = true;
      if (d.contentType !== CMS.data) {
        throw new MissiveError(
          "unknown-protocol",
          `smime: encrypted content type ${d.contentType}`,
        );
      }
      // OpenSSL encrypts a signed message as data: DER, or an S/MIME entity; or, without
      // signing, the content itself.
      const inner = decryptedLayer(d.content);
      if (!inner) {
        warnings.push(UNSIGNED_WARNING);
        return { content: d.content, encrypted: true, warnings };
      }
      layer = inner;
      continue;
    }
    if (type === CMS.compressedData) {
      // Compressed after signing (sign | compress | encrypt): the signed message inside.
      if (decompressed) throw new MissiveError("malformed", "smime: nested compression");
      decompressed = true;
      const d = decompress(ci.content);
      if (d.contentType !== CMS.data) {
        throw new MissiveError(
          "unknown-protocol",
          `smime: compressed content type ${d.contentType}`,
        );
      }
      layer = layerOf(d.content, "decompressed content");
      continue;
    }
    if (type === CMS.signedData) {
      const verified = await verifySigned(ci.content, verifyOptions);
      let content = verified.content;
      if (verified.contentType === CMS.compressedData && !decompressed) {
        // Compressed before signing (missive's --compress, RFC 3274 §1): id-data inside.
        const d = decompress(content);
        if (d.contentType !== CMS.data) {
          throw new MissiveError(
            "unknown-protocol",
            `smime: compressed content type ${d.contentType}`,
          );
        }
        content = d.content;
      } else if (verified.contentType !== CMS.data) {
        throw new MissiveError(
          "unknown-protocol",
          `smime: signed content type ${verified.contentType}`,
        );
      }
      return done(verified, content);
    }
    if (type === CMS.data && !decrypted) {
      throw new MissiveError("malformed", "smime: the message is neither signed nor encrypted");
    }
    throw new MissiveError("unknown-protocol", `smime: content type ${type} is not supported`);
  }
  throw new MissiveError("malformed", `smime: more than ${MAX_CMS_LAYERS} CMS layers`);
}

async function openSmime(payload: Uint8Array, ctx: OpenContext<SmimeOptions>): Promise<StpOpened> {
  if (ctx.header.sequenceNumber !== undefined) {
    throw new MissiveError("malformed", "smime: the envelope has a sequence number it cannot bind");
  }
  const { verified, content, warnings } = await openCms(payload, ctx.options);
  if (!verified) {
    // Encrypted only: no sender, no time; the nonce (replay key) is the message's hash.
    return {
      inner: {
        ampType: 1,
        ampVersion: 1,
        body: content,
        timestamp: 0,
        nonce: (await ctx.crypto.sha256(payload)).slice(0, 16),
      },
      warnings,
    };
  }
  if (!verified.signingTime) warnings.push("the signer gave no signingTime; time shown is 0");
  return {
    inner: {
      ampType: 1,
      ampVersion: 1,
      body: content,
      timestamp: verified.signingTime?.getTime() ?? 0,
      nonce: verified.signatureHash.slice(0, 16),
      sender: certificateAddress(verified.signer),
    },
    sender: {
      address: certificateAddress(verified.signer),
      verified: true,
      trustedByStp: verified.trusted,
    },
    warnings,
  };
}

/** The `smime` STP (type 1, version 1). Not in `defaultRegistry()`: it needs X.509. */
export const smimeV1: StpPlugin<SmimeOptions> = {
  ...SMIME_DESCRIPTOR,
  parseOptions: parseSmimeOptions,
  seal: sealSmime,
  open: openSmime,
};

// Types that this entry point's signatures name (and the types those name), re-exported
// so that its documentation is complete on its own.
export type { ContentCipher } from "./_enveloped.ts";
export type { RsaSignature, Verified } from "./_signed.ts";
// X.509 identities for SmimeOptions: read them from PEM or DER, or make a self-signed one.
export {
  certificateAddress,
  certificatesToPem,
  createSelfSigned,
  parseCertificates,
  parsePrivateKey,
  privateKeyToPem,
  type X509Certificate,
  type X509KeyKind,
  type X509PrivateKey,
} from "../../keys/x509.ts";
