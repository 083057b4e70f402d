/**
 * `control` AMP, type 5, version 1 (SPEC §16): starting and ending a chat.
 * CBOR `{1: action, 2?: session, 3?: reason}`; actions 0 request, 1 accept, 2 refuse, 3 bye.
 * @module
 */
import { fromHex, toHex, utf8 } from "../core/bytes.ts";
import { CborReader, decodeCbor, encodeCbor } from "../core/cbor.ts";
import { MissiveError } from "../core/errors.ts";
import { requireFieldsOnly } from "./_fields.ts";
import type { CliAmp } from "../plugin/types.ts";

/** AMP type number of `control`. */
export const CONTROL_TYPE = 5;
/** Control actions; an action is written as its index here (SPEC §16). */
export const CONTROL_ACTIONS = ["request", "accept", "refuse", "bye"] as const;
/** What the sender asks or answers. */
export type ControlAction = (typeof CONTROL_ACTIONS)[number];
const MAX_SESSION_BYTES = 32;
const MAX_REASON = 256;
/** The `--field` names fromInput takes. */
const FIELDS = ["action", "session", "reason"];

/** A control message, e.g. `{ action: "refuse", session, reason: "busy" }`. */
export interface Control {
  /** What the sender asks or answers; one of `CONTROL_ACTIONS`. */
  action: ControlAction;
  /** Which chat: chosen by the requester, echoed by the answers (1..32 bytes). */
  session?: Uint8Array;
  /** Why, for people (e.g. "busy"), at most 256 characters. */
  reason?: string;
}

function check(m: Control): Control {
  const bad = (why: string): never => {
    throw new MissiveError("usage", `control: ${why}`);
  };
  if (!CONTROL_ACTIONS.includes(m.action)) {
    bad(`action must be one of ${CONTROL_ACTIONS.join(", ")}`);
  }
  if (
    m.session !== undefined &&
    (!(m.session instanceof Uint8Array) || m.session.length < 1 ||
      m.session.length > MAX_SESSION_BYTES)
  ) {
    bad(`session must be 1..${MAX_SESSION_BYTES} bytes`);
  }
  if (m.reason !== undefined && (typeof m.reason !== "string" || m.reason.length > MAX_REASON)) {
    bad(`reason must be text of at most ${MAX_REASON} characters`);
  }
  return m;
}

/** `control` v1. */
export const controlV1: CliAmp<Control> = {
  kind: "amp",
  type: CONTROL_TYPE,
  version: 1,
  name: "control",
  description: "chat control: request, accept, refuse or bye, with a session ID and reason",
  encode(m) {
    check(m);
    const map = new Map<number, number | string | Uint8Array>([
      [1, CONTROL_ACTIONS.indexOf(m.action)],
    ]);
    if (m.session !== undefined) map.set(2, m.session);
    if (m.reason !== undefined) map.set(3, m.reason);
    return encodeCbor(map);
  },
  decode(bytes) {
    const r = CborReader.from(decodeCbor(bytes, "control"), "control").onlyKeys([1, 2, 3]);
    const m: Control = { action: CONTROL_ACTIONS[r.uint(1, CONTROL_ACTIONS.length - 1)] };
    const session = r.optBytes(2, { min: 1, max: MAX_SESSION_BYTES });
    const reason = r.optText(3, MAX_REASON);
    if (session !== undefined) m.session = session;
    if (reason !== undefined) m.reason = reason;
    return m;
  },
  fromInput(input, fields) {
    requireFieldsOnly(
      "control",
      input,
      fields,
      FIELDS,
      "give --field action=NAME [--field session=HEX] [--field reason=TEXT]",
    );
    const session = fields.session === undefined ? undefined : fromHex(fields.session);
    if (fields.session !== undefined && !session) {
      throw new MissiveError("usage", "control: --field session= must be hex");
    }
    return check({
      action: (fields.action ?? "") as ControlAction,
      ...(session ? { session } : {}),
      ...(fields.reason !== undefined ? { reason: fields.reason } : {}),
    });
  },
  toOutput: (m) =>
    utf8(
      `control: ${m.action}${m.session ? ` session ${toHex(m.session)}` : ""}${
        m.reason ? ` (${m.reason})` : ""
      }\n`,
    ),
  toJson: (m) => ({
    action: m.action,
    ...(m.session ? { session: toHex(m.session) } : {}),
    ...(m.reason !== undefined ? { reason: m.reason } : {}),
  }),
};
