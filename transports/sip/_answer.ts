/**
 * How the user agent answers a request before any MESSAGE policy (RFC 3261 §8.2), and
 * how it builds responses (§8.2.6) and names server transactions (§17.2.3).
 * @module
 */
import { randomBytes, toHex } from "../../core/bytes.ts";
import {
  header,
  headerAll,
  SipBodyError,
  type SipHead,
  type SipHeader,
  type SipMessage,
  type SipRequest,
  type SipResponse,
} from "./_message.ts";
import { parseNameAddr, type SipTransportName } from "./_uri.ts";

/** The methods we answer, for Allow headers. */
export const ALLOWED_METHODS = "MESSAGE, OPTIONS";
/** The body types a MESSAGE may carry, for Accept headers. */
export const ACCEPTED_TYPES = "application/missive, text/plain";

/** Where a message goes or came from. */
export interface SipTarget {
  host: string;
  port: number;
  transport: SipTransportName;
  /**
   * The transport was named by a URI's `;transport=` (RFC 3263 §4.1): a large request to
   * a pinned UDP target is refused instead of going over TCP (SPEC §21.7.4).
   */
  pinned?: boolean;
}

/** The answer a handler gives to a request. */
export interface SipReply {
  status: number;
  reason: string;
  headers?: SipHeader[];
}

/** A random token of 16 hex digits (tags, Call-IDs). */
export function sipToken(): string {
  return toHex(randomBytes(8));
}

/** Builds a response to `request` (§8.2.6): Via, From, To (+tag), Call-ID, CSeq copied. */
export function responseTo(request: SipHead, reply: SipReply, toTag: string): SipResponse {
  const h = request.headers;
  const to = header(h, "To") ?? "";
  const headers: SipHeader[] = [
    ...headerAll(h, "Via").map((v): SipHeader => ["Via", v]),
    ["From", header(h, "From") ?? ""],
    ["To", /;\s*tag=/i.test(to) || reply.status === 100 ? to : `${to};tag=${toTag}`],
    ["Call-ID", header(h, "Call-ID") ?? ""],
    ["CSeq", header(h, "CSeq") ?? ""],
    ...(reply.headers ?? []),
  ];
  return {
    kind: "response",
    status: reply.status,
    reason: reply.reason,
    headers,
    body: new Uint8Array(0),
  };
}

/** The answer to a request that failed to parse after its head: 413 or 400, or none. */
export function badInputResponse(e: unknown): SipResponse | undefined {
  if (!(e instanceof SipBodyError) || e.head.kind !== "request") return undefined;
  if (e.head.method === "ACK" || !header(e.head.headers, "Via")) return undefined;
  const status = e.code === "too-large"
    ? { status: 413, reason: "Request Entity Too Large" }
    : { status: 400, reason: "Bad Request" };
  return responseTo(e.head, status, sipToken());
}

/** §17.2.3 for peers without RFC 3261 branches too: Call-ID, CSeq and the From tag. */
export function serverTransactionKey(message: SipMessage): string {
  const h = message.headers;
  let fromTag = "";
  try {
    fromTag = parseNameAddr(header(h, "From") ?? "").params.get("tag") ?? "";
  } catch { /* answered 400 by checkRequest */ }
  return `${header(h, "Call-ID")}\n${header(h, "CSeq")}\n${fromTag}`;
}

/**
 * §8.2: the answer to a request that is not a MESSAGE for the handler (missing headers,
 * bad CSeq, Require, OPTIONS, other methods), or undefined for a MESSAGE to hand on.
 */
export function checkRequest(request: SipRequest): SipReply | undefined {
  const h = request.headers;
  for (const name of ["Via", "From", "To", "Call-ID", "CSeq"]) {
    if (!header(h, name)) return { status: 400, reason: `Missing ${name}` };
  }
  const cseq = /^([0-9]{1,10})\s+(\S+)$/.exec(header(h, "CSeq")!);
  if (!cseq || cseq[2] !== request.method || Number(cseq[1]) >= 2 ** 31) {
    return { status: 400, reason: "Bad CSeq" };
  }
  const require = header(h, "Require");
  if (require) {
    return { status: 420, reason: "Bad Extension", headers: [["Unsupported", require]] };
  }
  if (request.method === "OPTIONS") {
    return {
      status: 200,
      reason: "OK",
      headers: [["Allow", ALLOWED_METHODS], ["Accept", ACCEPTED_TYPES]],
    };
  }
  if (request.method !== "MESSAGE") {
    return { status: 405, reason: "Method Not Allowed", headers: [["Allow", ALLOWED_METHODS]] };
  }
  return undefined;
}
