/**
 * The live session (SPEC §22): the proposal's seven conformance cases, each asserting
 * the reply frame, with a fake clock; trust refusals on both sides; re-keying every N
 * acknowledged messages; s0; request/response; the state machine table.
 * @module
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { utf8 } from "../core/bytes.ts";
import { nobleProvider } from "../crypto/mod.ts";
import { isMissiveError } from "../core/errors.ts";

import { FakeClock } from "../session/clock.ts";
import { TRANSITIONS } from "../session/machine.ts";
import type { AcceptOptions, ConnectOptions, SessionEvent } from "../session/options.ts";
import { request, serveRequests } from "../session/request.ts";
import { Session } from "../session/session.ts";
import { memoryTransportPair } from "../transports/memory.ts";
import { fixedIdentity } from "./helpers.ts";
import { Proxy, settle, until } from "./session_proxy.ts";

const alice = await fixedIdentity("alice@example.org", 1);
const bob = await fixedIdentity("bob@example.org", 3);
const carol = await fixedIdentity("carol@example.org", 5);

const IDLE = 45_000;
const text = (b: Uint8Array) => new TextDecoder().decode(b);

interface Pair {
  clock: FakeClock;
  proxy: Proxy;
  client: Session;
  server: Session;
  clientEvents: SessionEvent[];
  serverEvents: SessionEvent[];
}

/** A client (alice) and a server (bob) through a proxy, on a fake clock. */
async function pair(
  options: { client?: Partial<ConnectOptions>; server?: Partial<AcceptOptions> } = {},
): Promise<Pair> {
  const clock = new FakeClock();
  const proxy = new Proxy();
  const clientEvents: SessionEvent[] = [];
  const serverEvents: SessionEvent[] = [];
  const [client, server] = await Promise.all([
    Session.connect(proxy.client, alice, {
      peer: bob.card,
      clock,
      provider: nobleProvider,
      onEvent: (e) => clientEvents.push(e),
      ...options.client,
    }),
    Session.accept(proxy.server, bob, {
      trusted: [alice.card],
      clock,
      provider: nobleProvider,
      onEvent: (e) => serverEvents.push(e),
      ...options.server,
    }),
  ]);
  return { clock, proxy, client, server, clientEvents, serverEvents };
}

/** Collects what a session delivers, in the background. */
function collect(session: Session): { got: string[]; done: Promise<unknown> } {
  const got: string[] = [];
  const done = (async () => {
    for await (const m of session.messages()) got.push(text(m));
  })().catch((e) => e);
  return { got, done };
}

/** Advances the fake clock by one idle timeout `times` times, settling in between. */
async function idle(clock: FakeClock, times: number, ms = IDLE): Promise<void> {
  for (let i = 0; i < times; i++) {
    clock.advance(ms);
    await settle();
  }
}

describe("session: the proposal's seven cases", () => {
  it("(1) messages out of order → CLOSE", async () => {
    const p = await pair({ client: { window: 4 } });
    const inbox = collect(p.server);
    let held: Uint8Array | undefined;
    p.proxy.policy = (s) => {
      if (s.direction !== "c2s" || s.type !== "DATA") return "forward";
      if (!held) {
        held = s.bytes;
        return "drop";
      }
      return [s.bytes, held];
    };
    const sends = [p.client.send(utf8("one")), p.client.send(utf8("two"))].map((s) =>
      s.then(() => undefined, (e) => e)
    );
    await until(() => p.proxy.types("s2c").includes("CLOSE"), "server CLOSE");
    assert.deepEqual(p.proxy.types("s2c"), ["HELLO_ACK", "CLOSE"]);
    await until(() => p.server.state === "closed" || p.server.state === "failed", "end");
    assert.equal(p.server.error?.code, "session");
    assert.match(p.server.error?.message ?? "", /wrong sequence number/);
    for (const e of await Promise.all(sends)) assert.ok(isMissiveError(e, "session"), String(e));
    assert.deepEqual(inbox.got, []);
    assert.equal(p.proxy.types("c2s").at(-1), "CLOSE_ACK");
  });

  it("(2) HELLO then no ACK → RESEND_LAST ×3, then CLOSE", async () => {
    const clock = new FakeClock();
    const proxy = new Proxy();
    proxy.policy = (s) => (s.direction === "c2s" && s.type === "ACK" ? "drop" : "forward");
    const accepted = Session.accept(proxy.server, bob, { trusted: [alice.card], clock });
    const rejected = assert.rejects(accepted, (e) => isMissiveError(e, "timeout"));
    const client = await Session.connect(proxy.client, alice, { peer: bob.card, clock });
    await idle(clock, 4);
    await rejected;
    assert.deepEqual(proxy.types("s2c"), [
      "HELLO_ACK",
      "RESEND_LAST",
      "RESEND_LAST",
      "RESEND_LAST",
      "CLOSE",
    ]);
    // The client answered each RESEND_LAST with its ACK again (all dropped).
    assert.deepEqual(proxy.types("c2s"), ["HELLO", "ACK", "ACK", "ACK", "ACK"]);
    await until(() => client.state === "failed", "client ends");
    assert.equal(client.error?.code, "timeout");
  });

  it("(3) server silent after HELLO → RESEND_LAST ×3, then CLOSE", async () => {
    const clock = new FakeClock();
    const [a, b] = memoryTransportPair();
    const seen: string[] = [];
    const reader = (async () => {
      const { decodeFrame, messageTypeName } = await import("../session/messages.ts");
      for await (const f of b.frames()) seen.push(messageTypeName(decodeFrame(f, 1 << 20).type));
    })();
    const connected = Session.connect(a, alice, { peer: bob.card, clock });
    const rejected = assert.rejects(connected, (e) => isMissiveError(e, "timeout"));
    await settle();
    await idle(clock, 4);
    await rejected;
    await reader;
    assert.deepEqual(seen, ["HELLO", "RESEND_LAST", "RESEND_LAST", "RESEND_LAST", "CLOSE"]);
    assert.equal(clock.pending, 0);
  });

  it("(4) a message under an old session key → CLOSE", async () => {
    const p = await pair({ server: { rekeyAfter: 1 }, client: { window: 1 } });
    const inbox = collect(p.server);
    await p.client.send(utf8("before the re-key"));
    await until(() => p.clientEvents.some((e) => e.type === "rekey"), "re-key");
    const old = p.proxy.seen.find((s) => s.direction === "c2s" && s.type === "DATA")!;
    await p.proxy.inject("c2s", old.bytes);
    await until(() => p.proxy.types("s2c").at(-1) === "CLOSE", "server CLOSE");
    assert.match(p.server.error?.message ?? "", /old or unknown session key/);
    assert.deepEqual(inbox.got, ["before the re-key"]);
  });

  it("(5) a wrong sequence number (a duplicated frame) → CLOSE", async () => {
    const p = await pair({ client: { window: 1 } });
    const inbox = collect(p.server);
    p.proxy.policy = (
      s,
    ) => (s.direction === "c2s" && s.type === "DATA" ? [s.bytes, s.bytes] : "forward");
    await p.client.send(utf8("once")).catch(() => {});
    await until(() => p.proxy.types("s2c").at(-1) === "CLOSE", "server CLOSE");
    assert.match(p.server.error?.message ?? "", /wrong sequence number/);
    await until(() => p.server.state === "closed" || p.server.state === "failed", "end");
    assert.deepEqual(inbox.got, ["once"]);
  });

  it("(6) peer silent after CLOSE → CLOSE ×3 more, then CLOSED_WITHOUT_ACK", async () => {
    const p = await pair();
    const events: SessionEvent[] = p.clientEvents;
    p.proxy.policy = (s) => (s.direction === "c2s" ? "drop" : "forward");
    const closed = p.client.close();
    await settle();
    await idle(p.clock, 4);
    await closed;
    const after = p.proxy.types("c2s").slice(2);
    assert.deepEqual(after, ["CLOSE", "CLOSE", "CLOSE", "CLOSE", "CLOSED_WITHOUT_ACK"]);
    const close = events.find((e) => e.type === "close");
    assert.deepEqual(close && close.type === "close" && close.acknowledged, false);
    assert.equal(p.client.state, "failed");
    await p.server.close();
  });

  it("(7) a bad MAC (AEAD tag) → CLOSE with reason auth-failed", async () => {
    const p = await pair();
    const inbox = collect(p.server);
    p.proxy.policy = (s) => {
      if (s.direction !== "c2s" || s.type !== "DATA") return "forward";
      const bad = new Uint8Array(s.bytes);
      bad[bad.length - 1] ^= 0x01;
      return [bad];
    };
    await assert.rejects(p.client.send(utf8("tampered")), (e) => isMissiveError(e, "auth-failed"));
    assert.equal(p.proxy.types("s2c").at(-1), "CLOSE");
    assert.equal(p.server.error?.code, "auth-failed");
    assert.equal(p.client.error?.code, "auth-failed"); // learned from the CLOSE reason
    assert.deepEqual(inbox.got, []);
  });
});

describe("session: trust", () => {
  it("refuses an untrusted client during the handshake; the client learns why", async () => {
    const proxy = new Proxy();
    const [c, s] = await Promise.allSettled([
      Session.connect(proxy.client, alice, { peer: bob.card }),
      Session.accept(proxy.server, bob, { trusted: [carol.card] }),
    ]);
    assert.ok(c.status === "rejected" && isMissiveError(c.reason, "untrusted"), String(c));
    assert.ok(s.status === "rejected" && isMissiveError(s.reason, "untrusted"));
    assert.match((s.reason as Error).message, /alice@example.org.*not trusted/);
    assert.match((c.reason as Error).message, /peer closed/);
    assert.deepEqual(proxy.types("s2c"), ["CLOSE"]);
  });

  it("refuses a server whose card does not match the pinned one", async () => {
    const proxy = new Proxy();
    const [c, s] = await Promise.allSettled([
      Session.connect(proxy.client, alice, { peer: carol.card }),
      Session.accept(proxy.server, bob, { authorize: () => true }),
    ]);
    assert.ok(c.status === "rejected" && isMissiveError(c.reason, "untrusted"));
    assert.match((c.reason as Error).message, /bob@example.org.*not the pinned card carol/);
    assert.ok(s.status === "rejected" && isMissiveError(s.reason, "untrusted"));
    assert.deepEqual(proxy.types("c2s"), ["HELLO", "CLOSE"]);
  });

  it("admits through authorize(card) and proves the peer's card", async () => {
    const seen: string[] = [];
    const p = await pair({
      server: {
        trusted: undefined,
        authorize: (card) => (seen.push(card.address), card.address.startsWith("alice")),
      },
      client: { peer: undefined, trusted: [carol.card, bob.card] },
    });
    assert.deepEqual(seen, ["alice@example.org"]);
    assert.equal(p.server.peer.address, "alice@example.org");
    assert.equal(p.client.peer.address, "bob@example.org");
    await p.client.close();
  });

  it("s0: works when both ends share it, fails on a mismatch or when one lacks it", async () => {
    const s0 = utf8("a pre-shared secret of enough length");
    const ok = await pair({ client: { s0 }, server: { s0 } });
    await ok.client.send(utf8("x"));
    await ok.client.close();
    for (const [cs0, ss0] of [[s0, utf8("another pre-shared secret, 16+")], [s0, undefined]]) {
      const proxy = new Proxy();
      const results = await Promise.allSettled([
        Session.connect(proxy.client, alice, { peer: bob.card, s0: cs0 }),
        Session.accept(proxy.server, bob, { trusted: [alice.card], s0: ss0 }),
      ]);
      assert.ok(results.every((r) => r.status === "rejected"));
      const server = results[1] as PromiseRejectedResult;
      assert.ok(isMissiveError(server.reason, "auth-failed"), String(server.reason));
    }
  });
});

describe("session: data and re-keying", () => {
  it("25 messages with rekeyAfter 10: two re-keys with distinct key IDs, all in order", async () => {
    const p = await pair({ server: { rekeyAfter: 10 }, client: { window: 1 } });
    const inbox = collect(p.server);
    const lines = Array.from({ length: 25 }, (_, i) => `line ${i + 1}`);
    await Promise.all(lines.map((l) => p.client.send(utf8(l))));
    await p.client.close();
    await inbox.done;
    assert.deepEqual(inbox.got, lines);
    for (const events of [p.clientEvents, p.serverEvents]) {
      const keys = events.flatMap((e) => (e.type === "handshake" || e.type === "rekey" ? [e] : []));
      assert.deepEqual(keys.map((e) => e.type), ["handshake", "rekey", "rekey"]);
      assert.equal(new Set(keys.map((e) => e.keyId)).size, 3);
      assert.deepEqual(keys.slice(1).map((e) => e.type === "rekey" && e.acknowledged), [10, 20]);
    }
    assert.deepEqual(
      p.clientEvents.filter((e) => e.type === "rekey").map((e) => e.keyId),
      p.serverEvents.filter((e) => e.type === "rekey").map((e) => e.keyId),
    );
  });

  it("keeps order and loses nothing with a window, both directions, during re-keys", async () => {
    const p = await pair({ server: { rekeyAfter: 7 }, client: { window: 16 } });
    const atServer = collect(p.server);
    const atClient = collect(p.client);
    const n = 60;
    const up = Array.from({ length: n }, (_, i) => `up ${i}`);
    const down = Array.from({ length: n }, (_, i) => `down ${i}`);
    await Promise.all([
      ...up.map((l) => p.client.send(utf8(l))),
      ...down.map((l) => p.server.send(utf8(l))),
    ]);
    await p.client.close();
    await Promise.all([atServer.done, atClient.done]);
    assert.deepEqual(atServer.got, up);
    assert.deepEqual(atClient.got, down);
    const rekeys = p.serverEvents.filter((e) => e.type === "rekey");
    assert.ok(rekeys.length >= 2, `${rekeys.length} re-keys`);
  });

  it("re-keys with s0 (the sealed HELLO / HELLO_ACK carry the MAC too)", async () => {
    const s0 = utf8("a pre-shared secret of enough length");
    const p = await pair({ client: { s0, window: 1 }, server: { s0, rekeyAfter: 2 } });
    const inbox = collect(p.server);
    const lines = ["a", "b", "c", "d", "e"];
    for (const l of lines) await p.client.send(utf8(l));
    await p.client.close();
    await inbox.done;
    assert.deepEqual(inbox.got, lines);
    assert.equal(p.clientEvents.filter((e) => e.type === "rekey").length, 2);
  });

  it("both ends closing at once end cleanly", async () => {
    const p = await pair();
    await Promise.all([p.client.close(), p.server.close()]);
    assert.equal(p.client.state, "closed");
    assert.equal(p.server.state, "closed");
  });

  it("a lost connection fails pending sends and the message stream with network", async () => {
    const p = await pair({ client: { window: 4 } });
    p.proxy.policy = () => "drop";
    const sending = p.client.send(utf8("never acknowledged"));
    const reading = collect(p.client);
    await p.proxy.close();
    await assert.rejects(sending, (e) => isMissiveError(e, "network"));
    assert.ok(isMissiveError(await reading.done, "network"));
    assert.equal(p.client.state, "failed");
  });

  it("request/response helper", async () => {
    const p = await pair();
    const served = serveRequests(p.server, (q) => utf8(`reading for ${text(q)}`));
    assert.equal(text(await request(p.client, utf8("sensor-1"))), "reading for sensor-1");
    assert.equal(text(await request(p.client, utf8("sensor-2"))), "reading for sensor-2");
    await p.client.close();
    await served;
  });

  it("close is idempotent; send after close is refused; oversize is refused", async () => {
    const p = await pair({ client: { maxMessageSize: 10 } });
    await assert.rejects(p.client.send(new Uint8Array(11)), (e) => isMissiveError(e, "too-large"));
    await Promise.all([p.client.close(), p.client.close()]);
    await p.client.close();
    assert.equal(p.client.state, "closed");
    await assert.rejects(p.client.send(utf8("late")), (e) => isMissiveError(e, "session"));
    await until(() => p.server.state === "closed", "server closed");
  });
});

describe("session: state machine", () => {
  it("terminal states have no exits; every target is a state", () => {
    const states = Object.keys(TRANSITIONS);
    assert.deepEqual(TRANSITIONS.closed, []);
    assert.deepEqual(TRANSITIONS.failed, []);
    for (const targets of Object.values(TRANSITIONS)) {
      for (const t of targets) assert.ok(states.includes(t), t);
    }
  });
});
