/**
 * Faults under steady load (issue 15, docs/SCALE.md §4): two `missive serve --store
 * nats://…` nodes on a 3-node JetStream cluster; senders and receivers spread over both
 * nodes, each going to the other node when its node is lost, a sender sending again
 * what got no answer (the same envelope: de-duplicated by the store). One relay node is
 * killed with SIGKILL, then one NATS node. Counted: accepted, delivered, stored twice
 * (0), lost (0), and redelivered (a delivery whose acknowledgement died with a node:
 * at-least-once, the client's seen-record hides it). Then two of the three NATS nodes
 * go: sends are refused `unavailable` (no quorum), and everything accepted is delivered
 * once the nodes are back.
 *
 * Heavy (five server processes, ~25 s): Deno only; skipped without nats-server except
 * under CI=true. Every process is stopped by its PID.
 * @module
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { after, before, describe, it } from "node:test";
import { fromUtf8, utf8 } from "../core/bytes.ts";
import { getCryptoProvider } from "../crypto/mod.ts";
import { isMissiveError } from "../core/errors.ts";
import { encodeEnvelope } from "../envelope/mod.ts";
import { cardFileText } from "../keys/card.ts";
import { createIdentity, type Identity, writeKeyFile } from "../keys/identity.ts";
import { type RelayClient, RelayRefusal } from "../relay/client.ts";
import { connectRelay } from "../relay/link.ts";
import { tempDir } from "./helpers.ts";
import { haveNatsServer, type NatsCluster, startNatsCluster } from "./nats_cluster.ts";
import { killServe, type ServeNode, startServeNode } from "./relay_nodes.ts";

const inDeno = "Deno" in globalThis;
const skip = !inDeno
  ? "heavy multi-process test: runs under Deno only"
  : haveNatsServer() || process.env.CI === "true"
  ? false
  : "nats-server is not installed (bash scripts/install-peers.sh installs it)";

const SENDERS = 6;
const RECEIVERS = 6;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("faults under load: relay node, NATS node, NATS quorum", { skip }, () => {
  const { dir, cleanup } = tempDir("missive-fault-");
  let cluster: NatsCluster;
  const nodes: ServeNode[] = [];
  let relayId: Identity;
  const users: Identity[] = [];

  before(async () => {
    const crypto = await getCryptoProvider();
    const caps = { stps: [[7, 1]] as const, amps: [[1, 1]] as const };
    relayId = await createIdentity(crypto, { address: "relay@fault.test", ...caps });
    writeFileSync(join(dir, "relay.key"), await writeKeyFile(crypto, relayId), { mode: 0o600 });
    writeFileSync(join(dir, "relay.card"), await cardFileText(crypto, relayId.card));
    for (let i = 0; i < SENDERS + RECEIVERS; i++) {
      users.push(await createIdentity(crypto, { address: `u${i}@fault.test`, ...caps }));
    }
    cluster = await startNatsCluster(3);
    for (const name of ["node1", "node2"]) {
      nodes.push(await startServeNode(join(dir, "relay.key"), cluster.urls, name));
    }
  });

  after(async () => {
    for (const n of nodes) await killServe(n, "SIGKILL");
    await cluster?.stop();
    cleanup();
  });

  /** Connects through node `first`, else the next nodes in turn (bounded). */
  async function connectAny(who: Identity, first: number): Promise<RelayClient> {
    for (let attempt = 0; attempt < 40; attempt++) {
      const node = nodes[(first + attempt) % nodes.length];
      if (node.child.exitCode !== null || node.child.signalCode !== null) continue;
      try {
        return await connectRelay(node.url, who, relayId.card, { timeoutMs: 20_000 });
      } catch {
        await sleep(100);
      }
    }
    throw new Error(`${who.card.address}: no relay node answers`);
  }

  it("SIGKILL of a relay node, then of a NATS node: nothing lost, nothing stored twice", async () => {
    for (const [i, u] of users.entries()) {
      const c = await connectAny(u, i % 2);
      await c.register();
      await c.close();
    }
    const accepted = new Map<string, number>(); // tag → relay message ID
    const received = new Map<string, Set<number>>(); // tag → message IDs delivered
    let deliveries = 0;
    let stopSending = false;
    let stopReceiving = false;

    const receivers = users.slice(SENDERS).map((u, i) =>
      (async () => {
        let first = i % 2;
        while (!stopReceiving) {
          let c: RelayClient | undefined;
          try {
            c = await connectAny(u, first);
            await c.receive();
            const idle = setInterval(() => {
              if (stopReceiving) void c!.close();
            }, 100);
            try {
              for await (const d of c.deliveries()) {
                const tag = fromUtf8(d.envelope.subarray(d.envelope.length - 12));
                const mids = received.get(tag) ?? new Set();
                mids.add(d.message);
                received.set(tag, mids);
                deliveries++;
                await c.ack(d.message);
              }
            } finally {
              clearInterval(idle);
            }
          } catch {
            first++; // its node is gone: the next one
          } finally {
            await c?.close().catch(() => {});
          }
        }
      })()
    );

    let counter = 0;
    const senders = users.slice(0, SENDERS).map((u, i) =>
      (async () => {
        let first = i % 2;
        let c = await connectAny(u, first);
        while (!stopSending) {
          const tag = `t${String(counter++).padStart(11, "0")}`;
          const to = users[SENDERS + (counter % RECEIVERS)].card.address;
          const envelope = encodeEnvelope({
            protocolType: 7,
            protocolVersion: 1,
            payload: utf8(tag),
          });
          // Sent until answered: a retry after a lost answer is the same envelope.
          for (;;) {
            try {
              accepted.set(tag, await c.send(to, envelope));
              break;
            } catch (e) {
              if (e instanceof RelayRefusal && e.status !== "unavailable") throw e;
              if (!isMissiveError(e)) throw e;
              await c.close().catch(() => {});
              first++;
              c = await connectAny(u, first);
            }
          }
          await sleep(20);
        }
        await c.close();
      })()
    );

    await sleep(2000);
    await killServe(nodes[0], "SIGKILL");
    const afterRelayKill = accepted.size;
    await sleep(3000);
    await cluster.kill(0);
    const afterNatsKill = accepted.size;
    await sleep(3000);
    stopSending = true;
    await Promise.all(senders);
    // Drain: every accepted message delivered (bounded: 30 s).
    const deadline = Date.now() + 30_000;
    while ([...accepted.keys()].some((t) => !received.has(t)) && Date.now() < deadline) {
      await sleep(100);
    }
    stopReceiving = true;
    await Promise.all(receivers);

    const lost = [...accepted.keys()].filter((t) => !received.has(t)).length;
    const storedTwice = [...received.values()].filter((mids) => mids.size > 1).length;
    const redelivered = deliveries - [...received.values()].reduce((n, s) => n + s.size, 0);
    console.log(JSON.stringify({
      accepted: accepted.size,
      acceptedAfterRelayKill: afterNatsKill - afterRelayKill,
      acceptedAfterNatsKill: accepted.size - afterNatsKill,
      delivered: received.size,
      storedTwice,
      lost,
      redelivered,
    }));
    assert.ok(accepted.size - afterNatsKill > 0, "sends went on after the NATS node died");
    assert.ok(afterNatsKill - afterRelayKill > 0, "sends went on after the relay node died");
    assert.equal(lost, 0, "accepted but never delivered");
    assert.equal(storedTwice, 0, "one message stored under two IDs");
  });

  it("without quorum sends are refused unavailable; nothing accepted is lost once back", async () => {
    const [alice, bob] = [users[0], users[SENDERS]];
    const a = await connectAny(alice, 1);
    const before = await a.send(
      bob.card.address,
      encodeEnvelope({
        protocolType: 7,
        protocolVersion: 1,
        payload: utf8("quorum-pre01"),
      }),
    );
    assert.ok(before > 0);
    await cluster.kill(1); // node 0 is still down: one of three left
    const refused = await a.send(
      bob.card.address,
      encodeEnvelope({
        protocolType: 7,
        protocolVersion: 1,
        payload: utf8("quorum-none1"),
      }),
    ).catch((e) => e);
    assert.ok(refused instanceof RelayRefusal, String(refused));
    assert.equal(refused.status, "unavailable");
    assert.match(refused.detail ?? "", /quorum|JetStream/);
    await a.close();
    await cluster.restart(0);
    await cluster.restart(1);
    // bob gets what was accepted (retried while the cluster elects its leaders).
    let texts: string[] = [];
    for (let i = 0; i < 30 && !texts.includes("quorum-pre01"); i++) {
      try {
        const b = await connectAny(bob, 1);
        const n = await b.receive();
        for await (const d of b.deliveries()) {
          texts.push(fromUtf8(d.envelope.subarray(d.envelope.length - 12)));
          await b.ack(d.message);
          if (texts.length >= n) break;
        }
        await b.close();
      } catch {
        texts = [];
        await sleep(500);
      }
    }
    assert.deepEqual(texts, ["quorum-pre01"]);
  });
});
