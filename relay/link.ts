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
import { peerCloseOf } from "../session/options.ts";
import { connect, listen } from "../transports/mod.ts";
import { RelayClient } from "./client.ts";
import type { RelayServer } from "./server.ts";

/** Options of `connectRelay`. */
export interface RelayConnectOptions {
  /** Time for connecting and for each request. */
  timeoutMs?: number;
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
  const transport = await connect(url, { timeoutMs: options.timeoutMs });
  try {
    const channel = await Session.connect(transport, identity, { peer: relayCard });
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
  /** Graceful stop: requests in flight are answered and committed, then links close. */
  close(): Promise<void>;
}

/** Listens at `url` and serves every client session with `server`. */
export async function serveRelay(
  url: string,
  identity: Identity,
  server: RelayServer,
  options: {
    log?: (line: string) => void;
    /** The session's re-key interval (SPEC §22; default the session's). */
    rekeyAfter?: number;
  } = {},
): Promise<RunningRelay> {
  const listener = await listen(url, { log: options.log });
  const sessions = new Set<Promise<void>>();
  const accepting = (async () => {
    for await (const transport of listener.connections()) {
      const task = (async () => {
        try {
          const channel = await Session.accept(transport, identity, {
            authorize: (card: Card) => server.authorize(card),
            ...(options.rekeyAfter !== undefined ? { rekeyAfter: options.rekeyAfter } : {}),
          });
          await server.serve(channel);
        } catch (e) {
          options.log?.(`link from ${transport.remote} failed: ${(e as Error).message}`);
          await transport.close().catch(() => {});
        }
      })();
      sessions.add(task);
      void task.finally(() => sessions.delete(task));
    }
  })();
  return {
    url: listener.url,
    async close() {
      await server.close();
      await listener.close();
      await accepting.catch(() => {});
      await Promise.allSettled([...sessions]);
    },
  };
}
