/**
 * The MESSAGE side of a SIP endpoint: what an incoming MESSAGE must look like to be
 * accepted (SPEC §21.7.6), and a Transport to one peer whose send() is a MESSAGE.
 * @module
 */
import { utf8 } from "../../core/bytes.ts";
import { armor, unwrapAnyForm } from "../../envelope/mod.ts";
import { MissiveError } from "../../core/errors.ts";
import type { Transport } from "../types.ts";
import { header, headerAll, type SipRequest } from "./_message.ts";
import { BoundedQueue } from "./_queue.ts";
import {
  ACCEPTED_TYPES,
  type SipReply,
  type SipTarget,
  sipToken,
  type SipUserAgent,
} from "./_ua.ts";
import { DEFAULT_SIP_PORT, parseNameAddr, parseSipUri } from "./_uri.ts";

/** The Content-Type of the MESSAGE bodies we send. */
export const MISSIVE_CONTENT_TYPE = "application/missive";

/** The outcome of checking one MESSAGE: the answer, and the frame when accepted. */
export interface Checked {
  reply: SipReply;
  frame?: Uint8Array;
}

/**
 * Checks a MESSAGE (§21.7.6): Request-URI user, Content-Type, Content-Encoding, and a
 * body that is an envelope in one of its forms. Never throws.
 */
export function checkMessage(
  request: SipRequest,
  localUser: string | undefined,
  maxFrame: number,
): Checked {
  if (localUser !== undefined) {
    try {
      const user = parseSipUri(request.uri).user;
      if (user !== undefined && user !== localUser) {
        return { reply: { status: 404, reason: "Not Found" } };
      }
    } catch {
      return { reply: { status: 416, reason: "Unsupported URI Scheme" } };
    }
  }
  const encoding = header(request.headers, "Content-Encoding");
  if (encoding && encoding.toLowerCase() !== "identity") {
    return unsupported();
  }
  const type = (header(request.headers, "Content-Type") ?? "").split(";")[0].trim().toLowerCase();
  if (request.body.length === 0) return { reply: { status: 400, reason: "Empty Body" } };
  if (type !== MISSIVE_CONTENT_TYPE && type !== "text/plain") return unsupported();
  try {
    const frame = unwrapAnyForm(request.body);
    if (frame.length > maxFrame) {
      return { reply: { status: 413, reason: "Request Entity Too Large" } };
    }
    return { reply: { status: 200, reason: "OK" }, frame };
  } catch (e) {
    if (e instanceof MissiveError && e.code === "too-large") {
      return { reply: { status: 413, reason: "Request Entity Too Large" } };
    }
    return { reply: { status: 400, reason: "Body Is Not A Missive Envelope" } };
  }
}

function unsupported(): Checked {
  return {
    reply: { status: 415, reason: "Unsupported Media Type", headers: [["Accept", ACCEPTED_TYPES]] },
  };
}

/**
 * Where to send MESSAGEs back to the sender of `request`: to its Contact, except that
 * a TCP connection the peer opened to us directly (one Via: no proxy between) is reused
 * while it stays open (as RFC 5923 does), since the peer may not accept connections.
 */
export interface ReplyRoute {
  /** The Request-URI: the Contact URI, else the From URI. */
  uri: string;
  /** Where the Contact (or, without one, the source) points. */
  to: SipTarget;
  /** The direct TCP connection to reuse while it is open. */
  reuse?: SipTarget;
}

/** Works out the ReplyRoute of a request that arrived from `source`. */
export function replyRoute(request: SipRequest, source: SipTarget): ReplyRoute {
  const direct = source.transport === "tcp" &&
    headerAll(request.headers, "Via").join(",").split(",").length === 1;
  const reuse = direct ? source : undefined;
  const contact = header(request.headers, "Contact");
  if (contact) {
    try {
      const uri = parseNameAddr(contact).uri;
      const c = parseSipUri(uri);
      const to = {
        host: c.host,
        port: c.port ?? DEFAULT_SIP_PORT,
        transport: c.transport,
        pinned: c.transportPinned,
      };
      return { uri, to, reuse };
    } catch { /* fall back to the source address */ }
  }
  // No usable Contact: the From URI if it is a SIP URI, else the source address.
  const host = source.host.includes(":") ? `[${source.host}]` : source.host;
  let uri = `sip:${host}:${source.port}`;
  try {
    const from = parseNameAddr(header(request.headers, "From")!).uri;
    parseSipUri(from);
    uri = from;
  } catch { /* keep the source address */ }
  return { uri, to: source, reuse };
}

type PeerState = "open" | "closed";

/**
 * A Transport to one SIP peer: send() is one MESSAGE (resolving on a 2xx), frames()
 * are the bodies of the MESSAGEs the peer sent us.
 */
export class SipPeer implements Transport {
  #state: PeerState = "open";
  #cseq = 0;
  #route: ReplyRoute;
  #callId = sipToken();
  readonly #tag = sipToken();
  readonly #ua: SipUserAgent;
  readonly #from: string;
  readonly #onClose: () => Promise<void>;
  /** When this peer last sent us a MESSAGE or we sent it one (Date.now()). */
  lastActive = Date.now();
  /** Frames received from this peer. */
  readonly inbox = new BoundedQueue<Uint8Array>();
  readonly remote: string;

  constructor(
    ua: SipUserAgent,
    options: {
      remote: string;
      route: ReplyRoute;
      from: string;
      onClose?: () => Promise<void>;
    },
  ) {
    this.#ua = ua;
    this.remote = options.remote;
    this.#route = options.route;
    this.#from = options.from;
    this.#onClose = options.onClose ?? (() => Promise.resolve());
  }

  /**
   * Points replies at the latest Contact or source the peer used, in the Call-ID of
   * its latest MESSAGE (RFC 3428 §4: one Call-ID correlates a conversation; SIP tools
   * such as sipp match the answer to their call by it).
   */
  reroute(route: ReplyRoute, callId: string): void {
    this.lastActive = Date.now();
    this.#route = route;
    this.#callId = callId;
  }

  async send(frame: Uint8Array): Promise<void> {
    if (this.#state === "closed") throw new MissiveError("network", "sip: transport closed");
    const { uri, reuse } = this.#route;
    const to = reuse && this.#ua.connected(reuse) ? reuse : this.#route.to;
    this.lastActive = Date.now();
    const response = await this.#ua.request(to, {
      method: "MESSAGE",
      uri,
      headers: [
        ["From", `<${this.#from}>;tag=${this.#tag}`],
        ["To", `<${this.remote}>`],
        ["Call-ID", this.#callId],
        ["CSeq", `${++this.#cseq} MESSAGE`],
        ["Contact", `<${this.#ua.contact(undefined, to.transport)}>`],
        ["Content-Type", MISSIVE_CONTENT_TYPE],
        ["User-Agent", "missive"],
      ],
      body: utf8(armor(frame)),
    });
    if (response.status < 200 || response.status >= 300) {
      throw new MissiveError(
        "network",
        `sip: ${this.remote} answered "${response.status} ${response.reason}"`,
      );
    }
  }

  frames(): AsyncIterable<Uint8Array> {
    return this.inbox;
  }

  async close(): Promise<void> {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.inbox.close();
    await this.#onClose();
  }
}
