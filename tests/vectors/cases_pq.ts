/**
 * Vector cases for the post-quantum STP versions: simple v3 (SPEC §5.10) and group v2
 * (SPEC §19.10), between the hybrid identities of PQ_IDENTITY_SPECS; dave is classical
 * (format 1) and shows the whole-message fallback. Intermediate values are re-derived by
 * `simpleIntermediates` and `groupIntermediates` from raw primitives.
 * Part of tests/vectors/generate.ts (see there).
 * @module
 */
import { notification, NOW, text1, text2 } from "./common.ts";
import { bytesOf, caseBuilder, del, type MessageCase, NONCE8, set, xor } from "./messages.ts";

/** Offset of the X25519 part in an X-Wing ciphertext (after 1,088 bytes of ML-KEM). */
const X_PART = 1088;

export function simpleV3Cases(): MessageCase[] {
  const cases: MessageCase[] = [];
  const v3 = [2, 3] as [number, number];
  const base = (extra: Partial<MessageCase["seal"]> = {}): MessageCase["seal"] => ({
    stp: v3,
    body: text1("hello bob"),
    sender: "alice",
    recipient: "bob",
    ...extra,
  });
  const bobTrusts = { identity: "bob", trusted: ["alice"] };
  const { ok, bad } = caseBuilder(cases, { identity: "bob" });

  ok("plain-destination/card", "simple v3 to bob's address, alice's hybrid card attached", base());
  ok("plain-destination/card/trusted", "as above; bob trusts alice's card", base(), bobTrusts);
  ok("plain-destination/seq-7", "with envelope sequence number 7", base({ sequenceNumber: 7 }));
  ok("hashed-destination/card", "destination as the keyed hash", base({ hashDestination: true }));
  ok("no-card", "no card attached; bob trusts alice", base({ attachCard: false }), bobTrusts);
  ok("text-v2", "text v2 body", base({ body: text2("hello bob, compressed", NONCE8) }));
  ok(
    "notification",
    "notification v1 body",
    base({ body: notification({ kind: "notice", title: "post-quantum" }) }),
  );
  ok(
    "fallback/classical-recipient",
    "sealed as simple v3 to dave's format-1 card: the whole message is simple v2 (X25519)",
    base({ recipient: "dave" }),
    { identity: "dave" },
  );

  bad("not-a-recipient", "opened-by-carol", "carol is not the recipient", base(), undefined, {
    identity: "carol",
  });
  bad(
    "not-a-recipient",
    "hashed-destination/opened-by-carol",
    "the hash does not match carol",
    base({ hashDestination: true }),
    undefined,
    { identity: "carol" },
  );
  bad("auth-failed", "kem-mlkem-flipped", "a bit of the ML-KEM ciphertext flipped", base(), [
    xor("payload", 5, 100),
  ]);
  bad("auth-failed", "kem-x25519-flipped", "a bit of the X25519 ciphertext flipped", base(), [
    xor("payload", 5, X_PART + 3),
  ]);
  bad(
    "auth-failed",
    "kem-all-zero",
    "field 5 all zero: the X25519 part has low order, X-Wing decapsulation fails",
    base(),
    [set("payload", 5, bytesOf("00".repeat(1120)))],
  );
  bad("auth-failed", "wrapped-key-flipped", "the message key does not unwrap", base(), [
    xor("payload", 6),
  ]);
  bad("auth-failed", "mac-flipped", "first MAC byte flipped", base(), [xor("payload", 8)]);
  bad("auth-failed", "ciphertext-flipped", "first ciphertext byte flipped", base(), [
    xor("payload", 7),
  ]);
  bad("auth-failed", "timestamp-altered", "v3 binds the timestamp", base(), [
    set("payload", 2, NOW + 1),
  ]);
  bad("auth-failed", "seq-changed", "sequence number 7 changed to 8", base({ sequenceNumber: 7 }), [
    set("envelope", 3, 8),
  ]);
  bad(
    "auth-failed",
    "forged-signature/card",
    "mallory signs as alice, attaching alice's card",
    base({ signWith: "mallory" }),
  );
  bad(
    "auth-failed",
    "card-bad-self-signature",
    "alice's card with its self-signature flipped",
    base({ attachCard: "bad-self-signature" }),
  );
  bad(
    "malformed",
    "relabelled-v2",
    "a v3 payload under version 2: field 5 is 1,120 bytes, v2 wants 32",
    base(),
    [set("envelope", 2, 2)],
  );
  bad(
    "malformed",
    "v2-payload-relabelled-v3",
    "a simple v2 payload (to classical dave) under version 3: field 5 is 32 bytes",
    base({ recipient: "dave" }),
    [set("envelope", 2, 3)],
    { identity: "dave" },
  );
  bad("malformed", "payload/kem-1119-bytes", "field 5 must be 1,120 bytes", base(), [
    set("payload", 5, bytesOf("00".repeat(1119))),
  ]);
  bad("malformed", "payload/unknown-field-9", "unknown fields are refused", base(), [
    set("payload", 9, 0),
  ]);
  bad("malformed", "payload/no-mac", "field 8 missing", base(), [del("payload", 8)]);
  bad(
    "untrusted",
    "no-card/no-trust",
    "no card and bob trusts nobody",
    base({ attachCard: false }),
  );
  bad("replay", "replayed", "opened twice with one replay cache", base(), undefined, {
    identity: "bob",
    replay: { now: NOW },
    times: 2,
  });
  return cases;
}

export function groupV2Cases(): MessageCase[] {
  const cases: MessageCase[] = [];
  const v2 = [3, 2] as [number, number];
  const base = (extra: Partial<MessageCase["seal"]> = {}): MessageCase["seal"] => ({
    stp: v2,
    body: text1("hello team"),
    sender: "alice",
    recipients: ["bob", "carol"],
    ...extra,
  });
  const hidden = (extra: Partial<MessageCase["seal"]> = {}) =>
    base({ hideRecipients: true, ...extra });
  const { ok, bad } = caseBuilder(cases, { identity: "bob" });
  /** Slot i's X-Wing ciphertext starts after its 8-byte hint. */
  const kemByte = (slot: number, at: number) => slot * 1176 + 8 + at;

  ok("hinted/bob", "to bob and carol, X-Wing slots with hints; bob opens", base());
  ok("hinted/carol", "the same; carol opens", base(), { identity: "carol" });
  ok("hidden/bob", "hidden: 2 slots padded to 4 with dummy encapsulations", hidden());
  ok("hidden/one-recipient", "hidden, one recipient: 3 dummies", hidden({ recipients: ["bob"] }));
  ok("hinted/seq-7", "with envelope sequence number 7", base({ sequenceNumber: 7 }));
  ok(
    "hinted/no-card",
    "no card; bob trusts alice",
    base({ attachCard: false }),
    { identity: "bob", trusted: ["alice"] },
  );
  ok(
    "hinted/duplicates",
    "bob given twice: one slot each, 2 slots",
    base({ recipients: ["bob", "carol", "bob"] }),
  );
  ok(
    "fallback/classical-recipient",
    "sealed as group v2 to bob and dave (format 1): the whole message is group v1",
    base({ recipients: ["bob", "dave"] }),
    { identity: "dave" },
  );

  bad("not-a-recipient", "hinted/mallory", "mallory has no slot", base(), undefined, {
    identity: "mallory",
  });
  bad("not-a-recipient", "hidden/mallory", "hidden: no hint matches mallory", hidden(), undefined, {
    identity: "mallory",
  });
  bad(
    "not-a-recipient",
    "hinted/hint-flipped",
    "one recipient; a bit of its hint flipped: no hint matches",
    base({ recipients: ["bob"] }),
    [xor("payload", 6, 0)],
  );
  bad(
    "auth-failed",
    "hinted/kem-mlkem-flipped",
    "one recipient; a bit of its ML-KEM ciphertext flipped: the hint matches, the unwrap fails",
    base({ recipients: ["bob"] }),
    [xor("payload", 6, kemByte(0, 10))],
  );
  bad(
    "auth-failed",
    "hinted/kem-x25519-flipped",
    "one recipient; a bit of the X25519 part of its ciphertext flipped",
    base({ recipients: ["bob"] }),
    [xor("payload", 6, kemByte(0, X_PART + 1))],
  );
  bad(
    "auth-failed",
    "hinted/slot-tag-flipped",
    "one recipient; the last byte (GCM tag) of its slot flipped",
    base({ recipients: ["bob"] }),
    [xor("payload", 6, -1)],
  );
  bad("auth-failed", "hinted/commitment-flipped", "key commitment altered", base(), [
    xor("payload", 7),
  ]);
  bad("auth-failed", "hinted/body-flipped", "body ciphertext altered", base(), [
    xor("payload", 8),
  ]);
  bad("auth-failed", "hinted/sender-box-flipped", "sender box altered", base(), [
    xor("payload", 9, -1),
  ]);
  bad("auth-failed", "hinted/timestamp-altered", "the timestamp is bound", base(), [
    set("payload", 2, NOW + 1),
  ]);
  bad("auth-failed", "hinted/ephemeral-zero", "all-zero hint ephemeral key", base(), [
    set("payload", 3, bytesOf("00".repeat(32))),
  ]);
  bad(
    "auth-failed",
    "hinted/forged-signature",
    "mallory signs as alice, attaching alice's card",
    base({ signWith: "mallory" }),
  );
  bad(
    "malformed",
    "relabelled-v1",
    "a v2 payload under version 1: 1,176-byte slots are not v1's 56",
    base(),
    [set("envelope", 2, 1)],
  );
  bad("malformed", "payload/slot-count-3", "count disagrees with the table", base(), [
    set("payload", 5, 3),
  ]);
  bad("malformed", "payload/mode-3", "unknown slot mode", base(), [set("payload", 4, 3)]);
  bad(
    "malformed",
    "payload/slots-1175-bytes",
    "a one-slot table one byte short",
    base({ recipients: ["bob"] }),
    [set("payload", 6, bytesOf("00".repeat(1175)))],
  );
  bad(
    "malformed",
    "payload/slots-not-ascending",
    "two equal slots are not strictly ascending",
    base(),
    [set("payload", 6, bytesOf("ab".repeat(2352)))],
  );
  bad("malformed", "payload/unknown-field-10", "unknown fields are refused", base(), [
    set("payload", 10, 0),
  ]);
  bad(
    "untrusted",
    "hinted/no-card/no-trust",
    "no card and bob trusts nobody",
    base({
      attachCard: false,
    }),
  );
  bad("replay", "hinted/replayed", "opened twice with one replay cache", base(), undefined, {
    identity: "bob",
    replay: { now: NOW },
    times: 2,
  });
  return cases;
}
