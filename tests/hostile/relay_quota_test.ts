/**
 * Hostile peers, finding 4 (issue 11): inbox squatting, registration floods and the
 * store's size, against a real `missive serve` subprocess. Every refusal must carry its
 * own status and message.
 * @module
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { randomBytes } from "../../core/bytes.ts";
import { encodeEnvelope } from "../../envelope/mod.ts";
import { RelayRefusal } from "../../relay/client.ts";
import { tempDir } from "../helpers.ts";
import { clientFrom, type ServeProcess, someone, startServe } from "./_relay.ts";

const started: ServeProcess[] = [];
const dirs: (() => void)[] = [];

async function serveWith(args: string[] = []): Promise<ServeProcess> {
  const { dir, cleanup } = tempDir("missive-hostile-quota-");
  dirs.push(cleanup);
  const serve = await startServe(dir, args);
  started.push(serve);
  return serve;
}

after(async () => {
  for (const s of started) await s.stop();
  for (const c of dirs) c();
});

/** A distinct plain envelope of about `size` bytes (the relay never opens it). */
const envelope = (size = 64) =>
  encodeEnvelope({ protocolType: 7, protocolVersion: 1, payload: randomBytes(size) });

async function refusedWith(p: Promise<unknown>, status: string): Promise<RelayRefusal> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof RelayRefusal, `expected a refusal, got ${e}`);
    assert.equal(e.status, status, e.message);
    return e;
  }
  return assert.fail(`expected the relay to refuse with ${status}`);
}

describe("hostile: quotas and storage (finding 4)", () => {
  it("one sender cannot fill a recipient's inbox for everyone else", async () => {
    const serve = await serveWith(["--quota", "50"]);
    const [bob, mallory, alice] = [
      await someone("bob"),
      await someone("mallory"),
      await someone("alice"),
    ];
    const b = await clientFrom(serve, bob);
    await b.register();
    const m = await clientFrom(serve, mallory, "127.0.0.4");
    await m.register();
    let accepted = 0;
    let refusal: RelayRefusal | undefined;
    for (let i = 0; i < 60; i++) {
      try {
        await m.send(bob.card.address, envelope());
        accepted++;
      } catch (e) {
        refusal = e as RelayRefusal;
      }
    }
    assert.equal(accepted, 50);
    assert.equal(refusal?.status, "quota");
    assert.match(refusal!.message, /mallory@example\.org.*bob@example\.org|from you/);
    const a = await clientFrom(serve, alice);
    await a.register();
    assert.equal(typeof await a.send(bob.card.address, envelope()), "number");
    for (const c of [a, b, m]) await c.close();
  });

  it("new registrations from one address are rate-limited, with their own status", async () => {
    const serve = await serveWith();
    let accepted = 0;
    let refusal: RelayRefusal | undefined;
    for (let i = 0; i < 20 && !refusal; i++) {
      const c = await clientFrom(serve, await someone(`sybil${i}`), "127.0.0.2");
      try {
        await c.register();
        accepted++;
      } catch (e) {
        refusal = e as RelayRefusal;
      } finally {
        await c.close();
      }
    }
    assert.ok(refusal, `all ${accepted} registrations from one address were accepted`);
    assert.equal(refusal.status, "rate-limited");
    assert.match(refusal.message, /127\.0\.0\.2/);
    // Another address is not affected.
    const c = await clientFrom(serve, await someone("carol"), "127.0.0.3");
    await c.register();
    await c.close();
  });

  it("the store has a global cap, refused with its own status", async () => {
    const serve = await serveWith(["--store-max", "64k", "--max-message", "16k"]);
    const [bob, carol, alice] = [
      await someone("bob"),
      await someone("carol"),
      await someone("alice"),
    ];
    const b = await clientFrom(serve, bob);
    await b.register();
    const c = await clientFrom(serve, carol);
    await c.register();
    const a = await clientFrom(serve, alice);
    await a.register();
    for (let i = 0; i < 3; i++) await a.send(bob.card.address, envelope(15_000));
    for (let i = 0; i < 1; i++) await c.send(bob.card.address, envelope(15_000));
    const e = await refusedWith(a.send(carol.card.address, envelope(15_000)), "store-full");
    assert.match(e.message, /store/);
    for (const x of [a, b, c]) await x.close();
  });
});
