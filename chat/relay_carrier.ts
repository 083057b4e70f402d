/**
 * The chat over a relay (SPEC §23, §27.4): stays connected (reconnecting with back-off
 * when the link drops), registers, keeps presence, and hands every delivery to the model
 * before acknowledging it with the receipt status the model gives.
 * @module
 */
import type { PresenceStatus } from "../amp/presence.ts";
import type { Bytes } from "../core/bytes.ts";
import { isMissiveError, MissiveError } from "../core/errors.ts";
import type { Card } from "../keys/card.ts";
import type { Identity } from "../keys/identity.ts";
import type { RelayClient } from "../relay/client.ts";
import { connectRelay } from "../relay/link.ts";
import type { Carrier, CarrierSink, OnlineEntry } from "./carrier.ts";

/** Options of `RelayCarrier`. */
export interface RelayCarrierOptions {
  /** Connection and request time limit (ms; default 15000). */
  timeoutMs?: number;
  /** Longest wait between reconnection attempts (ms; default 5000). */
  maxBackoffMs?: number;
  /** The session with the relay must be version 2 (post-quantum hybrid, SPEC §22.12). */
  requirePq?: boolean;
}

/** A relay as the chat's carrier. A class: it owns the reconnecting link. */
export class RelayCarrier implements Carrier {
  readonly name: string;
  readonly #url: string;
  readonly #identity: Identity;
  readonly #relayCard: Card;
  readonly #timeoutMs: number;
  readonly #requirePq: boolean;
  readonly #maxBackoffMs: number;
  #client?: RelayClient;
  #sink?: CarrierSink;
  #status: PresenceStatus = "online";
  #closed = false;
  #loop?: Promise<void>;
  #wake?: () => void;

  constructor(url: string, identity: Identity, relayCard: Card, options: RelayCarrierOptions = {}) {
    this.name = `relay ${url}`;
    this.#url = url;
    this.#identity = identity;
    this.#relayCard = relayCard;
    this.#timeoutMs = options.timeoutMs ?? 15_000;
    this.#maxBackoffMs = options.maxBackoffMs ?? 5000;
    this.#requirePq = options.requirePq === true;
  }

  /** Connects now (resolves after the first attempt, up or not) and keeps reconnecting. */
  start(sink: CarrierSink): Promise<void> {
    this.#sink = sink;
    let first: () => void;
    const attempted = new Promise<void>((resolve) => (first = resolve));
    this.#loop = this.#run(() => first());
    return attempted;
  }

  async #run(attempted: () => void): Promise<void> {
    let backoff = 500;
    let wasUp = false;
    while (!this.#closed) {
      let client: RelayClient | undefined;
      try {
        client = await connectRelay(this.#url, this.#identity, this.#relayCard, {
          timeoutMs: this.#timeoutMs,
          requirePq: this.#requirePq,
        });
        await client.register();
        await client.setPresence(this.#status);
        await client.keepAliveWhileOpen();
        this.#client = client;
        backoff = 500;
        wasUp = true;
        this.#sink!.link(true, `connected to ${this.#url}`);
        attempted();
        await client.receive();
        await this.#deliver(client);
        throw new MissiveError("network", "the relay closed the link");
      } catch (e) {
        if (this.#client === client) this.#client = undefined;
        await client?.close().catch(() => {});
        attempted();
        if (this.#closed) return;
        const why = isMissiveError(e) ? e.message : String((e as Error)?.message ?? e);
        if (wasUp) this.#sink!.link(false, `relay link lost: ${why}; reconnecting`);
        else this.#sink!.problem(`relay ${this.#url}: ${why}; retrying`);
        wasUp = false;
        // A refusal of our card or a relay that is not the pinned one will not heal
        // itself soon: retry, but slowly.
        const wait = isMissiveError(e, "untrusted") || isMissiveError(e, "refused")
          ? this.#maxBackoffMs
          : backoff;
        backoff = Math.min(this.#maxBackoffMs, backoff * 2);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, wait);
          this.#wake = () => (clearTimeout(t), resolve());
        });
        this.#wake = undefined;
      }
    }
  }

  async #deliver(client: RelayClient): Promise<void> {
    for await (const d of client.deliveries()) {
      let receipt;
      try {
        receipt = await this.#sink!.envelope(
          { address: d.sender, id: d.senderId },
          d.envelope,
        );
      } catch (e) {
        if (this.#closed) return;
        throw e; // not acknowledged: the relay delivers it again on the next link
      }
      await client.ack(d.message, receipt).catch((e) => {
        if (!isMissiveError(e)) throw e;
      });
    }
  }

  #live(): RelayClient {
    if (!this.#client) throw new MissiveError("network", `relay ${this.#url} is not connected`);
    return this.#client;
  }

  async lookup(address: string): Promise<Card> {
    return (await this.#live().lookup(address)).card;
  }

  async send(address: string, envelope: Bytes): Promise<void> {
    await this.#live().send(address, envelope);
  }

  async list(): Promise<OnlineEntry[]> {
    return (await this.#live().list()).map((e) => ({
      address: e.address,
      status: e.status,
      ...(e.note !== undefined ? { note: e.note } : {}),
      kind: "user" as const,
    }));
  }

  async setPresence(status: PresenceStatus): Promise<void> {
    this.#status = status;
    if (this.#client) await this.#client.setPresence(status);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#wake?.();
    await this.#client?.close().catch(() => {});
    await this.#loop?.catch(() => {});
  }
}
