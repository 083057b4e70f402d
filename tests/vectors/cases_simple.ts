/**
 * Vector cases for STP simple (SPEC §5).
 * Part of tests/vectors/generate.ts (see there).
 * @module
 */
import { fromHex, utf8 } from "../../core/bytes.ts";
import { encodeCbor } from "../../core/cbor.ts";
import { notification, NOW, rawBody, text1, text2 } from "./common.ts";
import { bytesOf, caseBuilder, del, type MessageCase, NONCE8, set, xor } from "./messages.ts";

export function simpleCases(): MessageCase[] {
  const cases: MessageCase[] = [];
  const v2 = [2, 2] as [number, number];
  const v1 = [2, 1] as [number, number];
  const base = (stp: [number, number], extra: Partial<MessageCase["seal"]> = {}) => ({
    stp,
    body: text1("hello bob"),
    sender: "alice",
    recipient: "bob",
    ...extra,
  });
  const bob = { identity: "bob" };
  const bobTrusts = { identity: "bob", trusted: ["alice"] };
  const { ok, bad } = caseBuilder(cases, bob);

  // Successes.
  ok("v2/plain-destination/card", "simple v2 to bob's address, alice's card attached", base(v2));
  ok("v2/plain-destination/card/trusted", "as above; bob trusts alice's card", base(v2), bobTrusts);
  ok(
    "v2/plain-destination/seq-7",
    "with envelope sequence number 7",
    base(v2, { sequenceNumber: 7 }),
  );
  ok(
    "v2/plain-destination/seq-0",
    "sequence number 0 is present, not absent",
    base(v2, { sequenceNumber: 0 }),
  );
  ok(
    "v2/hashed-destination/card",
    "destination sent as the keyed hash",
    base(v2, { hashDestination: true }),
  );
  ok(
    "v2/plain-destination/no-card",
    "no card attached; bob has alice's card",
    base(v2, { attachCard: false }),
    bobTrusts,
  );
  ok(
    "v2/hashed-destination/no-card",
    "hashed destination, no card",
    base(v2, { hashDestination: true, attachCard: false }),
    bobTrusts,
  );
  ok("v2/empty-text", "an empty text v1 body", base(v2, { body: text1("") }));
  ok(
    "v2/unicode-text",
    "UTF-8 text with non-ASCII characters",
    base(v2, { body: text1("grüße, 世界 🌍\n") }),
  );
  ok(
    "v2/text-v2",
    "text v2 body (stored-block gzip)",
    base(v2, { body: text2("hello bob, compressed", NONCE8) }),
  );
  ok(
    "v2/notification",
    "notification v1 body",
    base(v2, {
      body: notification({
        kind: "missed-call",
        title: "Missed call from alice",
        uri: "sip:alice@example.org",
      }),
    }),
  );
  ok(
    "v2/replay-cache/first-open",
    "first open with a replay cache whose clock equals the timestamp",
    base(v2),
    { identity: "bob", replay: { now: NOW } },
  );
  ok("v1/plain-destination/card", "simple v1 (legacy): the timestamp is not bound", base(v1));
  ok(
    "v1/hashed-destination/card",
    "simple v1, hashed destination",
    base(v1, { hashDestination: true }),
  );
  ok(
    "v1/plain-destination/no-card",
    "simple v1 without card; bob trusts alice",
    base(v1, { attachCard: false }),
    bobTrusts,
  );
  ok(
    "v1/timestamp-altered",
    "v1 does not authenticate the timestamp: an altered one still opens",
    base(v1),
    bob,
    [set("payload", 2, NOW + 86_400_000)],
  );

  // Not a recipient.
  bad(
    "not-a-recipient",
    "v2/plain-destination/opened-by-carol",
    "carol is not the recipient",
    base(v2),
    undefined,
    { identity: "carol" },
  );
  bad(
    "not-a-recipient",
    "v2/hashed-destination/opened-by-carol",
    "the hash does not match carol",
    base(v2, { hashDestination: true }),
    undefined,
    { identity: "carol" },
  );
  bad(
    "not-a-recipient",
    "v1/plain-destination/opened-by-carol",
    "simple v1, carol",
    base(v1),
    undefined,
    { identity: "carol" },
  );
  bad(
    "not-a-recipient",
    "v1/hashed-destination/opened-by-carol",
    "simple v1 hashed, carol",
    base(v1, { hashDestination: true }),
    undefined,
    { identity: "carol" },
  );
  bad(
    "not-a-recipient",
    "v2/recipient-id-of-carol",
    "field 4 replaced by carol's ID: address and ID must both match",
    base(v2),
    [{ op: "set", target: "payload", key: 4, value: { bytes: "@carol-id" } }],
  );
  bad(
    "not-a-recipient",
    "v2/destination-carol-address",
    "field 3 replaced by carol's address",
    base(v2),
    [set("payload", 3, "carol@example.org")],
  );
  bad(
    "not-a-recipient",
    "v2/hashed-destination/flipped",
    "one bit of the hashed destination flipped",
    base(v2, { hashDestination: true }),
    [xor("payload", 3)],
  );
  bad(
    "not-a-recipient",
    "v2/hashed-destination/nonce-flipped",
    "the nonce keys the destination hash, so the check fails first",
    base(v2, { hashDestination: true }),
    [xor("payload", 1)],
  );

  // Malformed payloads.
  bad(
    "malformed",
    "v2/payload/unknown-field-9",
    "simple payloads refuse unknown fields",
    base(v2),
    [set("payload", 9, 0)],
  );
  bad("malformed", "v2/payload/no-mac", "field 8 missing", base(v2), [del("payload", 8)]);
  bad(
    "malformed",
    "v2/payload/plain-destination-without-id",
    "field 4 missing next to a text destination",
    base(v2),
    [del("payload", 4)],
  );
  bad(
    "malformed",
    "v2/payload/hashed-destination-with-id",
    "field 4 present next to a hashed destination",
    base(v2, { hashDestination: true }),
    [{ op: "set", target: "payload", key: 4, value: { bytes: "@bob-id" } }],
  );
  bad("malformed", "v2/payload/nonce-15-bytes", "nonce must be 16 bytes", base(v2), [
    set("payload", 1, bytesOf("000102030405060708090a0b0c0d0e")),
  ]);
  bad("malformed", "v2/payload/ephemeral-31-bytes", "ephemeral key must be 32 bytes", base(v2), [
    set("payload", 5, bytesOf("09".repeat(31))),
  ]);
  bad("malformed", "v2/payload/wrapped-key-47-bytes", "wrapped key must be 48 bytes", base(v2), [
    set("payload", 6, bytesOf("00".repeat(47))),
  ]);
  bad(
    "malformed",
    "v2/payload/ciphertext-15-bytes",
    "ciphertext shorter than a GCM tag",
    base(v2),
    [set("payload", 7, bytesOf("00".repeat(15)))],
  );
  bad(
    "malformed",
    "v2/payload/destination-integer",
    "destination must be text or 32 bytes",
    base(v2),
    [set("payload", 3, 5)],
  );
  bad(
    "malformed",
    "v2/payload/hashed-destination-31-bytes",
    "a hashed destination is 32 bytes",
    base(v2, { hashDestination: true }),
    [set("payload", 3, bytesOf("00".repeat(31)))],
  );
  bad("malformed", "v2/payload/timestamp-negative", "timestamp is an unsigned integer", base(v2), [
    set("payload", 2, -1),
  ]);
  bad(
    "malformed",
    "v2/payload/non-canonical-map-length",
    "payload map length written as b8 08 instead of a8",
    base(v2),
    [{ op: "splice", target: "payload", offset: 0, remove: 1, insert: "b808" }],
  );
  bad("malformed", "v2/payload/not-a-map", "payload is a CBOR array", base(v2), [
    set("envelope", 4, bytesOf("8101")),
  ]);

  // Authentication failures.
  bad("auth-failed", "v2/mac-flipped", "first MAC byte flipped", base(v2), [xor("payload", 8)]);
  bad(
    "auth-failed",
    "v2/ciphertext-flipped",
    "first ciphertext byte flipped (the MAC check fails)",
    base(v2),
    [xor("payload", 7)],
  );
  bad("auth-failed", "v2/gcm-tag-flipped", "last ciphertext byte (GCM tag) flipped", base(v2), [
    xor("payload", 7, -1, 0x80),
  ]);
  bad("auth-failed", "v2/wrapped-key-flipped", "the message key does not unwrap", base(v2), [
    xor("payload", 6),
  ]);
  bad(
    "auth-failed",
    "v2/wrong-ephemeral",
    "ephemeral key replaced by carol's public key",
    base(v2),
    [{ op: "set", target: "payload", key: 5, value: { bytes: "@carol-agreement" } }],
  );
  bad(
    "auth-failed",
    "v2/ephemeral-zero",
    "all-zero (low-order) ephemeral key: X25519 output is zero",
    base(v2),
    [set("payload", 5, bytesOf("00".repeat(32)))],
  );
  bad("auth-failed", "v2/ephemeral-one", "u = 1 (low-order) ephemeral key", base(v2), [
    set("payload", 5, bytesOf("01" + "00".repeat(31))),
  ]);
  bad("auth-failed", "v2/nonce-flipped", "the nonce is in the wrap AAD", base(v2), [
    xor("payload", 1),
  ]);
  bad("auth-failed", "v2/timestamp-altered", "v2 binds the timestamp", base(v2), [
    set("payload", 2, NOW + 1),
  ]);
  bad(
    "auth-failed",
    "v2/seq-changed",
    "sequence number 7 changed to 8",
    base(v2, { sequenceNumber: 7 }),
    [set("envelope", 3, 8)],
  );
  bad(
    "auth-failed",
    "v2/seq-added",
    "a sequence number added to an envelope sealed without one",
    base(v2),
    [set("envelope", 3, 0)],
  );
  bad(
    "auth-failed",
    "v2/seq-removed",
    "the sequence number removed",
    base(v2, { sequenceNumber: 7 }),
    [del("envelope", 3)],
  );
  bad(
    "auth-failed",
    "v2/relabelled-v1",
    "a v2 payload under envelope version 1: v1 labels derive other keys",
    base(v2),
    [set("envelope", 2, 1)],
  );
  bad("auth-failed", "v1/relabelled-v2", "a v1 payload under envelope version 2", base(v1), [
    set("envelope", 2, 2),
  ]);
  bad(
    "auth-failed",
    "v2/forged-signature/card",
    "mallory signs as alice, attaching alice's card",
    base(v2, { signWith: "mallory" }),
  );
  bad(
    "auth-failed",
    "v2/forged-signature/trusted",
    "mallory signs as alice, no card; bob trusts alice",
    base(v2, { signWith: "mallory", attachCard: false }),
    undefined,
    bobTrusts,
  );
  bad(
    "auth-failed",
    "v1/forged-signature/card",
    "simple v1 forgery",
    base(v1, { signWith: "mallory" }),
  );
  bad(
    "auth-failed",
    "v2/card-of-another-identity",
    "claims alice but attaches mallory's (valid) card",
    base(v2, { signWith: "mallory", attachCard: "mallory" }),
  );
  bad(
    "auth-failed",
    "v2/card-bad-self-signature",
    "alice's card with its self-signature flipped",
    base(v2, { attachCard: "bad-self-signature" }),
  );

  // Untrusted: no card attached and none trusted with the sender's ID.
  bad("untrusted", "v2/no-card/no-trust", "bob trusts nobody", base(v2, { attachCard: false }));
  bad(
    "untrusted",
    "v2/hashed-destination/no-card/trusts-carol",
    "bob trusts only carol",
    base(v2, { attachCard: false, hashDestination: true }),
    undefined,
    { identity: "bob", trusted: ["carol"] },
  );
  bad(
    "untrusted",
    "v1/no-card/no-trust",
    "simple v1, bob trusts nobody",
    base(v1, { attachCard: false }),
  );

  // Replay.
  bad(
    "replay",
    "v2/replayed",
    "the same envelope opened twice with one replay cache",
    base(v2),
    undefined,
    { identity: "bob", replay: { now: NOW }, times: 2 },
  );
  bad("replay", "v1/replayed", "simple v1 opened twice", base(v1), undefined, {
    identity: "bob",
    replay: { now: NOW },
    times: 2,
  });
  bad("replay", "v2/too-old", "timestamp older than now − lifetime − skew", base(v2), undefined, {
    identity: "bob",
    replay: { now: NOW + 86_400_000 + 25_000 + 1 },
  });
  bad("replay", "v2/from-the-future", "timestamp later than now + skew", base(v2), undefined, {
    identity: "bob",
    replay: { now: NOW - 25_001 },
  });

  // Unknown protocols and bad AMP bodies inside an authentic message.
  bad("unknown-protocol", "v2/envelope-version-4", "no STP (2, 4)", base(v2), [
    set("envelope", 2, 4),
  ]);
  bad(
    "unknown-protocol",
    "v2/unknown-amp",
    "AMP (99, 1) is not registered",
    base(v2, { body: rawBody([99, 1], utf8("?")) }),
  );
  bad(
    "unknown-protocol",
    "v2/unknown-amp-version",
    "AMP (1, 3) is not registered",
    base(v2, { body: rawBody([1, 3], utf8("?")) }),
  );
  bad(
    "malformed",
    "v2/text-v1-invalid-utf8",
    "authentic message, body not UTF-8",
    base(v2, { body: rawBody([1, 1], fromHex("68c328")!) }),
  );
  bad(
    "malformed",
    "v2/text-v2-bad-gzip",
    "authentic message, text v2 body with a bad gzip stream",
    base(v2, { body: text2("x", NONCE8, fromHex("1f8b0800")!) }),
  );
  bad(
    "malformed",
    "v2/notification-empty-title",
    "authentic message, notification title empty",
    base(v2, { body: rawBody([2, 1], encodeCbor(new Map([[1, "notice"], [2, ""]]))) }),
  );
  return cases;
}
