/**
 * Hostile peers against a real relay (issue 11; docs/BENCHMARKS.md "Relay under
 * attack"). Bounded, loopback only, stops by itself:
 *
 *     node_modules/.bin/deno run -A bench/hostile.ts [--attacks all|idle,partial,…]
 *         [--seconds 20] [--retry-ms 1000] [--relay-root OTHER_CHECKOUT]
 *
 * For each attack a fresh `missive serve` runs under `deno run` (as the CLI starts it)
 * on 127.0.0.1 port 0. A legitimate client from 127.0.0.1, registered once, keeps one
 * link open and sends a message to itself, waits for its delivery and acknowledges it,
 * over and over; once a second it also opens a fresh link (TCP, session handshake, a
 * lookup). Meanwhile attackers run in their own processes from 127.0.0.2, .3 and .4:
 *
 * - `idle`: 1,100 connections that never send a byte (127.0.0.2);
 * - `partial`: 200 connections each sending a 4-byte length of 1 MiB and then
 *   1 MiB − 1 bytes of that frame, never the last byte (127.0.0.3);
 * - `combined`: both at once (the issue's target: relay RSS ≤ 200 MiB, every legitimate
 *   operation within 2 s);
 * - `pipeline`: 8 registered clients that pipeline requests (1,100 small ones, then
 *   48 of 1 MiB) and never read an answer (127.0.0.4);
 * - `malformed`: 8 registered clients flooding garbage relay messages (127.0.0.4);
 * - `squat`: one sender filling the legitimate user's inbox, and new registrations as
 *   fast as they go (127.0.0.4).
 *
 * Attackers whose connection the relay closes open another after --retry-ms. Printed:
 * one JSON line per attack — relay peak RSS (sampled, and VmHWM), the legitimate
 * operations' p50 and max latency and failures, attacker connections opened and closed
 * by the relay, and the relay's own count of drops by reason (`--stats`).
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { randomBytes } from "../core/bytes.ts";
import { getCryptoProvider } from "../crypto/mod.ts";
import { encodeEnvelope } from "../envelope/mod.ts";
import { type Card, cardFileText } from "../keys/card.ts";
import { loadCards } from "../cmd/common.ts";
import { createIdentity, type Identity, writeKeyFile } from "../keys/identity.ts";
import { RelayClient } from "../relay/client.ts";
import { encodeRequest } from "../relay/protocol.ts";
import { Session } from "../session/session.ts";
import { TcpTransport } from "../transports/tcp.ts";
import type { Transport } from "../transports/types.ts";
import { tempDir } from "../tests/helpers.ts";

const { values: flags } = parseArgs({
  options: {
    attacks: { type: "string", default: "all" },
    seconds: { type: "string", default: "20" },
    "retry-ms": { type: "string", default: "1000" },
    // Another checkout's relay (e.g. main before the fix), side by side with this one.
    "relay-root": { type: "string" },
    // Internal: run one attacker.
    role: { type: "string" },
    kind: { type: "string" },
    from: { type: "string" },
    port: { type: "string" },
    count: { type: "string" },
    card: { type: "string" },
    victim: { type: "string" },
  },
});
const SECONDS = Number(flags.seconds);
const RETRY_MS = Number(flags["retry-ms"]);
const ROOT = new URL("..", import.meta.url).pathname;
const DENO = join(ROOT, "node_modules/.bin/deno");
const crypto = await getCryptoProvider();
const caps = { stps: [[7, 1]] as const, amps: [[1, 1]] as const };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const plain = (size: number) =>
  encodeEnvelope({ protocolType: 7, protocolVersion: 1, payload: randomBytes(size) });

// ---------------------------------------------------------------- attackers

/** What an attacker process reports. */
interface AttackReport {
  kind: string;
  from: string;
  opened: number;
  refusedAtConnect: number;
  closedByRelay: number;
  maxOpen: number;
  detail?: string;
}

function connectFrom(port: number, from: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: "127.0.0.1", port, localAddress: from });
    s.once("connect", () => {
      s.removeAllListeners("error");
      s.on("error", () => {});
      resolve(s);
    });
    s.once("error", reject);
  });
}

/** Keeps `count` raw connections open (re-opening what the relay closes). */
async function rawAttack(kind: "idle" | "partial", port: number, from: string, count: number) {
  const r: AttackReport = {
    kind,
    from,
    opened: 0,
    refusedAtConnect: 0,
    closedByRelay: 0,
    maxOpen: 0,
  };
  const end = Date.now() + SECONDS * 1000;
  let open = 0;
  const body = new Uint8Array(1024 * 1024 - 1);
  const header = new Uint8Array([0x00, 0x10, 0x00, 0x00]); // a frame of 1 MiB
  const keep = async (): Promise<void> => {
    while (Date.now() < end) {
      let s: net.Socket;
      try {
        s = await connectFrom(port, from);
      } catch {
        r.refusedAtConnect++;
        await sleep(RETRY_MS);
        continue;
      }
      r.opened++;
      open++;
      r.maxOpen = Math.max(r.maxOpen, open);
      if (kind === "partial") {
        s.write(header);
        s.write(body);
      }
      const closed = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), Math.max(0, end - Date.now()));
        s.once("close", () => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      open--;
      s.destroy();
      if (!closed) return;
      r.closedByRelay++;
      await sleep(RETRY_MS);
    }
  };
  // Open them in batches, as fast as the relay accepts.
  const all: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    all.push(keep());
    if (i % 100 === 99) await sleep(10);
  }
  await Promise.all(all);
  return r;
}

/** A transport that stops handing frames to its session: nothing is acknowledged. */
class Deaf implements Transport {
  readonly remote: string;
  constructor(readonly inner: TcpTransport, readonly closed: Promise<void>) {
    this.remote = inner.remote;
  }
  deaf = false;
  send(frame: Uint8Array) {
    return this.inner.send(frame).catch(() => {});
  }
  async *frames() {
    for await (const f of this.inner.frames()) {
      if (this.deaf) return await this.closed;
      yield f;
    }
  }
  close() {
    return this.inner.close();
  }
}

async function sessionFrom(port: number, from: string, who: Identity, relay: Card, window = 32) {
  const socket = await connectFrom(port, from);
  const closed = new Promise<void>((r) => socket.once("close", () => r()));
  const t = new Deaf(new TcpTransport(socket, `tcp://127.0.0.1:${port}`), closed);
  const session = await Session.connect(t, who, { peer: relay, window });
  return { session, socket, closed, deafen: () => (t.deaf = true) };
}

/** Registered clients that misbehave; each reconnects (a new session) when dropped. */
async function sessionAttack(kind: string, port: number, from: string, relay: Card) {
  const r: AttackReport = {
    kind,
    from,
    opened: 0,
    refusedAtConnect: 0,
    closedByRelay: 0,
    maxOpen: 0,
  };
  const end = Date.now() + SECONDS * 1000;
  let registered = 0;
  let refusedRegistrations = 0;
  const one = async (n: number) => {
    const who = await createIdentity(crypto, { address: `${kind}${n}@attack.test`, ...caps });
    try {
      const c = new RelayClient((await sessionFrom(port, from, who, relay)).session);
      await c.register();
      await c.close();
    } catch { /* rate-limited: attack anyway, unregistered */ }
    while (Date.now() < end) {
      let link;
      try {
        link = await sessionFrom(port, from, who, relay, 1_000_000);
      } catch {
        r.refusedAtConnect++;
        await sleep(RETRY_MS);
        continue;
      }
      r.opened++;
      if (kind === "pipeline") {
        link.deafen();
        for (let i = 1; i <= 1100; i++) {
          void link.session.send(encodeRequest(i, { op: "lookup", target: "x@x.test" }))
            .catch(() => {});
        }
        const big = randomBytes(1024 * 1024 - 4096);
        for (let i = 0; i < 48; i++) {
          void link.session.send(
            encodeRequest(2000 + i, { op: "send", to: "x@x.test", envelope: big }),
          ).catch(() => {});
        }
      } else {
        void (async () => {
          for (let i = 0; i < 1_000_000 && !link.socket.destroyed && Date.now() < end; i++) {
            void link.session.send(randomBytes(64)).catch(() => {});
            if (i % 64 === 63) await sleep(1);
          }
        })();
      }
      const closed = await Promise.race([link.closed.then(() => true), sleep(end - Date.now())]);
      link.socket.destroy();
      await link.session.close().catch(() => {});
      if (!closed) return;
      r.closedByRelay++;
      await sleep(RETRY_MS);
    }
  };
  if (kind === "squat") {
    // One sender fills the victim's inbox; new identities register as fast as they can.
    const victim = flags.victim!; // the legitimate user's address
    const mallory = await createIdentity(crypto, { address: "mallory@attack.test", ...caps });
    const m = new RelayClient((await sessionFrom(port, from, mallory, relay)).session);
    await m.register().catch(() => {});
    let accepted = 0;
    let lastRefusal = "";
    const fill = (async () => {
      while (Date.now() < end) {
        try {
          await m.send(victim, plain(16_000));
          accepted++;
        } catch (e) {
          lastRefusal = (e as Error).message;
          await sleep(100);
        }
      }
    })();
    for (let n = 0; Date.now() < end; n++) {
      const who = await createIdentity(crypto, { address: `sybil${n}@attack.test`, ...caps });
      try {
        const c = new RelayClient((await sessionFrom(port, from, who, relay)).session);
        r.opened++;
        try {
          await c.register();
          registered++;
        } catch {
          refusedRegistrations++;
        }
        await c.close();
      } catch {
        r.refusedAtConnect++;
      }
    }
    await fill;
    await m.close().catch(() => {});
    r.detail = `inbox: ${accepted} accepted then "${lastRefusal}"; registrations: ` +
      `${registered} accepted, ${refusedRegistrations} refused`;
    return r;
  }
  await Promise.all(Array.from({ length: 8 }, (_, n) => one(n)));
  return r;
}

if (flags.role === "attacker") {
  const port = Number(flags.port);
  const from = flags.from!;
  const [relay] = await loadCards([flags.card!]);
  const report = flags.kind === "idle" || flags.kind === "partial"
    ? await rawAttack(flags.kind, port, from, Number(flags.count))
    : await sessionAttack(flags.kind!, port, from, relay);
  console.log(JSON.stringify(report));
  process.exit(0);
}

// ---------------------------------------------------------------- the relay

interface Relay {
  child: ChildProcess;
  port: number;
  card: Card;
  cardPath: string;
  peakKiB: number;
  events: () => Record<string, unknown>[];
  stop: () => Promise<void>;
}

async function startRelay(dir: string): Promise<Relay> {
  const id = await createIdentity(crypto, { address: "relay@bench.test", ...caps });
  writeFileSync(join(dir, "relay.key"), await writeKeyFile(crypto, id), { mode: 0o600 });
  const cardPath = join(dir, "relay.card");
  writeFileSync(cardPath, await cardFileText(crypto, id.card));
  const child = spawn(DENO, [
    "run",
    "-A",
    "--quiet",
    join(flags["relay-root"] ?? ROOT, "cmd/main.ts"),
    "serve",
    "tcp://127.0.0.1:0",
    "--key",
    join(dir, "relay.key"),
    "--db",
    join(dir, "relay.db"),
    "--log-json",
    "--stats",
    "--stats-interval",
    "1s",
  ], { stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  child.stderr!.on("data", (d: Uint8Array) => {
    err += new TextDecoder().decode(d);
    if (err.length > 8 * 1024 * 1024) err = err.slice(-4 * 1024 * 1024);
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stderr!.on("data", (d: Uint8Array) => {
      out += new TextDecoder().decode(d);
      const m = /relay listening on (\S+)|"event":"listen","url":"([^"]+)"/.exec(out);
      if (m) resolve(m[1] ?? m[2]);
    });
    child.on("exit", (code) => reject(new Error(`relay exited with ${code}: ${err}`)));
  });
  const relay: Relay = {
    child,
    port: Number(/:(\d+)$/.exec(url)![1]),
    card: id.card,
    cardPath,
    peakKiB: 0,
    events: () =>
      err.split("\n").filter((l) => l.startsWith("{")).flatMap((l) => {
        try {
          return [JSON.parse(l)];
        } catch {
          return [];
        }
      }),
    stop: async () => {
      clearInterval(sampler);
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
  const kib = (name: string) => {
    try {
      const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
      return Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
    } catch {
      return 0;
    }
  };
  const sampler = setInterval(() => {
    relay.peakKiB = Math.max(relay.peakKiB, kib("VmRSS"), kib("VmHWM"));
  }, 100);
  return relay;
}

// ---------------------------------------------------------------- the legitimate client

async function connectLegit(relay: Relay, me: Identity): Promise<RelayClient> {
  const socket = await connectFrom(relay.port, "127.0.0.1");
  const t = new TcpTransport(socket, `tcp://127.0.0.1:${relay.port}`);
  return new RelayClient(await Session.connect(t, me, { peer: relay.card }), {
    timeoutMs: 10_000,
  });
}

interface Latencies {
  ms: number[];
  failures: string[];
}

async function legitimate(
  relay: Relay,
  me: Identity,
  until: () => boolean,
  alsoTo?: string,
) {
  const connectAt = () => connectLegit(relay, me);
  const client = await connectAt();
  await client.register();
  await client.receive();
  const deliveries = client.deliveries();
  const ops: Latencies = { ms: [], failures: [] };
  const links: Latencies = { ms: [], failures: [] };
  const roundTrips = (async () => {
    while (!until()) {
      const t0 = performance.now();
      try {
        const envelope = plain(300);
        const mid = await client.send(me.card.address, envelope);
        for (;;) {
          const d = await deliveries.next();
          if (d.done) throw new Error("deliveries ended");
          await client.ack(d.value.message);
          if (d.value.message === mid) break;
        }
        // The squatted inbox still takes this sender's messages (fair quotas).
        if (alsoTo) await client.send(alsoTo, plain(300));
        ops.ms.push(performance.now() - t0);
      } catch (e) {
        ops.failures.push(String((e as Error).message));
        await sleep(100);
      }
    }
  })();
  const freshLinks = (async () => {
    while (!until()) {
      const t0 = performance.now();
      try {
        const c = await connectAt();
        await c.lookup(me.card.address);
        links.ms.push(performance.now() - t0);
        await c.close();
      } catch (e) {
        links.failures.push(String((e as Error).message));
      }
      await sleep(1000);
    }
  })();
  return {
    async done() {
      await Promise.all([roundTrips, freshLinks]);
      await client.close();
      return { ops, links };
    },
  };
}

// ---------------------------------------------------------------- one attack

const ATTACKS: Record<string, { kind: string; from: string; count?: number }[]> = {
  baseline: [],
  idle: [{ kind: "idle", from: "127.0.0.2", count: 1100 }],
  partial: [{ kind: "partial", from: "127.0.0.3", count: 200 }],
  combined: [
    { kind: "idle", from: "127.0.0.2", count: 1100 },
    { kind: "partial", from: "127.0.0.3", count: 200 },
  ],
  pipeline: [{ kind: "pipeline", from: "127.0.0.4" }],
  malformed: [{ kind: "malformed", from: "127.0.0.4" }],
  squat: [{ kind: "squat", from: "127.0.0.4" }],
};

function attacker(relay: Relay, a: { kind: string; from: string; count?: number }, victim: string) {
  const child = spawn(DENO, [
    "run",
    "-A",
    "--quiet",
    join(ROOT, "bench/hostile.ts"),
    "--role",
    "attacker",
    "--kind",
    a.kind,
    "--from",
    a.from,
    "--port",
    String(relay.port),
    "--card",
    relay.cardPath,
    "--count",
    String(a.count ?? 0),
    "--victim",
    victim,
    "--seconds",
    String(SECONDS),
    "--retry-ms",
    String(RETRY_MS),
  ], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout!.on("data", (d: Uint8Array) => (out += new TextDecoder().decode(d)));
  return new Promise<AttackReport>((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), (SECONDS + 60) * 1000);
    child.on("exit", () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(out.trim().split("\n").at(-1)!));
      } catch {
        resolve({
          kind: a.kind,
          from: a.from,
          opened: 0,
          refusedAtConnect: 0,
          closedByRelay: 0,
          maxOpen: 0,
          detail: `no report: ${out.slice(0, 200)}`,
        });
      }
    });
  });
}

const stat = (l: Latencies) => {
  const s = [...l.ms].sort((a, b) => a - b);
  return {
    n: s.length,
    p50ms: Math.round(s[Math.floor(s.length / 2)] ?? NaN),
    maxMs: Math.round(s.at(-1) ?? NaN),
    failures: l.failures.length,
    ...(l.failures.length ? { firstFailure: l.failures[0] } : {}),
  };
};

async function run(name: string) {
  const { dir, cleanup } = tempDir("missive-hostile-bench-");
  const relay = await startRelay(dir);
  const me = await createIdentity(crypto, { address: "legit@bench.test", ...caps });
  // An offline user whose inbox the squatter fills.
  const victim = await createIdentity(crypto, { address: "victim@bench.test", ...caps });
  const v = await connectLegit(relay, victim);
  await v.register();
  await v.close();
  let stop = false;
  const legit = await legitimate(
    relay,
    me,
    () => stop,
    name === "squat" ? victim.card.address : undefined,
  );
  await sleep(1000); // a second of quiet first
  const attacks = ATTACKS[name].map((a) => attacker(relay, a, victim.card.address));
  const seconds = name === "baseline" ? 5 : SECONDS;
  await sleep(seconds * 1000);
  stop = true;
  const { ops, links } = await legit.done();
  const reports = await Promise.all(attacks);
  await relay.stop();
  const all = relay.events().filter((e) => e.event === "stats");
  const stats = all.at(-1) ?? {};
  const peak = (k: string) => Math.max(0, ...all.map((e) => Number(e[k] ?? 0)));
  const why = Object.fromEntries(
    Object.entries(stats).filter(([k]) => k.startsWith("refused-") || k.startsWith("dropped-")),
  );
  cleanup();
  return {
    attack: name,
    relayPeakRssMiB: Math.round(relay.peakKiB / 1024),
    relayPeakHeapMiB: peak("heapMiB"),
    relayPeakExternalMiB: peak("externalMiB"),
    roundTrip: stat(ops),
    freshLink: stat(links),
    attackers: reports,
    relayDrops: why,
  };
}

const names = flags.attacks === "all"
  ? Object.keys(ATTACKS)
  : ["baseline", ...flags.attacks!.split(",")];
let failed = false;
for (const name of names) {
  const r = await run(name);
  console.log(JSON.stringify(r));
  const slow = Math.max(r.roundTrip.maxMs, r.freshLink.maxMs) > 2000 ||
    r.roundTrip.failures + r.freshLink.failures > 0;
  if (slow || (name === "combined" && r.relayPeakRssMiB > 200)) failed = true;
}
process.exit(failed ? 1 : 0);
