import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encodeEnvelope } from "../envelope/mod.ts";
import { MissiveError } from "../core/errors.ts";
import {
  defaultRegistry,
  openMessage,
  plainV1,
  Registry,
  sealMessage,
  simpleV2,
  textV1,
} from "../mod.ts";
import { configuredPluginPaths } from "../plugin/loader.ts";
import { fixedIdentity } from "./helpers.ts";

const code = (c: string) => (e: unknown) => e instanceof MissiveError && e.code === c;

describe("registry", () => {
  it("lists the built-ins by (type, version)", () => {
    const { stps, amps } = defaultRegistry().list();
    assert.deepEqual(stps.map((p) => [p.type, p.version, p.name]), [
      [2, 1, "simple"],
      [2, 2, "simple"],
      [2, 3, "simple"],
      [3, 1, "group"],
      [3, 2, "group"],
      [4, 1, "auth"],
      [6, 1, "psk"],
      [6, 2, "psk"],
      [7, 1, "plain"],
      [8, 1, "age"],
      [9, 1, "ratchet"],
    ]);
    assert.deepEqual(amps.map((p) => [p.type, p.version, p.name]), [
      [1, 1, "text"],
      [1, 2, "text"],
      [2, 1, "notification"],
      [3, 1, "receipt"],
      [4, 1, "presence"],
      [5, 1, "control"],
      [6, 1, "file"],
      [7, 1, "stream"],
    ]);
  });

  it("refuses a pair already taken, naming both plugins", () => {
    const r = defaultRegistry();
    assert.throws(
      () => r.register({ ...simpleV2, name: "impostor" }),
      (e) =>
        code("plugin")(e) &&
        /\(2, 2\) "impostor" is already registered as "simple"/.test((e as Error).message),
    );
    assert.throws(() => r.register({ ...textV1 }), code("plugin"));
  });

  it("refuses malformed plugins", () => {
    const r = new Registry();
    for (
      const p of [
        { ...textV1, type: -1 },
        { ...textV1, version: 1.5 },
        { ...textV1, name: "Bad Name" },
        { ...textV1, decode: undefined },
        { kind: "nope" },
      ]
    ) {
      assert.throws(() => r.register(p as never), code("plugin"));
    }
  });

  it("finds plugins by name, name/version, name/vN and type/version", () => {
    const r = defaultRegistry();
    assert.equal(r.find("stp", "simple").version, 3);
    assert.equal(r.find("stp", "simple/1").version, 1);
    assert.equal(r.find("stp", "simple/v1").version, 1);
    assert.equal(r.find("stp", "2/1").name, "simple");
    assert.equal(r.find("amp", "text").version, 2);
    assert.throws(() => r.find("stp", "nope"), code("usage"));
  });

  it("names the unknown pair when opening an envelope of an unknown STP or AMP", async () => {
    const r = defaultRegistry();
    const frame = encodeEnvelope({
      protocolType: 99,
      protocolVersion: 3,
      payload: new Uint8Array(),
    });
    await assert.rejects(
      openMessage(frame, { registry: r }),
      (e) => code("unknown-protocol")(e) && /type 99, version 3/.test((e as Error).message),
    );
    const alice = await fixedIdentity("alice@example.org", 1);
    const sealed = await sealMessage({
      stp: r.find("stp", "plain"),
      amp: { ...textV1, type: 4242 },
      message: { text: "x" },
      sender: alice,
    });
    await assert.rejects(
      openMessage(sealed, { registry: r }),
      (e) =>
        code("unknown-protocol")(e) && /AMP \(type 4242, version 1\)/.test((e as Error).message),
    );
  });

  it("binds the envelope header: a payload moved under another version fails", async () => {
    const r = defaultRegistry();
    const [alice, bob] = [
      await fixedIdentity("alice@example.org", 1),
      await fixedIdentity("bob@example.org", 3),
    ];
    for (const seq of [undefined, 9]) {
      const v2 = await sealMessage({
        stp: r.find("stp", "simple/2"),
        amp: textV1,
        message: { text: "hi" },
        sender: alice,
        recipients: [bob.card],
        sequenceNumber: seq,
      });
      const { decodeEnvelope } = await import("../envelope/mod.ts");
      const env = decodeEnvelope(v2);
      const moved = [
        encodeEnvelope({ ...env, protocolVersion: 1 }),
        encodeEnvelope({ ...env, sequenceNumber: (seq ?? 0) + 1 }),
      ];
      for (const m of moved) {
        await assert.rejects(openMessage(m, { registry: r, identity: bob }), code("auth-failed"));
      }
      assert.equal(
        (await openMessage(v2, { registry: r, identity: bob })).header.sequenceNumber,
        seq,
      );
    }
  });

  it("registers all or nothing, and refuses an STP without properties", () => {
    const r = new Registry();
    const ok = { ...textV1, type: 3000 };
    assert.throws(() => r.register(ok, { ...textV1, type: 3000, name: "twin" }), code("plugin"));
    assert.throws(() => r.amp(3000, 1), code("unknown-protocol"));
    const { properties: _, ...bare } = simpleV2;
    assert.throws(
      () => r.register({ ...bare, type: 3001 } as never),
      (e) => code("plugin")(e) && /properties/.test((e as Error).message),
    );
  });

  it("turns a foreign exception into a plugin error for external plugins, internal for built-ins", async () => {
    const r = new Registry();
    const broken = { ...plainV1, type: 3002, open: () => Promise.reject(new TypeError("oops")) };
    r.registerExternal(broken);
    r.register({ ...plainV1, type: 3003, open: () => Promise.reject(new TypeError("bug")) });
    r.register(textV1);
    for (const [type, expected] of [[3002, "plugin"], [3003, "internal"]] as const) {
      const frame = encodeEnvelope({
        protocolType: type,
        protocolVersion: 1,
        payload: new Uint8Array(),
      });
      await assert.rejects(
        openMessage(frame, { registry: r }),
        (e) => code(expected)(e) && /\(\d+, 1\) open failed: /.test((e as Error).message),
      );
    }
  });

  it("splits MISSIVE_PLUGINS on colons but not inside URLs", () => {
    const paths = configuredPluginPaths({ MISSIVE_PLUGINS: "a.ts:file:///tmp/b.ts:/abs/c.ts" });
    assert.deepEqual(paths.map((p) => p.path), ["a.ts", "file:///tmp/b.ts", "/abs/c.ts"]);
  });
});
