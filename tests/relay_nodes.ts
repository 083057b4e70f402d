/**
 * Relay nodes as subprocesses (`missive serve --store nats://…`) for the scale-out tests
 * and benchmark: started on 127.0.0.1 port 0, stopped by PID.
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import process from "node:process";
import { DENO, ENTRY, ROOT } from "./helpers.ts";

/** A running `missive serve`. */
export interface ServeNode {
  name: string;
  child: ChildProcess;
  url: string;
  /** What it wrote on stderr so far (its log). */
  stderr: () => string;
  exited: Promise<number | null>;
}

/**
 * Starts `missive serve tcp://127.0.0.1:0 --key KEY --store STORE --node NAME …` (or
 * with `--db` when `store` is a path, not a nats:// URL list).
 */
export function startServeNode(
  key: string,
  store: string,
  name: string,
  extra: string[] = [],
  runtime: string[] = [DENO, "run", "--allow-all", "--quiet"],
): Promise<ServeNode> {
  const storeArgs = /^(nats|tls):\/\//.test(store)
    ? ["--store", store, "--node", name]
    : ["--db", store];
  const child = spawn(runtime[0], [
    ...runtime.slice(1),
    ENTRY,
    "serve",
    "tcp://127.0.0.1:0",
    "--key",
    key,
    ...storeArgs,
    "--log-json",
    ...extra,
  ], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let err = "";
  let ready: ((url: string) => void) | undefined;
  child.stderr!.on("data", (d: Uint8Array) => {
    err += new TextDecoder().decode(d);
    if (ready) {
      // The ready line is the JSON "listen" event (serve logs JSON here).
      const m = /relay listening on (\S+)|"event":"listen","url":"([^"]+)"/.exec(err);
      if (m) {
        ready(m[1] ?? m[2]);
        ready = undefined;
      }
    }
    if (err.length > 1 << 20) err = err.slice(-(1 << 19));
  });
  child.stdout!.resume();
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      process.kill(child.pid!, "SIGKILL");
      reject(new Error(`serve ${name} did not start within 60 s: ${err}`));
    }, 60_000);
    ready = (url) => {
      clearTimeout(timer);
      resolve({ name, child, url, stderr: () => err, exited });
    };
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`serve ${name} exited with ${code}: ${err}`));
    });
  });
}

/** Signals the node by its PID and waits for it to exit (nothing if it already did). */
export async function killServe(
  node: ServeNode,
  signal: "SIGKILL" | "SIGTERM",
): Promise<number | null> {
  if (node.child.exitCode !== null || node.child.signalCode !== null) return node.exited;
  // process.kill, not child.kill: Deno's child_process reports a child it signalled
  // itself as killed (code null) even when it exited normally.
  try {
    process.kill(node.child.pid!, signal);
  } catch {
    // Gone meanwhile.
  }
  return await node.exited;
}

/** Resident memory of a process now and at its peak, MiB (Linux /proc). */
export function rssOf(pid: number): { now: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { now: Math.round(kb("VmRSS") / 1024), peak: Math.round(kb("VmHWM") / 1024) };
}

/** CPU time (user + system) of a process so far, µs (Linux /proc, 100 ticks a second). */
export function cpuOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}
