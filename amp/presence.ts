/**
 * `presence` AMP, type 4, version 1 (SPEC §15): the sender's availability.
 * CBOR `{1: status, 2?: note}`; statuses 0 online, 1 busy, 2 away, 3 invisible.
 * @module
 */
import { utf8 } from "../core/bytes.ts";
import { CborReader, decodeCbor, encodeCbor } from "../core/cbor.ts";
import { MissiveError } from "../core/errors.ts";
import { requireFieldsOnly } from "./_fields.ts";
import type { CliAmp } from "../plugin/types.ts";

/** AMP type number of `presence`. */
export const PRESENCE_TYPE = 4;
/** Presence statuses; a status is written as its index here (SPEC §15). */
export const PRESENCE_STATUSES = ["online", "busy", "away", "invisible"] as const;
/** The sender's availability. */
export type PresenceStatus = (typeof PRESENCE_STATUSES)[number];
const MAX_NOTE = 256;
/** The `--field` names fromInput takes. */
const FIELDS = ["status", "note"];

/** A presence update, e.g. `{ status: "away", note: "back at 3" }`. */
export interface Presence {
  /** One of `PRESENCE_STATUSES`. */
  status: PresenceStatus;
  /** Free text for people, at most 256 characters. */
  note?: string;
}

function check(m: Presence): Presence {
  if (!PRESENCE_STATUSES.includes(m.status)) {
    throw new MissiveError(
      "usage",
      `presence: status must be one of ${PRESENCE_STATUSES.join(", ")}`,
    );
  }
  if (m.note !== undefined && (typeof m.note !== "string" || m.note.length > MAX_NOTE)) {
    throw new MissiveError(
      "usage",
      `presence: note must be text of at most ${MAX_NOTE} characters`,
    );
  }
  return m;
}

/** `presence` v1. */
export const presenceV1: CliAmp<Presence> = {
  kind: "amp",
  type: PRESENCE_TYPE,
  version: 1,
  name: "presence",
  description: "availability: online, busy, away or invisible, with an optional note",
  encode(m) {
    check(m);
    const map = new Map<number, number | string>([[1, PRESENCE_STATUSES.indexOf(m.status)]]);
    if (m.note !== undefined) map.set(2, m.note);
    return encodeCbor(map);
  },
  decode(bytes) {
    const r = CborReader.from(decodeCbor(bytes, "presence"), "presence").onlyKeys([1, 2]);
    const m: Presence = { status: PRESENCE_STATUSES[r.uint(1, PRESENCE_STATUSES.length - 1)] };
    const note = r.optText(2, MAX_NOTE);
    if (note !== undefined) m.note = note;
    return m;
  },
  fromInput(input, fields) {
    requireFieldsOnly(
      "presence",
      input,
      fields,
      FIELDS,
      "give --field status=NAME [--field note=TEXT]",
    );
    return check({
      status: (fields.status ?? "") as PresenceStatus,
      ...(fields.note !== undefined ? { note: fields.note } : {}),
    });
  },
  toOutput: (m) => utf8(`presence: ${m.status}${m.note ? ` (${m.note})` : ""}\n`),
  toJson: (m) => ({ status: m.status, ...(m.note !== undefined ? { note: m.note } : {}) }),
};
