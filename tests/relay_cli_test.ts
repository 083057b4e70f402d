/**
 * `missive serve` and `missive relay` end to end over real sessions on TCP (loopback,
 * port 0): the relay runs as a subprocess (killed with SIGKILL and restarted), clients
 * run the CLI in this process (runCli) and, for a few commands, as subprocesses.
 * @module
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { after, before, describe, it } from "node:test";
import { randomBytes, toHex } from "../core/bytes.ts";
import { isMissiveError } from "../core/errors.ts";
import { getCryptoProvider } from "../crypto/mod.ts";
import { parseCardText } from "../keys/card.ts";
import { readKeyFile } from "../keys/identity.ts";
import { peerCloseOf } from "../session/options.ts";
import { Session } from "../session/session.ts";
import { connectTransport } from "../transports/mod.ts";
import { DENO, ENTRY, ROOT, runCli, SERVE_READY, spawnCli, startCli, tempDir } from "./helpers.ts";

interface Relay {
  child: ChildProcess;
  url: string;
  stderr: () => string;
  exited: Promise<number | null>;
}

async function startServe(args: string[]): Promise<Relay> {
  const serve = await startCli(["serve", ...args], { ready: SERVE_READY, timeoutMs: 0 });
  return {
    child: serve.child,
    url: serve.url,
    stderr: serve.stderr,
    // The exit code as the child reports it: null when a signal ended it.
    exited: new Promise((resolve) => serve.child.once("exit", (code) => resolve(code))),
  };
}

async function kill(relay: Relay, signal: "SIGKILL" | "SIGTERM"): Promise<number | null> {
  // process.kill, not child.kill: Deno's child_process reports a child it signalled
  // itself as killed (code null) even when it exited normally.
  process.kill(relay.child.pid!, signal);
  return await relay.exited;
}

describe("missive serve + missive relay (real sessions over TCP)", () => {
  const { dir, cleanup } = tempDir("missive-relay-cli-");
  const f = (name: string) => join(dir, name);
  const db = f("relay.db");
  let relay: Relay;
  const client = (who: string, sub: string[], stdin?: string) =>
    runCli([
      "relay",
      ...sub,
      "--relay",
      relay.url,
      "--relay-card",
      f("relay.card"),
      "--key",
      f(`${who}.key`),
    ], {
      stdin,
    });

  before(async () => {
    for (
      const [name, address] of [
        ["relay", "relay@example.org"],
        ["alice", "alice@example.org"],
        ["bob", "bob@example.org"],
        ["mallory", "alice@example.org"],
      ]
    ) {
      const r = await runCli(["keygen", "--name", address, "-o", f(`${name}.key`)]);
      assert.equal(r.code, 0, r.stderr);
      writeFileSync(f(`${name}.card`), r.stdout);
    }
    relay = await startServe([
      "tcp://127.0.0.1:0",
      "--key",
      f("relay.key"),
      "--db",
      db,
      "--max-message",
      "4k",
      "--log-json",
    ]);
  });

  after(async () => {
    if (relay.child.exitCode === null) await kill(relay, "SIGKILL");
    cleanup();
  });

  it("alice and bob register; collision and untrusted relay card are clear errors", async () => {
    for (const who of ["alice", "bob"]) {
      const r = await client(who, ["register"]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.text, new RegExp(`registered ${who}@example.org \\(id [0-9a-f]{32}\\)`));
    }
    const collision = await client("mallory", ["register"]);
    assert.equal(collision.code, 15, collision.stderr);
    assert.match(collision.stderr, /collision \(address alice@example\.org is already registered/);
    assert.equal(collision.stdout.length, 0);
    const untrusted = await runCli([
      "relay",
      "list",
      "--relay",
      relay.url,
      "--relay-card",
      f("bob.card"),
      "--key",
      f("alice.key"),
    ]);
    assert.equal(untrusted.code, 7, untrusted.stderr);
    assert.match(untrusted.stderr, /is not the relay of --relay-card/);
    // A relay card signed by a CA the user trusts; a CA the user does not trust fails.
    const ca = await runCli(["keygen", "--name", "ca@example.org", "-o", f("ca.key")]);
    writeFileSync(f("ca.card"), ca.stdout);
    const signed = await runCli(["card", f("relay.card"), "--sign", f("ca.key")]);
    writeFileSync(f("relay.signed.card"), signed.stdout);
    const viaCa = (caCard: string) =>
      runCli([
        "relay",
        "list",
        "--relay",
        relay.url,
        "--relay-card",
        f("relay.signed.card"),
        "--relay-ca",
        caCard,
        "--key",
        f("alice.key"),
      ]);
    const ok = await viaCa(f("ca.card"));
    assert.equal(ok.code, 0, ok.stderr);
    const wrongCa = await viaCa(f("bob.card"));
    assert.equal(wrongCa.code, 7, wrongCa.stderr);
    assert.match(wrongCa.stderr, /carries no valid signature by a trusted CA/);
    const lookup = await client("alice", ["lookup", "bob@example.org", "--json"]);
    assert.equal(lookup.code, 0, lookup.stderr);
    assert.equal(JSON.parse(lookup.text).address, "bob@example.org");
  });

  it("unknown recipient and oversize message are their own clear errors", async () => {
    const unknown = await client("alice", ["send", "--to", "nobody@example.org"], "hello?");
    assert.equal(unknown.code, 15, unknown.stderr);
    assert.match(unknown.stderr, /unknown recipient nobody@example\.org/);
    const big = await client(
      "alice",
      ["send", "--to", "bob@example.org"],
      toHex(randomBytes(6000)),
    );
    assert.equal(big.code, 3, big.stderr);
    assert.match(big.stderr, /too-large .*exceeds this relay's cap of 4096/);
  });

  it("3 messages to offline bob survive SIGKILL of the relay and arrive in order, from alice", async () => {
    const texts = ["first: the eagle lands", "second: at midnight", "third: bring cake"];
    for (const t of texts) {
      const r = await client("alice", ["send", "--to", "bob@example.org"], t);
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stderr,
        /sent to bob@example\.org with simple\/v3 \+ text\/v2 \(relay message \d+\)/,
      );
    }
    assert.equal(await kill(relay, "SIGKILL"), null);
    for (const file of [db, `${db}-wal`]) {
      let bytes: Uint8Array;
      try {
        bytes = readFileSync(file);
      } catch {
        continue;
      }
      for (const t of texts) {
        assert.equal(Buffer.from(bytes).includes(Buffer.from("eagle")), false, `${file}: ${t}`);
      }
    }
    relay = await startServe(["tcp://127.0.0.1:0", "--key", f("relay.key"), "--db", db]);
    // bob, as a real subprocess
    const inbox = await spawnCli([
      "relay",
      "inbox",
      "--json",
      "--relay",
      relay.url,
      "--relay-card",
      f("relay.card"),
      "--key",
      f("bob.key"),
      "--trust",
      f("alice.card"),
    ]);
    assert.equal(inbox.code, 0, inbox.stderr);
    const got = inbox.text.trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(got.map((m) => m.text), texts);
    for (const m of got) {
      assert.equal(m.from, "alice@example.org");
      assert.equal(m.verified, true);
      assert.equal(m.trusted, true);
      assert.equal(m.stp, "simple/v3");
    }
    const again = await client("bob", ["inbox"]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.text, "", "acknowledged messages are gone");
  });

  it("a message sent while the relay is down is queued (exit 16); relay queue flushes it when the relay is back", async () => {
    const url = relay.url;
    await kill(relay, "SIGKILL");
    const down = await client("alice", ["send", "--to", "bob@example.org"], "typed while down");
    assert.equal(down.code, 16, down.stderr);
    assert.equal(down.text, "");
    assert.match(down.stderr, /relay unreachable .*queued locally as #\d+ for bob@example\.org/);
    const listed = await runCli(["relay", "queue", "--key", f("alice.key"), "--json"]);
    assert.equal(listed.code, 0, listed.stderr);
    const [entry] = listed.text.trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(entry.to, "bob@example.org");
    assert.equal(entry.state, "pending");
    // With the relay still down, relay queue tries, lists, and exits 16: still waiting.
    const stillDown = await client("alice", ["queue"]);
    assert.equal(stillDown.code, 16, stillDown.stderr);
    assert.match(stillDown.stderr, /1 message still queued locally \(relay unreachable/);
    assert.match(stillDown.text, /^#\d+ to bob@example\.org: pending/);
    relay = await startServe([url, "--key", f("relay.key"), "--db", db]);
    const flush = await client("alice", ["queue"]);
    assert.equal(flush.code, 0, flush.stderr);
    assert.match(flush.stderr, /sent queued message #\d+ to bob@example\.org/);
    assert.equal(flush.text, "", "accepted messages leave the queue");
    const bob = await client("bob", ["inbox"]);
    assert.equal(bob.code, 0, bob.stderr);
    assert.equal(bob.text, "alice@example.org: typed while down\n");
  });

  it("relay watch prints messages as they arrive, and list shows presence", async () => {
    const watcher = spawn(DENO, [
      "run",
      "--allow-all",
      "--quiet",
      ENTRY,
      "relay",
      "watch",
      "--json",
      "--relay",
      relay.url,
      "--relay-card",
      f("relay.card"),
      "--key",
      f("bob.key"),
    ], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    const line = new Promise<string>((resolve) => {
      watcher.stdout!.on("data", (d: Uint8Array) => {
        out += new TextDecoder().decode(d);
        if (out.includes("\n")) resolve(out.split("\n")[0]);
      });
    });
    const watching = new Promise<void>((resolve) => {
      watcher.stderr!.on("data", (d: Uint8Array) => {
        err += new TextDecoder().decode(d);
        if (err.includes("watching")) resolve();
      });
    });
    const exited = new Promise<number | null>((r) => watcher.once("exit", (code) => r(code)));
    try {
      await watching;
      const away = await client("bob", ["status", "away", "--note", "at lunch"]);
      assert.equal(away.code, 0, away.stderr);
      const list = await client("alice", ["list"]);
      assert.match(list.text, /bob@example\.org\taway\tat lunch/);
      const sent = await client("alice", ["send", "--to", "bob@example.org"], "live one");
      assert.equal(sent.code, 0, sent.stderr);
      const m = JSON.parse(await line);
      assert.equal(m.text, "live one");
      assert.equal(m.verified, true);
    } finally {
      process.kill(watcher.pid!, "SIGTERM");
    }
    assert.equal(await exited, 0, err);
  });

  it("a relay with --users refuses other cards at the handshake", async () => {
    mkdirSync(f("users"));
    writeFileSync(f("users/bob.card"), readFileSync(f("bob.card")));
    const closed = await startServe([
      "tcp://127.0.0.1:0",
      "--key",
      f("relay.key"),
      "--db",
      f("closed.db"),
      "--users",
      f("users"),
    ]);
    try {
      const args = (who: string) => [
        "relay",
        "register",
        "--relay",
        closed.url,
        "--relay-card",
        f("relay.card"),
        "--key",
        f(`${who}.key`),
        "--state",
        f(`${who}.closed.db`),
      ];
      const bob = await runCli(args("bob"));
      assert.equal(bob.code, 0, bob.stderr);
      const alice = await runCli(args("alice"));
      assert.equal(alice.code, 15, alice.stderr);
      assert.match(alice.stderr, /refused alice@example\.org: registration is closed/);
    } finally {
      await kill(closed, "SIGKILL");
    }
  });

  it("serve --require-pq refuses a version 1 client; relay --require-pq registers over version 2", async () => {
    const pq = await startServe([
      "tcp://127.0.0.1:0",
      "--key",
      f("relay.key"),
      "--db",
      f("pq.db"),
      "--open-registration",
      "--require-pq",
    ]);
    try {
      const register = (extra: string[]) =>
        runCli([
          "relay",
          "register",
          "--relay",
          pq.url,
          "--relay-card",
          f("relay.card"),
          "--key",
          f("bob.key"),
          "--state",
          f("bob.pq.db"),
          ...extra,
        ]);
      const bob = await register(["--require-pq"]);
      assert.equal(bob.code, 0, bob.stderr);
      // A client speaking version 1 only (the library's option; the CLI has no such flag).
      const crypto = await getCryptoProvider();
      const identity = await readKeyFile(crypto, readFileSync(f("alice.key"), "utf8"), () => {
        throw new Error("no passphrase here");
      });
      const relayCard = await parseCardText(crypto, readFileSync(f("relay.card"), "utf8"));
      const transport = await connectTransport(pq.url);
      try {
        await assert.rejects(
          Session.connect(transport, identity, { peer: relayCard, versions: [1] }),
          (e: unknown) => isMissiveError(e, "untrusted") && peerCloseOf(e) !== undefined,
        );
      } finally {
        await transport.close().catch(() => {});
      }
    } finally {
      await kill(pq, "SIGKILL");
    }
  });

  it("SIGTERM stops the relay gracefully", async () => {
    const status = await client("alice", ["status", "--json"]);
    assert.equal(status.code, 0, status.stderr);
    assert.equal(typeof JSON.parse(status.text).queued, "number");
    assert.equal(await kill(relay, "SIGTERM"), 0, relay.stderr());
    assert.match(relay.stderr(), /relay: shutdown/);
  });
});
