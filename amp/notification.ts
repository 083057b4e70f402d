/**
 * `notification` AMP, type 2, version 1 (SPEC §9): a short system notice such as a
 * missed call: CBOR `{1: kind, 2: title, 3?: body, 4?: uri}`, all text.
 * @module
 */
import { utf8 } from "../core/bytes.ts";
import { CborReader, decodeCbor, encodeCbor } from "../core/cbor.ts";
import { MissiveError } from "../core/errors.ts";
import type { CliAmp } from "../plugin/types.ts";

/** AMP type number of `notification`. */
export const NOTIFICATION_TYPE = 2;
const MAX_KIND = 64;
const MAX_TITLE = 256;
const MAX_BODY = 64 * 1024;
const MAX_URI = 2048;

/** A notification. `kind` is a short machine-readable word, e.g. "missed-call". */
export interface Notification {
  /** 1..64 characters of `[a-z0-9][a-z0-9._-]*` (SPEC §9). */
  kind: string;
  /** A one-line heading, 1..256 characters. */
  title: string;
  /** More text, at most 65,536 characters. */
  body?: string;
  /** A link for the notice (e.g. the call to return), at most 2048 characters. */
  uri?: string;
}

function check(n: Notification): Notification {
  const bad = (why: string): never => {
    throw new MissiveError("usage", `notification: ${why}`);
  };
  if (
    typeof n.kind !== "string" || !/^[a-z0-9][a-z0-9._-]*$/.test(n.kind) || n.kind.length > MAX_KIND
  ) {
    bad("kind must be a short lower-case word (letters, digits, . _ -)");
  }
  if (typeof n.title !== "string" || n.title.length === 0 || n.title.length > MAX_TITLE) {
    bad(`title must be 1..${MAX_TITLE} characters`);
  }
  if (n.body !== undefined && (typeof n.body !== "string" || n.body.length > MAX_BODY)) {
    bad("body too long");
  }
  if (n.uri !== undefined && (typeof n.uri !== "string" || n.uri.length > MAX_URI)) {
    bad("uri too long");
  }
  return n;
}

/** `notification` v1. */
export const notificationV1: CliAmp<Notification> = {
  kind: "amp",
  type: NOTIFICATION_TYPE,
  version: 1,
  name: "notification",
  description: "system notice: kind, title, optional body and URI",
  encode(n) {
    check(n);
    const m = new Map<number, string>([[1, n.kind], [2, n.title]]);
    if (n.body !== undefined) m.set(3, n.body);
    if (n.uri !== undefined) m.set(4, n.uri);
    return encodeCbor(m);
  },
  decode(bytes) {
    const r = CborReader.from(decodeCbor(bytes, "notification"), "notification");
    const n: Notification = { kind: r.text(1, MAX_KIND), title: r.text(2, MAX_TITLE) };
    const body = r.optText(3, MAX_BODY);
    const uri = r.optText(4, MAX_URI);
    if (body !== undefined) n.body = body;
    if (uri !== undefined) n.uri = uri;
    try {
      return check(n);
    } catch (e) {
      throw new MissiveError("malformed", (e as Error).message);
    }
  },
  fromInput(input, fields) {
    const body = new TextDecoder().decode(input).replace(/\n$/, "");
    return check({
      kind: fields.kind ?? "notice",
      title: fields.title ?? "",
      ...(body ? { body } : {}),
      ...(fields.uri ? { uri: fields.uri } : {}),
    });
  },
  toOutput: (n) =>
    utf8(`[${n.kind}] ${n.title}\n${n.body ? n.body + "\n" : ""}${n.uri ? n.uri + "\n" : ""}`),
  toJson: (n) => ({ ...n }),
};
