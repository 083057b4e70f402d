/**
 * Hostile peers, the relay's part of finding 9 (issue 11): the relay database's file
 * mode, what `stats` tells an ordinary user, and `relay status` into a closed pipe.
 * @module
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { after, before, describe, it } from "node:test";
import { nobleProvider } from "../../crypto/mod.ts";
import { randomBytes } from "../../core/bytes.ts";
import { encodeEnvelope } from "../../envelope/mod.ts";
import { writeKeyFile } from "../../keys/identity.ts";
import { DENO, ENTRY, ROOT, tempDir } from "../helpers.ts";
import { clientFrom, type ServeProcess, someone, startServe } from "./_relay.ts";

describe("hostile: relay odds and ends (finding 9)", () => {
  const { dir, cleanup } = tempDir("missive-hostile-misc-");
  let serve: ServeProcess;

  before(async () => {
    serve = await startServe(dir);
  });
  after(async () => {
    await serve.stop();
    cleanup();
  });

  it("relay.db and its journal files are created 0600", async () => {
    const c = await clientFrom(serve, await someone("dana"));
    await c.register(); // a write, so the WAL exists
    await c.close();
    for (const name of ["relay.db", "relay.db-wal", "relay.db-shm"]) {
      const mode = statSync(join(dir, name)).mode & 0o777;
      assert.equal(mode.toString(8), "600", `${name} is ${mode.toString(8)}`);
    }
  });

  it("stats tell an ordinary user nothing about invisible users", async () => {
    const [bob, alice, carol] = [
      await someone("bob"),
      await someone("alice"),
      await someone("carol"),
    ];
    const b = await clientFrom(serve, bob);
    await b.register();
    const c = await clientFrom(serve, carol);
    await c.register();
    const quietBefore = await b.stats();
    // Alice is online but invisible, and busy sending to carol.
    const a = await clientFrom(serve, alice);
    await a.register();
    await a.setPresence("invisible");
    for (let i = 0; i < 5; i++) {
      const envelope = encodeEnvelope({
        protocolType: 7,
        protocolVersion: 1,
        payload: randomBytes(32),
      });
      await a.send(carol.card.address, envelope);
    }
    const withAlice = await b.stats();
    assert.deepEqual(withAlice, quietBefore, "bob's stats changed with invisible alice");
    for (const x of [a, b, c]) await x.close();
  });

  it("`relay status | head -1` ends without a stack trace", async () => {
    const erin = await someone("erin");
    writeFileSync(join(dir, "erin.key"), await writeKeyFile(nobleProvider, erin), {
      mode: 0o600,
    });
    const c = await clientFrom(serve, erin);
    await c.register();
    await c.close();
    const cmd = [DENO, "run", "--allow-all", "--quiet", ENTRY, "relay", "status"]
      .concat(["--relay", serve.url, "--relay-card", join(dir, "relay.card")])
      .concat(["--key", join(dir, "erin.key")]).map((a) => `'${a}'`).join(" ");
    // Several lines, each written on its own, into a reader that leaves after one.
    const script = `${cmd} 2>"${join(dir, "err.txt")}" | head -1 >/dev/null; ` +
      `cat "${join(dir, "err.txt")}"`;
    const stderr = await new Promise<string>((resolve) => {
      const child = spawn("sh", ["-c", script], {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp" },
        stdio: ["ignore", "pipe", "inherit"],
      });
      let out = "";
      child.stdout!.on("data", (d: Uint8Array) => (out += new TextDecoder().decode(d)));
      child.on("close", () => resolve(out));
    });
    assert.doesNotMatch(stderr, /Uncaught|\n\s+at /, stderr);
  });
});
