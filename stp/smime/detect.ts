/**
 * Recognising and unwrapping the bare S/MIME forms (RFC 8551 §3.2 application/pkcs7-mime,
 * base64, as `openssl cms -encrypt` writes them) without loading the CMS code: used by
 * form detection (SPEC §2.4), so the core can tell an S/MIME message from the other forms
 * while pkijs stays out of its imports.
 * @module
 */
import { type Bytes, fromBase64 } from "../../core/bytes.ts";
import { MissiveError } from "../../core/errors.ts";

/** Largest MIME header block read before the body. */
const MAX_HEADER_BYTES = 16 * 1024;

/** Splits a MIME entity into lower-cased headers (unfolded) and its body. */
export function splitEntity(
  text: string,
): { headers: Map<string, string>; body: string } | undefined {
  const m = /\r?\n\r?\n/.exec(text.slice(0, MAX_HEADER_BYTES));
  if (!m) return undefined;
  const headers = new Map<string, string>();
  const lines = text.slice(0, m.index).replace(/\r?\n[ \t]+/g, " ").split(/\r?\n/);
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon <= 0) return undefined;
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { headers, body: text.slice(m.index + m[0].length) };
}

/**
 * True when `bytes` look like an S/MIME message: text whose headers (within the first
 * 16 KiB) include a Content-Type of application/pkcs7-mime or multipart/signed.
 */
export function looksLikeSmime(bytes: Uint8Array): boolean {
  const head = new TextDecoder().decode(bytes.subarray(0, MAX_HEADER_BYTES));
  const entity = splitEntity(head + "\n\n");
  const type = entity?.headers.get("content-type") ?? "";
  return /^(application\/(x-)?pkcs7-mime|multipart\/signed)\b/i.test(type);
}

/**
 * The DER inside an S/MIME entity; DER (first byte 0x30) is returned as it is. A
 * detached multipart/signed entity, or any other MIME, is `malformed`.
 */
export function unwrapSmimeEntity(bytes: Uint8Array): Bytes {
  if (bytes.length > 0 && bytes[0] === 0x30) return Uint8Array.from(bytes);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new MissiveError("malformed", "smime: content is neither DER nor S/MIME text");
  }
  const entity = splitEntity(text);
  const type = entity?.headers.get("content-type") ?? "";
  if (/^multipart\/signed\b/i.test(type)) {
    throw new MissiveError(
      "malformed",
      "smime: detached multipart/signed is not supported; sign with openssl cms -sign -nodetach",
    );
  }
  if (!entity || !/^application\/(x-)?pkcs7-mime\b/i.test(type)) {
    throw new MissiveError("malformed", "smime: not an application/pkcs7-mime entity");
  }
  const encoding = (entity.headers.get("content-transfer-encoding") ?? "").toLowerCase();
  if (encoding !== "base64") {
    throw new MissiveError("malformed", "smime: S/MIME body must be base64");
  }
  const der = fromBase64(entity.body.replace(/\s+/g, ""));
  if (!der) throw new MissiveError("malformed", "smime: S/MIME body is not valid base64");
  return der;
}
