/**
 * End-to-end messaging through a relay (SPEC §23.7–23.9): sealing a text for a
 * recipient's card with the best protocols both support, the durable outgoing queue's
 * flush and resend, and handling deliveries — open, show once, acknowledge — and the
 * relay's receipts of messages sent with one asked for (SPEC §23.7.1).
 * @module
 */
import { openFailureStatus, type ReceiptStatus } from "../amp/receipt.ts";
import { type Bytes, equalBytes, utf8 } from "../core/bytes.ts";
import { type ErrorCode, isMissiveError, MissiveError } from "../core/errors.ts";
import { type Card, decodeCard } from "../keys/card.ts";
import type { Identity } from "../keys/identity.ts";
import { getCryptoProvider } from "../crypto/mod.ts";
import type { Registry } from "../plugin/registry.ts";
import { type OpenedMessage, openMessage, sealMessage } from "../plugin/message.ts";
import type { OutgoingMessage, OutgoingQueue } from "../queue/outgoing.ts";
import type { SeenMessages } from "../queue/seen.ts";
import { chooseProtocols } from "./capabilities.ts";
import { type RelayClient, RelayRefusal } from "./client.ts";
import {
  LINK_STATUSES,
  type RelayDelivery,
  type RelayReceipt,
  type RelayStatus,
} from "./protocol.ts";

/** A sealed text and the protocols chosen for it. */
export interface SealedText {
  /** The envelope, binary, ready for `RelayClient.send`. */
  envelope: Bytes;
  /** e.g. "simple/v2 + text/v2". */
  protocols: string;
}

/** Seals `text` from `identity` to `recipient` with the best protocols both support. */
export async function sealText(
  registry: Registry,
  identity: Identity,
  recipient: Card,
  text: string,
): Promise<SealedText> {
  const choice = chooseProtocols(registry, recipient);
  const envelope = await sealMessage({
    registry,
    stp: choice.stp,
    amp: choice.amp,
    message: { text },
    sender: identity,
    recipients: [recipient],
  });
  return { envelope, protocols: choice.label };
}

/** Refusals that retrying will not cure: the message is marked failed. */
const PERMANENT: readonly RelayStatus[] = [
  "unknown-recipient",
  "too-large",
  "malformed",
  "forbidden",
  "not-registered",
  "unknown-op",
];

/** What one flush of the outgoing queue did. */
export interface FlushResult {
  /** Accepted by the relay (and gone from the queue), with the relay message ID. */
  sent: (OutgoingMessage & { mid: number })[];
  /** Refused for good (unknown recipient, too large, …): kept in the queue as failed. */
  failed: (OutgoingMessage & { error: MissiveError })[];
  /** Left for a later attempt (the relay was unreachable or over quota). */
  retry: (OutgoingMessage & { error: MissiveError })[];
}

/**
 * Sends every due message of the queue through `client`, in order. Accepted messages
 * leave the queue; permanent refusals are marked failed; anything else is retried later
 * with back-off. Stops at the first connection failure (the rest stay due).
 */
export async function flushOutgoing(
  client: RelayClient,
  queue: OutgoingQueue,
  now: number = Date.now(),
  options: {
    ignoreBackoff?: boolean;
    /** The queue entry whose send asks the relay for a receipt (SPEC §23.7.1). */
    receiptFor?: number;
  } = {},
): Promise<FlushResult> {
  const result: FlushResult = { sent: [], failed: [], retry: [] };
  // `ignoreBackoff`: every pending message now (a user asked: `missive relay queue`).
  for (const m of queue.due(options.ignoreBackoff ? Number.MAX_SAFE_INTEGER : now)) {
    if (!m.envelope) continue;
    try {
      const mid = await client.send(m.recipient, m.envelope, {
        receipt: m.id === options.receiptFor,
      });
      queue.remove(m.id);
      result.sent.push({ ...m, mid });
    } catch (e) {
      if (!(e instanceof MissiveError)) throw e;
      if (e instanceof RelayRefusal && PERMANENT.includes(e.status)) {
        queue.failed(m.id, e.message);
        result.failed.push({ ...m, error: e });
        continue;
      }
      queue.attempted(m.id, e.message, now);
      result.retry.push({ ...m, error: e });
      // The link is gone (or the relay ended it): stop here.
      if (!(e instanceof RelayRefusal) || LINK_STATUSES.includes(e.status)) break;
    }
  }
  return result;
}

/**
 * Manual resend of a queued message: seals its text afresh (a fresh nonce and
 * timestamp; the recipient's card from the queue's cache) and makes it due now.
 */
export async function resendOutgoing(
  queue: OutgoingQueue,
  id: number,
  registry: Registry,
  identity: Identity,
): Promise<SealedText> {
  const m = queue.get(id);
  if (!m) throw new MissiveError("usage", `no outgoing message ${id} in the queue`);
  const cardBytes = queue.cachedCard(m.recipient);
  if (!cardBytes) {
    throw new MissiveError("key", `no card for ${m.recipient} is cached; look it up first`);
  }
  const card = await decodeCard(await getCryptoProvider(), cardBytes);
  const sealed = await sealText(registry, identity, card, new TextDecoder().decode(m.body));
  queue.resealed(id, sealed.envelope, sealed.protocols);
  return sealed;
}

/** Queues a text for `recipient` (sealed now) and remembers the card. */
export async function queueText(
  queue: OutgoingQueue,
  registry: Registry,
  identity: Identity,
  recipient: Card,
  text: string,
): Promise<{ id: number } & SealedText> {
  const sealed = await sealText(registry, identity, recipient, text);
  queue.cacheCard(recipient.address, recipient.bytes);
  const id = queue.add(recipient.address, utf8(text), sealed.envelope, sealed.protocols);
  return { id, ...sealed };
}

/** A delivered message, opened. */
export interface ReceivedMessage {
  /** The delivery as the relay sent it (its sender fields are the relay's word). */
  delivery: RelayDelivery;
  /** The envelope, opened with the registry and identity of `DeliveryOptions`. */
  opened: OpenedMessage;
  /**
   * The envelope's signature verifies and its signer is the identity the relay's
   * session authenticated as the sender.
   */
  verified: boolean;
}

/** Options of `handleDeliveries`. */
export interface DeliveryOptions {
  /** The protocols deliveries may use; an envelope in any other is rejected. */
  registry: Registry;
  /** The recipient: the identity whose keys open the envelopes. */
  identity: Identity;
  /** The messages shown already: a redelivery found here is acknowledged, not shown. */
  seen: SeenMessages;
  /**
   * Cards the recipient trusts (`openMessage`'s `trusted`: marks a sender trusted, and
   * finds a sender whose card is not attached); default none. Nothing is refused for
   * want of trust here: `opened.sender.trusted` says it.
   */
  trusted?: readonly Card[];
  /** Stop after this many deliveries (shown, duplicate or rejected); default: never. */
  limit?: number;
  /** Stop when no delivery came for this long (ms); default: wait forever. */
  idleMs?: number;
  /** Told about deliveries that could not be opened (they are acknowledged as such). */
  onRejected?: (delivery: RelayDelivery, error: MissiveError) => void;
  /**
   * Told about each receipt (on a link that asked for them, SPEC §23.7.1); it is
   * acknowledged once this returns. Without it receipts are acknowledged unseen.
   */
  onReceipt?: (receipt: RelayReceipt) => void | Promise<void>;
}

/** What `handleDeliveries` did. */
export interface DeliveryCounts {
  /** Messages handed to the handler. */
  shown: number;
  /** Redeliveries of messages shown before: acknowledged, not shown. */
  duplicates: number;
  /** Envelopes that did not open: acknowledged with a failure status, not shown. */
  rejected: number;
  /** Receipts taken (and acknowledged). */
  receipts: number;
  /**
   * Acknowledgements that got no answer (the link failed): the relay redelivers those
   * messages and they are not shown again.
   */
  unacknowledged: number;
}

/** The stream's next item, or "timeout" when none came within `ms` (undefined: no limit). */
async function nextWithin<T>(
  stream: AsyncIterator<T>,
  ms: number | undefined,
): Promise<IteratorResult<T> | "timeout"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"timeout">((resolve) => {
    if (ms !== undefined) timer = setTimeout(() => resolve("timeout"), ms);
  });
  try {
    return await Promise.race([stream.next(), late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Opens each delivery, hands new ones to `handler` and acknowledges them once it
 * returns (a handler that throws stops here, unacknowledged: the relay redelivers).
 * A redelivery of a message already handled — same sender, same inner nonce — is
 * acknowledged without being shown again.
 */
export async function handleDeliveries(
  client: RelayClient,
  options: DeliveryOptions,
  handler: (message: ReceivedMessage) => void | Promise<void>,
): Promise<DeliveryCounts> {
  const counts: DeliveryCounts = {
    shown: 0,
    duplicates: 0,
    rejected: 0,
    receipts: 0,
    unacknowledged: 0,
  };
  const acks: Promise<void>[] = [];
  const ack = (mid: number, receipt?: ReceiptStatus) =>
    acks.push(
      client.ack(mid, receipt).catch((e) => {
        // Already gone (acknowledged on another connection): nothing to do.
        if (e instanceof RelayRefusal && e.status === "unknown-message") return;
        if (!isMissiveError(e)) throw e;
        counts.unacknowledged++;
      }),
    );
  const done = () =>
    options.limit !== undefined &&
    counts.shown + counts.duplicates + counts.rejected + counts.receipts >= options.limit;
  if (done()) return counts;
  const stream = client.incoming();
  for (;;) {
    const next = await nextWithin(stream, options.idleMs);
    if (next === "timeout" || next.done) break;
    if (next.value.kind === "receipt") {
      const receipt = next.value.receipt;
      await options.onReceipt?.(receipt);
      ack(receipt.id);
      counts.receipts++;
      if (done()) break;
      continue;
    }
    const delivery = next.value.delivery;
    let opened: OpenedMessage;
    try {
      opened = await openMessage(delivery.envelope, {
        registry: options.registry,
        identity: options.identity,
        trusted: options.trusted ?? [],
      });
    } catch (e) {
      if (!isMissiveError(e)) throw e;
      options.onRejected?.(delivery, e);
      ack(delivery.message, openFailureStatus(e));
      counts.rejected++;
      if (done()) break;
      continue;
    }
    const signer = opened.sender?.card;
    const senderKey = signer?.id ?? delivery.senderId;
    if (options.seen.has(senderKey, opened.inner.nonce)) {
      ack(delivery.message);
      counts.duplicates++;
    } else {
      const verified = opened.sender?.verified === true && signer !== undefined &&
        equalBytes(signer.id, delivery.senderId);
      await handler({ delivery, opened, verified });
      options.seen.remember(senderKey, opened.inner.nonce);
      ack(delivery.message);
      counts.shown++;
    }
    if (done()) break;
  }
  await Promise.all(acks);
  return counts;
}

/** What a receipt's status means for the sender (SPEC §23.7.1): an error code, or none. */
export function receiptErrorCode(receipt: RelayReceipt): ErrorCode | undefined {
  switch (receipt.status) {
    case "accepted":
      return undefined;
    case "hash-mismatch":
      return "auth-failed";
    case "undecryptable":
      return "not-a-recipient";
    case "unknown-id":
      return "untrusted";
    default:
      return "malformed";
  }
}

/**
 * Waits on a link that asked for receipts (`receive("receipts")`) for the receipt of
 * relay message `message`, acknowledging every receipt it takes; receipts of other
 * messages go to `onOther` first. Resolves undefined when none came within `timeoutMs`
 * (the message stays queued at the relay); rejects when the link fails.
 */
export async function awaitReceipt(
  client: RelayClient,
  message: number,
  options: { timeoutMs: number; onOther?: (r: RelayReceipt) => void | Promise<void> },
): Promise<RelayReceipt | undefined> {
  const stream = client.incoming();
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const next = await nextWithin(stream, Math.max(0, deadline - Date.now()));
    if (next === "timeout") return undefined;
    if (next.done) throw new MissiveError("network", "relay link ended before the receipt");
    if (next.value.kind !== "receipt") continue; // not asked for on this link
    const r = next.value.receipt;
    if (r.message !== message) await options.onOther?.(r);
    await client.ack(r.id).catch((e) => {
      // Taken on another link of ours already: nothing to do.
      if (!(e instanceof RelayRefusal && e.status === "unknown-message")) throw e;
    });
    if (r.message === message) return r;
  }
}
