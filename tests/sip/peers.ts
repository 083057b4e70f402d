/**
 * Test helpers that run the real SIP peers: sipp (apt `sip-tester`) and Kamailio.
 * Every process started here is killed by the test that started it (finally) and, as a
 * last resort, when the test process exits.
 * @module
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { utf8 } from "../../core/bytes.ts";
import { RawUdp } from "./net.ts";

/** This folder: the sipp scenarios and kamailio.cfg. */
export const SIP_DIR = fileURLToPath(new URL(".", import.meta.url));

const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/** Fails (never skips) when a peer is missing, saying how to install it. */
export function requireTool(name: "sipp" | "kamailio"): string {
  const found = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" });
  const path = found.stdout?.trim();
  if (found.status !== 0 || !path) {
    const pkg = name === "sipp" ? "sip-tester" : "kamailio";
    throw new Error(
      `${name} is not installed: run scripts/install-peers.sh (apt-get install -y ${pkg})`,
    );
  }
  return path;
}

/** A port free on 127.0.0.1 for both UDP and TCP at the time of the call. */
export async function freePort(): Promise<number> {
  for (;;) {
    const udp = createSocket("udp4");
    await new Promise<void>((r) => udp.bind(0, "127.0.0.1", () => r()));
    const port = udp.address().port;
    const tcp = createServer();
    const ok = await new Promise<boolean>((resolve) => {
      tcp.once("error", () => resolve(false));
      tcp.listen(port, "127.0.0.1", () => resolve(true));
    });
    await new Promise<void>((r) => udp.close(() => r()));
    if (ok) {
      await new Promise<void>((r) => tcp.close(() => r()));
      return port;
    }
  }
}

/** A started process with its exit and its output so far. */
export interface Peer {
  readonly child: ChildProcess;
  readonly exited: Promise<number>;
  output(): string;
  stop(): Promise<number>;
}

/** Starts a process whose output is collected; tracked so it dies with the tests. */
export function startProcess(cmd: string, args: string[], cwd: string): Peer {
  const child = spawn(cmd, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
  running.add(child);
  let out = "";
  child.stdout!.on("data", (d: Uint8Array) => (out += new TextDecoder().decode(d)));
  child.stderr!.on("data", (d: Uint8Array) => (out += new TextDecoder().decode(d)));
  const exited = new Promise<number>((resolve) => {
    child.on("exit", (code, signal) => {
      running.delete(child);
      resolve(code ?? (signal ? 128 : 1));
    });
    child.on("error", (e) => {
      out += String(e);
      running.delete(child);
      resolve(127);
    });
  });
  const stop = async () => {
    if (running.has(child)) {
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 3000);
      const code = await exited;
      clearTimeout(killer);
      return code;
    }
    return exited;
  };
  return { child, exited, output: () => out, stop };
}

/** Waits until the process printed something matching `pattern`; returns the match. */
export async function waitForOutput(
  peer: Peer,
  pattern: RegExp,
  ms = 30000,
): Promise<RegExpExecArray> {
  const deadline = Date.now() + ms;
  let exited = false;
  peer.exited.then(() => (exited = true));
  for (;;) {
    const m = pattern.exec(peer.output());
    if (m) return m;
    if (exited || Date.now() > deadline) {
      throw new Error(`no ${pattern} in the output${exited ? " (exited)" : ""}:\n${peer.output()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A temporary working folder holding a copy of `scenario` and the given files. */
export function sippDir(scenario: string, files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), "missive-sipp-"));
  copyFileSync(join(SIP_DIR, scenario), join(dir, scenario));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

/**
 * Starts sipp on `scenario` for one call (-m 1) bound to 127.0.0.1:`port`; `remote` is
 * the peer for a UAC. sipp exits 0 when the scenario passed.
 */
export function startSipp(
  dir: string,
  scenario: string,
  options: { port: number; remote?: string; service?: string; transport: "udp" | "tcp" },
): Peer {
  const args = [
    "-sf",
    scenario,
    "-m",
    "1",
    "-i",
    "127.0.0.1",
    "-p",
    String(options.port),
    "-t",
    options.transport === "udp" ? "u1" : "t1",
    "-timeout",
    "20",
    "-timeout_error",
    "-trace_msg",
    "-trace_err",
    "-nostdin",
  ];
  if (options.service) args.push("-s", options.service);
  if (options.remote) args.push(options.remote);
  return startProcess(requireTool("sipp"), args, dir);
}

/** sipp's message trace (what it sent and received), for assertions and failures. */
export function sippTrace(dir: string): string {
  const ls = spawnSync("sh", ["-c", "cat *_messages.log *_errors.log 2>/dev/null"], {
    cwd: dir,
    encoding: "utf8",
  });
  return ls.stdout ?? "";
}

/** Waits until something answers SIP OPTIONS on 127.0.0.1:port over UDP. */
export async function waitForSip(port: number, ms = 15000): Promise<void> {
  const probe = await RawUdp.open();
  try {
    const deadline = Date.now() + ms;
    for (let i = 0; Date.now() < deadline; i++) {
      const options = [
        `OPTIONS sip:127.0.0.1:${port} SIP/2.0`,
        `Via: SIP/2.0/UDP 127.0.0.1:${probe.port};branch=z9hG4bKprobe${i};rport`,
        `From: <sip:probe@127.0.0.1>;tag=p`,
        `To: <sip:127.0.0.1:${port}>`,
        `Call-ID: probe-${i}`,
        `CSeq: 1 OPTIONS`,
        `Max-Forwards: 70`,
        `Content-Length: 0`,
        "",
        "",
      ].join("\r\n");
      await probe.send(utf8(options), port);
      try {
        await probe.waitFor(1, 200);
        return;
      } catch { /* not up yet */ }
    }
    throw new Error(`nothing answered SIP on 127.0.0.1:${port} within ${ms} ms`);
  } finally {
    await probe.close();
  }
}

/** A running Kamailio on 127.0.0.1:port (UDP and TCP) with tests/sip/kamailio.cfg. */
export interface Kamailio extends Peer {
  readonly port: number;
  readonly dir: string;
}

/** Starts Kamailio in the foreground (-DD) with a temporary runtime folder. */
export async function startKamailio(): Promise<Kamailio> {
  const bin = requireTool("kamailio");
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "missive-kamailio-"));
  const peer = startProcess(bin, [
    "-f",
    join(SIP_DIR, "kamailio.cfg"),
    "-l",
    `udp:127.0.0.1:${port}`,
    "-l",
    `tcp:127.0.0.1:${port}`,
    "-P",
    join(dir, "kamailio.pid"),
    "-Y",
    dir,
    "-w",
    dir,
    "-E",
    "-DD",
    "-m",
    "32",
    "-M",
    "4",
  ], dir);
  const kamailio = { ...peer, port, dir };
  try {
    await Promise.race([
      waitForSip(port),
      peer.exited.then((code) => {
        throw new Error(`kamailio exited (${code}) at start:\n${peer.output()}`);
      }),
    ]);
  } catch (e) {
    await stopKamailio(kamailio);
    throw e;
  }
  return kamailio;
}

/** Stops Kamailio by its pid (the pid file's, else the child's) and removes its folder. */
export async function stopKamailio(k: Kamailio): Promise<void> {
  try {
    const pid = Number(readFileSync(join(k.dir, "kamailio.pid"), "utf8").trim());
    if (pid > 0 && pid !== k.child.pid) process.kill(pid, "SIGTERM");
  } catch { /* no pid file: the child is the main process */ }
  await k.stop();
  rmSync(k.dir, { recursive: true, force: true });
}
