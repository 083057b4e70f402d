/**
 * The MESSAGE side of a SIP endpoint: what an incoming MESSAGE must look like to be
 * accepted (SPEC §21.9.3), and a Transport to one peer whose send() is a MESSAGE.
 * @module
 */
import { utf8 } from "../../bytes.ts";
import { armor, unwrapAnyForm } from "../../envelope.ts";
import { MissiveError } from "../../errors.ts";
import type { Transport } from "../types.ts";
import { header, type SipRequest } from "./message.ts";
import { BoundedQueue } from "./queue.ts";
import {
  ACCEPTED_TYPES,
  type SipReply,
  type SipTarget,
  sipToken,
  type SipUserAgent,
} from "./ua.ts";
import { DEFAULT_SIP_PORT, parseNameAddr, parseSipUri } from "./uri.ts";

/** The Content-Type of the MESSAGE bodies we send. */
export const MISSIVE_CONTENT_TYPE = "application/missive";

/** The outcome of checking one MESSAGE: the answer, and the frame when accepted. */
export interface Checked {
  reply: SipReply;
  frame?: Uint8Array;
}

/**
 * Checks a MESSAGE (§21.9.3): Request-URI user, Content-Type, Content-Encoding, and a
 * body that is an envelope in one of its forms. Never throws.
 */
export function checkMessage(request: SipRequest, localUser: string | undefined): Checked {
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
    return { reply: { status: 200, reason: "OK" }, frame: unwrapAnyForm(request.body) };
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

/** Where to send MESSAGEs back to the sender of `request` (its Contact, else its source). */
export function replyRoute(request: SipRequest, source: SipTarget): { uri: string; to: SipTarget } {
  const contact = header(request.headers, "Contact");
  if (contact) {
    try {
      const uri = parseNameAddr(contact).uri;
      const c = parseSipUri(uri);
      return {
        uri,
        to: { host: c.host, port: c.port ?? DEFAULT_SIP_PORT, transport: c.transport },
      };
    } catch { /* fall back to the source address */ }
  }
  const from = parseNameAddr(header(request.headers, "From")!).uri;
  return { uri: from, to: source };
}

type PeerState = "open" | "closed";

/**
 * A Transport to one SIP peer: send() is one MESSAGE (resolving on a 2xx), frames()
 * are the bodies of the MESSAGEs the peer sent us.
 */
export class SipPeer implements Transport {
  #state: PeerState = "open";
  #cseq = 0;
  #route: { uri: string; to: SipTarget };
  readonly #callId = sipToken();
  readonly #tag = sipToken();
  readonly #ua: SipUserAgent;
  readonly #from: string;
  readonly #onClose: () => Promise<void>;
  /** Frames received from this peer. */
  readonly inbox = new BoundedQueue<Uint8Array>();
  readonly remote: string;

  constructor(
    ua: SipUserAgent,
    options: {
      remote: string;
      route: { uri: string; to: SipTarget };
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

  /** Points replies at the latest Contact or source the peer used. */
  reroute(route: { uri: string; to: SipTarget }): void {
    this.#route = route;
  }

  async send(frame: Uint8Array): Promise<void> {
    if (this.#state === "closed") throw new MissiveError("network", "sip: transport closed");
    const { uri, to } = this.#route;
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
