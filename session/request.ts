/**
 * Request/response on top of a session, for the proposal's sensor-style use
 * (DATA_REQUEST / DATA_RESPONSE are DATA in either direction, SPEC §22.2).
 * @module
 */
import type { Bytes } from "../bytes.ts";
import { MissiveError } from "../errors.ts";
import type { Session } from "./session.ts";

/** Sends `data` and resolves with the peer's next message (the response). */
export async function request(session: Session, data: Uint8Array): Promise<Bytes> {
  await session.send(data);
  const response = await session.receive();
  if (response === undefined) {
    throw new MissiveError("session", "session: closed before the response arrived");
  }
  return response;
}

/**
 * Answers every message with `handler`'s result, in order, until the session ends.
 * Resolves at an orderly close; throws the session's error otherwise.
 */
export async function serveRequests(
  session: Session,
  handler: (request: Bytes) => Uint8Array | Promise<Uint8Array>,
): Promise<void> {
  for (;;) {
    const message = await session.receive();
    if (message === undefined) return;
    await session.send(await handler(message));
  }
}
