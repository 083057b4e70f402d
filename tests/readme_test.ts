/**
 * The README's examples, run as printed (issue 21). Every ```sh block runs, in README
 * order, in ONE bash process (so variables and `cd` carry from block to block, as for a
 * reader typing along), with the README's conventions:
 *
 * - The first block starts in the repository's root, puts `bin/` on PATH and changes to a
 *   scratch folder (`mktemp -d`; the test points TMPDIR at its own temporary folder, which
 *   it removes). `missive` is the compiled binary built from this tree (scripts/compile.sh).
 * - A block whose first line is `# not run: REASON` is skipped; REASON must say why and
 *   where else it is tested.
 * - A line ending in a backslash, `|`, `&&` or `||` (before any comment) continues on the
 *   next line; comment-only lines are not commands.
 * - `# exit N` at the end of a command: it must exit with N (otherwise with 0).
 * - `CMD &   # ready: TEXT`: CMD runs in the background, its output going to a log, and
 *   the block goes on once TEXT appears in that log (30 s at most). Background commands
 *   are stopped (SIGTERM, by PID) when the whole script ends.
 * - A line `#> TEXT` after a command: TEXT must appear in one line of that command's
 *   stdout or stderr (for a background command, its log by the end); `…` matches anything.
 *
 * Every ```ts block is written to a file in the scratch folder with `./X.ts` imports
 * pointing at this repository and must run to completion under Deno (the blocks assert
 * what they show). Heavy (dozens of processes): Deno only.
 * @module
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { compiledBinary, ROOT, tempDir } from "./helpers.ts";

const isBun = (globalThis as { Bun?: unknown }).Bun !== undefined;

interface Command {
  /** The command's text, as bash reads it (lines joined with newlines). */
  text: string;
  /** README line of its first line, for messages. */
  line: number;
  exit: number;
  ready?: string;
  expect: string[];
}

interface Block {
  lang: "sh" | "ts";
  line: number;
  body: string[];
  skip?: string;
}

/** The fenced blocks of a Markdown text. */
export function fencedBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(sh|ts)\s*$/.exec(lines[i]);
    if (!open) {
      if (/^```/.test(lines[i])) {
        // Skip any other block whole (its content could look like a fence).
        for (i++; i < lines.length && !/^```\s*$/.test(lines[i]); i++);
      }
      continue;
    }
    const body: string[] = [];
    const start = i + 1;
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]); i++) body.push(lines[i]);
    const skip = /^# not run: (.+)$/.exec(body[0] ?? "")?.[1];
    blocks.push({ lang: open[1] as "sh" | "ts", line: start + 1, body, skip });
  }
  return blocks;
}

/** The part of a shell line before an unquoted ` #` comment, and the comment. */
function splitComment(line: string): { code: string; comment: string } {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === "\\" && quote === '"') i++;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === "\\") i++;
    else if (c === "#" && (i === 0 || /\s/.test(line[i - 1]))) {
      return { code: line.slice(0, i).trimEnd(), comment: line.slice(i + 1).trim() };
    }
  }
  return { code: line.trimEnd(), comment: "" };
}

/** True when shell text ends inside a single- or double-quoted string. */
function openQuote(text: string): boolean {
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === "\\" && quote === '"') i++;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === "\\") i++;
    else if (c === "#" && (i === 0 || /\s/.test(text[i - 1]))) {
      const end = text.indexOf("\n", i);
      if (end < 0) break;
      i = end;
    }
  }
  return quote !== undefined;
}

/** The commands of a shell block, with the conventions above. */
export function commands(block: Block): Command[] {
  const out: Command[] = [];
  let current: Command | undefined;
  let continuing = false;
  block.body.forEach((raw, k) => {
    const line = block.line + k;
    const expectation = /^#> ?(.*)$/.exec(raw.trim());
    if (expectation && !continuing) {
      if (!current) throw new Error(`README line ${line}: #> with no command before it`);
      current.expect.push(expectation[1]);
      return;
    }
    const { code, comment } = splitComment(raw);
    if (!continuing && code === "") return; // blank or comment-only
    if (!continuing) {
      current = { text: "", line, exit: 0, expect: [] };
      out.push(current);
    }
    current!.text += (continuing ? "\n" : "") + raw;
    const exit = /(?:^|;\s*)exit (\d+)\b/.exec(comment);
    if (exit) current!.exit = Number(exit[1]);
    const ready = /ready: (.+)$/.exec(comment);
    if (ready) {
      if (!/&$/.test(code)) throw new Error(`README line ${line}: "ready:" needs a trailing &`);
      current!.ready = ready[1].trim();
    }
    continuing = /(\\|\||&&)$/.test(code) || openQuote(current!.text);
  });
  return out;
}

/** `…` matches anything; the rest literally. */
function pattern(text: string): RegExp {
  return new RegExp(
    text.split("…").map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join(".*"),
  );
}

/** The bash script that runs every command, recording exit status and output per command. */
function script(all: Command[], logDir: string): string {
  const lines = [
    "__bg=()",
    'trap \'for p in "${__bg[@]}"; do kill -TERM "$p" 2>/dev/null; done; wait\' EXIT',
    '__wait_ready() { for __i in $(seq 300); do grep -qF -- "$2" "$1" && return 0; sleep 0.1; done; return 1; }',
  ];
  all.forEach((c, i) => {
    const log = join(logDir, String(i));
    const body = c.ready ? c.text.replace(/&\s*(#.*)?$/, "") : c.text;
    lines.push(`__cmd_${i}=$(cat <<'__README_CMD__'`, body, "__README_CMD__", ")");
    if (c.ready) {
      // exec: the PID recorded is the command's own, so stopping it stops the command.
      lines.push(
        `( eval "exec $__cmd_${i}" ) > ${log}.out 2>&1 < /dev/null &`,
        `__bg+=($!)`,
        `if __wait_ready ${log}.out ${
          JSON.stringify(c.ready)
        }; then echo 0 > ${log}.rc; else echo ready-timeout > ${log}.rc; fi`,
      );
    } else {
      lines.push(
        `{ eval "$__cmd_${i}" ; } > ${log}.out 2> ${log}.err < /dev/null`,
        `echo $? > ${log}.rc`,
      );
    }
  });
  return lines.join("\n") + "\n";
}

describe("README examples, as printed", { skip: isBun && "heavy: run under Deno only" }, () => {
  const tmp = tempDir("missive-readme-");
  after(() => tmp.cleanup());
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const blocks = fencedBlocks(readme);

  it("every skipped block says why", () => {
    for (const b of blocks.filter((b) => b.skip !== undefined)) {
      assert.ok(b.skip!.length > 15, `README line ${b.line}: a reason, please`);
    }
    assert.ok(blocks.some((b) => b.lang === "sh" && !b.skip), "there are blocks to run");
  });

  it("every shell block runs and says what the README says", async () => {
    const binDir = join(tmp.dir, "bin");
    mkdirSync(binDir);
    // The compiled binary as `missive`, ahead of bin/missive (which the README puts on
    // PATH): the README is run against what this tree builds.
    await compiledBinary(binDir);
    const logs = join(tmp.dir, "logs");
    mkdirSync(logs);
    const scratch = join(tmp.dir, "tmp");
    mkdirSync(scratch);
    const all = blocks.filter((b) => b.lang === "sh" && !b.skip).flatMap(commands);
    const file = join(tmp.dir, "readme.sh");
    // The README's own first block prepends bin/ to PATH; the binary goes after it then.
    writeFileSync(
      file,
      script(all, logs).replaceAll(
        'export PATH="$PWD/bin:$PATH"',
        `export PATH="${binDir}:$PWD/bin:$PATH"`,
      ),
    );
    const r = spawnSync("bash", [file], {
      cwd: ROOT,
      env: {
        PATH: `${binDir}:${process.env.PATH}`,
        HOME: tmp.dir,
        TMPDIR: scratch,
        MISSIVE_PASSPHRASE: "correct horse battery staple",
      },
      encoding: "utf8",
      timeout: 600_000,
    });
    assert.equal(r.status, 0, `the script itself failed: ${r.stderr}`);
    all.forEach((c, i) => {
      const at = join(logs, String(i));
      const rc = existsSync(`${at}.rc`) ? readFileSync(`${at}.rc`, "utf8").trim() : "not run";
      const out = readFileSync(`${at}.out`, "utf8") +
        (existsSync(`${at}.err`) ? readFileSync(`${at}.err`, "utf8") : "");
      const where = `README line ${c.line}: ${c.text.split("\n")[0]}\n--- its output:\n${out}`;
      assert.equal(rc, String(c.exit), where);
      for (const e of c.expect) {
        assert.ok(out.split("\n").some((l) => pattern(e).test(l)), `expected "${e}"\n${where}`);
      }
    });
  });

  it("every TypeScript block runs", () => {
    const ts = blocks.filter((b) => b.lang === "ts" && !b.skip);
    assert.ok(ts.length > 0);
    for (const [i, b] of ts.entries()) {
      const file = join(tmp.dir, `readme_${i}.ts`);
      const code = b.body.join("\n").replace(
        /from "\.\/([^"]+)"/g,
        (_, p) => `from ${JSON.stringify(join(ROOT, p))}`,
      );
      writeFileSync(file, code);
      const r = spawnSync(
        join(ROOT, "node_modules/.bin/deno"),
        ["run", "-A", "--quiet", "--config", join(ROOT, "deno.json"), file],
        { cwd: tmp.dir, encoding: "utf8", timeout: 120_000 },
      );
      assert.equal(r.status, 0, `README line ${b.line}: ${r.stderr}${r.stdout}`);
    }
  });
});
