/**
 * The chat's model in one process (chat/): requests, accept, refuse, lines both ways,
 * receipts, presence, forwarding, a restart that reads what waited, the history at rest,
 * and a relay that goes away (lines queued by the client). Real TCP relay on 127.0.0.1.
 */
import assert from "node:assert/strict";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { getCryptoProvider } from "../crypto/mod.ts";
import type { Identity } from "../keys/identity.ts";
import { serveRelay } from "../relay/link.ts";
import { RelayServer } from "../relay/server.ts";
import { RelayStore } from "../relay/store.ts";
import { type ChatEvent, ChatModel, History, RelayCarrier } from "../chat/mod.ts";
import { fixedIdentity, tempDir } from "./helpers.ts";

interface Running {
  model: ChatModel;
  events: ChatEvent[];
  db: string;
}

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 15_000) {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function setup() {
  const crypto = await getCryptoProvider();
  const { dir, cleanup } = tempDir("missive-chat-");
  const relayId = await fixedIdentity("relay@example.org", 200);
  const store = RelayStore.open(join(dir, "relay.db"));
  const server = new RelayServer({
    store,
    crypto,
    openRegistration: true,
    registrationsPerMinute: 0,
  });
  await server.start();
  const relay = await serveRelay("tcp://127.0.0.1:0", relayId, server);
  const open = async (who: Identity, name: string): Promise<Running> => {
    const db = join(dir, `${name}.chat.db`);
    const history = await History.open(crypto, who, db);
    const carrier = new RelayCarrier(relay.url, who, relayId.card, { maxBackoffMs: 200 });
    const model = await ChatModel.open(who, history, carrier, { retryMs: 100 });
    const events: ChatEvent[] = [];
    model.on((e) => events.push(e));
    await model.start();
    return { model, events, db };
  };
  return { crypto, dir, cleanup, relay, store, relayId, open };
}

test("chat over a relay: request, accept, refuse, lines, receipts, presence, restart", async () => {
  const s = await setup();
  const alice = await fixedIdentity("alice@example.org", 10);
  const bob = await fixedIdentity("bob@example.org", 20);
  const carol = await fixedIdentity("carol@example.org", 30);
  const a = await s.open(alice, "alice");
  let b = await s.open(bob, "bob");
  const c = await s.open(carol, "carol");
  try {
    await a.model.request("bob@example.org", "it's alice from the café");
    await until("bob sees the request", () => b.events.some((e) => e.type === "request"));
    const request = b.events.find((e) => e.type === "request")!;
    assert.deepEqual(request, {
      type: "request",
      address: "alice@example.org",
      note: "it's alice from the café",
    });
    await b.model.accept("alice@example.org");
    await until(
      "alice is told",
      () => a.events.some((e) => e.type === "accepted" && e.by === "them"),
    );

    await c.model.request("bob@example.org", "let me in");
    await until(
      "carol's request",
      () => b.events.some((e) => e.type === "request" && e.address === "carol@example.org"),
    );
    await b.model.refuse("carol@example.org");
    await until(
      "carol is told",
      () => c.events.some((e) => e.type === "refused" && e.by === "them"),
    );

    const sent = await a.model.send("bob@example.org", "hello bob");
    await until(
      "bob reads",
      () => b.events.some((e) => e.type === "line" && e.line.text === "hello bob"),
    );
    await until("delivered", () => sent.state === "delivered");
    await b.model.view("alice@example.org");
    await until("read", () => sent.state === "read");
    await b.model.send("alice@example.org", "hi alice");
    await until(
      "alice reads",
      () =>
        a.events.some((e) => e.type === "line" && e.line.text === "hi alice" && e.line.verified),
    );

    await b.model.setStatus("busy", "in a meeting");
    await until(
      "alice sees busy",
      async () =>
        (await a.model.friends()).some((f) =>
          f.address === "bob@example.org" && f.presence === "busy" && f.note === "in a meeting"
        ),
    );

    await a.model.forward("bob@example.org", "bob@example.org", 1);
    await until(
      "forwarded",
      () =>
        b.events.some((e) =>
          e.type === "line" && e.line.forwardedBy === "alice@example.org" && !e.line.verified
        ),
    );

    // Bob leaves; alice writes; bob comes back and reads it.
    await b.model.close();
    await a.model.send("bob@example.org", "while you were out");
    await until("accepted by the relay", () => a.model.queued === 0);
    b = await s.open(bob, "bob");
    await until(
      "bob reads after restart",
      () => b.events.some((e) => e.type === "line" && e.line.text === "while you were out"),
    );
    assert.ok(b.model.lines("alice@example.org").some((l) => l.text === "hello bob"));

    // At rest: 0600, no text, no address, no note in clear.
    for (const db of [a.db, b.db]) {
      assert.equal(statSync(db).mode & 0o777, 0o600);
      const raw = new TextDecoder("latin1").decode(readFileSync(db));
      for (
        const secret of [
          "hello bob",
          "alice@example.org",
          "bob@example.org",
          "in a meeting",
          "café",
        ]
      ) {
        assert.ok(!raw.includes(secret), `${db} holds "${secret}" in clear`);
      }
    }
    const relayRaw = new TextDecoder("latin1").decode(readFileSync(join(s.dir, "relay.db")));
    assert.ok(!relayRaw.includes("hello bob") && !relayRaw.includes("while you were out"));
  } finally {
    await Promise.allSettled([a.model.close(), b.model.close(), c.model.close()]);
    await s.relay.close();
    s.cleanup();
  }
});

test("chat: a line typed while the relay is down waits in the client and goes later", async () => {
  const s = await setup();
  const alice = await fixedIdentity("alice@example.org", 10);
  const bob = await fixedIdentity("bob@example.org", 20);
  const a = await s.open(alice, "alice");
  const b = await s.open(bob, "bob");
  try {
    await a.model.request("bob@example.org");
    await until("request", () => b.events.some((e) => e.type === "request"));
    await b.model.accept("alice@example.org");
    await until("accepted", () => a.events.some((e) => e.type === "accepted"));
    await until("alice's answer went", () => a.model.queued === 0);
    await a.model.close();
    // A carrier whose relay is unreachable: the line is queued and stays queued.
    const history = await History.open(s.crypto, alice, a.db);
    const down = new RelayCarrier("tcp://127.0.0.1:1", alice, s.relayId.card, {
      maxBackoffMs: 100,
    });
    const offline = await ChatModel.open(alice, history, down, { retryMs: 50 });
    await offline.start();
    const line = await offline.send("bob@example.org", "typed offline");
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(line.state, "queued");
    assert.equal(offline.queued, 1);
    await offline.close();
    const again = await s.open(alice, "alice");
    await until(
      "bob reads the queued line",
      () => b.events.some((e) => e.type === "line" && e.line.text === "typed offline"),
    );
    await again.model.close();
  } finally {
    await Promise.allSettled([a.model.close(), b.model.close()]);
    await s.relay.close();
    s.cleanup();
  }
});
