/**
 * X.509 identities for the `smime` STP: certificates (PEM or DER) and PKCS #8 private
 * keys (PEM or DER, plain or encrypted with a passphrase, RFC 5958 / RFC 8018 PBES2).
 * All ASN.1 is parsed by pkijs/asn1js; this file only finds PEM blocks and bounds input.
 * @module
 */
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { type Bytes, fromBase64, toBase64 } from "../core/bytes.ts";
import { MissiveError, wrapErrors } from "../core/errors.ts";
import { MAX_X509_FILE } from "./x509_limits.ts";

export { MAX_X509_FILE } from "./x509_limits.ts";
/** Most certificates taken from one file or one option. */
export const MAX_CERTIFICATES = 64;

/** OIDs this module needs (RFC 5280, RFC 5480, RFC 8017, PKCS #9). */
export const OID = {
  rsaEncryption: "1.2.840.113549.1.1.1",
  ecPublicKey: "1.2.840.10045.2.1",
  prime256v1: "1.2.840.10045.3.1.7",
  emailAddress: "1.2.840.113549.1.9.1",
  commonName: "2.5.4.3",
  subjectAltName: "2.5.29.17",
} as const;

/** The public-key kinds missive's smime STP supports. */
export type X509KeyKind = "rsa" | "ec-p256";

/**
 * One parsed certificate, with its DER; made by `parseCertificates` or
 * `parseCertificateDer` (a `malformed` error for anything that does not parse).
 */
export interface X509Certificate {
  /** The certificate's DER encoding (RFC 5280 §4.1). */
  der: Bytes;
  /**
   * The pkijs parse of `der`, for the CMS code of stp/smime. Left out of the documented
   * API (`@ignore`) so that pkijs's types do not become missive's.
   * @ignore
   */
  cert: pkijs.Certificate;
}

/** A PKCS #8 private key, decrypted, with its kind. */
export interface X509PrivateKey {
  /** The unencrypted PKCS #8 PrivateKeyInfo DER (RFC 5958). Secret. */
  pkcs8: Bytes;
  /** The key's algorithm: RSA or ECDSA P-256. */
  kind: X509KeyKind;
}

/** The DER of every `-----BEGIN <label>-----` block, in order (RFC 7468, lax base64). */
function pemBlocks(text: string, labels: readonly string[]): { label: string; der: Bytes }[] {
  const out: { label: string; der: Bytes }[] = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
  for (const m of text.matchAll(re)) {
    if (!labels.includes(m[1])) continue;
    // RFC 7468 §3 lets PEM carry headers (old "Proc-Type:" keys) and any line breaks.
    if (m[2].includes(":")) {
      throw new MissiveError("key", `PEM ${m[1]}: encrypted legacy PEM is not supported`);
    }
    const der = fromBase64(m[2].replace(/\s+/g, ""));
    if (!der) throw new MissiveError("malformed", `PEM ${m[1]}: invalid base64`);
    out.push({ label: m[1], der });
  }
  return out;
}

const isPem = (bytes: Uint8Array) => new TextDecoder().decode(bytes).includes("-----BEGIN ");

/** Parses one DER certificate; any failure is `malformed`. */
export function parseCertificateDer(der: Uint8Array): X509Certificate {
  const copy = Uint8Array.from(der);
  const cert = wrapErrors("malformed", "X.509 certificate", () => {
    const parsed = asn1js.fromBER(copy);
    if (parsed.offset === -1 || parsed.offset !== copy.length) {
      throw new Error("not one DER item");
    }
    return new pkijs.Certificate({ schema: parsed.result });
  });
  return { der: copy, cert };
}

/**
 * Parses certificates: PEM text with one or more CERTIFICATE blocks, or one DER
 * certificate. None found is `key`.
 */
export function parseCertificates(bytes: Uint8Array, what = "certificate"): X509Certificate[] {
  if (bytes.length > MAX_X509_FILE) {
    throw new MissiveError("too-large", `${what}: larger than ${MAX_X509_FILE} bytes`);
  }
  const ders = isPem(bytes)
    ? pemBlocks(new TextDecoder().decode(bytes), ["CERTIFICATE"]).map((b) => b.der)
    : [bytes];
  if (ders.length === 0) throw new MissiveError("key", `${what}: no CERTIFICATE block`);
  if (ders.length > MAX_CERTIFICATES) {
    throw new MissiveError("too-large", `${what}: more than ${MAX_CERTIFICATES} certificates`);
  }
  return ders.map((der) => {
    try {
      return parseCertificateDer(der);
    } catch (e) {
      if (e instanceof MissiveError) throw new MissiveError(e.code, `${what}: ${e.message}`);
      throw e;
    }
  });
}

/** Certificates as PEM text (how they travel in STP options). */
export function certificatesToPem(certs: readonly X509Certificate[]): string {
  return certs.map(({ der }) => {
    const b64 = toBase64(der).replace(/.{1,64}/g, "$&\n");
    return `-----BEGIN CERTIFICATE-----\n${b64}-----END CERTIFICATE-----\n`;
  }).join("");
}

/** A private key as PEM text (PKCS #8, unencrypted; how it travels in STP options). */
export function privateKeyToPem(key: X509PrivateKey): string {
  const b64 = toBase64(key.pkcs8).replace(/.{1,64}/g, "$&\n");
  return `-----BEGIN PRIVATE KEY-----\n${b64}-----END PRIVATE KEY-----\n`;
}

/** The key kind of a SubjectPublicKeyInfo or PKCS #8 algorithm; others are `key`. */
function kindOf(alg: pkijs.AlgorithmIdentifier, what: string): X509KeyKind {
  if (alg.algorithmId === OID.rsaEncryption) return "rsa";
  if (alg.algorithmId === OID.ecPublicKey) {
    const curve = alg.algorithmParams instanceof asn1js.ObjectIdentifier
      ? alg.algorithmParams.valueBlock.toString()
      : "";
    if (curve === OID.prime256v1) return "ec-p256";
    throw new MissiveError("key", `${what}: EC curve ${curve || "?"} is not P-256`);
  }
  throw new MissiveError("key", `${what}: key algorithm ${alg.algorithmId} is not RSA or EC`);
}

/** The key kind of a certificate's public key. */
export function certificateKind(c: X509Certificate): X509KeyKind {
  return kindOf(c.cert.subjectPublicKeyInfo.algorithm, "certificate");
}

/**
 * Parses a PKCS #8 private key: PEM "PRIVATE KEY" or "ENCRYPTED PRIVATE KEY", or DER of
 * either. An encrypted key needs `passphrase()`; a wrong one is `key`.
 */
export async function parsePrivateKey(
  bytes: Uint8Array,
  passphrase?: () => Promise<string>,
): Promise<X509PrivateKey> {
  if (bytes.length > MAX_X509_FILE) {
    throw new MissiveError("too-large", `private key: larger than ${MAX_X509_FILE} bytes`);
  }
  let der: Uint8Array = bytes;
  let encrypted: boolean | undefined;
  if (isPem(bytes)) {
    const text = new TextDecoder().decode(bytes);
    if (/-----BEGIN (RSA|EC) PRIVATE KEY-----/.test(text)) {
      throw new MissiveError(
        "key",
        "private key: legacy PEM; convert with: openssl pkcs8 -topk8 -in KEY -out KEY.p8",
      );
    }
    const blocks = pemBlocks(text, ["PRIVATE KEY", "ENCRYPTED PRIVATE KEY"]);
    if (blocks.length !== 1) {
      throw new MissiveError("key", "private key: expected one PKCS #8 PEM block");
    }
    der = blocks[0].der;
    encrypted = blocks[0].label === "ENCRYPTED PRIVATE KEY";
  }
  const item = wrapErrors("malformed", "private key", () => {
    const parsed = asn1js.fromBER(Uint8Array.from(der));
    if (parsed.offset === -1 || parsed.offset !== der.length) throw new Error("not one DER item");
    return parsed.result;
  });
  // PrivateKeyInfo starts with an INTEGER version; EncryptedPrivateKeyInfo with a SEQUENCE.
  const first = (item as asn1js.Sequence).valueBlock?.value?.[0];
  encrypted ??= first instanceof asn1js.Sequence;
  let info: pkijs.PrivateKeyInfo;
  if (encrypted) {
    if (!passphrase) throw new MissiveError("key", "private key is encrypted: need a passphrase");
    const bag = wrapErrors(
      "malformed",
      "encrypted private key",
      () => new pkijs.PKCS8ShroudedKeyBag({ schema: item }),
    );
    const password = new TextEncoder().encode(await passphrase());
    try {
      await (bag as unknown as {
        parseInternalValues(p: { password: ArrayBuffer }): Promise<void>;
      }).parseInternalValues({ password: password.buffer });
    } catch (e) {
      throw new MissiveError("key", `private key: wrong passphrase or unsupported encryption`, {
        cause: e,
      });
    }
    if (!bag.parsedValue) throw new MissiveError("key", "private key: could not decrypt");
    info = bag.parsedValue;
  } else {
    info = wrapErrors("malformed", "private key", () => new pkijs.PrivateKeyInfo({ schema: item }));
  }
  const kind = kindOf(info.privateKeyAlgorithm, "private key");
  return { pkcs8: new Uint8Array(info.toSchema().toBER()), kind };
}

/**
 * The address a certificate speaks for: its first subjectAltName rfc822Name, else the
 * subject's emailAddress, else the subject's commonName (RFC 8550 §3).
 */
export function certificateAddress(c: X509Certificate): string {
  const ext = c.cert.extensions?.find((e) => e.extnID === OID.subjectAltName);
  const names = (ext?.parsedValue as pkijs.AltName | undefined)?.altNames ?? [];
  const email = names.find((n) => n.type === 1);
  if (email && typeof email.value === "string") return email.value;
  for (const oid of [OID.emailAddress, OID.commonName]) {
    const tv = c.cert.subject.typesAndValues.find((t) => t.type === oid);
    const v = tv?.value?.valueBlock as { value?: unknown } | undefined;
    if (typeof v?.value === "string" && v.value.length > 0) return v.value;
  }
  return "(no name)";
}

/** Imports a PKCS #8 key into WebCrypto for one algorithm. */
export async function importPrivateKey(
  key: X509PrivateKey,
  algorithm: RsaHashedImportParams | EcKeyImportParams,
  usages: KeyUsage[],
): Promise<CryptoKey> {
  try {
    return await crypto.subtle.importKey("pkcs8", key.pkcs8, algorithm, false, usages);
  } catch (e) {
    throw new MissiveError("key", `private key: ${(e as Error).message}`, { cause: e });
  }
}

/** Extension OIDs and values for self-signed identities (RFC 5280 §4.2, RFC 8550 §4.4). */
const EXT = {
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  subjectKeyIdentifier: "2.5.29.14",
  emailProtection: "1.3.6.1.5.5.7.3.4",
} as const;
/** PBKDF2-HMAC-SHA-256 iterations for an encrypted PKCS #8 key (OWASP 2023). */
export const PBKDF2_ITERATIONS = 600_000;
/** Longest validity `createSelfSigned` accepts, in days. */
export const MAX_CERT_DAYS = 36_500;

/**
 * A new key pair and a self-signed certificate for `address` (subject CN and
 * subjectAltName rfc822Name), valid for `days` from `now`: RSA-2048 with
 * sha256WithRSAEncryption, or P-256 with ecdsa-with-SHA256. keyUsage digitalSignature,
 * nonRepudiation and keyEncipherment (RSA) or keyAgreement (EC); extKeyUsage
 * emailProtection; not a CA (it is its own trust anchor). WebCrypto makes the keys,
 * pkijs the structures.
 */
export async function createSelfSigned(options: {
  address: string;
  kind: X509KeyKind;
  days: number;
  now?: Date;
}): Promise<{ cert: X509Certificate; key: X509PrivateKey }> {
  const { address, kind, days } = options;
  if (!Number.isInteger(days) || days < 1 || days > MAX_CERT_DAYS) {
    throw new MissiveError("usage", `certificate validity must be 1..${MAX_CERT_DAYS} days`);
  }
  const algorithm = kind === "rsa"
    ? {
      name: "RSASSA-PKCS1-v1_5",
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-256",
    }
    : { name: "ECDSA", namedCurve: "P-256" };
  const pair = await crypto.subtle.generateKey(algorithm, true, ["sign", "verify"]);
  const cert = new pkijs.Certificate();
  cert.version = 2;
  const serial = crypto.getRandomValues(new Uint8Array(16));
  serial[0] = (serial[0] & 0x7f) | 0x40; // positive, 16 bytes (RFC 5280 §4.1.2.2)
  cert.serialNumber = new asn1js.Integer({ valueHex: serial });
  const name = new pkijs.RelativeDistinguishedNames({
    typesAndValues: [
      new pkijs.AttributeTypeAndValue({
        type: OID.commonName,
        value: new asn1js.Utf8String({ value: address }),
      }),
    ],
  });
  cert.subject = name;
  cert.issuer = name;
  const now = options.now ?? new Date();
  cert.notBefore.value = new Date(Math.floor(now.getTime() / 1000) * 1000 - 60_000);
  cert.notAfter.value = new Date(now.getTime() + days * 86_400_000);
  await cert.subjectPublicKeyInfo.importKey(pair.publicKey);
  const spkiBits = cert.subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView;
  const ski = new Uint8Array(await crypto.subtle.digest("SHA-1", Uint8Array.from(spkiBits)));
  // keyUsage bits (MSB first): digitalSignature 0, nonRepudiation 1, keyEncipherment 2,
  // keyAgreement 4.
  const usage = kind === "rsa" ? { bits: 0xe0, unused: 5 } : { bits: 0xc8, unused: 3 };
  const ext = (extnID: string, critical: boolean, value: asn1js.AsnType, parsedValue?: unknown) =>
    new pkijs.Extension({
      extnID,
      critical,
      extnValue: value.toBER(false),
      ...(parsedValue ? { parsedValue } : {}),
    });
  const san = new pkijs.AltName({
    altNames: [new pkijs.GeneralName({ type: 1, value: address })],
  });
  cert.extensions = [
    ext(EXT.basicConstraints, true, new pkijs.BasicConstraints({ cA: false }).toSchema()),
    ext(
      EXT.keyUsage,
      true,
      new asn1js.BitString({ valueHex: new Uint8Array([usage.bits]), unusedBits: usage.unused }),
    ),
    ext(
      EXT.extKeyUsage,
      false,
      new pkijs.ExtKeyUsage({ keyPurposes: [EXT.emailProtection] }).toSchema(),
    ),
    ext(EXT.subjectKeyIdentifier, false, new asn1js.OctetString({ valueHex: ski })),
    ext(OID.subjectAltName, false, san.toSchema(), san),
  ];
  await cert.sign(pair.privateKey, "SHA-256");
  const der = new Uint8Array(cert.toSchema(true).toBER(false));
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
  return { cert: parseCertificateDer(der), key: { pkcs8, kind } };
}

/**
 * A private key as "ENCRYPTED PRIVATE KEY" PEM: PKCS #8 EncryptedPrivateKeyInfo with
 * PBES2 (RFC 8018): PBKDF2-HMAC-SHA-256 (`iterations`, 64-byte salt) and AES-256-CBC,
 * built by pkijs. OpenSSL reads it (`openssl pkey -in KEY`).
 */
export async function encryptedPrivateKeyToPem(
  key: X509PrivateKey,
  passphrase: string,
  iterations = PBKDF2_ITERATIONS,
): Promise<string> {
  const info = wrapErrors(
    "internal",
    "private key",
    () => new pkijs.PrivateKeyInfo({ schema: asn1js.fromBER(Uint8Array.from(key.pkcs8)).result }),
  );
  const bag = new pkijs.PKCS8ShroudedKeyBag({ parsedValue: info });
  await bag.makeInternalValues({
    password: new TextEncoder().encode(passphrase).buffer,
    // pkijs draws the IV itself; its type wants one here, only the key length is used.
    contentEncryptionAlgorithm: {
      name: "AES-CBC",
      length: 256,
    } as unknown as pkijs.ContentEncryptionAlgorithm,
    hmacHashAlgorithm: "SHA-256",
    iterationCount: iterations,
  });
  const der = new Uint8Array(bag.toSchema().toBER(false));
  const b64 = toBase64(der).replace(/.{1,64}/g, "$&\n");
  return `-----BEGIN ENCRYPTED PRIVATE KEY-----\n${b64}-----END ENCRYPTED PRIVATE KEY-----\n`;
}
