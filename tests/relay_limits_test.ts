/**
 * The relay's limits one by one (SPEC §23.12), in process: the held frame of a
 * pre-authentication cap (framing and TCP), connection admission, and the RelayServer's
 * quotas, registration rate, budget, malformed-message and idle rules over fake
 * channels with an injected clock. The same attacks against a real `missive serve` are
 * in tests/hostile/.
 * @module
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { randomBytes } from "../core/bytes.ts";
import { isMissiveError } from "../core/errors.ts";
import { encodeEnvelope } from "../envelope/mod.ts";
import { Admission } from "../relay/_admission.ts";
import { LimitedLog, TokenBucket } from "../relay/_ratelimit.ts";
import { RelayRefusal } from "../relay/client.ts";
import { linkLimits, MAX_MALFORMED, relayLimits } from "../relay/limits.ts";
import { encodeResponse } from "../relay/protocol.ts";
import { encodeFrame, FrameReader, MAX_HELD } from "../transports/framing.ts";
import { connectTcp, TcpListener, type TcpTransport } from "../transports/tcp.ts";
import { fakeChannelPair } from "./relay_channel_fake.ts";
import { person, startRelay } from "./relay_harness.ts";

const envelope = (size = 32) =>
  encodeEnvelope({ protocolType: 7, protocolVersion: 1, payload: randomBytes(size) });

/** Fixed identities, made one after another (person() numbers them as it goes). */
async function people(...names: string[]) {
  const out = [];
  for (const n of names) out.push(await person(n));
  return out;
}

async function refused(p: Promise<unknown>, status: string): Promise<RelayRefusal> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof RelayRefusal, `expected a refusal, got ${e}`);
    assert.equal(e.status, status, e.message);
    return e;
  }
  return assert.fail(`expected ${status}`);
}

describe("held frames (a cap raised after authentication)", () => {
  const big = new Uint8Array(20_000).fill(7);

  it("holds a frame over the cap and reads it once the cap is raised", () => {
    const r = new FrameReader(8192, { holdOversize: true });
    const bytes = new Uint8Array([...encodeFrame(new Uint8Array([1])), ...encodeFrame(big)]);
    assert.deepEqual(r.push(bytes.subarray(0, 1000)), [new Uint8Array([1])]);
    assert.equal(r.held, 20_000);
    assert.deepEqual(r.push(bytes.subarray(1000)), [], "nothing is read while held");
    r.cap = 64 * 1024;
    assert.deepEqual(r.release(), [big]);
    assert.equal(r.held, undefined);
  });

  it("refuses a held frame still over the cap, and stays failed", () => {
    const r = new FrameReader(8192, { holdOversize: true });
    r.push(encodeFrame(big).subarray(0, 100));
    assert.throws(() => r.release(), (e) => isMissiveError(e, "too-large"));
    assert.throws(() => r.push(new Uint8Array([1])), (e) => isMissiveError(e, "too-large"));
  });

  it("keeps at most MAX_HELD bytes behind a held length, and a held end is too-large", () => {
    const r = new FrameReader(8192, { holdOversize: true });
    r.push(new Uint8Array([0, 0x10, 0, 0]));
    assert.throws(
      () => r.push(new Uint8Array(MAX_HELD + 1)),
      (e) => isMissiveError(e, "too-large"),
    );
    const s = new FrameReader(8192, { holdOversize: true });
    s.push(new Uint8Array([0, 0x10, 0, 0, 1, 2]));
    assert.throws(() => s.end(), (e) => isMissiveError(e, "too-large"));
  });

  it("without holdOversize, a length over the cap fails at once", () => {
    const r = new FrameReader(8192);
    assert.throws(
      () => r.push(new Uint8Array([0, 0x10, 0, 0])),
      (e) => isMissiveError(e, "too-large"),
    );
  });

  it("over TCP: a small frame, then a large one behind it, both read once the cap rises", async () => {
    const listener = await TcpListener.listen("127.0.0.1", 0, {
      maxFrame: 8192,
      queueBytes: 16 * 1024,
      holdOversize: true,
    });
    const client = await connectTcp("127.0.0.1", Number(listener.url.split(":").at(-1)));
    const next = listener.connections()[Symbol.asyncIterator]();
    const server = (await next.next()).value as TcpTransport;
    await client.send(new Uint8Array([1]));
    await client.send(big);
    const frames = server.frames()[Symbol.asyncIterator]();
    assert.deepEqual((await frames.next()).value, new Uint8Array([1]));
    server.setLimits({ maxFrame: 64 * 1024, queueBytes: 256 * 1024 });
    assert.deepEqual((await frames.next()).value, big);
    // And without the raise, the same order ends in too-large.
    const client2 = await connectTcp("127.0.0.1", Number(listener.url.split(":").at(-1)));
    const server2 = (await next.next()).value as TcpTransport;
    await client2.send(new Uint8Array([1]));
    await client2.send(big);
    const frames2 = server2.frames()[Symbol.asyncIterator]();
    assert.deepEqual((await frames2.next()).value, new Uint8Array([1]));
    await assert.rejects(frames2.next(), (e) => isMissiveError(e, "too-large"));
    // Cut, not closed: close() waits for the peer's FIN with the socket unref'd.
    for (const t of [server, server2, client, client2]) t.abort("test over");
    await listener.close();
  });
});

describe("admission (per address, pre-authentication pool, reserve)", () => {
  const limits = linkLimits({ maxConnections: 6, maxPreauth: 3, maxPerAddress: 2 });

  it("caps one address and evicts the oldest pre-authentication connection", () => {
    const a = new Admission(limits);
    const evicted: string[] = [];
    const arrive = (remote: string, name: string) => a.arrive(remote, () => evicted.push(name));
    assert.ok(arrive("10.0.0.1", "a1").admitted);
    assert.ok(arrive("10.0.0.1", "a2").admitted);
    const third = arrive("10.0.0.1", "a3");
    assert.ok(!third.admitted && /2 connections from 10\.0\.0\.1/.test(third.reason));
    assert.ok(arrive("10.0.0.2", "b1").admitted);
    assert.ok(arrive("10.0.0.3", "c1").admitted, "a full pool still takes a newcomer");
    assert.deepEqual(evicted, ["a1"]);
    assert.ok(arrive("10.0.0.1", "a4").admitted, "the evicted slot was given back");
  });

  it("keeps maxConnections − maxPreauth slots for authenticated sessions", () => {
    const a = new Admission(limits);
    let ok = 0;
    for (let i = 0; i < 4; i++) {
      const r = a.arrive(`10.0.1.${i}`, () => {});
      assert.ok(r.admitted);
      if (a.authenticate(r.slot)) ok++;
    }
    assert.equal(ok, 3);
    assert.deepEqual(a.counts, { preauth: 0, authenticated: 3 });
  });
});

describe("rate limits and the limited log", () => {
  it("a token bucket refills over time", () => {
    const b = new TokenBucket(2, 60, 0); // one a second
    assert.ok(b.take(0) && b.take(0));
    assert.ok(!b.take(500));
    assert.equal(b.waitMs(500), 500);
    assert.ok(b.take(1000));
  });

  it("suppresses past its rate and says how much it left out", () => {
    let t = 0;
    const out: Record<string, unknown>[] = [];
    const log = new LimitedLog((e) => out.push(e), {
      burst: 3,
      perSecond: 1,
      now: () => t,
      scope: { remote: "10.0.0.9" },
    });
    for (let i = 0; i < 10; i++) log.emit({ event: "refuse" });
    assert.equal(out.length, 3);
    t = 1000;
    log.emit({ event: "refuse" });
    assert.deepEqual(out[3], {
      event: "log-suppressed",
      remote: "10.0.0.9",
      count: 7,
      kinds: "refuse×7",
    });
    assert.equal(out.length, 5);
  });

  it("limits are checked", () => {
    assert.throws(() => linkLimits({ maxPreauth: 1024 }), /smaller than the connection cap/);
    assert.throws(() => relayLimits({ connectionBytes: 1024 }), /at least/);
    assert.throws(() => relayLimits({ quota: 0 }), /quota/);
  });
});

describe("relay limits on authenticated clients", () => {
  it("quotas are per (sender, recipient); the recipient and the store have caps", async () => {
    const relay = await startRelay({ quota: 2, recipientQuota: 3, storeBytes: 2000 });
    const [alice, bob, carol, dave] = await people("alice", "bob", "carol", "dave");
    const [a, b, c, d] = [alice, bob, carol, dave].map((p) => relay.connect(p));
    for (const x of [a, b, c, d]) await x.register();
    await a.send("bob@example.org", envelope());
    await a.send("bob@example.org", envelope());
    const q = await refused(a.send("bob@example.org", envelope()), "quota");
    assert.match(q.message, /alice@example\.org already has 2 messages waiting for bob/);
    await c.send("bob@example.org", envelope());
    const r = await refused(d.send("bob@example.org", envelope()), "recipient-full");
    assert.match(r.message, /bob@example\.org has 3 messages/);
    const s = await refused(d.send("carol@example.org", envelope(1900)), "store-full");
    assert.match(s.message, /store is full/);
    await relay.close();
  });

  it("new registrations are rate-limited per address; the same card again is free", async () => {
    const relay = await startRelay({ registrationsPerMinute: 2 });
    const link = { remote: "192.0.2.7" };
    const ids = await people("r1", "r2", "r3");
    await relay.connect(ids[0], { link }).register();
    await relay.connect(ids[0], { link }).register(); // unchanged: not counted
    await relay.connect(ids[1], { link }).register();
    const e = await refused(relay.connect(ids[2], { link }).register(), "rate-limited");
    assert.match(e.message, /from 192\.0\.2\.7 \(at most 2 a minute\)/);
    await relay.connect(ids[2], { link: { remote: "192.0.2.8" } }).register();
    await relay.close();
  });

  it("the directory has a cap", async () => {
    const relay = await startRelay({ maxUsers: 1 });
    await relay.connect(await person("alice")).register();
    await refused(relay.connect(await person("bob")).register(), "directory-full");
    await relay.close();
  });

  it("users' stats show visible users and their own queue only", async () => {
    const relay = await startRelay();
    const [alice, bob] = [await person("alice"), await person("bob")];
    const b = relay.connect(bob);
    await b.register();
    const a = relay.connect(alice);
    await a.register();
    await a.setPresence("invisible");
    await a.send("bob@example.org", envelope());
    assert.deepEqual(await b.stats(), { online: 1, queued: 1 });
    await relay.close();
  });

  it("drops a link after MAX_MALFORMED malformed messages, its log summarised", async () => {
    const relay = await startRelay();
    const mallory = await person("mallory");
    const pair = fakeChannelPair(mallory.card, relay.relay.card);
    const served = relay.server.serve(pair.server, { remote: "198.51.100.1" });
    for (let i = 0; i < 100; i++) await pair.client.send(randomBytes(40));
    await served;
    const refusals = relay.events.filter((e) => e.event === "refuse").length;
    assert.equal(refusals, MAX_MALFORMED);
    const drop = relay.events.find((e) => e.event === "drop");
    assert.equal(drop?.status, "malformed");
    assert.equal(drop?.remote, "198.51.100.1");
    await relay.close();
  });

  it("an idle link is dropped with status idle; keepalive says the timeout", async () => {
    let t = 1_700_000_000_000;
    const relay = await startRelay({ idleTimeoutMs: 60_000, now: () => t });
    const [alice, bob] = [await person("alice"), await person("bob")];
    const a = relay.connect(alice);
    const b = relay.connect(bob);
    await a.register();
    assert.equal(await b.keepAlive(), 60_000);
    t += 40_000;
    await b.keepAlive();
    t += 30_000; // alice: 70 s quiet; bob: 30 s
    relay.server.sweep();
    const e = await refused(a.lookup("bob@example.org"), "idle");
    assert.match(e.message, /no request for 60 s/);
    assert.equal(e.code, "network");
    assert.equal(await b.keepAlive(), 60_000, "bob's link is still served");
    await relay.close();
  });

  it("a client told `busy` on request 0 fails every request with it", async () => {
    const relay = await startRelay();
    const alice = await person("alice");
    const pair = fakeChannelPair(alice.card, relay.relay.card);
    const { RelayClient } = await import("../relay/client.ts");
    const client = new RelayClient(pair.client);
    await pair.server.send(encodeResponse({ rid: 0, status: "busy", detail: "all taken\x1b[2J" }));
    const e = await refused(client.register(), "busy");
    assert.equal(e.detail, "all taken\x1b[2J", "kept as received; the CLI sanitises");
    await client.close();
    await relay.close();
  });
});
