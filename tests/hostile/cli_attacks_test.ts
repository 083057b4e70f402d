/**
 * Attacks on the command line by a hostile folder, sender or file (issue 11, findings 1,
 * 5, 6, 7 and 9): each runs the real CLI (in a subprocess where the working folder or the
 * environment matters) and asserts the defended behaviour. Every one of these failed on
 * the tree before the fix (see the issue note for the outputs).
 * @module
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { basename, join } from "node:path";
import process from "node:process";
import { after, before, describe, it } from "node:test";
import { utf8 } from "../../core/bytes.ts";
import { encodeEnvelope, toLine } from "../../envelope/mod.ts";
import { encodeCbor } from "../../core/cbor.ts";
import { DENO, ENTRY, runCli, spawnCli, tempDir } from "../helpers.ts";

const { dir, cleanup } = tempDir("missive-hostile-");
const home = join(dir, "home");
const env = { HOME: home };
const at = (name: string) => join(dir, name);

before(async () => {
  mkdirSync(home);
  for (const name of ["alice", "bob"]) {
    const r = await runCli(["keygen", "--name", `${name}@example.org`, "-o", at(`${name}.key`)]);
    assert.equal(r.code, 0, r.stderr);
    writeFileSync(at(`${name}.card`), r.stdout);
  }
});
after(cleanup);

/** A plain (unauthenticated) message whose claimed sender and text we choose. */
function plainLine(sender: string, text: string, nonceByte = 1): string {
  const payload = encodeCbor(
    new Map<number, Uint8Array | number | string>([
      [1, new Uint8Array(16).fill(nonceByte)],
      [2, Date.now()],
      [3, 1],
      [4, 1],
      [5, utf8(text)],
      [6, sender],
    ]),
  );
  return toLine(encodeEnvelope({ protocolType: 7, protocolVersion: 1, payload })) + "\n";
}

describe("finding 1: a folder cannot run code", () => {
  it("./missive.json in the working folder is never read", async () => {
    const repo = at("cloned-repo");
    mkdirSync(repo);
    const marker = join(repo, "PWNED");
    writeFileSync(
      join(repo, "evil.ts"),
      `import { writeFileSync } from "node:fs";\nwriteFileSync(${
        JSON.stringify(marker)
      }, "ran");\nexport default [];\n`,
    );
    writeFileSync(join(repo, "missive.json"), JSON.stringify({ plugins: ["./evil.ts"] }));
    const sealed = await runCli(["seal", "--from", at("alice.key"), "--to", at("bob.card")], {
      stdin: "hi",
    });
    const r = await spawnCli(["open", "--key", at("bob.key"), "--trust", at("alice.card")], {
      cwd: repo,
      env,
      stdin: sealed.stdout,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.text, "hi");
    assert.equal(existsSync(marker), false, "the folder's plugin ran");
  });

  it("a config file writable by others, or naming remote code, is refused", async () => {
    const config = at("config.json");
    writeFileSync(config, JSON.stringify({ plugins: [] }));
    chmodSync(config, 0o666);
    const loose = await runCli(["plugins", "--config", config]);
    assert.equal(loose.code, 2, loose.stderr);
    assert.match(loose.stderr, /writable by group or others .*chmod go-w/);
    assert.equal(loose.text, "");
    for (const remote of ["https://evil.example/p.ts", "npm:evil-plugin", "jsr:@e/p", "data:,x"]) {
      writeFileSync(config, JSON.stringify({ plugins: [remote] }));
      chmodSync(config, 0o600);
      for (const how of [["--config", config], []]) {
        const r = await runCli(["plugins", ...how], {
          env: how.length ? {} : { MISSIVE_CONFIG: config },
        });
        assert.equal(r.code, 2, `${remote}: ${r.stderr}`);
        assert.match(
          r.stderr,
          /is not a local path; remote code loads only with an explicit --plugin/,
        );
      }
    }
  });

  it("the user's own config folder is read ($XDG_CONFIG_HOME/missive/config.json)", async () => {
    const xdg = at("xdg");
    mkdirSync(join(xdg, "missive"), { recursive: true });
    writeFileSync(
      join(xdg, "missive", "config.json"),
      JSON.stringify({ plugins: [join(process.cwd(), "plugins", "json_amp.ts")] }),
      { mode: 0o600 },
    );
    const r = await runCli(["plugins", "--json"], { env: { XDG_CONFIG_HOME: xdg } });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(JSON.parse(r.text).amps.some((a: { name: string }) => a.name === "json"));
  });
});

describe("finding 5: terminal injection", () => {
  const spoof = "mallory\r\x1b[2K\x1b[8mmissive: simple v2 from alice@example.org";

  it("a claimed sender cannot render as a verified, trusted one", async () => {
    const r = await runCli(["open"], { stdin: plainLine(spoof, "hello") });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.stderr.includes("\x1b") && !r.stderr.includes("\r"), JSON.stringify(r.stderr));
    assert.match(r.stderr, /claimed sender mallory\\r\\x1b\[2K\\x1b\[8m.* \(NOT verified\)/);
  });

  it("message text on a terminal is sanitised; into a pipe it is the bytes as sent", async () => {
    const evil = "line one\n\x1b]0;owned\x07\u202Etxt.exe\n";
    const piped = await runCli(["open"], { stdin: plainLine("m@example.org", evil) });
    assert.equal(piped.text, evil);
    const tty = await runCli(["open"], { stdin: plainLine("m@example.org", evil), tty: true });
    assert.equal(tty.code, 0, tty.stderr);
    assert.equal(tty.text, "line one\n\\x1b]0;owned\\x07\\u{202e}txt.exe\n");
  });

  it("error messages quoting a peer are sanitised (an untrusted claimed sender)", async () => {
    const r = await runCli(["open", "--require-trust"], { stdin: plainLine(spoof, "x") });
    assert.equal(r.code, 7);
    assert.equal(r.text, "");
    assert.ok(!r.stderr.includes("\x1b") && !r.stderr.includes("\r"));
    assert.equal(r.stderr.trim().split("\n").length, 1);
  });

  it("file names with C1 controls or bidi overrides are refused at seal and at open", async () => {
    for (const name of ["invoice\u202Efdp.exe", "a\u0085b", "x\u2066y", "\u200Fz"]) {
      const r = await runCli(
        [
          "seal",
          "--from",
          at("alice.key"),
          "--to",
          at("bob.card"),
          "--amp",
          "file",
          "--field",
          `name=${name}`,
        ],
        { stdin: "content" },
      );
      assert.equal(r.code, 2, `${JSON.stringify(name)}: ${r.stderr}`);
      assert.match(r.stderr, /name must not contain .*bidirectional controls/);
      assert.equal(r.text, "");
    }
    // On open: a file body with such a name, sent as plain so no key is needed.
    const body = encodeCbor(
      new Map<number, string | number | Uint8Array | Uint8Array[]>([
        [1, "gpj\u202Eexe.txt"],
        [2, 1],
        [3, "text/plain"],
        [4, new Uint8Array(32)],
        [5, 4096],
        [6, [utf8("x")]],
      ]),
    );
    const payload = encodeCbor(
      new Map<number, Uint8Array | number | string>([
        [1, new Uint8Array(16).fill(9)],
        [2, Date.now()],
        [3, 6],
        [4, 1],
        [5, body],
      ]),
    );
    const frame = encodeEnvelope({ protocolType: 7, protocolVersion: 1, payload });
    const r = await runCli(["open"], { stdin: frame });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /bidirectional controls/);
    assert.equal(r.text, "");
  });
});

describe("finding 6: listen --exec survives hostile senders", () => {
  it("a NUL in a claimed sender neither stops the listener nor reaches the command raw", async () => {
    const out = at("exec-out.txt");
    const input = plainLine("evil\u0000@example.org", "first", 1) +
      plainLine("ok@example.org", "second", 2);
    const r = await spawnCli(
      [
        "listen",
        "stdio:lines",
        "--key",
        at("bob.key"),
        "--exec",
        `printf '%s|%s\\n' "$MISSIVE_SENDER" "\${MISSIVE_PASSPHRASE-unset}" >> ${out}`,
      ],
      { env: { ...env, MISSIVE_PASSPHRASE: "the key's passphrase" }, stdin: input },
    );
    assert.equal(r.code, 0, r.stderr);
    const lines = readFileSync(out, "utf8").trim().split("\n");
    assert.deepEqual(lines, ["evil\\x00@example.org|unset", "ok@example.org|unset"]);
  });
});

describe("finding 7: the replay cache", () => {
  it("is SQLite, and records only what it accepted (not a refused untrusted message)", async () => {
    const db = at("replay.db");
    const sealed = await runCli(["seal", "--from", at("alice.key"), "--to", at("bob.card")], {
      stdin: "once",
    });
    const open = (trust: string[]) =>
      runCli(["open", "--key", at("bob.key"), "--replay-db", db, "--require-trust", ...trust], {
        stdin: sealed.stdout,
      });
    assert.equal((await open([])).code, 7);
    const ok = await open(["--trust", at("alice.card")]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.text, "once");
    assert.equal((await open(["--trust", at("alice.card")])).code, 6);
    assert.equal(readFileSync(db).subarray(0, 15).toString(), "SQLite format 3");
    assert.equal(statSync(db).mode & 0o777, 0o600);
  });
});

describe("finding 9: smaller ones", () => {
  it("keygen without -o refuses and prints no secret; -o - prints only the key", async () => {
    const none = await runCli(["keygen", "--name", "x@example.org"]);
    assert.equal(none.code, 2);
    assert.equal(none.text, "");
    assert.match(none.stderr, /give -o FILE for the secret key/);
    const dash = await runCli(["keygen", "--name", "x@example.org", "-o", "-"]);
    assert.equal(dash.code, 0, dash.stderr);
    assert.match(dash.text, /^-----BEGIN MISSIVE SECRET KEY-----/m);
    assert.ok(!/^missive-card:/m.test(dash.text), "only the key on stdout");
  });

  it("a key file readable by others gets a warning", async () => {
    const loose = at("loose.key");
    writeFileSync(loose, readFileSync(at("bob.key")));
    chmodSync(loose, 0o644);
    const sealed = await runCli(["seal", "--from", at("alice.key"), "--to", at("bob.card")], {
      stdin: "x",
    });
    const r = await runCli(["open", "--key", loose], { stdin: sealed.stdout });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /warning: key file .*loose\.key is readable by others \(mode 644\)/);
  });

  it("open -o never truncates or deletes an existing file, and leaves nothing on failure", async () => {
    const target = at("precious.txt");
    writeFileSync(target, "keep me");
    const sealed = await runCli(["seal", "--from", at("alice.key"), "--to", at("bob.card")], {
      stdin: "new",
    });
    const bad = sealed.stdout.slice();
    bad[bad.length - 5] ^= 1;
    const args = ["open", "--key", at("bob.key"), "-o", target];
    const exists = await runCli(args, { stdin: sealed.stdout });
    assert.equal(exists.code, 2);
    assert.match(exists.stderr, /already exists; .*--force/);
    const failed = await runCli([...args, "--force"], { stdin: bad });
    assert.equal(failed.code, 4);
    assert.equal(readFileSync(target, "utf8"), "keep me");
    assert.deepEqual(readdirSync(dir).filter((f) => f.includes(".partial")), []);
    const replaced = await runCli([...args, "--force"], { stdin: sealed.stdout });
    assert.equal(replaced.code, 0, replaced.stderr);
    assert.equal(readFileSync(target, "utf8"), "new");
    assert.equal(statSync(target).mode & 0o777, 0o600);
  });

  it("an interrupted open (SIGINT) leaves no partial file", async () => {
    const big = at("big.msv");
    const data = new Uint8Array(3 * 1024 * 1024).fill(7);
    writeFileSync(at("big.bin"), data);
    const sealed = await runCli([
      "seal",
      "--stream",
      "--chunk-size",
      "65536",
      "--from",
      at("alice.key"),
      "--to",
      at("bob.card"),
      "-o",
      big,
      "--amp",
      "file",
      "--field",
      "name=big.bin",
      at("big.bin"),
    ]);
    assert.equal(sealed.code, 0, sealed.stderr);
    const stream = readFileSync(big);
    const out = at("interrupted.bin");
    const child = spawn(DENO, [
      "run",
      "-A",
      "--quiet",
      ENTRY,
      "open",
      "--key",
      at("bob.key"),
      "-o",
      out,
    ], {
      stdio: ["pipe", "pipe", "pipe"],
      env: { PATH: process.env.PATH ?? "", HOME: home },
    });
    // Half the stream, then stall: the output is being written when the signal comes.
    // The child is interrupted while we still write to it: EPIPE then is expected.
    child.stdin!.on("error", () => {});
    child.stdin!.write(stream.subarray(0, stream.length / 2));
    const partial = () => readdirSync(dir).filter((f) => f.startsWith(".interrupted.bin."));
    // The temporary file exists only once the cleanup handler is in (cmd/output.ts).
    assert.ok(await until(child, () => partial().length > 0), "open: writing when interrupted");
    assert.equal(partial().length, 1, "the temporary file exists while writing");
    const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => {
      child.on("close", (c, s) => resolve([c, s]));
      child.kill("SIGINT");
    });
    // Exit status 130 (128 + SIGINT); Deno's child_process reports such a status as the
    // signal itself.
    assert.ok(code === 130 || (code === null && signal === "SIGINT"), `${code} ${signal}`);
    assert.deepEqual(partial(), []);
    assert.equal(existsSync(out), false);
  });

  // Every other command with -o (issue 21 item 6): interrupted while it works, it leaves
  // neither the target nor a temporary file. `ready` waits for a sign, seen from outside,
  // that the child is at work — never for a length of time: on a loaded machine a child
  // may still be starting after any delay, and a signal then proves nothing.
  const interrupted = async (
    args: string[],
    target: string,
    options: {
      stdin?: Uint8Array;
      env?: Record<string, string>;
      ready: (child: ChildProcess) => Promise<boolean>;
    },
  ) => {
    const child = spawn(DENO, ["run", "-A", "--quiet", ENTRY, ...args], {
      stdio: ["pipe", "pipe", "pipe"],
      env: { PATH: process.env.PATH ?? "", HOME: home, ...options.env },
    });
    child.stdin!.on("error", () => {}); // EPIPE once the child is interrupted: expected
    if (options.stdin) child.stdin!.write(options.stdin);
    assert.ok(await options.ready(child), `${args[0]}: working when interrupted`);
    const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => {
      child.on("close", (c, s) => resolve([c, s]));
      child.kill("SIGINT");
    });
    assert.ok(
      code === 130 || (code === null && signal === "SIGINT"),
      `${args[0]}: ${code} ${signal}`,
    );
    const base = basename(target);
    assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith(`.${base}.`)), [], args[0]);
    assert.equal(existsSync(target), false, args[0]);
  };

  it("an interrupted seal -o (a stream, input stalled) leaves no partial file", async () => {
    const out = at("seal-interrupted.msv");
    await interrupted(
      [
        "seal",
        "--stream",
        "--chunk-size",
        "65536",
        "--from",
        at("alice.key"),
        "--to",
        at("bob.card"),
        "-o",
        out,
      ],
      out,
      {
        stdin: new Uint8Array(1024 * 1024).fill(1),
        // The temporary file exists only once the cleanup handler is in (cmd/output.ts).
        ready: (child) =>
          until(child, () => readdirSync(dir).some((f) => f.startsWith(".seal-interrupted.msv."))),
      },
    );
  });

  it("an interrupted sign -o and keygen -o leave no file", async () => {
    const sig = at("interrupted.sig");
    await interrupted(["sign", "--key", at("alice.key"), "-o", sig], sig, {
      // More than a pipe holds (64 KiB on Linux): the write completes only once sign has
      // read most of it, so it is hashing stdin (and then stalls, waiting for the rest).
      ready: (child) => consumed(child, new Uint8Array(1024 * 1024).fill(2)),
    });
    const key = at("interrupted.key");
    await interrupted(
      ["keygen", "--name", "x@example.org", "-o", key, "--passphrase", "--work-factor", "20"],
      key,
      {
        env: { MISSIVE_PASSPHRASE: "correct horse" },
        // scrypt 2^20 (r = 8) fills a 1 GiB table: past 512 MiB resident, keygen is in it.
        ready: (child) => until(child, () => residentMiB(child.pid!) > 512),
      },
    );
  });
});

/** Polls `condition` until it holds (true), the child ends, or 30 s pass (false). */
async function until(child: ChildProcess, condition: () => boolean): Promise<boolean> {
  for (let i = 0; i < 600; i++) {
    if (condition()) return true;
    if (child.exitCode !== null || child.signalCode !== null) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return condition();
}

/**
 * Writes `data` to the child's stdin; true once the pipe took all of it, which for more
 * than a pipe holds means the child has read it. False if the child ends first.
 */
function consumed(child: ChildProcess, data: Uint8Array): Promise<boolean> {
  return new Promise((resolve) => {
    child.once("exit", () => resolve(false));
    child.stdin!.write(data, (e) => resolve(!e));
  });
}

/** The child's resident memory (Linux /proc), 0 once it is gone. */
function residentMiB(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}
