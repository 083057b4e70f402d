/**
 * The LAN carrier's direct-session listener (SPEC §27.6), guarded like a relay's (§23.12)
 * because any host on the LAN can connect: until its session handshake completes a
 * connection's frame cap is 8 KiB and its read queue 16 KiB, the handshake must complete
 * within 10 s, and one source address holds at most 8 connections (64 in all). Every
 * refusal is reported with its reason, at most 10 a second (the rest are counted).
 * @module
 */
import { isMissiveError, MissiveError } from "../core/errors.ts";
import type { Identity } from "../keys/identity.ts";
import { LINK_DEFAULTS, PREAUTH_FRAME, PREAUTH_QUEUE } from "../relay/limits.ts";
import { Session } from "../session/session.ts";
import { DEFAULT_LISTEN_FRAME } from "../transports/framing.ts";
import { parseTransportUrl } from "../transports/mod.ts";
import { DEFAULT_QUEUE_BYTES, TcpListener } from "../transports/tcp.ts";
import { hasControl, type Transport } from "../transports/types.ts";

/** Direct-session connections a LAN peer holds at once. */
export const LAN_MAX_SESSIONS = 64;
/** Connections one source address may hold at once. */
export const LAN_MAX_PER_ADDRESS = 8;
/** Largest frame before a direct session is authenticated (the relay's, SPEC §23.12). */
export const LAN_PREAUTH_FRAME = PREAUTH_FRAME;
/** Received bytes queued before reading pauses, before authentication. */
export const LAN_PREAUTH_QUEUE = PREAUTH_QUEUE;
/** From TCP accept to a completed handshake (the relay's, SPEC §23.12). */
export const LAN_HANDSHAKE_MS = LINK_DEFAULTS.handshakeTimeoutMs;
/** Refusals reported per second at most; the others are counted and reported after. */
export const LAN_REFUSALS_PER_SECOND = 10;

/** Options of `listenLan`. */
export interface LanListenOptions {
  /** The interface address to listen on (port: any free one). */
  iface: string;
  identity: Identity;
  handshakeTimeoutMs?: number;
  maxPerAddress?: number;
  /** Accept only session version 2 (post-quantum hybrid). */
  requirePq?: boolean;
  /** A session whose peer proved its card; call `done` when it has ended. */
  onSession: (session: Session, done: () => void) => void;
  /** A refusal or failure, with its reason. */
  problem: (reason: string) => void;
  /** True once the carrier is closing (failures are then not reported). */
  closed: () => boolean;
}

/** The host part of a `tcp://HOST:PORT` remote (the whole string if it is not one). */
function hostOf(remote: string): string {
  try {
    const a = parseTransportUrl(remote);
    if (a.scheme === "tcp") return (a.address as { host: string }).host;
  } catch { /* the whole string is the key */ }
  return remote;
}

/** Refusals reported at a bounded rate: `LAN_REFUSALS_PER_SECOND`, the rest counted. */
function limitedReport(problem: (reason: string) => void): (reason: string) => void {
  let second = 0;
  let told = 0;
  let skipped = 0;
  return (reason) => {
    const now = Math.floor(Date.now() / 1000);
    if (now !== second) {
      if (skipped) problem(`direct sessions: ${skipped} more refusals not reported`);
      second = now;
      told = skipped = 0;
    }
    if (told++ < LAN_REFUSALS_PER_SECOND) problem(reason);
    else skipped++;
  };
}

/** Listens for direct sessions and serves each connection under the limits above. */
export async function listenLan(options: LanListenOptions): Promise<TcpListener> {
  const report = limitedReport(options.problem);
  const listener = await TcpListener.listen(options.iface, 0, {
    maxConnections: LAN_MAX_SESSIONS,
    maxFrame: LAN_PREAUTH_FRAME,
    queueBytes: LAN_PREAUTH_QUEUE,
    holdOversize: true,
    log: (line) => report(`direct session listener: ${line}`),
  });
  const perAddress = new Map<string, number>();
  const maxPerAddress = options.maxPerAddress ?? LAN_MAX_PER_ADDRESS;
  void (async () => {
    for await (const transport of listener.connections()) {
      const host = hostOf(transport.remote);
      const mine = perAddress.get(host) ?? 0;
      if (mine >= maxPerAddress) {
        report(
          `direct session from ${transport.remote} refused: ${mine} connections from ${host} ` +
            `(at most ${maxPerAddress})`,
        );
        abort(transport, "per-address cap");
        continue;
      }
      perAddress.set(host, mine + 1);
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        const n = (perAddress.get(host) ?? 1) - 1;
        if (n > 0) perAddress.set(host, n);
        else perAddress.delete(host);
      };
      void handshake(transport, options).then(
        (session) => options.onSession(session, release),
        (e) => {
          release();
          abort(transport, "refused");
          if (!options.closed()) {
            report(`direct session from ${transport.remote} refused: ${(e as Error).message}`);
          }
        },
      );
    }
  })();
  return listener;
}

function abort(transport: Transport, reason: string): void {
  if (hasControl(transport)) transport.abort(reason);
  else void transport.close().catch(() => {});
}

/** The session handshake under the deadline; the limits rise once the peer is proven. */
async function handshake(transport: Transport, options: LanListenOptions): Promise<Session> {
  const ms = options.handshakeTimeoutMs ?? LAN_HANDSHAKE_MS;
  const raise = () => {
    if (hasControl(transport)) {
      transport.setLimits({ maxFrame: DEFAULT_LISTEN_FRAME, queueBytes: DEFAULT_QUEUE_BYTES });
    }
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const why = `no completed handshake within ${ms / 1000} s`;
      abort(transport, why);
      reject(new MissiveError("timeout", why));
    }, ms);
  });
  try {
    return await Promise.race([
      Session.accept(transport, options.identity, {
        authorize: () => true,
        ...(options.requirePq ? { requirePq: true } : {}),
        // Reported before the next frame is read: the first DATA meets the raised cap.
        onEvent: (e) => {
          if (e.type === "handshake") raise();
        },
      }),
      deadline,
    ]);
  } catch (e) {
    if (isMissiveError(e, "too-large")) {
      throw new MissiveError("too-large", `pre-authentication cap: ${e.message}`);
    }
    throw e;
  } finally {
    clearTimeout(timer);
  }
}
