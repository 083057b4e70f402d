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

export { ERROR_CODES, type ErrorCode, isMissiveError, MissiveError } from "./core/errors.ts";
export {
  type Bytes,
  concatBytes,
  equalBytes,
  fromBase64,
  fromHex,
  randomBytes,
  toBase64,
  toHex,
} from "./core/bytes.ts";
export {
  type CborMap,
  CborReader,
  type CborValue,
  decodeCbor,
  encodeCbor,
  transcript,
} from "./core/cbor.ts";
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
} from "./envelope/mod.ts";
export * from "./keys/mod.ts";
export { Registry } from "./plugin/registry.ts";
export {
  type OpenedMessage,
  openMessage,
  type OpenRequest,
  PostQuantumRequiredError,
  sealMessage,
  type SealRequest,
} from "./plugin/message.ts";
export {
  DEFAULT_LIFETIME_MS,
  DEFAULT_SKEW_MS,
  FileReplayCache,
  MemoryReplayCache,
  type ReplayCache,
  type ReplayOptions,
} from "./plugin/replay.ts";
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
} from "./plugin/types.ts";
export { authStp, builtinStps, defaultRegistry, plainStp, pskStp, simpleStp } from "./stp/mod.ts";
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
/**
 * The relay (SPEC §23): a `RelayServer` over a durable `RelayStore`, served with
 * `serveRelay`; clients connect with `connectRelay` (a session pinning the relay's card)
 * and hand it sealed envelopes; `handleDeliveries` opens what arrives and shows each
 * message once; `OutgoingQueue` keeps what could not be sent yet.
 *
 * @example
 * ```ts
 * import {
 *   connectRelay, createIdentity, getCryptoProvider, RelayServer, RelayStore, serveRelay,
 * } from "./mod.ts";
 * const crypto = await getCryptoProvider();
 * const caps = { stps: [[2, 2]] as const, amps: [[1, 2]] as const };
 * const relayId = await createIdentity(crypto, { address: "relay@example.org", ...caps });
 * const alice = await createIdentity(crypto, { address: "alice@example.org", ...caps });
 * const store = RelayStore.open(":memory:");
 * const server = new RelayServer({ store, crypto, openRegistration: true });
 * const relay = await serveRelay("tcp://127.0.0.1:0", relayId, server);
 * const client = await connectRelay(relay.url, alice, relayId.card);
 * console.log((await client.register()).length); // 16
 * await client.close();
 * await relay.close();
 * ```
 */
export {
  connectRelay,
  type RelayConnectOptions,
  type RunningRelay,
  serveRelay,
} from "./relay/link.ts";
export { type LookupResult, RelayClient, RelayRefusal } from "./relay/client.ts";
export {
  type RelayEvent,
  RelayServer,
  type RelayServerOptions,
  type RelayStats,
} from "./relay/server.ts";
export { RelayStore } from "./relay/store.ts";
export { chooseProtocols, type ProtocolChoice } from "./relay/capabilities.ts";
export {
  type DeliveryOptions,
  flushOutgoing,
  handleDeliveries,
  queueText,
  type ReceivedMessage,
  resendOutgoing,
  sealText,
} from "./relay/mailbox.ts";
export { type ListEntry, type RelayDelivery, type RelayStatus } from "./relay/protocol.ts";
export { type OutgoingMessage, OutgoingQueue } from "./queue/outgoing.ts";
export { SeenMessages } from "./queue/seen.ts";
export {
  configuredPluginPaths,
  importPluginModule,
  loadPlugins,
  type PluginHost,
  pluginHost,
  VERSION,
} from "./plugin/loader.ts";
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
export { openReceipt, ReceiptChannel, sealReceipt, sealWithNonce } from "./messaging/receipts.ts";
export { MessageServer, type ServeOptions } from "./messaging/serve.ts";
