/**
 * The checks a received frame passes before the machine acts on it (SPEC §22.6): which
 * keys a sealed frame's key ID names, whether a signed frame is acceptable now, the TTL,
 * and the error for an unexpected type. Pure functions of the state. Internal.
 * @module
 */
import { equalBytes, toHex } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import type { Role, SessionCipher } from "./_cipher.ts";
import { establishedOf, EXPECTED, type SessionState, type State } from "./_state.ts";
import { type Frame, MessageType, messageTypeName, type SealedFrame } from "./messages.ts";

const T = MessageType;

/** The error for a message type the state does not expect: the session ends. */
export function unexpected(type: MessageType, state: SessionState): MissiveError {
  return new MissiveError(
    "session",
    `session: unexpected ${messageTypeName(type)} in state ${state}`,
  );
}

/**
 * The keys a sealed frame's key ID names: the current ones, or (a client waiting for a
 * re-key's ACK) the new ones for that ACK alone; an old or unknown ID ends the session.
 */
export function receiveCipher(s: State, frame: SealedFrame): SessionCipher {
  let current: SessionCipher | undefined;
  let next: SessionCipher | undefined;
  if (s.name === "await-ack") current = s.cipher;
  else {
    const e = establishedOf(s);
    current = e?.link.cipher;
    if (e?.name === "rekey-await-ack") next = e.next;
  }
  if (current && equalBytes(frame.keyId, current.id)) return current;
  if (next && equalBytes(frame.keyId, next.id)) {
    if (frame.type !== T.ACK) throw unexpected(frame.type, s.name);
    return next;
  }
  throw new MissiveError(
    "session",
    `session: message under an old or unknown session key (key id ${toHex(frame.keyId)})`,
  );
}

/**
 * Whether a signed frame of `type` is acceptable now (SPEC §22.3): the server's only in
 * `await-hello` (HELLO) and `await-ack`, the client's until the server's first sealed
 * frame; a first HELLO / HELLO_ACK only in the state waiting for it.
 */
export function acceptsSigned(role: Role, s: State, type: MessageType): boolean {
  const phase = role === "server"
    ? s.name === "await-hello" || s.name === "await-ack"
    : s.name === "hello-sent" || establishedOf(s)?.link.peerSignedContext !== undefined;
  const wrongHello = (type === T.HELLO && s.name !== "await-hello") ||
    (type === T.HELLO_ACK && s.name !== "hello-sent");
  return phase && !wrongHello && EXPECTED[s.name].includes(type);
}

/** TTL rule (SPEC §22.7): sent further than `ttlMs` from `now`, either way. */
export function isStale(frame: Frame, now: number, ttlMs: number): boolean {
  return Math.abs(now - frame.time) > ttlMs;
}

/** HELLO comes only to the client (a re-key), HELLO_ACK only to the server. */
export function roleExpects(role: Role, type: MessageType): boolean {
  if (type === T.HELLO) return role === "client";
  if (type === T.HELLO_ACK) return role === "server";
  return true;
}
