/**
 * `missive relay`: a relay's client (SPEC §23) — register, lookup, list, status, send,
 * inbox, watch, queue.
 * @module
 */
import process from "node:process";
import { PRESENCE_STATUSES, type PresenceStatus } from "../amp/presence.ts";
import { fromHex, toHex, utf8 } from "../bytes.ts";
import { getCryptoProvider } from "../crypto/mod.ts";
import { isMissiveError, MissiveError } from "../errors.ts";
import {
  type Card,
  cardFileText,
  cardSignaturesInText,
  decodeCard,
  verifyCardSignature,
} from "../keys/card.ts";
import type { Identity } from "../keys/identity.ts";
import { OutgoingQueue } from "../queue/outgoing.ts";
import { SeenMessages } from "../queue/seen.ts";
import { type RelayClient, RelayRefusal } from "../relay/client.ts";
import { connectRelay } from "../relay/link.ts";
import {
  flushOutgoing,
  type FlushResult,
  handleDeliveries,
  queueText,
  type ReceivedMessage,
  resendOutgoing,
} from "../relay/mailbox.ts";
import type { Target } from "../relay/protocol.ts";
import type { Registry } from "../registry.ts";
import {
  type Command,
  type Io,
  loadCards,
  loadIdentity,
  loadRegistry,
  note,
  parseFlags,
  readInput,
  readSmallText,
} from "./common.ts";

const usage = `missive relay SUBCOMMAND --relay URL --relay-card RELAY.CARD --key ME.KEY [options]

Talks to a relay (missive serve) over a mutually authenticated session.

Subcommands:
  register               register this key's card (address and ID) with the relay
  lookup ADDRESS|ID      print a registered card (presence on stderr)
  list                   who is online, with presence (invisible users are not listed)
  status [STATUS]        set presence (online, busy, away, invisible; --note TEXT),
                         or without STATUS print the relay's counters
  send --to ADDRESS      send stdin as a text message, sealed end to end; picks the best
                         protocols both sides support and says which. If the relay is
                         down the message waits in the outgoing queue and is sent by the
                         next relay command that reaches the relay.
  inbox                  print and acknowledge what is waiting, then exit
  watch                  stay connected and print messages as they arrive
  queue                  list the outgoing queue; --resend ID reseals one (fresh nonce),
                         --drop ID deletes one

Options:
  --relay URL            the relay (or $MISSIVE_RELAY), e.g. tcp://127.0.0.1:7900
  --relay-card FILE      the relay's card: the session refuses any other relay
  --relay-ca CARD        accept --relay-card only if a CA whose card this is signed it
                         (missive card RELAY.CARD --sign CA.KEY)
  --key FILE             your secret key
  --state FILE           your outgoing queue and shown-message record
                         (default: the key file's name + .relay.db)
  --to ADDRESS           send: the recipient; --to-card FILE pins their card instead
                         of trusting the relay's directory
  --trust CARD|DIR       inbox/watch: cards whose messages count as trusted
  --json                 one JSON object per line
  --timeout MS           connection and request time limit (default 15000)

Example:
  missive relay register --relay tcp://127.0.0.1:7900 --relay-card relay.card --key alice.key
  echo "hi bob" | missive relay send --to bob@example.org --relay … --relay-card … --key alice.key
  missive relay inbox --relay tcp://127.0.0.1:7900 --relay-card relay.card --key bob.key
`;

const SUBCOMMANDS = ["register", "lookup", "list", "status", "send", "inbox", "watch", "queue"];
/** Largest message text read from stdin (the relay's own cap is usually lower). */
const MAX_INPUT = 1024 * 1024;

interface Context {
  io: Io;
  url: string;
  relayCard: Card;
  identity: Identity;
  registry: Registry;
  statePath: string;
  timeoutMs: number;
  json: boolean;
  trusted: Card[];
}

const print = (io: Io, line: string) => io.stdout(utf8(line + "\n"));

async function connect(ctx: Context): Promise<RelayClient> {
  return await connectRelay(ctx.url, ctx.identity, ctx.relayCard, { timeoutMs: ctx.timeoutMs });
}

function target(spec: string): Target {
  const id = /^[0-9a-f]{32}$/i.test(spec) ? fromHex(spec) : undefined;
  return id ?? spec.trim().toLowerCase();
}

function reportFlush(ctx: Context, r: FlushResult): void {
  for (const m of r.sent) {
    note(ctx.io, `sent queued message #${m.id} to ${m.recipient} (relay message ${m.mid})`);
  }
  for (const m of r.failed) {
    note(ctx.io, `queued message #${m.id} to ${m.recipient} failed: ${m.error.message}`);
  }
}

async function withClient<T>(ctx: Context, f: (c: RelayClient) => Promise<T>): Promise<T> {
  const client = await connect(ctx);
  try {
    return await f(client);
  } finally {
    await client.close().catch(() => {});
  }
}

function printMessage(ctx: Context, m: ReceivedMessage): Promise<void> {
  const { opened, delivery } = m;
  const text = opened.amp.name === "text"
    ? (opened.message as { text: string }).text
    : new TextDecoder().decode(
      ctx.registry.amp(opened.amp.type, opened.amp.version)
        .toOutput(opened.message),
    );
  if (ctx.json) {
    return print(
      ctx.io,
      JSON.stringify({
        message: delivery.message,
        from: delivery.sender,
        fromId: toHex(delivery.senderId),
        verified: m.verified,
        trusted: opened.sender?.trusted ?? false,
        stp: `${opened.stp.name}/v${opened.stp.version}`,
        amp: `${opened.amp.name}/v${opened.amp.version}`,
        sent: new Date(opened.inner.timestamp).toISOString(),
        enqueued: new Date(delivery.enqueued).toISOString(),
        nonce: toHex(opened.inner.nonce),
        text,
      }),
    );
  }
  const mark = m.verified ? "" : " (UNVERIFIED: signer is not the relayed sender)";
  return print(
    ctx.io,
    `${delivery.sender}${mark}: ${text.replace(/\r?\n$/, "").replaceAll("\n", "\\n")}`,
  );
}

async function receiveLoop(ctx: Context, client: RelayClient, limit?: number, idleMs?: number) {
  const seen = new SeenMessages(ctx.statePath);
  try {
    return await handleDeliveries(client, {
      registry: ctx.registry,
      identity: ctx.identity,
      seen,
      trusted: ctx.trusted,
      limit,
      idleMs,
      onRejected: (d, e) =>
        note(ctx.io, `message ${d.message} from ${d.sender} could not be opened: ${e.message}`),
    }, (m) => printMessage(ctx, m));
  } finally {
    seen.close();
  }
}

async function send(ctx: Context, to: string | undefined, toCard: string | undefined) {
  if (!to && !toCard) throw new MissiveError("usage", "relay send: --to ADDRESS is required");
  const text = new TextDecoder().decode(await readInput(ctx.io, undefined, MAX_INPUT, "message"));
  const queue = new OutgoingQueue(ctx.statePath);
  try {
    let client: RelayClient | undefined;
    let down: MissiveError | undefined;
    try {
      client = await connect(ctx);
    } catch (e) {
      if (!isMissiveError(e, "network") && !isMissiveError(e, "timeout")) throw e;
      down = e;
    }
    try {
      let card: Card;
      if (toCard) {
        const cards = await loadCards([toCard]);
        if (cards.length !== 1) throw new MissiveError("usage", "--to-card: expected one card");
        card = cards[0];
      } else if (client) {
        try {
          card = (await client.lookup(target(to!))).card;
        } catch (e) {
          if (e instanceof RelayRefusal && e.status === "not-found") {
            throw new MissiveError(
              "refused",
              `unknown recipient ${to}: nobody of that address is registered at this relay`,
            );
          }
          throw e;
        }
      } else {
        const cached = queue.cachedCard(to!.toLowerCase());
        if (!cached) {
          throw new MissiveError(
            down!.code,
            `${
              down!.message
            }; no card for ${to} is cached, so it cannot be queued (give --to-card)`,
          );
        }
        card = await decodeCard(await getCryptoProvider(), cached);
      }
      const queued = await queueText(queue, ctx.registry, ctx.identity, card, text);
      if (!client) {
        note(
          ctx.io,
          `relay unreachable (${down!.message}): queued as #${queued.id} for ${card.address} ` +
            `(${queued.protocols}); the next relay command that reaches the relay sends it`,
        );
        return;
      }
      const result = await flushOutgoing(client, queue);
      const mine = [...result.sent, ...result.failed, ...result.retry].find((m) =>
        m.id === queued.id
      );
      reportFlush(ctx, { ...result, sent: result.sent.filter((m) => m.id !== queued.id) });
      const failed = result.failed.find((m) => m.id === queued.id);
      if (failed) {
        queue.remove(queued.id); // reported now, so not kept for later
        throw failed.error;
      }
      const sent = result.sent.find((m) => m.id === queued.id);
      if (sent) {
        note(
          ctx.io,
          `sent to ${card.address} with ${queued.protocols} (relay message ${sent.mid})`,
        );
      } else {
        const why = mine && "error" in mine ? (mine as { error: Error }).error.message : "later";
        note(ctx.io, `queued as #${queued.id} (${why}); it will be retried`);
      }
    } finally {
      await client?.close().catch(() => {});
    }
  } finally {
    queue.close();
  }
}

async function flushIfAny(ctx: Context, client: RelayClient): Promise<void> {
  const queue = new OutgoingQueue(ctx.statePath);
  try {
    if (queue.due().length > 0) reportFlush(ctx, await flushOutgoing(client, queue));
  } finally {
    queue.close();
  }
}

async function watch(ctx: Context): Promise<void> {
  let stop = false;
  let current: RelayClient | undefined;
  const onSignal = () => {
    stop = true;
    void current?.close();
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  let delay = 1000;
  while (!stop) {
    try {
      current = await connect(ctx);
      delay = 1000;
      await flushIfAny(ctx, current);
      await current.receive();
      note(ctx.io, `watching ${ctx.url} as ${ctx.identity.card.address}`);
      await receiveLoop(ctx, current);
    } catch (e) {
      if (stop) break;
      if (
        !isMissiveError(e, "network") && !isMissiveError(e, "timeout") &&
        !isMissiveError(e, "session")
      ) throw e;
      note(ctx.io, `relay link lost (${(e as Error).message}); retrying in ${delay / 1000} s`);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 60_000);
    } finally {
      await current?.close().catch(() => {});
    }
  }
}

async function queueCommand(ctx: Context, resend?: string, drop?: string): Promise<void> {
  const queue = new OutgoingQueue(ctx.statePath);
  try {
    const id = (s: string) => {
      const n = Number(s);
      if (!Number.isSafeInteger(n) || !queue.get(n)) {
        throw new MissiveError("usage", `no outgoing message #${s}`);
      }
      return n;
    };
    if (drop !== undefined) return void queue.remove(id(drop));
    if (resend !== undefined) {
      const r = await resendOutgoing(queue, id(resend), ctx.registry, ctx.identity);
      note(ctx.io, `#${resend} resealed with ${r.protocols}; it is sent by the next relay command`);
      return;
    }
    for (const m of queue.all()) {
      const line = ctx.json
        ? JSON.stringify({
          id: m.id,
          to: m.recipient,
          state: m.state,
          attempts: m.attempts,
          next: new Date(m.nextAttempt).toISOString(),
          error: m.lastError,
        })
        : `#${m.id} to ${m.recipient}: ${m.state}, ${m.attempts} attempts` +
          (m.lastError ? ` (${m.lastError})` : "");
      await print(ctx.io, line);
    }
  } finally {
    queue.close();
  }
}

export const relay: Command = {
  summary: "talk to a relay: register, lookup, list, status, send, inbox, watch",
  usage,
  async run(args, io) {
    const parsed = await parseFlags(
      io,
      args,
      {
        relay: { type: "string" },
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
        resend: { type: "string" },
        drop: { type: "string" },
        plugin: { type: "string", multiple: true },
      },
      usage,
      2,
    );
    if (!parsed) return;
    const v = parsed.values;
    const [sub, arg] = parsed.positionals;
    if (!sub || !SUBCOMMANDS.includes(sub)) {
      throw new MissiveError(
        "usage",
        `relay: expected one of ${SUBCOMMANDS.join(", ")} (see missive relay --help)`,
      );
    }
    if (!v.key) throw new MissiveError("usage", "relay: --key FILE is required");
    const url = v.relay ?? io.env.MISSIVE_RELAY;
    if (!url && sub !== "queue") throw new MissiveError("usage", "relay: --relay URL is required");
    if (!v["relay-card"] && sub !== "queue") {
      throw new MissiveError("usage", "relay: --relay-card FILE is required (the relay's card)");
    }
    const timeoutMs = Number(v.timeout ?? 15_000);
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs <= 0) {
      throw new MissiveError("usage", "relay: --timeout expects milliseconds");
    }
    const relayCards = v["relay-card"] ? await loadCards([v["relay-card"]]) : [];
    if (v["relay-card"] && relayCards.length !== 1) {
      throw new MissiveError("usage", "relay: --relay-card must hold exactly one card");
    }
    if (v["relay-ca"] && v["relay-card"]) {
      const signatures = cardSignaturesInText(readSmallText(v["relay-card"], "card"));
      try {
        await verifyCardSignature(
          await getCryptoProvider(),
          relayCards[0],
          signatures,
          await loadCards(v["relay-ca"]),
        );
      } catch (e) {
        if (!isMissiveError(e)) throw e;
        throw new MissiveError(e.code, `--relay-card ${v["relay-card"]}: ${e.message}`);
      }
    }
    const ctx: Context = {
      io,
      url: url ?? "",
      relayCard: relayCards[0],
      identity: await loadIdentity(io, v.key),
      registry: await loadRegistry(io, v.plugin ?? []),
      statePath: v.state ?? `${v.key}.relay.db`,
      timeoutMs,
      json: v.json === true,
      trusted: v.trust ? await loadCards(v.trust) : [],
    };
    switch (sub) {
      case "register":
        return await withClient(ctx, async (c) => {
          const id = await c.register();
          await print(io, `registered ${ctx.identity.card.address} (id ${toHex(id)}) at ${url}`);
        });
      case "lookup": {
        if (!arg) throw new MissiveError("usage", "relay lookup: which ADDRESS or ID?");
        return await withClient(ctx, async (c) => {
          const r = await c.lookup(target(arg));
          if (ctx.json) {
            return await print(
              io,
              JSON.stringify({
                address: r.card.address,
                id: toHex(r.card.id),
                presence: r.presence ?? null,
              }),
            );
          }
          await io.stdout(utf8(await cardFileText(await getCryptoProvider(), r.card)));
          note(io, `${r.card.address} is ${r.presence ?? "offline (or invisible)"}`);
        });
      }
      case "list":
        return await withClient(ctx, async (c) => {
          for (const e of await c.list()) {
            await print(
              io,
              ctx.json
                ? JSON.stringify({ ...e, id: toHex(e.id) })
                : `${e.address}\t${e.status}${e.note ? `\t${e.note}` : ""}`,
            );
          }
        });
      case "status":
        return await withClient(ctx, async (c) => {
          if (arg === undefined) {
            const stats = await c.stats();
            if (ctx.json) return await print(io, JSON.stringify(stats));
            for (const [k, n] of Object.entries(stats)) await print(io, `${k}\t${n}`);
            return;
          }
          if (!(PRESENCE_STATUSES as readonly string[]).includes(arg)) {
            throw new MissiveError(
              "usage",
              `relay status: expected ${PRESENCE_STATUSES.join(", ")}`,
            );
          }
          await c.setPresence(arg as PresenceStatus, v.note);
          note(io, `presence set to ${arg}`);
        });
      case "send":
        return await send(ctx, v.to, v["to-card"]);
      case "inbox":
        return await withClient(ctx, async (c) => {
          await flushIfAny(ctx, c);
          const waiting = await c.receive();
          // The waiting messages, unless they stop coming (taken by another link).
          const counts = waiting > 0
            ? await receiveLoop(ctx, c, waiting, ctx.timeoutMs)
            : undefined;
          if (counts?.unacknowledged) {
            note(io, `${counts.unacknowledged} acknowledgements were lost; those come again`);
          }
        });
      case "watch":
        return await watch(ctx);
      case "queue":
        return await queueCommand(ctx, v.resend, v.drop);
    }
  },
};
