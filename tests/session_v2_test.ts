/**
 * Session version 2 (SPEC §22.12): the X-Wing (ML-KEM-768 + X25519) encapsulation in
 * every handshake and re-key, version negotiation (v2 ↔ v1 interop, `requirePq`), the
 * events' `version` and `kem`, and bad input for the new hello-body fields. The
 * man-in-the-middle downgrade tests are in session_mitm_test.ts.
 * @module
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Bytes, randomBytes } from "../core/bytes.ts";
import { encodeCbor } from "../core/cbor.ts";
import { isMissiveError } from "../core/errors.ts";
import { XWING_CIPHERTEXT_SIZE, XWING_PUBLIC_KEY_SIZE } from "../crypto/xwing.ts";
import {
  decodeHelloBodyV2,
  decodeVersionedFrame,
  encodeFrame,
  encodeHelloBody,
  MAX_SIGNED_BODY_V2,
  MessageType,
} from "../session/messages.ts";
import { resolveVersions } from "../session/options.ts";
import { fixedIdentity } from "./helpers.ts";
import { Wire } from "./session_proxy.ts";

const alice = await fixedIdentity("alice@example.org", 1);
const bob = await fixedIdentity("bob@example.org", 3);
const classicalAlice = await fixedIdentity("alice@example.org", 1, { hybrid: false });

function wire(client: object = {}, server: object = {}) {
  return new Wire(
    { identity: alice, peer: bob.card, ...client },
    { identity: bob, trusted: [alice.card, classicalAlice.card], ...server },
  );
}

const handshakes = (w: Wire) =>
  [w.client, w.server].map((e) => e.events.find((x) => x.type === "handshake"));

/** Expects a typed MissiveError (and nothing else) from `f`. */
function typed(f: () => unknown, what: string): void {
  try {
    f();
  } catch (e) {
    assert.ok(isMissiveError(e), `${what}: ${e}`);
    assert.notEqual(e.code, "internal", what);
    return;
  }
}

describe("session v2: negotiation", () => {
  it("two default ends speak version 2 with the X-Wing KEM, hybrid or classical cards", async () => {
    for (const identity of [alice, classicalAlice]) {
      const w = wire({ identity });
      await w.start();
      assert.equal(w.client.machine.state, "open");
      assert.equal(w.server.machine.state, "open");
      for (const e of handshakes(w)) {
        assert.equal(e?.type === "handshake" && e.version, 2);
        assert.equal(e?.type === "handshake" && e.kem, "mlkem768x25519");
      }
      assert.equal(w.client.machine.version, 2);
      assert.equal(w.server.machine.version, 2);
      assert.equal(w.seen[0].bytes[7], 2, "the HELLO's envelope is (5, 2)");
      await w.send("client", "over ML-KEM");
      assert.deepEqual(w.server.delivered, ["over ML-KEM"]);
    }
  });

  it("a v1 client and a default server interoperate on version 1 (x25519)", async () => {
    const w = wire({ versions: [1] });
    await w.start();
    for (const e of handshakes(w)) {
      assert.equal(e?.type === "handshake" && e.version, 1);
      assert.equal(e?.type === "handshake" && e.kem, "x25519");
    }
    await w.send("client", "classical");
    await w.send("server", "still works");
    assert.deepEqual(w.server.delivered, ["classical"]);
    assert.deepEqual(w.client.delivered, ["still works"]);
    assert.ok(w.seen.every((s) => s.bytes[7] === 1), "every frame is (5, 1)");
  });

  it("requirePq: a server refuses a v1 client with a signed CLOSE, both `untrusted`", async () => {
    const w = wire({ versions: [1] }, { requirePq: true });
    await w.start();
    assert.equal(w.server.ended?.error?.code, "untrusted");
    assert.match(w.server.ended!.error!.message, /requires version 2.*--require-pq/);
    assert.equal(w.client.ended?.error?.code, "untrusted");
    assert.match(w.client.ended!.error!.message, /offered only session version 1/);
    assert.deepEqual(w.types("s2c"), ["CLOSE"]);
    assert.ok(!handshakes(w).some(Boolean), "no handshake completed");
  });

  it("requirePq: a client offers version 2 alone and never accepts a v1 answer", async () => {
    const w = wire({ requirePq: true });
    await w.start();
    assert.equal(w.client.machine.version, 2);
    const hello = w.seen[0].frame!;
    assert.equal(hello.form, "signed");
    const body = decodeHelloBodyV2(hello.form === "signed" ? hello.body : new Uint8Array(), 1);
    assert.deepEqual(body.offered, [2]);
    // A v1 HELLO_ACK (another session's, genuinely bob's) is another protocol to it.
    const v1 = wire({ versions: [1] });
    await v1.input("server", { type: "start" });
    await v1.input("client", { type: "start" });
    await v1.run();
    const v1Ack = v1.seen.find((s) => s.type === "HELLO_ACK")!.bytes;
    const c = wire({ requirePq: true });
    c.policy = (s) => (s.type === "HELLO" ? "drop" : "forward");
    await c.start();
    c.inject("s2c", v1Ack);
    await c.run();
    assert.equal(c.client.ended?.error?.code, "unknown-protocol");
    assert.equal(c.client.machine.state, "failed");
  });

  it("requirePq with s0: the v1 HELLO is verified (MAC included) and refused as untrusted", async () => {
    const s0 = new TextEncoder().encode("a shared secret of 32 characters");
    const w = wire({ versions: [1], s0 }, { requirePq: true, s0 });
    await w.start();
    assert.equal(w.server.ended?.error?.code, "untrusted");
    assert.equal(w.client.ended?.error?.code, "untrusted");
  });

  it("a default client is refused, not downgraded, by a server speaking only v1", async () => {
    const w = wire({}, { versions: [1] });
    await w.start();
    assert.equal(w.server.ended?.error?.code, "untrusted");
    assert.equal(w.client.ended?.error?.code, "untrusted");
    assert.match(w.client.ended!.error!.message, /speaks only version 1/);
  });

  it("every re-key of a v2 session encapsulates afresh and reports version 2", async () => {
    const w = wire({ rekeyAfter: 2 }, { rekeyAfter: 2 });
    await w.start();
    for (let i = 0; i < 6; i++) await w.send(i % 2 ? "server" : "client", `m${i}`);
    const rekeys = w.client.events.filter((e) => e.type === "rekey");
    assert.ok(rekeys.length >= 2, `${rekeys.length} re-keys`);
    for (const e of rekeys) {
      assert.equal(e.type === "rekey" && e.version, 2);
      assert.equal(e.type === "rekey" && e.kem, "mlkem768x25519");
    }
    // Each re-key HELLO (sealed) carries a fresh encapsulation key: sizes show it.
    const rekeyHellos = w.seen.filter((s) => s.direction === "s2c" && s.type === "HELLO");
    assert.ok(rekeyHellos.every((s) => s.bytes.length > XWING_PUBLIC_KEY_SIZE));
    assert.deepEqual(w.server.delivered, ["m0", "m2", "m4"]);
  });

  it("an altered ML-KEM key in a HELLO ends the handshake with a typed error", async () => {
    const w = wire();
    w.policy = (s) => {
      if (s.type !== "HELLO" || s.frame?.form !== "signed") return "forward";
      const body = decodeHelloBodyV2(s.frame.body, MessageType.HELLO);
      const kem = new Uint8Array(body.kem!).fill(0xff, 0, 3); // coefficients ≥ q
      return [encodeFrame({ ...s.frame, body: encodeHelloBody({ ...body, kem }) }, 2)];
    };
    await w.start();
    assert.ok(["auth-failed", "key"].includes(w.server.ended?.error?.code ?? ""));
    assert.equal(w.client.machine.state, "failed");
  });

  it("options: unknown versions and requirePq without version 2 are usage errors", () => {
    assert.deepEqual(resolveVersions({}), [2, 1]);
    assert.deepEqual(resolveVersions({ requirePq: true }), [2]);
    assert.deepEqual(resolveVersions({ versions: [1, 2] }), [2, 1]);
    for (const bad of [{ versions: [3 as 1] }, { versions: [1] as const, requirePq: true }]) {
      assert.throws(() => resolveVersions(bad), { code: "usage" });
    }
  });
});

describe("session v2: bad input in the new fields", () => {
  const hello = encodeHelloBody({
    ephemeralKey: new Uint8Array(32).fill(9),
    card: alice.card.bytes,
    offered: [2, 1],
    kem: new Uint8Array(XWING_PUBLIC_KEY_SIZE).fill(1),
  });
  const ack = encodeHelloBody({
    ephemeralKey: new Uint8Array(32).fill(9),
    card: bob.card.bytes,
    chosen: 2,
    kem: new Uint8Array(XWING_CIPHERTEXT_SIZE).fill(2),
  });
  const H = MessageType.HELLO, A = MessageType.HELLO_ACK;

  it("round-trips and checks each field's shape", () => {
    assert.deepEqual(decodeHelloBodyV2(hello, H).offered, [2, 1]);
    assert.equal(decodeHelloBodyV2(ack, A).chosen, 2);
    // A HELLO_ACK body is not a HELLO body and the reverse (field 4 and 5 differ).
    assert.throws(() => decodeHelloBodyV2(hello, A), { code: "malformed" });
    assert.throws(() => decodeHelloBodyV2(ack, H), { code: "malformed" });
    const card = alice.card.bytes, e = new Uint8Array(32);
    const kem = new Uint8Array(XWING_PUBLIC_KEY_SIZE);
    const bad: [string, Map<number, unknown>, MessageType][] = [
      [
        "offer without 2 first",
        new Map<number, unknown>([[1, e], [2, card], [4, [1]], [5, kem]]),
        H,
      ],
      [
        "offer not descending",
        new Map<number, unknown>([[1, e], [2, card], [4, [2, 2]], [5, kem]]),
        H,
      ],
      [
        "offer too long",
        new Map<number, unknown>([[1, e], [2, card], [4, [2, 1, 0, 0, 0, 0, 0, 0, 0]], [5, kem]]),
        H,
      ],
      ["offer of text", new Map<number, unknown>([[1, e], [2, card], [4, ["2"]], [5, kem]]), H],
      ["offer missing", new Map<number, unknown>([[1, e], [2, card], [5, kem]]), H],
      ["kem missing", new Map<number, unknown>([[1, e], [2, card], [4, [2]]]), H],
      [
        "kem one byte long",
        new Map<number, unknown>([[1, e], [2, card], [4, [2]], [
          5,
          new Uint8Array(XWING_PUBLIC_KEY_SIZE + 1),
        ]]),
        H,
      ],
      [
        "kem one byte short",
        new Map<number, unknown>([[1, e], [2, card], [4, [2]], [5, kem.subarray(1)]]),
        H,
      ],
      [
        "unknown field 6",
        new Map<number, unknown>([[1, e], [2, card], [4, [2]], [5, kem], [6, 0]]),
        H,
      ],
      [
        "chosen 1",
        new Map<number, unknown>([[1, e], [2, card], [4, 1], [
          5,
          new Uint8Array(XWING_CIPHERTEXT_SIZE),
        ]]),
        A,
      ],
      [
        "chosen as a list",
        new Map<number, unknown>([[1, e], [2, card], [4, [2]], [
          5,
          new Uint8Array(XWING_CIPHERTEXT_SIZE),
        ]]),
        A,
      ],
    ];
    for (const [what, map, type] of bad) {
      assert.throws(
        () => decodeHelloBodyV2(encodeCbor(map as never), type),
        { code: "malformed" },
        what,
      );
    }
  });

  it("truncations, bit flips and garbage give typed errors only", () => {
    for (const [body, type] of [[hello, H], [ack, A]] as const) {
      for (let n = 0; n < body.length; n += 7) {
        assert.throws(() => decodeHelloBodyV2(body.subarray(0, n), type), isMissiveError);
      }
      for (let i = 0; i < 400; i++) {
        const flipped = new Uint8Array(body);
        flipped[(i * 7919) % flipped.length] ^= 1 << (i % 8);
        typed(() => decodeHelloBodyV2(flipped, type), `flip ${i}`);
      }
    }
    for (let i = 0; i < 200; i++) typed(() => decodeHelloBodyV2(randomBytes(i * 13), H), "garbage");
  });

  it("frames: a v2 signed body is capped; a version not accepted is unknown-protocol", () => {
    const signed = (body: Bytes) => ({
      seq: 1,
      type: MessageType.HELLO,
      time: 1,
      form: "signed" as const,
      body,
      signature: new Uint8Array(64),
    });
    const ok = encodeFrame(signed(new Uint8Array(MAX_SIGNED_BODY_V2)), 2);
    assert.equal(decodeVersionedFrame(ok, 1 << 20, [2]).version, 2);
    assert.throws(() => decodeVersionedFrame(ok, 1 << 20, [1]), { code: "unknown-protocol" });
    // The v2 cap is not v1's: the same body in a v1 frame is too large.
    assert.throws(
      () =>
        decodeVersionedFrame(encodeFrame(signed(new Uint8Array(MAX_SIGNED_BODY_V2)), 1), 1 << 20, [
          1,
          2,
        ]),
      { code: "malformed" },
    );
    const over = encodeFrame(signed(new Uint8Array(MAX_SIGNED_BODY_V2 + 1)), 2);
    assert.throws(() => decodeVersionedFrame(over, 1 << 20, [2]), { code: "malformed" });
  });
});
