/**
 * The ratchet STP (SPEC §25) through its library API: conversations both ways, out of
 * order, lost and duplicate messages, the skipped-key limits, the prekey keyring and
 * store, forward secrecy and post-compromise recovery with explicit scopes, the registry
 * entry and `inspect`. Clocks are fake; randomness is seeded where bytes are compared.
 * @module
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Bytes, equalBytes, fromUtf8, toHex, utf8 } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import {
  type CryptoProvider,
  nobleProvider,
  nodeCryptoProvider,
  webcryptoProvider,
} from "../crypto/mod.ts";
import { decodeEnvelope } from "../envelope/mod.ts";
import { defaultRegistry, sealMessage, textV1 } from "../mod.ts";
import {
  acceptConversation,
  Conversation,
  MAX_SKIP,
  MAX_SKIPPED_AGE,
  MAX_STORED_ONE_TIME,
  MAX_STORED_SKIPPED,
  MemoryPrekeyStore,
  PrekeyKeyring,
  RATCHET_TYPE,
  ratchetV1,
  SIGNED_PREKEY_GRACE,
  SIGNED_PREKEY_ROTATION,
  startConversation,
  verifyPrekeyUpload,
} from "../stp/ratchet/mod.ts";
import { decodeRatchetPayload } from "../stp/ratchet/_format.ts";
import { associatedData, chainStep, messageSecrets, rootStep } from "../stp/ratchet/_kdf.ts";
import { decodeState } from "../stp/ratchet/_state.ts";
import { fixedIdentity, runCli } from "./helpers.ts";
import { randomStream } from "./vectors/common.ts";

const DAY = 86_400_000;
const T0 = 1_700_000_000_000;
const [alice, bob, carol] = [
  await fixedIdentity("alice@example.org", 1),
  await fixedIdentity("bob@example.org", 3),
  await fixedIdentity("carol@example.org", 5),
];
const code = (c: string) => (e: unknown) =>
  e instanceof MissiveError && e.code === c || assert.fail(`expected ${c}, got ${e}`);
const text = (s: string) => ({ ampType: 1, ampVersion: 1, body: utf8(s) });
const read = async (c: Conversation, frame: Uint8Array) =>
  fromUtf8((await c.decrypt(frame)).inner.body);

/** A fake clock for a test: `clock.now` moves only when the test moves it. */
function fakeClock(start = T0) {
  const clock = { now: start, read: () => clock.now };
  return clock;
}

/** Bob's keyring, alice's conversation from its bundle, bob's from alice's first message. */
async function pair(options: { crypto?: CryptoProvider; seed?: string; oneTime?: boolean } = {}) {
  const clock = fakeClock();
  const crypto = options.crypto ?? nobleProvider;
  const seeded = options.seed !== undefined;
  const rnd = (who: string) => (seeded ? { random: randomStream(`${options.seed}/${who}`) } : {});
  const keyring = await PrekeyKeyring.create(bob, {
    crypto,
    now: T0,
    oneTime: 5,
    ...rnd("keyring"),
  });
  const common = { crypto, now: clock.read };
  const a = await startConversation(alice, {
    ...common,
    ...rnd("alice"),
    peer: bob.card,
    bundle: keyring.bundle({ oneTime: options.oneTime ?? true }),
  });
  const first = await a.encrypt(text("hello bob"));
  const { conversation: b, opened } = await acceptConversation(bob, first.envelope, {
    ...common,
    ...rnd("bob"),
    keyring,
  });
  return { a, b, keyring, clock, first, opened };
}

describe("ratchet: conversations", () => {
  it("alice starts from bob's bundle, bob accepts, both ways; phases and inner fields", async () => {
    const { a, b, clock, first, opened } = await pair();
    assert.equal(a.phase, "awaiting-reply");
    assert.equal(b.phase, "established");
    assert.equal(a.id, b.id);
    assert.equal(fromUtf8(opened.inner.body), "hello bob");
    assert.deepEqual(
      [opened.inner.ampType, opened.inner.ampVersion, opened.inner.timestamp],
      [1, 1, T0],
    );
    assert.deepEqual([opened.inner.sender, opened.inner.destination], [
      "alice@example.org",
      "bob@example.org",
    ]);
    assert.ok(equalBytes(opened.inner.nonce, first.nonce) && first.nonce.length === 16);
    assert.equal(opened.sender.verified, true);
    assert.ok(equalBytes(opened.sender.card!.id, alice.card.id));
    // Until alice reads a reply, her messages carry the initial header.
    const second = await a.encrypt(text("still there?"));
    assert.ok(decodeRatchetPayload(decodeEnvelope(second.envelope).payload).initial);
    assert.equal(await read(b, second.envelope), "still there?");
    clock.now += 1000;
    const reply = await b.encrypt(text("hi alice"));
    assert.equal(decodeRatchetPayload(decodeEnvelope(reply.envelope).payload).initial, undefined);
    const got = await a.decrypt(reply.envelope);
    assert.equal(fromUtf8(got.inner.body), "hi alice");
    assert.equal(got.inner.timestamp, T0 + 1000);
    assert.equal(a.phase, "established");
    const after = await a.encrypt(text("and now?"));
    assert.equal(decodeRatchetPayload(decodeEnvelope(after.envelope).payload).initial, undefined);
    assert.equal(await read(b, after.envelope), "and now?");
  });

  it("every provider path (noble, WebCrypto, node:crypto) makes and reads the same bytes", async () => {
    const frames: string[][] = [];
    for (const crypto of [nobleProvider, webcryptoProvider, nodeCryptoProvider]) {
      const { a, b, first } = await pair({ crypto, seed: "providers" });
      const reply = await b.encrypt(text("reply"));
      assert.equal(await read(a, reply.envelope), "reply");
      const again = await a.encrypt(text("again"));
      assert.equal(await read(b, again.envelope), "again");
      frames.push([first.envelope, reply.envelope, again.envelope].map(toHex));
    }
    assert.deepEqual(frames[0], frames[1]);
    assert.deepEqual(frames[0], frames[2]);
  });

  it("bob accepts from a later initial message; the earlier one then opens in the conversation", async () => {
    const keyring = await PrekeyKeyring.create(bob, { crypto: nobleProvider, now: T0, oneTime: 1 });
    const a = await startConversation(alice, {
      peer: bob.card,
      bundle: keyring.bundle(),
      now: () => T0,
    });
    const m0 = await a.encrypt(text("zero"));
    const m1 = await a.encrypt(text("one"));
    const { conversation: b, opened } = await acceptConversation(bob, m1.envelope, {
      keyring,
      now: () => T0,
    });
    assert.equal(fromUtf8(opened.inner.body), "one");
    assert.equal(await read(b, m0.envelope), "zero");
    await assert.rejects(b.decrypt(m0.envelope), code("replay"));
    // A second acceptance of either is a replay: the one-time prekey is gone.
    await assert.rejects(acceptConversation(bob, m0.envelope, { keyring }), code("replay"));
  });

  it("out of order, lost and duplicate messages, across DH ratchet steps", async () => {
    const { a, b } = await pair();
    const burst = [];
    for (let i = 0; i < 6; i++) burst.push(await b.encrypt(text(`b${i}`)));
    // alice reads 4, 0, 2 (1, 3 late; 5 lost), then replies: a new DH step on both sides.
    for (const i of [4, 0, 2]) assert.equal(await read(a, burst[i].envelope), `b${i}`);
    await assert.rejects(a.decrypt(burst[2].envelope), code("replay"));
    const r = await a.encrypt(text("a-reply"));
    assert.equal(await read(b, r.envelope), "a-reply");
    const next = await b.encrypt(text("b-next"));
    assert.equal(await read(a, next.envelope), "b-next");
    // The late ones of the finished chain still open, once.
    for (const i of [3, 1]) assert.equal(await read(a, burst[i].envelope), `b${i}`);
    await assert.rejects(a.decrypt(burst[1].envelope), code("replay"));
    await assert.rejects(a.decrypt(burst[4].envelope), code("replay"));
  });

  it("serialise and restore mid-conversation, both sides; a closed conversation refuses", async () => {
    const { a, b, clock } = await pair();
    const ra = await Conversation.restore(a.serialize(), { now: clock.read });
    const rb = await Conversation.restore(b.serialize(), { now: clock.read });
    assert.equal(ra.phase, "awaiting-reply");
    const m = await rb.encrypt(text("after restore"));
    assert.equal(await read(ra, m.envelope), "after restore");
    assert.equal(ra.phase, "established");
    const back = await ra.encrypt(text("back"));
    assert.equal(await read(rb, back.envelope), "back");
    assert.equal(toHex(ra.peer.id), toHex(bob.card.id));
    rb.close();
    assert.equal(rb.phase, "closed");
    await assert.rejects(rb.encrypt(text("x")), code("usage"));
    await assert.rejects(rb.decrypt(back.envelope), code("usage"));
    assert.throws(() => rb.serialize(), code("usage"));
  });

  it("calls on one conversation run one at a time (no two decrypts from one state)", async () => {
    const { a, b } = await pair();
    const frames = [];
    for (let i = 0; i < 8; i++) frames.push((await b.encrypt(text(`m${i}`))).envelope);
    const got = await Promise.all(frames.map((f) => read(a, f)));
    assert.deepEqual(got, frames.map((_, i) => `m${i}`));
    const dup = await Promise.allSettled([a.decrypt(frames[3]), a.decrypt(frames[3])]);
    assert.ok(dup.every((r) => r.status === "rejected"));
  });
});

describe("ratchet: limits (SPEC §25.7)", () => {
  it(`at most ${MAX_SKIP} skipped per chain (too-large, state unchanged)`, async () => {
    const { a, b } = await pair();
    const frames = [];
    for (let i = 0; i <= MAX_SKIP + 1; i++) frames.push((await b.encrypt(text(`${i}`))).envelope);
    const before = toHex(a.serialize());
    await assert.rejects(a.decrypt(frames[MAX_SKIP + 1]), code("too-large"));
    assert.equal(toHex(a.serialize()), before);
    assert.equal(await read(a, frames[MAX_SKIP]), `${MAX_SKIP}`);
    const state = await decodeState(nobleProvider, a.serialize());
    assert.equal(state.skipped.size, MAX_SKIP);
  });

  it(`skipped keys expire after ${MAX_SKIPPED_AGE / DAY} days (replay) and are wiped`, async () => {
    const { a, b, clock } = await pair();
    const m0 = await b.encrypt(text("late"));
    const m1 = await b.encrypt(text("on time"));
    assert.equal(await read(a, m1.envelope), "on time");
    clock.now += MAX_SKIPPED_AGE + 1;
    const before = toHex(a.serialize());
    await assert.rejects(a.decrypt(m0.envelope), code("replay"));
    assert.equal(toHex(a.serialize()), before, "a failed decrypt changes nothing");
    // The next successful step drops the expired key.
    const m2 = await b.encrypt(text("later"));
    assert.equal(await read(a, m2.envelope), "later");
    assert.equal((await decodeState(nobleProvider, a.serialize())).skipped.size, 0);
    await assert.rejects(a.decrypt(m0.envelope), code("replay"));
  });

  it(`at most ${MAX_STORED_SKIPPED} skipped keys held: the oldest go first`, async () => {
    const { a, b } = await pair();
    const frames = [];
    // Three chains of bob's with 999 lost each: the first chain's keys are dropped.
    for (let chain = 0; chain < 3; chain++) {
      const burst = [];
      for (let i = 0; i < 1000; i++) burst.push((await b.encrypt(text(`${chain}/${i}`))).envelope);
      frames.push(burst);
      assert.equal(await read(a, burst[999]), `${chain}/999`);
      assert.equal(await read(b, (await a.encrypt(text("ack"))).envelope), "ack");
    }
    const state = await decodeState(nobleProvider, a.serialize());
    assert.equal(state.skipped.size, MAX_STORED_SKIPPED);
    await assert.rejects(a.decrypt(frames[0][5]), code("replay"));
    assert.equal(await read(a, frames[1][5]), "1/5");
  });
});

/**
 * Every message key an attacker can derive from a copied ratchet state (the scope of the
 * forward-secrecy claim): both chain keys and `depth` steps beyond each, the skipped
 * keys, and the chains of a DH ratchet step with the copied ratchet secret against the
 * current and every remembered peer ratchet key (and `depth` steps of each). Each is
 * tried on `frames`, with the AAD rebuilt from the frame and the copied binding.
 */
async function keysFromCopy(copy: Uint8Array, depth = 25): Promise<Bytes[]> {
  const s = await decodeState(nobleProvider, copy);
  const keys: Bytes[] = [...s.skipped.values()].map((k) => k.messageKey);
  const walk = async (chain: Bytes | null) => {
    let ck = chain;
    for (let i = 0; ck && i < depth; i++) {
      const step = await chainStep(nobleProvider, ck);
      keys.push(step.messageKey);
      ck = step.chainKey;
    }
  };
  await walk(s.sendChain);
  await walk(s.recvChain);
  for (const peer of [s.receivingKey!, ...s.previousReceivingKeys]) {
    const dh = await nobleProvider.x25519(s.sendingSecret, peer);
    await walk((await rootStep(nobleProvider, s.rootKey, dh)).chainKey);
  }
  return keys;
}

/** True when one of `keys` opens `frame` (any ratchet message of the conversation). */
async function anyKeyOpens(keys: Bytes[], binding: Bytes, frame: Uint8Array): Promise<boolean> {
  const envelope = decodeEnvelope(frame);
  const p = decodeRatchetPayload(envelope.payload);
  const aad = associatedData(envelope, binding, p);
  for (const mk of keys) {
    const s = await messageSecrets(nobleProvider, mk);
    const ok = await nobleProvider.aeadDecrypt("aes-256-gcm", s.key, s.iv, p.ciphertext, aad)
      .then(() => true, () => false);
    if (ok) return true;
  }
  return false;
}

describe("ratchet: forward secrecy and post-compromise recovery (SPEC §25.10)", () => {
  it("forward secrecy: bob's copied ratchet state opens none of the 40 recorded messages", async () => {
    // Scope: alice and bob exchange 20 messages each way (alternating, so every reply is
    // a DH ratchet step), recorded from the wire. Then bob's ratchet state is copied
    // (the serialised state: what a thief of his device or his stored state gets) and the
    // conversation continues. Neither the restored copy nor any key derivable from it
    // opens one of the 40 recorded messages.
    const { a, b } = await pair();
    const recorded: Uint8Array[] = [];
    for (let i = 0; i < 20; i++) {
      const fromBob = (await b.encrypt(text(`b${i}`))).envelope;
      recorded.push(fromBob);
      assert.equal(await read(a, fromBob), `b${i}`);
      const fromAlice = (await a.encrypt(text(`a${i}`))).envelope;
      recorded.push(fromAlice);
      assert.equal(await read(b, fromAlice), `a${i}`);
    }
    const copy = b.serialize();
    const later = (await a.encrypt(text("after the copy"))).envelope;
    assert.equal(await read(b, later), "after the copy");
    const binding = (await decodeState(nobleProvider, copy)).binding;
    const keys = await keysFromCopy(copy);
    assert.ok(keys.length >= 75, `${keys.length} keys tried`);
    // Control: the same harness does open a message sent after the copy.
    assert.equal(await anyKeyOpens(keys, binding, later), true);
    for (const [i, frame] of recorded.entries()) {
      assert.equal(await anyKeyOpens(keys, binding, frame), false, `recorded message ${i}`);
      const thief = await Conversation.restore(copy);
      await assert.rejects(thief.decrypt(frame), (e) => e instanceof MissiveError);
    }
  });

  it("forward secrecy: a used one-time prekey is deleted, so bob restarted from his stored keyring refuses the replayed initial message", async () => {
    const { a, b, keyring, first } = await pair();
    for (let i = 0; i < 3; i++) {
      assert.equal(await read(a, (await b.encrypt(text(`b${i}`))).envelope), `b${i}`);
      assert.equal(await read(b, (await a.encrypt(text(`a${i}`))).envelope), `a${i}`);
    }
    const stored = keyring.serialize();
    keyring.close();
    const restarted = PrekeyKeyring.restore(stored);
    assert.equal(restarted.oneTimeCount.held, 4, "5 made, 1 used");
    await assert.rejects(
      acceptConversation(bob, first.envelope, { keyring: restarted }),
      code("replay"),
    );
    assert.equal(toHex(restarted.serialize()), toHex(stored), "the refusal changed nothing");
  });

  it("without a one-time prekey, the replayed initial message is refused too (its ephemeral key is remembered)", async () => {
    const { keyring, first } = await pair({ oneTime: false });
    const restarted = PrekeyKeyring.restore(keyring.serialize());
    await assert.rejects(
      acceptConversation(bob, first.envelope, { keyring: restarted }),
      code("replay"),
    );
  });

  it("post-compromise recovery: once both sides have made a new DH ratchet step, the copy decrypts nothing new", async () => {
    // Scope: a passive attacker holds a copy of bob's state and every frame on the wire
    // (fed to the copy in order), but none of the randomness drawn after the copy.
    const { a, b } = await pair();
    assert.equal(await read(a, (await b.encrypt(text("b0"))).envelope), "b0");
    const copy = b.serialize();
    const thief = await Conversation.restore(copy);
    const binding = (await decodeState(nobleProvider, copy)).binding;
    const stolenKeys = await keysFromCopy(copy);
    // Before recovery the copy reads alice's next message, and bob's next one is
    // derivable: the compromise is real.
    const a1 = (await a.encrypt(text("a1"))).envelope;
    assert.equal(await read(thief, a1), "a1");
    assert.equal(await read(b, a1), "a1");
    const b1 = (await b.encrypt(text("b1"))).envelope; // bob's new DH ratchet step
    assert.equal(await anyKeyOpens(stolenKeys, binding, b1), false, "bob's new chain");
    assert.equal(await read(a, b1), "b1");
    const a2 = (await a.encrypt(text("a2"))).envelope; // alice's new DH ratchet step
    await assert.rejects(thief.decrypt(a2), code("auth-failed"));
    assert.equal(await read(b, a2), "a2");
    const b2 = (await b.encrypt(text("b2"))).envelope;
    const a3 = (await a.encrypt(text("a3"))).envelope;
    await assert.rejects(thief.decrypt(a3), (e) => e instanceof MissiveError);
    const laterKeys = await keysFromCopy(thief.serialize());
    for (const frame of [b1, a2, b2, a3]) {
      assert.equal(await anyKeyOpens([...stolenKeys, ...laterKeys], binding, frame), false);
    }
    assert.equal(await read(a, b2), "b2");
    assert.equal(await read(b, a3), "a3");
  });
});

describe("ratchet: prekeys (SPEC §25.2)", () => {
  it(`the signed prekey rotates every ${SIGNED_PREKEY_ROTATION / DAY} days; the replaced one is kept ${SIGNED_PREKEY_GRACE / DAY} days`, async () => {
    const keyring = await PrekeyKeyring.create(bob, { now: T0, oneTime: 3 });
    const oldBundle = keyring.bundle();
    assert.equal(await keyring.rotate(bob, { now: T0 + SIGNED_PREKEY_ROTATION - 1 }), false);
    assert.equal(await keyring.rotate(bob, { now: T0 + SIGNED_PREKEY_ROTATION }), true);
    assert.equal(keyring.signedPrekey.id, 2);
    // Within the grace period an initial message to the old signed prekey is accepted.
    const replacedAt = T0 + SIGNED_PREKEY_ROTATION;
    const now = () => replacedAt + SIGNED_PREKEY_GRACE - 1;
    const a = await startConversation(alice, { peer: bob.card, bundle: oldBundle, now });
    const m = await a.encrypt(text("to the old prekey"));
    const late = await startConversation(carol, {
      peer: bob.card,
      bundle: keyring.bundle({ oneTime: false }),
      now,
    });
    const lateMessage = await late.encrypt(text("to the new prekey"));
    // Seven more days: prekey 2 is replaced by 3; prekey 1 is still in its grace period.
    assert.equal(await keyring.rotate(bob, { now: now() }), true);
    const ok = await acceptConversation(bob, m.envelope, { keyring, now });
    assert.equal(fromUtf8(ok.opened.inner.body), "to the old prekey");
    // Once the grace period is over the old one is erased: `key`.
    const b2 = await startConversation(alice, { peer: bob.card, bundle: oldBundle, now });
    const m2 = await b2.encrypt(text("too late"));
    await keyring.rotate(bob, { now: replacedAt + SIGNED_PREKEY_GRACE });
    await assert.rejects(acceptConversation(bob, m2.envelope, { keyring, now }), code("key"));
    assert.ok(await acceptConversation(bob, lateMessage.envelope, { keyring, now }));
  });

  it("a sender refuses a bundle of another identity (key), a forged signature (auth-failed), a stale or future one (key)", async () => {
    const keyring = await PrekeyKeyring.create(bob, { now: T0, oneTime: 1 });
    const bundle = keyring.bundle();
    const start = (b: typeof bundle, now = T0) =>
      startConversation(alice, { peer: bob.card, bundle: b, now: () => now });
    await assert.rejects(
      startConversation(alice, { peer: carol.card, bundle, now: () => T0 }),
      code("key"),
    );
    const sig = bundle.signedPrekey.signature.slice();
    sig[0] ^= 1;
    await assert.rejects(
      start({ ...bundle, signedPrekey: { ...bundle.signedPrekey, signature: sig } }),
      code("auth-failed"),
    );
    await assert.rejects(
      start({ ...bundle, signedPrekey: { ...bundle.signedPrekey, id: 7 } }),
      code("auth-failed"),
    );
    await assert.rejects(start(bundle, T0 + 30 * DAY + 1), code("key"));
    await assert.rejects(start(bundle, T0 - DAY - 1), code("key"));
    await assert.rejects(
      startConversation(bob, { peer: bob.card, bundle, now: () => T0 }),
      code("usage"),
    );
    assert.ok(await start(bundle, T0 + 30 * DAY));
  });

  it("the keyring survives serialise/restore; uploads hand each one-time prekey out once", async () => {
    const keyring = await PrekeyKeyring.create(bob, { now: T0, oneTime: 3 });
    const direct = keyring.bundle();
    const upload = keyring.upload();
    assert.equal(upload.oneTimePrekeys.length, 2, "the one in the direct bundle is not uploaded");
    assert.ok(!upload.oneTimePrekeys.some((o) => o.id === direct.oneTimePrekey!.id));
    keyring.markPublished(upload);
    assert.equal(keyring.upload().oneTimePrekeys.length, 0);
    assert.deepEqual(keyring.oneTimeCount, { held: 3, unpublished: 0 });
    await keyring.addOneTimePrekeys(2);
    const restored = PrekeyKeyring.restore(keyring.serialize());
    assert.equal(toHex(restored.serialize()), toHex(keyring.serialize()));
    assert.deepEqual(restored.upload().oneTimePrekeys.map((o) => o.id), [4, 5]);
    await assert.rejects(keyring.addOneTimePrekeys(996), code("full"));
    await assert.rejects(keyring.rotate(alice), code("usage"));
  });

  it("the store hands each one-time prekey out once, keeps the newest signed prekey, refuses more than its cap", async () => {
    const store = new MemoryPrekeyStore();
    const keyring = await PrekeyKeyring.create(bob, { now: T0, oneTime: 3 });
    const upload = keyring.upload();
    await verifyPrekeyUpload(nobleProvider, upload, bob.card, T0);
    await assert.rejects(verifyPrekeyUpload(nobleProvider, upload, carol.card, T0), code("key"));
    assert.deepEqual(await store.publish(upload), { oneTimeHeld: 3 });
    assert.deepEqual(await store.publish(upload), { oneTimeHeld: 3 }, "IDs held are skipped");
    const ids = [];
    for (let i = 0; i < 4; i++) ids.push((await store.fetch(bob.card.id))?.oneTimePrekey?.id);
    assert.deepEqual(ids, [1, 2, 3, undefined]);
    assert.equal(await store.fetch(carol.card.id), undefined);
    // A bundle without a one-time prekey still starts a conversation (X3DH §3.2).
    const bundle = (await store.fetch(bob.card.id))!;
    const a = await startConversation(alice, { peer: bob.card, bundle, now: () => T0 });
    const m = await a.encrypt(text("no one-time prekey"));
    assert.ok(await acceptConversation(bob, m.envelope, { keyring, now: () => T0 }));
    // Rotation: the newer signed prekey stays even if an older upload comes later.
    await keyring.rotate(bob, { now: T0 + SIGNED_PREKEY_ROTATION });
    await store.publish(keyring.upload());
    await store.publish(upload);
    assert.equal((await store.fetch(bob.card.id))!.signedPrekey.id, 2);
    const many = await PrekeyKeyring.create(carol, { now: T0, oneTime: 300 });
    const batches = [];
    for (let i = 0; i < 3; i++) {
      const u = many.upload();
      batches.push(u);
      many.markPublished(u);
    }
    await store.publish(batches[0]);
    await store.publish(batches[1]);
    await assert.rejects(store.publish(batches[2]), code("full"));
    assert.equal(await store.oneTimeCount(carol.card.id), MAX_STORED_ONE_TIME);
    await store.remove(carol.card.id);
    assert.equal(await store.oneTimeCount(carol.card.id), 0);
  });
});

describe("ratchet: identities", () => {
  it("an initial message for carol is not for bob (not-a-recipient); a swapped sender card fails (auth-failed)", async () => {
    const carolKeys = await PrekeyKeyring.create(carol, { now: T0, oneTime: 1 });
    const bobKeys = await PrekeyKeyring.create(bob, { now: T0, oneTime: 1 });
    const toCarol = await startConversation(alice, {
      peer: carol.card,
      bundle: carolKeys.bundle(),
      now: () => T0,
    });
    const m = await toCarol.encrypt(text("for carol"));
    await assert.rejects(
      acceptConversation(bob, m.envelope, { keyring: bobKeys, now: () => T0 }),
      code("not-a-recipient"),
    );
    // The same message with carol's card as the sender (an identity she did not agree
    // with): the keys differ, so it does not authenticate, and her keyring is unchanged.
    const { swapSenderCard } = await import("./vectors/cases_ratchet.ts");
    const swapped = swapSenderCard(m.envelope, bob.card.bytes);
    const before = toHex(carolKeys.serialize());
    await assert.rejects(
      acceptConversation(carol, swapped, { keyring: carolKeys, now: () => T0 }),
      code("auth-failed"),
    );
    assert.equal(toHex(carolKeys.serialize()), before);
    assert.ok(await acceptConversation(carol, m.envelope, { keyring: carolKeys, now: () => T0 }));
  });

  it("the identity binding covers both identities: another conversation's message fails", async () => {
    const one = await pair();
    const two = await pair();
    const m = await one.b.encrypt(text("for one"));
    await assert.rejects(two.a.decrypt(m.envelope), code("auth-failed"));
    await assert.rejects(one.b.decrypt(two.first.envelope), code("session"));
  });
});

describe("ratchet: registry and inspect (SPEC §25.9)", () => {
  it("(9, 1) is listed with its properties; seal/open refuse with usage pointing at the API", async () => {
    const stp = defaultRegistry().stp(RATCHET_TYPE, 1);
    assert.equal(stp, ratchetV1);
    assert.deepEqual(
      [stp.properties.forwardSecrecy, stp.properties.kem, stp.properties.authentication],
      [true, "mlkem768x25519", "shared-key"],
    );
    await assert.rejects(
      sealMessage({
        stp,
        amp: textV1,
        message: { text: "x" },
        sender: alice,
        recipients: [bob.card],
      }),
      (e) => code("usage")(e) && /startConversation/.test((e as Error).message),
    );
    const plugins = await runCli(["plugins"]);
    assert.match(plugins.text, /\n\s+9\s+1\s+ratchet\s/);
  });

  it("inspect shows a ratchet message's header, initial or not", async () => {
    const { b, first } = await pair();
    const init = JSON.parse((await runCli(["inspect", "--json"], { stdin: first.envelope })).text);
    assert.equal(init.stp, "ratchet");
    assert.equal(init.kem, "mlkem768x25519");
    assert.equal(init.ratchet.messageNumber, 0);
    assert.equal(init.ratchet.initial.recipientId, toHex(bob.card.id));
    assert.equal(init.ratchet.initial.oneTimePrekeyId, 1);
    const reply = await b.encrypt(text("r"));
    const r = await runCli(["inspect"], { stdin: reply.envelope });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.text, /ratchet key: +[0-9a-f]{64}\nmessage: +0 \(previous chain: 0\)\n/);
    assert.doesNotMatch(r.text, /initial message/);
    const bad = await runCli(["inspect", "--json"], {
      stdin: (await import("../envelope/mod.ts")).encodeEnvelope({
        protocolType: 9,
        protocolVersion: 1,
        payload: new Uint8Array([0xa0]),
      }),
    });
    assert.equal(JSON.parse(bad.text).ratchet, null);
  });
});

describe("ratchet: serialised sizes at the limits (SPEC §25.8)", () => {
  it("a keyring with 1,000 one-time prekeys and 10,000 remembered ephemeral keys round-trips; then `full`", async () => {
    const { keyringData } = await import("../stp/ratchet/_keyring.ts");
    const keyring = await PrekeyKeyring.create(bob, { now: T0, oneTime: 1000 });
    const seen = keyringData(keyring).signed[0].seen;
    for (let i = 0; seen.size < 10_000; i++) seen.add(i.toString(16).padStart(64, "0"));
    const bytes = keyring.serialize();
    const restored = PrekeyKeyring.restore(bytes);
    assert.equal(toHex(restored.serialize()), toHex(bytes));
    assert.equal(restored.oneTimeCount.held, 1000);
    const a = await startConversation(alice, {
      peer: bob.card,
      bundle: restored.bundle({ oneTime: false }),
      now: () => T0,
    });
    const m = await a.encrypt(text("one too many"));
    await assert.rejects(acceptConversation(bob, m.envelope, { keyring: restored }), code("full"));
  });
});

describe("ratchet: concurrent acceptance", () => {
  it("two acceptances of one initial message racing: one conversation, one replay", async () => {
    for (const oneTime of [true, false]) {
      const keyring = await PrekeyKeyring.create(bob, { now: T0, oneTime: 1 });
      const a = await startConversation(alice, {
        peer: bob.card,
        bundle: keyring.bundle({ oneTime }),
        now: () => T0,
      });
      const m = await a.encrypt(text("once"));
      const results = await Promise.allSettled([
        acceptConversation(bob, m.envelope, { keyring, now: () => T0 }),
        acceptConversation(bob, m.envelope, { keyring, now: () => T0 }),
      ]);
      assert.deepEqual(results.map((r) => r.status).sort(), ["fulfilled", "rejected"]);
      const rejected = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
      code("replay")(rejected.reason);
    }
  });
});
