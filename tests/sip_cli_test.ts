/**
 * End-to-end over SIP with the real CLI as a subprocess: sipp UAC → `missive listen`,
 * `missive send` → sipp UAS, and `missive send` → Kamailio → `missive listen --register`.
 * A default message (simple v3 between hybrid identities, ≈ 3.9 KB armored) is over
 * 1300 bytes, so it travels over TCP (SPEC §21.7.4); the UDP cases use classical
 * identities and simple v2 without a card, which stay under the limit.
 */
import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { nobleProvider } from "../crypto/mod.ts";
import { cardFileText } from "../keys/card.ts";
import { writeKeyFile } from "../keys/identity.ts";
import { DENO, ENTRY, fixedIdentity, ROOT, runCli, spawnCli, tempDir } from "./helpers.ts";
import {
  freePort,
  type Peer,
  sippDir,
  sippTrace,
  startKamailio,
  startProcess,
  startSipp,
  stopKamailio,
  waitForOutput,
} from "./sip/peers.ts";

const tmp = tempDir("missive-sip-cli-");
const file = (name: string) => join(tmp.dir, name);

/** `missive listen …` as a subprocess, once it printed its URL. */
async function startListen(args: string[]): Promise<{ peer: Peer; url: string }> {
  const peer = startProcess(
    DENO,
    ["run", "--allow-all", "--quiet", ENTRY, "listen", ...args],
    ROOT,
  );
  try {
    const m = await waitForOutput(peer, /listening on (sip:\S+)/);
    return { peer, url: m[1] };
  } catch (e) {
    await peer.stop();
    throw e;
  }
}

const portOf = (url: string) => Number(/:(\d+)$/.exec(url)![1]);

describe("missive over SIP (CLI subprocesses, sipp, Kamailio)", () => {
  let armored = "";
  /** For UDP: a v2 message to a classical bob, no card, so receipts fit a datagram too. */
  let armoredSmall = "";

  before(async () => {
    // A classical (format-1) identity for the UDP paths: its receipts stay under 1300 bytes.
    const classic = await fixedIdentity("bob@example.org", 40, { hybrid: false });
    writeFileSync(file("bobc.key"), await writeKeyFile(nobleProvider, classic));
    writeFileSync(file("bobc.card"), await cardFileText(nobleProvider, classic.card));
    for (const name of ["alice", "bob"]) {
      const r = await runCli([
        "keygen",
        "--name",
        `${name}@example.org`,
        "-o",
        file(`${name}.key`),
        "--card-out",
        file(`${name}.card`),
      ]);
      assert.equal(r.code, 0, r.stderr);
    }
    const sealed = await runCli(
      ["seal", "--armor", "--from", file("alice.key"), "--to", file("bob.card")],
      { stdin: "hello over sip\n" },
    );
    assert.equal(sealed.code, 0, sealed.stderr);
    armored = sealed.text;
    const small = await runCli(
      ["seal", "--armor", "--from", file("alice.key"), "--to", file("bobc.card"), "--no-card"],
      { stdin: "hello over sip\n" },
    );
    assert.equal(small.code, 0, small.stderr);
    assert.match(small.stderr, /warning: bob@example\.org has no post-quantum key/);
    armoredSmall = small.text;
  });

  after(() => tmp.cleanup());

  for (const transport of ["udp", "tcp"] as const) {
    it(`sipp UAC (${transport}) → missive listen: 200 OK, printed verified, receipt back`, async () => {
      const udp = transport === "udp";
      const { peer: listen, url } = await startListen([
        "sip:bob@127.0.0.1:0",
        "--key",
        file(udp ? "bobc.key" : "bob.key"),
        ...(udp ? ["--trust", file("alice.card")] : []),
        "--count",
        "1",
      ]);
      const dir = sippDir("uac_message.xml", { "body.txt": udp ? armoredSmall : armored });
      const sipp = startSipp(dir, "uac_message.xml", {
        port: await freePort(),
        remote: `127.0.0.1:${portOf(url)}`,
        service: "bob",
        transport,
      });
      try {
        assert.equal(await sipp.exited, 0, sipp.output() + sippTrace(dir));
        assert.equal(await listen.exited, 0, listen.output());
        assert.match(
          listen.output(),
          udp
            ? /alice@example\.org \(verified, trusted\): hello over sip/
            : /alice@example\.org \(verified, NOT trusted\): hello over sip/,
        );
        assert.match(sippTrace(dir), /SIP\/2\.0 200 OK/);
      } finally {
        await sipp.stop();
        await listen.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it("usage and size errors are one clear line: --register without sip:, UDP over 1300 bytes", async () => {
    const reg = await runCli([
      "listen",
      "tcp://127.0.0.1:0",
      "--key",
      file("bob.key"),
      "--register",
      "sip:127.0.0.1",
    ]);
    assert.equal(reg.code, 2);
    assert.match(reg.stderr, /--register needs a sip: URL/);
    const port = await freePort(); // nothing listens: the size check comes first
    const big = await runCli([
      "send",
      `sip:bob@127.0.0.1:${port};transport=udp`,
      "--from",
      file("alice.key"),
      "--to",
      file("bob.card"),
      "--no-receipt",
    ], { stdin: "x".repeat(2000) });
    assert.equal(big.code, 3, big.stderr);
    assert.match(big.stderr, /1300-byte UDP limit.*pins ;transport=udp.*;transport=tcp/);
    assert.equal(big.stdout.length, 0);
  });

  for (const transport of ["tcp", "udp"] as const) {
    const what = transport === "tcp"
      ? "a default (simple v3) message over 1300 bytes goes over TCP"
      : "simple v2 without a card to ;transport=udp stays on UDP";
    it(`missive send → sipp UAS (${transport}): ${what}; answered 200`, async () => {
      const port = await freePort();
      const dir = sippDir("uas_message.xml");
      const sipp = startSipp(dir, "uas_message.xml", { port, transport });
      const udp = transport === "udp";
      try {
        const sent = await spawnCli([
          "send",
          `sip:bob@127.0.0.1:${port}${udp ? ";transport=udp" : ""}`,
          "--from",
          file("alice.key"),
          "--to",
          file(udp ? "bobc.card" : "bob.card"),
          ...(udp ? ["--stp", "simple/2", "--no-card"] : []),
          "--no-receipt",
        ], { stdin: "hi sipp\n", timeoutMs: 60_000 });
        assert.equal(sent.code, 0, sent.stderr);
        assert.equal(await sipp.exited, 0, sipp.output() + sippTrace(dir));
        assert.match(sippTrace(dir), /Content-Type: application\/missive/);
        assert.match(sippTrace(dir), udp ? /Via: SIP\/2\.0\/UDP / : /Via: SIP\/2\.0\/TCP /);
      } finally {
        await sipp.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it("missive send → Kamailio → missive listen --register: arrives verified, receipt verified", async () => {
    const kamailio = await startKamailio();
    let listen: Peer | undefined;
    try {
      const started = await startListen([
        "sip:bob@127.0.0.1:0",
        "--key",
        file("bob.key"),
        "--trust",
        file("alice.card"),
        "--register",
        `sip:127.0.0.1:${kamailio.port}`,
        "--count",
        "1",
      ]);
      listen = started.peer;
      const sent = await spawnCli([
        "send",
        `sip:bob@127.0.0.1:${kamailio.port}`,
        "--from",
        file("alice.key"),
        "--to",
        file("bob.card"),
      ], { stdin: "through the proxy\n", timeoutMs: 60_000 });
      assert.equal(sent.code, 0, sent.stderr + listen.output());
      assert.match(sent.stderr, /receipt verified/);
      assert.equal(await listen.exited, 0, listen.output());
      assert.match(listen.output(), /alice@example\.org \(verified, trusted\): through the proxy/);
      assert.match(kamailio.output(), /relaying MESSAGE for bob/);
    } finally {
      await listen?.stop();
      await stopKamailio(kamailio);
    }
  });
});
