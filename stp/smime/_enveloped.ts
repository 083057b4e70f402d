/**
 * The encryption layer of the `smime` STP: EnvelopedData with AES-256-CBC (RFC 5652 §6,
 * RFC 3565) and AuthEnvelopedData with AES-256-GCM (RFC 5083, RFC 5084). pkijs has the
 * first; the second is built here from asn1js schema objects (no hand-written DER).
 * @module
 */
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { type Bytes, randomBytes, wipe } from "../../core/bytes.ts";
import { MissiveError } from "../../core/errors.ts";
import type { X509Certificate, X509PrivateKey } from "../../keys/x509.ts";
import { CMS, encodeContentInfo } from "./_cms.ts";
import { unwrapForRecipient, wrapForRecipients } from "./_recipients.ts";

/** Content-encryption algorithms (RFC 3565 §4.1, RFC 5084 §3.2) → key length. */
const AES_CBC: Record<string, number> = {
  "2.16.840.1.101.3.4.1.2": 16,
  "2.16.840.1.101.3.4.1.22": 24,
  "2.16.840.1.101.3.4.1.42": 32,
};
const AES_GCM: Record<string, number> = {
  "2.16.840.1.101.3.4.1.6": 16,
  "2.16.840.1.101.3.4.1.26": 24,
  "2.16.840.1.101.3.4.1.46": 32,
};
const AES256_CBC = "2.16.840.1.101.3.4.1.42";
const AES256_GCM = "2.16.840.1.101.3.4.1.46";
const GCM_NONCE = 12;
const GCM_TAG = 16;

/** Which content encryption to seal with. */
export type ContentCipher = "aes-256-cbc" | "aes-256-gcm";

/** The inner content decrypted, with its declared type. */
export interface Decrypted {
  contentType: string;
  content: Bytes;
}

function envelopedVersion(infos: readonly pkijs.RecipientInfo[]): number {
  // RFC 5652 §6.1: 0 when every RecipientInfo is a version-0 ktri, else 2.
  return infos.every((r) => r.variant === 1) ? 0 : 2;
}

/** Encrypts `content` (of type `contentType`) for the recipients; a ContentInfo's DER. */
export async function encryptContent(
  content: Uint8Array,
  contentType: string,
  recipients: readonly X509Certificate[],
  cipher: ContentCipher,
): Promise<Bytes> {
  const cek = randomBytes(32);
  try {
    const infos = await wrapForRecipients(cek, recipients);
    if (cipher === "aes-256-cbc") {
      const iv = randomBytes(16);
      const key = await crypto.subtle.importKey("raw", cek, "AES-CBC", false, ["encrypt"]);
      const ct = await crypto.subtle.encrypt(
        { name: "AES-CBC", iv },
        key,
        Uint8Array.from(content),
      );
      const env = new pkijs.EnvelopedData({
        version: envelopedVersion(infos),
        recipientInfos: infos,
        encryptedContentInfo: new pkijs.EncryptedContentInfo({
          contentType,
          contentEncryptionAlgorithm: new pkijs.AlgorithmIdentifier({
            algorithmId: AES256_CBC,
            algorithmParams: new asn1js.OctetString({ valueHex: iv }),
          }),
          encryptedContent: new asn1js.OctetString({ valueHex: ct }),
        }),
      });
      return encodeContentInfo(CMS.envelopedData, env.toSchema());
    }
    const nonce = randomBytes(GCM_NONCE);
    const key = await crypto.subtle.importKey("raw", cek, "AES-GCM", false, ["encrypt"]);
    const sealed = new Uint8Array(
      await crypto.subtle.encrypt(
        { name: "AES-GCM", iv: nonce, tagLength: 128 },
        key,
        Uint8Array.from(content),
      ),
    );
    const eci = new pkijs.EncryptedContentInfo({
      contentType,
      contentEncryptionAlgorithm: new pkijs.AlgorithmIdentifier({
        algorithmId: AES256_GCM,
        // GCMParameters (RFC 5084 §3.2); OpenSSL writes the ICV length explicitly.
        algorithmParams: new asn1js.Sequence({
          value: [
            new asn1js.OctetString({ valueHex: nonce }),
            new asn1js.Integer({ value: GCM_TAG }),
          ],
        }),
      }),
      encryptedContent: new asn1js.OctetString({ valueHex: sealed.slice(0, -GCM_TAG) }),
    });
    // AuthEnvelopedData (RFC 5083 §2.1), no originatorInfo, no attributes.
    const aed = new asn1js.Sequence({
      value: [
        new asn1js.Integer({ value: 0 }),
        new asn1js.Set({ value: infos.map((r) => r.toSchema()) }),
        eci.toSchema(),
        new asn1js.OctetString({ valueHex: sealed.slice(-GCM_TAG) }),
      ],
    });
    return encodeContentInfo(CMS.authEnvelopedData, aed);
  } finally {
    wipe(cek);
  }
}

function octets(block: unknown, what: string): Bytes {
  if (!(block instanceof asn1js.OctetString)) {
    throw new MissiveError("malformed", `smime: ${what} is not an OCTET STRING`);
  }
  return new Uint8Array(block.getValue());
}

/** Decrypts an EnvelopedData (`content` is its parsed schema). */
export async function decryptEnveloped(
  schema: asn1js.AsnType,
  cert: X509Certificate,
  key: X509PrivateKey,
  warnings: string[],
): Promise<Decrypted> {
  let env: pkijs.EnvelopedData;
  try {
    env = new pkijs.EnvelopedData({ schema });
  } catch (e) {
    throw new MissiveError("malformed", `smime: EnvelopedData: ${(e as Error).message}`);
  }
  // The version is not authenticated: demand exactly the one RFC 5652 §6.1 prescribes.
  const expected = env.originatorInfo || env.unprotectedAttrs
    ? 2
    : envelopedVersion(env.recipientInfos);
  if (env.version !== expected) {
    throw new MissiveError("malformed", `smime: EnvelopedData version ${env.version}`);
  }
  const eci = env.encryptedContentInfo;
  const alg = eci.contentEncryptionAlgorithm;
  const keyLength = AES_CBC[alg.algorithmId];
  if (!keyLength) {
    throw new MissiveError(
      "unknown-protocol",
      `smime: content encryption ${alg.algorithmId} is not AES-CBC`,
    );
  }
  const iv = octets(alg.algorithmParams, "AES-CBC IV");
  if (iv.length !== 16) throw new MissiveError("malformed", "smime: AES-CBC IV is not 16 bytes");
  if (!eci.encryptedContent) throw new MissiveError("malformed", "smime: no encrypted content");
  const ct = new Uint8Array(eci.getEncryptedContent());
  const fields = schema instanceof asn1js.Sequence ? schema.valueBlock.value : [];
  const set = fields.find((f) => f instanceof asn1js.Set) as asn1js.Set | undefined;
  const originals = set?.valueBlock.value ?? [];
  const cek = await unwrapForRecipient(
    env.recipientInfos,
    originals,
    cert,
    key,
    keyLength,
    warnings,
  );
  try {
    const k = await crypto.subtle.importKey("raw", cek, "AES-CBC", false, ["decrypt"]);
    const content = new Uint8Array(await crypto.subtle.decrypt({ name: "AES-CBC", iv }, k, ct));
    return { contentType: eci.contentType, content };
  } catch {
    throw new MissiveError("auth-failed", "smime: the content does not decrypt");
  } finally {
    wipe(cek);
  }
}

/** Decrypts an AuthEnvelopedData (RFC 5083) with AES-GCM (RFC 5084). */
export async function decryptAuthEnveloped(
  schema: asn1js.AsnType,
  cert: X509Certificate,
  key: X509PrivateKey,
  warnings: string[],
): Promise<Decrypted> {
  const fields = schema instanceof asn1js.Sequence ? schema.valueBlock.value : [];
  // version, [0] originatorInfo?, recipientInfos, authEncryptedContentInfo,
  // [1] authAttrs?, mac, [2] unauthAttrs?
  const rest = fields.filter((f) => f.idBlock.tagClass === 1);
  const tagged = fields.filter((f) => f.idBlock.tagClass !== 1);
  if (
    rest.length !== 4 || !(rest[0] instanceof asn1js.Integer) || !(rest[1] instanceof asn1js.Set)
  ) {
    throw new MissiveError("malformed", "smime: AuthEnvelopedData has the wrong shape");
  }
  const v = rest[0];
  if (
    v.idBlock.tagNumber !== 2 || v.valueBlock.valueDec !== 0 ||
    v.valueBlock.valueHexView.length !== 1
  ) {
    throw new MissiveError("malformed", "smime: AuthEnvelopedData version must be 0");
  }
  if (tagged.some((f) => f.idBlock.tagNumber === 1)) {
    throw new MissiveError("unknown-protocol", "smime: authenticated attributes are not supported");
  }
  let eci: pkijs.EncryptedContentInfo;
  let infos: pkijs.RecipientInfo[];
  try {
    eci = new pkijs.EncryptedContentInfo({ schema: rest[2] });
    infos = rest[1].valueBlock.value.map((v) => new pkijs.RecipientInfo({ schema: v }));
  } catch (e) {
    throw new MissiveError("malformed", `smime: AuthEnvelopedData: ${(e as Error).message}`);
  }
  const mac = octets(rest[3], "mac");
  const alg = eci.contentEncryptionAlgorithm;
  const keyLength = AES_GCM[alg.algorithmId];
  if (!keyLength) {
    throw new MissiveError(
      "unknown-protocol",
      `smime: authenticated encryption ${alg.algorithmId} is not AES-GCM`,
    );
  }
  const params = alg.algorithmParams;
  // The parameters are not authenticated (RFC 5083 §2.1): take only their exact form.
  const p = params instanceof asn1js.Sequence && params.idBlock.isConstructed
    ? params.valueBlock.value
    : [];
  const nonce = octets(p[0], "GCM nonce");
  const icv = p[1] instanceof asn1js.Integer && p[1].idBlock.tagNumber === 2
    ? p[1].valueBlock.valueDec
    : p[1] === undefined
    ? 12
    : -1;
  if (p.length > 2 || nonce.length !== GCM_NONCE || icv !== GCM_TAG || mac.length !== GCM_TAG) {
    throw new MissiveError("malformed", "smime: GCM needs a 12-byte nonce and a 16-byte tag");
  }
  if (!eci.encryptedContent) throw new MissiveError("malformed", "smime: no encrypted content");
  const ct = new Uint8Array(eci.getEncryptedContent());
  const originals = rest[1].valueBlock.value;
  const cek = await unwrapForRecipient(infos, originals, cert, key, keyLength, warnings);
  try {
    const k = await crypto.subtle.importKey("raw", cek, "AES-GCM", false, ["decrypt"]);
    const sealed = new Uint8Array(ct.length + mac.length);
    sealed.set(ct);
    sealed.set(mac, ct.length);
    const content = new Uint8Array(
      await crypto.subtle.decrypt({ name: "AES-GCM", iv: nonce, tagLength: 128 }, k, sealed),
    );
    return { contentType: eci.contentType, content };
  } catch {
    throw new MissiveError("auth-failed", "smime: the content's GCM tag does not verify");
  } finally {
    wipe(cek);
  }
}
