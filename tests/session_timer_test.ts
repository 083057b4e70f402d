/**
 * The session's timers (SPEC §22.7) on the state machine, with time as a number: the
 * 45 s without an expected message count from the last valid message, not from when the
 * wait began; the handshake deadline (`handshakeTimeoutMs`) ends a handshake stuck in any
 * of its three waiting states, whatever the idle rule would allow, and stops once the
 * keys are confirmed.
 * @module
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { utf8 } from "../core/bytes.ts";
import { nobleProvider } from "../crypto/mod.ts";
import { isMissiveError } from "../core/errors.ts";
import { SessionMachine } from "../session/machine.ts";
import { SESSION_DEFAULTS } from "../session/options.ts";
import { fixedIdentity } from "./helpers.ts";
import { T0, typeOf, Wire } from "./session_proxy.ts";

const alice = await fixedIdentity("alice@example.org", 1);
const bob = await fixedIdentity("bob@example.org", 3);
const IDLE = 45_000;
const HANDSHAKE = SESSION_DEFAULTS.handshakeTimeoutMs;

describe("session: idle timer", () => {
  it("counts the idle time from the last valid message", async () => {
    const w = new Wire({ identity: alice, peer: bob.card }, {
      identity: bob,
      trusted: [alice.card],
    });
    await w.start();
    // Nothing from the client arrives any more: its DATA waits for a DATA_ACK.
    w.policy = (s) => (s.direction === "c2s" ? "drop" : "forward");
    await w.send("client", "held");
    await w.advance(30_000);
    // A valid message 30 s in: the client's 45 s start over from here.
    await w.send("server", "still here");
    assert.deepEqual(w.client.delivered, ["still here"]);
    await w.advance(IDLE - 1);
    assert.ok(!w.types("c2s").includes("RESEND_LAST"), "RESEND_LAST too early");
    await w.advance(1);
    assert.equal(w.types("c2s").filter((t) => t === "RESEND_LAST").length, 1);
    const resend = w.client.events.find((e) => e.type === "resend");
    assert.deepEqual(resend, { type: "resend", direction: "sent", count: 1 });
  });

  it("a valid message moves the deadline: no timer set or cleared per frame", async () => {
    const w = new Wire({ identity: alice, peer: bob.card, window: 4 }, {
      identity: bob,
      trusted: [alice.card],
      ack: "immediate",
    });
    await w.start();
    const before = w.client.outputs.length;
    for (let i = 0; i < 4; i++) await w.input("client", { type: "send", data: utf8(`m${i}`) });
    await w.run();
    assert.deepEqual(w.types("s2c").slice(1), ["DATA_ACK", "DATA_ACK", "DATA_ACK", "DATA_ACK"]);
    // Four DATA_ACKs while DATA are in flight: one timer set with the first DATA, one
    // clear when the last is acknowledged, and the deadline moved in between.
    const timers = w.client.outputs.slice(before).flatMap((o) =>
      o.type === "set-timer" || o.type === "clear-timer" ? [`${o.type} ${o.timer}`] : []
    );
    assert.deepEqual(timers, ["set-timer idle", "clear-timer idle"]);
    assert.equal(w.client.acknowledged, 4);
  });
});

describe("session: handshake deadline", () => {
  it("client: no HELLO_ACK in time → signed CLOSE (timeout), before the idle rule", async () => {
    const m = new SessionMachine({
      role: "client",
      identity: alice,
      provider: nobleProvider,
      peer: bob.card,
    });
    const start = await m.handle({ type: "start", now: T0 });
    assert.deepEqual(
      start.filter((o) => o.type === "set-timer").map((o) =>
        o.type === "set-timer" && [o.timer, o.at]
      ),
      [["handshake", T0 + HANDSHAKE], ["idle", T0 + IDLE]],
    );
    const out = await m.handle({ type: "timer", timer: "handshake", now: T0 + HANDSHAKE });
    const written = out.flatMap((o) => (o.type === "write" ? [typeOf(o.frame)] : []));
    assert.deepEqual(written, ["CLOSE"]);
    const end = out.at(-1);
    assert.ok(end?.type === "end" && isMissiveError(end.error, "timeout"));
    assert.match(end.error!.message, /no handshake within 10000 ms/);
  });

  it("server: no HELLO in time → fails silently (nothing to bind a CLOSE to)", async () => {
    const m = new SessionMachine({
      role: "server",
      identity: bob,
      provider: nobleProvider,
      trusted: [alice.card],
      handshakeTimeoutMs: 2_000,
    });
    await m.handle({ type: "start", now: T0 });
    const out = await m.handle({ type: "timer", timer: "handshake", now: T0 + 2_000 });
    assert.deepEqual(out.map((o) => o.type), ["event", "end"]);
    assert.equal(m.state, "failed");
    assert.equal(m.error?.code, "timeout");
  });

  it("server: HELLO but no ACK in time → signed CLOSE bound to that HELLO", async () => {
    const w = new Wire({ identity: alice, peer: bob.card }, {
      identity: bob,
      trusted: [alice.card],
    });
    w.policy = (s) => (s.direction === "c2s" && s.type === "ACK" ? "drop" : "forward");
    await w.start();
    await w.advance(HANDSHAKE);
    assert.deepEqual(w.types("s2c"), ["HELLO_ACK", "CLOSE"]);
    assert.equal(w.server.ended?.error?.code, "timeout");
    // The client verified the CLOSE (signed with HC) and learned the reason.
    assert.equal(w.client.ended?.error?.code, "timeout");
  });

  it("stops once the keys are confirmed; 0 turns it off", async () => {
    const w = new Wire({ identity: alice, peer: bob.card }, {
      identity: bob,
      trusted: [alice.card],
    });
    await w.start();
    assert.equal(w.client.timers.has("handshake"), false);
    assert.equal(w.server.timers.has("handshake"), false);
    await w.advance(10 * HANDSHAKE);
    await w.send("client", "still open");
    assert.equal(w.server.machine.state, "open");
    const off = new SessionMachine({
      role: "client",
      identity: alice,
      provider: nobleProvider,
      peer: bob.card,
      handshakeTimeoutMs: 0,
    });
    const out = await off.handle({ type: "start", now: T0 });
    assert.ok(!out.some((o) => o.type === "set-timer" && o.timer === "handshake"));
    assert.throws(
      () => new Wire({ identity: alice, handshakeTimeoutMs: -1 }, { identity: bob }),
      (e) => isMissiveError(e, "usage"),
    );
    await off.handle({ type: "send", data: utf8("x"), now: T0 }).then(
      () => assert.fail("a send before the handshake is refused"),
      (e) => assert.ok(isMissiveError(e, "session")),
    );
  });
});
