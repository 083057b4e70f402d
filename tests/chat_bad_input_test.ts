/**
 * Hostile input to the chat (SPEC §27): malformed chat messages (every truncation,
 * flips, unknown kinds and fields, oversize), garbage / unsigned / replayed / stale LAN
 * announcements, and envelopes a model must refuse — each refused with a typed error or
 * reported with a reason, and the model goes on (a good request still works after).
 */
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { test } from "node:test";
import { type Bytes, randomBytes } from "../core/bytes.ts";
import { encodeCbor } from "../core/cbor.ts";
import { isMissiveError } from "../core/errors.ts";
import { getCryptoProvider } from "../crypto/mod.ts";
import { sealMessage } from "../plugin/message.ts";
import { encodePrekeyBundle, PrekeyKeyring } from "../stp/ratchet/mod.ts";
import {
  AnnounceGuard,
  type Carrier,
  type CarrierSink,
  type ChatEvent,
  ChatModel,
  decodeChatMessage,
  decodeDatagram,
  Discovery,
  encodeAnnouncement,
  encodeChatMessage,
  History,
} from "../chat/mod.ts";
import { chatRegistry } from "../chat/_incoming.ts";
import type { AmpPlugin } from "../plugin/types.ts";
import { fixedIdentity } from "./helpers.ts";

const malformed = (e: unknown) =>
  isMissiveError(e) && (e.code === "malformed" || e.code === "too-large");

test("chat messages: every truncation, flipped kinds, unknown fields and oversize are malformed", () => {
  const good = encodeChatMessage({
    kind: "request",
    requestId: new Uint8Array(16) as Bytes,
    note: "hi",
    bundle: new Uint8Array(40) as Bytes,
  });
  for (let n = 0; n < good.length; n++) {
    assert.throws(() => decodeChatMessage(good.subarray(0, n)), malformed);
  }
  const cases: [string, Map<number, unknown> | unknown][] = [
    ["unknown kind", new Map([[1, 8]])],
    ["missing kind", new Map([[5, "x"]])],
    ["text without text", new Map([[1, 3]])],
    [
      "text with a request ID",
      new Map<number, unknown>([[1, 3], [5, "x"], [2, new Uint8Array(16)]]),
    ],
    ["short request ID", new Map<number, unknown>([[1, 1], [2, new Uint8Array(15)]])],
    ["text too long", new Map<number, unknown>([[1, 3], [5, "x".repeat(4097)]])],
    ["note too long", new Map<number, unknown>([[1, 7], [3, "x".repeat(257)]])],
    ["empty receipt", new Map<number, unknown>([[1, 4], [6, 0], [7, []]])],
    ["receipt nonce size", new Map<number, unknown>([[1, 4], [6, 0], [7, [new Uint8Array(15)]]])],
    ["receipt state", new Map<number, unknown>([[1, 4], [6, 2], [7, [new Uint8Array(16)]]])],
    ["presence status", new Map<number, unknown>([[1, 5], [8, 4]])],
    ["not a map", [1, 3]],
    ["text key", new Map<unknown, unknown>([[1, 3], [5, "x"], ["a", 1]])],
  ];
  for (const [name, value] of cases) {
    assert.throws(() => decodeChatMessage(encodeCbor(value as never)), malformed, name);
  }
  // Grease fields (≥ 32) are ignored, as the spec says.
  const greased = encodeCbor(
    new Map<number, unknown>([[1, 3], [5, "hi"], [40, "grease"]]) as never,
  );
  assert.deepEqual(decodeChatMessage(greased), { kind: "text", text: "hi" });
});

test("LAN datagrams: garbage, unsigned, altered, replayed and stale announcements are refused", async () => {
  const crypto = await getCryptoProvider();
  const alice = await fixedIdentity("alice@example.org", 10);
  const good = await encodeAnnouncement(crypto, alice, {
    role: "chat",
    presence: "online",
    port: 4000,
    time: 1_000_000,
  });
  const d = await decodeDatagram(crypto, good);
  assert.equal(d.kind, "announce");
  const reject = async (bytes: Uint8Array, code: string) =>
    await assert.rejects(
      decodeDatagram(crypto, bytes),
      (e) => isMissiveError(e) && e.code === code,
    );
  await reject(randomBytes(100), "malformed");
  await reject(new Uint8Array(9000), "too-large");
  for (let n = 0; n < good.length; n += 97) await reject(good.subarray(0, n), "malformed");
  const flipped = new Uint8Array(good);
  flipped[flipped.length - 3] ^= 1; // inside the signature
  await reject(flipped, "auth-failed");
  const other = await fixedIdentity("mallory@example.org", 40);
  const forged = await encodeAnnouncement(crypto, other, {
    role: "chat",
    presence: "online",
    port: 4000,
    time: 1_000_000,
  });
  // Mallory's signature over Alice's card: an unsigned (by Alice) announcement.
  const m = new Map<number, unknown>([[1, 0], [2, alice.card.bytes], [3, 0], [4, 0], [5, 4000], [
    6,
    1_000_000,
  ], [7, forged.subarray(forged.length - 64)]]);
  await reject(encodeCbor(m as never), "auth-failed");
  const guard = new AnnounceGuard();
  guard.check("a", 1_000_000, 1_000_000);
  assert.throws(() => guard.check("a", 1_000_000, 1_000_001), (e) => isMissiveError(e, "replay"));
  assert.throws(
    () => guard.check("b", 1_000_000, 1_000_000 + 31_000),
    (e) => isMissiveError(e, "replay"),
  );
});

test("LAN discovery goes on after garbage, replays and floods, each reported with a reason", async () => {
  const crypto = await getCryptoProvider();
  const alice = await fixedIdentity("alice@example.org", 10);
  const bob = await fixedIdentity("bob@example.org", 20);
  const port = 40000 + Math.floor(Math.random() * 20000);
  const group = `239.255.77.79:${port}`;
  const problems: string[] = [];
  const listener = await Discovery.start({
    crypto,
    group,
    iface: "127.0.0.1",
    onProblem: (r) => problems.push(r),
  });
  const sock = dgram.createSocket({ type: "udp4", reuseAddr: true });
  await new Promise<void>((r) => sock.bind(0, "127.0.0.1", () => r()));
  sock.setMulticastInterface("127.0.0.1");
  const send = (b: Uint8Array) =>
    new Promise<void>((r) => sock.send(b, port, "239.255.77.79", () => r()));
  try {
    const stale = await encodeAnnouncement(crypto, alice, {
      role: "chat",
      presence: "online",
      port: 4000,
      time: Date.now() - 120_000,
    });
    const fresh = await encodeAnnouncement(crypto, alice, {
      role: "chat",
      presence: "busy",
      port: 4001,
      time: Date.now(),
    });
    await send(randomBytes(50));
    await send(stale);
    await send(fresh);
    await send(fresh); // replayed
    const until = async (ok: () => boolean) => {
      for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
    };
    await until(() => problems.length >= 3 && listener.peers().length === 1);
    assert.equal(listener.peers().length, 1);
    assert.equal(listener.peers()[0].presence, "busy");
    assert.ok(problems.some((p) => /malformed/.test(p)), problems.join("\n"));
    assert.ok(problems.some((p) => /stale/.test(p)), problems.join("\n"));
    assert.ok(problems.some((p) => /replayed/.test(p)), problems.join("\n"));
    // A flood from one source: rate-limited, reported, and Bob's announcement still counts.
    for (let i = 0; i < 60; i++) void send(randomBytes(20));
    await until(() => problems.some((p) => /rate-limited/.test(p)));
    await new Promise((r) => setTimeout(r, 1100));
    await send(
      await encodeAnnouncement(crypto, bob, {
        role: "chat",
        presence: "online",
        port: 4002,
        time: Date.now(),
      }),
    );
    await until(() => listener.find("bob@example.org") !== undefined);
    assert.ok(listener.find("bob@example.org"));
  } finally {
    sock.close();
    listener.close();
  }
});

/** A carrier the test drives: it injects envelopes as if they had come from `from`. */
function fakeCarrier() {
  let sink: CarrierSink | undefined;
  const carrier: Carrier = {
    name: "fake",
    start: (s) => ((sink = s), Promise.resolve()),
    lookup: () => Promise.reject(new Error("no")),
    send: () => Promise.resolve(),
    list: () => Promise.resolve([]),
    setPresence: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
  return {
    carrier,
    inject: (from: { address: string; id: Bytes }, e: Bytes) => sink!.envelope(from, e),
  };
}

test("a model refuses malformed and misplaced chat messages, with reasons, and goes on", async () => {
  const crypto = await getCryptoProvider();
  const bob = await fixedIdentity("bob@example.org", 20);
  const mallory = await fixedIdentity("mallory@example.org", 40);
  const history = await History.open(crypto, bob, ":memory:");
  const { carrier, inject } = fakeCarrier();
  const model = await ChatModel.open(bob, history, carrier, { crypto });
  const events: ChatEvent[] = [];
  model.on((e) => events.push(e));
  await model.start();
  const from = { address: mallory.card.address, id: mallory.card.id };
  const seal = (amp: AmpPlugin<unknown>, message: unknown) =>
    sealMessage({
      registry: chatRegistry(),
      stp: chatRegistry().stp(2, 3),
      amp,
      message,
      sender: mallory,
      recipients: [bob.card],
    });
  const rawChat: AmpPlugin<Uint8Array> = {
    kind: "amp",
    type: 8,
    version: 1,
    name: "raw",
    description: "",
    encode: (b) => b,
    decode: (b) => b,
  };
  const keyring = await PrekeyKeyring.create(mallory, { oneTime: 1 });
  const bundle = encodePrekeyBundle(keyring.bundle());
  const cases: [string, Bytes][] = [
    ["garbage", randomBytes(64)],
    ["a malformed chat body", await seal(rawChat, new Uint8Array([0xa1, 0x01, 0x09]))],
    [
      "a text outside a conversation",
      await seal(rawChat, encodeChatMessage({ kind: "text", text: "hi" })),
    ],
    [
      "a refusal of nothing",
      await seal(rawChat, encodeChatMessage({ kind: "refuse", requestId: randomBytes(16) })),
    ],
    [
      "a request with another's bundle",
      await seal(
        rawChat,
        encodeChatMessage({
          kind: "request",
          requestId: randomBytes(16),
          bundle: encodePrekeyBundle({ ...keyring.bundle(), identityId: bob.card.id }),
        }),
      ),
    ],
    [
      "an envelope from someone the carrier did not authenticate",
      await seal(
        rawChat,
        encodeChatMessage({ kind: "request", requestId: randomBytes(16), bundle }),
      ),
    ],
  ];
  for (const [name, envelope] of cases) {
    const sender = name.startsWith("an envelope from")
      ? { address: "eve@example.org", id: randomBytes(16) }
      : from;
    const before = events.length;
    const receipt = await inject(sender, envelope);
    assert.notEqual(receipt, "accepted", name);
    const reported = events.slice(before).filter((e) => e.type === "problem");
    assert.equal(reported.length, 1, `${name}: ${JSON.stringify(events.slice(before))}`);
  }
  assert.equal(events.filter((e) => e.type === "request").length, 0);
  const ok = await inject(
    from,
    await seal(
      rawChat,
      encodeChatMessage({ kind: "request", requestId: randomBytes(16), note: "hi", bundle }),
    ),
  );
  assert.equal(ok, "accepted");
  assert.ok(events.some((e) => e.type === "request" && e.address === "mallory@example.org"));
  await model.close();
});
