/**
 * CMS RecipientInfos (RFC 5652 §6.2) for the `smime` STP: wrapping the content-encryption
 * key (CEK) for each recipient certificate, and unwrapping it with the opener's key.
 * Shared by EnvelopedData and AuthEnvelopedData. Structures come from pkijs.
 *
 * - RSA: KeyTransRecipientInfo with RSAES-OAEP, SHA-256, MGF1-SHA-256 (RFC 8017, RFC
 *   4055). PKCS #1 v1.5 key transport (`openssl cms -encrypt`'s default) is opened only,
 *   through node:crypto, because WebCrypto has no RSAES-PKCS1-v1_5.
 * - EC P-256: KeyAgreeRecipientInfo, see `kari.ts`.
 * @module
 */
import { Buffer } from "node:buffer";
import { constants, createPrivateKey, privateDecrypt } from "node:crypto";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { type Bytes, equalBytes, randomBytes } from "../../core/bytes.ts";
import { MissiveError } from "../../core/errors.ts";
import {
  certificateKind,
  importPrivateKey,
  type X509Certificate,
  type X509PrivateKey,
} from "../../keys/x509.ts";
import { sameIssuerAndSerial } from "./_cms.ts";
import { unwrapKeyAgree, wrapKeyAgree } from "./_kari.ts";

/** OIDs of key transport (RFC 8017 Appendix C, RFC 4055 §2.1, NIST CSOR). */
const RSA_ENCRYPTION = "1.2.840.113549.1.1.1";
const RSAES_OAEP = "1.2.840.113549.1.1.7";
const MGF1 = "1.2.840.113549.1.1.8";
const SHA256 = "2.16.840.1.101.3.4.2.1";

/** Largest number of recipients accepted in one message. */
export const MAX_RECIPIENT_INFOS = 64;

const RSA_PKCS1 = constants.RSA_PKCS1_PADDING;

/** A warning about PKCS #1 v1.5 key transport (shown once per message on open). */
export const PKCS1_WARNING =
  "the sender used RSA PKCS #1 v1.5 key transport (openssl cms -encrypt's default), which is " +
  "open to padding-oracle attacks; ask for RSA-OAEP (-keyopt rsa_padding_mode:oaep)";

const sha256Id = () => new pkijs.AlgorithmIdentifier({ algorithmId: SHA256 });

function issuerAndSerial(c: X509Certificate): pkijs.IssuerAndSerialNumber {
  return new pkijs.IssuerAndSerialNumber({
    issuer: c.cert.issuer,
    serialNumber: c.cert.serialNumber,
  });
}

/** True when a RecipientIdentifier names `c` (issuer and serial, or subject key id). */
export async function ridMatches(rid: unknown, c: X509Certificate): Promise<boolean> {
  if (rid instanceof pkijs.IssuerAndSerialNumber) {
    return sameIssuerAndSerial(rid, c);
  }
  if (rid instanceof asn1js.OctetString) {
    const ski = c.cert.extensions?.find((e) => e.extnID === "2.5.29.14")?.parsedValue;
    if (ski instanceof asn1js.OctetString) return ski.isEqual(rid);
    // RFC 5280 §4.2.1.2 method (1): SHA-1 of the public key bits.
    const bits = c.cert.subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView;
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-1", Uint8Array.from(bits)));
    return rid.isEqual(new asn1js.OctetString({ valueHex: digest }));
  }
  return false;
}

async function wrapKeyTrans(cek: Bytes, c: X509Certificate): Promise<pkijs.RecipientInfo> {
  const spki = c.cert.subjectPublicKeyInfo.toSchema().toBER(false);
  const alg = { name: "RSA-OAEP", hash: "SHA-256" };
  const key = await crypto.subtle.importKey("spki", spki, alg, false, ["encrypt"]);
  const encryptedKey = new Uint8Array(await crypto.subtle.encrypt(alg, key, cek));
  const params = new pkijs.RSAESOAEPParams({
    hashAlgorithm: sha256Id(),
    maskGenAlgorithm: new pkijs.AlgorithmIdentifier({
      algorithmId: MGF1,
      algorithmParams: sha256Id().toSchema(),
    }),
  });
  return new pkijs.RecipientInfo({
    variant: 1,
    value: new pkijs.KeyTransRecipientInfo({
      version: 0,
      rid: issuerAndSerial(c),
      keyEncryptionAlgorithm: new pkijs.AlgorithmIdentifier({
        algorithmId: RSAES_OAEP,
        algorithmParams: params.toSchema(),
      }),
      encryptedKey: new asn1js.OctetString({ valueHex: encryptedKey }),
    }),
  });
}

/** One RecipientInfo per certificate, each carrying `cek`. */
export async function wrapForRecipients(
  cek: Bytes,
  recipients: readonly X509Certificate[],
): Promise<pkijs.RecipientInfo[]> {
  const out: pkijs.RecipientInfo[] = [];
  for (const c of recipients) {
    out.push(
      certificateKind(c) === "rsa" ? await wrapKeyTrans(cek, c) : await wrapKeyAgree(cek, c),
    );
  }
  return out;
}

/** The OAEP hash of RSAES-OAEP-params; only SHA-256 with MGF1-SHA-256 is accepted. */
function checkOaepParams(alg: pkijs.AlgorithmIdentifier): void {
  let p: pkijs.RSAESOAEPParams;
  let mgfHash = "";
  try {
    p = new pkijs.RSAESOAEPParams({ schema: alg.algorithmParams });
    const mgfParams = p.maskGenAlgorithm.algorithmParams;
    if (mgfParams) mgfHash = new pkijs.AlgorithmIdentifier({ schema: mgfParams }).algorithmId;
  } catch {
    throw new MissiveError("malformed", "smime: bad RSAES-OAEP parameters");
  }
  const mgf = p.maskGenAlgorithm.algorithmId;
  if (p.hashAlgorithm.algorithmId !== SHA256 || mgf !== MGF1 || mgfHash !== SHA256) {
    throw new MissiveError(
      "unknown-protocol",
      "smime: RSA-OAEP key transport must use SHA-256 and MGF1-SHA-256",
    );
  }
}

async function unwrapKeyTrans(
  ri: pkijs.KeyTransRecipientInfo,
  key: X509PrivateKey,
  cekLength: number,
  warnings: string[],
): Promise<Bytes> {
  const encryptedKey = Uint8Array.from(ri.encryptedKey.valueBlock.valueHexView);
  const alg = ri.keyEncryptionAlgorithm;
  if (alg.algorithmId === RSAES_OAEP) {
    checkOaepParams(alg);
    const priv = await importPrivateKey(key, { name: "RSA-OAEP", hash: "SHA-256" }, ["decrypt"]);
    try {
      return new Uint8Array(await crypto.subtle.decrypt({ name: "RSA-OAEP" }, priv, encryptedKey));
    } catch {
      throw new MissiveError("auth-failed", "smime: the content key does not decrypt");
    }
  }
  if (alg.algorithmId === RSA_ENCRYPTION) {
    warnings.push(PKCS1_WARNING);
    return pkcs1Decrypt(key, encryptedKey, cekLength);
  }
  throw new MissiveError(
    "unknown-protocol",
    `smime: key transport algorithm ${alg.algorithmId} is not supported`,
  );
}

/**
 * RSAES-PKCS1-v1_5 decryption (RFC 8017 §7.2.2) via node:crypto, the one place it is
 * used. A padding failure yields a random key of the expected length (RFC 3218 §2.3.2),
 * so it surfaces later as the same `auth-failed` as a wrong content tag or padding.
 * Node and Bun refuse RSA_PKCS1_PADDING for decryption (Marvin); Deno allows it.
 */
function pkcs1Decrypt(key: X509PrivateKey, encryptedKey: Uint8Array, cekLength: number): Bytes {
  if (typeof privateDecrypt !== "function") {
    throw new MissiveError("key", "smime: PKCS #1 v1.5 key transport is unavailable here");
  }
  try {
    const cek = new Uint8Array(
      privateDecrypt(
        {
          key: createPrivateKey({ key: Buffer.from(key.pkcs8), format: "der", type: "pkcs8" }),
          padding: RSA_PKCS1,
        },
        encryptedKey,
      ),
    );
    return cek.length === cekLength ? cek : randomBytes(cekLength);
  } catch (e) {
    const message = (e as Error)?.message ?? "";
    if (/no longer supported|not supported/i.test(message)) {
      throw new MissiveError(
        "key",
        "smime: this runtime refuses RSA PKCS #1 v1.5 decryption (key transport of " +
          "openssl cms -encrypt's default); use the Deno build of missive, or have the " +
          "sender use -keyopt rsa_padding_mode:oaep",
      );
    }
    return randomBytes(cekLength);
  }
}

/**
 * Finds the RecipientInfo for `cert` and unwraps the CEK (`cekLength` bytes). None for
 * this certificate is `not-a-recipient`.
 */
export async function unwrapForRecipient(
  infos: readonly pkijs.RecipientInfo[],
  originals: readonly asn1js.AsnType[],
  cert: X509Certificate,
  key: X509PrivateKey,
  cekLength: number,
  warnings: string[],
): Promise<Bytes> {
  if (infos.length === 0 || infos.length > MAX_RECIPIENT_INFOS) {
    throw new MissiveError("malformed", `smime: ${infos.length} recipient infos`);
  }
  // Nothing in a RecipientInfo is authenticated: refuse any encoding that pkijs would
  // not write back byte for byte (a changed tag or OID its schema still accepts).
  if (originals.length !== infos.length) {
    throw new MissiveError("malformed", "smime: RecipientInfos do not parse");
  }
  infos.forEach((info, i) => {
    const again = new Uint8Array(info.toSchema().toBER(false));
    if (!equalBytes(again, new Uint8Array(originals[i].toBER(false)))) {
      throw new MissiveError("malformed", "smime: RecipientInfo is not canonically encoded");
    }
  });
  for (const info of infos) {
    if (info.variant === 1) {
      const ri = info.value as pkijs.KeyTransRecipientInfo;
      if (!(await ridMatches(ri.rid, cert))) continue;
      // RFC 5652 §6.2.1: version 0 with issuerAndSerialNumber, 2 with a key identifier.
      if (ri.version !== (ri.rid instanceof pkijs.IssuerAndSerialNumber ? 0 : 2)) {
        throw new MissiveError("malformed", `smime: KeyTransRecipientInfo version ${ri.version}`);
      }
      if (key.kind !== "rsa") throw new MissiveError("key", "smime: RSA recipient, non-RSA key");
      return await unwrapKeyTrans(ri, key, cekLength, warnings);
    }
    if (info.variant === 2) {
      const cek = await unwrapKeyAgree(info.value as pkijs.KeyAgreeRecipientInfo, cert, key);
      if (cek) return cek;
    }
  }
  throw new MissiveError(
    "not-a-recipient",
    `not a recipient: this message is for ${infos.length} other certificate(s)`,
  );
}
