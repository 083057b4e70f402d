/**
 * Start-up of the compiled binary against the runtime's floor and age (issue 12), in one
 * run, interleaved: each round runs every row once, in turn, so a load change on this
 * shared machine hits every row alike; the figure is the median over the rounds.
 *
 *     bun bench/startup.ts                      # builds dist/missive and the floor first
 *     ROUNDS=60 NO_COMPILE=1 bun bench/startup.ts
 *     BUDGET=1 bun bench/startup.ts             # exit 1 when over issue 12's budget
 *
 * Rows: the floor (a compiled "hello world" built by the same `bun build --compile`
 * flags as scripts/compile.sh), age encrypting and decrypting 6 bytes, `missive
 * --version`, a tiny `seal` and a tiny `open` (simple v3, hybrid cards: the default a new
 * user gets) and the same with --stp simple/2 (classical). Each command's output is
 * checked once before timing. Wall time is measured around a blocking spawn, so process
 * creation counts for every row alike. Prints a Markdown table for docs/BENCHMARKS.md.
 * The budget (issue 12): `--version` ≤ 3× the floor, a tiny seal and open ≤ 5× the floor;
 * with BUDGET=1 a row over it makes the exit status 1 (a benchmark, never a test: timings
 * stay out of the test suite).
 * @module
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";

const root = resolve(import.meta.dirname!, "..");
const rounds = Number(process.env.ROUNDS ?? 40);
const work = mkdtempSync(join(tmpdir(), "missive-startup-"));
const bin = join(root, "node_modules/.bin/bun");

function run(cmd: string[], input?: Uint8Array | string): { out: Buffer; ms: number } {
  const t = performance.now();
  const r = spawnSync(cmd[0], cmd.slice(1), { cwd: work, input, maxBuffer: 1 << 26 });
  const ms = performance.now() - t;
  if (r.status !== 0) {
    throw new Error(`${cmd.join(" ")}: exit ${r.status}: ${r.stderr?.toString().trim()}`);
  }
  return { out: r.stdout, ms };
}

try {
  if (!process.env.NO_COMPILE) {
    run(["bash", join(root, "scripts/compile.sh")]);
  }
  const hello = join(work, "hello.ts");
  writeFileSync(hello, 'console.log("hello");\n');
  // The floor: the same bundler flags as scripts/compile.sh.
  run([
    bin,
    "build",
    "--compile",
    "--minify",
    "--bytecode",
    "--format=esm",
    hello,
    "--outfile",
    join(work, "hello"),
  ]);
  const m = join(root, "dist/missive");
  const msg = "hello\n";
  for (const name of ["alice", "bob"]) {
    const r = run([m, "keygen", "--name", `${name}@bench.example`, "-o", `${name}.key`]);
    writeFileSync(join(work, `${name}.card`), r.out);
  }
  run(["age-keygen", "-o", "age.key"]);
  const ageRecipient = /age1[0-9a-z]+/.exec(readFileSync(join(work, "age.key"), "utf8"))![0];
  writeFileSync(
    join(work, "sealed-v3"),
    run([m, "seal", "--from", "alice.key", "--to", "bob.card"], msg).out,
  );
  writeFileSync(
    join(work, "sealed-v2"),
    run([m, "seal", "--stp", "simple/2", "--from", "alice.key", "--to", "bob.card"], msg).out,
  );
  writeFileSync(join(work, "msg.age"), run(["age", "-r", ageRecipient], msg).out);

  const rows: { name: string; cmd: string[]; input?: string; expect?: string }[] = [
    { name: "floor: compiled hello world", cmd: ["./hello"], expect: "hello\n" },
    { name: "age -r (encrypt 6 bytes)", cmd: ["age", "-r", ageRecipient], input: msg },
    {
      name: "age -d (decrypt 6 bytes)",
      cmd: ["age", "-d", "-i", "age.key", "msg.age"],
      expect: msg,
    },
    { name: "missive --version", cmd: [m, "--version"] },
    {
      name: "missive seal (simple v3, 6 bytes)",
      cmd: [m, "seal", "--from", "alice.key", "--to", "bob.card"],
      input: msg,
    },
    {
      name: "missive open (simple v3)",
      cmd: [m, "open", "--key", "bob.key", "--trust", "alice.card", "sealed-v3"],
      expect: msg,
    },
    {
      name: "missive seal (simple v2, classical)",
      cmd: [m, "seal", "--stp", "simple/2", "--from", "alice.key", "--to", "bob.card"],
      input: msg,
    },
    {
      name: "missive open (simple v2)",
      cmd: [m, "open", "--key", "bob.key", "--trust", "alice.card", "sealed-v2"],
      expect: msg,
    },
  ];
  for (const row of rows) {
    const { out } = run(row.cmd, row.input);
    if (row.expect !== undefined && out.toString() !== row.expect) {
      throw new Error(`${row.name}: unexpected output ${JSON.stringify(out.toString())}`);
    }
  }
  const times = rows.map(() => [] as number[]);
  const before = loadavg()[0];
  for (let i = 0; i < rounds; i++) {
    rows.forEach((row, j) => times[j].push(run(row.cmd, row.input).ms));
  }
  const after = loadavg()[0];
  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const floor = median(times[0]);
  const ageEnc = median(times[1]);
  const ageDec = median(times[2]);
  console.log(
    `start-up, ${rounds} interleaved rounds, median wall ms (Bun ${process.versions.bun ?? "-"}, ` +
      `${cpus().length} cores, load ${before.toFixed(2)} → ${after.toFixed(2)})\n`,
  );
  console.log("| command | median ms | × floor | × age |");
  console.log("|---|---:|---:|---:|");
  const budget: Record<string, number> = {
    "missive --version": 3,
    "missive seal (simple v3, 6 bytes)": 5,
    "missive open (simple v3)": 5,
  };
  let over = 0;
  rows.forEach((row, j) => {
    const med = median(times[j]);
    if (budget[row.name] !== undefined && med / floor > budget[row.name]) over++;
    const peer = row.name.includes("open") || row.name.includes("-d") ? ageDec : ageEnc;
    console.log(
      `| ${row.name} | ${med.toFixed(1)} | ${(med / floor).toFixed(2)} | ${
        (med / peer).toFixed(2)
      } |`,
    );
  });
  if (over > 0) {
    console.log(
      `\n${over} row(s) over the start-up budget (3x floor for --version, 5x for seal/open)`,
    );
    if (process.env.BUDGET) process.exitCode = 1;
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
