/**
 * Relay load test (bounded, loopback only; docs/BENCHMARKS.md "Relay"):
 *
 *     node_modules/.bin/deno run -A bench/relay_load.ts [--clients 500] [--messages 20000]
 *         [--size 300] [--in-flight 16] [--rekey-after 10] [--link tcp|session-memory|memory]
 *         [--relay-runtime deno|bun] [--store sqlite|nats] [--nodes N]
 *
 * `tcp` (default) starts `missive serve` as a subprocess on 127.0.0.1 port 0 and connects
 * every client over TCP with a real session; its RSS and CPU time are read from /proc.
 * `--store nats` starts a 3-node NATS JetStream cluster (tests/nats_cluster.ts) and
 * `--nodes N` relay nodes on it (docs/SCALE.md); client i uses node i mod N, and the
 * offline half comes back through the next node, so half the deliveries cross nodes.
 * `session-memory` runs the relay in this process, real sessions over in-memory
 * transports; `memory` over the test fake channel pair (the relay's own cost only).
 * Half the clients are online and send messages to random recipients among all
 * clients; the other half register, go offline, and connect once every message was
 * accepted. Every message must reach its recipient exactly once. The relay routes
 * envelopes without opening them, so the envelopes here are `plain` STP envelopes
 * holding a tag (padded to --size bytes) — sealing cost is the clients' business.
 * @module
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { fromUtf8, utf8 } from "../core/bytes.ts";
import { getCryptoProvider } from "../crypto/mod.ts";
import { encodeEnvelope } from "../envelope/mod.ts";
import { cardFileText } from "../keys/card.ts";
import { createIdentity, type Identity, writeKeyFile } from "../keys/identity.ts";
import type { RelayClient } from "../relay/client.ts";
import { tempDir } from "../tests/helpers.ts";
import { startRelay } from "../tests/relay_harness.ts";
import { type NatsCluster, startNatsCluster } from "../tests/nats_cluster.ts";
import { cpuOf, killServe, rssOf, type ServeNode, startServeNode } from "../tests/relay_nodes.ts";

const { values: flags } = parseArgs({
  options: {
    clients: { type: "string", default: "500" },
    messages: { type: "string", default: "20000" },
    size: { type: "string", default: "300" },
    link: { type: "string", default: "tcp" },
    "in-flight": { type: "string", default: "16" },
    "rekey-after": { type: "string", default: "10" },
    "relay-runtime": { type: "string", default: "deno" },
    store: { type: "string", default: "sqlite" },
    nodes: { type: "string", default: "1" },
  },
});
const NODES = Number(flags.nodes);
if (flags.store !== "sqlite" && flags.store !== "nats") throw new Error("--store sqlite|nats");
if (NODES > 1 && flags.store !== "nats") throw new Error("--nodes > 1 needs --store nats");
const CLIENTS = Number(flags.clients);
const MESSAGES = Number(flags.messages);
const SIZE = Number(flags.size);
const IN_FLIGHT = Number(flags["in-flight"]);
const REKEY = Number(flags["rekey-after"]);
const ROOT = new URL("..", import.meta.url).pathname;

const crypto = await getCryptoProvider();
const caps = { stps: [[7, 1]] as const, amps: [[1, 1]] as const };
const users: Identity[] = [];
for (let i = 0; i < CLIENTS; i++) {
  users.push(await createIdentity(crypto, { address: `user${i}@load.test`, ...caps }));
}
const { dir, cleanup } = tempDir("missive-relay-load-");

// ---- the relay
let connectClient: (who: Identity, index: number) => Promise<RelayClient>;
let cluster: NatsCluster | undefined;
const relays: ServeNode[] = [];
let relayRss = () => "n/a (in process)";
/** The relay process's CPU time so far, µs (tcp only). */
let relayCpu = () => 0;
let stopRelay: () => Promise<void>;
if (flags.link === "tcp") {
  const relayId = await createIdentity(crypto, { address: "relay@load.test", ...caps });
  writeFileSync(join(dir, "relay.key"), await writeKeyFile(crypto, relayId), { mode: 0o600 });
  writeFileSync(join(dir, "relay.card"), await cardFileText(crypto, relayId.card));
  // $RELAY_DENO_FLAGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", profiles the relay.
  const extra = (process.env.RELAY_DENO_FLAGS ?? "").split(" ").filter(Boolean);
  // --relay-runtime bun runs the relay under Bun instead of Deno.
  const runtime = flags["relay-runtime"] === "bun"
    ? [join(ROOT, "node_modules/.bin/bun"), ...extra]
    : [join(ROOT, "node_modules/.bin/deno"), "run", "-A", ...extra];
  // --store nats: a 3-node JetStream cluster (R3) on 127.0.0.1 and --nodes relay nodes.
  if (flags.store === "nats") cluster = await startNatsCluster(3);
  const store = cluster ? cluster.urls : join(dir, "relay.db");
  const args = [
    "--quota",
    String(MESSAGES),
    // Every client connects from 127.0.0.1 and registers at once: the per-address and
    // registration limits (docs/SECURITY.md) are for strangers, not for this load.
    "--max-per-address",
    String(CLIENTS + 16),
    "--max-connections",
    String(Math.max(1024, 2 * CLIENTS)),
    "--register-rate",
    "0",
    "--recipient-quota",
    String(MESSAGES),
    "--rekey-after",
    String(REKEY),
  ];
  for (let n = 0; n < NODES; n++) {
    relays.push(await startServeNode(join(dir, "relay.key"), store, `node${n + 1}`, args, runtime));
  }
  const { connectRelay } = await import("../relay/link.ts");
  // Client i uses node i mod NODES; the offline half comes back through the next node.
  connectClient = (who, i) =>
    connectRelay(relays[i % NODES].url, who, relayId.card, { timeoutMs: 60_000 });
  relayRss = () =>
    relays.map((r) => {
      const m = rssOf(r.child.pid!);
      return `${r.name} ${m.now} MiB now, ${m.peak} MiB peak`;
    }).join("; ");
  relayCpu = () => relays.reduce((t, r) => t + cpuOf(r.child.pid!), 0);
  stopRelay = async () => {
    for (const r of relays) await killServe(r, "SIGTERM");
    await cluster?.stop();
  };
} else if (flags.link === "session-memory") {
  const { Session } = await import("../session/session.ts");
  const { memoryTransportPair } = await import("../transports/memory.ts");
  const relayId = await createIdentity(crypto, { address: "relay@load.test", ...caps });
  const relay = await startRelay({ dbPath: join(dir, "relay.db"), quota: MESSAGES });
  connectClient = async (who) => {
    const [a, b] = memoryTransportPair();
    const accepted = Session.accept(b, relayId, { authorize: () => true, rekeyAfter: REKEY });
    const channel = await Session.connect(a, who, { peer: relayId.card });
    void accepted.then((s) => relay.server.serve(s));
    const { RelayClient } = await import("../relay/client.ts");
    return new RelayClient(channel);
  };
  stopRelay = () => relay.close();
} else {
  const relay = await startRelay({ dbPath: join(dir, "relay.db"), quota: MESSAGES });
  connectClient = (who) => Promise.resolve(relay.connect(who));
  stopRelay = () => relay.close();
}

// ---- connect and register everyone; the second half goes offline
const t0 = performance.now();
const clients: RelayClient[] = [];
for (let i = 0; i < CLIENTS; i += 50) {
  clients.push(...await Promise.all(users.slice(i, i + 50).map((u, k) => connectClient(u, i + k))));
}
await Promise.all(clients.map((c) => c.register()));
const half = Math.floor(CLIENTS / 2);
await Promise.all(clients.slice(half).map((c) => c.close()));
const online = clients.slice(0, half);
const tConnected = performance.now();

// ---- receivers: record tags and latency, acknowledge
const sentAt = new Map<string, number>();
const received = new Map<number, string[]>();
const latencies: number[] = [];
let delivered = 0;
let allDelivered: () => void;
const done = new Promise<void>((r) => (allDelivered = r));
function consume(c: RelayClient, index: number, measure: boolean) {
  return (async () => {
    for await (const d of c.deliveries()) {
      const tag = fromUtf8(d.envelope.subarray(d.envelope.length - 16));
      const list = received.get(index) ?? [];
      list.push(tag);
      received.set(index, list);
      const t = sentAt.get(tag);
      if (measure && t !== undefined) latencies.push(performance.now() - t);
      void c.ack(d.message).catch(() => {});
      if (++delivered === MESSAGES) allDelivered();
    }
  })().catch(() => {});
}
await Promise.all(online.map((c) => c.receive()));
online.forEach((c, i) => consume(c, i, true));

// ---- send: every online client sends its share to random recipients
const expected = new Map<number, string[]>();
const plan: { from: number; to: number; tag: string; envelope: Uint8Array }[] = [];
const pad = "x".repeat(Math.max(0, SIZE - 16 - 40));
for (let n = 0; n < MESSAGES; n++) {
  const to = Math.floor(Math.random() * CLIENTS);
  const tag = `m${String(n).padStart(15, "0")}`;
  const payload = utf8(pad + tag);
  plan.push({
    from: n % half,
    to,
    tag,
    envelope: encodeEnvelope({ protocolType: 7, protocolVersion: 1, payload }),
  });
  const list = expected.get(to) ?? [];
  list.push(tag);
  expected.set(to, list);
}
const tSend = performance.now();
const cpuSend = process.cpuUsage();
const relayCpuSend = relayCpu();
const natsCpu = () => cluster?.nodes.reduce((t, n) => t + cpuOf(n.pid!), 0) ?? 0;
const natsCpuSend = natsCpu();
await Promise.all(online.map(async (c, i) => {
  const mine = plan.filter((p) => p.from === i);
  let next = 0;
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (next < mine.length) {
      const p = mine[next++];
      sentAt.set(p.tag, performance.now());
      await c.send(users[p.to].card.address, p.envelope as never);
    }
  }));
}));
const tAccepted = performance.now();

// ---- the offline half connects and drains its queue
const late = [];
for (let i = half; i < CLIENTS; i += 50) {
  late.push(
    ...await Promise.all(
      users.slice(i, Math.min(i + 50, CLIENTS)).map((u, k) => connectClient(u, i + k + 1)),
    ),
  );
}
await Promise.all(late.map((c) => c.receive()));
late.forEach((c, k) => consume(c, half + k, false));
await done;
const tDone = performance.now();
const cpu = process.cpuUsage(cpuSend);
const relayCpuUs = relayCpu() - relayCpuSend;
const natsCpuUs = natsCpu() - natsCpuSend;
const rss = relayRss();
const natsRss = cluster
  ? cluster.nodes.map((n) => `${n.name} ${rssOf(n.pid!).now} MiB now, ${rssOf(n.pid!).peak} peak`)
    .join("; ")
  : undefined;

// ---- exactly once, in each sender's order
let wrong = 0;
for (let i = 0; i < CLIENTS; i++) {
  const got = [...(received.get(i) ?? [])].sort();
  const want = [...(expected.get(i) ?? [])].sort();
  if (got.length !== want.length || got.some((t, k) => t !== want[k])) wrong++;
}
for (const c of [...online, ...late]) await c.close();
await stopRelay();
cleanup();

latencies.sort((a, b) => a - b);
const pct = (p: number) =>
  latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
const s = (ms: number) => (ms / 1000).toFixed(2);
console.log(JSON.stringify(
  {
    link: flags.link,
    relayRuntime: flags.link === "tcp" ? flags["relay-runtime"] : "in process",
    clients: CLIENTS,
    messages: MESSAGES,
    envelopeBytes: plan[0].envelope.length,
    connectAndRegisterS: s(tConnected - t0),
    acceptedPerSecond: Math.round(MESSAGES / ((tAccepted - tSend) / 1000)),
    endToEndPerSecond: Math.round(MESSAGES / ((tDone - tSend) / 1000)),
    onlineDeliveries: latencies.length,
    p50ms: pct(0.5)?.toFixed(1),
    p99ms: pct(0.99)?.toFixed(1),
    store: flags.store,
    relayNodes: flags.link === "tcp" ? NODES : 1,
    relayRss: rss,
    natsRss,
    relayCpuUsPerMessage: Math.round(relayCpuUs / MESSAGES),
    natsCpuUsPerMessage: cluster ? Math.round(natsCpuUs / MESSAGES) : undefined,
    thisProcessCpuUsPerMessage: Math.round((cpu.user + cpu.system) / MESSAGES),
    recipientsWithWrongMessages: wrong,
  },
  null,
  1,
));
if (wrong !== 0 || delivered !== MESSAGES) {
  console.error(
    `FAILED: ${wrong} recipients got the wrong set; ${delivered}/${MESSAGES} delivered`,
  );
  process.exit(1);
}
process.exit(0);
