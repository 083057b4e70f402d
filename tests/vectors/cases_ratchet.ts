/**
 * Ratchet vectors (SPEC §25), part of tests/vectors/generate.ts. A vector is a recorded
 * conversation: the responder's keyring and the bundle the initiator starts from, then
 * steps in order — `send` (the exact envelope the side must produce), `receive` (a frame
 * sent earlier, possibly mutated, and the outcome), `restart` (state serialised and
 * restored; `forget` drops the conversation and keeps only the keyring), `rotate` (the
 * keyring's signed prekey). Every side draws from its own random stream (common.ts
 * randomStream): the keyring 32 bytes per X25519 secret and 32 per X-Wing seed; the
 * initiator its ephemeral key (32), its X-Wing encapsulation (64), its first ratchet key
 * (32); each side 32 more per DH ratchet step it makes on receiving. The vector's outcome
 * is its last step's; every earlier step succeeds. A failing step must leave the state
 * (conversation, or keyring on an initial message) byte for byte unchanged.
 * @module
 */
import { type Bytes, equalBytes, fromHex, fromUtf8, toHex, utf8 } from "../../core/bytes.ts";
import { type CborMap, type CborValue, decodeCbor } from "../../core/cbor.ts";
import { isMissiveError } from "../../core/errors.ts";
import type { CryptoProvider } from "../../crypto/provider.ts";
import { decodeEnvelope } from "../../envelope/mod.ts";
import type { Identity } from "../../keys/identity.ts";
import {
  acceptConversation,
  Conversation,
  encodePrekeyBundle,
  PrekeyKeyring,
  startConversation,
} from "../../stp/ratchet/mod.ts";
import { applyMutations, CREATED, get, type JsonCbor, type Mutation } from "./common.ts";

type Side = "initiator" | "responder" | "bystander";

/** One step of a vector as stored; the generator fills `frame` and `expect`. */
export type RatchetStep =
  | { op: "send"; by: Side; at: number; text: string; frame?: string }
  | {
    op: "receive";
    by: Side;
    at: number;
    input: { frame: number; mutations?: Mutation[] };
    expect?: { outcome: string; text?: string; stateUnchanged?: boolean };
  }
  | { op: "restart"; by: Side; at: number; forget?: boolean }
  | { op: "rotate"; at: number };

/** One vector of ratchet.json. */
export interface RatchetVector {
  name: string;
  description: string;
  initiator: string;
  responder: string;
  /** Receives through its own keyring (random stream `keyring.random + "/bystander"`). */
  bystander?: string;
  keyring: { random: string; created: number; oneTime: number };
  bundle: { oneTime: boolean; bytes?: string };
  random: { initiator: string; responder: string };
  steps: RatchetStep[];
  expect: { outcome: string };
}

/** The CBOR value of a mutation, from a decoded value. */
export function jsonCborOf(v: CborValue): JsonCbor {
  if (v instanceof Uint8Array) return { bytes: toHex(v) };
  if (v instanceof Map) return { map: [...v].map(([k, x]) => [k, jsonCborOf(x)]) };
  if (Array.isArray(v)) return v.map(jsonCborOf);
  return v;
}

/** The mutation that replaces an initial message's sender card (payload field 5, field 1). */
export function swapCardMutation(frame: Uint8Array, card: Uint8Array): Mutation {
  const payload = decodeCbor(decodeEnvelope(frame).payload) as CborMap;
  const initial = new Map(payload.get(5) as CborMap);
  initial.set(1, card);
  return { op: "set", target: "payload", key: 5, value: jsonCborOf(initial) };
}

/** An initial frame with another sender card (for tests). */
export const swapSenderCard = (frame: Uint8Array, card: Uint8Array): Bytes =>
  applyMutations(frame, [swapCardMutation(frame, card)]);

/** What playing a vector produced: the filled steps and the last outcome. */
export interface Played {
  bundle: string;
  steps: RatchetStep[];
  outcome: string;
}

/**
 * Plays a vector's steps with the implementation and records what happened. Throws when a
 * step before the last does not succeed (the vector would be ill-made).
 */
export async function playRatchetVector(
  crypto: CryptoProvider,
  ids: Map<string, Identity>,
  v: RatchetVector,
  streams: (seed: string) => (n: number) => Bytes,
): Promise<Played> {
  const clock = { now: v.keyring.created };
  const now = () => clock.now;
  const who = { initiator: get(ids, v.initiator), responder: get(ids, v.responder) };
  const keyringRandom = streams(v.keyring.random);
  let keyring = await PrekeyKeyring.create(who.responder, {
    crypto,
    random: keyringRandom,
    now: clock.now,
    oneTime: v.keyring.oneTime,
  });
  const bystander = v.bystander
    ? {
      identity: get(ids, v.bystander),
      keyring: await PrekeyKeyring.create(get(ids, v.bystander), {
        crypto,
        random: streams(`${v.keyring.random}/bystander`),
        now: clock.now,
        oneTime: 1,
      }),
    }
    : undefined;
  const bundle = keyring.bundle({ oneTime: v.bundle.oneTime });
  const random = { initiator: streams(v.random.initiator), responder: streams(v.random.responder) };
  const options = (side: "initiator" | "responder") => ({ crypto, random: random[side], now });
  const conv: Partial<Record<Side, Conversation>> = {
    initiator: await startConversation(who.initiator, {
      ...options("initiator"),
      peer: who.responder.card,
      bundle,
    }),
  };
  const frames: Bytes[] = [];
  const steps: RatchetStep[] = [];
  let outcome = "success";
  for (const [i, step] of v.steps.entries()) {
    const last = i === v.steps.length - 1;
    clock.now = step.at;
    if (step.op === "send") {
      const c = conv[step.by]!;
      const { envelope } = await c.encrypt({ ampType: 1, ampVersion: 1, body: utf8(step.text) });
      frames.push(envelope);
      steps.push({ ...step, frame: toHex(envelope) });
    } else if (step.op === "receive") {
      const input = applyMutations(frames[step.input.frame], step.input.mutations ?? []);
      const existing = conv[step.by];
      const k = step.by === "bystander" ? bystander!.keyring : keyring;
      const before = existing ? existing.serialize() : k.serialize();
      let expect: NonNullable<Extract<RatchetStep, { op: "receive" }>["expect"]>;
      try {
        let body: Uint8Array;
        if (existing) body = (await existing.decrypt(input)).inner.body;
        else {
          const identity = step.by === "bystander" ? bystander!.identity : who.responder;
          const side = step.by === "bystander" ? "responder" : step.by;
          const got = await acceptConversation(identity, input, { ...options(side), keyring: k });
          conv[step.by] = got.conversation;
          body = got.opened.inner.body;
        }
        expect = { outcome: "success", text: fromUtf8(body) };
      } catch (e) {
        if (!isMissiveError(e)) throw e;
        const after = existing ? existing.serialize() : k.serialize();
        expect = { outcome: e.code, stateUnchanged: equalBytes(before, after) };
      }
      steps.push({ ...step, expect });
      outcome = expect.outcome;
    } else if (step.op === "restart") {
      if (step.by === "responder") keyring = PrekeyKeyring.restore(keyring.serialize());
      const c = conv[step.by];
      if (c) {
        const bytes = c.serialize();
        c.close();
        const side = step.by === "bystander" ? "responder" : step.by;
        conv[step.by] = step.forget ? undefined : await Conversation.restore(bytes, options(side));
      }
      steps.push(step);
    } else {
      await keyring.rotate(who.responder, { crypto, random: keyringRandom, now: clock.now });
      steps.push(step);
    }
    if (!last && outcome !== "success") {
      throw new Error(`ratchet vector ${v.name}: step ${i} gave ${outcome}`);
    }
  }
  return { bundle: toHex(encodePrekeyBundle(bundle)), steps, outcome };
}

// ---------------------------------------------------------------------------------------
// The cases

const T = CREATED + 1234;
const MIN = 60_000;
const DAY = 86_400_000;

/** Step builders; times advance one minute per step unless given. */
function script() {
  let at = T;
  const steps: RatchetStep[] = [];
  let sent = -1;
  const api = {
    steps,
    /** Sends `text`; returns its frame index. */
    send(by: Side, text: string, when = (at += MIN)): number {
      at = when;
      steps.push({ op: "send", by, at, text });
      return ++sent;
    },
    receive(by: Side, frame: number, mutations?: Mutation[], when = (at += MIN)) {
      at = when;
      steps.push({ op: "receive", by, at, input: { frame, ...(mutations ? { mutations } : {}) } });
      return api;
    },
    /** Sends, then the peer receives. */
    say(by: "initiator" | "responder", text: string) {
      const f = api.send(by, text);
      api.receive(by === "initiator" ? "responder" : "initiator", f);
      return f;
    },
    restart(by: Side, forget = false) {
      steps.push({ op: "restart", by, at: at += MIN, ...(forget ? { forget } : {}) });
      return api;
    },
    rotate(when: number) {
      at = when;
      steps.push({ op: "rotate", at });
      return api;
    },
    get at() {
      return at;
    },
  };
  return api;
}

interface Case {
  name: string;
  description: string;
  outcome: string;
  initiator?: string;
  responder?: string;
  bystander?: string;
  oneTime?: boolean;
  build(s: ReturnType<typeof script>): void;
}

const xor = (key: number, offset: number, mask = 1): Mutation => ({
  op: "xor",
  target: "payload",
  key,
  offset,
  mask,
});
const setField = (key: number, value: JsonCbor): Mutation => ({
  op: "set",
  target: "payload",
  key,
  value,
});

/** The cases of ratchet.json: what each is meant to show and its intended outcome. */
export function ratchetCases(): Case[] {
  return [
    {
      name: "in-order",
      description: "initial message, reply, and two more rounds (a DH ratchet step on every reply)",
      outcome: "success",
      build(s) {
        s.say("initiator", "hello bob");
        s.say("responder", "hi alice");
        s.say("initiator", "how are you?");
        s.say("responder", "fine");
        s.say("initiator", "good");
      },
    },
    {
      name: "out-of-order",
      description:
        "bob's three messages arrive 2, 0, 1: the first read skips two keys, kept until used",
      outcome: "success",
      build(s) {
        s.say("initiator", "hello bob");
        const f = [
          s.send("responder", "one"),
          s.send("responder", "two"),
          s.send("responder", "three"),
        ];
        s.receive("initiator", f[2]).receive("initiator", f[0]).receive("initiator", f[1]);
      },
    },
    {
      name: "lost",
      description: "bob's second message is lost; the conversation goes on across DH steps",
      outcome: "success",
      build(s) {
        s.say("initiator", "hello bob");
        const f = [
          s.send("responder", "one"),
          s.send("responder", "lost"),
          s.send("responder", "three"),
        ];
        s.receive("initiator", f[0]).receive("initiator", f[2]);
        s.say("initiator", "got one and three");
        s.say("responder", "ok");
      },
    },
    {
      name: "initial-reordered",
      description: "alice sends two messages before any reply (both carry the initial header); " +
        "bob accepts from the second, then reads the first in the same conversation",
      outcome: "success",
      build(s) {
        const f = [s.send("initiator", "first"), s.send("initiator", "second")];
        s.receive("responder", f[1]).receive("responder", f[0]);
        s.say("responder", "both here");
      },
    },
    {
      name: "no-one-time-prekey",
      description:
        "the bundle has no one-time prekey (the store ran out): three DH outputs and the KEM",
      outcome: "success",
      oneTime: false,
      build(s) {
        s.say("initiator", "hello bob");
        s.say("responder", "hi");
      },
    },
    {
      name: "classical-cards",
      description:
        "dave's format-1 card (no hybrid key: null in the identity binding) starts with bob",
      outcome: "success",
      initiator: "dave",
      build(s) {
        s.say("initiator", "hello bob");
        s.say("responder", "hi dave");
      },
    },
    {
      name: "restart-both",
      description: "both sides serialise and restore their state mid-conversation",
      outcome: "success",
      build(s) {
        s.say("initiator", "hello bob");
        s.restart("responder").restart("initiator");
        s.say("responder", "after restart");
        s.say("initiator", "still here");
      },
    },
    {
      name: "grace-period",
      description: "bob rotates his signed prekey 7 days later; an initial message made from the " +
        "old bundle 20 days later (6 days into the 14-day grace) is accepted",
      outcome: "success",
      build(s) {
        const f = s.send("initiator", "from an old bundle");
        s.rotate(T + 7 * DAY);
        s.receive("responder", f, undefined, T + 20 * DAY);
      },
    },
    {
      name: "duplicate",
      description: "alice reads bob's reply twice",
      outcome: "replay",
      build(s) {
        s.say("initiator", "hello bob");
        const f = s.say("responder", "once");
        s.receive("initiator", f);
      },
    },
    {
      name: "duplicate-skipped",
      description: "a message read late from its skipped key, then again",
      outcome: "replay",
      build(s) {
        s.say("initiator", "hello bob");
        const f = [s.send("responder", "late"), s.send("responder", "early")];
        s.receive("initiator", f[1]).receive("initiator", f[0]).receive("initiator", f[0]);
      },
    },
    {
      name: "duplicate-old-chain",
      description: "a message of a finished receiving chain (after a DH step), read again",
      outcome: "replay",
      build(s) {
        s.say("initiator", "hello bob");
        const f = s.say("responder", "old chain");
        s.say("initiator", "new step");
        s.say("responder", "newer");
        s.receive("initiator", f);
      },
    },
    {
      name: "skipped-beyond-limit",
      description: "a header claiming message 1002 of the current chain after message 0 " +
        "(1001 to skip > 1000)",
      outcome: "too-large",
      build(s) {
        s.say("initiator", "hello bob");
        s.say("responder", "zero");
        const f = s.send("responder", "one");
        s.receive("initiator", f, [setField(3, 1002)]);
      },
    },
    {
      name: "skipped-beyond-limit-previous-chain",
      description: "a new chain whose header claims 1002 messages in the previous one, of which " +
        "one was read (1001 to skip > 1000)",
      outcome: "too-large",
      build(s) {
        s.say("initiator", "hello bob");
        s.say("responder", "zero");
        s.say("initiator", "step");
        const f = s.send("responder", "new chain");
        s.receive("initiator", f, [setField(2, 1002)]);
      },
    },
    {
      name: "expired",
      description: "a skipped message key kept more than 14 days",
      outcome: "replay",
      build(s) {
        s.say("initiator", "hello bob");
        const f = [s.send("responder", "late"), s.send("responder", "early")];
        s.receive("initiator", f[1]);
        s.receive("initiator", f[0], undefined, s.at + 14 * DAY + 1);
      },
    },
    {
      name: "wrong-identity-recipient",
      description: "alice's initial message to carol is delivered to bob",
      outcome: "not-a-recipient",
      responder: "carol",
      bystander: "bob",
      build(s) {
        const f = s.send("initiator", "for carol");
        s.receive("bystander", f);
      },
    },
    {
      name: "wrong-identity-sender",
      description: "the initial message's sender card replaced by mallory's (valid) card",
      outcome: "auth-failed",
      build(s) {
        const f = s.send("initiator", "hello bob");
        s.receive("responder", f, [{ op: "set", target: "payload", key: 0, value: "MALLORY" }]);
      },
    },
    {
      name: "tampered-header-ratchet-key",
      description: "one bit of the ratchet key (field 1) flipped",
      outcome: "auth-failed",
      build(s) {
        s.say("initiator", "hello bob");
        const f = s.send("responder", "reply");
        s.receive("initiator", f, [xor(1, 0)]);
      },
    },
    {
      name: "tampered-header-number",
      description: "the message number (field 3) raised by one",
      outcome: "auth-failed",
      build(s) {
        s.say("initiator", "hello bob");
        s.say("responder", "zero");
        const f = s.send("responder", "one");
        s.receive("initiator", f, [setField(3, 2)]);
      },
    },
    {
      name: "tampered-header-previous",
      description: "the previous chain length (field 2) of a new chain lowered",
      outcome: "auth-failed",
      build(s) {
        s.say("initiator", "hello bob");
        s.say("responder", "zero");
        s.say("responder", "one");
        s.say("initiator", "step");
        const f = s.send("responder", "new chain");
        s.receive("initiator", f, [setField(2, 1)]);
      },
    },
    {
      name: "tampered-initial-ephemeral",
      description: "one bit of the initial header's ephemeral key flipped",
      outcome: "auth-failed",
      build(s) {
        const f = s.send("initiator", "hello bob");
        s.receive("responder", f, [{ op: "set", target: "payload", key: 0, value: "EPHEMERAL" }]);
      },
    },
    {
      name: "tampered-sequence-number",
      description:
        "an envelope sequence number added in transit (the AAD binds the envelope header)",
      outcome: "auth-failed",
      build(s) {
        s.say("initiator", "hello bob");
        const f = s.send("responder", "reply");
        s.receive("initiator", f, [{ op: "set", target: "envelope", key: 3, value: 7 }]);
      },
    },
    {
      name: "tampered-body",
      description: "one bit of the ciphertext flipped",
      outcome: "auth-failed",
      build(s) {
        s.say("initiator", "hello bob");
        const f = s.send("responder", "reply");
        s.receive("initiator", f, [xor(4, 0)]);
      },
    },
    {
      name: "tampered-tag",
      description: "one bit of the GCM tag (the ciphertext's last byte) flipped",
      outcome: "auth-failed",
      build(s) {
        const f = s.send("initiator", "hello bob");
        s.receive("responder", f, [xor(4, -1, 0x80)]);
      },
    },
    {
      name: "replayed-initial",
      description: "after the conversation, bob restarts from his stored keyring (conversation " +
        "forgotten) and alice's initial message is replayed: its one-time prekey is gone",
      outcome: "replay",
      build(s) {
        const f = s.say("initiator", "hello bob");
        s.say("responder", "hi");
        s.restart("responder", true);
        s.receive("responder", f);
      },
    },
    {
      name: "replayed-initial-no-one-time-prekey",
      description: "the same without a one-time prekey: the keyring remembers the ephemeral key",
      outcome: "replay",
      oneTime: false,
      build(s) {
        const f = s.say("initiator", "hello bob");
        s.restart("responder", true);
        s.receive("responder", f);
      },
    },
    {
      name: "expired-signed-prekey",
      description: "an initial message to a signed prekey replaced more than 14 days ago",
      outcome: "key",
      build(s) {
        const f = s.send("initiator", "too late");
        s.rotate(T + 7 * DAY).rotate(T + 21 * DAY);
        s.receive("responder", f);
      },
    },
    {
      name: "unknown-field",
      description: "a payload with an extra field 6",
      outcome: "malformed",
      build(s) {
        s.say("initiator", "hello bob");
        const f = s.send("responder", "reply");
        s.receive("initiator", f, [setField(6, 0)]);
      },
    },
    {
      name: "initial-header-removed",
      description: "the initial header (field 5) removed from alice's first message",
      outcome: "malformed",
      build(s) {
        const f = s.send("initiator", "hello bob");
        s.receive("responder", f, [{ op: "delete", target: "payload", key: 5 }]);
      },
    },
    {
      name: "wrong-version",
      description: "the envelope's protocol version changed to 2",
      outcome: "unknown-protocol",
      build(s) {
        s.say("initiator", "hello bob");
        const f = s.send("responder", "reply");
        s.receive("initiator", f, [{ op: "set", target: "envelope", key: 2, value: 2 }]);
      },
    },
  ];
}

/** Placeholders in mutations that need bytes made during play (a card, a flipped key). */
function resolveMutations(
  steps: RatchetStep[],
  frames: Bytes[],
  ids: Map<string, Identity>,
): void {
  for (const step of steps) {
    if (step.op !== "receive" || !step.input.mutations) continue;
    step.input.mutations = step.input.mutations.map((m) => {
      if (m.op !== "set" || m.key !== 0) return m;
      const frame = frames[step.input.frame];
      if (m.value === "MALLORY") return swapCardMutation(frame, get(ids, "mallory").card.bytes);
      const payload = decodeCbor(decodeEnvelope(frame).payload) as CborMap;
      const initial = new Map(payload.get(5) as CborMap);
      const ek = new Uint8Array(initial.get(5) as Uint8Array);
      ek[0] ^= 1;
      initial.set(5, ek);
      return { op: "set", target: "payload", key: 5, value: jsonCborOf(initial) };
    });
  }
}

/** Builds ratchet.json's vectors from the cases; each must have its intended outcome. */
export async function ratchetVectors(
  crypto: CryptoProvider,
  ids: Map<string, Identity>,
  streams: (seed: string) => (n: number) => Bytes,
): Promise<RatchetVector[]> {
  const out: RatchetVector[] = [];
  for (const c of ratchetCases()) {
    const s = script();
    c.build(s);
    const v: RatchetVector = {
      name: c.name,
      description: c.description,
      initiator: c.initiator ?? "alice",
      responder: c.responder ?? "bob",
      ...(c.bystander ? { bystander: c.bystander } : {}),
      keyring: { random: `ratchet/${c.name}/keyring`, created: CREATED, oneTime: 3 },
      bundle: { oneTime: c.oneTime ?? true },
      random: {
        initiator: `ratchet/${c.name}/initiator`,
        responder: `ratchet/${c.name}/responder`,
      },
      steps: s.steps,
      expect: { outcome: c.outcome },
    };
    // Placeholders need the frames: play the sends first (the last step is the receive).
    const sends = await playRatchetVector(
      crypto,
      ids,
      { ...v, steps: v.steps.slice(0, -1) },
      streams,
    );
    const frames = sends.steps.filter((x) => x.op === "send").map((x) => fromHex(x.frame!)!);
    resolveMutations(v.steps, frames, ids);
    const played = await playRatchetVector(crypto, ids, v, streams);
    if (played.outcome !== c.outcome) {
      throw new Error(`ratchet vector ${c.name}: ${played.outcome}, meant ${c.outcome}`);
    }
    const last = played.steps[played.steps.length - 1];
    if (c.outcome !== "success" && !(last.op === "receive" && last.expect?.stateUnchanged)) {
      throw new Error(`ratchet vector ${c.name}: the failure changed the state`);
    }
    out.push({ ...v, bundle: { ...v.bundle, bytes: played.bundle }, steps: played.steps });
  }
  return out;
}
