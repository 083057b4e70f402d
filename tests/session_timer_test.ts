/**
 * The idle rule (SPEC §22.7) on a fake clock: the 45 s without an expected message count
 * from the last valid message, not from when the wait began, and a large window's DATA
 * are all delivered and acknowledged in order (the receive loop yields between batches).
 * @module
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { utf8 } from "../core/bytes.ts";
import { nobleProvider } from "../crypto/mod.ts";
import { FakeClock } from "../session/clock.ts";
import { Session } from "../session/session.ts";
import { fixedIdentity } from "./helpers.ts";
import { Proxy, settle, until } from "./session_proxy.ts";

const alice = await fixedIdentity("alice@example.org", 1);
const bob = await fixedIdentity("bob@example.org", 3);
const IDLE = 45_000;

async function pair(window = 32) {
  const clock = new FakeClock();
  const proxy = new Proxy();
  const [client, server] = await Promise.all([
    Session.connect(proxy.client, alice, {
      peer: bob.card,
      clock,
      provider: nobleProvider,
      window,
    }),
    Session.accept(proxy.server, bob, { trusted: [alice.card], clock, provider: nobleProvider }),
  ]);
  return { clock, proxy, client, server };
}

describe("session: idle timer", () => {
  it("counts the idle time from the last valid message", async () => {
    const p = await pair();
    // Nothing from the client arrives any more: its DATA waits for a DATA_ACK.
    p.proxy.policy = (s) => (s.direction === "c2s" ? "drop" : "forward");
    const pending = p.client.send(utf8("held")).catch((e) => e);
    await settle();
    p.clock.advance(30_000);
    await settle();
    // A valid message 30 s in: the client's 45 s start over from here.
    const reader = p.client.receive();
    const answered = p.server.send(utf8("still here")).catch((e) => e);
    assert.equal(new TextDecoder().decode(await reader), "still here");
    await settle();
    p.clock.advance(IDLE - 1);
    await settle();
    assert.ok(!p.proxy.types("c2s").includes("RESEND_LAST"), "RESEND_LAST too early");
    p.clock.advance(1);
    await until(() => p.proxy.types("c2s").includes("RESEND_LAST"), "RESEND_LAST at 45 s");
    await p.proxy.close();
    await Promise.all([pending, answered]);
  });

  it("a window larger than one receive batch: all delivered, in order, acknowledged", async () => {
    const p = await pair(256);
    const n = 600;
    const got: string[] = [];
    const reading = (async () => {
      for await (const m of p.server.messages()) {
        got.push(new TextDecoder().decode(m));
        if (got.length === n) return;
      }
    })();
    await Promise.all(Array.from({ length: n }, (_, i) => p.client.send(utf8(`m${i}`))));
    await reading;
    assert.deepEqual(got, Array.from({ length: n }, (_, i) => `m${i}`));
    const acks = p.proxy.types("s2c").filter((t) => t === "DATA_ACK").length;
    assert.ok(acks >= 2 && acks <= n, `DATA_ACKs: ${acks}`);
    await p.client.close();
    await until(() => p.server.state === "closed", "server closed");
  });
});
