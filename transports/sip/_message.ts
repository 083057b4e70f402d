/**
 * SIP messages (RFC 3261 §7): a strict parser and a serializer for the small subset a
 * MESSAGE user agent needs. Every cap is checked before the bytes it guards are copied
 * (SPEC §21.7.2).
 * @module
 */
import { type Bytes, concatBytes, utf8 } from "../../core/bytes.ts";
import { MissiveError } from "../../core/errors.ts";

/** Longest start line or header line, in bytes (after unfolding). */
export const MAX_SIP_LINE = 2048;
/** Most header fields in one message. */
export const MAX_SIP_HEADERS = 64;
/** Longest start line plus header section, CRLF CRLF included. */
export const MAX_SIP_HEAD = 16 * 1024;
/** Largest body (Content-Length) accepted or sent. */
export const MAX_SIP_BODY = 1024 * 1024;

/** A header field, name in its canonical full form (compact forms expanded). */
export type SipHeader = [name: string, value: string];

/** A request: `METHOD uri SIP/2.0`. */
export interface SipRequest {
  kind: "request";
  method: string;
  uri: string;
  headers: SipHeader[];
  body: Bytes;
}

/** A response: `SIP/2.0 status reason`. */
export interface SipResponse {
  kind: "response";
  status: number;
  reason: string;
  headers: SipHeader[];
  body: Bytes;
}

/** Either kind. */
export type SipMessage = SipRequest | SipResponse;

/** The start line and header fields, before the body is read. */
export type SipHead = Omit<SipRequest, "body"> | Omit<SipResponse, "body">;

// RFC 3261 §7.3.3 compact forms, plus the full names we emit, keyed by lower case.
const CANONICAL: Record<string, string> = {
  v: "Via",
  f: "From",
  t: "To",
  i: "Call-ID",
  l: "Content-Length",
  c: "Content-Type",
  m: "Contact",
  k: "Supported",
  s: "Subject",
  e: "Content-Encoding",
  via: "Via",
  from: "From",
  to: "To",
  "call-id": "Call-ID",
  cseq: "CSeq",
  "content-length": "Content-Length",
  "content-type": "Content-Type",
  contact: "Contact",
  "max-forwards": "Max-Forwards",
  expires: "Expires",
  require: "Require",
  supported: "Supported",
  allow: "Allow",
  accept: "Accept",
};

const TOKEN = /^[A-Za-z0-9.!%*_+`'~-]+$/;
const decoder = new TextDecoder("utf-8", { fatal: true });

function fail(message: string): never {
  throw new MissiveError("malformed", `sip: ${message}`);
}

/** The first value of a header (case-insensitive, compact forms already expanded). */
export function header(headers: SipHeader[], name: string): string | undefined {
  const want = name.toLowerCase();
  return headers.find(([n]) => n.toLowerCase() === want)?.[1];
}

/** Every value of a header, in order. */
export function headerAll(headers: SipHeader[], name: string): string[] {
  const want = name.toLowerCase();
  return headers.filter(([n]) => n.toLowerCase() === want).map(([, v]) => v);
}

/** Index just past the first CRLF CRLF at or after `from`, or -1. */
export function findHeadEnd(bytes: Uint8Array, from = 0, limit = bytes.length): number {
  const end = Math.min(bytes.length, limit);
  for (let i = from; i + 3 < end; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) {
      return i + 4;
    }
  }
  return -1;
}

/**
 * Parses the start line and header fields of `bytes[0, headEnd)` (which ends in CRLF
 * CRLF). Throws `malformed` or `too-large`; never reads past `headEnd`.
 */
export function parseHead(bytes: Uint8Array, headEnd: number): SipHead {
  if (headEnd > MAX_SIP_HEAD) {
    throw new MissiveError("too-large", `sip: header section over ${MAX_SIP_HEAD} bytes`);
  }
  let text: string;
  try {
    text = decoder.decode(bytes.subarray(0, headEnd - 4));
  } catch {
    fail("header section is not UTF-8");
  }
  const raw = text.split("\r\n");
  // §7.3.1: a line starting with SP or HTAB continues the previous one.
  const lines: string[] = [];
  for (const line of raw) {
    if (/^[ \t]/.test(line) && lines.length > 1) lines[lines.length - 1] += " " + line.trim();
    else lines.push(line);
  }
  if (lines.length - 1 > MAX_SIP_HEADERS) {
    throw new MissiveError("too-large", `sip: more than ${MAX_SIP_HEADERS} header fields`);
  }
  for (const line of lines) {
    if (line.length > MAX_SIP_LINE) {
      throw new MissiveError("too-large", `sip: a line is longer than ${MAX_SIP_LINE} bytes`);
    }
    if (/[\r\n\0]/.test(line)) fail("stray CR, LF or NUL in a line");
  }
  const headers: SipHeader[] = lines.slice(1).map((line) => {
    const colon = line.indexOf(":");
    if (colon <= 0) fail(`header line without a name: ${JSON.stringify(line.slice(0, 40))}`);
    const name = line.slice(0, colon).trim();
    if (!TOKEN.test(name)) fail(`bad header name ${JSON.stringify(name.slice(0, 40))}`);
    return [CANONICAL[name.toLowerCase()] ?? name, line.slice(colon + 1).trim()];
  });
  const start = lines[0];
  const status = /^SIP\/2\.0 ([1-6][0-9][0-9]) ?(.*)$/.exec(start);
  if (status) return { kind: "response", status: Number(status[1]), reason: status[2], headers };
  const request = /^([A-Za-z0-9.!%*_+`'~-]+) (\S+) SIP\/2\.0$/.exec(start);
  if (!request) fail(`bad start line ${JSON.stringify(start.slice(0, 60))}`);
  return { kind: "request", method: request[1], uri: request[2], headers };
}

/**
 * The declared Content-Length, or undefined when absent. Throws `malformed` for a
 * non-number or two different values, `too-large` above MAX_SIP_BODY.
 */
export function contentLength(headers: SipHeader[]): number | undefined {
  const values = headerAll(headers, "Content-Length");
  if (values.length === 0) return undefined;
  if (values.some((v) => v !== values[0])) fail("conflicting Content-Length headers");
  if (!/^[0-9]{1,10}$/.test(values[0])) fail(`bad Content-Length ${JSON.stringify(values[0])}`);
  const n = Number(values[0]);
  if (n > MAX_SIP_BODY) {
    throw new MissiveError("too-large", `sip: Content-Length ${n} over ${MAX_SIP_BODY} bytes`);
  }
  return n;
}

/**
 * A body-level failure after the header section parsed: the UA can still answer it
 * (400, 413) because it has the Via, From, To, Call-ID and CSeq.
 */
export class SipBodyError extends MissiveError {
  readonly head: SipHead;
  constructor(error: MissiveError, head: SipHead) {
    super(error.code, error.message);
    this.head = head;
  }
}

/** contentLength, failing with a SipBodyError that carries the head. */
export function bodyLength(head: SipHead): number | undefined {
  try {
    return contentLength(head.headers);
  } catch (e) {
    throw e instanceof MissiveError ? new SipBodyError(e, head) : e;
  }
}

/**
 * Parses one whole datagram (RFC 3261 §18.3: Content-Length, when present, says how
 * much of the rest is body; bytes past it are ignored; fewer is an error).
 */
export function parseDatagram(bytes: Uint8Array): SipMessage {
  // Tolerate the CRLF keep-alives some peers put in front (RFC 5626 §3.5.1).
  let offset = 0;
  while (bytes[offset] === 13 && bytes[offset + 1] === 10) offset += 2;
  const data = bytes.subarray(offset);
  const headEnd = findHeadEnd(data, 0, MAX_SIP_HEAD);
  if (headEnd < 0) {
    if (data.length >= MAX_SIP_HEAD) {
      throw new MissiveError("too-large", `sip: header section over ${MAX_SIP_HEAD} bytes`);
    }
    fail("truncated: no blank line after the headers");
  }
  const head = parseHead(data, headEnd);
  const declared = bodyLength(head);
  const available = data.length - headEnd;
  if (declared !== undefined && declared > available) {
    const e = new MissiveError(
      "malformed",
      `sip: truncated: Content-Length ${declared} but ${available} body bytes`,
    );
    throw new SipBodyError(e, head);
  }
  const length = declared ?? available;
  if (length > MAX_SIP_BODY) {
    throw new MissiveError("too-large", `sip: body over ${MAX_SIP_BODY} bytes`);
  }
  return { ...head, body: data.slice(headEnd, headEnd + length) } as SipMessage;
}

/** Serializes a message, setting Content-Length from the body (any given one is dropped). */
export function serializeMessage(message: SipMessage): Bytes {
  if (message.body.length > MAX_SIP_BODY) {
    throw new MissiveError("too-large", `sip: body over ${MAX_SIP_BODY} bytes`);
  }
  const start = message.kind === "request"
    ? `${message.method} ${message.uri} SIP/2.0`
    : `SIP/2.0 ${message.status} ${message.reason}`;
  const lines = [start];
  for (const [name, value] of message.headers) {
    if (name.toLowerCase() === "content-length") continue;
    if (/[\r\n]/.test(name + value)) {
      throw new MissiveError("internal", "sip: header with CR or LF");
    }
    lines.push(`${name}: ${value}`);
  }
  lines.push(`Content-Length: ${message.body.length}`, "", "");
  return concatBytes(utf8(lines.join("\r\n")), message.body);
}
