/**
 * LAN discovery (SPEC §27.3): a UDP socket on a multicast group (or a broadcast
 * address) that announces this identity every few seconds and on request, and keeps the
 * verified announcements of others. Every datagram is hostile until checked: a size cap
 * before decoding, a per-source rate limit, a signature, freshness and replay checks;
 * each refusal is reported with its reason and the socket goes on.
 * @module
 */
import dgram from "node:dgram";
import { randomBytes, toHex } from "../core/bytes.ts";
import { isMissiveError, MissiveError } from "../core/errors.ts";
import type { CryptoProvider } from "../crypto/provider.ts";
import { type Card, sameKeys } from "../keys/card.ts";
import type { Identity } from "../keys/identity.ts";
import {
  AnnounceGuard,
  type AnnouncePresence,
  type AnnounceRole,
  decodeDatagram,
  encodeAnnouncement,
  encodeQuery,
  MAX_DATAGRAM,
} from "./announce.ts";

/** The default group: administratively scoped multicast (RFC 2365), port 7901. */
export const DEFAULT_LAN_GROUP = "239.255.77.77:7901";
/** Datagrams accepted per source address: a burst, then a rate per second. */
export const LAN_RATE = { burst: 20, perSecond: 10 };
/** An announcer's period (ms); peers not heard for 4 periods are gone. */
export const ANNOUNCE_EVERY = 2000;

/** A peer or relay heard on the LAN. */
export interface LanPeer {
  card: Card;
  role: AnnounceRole;
  presence: AnnouncePresence;
  /** Where its TCP listener is: the datagram's source address and the announced port. */
  host: string;
  port: number;
  seen: number;
}

/** Options of `Discovery.start`. */
export interface DiscoveryOptions {
  crypto: CryptoProvider;
  /** "HOST:PORT": a multicast group (224.0.0.0/4) or a broadcast address. */
  group?: string;
  /** The interface address for multicast (e.g. 127.0.0.1 in tests). */
  iface?: string;
  /** Announce this identity (omit to listen only). */
  identity?: Identity;
  role?: AnnounceRole;
  /** The TCP port announced. */
  port?: number;
  everyMs?: number;
  now?: () => number;
  onPeer?: (peer: LanPeer, fresh: boolean) => void;
  onProblem?: (reason: string) => void;
}

/** Splits "HOST:PORT". */
export function parseGroup(text: string): { host: string; port: number; multicast: boolean } {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : 0;
  if (!m || port < 1 || port > 65535 || m[1].split(".").some((o) => Number(o) > 255)) {
    throw new Error(`"${text}" is not IPv4-ADDRESS:PORT`);
  }
  const first = Number(m[1].split(".")[0]);
  return { host: m[1], port, multicast: first >= 224 && first <= 239 };
}

interface Bucket {
  tokens: number;
  at: number;
  dropped: number;
  reported: number;
}

/** A discovery socket. A class: it owns the socket and its timers. */
export class Discovery {
  readonly #socket: dgram.Socket;
  readonly #options: DiscoveryOptions;
  readonly #group: { host: string; port: number; multicast: boolean };
  readonly #guard = new AnnounceGuard();
  readonly #peers = new Map<string, LanPeer>();
  readonly #buckets = new Map<string, Bucket>();
  readonly #now: () => number;
  #presence: AnnouncePresence | "invisible" = "online";
  #timer?: ReturnType<typeof setInterval>;
  #lastAnswer = 0;
  #lastTime = 0;
  #closed = false;

  private constructor(socket: dgram.Socket, options: DiscoveryOptions) {
    this.#socket = socket;
    this.#options = options;
    this.#group = parseGroup(options.group ?? DEFAULT_LAN_GROUP);
    this.#now = options.now ?? Date.now;
  }

  /** Binds the group's port (shared: `reuseAddr`), joins it, announces and asks. */
  static async start(options: DiscoveryOptions): Promise<Discovery> {
    const group = parseGroup(options.group ?? DEFAULT_LAN_GROUP);
    const socket = dgram.createSocket({ type: "udp4", reuseAddr: true });
    const d = new Discovery(socket, options);
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(group.port, () => {
        socket.off("error", reject);
        resolve();
      });
    });
    socket.on("error", (e) => options.onProblem?.(`LAN socket: ${e.message}`));
    if (group.multicast) {
      socket.addMembership(group.host, options.iface);
      if (options.iface) socket.setMulticastInterface(options.iface);
      socket.setMulticastLoopback(true);
      socket.setMulticastTTL(1);
    } else {
      socket.setBroadcast(true);
    }
    socket.on("message", (msg, rinfo) => void d.#onDatagram(msg, rinfo.address, rinfo.port));
    if (options.identity) {
      d.#timer = setInterval(() => void d.announce(), options.everyMs ?? ANNOUNCE_EVERY);
      await d.announce();
    }
    d.query();
    return d;
  }

  /** Sends our announcement now (nothing while invisible or listening only). */
  async announce(): Promise<void> {
    const o = this.#options;
    if (!o.identity || !o.port || this.#presence === "invisible" || this.#closed) return;
    const bytes = await encodeAnnouncement(o.crypto, o.identity, {
      role: o.role ?? "chat",
      presence: this.#presence,
      port: o.port,
      // Strictly increasing: receivers refuse an announcement not later than the last.
      time: this.#lastTime = Math.max(this.#now(), this.#lastTime + 1),
    });
    this.#send(bytes);
  }

  /** Asks everyone to announce now. */
  query(): void {
    this.#send(encodeQuery(randomBytes(16)));
  }

  #send(bytes: Uint8Array): void {
    if (this.#closed) return;
    this.#socket.send(bytes, this.#group.port, this.#group.host, (e) => {
      if (e && !this.#closed) this.#options.onProblem?.(`LAN send: ${e.message}`);
    });
  }

  /** Our presence in announcements; invisible stops announcing. */
  setPresence(status: AnnouncePresence | "invisible"): void {
    this.#presence = status;
    void this.announce();
  }

  /** Peers and relays heard within the last four periods. */
  peers(): LanPeer[] {
    const horizon = this.#now() - 4 * (this.#options.everyMs ?? ANNOUNCE_EVERY);
    return [...this.#peers.values()].filter((p) => p.seen >= horizon);
  }

  /** A chat peer by address. */
  find(address: string): LanPeer | undefined {
    return this.peers().find((p) => p.role === "chat" && p.card.address === address);
  }

  /** Token bucket per source address (SPEC §27.3); reports drops once a second. */
  #admit(source: string): boolean {
    const now = this.#now();
    let b = this.#buckets.get(source);
    if (!b) {
      if (this.#buckets.size >= 4096) this.#buckets.delete(this.#buckets.keys().next().value!);
      b = { tokens: LAN_RATE.burst, at: now, dropped: 0, reported: now };
      this.#buckets.set(source, b);
    }
    b.tokens = Math.min(LAN_RATE.burst, b.tokens + (now - b.at) * LAN_RATE.perSecond / 1000);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return true;
    }
    b.dropped++;
    if (now - b.reported >= 1000) {
      this.#options.onProblem?.(
        `LAN datagrams from ${source}: rate-limited, ${b.dropped} dropped (more than ${LAN_RATE.perSecond}/s)`,
      );
      b.dropped = 0;
      b.reported = now;
    }
    return false;
  }

  async #onDatagram(msg: Uint8Array, host: string, port: number): Promise<void> {
    if (this.#closed || !this.#admit(host)) return;
    const problem = (why: string) =>
      this.#options.onProblem?.(`LAN datagram from ${host}:${port} ignored: ${why}`);
    if (msg.length > MAX_DATAGRAM) return problem(`${msg.length} bytes, more than ${MAX_DATAGRAM}`);
    try {
      const d = await decodeDatagram(this.#options.crypto, new Uint8Array(msg));
      if (d.kind === "query") return this.#answer();
      const a = d.announcement;
      const id = toHex(a.card.id);
      if (this.#options.identity && id === toHex(this.#options.identity.card.id)) return;
      this.#guard.check(id, a.time, this.#now());
      const prior = this.#peers.get(id);
      const fresh = !prior ||
        prior.seen < this.#now() - 4 * (this.#options.everyMs ?? ANNOUNCE_EVERY);
      const peer: LanPeer = {
        card: a.card,
        role: a.role,
        presence: a.presence,
        host,
        port: a.port,
        seen: this.#now(),
      };
      this.#peers.set(id, peer);
      this.#options.onPeer?.(peer, fresh);
      if (fresh) this.#answer();
    } catch (e) {
      if (!isMissiveError(e)) throw e;
      problem(`${e.code}: ${e.message}`);
    }
  }

  /** Announces in answer to a query or a newcomer, at most twice a second. */
  #answer(): void {
    const now = this.#now();
    if (now - this.#lastAnswer < 500) return;
    this.#lastAnswer = now;
    void this.announce();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    try {
      this.#socket.close();
    } catch { /* closed already */ }
  }
}

/**
 * Listens on the LAN until a relay whose card is in `accepted` announces itself (SPEC
 * §27.3): resolves with its URL (the datagram's source address and the announced port).
 * Relays with other cards are reported, with why, and ignored. `timeout` when none came.
 */
export async function findRelayOnLan(
  options: DiscoveryOptions & { accepted: readonly Card[]; timeoutMs: number },
): Promise<{ url: string; card: Card }> {
  let found: (r: { url: string; card: Card }) => void;
  const result = new Promise<{ url: string; card: Card }>((resolve) => (found = resolve));
  const refused = new Set<string>();
  const discovery = await Discovery.start({
    ...options,
    identity: undefined,
    onPeer: (p) => {
      if (p.role !== "relay") return;
      const url = `tcp://${p.host}:${p.port}`;
      if (options.accepted.some((c) => sameKeys(c, p.card))) return found({ url, card: p.card });
      if (refused.has(url)) return;
      refused.add(url);
      options.onProblem?.(
        `relay announcement of ${p.card.address} at ${url} refused: its card matches neither ` +
          "--relay-card nor a verified contact (any host can announce)",
      );
    },
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const asker = setInterval(() => discovery.query(), 1000);
  try {
    return await Promise.race([
      result,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new MissiveError("timeout", "no trusted relay answered on the LAN")),
          options.timeoutMs,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
    clearInterval(asker);
    discovery.close();
  }
}
