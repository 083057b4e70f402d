/**
 * Card and key-file vectors (SPEC §3, §4).
 * Part of tests/vectors/generate.ts (see there).
 * @module
 */
import { armorBlock } from "../../core/armor.ts";
import { concatBytes, fromHex, toHex, utf8 } from "../../core/bytes.ts";
import { type CborValue, encodeCbor, transcript } from "../../core/cbor.ts";
import { nobleProvider } from "../../crypto/noble.ts";
import type { CryptoProvider } from "../../crypto/provider.ts";
import { toLine } from "../../envelope/mod.ts";
import { type ErrorCode, MissiveError } from "../../core/errors.ts";
import {
  type Card,
  cardFileText,
  cardToText,
  decodeCard,
  fingerprint,
  makeCard,
  parseCardText,
} from "../../keys/card.ts";
import { type Identity, readKeyFile, writeKeyFile } from "../../keys/identity.ts";
import { reencode } from "./cases_amp.ts";
import { applyMutations, CREATED, get, type Mutation, randomStream, secret } from "./common.ts";
import { bytesOf, del, failure, outcomeOf, set, xor } from "./messages.ts";

import { xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { scrypt } from "@noble/hashes/scrypt.js";

export const toBase64Url = (b: Uint8Array) =>
  toLine(b).replace(/=+$/, "").replaceAll("+", "-").replaceAll("/", "_");

/** The last base64 character before padding, changed so that its padding bits are not zero. */
export function nonCanonical(c: string, pad: number): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  return alphabet[alphabet.indexOf(c) | (pad === 1 ? 1 : 8)];
}

export async function cardVectors(provider: CryptoProvider, ids: Map<string, Identity>) {
  const vectors: unknown[] = [];
  const describe = async (card: Card) => ({
    outcome: "success",
    address: card.address,
    signingKey: toHex(card.signingKey),
    agreementKey: toHex(card.agreementKey),
    stps: card.stps,
    amps: card.amps,
    created: card.created,
    id: toHex(card.id),
    fingerprint: await fingerprint(provider, card),
    card: toHex(card.bytes),
    cardText: cardToText(card),
  });
  const ok = async (
    name: string,
    comment: string,
    operation: "parse-text" | "decode",
    input: string,
    identity?: string,
  ) => {
    const card = operation === "decode"
      ? await decodeCard(provider, fromHex(input)!)
      : await parseCardText(provider, input);
    vectors.push({
      name,
      comment,
      ...(identity ? { identity } : {}),
      operation,
      input,
      expect: await describe(card),
    });
  };
  const bad = async (
    name: string,
    comment: string,
    operation: "parse-text" | "decode",
    input: string,
    code: ErrorCode,
    mutations?: Mutation[],
  ) => {
    const got = await outcomeOf(() =>
      operation === "decode"
        ? decodeCard(provider, fromHex(input)!)
        : parseCardText(provider, input)
    );
    if (got !== code) throw new Error(`card/${name}: expected ${code}, got ${got}`);
    vectors.push({
      name,
      comment,
      operation,
      ...(mutations ? { base: "alice", mutations } : {}),
      input,
      expect: failure(code, code),
    });
  };
  for (const name of ["alice", "bob", "carol", "mallory"]) {
    await ok(
      `${name}/text`,
      `${name}'s card as one line`,
      "parse-text",
      cardToText(get(ids, name).card),
      name,
    );
  }
  const alice = get(ids, "alice").card;
  await ok("alice/cbor", "alice's card as CBOR bytes", "decode", toHex(alice.bytes), "alice");
  await ok(
    "alice/card-file",
    "a card file: comment lines, then the card line",
    "parse-text",
    await cardFileText(provider, alice),
    "alice",
  );
  // A minimal card: no capabilities, created 0, made from its own seeds (stated here).
  const dave = {
    signingSeed: secret("dave", "signing"),
    agreementKey: secret("dave", "agreement"),
  };
  const minimal = await makeCard(provider, {
    address: "d@x.io",
    signingKey: await provider.ed25519PublicKey(fromHex(dave.signingSeed)!),
    agreementKey: await provider.x25519PublicKey(fromHex(dave.agreementKey)!),
    stps: [],
    amps: [],
    created: 0,
  }, fromHex(dave.signingSeed)!);
  vectors.push({
    name: "minimal",
    comment: "no capabilities, created 0; signing seed and agreement key stated",
    secrets: { ...dave, address: "d@x.io", stps: [], amps: [], created: 0 },
    operation: "decode",
    input: toHex(minimal.bytes),
    expect: await describe(await decodeCard(provider, minimal.bytes)),
  });

  const mutated = async (name: string, comment: string, code: ErrorCode, mutations: Mutation[]) =>
    await bad(
      name,
      comment,
      "decode",
      toHex(applyMutations(alice.bytes, mutations)),
      code,
      mutations,
    );
  const bob = get(ids, "bob").card;
  await mutated("bad-self-signature", "one bit of the self-signature flipped", "key", [
    xor("card", 8),
  ]);
  await mutated("address-changed", "address changed after signing", "key", [
    set("card", 2, "alicia@example.org"),
  ]);
  await mutated("created-changed", "creation time changed", "key", [set("card", 7, CREATED + 1)]);
  await mutated("capabilities-changed", "an STP pair removed", "key", [set("card", 5, [[2, 2]])]);
  await mutated("signing-key-swapped", "bob's signing key under alice's self-signature", "key", [
    set("card", 3, bytesOf(toHex(bob.signingKey))),
  ]);
  await mutated(
    "agreement-key-swapped",
    "bob's agreement key under alice's self-signature",
    "key",
    [set("card", 4, bytesOf(toHex(bob.agreementKey)))],
  );
  await mutated("format-2", "field 1 must be 1", "malformed", [set("card", 1, 2)]);
  await mutated("address-upper-case", "address not in normal (lower-case) form", "malformed", [
    set("card", 2, "Alice@example.org"),
  ]);
  await mutated("address-invalid", "address without a domain", "malformed", [
    set("card", 2, "alice"),
  ]);
  await mutated("signing-key-31-bytes", "signing key must be 32 bytes", "malformed", [
    set("card", 3, bytesOf("00".repeat(31))),
  ]);
  await mutated("signature-63-bytes", "signature must be 64 bytes", "malformed", [
    set("card", 8, bytesOf("00".repeat(63))),
  ]);
  await mutated("pair-out-of-range", "STP type 65536", "malformed", [set("card", 5, [[65536, 1]])]);
  await mutated("pair-three-numbers", "a pair is two numbers", "malformed", [
    set("card", 6, [[1, 1, 1]]),
  ]);
  await mutated("missing-created", "field 7 missing", "malformed", [del("card", 7)]);
  await mutated("created-negative", "created is unsigned", "malformed", [set("card", 7, -1)]);
  await mutated("non-canonical", "map length written as b8 08", "malformed", [{
    op: "splice",
    target: "card",
    offset: 0,
    remove: 1,
    insert: "b808",
  }]);
  await mutated("too-large", "4097 bytes or more (checked before decoding)", "too-large", [
    set("card", 9, bytesOf("00".repeat(4000))),
  ]);
  const text = cardToText(alice);
  await bad("text/padding", "base64url with '=' padding", "parse-text", text + "=", "malformed");
  await bad(
    "text/standard-alphabet",
    "'+' is not base64url",
    "parse-text",
    text.slice(0, 20) + "+" + text.slice(21),
    "malformed",
  );
  await bad(
    "text/wrong-prefix",
    "prefix must be missive-card:",
    "parse-text",
    text.replace("missive-card:", "missive-key:"),
    "malformed",
  );
  await bad(
    "text/no-prefix",
    "bare base64url",
    "parse-text",
    text.slice("missive-card:".length),
    "malformed",
  );
  await bad(
    "text/two-cards",
    "two card lines",
    "parse-text",
    text + "\n" + cardToText(bob) + "\n",
    "malformed",
  );
  await bad("text/empty", "nothing but comments", "parse-text", "# no card here\n", "malformed");
  return vectors;
}

/** A key file encrypted with a stated salt and nonce (SPEC §4), built without writeKeyFile. */
export function encryptedKeyFile(
  id: Identity,
  passphrase: string,
  logN: number,
  salt: Uint8Array,
  nonce: Uint8Array,
): string {
  const key = scrypt(utf8(passphrase), salt, { N: 2 ** logN, r: 8, p: 1, dkLen: 32 });
  const aad = transcript("missive/key/v1/scrypt-xchacha20poly1305", id.card.bytes, logN, salt);
  const sealed = xchacha20poly1305(key, nonce, aad).encrypt(
    concatBytes(id.signingSeed, id.agreementKey),
  );
  return keyFileText(
    id.card,
    new Map<number, CborValue>([[1, 1], [2, id.card.bytes], [4, logN], [5, salt], [6, nonce], [
      7,
      sealed,
    ]]),
    true,
  );
}

/** The text layout writeKeyFile uses: three comment lines, then the armored CBOR map. */
export function keyFileText(
  card: Card,
  fields: Map<number, CborValue>,
  encrypted: boolean,
): string {
  return [
    `# missive secret key for ${card.address}${encrypted ? " (passphrase-protected)" : ""}`,
    `# id: ${toHex(card.id)}`,
    `# card: ${cardToText(card)}`,
    armorBlock("MISSIVE SECRET KEY", encodeCbor(fields)),
  ].join("\n");
}

/** WebCrypto has no XChaCha20-Poly1305; key files borrow noble's, as crypto/mod.ts does. */
export function withNobleChaCha(p: CryptoProvider): CryptoProvider {
  return {
    ...p,
    name: `${p.name}+noble-chacha`,
    aeadEncrypt: (alg, ...rest) =>
      (alg === "aes-256-gcm" ? p : nobleProvider).aeadEncrypt(alg, ...rest),
    aeadDecrypt: (alg, ...rest) =>
      (alg === "aes-256-gcm" ? p : nobleProvider).aeadDecrypt(alg, ...rest),
  };
}

export async function keyFileVectors(webProvider: CryptoProvider, ids: Map<string, Identity>) {
  const provider = withNobleChaCha(webProvider);
  const vectors: unknown[] = [];
  const alice = get(ids, "alice");
  const bob = get(ids, "bob");
  const PASS = "correct horse battery staple";
  const stream = randomStream("keyfile");
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
      };
    } catch (e) {
      if (!(e instanceof MissiveError)) throw e;
      result = failure(e.code, e.code);
    }
    const got = (result as { outcome: string }).outcome;
    if (got !== expect) throw new Error(`keyfile/${name}: expected ${expect}, got ${got}`);
    vectors.push({ name, comment, inputs, text, expect: result });
  };
  const plainText = await writeKeyFile(provider, alice);
  const enc = {
    identity: "alice",
    passphrase: PASS,
    logN: 10,
    salt: toHex(salt),
    nonce: toHex(nonce),
  };
  const encText = encryptedKeyFile(alice, PASS, 10, salt, nonce);
  const plainFields = (id: Identity, card = id.card) =>
    new Map<number, CborValue>([[1, 1], [2, card.bytes], [
      3,
      concatBytes(id.signingSeed, id.agreementKey),
    ]]);

  await run("plain", "unencrypted, as writeKeyFile writes it", plainText, {
    identity: "alice",
    passphrase: null,
  }, "success");
  await run("scrypt-logN-10", "passphrase-encrypted, N = 2^10", encText, enc, "success");
  const uni = { ...enc, passphrase: "pässwörd ✓" };
  await run(
    "unicode-passphrase",
    "the passphrase's UTF-8 bytes, not normalised",
    encryptedKeyFile(alice, uni.passphrase, 10, salt, nonce),
    uni,
    "success",
  );
  await run("wrong-passphrase", "the AEAD tag does not verify", encText, {
    ...enc,
    passphrase: "Correct horse battery staple",
  }, "key");
  await run("logN-21", "work factor above 20 refused before any work", reencode(encText, 4, 21), {
    ...enc,
    logN: 21,
  }, "key");
  await run(
    "logN-9",
    "work factor below 10 refused",
    reencode(encText, 4, 9),
    { ...enc, logN: 9 },
    "key",
  );
  await run(
    "card-swapped",
    "bob's card with alice's encrypted secret: the AAD binds the card",
    reencode(encText, 2, bob.card.bytes),
    enc,
    "key",
  );
  await run(
    "secret-of-another",
    "unencrypted: bob's secret under alice's card",
    keyFileText(alice.card, plainFields(bob, alice.card), false),
    { identity: "alice", passphrase: null },
    "key",
  );
  await run("format-2", "field 1 must be 1", reencode(plainText, 1, 2), {
    identity: "alice",
    passphrase: null,
  }, "key");
  await run(
    "secret-63-bytes",
    "field 3 must be 64 bytes",
    reencode(plainText, 3, new Uint8Array(63)),
    { identity: "alice", passphrase: null },
    "key",
  );
  await run(
    "sealed-79-bytes",
    "field 7 must be 80 bytes",
    reencode(encText, 7, new Uint8Array(79)),
    enc,
    "key",
  );
  await run(
    "armor-short-line",
    "a 63-column armor line",
    plainText.replace(
      /\n([A-Za-z0-9+/]{64})\n/,
      (_, l: string) => `\n${l.slice(0, 63)}\n${l.slice(63)}`,
    ),
    { identity: "alice", passphrase: null },
    "key",
  );
  await run(
    "no-armor",
    "comments only",
    plainText.split("\n").filter((l) => l.startsWith("#")).join("\n"),
    { identity: "alice", passphrase: null },
    "key",
  );
  return vectors;
}

/** Re-encodes the CBOR map inside a key file with one field replaced (or the same layout). */
