/**
 * Friendships in the chat's model (SPEC §27.4), over an in-memory carrier the test
 * controls (deliveries in order per sender, held and released at will): forwarding lines
 * between two different friends (named author, not verified; limits), ending a
 * friendship with `bye` (both sides, history kept, a new request later), and requests
 * that cross (the lower identity ID's stands, whichever arrives first).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Bytes } from "../core/bytes.ts";
import { isMissiveError, MissiveError } from "../core/errors.ts";
import { getCryptoProvider } from "../crypto/mod.ts";
import type { Card } from "../keys/card.ts";
import type { Identity } from "../keys/identity.ts";
import {
  type Carrier,
  type CarrierSink,
  type ChatEvent,
  ChatModel,
  History,
  MAX_FORWARD,
  type Sender,
} from "../chat/mod.ts";
import { fixedIdentity } from "./helpers.ts";

/** Carriers joined in memory: one queue, delivered in order, optionally held. */
class Hub {
  readonly cards = new Map<string, Card>();
  readonly sinks = new Map<string, CarrierSink>();
  queue: { from: Sender; to: string; envelope: Bytes }[] = [];
  hold = false;
  /** Senders whose carrier is down: their sends fail with `network` (they stay queued). */
  readonly down = new Set<string>();
  #chain: Promise<void> = Promise.resolve();

  carrier(who: Identity): Carrier {
    const me = who.card.address;
    this.cards.set(me, who.card);
    return {
      name: "hub",
      start: (sink) => {
        this.sinks.set(me, sink);
        sink.link(true, "hub");
        return Promise.resolve();
      },
      lookup: (address) => {
        const card = this.cards.get(address);
        return card ? Promise.resolve(card) : Promise.reject(new Error(`no ${address}`));
      },
      send: (to, envelope) => {
        if (this.down.has(me)) return Promise.reject(new MissiveError("network", "hub: down"));
        this.queue.push({ from: { address: me, id: who.card.id }, to, envelope });
        if (!this.hold) this.pump();
        return Promise.resolve();
      },
      list: () => Promise.resolve([]),
      setPresence: () => Promise.resolve(),
      close: () => (this.sinks.delete(me), Promise.resolve()),
    };
  }

  /** Delivers what is queued (only `from`'s when given), in order, one at a time. */
  pump(from?: string): Promise<void> {
    this.#chain = this.#chain.then(async () => {
      for (;;) {
        const i = this.queue.findIndex((m) => from === undefined || m.from.address === from);
        if (i < 0) return;
        const [m] = this.queue.splice(i, 1);
        await this.sinks.get(m.to)?.envelope(m.from, m.envelope);
      }
    });
    return this.#chain;
  }
}

interface Running {
  model: ChatModel;
  events: ChatEvent[];
}

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 15_000) {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function open(hub: Hub, who: Identity): Promise<Running> {
  const crypto = await getCryptoProvider();
  const history = await History.open(crypto, who, ":memory:");
  const model = await ChatModel.open(who, history, hub.carrier(who), { crypto, retryMs: 50 });
  const events: ChatEvent[] = [];
  model.on((e) => events.push(e));
  await model.start();
  return { model, events };
}

async function befriend(hub: Hub, a: Running, b: Running) {
  const to = b.model.identity.card.address;
  const from = a.model.identity.card.address;
  await a.model.request(to);
  await until(
    `${to} sees the request`,
    () => b.events.some((e) => e.type === "request" && e.address === from),
  );
  await b.model.accept(from);
  await until(
    `${from} is accepted`,
    () => a.events.some((e) => e.type === "accepted" && e.address === to),
  );
  await hub.pump();
}

const usage = (pattern: RegExp) => (e: unknown) =>
  isMissiveError(e, "usage") && pattern.test(e.message);

const stateOf = async (r: Running, address: string) =>
  (await r.model.friends()).find((f) => f.address === address)?.state;

test("forward: alice forwards her last lines with bob to carol; carol sees who wrote them, unverified", async () => {
  const hub = new Hub();
  const a = await open(hub, await fixedIdentity("alice@example.org", 10));
  const b = await open(hub, await fixedIdentity("bob@example.org", 20));
  const c = await open(hub, await fixedIdentity("carol@example.org", 30));
  const d = await open(hub, await fixedIdentity("dave@example.org", 40));
  try {
    await befriend(hub, a, b);
    await befriend(hub, a, c);
    await a.model.send("bob@example.org", "one from alice");
    await b.model.send("alice@example.org", "two from bob");
    await until("alice has bob's line", () => a.model.lines("bob@example.org").length === 2);
    await a.model.send("bob@example.org", "three from alice");

    assert.equal(await a.model.forward("bob@example.org", "carol@example.org", 2), 2);
    await until(
      "carol has both",
      () => c.model.lines("alice@example.org").filter((l) => l.forwardedBy).length === 2,
    );
    const got = c.model.lines("alice@example.org").filter((l) => l.forwardedBy);
    assert.deepEqual(
      got.map((l) => [l.author, l.text, l.forwardedBy, l.verified, l.direction]),
      [
        ["bob@example.org", "two from bob", "alice@example.org", false, "in"],
        ["alice@example.org", "three from alice", "alice@example.org", false, "in"],
      ],
    );
    // The original time travels; carol's export says the same.
    const bobLine = a.model.lines("bob@example.org").find((l) => l.text === "two from bob")!;
    assert.equal(got[0].time, bobLine.time);
    const exported = c.model.exportConversation("alice@example.org") as {
      lines: { author: string; verified: boolean; forwardedBy?: string }[];
    };
    assert.ok(exported.lines.every((l) => l.forwardedBy === "alice@example.org" && !l.verified));
    // Alice's own copies are marked forwarded too.
    assert.equal(a.model.lines("carol@example.org").filter((l) => l.forwardedBy).length, 2);

    // Limits: N is bounded; from or to a non-friend is refused, with what they are.
    for (const n of [0, -1, MAX_FORWARD + 1, 1.5, NaN]) {
      await assert.rejects(
        a.model.forward("bob@example.org", "carol@example.org", n),
        usage(/N is 1\.\.100/),
      );
    }
    await assert.rejects(
      a.model.forward("dave@example.org", "carol@example.org", 1),
      usage(/cannot forward from dave@example\.org: not a friend \(no request either way\)/),
    );
    await assert.rejects(
      a.model.forward("bob@example.org", "dave@example.org", 1),
      usage(/cannot forward to dave@example\.org: not a friend/),
    );
    await d.model.request("alice@example.org", "hi");
    await until("dave's request", () => a.events.some((e) => e.type === "request"));
    await assert.rejects(
      a.model.forward("bob@example.org", "dave@example.org", 1),
      usage(/cannot forward to dave@example\.org: not a friend \(request-received\)/),
    );
    await assert.rejects(
      a.model.forward("dave@example.org", "bob@example.org", 1),
      usage(/cannot forward from dave@example\.org: not a friend \(request-received\)/),
    );
    // Nothing went to dave, nor anything more to carol.
    assert.equal(d.model.lines().length, 0);
    assert.equal(c.model.lines("alice@example.org").length, 2);
  } finally {
    for (const r of [a, b, c, d]) await r.model.close();
  }
});

test("unfriend: bye ends the friendship on both sides, the lines stay, a new request works", async () => {
  const hub = new Hub();
  const a = await open(hub, await fixedIdentity("alice@example.org", 10));
  const b = await open(hub, await fixedIdentity("bob@example.org", 20));
  try {
    await befriend(hub, a, b);
    await a.model.send("bob@example.org", "before");
    await until("bob has it", () => b.model.lines("alice@example.org").length === 1);
    await hub.pump();

    await a.model.unfriend("bob@example.org", "moving on");
    await until("bob is told", () => b.events.some((e) => e.type === "ended"));
    assert.deepEqual(a.events.find((e) => e.type === "ended"), {
      type: "ended",
      address: "bob@example.org",
      by: "you",
      reason: "moving on",
    });
    assert.deepEqual(b.events.find((e) => e.type === "ended"), {
      type: "ended",
      address: "alice@example.org",
      by: "them",
      reason: "moving on",
    });
    assert.equal(await stateOf(a, "bob@example.org"), "ended");
    assert.equal(await stateOf(b, "alice@example.org"), "ended");
    // History kept (SPEC §27.4): both still have the line.
    assert.deepEqual(a.model.lines("bob@example.org").map((l) => l.text), ["before"]);
    assert.deepEqual(b.model.lines("alice@example.org").map((l) => l.text), ["before"]);
    // No more lines either way; unfriending again is refused.
    await assert.rejects(a.model.send("bob@example.org", "x"), usage(/ended, not friend/));
    await assert.rejects(b.model.send("alice@example.org", "x"), usage(/ended, not friend/));
    await assert.rejects(
      a.model.unfriend("bob@example.org"),
      usage(/cannot unfriend bob@example\.org: not a friend \(ended\)/),
    );
    await assert.rejects(a.model.unfriend("nobody@example.org"), usage(/not a friend/));

    // Either may ask again: a new conversation.
    const before = a.events.length;
    await b.model.request("alice@example.org", "again?");
    await until("alice sees it", () => a.events.slice(before).some((e) => e.type === "request"));
    await a.model.accept("bob@example.org");
    await until(
      "bob is accepted",
      () => b.events.some((e) => e.type === "accepted" && e.by === "them"),
    );
    await b.model.send("alice@example.org", "after");
    await until(
      "alice reads after",
      () => a.model.lines("bob@example.org").some((l) => l.text === "after" && l.verified),
    );
    assert.deepEqual(a.model.lines("bob@example.org").map((l) => l.text), ["before", "after"]);
  } finally {
    for (const r of [a, b]) await r.model.close();
  }
});

test("unfriend: what waited for the ex-friend is dropped, its lines marked failed", async () => {
  const hub = new Hub();
  const a = await open(hub, await fixedIdentity("alice@example.org", 10));
  const b = await open(hub, await fixedIdentity("bob@example.org", 20));
  try {
    await befriend(hub, a, b);
    hub.down.add("bob@example.org");
    const stuck = await b.model.send("alice@example.org", "typed while down");
    assert.equal(stuck.state, "queued");
    assert.equal(b.model.queued, 1);
    await a.model.unfriend("bob@example.org");
    await until("bob is told", () => b.events.some((e) => e.type === "ended"));
    assert.equal(b.model.queued, 0);
    assert.equal(stuck.state, "failed");
    hub.down.delete("bob@example.org");
    await new Promise((r) => setTimeout(r, 150)); // a few retry periods: nothing goes
    await hub.pump();
    assert.ok(!a.model.lines("bob@example.org").some((l) => l.text === "typed while down"));
    assert.deepEqual(a.events.filter((e) => e.type === "problem"), []);
    await assert.rejects(b.model.send("alice@example.org", "x"), usage(/ended/));
  } finally {
    for (const r of [a, b]) await r.model.close();
  }
});

for (const first of ["lower", "higher"] as const) {
  test(`crossing requests: the lower identity ID's stands (the ${first} ID's arrives first)`, async () => {
    const hub = new Hub();
    const x = await open(hub, await fixedIdentity("alice@example.org", 10));
    const y = await open(hub, await fixedIdentity("bob@example.org", 20));
    const hex = (r: Running) => Buffer.from(r.model.identity.card.id).toString("hex");
    const [low, high] = hex(x) < hex(y) ? [x, y] : [y, x];
    const lowAddr = low.model.identity.card.address;
    const highAddr = high.model.identity.card.address;
    try {
      hub.hold = true;
      await Promise.all([low.model.request(highAddr, "hi"), high.model.request(lowAddr, "hey")]);
      assert.equal(await stateOf(low, highAddr), "request-sent");
      assert.equal(await stateOf(high, lowAddr), "request-sent");
      await hub.pump(first === "lower" ? lowAddr : highAddr);
      hub.hold = false;
      await hub.pump();
      await until("both friends", async () =>
        (await stateOf(low, highAddr)) === "friend" &&
        (await stateOf(high, lowAddr)) === "friend");
      // Nobody was asked to answer: the higher side accepted the lower's request itself.
      for (const r of [low, high]) assert.ok(!r.events.some((e) => e.type === "request"));
      assert.ok(high.events.some((e) => e.type === "accepted" && e.by === "them"));
      assert.ok(low.events.some((e) => e.type === "accepted" && e.by === "them"));
      assert.ok(
        low.events.some((e) => e.type === "notice" && /asked you too/.test(e.text)),
      );
      await low.model.send(highAddr, "from low");
      await high.model.send(lowAddr, "from high");
      await until(
        "lines both ways",
        () =>
          high.model.lines(lowAddr).some((l) => l.text === "from low" && l.verified) &&
          low.model.lines(highAddr).some((l) => l.text === "from high" && l.verified),
      );
      const problems = [...low.events, ...high.events].filter((e) => e.type === "problem");
      assert.deepEqual(problems, []);
    } finally {
      for (const r of [x, y]) await r.model.close();
    }
  });
}

test("asking back someone who asked you accepts their request", async () => {
  const hub = new Hub();
  const a = await open(hub, await fixedIdentity("alice@example.org", 10));
  const b = await open(hub, await fixedIdentity("bob@example.org", 20));
  try {
    await a.model.request("bob@example.org");
    await until("bob sees it", () => b.events.some((e) => e.type === "request"));
    await b.model.request("alice@example.org");
    await until(
      "alice is accepted",
      () => a.events.some((e) => e.type === "accepted" && e.by === "them"),
    );
    assert.equal(await stateOf(b, "alice@example.org"), "friend");
    assert.equal(await stateOf(a, "bob@example.org"), "friend");
  } finally {
    for (const r of [a, b]) await r.model.close();
  }
});
