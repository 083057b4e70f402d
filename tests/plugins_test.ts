/**
 * The example third-party plugins (plugins/passphrase_stp.ts, plugins/json_amp.ts) and
 * module-plugin loading (DESIGN §3): listed and used through the real entry point and
 * in-process, loaded from --plugin, $MISSIVE_PLUGINS, $MISSIVE_CONFIG and ./missive.json,
 * every tampered byte refused, and broken or conflicting plugins refused with exit 11.
 * @module
 */
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { utf8 } from "../core/bytes.ts";
import { encodeCbor } from "../core/cbor.ts";
import { decodeEnvelope, encodeEnvelope } from "../envelope/mod.ts";
import { isMissiveError } from "../core/errors.ts";
import { importPluginModule } from "../plugin/loader.ts";
import { defaultRegistry } from "../mod.ts";
import { openMessage, sealMessage } from "../plugin/message.ts";
import type { CliAmp, StpPlugin } from "../plugin/types.ts";
import { ROOT, runCli, spawnCli, tempDir } from "./helpers.ts";

const STP_PATH = join(ROOT, "plugins", "passphrase_stp.ts");
const AMP_PATH = join(ROOT, "plugins", "json_amp.ts");
const WITH_PLUGINS = ["--plugin", STP_PATH, "--plugin", AMP_PATH];
const PASS = "correct horse battery staple";
/** The smallest scrypt work factor, so loops over many messages stay fast. */
const FAST = ["--option", "work-factor=10"];
const SEAL = ["seal", "--stp", "passphrase", "--amp", "json", ...WITH_PLUGINS];
const OPEN = ["open", ...WITH_PLUGINS];
const DOC = { "z": [1, -2.5, true, null], "a": "héllo 😀", "10": { "9": "x" } };
/** `missive open` pretty-prints the canonical form: members sorted by name. */
const DOC_PRETTY = '{\n  "10": {\n    "9": "x"\n  },\n  "a": "héllo 😀",\n' +
  '  "z": [\n    1,\n    -2.5,\n    true,\n    null\n  ]\n}\n';

const temp = tempDir("missive-plugins-");
after(() => temp.cleanup());
let moduleCounter = 0;
/** Writes a throwaway plugin module (fresh name: runtimes cache modules by URL). */
function tempModule(source: string): string {
  const path = join(temp.dir, `plugin_${moduleCounter++}.ts`);
  writeFileSync(path, source);
  return path;
}

async function loadExamples() {
  const [stp] = (await importPluginModule(STP_PATH)) as StpPlugin[];
  const [amp] = (await importPluginModule(AMP_PATH)) as CliAmp[];
  return { stp, amp, registry: defaultRegistry().register(stp, amp) };
}

async function rejectsWith(promise: Promise<unknown>, code: string, pattern: RegExp) {
  await assert.rejects(
    promise,
    (e) => isMissiveError(e) && e.code === code && pattern.test(e.message),
  );
}

describe("example plugins are listed", () => {
  it("by the real entry point with relative --plugin paths", async () => {
    const r = await spawnCli([
      "plugins",
      "--plugin",
      "plugins/passphrase_stp.ts",
      "--plugin",
      "plugins/json_amp.ts",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.text, /^\s+1000\s+1\s+passphrase\s+encrypted, auth: shared-key/m);
    assert.match(r.text, /^\s+1000\s+1\s+json\s+one JSON value/m);
  });

  it("in-process as JSON, with their properties", async () => {
    const r = await runCli(["plugins", "--json", ...WITH_PLUGINS]);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.text);
    const stp = report.stps.find((p: { type: number }) => p.type === 1000);
    assert.deepEqual([stp.version, stp.name, stp.properties.confidentiality], [
      1,
      "passphrase",
      true,
    ]);
    assert.equal(stp.properties.authentication, "shared-key");
    assert.equal(stp.properties.nonRepudiation, false);
    const amp = report.amps.find((p: { type: number }) => p.type === 1000);
    assert.deepEqual([amp.version, amp.name], [1, "json"]);
  });
});

describe("passphrase STP + json AMP through the CLI", () => {
  it("seal | open round-trips as subprocesses; a wrong passphrase exits 4 with no output", async () => {
    const pass = ["--option", `passphrase=${PASS}`];
    const sealed = await spawnCli([...SEAL, ...pass, "--armor"], { stdin: JSON.stringify(DOC) });
    assert.equal(sealed.code, 0, sealed.stderr);
    assert.match(sealed.text, /^-----BEGIN MISSIVE MESSAGE-----\n/);
    const opened = await spawnCli([...OPEN, ...pass], { stdin: sealed.stdout });
    assert.equal(opened.code, 0, opened.stderr);
    assert.equal(opened.text, DOC_PRETTY);
    assert.match(opened.stderr, /passphrase v1: no sender/);
    const wrong = await spawnCli(
      [...OPEN, "--option", "passphrase=correct horse battery stapler"],
      {
        stdin: sealed.stdout,
      },
    );
    assert.equal(wrong.code, 4, wrong.stderr);
    assert.equal(wrong.stdout.length, 0);
    assert.match(wrong.stderr, /wrong passphrase, or the message was altered/);
  });

  it("reports the claimed sender label as unverified and the JSON value under --json", async () => {
    const opts = ["--option", `passphrase=${PASS}`, "--option", "sender=ops-team"];
    const sealed = await runCli([...SEAL, ...FAST, ...opts], { stdin: '{"ok": true}' });
    assert.equal(sealed.code, 0, sealed.stderr);
    const r = await runCli([...OPEN, "--json", "--option", `passphrase=${PASS}`], {
      stdin: sealed.stdout,
    });
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.text);
    assert.deepEqual(report.message, { ok: true });
    assert.deepEqual([report.stp.name, report.amp.name], ["passphrase", "json"]);
    assert.deepEqual([report.sender.address, report.sender.verified], ["ops-team", false]);
  });

  it("refuses every single-byte change and every truncation", async () => {
    const sealed = await runCli([...SEAL, ...FAST, "--option", `passphrase=${PASS}`], {
      stdin: '["tamper", 1]',
    });
    assert.equal(sealed.code, 0, sealed.stderr);
    const frame = sealed.stdout;
    const outcomes = new Map<number, number>();
    for (let i = 0; i < frame.length; i++) {
      const bad = frame.slice();
      bad[i] ^= 0x01;
      const r = await runCli([...OPEN, "--option", `passphrase=${PASS}`], { stdin: bad });
      assert.ok([3, 4, 8].includes(r.code), `byte ${i}: exit ${r.code} ${r.stderr}`);
      assert.equal(r.stdout.length, 0, `byte ${i} released output`);
      outcomes.set(r.code, (outcomes.get(r.code) ?? 0) + 1);
    }
    // The last 16 bytes are the Poly1305 tag: changing them is an authentication failure.
    for (let i = frame.length - 16; i < frame.length; i++) {
      const bad = frame.slice();
      bad[i] ^= 0x80;
      const r = await runCli([...OPEN, "--option", `passphrase=${PASS}`], { stdin: bad });
      assert.equal(r.code, 4, `tag byte ${i}: ${r.stderr}`);
    }
    assert.ok((outcomes.get(4) ?? 0) >= 16, "ciphertext changes must fail authentication");
    for (let n = 1; n < frame.length; n++) {
      const r = await runCli([...OPEN, "--option", `passphrase=${PASS}`], {
        stdin: frame.subarray(0, n),
      });
      assert.notEqual(r.code, 0, `prefix of ${n} bytes opened`);
      assert.equal(r.stdout.length, 0);
    }
  });

  it("binds the envelope sequence number", async () => {
    const sealed = await runCli(
      [...SEAL, ...FAST, "--seq", "5", "--option", `passphrase=${PASS}`],
      {
        stdin: "42",
      },
    );
    assert.equal(sealed.code, 0, sealed.stderr);
    const envelope = decodeEnvelope(sealed.stdout);
    const moved = encodeEnvelope({ ...envelope, sequenceNumber: 6 });
    const r = await runCli([...OPEN, "--option", `passphrase=${PASS}`], { stdin: moved });
    assert.equal(r.code, 4, r.stderr);
    const same = await runCli([...OPEN, "--option", `passphrase=${PASS}`], {
      stdin: sealed.stdout,
    });
    assert.equal(same.text, "42\n");
  });

  it("gives usage errors for missing, short or unknown options and bad JSON input", async () => {
    const cases: [string[], string, number, RegExp][] = [
      [[], "{}", 2, /a passphrase is required: --option passphrase=/],
      [["--option", "passphrase=short"], "{}", 2, /shorter than 8 characters/],
      [
        ["--option", `passphrase=${PASS}`, "--option", "pasphrase=x"],
        "{}",
        2,
        /unknown option "pasphrase"/,
      ],
      [
        ["--option", `passphrase=${PASS}`, "--option", "work-factor=21"],
        "{}",
        2,
        /work-factor must be 10..20/,
      ],
      [["--option", `passphrase=${PASS}`], "{not json", 3, /json: input is not valid JSON/],
      [
        ["--option", `passphrase=${PASS}`],
        "[12345678901234567890]",
        3,
        /cannot be carried exactly/,
      ],
      [["--option", `passphrase=${PASS}`, "--field", "a=b"], "{}", 2, /json: takes no --field/],
    ];
    for (const [args, stdin, code, message] of cases) {
      const r = await runCli([...SEAL, ...args], { stdin });
      assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(r.stdout.length, 0);
    }
  });
});

describe("passphrase STP payload decoder", () => {
  const header = { protocolType: 1000, protocolVersion: 1 };
  const payload = (entries: [number, unknown][]) =>
    encodeEnvelope({ ...header, payload: encodeCbor(new Map(entries) as Map<number, never>) });
  const good: [number, unknown][] = [
    [1, 10],
    [2, new Uint8Array(16)],
    [3, new Uint8Array(24)],
    [4, new Uint8Array(40)],
  ];
  const options = { passphrase: PASS };

  it("refuses bad fields before deriving a key, and a forged ciphertext after", async () => {
    const { registry } = await loadExamples();
    const open = (entries: [number, unknown][]) =>
      openMessage(payload(entries), { registry, optionPairs: options });
    const swap = (key: number, value: unknown) =>
      good.map(([k, v]) => [k, k === key ? value : v]) as [number, unknown][];
    // logN above 20 would cost gigabytes: it must be refused as malformed, not handed on.
    await rejectsWith(open(swap(1, 21)), "malformed", /field 1: out of range 0..20/);
    await rejectsWith(open(swap(1, 9)), "malformed", /work factor 9 is below 10/);
    await rejectsWith(open(swap(2, new Uint8Array(15))), "malformed", /field 2: expected 16 bytes/);
    await rejectsWith(open(swap(3, new Uint8Array(12))), "malformed", /field 3: expected 24 bytes/);
    await rejectsWith(open(swap(4, new Uint8Array(15))), "malformed", /field 4: length 15/);
    await rejectsWith(open([...good, [5, 0]]), "malformed", /field 5: unknown field/);
    await rejectsWith(open(good.slice(1)), "malformed", /field 1: missing/);
    await rejectsWith(open(good), "auth-failed", /wrong passphrase, or the message was altered/);
    await rejectsWith(openMessage(payload(good), { registry }), "usage", /passphrase is required/);
  });

  it("round-trips random JSON values through the library API", async () => {
    const { stp, amp, registry } = await loadExamples();
    const next = seeded(7);
    for (let i = 0; i < 20; i++) {
      const message = randomJson(next, 3);
      const sealed = await sealMessage({
        stp,
        amp,
        message,
        optionPairs: { passphrase: PASS, "work-factor": "10" },
      });
      const opened = await openMessage(sealed, { registry, optionPairs: options });
      assert.deepEqual(opened.message, JSON.parse(JSON.stringify(message)));
      assert.equal(opened.sender, undefined);
    }
  });
});

describe("json AMP", () => {
  it("encodes canonically and decodes only canonical, valid, bounded JSON", async () => {
    const { amp } = await loadExamples();
    const text = (b: Uint8Array) => new TextDecoder().decode(b);
    assert.equal(
      text(amp.encode({ b: 1, a: [true, null, "é"], "10": 0.5 })),
      '{"10":0.5,"a":[true,null,"é"],"b":1}',
    );
    assert.equal(text(amp.toOutput({ a: 1 })), '{\n  "a": 1\n}\n');
    const deep = (n: number) => "[".repeat(n) + "]".repeat(n);
    assert.deepEqual(amp.decode(utf8(deep(64))), JSON.parse(deep(64)));
    const bad: [Uint8Array, string, RegExp][] = [
      [utf8('{ "a":1}'), "malformed", /not in canonical form/],
      [utf8('{"b":1,"a":2}'), "malformed", /not in canonical form/],
      [utf8('{"a":1,"a":1}'), "malformed", /not in canonical form/],
      [utf8("1.0"), "malformed", /not in canonical form/],
      [utf8("{"), "malformed", /not valid JSON/],
      [utf8(""), "malformed", /not valid JSON/],
      [new Uint8Array([0x22, 0xff, 0x22]), "malformed", /not valid UTF-8/],
      [utf8('"\\ud800"'), "malformed", /lone UTF-16 surrogate/],
      [utf8("1e400"), "malformed", /number Infinity/],
      [utf8(deep(65)), "malformed", /nested deeper than 64/],
      [utf8(`"${"x".repeat(4 * 1024 * 1024)}"`), "too-large", /longer than 4194304 bytes/],
    ];
    for (const [body, code, message] of bad) {
      assert.throws(
        () => amp.decode(body),
        (e) => isMissiveError(e) && e.code === code && message.test(e.message),
      );
    }
    const cyclic: unknown[] = [];
    cyclic.push(cyclic);
    for (const value of [undefined, NaN, 1n, () => 1, new Map(), new Date(0), [, 1], cyclic]) {
      assert.throws(() => amp.encode(value), (e) => isMissiveError(e, "usage"), String(value));
    }
  });

  it("round-trips random values: decode(encode(v)) equals v and re-encodes identically", async () => {
    const { amp } = await loadExamples();
    const next = seeded(42);
    for (let i = 0; i < 300; i++) {
      const value = randomJson(next, 4);
      const body = amp.encode(value);
      const decoded = amp.decode(body);
      assert.deepEqual(decoded, JSON.parse(JSON.stringify(value)));
      assert.deepEqual(amp.encode(decoded), body);
      assert.deepEqual(amp.toJson(decoded), decoded);
    }
  });
});

describe("module plugin loading", () => {
  it("from $MISSIVE_PLUGINS and from the $MISSIVE_CONFIG file", async () => {
    const viaEnv = await runCli(["plugins", "--json"], {
      env: { MISSIVE_PLUGINS: `${STP_PATH}:${AMP_PATH}` },
    });
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
    assert.deepEqual(namesOf(viaEnv.text), ["passphrase", "json"]);
    // Relative paths in a config file resolve against its folder; the copies outside the
    // tree load because the plugin files import nothing.
    const dir = join(temp.dir, "config");
    mkdirSync(dir);
    copyFileSync(STP_PATH, join(dir, "passphrase_stp.ts"));
    copyFileSync(AMP_PATH, join(dir, "json_amp.ts"));
    const config = join(dir, "missive.json");
    writeFileSync(config, JSON.stringify({ plugins: ["./passphrase_stp.ts", "json_amp.ts"] }));
    const viaConfig = await runCli(["plugins", "--json"], { env: { MISSIVE_CONFIG: config } });
    assert.equal(viaConfig.code, 0, viaConfig.stderr);
    assert.deepEqual(namesOf(viaConfig.text), ["passphrase", "json"]);
    // The real entry point takes it with --config (never ./missive.json from its folder).
    const pass = ["--option", `passphrase=${PASS}`, ...FAST];
    const seal = ["seal", "--stp", "passphrase", "--amp", "json", ...pass];
    const sealed = await spawnCli([...seal, "--config", config], { cwd: dir, stdin: "[1,2,3]" });
    assert.equal(sealed.code, 0, sealed.stderr);
    const opened = await spawnCli(["open", ...pass, "--config", config], {
      cwd: dir,
      stdin: sealed.stdout,
    });
    assert.equal(opened.code, 0, opened.stderr);
    assert.deepEqual(JSON.parse(opened.text), [1, 2, 3]);
    const ignored = await spawnCli(seal, { cwd: dir, stdin: "[1,2,3]" });
    assert.equal(ignored.code, 2, "./missive.json in the working folder is not read");
    assert.match(ignored.stderr, /no STP named "passphrase"/);
  });

  it("refuses a plugin that claims a taken (type, version) with exit 11", async () => {
    const impostor = tempModule(`export default {
      kind: "stp", type: 2, version: 2, name: "impostor", description: "takes simple v2",
      properties: { confidentiality: false, authentication: "none", nonRepudiation: false,
        forwardSecrecy: false, multiRecipient: false, hiddenRecipients: false },
      seal: () => Promise.resolve(new Uint8Array()), open: () => Promise.reject(new Error("no")),
    };\n`);
    const r = await spawnCli(["plugins", "--plugin", impostor]);
    assert.equal(r.code, 11, r.stderr);
    assert.match(r.stderr, /stp \(2, 2\) "impostor" is already registered as "simple"/);
    assert.equal(r.stdout.length, 0);
    const twice = await runCli(["plugins", ...WITH_PLUGINS], {
      env: { MISSIVE_PLUGINS: STP_PATH },
    });
    assert.equal(twice.code, 11, twice.stderr);
    assert.match(
      twice.stderr,
      /stp \(1000, 1\) "passphrase" is already registered as "passphrase"/,
    );
  });

  it("refuses broken modules with exit 11 and a message naming the module", async () => {
    const cases: [string, RegExp][] = [
      ["export const plugin = 1;\n", /no default export/],
      ['export default () => { throw new Error("boom"); };\n', /factory failed: boom/],
      [
        "export default async () => { await 0; throw new TypeError('late'); };\n",
        /factory failed: late/,
      ],
      ["export default [];\n", /exports no plugins/],
      [
        'export default { kind: "amp", type: 1001, version: 1, name: "half" };\n',
        /missing method encode\(\)/,
      ],
      [
        'export default { kind: "tls", type: 1001, version: 1, name: "x" };\n',
        /kind must be "stp" or "amp"/,
      ],
      ["export default {{;\n", /cannot load/],
    ];
    for (const [source, message] of cases) {
      const path = tempModule(source);
      const r = await runCli(["plugins", "--plugin", path]);
      assert.equal(r.code, 11, `${source}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    const missing = await runCli(["plugins", "--plugin", join(temp.dir, "absent.ts")]);
    assert.equal(missing.code, 11, missing.stderr);
    assert.match(missing.stderr, /absent\.ts: cannot load/);
  });
});

function namesOf(report: string): string[] {
  const { stps, amps } = JSON.parse(report) as {
    stps: { type: number; name: string }[];
    amps: { type: number; name: string }[];
  };
  return [...stps, ...amps].filter((p) => p.type >= 1000).map((p) => p.name);
}

/** A small deterministic PRNG (xorshift32) so failures reproduce. */
function seeded(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

const CHARS = ["a", "Z", "0", " ", '"', "\\", "/", "\n", "\u0000", "\u2028", "é", "€", "😀", "𝄞"];

function randomString(next: () => number): string {
  let s = "";
  for (let n = Math.floor(next() * 8); n > 0; n--) s += CHARS[Math.floor(next() * CHARS.length)];
  return s;
}

function randomJson(next: () => number, depth: number): unknown {
  const pick = Math.floor(next() * (depth > 0 ? 8 : 6));
  switch (pick) {
    case 0:
      return null;
    case 1:
      return next() < 0.5;
    case 2:
      return Math.floor((next() - 0.5) * 2 ** 53);
    case 3:
      return (next() - 0.5) * 10 ** Math.floor(next() * 40 - 20);
    case 4:
    case 5:
      return randomString(next);
    case 6:
      return Array.from({ length: Math.floor(next() * 4) }, () => randomJson(next, depth - 1));
    default:
      return Object.fromEntries(
        Array.from({ length: Math.floor(next() * 4) }, () => [
          next() < 0.3 ? String(Math.floor(next() * 20)) : randomString(next),
          randomJson(next, depth - 1),
        ]),
      );
  }
}
