/**
 * The chat on a LAN with no server (SPEC §27.3–27.4): peers found by signed
 * announcements, envelopes carried over direct sessions (STP 5: both cards proven). A
 * relay heard on the LAN (`missive serve --announce`) is listed only when its card is one
 * the user pinned (`--relay-card`) or a verified contact: any host can announce itself.
 * @module
 */
import type { PresenceStatus } from "../amp/presence.ts";
import { type Bytes, toHex } from "../core/bytes.ts";
import { isMissiveError, MissiveError } from "../core/errors.ts";
import type { CryptoProvider } from "../crypto/provider.ts";
import { type Card, sameKeys } from "../keys/card.ts";
import type { Identity } from "../keys/identity.ts";
import { Session } from "../session/session.ts";
import { connectTransport, parseTransportUrl } from "../transports/mod.ts";
import { type TcpListener, tcpUrl } from "../transports/tcp.ts";
import type { Carrier, CarrierSink, OnlineEntry } from "./carrier.ts";
import { Discovery, type LanPeer } from "./discovery.ts";
import { listenLan } from "./_lan_listener.ts";

export {
  LAN_HANDSHAKE_MS,
  LAN_MAX_PER_ADDRESS,
  LAN_MAX_SESSIONS,
  LAN_PREAUTH_FRAME,
} from "./_lan_listener.ts";

/** Options of `LanCarrier`. */
export interface LanCarrierOptions {
  crypto: CryptoProvider;
  /** "HOST:PORT" of the multicast group or broadcast address. */
  group?: string;
  /** The interface address: multicast membership and the direct-session listener. */
  iface?: string;
  /** Cards a relay heard on the LAN may have (pinned relay cards, verified contacts). */
  relayCards?: readonly Card[];
  everyMs?: number;
  timeoutMs?: number;
  /** Direct sessions: handshake deadline (default 10 s) and per-address cap (default 8). */
  handshakeTimeoutMs?: number;
  maxPerAddress?: number;
  /** Direct sessions must be version 2 (post-quantum hybrid, SPEC §22.12), both ways. */
  requirePq?: boolean;
}

/** Whether a relay heard on the LAN is one the user trusts (SPEC §27.3). */
export function relayVerdict(card: Card, accepted: readonly Card[]): string | undefined {
  return accepted.some((c) => sameKeys(c, card))
    ? undefined
    : "its card matches neither --relay-card nor a verified contact (any host can announce)";
}

/** The LAN as the chat's carrier. A class: it owns a socket, a listener and sessions. */
export class LanCarrier implements Carrier {
  readonly name: string;
  readonly #identity: Identity;
  readonly #options: LanCarrierOptions;
  readonly #sessions = new Map<string, Session>();
  readonly #relaysSeen = new Set<string>();
  #listener?: TcpListener;
  #discovery?: Discovery;
  #sink?: CarrierSink;
  #closed = false;

  constructor(identity: Identity, options: LanCarrierOptions) {
    this.#identity = identity;
    this.#options = options;
    this.name = `LAN ${options.group ?? "239.255.77.77:7901"}`;
  }

  async start(sink: CarrierSink): Promise<void> {
    this.#sink = sink;
    const listener = await listenLan({
      iface: this.#options.iface ?? "0.0.0.0",
      identity: this.#identity,
      handshakeTimeoutMs: this.#options.handshakeTimeoutMs,
      maxPerAddress: this.#options.maxPerAddress,
      requirePq: this.#options.requirePq,
      onSession: (s, done) => this.#adopt(s, done),
      problem: (reason) => sink.problem(reason),
      closed: () => this.#closed,
    });
    this.#listener = listener;
    const { port } = parseTransportUrl(listener.url).address as { port: number };
    this.#discovery = await Discovery.start({
      crypto: this.#options.crypto,
      group: this.#options.group,
      iface: this.#options.iface,
      identity: this.#identity,
      role: "chat",
      port,
      everyMs: this.#options.everyMs,
      onPeer: (p, fresh) => this.#onPeer(p, fresh),
      onProblem: (reason) => sink.problem(reason),
    });
    sink.link(true, `on the LAN (${this.name}), direct sessions on port ${port}`);
  }

  #onPeer(p: LanPeer, fresh: boolean): void {
    if (p.role === "chat") {
      if (fresh) this.#sink?.reachable(p.card.address);
      return;
    }
    const key = `${toHex(p.card.id)}@${p.host}:${p.port}`;
    if (this.#relaysSeen.has(key)) return;
    this.#relaysSeen.add(key);
    const why = relayVerdict(p.card, this.#options.relayCards ?? []);
    const where = tcpUrl(p.host, p.port);
    if (why) {
      this.#sink?.problem(`relay announcement of ${p.card.address} at ${where} refused: ${why}`);
    } else this.#sink?.notice(`relay ${p.card.address} found at ${where} (its card matches)`);
  }

  /** Where direct sessions are accepted (`tcp://HOST:PORT`), once started. */
  get url(): string | undefined {
    return this.#listener?.url;
  }

  #adopt(session: Session, done?: () => void): void {
    const peer = session.peer;
    const previous = this.#sessions.get(peer.address);
    this.#sessions.set(peer.address, session);
    if (previous && previous !== session) void previous.close().catch(() => {});
    void (async () => {
      try {
        for await (const frame of session.messages()) {
          await this.#sink!.envelope({ address: peer.address, id: peer.id }, frame as Bytes);
        }
      } catch (e) {
        if (!this.#closed && isMissiveError(e)) {
          this.#sink?.problem(`direct session with ${peer.address} ended: ${e.message}`);
        }
      } finally {
        if (this.#sessions.get(peer.address) === session) this.#sessions.delete(peer.address);
        done?.();
      }
    })();
    this.#sink?.reachable(peer.address);
  }

  async #dial(address: string): Promise<Session> {
    const peer = this.#discovery?.find(address);
    if (!peer) throw new MissiveError("network", `${address} is not on the LAN now`);
    const transport = await connectTransport(tcpUrl(peer.host, peer.port), {
      timeoutMs: this.#options.timeoutMs ?? 5000,
    });
    try {
      const session = await Session.connect(transport, this.#identity, {
        peer: peer.card,
        ...(this.#options.requirePq ? { requirePq: true } : {}),
      });
      this.#adopt(session);
      return session;
    } catch (e) {
      await transport.close().catch(() => {});
      throw isMissiveError(e) ? new MissiveError("network", `${address}: ${e.message}`) : e;
    }
  }

  lookup(address: string): Promise<Card> {
    const peer = this.#discovery?.find(address);
    if (!peer) {
      return Promise.reject(
        new MissiveError(
          "refused",
          `${address} is not on the LAN (no announcement heard; see /list)`,
        ),
      );
    }
    return Promise.resolve(peer.card);
  }

  async send(address: string, envelope: Bytes): Promise<void> {
    const session = this.#sessions.get(address) ?? await this.#dial(address);
    try {
      await session.send(envelope);
    } catch (e) {
      if (this.#sessions.get(address) === session) this.#sessions.delete(address);
      throw isMissiveError(e) ? new MissiveError("network", `${address}: ${e.message}`) : e;
    }
  }

  list(): Promise<OnlineEntry[]> {
    const accepted = this.#options.relayCards ?? [];
    return Promise.resolve(
      (this.#discovery?.peers() ?? [])
        .filter((p) => p.role === "chat" || !relayVerdict(p.card, accepted))
        .map((p) => ({
          address: p.card.address,
          status: p.presence,
          kind: p.role === "chat" ? "user" as const : "relay" as const,
          where: `${p.host}:${p.port}`,
        })),
    );
  }

  setPresence(status: PresenceStatus): Promise<void> {
    this.#discovery?.setPresence(status);
    return Promise.resolve();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#discovery?.close();
    await Promise.allSettled([...this.#sessions.values()].map((s) => s.close()));
    await this.#listener?.close();
  }
}
