/**
 * Detached signature vectors (SPEC §24): missive's signature text and the file it is
 * checked against, the verifier's trusted cards, and the outcome. Signatures are Ed25519,
 * so every success vector is reproduced byte for byte from its `sign` inputs; failure
 * vectors state the exact text to check (edits of a good signature, re-encoded
 * deterministically where they change a field).
 * Part of tests/vectors/generate.ts (see there).
 * @module
 */
import { armorBlock, maxArmoredLength } from "../../core/armor.ts";
import { type Bytes, toHex, utf8 } from "../../core/bytes.ts";
import {
  type CborMap,
  type CborValue,
  decodeCbor,
  encodeCbor,
  transcript,
} from "../../core/cbor.ts";
import { isMissiveError } from "../../core/errors.ts";
import type { CryptoProvider } from "../../crypto/provider.ts";
import { fingerprint } from "../../keys/card.ts";
import type { Identity } from "../../keys/identity.ts";
import {
  decodeSignature,
  MAX_SIGNATURE_BYTES,
  SIGNATURE_ARMOR,
  signatureText,
  signDigest,
  verifyFile,
} from "../../sign/mod.ts";
import { sha512 } from "@noble/hashes/sha2.js";
import { CREATED, get } from "./common.ts";

/** The signing time of every vector unless it says otherwise. */
const SIGNED_AT = CREATED + 86_400_000;

/** Inputs of a good signature (the file is the vector's `file`). */
interface SignInputs {
  signer: string;
  created: number;
  comment: string;
}

/** A file of `n` bytes, byte i = i mod 251 (as stream.json's plaintexts). */
const pattern = (n: number): Bytes => Uint8Array.from({ length: n }, (_, i) => i % 251);

/** Makes a good signature's bytes from its inputs. */
export async function signatureFromInputs(
  provider: CryptoProvider,
  ids: Map<string, Identity>,
  s: SignInputs,
  file: Uint8Array,
): Promise<Bytes> {
  return await signDigest(provider, get(ids, s.signer), {
    size: file.length,
    sha512: sha512(file),
  }, { comment: s.comment, created: s.created });
}

/** A signature's CBOR with field edits (deterministic re-encoding). */
function edit(bytes: Uint8Array, f: (m: CborMap) => void): Bytes {
  const m = decodeCbor(bytes) as CborMap;
  f(m);
  return encodeCbor(m);
}

/** What the verifier is given besides the signature and the file. */
interface VerifyInputs {
  trusted: string[];
  requireTrust: boolean;
}

export async function signatureVectors(provider: CryptoProvider, ids: Map<string, Identity>) {
  const vectors: unknown[] = [];
  const trustedCards = (names: string[]) => names.map((n) => get(ids, n).card);

  /** Checks the outcome with the implementation, then records the vector. */
  const add = async (
    v: {
      name: string;
      comment: string;
      sign?: SignInputs;
      file: Uint8Array;
      signature: string;
      verify: VerifyInputs;
    },
    outcome: string,
  ) => {
    let expect: Record<string, unknown>;
    try {
      const ok = await verifyFile(v.signature, v.file, {
        crypto: provider,
        trusted: trustedCards(v.verify.trusted),
        requireTrust: v.verify.requireTrust,
      });
      if (outcome !== "success") throw new Error(`signature vector ${v.name}: verified`);
      expect = {
        outcome,
        signer: {
          address: ok.signer.address,
          id: toHex(ok.signer.id),
          fingerprint: await fingerprint(provider, ok.signer),
        },
        trusted: ok.trusted,
        created: ok.created,
        comment: ok.comment,
        size: ok.size,
        sha512: toHex(ok.sha512),
        // SPEC §24.2, rebuilt from the fields as a verifier does.
        signatureInput: toHex(
          transcript(
            "missive/signature/v1/file",
            ok.signer.bytes,
            ok.created,
            ok.size,
            ok.sha512,
            ok.comment,
          ),
        ),
      };
    } catch (e) {
      if (!isMissiveError(e)) throw e;
      if (e.code !== outcome) {
        throw new Error(`signature vector ${v.name}: ${e.code} (${e.message}), not ${outcome}`);
      }
      expect = { outcome, error: e.code };
    }
    vectors.push({
      name: v.name,
      comment: v.comment,
      ...(v.sign ? { sign: v.sign } : {}),
      file: toHex(v.file),
      signature: v.signature,
      verify: v.verify,
      expect,
    });
  };

  const anyone: VerifyInputs = { trusted: [], requireTrust: false };
  const good = async (
    name: string,
    comment: string,
    s: SignInputs,
    file: Uint8Array,
    verify = anyone,
  ) => {
    const bytes = await signatureFromInputs(provider, ids, s, file);
    await add({ name, comment, sign: s, file, signature: signatureText(bytes), verify }, "success");
    return bytes;
  };

  // ---- successes
  const hello = utf8("hello, world\n");
  const base: SignInputs = { signer: "alice", created: SIGNED_AT, comment: "file:hello.txt" };
  const baseBytes = await good(
    "alice-hello",
    "alice signs a 13-byte text file; the verifier trusts nobody (verified, not trusted)",
    base,
    hello,
  );
  await good(
    "alice-hello-trusted",
    "the same signature checked by a verifier who trusts alice and requires trust",
    base,
    hello,
    { trusted: ["bob", "alice"], requireTrust: true },
  );
  await good(
    "empty-file",
    "an empty file, an empty comment",
    { signer: "bob", created: SIGNED_AT, comment: "" },
    new Uint8Array(0),
  );
  await good(
    "pattern-1000",
    "1000 bytes (byte i = i mod 251), carol, a comment with tabs",
    { signer: "carol", created: SIGNED_AT + 1, comment: "timestamp:1700086400\tfile:data.bin" },
    pattern(1000),
    { trusted: ["carol"], requireTrust: false },
  );
  await good(
    "unicode-comment",
    "a comment outside ASCII (shown after sanitising), signed at time 0",
    { signer: "alice", created: 0, comment: "Grüße aus Zürich — v1.0 ✓" },
    utf8("Grüße\n"),
  );

  // ---- the file changed
  const sigText = signatureText(baseBytes);
  const changed = async (name: string, comment: string, file: Uint8Array) =>
    await add({ name, comment, file, signature: sigText, verify: anyone }, "auth-failed");
  const flipped = Uint8Array.from(hello);
  flipped[5] ^= 0x01;
  await changed("file-byte-flipped", "one bit of the file changed", flipped);
  await changed("file-appended", "one byte added to the file", utf8("hello, world\n\n"));
  await changed("file-truncated", "the file lost its last byte", hello.subarray(0, 12));
  await changed("file-empty", "an empty file in place of the signed one", new Uint8Array(0));

  // ---- the signature was altered (each edit re-encoded deterministically)
  const altered = async (name: string, comment: string, bytes: Uint8Array, outcome: string) =>
    await add(
      { name, comment, file: hello, signature: armorBlock(SIGNATURE_ARMOR, bytes), verify: anyone },
      outcome,
    );
  const set = (key: number, value: CborValue) => edit(baseBytes, (m) => m.set(key, value));
  await altered("created-changed", "field 3 (time) changed", set(3, SIGNED_AT + 1), "auth-failed");
  await altered(
    "comment-changed",
    "field 6 (comment) changed",
    set(6, "file:other.txt"),
    "auth-failed",
  );
  const hash = sha512(utf8("another file"));
  await altered(
    "hash-and-size-replaced",
    "fields 4 and 5 replaced by another file's: the signature no longer covers them",
    edit(baseBytes, (m) => m.set(4, 12).set(5, hash)),
    "auth-failed",
  );
  const sig = (decodeCbor(baseBytes) as CborMap).get(7) as Uint8Array;
  const badSig = Uint8Array.from(sig);
  badSig[0] ^= 0x80;
  await altered(
    "signature-flipped",
    "one bit of field 7 (signature) flipped",
    set(7, badSig),
    "auth-failed",
  );
  await altered(
    "card-swapped",
    "field 2 replaced by bob's card: alice's signature does not verify under bob's key",
    set(2, get(ids, "bob").card.bytes),
    "auth-failed",
  );
  const card = decodeCbor(get(ids, "alice").card.bytes) as CborMap;
  card.set(2, "alicia@example.org");
  await altered(
    "card-invalid",
    "field 2 is a card whose self-signature fails (its address changed)",
    set(2, encodeCbor(card)),
    "auth-failed",
  );
  const other = await signDigest(provider, get(ids, "mallory"), {
    size: hello.length,
    sha512: sha512(hello),
  }, { comment: base.comment, created: base.created });
  await altered(
    "signed-by-mallory-with-alice-card",
    "mallory's signature over the same fields, with alice's card attached",
    edit(other, (m) => m.set(2, get(ids, "alice").card.bytes)),
    "auth-failed",
  );

  // ---- trust
  await add({
    name: "require-trust-none",
    comment: "a good signature, but the verifier requires trust and trusts nobody",
    file: hello,
    signature: sigText,
    verify: { trusted: [], requireTrust: true },
  }, "untrusted");
  await add({
    name: "require-trust-other",
    comment: "a good signature by alice; the verifier trusts only bob and carol",
    file: hello,
    signature: sigText,
    verify: { trusted: ["bob", "carol"], requireTrust: true },
  }, "untrusted");

  // ---- malformed structures
  await altered("format-2", "field 1 = 2: a later format", set(1, 2), "unknown-protocol");
  await altered("unknown-field", "an extra field 8", set(8, 0), "malformed");
  await altered(
    "missing-signature",
    "field 7 removed",
    edit(baseBytes, (m) => m.delete(7)),
    "malformed",
  );
  await altered("hash-short", "field 5 of 32 bytes", set(5, hash.subarray(0, 32)), "malformed");
  await altered("comment-two-lines", "field 6 holds LF", set(6, "line one\nline two"), "malformed");
  await altered("size-negative", "field 4 negative", set(4, -1), "malformed");
  await altered("not-a-map", "a CBOR array instead of the map", encodeCbor([1, 2, 3]), "malformed");
  // The map's first key, 1 (byte 01), written as 18 01: not the shortest integer form.
  await altered(
    "non-canonical-int",
    "the key of field 1 written as 18 01 (not the shortest form): not deterministic CBOR",
    new Uint8Array([baseBytes[0], 0x18, 0x01, ...baseBytes.subarray(2)]),
    "malformed",
  );
  await altered(
    "trailing-byte",
    "one byte after the CBOR map",
    new Uint8Array([...baseBytes, 0x00]),
    "malformed",
  );

  // ---- text form
  const text = async (name: string, comment: string, signature: string, outcome: string) =>
    await add({ name, comment, file: hello, signature, verify: anyone }, outcome);
  await text(
    "armor-wrong-label",
    "the armor says MISSIVE MESSAGE",
    armorBlock("MISSIVE MESSAGE", baseBytes),
    "malformed",
  );
  const lines = sigText.split("\n");
  await text(
    "armor-short-line",
    "a full line of base64 shortened by one character",
    [lines[0], lines[1].slice(0, 63), ...lines.slice(2)].join("\n"),
    "malformed",
  );
  await text(
    "armor-truncated",
    "the END line is missing",
    lines.slice(0, -2).join("\n") + "\n",
    "malformed",
  );
  await text(
    "armor-text-before",
    "text before the BEGIN line",
    "signed by alice\n" + sigText,
    "malformed",
  );
  await text(
    "too-large",
    `an armor holding ${MAX_SIGNATURE_BYTES + 1} bytes`,
    armorBlock(SIGNATURE_ARMOR, new Uint8Array(MAX_SIGNATURE_BYTES + 1)),
    "too-large",
  );
  await text(
    "too-long-text",
    `text longer than the armor limit for ${MAX_SIGNATURE_BYTES} bytes`,
    sigText + " ".repeat(maxArmoredLength(MAX_SIGNATURE_BYTES)),
    "too-large",
  );
  // Sanity: the base decodes (so the failures above fail for the stated reason only).
  decodeSignature(baseBytes);
  return vectors;
}
