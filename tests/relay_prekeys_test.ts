/**
 * Prekeys through the relay (SPEC §23.13, §25.2): publish-prekeys and fetch-prekeys, a
 * conversation started from a fetched bundle and carried by the relay, each one-time
 * prekey handed out once (also across a restart of the SQLite store), the refusals and
 * the rate limit.
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fromUtf8, toHex, utf8 } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import { RelayRefusal } from "../relay/client.ts";
import { PREKEY_REQUESTS } from "../relay/limits.ts";
import { acceptConversation, PrekeyKeyring, startConversation } from "../stp/ratchet/mod.ts";
import { tempDir } from "./helpers.ts";
import { person, startRelay } from "./relay_harness.ts";

const text = (s: string) => ({ ampType: 1, ampVersion: 1, body: utf8(s) });
const refused = (status: string) => (e: unknown) =>
  e instanceof RelayRefusal && e.status === status || assert.fail(`expected ${status}, got ${e}`);

describe("relay prekeys", () => {
  it("bob publishes; alice fetches, starts a conversation and the relay carries it both ways", async () => {
    const relay = await startRelay();
    const [alice, bob] = [await person("alice"), await person("bob")];
    const keyring = await PrekeyKeyring.create(bob, { oneTime: 5 });
    const b = relay.connect(bob);
    await b.register();
    const upload = keyring.upload();
    assert.equal(await b.publishPrekeys(upload), 5);
    keyring.markPublished(upload);
    assert.equal(keyring.upload().oneTimePrekeys.length, 0);

    const a = relay.connect(alice);
    await a.register();
    const { card, bundle } = await a.fetchPrekeys("bob@example.org");
    assert.equal(toHex(card.id), toHex(bob.card.id));
    assert.equal(bundle.oneTimePrekey?.id, 1);
    assert.equal(await relay.store.prekeys.oneTimeCount(bob.card.id), 4);
    const conversation = await startConversation(alice, { peer: card, bundle });
    await a.send(bob.card.id, (await conversation.encrypt(text("hello over the relay"))).envelope);

    assert.equal(await b.receive(), 1);
    const deliveries = b.deliveries();
    const first = (await deliveries.next()).value!;
    const { conversation: bobSide, opened } = await acceptConversation(bob, first.envelope, {
      keyring,
    });
    assert.equal(fromUtf8(opened.inner.body), "hello over the relay");
    await b.ack(first.message);
    assert.equal(keyring.oneTimeCount.held, 4, "the used one-time prekey is gone");

    await b.send("alice@example.org", (await bobSide.encrypt(text("hi alice"))).envelope);
    await a.receive();
    const reply = (await a.deliveries().next()).value!;
    assert.equal(fromUtf8((await conversation.decrypt(reply.envelope)).inner.body), "hi alice");
    await a.ack(reply.message);
    await relay.close();
  });

  it("each one-time prekey is handed out once, across a restart of the store; then none", async () => {
    const { dir, cleanup } = tempDir();
    const dbPath = join(dir, "relay.db");
    const [alice, bob, carol] = [await person("alice"), await person("bob"), await person("carol")];
    const keyring = await PrekeyKeyring.create(bob, { oneTime: 3 });
    const first = await startRelay({ dbPath });
    const b = first.connect(bob);
    await b.register();
    await b.publishPrekeys(keyring.upload());
    const a = first.connect(alice);
    await a.register();
    const ids = [(await a.fetchPrekeys(bob.card.id)).bundle.oneTimePrekey?.id];
    // No graceful close: the fetch's deletion was committed before its answer.
    const second = await startRelay({ dbPath });
    const c = second.connect(carol);
    await c.register();
    for (let i = 0; i < 3; i++) {
      ids.push((await c.fetchPrekeys("bob@example.org")).bundle.oneTimePrekey?.id);
    }
    assert.deepEqual(ids, [1, 2, 3, undefined]);
    // Without a one-time prekey the agreement still works (X3DH §3.2).
    const { card, bundle } = await c.fetchPrekeys("bob@example.org");
    const m = await (await startConversation(carol, { peer: card, bundle })).encrypt(text("hi"));
    assert.ok(await acceptConversation(bob, m.envelope, { keyring }));
    await second.close();
    await first.close();
    cleanup();
  });

  it("publish refuses another's upload, a bad signature, a prekey from the future, more than 200 held", async () => {
    const relay = await startRelay();
    const [alice, bob] = [await person("alice"), await person("bob")];
    const b = relay.connect(bob);
    await b.register();
    const alicesKeys = await PrekeyKeyring.create(alice, { oneTime: 1 });
    await assert.rejects(b.publishPrekeys(alicesKeys.upload()), refused("invalid-prekeys"));
    const keyring = await PrekeyKeyring.create(bob, { oneTime: 0 });
    const upload = keyring.upload();
    const sig = upload.signedPrekey.signature.slice();
    sig[5] ^= 1;
    const forged = { ...upload, signedPrekey: { ...upload.signedPrekey, signature: sig } };
    await assert.rejects(b.publishPrekeys(forged), refused("invalid-prekeys"));
    await assert.rejects(
      b.publishPrekeys({ ...upload, signedPrekey: { ...upload.signedPrekey, created: 1 } }),
      refused("invalid-prekeys"),
    );
    await assert.rejects(
      b.publishPrekeys(forged),
      (e) => e instanceof MissiveError && e.code === "key",
    );
    assert.equal(await relay.store.prekeys.oneTimeCount(bob.card.id), 0, "nothing stored");
    assert.equal(await b.publishPrekeys(upload), 0);
    for (let i = 0; i < 2; i++) {
      await keyring.addOneTimePrekeys(100);
      const u = keyring.upload();
      await b.publishPrekeys(u);
      keyring.markPublished(u);
    }
    assert.equal(await relay.store.prekeys.oneTimeCount(bob.card.id), 200);
    await keyring.addOneTimePrekeys(1);
    await assert.rejects(b.publishPrekeys(keyring.upload()), refused("quota"));
    const now = Date.now();
    await keyring.rotate(bob, { now: now + 7 * 86_400_000 });
    // The relay checks the age against its own clock: a prekey dated a week ahead is refused.
    await assert.rejects(b.publishPrekeys(keyring.upload()), refused("invalid-prekeys"));
    await relay.close();
  });

  it("an unreadable upload is malformed; fetch needs registration, a known target and published prekeys", async () => {
    const relay = await startRelay();
    const [alice, bob] = [await person("alice"), await person("bob")];
    const a = relay.connect(alice);
    await assert.rejects(a.fetchPrekeys("bob@example.org"), refused("not-registered"));
    await a.register();
    await assert.rejects(a.fetchPrekeys("nobody@example.org"), refused("not-found"));
    await relay.connect(bob).register();
    await assert.rejects(a.fetchPrekeys("bob@example.org"), refused("not-found"));
    // An upload that does not decode (a non-canonical X25519 key) is `malformed`.
    const b = relay.connect(bob);
    await assert.rejects(
      b.publishPrekeys({
        identityId: bob.card.id,
        signedPrekey: {
          id: 1,
          publicKey: new Uint8Array(32).fill(0xff) as never,
          kemPublicKey: new Uint8Array(1216) as never,
          created: 0,
          signature: new Uint8Array(64) as never,
        },
        oneTimePrekeys: [],
      }),
      (e) => e instanceof MissiveError && (e as RelayRefusal).status === "malformed",
    );
    await relay.close();
  });

  it("the newest signed prekey stays when an older upload arrives later (SQLite store)", async () => {
    let t = 1_800_000_000_000;
    const relay = await startRelay({ now: () => t });
    const bob = await person("bob");
    const keyring = await PrekeyKeyring.create(bob, { oneTime: 1, now: t });
    const b = relay.connect(bob);
    await b.register();
    const old = keyring.upload();
    await b.publishPrekeys(old);
    t += 7 * 86_400_000;
    assert.equal(await keyring.rotate(bob, { now: t }), true);
    await b.publishPrekeys(keyring.upload());
    await b.publishPrekeys(old);
    assert.equal((await relay.store.prekeys.fetch(bob.card.id))?.signedPrekey.id, 2);
    await relay.close();
  });

  it(`prekey requests are rate-limited per identity (${PREKEY_REQUESTS.burst}, then ${PREKEY_REQUESTS.perMinute} a minute)`, async () => {
    let t = 1_800_000_000_000;
    const relay = await startRelay({ now: () => t });
    const [alice, bob] = [await person("alice"), await person("bob")];
    const keyring = await PrekeyKeyring.create(bob, { oneTime: 50, now: t });
    const b = relay.connect(bob);
    await b.register();
    await b.publishPrekeys(keyring.upload());
    const a = relay.connect(alice);
    await a.register();
    for (let i = 1; i < PREKEY_REQUESTS.burst + 1; i++) await a.fetchPrekeys("bob@example.org");
    await assert.rejects(a.fetchPrekeys("bob@example.org"), refused("rate-limited"));
    assert.equal(await relay.store.prekeys.oneTimeCount(bob.card.id), 50 - PREKEY_REQUESTS.burst);
    t += 60_000 / PREKEY_REQUESTS.perMinute;
    assert.ok(await a.fetchPrekeys("bob@example.org"));
    // Bob's own budget is separate.
    assert.ok(await b.fetchPrekeys("bob@example.org"));
    await relay.close();
  });
});
