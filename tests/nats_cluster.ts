/**
 * A local NATS JetStream cluster for tests and benchmarks (docs/SCALE.md): `nats-server`
 * processes on 127.0.0.1 with free ports, each with its own data folder in a temporary
 * folder, started and stopped by PID (never by name). `scripts/nats-cluster.sh` is the
 * same for people.
 * @module
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { tempDir } from "./helpers.ts";

/** Whether `nats-server` is on PATH (scripts/install-peers.sh installs it). */
export function haveNatsServer(): boolean {
  return spawnSync("nats-server", ["--version"], { stdio: "ignore" }).status === 0;
}

/** A TCP port free on 127.0.0.1 now. */
export async function freeTcpPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** One nats-server of the cluster. */
export interface NatsNode {
  readonly name: string;
  readonly url: string;
  readonly dataDir: string;
  /** The running process's PID (undefined while stopped). */
  readonly pid: number | undefined;
}

/** A running cluster. */
export interface NatsCluster {
  readonly nodes: readonly NatsNode[];
  /** Every client URL, comma-separated (`--store`'s form). */
  readonly urls: string;
  /** The folder holding every node's data. */
  readonly dir: string;
  /** SIGKILL node `i` (by its PID) and wait for it to exit. */
  kill(i: number): Promise<void>;
  /** Starts node `i` again on its ports and data. */
  restart(i: number): Promise<void>;
  /** Stops every node by PID and removes the data. */
  stop(): Promise<void>;
}

interface Member {
  name: string;
  port: number;
  clusterPort: number;
  dataDir: string;
  config: string;
  child?: ChildProcess;
  exited?: Promise<void>;
}

async function waitReady(m: Member, log: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (/Server is ready/.test(log())) return;
    if (m.child?.exitCode !== null) throw new Error(`nats-server ${m.name} exited: ${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nats-server ${m.name} not ready within 15 s: ${log()}`);
}

/** Starts `size` (default 3) clustered JetStream nodes on 127.0.0.1. */
export async function startNatsCluster(size = 3): Promise<NatsCluster> {
  const { dir, cleanup } = tempDir("missive-nats-");
  const members: Member[] = [];
  for (let i = 0; i < size; i++) {
    members.push({
      name: `n${i + 1}`,
      port: await freeTcpPort(),
      clusterPort: await freeTcpPort(),
      dataDir: join(dir, `n${i + 1}`),
      config: join(dir, `n${i + 1}.conf`),
    });
  }
  for (const m of members) {
    mkdirSync(m.dataDir, { recursive: true });
    const routes = members.filter((o) => o !== m)
      .map((o) => `nats-route://127.0.0.1:${o.clusterPort}`);
    writeFileSync(
      m.config,
      [
        `server_name: ${m.name}`,
        `listen: 127.0.0.1:${m.port}`,
        `jetstream { store_dir: "${m.dataDir}", max_memory_store: 256MB, max_file_store: 4GB }`,
        size > 1
          ? `cluster { name: missive, listen: 127.0.0.1:${m.clusterPort}, routes: [${
            routes.join(", ")
          }] }`
          : "",
      ].join("\n") + "\n",
    );
  }
  const logs = new Map<Member, string>();
  const launch = (m: Member) => {
    logs.set(m, "");
    const child = spawn("nats-server", ["-c", m.config], { stdio: ["ignore", "ignore", "pipe"] });
    child.stderr!.on("data", (d: Uint8Array) => {
      const text = logs.get(m)! + new TextDecoder().decode(d);
      logs.set(m, text.length > 65536 ? text.slice(-65536) : text);
    });
    m.child = child;
    m.exited = new Promise((r) => child.once("exit", () => r()));
    return waitReady(m, () => logs.get(m)!);
  };
  const stopAll = async () => {
    for (const m of members) {
      if (m.child && m.child.exitCode === null && m.child.signalCode === null) {
        m.child.kill("SIGTERM");
        await Promise.race([m.exited, new Promise((r) => setTimeout(r, 5000))]);
        if (m.child.exitCode === null && m.child.signalCode === null) {
          m.child.kill("SIGKILL");
          await m.exited;
        }
      }
    }
  };
  try {
    await Promise.all(members.map(launch));
  } catch (e) {
    await stopAll();
    cleanup();
    throw e;
  }
  const nodes = members.map((m) => ({
    name: m.name,
    url: `nats://127.0.0.1:${m.port}`,
    dataDir: m.dataDir,
    get pid() {
      return m.child?.exitCode === null && m.child.signalCode === null ? m.child.pid : undefined;
    },
  }));
  return {
    nodes,
    urls: nodes.map((n) => n.url).join(","),
    dir,
    async kill(i) {
      const m = members[i];
      m.child?.kill("SIGKILL");
      await m.exited;
    },
    restart: (i) => launch(members[i]),
    async stop() {
      await stopAll();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
