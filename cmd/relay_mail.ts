/**
 * The workings of `missive relay` (cmd/relay.ts): connecting, sending through the
 * outgoing queue, printing deliveries, watching, the queue listing. Formatting and flow
 * only; the protocol lives in relay/ and queue/.
 * @module
 */
import { lowerAscii, normalizeAddress } from "../keys/address.ts";
import process from "node:process";
import { fromHex, toHex, utf8 } from "../core/bytes.ts";
import { getCryptoProvider } from "../crypto/mod.ts";
import { isMissiveError, MissiveError } from "../core/errors.ts";
import { type Card, decodeCard } from "../keys/card.ts";
import type { Identity } from "../keys/identity.ts";
import { OutgoingQueue } from "../queue/outgoing.ts";
import { SeenMessages } from "../queue/seen.ts";
import { type RelayClient, RelayRefusal } from "../relay/client.ts";
import { connectRelay } from "../relay/link.ts";
import {
  awaitReceipt,
  flushOutgoing,
  type FlushResult,
  handleDeliveries,
  queueText,
  receiptErrorCode,
  type ReceivedMessage,
  resendOutgoing,
} from "../relay/mailbox.ts";
import type { RelayReceipt, Target } from "../relay/protocol.ts";
import type { Registry } from "../plugin/registry.ts";
import { cliOf, type Io, loadCards, note, oneLine, readInput } from "./common.ts";

/** Largest message text read from stdin (the relay's own cap is usually lower). */
const MAX_INPUT = 1024 * 1024;

/** What every relay subcommand works with. */
export interface Context {
  io: Io;
  /** The first relay URL (for messages). */
  url: string;
  /**
   * The relay nodes to try, in order (--relay repeated, or $MISSIVE_RELAY with commas):
   * nodes of one relay, sharing one key and one store (docs/SCALE.md).
   */
  urls: string[];
  /** The node the last `connect` reached. */
  connected?: string;
  relayCard: Card;
  identity: Identity;
  registry: Registry;
  statePath: string;
  timeoutMs: number;
  json: boolean;
  trusted: Card[];
  /** --require-pq: the session with the relay must be version 2 (post-quantum hybrid). */
  requirePq?: boolean;
}

export const print = (io: Io, line: string) => io.stdout(utf8(line + "\n"));

/**
 * One JSON line that is also safe on a terminal: JSON escapes C0 controls itself; the
 * other characters the sanitiser would escape (C1, bidi, zero-width, separators) are
 * written as \u escapes, which decode to the same string.
 */
export function jsonLine(value: unknown): string {
  return JSON.stringify(value).replace(
    /[\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/**
 * Connects to the first relay node that answers, in the order given; a node that cannot
 * be reached (or times out) passes to the next, any other failure (a relay that is not
 * the pinned one, a refusal) stops at once.
 */
export async function connect(ctx: Context): Promise<RelayClient> {
  const urls = ctx.urls.length > 0 ? ctx.urls : [ctx.url];
  const failures: string[] = [];
  let last: MissiveError | undefined;
  for (const url of urls) {
    try {
      const client = await connectRelay(url, ctx.identity, ctx.relayCard, {
        timeoutMs: ctx.timeoutMs,
        requirePq: ctx.requirePq,
      });
      ctx.connected = url;
      return client;
    } catch (e) {
      if (!isMissiveError(e, "network") && !isMissiveError(e, "timeout")) throw e;
      last = e;
      failures.push(`${url}: ${e.message}`);
    }
  }
  if (urls.length === 1) throw last!;
  throw new MissiveError(last!.code, `no relay node answered (${failures.join("; ")})`, {
    cause: last,
  });
}

export function target(spec: string): Target {
  const id = /^[0-9a-f]{32}$/i.test(spec) ? fromHex(spec) : undefined;
  return id ?? normalizeAddress(spec);
}

export function reportFlush(ctx: Context, r: FlushResult): void {
  for (const m of r.sent) {
    note(ctx.io, `sent queued message #${m.id} to ${m.recipient} (relay message ${m.mid})`);
  }
  for (const m of r.failed) {
    note(ctx.io, `queued message #${m.id} to ${m.recipient} failed: ${oneLine(m.error.message)}`);
  }
}

export async function withClient<T>(ctx: Context, f: (c: RelayClient) => Promise<T>): Promise<T> {
  const client = await connect(ctx);
  try {
    return await f(client);
  } finally {
    await client.close().catch(() => {});
  }
}

export function printMessage(ctx: Context, m: ReceivedMessage): Promise<void> {
  const { opened, delivery } = m;
  const text = opened.amp.name === "text"
    ? (opened.message as { text: string }).text
    : new TextDecoder().decode(
      cliOf(ctx.registry.amp(opened.amp.type, opened.amp.version)).toOutput(opened.message),
    );
  if (ctx.json) {
    return print(
      ctx.io,
      jsonLine({
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
  // One line per message: the sender and the text as the sanitiser shows them.
  return print(ctx.io, `${oneLine(delivery.sender)}${mark}: ${oneLine(text)}`);
}

/** What a receipt's status says the recipient could not do (SPEC §23.7, §14). */
const RECEIPT_WORDS: Record<string, string> = {
  "hash-mismatch": "its signature or MAC did not verify (altered or forged on the way)",
  undecryptable: "it was not sealed to a key the recipient holds",
  unparsable: "the recipient could not parse it",
  "unknown-id": "the recipient does not know the sender",
};

/**
 * A receipt (SPEC §23.7.1) as one line: the relay's word that the recipient acknowledged
 * a message, and with which status — not the recipient's signature.
 */
export function receiptLine(r: RelayReceipt): string {
  const who = oneLine(r.recipient);
  return r.status === "accepted"
    ? `receipt: relay message ${r.message} delivered to ${who} (per the relay)`
    : `receipt: relay message ${r.message} reached ${who}, who could not use it: ` +
      `${r.status}, ${RECEIPT_WORDS[r.status]} (per the relay)`;
}

/** A receipt as one JSON object (`--json`). */
export function receiptJson(r: RelayReceipt): string {
  return jsonLine({
    receipt: r.message,
    receiptId: r.id,
    to: r.recipient,
    toId: toHex(r.recipientId),
    status: r.status,
    acknowledged: new Date(r.acknowledged).toISOString(),
    from: "relay",
  });
}

/** Prints a receipt for an earlier message: stdout with --json, else one stderr line. */
export function printReceipt(ctx: Context, r: RelayReceipt): Promise<void> | void {
  if (ctx.json) return print(ctx.io, receiptJson(r));
  note(ctx.io, receiptLine(r));
}

export async function receiveLoop(
  ctx: Context,
  client: RelayClient,
  limit?: number,
  idleMs?: number,
) {
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
        note(
          ctx.io,
          `message ${d.message} from ${oneLine(d.sender)} could not be opened: ${
            oneLine(e.message)
          }`,
        ),
      onReceipt: (r) => printReceipt(ctx, r),
    }, (m) => printMessage(ctx, m));
  } finally {
    seen.close();
  }
}

/**
 * `relay send`: seal, queue, flush; with `waitMs`, then wait on the same link for the
 * relay's receipt of the message (SPEC §23.7.1) and exit by its status.
 */
export async function send(
  ctx: Context,
  to: string | undefined,
  toCard: string | undefined,
  waitMs?: number,
) {
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
        const cached = queue.cachedCard(lowerAscii(to!));
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
        // Kept, not delivered: exit 16 (scripts must not take this for success).
        throw new MissiveError(
          "queued",
          `relay unreachable (${down!.message}): queued locally as #${queued.id} for ` +
            `${card.address} (${queued.protocols}); the next relay command that reaches the ` +
            "relay sends it (missive relay queue lists and flushes the queue)",
        );
      }
      const result = await flushOutgoing(client, queue, Date.now(), {
        receiptFor: waitMs === undefined ? undefined : queued.id,
      });
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
          `sent to ${oneLine(card.address)} with ${queued.protocols} (relay message ${sent.mid})`,
        );
        if (waitMs !== undefined) await waitForReceipt(ctx, client, sent.mid, card, waitMs);
      } else {
        const why = mine && "error" in mine ? (mine as { error: Error }).error.message : "later";
        throw new MissiveError(
          "queued",
          `not accepted by the relay (${why}): queued locally as #${queued.id}; ` +
            "it will be retried by the next relay command (missive relay queue)",
        );
      }
    } finally {
      await client?.close().catch(() => {});
    }
  } finally {
    queue.close();
  }
}

/** `send --wait`: the receipt of relay message `mid`, or exit 12 (timeout). */
async function waitForReceipt(
  ctx: Context,
  client: RelayClient,
  mid: number,
  card: Card,
  waitMs: number,
): Promise<void> {
  const who = oneLine(card.address);
  const seconds = (ms: number) => `${Math.round(ms / 100) / 10}s`;
  note(ctx.io, `waiting up to ${seconds(waitMs)} for the delivery receipt`);
  void client.keepAliveWhileOpen().catch(() => {});
  await client.receive("receipts");
  const r = await awaitReceipt(client, mid, {
    timeoutMs: waitMs,
    onOther: (other) => printReceipt(ctx, other),
  });
  if (!r) {
    throw new MissiveError(
      "timeout",
      `no delivery receipt within ${seconds(waitMs)}: relay message ${mid} stays queued at ` +
        `the relay and is delivered when ${who} next connects`,
    );
  }
  if (ctx.json) await print(ctx.io, receiptJson(r));
  const code = receiptErrorCode(r);
  if (code === undefined) {
    note(ctx.io, `delivered to ${oneLine(r.recipient)} (receipt from the relay)`);
    return;
  }
  throw new MissiveError(
    code,
    `relay message ${mid} reached ${oneLine(r.recipient)}, who could not use it: ${r.status}, ` +
      `${RECEIPT_WORDS[r.status]} (receipt from the relay)`,
  );
}

export async function flushIfAny(ctx: Context, client: RelayClient): Promise<void> {
  const queue = new OutgoingQueue(ctx.statePath);
  try {
    if (queue.due().length > 0) reportFlush(ctx, await flushOutgoing(client, queue));
  } finally {
    queue.close();
  }
}

export async function watch(ctx: Context): Promise<void> {
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
      await current.receive("all");
      // Staying connected: keep-alives keep the relay's idle timeout away (SPEC §23.3).
      void current.keepAliveWhileOpen().catch(() => {});
      note(ctx.io, `watching ${ctx.url} as ${ctx.identity.card.address}`);
      await receiveLoop(ctx, current);
    } catch (e) {
      if (stop) break;
      if (
        !isMissiveError(e, "network") && !isMissiveError(e, "timeout") &&
        !isMissiveError(e, "session")
      ) throw e;
      note(
        ctx.io,
        `relay link lost (${oneLine((e as Error).message)}); retrying in ${delay / 1000} s`,
      );
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 60_000);
    } finally {
      await current?.close().catch(() => {});
    }
  }
}

export async function queueCommand(ctx: Context, resend?: string, drop?: string): Promise<void> {
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
    // With a relay given, the queue is flushed first: every waiting message, now.
    let unreachable: string | undefined;
    if (ctx.url && ctx.relayCard && queue.due(Number.MAX_SAFE_INTEGER).length > 0) {
      let client: RelayClient | undefined;
      try {
        client = await connect(ctx);
        reportFlush(ctx, await flushOutgoing(client, queue, Date.now(), { ignoreBackoff: true }));
      } catch (e) {
        if (!isMissiveError(e, "network") && !isMissiveError(e, "timeout")) throw e;
        unreachable = e.message;
      } finally {
        await client?.close().catch(() => {});
      }
    }
    const waiting = queue.all().filter((m) => m.state === "pending").length;
    for (const m of queue.all()) {
      const line = ctx.json
        ? jsonLine({
          id: m.id,
          to: m.recipient,
          state: m.state,
          attempts: m.attempts,
          next: new Date(m.nextAttempt).toISOString(),
          error: m.lastError,
        })
        : `#${m.id} to ${m.recipient}: ${m.state}, ${m.attempts} attempts` +
          (m.lastError ? ` (${oneLine(m.lastError)})` : "");
      await print(ctx.io, line);
    }
    if (ctx.url && ctx.relayCard && waiting > 0) {
      throw new MissiveError(
        "queued",
        `${waiting} message${waiting === 1 ? "" : "s"} still queued locally` +
          (unreachable ? ` (relay unreachable: ${unreachable})` : ""),
      );
    }
  } finally {
    queue.close();
  }
}
