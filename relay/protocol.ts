/**
 * The relay protocol (SPEC §23): what a client and the relay say to each other inside
 * one SecureChannel message. Each message is one deterministic CBOR map whose key 0 is
 * its kind — a request (client → relay), a response (relay → client, same request id),
 * a delivery (relay → client, a queued envelope), or a receipt (relay → client: the
 * recipient acknowledged a message whose sender asked for one). Decoding is strict and capped;
 * unknown map keys are ignored (SPEC §23.2), unknown kinds are malformed.
 * @module
 */
import type { Bytes } from "../core/bytes.ts";
import { CborReader, type CborValue, decodeCbor, encodeCbor } from "../core/cbor.ts";
import { MissiveError } from "../core/errors.ts";
import { MAX_CARD_SIZE } from "../keys/card.ts";
import { MAX_ADDRESS_LENGTH } from "../keys/address.ts";
import { PRESENCE_STATUSES, type PresenceStatus } from "../amp/presence.ts";
import { RECEIPT_STATUSES, type ReceiptStatus } from "../amp/receipt.ts";

/** Largest relay message: one session message (1 MiB, SPEC §22). */
export const MAX_RELAY_MESSAGE = 1024 * 1024;
/** Largest envelope the protocol carries (a relay's own cap is at most this). */
export const MAX_RELAY_ENVELOPE = MAX_RELAY_MESSAGE - 4096;
/** Most entries a `list` response carries. */
export const MAX_LIST_ENTRIES = 10_000;
/** Largest request id. */
export const MAX_REQUEST_ID = 0xffff_ffff;
/** Length of an identity ID. */
export const ID_BYTES = 16;
const MAX_NOTE = 256;
/** Largest prekey upload a `publish-prekeys` carries (SPEC §23.13): 100 one-time prekeys fit. */
export const MAX_PREKEY_UPLOAD = 8192;
/** Largest prekey bundle a `fetch-prekeys` answer carries. */
export const MAX_PREKEY_BUNDLE = 2048;
const MAX_DETAIL = 1024;
const MAX_STATS = 64;
/**
 * Largest receipt relay message (SPEC §23.7.1): its fields take under 300 bytes, so a
 * receipt costs the relay a small fixed amount whatever its sender's address.
 */
export const MAX_RELAY_RECEIPT = 1024;

/** Message kinds (key 0). */
export const KIND = { request: 0, response: 1, delivery: 2, bundle: 3, receipt: 4 } as const;

/**
 * What a `receive` asks for (key 3, SPEC §23.3): its messages (the default), its messages
 * and the receipts queued for it, or only the receipts.
 */
export const RECEIVE_MODES = ["messages", "all", "receipts"] as const;
/** One of `RECEIVE_MODES`: what a `receive` asks the relay to deliver on this link. */
export type ReceiveMode = (typeof RECEIVE_MODES)[number];
/** Most messages in one bundle. */
export const MAX_BUNDLE = 256;

/** Request operations (key 2 of a request); the number is the index. */
export const RELAY_OPS = [
  "register",
  "lookup",
  "list",
  "presence",
  "send",
  "ack",
  "receive",
  "stats",
  "keepalive",
  "publish-prekeys",
  "fetch-prekeys",
] as const;
export type RelayOp = (typeof RELAY_OPS)[number];

/** Response statuses (key 2 of a response); the number is the index. */
export const RELAY_STATUSES = [
  "ok",
  "malformed",
  "unknown-op",
  "not-registered",
  "collision",
  "unknown-recipient",
  "too-large",
  "quota",
  "forbidden",
  "unknown-message",
  "not-found",
  "unavailable",
  "rate-limited",
  "recipient-full",
  "store-full",
  "directory-full",
  "busy",
  "idle",
  "over-budget",
  "invalid-prekeys",
] as const;
/**
 * One of `RELAY_STATUSES`: `ok`, or why the relay refused a request (SPEC §23.4);
 * `LINK_STATUSES` also end the link.
 */
export type RelayStatus = (typeof RELAY_STATUSES)[number];

/**
 * Statuses that end the link (SPEC §23.4): the relay sends them as a response to request
 * ID 0, then closes the connection.
 */
export const LINK_STATUSES: readonly RelayStatus[] = ["busy", "idle", "over-budget"];

/** A recipient named by address or by 16-byte identity ID. */
export type Target = string | Bytes;

/** Client → relay. */
export type RelayRequest =
  | { op: "register" }
  | { op: "lookup"; target: Target }
  | { op: "list" }
  | { op: "presence"; status: PresenceStatus; note?: string }
  | { op: "send"; to: Target; envelope: Bytes; receipt?: boolean }
  | { op: "ack"; message: number; receipt: ReceiptStatus }
  | { op: "receive"; mode?: ReceiveMode }
  | { op: "stats" }
  | { op: "keepalive" }
  | { op: "publish-prekeys"; upload: Bytes }
  | { op: "fetch-prekeys"; target: Target }
  | { op: "unknown"; code: number };

/** One online user in a `list` response. */
export interface ListEntry {
  /** The user's registered address (the relay's word; sanitise it to show it). */
  address: string;
  /** The user's 16-byte identity ID. */
  id: Bytes;
  /** The presence the user set (`invisible` users are not listed). */
  status: PresenceStatus;
  /** The user's presence note, at most 256 characters (sanitise it to show it). */
  note?: string;
}

/** The fields a response may carry (each op uses its own, SPEC §23.4). */
export interface ResponseFields {
  /** register: the registered ID. */
  id?: Bytes;
  /** lookup, fetch-prekeys: the card. */
  card?: Bytes;
  /** fetch-prekeys: the prekey bundle (SPEC §25.2), with at most one one-time prekey. */
  prekeys?: Bytes;
  /** lookup: the presence of an online user (absent when offline or invisible). */
  presence?: PresenceStatus;
  /** list. */
  entries?: ListEntry[];
  /**
   * send: the relay message ID; receive: how many messages are queued; keepalive: the
   * relay's idle timeout in ms (0: none); publish-prekeys: one-time prekeys held.
   */
  count?: number;
  /** stats. */
  stats?: Record<string, number>;
  /** Why a request was refused, for people. */
  detail?: string;
}

/** Relay → client, answering request `rid`. */
export interface RelayResponse extends ResponseFields {
  rid: number;
  status: RelayStatus;
}

/** Relay → client: a queued envelope. */
export interface RelayDelivery {
  /** The relay message ID the client's `ack` names. */
  message: number;
  /**
   * The sender's 16-byte identity ID, as the relay's session authenticated it: the relay's
   * word, to be compared with the envelope's signer (`handleDeliveries` does).
   */
  senderId: Bytes;
  /** The sender's registered address (the relay's word; sanitise it to show it). */
  sender: string;
  /** The sealed envelope, as the sender sent it: open it with `openMessage`. */
  envelope: Bytes;
  /** When the relay accepted it, ms since the epoch. */
  enqueued: number;
}

/**
 * Relay → client: the recipient of a message this client sent with a receipt asked for
 * acknowledged it (SPEC §23.7.1). The relay's statement, not the recipient's signature.
 */
export interface RelayReceipt {
  /** This receipt's own relay message ID: the client's `ack` names it. */
  id: number;
  /** The relay message ID of the sent message (the `send` answer's key 6). */
  message: number;
  /** Who acknowledged it: the recipient's ID, as its session proved it to the relay. */
  recipientId: Bytes;
  /** The recipient's registered address (the relay's word; sanitise it to show it). */
  recipient: string;
  /** The receipt status of the recipient's ack (SPEC §14). */
  status: ReceiptStatus;
  /** When the relay took the ack, ms since the epoch. */
  acknowledged: number;
}

/** Any decoded relay message. */
export type RelayMessage =
  | { kind: "request"; rid: number; request: RelayRequest }
  | { kind: "response"; response: RelayResponse }
  | { kind: "delivery"; delivery: RelayDelivery }
  | { kind: "receipt"; receipt: RelayReceipt }
  | { kind: "bundle"; messages: RelayMessage[] };

const targetValue = (t: Target): CborValue => t;

/** Deterministic CBOR of a map. */
function encodeMap(m: Map<number, CborValue>): Bytes {
  return encodeCbor(m);
}

/** Encodes a request with id `rid`. */
export function encodeRequest(rid: number, request: RelayRequest): Bytes {
  if (request.op === "unknown") {
    return encodeMap(new Map<number, CborValue>([[0, 0], [1, rid], [2, request.code]]));
  }
  const m = new Map<number, CborValue>([
    [0, KIND.request],
    [1, rid],
    [2, RELAY_OPS.indexOf(request.op)],
  ]);
  switch (request.op) {
    case "lookup":
      m.set(3, targetValue(request.target));
      break;
    case "presence":
      m.set(3, PRESENCE_STATUSES.indexOf(request.status));
      if (request.note !== undefined) m.set(4, request.note);
      break;
    case "send":
      m.set(3, targetValue(request.to)).set(4, request.envelope);
      if (request.receipt) m.set(5, true);
      break;
    case "receive":
      if (request.mode !== undefined && request.mode !== "messages") {
        m.set(3, RECEIVE_MODES.indexOf(request.mode));
      }
      break;
    case "ack":
      m.set(3, request.message).set(4, RECEIPT_STATUSES.indexOf(request.receipt));
      break;
    case "publish-prekeys":
      m.set(3, request.upload);
      break;
    case "fetch-prekeys":
      m.set(3, targetValue(request.target));
      break;
  }
  return encodeMap(m);
}

/** Encodes a response. */
export function encodeResponse(response: RelayResponse): Bytes {
  const m = new Map<number, CborValue>([
    [0, KIND.response],
    [1, response.rid],
    [2, RELAY_STATUSES.indexOf(response.status)],
  ]);
  if (response.id) m.set(3, response.id);
  if (response.card) m.set(4, response.card);
  if (response.entries) m.set(5, response.entries.map(listEntryValue));
  if (response.count !== undefined) m.set(6, response.count);
  if (response.stats) m.set(7, new Map(Object.entries(response.stats)));
  if (response.detail !== undefined) m.set(8, response.detail);
  if (response.presence !== undefined) m.set(9, PRESENCE_STATUSES.indexOf(response.presence));
  if (response.prekeys) m.set(10, response.prekeys);
  return encodeMap(m);
}

function listEntryValue(e: ListEntry): CborValue {
  const v: CborValue[] = [e.address, e.id, PRESENCE_STATUSES.indexOf(e.status)];
  if (e.note !== undefined) v.push(e.note);
  return v;
}

/**
 * Packs encoded relay messages (not bundles) into one bundle (SPEC §23.2): one session
 * message carries them all, in order.
 */
export function encodeBundle(messages: Uint8Array[]): Bytes {
  if (messages.length === 0 || messages.length > MAX_BUNDLE) {
    throw new MissiveError("internal", `relay: a bundle holds 1 to ${MAX_BUNDLE} messages`);
  }
  return encodeMap(new Map<number, CborValue>([[0, KIND.bundle], [1, messages]]));
}

/** Encodes a delivery. */
export function encodeDelivery(d: RelayDelivery): Bytes {
  return encodeMap(
    new Map<number, CborValue>([
      [0, KIND.delivery],
      [1, d.message],
      [3, d.senderId],
      [4, d.sender],
      [5, d.envelope],
      [6, d.enqueued],
    ]),
  );
}

/** Encodes a receipt (SPEC §23.7.1). */
export function encodeReceipt(r: RelayReceipt): Bytes {
  return encodeMap(
    new Map<number, CborValue>([
      [0, KIND.receipt],
      [1, r.id],
      [2, r.message],
      [3, r.recipientId],
      [4, r.recipient],
      [5, RECEIPT_STATUSES.indexOf(r.status)],
      [6, r.acknowledged],
    ]),
  );
}

const fail = (why: string): never => {
  throw new MissiveError("malformed", `relay message: ${why}`);
};

function readTarget(r: CborReader, key: number): Target {
  const v = r.raw(key);
  if (typeof v === "string") return r.text(key, MAX_ADDRESS_LENGTH);
  if (v instanceof Uint8Array) return r.bytes(key, ID_BYTES);
  return fail(`field ${key}: expected an address or a ${ID_BYTES}-byte ID`);
}

function readRequest(r: CborReader, maxEnvelope: number): RelayRequest {
  const code = r.uint(2, 0xffff);
  const op = RELAY_OPS[code];
  switch (op) {
    case undefined:
      return { op: "unknown", code };
    case "lookup":
      return { op, target: readTarget(r, 3) };
    case "presence": {
      const status = PRESENCE_STATUSES[r.uint(3, PRESENCE_STATUSES.length - 1)];
      const note = r.optText(4, MAX_NOTE);
      return note === undefined ? { op, status } : { op, status, note };
    }
    case "send": {
      const to = readTarget(r, 3);
      const raw = r.raw(4);
      if (raw instanceof Uint8Array && raw.length > maxEnvelope) {
        throw new MissiveError(
          "too-large",
          `relay message: envelope of ${raw.length} bytes exceeds ${maxEnvelope}`,
        );
      }
      const envelope = r.bytes(4, { min: 1, max: maxEnvelope });
      return r.has(5) && r.bool(5) ? { op, to, envelope, receipt: true } : { op, to, envelope };
    }
    case "receive": {
      const mode = r.optUint(3, RECEIVE_MODES.length - 1);
      return mode === undefined ? { op } : { op, mode: RECEIVE_MODES[mode] };
    }
    case "ack":
      return {
        op,
        message: r.uint(3),
        receipt: RECEIPT_STATUSES[r.uint(4, RECEIPT_STATUSES.length - 1)],
      };
    case "publish-prekeys":
      // The upload is opaque here; the relay decodes and verifies it (SPEC §23.13).
      return { op, upload: r.bytes(3, { min: 1, max: MAX_PREKEY_UPLOAD }) };
    case "fetch-prekeys":
      return { op, target: readTarget(r, 3) };
    default:
      return { op };
  }
}

function readListEntry(v: CborValue): ListEntry {
  if (!Array.isArray(v) || v.length < 3 || v.length > 4) fail("list entry: expected 3 or 4 items");
  const [address, id, status, note] = v as CborValue[];
  if (typeof address !== "string" || address.length > MAX_ADDRESS_LENGTH) {
    fail("list entry: bad address");
  }
  if (!(id instanceof Uint8Array) || id.length !== ID_BYTES) fail("list entry: bad ID");
  if (typeof status !== "number" || PRESENCE_STATUSES[status] === undefined) {
    fail("list entry: bad presence status");
  }
  if (note !== undefined && (typeof note !== "string" || note.length > MAX_NOTE)) {
    fail("list entry: bad note");
  }
  const e: ListEntry = {
    address: address as string,
    id: id as Bytes,
    status: PRESENCE_STATUSES[status as number],
  };
  if (note !== undefined) e.note = note as string;
  return e;
}

function readResponse(r: CborReader): RelayResponse {
  const rid = r.uint(1, MAX_REQUEST_ID);
  const code = r.uint(2, 0xffff);
  // An unknown status from a newer relay is still a refusal, reported as such.
  const status: RelayStatus = RELAY_STATUSES[code] ?? "unavailable";
  const out: RelayResponse = { rid, status };
  const id = r.optBytes(3, ID_BYTES);
  if (id) out.id = id;
  const card = r.optBytes(4, { min: 1, max: MAX_CARD_SIZE });
  if (card) out.card = card;
  if (r.has(5)) out.entries = r.array(5, MAX_LIST_ENTRIES).map(readListEntry);
  const count = r.optUint(6);
  if (count !== undefined) out.count = count;
  if (r.has(7)) {
    const stats = r.raw(7);
    if (!(stats instanceof Map) || stats.size > MAX_STATS) fail("field 7: expected a small map");
    out.stats = {};
    for (const [k, v] of stats as Map<unknown, unknown>) {
      if (typeof k !== "string" || k.length > 64 || typeof v !== "number" || v < 0) {
        fail("field 7: expected text keys and counts");
      }
      out.stats[k as string] = v as number;
    }
  }
  const detail = r.optText(8, MAX_DETAIL);
  if (detail !== undefined) out.detail = detail;
  const presence = r.optUint(9, PRESENCE_STATUSES.length - 1);
  if (presence !== undefined) out.presence = PRESENCE_STATUSES[presence];
  const prekeys = r.optBytes(10, { min: 1, max: MAX_PREKEY_BUNDLE });
  if (prekeys) out.prekeys = prekeys;
  return out;
}

function readDelivery(r: CborReader, maxEnvelope: number): RelayDelivery {
  return {
    message: r.uint(1),
    senderId: r.bytes(3, ID_BYTES),
    sender: r.text(4, MAX_ADDRESS_LENGTH),
    envelope: r.bytes(5, { min: 1, max: maxEnvelope }),
    enqueued: r.uint(6),
  };
}

function readReceipt(r: CborReader, size: number): RelayReceipt {
  if (size > MAX_RELAY_RECEIPT) {
    throw new MissiveError(
      "too-large",
      `relay message: a receipt of ${size} bytes exceeds ${MAX_RELAY_RECEIPT}`,
    );
  }
  return {
    id: r.uint(1),
    message: r.uint(2),
    recipientId: r.bytes(3, ID_BYTES),
    recipient: r.text(4, MAX_ADDRESS_LENGTH),
    status: RECEIPT_STATUSES[r.uint(5, RECEIPT_STATUSES.length - 1)],
    acknowledged: r.uint(6),
  };
}

/**
 * Decodes one relay message. Throws `too-large` before decoding anything larger than
 * `MAX_RELAY_MESSAGE`, `malformed` for anything not in the shape of SPEC §23.
 */
export function decodeRelayMessage(
  bytes: Uint8Array,
  maxEnvelope = MAX_RELAY_ENVELOPE,
  inBundle = false,
): RelayMessage {
  if (bytes.length > MAX_RELAY_MESSAGE) {
    throw new MissiveError("too-large", `relay message: larger than ${MAX_RELAY_MESSAGE} bytes`);
  }
  const value = decodeCbor(bytes, "relay message");
  const r = CborReader.from(value, "relay message");
  const kind = r.uint(0, 0xff);
  switch (kind) {
    case KIND.request:
      return {
        kind: "request",
        rid: r.uint(1, MAX_REQUEST_ID),
        request: readRequest(r, maxEnvelope),
      };
    case KIND.response:
      return { kind: "response", response: readResponse(r) };
    case KIND.delivery:
      return { kind: "delivery", delivery: readDelivery(r, maxEnvelope) };
    case KIND.receipt:
      return { kind: "receipt", receipt: readReceipt(r, bytes.length) };
    case KIND.bundle: {
      if (inBundle) fail("bundles do not nest");
      const items = r.array(1, MAX_BUNDLE);
      if (items.length === 0) fail("empty bundle");
      return {
        kind: "bundle",
        messages: items.map((item) => {
          if (!(item instanceof Uint8Array)) fail("bundle items must be byte strings");
          return decodeRelayMessage(item as Uint8Array, maxEnvelope, true);
        }),
      };
    }
  }
  return fail(`unknown kind ${kind}`);
}

/** The messages one received session message carries: itself, or a bundle's contents. */
export function decodeRelayMessages(
  bytes: Uint8Array,
  maxEnvelope = MAX_RELAY_ENVELOPE,
): RelayMessage[] {
  const m = decodeRelayMessage(bytes, maxEnvelope);
  return m.kind === "bundle" ? m.messages : [m];
}
