/**
 * `missive chat` in real terminals: tmux runs each chat in an 80×24 pane, `send-keys`
 * types, `capture-pane` reads the screen. Through a relay subprocess (three users:
 * request, accept, refuse, lines both ways, presence, exit and restart, what is on
 * disk), and on a LAN with no relay (discovery, request, accept, lines, and hostile
 * datagrams reported in --log while the chat goes on).
 *
 * Heavy end-to-end suite: it runs under Deno only (the CI budget runs heavy suites under
 * one runtime; the chat library's own tests run under both). It is skipped where tmux is
 * missing (scripts/install-peers.sh installs it).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import dgram from "node:dgram";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { randomBytes, toHex } from "../core/bytes.ts";
import { getCryptoProvider } from "../crypto/mod.ts";
import { readKeyFile } from "../keys/identity.ts";
import { encodeAnnouncement } from "../chat/mod.ts";
import { ROOT, runCli, startCli, tempDir } from "./helpers.ts";

const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";
const hasTmux = spawnSync("tmux", ["-V"]).status === 0;
const skip = isBun
  ? "heavy end-to-end suite: runs under Deno only (CI budget)"
  : !hasTmux
  ? "tmux is not installed (scripts/install-peers.sh)"
  : false;

const MISSIVE = join(ROOT, "bin", "missive");

/** A private tmux server for this test run. */
class Tmux {
  readonly socket = `missive-chat-${toHex(randomBytes(4))}`;
  #run(...args: string[]): string {
    const r = spawnSync("tmux", ["-L", this.socket, ...args], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`tmux ${args[0]}: ${r.stderr}`);
    return r.stdout;
  }
  /** Starts `command` in a new 80×24 session; the pane stays after it exits. */
  start(name: string, command: string, cwd: string): void {
    this.#run(
      "new-session",
      "-d",
      "-s",
      name,
      "-x",
      "80",
      "-y",
      "24",
      "-c",
      cwd,
      `env MISSIVE_FROM_SOURCE=1 ${command}; echo "[exited $?]"; sleep 600`,
    );
  }
  type(name: string, text: string): void {
    this.#run("send-keys", "-t", name, "-l", text);
    this.#run("send-keys", "-t", name, "Enter");
  }
  screen(name: string): string {
    return this.#run("capture-pane", "-p", "-t", name);
  }
  /** Waits for `pattern` on the screen (`joined`: its rows run together, for long lines). */
  async waitFor(
    name: string,
    pattern: RegExp | string,
    ms = 45_000,
    joined = false,
  ): Promise<string> {
    const end = Date.now() + ms;
    for (;;) {
      const text = joined ? this.screen(name).replaceAll("\n", "") : this.screen(name);
      if (typeof pattern === "string" ? text.includes(pattern) : pattern.test(text)) return text;
      if (Date.now() > end) throw new Error(`${name}: no ${pattern} on the screen:\n${text}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  kill(): void {
    spawnSync("tmux", ["-L", this.socket, "kill-server"]);
  }
}

async function keys(dir: string, names: string[]) {
  for (const n of names) {
    const r = await runCli(["keygen", "--name", `${n}@example.org`, "-o", join(dir, `${n}.key`)]);
    assert.equal(r.code, 0, r.stderr);
    writeFileSync(join(dir, `${n}.card`), r.stdout);
  }
}

/** The bytes of a file and its WAL, as text (what a reader of the disk sees). */
function onDisk(path: string): string {
  let text = "";
  for (const p of [path, `${path}-wal`]) {
    if (existsSync(p)) text += new TextDecoder("latin1").decode(readFileSync(p));
  }
  return text;
}

test("missive chat in tmux through a relay: three users", { skip, timeout: 300_000 }, async () => {
  const { dir, cleanup } = tempDir("missive-chat-tmux-");
  const tmux = new Tmux();
  await keys(dir, ["relay", "alice", "bob", "carol"]);
  const relay = await startCli(
    ["serve", "tcp://127.0.0.1:0", "--key", join(dir, "relay.key"), "--db", join(dir, "relay.db")],
    { ready: /relay listening on (\S+)/, timeoutMs: 280_000 },
  );
  const chat = (who: string) =>
    `${MISSIVE} chat --relay ${relay.url} --relay-card relay.card --key ${who}.key --log ${who}.log`;
  try {
    tmux.start("bob", chat("bob"), dir);
    await tmux.waitFor("bob", "connected to");
    tmux.start("alice", chat("alice"), dir);
    tmux.start("carol", chat("carol"), dir);
    await tmux.waitFor("alice", "connected to");
    await tmux.waitFor("carol", "connected to");

    tmux.type("alice", "/request bob@example.org hi, it's alice");
    await tmux.waitFor("bob", "friend request from alice@example.org");
    tmux.type("bob", "/accept alice@example.org");
    await tmux.waitFor("alice", "bob@example.org accepted your request");

    tmux.type("carol", "/request bob@example.org let me in");
    await tmux.waitFor("bob", "friend request from carol@example.org");
    tmux.type("bob", "/refuse carol@example.org");
    await tmux.waitFor("carol", "bob@example.org refused your request");

    tmux.type("alice", "/chat bob@example.org");
    tmux.type("alice", "hello bob from alice");
    await tmux.waitFor("bob", "<alice@example.org> ✓ hello bob from alice");
    tmux.type("bob", "/chat alice@example.org");
    tmux.type("bob", "hi alice from bob");
    await tmux.waitFor("alice", "<bob@example.org> ✓ hi alice from bob");
    await tmux.waitFor("alice", "hello bob from alice [read]");

    tmux.type("bob", "/status busy at lunch");
    await tmux.waitFor("alice", "bob@example.org is busy");
    tmux.type("alice", "/friends");
    await tmux.waitFor("alice", /bob@example\.org +friend +busy +— at lunch/);

    tmux.type("bob", "/exit");
    await tmux.waitFor("bob", "[exited 0]");
    tmux.type("alice", "are you there bob");
    await tmux.waitFor("alice", "are you there bob [sent]");
    tmux.start("bob2", chat("bob"), dir);
    await tmux.waitFor("bob2", "<alice@example.org> ✓ are you there bob");

    // Alice befriends carol and forwards her last two lines with bob to her: carol sees
    // who forwarded them and who wrote them, not verified.
    tmux.type("alice", "/request carol@example.org");
    await tmux.waitFor("carol", "friend request from alice@example.org");
    tmux.type("carol", "/accept alice@example.org");
    await tmux.waitFor("alice", "carol@example.org accepted your request");
    tmux.type("alice", "/forward bob@example.org dave@example.org 2");
    await tmux.waitFor("alice", "cannot forward to dave@example.org: not a friend");
    tmux.type("alice", "/forward bob@example.org carol@example.org 2");
    await tmux.waitFor("alice", "forwarded 2 lines to carol@example.org");
    await tmux.waitFor(
      "carol",
      "forwarded by alice@example.org, written by bob@example.org (not verified): hi alice from bob",
      45_000,
      true,
    );
    await tmux.waitFor(
      "carol",
      "forwarded by alice@example.org, written by alice@example.org (not verified): are you there bob",
      45_000,
      true,
    );
    tmux.type("alice", "/unfriend carol@example.org");
    await tmux.waitFor("alice", "you ended the friendship with carol@example.org");
    await tmux.waitFor("carol", "alice@example.org ended the friendship");

    for (const who of ["alice", "bob2", "carol"]) tmux.type(who, "/exit");
    for (const who of ["alice", "bob2", "carol"]) await tmux.waitFor(who, "[exited 0]");

    const relayDb = onDisk(join(dir, "relay.db"));
    for (
      const text of [
        "hello bob from alice",
        "hi alice from bob",
        "are you there bob",
        "at lunch",
        "let me in",
      ]
    ) {
      assert.ok(!relayDb.includes(text), `the relay's database holds "${text}"`);
    }
    for (const who of ["alice", "bob", "carol"]) {
      const db = join(dir, `${who}.key.chat.db`);
      assert.equal(statSync(db).mode & 0o777, 0o600, `${db} is not 0600`);
      const raw = onDisk(db);
      for (
        const text of [
          "hello bob from alice",
          "hi alice from bob",
          "@example.org",
          "at lunch",
          "let me in",
          "it's alice",
        ]
      ) {
        assert.ok(!raw.includes(text), `${db} holds "${text}" in clear`);
      }
    }
  } finally {
    tmux.kill();
    relay.child.kill("SIGTERM");
    await relay.done.catch(() => {});
    cleanup();
  }
});

test("missive chat in tmux on a LAN, no relay; hostile datagrams are logged", {
  skip,
  timeout: 300_000,
}, async () => {
  const { dir, cleanup } = tempDir("missive-chat-lan-");
  const tmux = new Tmux();
  await keys(dir, ["alice", "bob", "mallory"]);
  const port = 40000 + Math.floor(Math.random() * 20000);
  const group = `239.255.77.80:${port}`;
  const chat = (who: string) =>
    `${MISSIVE} chat --lan --lan-group ${group} --lan-interface 127.0.0.1 --key ${who}.key --log ${who}.log`;
  const sock = dgram.createSocket({ type: "udp4", reuseAddr: true });
  try {
    tmux.start("bob", chat("bob"), dir);
    tmux.start("alice", chat("alice"), dir);
    await tmux.waitFor("alice", "on the LAN");
    await tmux.waitFor("bob", "on the LAN");
    let listed = "";
    for (let i = 0; i < 20 && !/bob@example\.org +online/.test(listed); i++) {
      tmux.type("alice", "/list");
      await new Promise((r) => setTimeout(r, 1000));
      listed = tmux.screen("alice");
    }
    assert.match(listed, /bob@example\.org +online/);

    tmux.type("alice", "/request bob@example.org lan hello");
    await tmux.waitFor("bob", "friend request from alice@example.org");
    tmux.type("bob", "/accept alice@example.org");
    await tmux.waitFor("alice", "bob@example.org accepted your request");
    tmux.type("alice", "/chat bob@example.org");
    tmux.type("alice", "hi bob over the lan");
    await tmux.waitFor("bob", "<alice@example.org> ✓ hi bob over the lan");
    tmux.type("bob", "/chat alice@example.org");
    tmux.type("bob", "hi alice, no server here");
    await tmux.waitFor("alice", "<bob@example.org> ✓ hi alice, no server here");

    // Hostile datagrams: garbage, an announcement of alice's card signed by mallory,
    // one announcement sent twice (replayed), a stale one.
    await new Promise<void>((r) => sock.bind(0, "127.0.0.1", () => r()));
    sock.setMulticastInterface("127.0.0.1");
    const [host, p] = group.split(":");
    const send = (b: Uint8Array) =>
      new Promise<void>((r) => sock.send(b, Number(p), host, () => r()));
    const crypto = await getCryptoProvider();
    const mallory = await readKeyFile(
      crypto,
      readFileSync(join(dir, "mallory.key"), "utf8"),
      () => Promise.resolve(""),
    );
    const announce = await encodeAnnouncement(crypto, mallory, {
      role: "chat",
      presence: "online",
      port: 9,
      time: Date.now(),
    });
    const unsigned = new Uint8Array(announce);
    unsigned[unsigned.length - 1] ^= 0xff;
    const stale = await encodeAnnouncement(crypto, mallory, {
      role: "chat",
      presence: "online",
      port: 9,
      time: Date.now() - 3_600_000,
    });
    await send(randomBytes(40));
    await send(unsigned);
    await send(announce);
    await send(announce);
    await send(stale);
    const end = Date.now() + 20_000;
    const log = () =>
      existsSync(join(dir, "bob.log")) ? readFileSync(join(dir, "bob.log"), "utf8") : "";
    while (
      Date.now() < end &&
      !(/malformed/.test(log()) && /auth-failed/.test(log()) && /replayed/.test(log()) &&
        /stale/.test(log()))
    ) {
      await new Promise((r) => setTimeout(r, 200));
    }
    for (const reason of ["malformed", "auth-failed", "replayed", "stale"]) {
      assert.match(log(), new RegExp(reason), `bob's log has no "${reason}":\n${log()}`);
    }
    tmux.type("alice", "still there?");
    await tmux.waitFor("bob", "<alice@example.org> ✓ still there?");
    tmux.type("alice", "/exit");
    tmux.type("bob", "/exit");
    await tmux.waitFor("alice", "[exited 0]");
    await tmux.waitFor("bob", "[exited 0]");
  } finally {
    sock.close();
    tmux.kill();
    cleanup();
  }
});
