/**
 * The live session (STP 5, SPEC §22): mutual authentication, ephemeral X25519 (and, in
 * version 2, the default, a fresh ML-KEM-768 + X25519 encapsulation: SPEC §22.12),
 * re-keying every N messages, over any `Transport`. `Session.connect` /
 * `Session.accept` make one; `request` / `serveRequests` put request/response on top.
 * The types its API names (cards, the crypto provider, errors) are re-exported here.
 * @module
 */
export { Session } from "./session.ts";
export type {
  AcceptOptions as SessionAcceptOptions,
  ConnectOptions as SessionConnectOptions,
  PeerClose,
  SessionEvent,
  SessionKem,
  SessionOptions,
} from "./options.ts";
export { kemOf, peerCloseOf } from "./options.ts";
export type { SessionVersion } from "./messages.ts";
export type { SessionState } from "./_state.ts";
export { type Clock, FakeClock, systemClock, type TimerHandle } from "./clock.ts";
export type { Bytes } from "../core/bytes.ts";
export { ERROR_CODES, type ErrorCode, MissiveError } from "../core/errors.ts";
export type { Card, ProtocolPair } from "../keys/card.ts";
export type {
  AeadAlgorithm,
  AeadKey,
  CryptoProvider,
  HashAlgorithm,
  IncrementalHash,
} from "../crypto/provider.ts";
export { request, serveRequests } from "./request.ts";
export type { SecureChannel } from "./channel.ts";
