/**
 * What carries a chat's envelopes: a relay (store and forward, directory, presence) or
 * the LAN (signed announcements, direct sessions). The model (chat/model.ts) knows only
 * this interface; both carriers authenticate who sent what they hand over (the relay's
 * session, or the direct session's proven card).
 * @module
 */
import type { Bytes } from "../core/bytes.ts";
import type { PresenceStatus } from "../amp/presence.ts";
import type { ReceiptStatus } from "../amp/receipt.ts";
import type { Card } from "../keys/card.ts";
import { MissiveError } from "../core/errors.ts";

/** Who sent an envelope, as the carrier authenticated it. */
export interface Sender {
  address: string;
  /** The sender's identity ID (the relay's delivery key 3; a direct session's card). */
  id: Bytes;
}

/** Someone online: a user (relay directory or LAN peer) or a relay found on the LAN. */
export interface OnlineEntry {
  address: string;
  status: PresenceStatus;
  note?: string;
  kind: "user" | "relay";
  /** Where it was found (LAN: host and port). */
  where?: string;
}

/** What a carrier tells the model. */
export interface CarrierSink {
  /** An envelope from `from`; resolves with the receipt status to acknowledge it with. */
  envelope(from: Sender, envelope: Bytes): Promise<ReceiptStatus>;
  /** The link came up or went down (relay), with words for people. */
  link(up: boolean, detail: string): void;
  /** A peer became reachable (LAN): its queued envelopes may go now. */
  reachable(address: string): void;
  /** Bad input or a failure that did not stop the carrier, with the reason. */
  problem(reason: string): void;
  /** Something worth a line for people (a relay found on the LAN). */
  notice(text: string): void;
}

/** A relay or the LAN. */
export interface Carrier {
  /** For people: "relay tcp://127.0.0.1:7900", "LAN 239.255.77.77:7901". */
  readonly name: string;
  start(sink: CarrierSink): Promise<void>;
  /** The card of a user (relay directory; LAN: a verified announcement). */
  lookup(address: string): Promise<Card>;
  /**
   * Hands an envelope on; resolves once the relay stored it (or the peer's session
   * acknowledged it). `network` / `timeout` when it cannot now (retried later); other
   * codes are final (`refused`: unknown recipient…).
   */
  send(address: string, envelope: Bytes): Promise<void>;
  /** Who is online and visible now. */
  list(): Promise<OnlineEntry[]>;
  /** Our presence (invisible: not listed, not announced). */
  setPresence(status: PresenceStatus): Promise<void>;
  close(): Promise<void>;
}

/** A carrier with no network (for `--export` and tests): every call is refused. */
export function offlineCarrier(): Carrier {
  const no = () => Promise.reject(new MissiveError("network", "chat: offline"));
  return {
    name: "offline",
    start: () => Promise.resolve(),
    lookup: no,
    send: no,
    list: () => Promise.resolve([]),
    setPresence: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
}
