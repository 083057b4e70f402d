/**
 * TEST DOUBLE, not a secure channel: an in-memory pair of `SecureChannel`s whose peer
 * cards are simply asserted by the test (no handshake, no encryption). It lets the
 * relay's protocol, store and client be tested without the session protocol; the CLI
 * tests run the relay over real sessions.
 * @module
 */
import { MissiveError } from "../core/errors.ts";
import type { Card } from "../keys/card.ts";
import type { SecureChannel } from "../session/channel.ts";

/** Lets a test drop a message in flight (return true to drop). */
export type DropRule = (data: Uint8Array) => boolean;

class FakeChannel implements SecureChannel {
  readonly peer: Card;
  other?: FakeChannel;
  drop?: DropRule;
  /** While true, sends are taken but never acknowledged (a peer that stopped reading). */
  stalled = false;
  readonly #inbox: Uint8Array[] = [];
  /** Stalled sends fail when the channel closes, as a session's pending sends do. */
  #stalledSends: ((e: Error) => void)[] = [];
  #wake?: () => void;
  #closed = false;

  constructor(peer: Card) {
    this.peer = peer;
  }

  deliver(data: Uint8Array): void {
    if (this.#closed) return;
    this.#inbox.push(data);
    this.#wake?.();
  }

  send(data: Uint8Array): Promise<void> {
    if (this.#closed) return Promise.reject(new MissiveError("session", "fake channel: closed"));
    if (this.stalled) {
      return new Promise((_resolve, reject) => this.#stalledSends.push(reject));
    }
    if (this.drop?.(data)) return Promise.resolve();
    this.other?.deliver(new Uint8Array(data));
    return Promise.resolve();
  }

  async *messages(): AsyncGenerator<Uint8Array> {
    for (;;) {
      const next = this.#inbox.shift();
      if (next) {
        yield next;
        continue;
      }
      if (this.#closed) return;
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = undefined;
    }
  }

  end(): void {
    this.#closed = true;
    for (const reject of this.#stalledSends.splice(0)) {
      reject(new MissiveError("session", "fake channel: closed"));
    }
    this.#wake?.();
  }

  close(): Promise<void> {
    this.end();
    this.other?.end();
    return Promise.resolve();
  }
}

/**
 * Two connected fake channels: `client.peer` is `serverCard`, `server.peer` is
 * `clientCard`. `dropFromClient` / `dropFromServer` drop chosen messages.
 */
export function fakeChannelPair(
  clientCard: Card,
  serverCard: Card,
  options: { dropFromClient?: DropRule; dropFromServer?: DropRule; stallServer?: boolean } = {},
): { client: SecureChannel; server: SecureChannel } {
  const client = new FakeChannel(serverCard);
  const server = new FakeChannel(clientCard);
  client.other = server;
  server.other = client;
  client.drop = options.dropFromClient;
  server.drop = options.dropFromServer;
  server.stalled = options.stallServer ?? false;
  return { client, server };
}
