/**
 * The relay (SPEC §23): a `RelayServer` over a durable store — `RelayStore` (SQLite) or
 * any `RelayStorage`, such as the NATS JetStream store of docs/SCALE.md — served with
 * `serveRelay`; clients connect with `connectRelay` (a session pinning the relay's card)
 * and hand it sealed envelopes; `handleDeliveries` opens what arrives and shows each
 * message once; `OutgoingQueue` keeps what could not be sent yet. This entry point loads
 * `node:sqlite`; the core (`mod.ts`) does not.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createIdentity, getCryptoProvider } from "../mod.ts";
 * import { connectRelay, RelayServer, RelayStore, serveRelay } from "./mod.ts";
 * const crypto = await getCryptoProvider();
 * const caps = { stps: [[2, 2]] as const, amps: [[1, 2]] as const };
 * const relayId = await createIdentity(crypto, { address: "relay@example.org", ...caps });
 * const alice = await createIdentity(crypto, { address: "alice@example.org", ...caps });
 * const store = RelayStore.open(":memory:");
 * const server = new RelayServer({ store, crypto, openRegistration: true });
 * const relay = await serveRelay("tcp://127.0.0.1:0", relayId, server);
 * const client = await connectRelay(relay.url, alice, relayId.card);
 * assert.deepEqual(await client.register(), alice.card.id);
 * await client.close();
 * await relay.close();
 * ```
 * @module
 */
export {
  connectRelay,
  type RelayConnectOptions,
  type RunningRelay,
  serveRelay,
  type ServeRelayOptions,
} from "./link.ts";
export type { LinkLimits, RelayLimits } from "./limits.ts";
export { type Incoming, type LookupResult, RelayClient, RelayRefusal } from "./client.ts";
export {
  type LinkInfo,
  type RelayEvent,
  RelayServer,
  type RelayServerOptions,
  type RelayStats,
} from "./server.ts";
export { RelayStore } from "./store.ts";
export {
  type Acknowledgement,
  type AckOutcome,
  type NewMessage,
  type OnlineBoard,
  type PutCardResult,
  type QueuedMessage,
  type QueueUsage,
  type QueueWatch,
  RECEIPT_COST,
  type ReceiptLimits,
  type RelayStorage,
  type SharedDirectory,
  type StoredCard,
  type StoredReceipt,
  StoreRefusal,
} from "./storage.ts";
export { chooseProtocols, type ProtocolChoice } from "./capabilities.ts";
export {
  awaitReceipt,
  type DeliveryCounts,
  type DeliveryOptions,
  flushOutgoing,
  type FlushResult,
  handleDeliveries,
  queueText,
  receiptErrorCode,
  type ReceivedMessage,
  resendOutgoing,
  type SealedText,
  sealText,
} from "./mailbox.ts";
export {
  type ListEntry,
  RECEIVE_MODES,
  type ReceiveMode,
  RELAY_STATUSES,
  type RelayDelivery,
  type RelayReceipt,
  type RelayStatus,
  type Target,
} from "./protocol.ts";
export { type OutgoingMessage, OutgoingQueue } from "../queue/outgoing.ts";
export { SeenMessages } from "../queue/seen.ts";
