/**
 * Recognising and unwrapping the bare S/MIME forms without loading the CMS code: RFC 8551
 * §3.2 application/pkcs7-mime (base64, as `openssl cms -encrypt` writes it) and §3.5
 * multipart/signed (RFC 1847: the content as a MIME part, the detached signature as
 * another, as `openssl cms -sign` writes it and mail clients send it). Used by form
 * detection (SPEC §2.4), so the core can tell an S/MIME message from the other forms
 * while pkijs stays out of its imports.
 * @module
 */
import { type Bytes, fromBase64 } from "../../core/bytes.ts";
import { MissiveError } from "../../core/errors.ts";

/** Largest MIME header block read before the body. */
const MAX_HEADER_BYTES = 16 * 1024;
/** Largest detached signature part (base64 text: signature, certificates, attributes). */
export const MAX_SIGNATURE_PART = 1024 * 1024;
/** Longest boundary (RFC 2046 §5.1.1). */
const MAX_BOUNDARY = 70;

const SIGNATURE_TYPE = /^application\/(x-)?pkcs7-signature$/i;

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

/** Bytes as a string of the same length, one character per byte (for searching). */
function latin1(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return s;
}

/**
 * A Content-Type value's media type (lower case) and parameters (names lower case;
 * quoted strings unquoted, RFC 2045 §5.1). `undefined` when it does not parse.
 */
export function parseContentType(
  value: string,
): { type: string; params: Map<string, string> } | undefined {
  const m = /^\s*([A-Za-z0-9!#$&^_.+-]+\/[A-Za-z0-9!#$&^_.+-]+)\s*/.exec(value);
  if (!m) return undefined;
  const params = new Map<string, string>();
  const param =
    /;\s*([A-Za-z0-9!#$%&'*+.^_`|~-]+)\s*=\s*(?:"((?:[^"\\\r\n]|\\.)*)"|([A-Za-z0-9!#$%&'*+.^_`|~-]+))\s*/y;
  param.lastIndex = m[0].length;
  let at = m[0].length;
  while (at < value.length) {
    if (value.slice(at).trim() === "" || value.slice(at).trim() === ";") break;
    const p = param.exec(value);
    if (!p) return undefined;
    const name = p[1].toLowerCase();
    if (params.has(name)) return undefined;
    params.set(name, p[2] !== undefined ? p[2].replace(/\\(.)/g, "$1") : p[3]);
    at = param.lastIndex;
  }
  return { type: m[1].toLowerCase(), params };
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

/** What an S/MIME entity holds. */
export type SmimeEntity =
  /** application/pkcs7-mime (or DER): one ContentInfo. */
  | { kind: "cms"; der: Bytes }
  /** multipart/signed: the signed part's bytes as they stand, and the detached signature. */
  | { kind: "detached"; content: Bytes; signature: Bytes };

/**
 * Parses an S/MIME entity (SPEC §18.2): DER (first byte 0x30) as it is; an
 * application/pkcs7-mime entity to its DER; a multipart/signed entity to its signed part
 * and the DER of its detached signature. Anything else is `malformed` (a
 * multipart/signed whose protocol is not S/MIME is `unknown-protocol`).
 */
export function parseSmimeEntity(bytes: Uint8Array): SmimeEntity {
  if (bytes.length > 0 && bytes[0] === 0x30) return { kind: "cms", der: Uint8Array.from(bytes) };
  const text = latin1(bytes);
  const entity = splitEntity(text);
  const type = entity?.headers.get("content-type") ?? "";
  if (entity && /^multipart\/signed\b/i.test(type)) return parseMultipartSigned(bytes, text, type);
  if (!entity || !/^application\/(x-)?pkcs7-mime\b/i.test(type)) {
    throw new MissiveError("malformed", "smime: not an application/pkcs7-mime entity");
  }
  return { kind: "cms", der: base64Body(entity, "S/MIME body") };
}

/**
 * The DER inside an S/MIME entity, for a message whose payload is one ContentInfo; DER
 * is returned as it is. A multipart/signed entity is returned whole (checked first): its
 * content and signature are two parts, which the smime STP reads from it (SPEC §18.1).
 */
export function unwrapSmimeEntity(bytes: Uint8Array): Bytes {
  const entity = parseSmimeEntity(bytes);
  return entity.kind === "cms" ? entity.der : Uint8Array.from(bytes);
}

/** An entity's body as strict base64 (white space removed); needs the base64 encoding. */
function base64Body(entity: { headers: Map<string, string>; body: string }, what: string): Bytes {
  const encoding = (entity.headers.get("content-transfer-encoding") ?? "").toLowerCase();
  if (encoding !== "base64") {
    throw new MissiveError("malformed", `smime: ${what} must be base64`);
  }
  const der = fromBase64(entity.body.replace(/[ \t\r\n]+/g, ""));
  if (!der) throw new MissiveError("malformed", `smime: ${what} is not valid base64`);
  return der;
}

/** Where a line holding a delimiter starts and what follows it. */
interface Delimiter {
  /** Index of the line break before the delimiter (the part before it ends here). */
  partEnd: number;
  /** Index just after the delimiter line's line break. */
  next: number;
  close: boolean;
}

/**
 * Finds the next delimiter line `--boundary` at or after `from`, at a line start (RFC
 * 2046 §5.1.1: the line break before it belongs to the delimiter). Transport padding
 * (spaces, tabs) may follow; a close delimiter ends `--boundary--`.
 */
function nextDelimiter(text: string, boundary: string, from: number): Delimiter | undefined {
  const dash = "--" + boundary;
  for (let at = text.indexOf(dash, from); at !== -1; at = text.indexOf(dash, at + 1)) {
    if (at !== 0 && text[at - 1] !== "\n") continue;
    const partEnd = at === 0 ? 0 : text[at - 2] === "\r" ? at - 2 : at - 1;
    let end = at + dash.length;
    const close = text.startsWith("--", end);
    if (close) end += 2;
    while (text[end] === " " || text[end] === "\t") end++;
    if (close) {
      const lf = text.indexOf("\n", end);
      return { partEnd, next: lf === -1 ? text.length : lf + 1, close };
    }
    if (text[end] === "\r" && text[end + 1] === "\n") return { partEnd, next: end + 2, close };
    if (text[end] === "\n") return { partEnd, next: end + 1, close };
    // "--boundaryX": a longer line that only starts with the delimiter; keep looking.
  }
  return undefined;
}

/**
 * A multipart/signed entity (RFC 1847 §2.1, RFC 8551 §3.5): exactly two body parts, the
 * first the signed content (returned byte for byte as it stands between the delimiters),
 * the second an application/pkcs7-signature part holding the detached SignedData in
 * base64.
 */
function parseMultipartSigned(bytes: Uint8Array, text: string, contentType: string): SmimeEntity {
  const fail = (why: string): never => {
    throw new MissiveError("malformed", `smime: multipart/signed: ${why}`);
  };
  const ct = parseContentType(contentType) ?? fail("unreadable Content-Type");
  const protocol = ct.params.get("protocol");
  if (protocol === undefined) fail("no protocol parameter");
  if (!SIGNATURE_TYPE.test(protocol!)) {
    throw new MissiveError(
      "unknown-protocol",
      `smime: multipart/signed with protocol ${JSON.stringify(protocol)} is not S/MIME`,
    );
  }
  const boundary = ct.params.get("boundary") ?? fail("no boundary parameter");
  if (boundary.length < 1 || boundary.length > MAX_BOUNDARY || /[\r\n]/.test(boundary)) {
    fail(`the boundary must be 1 to ${MAX_BOUNDARY} characters`);
  }
  const headerEnd = /\r?\n\r?\n/.exec(text.slice(0, MAX_HEADER_BYTES))!;
  const bodyStart = headerEnd.index + headerEnd[0].length;
  // The body begins at a line start: a delimiter there has no line break before it.
  const first = nextDelimiter(text, boundary, bodyStart - 1);
  if (!first || first.close) fail("no body part");
  const second = nextDelimiter(text, boundary, first!.next);
  if (!second) fail("no closing boundary");
  if (second!.close) fail("one body part; the signature part is missing");
  const third = nextDelimiter(text, boundary, second!.next);
  if (!third) fail("no closing boundary");
  if (!third!.close) fail("more than two body parts");
  const content = bytes.slice(first!.next, Math.max(first!.next, second!.partEnd));
  const part = text.slice(second!.next, Math.max(second!.next, third!.partEnd));
  if (part.length > MAX_SIGNATURE_PART) {
    throw new MissiveError(
      "too-large",
      `smime: multipart/signed: signature part larger than ${MAX_SIGNATURE_PART} bytes`,
    );
  }
  const sigEntity = splitEntity(part) ?? fail("the signature part has no header block");
  const sigType = parseContentType(sigEntity.headers.get("content-type") ?? "");
  if (!sigType || !SIGNATURE_TYPE.test(sigType.type)) {
    fail("the second part is not application/pkcs7-signature");
  }
  return { kind: "detached", content, signature: base64Body(sigEntity, "signature part") };
}

/**
 * The canonical form of signed text (RFC 8551 §3.1.1): every line break CRLF. A part
 * stored with LF line ends (as mail folders often keep them) verifies in this form.
 */
export function canonicalLineEnds(content: Uint8Array): Bytes {
  let extra = 0;
  for (let i = 0; i < content.length; i++) {
    if (content[i] === 0x0a && (i === 0 || content[i - 1] !== 0x0d)) extra++;
  }
  const out = new Uint8Array(content.length + extra);
  let j = 0;
  for (let i = 0; i < content.length; i++) {
    if (content[i] === 0x0a && (i === 0 || content[i - 1] !== 0x0d)) out[j++] = 0x0d;
    out[j++] = content[i];
  }
  return out;
}
