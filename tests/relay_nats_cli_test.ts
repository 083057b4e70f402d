/**
 * Scale-out end to end (issue 15, docs/SCALE.md): a 3-node NATS JetStream cluster on
 * 127.0.0.1 and two `missive serve --store nats://…` nodes sharing one key, as
 * subprocesses; the clients are the real CLI. Registration through either node, a
 * collision across nodes, a lookup across nodes, live delivery across nodes to a
 * `relay watch`, three messages to an offline user through node 1, then node 1 and one
 * NATS node killed with SIGKILL: the inbox through node 2 (reached by trying the nodes in
 * order) holds the three, in order, once, verified. The NATS data folders hold none of
 * the texts. With two NATS nodes down a send is refused as unavailable and stays queued
 * locally (exit 16); it goes out once the cluster is back.
 *
 * Heavy (five server processes): Deno only; skipped without nats-server except under
 * CI=true. Every process is stopped by its PID. About 40 s.
 * @module
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { after, before, describe, it } from "node:test";
import { utf8 } from "../core/bytes.ts";
import { runCli, startCli, tempDir } from "./helpers.ts";
import { haveNatsServer, type NatsCluster, startNatsCluster } from "./nats_cluster.ts";
import { killServe, type ServeNode, startServeNode } from "./relay_nodes.ts";

const inDeno = "Deno" in globalThis;
const skip = !inDeno
  ? "heavy multi-process test: runs under Deno only"
  : haveNatsServer() || process.env.CI === "true"
  ? false
  : "nats-server is not installed (bash scripts/install-peers.sh installs it)";

/** Every file under `dir`. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

describe("two relay nodes on a JetStream cluster (CLI, SIGKILL)", { skip }, () => {
  const { dir, cleanup } = tempDir("missive-scale-");
  const f = (name: string) => join(dir, name);
  let cluster: NatsCluster;
  const nodes: ServeNode[] = [];
  const texts = ["scale-one 7f3a", "scale-two 9c1e", "scale-three 2b8d"];
  const relay = (who: string, sub: string[], urls: string[], stdin?: string) =>
    runCli([
      "relay",
      ...sub,
      ...urls.flatMap((u) => ["--relay", u]),
      "--relay-card",
      f("relay.card"),
      "--key",
      f(`${who}.key`),
      "--timeout",
      "20000",
    ], { stdin });

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
    cluster = await startNatsCluster(3);
    for (const name of ["node1", "node2"]) {
      nodes.push(await startServeNode(f("relay.key"), cluster.urls, name));
    }
  });

  after(async () => {
    for (const n of nodes) await killServe(n, "SIGKILL");
    await cluster?.stop();
    cleanup();
  });

  it("registers through either node; a collision and a lookup across nodes", async () => {
    const [one, two] = nodes;
    const a = await relay("alice", ["register"], [one.url]);
    assert.equal(a.code, 0, a.stderr);
    const b = await relay("bob", ["register"], [two.url]);
    assert.equal(b.code, 0, b.stderr);
    const clash = await relay("mallory", ["register"], [two.url]);
    assert.equal(clash.code, 15, clash.stderr);
    assert.match(clash.stderr, /collision/);
    const found = await relay("bob", ["lookup", "alice@example.org", "--json"], [two.url]);
    assert.equal(found.code, 0, found.stderr);
    assert.equal(JSON.parse(found.text).address, "alice@example.org");
  });

  it("live delivery across nodes: sent through node 1, printed by a watch on node 2", async () => {
    const [one, two] = nodes;
    const watch = await startCli([
      "relay",
      "watch",
      "--relay",
      two.url,
      "--relay-card",
      f("relay.card"),
      "--key",
      f("bob.key"),
      "--json",
    ], { ready: /(watching) /, timeoutMs: 60_000 });
    try {
      const sent = await relay("alice", ["send", "--to", "bob@example.org"], [one.url], "live hi");
      assert.equal(sent.code, 0, sent.stderr);
      const deadline = Date.now() + 15_000;
      let out = "";
      watch.child.stdout!.on("data", (d: Uint8Array) => (out += new TextDecoder().decode(d)));
      while (!out.includes("live hi") && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.match(out, /"text":"live hi"/);
      assert.match(out, /"verified":true/);
    } finally {
      process.kill(watch.child.pid!, "SIGTERM");
      await watch.done;
    }
  });

  it("SIGKILL of node 1 and of one NATS node loses nothing: node 2 delivers, in order, once", async () => {
    const [one, two] = nodes;
    for (const text of texts) {
      const r = await relay("alice", ["send", "--to", "bob@example.org"], [one.url], text);
      assert.equal(r.code, 0, r.stderr);
    }
    await killServe(one, "SIGKILL");
    await cluster.kill(0);
    // bob tries node 1 first (gone), then node 2.
    const inbox = await relay("bob", ["inbox", "--json"], [one.url, two.url]);
    assert.equal(inbox.code, 0, inbox.stderr);
    const got = inbox.text.trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(got.map((m) => m.text), texts, "the three, in order, once");
    assert.ok(got.every((m) => m.from === "alice@example.org" && m.verified === true));
    const again = await relay("bob", ["inbox", "--json"], [two.url]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.text, "", "acknowledged messages are gone");
  });

  it("the NATS data folders hold none of the texts", () => {
    const files = filesUnder(cluster.dir);
    assert.ok(files.length > 10, `JetStream wrote its files (${files.length})`);
    for (const file of files) {
      const bytes = readFileSync(file);
      for (const text of [...texts, "live hi"]) {
        assert.equal(bytes.indexOf(utf8(text)), -1, `${text} found in ${file}`);
      }
    }
  });

  it("without quorum a send is unavailable and stays queued (exit 16); it goes once back", async () => {
    const two = nodes[1];
    await cluster.kill(1); // two of three NATS nodes down
    const refused = await relay("alice", ["send", "--to", "bob@example.org"], [two.url], "late");
    assert.equal(refused.code, 16, refused.stderr);
    assert.match(refused.stderr, /unavailable/);
    assert.match(refused.stderr, /queued locally as #\d+/);
    await cluster.restart(0);
    await cluster.restart(1);
    // The next relay command that reaches a relay sends the queue; retried until the
    // cluster has elected its leaders again (bounded).
    let flushed = "";
    for (let i = 0; i < 30 && !/sent queued message/.test(flushed); i++) {
      const r = await relay("alice", ["inbox"], [two.url]);
      flushed = r.stderr;
      if (!/sent queued message/.test(flushed)) await new Promise((r) => setTimeout(r, 1000));
    }
    assert.match(flushed, /sent queued message #\d+ to bob@example\.org/);
    const inbox = await relay("bob", ["inbox", "--json"], [two.url]);
    assert.equal(inbox.code, 0, inbox.stderr);
    assert.deepEqual(inbox.text.trim().split("\n").map((l) => JSON.parse(l).text), ["late"]);
  });
});
