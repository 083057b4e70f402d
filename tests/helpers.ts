/**
 * Shared test helpers: the CLI in-process (fast, for exhaustive loops) and as a real
 * subprocess (end-to-end), temporary folders, and fixed identities.
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { concatBytes, utf8 } from "../core/bytes.ts";
import type { Io } from "../cmd/common.ts";
import { main } from "../cmd/main.ts";
import { nobleProvider } from "../crypto/mod.ts";
import { createIdentity, type Identity } from "../keys/identity.ts";
import { defaultRegistry } from "../mod.ts";

/** The repository root. */
export const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** Deno from node_modules, used to run the entry point as a subprocess. */
export const DENO = join(ROOT, "node_modules", ".bin", "deno");
export const ENTRY = join(ROOT, "cmd", "main.ts");

/** What a CLI run produced. */
export interface CliResult {
  code: number;
  stdout: Uint8Array;
  stderr: string;
  /** stdout as UTF-8 text. */
  text: string;
}

/** Runs the CLI in this process with the given stdin and environment. */
export async function runCli(
  args: string[],
  options: { stdin?: Uint8Array | string; env?: Record<string, string>; tty?: boolean } = {},
): Promise<CliResult> {
  const out: Uint8Array[] = [];
  let err = "";
  const input = typeof options.stdin === "string" ? utf8(options.stdin) : options.stdin;
  const io: Io = {
    stdin: async function* () {
      if (input && input.length > 0) yield input;
    },
    stdout: (data) => {
      out.push(new Uint8Array(data));
      return Promise.resolve();
    },
    stderr: (line) => {
      err += line;
    },
    stdoutIsTty: options.tty ?? false,
    env: { ...options.env },
  };
  const code = await main(args, io);
  const stdout = concatBytes(...out);
  return { code, stdout, stderr: err, text: new TextDecoder().decode(stdout) };
}

/** Where and how a CLI subprocess runs. */
export interface SpawnOptions {
  env?: Record<string, string>;
  cwd?: string;
  binary?: string;
  /** The whole run; a longer one is killed (default 60 s; 0: never, for servers). */
  timeoutMs?: number;
}

/** Starts the entry point (or `binary`); `done` resolves when it ends. */
function launchCli(args: string[], options: SpawnOptions, stdin: "pipe" | "ignore") {
  const [cmd, pre] = options.binary
    ? [options.binary, []]
    : [DENO, ["run", "--allow-all", "--quiet", ENTRY]];
  const child = spawn(cmd, [...pre, ...args], {
    cwd: options.cwd ?? ROOT,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...options.env },
    stdio: [stdin, "pipe", "pipe"],
  });
  const out: Uint8Array[] = [];
  const output = { stderr: "" };
  const limit = options.timeoutMs ?? 60_000;
  const timer = limit > 0 ? setTimeout(() => child.kill("SIGKILL"), limit) : undefined;
  child.stdout!.on("data", (d: Uint8Array) => out.push(new Uint8Array(d)));
  child.stderr!.on("data", (d: Uint8Array) => (output.stderr += new TextDecoder().decode(d)));
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const stdout = concatBytes(...out);
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout,
        stderr: output.stderr,
        text: new TextDecoder().decode(stdout),
      });
    });
  });
  return { child, done, output };
}

/**
 * Runs the real entry point (`deno run cmd/main.ts`) or a given binary as a subprocess.
 * Resolves with its exit code and output; a run longer than `timeoutMs` is killed.
 */
export function spawnCli(
  args: string[],
  options: SpawnOptions & { stdin?: Uint8Array | string } = {},
): Promise<CliResult> {
  const { child, done } = launchCli(args, options, "pipe");
  child.stdin!.on("error", () => {}); // the child may exit before reading everything
  child.stdin!.end(
    typeof options.stdin === "string" ? utf8(options.stdin) : options.stdin ?? new Uint8Array(),
  );
  return done;
}

/** A CLI subprocess that keeps running: a listener, a server. */
export interface RunningCli {
  /** The first group of `ready` (e.g. the URL it bound). */
  url: string;
  done: Promise<CliResult>;
  child: ChildProcess;
  /** Its standard error so far. */
  stderr(): string;
}

/** `missive serve`'s ready line: the short one or the `--log-json` listen event. */
export const SERVE_READY = /relay listening on (\S+)|"event":"listen","url":"([^"]+)"/;

/**
 * Starts a long-running command and resolves once its stderr matches `ready` (whose
 * first group becomes `url`); rejects if it ends first.
 */
export function startCli(
  args: string[],
  options: SpawnOptions & { ready: RegExp },
): Promise<RunningCli> {
  const { child, done, output } = launchCli(args, options, "ignore");
  return new Promise((resolve, reject) => {
    child.stderr!.on("data", () => {
      const m = options.ready.exec(output.stderr);
      if (m) resolve({ url: m[1] ?? m[2], done, child, stderr: () => output.stderr });
    });
    done.then(
      (r) => reject(new Error(`${args[0]} exited early (${r.code}): ${r.stderr}`)),
      reject,
    );
  });
}

/** A fresh temporary folder and a function that removes it. */
export function tempDir(prefix = "missive-test-"): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Deterministic identities from a one-byte seed (never use fixed keys outside tests). */
export async function fixedIdentity(
  address: string,
  seed: number,
  options: { hybrid?: boolean } = {},
): Promise<Identity> {
  const { stps, amps } = defaultRegistry().list();
  const hybrid = options.hybrid ?? true;
  return await createIdentity(nobleProvider, {
    address,
    stps: stps.map((p) => [p.type, p.version] as const),
    amps: amps.map((p) => [p.type, p.version] as const),
    created: 1_700_000_000_000,
    signingSeed: new Uint8Array(32).fill(seed),
    agreementKey: new Uint8Array(32).fill(seed + 1),
    hybrid,
    ...(hybrid ? { hybridSeed: new Uint8Array(32).fill(seed + 2) } : {}),
  });
}

/** Folders whose sources never go into the binary. */
const NOT_IN_BINARY = new Set(["node_modules", "dist", "tests", "bench", "docs", ".git"]);

/** SHA-256 over every source file the binary is built from (path and content). */
function sourceHash(): string {
  const hash = createHash("sha256");
  const walk = (dir: string) => {
    for (const name of readdirSync(join(ROOT, dir)).sort()) {
      const rel = dir ? `${dir}/${name}` : name;
      if (NOT_IN_BINARY.has(rel) || name.startsWith(".")) continue;
      const st = statSync(join(ROOT, rel));
      if (st.isDirectory()) walk(rel);
      else if (/\.(ts|json)$/.test(name)) {
        hash.update(`${rel}\0`).update(readFileSync(join(ROOT, rel)));
      }
    }
  };
  walk("");
  return hash.digest("hex");
}

let building: Promise<void> | undefined;

/**
 * The compiled binary (`scripts/compile.sh` → dist/missive), copied into `dir` so that a
 * concurrent rebuild never replaces a file while it runs. Built once per source state:
 * dist/.source-hash records what the binary was built from, so the test files that need
 * it (and both runtimes' runs) share one build.
 */
export async function compiledBinary(dir: string, name = "missive"): Promise<string> {
  building ??= (async () => {
    const dist = join(ROOT, "dist", "missive");
    const stamp = join(ROOT, "dist", ".source-hash");
    const want = sourceHash();
    if (existsSync(dist) && existsSync(stamp) && readFileSync(stamp, "utf8") === want) return;
    const r = await spawnCli(["scripts/compile.sh"], {
      binary: "bash",
      cwd: ROOT,
      timeoutMs: 300_000,
    });
    if (r.code !== 0) throw new Error(`compile.sh failed: ${r.stderr}`);
    if ((statSync(dist).mode & 0o111) !== 0o111) throw new Error("dist/missive is not executable");
    writeFileSync(stamp, want);
  })();
  await building;
  const copy = join(dir, name);
  copyFileSync(join(ROOT, "dist", "missive"), copy);
  return copy;
}
