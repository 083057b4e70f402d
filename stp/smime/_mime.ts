/**
 * Writing the bare S/MIME form of an smime message (RFC 8551 §3.2 application/pkcs7-mime,
 * base64, as `openssl cms -encrypt` writes it); reading it is in detect.ts.
 * @module
 */
import { type Bytes, toBase64, utf8 } from "../../core/bytes.ts";
import { CMS, parseContentInfo } from "./_cms.ts";

/** An S/MIME message (LF line ends, 64-column base64) holding a ContentInfo's DER. */
export function smimeText(der: Uint8Array): string {
  const type = parseContentInfo(der).contentType;
  const smimeType = type === CMS.authEnvelopedData
    ? "authEnveloped-data"
    : type === CMS.envelopedData
    ? "enveloped-data"
    : "signed-data";
  const body = toBase64(der).replace(/.{1,64}/g, "$&\n");
  return "MIME-Version: 1.0\n" +
    'Content-Disposition: attachment; filename="smime.p7m"\n' +
    `Content-Type: application/pkcs7-mime; smime-type=${smimeType}; name="smime.p7m"\n` +
    "Content-Transfer-Encoding: base64\n\n" + body;
}

/** The S/MIME text as bytes (for writing). */
export const smimeBytes = (der: Uint8Array): Bytes => utf8(smimeText(der));
