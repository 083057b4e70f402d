/**
 * The inner plaintext map both psk versions encrypt (SPEC §13): `{1: nonce, 2: timestamp,
 * 3: ampType, 4: ampVersion, 5: body, 6?: sender label}`; v2 appends the envelope header.
 * @module
 */
import type { CborReader, CborValue } from "../../core/cbor.ts";
import { MissiveError } from "../../core/errors.ts";
import type { Inner, StpOpened } from "../../plugin/types.ts";
import type { PskOptions } from "./_key.ts";

const MESSAGE_NONCE_BYTES = 16;
const MAX_SENDER_CHARS = 254;

/** Fields 1–6 of the inner map; the sender label comes from option `sender` or the inner. */
export function innerFields(
  inner: Inner,
  options: PskOptions,
  name: string,
): Map<number, CborValue> {
  const sender = options.sender ?? inner.sender;
  if (sender !== undefined && (sender === "" || sender.length > MAX_SENDER_CHARS)) {
    throw new MissiveError("usage", `${name}: sender label must be 1..${MAX_SENDER_CHARS} chars`);
  }
  const plain = new Map<number, CborValue>([
    [1, inner.nonce],
    [2, inner.timestamp],
    [3, inner.ampType],
    [4, inner.ampVersion],
    [5, inner.body],
  ]);
  if (sender !== undefined) plain.set(6, sender);
  return plain;
}

/** Reads fields 1–5 of a decrypted inner map. */
export function readInner(p: CborReader): Inner {
  return {
    nonce: p.bytes(1, MESSAGE_NONCE_BYTES),
    timestamp: p.uint(2),
    ampType: p.uint(3, 0xffff),
    ampVersion: p.uint(4, 0xffff),
    body: p.bytes(5),
  };
}

/** The opened result: the sender label (field 6), never verified, and the shared-secret warning. */
export function openedWithLabel(inner: Inner, p: CborReader, warning: string): StpOpened {
  const warnings = [warning];
  if (!p.has(6)) return { inner, warnings };
  inner.sender = p.text(6, MAX_SENDER_CHARS);
  return { inner, sender: { address: inner.sender, verified: false }, warnings };
}
