/**
 * `missive relay`: a relay's client (SPEC §23) — register, lookup, list, status, send,
 * inbox, watch, queue.
 * @module
 */
import { PRESENCE_STATUSES, type PresenceStatus } from "../amp/presence.ts";
import { toHex, utf8 } from "../core/bytes.ts";
import { getCryptoProvider } from "../crypto/mod.ts";
import { isMissiveError, MissiveError } from "../core/errors.ts";
import {
  type Card,
  cardFileText,
  cardSignaturesInText,
  verifyCardSignature,
} from "../keys/card.ts";
import {
  type Command,
  exitCodesLine,
  type Io,
  loadCards,
  loadIdentity,
  loadRegistry,
  loadRelayCard,
  note,
  oneLine,
  parseDuration,
  parseFlags,
  readSmallText,
} from "./common.ts";
import {
  type Context,
  flushIfAny,
  jsonLine,
  print,
  queueCommand,
  receiveLoop,
  send,
  target,
  watch,
  withClient,
} from "./relay_mail.ts";

const usage = `missive relay SUBCOMMAND --relay URL --relay-card RELAY.CARD --key ME.KEY [options]

Talks to a relay (missive serve) over a mutually authenticated session.

Subcommands:
  register               register this key's card (address and ID) with the relay
  lookup ADDRESS|ID      print a registered card (presence on stderr)
  list                   who is online, with presence (invisible users are not listed)
  status [STATUS]        set presence (online, busy, away, invisible; --note TEXT),
                         or without STATUS print what the relay tells users: visible
                         users online, and your messages waiting
  send --to ADDRESS      send stdin as a text message, sealed end to end; picks the best
                         protocols both sides support and says which. Exit 0 only when
                         the relay accepted it; if the relay is down, unavailable or asks
                         to retry, the message waits in the outgoing queue (exit 16) and
                         is sent by the next relay command that reaches the relay.
                         --wait [DURATION] (default 30s): then wait for the delivery
                         receipt — the relay's word that the recipient acknowledged it
                         (not the recipient's signature): exit 0 when it opened the
                         message; 4 (hash-mismatch), 5 (undecryptable), 3 (unparsable)
                         or 7 (unknown-id) when it could not; 12 when none came in time
                         (the message stays queued at the relay)
  inbox                  print and acknowledge what is waiting, then exit; receipts of
                         earlier messages are shown one line each ("receipt: …")
  watch                  stay connected and print messages (and receipts) as they arrive
  queue                  with --relay: send every waiting message now; then list the
                         outgoing queue (exit 16 while messages wait); --resend ID
                         reseals one (fresh nonce), --drop ID deletes one

Options:
  --relay URL            the relay (or $MISSIVE_RELAY), e.g. tcp://127.0.0.1:7900; repeat it
                         (or separate with commas) for the nodes of one relay sharing a
                         store: they are tried in order, the first that answers serves
  --relay-card FILE      the relay's card: the session refuses any other relay
  --relay-ca CARD        accept --relay-card only if a CA whose card this is signed it
                         (missive card RELAY.CARD --sign CA.KEY)
  --key FILE             your secret key
  --state FILE           your outgoing queue and shown-message record
                         (default: the key file's name + .relay.db)
  --to ADDRESS           send: the recipient; --to-card FILE pins their card instead
                         of trusting the relay's directory
  --trust CARD|DIR       inbox/watch: cards whose messages count as trusted
  --wait [DURATION]      send: wait for the delivery receipt (default 30s; 500ms, 10s, 2m)
  --json                 one JSON object per line; a receipt is {"receipt": ID, "to", "status"}
  --timeout DURATION     connection and request time limit (default 15s)
  --require-pq           the session with the relay must be post-quantum (version 2):
                         a relay that answers in version 1 is refused (exit 7)

Example:
  missive relay register --relay tcp://127.0.0.1:7900 --relay-card relay.card --key alice.key
  echo "hi bob" | missive relay send --to bob@example.org --relay … --relay-card … --key alice.key
  echo hi | missive relay send --to bob@example.org --wait 1m --relay … --relay-card … --key alice.key
  missive relay inbox --relay tcp://127.0.0.1:7900 --relay-card relay.card --key bob.key

${exitCodesLine(3, 4, 5, 7, 9, 10, 12, 13, 14, 15, 16)}
`;

/** `--wait` without a duration. */
const DEFAULT_WAIT = "30s";

/**
 * `--wait` takes an optional duration: given as `--wait=D` or `--wait D` when D reads as
 * one; a bare `--wait` becomes `--wait=30s` (parseArgs has no optional values).
 */
function optionalWait(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] !== "--wait") {
      out.push(args[i]);
      continue;
    }
    const next = args[i + 1];
    if (next !== undefined && /^\d+(?:\.\d+)?(?:ms|s|m|h)?$/.test(next)) {
      out.push(`--wait=${next}`);
      i++;
    } else out.push(`--wait=${DEFAULT_WAIT}`);
  }
  return out;
}

const FLAGS = {
  relay: { type: "string", multiple: true },
  "relay-card": { type: "string" },
  "relay-ca": { type: "string", multiple: true },
  key: { type: "string" },
  state: { type: "string" },
  to: { type: "string" },
  "to-card": { type: "string" },
  trust: { type: "string", multiple: true },
  note: { type: "string" },
  json: { type: "boolean" },
  timeout: { type: "string" },
  wait: { type: "string" },
  resend: { type: "string" },
  drop: { type: "string" },
  plugin: { type: "string", multiple: true },
  "require-pq": { type: "boolean" },
} as const;

/** The parsed flags, as parseArgs returns them for {@link FLAGS}. */
type Values = {
  [K in keyof typeof FLAGS]?: (typeof FLAGS)[K] extends { multiple: true } ? string[]
    : (typeof FLAGS)[K] extends { type: "boolean" } ? boolean
    : string;
};

/** One subcommand: the context, its positional argument and the flags. */
type Subcommand = (ctx: Context, arg: string | undefined, v: Values) => Promise<void>;

const SUBCOMMANDS: Record<string, Subcommand> = {
  register: (ctx) =>
    withClient(ctx, async (c) => {
      const id = await c.register();
      await print(
        ctx.io,
        `registered ${ctx.identity.card.address} (id ${toHex(id)}) at ${ctx.connected ?? ctx.url}`,
      );
    }),
  lookup: (ctx, arg) => {
    if (!arg) throw new MissiveError("usage", "relay lookup: which ADDRESS or ID?");
    return withClient(ctx, async (c) => {
      const r = await c.lookup(target(arg));
      if (ctx.json) {
        return await print(
          ctx.io,
          jsonLine({ address: r.card.address, id: toHex(r.card.id), presence: r.presence ?? null }),
        );
      }
      await ctx.io.stdout(utf8(await cardFileText(await getCryptoProvider(), r.card)));
      note(ctx.io, `${oneLine(r.card.address)} is ${r.presence ?? "offline (or invisible)"}`);
    });
  },
  list: (ctx) =>
    withClient(ctx, async (c) => {
      for (const e of await c.list()) {
        await print(
          ctx.io,
          ctx.json
            ? jsonLine({ ...e, id: toHex(e.id) })
            : `${oneLine(e.address)}\t${e.status}${e.note ? `\t${oneLine(e.note)}` : ""}`,
        );
      }
    }),
  status: (ctx, arg, v) =>
    withClient(ctx, async (c) => {
      if (arg === undefined) {
        const stats = await c.stats();
        if (ctx.json) return await print(ctx.io, jsonLine(stats));
        for (const [k, n] of Object.entries(stats)) await print(ctx.io, `${oneLine(k)}\t${n}`);
        return;
      }
      if (!(PRESENCE_STATUSES as readonly string[]).includes(arg)) {
        throw new MissiveError("usage", `relay status: expected ${PRESENCE_STATUSES.join(", ")}`);
      }
      await c.setPresence(arg as PresenceStatus, v.note);
      note(ctx.io, `presence set to ${arg}`);
    }),
  send: (ctx, _arg, v) =>
    send(
      ctx,
      v.to,
      v["to-card"],
      v.wait === undefined ? undefined : parseDuration(v.wait, "--wait", { io: ctx.io }),
    ),
  inbox: (ctx) =>
    withClient(ctx, async (c) => {
      await flushIfAny(ctx, c);
      const waiting = await c.receive("all");
      // The waiting messages, unless they stop coming (taken by another link).
      const counts = waiting > 0 ? await receiveLoop(ctx, c, waiting, ctx.timeoutMs) : undefined;
      if (counts?.unacknowledged) {
        note(ctx.io, `${counts.unacknowledged} acknowledgements were lost; those come again`);
      }
    }),
  watch: (ctx) => watch(ctx),
  queue: (ctx, _arg, v) => queueCommand(ctx, v.resend, v.drop),
};

/** Checks the flags a subcommand needs and loads keys, cards and the registry. */
async function context(io: Io, sub: string, v: Values): Promise<Context> {
  if (v.wait !== undefined && sub !== "send") {
    throw new MissiveError("usage", `relay ${sub}: --wait is for relay send`);
  }
  if (!v.key) throw new MissiveError("usage", "relay: --key FILE is required");
  const urls = (v.relay ?? (io.env.MISSIVE_RELAY ?? "").split(","))
    .map((u) => u.trim()).filter(Boolean);
  if (!urls[0] && sub !== "queue") {
    throw new MissiveError("usage", "relay: --relay URL is required");
  }
  const relayCardFile = v["relay-card"];
  if (!relayCardFile && sub !== "queue") {
    throw new MissiveError("usage", "relay: --relay-card FILE is required (the relay's card)");
  }
  const timeoutMs = v.timeout === undefined
    ? 15_000
    : parseDuration(v.timeout, "--timeout", { bareUnit: "ms", io });
  const relayCard = relayCardFile ? await loadRelayCard(relayCardFile, "relay") : undefined;
  if (v["relay-ca"] && relayCard) await checkRelayCa(relayCardFile!, relayCard, v["relay-ca"]);
  return {
    io,
    url: urls[0] ?? "",
    urls,
    relayCard: relayCard!, // absent only for `queue`, which checks it before connecting
    identity: await loadIdentity(io, v.key),
    registry: await loadRegistry(io, v as { plugin?: string[]; config?: string }),
    statePath: v.state ?? `${v.key}.relay.db`,
    timeoutMs,
    json: v.json === true,
    trusted: v.trust ? await loadCards(v.trust) : [],
    requirePq: v["require-pq"] === true,
  };
}

/** `--relay-ca`: the relay's card must carry a signature by one of these CA cards. */
async function checkRelayCa(file: string, card: Card, caFiles: string[]): Promise<void> {
  const signatures = cardSignaturesInText(readSmallText(file, "card"));
  try {
    await verifyCardSignature(
      await getCryptoProvider(),
      card,
      signatures,
      await loadCards(caFiles),
    );
  } catch (e) {
    if (!isMissiveError(e)) throw e;
    throw new MissiveError(e.code, `--relay-card ${file}: ${e.message}`);
  }
}

export const relay: Command = {
  summary: "talk to a relay: register, lookup, list, status, send, inbox, watch",
  usage,
  async run(args, io) {
    const parsed = await parseFlags(io, optionalWait(args), FLAGS, usage, 2);
    if (!parsed) return;
    const [sub, arg] = parsed.positionals;
    const handler = sub === undefined
      ? undefined
      : Object.hasOwn(SUBCOMMANDS, sub)
      ? SUBCOMMANDS[sub]
      : undefined;
    if (!sub || !handler) {
      throw new MissiveError(
        "usage",
        `relay: expected one of ${Object.keys(SUBCOMMANDS).join(", ")} (see missive relay --help)`,
      );
    }
    const v = parsed.values as Values;
    await handler(await context(io, sub, v), arg, v);
  },
};
