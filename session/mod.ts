/**
 * The live session (STP 5, SPEC §22): mutual authentication, ephemeral X25519, re-keying
 * every N messages, over any `Transport`. `Session.connect` / `Session.accept` make one;
 * `request` / `serveRequests` put request/response on top.
 * @module
 */
export { Session } from "./session.ts";
export type {
  AcceptOptions as SessionAcceptOptions,
  ConnectOptions as SessionConnectOptions,
  SessionEvent,
  SessionOptions,
} from "./options.ts";
export { peerCloseOf } from "./options.ts";
export { type Clock, FakeClock, systemClock } from "./clock.ts";
export { request, serveRequests } from "./request.ts";
export type { SecureChannel } from "./channel.ts";
