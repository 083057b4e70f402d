/**
 * missive: layered secure messaging. The public library API; anything not exported
 * here is internal.
 *
 * @example
 * ```ts
 * import { createIdentity, defaultRegistry, getCryptoProvider, openMessage, sealMessage } from "./mod.ts";
 * const crypto = await getCryptoProvider();
 * const registry = defaultRegistry();
 * const caps = { stps: [[2, 2]] as const, amps: [[1, 1]] as const };
 * const alice = await createIdentity(crypto, { address: "alice@example.org", ...caps });
 * const bob = await createIdentity(crypto, { address: "bob@example.org", ...caps });
 * const sealed = await sealMessage({
 *   stp: registry.find("stp", "simple"), amp: registry.find("amp", "text"),
 *   message: { text: "hi" }, sender: alice, recipients: [bob.card],
 * });
 * const { message, sender } = await openMessage(registry, sealed, { identity: bob });
 * console.log(message, sender?.address); // { text: "hi" } alice@example.org
 * ```
 * @module
 */
import { builtinAmps } from "./amp/mod.ts";
import { Registry } from "./registry.ts";
import { builtinStps } from "./stp/mod.ts";

export { ERROR_CODES, type ErrorCode, isMissiveError, MissiveError } from "./errors.ts";
export {
  type Bytes,
  concatBytes,
  equalBytes,
  fromBase64,
  fromHex,
  randomBytes,
  toBase64,
  toHex,
} from "./bytes.ts";
export {
  type CborMap,
  CborReader,
  type CborValue,
  decodeCbor,
  encodeCbor,
  transcript,
} from "./cbor.ts";
export {
  type AeadAlgorithm,
  type CryptoProvider,
  getCryptoProvider,
  nobleProvider,
  providerChoice,
  webcryptoProvider,
} from "./crypto/mod.ts";
export {
  armor,
  dearmor,
  decodeEnvelope,
  encodeEnvelope,
  type Envelope,
  type EnvelopeHeader,
  fromLine,
  MAX_ENVELOPE_SIZE,
  toLine,
  unwrapAnyForm,
} from "./envelope.ts";
export * from "./keys/mod.ts";
export {
  type OpenedMessage,
  openMessage,
  type OpenRequest,
  Registry,
  sealMessage,
  type SealRequest,
} from "./registry.ts";
export {
  DEFAULT_LIFETIME_MS,
  DEFAULT_SKEW_MS,
  FileReplayCache,
  MemoryReplayCache,
  type ReplayCache,
  type ReplayOptions,
} from "./replay.ts";
export type {
  AmpPlugin,
  Inner,
  OpenContext,
  Plugin,
  SealContext,
  SenderInfo,
  StpOpened,
  StpPlugin,
  StpProperties,
} from "./types.ts";
export { authStp, builtinStps, plainStp, pskStp, simpleStp } from "./stp/mod.ts";
export { openBareFernet, sealBareFernet } from "./stp/psk/mod.ts";
// X.509 S/MIME (SPEC §14): not in defaultRegistry(); add it with registry.register(smimeStp).
export { SMIME_TYPE, smimeStp } from "./stp/smime/mod.ts";
export {
  builtinAmps,
  type Notification,
  notificationV1,
  type TextMessage,
  textV1,
  textV2,
} from "./amp/mod.ts";
export {
  type Control,
  type ControlAction,
  controlV1,
  type FileMessage,
  fileV1,
  type Presence,
  type PresenceStatus,
  presenceV1,
  type Receipt,
  type ReceiptStatus,
  receiptV1,
} from "./amp/mod.ts";
export {
  configuredPluginPaths,
  importPluginModule,
  loadPlugins,
  type PluginHost,
  pluginHost,
  VERSION,
} from "./loader.ts";
// Streams (SPEC §20): seal and open any size in constant memory.
export type { AeadKey } from "./crypto/mod.ts";
export { type StreamDescriptor, streamV1 } from "./amp/mod.ts";
export {
  type ByteSink,
  type ByteSource,
  bytesSource,
  fdSink,
  fdSource,
  iterableSource,
  memorySink,
  openStream,
  type OpenStreamRequest,
  type OpenStreamResult,
  sealStream,
  type SealStreamRequest,
  type SealStreamResult,
  StreamError,
} from "./stream/mod.ts";
// The live session (SPEC §22) and the in-memory transport pair.
export { Session } from "./session/session.ts";
export type {
  AcceptOptions as SessionAcceptOptions,
  ConnectOptions as SessionConnectOptions,
  SessionEvent,
  SessionOptions,
} from "./session/options.ts";
export { type Clock, FakeClock, systemClock } from "./session/clock.ts";
export { request, serveRequests } from "./session/request.ts";
export type { SecureChannel } from "./session/channel.ts";
export { sessionStp } from "./stp/session.ts";
export { type MemoryTransportOptions, memoryTransportPair } from "./transports/memory.ts";

/**
 * A registry holding every built-in STP and AMP.
 *
 * @example
 * ```ts
 * import { defaultRegistry } from "./mod.ts";
 * const { stps } = defaultRegistry().list();
 * console.log(stps.map((p) => `${p.name}/v${p.version}`).join(" ")); // simple/v1 simple/v2 auth/v1 plain/v1
 * ```
 */
export function defaultRegistry(): Registry {
  return new Registry().register(...builtinStps(), ...builtinAmps());
}
// Transports and the receipt exchange of send/listen (SPEC §21).
export {
  connect,
  type ConnectOptions,
  listen,
  type Listener,
  type ListenOptions,
  parseTransportUrl,
  type Transport,
  type TransportAddress,
} from "./transports/mod.ts";
export { openReceipt, ReceiptChannel, sealReceipt, sealWithNonce } from "./transports/receipts.ts";
export { MessageServer, type ServeOptions } from "./transports/serve.ts";
