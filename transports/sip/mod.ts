/**
 * SIP MESSAGE transport (RFC 3428; SPEC §21.7): `connectSip` sends envelopes as MESSAGE
 * bodies to `sip:user@host[:port][;transport=udp|tcp]`; `listenSip` answers MESSAGEs
 * and yields one Transport per peer (From address), optionally registered at a proxy.
 * @module
 */
import { MissiveError } from "../../core/errors.ts";
import type { Listener, Transport } from "../types.ts";
import { addressKey, DEFAULT_SIP_PORT, formatSipUri, parseNameAddr, parseSipUri } from "./_uri.ts";
import { checkMessage, replyRoute, SipPeer } from "./_peer.ts";
import { BoundedQueue } from "./_queue.ts";
import { SipRegistration } from "./_register.ts";
import type { Scheduler, SipTimers } from "./_transaction.ts";
import { type SipReply, type SipTarget, SipUserAgent } from "./_ua.ts";
import { header, type SipRequest } from "./_message.ts";

/** Options shared by connectSip and listenSip. */
export interface SipOptions {
  /** RFC 3261 T1/T2 (tests shorten them). */
  timers?: SipTimers;
  clock?: Scheduler;
  /** Where dropped input and failures are reported (one line each). */
  log?: (line: string) => void;
  /** connectSip: the user part of our From address (default `missive`). */
  fromUser?: string;
  /** listenSip: register at this proxy (`sip:host[:port][;transport=...]`). */
  register?: string;
  /** listenSip with `register`: the Expires asked for, in seconds. */
  expires?: number;
  /** Largest frame (envelope) accepted in a MESSAGE; larger ones get 413. Default 1 MiB. */
  maxFrame?: number;
  /** connectSip: give up on a MESSAGE earlier than Timer F (milliseconds). */
  timeoutMs?: number;
  /** listenSip: most peers tracked (default MAX_SIP_PEERS). */
  maxPeers?: number;
  /** listenSip: how long a peer must be quiet before it may be dropped (default PEER_IDLE_MS). */
  peerIdleMs?: number;
}

/** Default for SipOptions.maxFrame. */
export const DEFAULT_SIP_FRAME = 1024 * 1024;

const LOOPBACK = /^(127\.|localhost$|\[::1\]$)/;

function bindHost(host: string): string {
  return LOOPBACK.test(host) ? (host.startsWith("[") ? "::1" : "127.0.0.1") : "0.0.0.0";
}

/**
 * Opens a SIP Transport to `url`. send() is one MESSAGE (resolves on 2xx; `network` on
 * 3xx–6xx, `timeout` on Timer F). A MESSAGE over 1300 bytes goes over TCP (RFC 3261
 * §18.1.1) unless the URL pins `;transport=udp`, which makes it `too-large`. frames()
 * are MESSAGE bodies any peer sends to our Contact (receipts).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { connectSip, listenSip } from "./mod.ts";
 * const listener = await listenSip("sip:bob@127.0.0.1:0"); // port 0: a free port
 * const link = await connectSip(listener.url);
 * await link.send(new Uint8Array([0xd9, 0xd9, 0xf7, 0xa0])); // resolves on the 200 OK
 * const got: number[][] = [];
 * for await (const peer of listener.connections()) {
 *   for await (const frame of peer.frames()) {
 *     got.push([...frame]);
 *     break;
 *   }
 *   break;
 * }
 * assert.deepEqual(got, [[0xd9, 0xd9, 0xf7, 0xa0]]);
 * await link.close();
 * await listener.close();
 * ```
 */
export async function connectSip(url: string, options: SipOptions = {}): Promise<Transport> {
  const target = parseSipUri(url);
  let peer: SipPeer | undefined = undefined;
  const ua = await SipUserAgent.start({
    host: bindHost(target.host),
    port: 0,
    timers: options.timers,
    transactionLimitMs: options.timeoutMs,
    clock: options.clock,
    log: options.log,
    onMessage: (request) => {
      const checked = checkMessage(request, undefined, options.maxFrame ?? DEFAULT_SIP_FRAME);
      if (checked.frame && !peer!.inbox.push(checked.frame)) return busy();
      return checked.reply;
    },
  });
  const user = options.fromUser ?? "missive";
  peer = new SipPeer(ua, {
    remote: formatSipUri({ ...target, transportPinned: false, params: [] }),
    route: {
      uri: formatSipUri(target),
      to: {
        host: target.host,
        port: target.port ?? DEFAULT_SIP_PORT,
        transport: target.transport,
        pinned: target.transportPinned,
      },
    },
    from: `sip:${user}@${ua.advertisedHost}:${ua.port}`,
    onClose: () => ua.close(),
  });
  return peer;
}

/** Most peers a listener tracks; beyond, an idle one is dropped or the MESSAGE gets 503. */
export const MAX_SIP_PEERS = 4096;
/** A peer quiet for this long may be dropped to make room. */
export const PEER_IDLE_MS = 60_000;

function busy(): SipReply {
  return { status: 503, reason: "Service Unavailable", headers: [["Retry-After", "5"]] };
}

/** A SIP Listener; `registration` is set when `register` was given. */
export interface SipListener extends Listener {
  readonly registration?: SipRegistration;
}

type ListenerState = "open" | "closed";

class SipListenerImpl implements SipListener {
  #state: ListenerState = "open";
  readonly #peers = new Map<string, SipPeer>();
  readonly #incoming = new BoundedQueue<Transport>();
  readonly #ua: SipUserAgent;
  readonly #user?: string;
  readonly #local: string;
  readonly url: string;
  registration?: SipRegistration;

  readonly #maxFrame: number;
  readonly #maxPeers: number;
  readonly #peerIdleMs: number;

  constructor(ua: SipUserAgent, user: string | undefined, options: SipOptions) {
    this.#ua = ua;
    this.#user = user;
    this.#maxFrame = options.maxFrame ?? DEFAULT_SIP_FRAME;
    this.#maxPeers = options.maxPeers ?? MAX_SIP_PEERS;
    this.#peerIdleMs = options.peerIdleMs ?? PEER_IDLE_MS;
    this.#local = ua.contact(user, "udp");
    this.url = this.#local;
  }

  /** The MESSAGE policy: check, find or make the peer, queue the frame. */
  accept(request: SipRequest, source: SipTarget): SipReply {
    const checked = checkMessage(request, this.#user, this.#maxFrame);
    if (!checked.frame || this.#state === "closed") return checked.reply;
    let from: string;
    try {
      from = parseNameAddr(header(request.headers, "From")!).uri;
    } catch {
      return { status: 400, reason: "Bad From" };
    }
    const key = addressKey(from);
    const route = replyRoute(request, source);
    let peer = this.#peers.get(key);
    if (peer) this.#peers.delete(key); // re-inserted below: the map runs least recent first
    else {
      if (this.#peers.size >= this.#maxPeers && !this.#evictIdle()) return busy();
      peer = new SipPeer(this.#ua, {
        remote: key,
        route,
        from: this.#local,
        onClose: () => {
          if (this.#peers.get(key) === peer) this.#peers.delete(key);
          return Promise.resolve();
        },
      });
      if (!this.#incoming.push(peer)) return busy();
    }
    this.#peers.set(key, peer);
    peer.reroute(route, header(request.headers, "Call-ID")!);
    return peer.inbox.push(checked.frame) ? checked.reply : busy();
  }

  /**
   * Makes room in a full peer table: closes the least recently heard peer if it has
   * nothing queued and was last active over PEER_IDLE_MS ago. Its frames() end, so
   * whoever serves it lets it go; a later MESSAGE from it makes a new peer.
   */
  #evictIdle(): boolean {
    const [key, oldest] = this.#peers.entries().next().value ?? [];
    if (!oldest || oldest.inbox.size > 0 || Date.now() - oldest.lastActive < this.#peerIdleMs) {
      return false;
    }
    this.#peers.delete(key!);
    void oldest.close();
    return true;
  }

  connections(): AsyncIterable<Transport> {
    return this.#incoming;
  }

  async close(): Promise<void> {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#incoming.close();
    await this.registration?.stop();
    for (const peer of [...this.#peers.values()]) await peer.close();
    await this.#ua.close();
  }
}

/**
 * Listens on `url` (UDP and TCP, one port; port 0 picks one) and yields a Transport per
 * peer. With `register`, binds `user@proxy` to our Contact first (SPEC §21.7.7).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { listenSip } from "./mod.ts";
 * const listener = await listenSip("sip:bob@127.0.0.1:0");
 * assert.match(listener.url, /^sip:bob@127\.0\.0\.1:\d+$/); // the port actually bound
 * await listener.close();
 * ```
 */
export async function listenSip(url: string, options: SipOptions = {}): Promise<SipListener> {
  const local = parseSipUri(url);
  let listener: SipListenerImpl | undefined = undefined;
  const ua = await SipUserAgent.start({
    host: local.host.replace(/^\[|\]$/g, ""),
    port: local.port ?? DEFAULT_SIP_PORT,
    timers: options.timers,
    clock: options.clock,
    log: options.log,
    onMessage: (request, source) => listener!.accept(request, source),
  });
  listener = new SipListenerImpl(ua, local.user, options);
  if (options.register !== undefined) {
    if (local.user === undefined) {
      await ua.close();
      throw new MissiveError("usage", "--register needs a user in the listen URL (sip:bob@…)");
    }
    let proxy;
    try {
      proxy = parseSipUri(options.register);
    } catch (e) {
      await ua.close();
      throw e;
    }
    const registration = new SipRegistration(ua, proxy, {
      user: local.user,
      expires: options.expires,
      clock: options.clock,
      log: options.log,
    });
    try {
      await registration.start();
    } catch (e) {
      await ua.close();
      throw e;
    }
    listener.registration = registration;
  }
  return listener;
}

/**
 * The `sip:` row of the scheme table in transports/mod.ts: listeners answer (receipts
 * go back as MESSAGEs), and `register` on listen registers at a proxy.
 */
export const sipScheme = {
  form: "sip:USER@HOST[:PORT][;transport=udp|tcp]",
  replies: true,
  parse(url: string): string {
    parseSipUri(url);
    return url;
  },
  connect(url: string, o: { log?: (l: string) => void; maxFrame?: number; timeoutMs?: number }) {
    return connectSip(url, { log: o.log, maxFrame: o.maxFrame, timeoutMs: o.timeoutMs });
  },
  listen(url: string, o: { log?: (l: string) => void; maxFrame?: number; register?: string }) {
    return listenSip(url, { log: o.log, maxFrame: o.maxFrame, register: o.register });
  },
};
