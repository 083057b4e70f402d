/**
 * Delivery receipts through a relay (SPEC §23.7.1): a sender that asks for one gets the
 * relay's receipt once the recipient acknowledged the message — live, or at its next
 * `receive` — with the ack's status; never anyone else; bounded by the sender's quotas.
 * The library over fake channels, the decoder's bad input, the CLI (`relay send --wait`,
 * `relay inbox`) against a real `missive serve` subprocess on 127.0.0.1, and one test on
 * the JetStream store (a 3-node cluster, Deno only, skipped without nats-server).
 * @module
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { after, before, describe, it } from "node:test";
import { utf8 } from "../core/bytes.ts";
import { openFailureStatus } from "../amp/receipt.ts";
import { encodeCbor } from "../core/cbor.ts";
import { ERROR_CODES, type ErrorCode, isMissiveError, MissiveError } from "../core/errors.ts";
import { getCryptoProvider } from "../crypto/mod.ts";
import { defaultRegistry, encodeEnvelope } from "../mod.ts";
import type { Identity } from "../keys/identity.ts";
import { RelayClient, RelayRefusal } from "../relay/client.ts";
import { type JetStreamStore, openJetStreamStore } from "../relay/jetstream/mod.ts";
import { awaitReceipt, handleDeliveries, receiptErrorCode, sealText } from "../relay/mailbox.ts";
import {
  decodeRelayMessage,
  decodeRelayMessages,
  encodeReceipt,
  encodeRequest,
  MAX_RELAY_RECEIPT,
  type RelayReceipt,
} from "../relay/protocol.ts";
import { RelayServer } from "../relay/server.ts";
import { RelayStore } from "../relay/store.ts";
import { SeenMessages } from "../queue/seen.ts";
import { receiptJson, receiptLine } from "../cmd/relay_mail.ts";
import { DENO, ENTRY, fixedIdentity, ROOT, runCli, startCli, tempDir } from "./helpers.ts";
import { haveNatsServer, type NatsCluster, startNatsCluster } from "./nats_cluster.ts";
import { fakeChannelPair } from "./relay_channel_fake.ts";
import { person, startRelay } from "./relay_harness.ts";

const registry = defaultRegistry();

/**
 * Bob takes `n` deliveries and acknowledges each as handleDeliveries does; `receive`
 * first unless the link already receives (a second receive restarts from the oldest).
 */
async function bobTakes(client: RelayClient, bob: Identity, n: number, receive = true) {
  const { dir, cleanup } = tempDir("missive-receipts-seen-");
  const seen = new SeenMessages(join(dir, "seen.db"));
  const rejected: string[] = [];
  try {
    if (receive) await client.receive();
    const counts = await handleDeliveries(client, {
      registry,
      identity: bob,
      seen,
      limit: n,
      onRejected: (_d, e) => rejected.push(e.code),
    }, () => {});
    return { counts, rejected };
  } finally {
    seen.close();
    cleanup();
  }
}

/** The receipts a link takes within `ms` of quiet, acknowledged. */
async function receiptsOf(client: RelayClient, n: number): Promise<RelayReceipt[]> {
  const got: RelayReceipt[] = [];
  for await (const item of client.incoming()) {
    assert.equal(item.kind, "receipt", "a receipts-only link gets no messages");
    if (item.kind !== "receipt") continue;
    got.push(item.receipt);
    await client.ack(item.receipt.id);
    if (got.length === n) break;
  }
  return got;
}

describe("relay receipts (library)", () => {
  it("an accepted receipt, live to the connected sender, then gone from both queues", async () => {
    const relay = await startRelay();
    try {
      const [alice, bob] = [await person("alice"), await person("bob")];
      const a = relay.connect(alice), b = relay.connect(bob);
      await a.register();
      await b.register();
      assert.equal(await a.receive("receipts"), 0);
      const { envelope } = await sealText(registry, alice, bob.card, "did you get this?");
      const mid = await a.send("bob@example.org", envelope, { receipt: true });
      const waiting = awaitReceipt(a, mid, { timeoutMs: 10_000 });
      const { counts } = await bobTakes(b, bob, 1);
      assert.equal(counts.shown, 1);
      const r = await waiting;
      assert.ok(r);
      assert.equal(r.message, mid);
      assert.equal(r.status, "accepted");
      assert.equal(r.recipient, "bob@example.org");
      assert.deepEqual(r.recipientId, bob.card.id);
      assert.notEqual(r.id, mid, "the receipt has its own relay message ID");
      assert.equal(receiptErrorCode(r), undefined);
      // awaitReceipt acknowledged it: nothing left for anyone.
      await new Promise((res) => setTimeout(res, 20));
      assert.equal(relay.store.total, 0);
      assert.equal(relay.server.stats().receipts, 1);
    } finally {
      await relay.close();
    }
  });

  it("without the flag, or for a link that asks only for messages, no receipt", async () => {
    const relay = await startRelay();
    try {
      const [alice, bob] = [await person("alice"), await person("bob")];
      const a = relay.connect(alice), b = relay.connect(bob);
      await a.register();
      await b.register();
      const { envelope } = await sealText(registry, alice, bob.card, "no receipt asked");
      await a.send("bob@example.org", envelope);
      await bobTakes(b, bob, 1);
      assert.equal(relay.store.total, 0, "no receipt was queued");
      // With the flag: the receipt waits, but a messages-only link neither counts nor gets it.
      const second = await sealText(registry, alice, bob.card, "receipt asked");
      const mid = await a.send("bob@example.org", second.envelope, { receipt: true });
      await bobTakes(b, bob, 1, false);
      assert.equal(await relay.store.receiptsQueued(alice.card.id), 1);
      assert.equal(await a.receive(), 0, "receive(messages) does not count receipts");
      assert.equal(await a.receive("all"), 1);
      const [r] = await receiptsOf(a, 1);
      assert.equal(r.message, mid);
    } finally {
      await relay.close();
    }
  });

  it("envelopes bob cannot open: hash-mismatch, undecryptable and unparsable receipts", async () => {
    const relay = await startRelay();
    try {
      const [alice, bob, carol] = [
        await person("alice"),
        await person("bob"),
        await person("carol"),
      ];
      const a = relay.connect(alice), b = relay.connect(bob);
      await a.register();
      await b.register();
      const tampered = (await sealText(registry, alice, bob.card, "altered")).envelope;
      tampered[tampered.length - 1] ^= 0x01; // the signature's last byte
      const forCarol = (await sealText(registry, alice, carol.card, "not bob's")).envelope;
      const garbage = encodeEnvelope({ protocolType: 7, protocolVersion: 1, payload: utf8("hi") });
      const mids: number[] = [];
      for (const e of [tampered, forCarol, garbage]) {
        mids.push(await a.send("bob@example.org", e, { receipt: true }));
      }
      const { rejected } = await bobTakes(b, bob, 3);
      assert.deepEqual(rejected, ["auth-failed", "not-a-recipient", "malformed"]);
      assert.equal(await a.receive("receipts"), 3);
      const got = await receiptsOf(a, 3);
      assert.deepEqual(got.map((r) => r.message), mids);
      assert.deepEqual(got.map((r) => r.status), ["hash-mismatch", "undecryptable", "unparsable"]);
      assert.deepEqual(got.map(receiptErrorCode), ["auth-failed", "not-a-recipient", "malformed"]);
    } finally {
      await relay.close();
    }
  });

  it("an offline sender gets its receipt at its next receive, across a relay restart", async () => {
    const { dir, cleanup } = tempDir("missive-receipts-db-");
    const dbPath = join(dir, "relay.db");
    const [alice, bob] = [await person("alice"), await person("bob")];
    let mid: number;
    let relay = await startRelay({ dbPath });
    try {
      const a = relay.connect(alice);
      await a.register();
      await relay.connect(bob).register();
      const { envelope } = await sealText(registry, alice, bob.card, "while you were out");
      mid = await a.send("bob@example.org", envelope, { receipt: true });
      await a.close(); // alice goes away
      await bobTakes(relay.connect(bob), bob, 1);
      assert.equal(await relay.store.receiptsQueued(alice.card.id), 1);
    } finally {
      await relay.close();
    }
    relay = await startRelay({ dbPath });
    try {
      const a = relay.connect(alice);
      assert.equal(await a.receive("all"), 1, "the receipt survived the restart");
      const [r] = await receiptsOf(a, 1);
      assert.equal(r.message, mid);
      assert.equal(r.status, "accepted");
      await new Promise((res) => setTimeout(res, 20));
      assert.equal(relay.store.total, 0);
    } finally {
      await relay.close();
      cleanup();
    }
  });

  it("a receipts-only link refills its window as it acknowledges; bob keeps his messages", async () => {
    const relay = await startRelay({ window: 4 });
    try {
      const [alice, bob] = [await person("alice"), await person("bob")];
      const a = relay.connect(alice), b = relay.connect(bob);
      await a.register();
      await b.register();
      const mids: number[] = [];
      for (let i = 0; i < 10; i++) {
        const { envelope } = await sealText(registry, alice, bob.card, `#${i}`);
        mids.push(await a.send("bob@example.org", envelope, { receipt: true }));
      }
      await bobTakes(b, bob, 10);
      // alice also has a message from bob waiting: her receipts-only link leaves it alone.
      const { envelope } = await sealText(registry, bob, alice.card, "a reply");
      await b.send("alice@example.org", envelope);
      assert.equal(await a.receive("receipts"), 10);
      const got = await receiptsOf(a, 10);
      assert.deepEqual(got.map((r) => r.message), mids);
      assert.equal(await relay.store.queued(alice.card.id), 1, "bob's reply still queued");
      const a2 = relay.connect(alice);
      assert.equal(await a2.receive(), 1);
    } finally {
      await relay.close();
    }
  });

  it("receipts never reach a third party, and nobody else's ack makes one", async () => {
    const relay = await startRelay();
    try {
      const [alice, bob, carol] = [
        await person("alice"),
        await person("bob"),
        await person("carol"),
      ];
      const a = relay.connect(alice), b = relay.connect(bob), c = relay.connect(carol);
      for (const x of [a, b, c]) await x.register();
      assert.equal(await c.receive("all"), 0);
      const { envelope } = await sealText(registry, alice, bob.card, "for bob alone");
      const mid = await a.send("bob@example.org", envelope, { receipt: true });
      // carol acknowledges bob's message: refused, and no receipt is made.
      const refused = await c.ack(mid).catch((e) => e);
      assert.ok(refused instanceof RelayRefusal && refused.status === "unknown-message");
      assert.equal(await relay.store.receiptsQueued(alice.card.id), 0);
      await bobTakes(b, bob, 1);
      assert.equal(await relay.store.receiptsQueued(alice.card.id), 1);
      // carol cannot acknowledge (delete) alice's receipt either.
      const [queued] = relay.store.pending(alice.card.id, 0, 10);
      assert.ok(queued.receipt);
      assert.equal((await c.ack(queued.mid).catch((e) => e)).status, "unknown-message");
      assert.equal(c.buffered, 0, "carol's receiving link got nothing");
      assert.equal(b.buffered, 0, "bob's link got no receipt of his own ack");
      assert.equal(await a.receive("receipts"), 1);
    } finally {
      await relay.close();
    }
  });

  it("a sender that never reads its receipts meets its quota: receipts dropped, acks stand", async () => {
    const relay = await startRelay({ quota: 2 });
    try {
      const [alice, bob] = [await person("alice"), await person("bob")];
      const a = relay.connect(alice), b = relay.connect(bob);
      await a.register();
      await b.register();
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 2; i++) {
          const { envelope } = await sealText(registry, alice, bob.card, `round ${round} #${i}`);
          await a.send("bob@example.org", envelope, { receipt: true });
        }
        const { counts } = await bobTakes(b, bob, 2, round === 0);
        assert.equal(counts.shown, 2, "every ack is taken, receipt or not");
      }
      // Two receipts per (sender, acknowledging user) are kept; four were dropped.
      assert.equal(await relay.store.receiptsQueued(alice.card.id), 2);
      assert.equal(relay.store.total, 2);
      assert.equal(relay.store.totalBytes, 2 * 512, "a receipt counts its fixed 512 bytes");
      const stats = relay.server.stats();
      assert.equal(stats.receipts, 2);
      assert.equal(stats["receipts-dropped"], 4);
      assert.ok(relay.events.some((e) => e.event === "receipt-dropped"));
    } finally {
      await relay.close();
    }
  });

  it("the sender's per-recipient cap bounds receipts from everyone", async () => {
    const relay = await startRelay({ recipientQuota: 1 });
    try {
      const [alice, bob, carol] = [
        await person("alice"),
        await person("bob"),
        await person("carol"),
      ];
      const a = relay.connect(alice);
      await a.register();
      for (const [who, id] of [[relay.connect(bob), bob], [relay.connect(carol), carol]] as const) {
        await who.register();
        const { envelope } = await sealText(registry, alice, id.card, "hello");
        await a.send(id.card.address, envelope, { receipt: true });
        await bobTakes(who, id, 1);
      }
      assert.equal(await relay.store.queued(alice.card.id), 1, "one entry at most for alice");
      assert.equal(relay.server.stats()["receipts-dropped"], 1);
    } finally {
      await relay.close();
    }
  });

  it("a version-1 database is migrated: its queued message still delivers", async () => {
    const { dir, cleanup } = tempDir("missive-receipts-v1-");
    const dbPath = join(dir, "relay.db");
    try {
      // A version-1 file: the queue without the receipt columns.
      const { DatabaseSync } = await import("node:sqlite");
      const db = new DatabaseSync(dbPath);
      db.exec(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);" +
          "INSERT INTO meta VALUES ('schema', 1);" +
          "CREATE TABLE queue (mid INTEGER PRIMARY KEY AUTOINCREMENT, recipient BLOB NOT NULL, " +
          "sender BLOB NOT NULL, sender_address TEXT NOT NULL, envelope BLOB NOT NULL, " +
          "digest BLOB NOT NULL, enqueued INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0);",
      );
      db.prepare(
        "INSERT INTO queue (recipient, sender, sender_address, envelope, digest, enqueued) " +
          "VALUES (?, ?, ?, ?, ?, ?)",
      ).run(
        new Uint8Array(16).fill(1),
        new Uint8Array(16).fill(2),
        "a@b.c",
        utf8("x"),
        utf8("d"),
        1,
      );
      db.close();
      const store = RelayStore.open(dbPath);
      const [m] = store.pending(new Uint8Array(16).fill(1), 0, 10);
      assert.equal(m.wantsReceipt, undefined);
      assert.equal(m.receipt, undefined);
      assert.equal(store.total, 1);
      await store.close();
    } finally {
      cleanup();
    }
  });
});

describe("relay receipts: bad input", () => {
  const receipt: RelayReceipt = {
    id: 43,
    message: 42,
    recipientId: new Uint8Array(16).fill(0xab),
    recipient: "bob@example.org",
    status: "accepted",
    acknowledged: 1_700_000_000_000,
  };
  const good = encodeReceipt(receipt);
  const code = (bytes: Uint8Array) => {
    try {
      decodeRelayMessage(bytes);
    } catch (e) {
      assert.ok(isMissiveError(e), `not a MissiveError: ${e}`);
      return e.code;
    }
    return "decoded";
  };

  it("round trip", () => {
    assert.deepEqual(decodeRelayMessage(good), { kind: "receipt", receipt });
  });

  it("truncations, bit flips, oversize and garbage give typed errors, never a throw of another kind", () => {
    for (let n = 0; n < good.length; n++) {
      assert.ok(["malformed", "too-large"].includes(code(good.subarray(0, n))), `cut at ${n}`);
    }
    for (let i = 0; i < good.length; i++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const flipped = new Uint8Array(good);
        flipped[i] ^= mask;
        const c = code(flipped);
        assert.ok(["decoded", "malformed", "too-large"].includes(c), `byte ${i} ^ ${mask}: ${c}`);
      }
    }
    // Grease past the cap: the fixed size cap, before the fields are taken.
    const big = encodeCbor(
      new Map<number, unknown>([
        [0, 4],
        [1, 43],
        [2, 42],
        [3, receipt.recipientId],
        [4, "bob@example.org"],
        [5, 0],
        [6, 1],
        [40, "x".repeat(MAX_RELAY_RECEIPT)],
      ]) as never,
    );
    assert.equal(code(big), "too-large");
    for (let seed = 0; seed < 200; seed++) {
      const junk = new Uint8Array(1 + (seed % 40)).map((_, i) => (seed * 31 + i * 17) & 0xff);
      junk[0] = 0xa0 | (seed % 8); // a map of a few entries, then junk
      assert.ok(["decoded", "malformed", "too-large"].includes(code(junk)));
    }
    // Wrong types in the new fields.
    const map = (...e: [number, unknown][]) => encodeCbor(new Map(e) as never);
    const id = receipt.recipientId;
    assert.equal(
      code(map([0, 4], [1, 1], [2, 2], [3, id], [4, "a@b.c"], [5, 5], [6, 1])),
      "malformed",
    );
    assert.equal(
      code(map([0, 4], [1, 1], [2, 2], [3, id.subarray(1)], [4, "a"], [5, 0], [6, 1])),
      "malformed",
    );
    assert.equal(code(map([0, 4], [1, 1], [3, id], [4, "a@b.c"], [5, 0], [6, 1])), "malformed");
    assert.equal(
      code(map([0, 0], [1, 1], [2, 4], [3, "b@c.d"], [4, utf8("x")], [5, 1])),
      "malformed",
    );
    assert.equal(code(map([0, 0], [1, 1], [2, 6], [3, 3])), "malformed");
    assert.equal(code(map([0, 0], [1, 1], [2, 6], [3, "all"])), "malformed");
  });

  it("the relay refuses a receipt (or garbage) from a client and keeps serving", async () => {
    const relay = await startRelay();
    try {
      const alice = await person("alice");
      const pair = fakeChannelPair(alice.card, relay.relay.card, {});
      void relay.server.serve(pair.server);
      const decoded: ReturnType<typeof decodeRelayMessages> = [];
      const reading = (async () => {
        for await (const m of pair.client.messages()) {
          decoded.push(...decodeRelayMessages(m));
          if (decoded.length >= 4) return;
        }
      })();
      const truncated = encodeRequest(1, { op: "receive", mode: "all" }).slice(0, -1);
      for (
        const bytes of [good, truncated, utf8("garbage"), encodeRequest(7, { op: "register" })]
      ) {
        await pair.client.send(bytes);
      }
      await reading;
      const statuses = decoded.map((m) => m.kind === "response" ? m.response.status : m.kind);
      assert.deepEqual(statuses, ["malformed", "malformed", "malformed", "ok"]);
      await pair.client.close();
    } finally {
      await relay.close();
    }
  });
});

// ---------------------------------------------------------------------------------------
// The CLI against a real relay subprocess.

/** A CLI subprocess whose stdin we write and whose stderr we watch. */
function spawnSend(args: string[], stdin: string) {
  const child: ChildProcess = spawn(DENO, ["run", "--allow-all", "--quiet", ENTRY, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp" },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stderr = "", stdout = "";
  child.stderr!.on("data", (d: Uint8Array) => (stderr += new TextDecoder().decode(d)));
  child.stdout!.on("data", (d: Uint8Array) => (stdout += new TextDecoder().decode(d)));
  child.stdin!.end(stdin);
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const done = new Promise<{ code: number | null; stderr: string; stdout: string }>((resolve) =>
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stderr, stdout });
    })
  );
  const saw = async (re: RegExp) => {
    const deadline = Date.now() + 30_000;
    while (!re.test(stderr)) {
      if (Date.now() > deadline || child.exitCode !== null) {
        assert.fail(`no ${re} in: ${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  return { child, done, saw };
}

describe("relay send --wait, relay inbox (real relay on 127.0.0.1)", () => {
  const { dir, cleanup } = tempDir("missive-receipts-cli-");
  const f = (name: string) => join(dir, name);
  let serve: Awaited<ReturnType<typeof startCli>>;
  const relayArgs = (who: string) => [
    "--relay",
    serve.url,
    "--relay-card",
    f("relay.card"),
    "--key",
    f(`${who}.key`),
  ];
  const cli = (who: string, sub: string[], stdin?: string) =>
    runCli(["relay", ...sub, ...relayArgs(who)], { stdin });

  before(async () => {
    for (const name of ["relay", "alice", "bob", "carol", "fakebob"]) {
      const address = name === "fakebob" ? "bob@example.org" : `${name}@example.org`;
      const r = await runCli(["keygen", "--name", address, "-o", f(`${name}.key`)]);
      assert.equal(r.code, 0, r.stderr);
      writeFileSync(f(`${name}.card`), r.stdout);
    }
    serve = await startCli([
      "serve",
      "tcp://127.0.0.1:0",
      "--key",
      f("relay.key"),
      "--db",
      f("relay.db"),
    ], {
      ready: /relay listening on (\S+)/,
    });
    for (const who of ["alice", "bob", "carol"]) {
      const r = await cli(who, ["register"]);
      assert.equal(r.code, 0, r.stderr);
    }
  });

  after(async () => {
    if (serve?.child.exitCode === null) {
      process.kill(serve.child.pid!, "SIGTERM");
      await serve.done;
    }
    cleanup();
  });

  it("--wait while bob is offline; bob comes online within the wait: exit 0, delivered", async () => {
    const send = spawnSend(
      ["relay", "send", "--to", "bob@example.org", "--wait", "30s", ...relayArgs("alice")],
      "are you there?",
    );
    await send.saw(/waiting up to 30s for the delivery receipt/);
    const inbox = await cli("bob", ["inbox"]);
    assert.equal(inbox.code, 0, inbox.stderr);
    assert.match(inbox.text, /^alice@example\.org: are you there\?$/m);
    const r = await send.done;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /sent to bob@example\.org with .* \(relay message \d+\)/);
    assert.match(r.stderr, /delivered to bob@example\.org \(receipt from the relay\)/);
    assert.equal(r.stdout, "");
  });

  it("--wait with bob watching: the receipt comes at once, --json on stdout", async () => {
    const watch = await startCli(["relay", "watch", ...relayArgs("bob")], {
      ready: /(watching) /,
    });
    try {
      const r = await cli("alice", ["send", "--to", "bob@example.org", "--wait", "--json"], "hi");
      assert.equal(r.code, 0, r.stderr);
      const j = JSON.parse(r.text);
      assert.equal(j.status, "accepted");
      assert.equal(j.to, "bob@example.org");
      assert.equal(j.from, "relay");
      assert.equal(typeof j.receipt, "number");
    } finally {
      process.kill(watch.child.pid!, "SIGTERM");
      await watch.done;
    }
  });

  it("no receipt in time: exit 12, the message stays queued; the receipt comes at the next inbox", async () => {
    const r = await cli("alice", ["send", "--to", "bob@example.org", "--wait", "1s"], "later");
    assert.equal(r.code, 12, r.stderr);
    assert.match(
      r.stderr,
      /no delivery receipt within 1s: relay message (\d+) stays queued at the relay and is delivered when bob@example\.org next connects/,
    );
    const mid = Number(/relay message (\d+) stays/.exec(r.stderr)![1]);
    assert.equal(r.stdout.length, 0);
    const inbox = await cli("bob", ["inbox"]);
    assert.match(inbox.text, /alice@example\.org: later/);
    // alice's next inbox shows the receipt (one line) and acknowledges it.
    const hers = await cli("alice", ["inbox"]);
    assert.equal(hers.code, 0, hers.stderr);
    assert.match(
      hers.stderr,
      new RegExp(
        `receipt: relay message ${mid} delivered to bob@example\\.org \\(per the relay\\)`,
      ),
    );
    const again = await cli("alice", ["inbox", "--json"]);
    assert.equal(again.text, "", "acknowledged: not shown twice");
    // --json: one object per receipt.
    await cli("alice", ["send", "--to", "bob@example.org", "--wait", "1s"], "json please");
    await cli("bob", ["inbox"]);
    const json = await cli("alice", ["inbox", "--json"]);
    const line = JSON.parse(json.text);
    assert.equal(line.status, "accepted");
    assert.equal(line.to, "bob@example.org");
  });

  it("a message bob cannot decrypt: exit 5 with the receipt's status (undecryptable)", async () => {
    // Sealed to another card that claims bob's address: the relay routes it to bob.
    const send = spawnSend(
      [
        "relay",
        "send",
        "--to-card",
        f("fakebob.card"),
        "--wait",
        "30s",
        ...relayArgs("alice"),
      ],
      "wrong keys",
    );
    await send.saw(/waiting up to/);
    const inbox = await cli("bob", ["inbox"]);
    assert.match(inbox.stderr, /could not be opened/);
    const r = await send.done;
    assert.equal(r.code, 5, r.stderr);
    assert.match(
      r.stderr,
      /reached bob@example\.org, who could not use it: undecryptable, it was not sealed to a key the recipient holds \(receipt from the relay\)/,
    );
  });

  it("receipts never reach carol; --wait is for send only", async () => {
    const carol = await cli("carol", ["inbox", "--json"]);
    assert.equal(carol.code, 0, carol.stderr);
    assert.equal(carol.text, "");
    assert.doesNotMatch(carol.stderr, /receipt/);
    const misuse = await cli("carol", ["inbox", "--wait"]);
    assert.equal(misuse.code, 2);
    assert.match(misuse.stderr, /--wait is for relay send/);
    const help = await runCli(["relay", "--help"]);
    assert.match(help.text, /--wait \[DURATION\]/);
    assert.match(help.text, /Exit codes: .*/);
  });
});

// ---------------------------------------------------------------------------------------
// The JetStream store: a receipt made once, whichever nodes take the acks.

const deno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
const jsSkip = !deno
  ? "Deno only (as the other NATS tests)"
  : haveNatsServer() || process.env.CI === "true"
  ? false
  : "nats-server is not installed (bash scripts/install-peers.sh installs it)";

describe("relay receipts on a JetStream cluster", { skip: jsSkip }, () => {
  let cluster: NatsCluster;
  let relayId: Identity;
  const nodes: { store: JetStreamStore; server: RelayServer; clients: RelayClient[] }[] = [];

  before(async () => {
    cluster = await startNatsCluster(3);
    relayId = await fixedIdentity("relay@example.org", 200);
    for (const name of ["one", "two"]) {
      const store = await openJetStreamStore({
        servers: cluster.nodes.map((n) => n.url),
        node: name,
      });
      const server = new RelayServer({
        store,
        crypto: await getCryptoProvider(),
        openRegistration: true,
        registrationsPerMinute: 0,
      });
      await server.start();
      nodes.push({ store, server, clients: [] });
    }
  });

  after(async () => {
    for (const n of nodes) {
      await Promise.all(n.clients.map((c) => c.close().catch(() => {})));
      await n.server.close();
    }
    await cluster?.stop();
  });

  const connect = (i: number, who: Identity) => {
    const pair = fakeChannelPair(who.card, relayId.card, {});
    void nodes[i].server.serve(pair.server);
    const c = new RelayClient(pair.client, { timeoutMs: 20_000 });
    nodes[i].clients.push(c);
    return c;
  };

  it("bob acknowledges on both nodes at once: alice (on the first) gets one receipt", async () => {
    const [alice, bob] = [await person("alice"), await person("bob")];
    const a = connect(0, alice);
    await a.register();
    const b1 = connect(0, bob), b2 = connect(1, bob);
    await b1.register();
    const { envelope } = await sealText(registry, alice, bob.card, "through the cluster");
    const mid = await a.send("bob@example.org", envelope, { receipt: true });
    // Both of bob's links (one per node) receive the message, then both acknowledge it.
    for (const b of [b1, b2]) {
      await b.receive();
      const first = await b.deliveries().next();
      assert.equal(first.value?.message, mid);
    }
    const acks = await Promise.allSettled([b1.ack(mid), b2.ack(mid)]);
    assert.equal(acks.filter((x) => x.status === "fulfilled").length, 1, "one ack removed it");
    const late = acks.find((x) => x.status === "rejected") as PromiseRejectedResult;
    assert.ok(late.reason instanceof RelayRefusal && late.reason.status === "unknown-message");
    assert.equal(await a.receive("receipts"), 1, "one receipt, not two");
    const r = await awaitReceipt(a, mid, { timeoutMs: 10_000 });
    assert.equal(r?.status, "accepted");
    assert.equal(r?.recipient, "bob@example.org");
    // Acknowledged: nothing left for alice.
    assert.equal(await nodes[1].store.queued(alice.card.id), 0);
  });
});

// The status a client acknowledges an envelope it cannot open with (SPEC §23.7); the
// relay mailbox and the chat share the one function.
describe("open failures → receipt statuses", () => {
  it("auth-failed is hash-mismatch, not-a-recipient and key undecryptable, the rest unparsable", () => {
    const special: Partial<Record<ErrorCode, string>> = {
      "auth-failed": "hash-mismatch",
      "not-a-recipient": "undecryptable",
      key: "undecryptable",
    };
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
      assert.equal(
        openFailureStatus(new MissiveError(code, "x")),
        special[code] ?? "unparsable",
        code,
      );
    }
  });

  it("round trip with receiptErrorCode: the sender learns the code the recipient met", () => {
    for (const code of ["auth-failed", "not-a-recipient", "malformed"] as const) {
      const status = openFailureStatus(new MissiveError(code, "x"));
      const receipt: RelayReceipt = {
        id: 1,
        message: 1,
        recipientId: new Uint8Array(16),
        recipient: "b@c.d",
        status,
        acknowledged: 0,
      };
      assert.equal(receiptErrorCode(receipt), code);
    }
  });
});

// Error mapping of the CLI exit codes (SPEC §23.7.1).
describe("receipt statuses → exit codes", () => {
  it("maps every status", () => {
    const r = (status: RelayReceipt["status"]): RelayReceipt => ({
      id: 1,
      message: 1,
      recipientId: new Uint8Array(16),
      recipient: "b@c.d",
      status,
      acknowledged: 0,
    });
    const exit = (s: RelayReceipt["status"]) => {
      const c = receiptErrorCode(r(s));
      return c === undefined ? 0 : new MissiveError(c, "").exitCode;
    };
    assert.deepEqual(
      ["accepted", "hash-mismatch", "undecryptable", "unparsable", "unknown-id"].map((s) =>
        exit(s as RelayReceipt["status"])
      ),
      [0, 4, 5, 3, 7],
    );
  });

  it("a receipt's address is shown through the sanitiser", () => {
    const line = receiptLine({
      id: 1,
      message: 9,
      recipientId: new Uint8Array(16),
      recipient: "evil\u001b[2J\u202e@example.org",
      status: "undecryptable",
      acknowledged: 0,
    });
    assert.ok(!line.includes("\u001b") && !line.includes("\u202e"), line);
    assert.match(
      line,
      /^receipt: relay message 9 reached evil.*, who could not use it: undecryptable/,
    );
    assert.doesNotMatch(
      receiptJson({
        id: 1,
        message: 9,
        recipientId: new Uint8Array(16),
        recipient: "x\u202e@y",
        status: "accepted",
        acknowledged: 0,
      }),
      /\u202e/,
    );
  });
});
