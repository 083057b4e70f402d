/**
 * End-to-end tests of the real entry point (`deno run cmd/main.ts`) as a subprocess, the
 * way a user runs it: files in a temporary folder, bytes through pipes, exit codes and
 * stderr lines. Every failure must be one line on stderr, nothing on stdout.
 * @module
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { type CliResult, DENO, ENTRY, spawnCli, tempDir } from "./helpers.ts";

const ALICE = "alice@example.org";
const BOB = "bob@example.org";
const CARD_LINE = /^missive-card:[A-Za-z0-9_-]+\n$/;
/** One line on stderr, as every failure must print. */
const ONE_ERROR_LINE = /^missive: [^\n]+\n$/;

interface Fixture {
  dir: string;
  aliceKeygen: CliResult;
  bobKeygen: CliResult;
}

const tmp = tempDir("missive-cli-test-");
let fixture: Promise<Fixture> | undefined;

/** Runs `missive ARGS` in the temporary folder. */
function missive(
  args: string[],
  options: { stdin?: Uint8Array | string; env?: Record<string, string> } = {},
): Promise<CliResult> {
  return spawnCli(args, { ...options, cwd: tmp.dir });
}

/** Alice and Bob, made once: `missive keygen --name A -o A.key > A.card`. */
function setup(): Promise<Fixture> {
  fixture ??= (async () => {
    const [aliceKeygen, bobKeygen] = await Promise.all([
      missive(["keygen", "--name", ALICE, "-o", "alice.key"]),
      missive(["keygen", "--name", BOB, "-o", "bob.key"]),
    ]);
    writeFileSync(join(tmp.dir, "alice.card"), aliceKeygen.stdout);
    writeFileSync(join(tmp.dir, "bob.card"), bobKeygen.stdout);
    return { dir: tmp.dir, aliceKeygen, bobKeygen };
  })();
  return fixture;
}

/** Seals `text` from Alice to Bob with extra seal flags; asserts success, returns stdout. */
async function sealToBob(text: string, flags: string[] = []): Promise<Uint8Array> {
  await setup();
  const r = await missive(["seal", "--from", "alice.key", "--to", "bob.card", ...flags], {
    stdin: text,
  });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, "", "seal is silent on success");
  return r.stdout;
}

/** A failure: the exit code, nothing on stdout and exactly one line on stderr. */
function assertFailure(r: CliResult, code: number, pattern?: RegExp): void {
  assert.equal(r.code, code, `exit code (stderr: ${r.stderr})`);
  assert.equal(r.stdout.length, 0, `nothing on stdout, got ${JSON.stringify(r.text)}`);
  assert.match(r.stderr, ONE_ERROR_LINE, "exactly one line on stderr");
  if (pattern) assert.match(r.stderr, pattern);
}

function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

describe("missive CLI as a subprocess", () => {
  after(() => tmp.cleanup());

  it("keygen writes a 0600 key file and prints a one-line card that `card` reproduces", async () => {
    const { dir, aliceKeygen, bobKeygen } = await setup();
    for (const [name, r] of [["alice", aliceKeygen], ["bob", bobKeygen]] as const) {
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.text, CARD_LINE);
      assert.equal(r.stderr, `missive: wrote ${name}.key for ${name}@example.org\n`);
      assert.equal(mode(join(dir, `${name}.key`)), 0o600);
    }
    assert.notEqual(aliceKeygen.text, bobKeygen.text);
    const card = await missive(["card", "alice.key"]);
    assert.equal(card.code, 0, card.stderr);
    assert.equal(card.text, aliceKeygen.text);
  });

  it("keygen refuses to overwrite a key file without --force", async () => {
    const { dir } = await setup();
    const before = readFileSync(join(dir, "alice.key"), "utf8");
    const r = await missive(["keygen", "--name", ALICE, "-o", "alice.key"]);
    assertFailure(r, 2, /exists/);
    assert.equal(readFileSync(join(dir, "alice.key"), "utf8"), before);
  });

  it("the headline shell pipeline: echo | missive seal | missive open", async () => {
    const { dir } = await setup();
    const script = [
      "set -o pipefail",
      'missive() { "$MISSIVE_DENO" run --allow-all --quiet "$MISSIVE_ENTRY" "$@"; }',
      'echo "hello bob" | missive seal --stp simple --from alice.key --to bob.card |',
      "  missive open --key bob.key --trust alice.card",
    ].join("\n");
    const r = await spawnCli(["-c", script], {
      binary: "bash",
      cwd: dir,
      env: { MISSIVE_DENO: DENO, MISSIVE_ENTRY: ENTRY },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.text, "hello bob\n");
    assert.match(r.stderr, /alice@example\.org/);
    assert.match(r.stderr, /signature verified, trusted/);
    assert.doesNotMatch(r.stderr, /NOT/);
  });

  it("seal and open through `-` for stdin and stdout", async () => {
    const sealed = await sealToBob("hello bob\n", ["-o", "-", "-"]);
    const r = await missive(["open", "--key", "bob.key", "--trust", "alice.card", "-"], {
      stdin: sealed,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.text, "hello bob\n");
    assert.match(
      r.stderr,
      /^missive: simple v3 from alice@example\.org .*signature verified, trusted/,
    );
  });

  it("--armor and --lines outputs open", async () => {
    const [armored, line] = await Promise.all([
      sealToBob("armored\n", ["--armor"]),
      sealToBob("one line\n", ["--lines"]),
    ]);
    const armorText = new TextDecoder().decode(armored);
    assert.match(
      armorText,
      /^-----BEGIN MISSIVE MESSAGE-----\n[A-Za-z0-9+/=\n]+-----END MISSIVE MESSAGE-----\n$/,
    );
    assert.match(new TextDecoder().decode(line), /^[A-Za-z0-9+/=_-]+\n$/);
    const [a, l] = await Promise.all([
      missive(["open", "--key", "bob.key", "--trust", "alice.card"], { stdin: armored }),
      missive(["open", "--key", "bob.key", "--trust", "alice.card"], { stdin: line }),
    ]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(a.text, "armored\n");
    assert.equal(l.code, 0, l.stderr);
    assert.equal(l.text, "one line\n");
  });

  it("inspect shows type, version and --seq without any key", async () => {
    const toStdout = await sealToBob("numbered\n", ["--seq", "7", "-o", "seq.bin"]);
    assert.equal(toStdout.length, 0, "seal -o FILE writes nothing on stdout");
    const [text, json] = await Promise.all([
      missive(["inspect", "seq.bin"]),
      missive(["inspect", "--json"], { stdin: readFileSync(join(tmp.dir, "seq.bin")) }),
    ]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.text, /^form: +binary/m);
    assert.match(text.text, /^protocol: +type 2, version 3 \(simple/m);
    assert.match(text.text, /^key agreement: +mlkem768x25519 /m);
    assert.match(text.text, /^sequence number: +7$/m);
    assert.equal(json.code, 0, json.stderr);
    const report = JSON.parse(json.text);
    assert.equal(report.form, "binary");
    assert.equal(report.protocolType, 2);
    assert.equal(report.protocolVersion, 3);
    assert.equal(report.stp, "simple");
    assert.equal(report.kem, "mlkem768x25519");
    assert.equal(report.sequenceNumber, 7);
    assert.equal(typeof report.payloadSize, "number");
  });

  it("open --json reports the sender as verified and trusted", async () => {
    const sealed = await sealToBob("as json\n");
    const r = await missive(["open", "--json", "--key", "bob.key", "--trust", "alice.card"], {
      stdin: sealed,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "", "--json prints nothing on stderr on success");
    const report = JSON.parse(r.text);
    assert.equal(report.stp.name, "simple");
    assert.equal(report.sender.address, ALICE);
    assert.equal(report.sender.verified, true);
    assert.equal(report.sender.trusted, true);
    assert.deepEqual(report.message, { text: "as json\n" });
  });

  it("the wrong key exits 5, prints nothing and leaves no -o file", async () => {
    const sealed = await sealToBob("for bob only\n");
    const r = await missive(["open", "--key", "alice.key", "-o", "wrong.txt"], { stdin: sealed });
    assertFailure(r, 5, /not a recipient/);
    assert.equal(existsSync(join(tmp.dir, "wrong.txt")), false);
  });

  it("the same message twice with --replay-db: the second exits 6", async () => {
    const sealed = await sealToBob("only once\n");
    const args = ["open", "--key", "bob.key", "--trust", "alice.card", "--replay-db", "seen.db"];
    const first = await missive(args, { stdin: sealed });
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.text, "only once\n");
    assertFailure(await missive(args, { stdin: sealed }), 6, /replay/i);
  });

  it("auth STP: verified but untrusted unless --trust; --require-trust exits 7", async () => {
    await setup();
    const sealed = await missive(["seal", "--stp", "auth", "--from", "alice.key"], {
      stdin: "signed\n",
    });
    assert.equal(sealed.code, 0, sealed.stderr);
    const [loose, strict, trusted] = await Promise.all([
      missive(["open"], { stdin: sealed.stdout }),
      missive(["open", "--require-trust"], { stdin: sealed.stdout }),
      missive(["open", "--trust", "alice.card", "--require-trust"], { stdin: sealed.stdout }),
    ]);
    assert.equal(loose.code, 0, loose.stderr);
    assert.equal(loose.text, "signed\n");
    assert.match(
      loose.stderr,
      /^missive: auth v1 from alice@example\.org .*signature verified, NOT trusted/,
    );
    assert.match(loose.stderr, /^missive: warning: alice@example\.org is in no --trust card/m);
    assertFailure(strict, 7, /untrusted sender/);
    assert.equal(trusted.code, 0, trusted.stderr);
    assert.equal(trusted.text, "signed\n");
    assert.match(trusted.stderr, /signature verified, trusted/);
  });

  it("--no-card opens only with --trust; --trust DIR reads its *.card files; -o writes 0600", async () => {
    const { dir } = await setup();
    const sealed = await sealToBob("no card attached\n", ["--no-card"]);
    const cards = join(dir, "cards");
    mkdirSync(cards);
    writeFileSync(join(cards, "alice.card"), readFileSync(join(dir, "alice.card")));
    writeFileSync(join(cards, "notes.txt"), "not a card, must be ignored\n");
    const [without, withCard, withDir] = await Promise.all([
      missive(["open", "--key", "bob.key", "-o", "nocard-0.txt"], { stdin: sealed }),
      missive(["open", "--key", "bob.key", "--trust", "alice.card"], { stdin: sealed }),
      missive(["open", "--key", "bob.key", "--trust", "cards", "-o", "nocard.txt"], {
        stdin: sealed,
      }),
    ]);
    assertFailure(without, 7);
    assert.equal(existsSync(join(dir, "nocard-0.txt")), false);
    assert.equal(withCard.code, 0, withCard.stderr);
    assert.equal(withCard.text, "no card attached\n");
    assert.match(withCard.stderr, /signature verified, trusted/);
    assert.equal(withDir.code, 0, withDir.stderr);
    assert.equal(withDir.stdout.length, 0, "-o FILE: nothing on stdout");
    assert.match(withDir.stderr, /signature verified, trusted/);
    const out = join(dir, "nocard.txt");
    assert.equal(readFileSync(out, "utf8"), "no card attached\n");
    assert.equal(mode(out), 0o600);
  });

  it("the plain STP opens with an INSECURE warning and no sender", async () => {
    await setup();
    const sealed = await missive(["seal", "--stp", "plain"], { stdin: "in the clear\n" });
    assert.equal(sealed.code, 0, sealed.stderr);
    const r = await missive(["open"], { stdin: sealed.stdout });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.text, "in the clear\n");
    assert.match(r.stderr, /^missive: plain v1: no sender/);
    assert.match(r.stderr, /^missive: warning: INSECURE/m);
  });

  it("a passphrase-protected key opens with the right passphrase, exit 9 with a wrong one", async () => {
    await setup();
    const made = await missive(
      [
        "keygen",
        "--name",
        "carol@example.org",
        "--passphrase",
        "--work-factor",
        "10",
        "-o",
        "carol.key",
      ],
      { env: { MISSIVE_PASSPHRASE: "right passphrase" } },
    );
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.text, CARD_LINE);
    const keyFile = join(tmp.dir, "carol.key");
    assert.equal(mode(keyFile), 0o600);
    assert.match(readFileSync(keyFile, "utf8"), /passphrase-protected/);
    writeFileSync(join(tmp.dir, "carol.card"), made.stdout);
    const sealed = await missive(["seal", "--from", "alice.key", "--to", "carol.card"], {
      stdin: "for carol\n",
    });
    assert.equal(sealed.code, 0, sealed.stderr);
    const open = (passphrase: string) =>
      missive(["open", "--key", "carol.key", "--trust", "alice.card"], {
        stdin: sealed.stdout,
        env: { MISSIVE_PASSPHRASE: passphrase },
      });
    const [right, wrong] = await Promise.all([open("right passphrase"), open("wrong passphrase")]);
    assert.equal(right.code, 0, right.stderr);
    assert.equal(right.text, "for carol\n");
    assertFailure(wrong, 9, /passphrase/);
  });

  it("--help for every subcommand exits 0 and prints its usage", async () => {
    const commands = ["keygen", "card", "seal", "open", "inspect", "plugins"];
    const results = await Promise.all([
      missive(["--help"]),
      ...commands.map((c) => missive([c, "--help"])),
    ]);
    const [top, ...each] = results;
    assert.equal(top.code, 0, top.stderr);
    assert.match(top.text, /Usage: missive COMMAND/);
    for (const c of commands) assert.match(top.text, new RegExp(`^  ${c} `, "m"));
    each.forEach((r, i) => {
      assert.equal(r.code, 0, `${commands[i]} --help: ${r.stderr}`);
      assert.equal(r.stderr, "");
      assert.match(r.text, new RegExp(`^missive ${commands[i]} `), `${commands[i]} usage`);
      assert.match(r.text, /Options:/);
    });
  });

  it("usage errors exit 2 with one line: unknown flag, unknown command", async () => {
    const [flag, command] = await Promise.all([
      missive(["open", "--no-such-flag"]),
      missive(["frobnicate"]),
    ]);
    assertFailure(flag, 2, /--no-such-flag/);
    assertFailure(command, 2, /unknown command "frobnicate"/);
  });
});
