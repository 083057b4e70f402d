/**
 * How a session ends (SPEC §22.9): the errors a peer's CLOSE maps to, the `close` event,
 * and the erasure of every key a state still holds. Internal to the session.
 * @module
 */
import { type Bytes, wipe } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import type { Ephemeral } from "./_handshake.ts";
import type { State } from "./_state.ts";
import { type CloseBody, encodeCloseBody, MAX_CLOSE_TEXT } from "./messages.ts";
import {
  codeForReason,
  type PeerClose,
  REASON_NORMAL,
  reasonFor,
  type SessionEvent,
} from "./options.ts";

/** How a session ended, for the `close` event. */
export interface CloseInfo {
  by: "local" | "peer";
  reason?: number;
  text?: string;
  acknowledged: boolean;
}

/** A CLOSE / CLOSED_WITHOUT_ACK body; the text is cut to its cap. */
export function closeBody(reason: number, text: string): Bytes {
  return encodeCloseBody({ reason, text: text.slice(0, MAX_CLOSE_TEXT) });
}

/** The error a verified CLOSE from the peer ends the session with (none for reason 0). */
export function peerCloseError(c: CloseBody): MissiveError | undefined {
  if (c.reason === REASON_NORMAL) return undefined;
  return new MissiveError(
    codeForReason(c.reason),
    `session: the peer closed the session (reason ${c.reason}): ${c.text}`,
    { cause: { by: "peer", reason: c.reason, text: c.text } satisfies PeerClose },
  );
}

/** A signed CLOSE before HELLO_ACK that no acceptable server card verifies. */
export function unverifiedCloseError(c: CloseBody): MissiveError {
  return new MissiveError(
    codeForReason(c.reason),
    `session: the server closed the handshake (unverified CLOSE, reason ${c.reason}): ${c.text}`,
  );
}

/** The `close` event of a session that ended with `error` (none: in order). */
export function closeEvent(error: MissiveError | undefined, close?: CloseInfo): SessionEvent {
  return {
    type: "close",
    by: close?.by ?? "local",
    reason: close?.reason ?? (error ? reasonFor(error) : REASON_NORMAL),
    text: close?.text ?? error?.message ?? "closed",
    acknowledged: close?.acknowledged ?? false,
  };
}

/** Erases every key a state holds (best effort: ephemeral keys made ahead included). */
export function eraseState(s: State): void {
  switch (s.name) {
    case "hello-sent":
      wipe(s.hs.kemSeed);
      return wipe(s.hs.eph?.privateKey);
    case "await-hello":
      return dropEphemeral(s.ephemeral);
    case "await-ack":
      return s.cipher.erase();
    case "closing":
      return eraseState(s.during);
    case "open":
    case "rekey-hello-sent":
    case "rekey-await-ack":
      s.link.cipher.erase();
      dropEphemeral(s.link.nextEphemeral);
      if (s.name === "rekey-hello-sent") {
        wipe(s.hs.eph?.privateKey);
        wipe(s.hs.kemSeed);
      }
      if (s.name === "rekey-await-ack") s.next.erase();
      return;
  }
}

function dropEphemeral(made?: Promise<Ephemeral>): void {
  void made?.then((eph) => wipe(eph.privateKey), () => {});
}
