/** `missive serve`: run a relay (DESIGN §7, SPEC §23). @module */
import process from "node:process";
import { utf8 } from "../core/bytes.ts";
import { getCryptoProvider } from "../crypto/mod.ts";
import { MissiveError } from "../core/errors.ts";
import { serveRelay } from "../relay/link.ts";
import {
  DEFAULT_MAX_MESSAGE,
  DEFAULT_QUOTA,
  type RelayEvent,
  RelayServer,
} from "../relay/server.ts";
import { RelayStore } from "../relay/store.ts";
import { type Command, loadCards, loadIdentity, parseFlags } from "./common.ts";

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
  --quota N             messages queued per recipient at most (default ${DEFAULT_QUOTA})
  --log-json            one JSON object per event on stderr (default: short lines)
  --stats               print the counters on stderr every --stats-interval and at exit
  --stats-interval SEC  (default 10)
  --rekey-after N       sessions re-key after N acknowledged messages from the relay
                        (default: the session protocol's, 10; 0 never)

Example:
  missive keygen --name relay@example.org -o relay.key > relay.card
  missive serve tcp://127.0.0.1:7900 --key relay.key --db relay.db --log-json
`;

/** Parses 65536, 64k, 64K, 1m. */
export function parseSize(text: string, flag: string): number {
  const m = /^(\d+)([kKmM]?)$/.exec(text.trim());
  if (!m) throw new MissiveError("usage", `${flag}: expected a size like 65536, 64k or 1m`);
  const unit = m[2].toLowerCase() === "k" ? 1024 : m[2].toLowerCase() === "m" ? 1024 * 1024 : 1;
  return Number(m[1]) * unit;
}

function positiveInt(text: string | undefined, flag: string, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n <= 0) {
    throw new MissiveError("usage", `${flag}: expected a positive integer`);
  }
  return n;
}

/** Per-message events are logged only as JSON (too many for people). */
const QUIET = new Set(["accept", "ack"]);

function formatEvent(e: RelayEvent): string {
  const { event, ...rest } = e;
  const fields = Object.entries(rest).filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${v}`).join(" ");
  return `relay: ${event}${fields ? " " + fields : ""}`;
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
      quota: { type: "string" },
      "log-json": { type: "boolean" },
      stats: { type: "boolean" },
      "stats-interval": { type: "string" },
      "rekey-after": { type: "string" },
    }, usage);
    if (!parsed) return;
    const v = parsed.values;
    const url = parsed.positionals[0] ?? "tcp://127.0.0.1:7900";
    if (!v.key) throw new MissiveError("usage", "serve: --key RELAY.KEY is required");
    const identity = await loadIdentity(io, v.key);
    const users = v.users ? await loadCards([v.users]) : [];
    const maxMessage = v["max-message"]
      ? parseSize(v["max-message"], "--max-message")
      : DEFAULT_MAX_MESSAGE;
    const quota = positiveInt(v.quota, "--quota", DEFAULT_QUOTA);
    const statsEvery = positiveInt(v["stats-interval"], "--stats-interval", 10) * 1000;
    const log = (e: RelayEvent) => {
      if (v["log-json"]) io.stderr(JSON.stringify({ time: new Date().toISOString(), ...e }) + "\n");
      else if (!QUIET.has(e.event)) io.stderr(formatEvent(e) + "\n");
    };
    const store = RelayStore.open(v.db ?? "relay.db");
    const server = new RelayServer({
      store,
      crypto: await getCryptoProvider(),
      openRegistration: v["open-registration"] === true || v.users === undefined,
      users,
      maxMessage,
      quota,
      log,
    });
    await server.start();
    let running;
    try {
      const rekeyAfter = v["rekey-after"] === undefined ? undefined : Number(v["rekey-after"]);
      if (rekeyAfter !== undefined && (!Number.isSafeInteger(rekeyAfter) || rekeyAfter < 0)) {
        throw new MissiveError("usage", "--rekey-after: expected a count (0: never)");
      }
      running = await serveRelay(url, identity, server, {
        log: (line) => log({ event: "transport", detail: line }),
        rekeyAfter,
      });
    } catch (e) {
      store.close();
      throw e;
    }
    log({ event: "listen", url: running.url, address: identity.card.address });
    await io.stdout(utf8(`relay listening on ${running.url}\n`));
    const printStats = () => log({ event: "stats", ...server.stats() });
    const timer = v.stats ? setInterval(printStats, statsEvery) : undefined;
    const signal = await new Promise<string>((resolve) => {
      process.once("SIGINT", () => resolve("SIGINT"));
      process.once("SIGTERM", () => resolve("SIGTERM"));
    });
    if (timer) clearInterval(timer);
    log({ event: "signal", signal });
    await running.close();
    if (v.stats) printStats();
  },
};
