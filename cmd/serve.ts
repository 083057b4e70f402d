/** `missive serve`: run a relay (DESIGN §7, SPEC §23). @module */
import process from "node:process";
import { getCryptoProvider } from "../crypto/mod.ts";
import { MissiveError } from "../core/errors.ts";
import { serveRelay } from "../relay/link.ts";
import { LINK_DEFAULTS, RELAY_DEFAULTS } from "../relay/limits.ts";
import { type RelayEvent, RelayServer } from "../relay/server.ts";
import type { RelayStorage } from "../relay/storage.ts";
import { RelayStore } from "../relay/store.ts";
import type { Identity } from "../keys/identity.ts";
import {
  type Command,
  exitCodesLine,
  type Io,
  loadCards,
  loadIdentity,
  parseDuration,
  parseFlags,
} from "./common.ts";

const R = RELAY_DEFAULTS;
const L = LINK_DEFAULTS;
const mib = (n: number) => `${n / 1024 / 1024}m`;

const usage = `missive serve [URL] --key RELAY.KEY [options]

Runs a relay: a directory of cards and a durable store-and-forward queue of sealed
envelopes for users who are not online at the same time. Every client link is a
session (mutual authentication); the relay never holds a key that opens a message.
URL defaults to tcp://127.0.0.1:7900 (port 0 picks a free port). The address actually
bound is the ready line on stderr, "missive: relay listening on URL as ADDRESS" (with
--log-json the "listen" event, which has "url"). SIGINT or SIGTERM stops it
gracefully (in-flight writes finish, the database is closed).

Options:
  --key FILE            the relay's secret key (its card is what clients pin)
  --db FILE             the SQLite database (default relay.db)
  --store nats://HOST:PORT[,nats://…]
                        keep everything in a NATS JetStream cluster instead of SQLite:
                        several relay nodes with the same --key and the same --store
                        share one directory and one durable queue (docs/SCALE.md);
                        tls://HOST:PORT for TLS
  --node NAME           this relay node's name in logs, --stats and presence (default
                        relay-<random>)
  --store-replicas N    JetStream replicas of the queue and the directory (default 3
                        when --store lists three servers or more, else 1)
  --nats-creds FILE     NATS credentials (.creds: JWT and NKey seed)
  --nats-nkey FILE      a file holding an NKey seed
  --nats-tls-ca FILE    the CA of the NATS servers' certificates
  --nats-tls-cert FILE  a client certificate for NATS (with --nats-tls-key FILE)
                        A user and password, or a token, come from the environment:
                        MISSIVE_NATS_USER and MISSIVE_NATS_PASSWORD, MISSIVE_NATS_TOKEN.
  --users DIR           pre-installed cards (*.card): only these may register, unless
                        --open-registration is also given
  --open-registration   anyone with a valid card may register (default without --users)
  --max-message SIZE    largest envelope accepted, e.g. 65536, 64k, 1m (default 64k)
  --log-json            one JSON object per event on stderr (default: short lines)
  --stats               print the counters on stderr every --stats-interval and at exit
  --stats-interval DURATION
                        e.g. 30s, 5m (default 10s)
  --rekey-after N       sessions re-key after N acknowledged messages from the relay
                        (default: the session protocol's, 10; 0 never)
  --require-pq          accept post-quantum sessions only (version 2): a client that
                        offers only version 1 is refused at the handshake
  --announce            answer LAN discovery (missive chat --lan): signed announcements
                        of this relay's card and port on --lan-group (SPEC §27.3)
  --lan-group ADDR:PORT multicast group or broadcast address (default 239.255.77.77:7901)
  --lan-interface IP    the interface for multicast (e.g. 127.0.0.1)

Limits on clients (docs/SECURITY.md; each refusal has its own status):
  --quota N             messages one sender may queue for one recipient (${R.quota})
  --recipient-quota N   messages queued for one recipient (${R.recipientQuota})
  --recipient-max SIZE  bytes queued for one recipient (${mib(R.recipientBytes)})
  --store-max SIZE      bytes queued in the whole store (${mib(R.storeBytes)})
  --max-users N         registered cards (${R.maxUsers})
  --register-rate N     new registrations per source address per minute, ten times that
                        relay-wide; 0 no limit (${R.registrationsPerMinute})
  --connection-memory SIZE
                        what one connection may make the relay hold (${mib(R.connectionBytes)})
  --idle-timeout DURATION
                        drop an authenticated link with no request for this long; clients
                        that stay send keep-alives; 0 never (${R.idleTimeoutMs / 1000}s)
  --max-connections N   open connections (${L.maxConnections})
  --max-preauth N       connections not yet authenticated; a full pool evicts its oldest
                        for a newcomer; the rest is reserved for authenticated ones (${L.maxPreauth})
  --max-per-address N   open connections from one source address (${L.maxPerAddress})
  --handshake-timeout DURATION
                        time to complete the session handshake (${L.handshakeTimeoutMs / 1000}s)

Example:
  missive keygen --name relay@example.org -o relay.key > relay.card
  missive serve tcp://127.0.0.1:7900 --key relay.key --db relay.db --log-json
  missive serve tcp://127.0.0.1:7900 --key relay.key --stats --stats-interval 1m

${exitCodesLine(9, 10, 13)}
`;

/** Parses 65536, 64k, 64K, 1m, 1g. */
export function parseSize(text: string, flag: string): number {
  const m = /^(\d+)([kKmMgG]?)$/.exec(text.trim());
  if (!m) throw new MissiveError("usage", `${flag}: expected a size like 65536, 64k, 1m or 1g`);
  const units: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };
  const n = Number(m[1]) * units[m[2].toLowerCase()];
  if (!Number.isSafeInteger(n)) throw new MissiveError("usage", `${flag}: too large`);
  return n;
}

function positiveInt(text: string | undefined, flag: string, fallback: number, min = 1): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min) {
    throw new MissiveError(
      "usage",
      `${flag}: expected ${min === 0 ? "a non-negative" : "a positive"} integer`,
    );
  }
  return n;
}

const size = (text: string | undefined, flag: string) =>
  text === undefined ? undefined : parseSize(text, flag);
/** A duration flag in ms (`10s`, `2m`; a bare number is seconds, with a warning); "0" = never where allowed. */
const duration = (io: Io, text: string | undefined, flag: string, allowZero = false) =>
  text === undefined
    ? undefined
    : allowZero && text.trim() === "0"
    ? 0
    : parseDuration(text, flag, { bareUnit: "s", io });

/** Per-message events are logged only as JSON (too many for people). */
const QUIET = new Set(["accept", "ack"]);

const LIMIT_FLAGS = [
  "quota",
  "recipient-quota",
  "recipient-max",
  "store-max",
  "max-users",
  "register-rate",
  "connection-memory",
  "idle-timeout",
  "max-connections",
  "max-preauth",
  "max-per-address",
  "handshake-timeout",
] as const;

function formatEvent(e: RelayEvent): string {
  const { event, ...rest } = e;
  const fields = Object.entries(rest).filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${v}`).join(" ");
  return `relay: ${event}${fields ? " " + fields : ""}`;
}

type Flags = Record<string, string | boolean | undefined>;

/**
 * The store: SQLite (--db) by default; a NATS JetStream cluster with --store, loaded
 * here by a dynamic import so that nothing else pays for the NATS client.
 */
async function openStore(
  v: Flags,
  limits: { maxMessage?: number; quota?: number; storeBytes?: number },
  log: (e: RelayEvent) => void,
  env: Record<string, string | undefined>,
): Promise<RelayStorage> {
  const str = (k: string) => v[k] as string | undefined;
  if (str("store") === undefined) {
    for (const k of ["node", "store-replicas", "nats-creds", "nats-nkey", "nats-tls-ca"]) {
      if (str(k) !== undefined) throw new MissiveError("usage", `serve: --${k} needs --store`);
    }
    return RelayStore.open(str("db") ?? "relay.db");
  }
  if (str("db") !== undefined) {
    throw new MissiveError("usage", "serve: --db (SQLite) and --store (NATS) exclude each other");
  }
  const servers = str("store")!.split(",").map((s) => s.trim()).filter(Boolean);
  for (const s of servers) {
    if (!/^(nats|tls):\/\/[^\s/]+$/.test(s)) {
      throw new MissiveError(
        "usage",
        `serve: --store ${s}: expected nats://HOST:PORT or tls://HOST:PORT (comma-separated)`,
      );
    }
  }
  if (servers.length === 0) throw new MissiveError("usage", "serve: --store lists no server");
  if ((str("nats-tls-cert") === undefined) !== (str("nats-tls-key") === undefined)) {
    throw new MissiveError("usage", "serve: --nats-tls-cert and --nats-tls-key go together");
  }
  const replicas = str("store-replicas") === undefined
    ? undefined
    : positiveInt(str("store-replicas"), "--store-replicas", 1);
  const { openJetStreamStore } = await import("../relay/jetstream/mod.ts");
  return await openJetStreamStore({
    servers,
    node: str("node"),
    replicas,
    ...limits,
    user: env.MISSIVE_NATS_USER,
    pass: env.MISSIVE_NATS_PASSWORD,
    token: env.MISSIVE_NATS_TOKEN,
    credsFile: str("nats-creds"),
    nkeyFile: str("nats-nkey"),
    tlsCa: str("nats-tls-ca"),
    tlsCert: str("nats-tls-cert"),
    tlsKey: str("nats-tls-key"),
    log,
  });
}

/** `--announce`: the relay answers the chat's LAN discovery (chat/discovery.ts). */
async function announceRelay(
  identity: Identity,
  url: string,
  group: string | undefined,
  iface: string | undefined,
  log: (e: RelayEvent) => void,
) {
  const { Discovery } = await import("../chat/discovery.ts");
  const port = Number(/:(\d+)$/.exec(url)?.[1]);
  const discovery = await Discovery.start({
    crypto: await getCryptoProvider(),
    identity,
    role: "relay",
    port,
    group,
    iface,
    onProblem: (reason) => log({ event: "lan", detail: reason }),
  });
  log({ event: "announce", group: group ?? "239.255.77.77:7901", port });
  return discovery;
}

export const serve: Command = {
  summary: "run a relay: directory, presence, durable store-and-forward",
  usage,
  async run(args, io) {
    const parsed = await parseFlags(io, args, {
      key: { type: "string" },
      db: { type: "string" },
      users: { type: "string" },
      "open-registration": { type: "boolean" },
      "max-message": { type: "string" },
      ...Object.fromEntries(LIMIT_FLAGS.map((f) => [f, { type: "string" as const }])),
      "log-json": { type: "boolean" },
      stats: { type: "boolean" },
      "stats-interval": { type: "string" },
      "rekey-after": { type: "string" },
      "require-pq": { type: "boolean" },
      store: { type: "string" },
      node: { type: "string" },
      "store-replicas": { type: "string" },
      "nats-creds": { type: "string" },
      "nats-nkey": { type: "string" },
      "nats-tls-ca": { type: "string" },
      "nats-tls-cert": { type: "string" },
      "nats-tls-key": { type: "string" },
      announce: { type: "boolean" },
      "lan-group": { type: "string" },
      "lan-interface": { type: "string" },
    }, usage);
    if (!parsed) return;
    const v = parsed.values;
    const url = parsed.positionals[0] ?? "tcp://127.0.0.1:7900";
    if (!v.key) throw new MissiveError("usage", "serve: --key RELAY.KEY is required");
    const flag = (name: (typeof LIMIT_FLAGS)[number]) =>
      (v as Record<string, unknown>)[name] as string | undefined;
    const int = (name: (typeof LIMIT_FLAGS)[number], min = 1) =>
      flag(name) === undefined ? undefined : positiveInt(flag(name), `--${name}`, 0, min);
    const relayLimits = {
      maxMessage: size(v["max-message"], "--max-message"),
      quota: int("quota"),
      recipientQuota: int("recipient-quota"),
      recipientBytes: size(flag("recipient-max"), "--recipient-max"),
      storeBytes: size(flag("store-max"), "--store-max"),
      maxUsers: int("max-users"),
      registrationsPerMinute: int("register-rate", 0),
      connectionBytes: size(flag("connection-memory"), "--connection-memory"),
      idleTimeoutMs: duration(io, flag("idle-timeout"), "--idle-timeout", true),
    };
    const linkLimits = {
      maxConnections: int("max-connections"),
      maxPreauth: int("max-preauth"),
      maxPerAddress: int("max-per-address"),
      handshakeTimeoutMs: duration(io, flag("handshake-timeout"), "--handshake-timeout"),
    };
    const statsEvery = duration(io, v["stats-interval"], "--stats-interval") ?? 10_000;
    const rekeyAfter = v["rekey-after"] === undefined ? undefined : Number(v["rekey-after"]);
    if (rekeyAfter !== undefined && (!Number.isSafeInteger(rekeyAfter) || rekeyAfter < 0)) {
      throw new MissiveError("usage", "--rekey-after: expected a count (0: never)");
    }
    // Files only once every flag parsed: a usage error is reported before any I/O.
    const identity = await loadIdentity(io, v.key);
    const users = v.users ? await loadCards([v.users]) : [];
    const node = v.node;
    const log = (e: RelayEvent) => {
      if (v["log-json"]) {
        io.stderr(JSON.stringify({ time: new Date().toISOString(), node, ...e }) + "\n");
      } else if (e.event === "listen") {
        // The ready line, on stderr as every long-running command's (listen, session).
        io.stderr(`missive: relay listening on ${e.url} as ${e.address}\n`);
      } else if (!QUIET.has(e.event)) io.stderr(formatEvent(e) + "\n");
    };
    const store = await openStore(v, relayLimits, log, io.env);
    let server: RelayServer;
    try {
      server = new RelayServer({
        store,
        crypto: await getCryptoProvider(),
        openRegistration: v["open-registration"] === true || v.users === undefined,
        users,
        ...relayLimits,
        log,
      });
      await server.start();
    } catch (e) {
      await store.close();
      throw e;
    }
    let running;
    try {
      running = await serveRelay(url, identity, server, {
        ...linkLimits,
        log,
        rekeyAfter,
        requirePq: v["require-pq"] === true,
      });
    } catch (e) {
      await server.close();
      throw e;
    }
    log({ event: "listen", url: running.url, address: identity.card.address });
    const announcer = v.announce
      ? await announceRelay(identity, running.url, v["lan-group"], v["lan-interface"], log)
      : undefined;
    const printStats = () => {
      const before = Object.entries(running.drops).map(([k, n]) => [`refused-${k}`, n]);
      const m = process.memoryUsage();
      const mib = (n: number) => Math.round(n / 1024 / 1024);
      log({
        event: "stats",
        store: store.kind,
        ...server.stats(),
        ...Object.fromEntries(before),
        rssMiB: mib(m.rss),
        heapMiB: mib(m.heapUsed),
        externalMiB: mib(m.external + (m.arrayBuffers ?? 0)),
      });
    };
    const timer = v.stats ? setInterval(printStats, statsEvery) : undefined;
    const signal = await new Promise<string>((resolve) => {
      process.once("SIGINT", () => resolve("SIGINT"));
      process.once("SIGTERM", () => resolve("SIGTERM"));
    });
    if (timer) clearInterval(timer);
    log({ event: "signal", signal });
    announcer?.close();
    await running.close();
    if (v.stats) printStats();
  },
};
