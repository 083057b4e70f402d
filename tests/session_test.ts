/**
 * The session state machine (SPEC §22, session/machine.ts), driven input by input with
 * no event loop: the proposal's seven conformance cases, each asserting the frames on
 * the wire; trust refusals on both sides; re-keying every N acknowledged messages; s0;
 * close and refused sends; the state table. Time is a number (tests/session_proxy.ts).
 * @module
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { utf8 } from "../core/bytes.ts";
import { nobleProvider } from "../crypto/mod.ts";
import { isMissiveError, MissiveError } from "../core/errors.ts";
import { TRANSITIONS } from "../session/_state.ts";
import { SessionMachine, type SessionOutput } from "../session/machine.ts";
import { fixedIdentity } from "./helpers.ts";
import { T0, typeOf, Wire } from "./session_proxy.ts";

const alice = await fixedIdentity("alice@example.org", 1);
const bob = await fixedIdentity("bob@example.org", 3);
const carol = await fixedIdentity("carol@example.org", 5);

const IDLE = 45_000;
type Options = Partial<ConstructorParameters<typeof Wire>[0]>;

/** A client (alice, pinning bob) and a server (bob, trusting alice), started. */
async function pair(options: { client?: Options; server?: Options } = {}): Promise<Wire> {
  const wire = new Wire(
    { identity: alice, peer: bob.card, ...options.client },
    { identity: bob, trusted: [alice.card], ...options.server },
  );
  await wire.start();
  return wire;
}

/** Moves time by one idle timeout `times` times. */
async function idle(wire: Wire, times: number): Promise<void> {
  for (let i = 0; i < times; i++) await wire.advance(IDLE);
}

const closeEvents = (w: Wire, side: "client" | "server") =>
  w.end(side).events.filter((e) => e.type === "close");

describe("session: the proposal's seven cases", () => {
  it("(1) messages out of order → CLOSE", async () => {
    const w = await pair({ client: { window: 4 } });
    let held: Uint8Array | undefined;
    w.policy = (s) => {
      if (s.direction !== "c2s" || s.type !== "DATA") return "forward";
      if (!held) {
        held = s.bytes;
        return "drop";
      }
      return [s.bytes, held];
    };
    await w.input("client", { type: "send", data: utf8("one") });
    await w.input("client", { type: "send", data: utf8("two") });
    await w.run();
    assert.deepEqual(w.types("s2c"), ["HELLO_ACK", "CLOSE"]);
    assert.equal(w.server.ended?.state, "failed");
    assert.equal(w.server.ended?.error?.code, "session");
    assert.match(w.server.ended?.error?.message ?? "", /wrong sequence number/);
    assert.ok(isMissiveError(w.client.failed, "session"), String(w.client.failed));
    assert.equal(w.client.acknowledged, 0);
    assert.deepEqual(w.server.delivered, []);
    assert.equal(w.types("c2s").at(-1), "CLOSE_ACK");
  });

  it("(2) HELLO then no ACK → RESEND_LAST ×3, then CLOSE", async () => {
    const w = new Wire(
      { identity: alice, peer: bob.card },
      { identity: bob, trusted: [alice.card], handshakeTimeoutMs: 0 },
    );
    w.policy = (s) => (s.direction === "c2s" && s.type === "ACK" ? "drop" : "forward");
    await w.start();
    assert.equal(w.server.machine.state, "await-ack");
    await idle(w, 4);
    assert.deepEqual(w.types("s2c"), [
      "HELLO_ACK",
      "RESEND_LAST",
      "RESEND_LAST",
      "RESEND_LAST",
      "CLOSE",
    ]);
    // The client answered each RESEND_LAST with its ACK again (all dropped).
    assert.deepEqual(w.types("c2s"), ["HELLO", "ACK", "ACK", "ACK", "ACK"]);
    assert.equal(w.server.ended?.error?.code, "timeout");
    assert.equal(w.client.ended?.error?.code, "timeout"); // the server's signed CLOSE, reason 12
    assert.equal(w.server.timers.size + w.client.timers.size, 0);
  });

  it("(3) server silent after HELLO → RESEND_LAST ×3, then CLOSE", async () => {
    // One machine, by hand: every frame it writes goes nowhere.
    const m = new SessionMachine({
      role: "client",
      identity: alice,
      provider: nobleProvider,
      peer: bob.card,
      handshakeTimeoutMs: 0,
    });
    let now = T0;
    const out: SessionOutput[] = [...(await m.handle({ type: "start", now }))];
    for (let i = 0; i < 4; i++) {
      const idleTimer = out.findLast((o) => o.type === "set-timer" && o.timer === "idle");
      assert.ok(idleTimer?.type === "set-timer");
      now = idleTimer.at;
      out.push(...(await m.handle({ type: "timer", timer: "idle", now })));
    }
    const written = out.flatMap((o) => (o.type === "write" ? [typeOf(o.frame)] : []));
    assert.deepEqual(written, ["HELLO", "RESEND_LAST", "RESEND_LAST", "RESEND_LAST", "CLOSE"]);
    assert.equal(now, T0 + 4 * IDLE);
    const end = out.at(-1);
    assert.ok(end?.type === "end" && isMissiveError(end.error, "timeout"), JSON.stringify(end));
    assert.equal(m.state, "failed");
  });

  it("(4) a message under an old session key → CLOSE", async () => {
    const w = await pair({ server: { rekeyAfter: 1 }, client: { window: 1 } });
    await w.send("client", "before the re-key");
    assert.ok(w.client.events.some((e) => e.type === "rekey"), "re-keyed");
    const old = w.seen.find((s) => s.direction === "c2s" && s.type === "DATA")!;
    w.inject("c2s", old.bytes);
    await w.run();
    assert.equal(w.types("s2c").at(-1), "CLOSE");
    assert.match(w.server.ended?.error?.message ?? "", /old or unknown session key/);
    assert.deepEqual(w.server.delivered, ["before the re-key"]);
  });

  it("(5) a wrong sequence number (a duplicated frame) → CLOSE", async () => {
    const w = await pair({ client: { window: 1 } });
    w.policy = (s) => (s.direction === "c2s" && s.type === "DATA" ? [s.bytes, s.bytes] : "forward");
    await w.send("client", "once");
    assert.equal(w.types("s2c").at(-1), "CLOSE");
    assert.match(w.server.ended?.error?.message ?? "", /wrong sequence number/);
    assert.deepEqual(w.server.delivered, ["once"]);
    assert.equal(w.server.ended?.state, "failed");
  });

  it("(6) peer silent after CLOSE → CLOSE ×3 more, then CLOSED_WITHOUT_ACK", async () => {
    const w = await pair();
    w.policy = (s) => (s.direction === "c2s" ? "drop" : "forward");
    await w.close("client");
    await idle(w, 4);
    assert.deepEqual(w.types("c2s").slice(2), [
      "CLOSE",
      "CLOSE",
      "CLOSE",
      "CLOSE",
      "CLOSED_WITHOUT_ACK",
    ]);
    const [close] = closeEvents(w, "client");
    assert.ok(close?.type === "close" && close.acknowledged === false);
    assert.equal(w.client.ended?.state, "failed");
    assert.equal(w.client.machine.state, "failed");
  });

  it("(7) a bad MAC (AEAD tag) → CLOSE with reason auth-failed", async () => {
    const w = await pair();
    w.policy = (s) => {
      if (s.direction !== "c2s" || s.type !== "DATA") return "forward";
      const bad = new Uint8Array(s.bytes);
      bad[bad.length - 1] ^= 0x01;
      return [bad];
    };
    await w.send("client", "tampered");
    assert.equal(w.types("s2c").at(-1), "CLOSE");
    assert.equal(w.server.ended?.error?.code, "auth-failed");
    assert.ok(isMissiveError(w.client.failed, "auth-failed")); // learned from the CLOSE reason
    assert.equal(w.client.ended?.error?.code, "auth-failed");
    assert.deepEqual(w.server.delivered, []);
  });
});

describe("session: trust", () => {
  it("refuses an untrusted client during the handshake; the client learns why", async () => {
    const w = await pair({ server: { trusted: [carol.card] } });
    assert.ok(isMissiveError(w.server.ended?.error, "untrusted"));
    assert.match(w.server.ended?.error?.message ?? "", /alice@example.org.*not trusted/);
    assert.ok(isMissiveError(w.client.ended?.error, "untrusted"));
    assert.match(w.client.ended?.error?.message ?? "", /peer closed/);
    assert.deepEqual(w.types("s2c"), ["CLOSE"]);
  });

  it("refuses a server whose card does not match the pinned one", async () => {
    const w = await pair({
      client: { peer: carol.card },
      server: { trusted: undefined, authorize: () => true },
    });
    assert.ok(isMissiveError(w.client.ended?.error, "untrusted"));
    assert.match(
      w.client.ended?.error?.message ?? "",
      /bob@example.org.*not the pinned card carol/,
    );
    assert.ok(isMissiveError(w.server.ended?.error, "untrusted"));
    assert.deepEqual(w.types("c2s"), ["HELLO", "CLOSE"]);
  });

  it("admits through authorize(card) and proves the peer's card", async () => {
    const seen: string[] = [];
    const w = await pair({
      server: {
        trusted: undefined,
        authorize: (card) => (seen.push(card.address), card.address.startsWith("alice")),
      },
      client: { peer: undefined, trusted: [carol.card, bob.card] },
    });
    assert.deepEqual(seen, ["alice@example.org"]);
    assert.equal(w.server.machine.peer?.address, "alice@example.org");
    assert.equal(w.client.machine.peer?.address, "bob@example.org");
    assert.equal(w.client.machine.state, "open");
    assert.equal(w.server.machine.state, "open");
  });

  it("s0: works when both ends share it, fails on a mismatch or when one lacks it", async () => {
    const s0 = utf8("a pre-shared secret of enough length");
    const ok = await pair({ client: { s0 }, server: { s0 } });
    await ok.send("client", "x");
    await ok.close("client");
    assert.deepEqual(ok.server.delivered, ["x"]);
    assert.equal(ok.client.ended?.state, "closed");
    for (const [cs0, ss0] of [[s0, utf8("another pre-shared secret, 16+")], [s0, undefined]]) {
      const w = await pair({ client: { s0: cs0 }, server: { s0: ss0 } });
      assert.equal(w.client.ended?.state, "failed");
      assert.ok(
        isMissiveError(w.server.ended?.error, "auth-failed"),
        String(w.server.ended?.error),
      );
    }
    assert.throws(
      () => new Wire({ identity: alice, s0: utf8("short") }, { identity: bob }),
      (e) => isMissiveError(e, "usage"),
    );
  });
});

describe("session: data and re-keying", () => {
  it("25 messages with rekeyAfter 10: two re-keys with distinct key IDs, all in order", async () => {
    const w = await pair({ server: { rekeyAfter: 10 }, client: { window: 1 } });
    const lines = Array.from({ length: 25 }, (_, i) => `line ${i + 1}`);
    for (const l of lines) await w.input("client", { type: "send", data: utf8(l) });
    await w.run();
    await w.close("client");
    assert.deepEqual(w.server.delivered, lines);
    assert.equal(w.client.acknowledged, 25);
    for (const events of [w.client.events, w.server.events]) {
      const keys = events.flatMap((e) => (e.type === "handshake" || e.type === "rekey" ? [e] : []));
      assert.deepEqual(keys.map((e) => e.type), ["handshake", "rekey", "rekey"]);
      assert.equal(new Set(keys.map((e) => e.keyId)).size, 3);
      assert.deepEqual(keys.slice(1).map((e) => e.type === "rekey" && e.acknowledged), [10, 20]);
    }
    assert.deepEqual(
      w.client.events.filter((e) => e.type === "rekey").map((e) => e.keyId),
      w.server.events.filter((e) => e.type === "rekey").map((e) => e.keyId),
    );
    assert.equal(w.client.ended?.state, "closed");
    assert.equal(w.server.ended?.state, "closed");
  });

  it("keeps order and loses nothing with a window, both directions, during re-keys", async () => {
    const w = await pair({ server: { rekeyAfter: 7 }, client: { window: 16 } });
    const n = 60;
    const up = Array.from({ length: n }, (_, i) => `up ${i}`);
    const down = Array.from({ length: n }, (_, i) => `down ${i}`);
    for (let i = 0; i < n; i++) {
      await w.input("client", { type: "send", data: utf8(up[i]) });
      await w.input("server", { type: "send", data: utf8(down[i]) });
      if (i % 5 === 0) await w.run();
    }
    await w.run();
    await w.close("client");
    assert.deepEqual(w.server.delivered, up);
    assert.deepEqual(w.client.delivered, down);
    assert.equal(w.client.acknowledged, n);
    assert.equal(w.server.acknowledged, n);
    assert.ok(w.server.events.filter((e) => e.type === "rekey").length >= 2);
    assert.equal(w.client.ended?.state, "closed");
  });

  it("batches: one DATA_ACK per batch read; the DATA_ACK goes before any other frame", async () => {
    const w = await pair({ client: { window: 8 } });
    for (let i = 0; i < 8; i++) await w.input("client", { type: "send", data: utf8(`m${i}`) });
    await w.run();
    assert.deepEqual(w.types("s2c").slice(1), ["DATA_ACK"]);
    // A server message after DATA: the due DATA_ACK leaves first, without waiting for flush.
    await w.input("client", { type: "send", data: utf8("more") });
    const [data] = w.client.writes.slice(-1);
    const out = await w.server.machine.handle({ type: "frame", bytes: data, now: w.now });
    const reply = await w.server.machine.handle({ type: "send", data: utf8("reply"), now: w.now });
    const written = [...out, ...reply].flatMap((o) => o.type === "write" ? [typeOf(o.frame)] : []);
    assert.deepEqual(written, ["DATA_ACK", "DATA"]);
  });

  it("re-keys with s0 (the sealed HELLO / HELLO_ACK carry the MAC too)", async () => {
    const s0 = utf8("a pre-shared secret of enough length");
    const w = await pair({ client: { s0, window: 1 }, server: { s0, rekeyAfter: 2 } });
    for (const l of ["a", "b", "c", "d", "e"]) await w.send("client", l);
    await w.close("client");
    assert.deepEqual(w.server.delivered, ["a", "b", "c", "d", "e"]);
    assert.equal(w.client.events.filter((e) => e.type === "rekey").length, 2);
  });

  it("a CLOSE crossing a re-key HELLO: the HELLO is ignored, both end closed", async () => {
    const w = await pair({ server: { rekeyAfter: 1 }, client: { window: 1 } });
    let hello: Uint8Array | undefined;
    w.policy = (s) => {
      if (s.direction === "s2c" && s.type === "HELLO") return (hello = s.bytes, "drop");
      return "forward";
    };
    await w.send("client", "x");
    assert.equal(w.server.machine.state, "rekey-hello-sent");
    assert.equal(w.client.machine.state, "open");
    await w.input("client", { type: "close" }); // nothing pending: CLOSE goes at once
    assert.equal(w.client.machine.state, "closing");
    w.inject("s2c", hello!); // arrives after the client's CLOSE went out
    await w.run();
    assert.deepEqual(w.types("c2s").slice(-1), ["CLOSE"]);
    assert.deepEqual(w.types("s2c").slice(-1), ["CLOSE_ACK"]);
    assert.equal(w.client.ended?.state, "closed");
    assert.equal(w.server.ended?.state, "closed");
    assert.equal(w.client.events.filter((e) => e.type === "rekey").length, 0);
  });

  it("both ends closing at once end cleanly", async () => {
    const w = await pair();
    await w.input("client", { type: "close" });
    await w.input("server", { type: "close" });
    await w.run();
    assert.equal(w.client.ended?.state, "closed");
    assert.equal(w.server.ended?.state, "closed");
  });

  it("close waits for acknowledgements; sends after it and oversize ones are refused", async () => {
    const w = await pair({ client: { maxMessageSize: 10 } });
    const m = w.client.machine;
    await assert.rejects(
      m.handle({ type: "send", data: new Uint8Array(11), now: w.now }),
      (e) => isMissiveError(e, "too-large"),
    );
    await w.input("client", { type: "send", data: utf8("last") });
    await w.input("client", { type: "close" });
    await w.input("client", { type: "close" }); // idempotent
    // Not yet: "last" is in flight, so no CLOSE was written.
    assert.deepEqual(w.client.writes.map(typeOf), ["HELLO", "ACK", "DATA"]);
    await w.run();
    assert.deepEqual(w.types("c2s"), ["HELLO", "ACK", "DATA", "CLOSE"]);
    assert.deepEqual(w.types("s2c"), ["HELLO_ACK", "DATA_ACK", "CLOSE_ACK"]);
    assert.equal(w.client.acknowledged, 1);
    assert.equal(m.state, "closed");
    assert.equal(w.server.ended?.state, "closed");
    await assert.rejects(
      m.handle({ type: "send", data: utf8("late"), now: w.now }),
      (e) => isMissiveError(e, "session"),
    );
    assert.deepEqual(await m.handle({ type: "flush", now: w.now }), []);
  });

  it("a lost transport fails pending sends with its error; nothing more is written", async () => {
    const w = await pair({ client: { window: 4 } });
    w.policy = () => "drop";
    await w.input("client", { type: "send", data: utf8("never acknowledged") });
    const lost = new MissiveError("network", "connection reset");
    const out = await w.input("client", { type: "lost", error: lost });
    assert.deepEqual(out.map((o) => o.type), ["sends-failed", "event", "end"]);
    assert.equal(w.client.failed, lost);
    assert.equal(w.client.ended?.state, "failed");
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

  it("handle() refuses to overlap, and the machine starts once", async () => {
    const m = new SessionMachine({
      role: "server",
      identity: bob,
      provider: nobleProvider,
      trusted: [alice.card],
    });
    const first = m.handle({ type: "start", now: T0 });
    await assert.rejects(
      m.handle({ type: "flush", now: T0 }),
      (e) => isMissiveError(e, "internal"),
    );
    await first;
    assert.equal(m.state, "await-hello");
    const again = await m.handle({ type: "start", now: T0 });
    assert.equal(m.state, "failed");
    assert.ok(again.some((o) => o.type === "end" && isMissiveError(o.error, "internal")));
  });
});
