/**
 * missive: layered secure messaging. This is the core entry point — errors, bytes, CBOR,
 * the crypto provider, envelopes, keys and cards, the plugin registry with the built-in
 * STPs and AMPs, and the two verbs `sealMessage` and `openMessage` (plus `openAny` for
 * input in any form). It loads no database, no CMS library and no network client: those
 * come with the named entry points `./stream`, `./session`, `./transports`,
 * `./messaging`, `./relay`, `./smime`, `./sign` and `./plugins`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   createIdentity, defaultRegistry, getCryptoProvider, openMessage, sealMessage, simpleV2, textV1,
 * } from "./mod.ts";
 * const crypto = await getCryptoProvider();
 * const caps = { stps: [[2, 2]] as const, amps: [[1, 1]] as const };
 * const alice = await createIdentity(crypto, { address: "alice@example.org", ...caps });
 * const bob = await createIdentity(crypto, { address: "bob@example.org", ...caps });
 * const sealed = await sealMessage({
 *   stp: simpleV2, amp: textV1, message: { text: "hi" }, sender: alice, recipients: [bob.card],
 * });
 * const opened = await openMessage(sealed, {
 *   registry: defaultRegistry(), identity: bob, trusted: [alice.card],
 * });
 * assert.deepEqual(opened.message, { text: "hi" });
 * assert.equal(opened.sender?.address, "alice@example.org");
 * assert.equal(opened.sender?.trusted, true);
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
export { hasUnsafeNameCharacters, type SanitizeOptions, sanitizeText } from "./core/sanitize.ts";
export {
  type AeadAlgorithm,
  type AeadKey,
  type CryptoProvider,
  type Family,
  getCryptoProvider,
  type HashAlgorithm,
  type IncrementalHash,
  nobleProvider,
  type ProviderChoice,
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
  requireTrusted,
  sealMessage,
  type SealRequest,
} from "./plugin/message.ts";
export {
  DEFAULT_LIFETIME_MS,
  DEFAULT_SKEW_MS,
  MemoryReplayCache,
  type ReplayCache,
  type ReplayOptions,
} from "./plugin/replay.ts";
export {
  type AmpCli,
  type AmpPlugin,
  type AmpSummary,
  type AnyStp,
  type CliAmp,
  hasCli,
  hasSummary,
  type Inner,
  type OpenContext,
  type OptionPairs,
  type Plugin,
  type SealContext,
  type SenderInfo,
  type StpFeature,
  type StpOpened,
  type StpPlugin,
  type StpProperties,
} from "./plugin/types.ts";
export {
  authV1,
  builtinStps,
  defaultRegistry,
  groupV1,
  plainV1,
  pskV1,
  pskV2,
  simpleV1,
  simpleV2,
  simpleV3,
} from "./stp/mod.ts";
export { sessionV1 } from "./stp/session.ts";
// The ratchet's conversation API is its own entry point, "./ratchet" (stp/ratchet/mod.ts).
export { RATCHET_TYPE, ratchetV1 } from "./stp/ratchet/mod.ts";
// age files beyond the STP (keys, recipients, bare files) are the entry point "./age".
export {
  AGE_TYPE,
  type AgeIdentity,
  type AgeKind,
  type AgeOptions,
  type AgeRecipient,
  ageV1,
  type AgeWrapContext,
  type Stanza,
} from "./stp/age/mod.ts";
export {
  type BareFernetRequest,
  type FernetOpened,
  openBareFernet,
  parsePskOptions,
  type PskOptions,
  sealBareFernet,
} from "./stp/psk/mod.ts";
export {
  builtinAmps,
  type Control,
  CONTROL_ACTIONS,
  type ControlAction,
  controlV1,
  type FileMessage,
  fileV1,
  type Notification,
  notificationV1,
  type Presence,
  PRESENCE_STATUSES,
  type PresenceStatus,
  presenceV1,
  type Receipt,
  RECEIPT_STATUSES,
  type ReceiptStatus,
  receiptV1,
  type StreamDescriptor,
  streamV1,
  type TextMessage,
  textV1,
  textV2,
} from "./amp/mod.ts";
export {
  detectForm,
  type InputForm,
  openAny,
  type OpenAnyRequest,
  type OpenAnyResult,
} from "./messaging/open.ts";
// Stream types that `openAny`'s request and result name (the stream functions are in ./stream).
export type { ByteSink, ByteSource, OpenedStreamHeader, OpenStreamResult } from "./stream/mod.ts";
