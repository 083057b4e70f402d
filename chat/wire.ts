/**
 * The chat's own messages (SPEC §27.2): the `chat` AMP (type 8, version 1), one CBOR map
 * whose field 1 is the kind. Requests and refusals travel sealed by the `simple` STP
 * (signed: the requester's card, a signed note and the prekey bundle the first agreement
 * needs); everything else inside the friends' ratchet conversation (STP 9).
 * @module
 */
import type { Bytes } from "../core/bytes.ts";
import { CborReader, type CborValue, decodeCbor, encodeCbor } from "../core/cbor.ts";
import { MissiveError } from "../core/errors.ts";
import { PRESENCE_STATUSES, type PresenceStatus } from "../amp/presence.ts";
import type { AmpPlugin } from "../plugin/types.ts";

/** AMP type and version of `chat` (SPEC §27.2). */
export const CHAT_AMP_TYPE = 8;
export const CHAT_AMP_VERSION = 1;

/** Kinds, written as their index (SPEC §27.2). */
export const CHAT_KINDS = [
  "request",
  "accept",
  "refuse",
  "text",
  "receipt",
  "presence",
  "forward",
  "bye",
] as const;
export type ChatKind = (typeof CHAT_KINDS)[number];

/** Limits (SPEC §27.2). */
export const MAX_NOTE = 256;
export const MAX_CHAT_TEXT = 4096;
export const MAX_BUNDLE = 2048;
export const MAX_RECEIPT_NONCES = 64;
/** Fields at or above this number are grease: ignored by receivers (STYLE §17). */
export const FIRST_GREASE_FIELD = 32;

/** Delivery states a receipt reports. */
export const RECEIPT_STATES = ["delivered", "read"] as const;
export type ReceiptState = (typeof RECEIPT_STATES)[number];

/** One chat message. */
export type ChatMessage =
  | { kind: "request"; requestId: Bytes; note?: string; bundle: Bytes }
  | { kind: "accept"; requestId: Bytes }
  | { kind: "refuse"; requestId: Bytes; reason?: string }
  | { kind: "text"; text: string }
  | { kind: "receipt"; state: ReceiptState; nonces: Bytes[] }
  | { kind: "presence"; status: PresenceStatus; note?: string }
  | { kind: "forward"; text: string; author: string; time: number }
  | { kind: "bye"; reason?: string };

/** Which fields each kind has (besides 1, the kind). */
const FIELDS: Record<ChatKind, readonly number[]> = {
  request: [2, 3, 4],
  accept: [2],
  refuse: [2, 3],
  text: [5],
  receipt: [6, 7],
  presence: [8, 3],
  forward: [5, 9, 10],
  bye: [3],
};

function bad(why: string): never {
  throw new MissiveError("malformed", `chat message: ${why}`);
}

function checkText(text: string, max: number, what: string): void {
  if (typeof text !== "string" || text.length > max) {
    throw new MissiveError("usage", `chat: ${what} must be text of at most ${max} characters`);
  }
}

/** Encodes a chat message (SPEC §27.2); `usage` for values out of range. */
export function encodeChatMessage(m: ChatMessage): Bytes {
  const map = new Map<number, CborValue>([[1, CHAT_KINDS.indexOf(m.kind)]]);
  switch (m.kind) {
    case "request":
      map.set(2, m.requestId);
      if (m.note !== undefined) (checkText(m.note, MAX_NOTE, "note"), map.set(3, m.note));
      if (m.bundle.length < 1 || m.bundle.length > MAX_BUNDLE) {
        throw new MissiveError("usage", `chat: a bundle is 1..${MAX_BUNDLE} bytes`);
      }
      map.set(4, m.bundle);
      break;
    case "accept":
      map.set(2, m.requestId);
      break;
    case "refuse":
      map.set(2, m.requestId);
      if (m.reason !== undefined) (checkText(m.reason, MAX_NOTE, "reason"), map.set(3, m.reason));
      break;
    case "text":
      checkText(m.text, MAX_CHAT_TEXT, "a line");
      map.set(5, m.text);
      break;
    case "receipt":
      if (m.nonces.length < 1 || m.nonces.length > MAX_RECEIPT_NONCES) {
        throw new MissiveError("usage", `chat: a receipt names 1..${MAX_RECEIPT_NONCES} messages`);
      }
      map.set(6, RECEIPT_STATES.indexOf(m.state));
      map.set(7, m.nonces);
      break;
    case "presence":
      map.set(8, PRESENCE_STATUSES.indexOf(m.status));
      if (m.note !== undefined) (checkText(m.note, MAX_NOTE, "note"), map.set(3, m.note));
      break;
    case "forward":
      checkText(m.text, MAX_CHAT_TEXT, "a line");
      checkText(m.author, 254, "an author");
      map.set(5, m.text);
      map.set(9, m.author);
      map.set(10, m.time);
      break;
    case "bye":
      if (m.reason !== undefined) (checkText(m.reason, MAX_NOTE, "reason"), map.set(3, m.reason));
      break;
  }
  if (m.kind === "request" || m.kind === "accept" || m.kind === "refuse") {
    if (m.requestId.length !== 16) {
      throw new MissiveError("usage", "chat: a request ID is 16 bytes");
    }
  }
  return encodeCbor(map);
}

/**
 * Decodes a chat message strictly (SPEC §27.2): a map, a known kind, exactly its fields
 * (plus grease keys ≥ 32, ignored), each of its type and within its limit; anything
 * else is `malformed`.
 */
export function decodeChatMessage(bytes: Uint8Array): ChatMessage {
  const value = decodeCbor(bytes, "chat message");
  if (!(value instanceof Map)) bad("expected a CBOR map");
  const r = CborReader.from(value, "chat message");
  const kind = CHAT_KINDS[r.uint(1, CHAT_KINDS.length - 1)];
  const allowed = FIELDS[kind];
  for (const k of value.keys()) {
    if (k === 1 || allowed.includes(k as number)) continue;
    if (typeof k === "number" && k >= FIRST_GREASE_FIELD) continue;
    bad(`field ${String(k)} is not a field of ${kind}`);
  }
  const requestId = () => r.bytes(2, 16);
  const optText = (key: number) => r.optText(key, MAX_NOTE);
  switch (kind) {
    case "request": {
      const note = optText(3);
      return {
        kind,
        requestId: requestId(),
        ...(note !== undefined ? { note } : {}),
        bundle: r.bytes(4, { min: 1, max: MAX_BUNDLE }),
      };
    }
    case "accept":
      return { kind, requestId: requestId() };
    case "refuse": {
      const reason = optText(3);
      return { kind, requestId: requestId(), ...(reason !== undefined ? { reason } : {}) };
    }
    case "text":
      return { kind, text: r.text(5, MAX_CHAT_TEXT) };
    case "receipt": {
      const state = RECEIPT_STATES[r.uint(6, RECEIPT_STATES.length - 1)];
      const list = r.array(7, MAX_RECEIPT_NONCES);
      if (list.length < 1) bad("field 7: a receipt names at least one message");
      const nonces = list.map((n) => {
        if (!(n instanceof Uint8Array) || n.length !== 16) bad("field 7: nonces are 16 bytes");
        return n as Bytes;
      });
      return { kind, state, nonces };
    }
    case "presence": {
      const note = optText(3);
      return {
        kind,
        status: PRESENCE_STATUSES[r.uint(8, PRESENCE_STATUSES.length - 1)],
        ...(note !== undefined ? { note } : {}),
      };
    }
    case "forward":
      return { kind, text: r.text(5, MAX_CHAT_TEXT), author: r.text(9, 254), time: r.uint(10) };
    case "bye": {
      const reason = optText(3);
      return { kind, ...(reason !== undefined ? { reason } : {}) };
    }
  }
}

/**
 * The `chat` AMP for a registry: the chat registers it in its own registry so requests
 * seal and open through `sealMessage` / `openMessage`; it is not a built-in AMP (a chat
 * message means something only to a chat).
 */
export const chatAmp: AmpPlugin<ChatMessage> = {
  kind: "amp",
  type: CHAT_AMP_TYPE,
  version: CHAT_AMP_VERSION,
  name: "chat",
  description: "chat: friend requests and answers, lines, receipts, presence (SPEC §27.2)",
  encode: encodeChatMessage,
  decode: decodeChatMessage,
};
