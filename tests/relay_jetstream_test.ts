/**
 * The relay on the NATS JetStream store (docs/SCALE.md), in process: two relay nodes
 * (two RelayServers, each with its own JetStreamStore) on a 3-node cluster this test
 * starts on 127.0.0.1 — collisions across nodes, lookups of cards registered through the
 * other node, delivery across nodes (queued and live), de-duplicated retries, the
 * per-sender quota as a per-subject limit, one-time prekeys handed out once under
 * concurrent fetches, presence across nodes. Needs `nats-server`
 * (scripts/install-peers.sh); without it the suite is skipped, except under CI=true.
 * @module
 */
import assert from "node:assert/strict";
import process from "node:process";
import { after, before, describe, it } from "node:test";
import { fromUtf8, utf8 } from "../core/bytes.ts";
import { getCryptoProvider } from "../crypto/mod.ts";
import { encodeEnvelope } from "../envelope/mod.ts";
import type { Identity } from "../keys/identity.ts";
import { RelayClient, RelayRefusal } from "../relay/client.ts";
import { type JetStreamStore, openJetStreamStore } from "../relay/jetstream/mod.ts";
import { RelayServer } from "../relay/server.ts";
import { PrekeyKeyring } from "../stp/ratchet/mod.ts";
import { fixedIdentity } from "./helpers.ts";
import { haveNatsServer, type NatsCluster, startNatsCluster } from "./nats_cluster.ts";
import { fakeChannelPair } from "./relay_channel_fake.ts";
import { person } from "./relay_harness.ts";

const present = haveNatsServer();
const skip = present || process.env.CI === "true"
  ? false
  : "nats-server is not installed (bash scripts/install-peers.sh installs it)";

interface Node {
  store: JetStreamStore;
  server: RelayServer;
  clients: RelayClient[];
}

let relayId: Identity;

async function startNode(cluster: NatsCluster, name: string, quota = 1000): Promise<Node> {
  relayId ??= await fixedIdentity("relay@example.org", 200);
  const store = await openJetStreamStore({
    servers: cluster.nodes.map((n) => n.url),
    node: name,
    quota,
    presenceTtlMs: 3000,
  });
  const server = new RelayServer({
    store,
    crypto: await getCryptoProvider(),
    openRegistration: true,
    registrationsPerMinute: 0,
  });
  await server.start();
  return { store, server, clients: [] };
}

function connect(node: Node, who: Identity): RelayClient {
  const pair = fakeChannelPair(who.card, relayId.card, {});
  void node.server.serve(pair.server);
  const client = new RelayClient(pair.client, { timeoutMs: 20_000 });
  node.clients.push(client);
  return client;
}

const envelope = (text: string) =>
  encodeEnvelope({ protocolType: 7, protocolVersion: 1, payload: utf8(text) });

/** Takes `n` deliveries, acknowledging each. */
async function take(client: RelayClient, n: number): Promise<string[]> {
  const got: string[] = [];
  if (n === 0) return got;
  for await (const d of client.deliveries()) {
    got.push(fromUtf8(d.envelope.subarray(d.envelope.length - 8)));
    await client.ack(d.message);
    if (got.length === n) break;
  }
  return got;
}

/** Polls `f` until true (bounded: 10 s), for what crosses nodes asynchronously. */
async function eventually(f: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await f())) {
    if (Date.now() > deadline) assert.fail(`not within 10 s: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("relay on a JetStream cluster (two relay nodes)", { skip }, () => {
  let cluster: NatsCluster;
  let one: Node, two: Node;

  before(async () => {
    cluster = await startNatsCluster(3);
    one = await startNode(cluster, "one", 3);
    two = await startNode(cluster, "two", 3);
  });

  after(async () => {
    for (const node of [one, two]) {
      if (!node) continue;
      await Promise.all(node.clients.map((c) => c.close().catch(() => {})));
      await node.server.close();
    }
    await cluster?.stop();
  });

  it("registration collides across nodes; lookups find cards registered elsewhere", async () => {
    const alice = await person("alice"), bob = await person("bob");
    const mallory = await person("mallory", "alice@example.org");
    assert.deepEqual(await connect(one, alice).register(), alice.card.id);
    assert.deepEqual(await connect(two, bob).register(), bob.card.id);
    const clash = await connect(two, mallory).register().catch((e) => e);
    assert.ok(clash instanceof RelayRefusal, String(clash));
    assert.equal(clash.status, "collision");
    // Through the other node, at once (the store is asked when the mirror lags).
    const found = await connect(two, bob).lookup("alice@example.org");
    assert.deepEqual(found.card.id, alice.card.id);
    // The same card again through the other node is no collision.
    assert.deepEqual(await connect(two, alice).register(), alice.card.id);
  });

  it("queued through one node, delivered through the other, in order, once", async () => {
    const alice = await person("alice"), bob = await person("bob");
    const a = connect(one, alice);
    const mids = [];
    for (const t of ["first--1", "second-2", "third--3"]) {
      mids.push(await a.send("bob@example.org", envelope(t)));
    }
    assert.ok(mids[0] < mids[1] && mids[1] < mids[2], `increasing IDs ${mids}`);
    // A retry of the same envelope is the same message (de-duplicated by message ID).
    assert.equal(await a.send("bob@example.org", envelope("third--3")), mids[2]);
    const b = connect(two, bob);
    assert.equal(await b.receive(), 3);
    assert.deepEqual(await take(b, 3), ["first--1", "second-2", "third--3"]);
    await eventually(async () => (await two.store.queued(bob.card.id)) === 0, "queue empty");
  });

  it("live delivery across nodes; the per-sender quota is the stream's, cluster-wide", async () => {
    const alice = await person("alice"), bob = await person("bob");
    const b = connect(two, bob);
    await b.receive();
    const a = connect(one, alice);
    await a.send("bob@example.org", envelope("live---1"));
    assert.deepEqual(await take(b, 1), ["live---1"]);
    await b.close();
    // Quota 3 per (sender, recipient): three wait, the fourth is refused on either node.
    for (const t of ["quota--1", "quota--2", "quota--3"]) {
      await a.send("bob@example.org", envelope(t));
    }
    const refused = await connect(two, alice).send("bob@example.org", envelope("quota--4"))
      .catch((e) => e);
    assert.ok(refused instanceof RelayRefusal, String(refused));
    assert.equal(refused.status, "quota");
    const b2 = connect(one, bob);
    assert.equal(await b2.receive(), 3);
    assert.deepEqual(await take(b2, 3), ["quota--1", "quota--2", "quota--3"]);
  });

  it("who is online on the other node is listed; a one-time prekey is handed out once", async () => {
    const alice = await person("alice"), bob = await person("bob");
    const carol = await person("carol");
    await connect(one, carol).register();
    const b = connect(two, bob);
    await b.setPresence("busy");
    const a = connect(one, alice);
    await eventually(
      async () =>
        (await a.list()).some((e) => e.address === "bob@example.org" && e.status === "busy"),
      "bob listed as busy through node one",
    );
    const keyring = await PrekeyKeyring.create(bob, { oneTime: 4 });
    assert.equal(await b.publishPrekeys(keyring.upload()), 4);
    // Four fetches at once, two through each node: four different one-time prekeys.
    const c = connect(two, carol);
    const fetched = await Promise.all([
      a.fetchPrekeys("bob@example.org"),
      c.fetchPrekeys("bob@example.org"),
      a.fetchPrekeys("bob@example.org"),
      c.fetchPrekeys("bob@example.org"),
    ]);
    const ids = fetched.map((f) => f.bundle.oneTimePrekey?.id);
    assert.equal(new Set(ids).size, 4, `distinct one-time prekeys: ${ids}`);
    assert.ok(ids.every((id) => id !== undefined));
    const fifth = await a.fetchPrekeys("bob@example.org");
    assert.equal(fifth.bundle.oneTimePrekey, undefined, "none left: the signed prekey alone");
    assert.equal(await one.store.prekeys.oneTimeCount(bob.card.id), 0);
  });
});
