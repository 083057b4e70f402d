/**
 * The receiving side of `listen` (SPEC §21.5): every peer of a Listener is served
 * concurrently; its frames are opened one after another, delivered one at a time in
 * arrival order, and answered with one receipt each. A peer whose stream breaks is logged
 * and dropped; the others go on.
 * @module
 */
import type { CryptoProvider } from "../crypto/provider.ts";
import { isMissiveError, MissiveError } from "../core/errors.ts";
import type { Card } from "../keys/card.ts";
import type { Identity } from "../keys/identity.ts";
import type { Registry } from "../plugin/registry.ts";
import { type OpenedMessage, openMessage } from "../plugin/message.ts";
import type { ReplayCache } from "../plugin/replay.ts";
import { RECEIPT_TYPE, type ReceiptStatus } from "../amp/receipt.ts";
import { receiptStatusFor, sealReceipt, UNKNOWN_NONCE } from "./receipts.ts";
import type { Listener, Transport } from "../transports/types.ts";

/** How long a receipt for a peer being dropped may take to go out. */
const PARTING_RECEIPT_MS = 2000;

/** Options of a MessageServer. */
export interface ServeOptions {
  /** Where frames' (type, version) pairs are looked up; needs STP auth to seal receipts. */
  registry: Registry;
  /** Opens the messages and signs the receipts. */
  identity: Identity;
  /** Cards whose holders are trusted (see `OpenRequest.trusted`). */
  trusted?: readonly Card[];
  /** Refuse (receipt `unknown-id`) messages whose signer is in no trusted card. */
  requireTrust?: boolean;
  /** Where messages are checked for replay (SPEC §10); a replay is answered `undecryptable`. */
  replay?: ReplayCache;
  /** Typed STP options (see OpenRequest.options). */
  options?: object;
  /** STP options as text (`--option NAME=VALUE`). */
  optionPairs?: Readonly<Record<string, string>>;
  /** The primitives; default `getCryptoProvider()`. */
  crypto?: CryptoProvider;
  /** Answer every frame with a receipt (default true; false where the transport cannot). */
  receipts?: boolean;
  /** Stop once this many messages were delivered and answered. */
  limit?: number;
  /** Where refused messages and dropped peers are reported. */
  log?: (line: string) => void;
  /**
   * Called once per opened message, one call at a time, in arrival order. A MissiveError
   * thrown for one message is logged and the server goes on (the message was accepted: it
   * passed every check; handing it on failed locally); any other throw is a bug, stops the
   * server, and `run` rejects with it.
   */
  deliver(message: OpenedMessage, peer: string): Promise<void> | void;
}

/**
 * Serves a Listener until it closes, `stop` is called, or the limit is reached.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createIdentity, defaultRegistry, getCryptoProvider } from "../mod.ts";
 * import { connectTransport, listenTransport } from "../transports/mod.ts";
 * import { MessageServer, ReceiptChannel, sealWithNonce } from "./mod.ts";
 * const crypto = await getCryptoProvider();
 * const registry = defaultRegistry();
 * const caps = { stps: [[2, 2], [4, 1]] as const, amps: [[1, 1], [3, 1]] as const };
 * const alice = await createIdentity(crypto, { address: "alice@example.org", ...caps });
 * const bob = await createIdentity(crypto, { address: "bob@example.org", ...caps });
 * const got: unknown[] = [];
 * const server = new MessageServer(await listenTransport("tcp://127.0.0.1:0"), {
 *   registry, identity: bob, trusted: [alice.card], limit: 1,
 *   deliver: (m) => void got.push([m.sender?.address, m.message]),
 * });
 * const running = server.run();
 * const transport = await connectTransport(server.url);
 * const channel = new ReceiptChannel(transport, { registry, cards: [bob.card] });
 * const sealed = await sealWithNonce({
 *   registry, stp: registry.find("stp", "simple"), amp: registry.find("amp", "text/1"),
 *   message: { text: "hi" }, sender: alice, recipients: [bob.card],
 * });
 * assert.equal((await channel.send(sealed, 10_000)).status, "accepted");
 * await transport.close();
 * await running;
 * assert.deepEqual(got, [["alice@example.org", { text: "hi" }]]);
 * ```
 */
export class MessageServer {
  readonly #listener: Listener;
  readonly #o: ServeOptions;
  readonly #log: (line: string) => void;
  #delivering: Promise<unknown> = Promise.resolve();
  #delivered = 0;
  #answered = 0;
  #dropped = 0;
  #stopping: Promise<void> | undefined;
  #error: unknown;

  /** A server for `listener`; nothing is read until `run`. */
  constructor(listener: Listener, options: ServeOptions) {
    this.#listener = listener;
    this.#o = options;
    this.#log = options.log ?? (() => {});
  }

  /** The URL the listener is bound to. */
  get url(): string {
    return this.#listener.url;
  }

  /** Messages delivered so far. */
  get delivered(): number {
    return this.#delivered;
  }

  /** Peers dropped because their stream broke (bad length, truncated frame, lost). */
  get dropped(): number {
    return this.#dropped;
  }

  /** Serves until stopped; rejects with the error of a failed delivery. */
  async run(): Promise<void> {
    const peers = new Set<Promise<void>>();
    for await (const transport of this.#listener.connections()) {
      if (this.#stopping) {
        await transport.close();
        break;
      }
      const p = this.#serve(transport).finally(() => peers.delete(p));
      peers.add(p);
    }
    await Promise.all(peers);
    if (this.#error) throw this.#error;
  }

  /** Stops accepting and closes every peer; idempotent. */
  stop(error?: unknown): Promise<void> {
    if (error !== undefined) this.#error ??= error;
    this.#stopping ??= this.#listener.close();
    return this.#stopping;
  }

  async #serve(t: Transport): Promise<void> {
    try {
      for await (const frame of t.frames()) {
        if (this.#stopping) break;
        await this.#handle(t, frame);
      }
    } catch (e) {
      // A frame over the cap (e.g. a large post-quantum group message): say how to raise it.
      const why = e instanceof MissiveError
        ? e.message + (e.code === "too-large" ? " (listen --max-frame raises the cap)" : "")
        : String(e);
      if (!this.#stopping) {
        this.#dropped++;
        this.#log(`dropped ${t.remote}: ${why}`);
      }
      // A stream that broke on a bad frame still has a peer listening: say why (§21.4).
      const framing = isMissiveError(e, "malformed") || isMissiveError(e, "too-large");
      if (framing && this.#o.receipts !== false && !this.#stopping) {
        await this.#answer(t, UNKNOWN_NONCE, "unparsable", true).catch(() => {});
      }
    } finally {
      await t.close();
    }
  }

  async #handle(t: Transport, frame: Uint8Array): Promise<void> {
    const o = this.#o;
    let opened: OpenedMessage | undefined;
    let status: ReceiptStatus = "accepted";
    try {
      opened = await openMessage(frame, {
        registry: o.registry,
        identity: o.identity,
        trusted: o.trusted,
        requireTrust: o.requireTrust,
        replay: o.replay,
        options: o.options,
        optionPairs: o.optionPairs,
        crypto: o.crypto,
      });
    } catch (e) {
      if (!(e instanceof MissiveError)) throw e;
      this.#log(`${t.remote}: refused a message: ${e.message}`);
      // The receipt carries the status only: it is signed by us, and the reason may quote
      // what the sender chose (a claimed address), which we must not sign (SPEC §21.5).
      status = receiptStatusFor(e);
    }
    const delivered = status === "accepted" && await this.#deliverInOrder(opened!, t.remote);
    if (status === "accepted" && !delivered) return; // stopping: not ours any more
    const isReceipt = opened?.amp.type === RECEIPT_TYPE; // never answered (SPEC §14)
    try {
      if (o.receipts !== false && !isReceipt) {
        await this.#answer(t, opened?.inner.nonce ?? UNKNOWN_NONCE, status);
      }
    } finally {
      if (delivered && ++this.#answered === o.limit) void this.stop();
    }
  }

  /**
   * Sends one receipt. A normal one waits as long as the peer's back-pressure says (a
   * peer that reads no receipts stalls only itself); a parting one, to a peer being
   * dropped, gets PARTING_RECEIPT_MS.
   */
  async #answer(
    t: Transport,
    nonce: Uint8Array,
    status: ReceiptStatus,
    parting = false,
  ): Promise<void> {
    const o = this.#o;
    const frame = await sealReceipt(o.registry, o.identity, { nonce, status }, o.crypto);
    if (!parting) return await t.send(frame);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<void>((_, reject) => {
      timer = setTimeout(
        () => reject(new MissiveError("timeout", `${t.remote}: receipt not taken`)),
        PARTING_RECEIPT_MS,
      );
    });
    try {
      await Promise.race([t.send(frame), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Delivers in arrival order, one at a time; false once the server is stopping. */
  #deliverInOrder(opened: OpenedMessage, peer: string): Promise<boolean> {
    const run = this.#delivering.then(async () => {
      if (this.#stopping || (this.#o.limit !== undefined && this.#delivered >= this.#o.limit)) {
        return false;
      }
      try {
        await this.#o.deliver(opened, peer);
      } catch (e) {
        if (!(e instanceof MissiveError)) {
          void this.stop(e);
          return false;
        }
        this.#log(`${peer}: delivering a message failed: ${e.message}`);
      }
      this.#delivered++;
      return true;
    });
    this.#delivering = run;
    return run;
  }
}
