/**
 * The known-answer corpus in tests/vectors/ (docs/SPEC.md §12), through both crypto
 * providers: every success vector opens to its stated message, every failure vector
 * fails with exactly its stated MissiveError code, every sealed envelope is reproduced
 * byte for byte from its stated inputs, and the generator reproduces the committed files
 * (so the two cannot drift). A few checks re-derive results from SPEC.md with @noble
 * primitives alone, so the spec's labels and transcripts are tested, not just the code.
 * @module
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { ed25519 } from "@noble/curves/ed25519.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { type Bytes, concatBytes, equalBytes, fromHex, toHex, utf8 } from "../core/bytes.ts";
import { type CborMap, type CborValue, decodeCbor, transcript } from "../core/cbor.ts";
import {
  type CryptoProvider,
  nobleProvider,
  nodeCryptoProvider,
  webcryptoProvider,
} from "../crypto/mod.ts";
import { armor, decodeEnvelope, encodeEnvelope, toLine, unwrapAnyForm } from "../envelope/mod.ts";
import { ERROR_CODES, MissiveError } from "../core/errors.ts";
import { cardToText, decodeCard, fingerprint, parseCardText } from "../keys/card.ts";
import { type Identity, readKeyFile, writeKeyFile } from "../keys/identity.ts";
import { defaultRegistry, openMessage } from "../mod.ts";
import { groupIntermediates } from "./vectors/cases_group.ts";
import { encryptedKeyFile, withNobleChaCha } from "./vectors/cases_keys.ts";
import {
  applyMutations,
  IDENTITY_SPECS,
  jsonMessage,
  makeIdentities,
  type Mutation,
  randomStream,
} from "./vectors/common.ts";
import { buildCorpus, toJsonText } from "./vectors/generate.ts";
import {
  describeOpened,
  openFromInputs,
  type OpenInputs,
  sealFromInputs,
  type SealInputs,
  simpleIntermediates,
} from "./vectors/messages.ts";

const FILES = [
  "envelope.json",
  "armor.json",
  "card.json",
  "keyfile.json",
  "simple.json",
  "group.json",
  "auth.json",
  "plain.json",
  "psk.json",
  "amp.json",
  "stream.json",
  "session.json",
  "session_v2.json",
  "framing.json",
  "relay.json",
  "signature.json",
  "chat.json",
] as const;
/**
 * Files whose failure outcome is the error code itself, with no separate `error` field
 * (SPEC §12): streams and session exchanges. A session frame may also be "discarded"
 * (SPEC §22.7: stale, the session goes on).
 */
const OUTCOME_IS_CODE = new Set<string>([
  "stream.json",
  "session.json",
  "session_v2.json",
  "chat.json",
]);
const MESSAGE_FILES = [
  "simple.json",
  "group.json",
  "auth.json",
  "plain.json",
  "psk.json",
] as const;
/** The corpus may grow, never silently shrink. */
const MIN_VECTORS = 470;

interface Expect {
  outcome: string;
  error?: string;
  [field: string]: unknown;
}
interface Vector {
  name: string;
  expect: Expect;
  [field: string]: unknown;
}
interface MessageVector extends Vector {
  seal: SealInputs;
  mutations?: Mutation[];
  envelope: string;
  open: OpenInputs;
}
interface VectorFile {
  description: string;
  vectors: Vector[];
}

const texts = Object.fromEntries(
  FILES.map((f) => [f, readFileSync(new URL(`./vectors/${f}`, import.meta.url), "utf8")]),
) as Record<(typeof FILES)[number], string>;
const corpus = Object.fromEntries(
  FILES.map((f) => [f, JSON.parse(texts[f]) as VectorFile]),
) as Record<(typeof FILES)[number], VectorFile>;
const messageVectors = (f: (typeof MESSAGE_FILES)[number]) => corpus[f].vectors as MessageVector[];

const hex = (s: string): Bytes => {
  const b = fromHex(s);
  if (!b) throw new Error(`not hex: ${s.slice(0, 20)}`);
  return b;
};

/** Runs `check` on every vector; one assertion lists every vector that failed. */
async function eachVector<V extends Vector>(
  vectors: V[],
  check: (v: V) => Promise<void> | void,
): Promise<void> {
  const failures: string[] = [];
  for (const v of vectors) {
    try {
      await check(v);
    } catch (e) {
      failures.push(`${v.name}: ${(e as Error).message}`);
    }
  }
  assert.ok(vectors.length > 0, "no vectors ran");
  assert.equal(
    failures.length,
    0,
    `${failures.length} of ${vectors.length} failed:\n${failures.join("\n")}`,
  );
}

/**
 * Runs `op` and checks it against a vector's expectation: for a failure, exactly the
 * stated MissiveError code; for a success, `compare` gets the result.
 */
async function expectOutcome<T>(
  v: Vector,
  op: () => Promise<T> | T,
  compare: (result: T) => void | Promise<void>,
): Promise<void> {
  let result: T;
  try {
    result = await op();
  } catch (e) {
    if (v.expect.outcome === "success") throw e;
    if (!(e instanceof MissiveError)) throw new Error(`threw a non-MissiveError: ${e}`);
    assert.equal(e.code, v.expect.error, `error code (message: ${e.message})`);
    return;
  }
  assert.equal(v.expect.outcome, "success", `succeeded, expected ${v.expect.error}`);
  await compare(result);
}

/** Vectors of the runtime's zlib are compared by outcome only (SPEC §8.2). */
function stripNonDeterministic(doc: VectorFile): VectorFile {
  return {
    ...doc,
    vectors: doc.vectors.map((
      v,
    ) => (v.deterministic === false ? { ...v, body: "(zlib output)" } : v)),
  };
}

// -----------------------------------------------------------------------------------------
// Independent re-derivations from SPEC.md (noble primitives, no missive STP code)

/** SPEC §3.3–3.5: self-signature, ID and fingerprint of a card, with `p`'s primitives. */
async function checkCardFromSpec(p: CryptoProvider, e: Expect): Promise<void> {
  const [sk, ak] = [hex(e.signingKey as string), hex(e.agreementKey as string)];
  const card = decodeCbor(hex(e.card as string)) as CborMap;
  const signed = transcript(
    "missive/card/v1/self-sig",
    1,
    e.address as string,
    sk,
    ak,
    e.stps as CborValue[],
    e.amps as CborValue[],
    e.created as number,
  );
  assert.ok(await p.ed25519Verify(sk, signed, card.get(8) as Uint8Array), "self-signature");
  assert.equal(
    toHex((await p.sha256(transcript("missive/id/v1", sk, ak))).slice(0, 16)),
    e.id,
    "ID",
  );
  const h = await p.sha512(transcript("missive/fingerprint/v1", sk, ak));
  const groups = Array.from({ length: 12 }, (_, i) => {
    let n = 0;
    for (let j = 0; j < 5; j++) n = n * 256 + h[i * 5 + j];
    return String(n % 100000).padStart(5, "0");
  });
  assert.equal(groups.join(" "), e.fingerprint, "fingerprint");
}

/** SPEC §6: checks an auth success vector's signature with noble. */
function checkAuthFromSpec(v: MessageVector, ids: Map<string, Identity>): void {
  const env = decodeEnvelope(hex(v.envelope));
  const p = decodeCbor(env.payload) as CborMap;
  const signer = [...ids.values()].find((i) => equalBytes(i.card.id, p.get(4) as Bytes))!;
  const signed = transcript(
    "missive/stp/auth/v1/sig",
    env.protocolType,
    env.protocolVersion,
    env.sequenceNumber ?? null,
    ...[1, 2, 3, 4].map((k) => p.get(k) as CborValue),
    p.get(5) ?? null,
    p.get(6) ?? null,
    ...[7, 8, 9].map((k) => p.get(k) as CborValue),
  );
  assert.ok(ed25519.verify(p.get(10) as Bytes, signed, signer.card.signingKey), "signature");
  assert.equal(toHex(sha256(p.get(9) as Bytes)), v.expect.bodySha256);
}

// -----------------------------------------------------------------------------------------

describe("vector corpus", () => {
  it(`holds at least ${MIN_VECTORS} vectors, and as many failures as successes`, () => {
    let total = 0, failures = 0;
    for (const f of FILES) {
      const vs = corpus[f].vectors;
      const fails = vs.filter((v) => v.expect.outcome !== "success").length;
      assert.ok(
        fails >= vs.length - fails,
        `${f}: ${fails} failures, ${vs.length - fails} successes`,
      );
      assert.equal(new Set(vs.map((v) => v.name)).size, vs.length, `${f}: duplicate vector names`);
      total += vs.length;
      failures += fails;
    }
    assert.ok(total >= MIN_VECTORS, `only ${total} vectors`);
    assert.ok(failures >= total - failures);
  });

  it("every failure names an error code, and armor failures are malformed or too-large", () => {
    for (const f of FILES) {
      for (const v of corpus[f].vectors) {
        if (v.expect.outcome === "success") continue;
        if (OUTCOME_IS_CODE.has(f)) {
          const known = v.expect.outcome in ERROR_CODES ||
            (f === "session.json" && v.expect.outcome === "discarded");
          assert.ok(known, `${f} ${v.name}: ${v.expect.outcome} is not an error code`);
          continue;
        }
        assert.equal(typeof v.expect.error, "string", `${f} ${v.name}`);
        const kind = v.expect.outcome === "armor" ? v.expect.error : v.expect.outcome;
        assert.equal(kind, v.expect.error, `${f} ${v.name}: outcome and error code disagree`);
        if (v.expect.outcome === "armor") {
          assert.ok(["malformed", "too-large"].includes(v.expect.error!));
        }
      }
    }
  });

  it("files are exactly what the generator writes (formatting included)", () => {
    for (const f of FILES) assert.equal(texts[f], toJsonText(corpus[f]), f);
  });

  it("the random stream is SHA-256(seed ‖ uint32be(counter)) blocks, drawn in order", () => {
    const draw = randomStream("abc");
    const first = draw(20), second = draw(20);
    const block = (i: number) => sha256(concatBytes(utf8("abc"), new Uint8Array([0, 0, 0, i])));
    assert.equal(
      toHex(concatBytes(first, second)),
      toHex(concatBytes(block(0), block(1)).slice(0, 40)),
    );
  });

  it("amp.json: each body decodes to the stated message or fails with the stated code", async () => {
    const registry = defaultRegistry();
    await eachVector(corpus["amp.json"].vectors, (v) =>
      expectOutcome(v, () => {
        const [type, version] = v.amp as [number, number];
        return registry.amp(type, version).decode(hex(v.body as string));
      }, (m) => {
        assert.deepEqual(jsonMessage(m), v.expect.message);
        // Deterministic encoders (text v1, notification) must also write these bytes.
        const [type, version] = v.amp as [number, number];
        const canonical = type !== 1 || version === 1;
        if (canonical && !String(v.name).includes("unknown-field")) {
          const again = registry.amp(type, version).encode(m);
          assert.equal(toHex(again), v.body, "re-encoding");
        }
      }));
  });

  it("simple and auth success vectors agree with SPEC §5–6 re-derived with noble", async () => {
    const ids = await makeIdentities(nobleProvider);
    const ok = (f: (typeof MESSAGE_FILES)[number]) =>
      messageVectors(f).filter((v) => v.expect.outcome === "success");
    await eachVector(ok("simple.json"), (v) => {
      const got = simpleIntermediates(hex(v.envelope), ids.get(v.open.identity!)!, ids);
      assert.deepEqual(got, v.intermediates, "intermediate values");
      const inner = decodeCbor(hex(got.inner)) as CborMap;
      assert.equal(toHex(sha256(inner.get(3) as Bytes)), v.expect.bodySha256);
    });
    await eachVector(ok("auth.json"), (v) => checkAuthFromSpec(v, ids));
  });

  it("group success vectors agree with SPEC §19 re-derived with noble", async () => {
    const ids = await makeIdentities(nobleProvider);
    const ok = messageVectors("group.json").filter((v) => v.expect.outcome === "success");
    await eachVector(ok, (v) => {
      const got = groupIntermediates(hex(v.envelope), ids.get(v.open.identity!)!, ids);
      assert.deepEqual(got, v.intermediates, "intermediate values");
      const body = decodeCbor(hex(got.body)) as CborMap;
      assert.equal(toHex(sha256(body.get(3) as Bytes)), v.expect.bodySha256);
    });
  });

  it("envelope.json: decode (and re-encode) or refuse with the stated code", async () => {
    const registry = defaultRegistry();
    await eachVector(corpus["envelope.json"].vectors, (v) => {
      const input = hex(v.input as string);
      if (v.operation === "open") {
        return expectOutcome(
          v,
          () => openMessage(input, { registry, crypto: nobleProvider }),
          () => {},
        );
      }
      return expectOutcome(v, () => decodeEnvelope(input), (e) => {
        const want = {
          outcome: "success",
          protocolType: e.protocolType,
          protocolVersion: e.protocolVersion,
          sequenceNumber: e.sequenceNumber ?? null,
          payload: toHex(e.payload),
        };
        assert.deepEqual(want, v.expect);
        assert.equal(toHex(encodeEnvelope(e)), v.input, "re-encoding");
      });
    });
  });

  it("armor.json: form detection gives the stated envelope or the stated failure", async () => {
    await eachVector(corpus["armor.json"].vectors, (v) => {
      const input = v.input as { text?: string; hex?: string };
      const bytes = input.text !== undefined ? utf8(input.text) : hex(input.hex!);
      return expectOutcome(v, () => unwrapAnyForm(bytes), (envelope) => {
        assert.equal(toHex(envelope), v.expect.envelope);
        if (v.expect.canonical && v.expect.form !== "binary") {
          const written = v.expect.form === "armor" ? armor(envelope) : toLine(envelope);
          assert.equal(written, input.text, "the writer's output");
        }
      });
    });
  });
});

for (const provider of [nobleProvider, webcryptoProvider, nodeCryptoProvider]) {
  describe(`vectors via ${provider.name}`, () => {
    it("the generator reproduces the committed corpus", async () => {
      const regenerated = await buildCorpus(provider);
      for (const f of FILES) {
        const got = toJsonText(stripNonDeterministic(regenerated[f] as VectorFile));
        assert.equal(
          got,
          toJsonText(stripNonDeterministic(corpus[f])),
          `${f} differs from its regeneration`,
        );
      }
    });

    it("identities: the stated secrets give the stated public keys, IDs and cards", async () => {
      const ids = await makeIdentities(provider);
      for (const f of ["card.json", "keyfile.json", ...MESSAGE_FILES] as const) {
        const listed =
          (corpus[f] as unknown as { identities: Record<string, unknown>[] }).identities;
        assert.equal(listed.length, IDENTITY_SPECS.length, f);
        for (const l of listed) {
          const id = ids.get(l.name as string)!;
          assert.equal(toHex(id.card.bytes), l.card, `${f} ${l.name}`);
          assert.equal(toHex(id.card.id), l.id);
          assert.equal(
            toHex(await provider.x25519PublicKey(hex(l.agreementKey as string))),
            l.agreementPublicKey,
          );
          assert.equal(
            toHex(await provider.ed25519PublicKey(hex(l.signingSeed as string))),
            l.signingKey,
          );
          assert.equal(await fingerprint(provider, id.card), l.fingerprint);
          assert.equal(cardToText(id.card), l.cardText);
        }
      }
    });

    for (const f of MESSAGE_FILES) {
      it(`${f}: each envelope is sealed from its inputs and opens to its stated outcome`, async () => {
        const ids = await makeIdentities(provider);
        await eachVector(messageVectors(f), async (v) => {
          const { envelope, draws } = await sealFromInputs(v.seal, ids, provider);
          const named = Object.entries(v.seal.random).filter(([k]) => k !== "seed");
          assert.deepEqual(draws.map(toHex), named.map(([, x]) => x), "random draws");
          assert.equal(
            toHex(applyMutations(envelope, v.mutations ?? [])),
            v.envelope,
            "envelope bytes",
          );
          await expectOutcome(
            v,
            () => openFromInputs(hex(v.envelope), v.open, ids, provider),
            (opened) => assert.deepEqual(describeOpened(opened), v.expect),
          );
        });
      });
    }

    it("card.json: cards parse to their stated fields or fail with the stated code", async () => {
      await eachVector(corpus["card.json"].vectors, (v) =>
        expectOutcome(
          v,
          () =>
            v.operation === "decode"
              ? decodeCard(provider, hex(v.input as string))
              : parseCardText(provider, v.input as string),
          async (card) => {
            assert.equal(toHex(card.bytes), v.expect.card);
            assert.equal(toHex(card.id), v.expect.id);
            assert.equal(card.address, v.expect.address);
            assert.deepEqual(card.stps, v.expect.stps);
            assert.equal(cardToText(card), v.expect.cardText);
            await checkCardFromSpec(provider, v.expect);
          },
        ));
    });

    it("keyfile.json: key files load to their stated secrets or fail with `key`", async () => {
      const p = withNobleChaCha(provider);
      const ids = await makeIdentities(p);
      await eachVector(corpus["keyfile.json"].vectors, async (v) => {
        const inputs = v.inputs as {
          identity: string;
          passphrase: string | null;
          logN?: number;
          salt?: string;
          nonce?: string;
        };
        if (v.name === "plain") {
          assert.equal(await writeKeyFile(p, ids.get("alice")!), v.text, "writeKeyFile");
        }
        if (v.expect.outcome === "success" && inputs.salt) {
          const made = encryptedKeyFile(
            ids.get(inputs.identity)!,
            inputs.passphrase!,
            inputs.logN!,
            hex(inputs.salt),
            hex(inputs.nonce!),
          );
          assert.equal(made, v.text, "encrypted file from its stated inputs");
        }
        await expectOutcome(
          v,
          () => readKeyFile(p, v.text as string, () => Promise.resolve(inputs.passphrase ?? "")),
          (id) => {
            assert.equal(toHex(id.signingSeed), v.expect.signingSeed);
            assert.equal(toHex(id.agreementKey), v.expect.agreementKey);
            assert.equal(toHex(id.card.id), v.expect.id);
          },
        );
      });
    });
  });
}
