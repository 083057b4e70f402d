/**
 * `missive chat`'s library (DESIGN §7a, SPEC §27): the model (friends, requests,
 * conversations over the ratchet STP, delivery states, presence), the encrypted history,
 * and the two carriers — a relay, or the LAN with signed announcements and direct
 * sessions. A user interface is a thin view: it calls the model's verbs and shows its
 * events (through the sanitiser: every string in an event may be a peer's).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createIdentity, getCryptoProvider } from "../mod.ts";
 * import { decodeChatMessage, encodeChatMessage } from "./mod.ts";
 * const line = { kind: "text" as const, text: "hi bob" };
 * assert.deepEqual(decodeChatMessage(encodeChatMessage(line)), line);
 * ```
 * @module
 */
export {
  type ChatEvent,
  type ChatLine,
  ChatModel,
  type ChatModelOptions,
  type FriendView,
  MAX_FORWARD,
} from "./model.ts";
export type { FriendState, LineState } from "./_records.ts";
export { History, historyKey } from "./history.ts";
export {
  type Carrier,
  type CarrierSink,
  offlineCarrier,
  type OnlineEntry,
  type Sender,
} from "./carrier.ts";
export { RelayCarrier, type RelayCarrierOptions } from "./relay_carrier.ts";
export {
  LAN_HANDSHAKE_MS,
  LAN_MAX_PER_ADDRESS,
  LAN_MAX_SESSIONS,
  LAN_PREAUTH_FRAME,
  LanCarrier,
  type LanCarrierOptions,
  relayVerdict,
} from "./lan_carrier.ts";
export {
  DEFAULT_LAN_GROUP,
  Discovery,
  type DiscoveryOptions,
  findRelayOnLan,
  type LanPeer,
  parseGroup,
} from "./discovery.ts";
export {
  AnnounceGuard,
  type Announcement,
  decodeDatagram,
  encodeAnnouncement,
  encodeQuery,
} from "./announce.ts";
export {
  CHAT_AMP_TYPE,
  CHAT_AMP_VERSION,
  chatAmp,
  type ChatMessage,
  decodeChatMessage,
  encodeChatMessage,
} from "./wire.ts";
