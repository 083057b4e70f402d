import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { concatBytes, equalBytes, randomBytes, utf8 } from "../core/bytes.ts";
import { encodeFrame, FrameReader } from "../transports/framing.ts";
import { connectTransport, listenTransport } from "../transports/mod.ts";
import { ReceiptChannel, sealWithNonce, UNKNOWN_NONCE } from "../messaging/receipts.ts";
import { MessageServer } from "../messaging/serve.ts";
import { MAX_RECEIPT_FRAME, openReceipt, sealReceipt } from "../messaging/receipts.ts";
import { defaultRegistry, encodeEnvelope, plainV1, sealMessage, textV1, toLine } from "../mod.ts";
import type { SealContext } from "../plugin/types.ts";
import { MemoryReplayCache } from "../plugin/replay.ts";
import { DENO, ENTRY, fixedIdentity, runCli, spawnCli, startCli, tempDir } from "./helpers.ts";
import type { Identity } from "../keys/identity.ts";
import type { Io } from "../cmd/common.ts";
import { main } from "../cmd/main.ts";
import type { Receipt } from "../amp/receipt.ts";
import type { TextMessage } from "../amp/text.ts";

const tmp = tempDir("missive-net-");
const dir = tmp.dir;
after(() => tmp.cleanup());

before(async () => {
  for (const name of ["alice", "bob", "carol"]) {
    const r = await runCli([
      "keygen",
      "--name",
      `${name}@example.org`,
      "-o",
      join(dir, `${name}.key`),
    ]);
    assert.equal(r.code, 0, r.stderr);
    writeFileSync(join(dir, `${name}.card`), r.stdout);
  }
});

const missive = (
  args: string[],
  options: { stdin?: string | Uint8Array; timeoutMs?: number } = {},
) => spawnCli(args, { ...options, cwd: dir });

/** Starts `missive listen` as a subprocess; resolves once it printed the URL it bound. */
const startListener = (args: string[]) =>
  startCli(["listen", ...args], { cwd: dir, ready: /listening on (\S+)/ });

describe("missive send / listen (subprocesses)", () => {
  it("echo hi | send → listener prints hi from alice, verified; send exits 0 after the receipt", async () => {
    const l = await startListener([
      "tcp://127.0.0.1:0",
      "--key",
      "bob.key",
      "--trust",
      "alice.card",
      "--count",
      "1",
    ]);
    assert.match(l.url, /^tcp:\/\/127\.0\.0\.1:\d+$/);
    const s = await missive(["send", l.url, "--from", "alice.key", "--to", "bob.card"], {
      stdin: "hi\n",
    });
    assert.equal(s.code, 0, s.stderr);
    assert.match(s.stderr, /accepted \(receipt verified\)/);
    assert.equal(s.text, "");
    const r = await l.done;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.text, "alice@example.org (verified, trusted): hi\n");
  });

  it("send times out (exit 12) when the listener never answers", async () => {
    const silent = net.createServer((socket) => socket.on("data", () => {}));
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const port = (silent.address() as net.AddressInfo).port;
    try {
      const s = await missive(
        [
          "send",
          `tcp://127.0.0.1:${port}`,
          "--from",
          "alice.key",
          "--to",
          "bob.card",
          "--timeout",
          "1s",
        ],
        { stdin: "anyone there?" },
      );
      assert.equal(s.code, 12, s.stderr);
      assert.match(s.stderr, /no receipt from tcp:\/\/127\.0\.0\.1:\d+ in time \(--timeout 1s\)/);
      assert.equal(s.text, "");
    } finally {
      silent.close();
    }
  });

  it("a refusal is a failure (exit 15) with the status; garbage peers are dropped, the rest served", async () => {
    const l = await startListener([
      "tcp://127.0.0.1:0",
      "--key",
      "bob.key",
      "--trust",
      "alice.card",
      "--require-trust",
      "--json",
      "--count",
      "1",
    ]);
    const port = Number(l.url.split(":").pop());
    await new Promise<void>((resolve) => {
      const g = net.connect(port, "127.0.0.1", () => g.end(utf8("GET / HTTP/1.1\r\n\r\n")));
      g.on("data", () => {});
      g.on("close", () => resolve());
      g.on("error", () => resolve());
    });
    const refused = await missive(["send", l.url, "--from", "carol.key", "--to", "bob.card"], {
      stdin: "hello?",
    });
    assert.equal(refused.code, 15, refused.stderr);
    assert.match(
      refused.stderr,
      /refused the message: unknown-id\n/,
    );
    const ok = await missive(["send", l.url, "--from", "alice.key", "--to", "bob.card"], {
      stdin: "hi",
    });
    assert.equal(ok.code, 0, ok.stderr);
    const r = await l.done;
    assert.equal(r.code, 0, r.stderr);
    const lines = r.text.trim().split("\n");
    assert.equal(lines.length, 1);
    const report = JSON.parse(lines[0]);
    assert.equal(report.message.text, "hi");
    assert.equal(report.sender.address, "alice@example.org");
    assert.equal(report.sender.verified, true);
    assert.match(report.peer, /^tcp:\/\/127\.0\.0\.1:\d+$/);
    assert.match(
      r.stderr,
      /dropped tcp:\/\/127\.0\.0\.1:\d+: frame: declared length \d+ is over the 1048576-byte cap/,
    );
    assert.match(r.stderr, /refused a message: untrusted sender: carol@example\.org/);
  });

  it("--exec runs a command per message with the text on stdin and the sender in the environment", async () => {
    const l = await startListener([
      "tcp://127.0.0.1:0",
      "--key",
      "bob.key",
      "--trust",
      "alice.card",
      "--count",
      "1",
      "--exec",
      'printf "%s|%s|%s|%s|" "$MISSIVE_SENDER" "$MISSIVE_VERIFIED" "$MISSIVE_TRUSTED" "$MISSIVE_AMP"; cat',
    ]);
    const s = await missive([
      "send",
      l.url,
      "--from",
      "alice.key",
      "--to",
      "bob.card",
      "--stp",
      "auth",
    ], {
      stdin: "line one\nline two\n",
    });
    assert.equal(s.code, 0, s.stderr);
    const r = await l.done;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.text, "alice@example.org|1|1|text/1|line one\nline two\n");
  });

  it("a stdio pipe: send stdio:lines | listen stdio:lines", async () => {
    const script = [
      "set -o pipefail",
      'missive() { "$MISSIVE_DENO" run --allow-all --quiet "$MISSIVE_ENTRY" "$@"; }',
      "{ echo one | missive send stdio:lines --from alice.key --to bob.card",
      "  echo 'not a message'",
      "  echo two | missive send stdio:lines --from alice.key --to bob.card; } |",
      "  missive listen stdio:lines --key bob.key --trust alice.card",
    ].join("\n");
    const r = await spawnCli(["-c", script], {
      binary: "bash",
      cwd: dir,
      env: { MISSIVE_DENO: DENO, MISSIVE_ENTRY: ENTRY },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.text,
      "alice@example.org (verified, trusted): one\nalice@example.org (verified, trusted): two\n",
    );
    assert.match(r.stderr, /line 2 skipped: not canonical base64/);
  });

  it("send --stp group --hide-recipients: each recipient's listener opens it, an outsider cannot", async () => {
    const at = (a: string) => join(dir, a);
    const sent = await runCli(
      ["send", "stdio:lines", "--stp", "group", "--hide-recipients", "--from", at("alice.key")]
        .concat(["--to", at("bob.card"), "--to", at("carol.card")]),
      { stdin: "to the team" },
    );
    assert.equal(sent.code, 0, sent.stderr);
    for (const name of ["bob", "carol"]) {
      const r = await runCli(["listen", "stdio:lines", "--key", at(`${name}.key`)], {
        stdin: sent.stdout,
      });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.text, /^alice@example\.org \(verified[^)]*\): to the team\n$/);
    }
    const outsider = await runCli(["listen", "stdio:lines", "--key", at("alice.key")], {
      stdin: sent.stdout,
    });
    assert.equal(outsider.text, "");
    assert.match(outsider.stderr, /not a recipient/);
  });

  it("usage errors: bad URL, missing --key, --to needed for receipts", async () => {
    const cases: [string[], RegExp][] = [
      [["send", "tcp://127.0.0.1", "--from", "alice.key", "--to", "bob.card"], /bad transport URL/],
      [["send", "udp://x:1", "--from", "alice.key", "--to", "bob.card"], /use one of stdio:/],
      [["send", "tcp://127.0.0.1:1", "--from", "alice.key"], /give --to or --no-receipt/],
      [["send", "tcp://127.0.0.1:1", "--to", "bob.card", "--timeout", "soon"], /--timeout expects/],
      [["listen", "tcp://127.0.0.1:0"], /--key is required/],
      [["listen", "tcp://127.0.0.1:0", "--key", "bob.key", "--max-frame", "65M"], /--max-frame/],
      [
        ["listen", "tcp://127.0.0.1:0", "--key", "bob.key", "--register", "sip:127.0.0.1"],
        /--register needs a sip: URL/,
      ],
      [["listen", "sips:bob@127.0.0.1", "--key", "bob.key"], /bad transport URL/],
      [
        ["send", "stdio:lines", "--from", "alice.key", "--to", "bob.card", "--hide-recipients"],
        /STP simple cannot hide its recipients \(use group\)/,
      ],
    ];
    for (const [args, re] of cases) {
      const r = await runCli(
        args.map((a) => (a.endsWith(".key") || a.endsWith(".card") ? join(dir, a) : a)),
      );
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.equal(r.text, "");
    }
  });
});

describe("missive listen on stdio (in-process)", () => {
  it("binary: opens each frame, stops at a truncated one with a logged reason (exit 3)", async () => {
    const sealed = await runCli(
      ["send", "stdio:binary", "--from", join(dir, "alice.key"), "--to", join(dir, "bob.card")],
      { stdin: "framed" },
    );
    assert.equal(sealed.code, 0, sealed.stderr);
    const input = concatBytes(
      sealed.stdout,
      encodeFrame(utf8("garbage inside a frame")),
      sealed.stdout.subarray(0, 9),
    );
    const r = await runCli(["listen", "stdio:binary", "--key", join(dir, "bob.key")], {
      stdin: input,
    });
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.text, "alice@example.org (verified, NOT trusted): framed\n");
    assert.match(r.stderr, /refused a message: envelope: missing the d9d9f7/);
    assert.match(r.stderr, /dropped stdio:binary: frame: truncated/);
  });
});

describe("missive listen on bad input (in-process)", () => {
  it("bit flips, truncation and garbage: nothing on stdout, a reason on stderr", async () => {
    const sealed = await runCli(
      ["send", "stdio:binary", "--from", join(dir, "alice.key"), "--to", join(dir, "bob.card")],
      { stdin: "secret" },
    );
    assert.equal(sealed.code, 0, sealed.stderr);
    const frame = sealed.stdout.subarray(4);
    const inputs: Uint8Array[] = [];
    for (let i = 0; i < frame.length; i += 23) {
      const bad = new Uint8Array(frame);
      bad[i] ^= 1 << (i % 8);
      inputs.push(encodeFrame(bad));
    }
    inputs.push(encodeFrame(frame.subarray(0, frame.length - 1))); // truncated envelope
    inputs.push(encodeFrame(randomBytes(300))); // garbage in a well-formed frame
    for (const input of inputs) {
      const r = await runCli(["listen", "stdio:binary", "--key", join(dir, "bob.key")], {
        stdin: input,
      });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.text, "", "nothing of a bad message may be printed");
      assert.match(r.stderr, /refused a message: /);
    }
  });
});

describe("missive listen escapes what senders choose", () => {
  it("a claimed address with terminal escapes is printed and logged escaped", async () => {
    const evil = "\x1b[2Jmallory\nfake line";
    const payload = await plainV1.seal({
      ampType: 1,
      ampVersion: 1,
      body: textV1.encode({ text: "boo\x1b[31m" }),
      timestamp: Date.now(),
      nonce: new Uint8Array(16).fill(5),
      sender: evil,
    }, {} as SealContext);
    const line = toLine(encodeEnvelope({ protocolType: 7, protocolVersion: 1, payload })) + "\n";
    const key = join(dir, "bob.key");
    const shown = await runCli(["listen", "stdio:lines", "--key", key], { stdin: line });
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal(shown.text, "\\x1b[2Jmallory\\nfake line (NOT verified): boo\\x1b[31m\n");
    const refused = await runCli(["listen", "stdio:lines", "--key", key, "--require-trust"], {
      stdin: line,
    });
    assert.equal(refused.code, 0, refused.stderr);
    assert.equal(refused.text, "");
    assert.match(
      refused.stderr,
      /untrusted sender: \\x1b\[2Jmallory\\nfake line is a claimed, unverified sender/,
    );
    assert.ok(!refused.stderr.includes("\x1b") && !shown.text.includes("\x1b"));
  });
});

describe("missive listen --count on an idle stdin", () => {
  it("exits after N messages even though stdin stays open", async () => {
    const sealed = await runCli(
      ["send", "stdio:lines", "--from", join(dir, "alice.key"), "--to", join(dir, "bob.card")],
      { stdin: "only one" },
    );
    assert.equal(sealed.code, 0, sealed.stderr);
    const out: Uint8Array[] = [];
    let err = "";
    const io: Io = {
      stdin: async function* () {
        yield sealed.stdout;
        await new Promise(() => {}); // a pipe that stays open and silent
      },
      stdout: (d) => {
        out.push(d);
        return Promise.resolve();
      },
      stderr: (l) => void (err += l),
      stdoutIsTty: false,
      env: {},
    };
    const code = await main(
      ["listen", "stdio:lines", "--key", join(dir, "bob.key"), "--count", "1"],
      io,
    );
    assert.equal(code, 0, err);
    assert.equal(
      new TextDecoder().decode(concatBytes(...out)),
      "alice@example.org (verified, NOT trusted): only one\n",
    );
  });
});

/** Bob serving in-process over TCP with receipts; `texts` collects what was delivered. */
async function bobServer(bob: Identity, alice: Identity, limit?: number) {
  const registry = defaultRegistry();
  const listener = await listenTransport("tcp://127.0.0.1:0");
  const texts: string[] = [];
  const log: string[] = [];
  const server = new MessageServer(listener, {
    registry,
    identity: bob,
    trusted: [alice.card],
    replay: new MemoryReplayCache(),
    limit,
    log: (l) => log.push(l),
    deliver: (opened) => void texts.push((opened.message as TextMessage).text),
  });
  return { registry, listener, server, running: server.run(), texts, log };
}

describe("receipt exchange (library)", () => {
  it("a frame that is not an envelope gets an unparsable receipt with the unknown nonce", async () => {
    const [alice, bob] = await Promise.all([
      fixedIdentity("alice@example.org", 1),
      fixedIdentity("bob@example.org", 3),
    ]);
    const b = await bobServer(bob, alice);
    const t = await connectTransport(b.listener.url);
    await t.send(utf8("not an envelope"));
    const it = t.frames()[Symbol.asyncIterator]();
    const frame = (await it.next()).value as Uint8Array;
    const receipt = await openReceipt(frame, {
      registry: b.registry,
      nonce: new Uint8Array(16).fill(9),
      cards: [bob.card],
    });
    assert.equal(receipt.status, "unparsable");
    assert.ok(equalBytes(receipt.nonce, UNKNOWN_NONCE));
    await t.close();
    const t2 = await connectTransport(b.listener.url);
    const ch2 = new ReceiptChannel(t2, { registry: b.registry, cards: [bob.card] });
    const sealed = await sealWithNonce({
      registry: b.registry,
      stp: b.registry.find("stp", "simple"),
      amp: b.registry.find("amp", "text/1"),
      message: { text: "after garbage" },
      sender: alice,
      recipients: [bob.card],
    });
    const r2 = await ch2.send(sealed, 10_000);
    assert.equal(r2.status, "accepted");
    assert.ok(equalBytes(r2.nonce, sealed.nonce));
    // A receipt signed by someone else is refused.
    await assert.rejects(
      openReceipt(frame, { registry: b.registry, nonce: UNKNOWN_NONCE, cards: [alice.card] }),
      /not signed by the --to card/,
    );
    await t2.close();
    await b.server.stop();
    await b.running;
    assert.deepEqual(b.texts, ["after garbage"]);
    assert.equal(b.log.length, 1, b.log.join("\n"));
  });

  it("openReceipt refuses receipts of another STP, for another nonce, or 'accepted' for no nonce", async () => {
    const [alice, bob] = await Promise.all([
      fixedIdentity("alice@example.org", 1),
      fixedIdentity("bob@example.org", 3),
    ]);
    const registry = defaultRegistry();
    const nonce = new Uint8Array(16).fill(7);
    const expect = { nonce, cards: [bob.card] };
    const good = await sealReceipt(registry, bob, { nonce, status: "accepted" });
    assert.equal((await openReceipt(good, { registry, ...expect })).status, "accepted");
    const other = await sealReceipt(registry, bob, {
      nonce: new Uint8Array(16).fill(8),
      status: "accepted",
    });
    await assert.rejects(openReceipt(other, { registry, ...expect }), /another message's nonce/);
    const vague = await sealReceipt(registry, bob, { nonce: UNKNOWN_NONCE, status: "accepted" });
    await assert.rejects(openReceipt(vague, { registry, ...expect }), /another message's nonce/);
    const viaSimple = await sealMessage({
      registry,
      stp: registry.find("stp", "simple"),
      amp: registry.find("amp", "receipt"),
      message: { nonce, status: "accepted" },
      sender: bob,
      recipients: [alice.card],
    });
    await assert.rejects(openReceipt(viaSimple, { registry, ...expect }), /must be STP auth v1/);
    const notReceipt = await sealMessage({
      registry,
      stp: registry.find("stp", "auth"),
      amp: registry.find("amp", "text/1"),
      message: { text: "accepted" },
      sender: bob,
    });
    await assert.rejects(openReceipt(notReceipt, { registry, ...expect }), /expected a receipt/);
  });

  it("a peer dropped for an oversize length gets a parting unparsable receipt", async () => {
    const [alice, bob] = await Promise.all([
      fixedIdentity("alice@example.org", 1),
      fixedIdentity("bob@example.org", 3),
    ]);
    const b = await bobServer(bob, alice);
    const port = Number(b.listener.url.split(":").pop());
    const reply = await new Promise<Uint8Array[]>((resolve, reject) => {
      const reader = new FrameReader(MAX_RECEIPT_FRAME);
      const frames: Uint8Array[] = [];
      const s = net.connect(port, "127.0.0.1", () => s.write(new Uint8Array([0x7f, 0, 0, 0])));
      s.on("data", (d: Uint8Array) => frames.push(...reader.push(d)));
      s.on("close", () => resolve(frames));
      s.on("error", reject);
    });
    assert.equal(reply.length, 1);
    const receipt = await openReceipt(reply[0], {
      registry: b.registry,
      nonce: UNKNOWN_NONCE,
      cards: [bob.card],
    });
    assert.equal(receipt.status, "unparsable");
    assert.equal(receipt.detail, undefined, "a signed receipt quotes nothing");
    await b.server.stop();
    await b.running;
    assert.match(b.log.join("\n"), /dropped tcp:.*over the 1048576-byte cap/);
  });

  it("a peer that shuts down its sending side after its frame still gets the receipt", async () => {
    const [alice, bob] = await Promise.all([
      fixedIdentity("alice@example.org", 1),
      fixedIdentity("bob@example.org", 3),
    ]);
    const b = await bobServer(bob, alice);
    const sealed = await sealWithNonce({
      registry: b.registry,
      stp: b.registry.find("stp", "simple"),
      amp: b.registry.find("amp", "text/1"),
      message: { text: "half-closed" },
      sender: alice,
      recipients: [bob.card],
    });
    const port = Number(b.listener.url.split(":").pop());
    const reply = await new Promise<Uint8Array[]>((resolve, reject) => {
      const reader = new FrameReader(MAX_RECEIPT_FRAME);
      const frames: Uint8Array[] = [];
      const s = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true }, () => {
        s.end(encodeFrame(sealed.frame)); // write, then FIN
      });
      s.on("data", (d: Uint8Array) => frames.push(...reader.push(d)));
      s.on("end", () => resolve(frames));
      s.on("error", reject);
    });
    assert.equal(reply.length, 1);
    const receipt = await openReceipt(reply[0], {
      registry: b.registry,
      nonce: sealed.nonce,
      cards: [bob.card],
    });
    assert.equal(receipt.status, "accepted");
    await b.server.stop();
    await b.running;
    assert.deepEqual(b.texts, ["half-closed"]);
  });

  it("200 concurrent senders × 50 messages: all 10,000 delivered once, each receipt verified", {
    timeout: 180_000,
  }, async () => {
    const [alice, bob] = await Promise.all([
      fixedIdentity("alice@example.org", 1),
      fixedIdentity("bob@example.org", 3),
    ]);
    const b = await bobServer(bob, alice);
    const registry = b.registry;
    const stp = registry.find("stp", "simple");
    const amp = registry.find("amp", "text/1");
    const SENDERS = 200;
    const EACH = 50;
    const receipts: Receipt[] = [];
    await Promise.all([...Array(SENDERS)].map(async (_, s) => {
      const t = await connectTransport(b.listener.url);
      const channel = new ReceiptChannel(t, { registry, cards: [bob.card] });
      // Pipelined: up to 5 messages in flight per connection.
      const inFlight: Promise<void>[] = [];
      for (let m = 0; m < EACH; m++) {
        const sealed = await sealWithNonce({
          registry,
          stp,
          amp,
          message: { text: `${s}/${m}` },
          sender: alice,
          recipients: [bob.card],
        });
        inFlight.push(channel.send(sealed, 120_000).then((r) => void receipts.push(r)));
        if (inFlight.length >= 5) await inFlight.shift();
      }
      await Promise.all(inFlight);
      await t.close();
    }));
    await b.server.stop();
    await b.running;
    assert.equal(receipts.length, SENDERS * EACH);
    assert.ok(receipts.every((r) => r.status === "accepted"));
    assert.equal(b.texts.length, SENDERS * EACH);
    assert.equal(new Set(b.texts).size, SENDERS * EACH, "a message was delivered twice");
    for (let s = 0; s < SENDERS; s++) {
      const mine = b.texts.filter((t) => t.startsWith(`${s}/`)).map((t) => Number(t.split("/")[1]));
      assert.deepEqual(mine, [...Array(EACH).keys()], `sender ${s}: order or loss`);
    }
    assert.deepEqual(b.log, []);
  });
});
