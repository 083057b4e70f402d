/** `missive serve`: run a relay (DESIGN §7, SPEC §23). @module */
import process from "node:process";
import { utf8 } from "../core/bytes.ts";
import { getCryptoProvider } from "../crypto/mod.ts";
import { MissiveError } from "../core/errors.ts";
import { serveRelay } from "../relay/link.ts";
import { LINK_DEFAULTS, RELAY_DEFAULTS } from "../relay/limits.ts";
import { type RelayEvent, RelayServer } from "../relay/server.ts";
import { RelayStore } from "../relay/store.ts";
import type { Identity } from "../keys/identity.ts";
import { type Command, loadCards, loadIdentity, parseFlags } from "./common.ts";

const R = RELAY_DEFAULTS;
const L = LINK_DEFAULTS;
const mib = (n: number) => `${n / 1024 / 1024}m`;

const usage = `missive serve [URL] --key RELAY.KEY [options]

Runs a relay: a directory of cards and a durable store-and-forward queue of sealed
envelopes for users who are not online at the same time. Every client link is a
session (mutual authentication); the relay never holds a key that opens a message.
URL defaults to tcp://127.0.0.1:7900 (port 0 picks a free port). The address actually
bound is printed on stdout as "relay listening on URL". SIGINT or SIGTERM stops it
gracefully (in-flight writes finish, the database is closed).

Options:
  --key FILE            the relay's secret key (its card is what clients pin)
  --db FILE             the SQLite database (default relay.db)
  --users DIR           pre-installed cards (*.card): only these may register, unless
                        --open-registration is also given
  --open-registration   anyone with a valid card may register (default without --users)
  --max-message SIZE    largest envelope accepted, e.g. 65536, 64k, 1m (default 64k)
  --log-json            one JSON object per event on stderr (default: short lines)
  --stats               print the counters on stderr every --stats-interval and at exit
  --stats-interval SEC  (default 10)
  --rekey-after N       sessions re-key after N acknowledged messages from the relay
                        (default: the session protocol's, 10; 0 never)
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
  --idle-timeout SEC    drop an authenticated link with no request for this long; clients
                        that stay send keep-alives; 0 never (${R.idleTimeoutMs / 1000})
  --max-connections N   open connections (${L.maxConnections})
  --max-preauth N       connections not yet authenticated; a full pool evicts its oldest
                        for a newcomer; the rest is reserved for authenticated ones (${L.maxPreauth})
  --max-per-address N   open connections from one source address (${L.maxPerAddress})
  --handshake-timeout SEC
                        time to complete the session handshake (${L.handshakeTimeoutMs / 1000})

Example:
  missive keygen --name relay@example.org -o relay.key > relay.card
  missive serve tcp://127.0.0.1:7900 --key relay.key --db relay.db --log-json
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
const seconds = (text: string | undefined, flag: string, min = 1) =>
  text === undefined ? undefined : positiveInt(text, flag, 0, min) * 1000;

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
      announce: { type: "boolean" },
      "lan-group": { type: "string" },
      "lan-interface": { type: "string" },
    }, usage);
    if (!parsed) return;
    const v = parsed.values;
    const url = parsed.positionals[0] ?? "tcp://127.0.0.1:7900";
    if (!v.key) throw new MissiveError("usage", "serve: --key RELAY.KEY is required");
    const identity = await loadIdentity(io, v.key);
    const users = v.users ? await loadCards([v.users]) : [];
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
      idleTimeoutMs: seconds(flag("idle-timeout"), "--idle-timeout", 0),
    };
    const linkLimits = {
      maxConnections: int("max-connections"),
      maxPreauth: int("max-preauth"),
      maxPerAddress: int("max-per-address"),
      handshakeTimeoutMs: seconds(flag("handshake-timeout"), "--handshake-timeout"),
    };
    const statsEvery = positiveInt(v["stats-interval"], "--stats-interval", 10) * 1000;
    const log = (e: RelayEvent) => {
      if (v["log-json"]) io.stderr(JSON.stringify({ time: new Date().toISOString(), ...e }) + "\n");
      else if (!QUIET.has(e.event)) io.stderr(formatEvent(e) + "\n");
    };
    const store = RelayStore.open(v.db ?? "relay.db");
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
      store.close();
      throw e;
    }
    let running;
    try {
      const rekeyAfter = v["rekey-after"] === undefined ? undefined : Number(v["rekey-after"]);
      if (rekeyAfter !== undefined && (!Number.isSafeInteger(rekeyAfter) || rekeyAfter < 0)) {
        throw new MissiveError("usage", "--rekey-after: expected a count (0: never)");
      }
      running = await serveRelay(url, identity, server, { ...linkLimits, log, rekeyAfter });
    } catch (e) {
      await server.close();
      throw e;
    }
    log({ event: "listen", url: running.url, address: identity.card.address });
    const announcer = v.announce
      ? await announceRelay(identity, running.url, v["lan-group"], v["lan-interface"], log)
      : undefined;
    await io.stdout(utf8(`relay listening on ${running.url}\n`));
    const printStats = () => {
      const before = Object.entries(running.drops).map(([k, n]) => [`refused-${k}`, n]);
      const m = process.memoryUsage();
      const mib = (n: number) => Math.round(n / 1024 / 1024);
      log({
        event: "stats",
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
