/**
 * What the history's sealed rows hold (SPEC §27.5, informative): CBOR maps whose field
 * 1 is the record type — settings, the prekey keyring, a friend (with its ratchet
 * state), a line of a conversation, an outgoing envelope not yet taken by the network.
 * @module
 */
import type { Bytes } from "../core/bytes.ts";
import { CborReader, type CborValue, decodeCbor, encodeCbor } from "../core/cbor.ts";
import { PRESENCE_STATUSES, type PresenceStatus } from "../amp/presence.ts";

export const FRIEND_STATES = [
  "request-sent",
  "request-received",
  "friend",
  "refused",
  "refused-by-them",
  "ended",
] as const;
/** Where a friendship stands. */
export type FriendState = (typeof FRIEND_STATES)[number];

export const LINE_STATES = ["queued", "sent", "delivered", "read", "failed"] as const;
/** A line's delivery state (SPEC §27.4). */
export type LineState = (typeof LINE_STATES)[number];

/** A friend (or a request either way). */
export interface FriendRecord {
  address: string;
  card: Bytes;
  state: FriendState;
  requestId: Bytes;
  /** The request's note (theirs when received, ours when sent). */
  note?: string;
  /** Their prekey bundle, from their request, until we answer it. */
  bundle?: Bytes;
  /** The ratchet state (SPEC §25.8). */
  conversation?: Bytes;
  presence?: PresenceStatus;
  presenceNote?: string;
  since: number;
}

/** One line of a conversation. */
export interface LineRecord {
  peer: string;
  direction: "in" | "out";
  author: string;
  text: string;
  time: number;
  /** The ratchet inner nonce: what receipts name. */
  nonce?: Bytes;
  state: LineState;
  /** Authenticated by the conversation (false for a forwarded line's original author). */
  verified: boolean;
  forwardedBy?: string;
}

/** An envelope waiting for the network. */
export interface OutboxRecord {
  peer: string;
  envelope: Bytes;
  /** The line it carries, if any (its state becomes `sent`). */
  line?: number;
}

export type ChatRecord =
  | { type: "settings"; status: PresenceStatus; note?: string }
  | { type: "keyring"; keyring: Bytes }
  | ({ type: "friend" } & FriendRecord)
  | ({ type: "line" } & LineRecord)
  | ({ type: "outbox" } & OutboxRecord);

const TYPES = ["settings", "keyring", "friend", "line", "outbox"] as const;

function put(m: Map<number, CborValue>, k: number, v: CborValue | undefined) {
  if (v !== undefined) m.set(k, v);
}

export function encodeRecord(r: ChatRecord): Bytes {
  const m = new Map<number, CborValue>([[1, TYPES.indexOf(r.type)]]);
  switch (r.type) {
    case "settings":
      put(m, 2, PRESENCE_STATUSES.indexOf(r.status));
      put(m, 3, r.note);
      break;
    case "keyring":
      put(m, 2, r.keyring);
      break;
    case "friend":
      put(m, 2, r.address);
      put(m, 3, r.card);
      put(m, 4, FRIEND_STATES.indexOf(r.state));
      put(m, 5, r.requestId);
      put(m, 6, r.note);
      put(m, 7, r.bundle);
      put(m, 8, r.conversation);
      put(m, 9, r.presence === undefined ? undefined : PRESENCE_STATUSES.indexOf(r.presence));
      put(m, 10, r.presenceNote);
      put(m, 11, r.since);
      break;
    case "line":
      put(m, 2, r.peer);
      put(m, 3, r.direction === "in" ? 0 : 1);
      put(m, 4, r.author);
      put(m, 5, r.text);
      put(m, 6, r.time);
      put(m, 7, r.nonce);
      put(m, 8, LINE_STATES.indexOf(r.state));
      put(m, 9, r.verified);
      put(m, 10, r.forwardedBy);
      break;
    case "outbox":
      put(m, 2, r.peer);
      put(m, 3, r.envelope);
      put(m, 4, r.line);
      break;
  }
  return encodeCbor(m);
}

export function decodeRecord(bytes: Uint8Array): ChatRecord {
  const r = CborReader.from(decodeCbor(bytes, "chat record"), "chat record");
  const type = TYPES[r.uint(1, TYPES.length - 1)];
  const big = 1 << 24;
  switch (type) {
    case "settings":
      return {
        type,
        status: PRESENCE_STATUSES[r.uint(2, 3)],
        ...(r.has(3) ? { note: r.text(3, big) } : {}),
      };
    case "keyring":
      return { type, keyring: r.bytes(2) };
    case "friend": {
      const f: ChatRecord = {
        type,
        address: r.text(2, 254),
        card: r.bytes(3),
        state: FRIEND_STATES[r.uint(4, FRIEND_STATES.length - 1)],
        requestId: r.bytes(5, 16),
        since: r.uint(11),
      };
      if (r.has(6)) f.note = r.text(6, big);
      if (r.has(7)) f.bundle = r.bytes(7);
      if (r.has(8)) f.conversation = r.bytes(8);
      if (r.has(9)) f.presence = PRESENCE_STATUSES[r.uint(9, 3)];
      if (r.has(10)) f.presenceNote = r.text(10, big);
      return f;
    }
    case "line": {
      const l: ChatRecord = {
        type,
        peer: r.text(2, 254),
        direction: r.uint(3, 1) === 0 ? "in" : "out",
        author: r.text(4, 254),
        text: r.text(5, big),
        time: r.uint(6),
        state: LINE_STATES[r.uint(8, LINE_STATES.length - 1)],
        verified: r.bool(9),
      };
      if (r.has(7)) l.nonce = r.bytes(7, 16);
      if (r.has(10)) l.forwardedBy = r.text(10, 254);
      return l;
    }
    case "outbox": {
      const o: ChatRecord = { type, peer: r.text(2, 254), envelope: r.bytes(3) };
      if (r.has(4)) o.line = r.uint(4);
      return o;
    }
  }
}
