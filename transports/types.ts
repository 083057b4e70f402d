/**
 * The transport contract (DESIGN §3, §8): a transport moves opaque frames (envelopes)
 * and knows nothing of what is inside them.
 * @module
 */

/** A bidirectional channel of frames to one peer. */
export interface Transport {
  /** Where the frames go, for logs and messages (e.g. `tcp://127.0.0.1:7700`). */
  readonly remote: string;
  /**
   * Sends one frame. Resolves once the transport has taken it (TCP: written to the
   * socket, respecting back-pressure; SIP: a final 2xx response arrived). Throws a
   * MissiveError (`network`, `timeout`, `too-large`) otherwise.
   */
  send(frame: Uint8Array): Promise<void>;
  /**
   * The frames the peer sends, in order, each at most the transport's frame cap. Ends
   * when the peer closes; throws a MissiveError when the stream breaks or a frame is
   * malformed (a listener logs it and drops that peer, it does not crash).
   */
  frames(): AsyncIterable<Uint8Array>;
  /** Closes the channel; idempotent. */
  close(): Promise<void>;
}

/** The server side of a transport: one Transport per connecting peer. */
export interface Listener {
  /** The address actually bound (with the real port when 0 was asked for). */
  readonly url: string;
  /** Each new peer (a TCP connection; a SIP peer's first MESSAGE). */
  connections(): AsyncIterable<Transport>;
  /** Stops accepting and closes every open connection; idempotent. */
  close(): Promise<void>;
}

/** A transport's receiving limits (SPEC §21.2, §21.4). */
export interface TransportLimits {
  /** Largest frame accepted from the peer, bytes. */
  maxFrame: number;
  /** Bytes of received frames queued before reading pauses. */
  queueBytes: number;
}

/**
 * Optional capability: limits that change while the transport runs, and an immediate
 * cut. A relay holds a peer to a small frame cap and read budget until the peer has
 * authenticated (SPEC §23.12), then raises them; it drops a hostile peer without waiting
 * for a FIN exchange the peer may never complete. `TcpTransport` has it.
 */
export interface TransportControl {
  readonly limits: TransportLimits;
  setLimits(limits: Partial<TransportLimits>): void;
  /** Cuts the connection now; frames not yet read are dropped. */
  abort(reason?: string): void;
}

/** Whether `t` offers TransportControl. */
export function hasControl(t: Transport): t is Transport & TransportControl {
  const c = t as Partial<TransportControl>;
  return typeof c.setLimits === "function" && typeof c.abort === "function";
}
