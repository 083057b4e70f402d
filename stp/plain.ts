/**
 * `plain` STP, type 7, version 1 (SPEC §7): no protection at all. For tests and
 * receipts only; every open carries an "insecure" warning and no sender is verified.
 * @module
 */
import { CborReader, type CborValue, decodeCbor, encodeCbor } from "../core/cbor.ts";
import type { Inner, StpPlugin } from "../plugin/types.ts";

/** STP type number of `plain`. */
export const PLAIN_TYPE = 7;

/** The `plain` STP. */
export const plainV1: StpPlugin = {
  kind: "stp",
  type: PLAIN_TYPE,
  version: 1,
  name: "plain",
  description: "INSECURE: no encryption, no authentication (tests, receipts)",
  properties: {
    confidentiality: false,
    authentication: "none",
    nonRepudiation: false,
    forwardSecrecy: false,
    multiRecipient: false,
    hiddenRecipients: false,
  },
  seal(inner, ctx) {
    const m = new Map<number, CborValue>([
      [1, inner.nonce],
      [2, inner.timestamp],
      [3, inner.ampType],
      [4, inner.ampVersion],
      [5, inner.body],
    ]);
    const sender = ctx.sender?.card.address ?? inner.sender;
    if (sender !== undefined) m.set(6, sender);
    if (inner.destination !== undefined) m.set(7, inner.destination);
    return Promise.resolve(encodeCbor(m));
  },
  open(payload) {
    // Receivers ignore unknown fields here: nothing is authenticated anyway (STYLE §17).
    const r = CborReader.from(decodeCbor(payload, "plain payload"), "plain payload");
    const inner: Inner = {
      nonce: r.bytes(1, 16),
      timestamp: r.uint(2),
      ampType: r.uint(3, 0xffff),
      ampVersion: r.uint(4, 0xffff),
      body: r.bytes(5),
      sender: r.optText(6, 254),
      destination: r.optText(7, 254),
    };
    return Promise.resolve({
      inner,
      sender: inner.sender === undefined ? undefined : { address: inner.sender, verified: false },
      warnings: ["INSECURE: plain STP: not encrypted, sender not authenticated"],
    });
  },
};
