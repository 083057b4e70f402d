/**
 * age files against real peers, both ways: Debian's `age` (1.1: X25519, a recipients
 * file, armor, ssh-ed25519 and ssh-rsa keys made by ssh-keygen, a passphrase typed on a
 * pseudo-terminal through tests/age_pty.py) and typage (npm age-encryption, run by Node
 * through tests/age_typage.mjs) with post-quantum `age1pq1…` recipients. CCTV has no SSH
 * vectors: the SSH cases rest on these. The peers come from scripts/install-peers.sh.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { randomBytes } from "../core/bytes.ts";
import { ROOT, runCli, spawnCli, tempDir } from "./helpers.ts";

const { dir, cleanup } = tempDir("missive-age-");
after(cleanup);
const at = (name: string) => join(dir, name);
const PASSPHRASE = "correct horse battery staple";

/**
 * Runs a peer; returns stdout, failing the test with its stderr on a non-zero exit. Its
 * input comes from a file through the shell: a peer that streams (age) would block
 * writing its output while a synchronous spawn is still writing the input to a pipe, and
 * Deno's spawnSync does not take a descriptor as stdin.
 */
function peer(cmd: string, args: string[], input?: Uint8Array): Uint8Array {
  writeFileSync(at("peer-stdin"), input ?? new Uint8Array(0));
  const r = spawnSync("sh", ["-c", 'exec "$0" "$@" < peer-stdin', cmd, ...args], {
    cwd: dir,
    timeout: 60_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  assert.equal(r.status, 0, `${cmd} ${args.join(" ")}: ${r.stderr?.toString()}`);
  return new Uint8Array(r.stdout);
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);
const plaintext = randomBytes(200_000); // four STREAM chunks, the last one short
writeFileSync(at("plain.bin"), plaintext);

/** `missive open` in-process: exit code, the bytes it wrote, and stderr. */
async function missiveOpen(args: string[], env: Record<string, string> = {}) {
  const r = await runCli(["open", ...args], { env });
  return r;
}

describe("age interop: Debian's age", () => {
  peer("age-keygen", ["-o", at("age-id.txt")]);
  const recipient = text(peer("age-keygen", ["-y", at("age-id.txt")])).trim();

  it("missive seals to age1… (binary and armored) → age -d -i opens", async () => {
    for (const armor of [[], ["--armor"]]) {
      const out = at(`m2a${armor.length}.age`);
      const r = await runCli([
        "seal",
        "--stp",
        "age",
        "--to",
        recipient,
        ...armor,
        "-o",
        out,
        at("plain.bin"),
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.length, 0);
      if (armor.length) {
        assert.match(readFileSync(out, "latin1"), /^-----BEGIN AGE ENCRYPTED FILE-----\n/);
      }
      assert.deepEqual(peer("age", ["-d", "-i", at("age-id.txt"), out]), plaintext);
    }
  });

  it("age -r / age -R (recipients file, with comments) / age -a seal → missive open --identity", async () => {
    writeFileSync(
      at("recipients.txt"),
      `# a recipients file, as age -R reads it\n\n${recipient}\n# another comment\n`,
    );
    const cases: [string, string[]][] = [
      ["r", ["-r", recipient]],
      ["R", ["-R", at("recipients.txt")]],
      ["a", ["-a", "-r", recipient]],
    ];
    for (const [name, flags] of cases) {
      const file = at(`a2m-${name}.age`);
      peer("age", [...flags, "-o", file, at("plain.bin")]);
      const r = await missiveOpen(["--identity", at("age-id.txt"), file]);
      assert.equal(r.code, 0, `${name}: ${r.stderr}`);
      assert.deepEqual(r.stdout, plaintext, name);
      assert.match(r.stderr, /UNAUTHENTICATED, no sender/);
    }
  });

  it("missive --to a recipients file (age1…, ssh-…, a missive card line) → each key opens it", async () => {
    peer("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "mixed", "-f", at("mixed_ed")]);
    const key = at("bob.key");
    assert.equal((await runCli(["keygen", "--name", "bob@example.org", "-o", key])).code, 0);
    const card = (await runCli(["card", key])).text.trim();
    writeFileSync(
      at("mixed.txt"),
      `# age, ssh and missive recipients\n${recipient}\n` +
        `${readFileSync(at("mixed_ed.pub"), "utf8").trim()}\n${card}\n`,
    );
    const file = at("mixed.age");
    const r = await runCli([
      "seal",
      "--stp",
      "age",
      "--to",
      at("mixed.txt"),
      "-o",
      file,
      at("plain.bin"),
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(peer("age", ["-d", "-i", at("age-id.txt"), file]), plaintext);
    assert.deepEqual(peer("age", ["-d", "-i", at("mixed_ed"), file]), plaintext);
    const opened = await missiveOpen(["--key", key, file]);
    assert.equal(opened.code, 0, opened.stderr);
    assert.deepEqual(opened.stdout, plaintext);
  });

  it("missive keygen --age and card --age give recipients age encrypts to", async () => {
    const id = at("m-id.txt");
    const made = await runCli(["keygen", "--age", "-o", id]);
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.text, /^age1[02-9ac-hj-np-z]{58}\n$/);
    assert.equal(text(peer("age-keygen", ["-y", id])).trim(), made.text.trim());
    const file = at("to-keygen.age");
    peer("age", ["-r", made.text.trim(), "-o", file, at("plain.bin")]);
    assert.deepEqual((await missiveOpen(["--identity", id, file])).stdout, plaintext);

    const key = at("alice.key");
    assert.equal((await runCli(["keygen", "--name", "alice@example.org", "-o", key])).code, 0);
    const age1 = (await runCli(["card", "--age", key])).text.trim();
    assert.match(age1, /^age1/);
    const sealed = at("to-card.age");
    peer("age", ["-r", age1, "-a", "-o", sealed, at("plain.bin")]);
    const opened = await missiveOpen(["--key", key, sealed]);
    assert.equal(opened.code, 0, opened.stderr);
    assert.deepEqual(opened.stdout, plaintext);
    assert.equal((await missiveOpen(["--identity", key, sealed])).code, 0);
  });

  for (const [type, bits] of [["ed25519", []], ["rsa", ["-b", "2048"]]] as const) {
    it(`ssh-${type}: missive --to KEY.pub → age -d -i KEY, and age -R KEY.pub → missive --identity KEY`, async () => {
      const key = at(`id_${type}`);
      peer("ssh-keygen", ["-q", "-t", type, ...bits, "-N", "", "-C", `t@${type}`, "-f", key]);
      const m2a = at(`m2a-${type}.age`);
      const r = await runCli([
        "seal",
        "--stp",
        "age",
        "--to",
        `${key}.pub`,
        "-o",
        m2a,
        at("plain.bin"),
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(readFileSync(m2a, "latin1"), new RegExp(`\n-> ssh-${type} `));
      assert.deepEqual(peer("age", ["-d", "-i", key, m2a]), plaintext);
      // The key line itself works as --to too.
      const line = readFileSync(`${key}.pub`, "utf8").trim();
      const r2 = await runCli(["seal", "--stp", "age", "--to", line, "--armor", at("plain.bin")]);
      assert.equal(r2.code, 0, r2.stderr);
      assert.deepEqual(peer("age", ["-d", "-i", key], r2.stdout), plaintext);

      const a2m = at(`a2m-${type}.age`);
      peer("age", ["-R", `${key}.pub`, "-o", a2m, at("plain.bin")]);
      const opened = await missiveOpen(["--identity", key, a2m]);
      assert.equal(opened.code, 0, opened.stderr);
      assert.deepEqual(opened.stdout, plaintext);
      const wrong = await missiveOpen(["--identity", at("age-id.txt"), a2m]);
      assert.equal(wrong.code, 5, wrong.stderr);
      assert.equal(wrong.stdout.length, 0);
    });
  }

  it("a passphrase-protected OpenSSH key is refused (exit 9), saying how to decrypt it", async () => {
    const key = at("id_locked");
    peer("ssh-keygen", ["-q", "-t", "ed25519", "-N", "sesame-sesame", "-f", key]);
    const file = at("to-locked.age");
    peer("age", ["-R", `${key}.pub`, "-o", file, at("plain.bin")]);
    const r = await missiveOpen(["--identity", key, file]);
    assert.equal(r.code, 9);
    assert.equal(r.stdout.length, 0);
    assert.match(r.stderr, /passphrase-protected.*ssh-keygen -p -N ''/);
  });

  it("passphrase both ways (age on a pseudo-terminal; missive from MISSIVE_PASSPHRASE)", async () => {
    const pty = (args: string[]) =>
      spawnSync("python3", [join(ROOT, "tests", "age_pty.py"), PASSPHRASE, "--", ...args], {
        cwd: dir,
        timeout: 90_000,
      });
    const env = { MISSIVE_PASSPHRASE: PASSPHRASE };
    const m2a = at("m2a-pass.age");
    const r = await runCli(["seal", "--stp", "age", "--passphrase", "-o", m2a, at("plain.bin")], {
      env,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(readFileSync(m2a, "latin1"), /\n-> scrypt [A-Za-z0-9+/]{22} 18\n/);
    const out = at("m2a-pass.out");
    const d = pty(["age", "-d", "-o", out, m2a]);
    assert.equal(d.status, 0, d.stderr.toString());
    assert.deepEqual(new Uint8Array(readFileSync(out)), plaintext);

    const a2m = at("a2m-pass.age");
    const e = pty(["age", "-p", "-a", "-o", a2m, at("plain.bin")]);
    assert.equal(e.status, 0, e.stderr.toString());
    const opened = await missiveOpen(["--passphrase", a2m], env);
    assert.equal(opened.code, 0, opened.stderr);
    assert.deepEqual(opened.stdout, plaintext);
    const wrong = await missiveOpen(["--passphrase", a2m], { MISSIVE_PASSPHRASE: "wrong" });
    assert.equal(wrong.code, 5, wrong.stderr);
  });

  it("an identity file encrypted by age -p opens after its passphrase", async () => {
    const locked = at("age-id.txt.age");
    const e = spawnSync(
      "python3",
      [
        join(ROOT, "tests", "age_pty.py"),
        PASSPHRASE,
        "--",
        "age",
        "-p",
        "-a",
        "-o",
        locked,
        at("age-id.txt"),
      ],
      { cwd: dir, timeout: 90_000 },
    );
    assert.equal(e.status, 0, e.stderr.toString());
    const file = at("for-locked-id.age");
    peer("age", ["-r", recipient, "-o", file, at("plain.bin")]);
    const opened = await missiveOpen(["--identity", locked, file], {
      MISSIVE_PASSPHRASE: PASSPHRASE,
    });
    assert.equal(opened.code, 0, opened.stderr);
    assert.deepEqual(opened.stdout, plaintext);
  });

  it("the real entry point, as a subprocess, opens what age sealed to it", async () => {
    const file = at("subprocess.age");
    peer("age", ["-r", recipient, "-a", "-o", file, at("plain.bin")]);
    const r = await spawnCli(["open", "--identity", at("age-id.txt"), "-o", at("sub.out"), file]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(new Uint8Array(readFileSync(at("sub.out"))), plaintext);
  });
});

describe("age interop: typage (age-encryption) with post-quantum recipients", () => {
  const typage = (args: string[], input?: Uint8Array) =>
    peer("node", [join(ROOT, "tests", "age_typage.mjs"), ...args], input);

  it("typage seals to age1pq1… → missive opens; missive seals to age1pq1… → typage opens", async () => {
    const [identity, recipient] = text(typage(["keygen", "pq"])).trim().split("\n");
    assert.match(recipient, /^age1pq1[02-9ac-hj-np-z]{1940,}$/);
    writeFileSync(at("pq-id.txt"), identity + "\n");
    for (const armor of [[], ["--armor"]]) {
      const file = at(`t2m${armor.length}.age`);
      writeFileSync(file, typage(["encrypt", ...armor, recipient], plaintext));
      const opened = await missiveOpen(["--identity", at("pq-id.txt"), file]);
      assert.equal(opened.code, 0, opened.stderr);
      assert.deepEqual(opened.stdout, plaintext);
      assert.match(opened.stderr, /post-quantum hybrid identity/);

      const sealed = await runCli([
        "seal",
        "--stp",
        "age",
        "--to",
        recipient,
        ...armor,
        at("plain.bin"),
      ]);
      assert.equal(sealed.code, 0, sealed.stderr);
      assert.match(
        text(armor.length ? sealed.stdout : sealed.stdout.subarray(0, 40)),
        armor.length ? /^-----BEGIN AGE/ : /^age-encryption.org\/v1\n-> mlkem768x25519 /,
      );
      assert.deepEqual(typage(["decrypt", identity], sealed.stdout), plaintext);
    }
  });

  it("missive keygen --age --pq makes an identity typage encrypts to", async () => {
    const id = at("m-pq.txt");
    const made = await runCli(["keygen", "--age", "--pq", "-o", id]);
    assert.equal(made.code, 0, made.stderr);
    const recipient = made.text.trim();
    assert.match(readFileSync(id, "utf8"), /^AGE-SECRET-KEY-PQ-1/m);
    const file = at("to-m-pq.age");
    writeFileSync(file, typage(["encrypt", recipient], plaintext));
    const opened = await missiveOpen(["--identity", id, file]);
    assert.equal(opened.code, 0, opened.stderr);
    assert.deepEqual(opened.stdout, plaintext);
  });

  it("X25519 and a passphrase both ways with typage", async () => {
    const [identity, recipient] = text(typage(["keygen"])).trim().split("\n");
    writeFileSync(at("t-x.txt"), identity + "\n");
    const sealed = await runCli(["seal", "--stp", "age", "--to", recipient, at("plain.bin")]);
    assert.deepEqual(typage(["decrypt", identity], sealed.stdout), plaintext);
    writeFileSync(at("t2m-x.age"), typage(["encrypt", recipient], plaintext));
    assert.deepEqual(
      (await missiveOpen(["--identity", at("t-x.txt"), at("t2m-x.age")])).stdout,
      plaintext,
    );

    const env = { MISSIVE_PASSPHRASE: PASSPHRASE };
    writeFileSync(at("t2m-p.age"), typage(["encrypt", "--passphrase", PASSPHRASE], plaintext));
    assert.deepEqual((await missiveOpen(["--passphrase", at("t2m-p.age")], env)).stdout, plaintext);
    const m = await runCli(["seal", "--stp", "age", "--passphrase", at("plain.bin")], { env });
    assert.deepEqual(typage(["decrypt", "--passphrase", PASSPHRASE], m.stdout), plaintext);
  });
});
