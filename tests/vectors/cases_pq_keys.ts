/**
 * Vectors for hybrid (format-2) cards (SPEC §3, `card_v2.json`) and for weak keys (SPEC
 * §1.4, §3.7, `weak_keys.json`): small-order and non-canonical Ed25519 points as signing
 * keys or as a signature's R, S ≥ L, and weak X25519 keys (agreement keys, the X25519 half
 * of a hybrid key), through card decoding and through Ed25519 verification.
 * Part of tests/vectors/generate.ts (see there).
 * @module
 */
import { concatBytes, fromHex, toHex, utf8 } from "../../core/bytes.ts";
import { type CborValue, transcript } from "../../core/cbor.ts";
import { type ErrorCode, MissiveError } from "../../core/errors.ts";
import type { CryptoProvider } from "../../crypto/provider.ts";
import {
  type Card,
  type CardFields,
  cardFileText,
  cardToText,
  decodeCard,
  fingerprint,
  makeCard,
  parseCardText,
} from "../../keys/card.ts";
import { type Identity, readKeyFile, writeKeyFile } from "../../keys/identity.ts";
import { reencode } from "./cases_amp.ts";
import { keyFileText, withNobleChaCha } from "./cases_keys.ts";
import { applyMutations, CREATED, get, type Mutation, randomStream, secret } from "./common.ts";
import { bytesOf, del, failure, outcomeOf, set, xor } from "./messages.ts";
import { ed25519, ED25519_TORSION_SUBGROUP } from "@noble/curves/ed25519.js";
import { xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { scrypt } from "@noble/hashes/scrypt.js";

type Operation = "parse-text" | "decode";

/** A card's stated fields, as a vector lists them. */
async function describe(provider: CryptoProvider, card: Card) {
  return {
    outcome: "success",
    format: card.hybridKey ? 2 : 1,
    address: card.address,
    signingKey: toHex(card.signingKey),
    agreementKey: toHex(card.agreementKey),
    ...(card.hybridKey ? { hybridKey: toHex(card.hybridKey) } : {}),
    stps: card.stps,
    amps: card.amps,
    created: card.created,
    id: toHex(card.id),
    fingerprint: await fingerprint(provider, card),
    card: toHex(card.bytes),
    cardText: cardToText(card),
  };
}

/** Card vectors: each decoded with `provider`; the generator fails if an outcome differs. */
function cardVectorList(provider: CryptoProvider) {
  const vectors: unknown[] = [];
  return {
    vectors,
    async ok(
      name: string,
      comment: string,
      operation: Operation,
      input: string,
      extra: Record<string, unknown> = {},
    ) {
      const card = operation === "decode"
        ? await decodeCard(provider, fromHex(input)!)
        : await parseCardText(provider, input);
      vectors.push({
        name,
        comment,
        ...extra,
        operation,
        input,
        expect: await describe(provider, card),
      });
    },
    async bad(
      name: string,
      comment: string,
      input: string,
      code: ErrorCode,
      extra: Record<string, unknown> = {},
    ) {
      const got = await outcomeOf(() => decodeCard(provider, fromHex(input)!));
      if (got !== code) throw new Error(`card/${name}: expected ${code}, got ${got}`);
      vectors.push({
        name,
        comment,
        ...extra,
        operation: "decode",
        input,
        expect: failure(code, code),
      });
    },
  };
}

export async function cardV2Vectors(provider: CryptoProvider, ids: Map<string, Identity>) {
  const { vectors, ok, bad } = cardVectorList(provider);
  for (const name of ["alice", "bob", "carol", "mallory"]) {
    const text = cardToText(get(ids, name).card);
    await ok(`${name}/text`, `${name}'s hybrid card as one line`, "parse-text", text, {
      identity: name,
    });
  }
  const alice = get(ids, "alice");
  const bob = get(ids, "bob");
  await ok("alice/cbor", "alice's card as CBOR bytes", "decode", toHex(alice.card.bytes), {
    identity: "alice",
  });
  await ok(
    "alice/card-file",
    "a card file: comment lines, then the card line",
    "parse-text",
    await cardFileText(provider, alice.card),
    { identity: "alice" },
  );
  const erin = {
    signingSeed: secret("erin", "signing"),
    agreementKey: secret("erin", "agreement"),
    hybridSeed: secret("erin", "hybrid"),
  };
  const minimal = await makeCard(provider, {
    address: "e@x.io",
    signingKey: await provider.ed25519PublicKey(fromHex(erin.signingSeed)!),
    agreementKey: await provider.x25519PublicKey(fromHex(erin.agreementKey)!),
    hybridKey: await provider.xwingPublicKey(fromHex(erin.hybridSeed)!),
    stps: [],
    amps: [],
    created: 0,
  }, fromHex(erin.signingSeed)!);
  await ok(
    "minimal",
    "no capabilities, created 0; all three secrets stated",
    "decode",
    toHex(minimal.bytes),
    {
      secrets: { ...erin, address: "e@x.io", stps: [], amps: [], created: 0 },
    },
  );

  const mutated = (name: string, comment: string, code: ErrorCode, mutations: Mutation[]) =>
    bad(name, comment, toHex(applyMutations(alice.card.bytes, mutations)), code, {
      base: "alice",
      mutations,
    });
  await mutated("bad-self-signature", "one bit of the self-signature flipped", "key", [
    xor("card", 8),
  ]);
  await mutated("hybrid-key-swapped", "bob's hybrid key under alice's self-signature", "key", [
    set("card", 9, bytesOf(toHex(bob.card.hybridKey!))),
  ]);
  await mutated("hybrid-key-mlkem-flipped", "a bit of the ML-KEM half flipped", "key", [
    xor("card", 9, 600, 0x01),
  ]);
  await mutated("created-changed", "creation time changed after signing", "key", [
    set("card", 7, CREATED + 1),
  ]);
  await mutated("no-hybrid-key", "format 2 without field 9", "malformed", [del("card", 9)]);
  await mutated("format-1-with-hybrid-key", "format 1 refuses field 9", "malformed", [
    set("card", 1, 1),
  ]);
  await mutated("format-3", "no format 3", "malformed", [set("card", 1, 3)]);
  await mutated("hybrid-key-1215-bytes", "field 9 must be 1,216 bytes", "malformed", [
    set("card", 9, bytesOf(toHex(alice.card.hybridKey!.subarray(1)))),
  ]);
  await mutated("unknown-field-10", "format 2 refuses fields other than 1–9", "malformed", [
    set("card", 10, 0),
  ]);
  await mutated("too-large", "over 4096 bytes (checked before decoding)", "too-large", [
    set("card", 10, bytesOf("00".repeat(2700))),
  ]);
  // Re-signed cards: the self-signature is valid, so the checks themselves are tested.
  const resigned = async (name: string, comment: string, fields: Partial<CardFields>) => {
    const card = await makeCard(provider, { ...alice.card, ...fields }, alice.signingSeed);
    await bad(name, comment, toHex(card.bytes), "key", { resigned: "alice" });
  };
  const hk = alice.card.hybridKey!;
  await resigned("resigned/x25519-half-zero", "the X25519 half of field 9 all zero (small order)", {
    hybridKey: concatBytes(hk.subarray(0, 1184), new Uint8Array(32)),
  });
  await resigned(
    "resigned/x25519-half-high-bit",
    "bit 255 of the X25519 half set (not canonical)",
    {
      hybridKey: concatBytes(hk.subarray(0, 1215), new Uint8Array([hk[1215] | 0x80])),
    },
  );
  await resigned("resigned/mlkem-coefficient-4095", "an ML-KEM coefficient ≥ q (FIPS 203 §7.2)", {
    hybridKey: concatBytes(new Uint8Array([0xff, 0x0f]), hk.subarray(2)),
  });
  // A format-2 card signed over the format-1 transcript (labels are per format).
  const v1Signed = await makeCard(
    provider,
    { ...alice.card, hybridKey: undefined },
    alice.signingSeed,
  );
  await bad(
    "signed-under-v1-label",
    "alice's v2 fields with the signature of her v1 card (other label, no field 9)",
    toHex(applyMutations(alice.card.bytes, [set("card", 8, bytesOf(toHex(v1Signed.signature)))])),
    "key",
  );
  return vectors;
}

const L = 2n ** 252n + 27742317777372353535851937790883648493n;
const le32 = (n: bigint) =>
  Uint8Array.from({ length: 32 }, (_, i) => Number((n >> BigInt(8 * i)) & 255n));
const fromLe = (b: Uint8Array) => b.reduceRight((n, x) => (n << 8n) | BigInt(x), 0n);

/** Weak Ed25519 encodings: the torsion points and non-canonical forms (SPEC §1.4). */
function weakPoints(): [string, string][] {
  return [
    ...ED25519_TORSION_SUBGROUP.map((h, i) => [`torsion-${i}`, h] as [string, string]),
    ["y-equals-p-plus-1", "ee" + "ff".repeat(30) + "7f"],
    ["y-equals-p", "ed" + "ff".repeat(30) + "7f"],
    ["identity-sign-bit", "01" + "00".repeat(30) + "80"],
  ];
}

export async function weakKeyVectors(provider: CryptoProvider, ids: Map<string, Identity>) {
  const { vectors, ok, bad } = cardVectorList(provider);
  const alice = get(ids, "alice");
  const mallory = get(ids, "mallory");
  await ok("control/card", "alice's format-1 card decodes", "decode", toHex(alice.card.bytes), {
    identity: "alice",
  });
  const message = utf8("missive weak-key vectors");
  const verify = async (
    name: string,
    comment: string,
    publicKey: Uint8Array,
    signature: Uint8Array,
    expect: "success" | "auth-failed",
  ) => {
    const valid = await provider.ed25519Verify(publicKey, message, signature);
    if (valid !== (expect === "success")) throw new Error(`weak/${name}: verify gave ${valid}`);
    vectors.push({
      name,
      comment,
      operation: "verify",
      input: { publicKey: toHex(publicKey), message: toHex(message), signature: toHex(signature) },
      expect: expect === "success" ? { outcome: "success" } : failure("auth-failed", "auth-failed"),
    });
  };
  const sig = await provider.ed25519Sign(alice.signingSeed, message);
  await verify(
    "verify/control",
    "alice's signature verifies",
    alice.card.signingKey,
    sig,
    "success",
  );
  await verify(
    "verify/control-mallory",
    "mallory's signature verifies",
    mallory.card.signingKey,
    await provider.ed25519Sign(mallory.signingSeed, message),
    "success",
  );
  const zeroS = new Uint8Array(32);
  for (const [what, hex] of weakPoints()) {
    const point = fromHex(hex)!;
    await verify(
      `verify/A-${what}/trivial`,
      `A = ${what}, R = A, S = 0: satisfies the cofactorless equation for some A; refused`,
      point,
      concatBytes(point, zeroS),
      "auth-failed",
    );
    await verify(
      `verify/R-${what}`,
      `alice's key and S, R = ${what}: refused before the curve equation`,
      alice.card.signingKey,
      concatBytes(point, sig.subarray(32)),
      "auth-failed",
    );
  }
  const sPlusL = le32(fromLe(sig.subarray(32)) + L);
  await verify(
    "verify/S-plus-L",
    "S + L: S must be < L (RFC 8032 §5.1.7)",
    alice.card.signingKey,
    concatBytes(sig.subarray(0, 32), sPlusL),
    "auth-failed",
  );

  // Cards: every weak signing key with the trivial self-signature (R = identity, S = 0).
  const trivial = concatBytes(fromHex("01" + "00".repeat(31))!, zeroS);
  const fields = (
    signingKey: Uint8Array,
    agreementKey = mallory.card.agreementKey,
  ): CardFields => ({
    address: "mallory@example.org",
    signingKey: signingKey as never,
    agreementKey,
    stps: [[2, 2]],
    amps: [[1, 1]],
    created: CREATED,
  });
  const trivialProvider = { ...provider, ed25519Sign: () => Promise.resolve(trivial.slice()) };
  for (const [what, hex] of weakPoints()) {
    const card = await makeCard(trivialProvider, fields(fromHex(hex)!), new Uint8Array(32));
    await bad(
      `card/signing-key-${what}`,
      `signing key ${what}, trivial self-signature`,
      toHex(card.bytes),
      "key",
    );
  }
  // A key with a torsion component: canonical, not small order, but not of prime order.
  const mixed = ed25519.Point.fromBytes(mallory.card.signingKey).add(
    ed25519.Point.fromHex(ED25519_TORSION_SUBGROUP[1]),
  ).toBytes();
  const mixedCard = await makeCard(provider, fields(mixed), mallory.signingSeed);
  await bad(
    "card/signing-key-mixed-order",
    "mallory's key plus a point of order 8",
    toHex(mixedCard.bytes),
    "key",
  );
  // Weak X25519 agreement keys, properly self-signed by mallory.
  const weakX: [string, string][] = [
    ["zero", "00".repeat(32)],
    ["one", "01" + "00".repeat(31)],
    ["order-8-a", "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"],
    ["order-8-b", "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"],
    ["p-minus-1", "ec" + "ff".repeat(30) + "7f"],
    ["p", "ed" + "ff".repeat(30) + "7f"],
    ["p-plus-1", "ee" + "ff".repeat(30) + "7f"],
    ["high-bit", toHex(mallory.card.agreementKey.map((b, i) => (i === 31 ? b | 0x80 : b)))],
  ];
  for (const [what, hex] of weakX) {
    const card = await makeCard(
      provider,
      fields(mallory.card.signingKey, fromHex(hex)!),
      mallory.signingSeed,
    );
    await bad(
      `card/agreement-key-${what}`,
      `X25519 agreement key ${what}`,
      toHex(card.bytes),
      "key",
    );
  }
  return vectors;
}

/** A format-2 key file encrypted with a stated salt and nonce (SPEC §4), by hand. */
export function encryptedKeyFileV2(
  id: Identity,
  passphrase: string,
  logN: number,
  salt: Uint8Array,
  nonce: Uint8Array,
): string {
  const key = scrypt(utf8(passphrase), salt, { N: 2 ** logN, r: 8, p: 1, dkLen: 32 });
  const aad = transcript("missive/key/v2/scrypt-xchacha20poly1305", id.card.bytes, logN, salt);
  const sealed = xchacha20poly1305(key, nonce, aad).encrypt(
    concatBytes(id.signingSeed, id.agreementKey, id.hybridSeed!),
  );
  return keyFileText(
    id.card,
    new Map<number, CborValue>([[1, 2], [2, id.card.bytes], [4, logN], [5, salt], [6, nonce], [
      7,
      sealed,
    ]]),
    true,
  );
}

/** Key files of hybrid identities (format 2, SPEC §4): the X-Wing seed is the third secret. */
export async function keyFileV2Vectors(webProvider: CryptoProvider, ids: Map<string, Identity>) {
  const provider = withNobleChaCha(webProvider);
  const vectors: unknown[] = [];
  const alice = get(ids, "alice");
  const bob = get(ids, "bob");
  const dave = get(ids, "dave");
  const PASS = "correct horse battery staple";
  const stream = randomStream("keyfile_v2");
  const salt = stream(16);
  const nonce = stream(24);
  const run = async (
    name: string,
    comment: string,
    text: string,
    inputs: Record<string, unknown>,
    expect: ErrorCode | "success",
  ) => {
    let result: unknown;
    try {
      const id = await readKeyFile(
        provider,
        text,
        () => Promise.resolve(inputs.passphrase as string),
      );
      result = {
        outcome: "success",
        address: id.card.address,
        id: toHex(id.card.id),
        signingSeed: toHex(id.signingSeed),
        agreementKey: toHex(id.agreementKey),
        hybridSeed: toHex(id.hybridSeed!),
      };
    } catch (e) {
      if (!(e instanceof MissiveError)) throw e;
      result = failure(e.code, e.code);
    }
    const got = (result as { outcome: string }).outcome;
    if (got !== expect) throw new Error(`keyfile_v2/${name}: expected ${expect}, got ${got}`);
    vectors.push({ name, comment, inputs, text, expect: result });
  };
  const plain = { identity: "alice", passphrase: null };
  const enc = {
    identity: "alice",
    passphrase: PASS,
    logN: 10,
    salt: toHex(salt),
    nonce: toHex(nonce),
  };
  const plainText = await writeKeyFile(provider, alice);
  const encText = encryptedKeyFileV2(alice, PASS, 10, salt, nonce);
  const secret96 = (id: Identity) => concatBytes(id.signingSeed, id.agreementKey, id.hybridSeed!);
  await run(
    "plain",
    "unencrypted: field 3 is seed ‖ X25519 key ‖ X-Wing seed (96 bytes)",
    plainText,
    plain,
    "success",
  );
  await run(
    "scrypt-logN-10",
    "encrypted under the v2 AAD label, N = 2^10",
    encText,
    enc,
    "success",
  );
  await run("wrong-passphrase", "the AEAD tag does not verify", encText, {
    ...enc,
    passphrase: "x",
  }, "key");
  await run(
    "format-1-hybrid-card",
    "field 1 = 1 with a format-2 card: the formats must match",
    reencode(plainText, 1, 1),
    plain,
    "key",
  );
  await run(
    "format-2-classical-card",
    "field 1 = 2 with dave's format-1 card and a 96-byte secret",
    keyFileText(
      dave.card,
      new Map<number, CborValue>([[1, 2], [2, dave.card.bytes], [
        3,
        concatBytes(dave.signingSeed, dave.agreementKey, new Uint8Array(32)),
      ]]),
      false,
    ),
    { identity: "dave", passphrase: null },
    "key",
  );
  await run(
    "secret-64-bytes",
    "a format-2 secret is 96 bytes",
    reencode(plainText, 3, secret96(alice).slice(0, 64)),
    plain,
    "key",
  );
  await run(
    "hybrid-seed-of-another",
    "bob's X-Wing seed under alice's card: the derived key differs from field 9",
    reencode(plainText, 3, concatBytes(alice.signingSeed, alice.agreementKey, bob.hybridSeed!)),
    plain,
    "key",
  );
  await run(
    "sealed-111-bytes",
    "a format-2 sealed secret is 96 + 16 bytes",
    reencode(encText, 7, new Uint8Array(111)),
    enc,
    "key",
  );
  await run(
    "v1-aad-label",
    "encrypted under the format-1 AAD label",
    reencode(
      encText,
      7,
      xchacha20poly1305(
        scrypt(utf8(PASS), salt, { N: 1024, r: 8, p: 1, dkLen: 32 }),
        nonce,
        transcript("missive/key/v1/scrypt-xchacha20poly1305", alice.card.bytes, 10, salt),
      ).encrypt(secret96(alice)),
    ),
    enc,
    "key",
  );
  return vectors;
}
