/**
 * Request/response on top of a session, for the proposal's sensor-style use
 * (DATA_REQUEST / DATA_RESPONSE are DATA in either direction, SPEC §22.2).
 * @module
 */
import type { Bytes } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import type { Session } from "./session.ts";

/**
 * Sends `data` and resolves with the peer's next message (the response).
 *
 * @example
 * ```ts
 * import { createIdentity, getCryptoProvider } from "../mod.ts";
 * import { request, serveRequests } from "./request.ts";
 * import { Session } from "./session.ts";
 * import { memoryTransportPair } from "../transports/memory.ts";
 * const crypto = await getCryptoProvider();
 * const caps = { stps: [[5, 1]] as const, amps: [] };
 * const sensor = await createIdentity(crypto, { address: "sensor@example.org", ...caps });
 * const hub = await createIdentity(crypto, { address: "hub@example.org", ...caps });
 * const [a, b] = memoryTransportPair();
 * const [client, server] = await Promise.all([
 *   Session.connect(a, hub, { peer: sensor.card }),
 *   Session.accept(b, sensor, { trusted: [hub.card] }),
 * ]);
 * const served = serveRequests(server, () => new TextEncoder().encode("21.5 C"));
 * const answer = await request(client, new TextEncoder().encode("temperature?"));
 * console.log(new TextDecoder().decode(answer)); // 21.5 C
 * await client.close();
 * await served;
 * ```
 */
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
