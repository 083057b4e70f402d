/**
 * Bad input for every ratchet decoder (SPEC §25, DESIGN §9): messages to a conversation
 * and to `acceptConversation` (every truncation, every byte flipped, garbage, oversize,
 * unknown fields), prekey bundles and uploads, serialised states and keyrings. Each
 * failure is a typed MissiveError, and a failed message leaves the conversation or the
 * keyring byte for byte as it was, so the genuine message still opens afterwards.
 * @module
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Bytes, concatBytes, toHex, utf8 } from "../core/bytes.ts";
import { type CborMap, decodeCbor, encodeCbor } from "../core/cbor.ts";
import { MissiveError } from "../core/errors.ts";
import { getCryptoProvider } from "../crypto/mod.ts";
import { decodeEnvelope, encodeEnvelope, MAX_ENVELOPE_SIZE } from "../envelope/mod.ts";
import {
  acceptConversation,
  Conversation,
  decodePrekeyBundle,
  decodePrekeyUpload,
  encodePrekeyBundle,
  encodePrekeyUpload,
  PrekeyKeyring,
  startConversation,
} from "../stp/ratchet/mod.ts";
import { decodeRatchetPayload } from "../stp/ratchet/_format.ts";
import { fixedIdentity } from "./helpers.ts";
import { randomStream } from "./vectors/common.ts";

const T0 = 1_700_000_000_000;
const crypto = await getCryptoProvider();
const alice = await fixedIdentity("alice@example.org", 1);
const bob = await fixedIdentity("bob@example.org", 3);
const text = (s: string) => ({ ampType: 1, ampVersion: 1, body: utf8(s) });
const now = () => T0;
const isTyped = (e: unknown) => e instanceof MissiveError;

/** Every truncation, every byte XORed with 0x41, and some garbage, of `good`. */
function* badInputs(good: Uint8Array): Generator<[string, Uint8Array]> {
  for (let n = 0; n < good.length; n++) yield [`truncated to ${n}`, good.subarray(0, n)];
  for (let i = 0; i < good.length; i++) {
    const bad = good.slice();
    bad[i] ^= 0x41;
    yield [`byte ${i} flipped`, bad];
  }
  const garbage = randomStream("ratchet garbage");
  for (const n of [1, 3, 17, 100, 3000]) yield [`${n} random bytes`, garbage(n)];
  yield ["trailing byte", concatBytes(good, new Uint8Array(1))];
}

/** Asserts `f` fails with a MissiveError and `state()` is unchanged; returns the codes seen. */
async function refusedUnchanged(
  inputs: Iterable<[string, Uint8Array]>,
  f: (input: Uint8Array) => Promise<unknown>,
  state: () => Uint8Array,
): Promise<Set<string>> {
  const before = toHex(state());
  const codes = new Set<string>();
  for (const [what, input] of inputs) {
    const e = await f(input).then(() => undefined, (e) => e);
    assert.ok(isTyped(e), `${what}: ${e ?? "accepted"}`);
    codes.add((e as MissiveError).code);
    assert.equal(toHex(state()), before, `${what}: the state changed`);
  }
  return codes;
}

async function conversation() {
  const keyring = await PrekeyKeyring.create(bob, { now: T0, oneTime: 3 });
  const a = await startConversation(alice, { peer: bob.card, bundle: keyring.bundle(), now });
  const first = await a.encrypt(text("hello bob"));
  const second = await a.encrypt(text("second, still with the initial header"));
  const { conversation: b } = await acceptConversation(bob, first.envelope, { keyring, now });
  return { keyring, a, b, first: first.envelope, second: second.envelope };
}

describe("ratchet: bad input, state unchanged", () => {
  it("a conversation refuses every truncation, flip and garbage of a message; then opens it", async () => {
    const { a, b } = await conversation();
    const reply = (await b.encrypt(text("a reply in an established chain"))).envelope;
    const codes = await refusedUnchanged(
      badInputs(reply),
      (x) => a.decrypt(x),
      () => a.serialize(),
    );
    assert.ok(codes.has("malformed") && codes.has("auth-failed"), [...codes].join(" "));
    assert.equal(
      new TextDecoder().decode((await a.decrypt(reply)).inner.body),
      "a reply in an established chain",
    );
  });

  it("a responder's conversation refuses every flip of a message with the initial header", async () => {
    const { b, second } = await conversation();
    const flips = [...badInputs(second)].filter(([what]) => what.includes("flipped"));
    const codes = await refusedUnchanged(flips, (x) => b.decrypt(x), () => b.serialize());
    assert.ok(codes.has("auth-failed") && codes.has("session"), [...codes].join(" "));
    assert.ok(await b.decrypt(second));
  });

  it("acceptConversation refuses every truncation, flip and garbage of an initial message; the keyring is unchanged", async () => {
    const keyring = await PrekeyKeyring.create(bob, { now: T0, oneTime: 3 });
    const a = await startConversation(alice, { peer: bob.card, bundle: keyring.bundle(), now });
    const first = (await a.encrypt(text("hello bob"))).envelope;
    const codes = await refusedUnchanged(
      badInputs(first),
      (x) => acceptConversation(bob, x, { keyring, now }),
      () => keyring.serialize(),
    );
    for (const c of ["malformed", "auth-failed", "not-a-recipient"]) {
      assert.ok(codes.has(c), `${c} in ${[...codes].join(" ")}`);
    }
    assert.ok(await acceptConversation(bob, first, { keyring, now }));
  });

  it("oversize, unknown fields (grease), wrong protocol: typed, before any work", async () => {
    const { a, b } = await conversation();
    const reply = (await b.encrypt(text("x"))).envelope;
    const before = toHex(a.serialize());
    const big = new Uint8Array(MAX_ENVELOPE_SIZE + 1);
    big.set([0xd9, 0xd9, 0xf7]);
    await assert.rejects(
      a.decrypt(big),
      (e) => isTyped(e) && (e as MissiveError).code === "too-large",
    );
    const env = decodeEnvelope(reply);
    const payload = decodeCbor(env.payload) as CborMap;
    for (const key of [0, 6, 99, "grease"]) {
      const greased = new Map(payload).set(key, 1);
      const frame = encodeEnvelope({ ...env, payload: encodeCbor(greased) });
      await assert.rejects(a.decrypt(frame), (e) => (e as MissiveError).code === "malformed");
    }
    for (const [t, v] of [[9, 2], [2, 2], [5, 1]]) {
      const frame = encodeEnvelope({ ...env, protocolType: t, protocolVersion: v });
      await assert.rejects(
        a.decrypt(frame),
        (e) => (e as MissiveError).code === "unknown-protocol",
      );
    }
    // A non-canonical ratchet key (bit 255 set) is malformed, not a new chain.
    const k = (payload.get(1) as Uint8Array).slice();
    k[31] |= 0x80;
    const frame = encodeEnvelope({ ...env, payload: encodeCbor(new Map(payload).set(1, k)) });
    await assert.rejects(a.decrypt(frame), (e) => (e as MissiveError).code === "malformed");
    assert.equal(toHex(a.serialize()), before);
    await assert.rejects(
      acceptConversation(bob, reply, { keyring: await PrekeyKeyring.create(bob, { oneTime: 0 }) }),
      (e) => (e as MissiveError).code === "malformed",
    );
  });
});

describe("ratchet: bad input to the other decoders", () => {
  /** Runs `decode` on every bad input: a typed error, or (a flip in opaque bytes) a value. */
  async function typedOrValue(good: Uint8Array, decode: (x: Uint8Array) => unknown) {
    let refused = 0;
    for (const [what, input] of badInputs(good)) {
      try {
        await decode(input);
      } catch (e) {
        assert.ok(isTyped(e), `${what}: ${e}`);
        refused++;
      }
    }
    return refused;
  }

  it("prekey bundles and uploads", async () => {
    const keyring = await PrekeyKeyring.create(bob, { now: T0, oneTime: 3 });
    const bundle = encodePrekeyBundle(keyring.bundle());
    assert.ok((await typedOrValue(bundle, decodePrekeyBundle)) > bundle.length);
    const upload = encodePrekeyUpload(keyring.upload());
    assert.ok((await typedOrValue(upload, decodePrekeyUpload)) > upload.length);
    const m = decodeCbor(bundle) as CborMap;
    assert.throws(() => decodePrekeyBundle(encodeCbor(new Map(m).set(4, 0))), isTyped);
    const u = decodeCbor(upload) as CborMap;
    const repeated = [...(u.get(3) as CborMap[]), (u.get(3) as CborMap[])[0]];
    assert.throws(() => decodePrekeyUpload(encodeCbor(new Map(u).set(3, repeated))), isTyped);
    const tooMany = Array.from(
      { length: 101 },
      (_, i) => new Map((u.get(3) as CborMap[])[0]).set(1, i + 1),
    );
    assert.throws(() => decodePrekeyUpload(encodeCbor(new Map(u).set(3, tooMany))), isTyped);
  });

  it("ratchet payloads", async () => {
    const { first } = await conversation();
    const payload = decodeEnvelope(first).payload;
    assert.ok((await typedOrValue(payload, decodeRatchetPayload)) > payload.length);
  });

  it("serialised conversation states and keyrings", async () => {
    const { a, b, keyring } = await conversation();
    await a.decrypt((await b.encrypt(text("x"))).envelope);
    for (const state of [a.serialize(), b.serialize()]) {
      assert.ok(
        (await typedOrValue(state, (x) => Conversation.restore(x, { crypto }))) > state.length,
      );
    }
    const kr: Bytes = keyring.serialize();
    // The keyring is large (three X-Wing public keys): every truncation and a sample of flips.
    let refused = 0;
    for (const [what, input] of badInputs(kr)) {
      if (what.includes("flipped") && Number(what.split(" ")[1]) % 7 !== 0) continue;
      try {
        PrekeyKeyring.restore(input);
      } catch (e) {
        assert.ok(isTyped(e), `${what}: ${e}`);
        refused++;
      }
    }
    assert.ok(refused > kr.length);
  });
});
