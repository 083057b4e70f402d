/**
 * Hostile peers, finding 3 (issue 11): connection slots, the time and the memory a peer
 * gets before it authenticates, and authenticated links that go quiet. Attackers connect
 * from 127.0.0.2, .3 and .4 to a real `missive serve` subprocess; the legitimate client
 * from 127.0.0.1.
 * @module
 */
import assert from "node:assert/strict";
import type net from "node:net";
import { after, describe, it } from "node:test";
import { decodeRelayMessages, encodeRequest } from "../../relay/protocol.ts";
import { RelayRefusal } from "../../relay/client.ts";
import { tempDir } from "../helpers.ts";
import {
  clientFrom,
  closedWithin,
  eventually,
  rawConnect,
  type ServeProcess,
  sessionFrom,
  someone,
  startServe,
} from "./_relay.ts";

const started: ServeProcess[] = [];
const sockets: net.Socket[] = [];
const dirs: (() => void)[] = [];

async function serveWith(args: string[] = []): Promise<ServeProcess> {
  const { dir, cleanup } = tempDir("missive-hostile-preauth-");
  dirs.push(cleanup);
  const serve = await startServe(dir, args);
  started.push(serve);
  return serve;
}

/** Opens `n` connections from `from`, `batch` at a time; refused ones count as closed. */
async function flood(serve: ServeProcess, from: string, n: number, batch = 100) {
  const open: net.Socket[] = [];
  let refused = 0;
  for (let i = 0; i < n; i += batch) {
    const got = await Promise.allSettled(
      Array.from({ length: Math.min(batch, n - i) }, () => rawConnect(serve.port, from)),
    );
    for (const r of got) {
      if (r.status === "fulfilled") {
        open.push(r.value);
        sockets.push(r.value);
      } else refused++;
    }
  }
  return { open, refused, stillOpen: () => open.filter((s) => !s.destroyed && !s.readableEnded) };
}

after(async () => {
  for (const s of sockets) s.destroy();
  for (const s of started) await s.stop();
  for (const c of dirs) c();
});

describe("hostile: before authentication (finding 3)", () => {
  it("1,100 idle connections from one address do not lock anyone else out", async () => {
    const serve = await serveWith();
    const attack = await flood(serve, "127.0.0.2", 1100);
    const alice = await someone("alice");
    let error: unknown;
    try {
      const client = await clientFrom(serve, alice, "127.0.0.1", 5000);
      await client.register();
      await client.close();
    } catch (e) {
      error = e;
    }
    assert.equal(error, undefined, `a legitimate client was locked out: ${error}`);
    // The relay let only a few of the attacker's connections stay.
    await eventually(() => attack.stillOpen().length <= 64, 5000);
    assert.ok(attack.stillOpen().length <= 64, `${attack.stillOpen().length} still open`);
  });

  it("a frame over the pre-authentication cap is refused from its length alone", async () => {
    const serve = await serveWith();
    const partial = await rawConnect(serve.port, "127.0.0.3");
    sockets.push(partial);
    const header = new Uint8Array([0x00, 0x0f, 0xff, 0xff]); // 1 MiB − 1 declared
    partial.write(header);
    partial.write(new Uint8Array(1024 * 1024 - 2)); // all but the last byte
    // Well within the handshake deadline: the length alone must end it.
    const closed = await closedWithin(partial, 5000);
    assert.ok(closed, "a 1 MiB − 1 partial frame is still held before any handshake");
    await eventually(() => serve.events().some((e) => e.event === "drop"), 2000);
    const drop = serve.events().find((e) => e.event === "drop");
    assert.match(String(drop?.reason), /pre-auth|too-large|cap/);
  });

  it("a connection that never says HELLO is closed at the handshake deadline", async () => {
    const serve = await serveWith();
    const idle = await rawConnect(serve.port, "127.0.0.2");
    sockets.push(idle);
    // The default deadline is 10 s; the session's own HELLO timer (45 s) must not be it.
    const closed = await closedWithin(idle, 15_000);
    assert.ok(closed, "an idle pre-authentication connection was held past 15 s");
  });

  it("a full pre-authentication pool evicts its oldest member for a newcomer", async () => {
    const serve = await serveWith(["--max-preauth", "16", "--max-per-address", "8"]);
    const first = await flood(serve, "127.0.0.2", 8);
    await eventually(() => false, 200); // the relay has seen them before the next ones
    const second = await flood(serve, "127.0.0.3", 8);
    const third = await flood(serve, "127.0.0.4", 8);
    // The oldest eight (from .2) made room for the newest.
    assert.ok(
      await eventually(() => first.stillOpen().length === 0, 5000),
      `${first.stillOpen().length} of the oldest are still open`,
    );
    assert.equal(third.stillOpen().length, 8);
    const alice = await someone("alice");
    const client = await clientFrom(serve, alice, "127.0.0.1", 5000);
    await client.register();
    await client.close();
    assert.ok(second.stillOpen().length < 8, "the newcomer did not evict the oldest");
    assert.ok(serve.events().some((e) => e.event === "drop" && /evict/.test(String(e.reason))));
  });

  it("slots are reserved for authenticated sessions; one too many is told 'busy'", async () => {
    const serve = await serveWith([
      "--max-connections",
      "24",
      "--max-preauth",
      "8",
      "--max-per-address",
      "64",
      "--register-rate",
      "0",
    ]);
    const attack = await flood(serve, "127.0.0.2", 40);
    const clients = [];
    for (let i = 0; i < 16; i++) {
      const c = await clientFrom(serve, await someone(`user${i}`), "127.0.0.1", 5000);
      await c.register();
      clients.push(c);
    }
    assert.ok(attack.stillOpen().length <= 8);
    const extra = await clientFrom(serve, await someone("extra"), "127.0.0.1", 5000);
    await assert.rejects(extra.register(), (e) => {
      assert.ok(e instanceof RelayRefusal, String(e));
      assert.equal(e.status, "busy");
      assert.match(e.message, /authenticated/);
      return true;
    });
    await extra.close().catch(() => {});
    for (const c of clients) await c.close();
  });
});

describe("hostile: authenticated links that go quiet (finding 3)", () => {
  it("an idle link is dropped; one that sends keep-alive requests stays", async () => {
    const serve = await serveWith(["--idle-timeout", "2s"]);
    const quiet = await sessionFrom(serve, await someone("quiet"), "127.0.0.1");
    const alive = await sessionFrom(serve, await someone("alive"), "127.0.0.1");
    let rid = 0;
    const answers: number[] = [];
    void (async () => {
      for await (const m of alive.session.messages()) {
        for (const r of decodeRelayMessages(m)) {
          if (r.kind === "response") answers.push(r.response.rid);
        }
      }
    })().catch(() => {});
    const KEEPALIVE = 8; // SPEC §23.3
    const pinging = setInterval(() => {
      void alive.session.send(encodeRequest(++rid, { op: "unknown", code: KEEPALIVE }))
        .catch(() => {});
    }, 400);
    try {
      const dropped = await closedWithin(quiet.socket, 8000);
      assert.ok(dropped, "an idle authenticated link was kept");
      assert.ok(!alive.socket.destroyed, "a link sending keep-alive requests was dropped");
      assert.ok(answers.length > 0);
    } finally {
      clearInterval(pinging);
      quiet.socket.destroy();
      alive.socket.destroy();
    }
  });
});
