/**
 * `missive session` end to end, as real subprocesses: 25 lines over TCP arrive in order
 * with re-keys after the 10th and 20th acknowledged messages (distinct key IDs); an
 * untrusted client and a mismatched server card are refused with exit code 7; and the
 * same session runs over a stdio pair joined by socat.
 * @module
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DENO, ENTRY, ROOT, runCli, spawnCli, startCli, tempDir } from "./helpers.ts";

const { dir, cleanup } = tempDir("missive-session-cli-");
const path = (name: string) => join(dir, name);
const CLI = [DENO, "run", "--allow-all", "--quiet", ENTRY];

/** Starts `missive session listen` on port 0 and waits for its "listening on" line. */
const listen = (args: string[]) =>
  startCli(["session", "listen", "tcp://127.0.0.1:0", ...args], {
    ready: /listening on (tcp:\/\/[0-9.]+:\d+)/,
  });

/** Runs `missive session connect URL` as cli.key trusting srv.card, with `extra` flags. */
const connect = (url: string, extra: string[], stdin: string) =>
  spawnCli(
    ["session", "connect", url, "--key", path("cli.key"), "--trust", path("srv.card"), ...extra],
    { stdin },
  );

const jsonLines = (text: string) =>
  text.trim().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));

before(async () => {
  for (const name of ["srv", "cli", "carol"]) {
    const r = await runCli(["keygen", "--name", `${name}@example.org`, "-o", path(`${name}.key`)]);
    assert.equal(r.code, 0, r.stderr);
    writeFileSync(path(`${name}.card`), r.stdout);
  }
});
after(cleanup);

describe("missive session (CLI)", () => {
  it("25 lines arrive in order, re-keyed after the 10th and 20th acknowledged", async () => {
    const server = await listen([
      "--key",
      path("srv.key"),
      "--trust",
      path("cli.card"),
      "--json",
      "--rekey-after",
      "10",
    ]);
    const lines = Array.from({ length: 25 }, (_, i) => `line ${i + 1}`);
    const client = await connect(server.url, ["--json"], lines.join("\n") + "\n");
    const served = await server.done;
    assert.equal(client.code, 0, client.stderr);
    assert.equal(served.code, 0, served.stderr);
    const s = jsonLines(served.text);
    const c = jsonLines(client.text);
    assert.deepEqual(s.filter((e) => e.type === "message").map((e) => e.text), lines);
    for (const events of [s, c]) {
      const keyed = events.filter((e) => e.type === "handshake" || e.type === "rekey");
      assert.deepEqual(keyed.map((e) => e.type), ["handshake", "rekey", "rekey"]);
      assert.deepEqual(keyed.slice(1).map((e) => e.acknowledged), [10, 20]);
      assert.equal(new Set(keyed.map((e) => e.keyId)).size, 3);
      assert.deepEqual(events.at(-1).type, "close");
      // Session version 2 by default (SPEC §22.12), named in every key event.
      for (const e of keyed) assert.deepEqual([e.version, e.kem], [2, "mlkem768x25519"]);
    }
    assert.deepEqual(
      s.filter((e) => e.type === "rekey").map((e) => e.keyId),
      c.filter((e) => e.type === "rekey").map((e) => e.keyId),
    );
  });

  it("refuses an untrusted client and a mismatched server card (exit 7 on both sides)", async () => {
    const strict = await listen(["--key", path("srv.key"), "--trust", path("carol.card")]);
    const refused = await connect(strict.url, [], "hello\n");
    const strictEnd = await strict.done;
    assert.equal(refused.code, 7, refused.stderr);
    assert.match(refused.stderr, /^missive: session: the peer closed/);
    assert.equal(strictEnd.code, 7);
    assert.match(strictEnd.stderr, /cli@example.org .* is not trusted/);
    assert.equal(refused.text, "");

    const open = await listen(["--key", path("srv.key"), "--open"]);
    const mismatch = await spawnCli(
      ["session", "connect", open.url, "--key", path("cli.key"), "--trust", path("carol.card")],
      { stdin: "hello\n" },
    );
    const openEnd = await open.done;
    assert.equal(mismatch.code, 7, mismatch.stderr);
    assert.match(mismatch.stderr, /srv@example.org .*not the pinned card carol@example.org/);
    assert.equal(openEnd.code, 7);
    assert.equal(openEnd.text, "");
  });

  it("--require-pq refuses a version 1 client (exit 7, one clear line each side)", async () => {
    const pq = await listen([
      "--key",
      path("srv.key"),
      "--trust",
      path("cli.card"),
      "--require-pq",
    ]);
    const classical = await connect(pq.url, ["--session-version", "1"], "hello\n");
    const pqEnd = await pq.done;
    assert.equal(pqEnd.code, 7, pqEnd.stderr);
    assert.match(
      pqEnd.stderr,
      /^missive: session: cli@example.org offered only session version 1 \(classical X25519\); this side requires version 2 .*--require-pq/m,
    );
    assert.equal(pqEnd.text, "");
    assert.equal(classical.code, 7, classical.stderr);
    assert.match(classical.stderr, /^missive: session: the peer closed .*requires version 2/m);
    assert.equal(classical.text, "");
    const both = await runCli([
      "session",
      "connect",
      "tcp://127.0.0.1:9",
      "--key",
      path("cli.key"),
      "--trust",
      path("srv.card"),
      "--session-version",
      "1",
      "--require-pq",
    ]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /--require-pq needs session version 2/);
  });

  it("a version 1 client and a default server interoperate (--json names version 1, x25519)", async () => {
    const server = await listen(["--key", path("srv.key"), "--trust", path("cli.card"), "--json"]);
    const client = await connect(server.url, ["--session-version", "1", "--json"], "classical\n");
    const served = await server.done;
    assert.equal(client.code, 0, client.stderr);
    assert.equal(served.code, 0, served.stderr);
    for (const events of [jsonLines(served.text), jsonLines(client.text)]) {
      const hs = events.find((e) => e.type === "handshake");
      assert.deepEqual([hs.version, hs.kem], [1, "x25519"]);
    }
    assert.deepEqual(
      jsonLines(served.text).filter((e) => e.type === "message").map((e) => e.text),
      [
        "classical",
      ],
    );
  });

  it("works over a stdio pair joined by socat", () => {
    const which = spawnSync("sh", ["-c", "command -v socat"], { encoding: "utf8" });
    assert.equal(which.status, 0, "socat is missing: run scripts/install-peers.sh");
    const lines = Array.from({ length: 12 }, (_, i) => `over stdio ${i}`);
    writeFileSync(path("lines.txt"), lines.join("\n") + "\n");
    const q = (args: string[]) => args.map((a) => `'${a}'`).join(" ");
    const listener = q([
      ...CLI,
      "session",
      "listen",
      "stdio:",
      "--key",
      path("srv.key"),
      "--trust",
      path("cli.card"),
      "--rekey-after",
      "5",
    ]);
    const connector = q([
      ...CLI,
      "session",
      "connect",
      "stdio:",
      "--key",
      path("cli.key"),
      "--trust",
      path("srv.card"),
      "--input",
      path("lines.txt"),
    ]);
    const r = spawnSync("socat", [
      "-T",
      "30",
      `EXEC:${listener.replaceAll(":", "\\:")}`,
      `EXEC:${connector.replaceAll(":", "\\:")}`,
    ], {
      cwd: ROOT,
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.equal(r.status, 0, r.stderr);
    const received = r.stderr.split("\n").filter((l) => l.startsWith("over stdio"));
    assert.deepEqual(received, lines);
  });
});
