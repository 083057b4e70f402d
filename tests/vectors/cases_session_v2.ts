/**
 * Session version 2 vectors (SPEC §22.12), part of tests/vectors/generate.ts, written to
 * session_v2.json in the format of session.json (cases_session.ts). Random streams: each
 * side draws 4 bytes for its first sequence number; the client then 32 for its ephemeral
 * X25519 key and 32 for its X-Wing seed per HELLO; the server 32 for its ephemeral X25519
 * key (made while it waits) and 64 for each X-Wing encapsulation (ML-KEM m ‖ X25519
 * ephemeral, draft-connolly-cfrg-xwing-kem §5.4). Failure vectors (at least as many as
 * successes) edit a recorded success's frames: downgrades to version 1, altered offers,
 * a v1 answer to a v2 HELLO, refusals by version policy, and frames built from SPEC
 * §22.12 alone (`specKeysV2`, `specSealV2`, `specSignV2`: noble primitives only).
 * @module
 */
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { ed25519, x25519 } from "@noble/curves/ed25519.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { ml_kem768_x25519 } from "@noble/post-quantum/hybrid.js";
import { type Bytes, concatBytes, toHex, utf8 } from "../../core/bytes.ts";
import { transcript } from "../../core/cbor.ts";
import type { CryptoProvider } from "../../crypto/provider.ts";
import type { Identity } from "../../keys/identity.ts";
import { encodeEnvelope } from "../../envelope/mod.ts";
import {
  decodeFrame,
  decodeHelloBodyV2,
  encodeFrame,
  encodeHelloBody,
  type Frame,
  MessageType,
} from "../../session/messages.ts";
import { frameAt, recordExchange, runSessionVector, type SessionVector } from "./cases_session.ts";
import { get, NOW, randomStream } from "./common.ts";

type Signed = Frame & { form: "signed" };
type Setup = Omit<SessionVector, "inputs" | "expect" | "side">;

// ---------------------------------------------------------------------------------------
// SPEC §22.12 from noble primitives alone

/** Keys per SPEC §22.12.3: v1's derivation with the X-Wing secret after the X25519 one. */
export function specKeysV2(input: {
  shared: Uint8Array;
  kemShared: Uint8Array;
  chain: Uint8Array;
  helloBody: Uint8Array;
  helloAckBody: Uint8Array;
  s0?: Uint8Array;
}) {
  const chain = sha256(
    transcript("missive/session/v2/transcript", input.chain, input.helloBody, input.helloAckBody),
  );
  const psk = input.s0 ? sha256(transcript("missive/session/v2/psk", input.s0)) : new Uint8Array();
  const okm = hkdf(
    sha256,
    concatBytes(input.shared, input.kemShared, psk),
    chain,
    transcript("missive/session/v2/keys"),
    72,
  );
  return { chain, c2s: okm.slice(0, 32), s2c: okm.slice(32, 64), keyId: okm.slice(64, 72) };
}

/**
 * The associated data of a sealed frame of session version 1 or 2 (SPEC §22.5.3, §22.12.3):
 * the version's label, the envelope header (5, version, sequence number), the payload header.
 */
export function specAad(version: 1 | 2, seq: number, payloadHeader: Uint8Array): Bytes {
  const envHeader = new Uint8Array(12);
  const ev = new DataView(envHeader.buffer);
  ev.setUint16(0, 5);
  ev.setUint16(2, version);
  ev.setUint32(4, Math.floor(seq / 2 ** 32));
  ev.setUint32(8, seq >>> 0);
  return concatBytes(utf8(`missive/session/v${version}/aad`), envHeader, payloadHeader);
}

/** The associated data of a sealed v2 frame. */
export const specAadV2 = (seq: number, payloadHeader: Uint8Array): Bytes =>
  specAad(2, seq, payloadHeader);

/** A sealed v2 frame per SPEC §22.3, §22.5.3 and §22.12. */
export function specSealV2(
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
  const ciphertext = chacha20poly1305(key, nonce, specAadV2(h.seq, header)).encrypt(body);
  return encodeEnvelope({
    protocolType: 5,
    protocolVersion: 2,
    sequenceNumber: h.seq,
    payload: concatBytes(header, ciphertext),
  });
}

/** The Ed25519 signature of a v2 signed part (SPEC §22.5.1 under v2's label and number). */
export function specSignV2(
  signingSeed: Uint8Array,
  h: { seq: number; type: number; time: number },
  body: Uint8Array,
  context: Uint8Array,
): Bytes {
  const input = transcript("missive/session/v2/sig", 5, 2, h.seq, h.type, h.time, body, context);
  return ed25519.sign(input, signingSeed) as Bytes;
}

/** The first-handshake keys of a recorded v2 exchange, from the client's random stream. */
export function specInitialKeysV2(
  v: { random: { client: string }; s0?: string },
  c2s: Bytes[],
  s2c: Bytes[],
) {
  const clientRandom = randomStream(v.random.client);
  clientRandom(4);
  const ephemeral = clientRandom(32);
  const kemSeed = clientRandom(32);
  const hello = decodeFrame(c2s[0], 1 << 20) as Signed;
  const helloAck = decodeFrame(s2c[0], 1 << 20) as Signed;
  const ack = decodeHelloBodyV2(helloAck.body, MessageType.HELLO_ACK);
  return {
    hello,
    helloAck,
    ...specKeysV2({
      shared: x25519.getSharedSecret(ephemeral, ack.ephemeralKey),
      kemShared: ml_kem768_x25519.decapsulate(ack.kem!, kemSeed),
      chain: new Uint8Array(32),
      helloBody: hello.body,
      helloAckBody: helloAck.body,
      s0: v.s0 === undefined ? undefined : utf8(v.s0),
    }),
  };
}

// ---------------------------------------------------------------------------------------
// The cases

const BOTH = { client: [2, 1], server: [2, 1] } as { client: (1 | 2)[]; server: (1 | 2)[] };
const BASE = {
  client: "alice",
  server: "bob",
  peer: "bob",
  trusted: ["alice"],
  rekeyAfter: 10,
  clock: NOW,
  versions: BOTH,
};

const SUCCESSES: Setup[] = [
  {
    ...BASE,
    name: "v2-handshake-and-data",
    description: "version 2 (client offers [2, 1]): HELLO with an X-Wing key, HELLO_ACK with " +
      "its ciphertext, ACK, three DATA, CLOSE / CLOSE_ACK",
    random: { client: "session/v2/basic/client", server: "session/v2/basic/server" },
    messages: ["first", "second", "third"],
  },
  {
    ...BASE,
    name: "v2-handshake-with-s0",
    description: "as v2-handshake-and-data, with a pre-shared s0 (signed parts carry a MAC)",
    s0: "missive test vectors s0 secret",
    random: { client: "session/v2/s0/client", server: "session/v2/s0/server" },
    messages: ["with s0"],
  },
  {
    ...BASE,
    name: "v2-rekey-after-2",
    rekeyAfter: 2,
    description: "version 2, rekeyAfter 2: five DATA; each re-key carries a fresh X-Wing " +
      "key (HELLO) and ciphertext (HELLO_ACK)",
    random: { client: "session/v2/rekey/client", server: "session/v2/rekey/server" },
    messages: ["m1", "m2", "m3", "m4", "m5"],
  },
];

/** The version 1 exchange of session.json's handshake-and-data (same seeds, same bytes). */
const V1_BASE: Setup = {
  ...BASE,
  versions: undefined,
  name: "handshake-and-data",
  description: "",
  random: { client: "session/basic/client", server: "session/basic/server" },
  messages: ["first", "second", "third"],
};

interface EditContext {
  v: Setup;
  c2s: Bytes[];
  s2c: Bytes[];
  /** The version 1 recording of V1_BASE. */
  v1: { c2s: Bytes[]; s2c: Bytes[] };
  ids: Map<string, Identity>;
}

const FAILURES: {
  name: string;
  base: string;
  side: "client" | "server";
  description: string;
  outcome: string;
  versions?: { client: (1 | 2)[]; server: (1 | 2)[] };
  edit: (inputs: Bytes[], ctx: EditContext) => Bytes[];
}[] = [
  {
    name: "v2-stripped-to-v1",
    base: "v2-handshake-and-data",
    side: "server",
    description: "a proxy strips the HELLO to version 1 (v1 envelope, fields 1 and 2 only, " +
      "the same signature): the v1 signature input differs, refused with CLOSE reason 4",
    outcome: "auth-failed",
    edit: (inputs) => {
      const hello = decodeFrame(inputs[0], 1 << 20) as Signed;
      const body = decodeHelloBodyV2(hello.body, MessageType.HELLO);
      const v1Body = encodeHelloBody({ ephemeralKey: body.ephemeralKey, card: body.card });
      return [encodeFrame({ ...hello, body: v1Body }, 1)];
    },
  },
  {
    name: "v2-offer-altered",
    base: "v2-handshake-and-data",
    side: "server",
    description: "the HELLO's offer [2, 1] replaced by [2], the signature kept: CLOSE reason 4",
    outcome: "auth-failed",
    edit: (inputs) => {
      const hello = decodeFrame(inputs[0], 1 << 20) as Signed;
      const body = decodeHelloBodyV2(hello.body, MessageType.HELLO);
      return [encodeFrame({ ...hello, body: encodeHelloBody({ ...body, offered: [2] }) }, 2)];
    },
  },
  {
    name: "v2-envelope-relabelled-v1",
    base: "v2-handshake-and-data",
    side: "server",
    description: "the v2 HELLO's envelope version byte set to 1: its body has fields a v1 " +
      "HELLO may not have: malformed",
    outcome: "malformed",
    edit: (inputs) => {
      const bad = new Uint8Array(inputs[0]);
      bad[7] = 1;
      return [bad];
    },
  },
  {
    name: "v2-short-kem-key-signed",
    base: "v2-handshake-and-data",
    side: "server",
    description: "a HELLO whose X-Wing key is 1,215 bytes, validly signed by alice " +
      "(SPEC §22.12 alone): malformed",
    outcome: "malformed",
    edit: (inputs, { ids }) => {
      const hello = decodeFrame(inputs[0], 1 << 20) as Signed;
      const body = decodeHelloBodyV2(hello.body, MessageType.HELLO);
      const short = encodeHelloBody({ ...body, kem: body.kem!.subarray(1) });
      const signature = specSignV2(get(ids, "alice").signingSeed, hello, short, new Uint8Array(32));
      return [encodeFrame({ ...hello, body: short, signature }, 2)];
    },
  },
  {
    name: "v2-server-requires-pq",
    base: "handshake-and-data",
    side: "server",
    versions: { client: [1], server: [2] },
    description: "a server under requirePq (versions [2]) gets a version 1 HELLO: refused " +
      "with a signed v1 CLOSE, reason 7",
    outcome: "untrusted",
    edit: (_, { v1 }) => v1.c2s.slice(0, 1),
  },
  {
    name: "v2-server-speaks-v1-only",
    base: "v2-handshake-and-data",
    side: "server",
    versions: { client: [2, 1], server: [1] },
    description: "a server speaking version 1 only gets a v2 HELLO: refused with a signed v2 " +
      "CLOSE, reason 7 (never an answer in another version)",
    outcome: "untrusted",
    edit: (inputs) => inputs.slice(0, 1),
  },
  {
    name: "v2-client-gets-v1-hello-ack",
    base: "v2-handshake-and-data",
    side: "client",
    description: "the client offered [2, 1] in a v2 HELLO; a genuine v1 HELLO_ACK of bob " +
      "(another session) answers: unknown-protocol, CLOSE reason 8",
    outcome: "unknown-protocol",
    edit: (_, { v1 }) => v1.s2c.slice(0, 1),
  },
  {
    name: "v2-bad-tag",
    base: "v2-handshake-and-data",
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
    name: "v2-wrong-type",
    base: "v2-handshake-and-data",
    side: "server",
    description: "a correctly sealed ACK (keys from SPEC §22.12 alone: X25519 and X-Wing " +
      "decapsulation) where a DATA is expected: CLOSE reason 14",
    outcome: "session",
    edit: (inputs, { v, c2s, s2c }) => {
      const [i, data] = frameAt(inputs, MessageType.DATA);
      const k = specInitialKeysV2(v, c2s, s2c);
      const forged = specSealV2(
        k.c2s,
        1,
        { seq: data.seq, type: MessageType.ACK, time: data.time, keyId: k.keyId },
        new Uint8Array(),
      );
      return [...inputs.slice(0, i), forged];
    },
  },
  {
    name: "v2-old-key",
    base: "v2-rekey-after-2",
    side: "server",
    description: "after the first re-key, the first DATA (under the old key) again: " +
      "CLOSE reason 14",
    outcome: "session",
    edit: (inputs) => {
      const [first] = frameAt(inputs, MessageType.DATA);
      const [helloAck] = frameAt(inputs, MessageType.HELLO_ACK);
      return [...inputs.slice(0, helloAck + 1), inputs[first]];
    },
  },
];

/** All session v2 vectors, made with `provider`; fails if an outcome is not the intended one. */
export async function sessionV2Vectors(
  provider: CryptoProvider,
  ids: Map<string, Identity>,
): Promise<SessionVector[]> {
  const out: SessionVector[] = [];
  const recorded = new Map<string, { c2s: Bytes[]; s2c: Bytes[] }>();
  recorded.set(V1_BASE.name, await recordExchange({ provider, ids, v: V1_BASE }));
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
  const v1 = recorded.get(V1_BASE.name)!;
  for (const f of FAILURES) {
    const base = SUCCESSES.find((s) => s.name === f.base) ?? V1_BASE;
    const rec = recorded.get(f.base)!;
    const v0 = {
      ...base,
      name: f.name,
      description: f.description,
      versions: f.versions ?? BOTH,
    };
    const own = f.side === "server" ? rec.c2s : rec.s2c;
    const inputs = f.edit(own, { v: base, c2s: rec.c2s, s2c: rec.s2c, v1, ids }).map(toHex);
    const v = { ...v0, side: f.side, inputs };
    const expect = await runSessionVector(provider, ids, v);
    if (expect.outcome !== f.outcome) {
      throw new Error(`session vector ${f.name}: outcome ${expect.outcome}, intended ${f.outcome}`);
    }
    out.push({ ...v, expect });
  }
  return out;
}
