/**
 * Detached signatures of a large file (SPEC §24), side by side in one run:
 * `deno run -A bench/sign_files.ts [MiB]` (default 256). For the same generated file it
 * times, in rounds interleaved so the machine's load falls on all alike, the hash floors
 * (`sha512sum`, `b2sum`), `minisign -S`/`-V` (libsodium), and `missive sign`/`verify`
 * in both formats through the CLI (Deno), missive's own format also with
 * MISSIVE_CRYPTO=noble (the portable hash); then peak RSS of `missive sign` on the file
 * with /usr/bin/time -v, against that of a 1 MiB file. Prints one line per command: best seconds of 3, MB/s, and the
 * ratio to the floor of the same hash. Figures: docs/BENCHMARKS.md, Detached signatures.
 */
import { spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const MIB = Number(process.argv[2] ?? 256);
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const DENO = join(ROOT, "node_modules", ".bin", "deno");
const MISSIVE = [DENO, "run", "-A", "--quiet", join(ROOT, "cmd", "main.ts")];
const dir = mkdtempSync(join(tmpdir(), "missive-sign-bench-"));
const at = (n: string) => join(dir, n);

function run(argv: string[], env: Record<string, string> = {}) {
  const start = performance.now();
  const r = spawnSync(argv[0], argv.slice(1), {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
    maxBuffer: 1 << 26,
  });
  const seconds = (performance.now() - start) / 1000;
  if (r.status !== 0) throw new Error(`${argv.join(" ")}: ${r.stderr}`);
  return { seconds, stdout: r.stdout as Uint8Array, stderr: String(r.stderr) };
}

try {
  // The file: MIB MiB of a fixed pattern, written in 1 MiB blocks.
  const block = new Uint8Array(1 << 20).map((_, i) => (i * 131 + (i >> 11)) & 0xff);
  const fd = openSync(at("file.bin"), "w");
  for (let i = 0; i < MIB; i++) writeSync(fd, block);
  closeSync(fd);
  run([...MISSIVE, "keygen", "--name", "bench@example.org", "-o", at("k.key")]);
  run(["minisign", "-G", "-W", "-p", at("ms.pub"), "-s", at("ms.key")]);
  const card = run([...MISSIVE, "card", at("k.key")]).stdout;
  Deno.writeFileSync(at("k.card"), card);
  Deno.writeFileSync(at("k.pub"), run([...MISSIVE, "card", "--minisign", at("k.key")]).stdout);
  const own = run([...MISSIVE, "sign", "--key", at("k.key"), at("file.bin")]).stdout;
  Deno.writeFileSync(at("own.sig"), own);
  const mini =
    run([...MISSIVE, "sign", "--key", at("k.key"), "--format", "minisign", at("file.bin")])
      .stdout;
  Deno.writeFileSync(at("mini.sig"), mini);
  run(["minisign", "-S", "-s", at("ms.key"), "-m", at("file.bin"), "-x", at("ms.sig")]);

  const f = at("file.bin");
  const cases: {
    name: string;
    hash: "sha512" | "blake2b";
    argv: string[];
    env?: Record<string, string>;
  }[] = [
    { name: "sha512sum (floor)", hash: "sha512", argv: ["sha512sum", f] },
    { name: "missive sign", hash: "sha512", argv: [...MISSIVE, "sign", "--key", at("k.key"), f] },
    {
      name: "missive sign, MISSIVE_CRYPTO=noble",
      hash: "sha512",
      argv: [...MISSIVE, "sign", "--key", at("k.key"), f],
      env: { MISSIVE_CRYPTO: "noble" },
    },
    {
      name: "missive verify",
      hash: "sha512",
      argv: [...MISSIVE, "verify", "--trust", at("k.card"), at("own.sig"), f],
    },
    { name: "b2sum (floor)", hash: "blake2b", argv: ["b2sum", f] },
    {
      name: "minisign -S",
      hash: "blake2b",
      argv: ["minisign", "-S", "-s", at("ms.key"), "-m", f, "-x", at("ms2.sig")],
    },
    {
      name: "missive sign --format minisign",
      hash: "blake2b",
      argv: [...MISSIVE, "sign", "--key", at("k.key"), "--format", "minisign", f],
    },
    {
      name: "minisign -V",
      hash: "blake2b",
      argv: ["minisign", "-V", "-q", "-p", at("ms.pub"), "-m", f, "-x", at("ms.sig")],
    },
    {
      name: "missive verify (minisign)",
      hash: "blake2b",
      argv: [...MISSIVE, "verify", "--trust", at("ms.pub"), at("ms.sig"), f],
    },
  ];
  const best = new Map<string, number>();
  for (let round = 0; round < 3; round++) {
    for (const c of cases) {
      const s = run(c.argv, c.env).seconds;
      best.set(c.name, Math.min(best.get(c.name) ?? Infinity, s));
    }
  }
  const floor = { sha512: best.get("sha512sum (floor)")!, blake2b: best.get("b2sum (floor)")! };
  for (const c of cases) {
    const s = best.get(c.name)!;
    console.log(
      `${c.name.padEnd(36)} ${s.toFixed(2).padStart(6)} s  ${
        (MIB / s).toFixed(0).padStart(5)
      } MiB/s` +
        `  ×${(s / floor[c.hash]).toFixed(2)} of ${c.hash === "sha512" ? "sha512sum" : "b2sum"}`,
    );
  }
  // Constant memory: the peak RSS of signing 1 MiB and the whole file should match.
  Deno.writeFileSync(at("small.bin"), block);
  for (const [name, file] of [["1 MiB", at("small.bin")], [`${MIB} MiB`, f]]) {
    const timed = spawnSync(
      "/usr/bin/time",
      ["-v", ...MISSIVE, "sign", "--key", at("k.key"), file],
      {
        encoding: "utf8",
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(timed.stderr)?.[1];
    console.log(`missive sign of ${name}: peak RSS ${rss} KiB`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
