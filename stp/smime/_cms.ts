/**
 * CMS ContentInfo (RFC 5652 §3) in and out, for the `smime` STP: content-type OIDs, a
 * strict parse of exactly one BER item, and DER encoding — all through asn1js/pkijs.
 * @module
 */
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { type Bytes, equalBytes } from "../../core/bytes.ts";
import { MissiveError } from "../../core/errors.ts";
import type { X509Certificate } from "../../keys/x509.ts";

/** Content types (RFC 5652 §4–§6, RFC 3274, RFC 5083). */
export const CMS = {
  data: "1.2.840.113549.1.7.1",
  signedData: "1.2.840.113549.1.7.2",
  envelopedData: "1.2.840.113549.1.7.3",
  compressedData: "1.2.840.113549.1.9.16.1.9",
  authEnvelopedData: "1.2.840.113549.1.9.16.1.23",
} as const;

/** Deepest nesting of CMS layers unwrapped on open (compress, sign, encrypt, …). */
export const MAX_CMS_LAYERS = 4;

/** A ContentInfo's DER. */
export function encodeContentInfo(contentType: string, content: asn1js.AsnType): Bytes {
  const ci = new pkijs.ContentInfo({ contentType, content });
  // Note: pkijs writes some constructed types in indefinite-length form (BER, not DER).
  return new Uint8Array(ci.toSchema().toBER(false));
}

/** Parses exactly one ContentInfo spanning `bytes`; anything else is `malformed`. */
export function parseContentInfo(bytes: Uint8Array, what = "CMS"): pkijs.ContentInfo {
  const item = parseBerItem(bytes, what);
  try {
    return new pkijs.ContentInfo({ schema: item });
  } catch (e) {
    throw new MissiveError(
      "malformed",
      `smime: ${what}: not a ContentInfo (${(e as Error).message})`,
    );
  }
}

/**
 * Parses exactly one BER item spanning `bytes`, whose asn1js re-encoding is the input
 * (so no inconsistent lengths); anything else is `malformed`.
 */
export function parseBerItem(bytes: Uint8Array, what: string): asn1js.AsnType {
  const copy = Uint8Array.from(bytes);
  let parsed;
  try {
    parsed = asn1js.fromBER(copy);
  } catch (e) {
    throw new MissiveError("malformed", `smime: ${what}: ${(e as Error).message}`);
  }
  if (parsed.offset === -1 || parsed.offset !== copy.length || parsed.result.error) {
    throw new MissiveError("malformed", `smime: ${what} is not one BER/DER item`);
  }
  // asn1js tolerates some inconsistent lengths; its re-encoding keeps every length form
  // it read (definite or indefinite), so a mismatch means the input was inconsistent.
  if (!equalBytes(new Uint8Array(parsed.result.toBER(false)), copy)) {
    throw new MissiveError("malformed", `smime: ${what} has inconsistent lengths`);
  }
  return parsed.result;
}

/** True when `bytes` plausibly start a ContentInfo (a SEQUENCE holding an OID). */
export function looksLikeContentInfo(bytes: Uint8Array): boolean {
  return bytes.length > 4 && bytes[0] === 0x30 && bytes.length < 128 * 1024 * 1024;
}

/**
 * Byte-exact issuer and serial comparison. pkijs's Name.isEqual folds case (RFC 5280
 * §7.1 matching), which would let a changed, unauthenticated byte pass unnoticed.
 */
export function sameIssuerAndSerial(id: pkijs.IssuerAndSerialNumber, c: X509Certificate) {
  const der = (x: { toSchema(): { toBER(s?: boolean): ArrayBuffer } }) =>
    new Uint8Array(x.toSchema().toBER(false));
  return equalBytes(der(id.issuer), der(c.cert.issuer)) &&
    id.serialNumber.isEqual(c.cert.serialNumber);
}
