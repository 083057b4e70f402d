/**
 * Hostile peers, finding 2 (issue 11): one authenticated client must not be able to make
 * the relay hold unbounded memory or write unbounded logs. Attacks run from 127.0.0.4
 * against a real `missive serve` subprocess.
 * @module
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { encodeRequest } from "../../relay/protocol.ts";
import { RelayClient } from "../../relay/client.ts";
import { randomBytes } from "../../core/bytes.ts";
import { tempDir } from "../helpers.ts";
import {
  closedWithin,
  eventually,
  type ServeProcess,
  sessionFrom,
  someone,
  startServe,
} from "./_relay.ts";

describe("hostile: one client and the relay's memory (finding 2)", () => {
  const { dir, cleanup } = tempDir("missive-hostile-mem-");
  let serve: ServeProcess;

  before(async () => {
    serve = await startServe(dir);
  });
  after(async () => {
    await serve.stop();
    cleanup();
  });

  it("a client that pipelines requests and never acknowledges is dropped at its budget", async () => {
    const attacker = await someone("pipeliner");
    // Registered first over an honest link, so every request below is served.
    const honest = await sessionFrom(serve, attacker, "127.0.0.4");
    const client = new RelayClient(honest.session);
    await client.register();
    await client.close();
    // A huge window and no reading: nothing the relay sends is ever acknowledged.
    const { session, socket, deafen } = await sessionFrom(serve, attacker, "127.0.0.4", {
      window: 1_000_000,
    });
    deafen();
    const before = serve.rssKiB();
    // 1,100 small requests whose answers are never acknowledged, then up to 48 MiB of
    // requests.
    const sends: Promise<unknown>[] = [];
    for (let i = 1; i <= 1100; i++) {
      sends.push(session.send(encodeRequest(i, { op: "lookup", target: "nobody@x.org" })));
    }
    const big = randomBytes(1024 * 1024 - 4096);
    for (let i = 0; i < 48 && !socket.destroyed; i++) {
      sends.push(
        session.send(encodeRequest(2000 + i, { op: "send", to: "x@x.org", envelope: big })),
      );
    }
    const dropped = await closedWithin(socket, 15_000);
    const grew = Math.round((serve.rssKiB() - before) / 1024);
    socket.destroy();
    void Promise.allSettled(sends);
    await session.close().catch(() => {});
    assert.ok(dropped, `the relay still holds the connection (its RSS grew ${grew} MiB)`);
    const reasons = serve.events().filter((e) => e.event === "drop").map((e) => String(e.reason));
    assert.ok(
      reasons.some((r) => /budget|unanswered|not acknowledged/.test(r)),
      `no logged drop reason: ${JSON.stringify(reasons)}`,
    );
  });

  it("a flood of malformed relay messages is dropped, and its log lines are rate-limited", async () => {
    const attacker = await someone("flooder");
    const { session, socket } = await sessionFrom(serve, attacker, "127.0.0.4");
    const linesBefore = serve.stderr().split("\n").length;
    const sends: Promise<unknown>[] = [];
    for (let i = 0; i < 2000 && !socket.destroyed; i++) {
      sends.push(session.send(randomBytes(64)));
      if (i % 64 === 63) await new Promise((r) => setTimeout(r, 0));
    }
    const dropped = await closedWithin(socket, 15_000);
    socket.destroy();
    void Promise.allSettled(sends);
    await session.close().catch(() => {});
    // Let the relay write whatever it still has to say about this link.
    await eventually(() => false, 500);
    const lines = serve.stderr().split("\n").length - linesBefore;
    assert.ok(dropped, `a malformed flood was not dropped (${lines} log lines so far)`);
    assert.ok(lines <= 40, `${lines} log lines for one hostile link`);
    assert.ok(
      serve.events().some((e) => e.event === "log-suppressed" || e.event === "drop"),
      "no summary of what was not logged",
    );
  });
});
