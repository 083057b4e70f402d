/**
 * Vector cases for STP group (SPEC §19), and the group open re-derived from SPEC §19 with
 * @noble primitives alone (`groupIntermediates`).
 * Part of tests/vectors/generate.ts (see there).
 * @module
 */
import { type Bytes, concatBytes, equalBytes, toHex } from "../../core/bytes.ts";
import { type CborMap, type CborValue, decodeCbor, transcript } from "../../core/cbor.ts";
import { decodeEnvelope } from "../../envelope/mod.ts";
import type { Identity } from "../../keys/identity.ts";
import { notification, NOW, text1 } from "./common.ts";
import {
  bytesOf,
  caseBuilder,
  del,
  type MessageCase,
  type OpenInputs,
  set,
  xor,
  xwingDecapsulateFromSpec,
} from "./messages.ts";
import { gcm } from "@noble/ciphers/aes.js";
import { ed25519, x25519 } from "@noble/curves/ed25519.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";

export function groupCases(): MessageCase[] {
  const cases: MessageCase[] = [];
  const stp = [3, 1] as [number, number];
  const base = (extra: Partial<MessageCase["seal"]> = {}): MessageCase["seal"] => ({
    stp,
    body: text1("hello team"),
    sender: "alice",
    recipients: ["bob", "carol"],
    ...extra,
  });
  const hidden = (extra: Partial<MessageCase["seal"]> = {}) =>
    base({ hideRecipients: true, ...extra });
  const bob: OpenInputs = { identity: "bob" };
  const { ok, bad } = caseBuilder(cases, bob);

  // Successes.
  ok("hinted/bob", "to bob and carol with recipient hints; bob opens", base());
  ok("hinted/carol", "the same recipients; carol opens", base(), { identity: "carol" });
  ok("hinted/trusted", "bob trusts alice's card", base(), { identity: "bob", trusted: ["alice"] });
  ok("hidden/bob", "hidden recipients: 2 slots padded to 4; bob tries each", hidden());
  ok("hidden/carol", "hidden recipients; carol opens", hidden(), { identity: "carol" });
  ok(
    "hidden/one-recipient",
    "hidden, one recipient: 1 slot padded to 4",
    hidden({ recipients: ["bob"] }),
  );
  ok("hinted/seq-7", "with envelope sequence number 7", base({ sequenceNumber: 7 }));
  ok(
    "hinted/no-card",
    "no card attached; bob has alice's card",
    base({ attachCard: false }),
    { identity: "bob", trusted: ["alice"] },
  );
  ok(
    "hinted/duplicates",
    "bob given twice (and carol): one slot each, 2 slots",
    base({ recipients: ["bob", "carol", "bob"] }),
  );
  ok(
    "hinted/sender-among-recipients",
    "alice sends to herself and bob; alice opens",
    base({ recipients: ["alice", "bob"] }),
    { identity: "alice" },
  );
  ok(
    "hinted/notification",
    "a notification v1 body",
    base({ body: notification({ kind: "notice", title: "Team meeting at 10" }) }),
  );

  // Not a recipient.
  bad("not-a-recipient", "hinted/mallory", "mallory has no slot", base(), undefined, {
    identity: "mallory",
  });
  bad(
    "not-a-recipient",
    "hidden/mallory",
    "hidden: no slot unwraps for mallory",
    hidden(),
    undefined,
    {
      identity: "mallory",
    },
  );
  bad(
    "not-a-recipient",
    "hinted/hint-flipped",
    "one recipient; one bit of its hint flipped: no hint matches",
    base({ recipients: ["bob"] }),
    [xor("payload", 6, 0)],
  );
  bad(
    "not-a-recipient",
    "hidden/slot-flipped",
    "hidden: every slot's last byte flipped; a damaged slot is indistinguishable from none",
    hidden({ recipients: ["bob"] }),
    [0, 1, 2, 3].map((i) => xor("payload", 6, 48 * i + 47)),
  );
  bad(
    "not-a-recipient",
    "hinted/nonce-flipped",
    "the nonce is in the slot KDF, so no hint matches",
    base(),
    [xor("payload", 1)],
  );
  bad(
    "not-a-recipient",
    "hinted/ephemeral-of-carol",
    "ephemeral key replaced by carol's public key: bob's hint differs",
    base(),
    [{ op: "set", target: "payload", key: 3, value: { bytes: "@carol-agreement" } }],
  );

  // Authentication failures.
  bad(
    "auth-failed",
    "hinted/slot-tag-flipped",
    "one recipient; the last byte (GCM tag) of its slot flipped: the hint matches, the unwrap fails",
    base({ recipients: ["bob"] }),
    [xor("payload", 6, -1)],
  );
  bad("auth-failed", "hinted/commitment-flipped", "key commitment altered", base(), [
    xor("payload", 7),
  ]);
  bad("auth-failed", "hinted/body-flipped", "body ciphertext altered (its hash is bound)", base(), [
    xor("payload", 8),
  ]);
  bad("auth-failed", "hinted/sender-box-flipped", "sender box altered", base(), [
    xor("payload", 9, -1),
  ]);
  bad("auth-failed", "hinted/timestamp-altered", "the timestamp is bound", base(), [
    set("payload", 2, NOW + 1),
  ]);
  bad("auth-failed", "hidden/timestamp-altered", "hidden: the timestamp is bound", hidden(), [
    set("payload", 2, NOW + 1),
  ]);
  bad(
    "auth-failed",
    "hinted/seq-changed",
    "sequence number 7 changed to 8",
    base({ sequenceNumber: 7 }),
    [set("envelope", 3, 8)],
  );
  bad("auth-failed", "hinted/seq-added", "a sequence number added", base(), [
    set("envelope", 3, 0),
  ]);
  bad(
    "auth-failed",
    "hinted/ephemeral-zero",
    "all-zero (low-order) ephemeral key",
    base(),
    [set("payload", 3, bytesOf("00".repeat(32)))],
  );
  bad(
    "auth-failed",
    "hinted/forged-signature",
    "mallory signs as alice, attaching alice's card",
    base({ signWith: "mallory" }),
  );
  bad(
    "auth-failed",
    "hidden/forged-signature",
    "hidden: mallory signs as alice",
    hidden({ signWith: "mallory" }),
  );
  bad(
    "auth-failed",
    "hinted/forged-signature/trusted",
    "mallory signs as alice, no card; bob trusts alice",
    base({ signWith: "mallory", attachCard: false }),
    undefined,
    { identity: "bob", trusted: ["alice"] },
  );
  bad(
    "auth-failed",
    "hinted/card-of-another-identity",
    "claims alice but attaches mallory's card",
    base({ signWith: "mallory", attachCard: "mallory" }),
  );
  bad(
    "auth-failed",
    "hinted/card-bad-self-signature",
    "alice's card with its self-signature flipped",
    base({ attachCard: "bad-self-signature" }),
  );

  // Malformed payloads.
  bad("malformed", "payload/slot-count-65537", "more slots than the limit", base(), [
    set("payload", 5, 65_537),
  ]);
  bad("malformed", "payload/slot-count-2^32", "a huge slot count", base(), [
    set("payload", 5, 2 ** 32),
  ]);
  bad("malformed", "payload/slot-count-0", "no slots", base(), [set("payload", 5, 0)]);
  bad("malformed", "payload/slot-count-3", "count disagrees with the table", base(), [
    set("payload", 5, 3),
  ]);
  bad("malformed", "payload/mode-3", "unknown slot mode", base(), [set("payload", 4, 3)]);
  bad("malformed", "payload/mode-hidden", "hinted table read as hidden: sizes disagree", base(), [
    set("payload", 4, 2),
  ]);
  bad(
    "malformed",
    "payload/slots-55-bytes",
    "a one-slot table one byte short",
    base({
      recipients: ["bob"],
    }),
    [set("payload", 6, bytesOf("00".repeat(55)))],
  );
  bad(
    "malformed",
    "payload/slots-not-ascending",
    "two equal slots (a duplicate) are not strictly ascending",
    base(),
    [set("payload", 6, bytesOf("ab".repeat(112)))],
  );
  bad("malformed", "payload/unknown-field-10", "group payloads refuse unknown fields", base(), [
    set("payload", 10, 0),
  ]);
  bad("malformed", "payload/no-sender-box", "field 9 missing", base(), [del("payload", 9)]);
  bad("malformed", "payload/nonce-15-bytes", "nonce must be 16 bytes", base(), [
    set("payload", 1, bytesOf("00".repeat(15))),
  ]);
  bad("malformed", "payload/ephemeral-31-bytes", "ephemeral key must be 32 bytes", base(), [
    set("payload", 3, bytesOf("09".repeat(31))),
  ]);
  bad("malformed", "payload/commitment-31-bytes", "commitment must be 32 bytes", base(), [
    set("payload", 7, bytesOf("00".repeat(31))),
  ]);
  bad("malformed", "payload/body-15-bytes", "body shorter than a GCM tag", base(), [
    set("payload", 8, bytesOf("00".repeat(15))),
  ]);
  bad("malformed", "payload/not-a-map", "payload is a CBOR array", base(), [
    set("envelope", 4, bytesOf("8101")),
  ]);
  bad("malformed", "envelope/truncated", "the envelope cut after 100 bytes", base(), [
    { op: "splice", target: "envelope", offset: 100, remove: 1_000_000, insert: "" },
  ]);

  // Untrusted, replay, unknown protocol.
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
  bad("unknown-protocol", "envelope-version-3", "no STP (3, 3)", base(), [set("envelope", 2, 3)]);
  return cases;
}

/**
 * Opens a group (type 3) envelope as SPEC §19.7 (v1) or §19.10.4 (v2) describes, with
 * @noble primitives and no missive STP code, and returns the intermediate values as hex.
 * Throws when no slot unwraps, the commitment or the signature does not check out.
 */
export function groupIntermediates(
  envelope: Uint8Array,
  me: Identity,
  ids: Map<string, Identity>,
): Record<string, string> {
  const env = decodeEnvelope(envelope);
  const v2 = env.protocolVersion === 2;
  const label = (use: string) => `missive/stp/group/v${env.protocolVersion}/${use}`;
  const p = decodeCbor(env.payload) as CborMap;
  const [nonce, eph, slots, commitment, bodyCt, senderCt] = [1, 3, 6, 7, 8, 9].map((k) =>
    p.get(k) as Bytes
  );
  const [timestamp, mode, count] = [2, 4, 5].map((k) => p.get(k) as number);
  const shared = x25519.getSharedSecret(me.agreementKey, eph);
  const salt = concatBytes(eph, me.card.agreementKey);
  const okm = v2
    ? hkdf(sha256, shared, salt, transcript(label("hint"), nonce), 8)
    : hkdf(sha256, shared, salt, transcript(label("slot"), nonce), 40);
  const hint = okm.slice(0, 8);
  const v1Kek = v2 ? undefined : okm.slice(8);
  const wrapAad = transcript(label("wrap"), nonce);
  const size = v2 ? 1176 : mode === 1 ? 56 : 48;
  const hinted = v2 || mode === 1;
  let payloadKey: Uint8Array | undefined;
  let slotIndex = -1;
  let kem: ReturnType<typeof xwingDecapsulateFromSpec> | undefined;
  let kek = v1Kek;
  for (let i = 0; i < count && !payloadKey; i++) {
    const slot = slots.subarray(i * size, (i + 1) * size);
    if (hinted && !equalBytes(slot.subarray(0, 8), hint)) continue;
    if (v2) {
      const ct = slot.subarray(8, 8 + 1120);
      kem = xwingDecapsulateFromSpec(me.hybridSeed!, ct);
      kek = hkdf(
        sha256,
        kem.shared,
        concatBytes(ct, me.card.hybridKey!),
        transcript(label("kek"), nonce),
        32,
      );
    }
    try {
      payloadKey = gcm(kek!, new Uint8Array(12), wrapAad).decrypt(slot.subarray(size - 48));
      slotIndex = i;
    } catch { /* not this slot */ }
  }
  if (!payloadKey) throw new Error("no slot unwraps");
  const keys = hkdf(sha256, payloadKey, nonce, transcript(label("keys")), 120);
  if (!equalBytes(keys.slice(0, 32), commitment)) throw new Error("commitment differs");
  const slotsHash = sha256(slots);
  const bound: CborValue[] = [
    env.protocolType,
    env.protocolVersion,
    env.sequenceNumber ?? null,
    nonce,
    timestamp,
    eph,
    mode,
    count,
    slotsHash,
    commitment,
  ];
  const ctHash = sha256(bodyCt);
  const senderAad = transcript(label("sender"), ...bound, ctHash);
  const senderBox = gcm(keys.slice(76, 108), keys.slice(108, 120), senderAad).decrypt(senderCt);
  const s = decodeCbor(senderBox) as CborMap;
  const signer = [...ids.values()].find((i) => equalBytes(i.card.id, s.get(2) as Bytes));
  const signed = transcript(label("sig"), ...bound, ctHash, s.get(1) as string, s.get(2) as Bytes);
  if (!signer || !ed25519.verify(s.get(4) as Bytes, signed, signer.card.signingKey)) {
    throw new Error("signature does not verify");
  }
  const aad = transcript(label("aad"), ...bound);
  const body = gcm(keys.slice(32, 64), keys.slice(64, 76), aad).decrypt(bodyCt);
  return {
    sharedSecret: toHex(shared),
    hint: toHex(hint),
    ...(kem
      ? {
        mlkemSharedSecret: toHex(kem.mlkem),
        x25519SharedSecret: toHex(kem.x25519),
        kemSharedSecret: toHex(kem.shared),
      }
      : {}),
    kek: toHex(kek!),
    slotIndex: String(slotIndex),
    payloadKey: toHex(payloadKey),
    commitment: toHex(keys.slice(0, 32)),
    bodyKey: toHex(keys.slice(32, 64)),
    bodyNonce: toHex(keys.slice(64, 76)),
    senderKey: toHex(keys.slice(76, 108)),
    senderNonce: toHex(keys.slice(108, 120)),
    slotsHash: toHex(slotsHash),
    bodyCiphertextHash: toHex(ctHash),
    signatureInput: toHex(signed),
    senderBox: toHex(senderBox),
    body: toHex(body),
  };
}
