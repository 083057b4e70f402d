/**
 * Executable plugins (DESIGN §3, way 3; docs/PLUGINS.md "Executable plugins: the
 * protocol"): the Python examples plugins/missive-plugin-rot13 (AMP) and
 * plugins/missive-plugin-hostbox (STP, host calls only) listed, scanned and used through
 * the real entry point, the compiled binary and in-process; every tampered byte refused;
 * broken plugins (tests/fixtures/bad-plugins) refused with one `plugin` line and exit 11.
 * @module
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { after, describe, it } from "node:test";
import { concatBytes, utf8 } from "../core/bytes.ts";
import { type CborMap, type CborValue, encodeCbor, transcript } from "../core/cbor.ts";
import { nobleProvider } from "../crypto/mod.ts";
import { decodeEnvelope, encodeEnvelope } from "../envelope/mod.ts";
import { isMissiveError } from "../core/errors.ts";
import { importPluginModule } from "../plugin/loader.ts";
import { defaultRegistry, openMessage, sealMessage } from "../mod.ts";
import { loadExecPlugins, stopAllPlugins } from "../plugin/exec/mod.ts";
import { FrameReader, MAX_FRAME } from "../plugin/exec/_frame.ts";
import { hostCalls, LABEL_EXEC_AGREE, LABEL_EXEC_SIGN } from "../plugin/exec/_hostcalls.ts";
import type { AmpPlugin, CliAmp, StpPlugin } from "../plugin/types.ts";
import {
  type CliResult,
  compiledBinary,
  fixedIdentity,
  ROOT,
  spawnCli,
  tempDir,
} from "./helpers.ts";

const PLUGINS_DIR = join(ROOT, "plugins");
const ROT13 = join(PLUGINS_DIR, "missive-plugin-rot13");
const HOSTBOX = join(PLUGINS_DIR, "missive-plugin-hostbox");
const BAD = join(ROOT, "tests", "fixtures", "bad-plugins");
/** System tools (python3, sh) and the example plugins; no deno, no bun. */
const PLUGIN_PATH = `${PLUGINS_DIR}:/usr/bin:/bin`;

const temp = tempDir("missive-exec-plugin-");
after(() => {
  stopAllPlugins();
  temp.cleanup();
});

/** Runs `deno run cmd/main.ts` in the temporary folder, PATH holding the examples. */
function cli(args: string[], stdin?: Uint8Array | string, env: Record<string, string> = {}) {
  return spawnCli(args, { cwd: temp.dir, stdin, env: { PATH: PLUGIN_PATH, ...env } });
}

let keys: Promise<void> | undefined;
/** alice and bob: `missive keygen` in the temporary folder. */
function keygen(): Promise<void> {
  keys ??= (async () => {
    for (const name of ["alice", "bob"]) {
      const r = await cli(["keygen", "--name", `${name}@example.org`, "-o", `${name}.key`]);
      assert.equal(r.code, 0, r.stderr);
      writeFileSync(join(temp.dir, `${name}.card`), r.stdout);
    }
  })();
  return keys;
}

/** One `plugin` error line, exit 11, nothing on stdout. */
function assertPluginError(r: CliResult, pattern: RegExp) {
  assert.equal(r.code, 11, r.stderr);
  assert.equal(r.stdout.length, 0, "nothing on stdout");
  assert.match(r.stderr, /^missive: plugin [^\n]*\n$/, "exactly one line");
  assert.match(r.stderr, pattern);
}

describe("executable plugins through the real entry point", () => {
  it("`plugins --plugin PATH` lists the rot13 AMP", async () => {
    const r = await cli(["plugins", "--plugin", ROT13]);
    assert.equal(r.code, 0, r.stderr);
    const [, amps] = r.text.split("AMPs");
    assert.match(amps, /^ +1001 +1 +rot13 +text with letters rotated by 13/m);
  });

  it("`plugins --scan --json --plugin exec:hostbox` finds both on PATH, loads only hostbox", async () => {
    const r = await cli(["plugins", "--scan", "--json", "--plugin", "exec:hostbox"]);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.text);
    const hostbox = report.stps.find((p: { name: string }) => p.name === "hostbox");
    assert.deepEqual([hostbox.type, hostbox.version], [1001, 1]);
    assert.deepEqual(hostbox.properties, {
      confidentiality: true,
      authentication: "signature",
      nonRepudiation: true,
      forwardSecrecy: false,
      multiRecipient: false,
      hiddenRecipients: false,
    });
    assert.equal(report.amps.some((p: { name: string }) => p.name === "rot13"), false);
    assert.deepEqual(report.executablesOnPath, [
      { name: "hostbox", path: HOSTBOX },
      { name: "rot13", path: ROT13 },
    ]);
  });

  it("seal | open round trip with hostbox + rot13 from MISSIVE_PLUGINS and --plugin", async () => {
    await keygen();
    const sealed = await cli(
      ["seal", "--stp", "hostbox", "--amp", "rot13", "--from", "alice.key", "--to", "bob.card"],
      "hello bob ✓\n",
      { MISSIVE_PLUGINS: "exec:hostbox:exec:rot13" },
    );
    assert.equal(sealed.code, 0, sealed.stderr);
    const env = decodeEnvelope(sealed.stdout);
    assert.deepEqual([env.protocolType, env.protocolVersion], [1001, 1]);
    const plugins = ["--plugin", "exec:hostbox", "--plugin", ROT13];
    const opened = await cli(
      ["open", ...plugins, "--key", "bob.key", "--trust", "alice.card"],
      sealed.stdout,
    );
    assert.equal(opened.code, 0, opened.stderr);
    assert.equal(opened.text, "hello bob ✓\n");
    assert.match(opened.stderr, /hostbox v1 from alice@example\.org .*signature verified, trusted/);
    const json = await cli(["open", ...plugins, "--json", "--key", "bob.key"], sealed.stdout);
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.text).message, { text: "hello bob ✓\n" });
    const wrong = await cli(["open", ...plugins, "--key", "alice.key"], sealed.stdout);
    assert.equal(wrong.code, 4, wrong.stderr);
    assert.equal(wrong.stdout.length, 0);
    assert.match(wrong.stderr, /^missive: plugin missive-plugin-hostbox: [^\n]*\n$/);
  });

  const bad: [string, RegExp, Record<string, string>?][] = [
    ["exits", /missive-plugin-exits: exited with exit code 3 \(its stderr: exits: cannot start/],
    ["garbage", /missive-plugin-garbage: sent a message that is not deterministic CBOR/],
    ["oversize", /missive-plugin-oversize: announced a 4294967280-byte message \(limit \d+\)/],
    ["silent", /missive-plugin-silent: no answer to "hello" within 0\.5 s/, {
      MISSIVE_PLUGIN_TIMEOUT: "0.5",
    }],
    [
      "impostor",
      /missive-plugin-impostor: amp \(1, 1\) "impostor" is already registered as "text"/,
    ],
  ];
  for (const [name, pattern, env] of bad) {
    it(`a plugin that is broken (${name}) is refused at load`, async () => {
      assertPluginError(
        await cli(["plugins", "--plugin", join(BAD, `missive-plugin-${name}`)], undefined, env),
        pattern,
      );
    });
  }

  it("a plugin that dies, lies or breaks lockstep is a plugin error in that call", async () => {
    const seal = (name: string) =>
      cli([
        "seal",
        "--stp",
        "plain",
        "--amp",
        name,
        "--plugin",
        join(BAD, `missive-plugin-${name}`),
      ]);
    assertPluginError(
      await seal("dies"),
      /missive-plugin-dies: exited with exit code 7 \(its stderr: dies: out of memory/,
    );
    assertPluginError(await seal("liar"), /"liar": bad "encode" reply: encode: not a byte string/);
    assertPluginError(
      await seal("chatty"),
      /missive-plugin-chatty: sent a message nobody asked for/,
    );
    assertPluginError(
      await seal("rude"),
      /missive-plugin-rude: made a host call during "fromInput"/,
    );
  });

  it("exec:NAME not on PATH, a non-executable path and a bad timeout are refused", async () => {
    assertPluginError(
      await cli(["plugins", "--plugin", "exec:nope"]),
      /exec:nope: no executable missive-plugin-nope on PATH/,
    );
    const notExec = join(temp.dir, "missive-plugin-notexec");
    writeFileSync(notExec, "#!/bin/sh\n");
    const r = await cli(["plugins", "--plugin", notExec]);
    assert.equal(r.code, 11, r.stderr);
    const t = await cli(["plugins", "--plugin", ROT13], undefined, { MISSIVE_PLUGIN_TIMEOUT: "x" });
    assert.equal(t.code, 2, t.stderr);
    assert.match(t.stderr, /^missive: MISSIVE_PLUGIN_TIMEOUT must be seconds/);
  });
});

// In-process: the examples loaded once (stopped in `after`), as conformance_test does.
const [stp] = (await importPluginModule(HOSTBOX)) as StpPlugin[];
const [amp] = (await importPluginModule(ROT13)) as CliAmp[];
const registry = defaultRegistry().registerExternal(stp, amp);
const text = registry.find("amp", "text/1");
const alice = await fixedIdentity("alice@example.org", 1);
const bob = await fixedIdentity("bob@example.org", 3);
const carol = await fixedIdentity("carol@example.org", 5);
const seal = (message: unknown = { text: "conformance" }, a: AmpPlugin = text) =>
  sealMessage({ registry, stp, amp: a, message, sender: alice, recipients: [bob.card] });
const open = (frame: Uint8Array, as = bob) =>
  openMessage(frame, { registry, identity: as, trusted: [alice.card] });

describe("executable plugins in-process (conformance checks)", () => {
  it("round trip keeps AMP pair, body, nonce, timestamp; the sender is verified", async () => {
    const sealed = await sealMessage({
      registry,
      stp,
      amp: text,
      message: { text: "round trip ✓" },
      sender: alice,
      recipients: [bob.card],
      now: 1_800_000_000_123,
    });
    const opened = await open(sealed);
    assert.deepEqual(opened.message, { text: "round trip ✓" });
    assert.equal(opened.inner.timestamp, 1_800_000_000_123);
    assert.equal(opened.inner.nonce.length, 16);
    assert.equal(opened.sender?.verified, true);
    assert.equal(opened.sender?.trusted, true);
    assert.equal(opened.sender?.address, "alice@example.org");
  });

  it("any single-byte change and any truncation fails with a MissiveError", async () => {
    const sealed = await seal();
    for (let i = 0; i < sealed.length; i++) {
      const bad = sealed.slice();
      bad[i] ^= 0x41;
      await assert.rejects(open(bad), isMissiveError, `byte ${i} flip accepted`);
    }
    for (let n = 0; n < sealed.length; n++) {
      await assert.rejects(open(sealed.subarray(0, n)), isMissiveError, `truncated to ${n}`);
    }
  });

  it("unknown payload fields, the wrong recipient and a missing sender are refused", async () => {
    const env = decodeEnvelope(await seal());
    const grease = concatBytes(
      new Uint8Array([env.payload[0] + 1]),
      env.payload.subarray(1),
      encodeCbor(99),
      encodeCbor("grease"),
    );
    await assert.rejects(
      open(encodeEnvelope({ ...env, payload: grease })),
      (e) => isMissiveError(e, "malformed") && /hostbox: payload must be/.test(e.message),
    );
    await assert.rejects(open(await seal(), carol), (e) => isMissiveError(e, "auth-failed"));
    await assert.rejects(
      sealMessage({ registry, stp, amp: text, message: { text: "x" }, recipients: [bob.card] }),
      (e) => isMissiveError(e, "usage") && /needs --from/.test(e.message),
    );
  });

  it("the rot13 AMP: fromInput → seal → open → toJson/toOutput, body really rotated", async () => {
    const message = await amp.fromInput(utf8("Hello, World ✓"), {});
    assert.equal(message, "Hello, World ✓");
    const sealed = await sealMessage({
      registry,
      stp: registry.find("stp", "plain"),
      amp,
      message,
    });
    assert.ok(decodeEnvelope(sealed).payload.join(",").includes(utf8("Uryyb, Jbeyq").join(",")));
    const opened = await openMessage(sealed, { registry });
    assert.deepEqual(await amp.toJson(opened.message), { text: "Hello, World ✓" });
    assert.deepEqual(await amp.toOutput(opened.message), utf8("Hello, World ✓"));
    await assert.rejects(
      Promise.resolve(amp.fromInput(utf8("x"), { title: "t" })),
      (e) => isMissiveError(e, "usage") && /takes no --field/.test(e.message),
    );
  });

  it("rot13 decode: garbage and truncated bodies fail with a MissiveError or decode consistently", async () => {
    const good = await amp.encode("héllo" as never);
    const inputs = [
      new Uint8Array([0xff, 0xfe, 0xfd]),
      new Uint8Array([0xd8, 0x80]),
      new Uint8Array(1024 * 1024 + 1).fill(0x61),
      ...Array.from({ length: good.length }, (_, n) => good.subarray(0, n)),
    ];
    for (const input of inputs) {
      try {
        const decoded = await amp.decode(input);
        assert.deepEqual(await amp.decode(await amp.encode(decoded as never)), decoded);
      } catch (e) {
        assert.ok(isMissiveError(e, "malformed") || isMissiveError(e, "too-large"), `${e}`);
      }
    }
  });

  it("a dead plugin is not restarted: every later call fails naming the first cause", async () => {
    const [dies] = await loadExecPlugins(join(BAD, "missive-plugin-dies"), "test");
    const first = /missive-plugin-dies: exited with exit code 7/;
    for (let i = 0; i < 2; i++) {
      await assert.rejects(
        Promise.resolve((dies as AmpPlugin).encode("x")),
        (e) => isMissiveError(e, "plugin") && first.test(e.message),
      );
    }
  });

  it("a timeout kills the plugin and is a plugin error", async () => {
    await assert.rejects(
      loadExecPlugins(join(BAD, "missive-plugin-silent"), "test", ROOT, {
        ...process.env,
        MISSIVE_PLUGIN_TIMEOUT: "0.2",
      }),
      (e) => isMissiveError(e, "plugin") && /no answer to "hello" within 0\.2 s/.test(e.message),
    );
  });
});

describe("host calls", () => {
  const call = (fields: Record<string, CborValue>): CborMap => new Map(Object.entries(fields));
  const calls = (type: number, identity = alice) =>
    hostCalls({
      type,
      version: 1,
      crypto: nobleProvider,
      identity,
      random: (n) => new Uint8Array(n).fill(7),
      ephemeralAgreement: (peer) => nobleProvider.x25519Ephemeral(peer),
    });

  it("sign is bound to the plugin's label and numbers, never a raw signature", async () => {
    const data = utf8("payload");
    const sig = (await calls(1001)(call({ host: "sign", data }))) as Uint8Array;
    const key = alice.card.signingKey;
    assert.equal(await nobleProvider.ed25519Verify(key, data, sig), false);
    assert.equal(
      await nobleProvider.ed25519Verify(key, transcript(LABEL_EXEC_SIGN, 1001, 1, data), sig),
      true,
    );
    const verify = call({ host: "verify", key, data, signature: sig });
    assert.equal(await calls(1001)(verify), true);
    assert.equal(await calls(1002)(verify), false, "another plugin number does not verify");
  });

  it("ephemeral and agree derive the same key; it is neither raw X25519 nor shared across plugins", async () => {
    const peer = bob.card.agreementKey;
    const eph = (await calls(1001)(call({ host: "ephemeral", peer }))) as CborMap;
    const publicKey = eph.get("publicKey") as Uint8Array;
    const agreed = await calls(1001, bob)(call({ host: "agree", peer: publicKey }));
    assert.deepEqual(agreed, eph.get("key"));
    const raw = await nobleProvider.x25519(bob.agreementKey, publicKey);
    assert.notDeepEqual(agreed, raw);
    assert.deepEqual(
      agreed,
      await nobleProvider.hkdfSha256(
        raw,
        new Uint8Array(0),
        transcript(LABEL_EXEC_AGREE, 1001, 1),
        32,
      ),
    );
    assert.notDeepEqual(await calls(1002, bob)(call({ host: "agree", peer: publicKey })), agreed);
  });

  it("refuses unknown calls, bad arguments and key operations without an identity", async () => {
    const none = hostCalls({
      type: 1001,
      version: 1,
      crypto: nobleProvider,
      random: (n) => new Uint8Array(n),
    });
    const refuses = (h: typeof none, c: CborMap, code: string) =>
      assert.rejects(h(c), (e) => isMissiveError(e) && e.code === code, String(c.get("host")));
    await refuses(none, call({ host: "sign", data: utf8("x") }), "key");
    await refuses(none, call({ host: "agree", peer: new Uint8Array(32) }), "key");
    await refuses(none, call({ host: "ephemeral", peer: new Uint8Array(32) }), "usage");
    await refuses(none, call({ host: "shell", command: "rm -rf /" }), "usage");
    await refuses(none, call({ host: "random", length: 65_537 }), "malformed");
    await refuses(none, call({ host: "aead-seal", key: new Uint8Array(31) }), "malformed");
    await refuses(none, call({ host: "card", card: utf8("not a card") }), "malformed");
    const key = new Uint8Array(32);
    const nonce = new Uint8Array(24);
    const sealed = (await none(
      call({ host: "aead-seal", key, nonce, plaintext: utf8("hi"), aad: utf8("a") }),
    )) as Uint8Array;
    const open = (aad: Uint8Array) =>
      call({ host: "aead-open", key, nonce, ciphertext: sealed, aad });
    assert.deepEqual(await none(open(utf8("a"))), utf8("hi"));
    await refuses(none, open(utf8("b")), "auth-failed");
  });
});

describe("the frame reader", () => {
  const frame = (body: Uint8Array) => {
    const out = new Uint8Array(4 + body.length);
    new DataView(out.buffer).setUint32(0, body.length);
    out.set(body, 4);
    return out;
  };

  it("reassembles messages split at every byte", () => {
    const two = concatBytes(
      frame(encodeCbor(new Map([["ok", 1]]))),
      frame(encodeCbor(new Map([["ok", utf8("x")]]))),
    );
    for (let cut = 0; cut <= two.length; cut++) {
      const reader = new FrameReader();
      const got = [...reader.push(two.slice(0, cut)), ...reader.push(two.slice(cut))];
      assert.equal(got.length, 2, `cut at ${cut}`);
      assert.deepEqual(got[0], new Map([["ok", 1]]));
      assert.equal(reader.pending, 0);
    }
  });

  it("refuses an oversize length before the body arrives, non-CBOR and non-maps", () => {
    const big = new Uint8Array(4);
    new DataView(big.buffer).setUint32(0, MAX_FRAME + 1);
    assert.throws(() => new FrameReader().push(big), /announced a \d+-byte message/);
    assert.throws(() => new FrameReader().push(frame(utf8("nope"))), /not deterministic CBOR/);
    assert.throws(() => new FrameReader().push(frame(encodeCbor([1]))), /not a CBOR map/);
    // Non-deterministic: 1 written in two bytes.
    const long = frame(new Uint8Array([0xa1, 0x62, 0x6f, 0x6b, 0x18, 0x01]));
    assert.throws(() => new FrameReader().push(long), /not deterministic CBOR/);
  });
});

describe("executable plugins in the compiled binary (no deno or bun on PATH)", () => {
  let built: Promise<string> | undefined;
  const binary = () => built ??= compiledBinary(temp.dir, "missive-bin");
  const run = async (args: string[], stdin?: Uint8Array | string, env = {}) =>
    spawnCli(args, {
      binary: await binary(),
      cwd: temp.dir,
      stdin,
      env: { PATH: PLUGIN_PATH, ...env },
      timeoutMs: 120_000,
    });

  it("seal | open through exec:hostbox and exec:rot13; a broken plugin exits 11", async () => {
    await keygen();
    const plugins = ["--plugin", "exec:hostbox", "--plugin", "exec:rot13"];
    const sealed = await run(
      ["seal", ...plugins, "--stp", "hostbox", "--amp", "rot13", "--from", "alice.key"].concat(
        ["--to", "bob.card"],
      ),
      "from the binary\n",
    );
    assert.equal(sealed.code, 0, sealed.stderr);
    const opened = await run(["open", ...plugins, "--key", "bob.key"], sealed.stdout);
    assert.equal(opened.code, 0, opened.stderr);
    assert.equal(opened.text, "from the binary\n");
    assertPluginError(
      await run(["plugins", "--plugin", join(BAD, "missive-plugin-oversize")]),
      /announced a 4294967280-byte message/,
    );
  });
});
