/**
 * The relay library (SPEC §23) over fake channels (tests/relay_channel_fake.ts): the
 * directory, routing to online and offline recipients, ordering, quota and size caps,
 * acknowledgements and redelivery, durability across a restart, the client's outgoing
 * queue and capability negotiation.
 * @module
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fromUtf8, randomBytes, toHex, utf8 } from "../core/bytes.ts";
import { nobleProvider } from "../crypto/mod.ts";
import { isMissiveError } from "../core/errors.ts";
import { createIdentity, type Identity } from "../keys/identity.ts";
import { defaultRegistry, encodeEnvelope } from "../mod.ts";
import { chooseProtocols } from "../relay/capabilities.ts";
import { RelayClient, RelayRefusal } from "../relay/client.ts";
import {
  flushOutgoing,
  handleDeliveries,
  queueText,
  type ReceivedMessage,
  resendOutgoing,
  sealText,
} from "../relay/mailbox.ts";
import { decodeRelayMessages, encodeRequest } from "../relay/protocol.ts";
import { OutgoingQueue, retryDelay } from "../queue/outgoing.ts";
import { SeenMessages } from "../queue/seen.ts";
import { fixedIdentity, tempDir } from "./helpers.ts";
import { fakeChannelPair } from "./relay_channel_fake.ts";
import { person, startRelay } from "./relay_harness.ts";

const registry = defaultRegistry();

async function refusal(p: Promise<unknown>, status: string): Promise<RelayRefusal> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof RelayRefusal, `expected a RelayRefusal, got ${e}`);
    assert.equal(e.status, status, e.message);
    return e;
  }
  assert.fail(`expected refusal ${status}`);
}

const textOf = (m: ReceivedMessage) => (m.opened.message as { text: string }).text;

/** Receives exactly `n` messages (handler sees each new one once). */
async function receiveTexts(
  client: RelayClient,
  me: Identity,
  seen: SeenMessages,
  n: number,
): Promise<ReceivedMessage[]> {
  const got: ReceivedMessage[] = [];
  await client.receive();
  await handleDeliveries(client, { registry, identity: me, seen, limit: n }, (m) => {
    got.push(m);
  });
  return got;
}

async function send(client: RelayClient, from: Identity, to: Identity, text: string) {
  const { envelope } = await sealText(registry, from, to.card, text);
  return await client.send(to.card.address, envelope);
}

describe("relay directory", () => {
  it("registers, refuses collisions on address and on ID, and closed registration", async () => {
    const relay = await startRelay();
    const alice = await person("alice");
    const a = relay.connect(alice);
    assert.equal(toHex(await a.register()), toHex(alice.card.id));
    assert.equal(toHex(await a.register()), toHex(alice.card.id), "re-registering is fine");
    const impostor = await person("mallory", "alice@example.org");
    const e = await refusal(relay.connect(impostor).register(), "collision");
    assert.equal(e.code, "refused");
    assert.match(e.message, /alice@example\.org is already registered with another key/);
    const sameKeys = await createIdentity(nobleProvider, {
      address: "alias@example.org",
      stps: alice.card.stps,
      amps: alice.card.amps,
      created: alice.card.created,
      signingSeed: alice.signingSeed,
      agreementKey: alice.agreementKey,
      hybridSeed: alice.hybridSeed, // the ID covers all three keys (SPEC §3.4)
    });
    const e2 = await refusal(relay.connect(sameKeys).register(), "collision");
    assert.match(e2.message, /ID [0-9a-f]{32} is already registered to alice@example\.org/);
    await relay.close();

    const closed = await startRelay({ openRegistration: false, users: [alice.card] });
    assert.equal(toHex(await closed.connect(alice).register()), toHex(alice.card.id));
    const bob = await person("bob");
    assert.equal(closed.server.authorize(bob.card), false);
    await refusal(closed.connect(bob).register(), "forbidden");
    await closed.close();
  });

  it("looks up by address and by ID, and needs registration first", async () => {
    const relay = await startRelay();
    const [alice, bob] = [await person("alice"), await person("bob")];
    const a = relay.connect(alice);
    await refusal(a.lookup("bob@example.org"), "not-registered");
    await a.register();
    await relay.connect(bob).register();
    const byAddress = await a.lookup("Bob@Example.org");
    assert.equal(byAddress.card.address, "bob@example.org");
    assert.equal(byAddress.presence, "online");
    const byId = await a.lookup(bob.card.id);
    assert.equal(toHex(byId.card.bytes), toHex(bob.card.bytes));
    const e = await refusal(a.lookup("nobody@example.org"), "not-found");
    assert.match(e.message, /no card registered for nobody@example\.org/);
    await relay.close();
  });

  it("lists who is online with presence; invisible users are not listed", async () => {
    const relay = await startRelay();
    const [alice, bob, carol] = [await person("alice"), await person("bob"), await person("carol")];
    const a = relay.connect(alice);
    const b = relay.connect(bob);
    const c = relay.connect(carol);
    for (const x of [a, b, c]) await x.register();
    await b.setPresence("away", "back at 3");
    await c.setPresence("invisible");
    assert.deepEqual(
      (await a.list()).map((e) => [e.address, e.status, e.note]),
      [["alice@example.org", "online", undefined], ["bob@example.org", "away", "back at 3"]],
    );
    assert.equal((await a.lookup("carol@example.org")).presence, undefined);
    await b.close();
    await new Promise((r) => setTimeout(r, 0));
    assert.deepEqual((await a.list()).map((e) => e.address), ["alice@example.org"]);
    assert.equal((await a.lookup("bob@example.org")).presence, undefined, "offline");
    await relay.close();
  });
});

describe("relay routing", () => {
  it("delivers at once to a connected recipient, verified as from the sender", async () => {
    const relay = await startRelay();
    const [alice, bob] = [await person("alice"), await person("bob")];
    const { dir, cleanup } = tempDir();
    const seen = new SeenMessages(join(dir, "seen.db"));
    const a = relay.connect(alice);
    const b = relay.connect(bob);
    await a.register();
    await b.register();
    assert.equal(await b.receive(), 0);
    const receiving = handleDeliveries(b, { registry, identity: bob, seen, limit: 1 }, () => {});
    const { envelope, protocols } = await sealText(registry, alice, bob.card, "hi bob");
    assert.equal(protocols, "simple/v3 + text/v2");
    await a.send("bob@example.org", envelope);
    assert.deepEqual(await receiving, {
      shown: 1,
      duplicates: 0,
      rejected: 0,
      receipts: 0,
      unacknowledged: 0,
    });
    assert.equal(relay.store.total, 0, "acknowledged, so deleted");
    const stats = relay.server.stats();
    assert.equal(stats.accepted, 1);
    assert.equal(stats.delivered, 1);
    assert.equal(stats.acknowledged, 1);
    seen.close();
    cleanup();
    await relay.close();
  });

  it("queues for an offline recipient and delivers in order on connect", async () => {
    const relay = await startRelay();
    const [alice, bob] = [await person("alice"), await person("bob")];
    const b0 = relay.connect(bob);
    await b0.register();
    await b0.close();
    const a = relay.connect(alice);
    await a.register();
    const mids = [];
    for (let i = 1; i <= 5; i++) mids.push(await send(a, alice, bob, `message ${i}`));
    assert.deepEqual(mids, [...mids].sort((x, y) => x - y));
    assert.equal(await relay.store.queued(bob.card.id), 5);
    const { dir, cleanup } = tempDir();
    const seen = new SeenMessages(join(dir, "seen.db"));
    const b = relay.connect(bob);
    const got = await receiveTexts(b, bob, seen, 5);
    assert.deepEqual(got.map(textOf), [1, 2, 3, 4, 5].map((i) => `message ${i}`));
    assert.ok(got.every((m) => m.verified && m.opened.sender?.address === "alice@example.org"));
    assert.deepEqual(got.map((m) => m.delivery.message), mids);
    seen.close();
    cleanup();
    await relay.close();
  });

  it("stops waiting for deliveries after idleMs", async () => {
    const relay = await startRelay();
    const [alice, bob] = [await person("alice"), await person("bob")];
    const a = relay.connect(alice);
    const b = relay.connect(bob);
    await a.register();
    await b.register();
    await send(a, alice, bob, "just one");
    const { dir, cleanup } = tempDir();
    const seen = new SeenMessages(join(dir, "seen.db"));
    await b.receive();
    const counts = await handleDeliveries(
      b,
      { registry, identity: bob, seen, limit: 5, idleMs: 50 },
      () => {},
    );
    assert.equal(counts.shown, 1);
    seen.close();
    cleanup();
    await relay.close();
  });

  it("refuses unknown recipients, oversize messages, non-envelopes and over-quota", async () => {
    // Room for a small message with a hybrid card attached (~1.8 KB), not for the big one.
    const relay = await startRelay({ maxMessage: 4096, quota: 2 });
    const [alice, bob] = [await person("alice"), await person("bob")];
    await relay.connect(bob).register();
    const a = relay.connect(alice);
    await a.register();
    const small = (await sealText(registry, alice, bob.card, "x")).envelope;
    const e1 = await refusal(a.send("nobody@example.org", small), "unknown-recipient");
    assert.match(e1.message, /no user nobody@example\.org is registered here/);
    // Random text: text v2 compresses, so repeated letters would stay small.
    const big = (await sealText(registry, alice, bob.card, toHex(randomBytes(4000)))).envelope;
    const e2 = await refusal(a.send("bob@example.org", big), "too-large");
    assert.equal(e2.code, "too-large");
    assert.match(e2.message, /exceeds this relay's cap of 4096/);
    await refusal(a.send("bob@example.org", utf8("not an envelope")), "malformed");
    await a.send("bob@example.org", small);
    await send(a, alice, bob, "two");
    const e3 = await refusal(send(a, alice, bob, "three"), "quota");
    assert.match(e3.message, /2 messages waiting/);
    assert.equal(relay.server.stats().refused, 4);
    await relay.close();
  });

  it("treats a resend of the same envelope as the same message", async () => {
    const relay = await startRelay();
    const [alice, bob] = [await person("alice"), await person("bob")];
    await relay.connect(bob).register();
    const a = relay.connect(alice);
    await a.register();
    const { envelope } = await sealText(registry, alice, bob.card, "once");
    const m1 = await a.send(bob.card.id, envelope);
    const m2 = await a.send("bob@example.org", envelope);
    assert.equal(m1, m2);
    assert.equal(await relay.store.queued(bob.card.id), 1);
    await relay.close();
  });
});

describe("relay acknowledgements and durability", () => {
  it("a lost acknowledgement leads to redelivery, shown once", async () => {
    const relay = await startRelay();
    const [alice, bob] = [await person("alice"), await person("bob")];
    const { dir, cleanup } = tempDir();
    const seenPath = join(dir, "seen.db");
    await relay.connect(bob).register();
    const a = relay.connect(alice);
    await a.register();
    await send(a, alice, bob, "only once");
    const isAck = (bytes: Uint8Array) =>
      decodeRelayMessages(bytes).some((m) => m.kind === "request" && m.request.op === "ack");
    const shown: string[] = [];
    const seen1 = new SeenMessages(seenPath);
    const b1 = relay.connect(bob, { dropFromClient: isAck, timeoutMs: 100 });
    await b1.receive();
    const first = await handleDeliveries(
      b1,
      { registry, identity: bob, seen: seen1, limit: 1 },
      (m) => void shown.push(textOf(m)),
    );
    assert.equal(first.unacknowledged, 1, "the acknowledgement was dropped");
    await b1.close();
    seen1.close();
    assert.equal(await relay.store.queued(bob.card.id), 1, "still queued: no receipt named it");

    const seen2 = new SeenMessages(seenPath);
    const b2 = relay.connect(bob);
    await b2.receive();
    const second = await handleDeliveries(
      b2,
      { registry, identity: bob, seen: seen2, limit: 1 },
      (m) => void shown.push(textOf(m)),
    );
    assert.deepEqual(second, {
      shown: 0,
      duplicates: 1,
      rejected: 0,
      receipts: 0,
      unacknowledged: 0,
    });
    assert.deepEqual(shown, ["only once"]);
    assert.equal(await relay.store.queued(bob.card.id), 0);
    seen2.close();
    cleanup();
    await relay.close();
  });

  it("acknowledges undecryptable deliveries with a receipt status and drops them", async () => {
    const relay = await startRelay();
    const [alice, bob, carol] = [await person("alice"), await person("bob"), await person("carol")];
    await relay.connect(bob).register();
    const a = relay.connect(alice);
    await a.register();
    // Sealed for carol, sent to bob: bob is not a recipient.
    const { envelope } = await sealText(registry, alice, carol.card, "for carol");
    await a.send("bob@example.org", envelope);
    const { dir, cleanup } = tempDir();
    const seen = new SeenMessages(join(dir, "seen.db"));
    const b = relay.connect(bob);
    await b.receive();
    const rejected: string[] = [];
    const counts = await handleDeliveries(b, {
      registry,
      identity: bob,
      seen,
      limit: 1,
      onRejected: (_d, e) => rejected.push(e.code),
    }, () => assert.fail("must not be shown"));
    assert.equal(counts.rejected, 1);
    assert.deepEqual(rejected, ["not-a-recipient"]);
    assert.ok(relay.events.some((e) => e.event === "ack" && e.receipt === "undecryptable"));
    seen.close();
    cleanup();
    await relay.close();
  });

  it("keeps queued messages across a restart, with no plaintext in the database", async () => {
    const { dir, cleanup } = tempDir();
    const dbPath = join(dir, "relay.db");
    const [alice, bob] = [await person("alice"), await person("bob")];
    const first = await startRelay({ dbPath });
    await first.connect(bob).register();
    const a = first.connect(alice);
    await a.register();
    const secret = "the eagle lands at midnight";
    for (let i = 1; i <= 3; i++) await send(a, alice, bob, `${secret} #${i}`);
    // No graceful close: what was acknowledged to the sender must already be on disk.
    const files = ["relay.db", "relay.db-wal"].map((f) => join(dir, f));
    const raw = files.map((f) => {
      try {
        return readFileSync(f);
      } catch {
        return new Uint8Array();
      }
    });
    for (const bytes of raw) {
      assert.equal(Buffer.from(bytes).includes(Buffer.from(secret)), false, "plaintext on disk");
    }
    const second = await startRelay({ dbPath });
    assert.equal(await second.store.queued(bob.card.id), 3);
    const seen = new SeenMessages(join(dir, "seen.db"));
    const got = await receiveTexts(second.connect(bob), bob, seen, 3);
    assert.deepEqual(got.map(textOf), [1, 2, 3].map((i) => `${secret} #${i}`));
    seen.close();
    await second.close();
    await first.close();
    cleanup();
  });

  it("drops a client whose answers are not being taken, after 1024 of them", async () => {
    const relay = await startRelay();
    const alice = await person("alice");
    await relay.connect(alice).register();
    const pair = fakeChannelPair(alice.card, relay.relay.card, { stallServer: true });
    const served = relay.server.serve(pair.server);
    for (let i = 1; i <= 1100; i++) {
      await pair.client.send(encodeRequest(i, { op: "lookup", target: "nobody@example.org" }));
    }
    await served;
    const drop = relay.events.find((e) => e.event === "drop");
    assert.equal(drop?.status, "over-budget");
    assert.match(String(drop?.reason), /1024 answers not acknowledged/);
    assert.equal(relay.server.stats().dropped, 1);
    await pair.client.close();
    await relay.close();
  });

  it("answers requests still in flight before a graceful close", async () => {
    const relay = await startRelay();
    const [alice, bob] = [await person("alice"), await person("bob")];
    await relay.connect(bob).register();
    const a = relay.connect(alice);
    await a.register();
    const { envelope } = await sealText(registry, alice, bob.card, "in flight");
    const sent = a.send("bob@example.org", envelope);
    await new Promise((r) => setTimeout(r, 0));
    await relay.server.close();
    assert.equal(typeof await sent, "number");
    assert.equal(relay.events.at(-1)?.event, "shutdown");
    await relay.close();
  });
});

describe("relay client outgoing queue", () => {
  it("retries with back-off while the relay is down and sends when it is back", async () => {
    const { dir, cleanup } = tempDir();
    const queue = new OutgoingQueue(join(dir, "out.db"));
    const [alice, bob] = [await person("alice"), await person("bob")];
    const { id, protocols } = await queueText(queue, registry, alice, bob.card, "typed offline");
    assert.equal(protocols, "simple/v3 + text/v2");
    const relay = await startRelay();
    await relay.connect(bob).register();
    // A connection the relay side has dropped stands for a relay that went down.
    const pair = fakeChannelPair(alice.card, relay.relay.card);
    await pair.server.close();
    const down = new RelayClient(pair.client);
    const t0 = Date.now() + 1000;
    const r1 = await flushOutgoing(down, queue, t0);
    assert.equal(r1.retry.length, 1);
    const m = queue.get(id)!;
    assert.equal(m.attempts, 1);
    assert.equal(m.nextAttempt, t0 + retryDelay(1));
    assert.equal(queue.due(t0 + 1).length, 0, "not due before the back-off");
    const a = relay.connect(alice);
    await a.register();
    const r2 = await flushOutgoing(a, queue, t0 + retryDelay(1));
    assert.equal(r2.sent.length, 1);
    assert.equal(queue.all().length, 0, "deleted once accepted");
    assert.equal(await relay.store.queued(bob.card.id), 1);
    await down.close();
    queue.close();
    cleanup();
    await relay.close();
  });

  it("marks permanent refusals failed; a resend reseals with a fresh nonce", async () => {
    const { dir, cleanup } = tempDir();
    const queue = new OutgoingQueue(join(dir, "out.db"));
    const [alice, bob] = [await person("alice"), await person("bob")];
    const relay = await startRelay();
    const a = relay.connect(alice);
    await a.register();
    const { id, envelope } = await queueText(queue, registry, alice, bob.card, "too early");
    const r1 = await flushOutgoing(a, queue);
    assert.equal(r1.failed.length, 1);
    assert.equal(r1.failed[0].error.code, "refused");
    assert.equal(queue.get(id)!.state, "failed");
    assert.equal(queue.due(Date.now() + 10 * retryDelay(20)).length, 0, "failed is not retried");
    await relay.connect(bob).register();
    const resealed = await resendOutgoing(queue, id, registry, alice);
    assert.notEqual(toHex(resealed.envelope), toHex(envelope));
    const r2 = await flushOutgoing(a, queue);
    assert.equal(r2.sent.length, 1);
    const { dir: d2, cleanup: c2 } = tempDir();
    const seen = new SeenMessages(join(d2, "seen.db"));
    const got = await receiveTexts(relay.connect(bob), bob, seen, 1);
    assert.equal(textOf(got[0]), "too early");
    seen.close();
    c2();
    queue.close();
    cleanup();
    await relay.close();
  });
});

describe("relay capabilities", () => {
  it("picks the best pair both sides support and says when none matches", async () => {
    const make = (stps: [number, number][], amps: [number, number][]) =>
      createIdentity(nobleProvider, { address: "old@example.org", stps, amps, created: 1 });
    const full = await fixedIdentity("new@example.org", 90);
    assert.equal(chooseProtocols(registry, full.card).label, "simple/v3 + text/v2");
    const old = await make([[2, 1], [4, 1]], [[1, 1]]);
    assert.equal(chooseProtocols(registry, old.card).label, "simple/v1 + text/v1");
    const alien = await make([[1000, 1]], [[1, 1]]);
    assert.throws(
      () => chooseProtocols(registry, alien.card),
      (e) => isMissiveError(e, "unknown-protocol") && /lists 1000\/1/.test(e.message),
    );
    const mute = await make([[2, 2]], [[2, 1]]);
    assert.throws(() => chooseProtocols(registry, mute.card), /reads no text AMP/);
  });
});

describe("relay exactly-once (small)", () => {
  it("every message reaches its recipient exactly once, half of them offline at first", async () => {
    const relay = await startRelay();
    const users: Identity[] = [];
    for (let i = 0; i < 12; i++) users.push(await person(`user${i}`));
    const clients = users.map((u) => relay.connect(u));
    for (const c of clients) await c.register();
    const online = clients.slice(0, 6);
    for (const c of clients.slice(6)) await c.close();
    const received = new Map<number, string[]>(users.map((_, i) => [i, []]));
    const listeners = online.map(async (c, i) => {
      await c.receive();
      for await (const d of c.deliveries()) {
        received.get(i)!.push(fromUtf8(d.envelope.subarray(d.envelope.length - 12)));
        await c.ack(d.message);
      }
    });
    const expected = new Map<number, string[]>(users.map((_, i) => [i, []]));
    let n = 0;
    for (let round = 0; round < 20; round++) {
      await Promise.all(online.map((c, i) => {
        const to = (i * 7 + round * 5) % users.length;
        const tag = String(n++).padStart(12, "0");
        expected.get(to)!.push(tag);
        // The relay routes opaque envelopes: a valid envelope header around a tag.
        const envelope = encodeEnvelope({
          protocolType: 7,
          protocolVersion: 1,
          payload: utf8(tag),
        });
        return c.send(users[to].card.address, envelope);
      }));
    }
    const late = clients.slice(6).map((_, k) => relay.connect(users[6 + k]));
    await Promise.all(late.map(async (c, k) => {
      const waiting = await c.receive();
      assert.equal(waiting, expected.get(6 + k)!.length);
      let got = 0;
      if (waiting === 0) return;
      for await (const d of c.deliveries()) {
        received.get(6 + k)!.push(fromUtf8(d.envelope.subarray(d.envelope.length - 12)));
        await c.ack(d.message);
        if (++got === waiting) break;
      }
    }));
    for (let wait = 0; wait < 100 && relay.store.total > 0; wait++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(relay.store.total, 0);
    for (const [i, tags] of expected) assert.deepEqual(received.get(i), tags, `user${i}`);
    await relay.close();
    await Promise.allSettled(listeners);
  });
});
