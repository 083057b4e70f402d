/**
 * Session vectors (SPEC §22), part of tests/vectors/generate.ts. A vector is a recorded
 * exchange: the frames one side (the side under test) receives, in order, and exactly
 * the frames it must send back, the messages it must deliver and the outcome. Both sides
 * are deterministic: each draws from its own random stream (common.ts randomStream: 4
 * bytes for its first sequence number, then 32 per ephemeral X25519 key, in order), the
 * clock stands at NOW, DATA_ACK is immediate, the window is 1. Failure vectors edit the
 * input frames of a recorded success; some frames are built from SPEC §22.5 alone
 * (`specKeys`, `specSeal`, noble primitives only), which also checks the key schedule.
 * @module
 */
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { x25519 } from "@noble/curves/ed25519.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { type Bytes, concatBytes, fromHex, toHex, utf8 } from "../../core/bytes.ts";
import { transcript } from "../../core/cbor.ts";
import type { CryptoProvider } from "../../crypto/provider.ts";
import { decodeEnvelope, encodeEnvelope } from "../../envelope/mod.ts";
import { isMissiveError } from "../../core/errors.ts";
import type { Identity } from "../../keys/identity.ts";
import { FakeClock } from "../../session/clock.ts";
import {
  decodeFrame,
  decodeHelloBody,
  encodeDataBody,
  encodeFrame,
  type Frame,
  MessageType,
  messageTypeName,
} from "../../session/messages.ts";
import { Session } from "../../session/session.ts";
import { memoryTransportPair } from "../../transports/memory.ts";
import type { Transport } from "../../transports/types.ts";
import { get, NOW, randomStream } from "./common.ts";

/** One session vector as stored in session.json. */
export interface SessionVector {
  name: string;
  description: string;
  /** The side under test. */
  side: "client" | "server";
  client: string;
  server: string;
  /** Client: the pinned server card (identity name). Server: the admitted client cards. */
  peer: string;
  trusted: string[];
  rekeyAfter: number;
  /** Pre-shared s0 as UTF-8 text, when configured on both sides. */
  s0?: string;
  /** Random stream seeds of the client and the server. */
  random: { client: string; server: string };
  /**
   * The session versions each side speaks (SPEC §22.12; session_v2.json), highest
   * first. Absent: version 1 alone on both sides (session.json).
   */
  versions?: { client: (1 | 2)[]; server: (1 | 2)[] };
  clock: number;
  /** Messages the client sends, in order (UTF-8). */
  messages: string[];
  /** Frames the side under test receives, hex. */
  inputs: string[];
  expect: {
    outcome: "success" | "discarded" | string;
    /** Frames the side under test sends, hex, and their type names. */
    outputs: string[];
    outputTypes: string[];
    delivered: string[];
    keyIds: string[];
    /** The error's message, for failures. */
    message?: string;
  };
}

const TTL_MS = 25_000;

/**
 * Lets the side under test work until nothing new happens for 20 event-loop turns
 * (timer turns, so WebCrypto's asynchronous operations finish too). The fake clock does
 * not move, so no protocol timer fires meanwhile.
 */
async function quiesce(count: () => number, atLeast = 0): Promise<void> {
  let last = -1;
  let stable = 0;
  for (let i = 0; i < 5000 && (stable < 20 || count() < atLeast); i++) {
    await new Promise<void>((r) => setTimeout(r, 0));
    const n = count();
    stable = n === last ? stable + 1 : 0;
    last = n;
  }
}

interface Setup {
  provider: CryptoProvider;
  ids: Map<string, Identity>;
  v: Omit<SessionVector, "inputs" | "expect" | "side">;
}

function sessionOptions(s: Setup, side: "client" | "server", clock: FakeClock) {
  return {
    provider: s.provider,
    clock,
    random: randomStream(s.v.random[side]),
    ack: "immediate" as const,
    window: 1,
    rekeyAfter: s.v.rekeyAfter,
    s0: s.v.s0 === undefined ? undefined : utf8(s.v.s0),
    versions: s.v.versions?.[side] ?? [1] as const,
  };
}

function startSide(s: Setup, side: "client" | "server", transport: Transport, clock: FakeClock) {
  const events: string[] = [];
  const options = {
    ...sessionOptions(s, side, clock),
    onEvent: (e: { type: string; keyId?: string }) => {
      if (e.keyId) events.push(e.keyId);
    },
  };
  const session = side === "client"
    ? Session.connect(transport, get(s.ids, s.v.client), {
      ...options,
      peer: get(s.ids, s.v.peer).card,
    })
    : Session.accept(transport, get(s.ids, s.v.server), {
      ...options,
      trusted: s.v.trusted.map((n) => get(s.ids, n).card),
    });
  return { session, keyIds: events };
}

/** Records a whole exchange between a real client and server. */
export async function recordExchange(s: Setup): Promise<{ c2s: Bytes[]; s2c: Bytes[] }> {
  const clock = new FakeClock(s.v.clock);
  const [client, proxyA] = memoryTransportPair();
  const [proxyB, server] = memoryTransportPair();
  const c2s: Bytes[] = [];
  const s2c: Bytes[] = [];
  const pipe = async (from: Transport, to: Transport, log: Bytes[]) => {
    try {
      for await (const f of from.frames()) {
        log.push(new Uint8Array(f));
        await to.send(f);
      }
    } catch { /* closed */ }
    await to.close();
  };
  void pipe(proxyA, proxyB, c2s);
  void pipe(proxyB, proxyA, s2c);
  const c = startSide(s, "client", client, clock);
  const sv = startSide(s, "server", server, clock);
  const [cs, ss] = await Promise.all([c.session, sv.session]);
  const reading = (async () => {
    for await (const _ of ss.messages()) { /* delivered */ }
  })();
  for (const m of s.v.messages) await cs.send(utf8(m));
  await cs.close();
  await reading;
  await quiesce(() => c2s.length + s2c.length);
  return { c2s, s2c };
}

/** Runs one side against fixed input frames; what it sent, delivered, and how it ended. */
export async function runSessionVector(
  provider: CryptoProvider,
  ids: Map<string, Identity>,
  v: Omit<SessionVector, "expect">,
  /** When checking: how many outputs and deliveries to wait for at least (a loaded machine). */
  expected?: SessionVector["expect"],
): Promise<SessionVector["expect"]> {
  const clock = new FakeClock(v.clock);
  const [mine, theirs] = memoryTransportPair({ capacity: 1024 });
  const outputs: Bytes[] = [];
  const reader = (async () => {
    for await (const f of theirs.frames()) outputs.push(new Uint8Array(f));
  })().catch(() => {});
  const side = startSide({ provider, ids, v }, v.side, mine, clock);
  const delivered: string[] = [];
  let error: unknown;
  let detached = false;
  let state = "";
  const running = side.session.then(async (session) => {
    for await (const m of session.messages()) delivered.push(toHex(m));
  }).catch((e) => {
    if (!detached) error ??= e;
  });
  side.session.then((sn) => (state = sn.state), () => {});
  for (const input of v.inputs) await theirs.send(fromHex(input)!).catch(() => {});
  await quiesce(
    () => outputs.length + delivered.length,
    (expected?.outputs.length ?? 0) + (expected?.delivered.length ?? 0),
  );
  const session = await side.session.catch(() => undefined);
  error ??= session?.error;
  state = session?.state ?? state;
  detached = true; // what follows is the harness hanging up, not part of the vector
  await theirs.close();
  await running;
  await reader;
  const outcome = error
    ? (isMissiveError(error) ? error.code : `unexpected: ${error}`)
    : state === "closed" || state === "open" || state === "closing"
    ? (outputs.length > 0 && decodeFrame(outputs.at(-1)!, 1 << 20).type === MessageType.RESEND_LAST
      ? "discarded"
      : "success")
    : `ended in ${state}`;
  return {
    outcome,
    outputs: outputs.map(toHex),
    outputTypes: outputs.map((o) => messageTypeName(decodeFrame(o, 1 << 20).type)),
    delivered,
    keyIds: side.keyIds,
    message: isMissiveError(error) ? error.message : undefined,
  };
}

// ---------------------------------------------------------------------------------------
// SPEC §22.5 from noble primitives alone

/** Keys per SPEC §22.5.2. */
export function specKeys(input: {
  shared: Uint8Array;
  chain: Uint8Array;
  helloBody: Uint8Array;
  helloAckBody: Uint8Array;
  s0?: Uint8Array;
}) {
  const chain = sha256(
    transcript("missive/session/v1/transcript", input.chain, input.helloBody, input.helloAckBody),
  );
  const psk = input.s0 ? sha256(transcript("missive/session/v1/psk", input.s0)) : new Uint8Array();
  const okm = hkdf(
    sha256,
    concatBytes(input.shared, psk),
    chain,
    transcript("missive/session/v1/keys"),
    72,
  );
  return { chain, c2s: okm.slice(0, 32), s2c: okm.slice(32, 64), keyId: okm.slice(64, 72) };
}

/** A sealed frame per SPEC §22.3 and §22.5.3. */
export function specSeal(
  key: Uint8Array,
  counter: number,
  h: { seq: number; type: MessageType; time: number; keyId: Uint8Array },
  body: Uint8Array,
): Bytes {
  const nonce = new Uint8Array(12);
  new DataView(nonce.buffer).setUint32(8, counter);
  const header = new Uint8Array(18);
  const view = new DataView(header.buffer);
  header[0] = h.type;
  header[1] = 1;
  view.setUint32(2, Math.floor(h.time / 2 ** 32));
  view.setUint32(6, h.time >>> 0);
  header.set(h.keyId, 10);
  const envHeader = new Uint8Array(12);
  const ev = new DataView(envHeader.buffer);
  ev.setUint16(0, 5);
  ev.setUint16(2, 1);
  ev.setUint32(4, Math.floor(h.seq / 2 ** 32));
  ev.setUint32(8, h.seq >>> 0);
  const aad = concatBytes(utf8("missive/session/v1/aad"), envHeader, header);
  const ciphertext = chacha20poly1305(key, nonce, aad).encrypt(body);
  return encodeEnvelope({
    protocolType: 5,
    protocolVersion: 1,
    sequenceNumber: h.seq,
    payload: concatBytes(header, ciphertext),
  });
}

/** The first-handshake keys of a recorded exchange, from the client's random stream. */
export function specInitialKeys(
  v: { random: { client: string }; s0?: string },
  c2s: Bytes[],
  s2c: Bytes[],
) {
  const clientRandom = randomStream(v.random.client);
  clientRandom(4);
  const ephemeral = clientRandom(32);
  const hello = decodeFrame(c2s[0], 1 << 20) as Frame & { form: "signed" };
  const helloAck = decodeFrame(s2c[0], 1 << 20) as Frame & { form: "signed" };
  const shared = x25519.getSharedSecret(ephemeral, decodeHelloBody(helloAck.body).ephemeralKey);
  return {
    hello,
    helloAck,
    ...specKeys({
      shared,
      chain: new Uint8Array(32),
      helloBody: hello.body,
      helloAckBody: helloAck.body,
      s0: v.s0 === undefined ? undefined : utf8(v.s0),
    }),
  };
}

// ---------------------------------------------------------------------------------------
// The cases

const BASE = {
  client: "alice",
  server: "bob",
  peer: "bob",
  trusted: ["alice"],
  rekeyAfter: 10,
  clock: NOW,
};

const SUCCESSES: Omit<SessionVector, "inputs" | "expect" | "side">[] = [
  {
    ...BASE,
    name: "handshake-and-data",
    description: "HELLO, HELLO_ACK, ACK, three DATA each acknowledged, CLOSE / CLOSE_ACK",
    random: { client: "session/basic/client", server: "session/basic/server" },
    messages: ["first", "second", "third"],
  },
  {
    ...BASE,
    name: "handshake-with-s0",
    description: "as handshake-and-data, with a pre-shared s0 (signed parts carry a MAC)",
    s0: "missive test vectors s0 secret",
    random: { client: "session/s0/client", server: "session/s0/server" },
    messages: ["with s0"],
  },
  {
    ...BASE,
    name: "rekey-after-2",
    rekeyAfter: 2,
    description: "rekeyAfter 2: five DATA, re-keys due after the 2nd and 4th acknowledged",
    random: { client: "session/rekey/client", server: "session/rekey/server" },
    messages: ["m1", "m2", "m3", "m4", "m5"],
  },
];

type Edit = (inputs: Bytes[], ctx: EditContext) => Bytes[];
interface EditContext {
  v: Omit<SessionVector, "inputs" | "expect" | "side">;
  c2s: Bytes[];
  s2c: Bytes[];
}

export const frameAt = (inputs: Bytes[], type: MessageType, nth = 0) =>
  inputs.map((b, i) => [i, decodeFrame(b, 1 << 20)] as const).filter(([, f]) =>
    f.type === type
  )[nth];

/** Failure and edge cases: based on a success (by name), the side under test, an edit. */
const FAILURES: {
  name: string;
  base: string;
  side: "client" | "server";
  description: string;
  outcome: string;
  trusted?: string[];
  peer?: string;
  edit: Edit;
}[] = [
  {
    name: "bad-tag",
    base: "handshake-and-data",
    side: "server",
    description: "the last byte (tag) of the first DATA flipped: CLOSE reason 4",
    outcome: "auth-failed",
    edit: (inputs) => {
      const [i] = frameAt(inputs, MessageType.DATA);
      const bad = new Uint8Array(inputs[i]);
      bad[bad.length - 1] ^= 1;
      return [...inputs.slice(0, i), bad];
    },
  },
  {
    name: "wrong-sequence-number",
    base: "handshake-and-data",
    side: "server",
    description: "the first DATA delivered twice (a replay): CLOSE reason 14",
    outcome: "session",
    edit: (inputs) => {
      const [i] = frameAt(inputs, MessageType.DATA);
      return [...inputs.slice(0, i + 1), inputs[i]];
    },
  },
  {
    name: "old-key",
    base: "rekey-after-2",
    side: "server",
    description:
      "after the first re-key, the first DATA (under the old key) again: CLOSE reason 14",
    outcome: "session",
    edit: (inputs) => {
      const [first] = frameAt(inputs, MessageType.DATA);
      const [helloAck] = frameAt(inputs, MessageType.HELLO_ACK);
      return [...inputs.slice(0, helloAck + 1), inputs[first]];
    },
  },
  {
    name: "wrong-type",
    base: "handshake-and-data",
    side: "server",
    description:
      "a correctly sealed ACK (built from SPEC §22.5) where a DATA is expected: CLOSE 14",
    outcome: "session",
    edit: (inputs, { v, c2s, s2c }) => {
      const [i, data] = frameAt(inputs, MessageType.DATA);
      const k = specInitialKeys(v, c2s, s2c);
      const forged = specSeal(
        k.c2s,
        1,
        { seq: data.seq, type: MessageType.ACK, time: data.time, keyId: k.keyId },
        new Uint8Array(),
      );
      return [...inputs.slice(0, i), forged];
    },
  },
  {
    name: "stale",
    base: "handshake-and-data",
    side: "server",
    description:
      "a correctly sealed DATA sent 26 s ago (older than the TTL): discarded, RESEND_LAST",
    outcome: "discarded",
    edit: (inputs, { v, c2s, s2c }) => {
      const [i, data] = frameAt(inputs, MessageType.DATA);
      const k = specInitialKeys(v, c2s, s2c);
      const stale = specSeal(
        k.c2s,
        1,
        { seq: data.seq, type: MessageType.DATA, time: data.time - TTL_MS - 1000, keyId: k.keyId },
        encodeDataBody(0, utf8("stale")),
      );
      return [...inputs.slice(0, i), stale];
    },
  },
  {
    name: "bad-signature",
    base: "handshake-and-data",
    side: "server",
    description: "the HELLO signature altered: refused with a signed CLOSE, reason 4",
    outcome: "auth-failed",
    edit: (inputs) => {
      const hello = decodeFrame(inputs[0], 1 << 20) as Frame & { form: "signed" };
      const signature = new Uint8Array(hello.signature);
      signature[10] ^= 4;
      return [encodeFrame({ ...hello, signature })];
    },
  },
  {
    name: "bad-s0-mac",
    base: "handshake-with-s0",
    side: "server",
    description: "the HELLO s0 MAC altered: refused with a signed CLOSE, reason 4",
    outcome: "auth-failed",
    edit: (inputs) => {
      const hello = decodeFrame(inputs[0], 1 << 20) as Frame & { form: "signed" };
      const mac = new Uint8Array(hello.mac!);
      mac[0] ^= 1;
      return [encodeFrame({ ...hello, mac })];
    },
  },
  {
    name: "untrusted-client",
    base: "handshake-and-data",
    side: "server",
    trusted: ["carol"],
    description: "the server admits only carol: signed CLOSE with reason 7",
    outcome: "untrusted",
    edit: (inputs) => inputs.slice(0, 1),
  },
  {
    name: "server-card-mismatch",
    base: "handshake-and-data",
    side: "client",
    peer: "carol",
    description: "the client pinned carol's card, bob answers: signed CLOSE with reason 7",
    outcome: "untrusted",
    edit: (inputs) => inputs.slice(0, 1),
  },
  {
    name: "truncated-frame",
    base: "handshake-and-data",
    side: "server",
    description: "the first DATA cut by 3 bytes: malformed, CLOSE reason 3",
    outcome: "malformed",
    edit: (inputs) => {
      const [i] = frameAt(inputs, MessageType.DATA);
      return [...inputs.slice(0, i), inputs[i].slice(0, -3)];
    },
  },
  {
    name: "other-envelope-type",
    base: "handshake-and-data",
    side: "server",
    description: "the first DATA re-wrapped as envelope type 2: unknown-protocol, CLOSE reason 8",
    outcome: "unknown-protocol",
    edit: (inputs) => {
      const [i] = frameAt(inputs, MessageType.DATA);
      const env = decodeEnvelope(inputs[i]);
      return [...inputs.slice(0, i), encodeEnvelope({ ...env, protocolType: 2 })];
    },
  },
];

/** All session vectors, made with `provider`; fails if an outcome is not the intended one. */
export async function sessionVectors(
  provider: CryptoProvider,
  ids: Map<string, Identity>,
): Promise<SessionVector[]> {
  const out: SessionVector[] = [];
  const recorded = new Map<string, { c2s: Bytes[]; s2c: Bytes[] }>();
  for (const base of SUCCESSES) {
    const rec = await recordExchange({ provider, ids, v: base });
    recorded.set(base.name, rec);
    const v = { ...base, side: "server" as const, inputs: rec.c2s.map(toHex) };
    const expect = await runSessionVector(provider, ids, v);
    if (expect.outcome !== "success" || expect.outputs.join() !== rec.s2c.map(toHex).join()) {
      throw new Error(`session vector ${base.name}: replay differs from the recording`);
    }
    out.push({ ...v, expect });
  }
  for (const f of FAILURES) {
    const base = SUCCESSES.find((s) => s.name === f.base)!;
    const rec = recorded.get(f.base)!;
    const v0 = {
      ...base,
      name: f.name,
      description: f.description,
      trusted: f.trusted ?? base.trusted,
      peer: f.peer ?? base.peer,
    };
    const own = f.side === "server" ? rec.c2s : rec.s2c;
    const inputs = f.edit(own, { v: base, c2s: rec.c2s, s2c: rec.s2c }).map(toHex);
    const v = { ...v0, side: f.side, inputs };
    const expect = await runSessionVector(provider, ids, v);
    if (expect.outcome !== f.outcome) {
      throw new Error(`session vector ${f.name}: outcome ${expect.outcome}, intended ${f.outcome}`);
    }
    out.push({ ...v, expect });
  }
  return out;
}
