/**
 * The wire format of the `group` STP (SPEC §19.2, §19.10): the clear payload map, its
 * strict decoder, the slot table and the header fields every key, AAD and signature
 * binds. Versions 1 (X25519 slots) and 2 (X-Wing slots) share the map; they differ in
 * labels and slot layout.
 * @module
 */
import type { Bytes } from "../../core/bytes.ts";
import { CborReader, type CborValue, decodeCbor, encodeCbor } from "../../core/cbor.ts";
import type { EnvelopeHeader } from "../../envelope/mod.ts";
import { MissiveError } from "../../core/errors.ts";
import { XWING_CIPHERTEXT_SIZE } from "../../crypto/xwing.ts";

/** STP type number of `group`. */
export const GROUP_TYPE = 3;
/** The version whose slots are X-Wing encapsulations (SPEC §19.10). */
export const GROUP_PQ_VERSION = 2;
export type GroupVersion = 1 | 2;

/** Domain-separation labels of a version (SPEC §19.1, §19.10.1, Appendix A). */
export function groupLabels(version: GroupVersion) {
  const p = `missive/stp/group/v${version}`;
  return {
    /** v1: hint and KEK from the X25519 secret. */
    slot: `${p}/slot`,
    /** v2: the hint from the X25519 secret. */
    hint: `${p}/hint`,
    /** v2: the KEK from the X-Wing secret. */
    kek: `${p}/kek`,
    wrap: `${p}/wrap`,
    keys: `${p}/keys`,
    aad: `${p}/aad`,
    sig: `${p}/sig`,
    sender: `${p}/sender`,
  };
}
export type GroupLabels = ReturnType<typeof groupLabels>;

export const NONCE_SIZE = 16;
export const HINT_SIZE = 8;
/** AES-256-GCM of the 32-byte payload key: ciphertext ‖ tag. */
export const WRAPPED_SIZE = 48;
/** v2: the X-Wing ciphertext between hint and wrapped key. */
export const KEM_CIPHERTEXT_SIZE = XWING_CIPHERTEXT_SIZE;
export const COMMITMENT_SIZE = 32;
/** Most slots one message may carry; checked before anything is sliced (SPEC §19.8). */
export const MAX_SLOTS = 65_536;
/** Hidden mode pads the slot count to a power of two, at least this (SPEC §19.6). */
export const MIN_HIDDEN_SLOTS = 4;

/** Slot mode, payload field 4. */
export const MODE_HINTED = 1;
export const MODE_HIDDEN = 2;
export type SlotMode = typeof MODE_HINTED | typeof MODE_HIDDEN;

/**
 * Bytes per slot. v1: hint ‖ wrapped key (hinted), the wrapped key alone (hidden). v2,
 * both modes: hint ‖ X-Wing ciphertext ‖ wrapped key (hidden mode pads with dummies).
 */
export const slotSize = (mode: SlotMode, version: GroupVersion = 1) =>
  version === GROUP_PQ_VERSION
    ? HINT_SIZE + KEM_CIPHERTEXT_SIZE + WRAPPED_SIZE
    : mode === MODE_HINTED
    ? HINT_SIZE + WRAPPED_SIZE
    : WRAPPED_SIZE;

/** Whether slots start with a hint: always in v2, in hinted mode in v1. */
export const hasHints = (mode: SlotMode, version: GroupVersion) =>
  version === GROUP_PQ_VERSION || mode === MODE_HINTED;

/** The clear fields of a group payload (SPEC §19.2). */
export interface GroupPayload {
  nonce: Bytes;
  timestamp: number;
  ephemeralKey: Bytes;
  mode: SlotMode;
  slotCount: number;
  /** slotCount slots of slotSize(mode) bytes, in strictly ascending byte order. */
  slots: Bytes;
  commitment: Bytes;
  bodyCiphertext: Bytes;
  senderCiphertext: Bytes;
}

/** The fields bound into AAD, sender box and signature (SPEC §19.4). */
export function boundFields(
  envelope: EnvelopeHeader,
  p: Omit<GroupPayload, "slots" | "bodyCiphertext" | "senderCiphertext">,
  slotsHash: Bytes,
): CborValue[] {
  return [
    envelope.protocolType,
    envelope.protocolVersion,
    envelope.sequenceNumber ?? null,
    p.nonce,
    p.timestamp,
    p.ephemeralKey,
    p.mode,
    p.slotCount,
    slotsHash,
    p.commitment,
  ];
}

export function encodePayload(p: GroupPayload): Bytes {
  return encodeCbor(
    new Map<number, CborValue>([
      [1, p.nonce],
      [2, p.timestamp],
      [3, p.ephemeralKey],
      [4, p.mode],
      [5, p.slotCount],
      [6, p.slots],
      [7, p.commitment],
      [8, p.bodyCiphertext],
      [9, p.senderCiphertext],
    ]),
  );
}

/** Byte order of two equal-length slots: negative, zero or positive. */
export function compareSlots(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

/** Whether the slot at `at` is greater than the one before it (in place, no copies). */
function ascendingAt(slots: Uint8Array, at: number, size: number): boolean {
  for (let i = 0; i < size; i++) {
    const d = slots[at + i] - slots[at - size + i];
    if (d !== 0) return d > 0;
  }
  return false;
}

/**
 * Strictly decodes a group payload: known fields only, exact sizes, the slot count
 * bounded before the table is looked at, the table exactly count × slot size, slots in
 * strictly ascending order (one encoding; no duplicate slot).
 */
export function decodePayload(payload: Uint8Array, version: GroupVersion = 1): GroupPayload {
  const what = "group payload";
  const r = CborReader.from(decodeCbor(payload, what), what).onlyKeys([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const mode = r.uint(4, 0xff);
  if (mode !== MODE_HINTED && mode !== MODE_HIDDEN) {
    throw new MissiveError("malformed", `${what}: field 4: unknown slot mode ${mode}`);
  }
  const slotCount = r.uint(5, MAX_SLOTS);
  if (slotCount === 0) throw new MissiveError("malformed", `${what}: field 5: no slots`);
  const size = slotSize(mode, version);
  const slots = r.bytes(6, slotCount * size);
  for (let i = size; i < slots.length; i += size) {
    if (!ascendingAt(slots, i, size)) {
      throw new MissiveError(
        "malformed",
        `${what}: field 6: slots not in strictly ascending order (slot ${i / size})`,
      );
    }
  }
  return {
    nonce: r.bytes(1, NONCE_SIZE),
    timestamp: r.uint(2),
    ephemeralKey: r.bytes(3, 32),
    mode,
    slotCount,
    slots,
    commitment: r.bytes(7, COMMITMENT_SIZE),
    bodyCiphertext: r.bytes(8, { min: 16, max: payload.length }),
    senderCiphertext: r.bytes(9, { min: 16, max: payload.length }),
  };
}

/** What `missive inspect` shows of a group payload without keys. */
export function describePayload(
  payload: Uint8Array,
  version: GroupVersion = 1,
): { slots: number; hidden: boolean } {
  const p = decodePayload(payload, version);
  return { slots: p.slotCount, hidden: p.mode === MODE_HIDDEN };
}
