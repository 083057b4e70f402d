/**
 * The signature layer of the `smime` STP: CMS SignedData (RFC 5652 §5) with SHA-256,
 * one signer whose certificate is included, signed attributes contentType,
 * messageDigest and signingTime (RFC 8551 §2.5). Signers: RSA PKCS #1 v1.5 (default),
 * RSA-PSS, ECDSA P-256. Verification and X.509 path validation by pkijs.
 * @module
 */
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { type Bytes, equalBytes } from "../../core/bytes.ts";
import { MissiveError } from "../../core/errors.ts";
import { importPrivateKey, type X509Certificate, type X509PrivateKey } from "../../keys/x509.ts";
import { CMS, encodeContentInfo } from "./_cms.ts";

/** PKCS #9 attribute types (RFC 2985 §5.3). */
const ATTR = {
  contentType: "1.2.840.113549.1.9.3",
  messageDigest: "1.2.840.113549.1.9.4",
  signingTime: "1.2.840.113549.1.9.5",
} as const;
/** Digest algorithms accepted on open (missive writes SHA-256). */
const DIGESTS: Record<string, string> = {
  "2.16.840.1.101.3.4.2.1": "SHA-256",
  "2.16.840.1.101.3.4.2.2": "SHA-384",
  "2.16.840.1.101.3.4.2.3": "SHA-512",
};

/** RSA signature scheme for sealing. */
export type RsaSignature = "pkcs1" | "pss";

/** Signs `content` (type id-data, or `contentType`); returns a ContentInfo's DER. */
export async function signContent(
  content: Uint8Array,
  signer: { chain: readonly X509Certificate[]; key: X509PrivateKey },
  options: { contentType?: string; rsa?: RsaSignature; time: Date },
): Promise<Bytes> {
  const contentType = options.contentType ?? CMS.data;
  const [leaf] = signer.chain;
  const algorithm = signer.key.kind === "ec-p256"
    ? { name: "ECDSA", namedCurve: "P-256" }
    : options.rsa === "pss"
    ? { name: "RSA-PSS", hash: "SHA-256" }
    : { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
  const key = await importPrivateKey(signer.key, algorithm, ["sign"]);
  const digest = await crypto.subtle.digest("SHA-256", Uint8Array.from(content));
  const attribute = (type: string, value: asn1js.AsnType) =>
    new pkijs.Attribute({ type, values: [value] });
  const signed = new pkijs.SignedData({
    version: 1,
    encapContentInfo: new pkijs.EncapsulatedContentInfo({
      eContentType: contentType,
      eContent: new asn1js.OctetString({ valueHex: Uint8Array.from(content) }),
    }),
    signerInfos: [
      new pkijs.SignerInfo({
        version: 1,
        sid: new pkijs.IssuerAndSerialNumber({
          issuer: leaf.cert.issuer,
          serialNumber: leaf.cert.serialNumber,
        }),
        signedAttrs: new pkijs.SignedAndUnsignedAttributes({
          type: 0,
          attributes: [
            attribute(ATTR.contentType, new asn1js.ObjectIdentifier({ value: contentType })),
            attribute(ATTR.signingTime, new asn1js.UTCTime({ valueDate: options.time })),
            attribute(ATTR.messageDigest, new asn1js.OctetString({ valueHex: digest })),
          ],
        }),
      }),
    ],
    certificates: signer.chain.map((c) => c.cert),
  });
  try {
    await signed.sign(key, 0, "SHA-256");
  } catch (e) {
    throw new MissiveError("key", `smime: signing failed: ${(e as Error).message}`, { cause: e });
  }
  return encodeContentInfo(CMS.signedData, signed.toSchema(true));
}

/** The bytes of an OCTET STRING, primitive or constructed (BER, as OpenSSL streams). */
function octetValue(block: asn1js.AsnType): Bytes {
  if (!(block instanceof asn1js.OctetString)) {
    throw new MissiveError("malformed", "smime: eContent is not an OCTET STRING");
  }
  return new Uint8Array(block.getValue());
}

/** A verified SignedData. */
export interface Verified {
  /** The signed content (for smime, the text or a CompressedData layer). */
  content: Bytes;
  /** The content's type OID (id-data, or id-ct-compressedData). */
  contentType: string;
  /** The certificate whose key made the signature. */
  signer: X509Certificate;
  /** From the signingTime attribute, when present. */
  signingTime?: Date;
  /** SHA-256 of the signature value: stable per message, used as its nonce. */
  signatureHash: Bytes;
  /** The signer chains to a trust anchor, valid at `now`. */
  trusted: boolean;
  /** What the reader should know (e.g. an untrusted chain), not failures. */
  warnings: string[];
}

function attributeValue(si: pkijs.SignerInfo, type: string): asn1js.AsnType | undefined {
  const found = si.signedAttrs?.attributes.filter((a) => a.type === type) ?? [];
  if (found.length > 1 || (found[0] && found[0].values.length !== 1)) {
    throw new MissiveError("malformed", `smime: attribute ${type} must occur once`);
  }
  return found[0]?.values[0];
}

/**
 * Verifies the one signer of a SignedData and, with trust anchors, its certificate path
 * at `now`. A bad signature is `auth-failed`; with anchors, a signer that does not chain
 * or whose certificate is not valid at `now` is `untrusted`.
 */
export async function verifySigned(
  schema: asn1js.AsnType,
  options: {
    anchors: readonly X509Certificate[];
    now: Date;
    /** The content of a detached signature (multipart/signed, RFC 8551 §3.5). */
    detached?: Uint8Array;
  },
): Promise<Verified> {
  let sd: pkijs.SignedData;
  try {
    sd = new pkijs.SignedData({ schema });
  } catch (e) {
    throw new MissiveError("malformed", `smime: SignedData: ${(e as Error).message}`);
  }
  if (sd.signerInfos.length !== 1) {
    throw new MissiveError("malformed", `smime: ${sd.signerInfos.length} signers; expected one`);
  }
  const si = sd.signerInfos[0];
  const eContent = sd.encapContentInfo.eContent;
  if (!eContent && options.detached === undefined) {
    throw new MissiveError(
      "malformed",
      "smime: a detached signature without its content (multipart/signed carries both)",
    );
  }
  if (eContent && options.detached !== undefined) {
    throw new MissiveError("malformed", "smime: a multipart/signed signature holds content");
  }
  if (options.detached !== undefined && options.detached.length === 0) {
    throw new MissiveError("malformed", "smime: multipart/signed: the signed part is empty");
  }
  if (!DIGESTS[si.digestAlgorithm.algorithmId]) {
    throw new MissiveError(
      "auth-failed",
      `smime: digest ${si.digestAlgorithm.algorithmId} is not accepted (SHA-2 only)`,
    );
  }
  if (!si.signedAttrs) {
    throw new MissiveError("auth-failed", "smime: the signer has no signed attributes");
  }
  const ct = attributeValue(si, ATTR.contentType);
  if (
    !(ct instanceof asn1js.ObjectIdentifier) ||
    ct.valueBlock.toString() !== sd.encapContentInfo.eContentType
  ) {
    // RFC 5652 §11.1: the signed content type must be the encapsulated one.
    throw new MissiveError("auth-failed", "smime: signed contentType does not match the content");
  }
  let result: pkijs.SignedDataVerifyResult;
  try {
    result = await sd.verify({
      signer: 0,
      extendedMode: true,
      checkChain: false,
      ...(options.detached ? { data: Uint8Array.from(options.detached).buffer } : {}),
    });
  } catch (e) {
    const code = (e as { code?: number }).code;
    if (code === 2 || code === 3) {
      throw new MissiveError("untrusted", "smime: the signer's certificate is not attached");
    }
    throw new MissiveError("auth-failed", `smime: signature: ${(e as Error).message}`);
  }
  if (!result.signatureVerified || !result.signerCertificate) {
    throw new MissiveError("auth-failed", "smime: the signature does not verify");
  }
  const signerCert = result.signerCertificate;
  const signer = {
    der: new Uint8Array(signerCert.toSchema().toBER(false)),
    cert: signerCert,
  };
  const time = attributeValue(si, ATTR.signingTime);
  const signingTime = time instanceof asn1js.UTCTime || time instanceof asn1js.GeneralizedTime
    ? time.toDate()
    : undefined;
  const warnings: string[] = [];
  const { notBefore, notAfter } = signerCert;
  const inPeriod = notBefore.value <= options.now && options.now <= notAfter.value;
  let trusted = false;
  if (options.anchors.length > 0) {
    const certs = (sd.certificates ?? []).filter((c) => c instanceof pkijs.Certificate);
    const engine = new pkijs.CertificateChainValidationEngine({
      trustedCerts: options.anchors.map((a) => a.cert),
      certs: [...certs, signerCert],
      checkDate: options.now,
    });
    // A --trust certificate that is the signer's own, byte for byte, is trusted directly
    // (a self-signed identity as its own anchor, as `openssl cms -verify -CAfile` does);
    // pkijs's path validation would refuse it for not being a CA.
    const direct = options.anchors.some((a) => equalBytes(a.der, signer.der));
    const chain = direct
      ? { result: true, resultMessage: "" }
      : await engine.verify().catch((e) => ({
        result: false,
        resultMessage: (e as { resultMessage?: string })?.resultMessage ?? String(e),
      }));
    if (!chain.result || !inPeriod) {
      const why = !inPeriod
        ? `its certificate is not valid at ${options.now.toISOString()} (valid ${notBefore.value.toISOString()} to ${notAfter.value.toISOString()})`
        : `it does not chain to a --trust certificate (${chain.resultMessage})`;
      throw new MissiveError("untrusted", `untrusted signer: ${why}`);
    }
    trusted = true;
  } else {
    warnings.push("the signer's certificate was not checked against any CA (use --trust CA.pem)");
    if (!inPeriod) warnings.push("the signer's certificate is expired or not yet valid");
  }
  const sig = Uint8Array.from(si.signature.valueBlock.valueHexView);
  return {
    content: eContent ? octetValue(eContent) : Uint8Array.from(options.detached!),
    contentType: sd.encapContentInfo.eContentType,
    signer,
    signingTime,
    signatureHash: new Uint8Array(await crypto.subtle.digest("SHA-256", sig)),
    trusted,
    warnings,
  };
}
