/**
 * Vector cases for STPs auth (§6), psk (§13) and plain (§7).
 * Part of tests/vectors/generate.ts (see there).
 * @module
 */
import { fromHex, toBase64, toHex, utf8 } from "../../core/bytes.ts";
import type { ErrorCode } from "../../core/errors.ts";
import { type Mutation, notification, NOW, rawBody, text1, text2 } from "./common.ts";
import {
  bytesOf,
  caseBuilder,
  del,
  type MessageCase,
  NONCE8,
  type OpenInputs,
  set,
  xor,
} from "./messages.ts";

export function authCases(): MessageCase[] {
  const cases: MessageCase[] = [];
  const a1 = [4, 1] as [number, number];
  const base = (extra: Partial<MessageCase["seal"]> = {}) => ({
    stp: a1,
    body: text1("signed notice"),
    sender: "alice",
    ...extra,
  });
  const anyone = {};
  const { ok, bad } = caseBuilder(cases, anyone);

  ok("card", "signed by alice, card attached, no destination", base());
  ok("card/trusted", "as above, opener trusts alice", base(), { trusted: ["alice"] });
  ok("destination", "destination bob@example.org signed in the clear", base({ recipient: "bob" }));
  ok("seq-3", "sequence number 3", base({ sequenceNumber: 3 }));
  ok("no-card/trusted", "no card; the opener trusts alice", base({ attachCard: false }), {
    trusted: ["alice"],
  });
  ok("text-v2", "text v2 body", base({ body: text2("signed and compressed", NONCE8) }));
  ok(
    "notification",
    "notification body",
    base({
      body: notification({
        kind: "notice",
        title: "Maintenance at 22:00",
        body: "The relay restarts.",
      }),
    }),
  );
  ok("replay-cache/first-open", "first open with a replay cache", base(), { replay: { now: NOW } });

  bad("auth-failed", "signature-flipped", "first signature byte flipped", base(), [
    xor("payload", 10),
  ]);
  bad("auth-failed", "body-altered", "body replaced", base(), [
    set("payload", 9, bytesOf(toHex(utf8("forged notice")))),
  ]);
  bad("auth-failed", "timestamp-altered", "timestamp + 1 ms", base(), [set("payload", 2, NOW + 1)]);
  bad("auth-failed", "nonce-flipped", "nonce bit flipped", base(), [xor("payload", 1)]);
  bad(
    "auth-failed",
    "card-stripped",
    "the signed card removed (alice trusted, so the card is not needed to verify)",
    base(),
    [del("payload", 5)],
    { trusted: ["alice"] },
  );
  bad(
    "auth-failed",
    "destination-added",
    "a destination added to a message signed without one",
    base(),
    [set("payload", 6, "bob@example.org")],
  );
  bad(
    "auth-failed",
    "destination-changed",
    "destination changed to carol",
    base({ recipient: "bob" }),
    [set("payload", 6, "carol@example.org")],
  );
  bad("auth-failed", "amp-version-changed", "AMP (1, 1) relabelled (1, 2)", base(), [
    set("payload", 8, 2),
  ]);
  bad("auth-failed", "seq-added", "sequence number added", base(), [set("envelope", 3, 1)]);
  bad("auth-failed", "seq-changed", "sequence number 3 changed to 4", base({ sequenceNumber: 3 }), [
    set("envelope", 3, 4),
  ]);
  bad(
    "auth-failed",
    "forged/card",
    "mallory signs as alice with alice's card",
    base({ signWith: "mallory" }),
  );
  bad(
    "auth-failed",
    "forged/trusted",
    "mallory signs as alice, no card, alice trusted",
    base({ signWith: "mallory", attachCard: false }),
    undefined,
    { trusted: ["alice"] },
  );
  bad(
    "auth-failed",
    "card-of-another-identity",
    "claims alice, attaches mallory's card",
    base({ signWith: "mallory", attachCard: "mallory" }),
  );
  bad(
    "auth-failed",
    "sender-address-changed",
    "sender address changed to carol: the card's address differs",
    base(),
    [set("payload", 3, "carol@example.org")],
  );
  bad(
    "auth-failed",
    "card-bad-self-signature",
    "attached card with a broken self-signature",
    base({ attachCard: "bad-self-signature" }),
  );
  bad("untrusted", "no-card/no-trust", "no card and no trusted card", base({ attachCard: false }));
  bad("malformed", "unknown-field-11", "auth payloads refuse unknown fields", base(), [
    set("payload", 11, 0),
  ]);
  bad("malformed", "no-signature", "field 10 missing", base(), [del("payload", 10)]);
  bad("malformed", "signature-63-bytes", "signature must be 64 bytes", base(), [
    set("payload", 10, bytesOf("00".repeat(63))),
  ]);
  bad("malformed", "sender-id-15-bytes", "sender ID must be 16 bytes", base(), [
    set("payload", 4, bytesOf("00".repeat(15))),
  ]);
  bad("malformed", "nonce-17-bytes", "nonce must be 16 bytes", base(), [
    set("payload", 1, bytesOf("00".repeat(17))),
  ]);
  bad("unknown-protocol", "envelope-version-2", "no STP (4, 2)", base(), [set("envelope", 2, 2)]);
  bad(
    "unknown-protocol",
    "unknown-amp",
    "AMP (1001, 1) is not registered",
    base({ body: rawBody([1001, 1], utf8("?")) }),
  );
  bad("replay", "replayed", "opened twice with one replay cache", base(), undefined, {
    replay: { now: NOW },
    times: 2,
  });
  return cases;
}

/** psk (SPEC §13): a fixed 32-byte key, its base64url text as a key file holds it. */
export const PSK_KEY = toBase64(new Uint8Array(32).map((_, i) => 0xa0 + i), true) + "=";
export const PSK_OTHER_KEY = toBase64(new Uint8Array(32).map((_, i) => 0x10 + i), true) + "=";
export const PSK_PASSPHRASE = { passphrase: "psk vector passphrase", "work-factor": "10" };

export function pskCases(): MessageCase[] {
  const cases: MessageCase[] = [];
  const v1 = [6, 1] as [number, number], v2 = [6, 2] as [number, number];
  const key = { psk: PSK_KEY };
  const base = (stp = v1, options: Record<string, string> = key) => ({
    stp,
    body: text1("shared secret"),
    options,
  });
  const add = (
    expect: ErrorCode | "success",
    name: string,
    comment: string,
    seal: MessageCase["seal"],
    open: OpenInputs,
    mutations?: Mutation[],
  ) => cases.push({ name, comment, seal, open, mutations, expect });
  const ok = "success";

  add(ok, "v1/key", "v1, key file: HKDF-SHA-256 key, XChaCha20-Poly1305", base(), { options: key });
  add(ok, "v1/key/sender-seq", "v1 with a sender label and sequence number 3", {
    ...base(),
    sender: "alice",
    sequenceNumber: 3,
  }, { options: key });
  add(ok, "v1/passphrase", "v1, passphrase: scrypt logN 10 (field 2)", base(v1, PSK_PASSPHRASE), {
    options: { passphrase: PSK_PASSPHRASE.passphrase },
  });
  add(ok, "v2/key", "v2: the payload is a Fernet token", base(v2), { options: key });
  add("auth-failed", "v1/wrong-key", "another key: no not-a-recipient for psk", base(), {
    options: { psk: PSK_OTHER_KEY },
  });
  add("auth-failed", "v1/wrong-passphrase", "another passphrase", base(v1, PSK_PASSPHRASE), {
    options: { passphrase: "not the psk passphrase" },
  });
  add(
    "key",
    "v1/passphrase-given-key",
    "sealed with a passphrase, opened with a key",
    base(v1, PSK_PASSPHRASE),
    {
      options: key,
    },
  );
  add("auth-failed", "v1/ciphertext-flip", "one ciphertext bit flipped", base(), { options: key }, [
    xor("payload", 4, 0, 1),
  ]);
  add("auth-failed", "v1/tag-flip", "last tag bit flipped", base(), { options: key }, [
    xor("payload", 4, -1, 0x80),
  ]);
  add("auth-failed", "v1/salt-flip", "salt changed: another key", base(), { options: key }, [
    xor("payload", 1, 0, 1),
  ]);
  add(
    "auth-failed",
    "v1/seq-changed",
    "envelope sequence number changed (bound in AAD)",
    {
      ...base(),
      sequenceNumber: 3,
    },
    { options: key },
    [set("envelope", 3, 4)],
  );
  add("malformed", "v1/unknown-field", "unknown payload field 5", base(), { options: key }, [
    set("payload", 5, "grease"),
  ]);
  add(
    "malformed",
    "v1/logN-21",
    "work factor above 20, refused before scrypt",
    base(v1, PSK_PASSPHRASE),
    {
      options: { passphrase: PSK_PASSPHRASE.passphrase },
    },
    [set("payload", 2, 21)],
  );
  add("malformed", "v1/nonce-short", "XChaCha20 nonce of 23 bytes", base(), { options: key }, [
    set("payload", 3, bytesOf("00".repeat(23))),
  ]);
  add("replay", "v1/expired", "TTL 60 s, opened 61 s later", base(), {
    options: { ...key, ttl: "60", now: String(NOW + 61_000) },
  });
  add("auth-failed", "v2/wrong-key", "another Fernet key", base(v2), {
    options: { psk: PSK_OTHER_KEY },
  });
  add("replay", "v2/expired", "TTL 60 s, opened 61 s later", base(v2), {
    options: { ...key, ttl: "60", now: String(NOW + 61_000) },
  });
  return cases;
}

export function plainCases(): MessageCase[] {
  const cases: MessageCase[] = [];
  const p1 = [7, 1] as [number, number];
  const base = (extra: Partial<MessageCase["seal"]> = {}) => ({
    stp: p1,
    body: text1("not secret"),
    ...extra,
  });
  const ok = (
    name: string,
    comment: string,
    seal: MessageCase["seal"],
    mutations?: Mutation[],
    open: OpenInputs = {},
  ) => cases.push({ name, comment, seal, open, mutations, expect: "success" });
  const bad = (
    expect: ErrorCode,
    name: string,
    comment: string,
    seal: MessageCase["seal"],
    mutations?: Mutation[],
    open: OpenInputs = {},
  ) => cases.push({ name, comment, seal, open, mutations, expect });

  ok("anonymous", "no sender, no destination", base());
  ok(
    "sender-and-destination",
    "claimed (unverified) sender and a destination",
    base({ sender: "alice", recipient: "bob" }),
  );
  ok("seq-9", "sequence number 9", base({ sequenceNumber: 9 }));
  ok("unknown-field-ignored", "plain payloads ignore unknown fields (grease)", base(), [
    set("payload", 8, "grease"),
  ]);
  ok("text-v2", "text v2 body", base({ body: text2("plain and compressed", NONCE8) }));
  ok(
    "notification",
    "notification body",
    base({ body: notification({ kind: "receipt", title: "delivered" }) }),
  );
  ok("body-altered", "nothing is authenticated: an altered body opens", base(), [
    set("payload", 5, bytesOf(toHex(utf8("altered")))),
  ]);

  bad("malformed", "nonce-8-bytes", "nonce must be 16 bytes", base(), [
    set("payload", 1, bytesOf("00".repeat(8))),
  ]);
  bad("malformed", "no-body", "field 5 missing", base(), [del("payload", 5)]);
  bad("malformed", "amp-type-65536", "AMP type above 65535", base(), [set("payload", 3, 65536)]);
  bad("malformed", "timestamp-text", "timestamp must be an integer", base(), [
    set("payload", 2, "now"),
  ]);
  bad("malformed", "sender-255-characters", "sender text longer than 254", base(), [
    set("payload", 6, "a".repeat(255)),
  ]);
  bad("malformed", "payload-non-canonical-int", "AMP type 1 written as 18 01", base(), [{
    op: "splice",
    target: "payload",
    offset: 30,
    remove: 1,
    insert: "1801",
  }]);
  bad("malformed", "payload-trailing-byte", "one byte after the payload map", base(), [{
    op: "append",
    target: "payload",
    insert: "00",
  }]);
  bad(
    "malformed",
    "text-v1-invalid-utf8",
    "body is not UTF-8",
    base({ body: rawBody([1, 1], fromHex("ff")!) }),
  );
  bad(
    "unknown-protocol",
    "unknown-amp",
    "AMP (2, 9) is not registered",
    base({ body: rawBody([2, 9], new Uint8Array(0)) }),
  );
  bad("unknown-protocol", "envelope-version-2", "no STP (7, 2)", base(), [set("envelope", 2, 2)]);
  bad(
    "replay",
    "replayed/anonymous",
    "anonymous messages share one replay namespace",
    base(),
    undefined,
    { replay: { now: NOW }, times: 2 },
  );
  bad(
    "replay",
    "replayed/sender",
    "replayed under its claimed sender",
    base({ sender: "alice" }),
    undefined,
    { replay: { now: NOW }, times: 2 },
  );
  return cases;
}
