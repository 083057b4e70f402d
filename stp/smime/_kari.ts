/**
 * ECDH P-256 key agreement for CMS (RFC 5753 §3.1 "ephemeral-static", RFC 8418 style
 * KeyAgreeRecipientInfo): an ephemeral key per message, the X9.63 KDF over
 * ECC-CMS-SharedInfo, and AES key wrap (RFC 3394) of the content-encryption key.
 *
 * pkijs builds the structures but not the SharedInfo that OpenSSL expects: with no ukm it
 * writes an empty `entityUInfo` where RFC 5753 §7.2 says the field is absent, so the two
 * derive different KEKs. This file does the KDF itself and omits `entityUInfo` unless a
 * ukm is present — the narrow workaround.
 * @module
 */
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { type Bytes, concatBytes } from "../../core/bytes.ts";
import { MissiveError } from "../../core/errors.ts";
import { sameIssuerAndSerial } from "./_cms.ts";
import {
  importPrivateKey,
  OID,
  type X509Certificate,
  type X509PrivateKey,
} from "../../keys/x509.ts";

/** dhSinglePass-stdDH-*kdf-scheme OIDs (RFC 5753 §7.1.4, SEC 1) → the KDF hash. */
const KDF_SCHEMES: Record<string, string> = {
  "1.3.133.16.840.63.0.2": "SHA-1",
  "1.3.132.1.11.1": "SHA-256",
  "1.3.132.1.11.2": "SHA-384",
  "1.3.132.1.11.3": "SHA-512",
};
/** What missive writes: SHA-256 KDF, AES-256 wrap. */
const ECDH_SHA256_KDF = "1.3.132.1.11.1";
/** id-aes{128,192,256}-wrap (RFC 3565 §2.3.2) → KEK length in bytes. */
const AES_WRAP: Record<string, number> = {
  "2.16.840.1.101.3.4.1.5": 16,
  "2.16.840.1.101.3.4.1.25": 24,
  "2.16.840.1.101.3.4.1.45": 32,
};
const AES256_WRAP = "2.16.840.1.101.3.4.1.45";

/** X9.63 KDF (SEC 1 §3.6.1): Hash(Z ‖ counter ‖ SharedInfo) blocks, counter from 1. */
async function x963Kdf(hash: string, z: Bytes, sharedInfo: Bytes, length: number): Promise<Bytes> {
  const blocks: Uint8Array[] = [];
  let have = 0;
  for (let counter = 1; have < length; counter++) {
    const c = new Uint8Array([counter >>> 24, counter >>> 16, counter >>> 8, counter]);
    const block = new Uint8Array(await crypto.subtle.digest(hash, concatBytes(z, c, sharedInfo)));
    blocks.push(block);
    have += block.length;
  }
  return concatBytes(...blocks).slice(0, length);
}

/** ECC-CMS-SharedInfo (RFC 5753 §7.2); `entityUInfo` only when there is a ukm. */
function sharedInfo(wrapOid: string, kekBytes: number, ukm?: asn1js.OctetString): Bytes {
  const bits = kekBytes * 8;
  const info = new pkijs.ECCCMSSharedInfo({
    keyInfo: new pkijs.AlgorithmIdentifier({ algorithmId: wrapOid }),
    ...(ukm ? { entityUInfo: ukm } : {}),
    suppPubInfo: new asn1js.OctetString({
      valueHex: new Uint8Array([bits >>> 24, bits >>> 16, bits >>> 8, bits]).buffer,
    }),
  });
  return new Uint8Array(info.toSchema().toBER(false));
}

async function kek(raw: Bytes, usage: KeyUsage): Promise<CryptoKey> {
  return await crypto.subtle.importKey("raw", raw, { name: "AES-KW" }, false, [usage]);
}

/** A KeyAgreeRecipientInfo carrying `cek` for an EC P-256 certificate. */
export async function wrapKeyAgree(cek: Bytes, c: X509Certificate): Promise<pkijs.RecipientInfo> {
  const params = { name: "ECDH", namedCurve: "P-256" };
  const spki = c.cert.subjectPublicKeyInfo.toSchema().toBER(false);
  const peer = await crypto.subtle.importKey("spki", spki, params, false, []);
  const eph = await crypto.subtle.generateKey(params, true, ["deriveBits"]) as CryptoKeyPair;
  const z = new Uint8Array(
    await crypto.subtle.deriveBits({ name: "ECDH", public: peer }, eph.privateKey, 256),
  );
  const kekBytes = await x963Kdf("SHA-256", z, sharedInfo(AES256_WRAP, 32), 32);
  const cekKey = await crypto.subtle.importKey("raw", cek, { name: "AES-CBC" }, true, ["encrypt"]);
  const wrapped = new Uint8Array(
    await crypto.subtle.wrapKey("raw", cekKey, await kek(kekBytes, "wrapKey"), "AES-KW"),
  );
  const ephSpki = new Uint8Array(await crypto.subtle.exportKey("spki", eph.publicKey));
  const ephInfo = new pkijs.PublicKeyInfo({ schema: asn1js.fromBER(ephSpki).result });
  return new pkijs.RecipientInfo({
    variant: 2,
    value: new pkijs.KeyAgreeRecipientInfo({
      version: 3,
      originator: new pkijs.OriginatorIdentifierOrKey({
        variant: 3,
        value: new pkijs.OriginatorPublicKey({
          algorithm: new pkijs.AlgorithmIdentifier({ algorithmId: OID.ecPublicKey }),
          publicKey: ephInfo.subjectPublicKey,
        }),
      }),
      keyEncryptionAlgorithm: new pkijs.AlgorithmIdentifier({
        algorithmId: ECDH_SHA256_KDF,
        algorithmParams: new pkijs.AlgorithmIdentifier({ algorithmId: AES256_WRAP }).toSchema(),
      }),
      recipientEncryptedKeys: new pkijs.RecipientEncryptedKeys({
        encryptedKeys: [
          new pkijs.RecipientEncryptedKey({
            rid: new pkijs.KeyAgreeRecipientIdentifier({
              variant: 1,
              value: new pkijs.IssuerAndSerialNumber({
                issuer: c.cert.issuer,
                serialNumber: c.cert.serialNumber,
              }),
            }),
            encryptedKey: new asn1js.OctetString({ valueHex: wrapped }),
          }),
        ],
      }),
    }),
  });
}

/**
 * Unwraps the CEK from a KeyAgreeRecipientInfo if one of its keys is for `cert`;
 * undefined when none is.
 */
export async function unwrapKeyAgree(
  ri: pkijs.KeyAgreeRecipientInfo,
  cert: X509Certificate,
  key: X509PrivateKey,
): Promise<Bytes | undefined> {
  const mine = ri.recipientEncryptedKeys.encryptedKeys.find((k) =>
    k.rid.variant === 1 && sameIssuerAndSerial(k.rid.value as pkijs.IssuerAndSerialNumber, cert)
  );
  if (!mine) return undefined;
  if (ri.version !== 3) {
    throw new MissiveError("malformed", `smime: KeyAgreeRecipientInfo version ${ri.version}`);
  }
  if (key.kind !== "ec-p256") throw new MissiveError("key", "smime: EC recipient, non-EC key");
  const hash = KDF_SCHEMES[ri.keyEncryptionAlgorithm.algorithmId];
  let wrapAlg: pkijs.AlgorithmIdentifier | undefined;
  try {
    const p = ri.keyEncryptionAlgorithm.algorithmParams;
    wrapAlg = p ? new pkijs.AlgorithmIdentifier({ schema: p }) : undefined;
  } catch {
    throw new MissiveError("malformed", "smime: the key-wrap algorithm does not parse");
  }
  const kekLength = wrapAlg ? AES_WRAP[wrapAlg.algorithmId] : undefined;
  if (!hash || !wrapAlg || !kekLength) {
    throw new MissiveError(
      "unknown-protocol",
      `smime: key agreement ${ri.keyEncryptionAlgorithm.algorithmId} is not supported`,
    );
  }
  if (ri.originator.variant !== 3) {
    throw new MissiveError("unknown-protocol", "smime: key agreement needs an originator key");
  }
  const orig = ri.originator.value as pkijs.OriginatorPublicKey;
  // Unauthenticated: the key's algorithm must say EC, its parameters absent (as OpenSSL
  // and missive write them) or P-256, its BIT STRING whole bytes.
  const origParams = orig.algorithm.algorithmParams;
  if (
    orig.algorithm.algorithmId !== OID.ecPublicKey || orig.publicKey.valueBlock.unusedBits !== 0 ||
    (origParams !== undefined &&
      !(origParams instanceof asn1js.ObjectIdentifier &&
        origParams.valueBlock.toString() === OID.prime256v1))
  ) {
    throw new MissiveError("malformed", "smime: the originator key is not an EC P-256 key");
  }
  const spki = new pkijs.PublicKeyInfo({
    algorithm: new pkijs.AlgorithmIdentifier({
      algorithmId: OID.ecPublicKey,
      algorithmParams: new asn1js.ObjectIdentifier({ value: OID.prime256v1 }),
    }),
    subjectPublicKey: orig.publicKey,
  });
  const params = { name: "ECDH", namedCurve: "P-256" };
  let z: Bytes;
  try {
    const pub = await crypto.subtle.importKey(
      "spki",
      spki.toSchema().toBER(false),
      params,
      false,
      [],
    );
    const priv = await importPrivateKey(key, params, ["deriveBits"]);
    z = new Uint8Array(await crypto.subtle.deriveBits({ name: "ECDH", public: pub }, priv, 256));
  } catch (e) {
    if (e instanceof MissiveError) throw e;
    throw new MissiveError("auth-failed", "smime: the originator's EC key is invalid");
  }
  const kekBytes = await x963Kdf(
    hash,
    z,
    sharedInfo(wrapAlg.algorithmId, kekLength, ri.ukm),
    kekLength,
  );
  try {
    const cekKey = await crypto.subtle.unwrapKey(
      "raw",
      Uint8Array.from(mine.encryptedKey.valueBlock.valueHexView),
      await kek(kekBytes, "unwrapKey"),
      "AES-KW",
      { name: "AES-CBC" },
      true,
      ["decrypt"],
    );
    return new Uint8Array(await crypto.subtle.exportKey("raw", cekKey));
  } catch {
    throw new MissiveError("auth-failed", "smime: the content key does not unwrap");
  }
}
