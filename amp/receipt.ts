/**
 * `receipt` AMP, type 3, version 1 (SPEC §14): what became of a message, named by its
 * nonce (the 16-byte inner nonce of SPEC §5.3). CBOR `{1: nonce, 2: status, 3?: detail}`;
 * the status codes are S2WMP's: 0 accepted, 1 unknown id, 2 hash mismatch,
 * 3 unparsable, 4 undecryptable.
 * @module
 */
import { fromHex, toHex, utf8 } from "../core/bytes.ts";
import { CborReader, decodeCbor, encodeCbor } from "../core/cbor.ts";
import { MissiveError } from "../core/errors.ts";
import { requireFieldsOnly } from "./_fields.ts";
import type { CliAmp } from "../plugin/types.ts";

/** AMP type number of `receipt`. */
export const RECEIPT_TYPE = 3;
/** Receipt statuses; a status is written as its index here (SPEC §14). */
export const RECEIPT_STATUSES = [
  "accepted",
  "unknown-id",
  "hash-mismatch",
  "unparsable",
  "undecryptable",
] as const;
/** What the receiver did with the referenced message. */
export type ReceiptStatus = (typeof RECEIPT_STATUSES)[number];
/**
 * The receipt status for a message whose envelope failed to open with `error`: what a
 * relay client acknowledges it with (SPEC §23.7), and the chat likewise —
 * `hash-mismatch` for `auth-failed`, `undecryptable` for `not-a-recipient` and `key`,
 * `unparsable` for any other code. A listener's signed receipt maps differently
 * (SPEC §21.5, `receiptStatusFor` in messaging/).
 */
export function openFailureStatus(error: MissiveError): ReceiptStatus {
  switch (error.code) {
    case "auth-failed":
      return "hash-mismatch";
    case "not-a-recipient":
    case "key":
      return "undecryptable";
    default:
      return "unparsable";
  }
}

/** Length of the nonce a receipt refers to (every STP's inner nonce). */
const NONCE_BYTES = 16;
const MAX_DETAIL = 1024;
/** The `--field` names fromInput takes. */
const FIELDS = ["nonce", "status", "detail"];

/** A receipt for the message whose inner nonce is `nonce`. */
export interface Receipt {
  /** The 16-byte inner nonce of the message the receipt is about. */
  nonce: Uint8Array;
  /** What the receiver did with it; one of `RECEIPT_STATUSES`. */
  status: ReceiptStatus;
  /** Free text for people, e.g. why a message was unparsable. */
  detail?: string;
}

function check(m: Receipt): Receipt {
  const bad = (why: string): never => {
    throw new MissiveError("usage", `receipt: ${why}`);
  };
  if (!(m.nonce instanceof Uint8Array) || m.nonce.length !== NONCE_BYTES) {
    bad(`nonce must be ${NONCE_BYTES} bytes`);
  }
  if (!RECEIPT_STATUSES.includes(m.status)) {
    bad(`status must be one of ${RECEIPT_STATUSES.join(", ")}`);
  }
  if (m.detail !== undefined && (typeof m.detail !== "string" || m.detail.length > MAX_DETAIL)) {
    bad(`detail must be text of at most ${MAX_DETAIL} characters`);
  }
  return m;
}

/** `receipt` v1. */
export const receiptV1: CliAmp<Receipt> = {
  kind: "amp",
  type: RECEIPT_TYPE,
  version: 1,
  name: "receipt",
  description: "delivery receipt: the message's nonce and a status (S2WMP codes 0-4)",
  encode(m) {
    check(m);
    const map = new Map<number, Uint8Array | number | string>([
      [1, m.nonce],
      [2, RECEIPT_STATUSES.indexOf(m.status)],
    ]);
    if (m.detail !== undefined) map.set(3, m.detail);
    return encodeCbor(map);
  },
  decode(bytes) {
    const r = CborReader.from(decodeCbor(bytes, "receipt"), "receipt").onlyKeys([1, 2, 3]);
    const m: Receipt = {
      nonce: r.bytes(1, NONCE_BYTES),
      status: RECEIPT_STATUSES[r.uint(2, RECEIPT_STATUSES.length - 1)],
    };
    const detail = r.optText(3, MAX_DETAIL);
    if (detail !== undefined) m.detail = detail;
    return m;
  },
  fromInput(input, fields) {
    requireFieldsOnly(
      "receipt",
      input,
      fields,
      FIELDS,
      "give --field nonce=HEX --field status=NAME [--field detail=TEXT]",
    );
    const nonce = fromHex(fields.nonce ?? "");
    if (!nonce || nonce.length !== NONCE_BYTES) {
      throw new MissiveError(
        "usage",
        `receipt: --field nonce= must be the ${NONCE_BYTES}-byte nonce in hex`,
      );
    }
    return check({
      nonce,
      status: (fields.status ?? "") as ReceiptStatus,
      ...(fields.detail !== undefined ? { detail: fields.detail } : {}),
    });
  },
  toOutput: (m) =>
    utf8(`receipt for ${toHex(m.nonce)}: ${m.status}${m.detail ? ` (${m.detail})` : ""}\n`),
  toJson: (m) => ({
    nonce: toHex(m.nonce),
    status: m.status,
    ...(m.detail !== undefined ? { detail: m.detail } : {}),
  }),
};
