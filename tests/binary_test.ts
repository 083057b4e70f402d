/**
 * End-to-end tests of the single executable (`scripts/compile.sh` → dist/missive) run
 * with a PATH that holds neither deno nor bun: keys, a shell pipeline, the example
 * plugins loaded at run time, and messages crossing between the binary and
 * `deno run cmd/main.ts` in both directions.
 * @module
 */
import assert from "node:assert/strict";
import { existsSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { type CliResult, compiledBinary, ROOT, spawnCli, tempDir } from "./helpers.ts";

/** A PATH with the system tools only: no deno, no bun. */
const BARE_PATH = "/usr/bin:/bin";
const PASSPHRASE_STP = join(ROOT, "plugins", "passphrase_stp.ts");
const JSON_AMP = join(ROOT, "plugins", "json_amp.ts");
const PLUGINS = ["--plugin", PASSPHRASE_STP, "--plugin", JSON_AMP];
const PASSPHRASE = "correct-horse-battery-staple-42";

const tmp = tempDir("missive-binary-test-");
let built: Promise<string> | undefined;

/** dist/missive (built once per source state), copied into the temporary folder. */
function binaryPath(): Promise<string> {
  built ??= compiledBinary(tmp.dir);
  return built;
}

/** Runs the binary in the temporary folder with the bare PATH. */
async function missive(args: string[], stdin?: Uint8Array | string): Promise<CliResult> {
  return spawnCli(args, {
    binary: await binaryPath(),
    cwd: tmp.dir,
    env: { PATH: BARE_PATH },
    stdin,
    timeoutMs: 120_000,
  });
}

/** Runs the deno entry point in the temporary folder. */
function missiveDeno(args: string[], stdin?: Uint8Array | string): Promise<CliResult> {
  return spawnCli(args, { cwd: tmp.dir, stdin });
}

let keys: Promise<void> | undefined;

/** alice and bob, made by the binary: `missive keygen --name A -o A.key > A.card`. */
function keygen(): Promise<void> {
  keys ??= (async () => {
    for (const name of ["alice", "bob"]) {
      const r = await missive(["keygen", "--name", `${name}@example.org`, "-o", `${name}.key`]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.text, /^missive-card:[A-Za-z0-9_-]+\n$/);
      assert.equal(statSync(join(tmp.dir, `${name}.key`)).mode & 0o777, 0o600);
      writeFileSync(join(tmp.dir, `${name}.card`), r.stdout);
    }
  })();
  return keys;
}

describe("the compiled binary, with no deno or bun on PATH", () => {
  after(() => tmp.cleanup());

  it("the bare PATH really holds no deno and no bun", async () => {
    for (const dir of BARE_PATH.split(":")) {
      for (const runtime of ["deno", "bun"]) {
        assert.equal(existsSync(join(dir, runtime)), false, `${dir}/${runtime} exists`);
      }
    }
    const probe = await spawnCli(["-c", "command -v deno || command -v bun || echo none"], {
      binary: "/bin/bash",
      env: { PATH: BARE_PATH },
    });
    assert.equal(probe.code, 0, probe.stderr);
    assert.equal(probe.text, "none\n");
  });

  it("--help prints the usage and exits 0", async () => {
    const r = await missive(["--help"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.text, /Usage: missive COMMAND/);
    assert.match(r.text, /^ {2}seal /m);
  });

  it("keygen twice, then echo | missive seal | missive open as a shell pipeline", async () => {
    await keygen();
    const script = [
      "set -o pipefail",
      'echo "hello bob" | "$MISSIVE" seal --from alice.key --to bob.card |',
      '  "$MISSIVE" open --key bob.key --trust alice.card',
    ].join("\n");
    const r = await spawnCli(["-c", script], {
      binary: "/bin/bash",
      cwd: tmp.dir,
      env: { PATH: BARE_PATH, MISSIVE: await binaryPath() },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.text, "hello bob\n");
    assert.match(r.stderr, /from alice@example\.org .*signature verified, trusted/);
  });

  it("a failure is one line on stderr and the documented exit code", async () => {
    await keygen();
    const sealed = await missive(["seal", "--from", "alice.key", "--to", "bob.card"], "x\n");
    assert.equal(sealed.code, 0, sealed.stderr);
    const r = await missive(["open", "--key", "alice.key"], sealed.stdout);
    assert.equal(r.code, 5, r.stderr);
    assert.equal(r.stdout.length, 0);
    assert.match(r.stderr, /^missive: not a recipient[^\n]*\n$/);
  });

  it("loads the example plugins: `plugins` lists them by type and name", async () => {
    const r = await missive(["plugins", ...PLUGINS]);
    assert.equal(r.code, 0, r.stderr);
    const [stps, amps] = r.text.split("AMPs");
    assert.match(stps, /^ +1000 +\d+ +passphrase\b/m);
    assert.match(amps, /^ +1000 +\d+ +json\b/m);
  });

  it("a passphrase/json message round-trips; a wrong passphrase exits 4, no plugin exits 8", async () => {
    const document = { greeting: "hello bob", n: 42, tags: ["a", "b"] };
    const sealed = await missive([
      "seal",
      ...PLUGINS,
      "--stp",
      "passphrase",
      "--option",
      `passphrase=${PASSPHRASE}`,
      "--amp",
      "json",
    ], JSON.stringify(document));
    assert.equal(sealed.code, 0, sealed.stderr);
    const [right, wrong, noPlugin] = await Promise.all([
      missive(["open", ...PLUGINS, "--option", `passphrase=${PASSPHRASE}`], sealed.stdout),
      missive(["open", ...PLUGINS, "--option", "passphrase=not-the-passphrase"], sealed.stdout),
      missive(["open", "--option", `passphrase=${PASSPHRASE}`], sealed.stdout),
    ]);
    assert.equal(right.code, 0, right.stderr);
    assert.deepEqual(JSON.parse(right.text), document);
    assert.match(right.stderr, /^missive: passphrase v1: /);
    for (const [r, code] of [[wrong, 4], [noPlugin, 8]] as const) {
      assert.equal(r.code, code, r.stderr);
      assert.equal(r.stdout.length, 0, "nothing on stdout on failure");
      assert.match(r.stderr, /^missive: [^\n]+\n$/, "one line on stderr");
    }
    assert.match(wrong.stderr, /wrong passphrase/);
    assert.match(noPlugin.stderr, /unknown STP \(type 1000, version 1\)/);
  });

  it("the binary and the deno entry point open each other's messages", async () => {
    await keygen();
    const [byBinary, byDeno] = await Promise.all([
      missive(["seal", "--from", "alice.key", "--to", "bob.card", "--armor"], "from the binary\n"),
      missiveDeno(["seal", "--from", "alice.key", "--to", "bob.card"], "from deno\n"),
    ]);
    assert.equal(byBinary.code, 0, byBinary.stderr);
    assert.equal(byDeno.code, 0, byDeno.stderr);
    const open = ["open", "--key", "bob.key", "--trust", "alice.card"];
    const [inDeno, inBinary] = await Promise.all([
      missiveDeno(open, byBinary.stdout),
      missive(open, byDeno.stdout),
    ]);
    assert.equal(inDeno.code, 0, inDeno.stderr);
    assert.equal(inDeno.text, "from the binary\n");
    assert.match(inDeno.stderr, /signature verified, trusted/);
    assert.equal(inBinary.code, 0, inBinary.stderr);
    assert.equal(inBinary.text, "from deno\n");
    assert.match(inBinary.stderr, /signature verified, trusted/);
  });
});
