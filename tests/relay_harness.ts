/**
 * Test harness for the relay library: a RelayServer over an in-memory or file store,
 * clients connected to it through the fake channel pair (tests/relay_channel_fake.ts),
 * and fixed identities.
 * @module
 */
import { getCryptoProvider } from "../crypto/mod.ts";
import type { Identity } from "../keys/identity.ts";
import { RelayClient } from "../relay/client.ts";
import {
  type LinkInfo,
  type RelayEvent,
  RelayServer,
  type RelayServerOptions,
} from "../relay/server.ts";
import { RelayStore } from "../relay/store.ts";
import { type DropRule, fakeChannelPair } from "./relay_channel_fake.ts";
import { fixedIdentity } from "./helpers.ts";

/** A running relay and a way to connect clients to it. */
export interface TestRelay {
  server: RelayServer;
  store: RelayStore;
  relay: Identity;
  events: RelayEvent[];
  connect(
    who: Identity,
    options?: {
      dropFromClient?: DropRule;
      dropFromServer?: DropRule;
      timeoutMs?: number;
      link?: LinkInfo;
    },
  ): RelayClient;
  close(): Promise<void>;
}

let relayIdentity: Identity | undefined;

/** Starts a relay on `dbPath` (default in memory), registration rate unlimited. */
export async function startRelay(
  options: Partial<Omit<RelayServerOptions, "store" | "crypto">> & { dbPath?: string } = {},
): Promise<TestRelay> {
  relayIdentity ??= await fixedIdentity("relay@example.org", 200);
  const relay = relayIdentity;
  const store = RelayStore.open(options.dbPath ?? ":memory:");
  const events: RelayEvent[] = [];
  const server = new RelayServer({
    openRegistration: true,
    // Tests register many cards from one place; the rate limit has its own tests.
    registrationsPerMinute: 0,
    ...options,
    store,
    crypto: await getCryptoProvider(),
    log: (e) => events.push(e),
  });
  await server.start();
  const clients: RelayClient[] = [];
  return {
    server,
    store,
    relay,
    events,
    connect(who, o = {}) {
      const pair = fakeChannelPair(who.card, relay.card, o);
      void server.serve(pair.server, o.link);
      const client = new RelayClient(pair.client, { timeoutMs: o.timeoutMs });
      clients.push(client);
      return client;
    },
    async close() {
      await Promise.all(clients.map((c) => c.close()));
      await server.close();
    },
  };
}

const people = new Map<string, Identity>();

/** alice, bob, carol, … with fixed keys (seed from the name's position). */
export async function person(name: string, address = `${name}@example.org`): Promise<Identity> {
  const key = `${name}/${address}`;
  let id = people.get(key);
  if (!id) {
    id = await fixedIdentity(address, 10 + 2 * people.size);
    people.set(key, id);
  }
  return id;
}
