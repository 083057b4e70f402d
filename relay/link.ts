/**
 * Relay links over real transports (SPEC §23.1): a client connects a transport URL and
 * runs the session protocol (§22) pinning the relay's card; the relay listens, accepts a
 * session from each client whose card it will serve, and hands the channel to the
 * RelayServer.
 * @module
 */
import { isMissiveError, MissiveError } from "../core/errors.ts";
import type { Card } from "../keys/card.ts";
import type { Identity } from "../keys/identity.ts";
import { Session } from "../session/session.ts";
import { type AcceptOptions, peerCloseOf, type SessionEvent } from "../session/options.ts";
import { connectTransport, parseTransportUrl } from "../transports/mod.ts";
import { TcpListener } from "../transports/tcp.ts";
import { hasControl, type Transport } from "../transports/types.ts";
import { Admission } from "./_admission.ts";
import { LimitedLog } from "./_ratelimit.ts";
import { RelayClient } from "./client.ts";
import {
  AUTH_FRAME,
  AUTH_QUEUE,
  type LinkLimits,
  linkLimits,
  PREAUTH_FRAME,
  PREAUTH_LOG,
  PREAUTH_QUEUE,
  SESSION_INBOX_MESSAGES,
} from "./limits.ts";
import type { RelayEvent, RelayServer } from "./server.ts";

/** Options of `connectRelay`. */
export interface RelayConnectOptions {
  /** Time for connecting and for each request. */
  timeoutMs?: number;
  /**
   * Speak session version 2 only (post-quantum hybrid, SPEC §22.12): a relay that answers
   * in version 1 is refused. Without it the client offers [2, 1].
   */
  requirePq?: boolean;
}

/**
 * Connects to the relay at `url` as `identity`, pinning `relayCard`. A relay presenting
 * another card is `untrusted`; one that will not serve this card `refused`; an
 * unreachable one `network`.
 */
export async function connectRelay(
  url: string,
  identity: Identity,
  relayCard: Card,
  options: RelayConnectOptions = {},
): Promise<RelayClient> {
  const transport = await connectTransport(url, { timeoutMs: options.timeoutMs });
  try {
    const channel = await Session.connect(transport, identity, {
      peer: relayCard,
      ...(options.requirePq ? { requirePq: true } : {}),
    });
    return new RelayClient(channel, { timeoutMs: options.timeoutMs });
  } catch (e) {
    await transport.close().catch(() => {});
    if (isMissiveError(e, "untrusted")) {
      // The relay closing the handshake on us (reason 7) is a refusal of our card; our
      // own check failing is a relay that is not the one pinned.
      if (peerCloseOf(e)) {
        throw new MissiveError(
          "refused",
          `relay ${url} refused ${identity.card.address}: registration is closed and this ` +
            `card is not one of its users (${e.message})`,
          { cause: e },
        );
      }
      throw new MissiveError(
        "untrusted",
        `relay ${url} is not the relay of --relay-card: ${e.message}`,
        { cause: e },
      );
    }
    throw e;
  }
}

/** A relay being served. */
export interface RunningRelay {
  /** The URL actually bound. */
  readonly url: string;
  /** Connection slots held now. */
  readonly slots: { preauth: number; authenticated: number };
  /** Connections dropped before they reached the relay, by why (for `--stats`). */
  readonly drops: Record<string, number>;
  /**
   * Graceful stop: closes the `RelayServer` too (requests in flight are answered and
   * committed, then links close), then the listener.
   */
  close(): Promise<void>;
}

/**
 * Options of `serveRelay`: the connection limits (`LinkLimits`; each one left out takes
 * its default, `missive serve` flags set them) and the listener's log.
 */
export interface ServeRelayOptions extends Partial<LinkLimits> {
  /**
   * Told about connections dropped before authentication and transport trouble,
   * rate-limited (a flood is summed up in one `log-suppressed` event). Events carry peer
   * addresses and reasons: sanitise them before they reach a terminal.
   */
  log?: (event: RelayEvent) => void;
  /** The session's re-key interval (SPEC §22; default the session's). */
  rekeyAfter?: number;
  /**
   * Accept session version 2 only (SPEC §22.12): a client that offers only version 1 is
   * refused at the handshake with a signed CLOSE.
   */
  requirePq?: boolean;
}

/** The source address of a `tcp://HOST:PORT` remote. */
function hostOf(remote: string): string {
  try {
    const a = parseTransportUrl(remote);
    if (a.scheme === "tcp") return (a.address as { host: string }).host;
  } catch { /* not a URL we know: the whole string is the key */ }
  return remote;
}

/**
 * Listens at `url` (tcp:// only) and serves every client session with `server`. Each
 * connection is held to a small frame cap and read budget and a handshake deadline until
 * its session is authenticated (SPEC §23.12), and must find a slot (per-address cap,
 * pre-authentication pool, authenticated reserve).
 */
export async function serveRelay(
  url: string,
  identity: Identity,
  server: RelayServer,
  options: ServeRelayOptions = {},
): Promise<RunningRelay> {
  const at = parseTransportUrl(url);
  if (at.scheme !== "tcp") {
    throw new MissiveError("usage", `serve: a relay listens on tcp://HOST:PORT, not ${url}`);
  }
  const limits = linkLimits(options);
  const log = new LimitedLog(options.log ?? (() => {}), { ...PREAUTH_LOG, now: Date.now });
  const { host, port } = at.address as { host: string; port: number };
  const listener = await TcpListener.listen(host, port, {
    maxFrame: PREAUTH_FRAME,
    queueBytes: PREAUTH_QUEUE,
    holdOversize: true,
    // Admission below enforces the real cap; the listener's is a backstop for sockets
    // being closed.
    maxConnections: limits.maxConnections + 64,
    log: (line) => log.emit({ event: "transport", detail: line }),
  });
  const admission = new Admission(limits);
  const drops = new Map<DropKind, number>();
  const dropped = (kind: DropKind, reason: string, remote: string) => {
    drops.set(kind, (drops.get(kind) ?? 0) + 1);
    log.emit({ event: "drop", kind, reason, remote });
  };
  const link: LinkContext = { identity, server, admission, limits, dropped, options };
  const sessions = new Set<Promise<void>>();
  const accepting = (async () => {
    for await (const transport of listener.connections()) {
      const task = serveLink(transport, link);
      sessions.add(task);
      void task.finally(() => sessions.delete(task));
    }
  })();
  return {
    url: listener.url,
    get slots() {
      return admission.counts;
    },
    get drops() {
      return Object.fromEntries(drops);
    },
    async close() {
      await server.close();
      await listener.close();
      await accepting.catch(() => {});
      await Promise.allSettled([...sessions]);
      log.flush();
    },
  };
}

/** Why a connection was dropped before it reached the relay. */
type DropKind =
  | "per-address"
  | "evicted"
  | "handshake-timeout"
  | "preauth-frame"
  | "handshake-failed"
  | "busy";

/** What every link of one listener shares. */
interface LinkContext {
  identity: Identity;
  server: RelayServer;
  admission: Admission;
  limits: LinkLimits;
  dropped: (kind: DropKind, reason: string, remote: string) => void;
  options: ServeRelayOptions;
}

/** One connection: admission, the handshake under its deadline, then the relay. */
async function serveLink(transport: Transport, ctx: LinkContext): Promise<void> {
  const { identity, server, admission, limits, dropped, options } = ctx;
  const remote = hostOf(transport.remote);
  const control = hasControl(transport) ? transport : undefined;
  const abort = (reason: string) => {
    if (control) control.abort(reason);
    else void transport.close().catch(() => {});
  };
  const arrival = admission.arrive(remote, (reason) => {
    dropped("evicted", reason, remote);
    abort(reason);
  });
  if (!arrival.admitted) {
    dropped("per-address", `refused: ${arrival.reason}`, remote);
    abort(arrival.reason);
    return;
  }
  const slot = arrival.slot;
  // Authenticated: the link gets the limits of a relay session (SPEC §23.12).
  const raise = () => control?.setLimits({ maxFrame: AUTH_FRAME, queueBytes: AUTH_QUEUE });
  let timer: ReturnType<typeof setTimeout> | undefined;
  let late = false;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      late = true;
      const why = `no completed handshake within ${limits.handshakeTimeoutMs / 1000} s`;
      abort(why);
      reject(new MissiveError("timeout", why));
    }, limits.handshakeTimeoutMs);
  });
  deadline.catch(() => {});
  try {
    // handshakeTimeoutMs and maxInboxBytes are the session's own guards where the
    // session knows them; the deadline above and the relay's budget hold either way.
    const sessionOptions: AcceptOptions & { handshakeTimeoutMs?: number; maxInboxBytes?: number } =
      {
        authorize: (card: Card) => server.authorize(card),
        ...(options.rekeyAfter !== undefined ? { rekeyAfter: options.rekeyAfter } : {}),
        ...(options.requirePq ? { requirePq: true } : {}),
        inboxLimit: SESSION_INBOX_MESSAGES,
        handshakeTimeoutMs: limits.handshakeTimeoutMs,
        maxInboxBytes: server.limits.connectionBytes / 2,
        // The session reports its handshake before it reads the next frame: the client's
        // first request, sent right behind its last handshake frame, meets the raised cap.
        onEvent: (e: SessionEvent) => {
          if (e.type === "handshake") raise();
        },
      };
    let channel;
    try {
      channel = await Promise.race([
        Session.accept(transport, identity, sessionOptions),
        deadline,
      ]);
    } catch (e) {
      const reason = String((e as Error).message ?? e);
      if (slot.phase === "gone") return; // evicted: already counted
      const kind = late
        ? "handshake-timeout"
        : isMissiveError(e, "too-large")
        ? "preauth-frame"
        : "handshake-failed";
      dropped(
        kind,
        kind === "preauth-frame" ? `pre-authentication cap: ${reason}` : reason,
        remote,
      );
      abort(reason);
      return;
    } finally {
      clearTimeout(timer);
    }
    raise();
    const link = { remote, abort };
    if (!admission.authenticate(slot)) {
      const max = limits.maxConnections - limits.maxPreauth;
      dropped("busy", `all ${max} authenticated slots taken`, remote);
      server.turnAway(
        channel,
        link,
        "busy",
        `all ${max} slots for authenticated sessions are taken; try later`,
      );
      return;
    }
    await server.serve(channel, link);
  } finally {
    admission.leave(slot);
  }
}
