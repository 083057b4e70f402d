/**
 * The passphrase prompt on a real terminal: a pseudo-terminal (Python's pty module)
 * runs `missive keygen --passphrase`, answers the prompt, and checks the passphrase was
 * not echoed; then `open` with that key prompts again.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { DENO, ENTRY, spawnCli, tempDir } from "./helpers.ts";

/** Runs argv on a pty, typing `answer` + newline at each "Passphrase" prompt. */
function onTerminal(
  argv: string[],
  answer: string,
  stdinFile?: string,
): { code: number; screen: string } {
  const script = `
import os, pty, sys, json
argv = json.loads(sys.argv[1]); answer = sys.argv[2].encode(); stdin_file = sys.argv[3]
pid, fd = pty.fork()
if pid == 0:
    if stdin_file:
        f = os.open(stdin_file, os.O_RDONLY); os.dup2(f, 0)
    os.execv(argv[0], argv)
screen = b""
while True:
    try:
        data = os.read(fd, 4096)
    except OSError:
        break
    if not data:
        break
    screen += data
    if screen.count(b"Passphrase") > screen.count(b"\\x00ANSWERED"):
        os.write(fd, answer + b"\\n"); screen += b"\\x00ANSWERED"
_, status = os.waitpid(pid, 0)
sys.stdout.write(json.dumps({"code": os.waitstatus_to_exitcode(status), "screen": screen.replace(b"\\x00ANSWERED", b"").decode("utf-8", "replace")}))
`;
  const r = spawnSync("python3", ["-c", script, JSON.stringify(argv), answer, stdinFile ?? ""], {
    encoding: "utf8",
    timeout: 60_000,
  });
  assert.equal(r.status, 0, `python3 pty driver failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

describe("passphrase prompt on a terminal", () => {
  it("keygen --passphrase prompts without echo, and open prompts for the same key", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const key = join(dir, "alice.key");
      const secret = "pty-typed secret 42";
      const made = onTerminal(
        [
          DENO,
          "run",
          "-A",
          "--quiet",
          ENTRY,
          "keygen",
          "--name",
          "alice@example.org",
          "--passphrase",
          "--work-factor",
          "10",
          "-o",
          key,
        ],
        secret,
      );
      assert.equal(made.code, 0, made.screen);
      assert.match(made.screen, /Passphrase for the new key:/);
      assert.ok(!made.screen.includes(secret), `the passphrase was echoed: ${made.screen}`);
      assert.match(readFileSync(key, "utf8"), /passphrase-protected/);

      const card = (await spawnCli(["card", key])).text.trim();
      const sealed = join(dir, "m.txt");
      const s = await spawnCli(["seal", "--stp", "plain", "--to", card, "--armor", "-o", sealed], {
        stdin: "via pty\n",
      });
      assert.equal(s.code, 0, s.stderr);
      const opened = onTerminal(
        [DENO, "run", "-A", "--quiet", ENTRY, "open", "--key", key, sealed],
        secret,
      );
      assert.equal(opened.code, 0, opened.screen);
      assert.match(opened.screen, /Passphrase for .*alice\.key:/);
      assert.match(opened.screen, /via pty/);
      assert.ok(!opened.screen.includes(secret));

      const wrong = onTerminal(
        [DENO, "run", "-A", "--quiet", ENTRY, "open", "--key", key, sealed],
        "wrong",
      );
      assert.equal(wrong.code, 9, wrong.screen);
      assert.match(wrong.screen, /wrong passphrase/);
    } finally {
      cleanup();
    }
  });
});
