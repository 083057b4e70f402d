/**
 * The timer and close rules (SPEC §22.7): no expected message within the idle time →
 * RESEND_LAST, at most `maxResends`, then CLOSE; a broken rule → CLOSE with the error's
 * reason; CLOSE re-sent until CLOSE_ACK, then CLOSED_WITHOUT_ACK; and what a CLOSE from
 * the peer ends with. Internal to the session (core.ts).
 * @module
 */
import type { Bytes } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import type { TimerHandle } from "./clock.ts";
import type { SessionCore } from "./core.ts";
import { isTerminal } from "./machine.ts";
import {
  decodeCloseBody,
  encodeCloseBody,
  type Frame,
  MAX_CLOSE_TEXT,
  MessageType,
} from "./messages.ts";
import { codeForReason, type PeerClose, REASON_NORMAL, reasonFor } from "./options.ts";

const T = MessageType;
const EMPTY: Bytes = new Uint8Array(0);

export class SessionRules {
  readonly #core: SessionCore;
  #resends = 0;
  #resendsReceived = 0;
  #idleTimer?: TimerHandle;
  /** When the idle timer is due (clock time); moved forward by each valid message. */
  #idleDeadline = 0;
  #closeTimer?: TimerHandle;
  #closeResends = 0;
  #closeBody?: Bytes;

  constructor(core: SessionCore) {
    this.#core = core;
  }

  /** A valid expected message arrived: the resend counter starts over. */
  progress(): void {
    this.#resends = 0;
    this.#resendsReceived = 0;
    this.armIdle(true);
  }

  /** States in which a message from the peer is due (the idle timer runs). */
  #waiting(): boolean {
    switch (this.#core.state) {
      case "hello-sent":
      case "await-hello":
      case "await-ack":
      case "rekey-hello-sent":
      case "rekey-await-ack":
        return true;
      case "open":
        return this.#core.data.inflight > 0;
      default:
        return false;
    }
  }

  /**
   * Starts (or with `restart`, restarts) the idle timer while a message is due. A restart
   * only moves the deadline: a running timer that fires early sets itself again for the
   * rest, so a busy session does not clear and set a timer for every frame.
   */
  armIdle(restart: boolean): void {
    const clock = this.#core.clock;
    if (!this.#waiting()) {
      if (this.#idleTimer !== undefined) clock.clearTimer(this.#idleTimer);
      this.#idleTimer = undefined;
      return;
    }
    if (this.#idleTimer !== undefined && !restart) return;
    this.#idleDeadline = clock.now() + this.#core.opts.idleTimeoutMs;
    if (this.#idleTimer === undefined) this.#setIdleTimer(this.#core.opts.idleTimeoutMs);
  }

  #setIdleTimer(ms: number): void {
    this.#idleTimer = this.#core.clock.setTimer(ms, () => {
      this.#idleTimer = undefined;
      // Never longer than the idle time, should the clock have been set back.
      const left = Math.min(
        this.#idleDeadline - this.#core.clock.now(),
        this.#core.opts.idleTimeoutMs,
      );
      if (left > 0) return this.#setIdleTimer(left);
      this.#onIdle();
    });
  }

  #onIdle(): void {
    const state = this.#core.state;
    if (isTerminal(state) || state === "closing" || !this.#waiting()) return;
    if (state === "await-hello") {
      return this.#core.finish(
        "failed",
        new MissiveError("timeout", "session: no HELLO from the client in time"),
      );
    }
    this.requestResend();
  }

  /** Sends RESEND_LAST, or CLOSE once `maxResends` went unanswered (SPEC §22.7). */
  requestResend(): void {
    const core = this.#core;
    if (this.#resends >= core.opts.maxResends) {
      void this.sendClose(
        reasonFor(new MissiveError("timeout", "")),
        `no expected message after ${this.#resends} RESEND_LAST`,
        new MissiveError(
          "timeout",
          `session: the peer did not answer ${this.#resends} RESEND_LAST requests`,
        ),
      );
      return;
    }
    this.#resends++;
    core.event({ type: "resend", direction: "sent", count: this.#resends });
    const context = core.sender.sealedOut ? undefined : core.hs?.myContext;
    void core.sender.send(T.RESEND_LAST, EMPTY, context);
    this.armIdle(true);
  }

  /** The peer asks for our last message again. */
  onResendRequest(): void {
    const core = this.#core;
    this.#resendsReceived++;
    core.event({ type: "resend", direction: "received", count: this.#resendsReceived });
    if (this.#resendsReceived > core.opts.maxResends + 1) {
      throw new MissiveError("session", "session: the peer asks for RESEND_LAST too often");
    }
    core.sender.resendLast();
  }

  /** Answers a broken rule with CLOSE (reason = the error's exit code). */
  async violation(error: MissiveError): Promise<void> {
    const core = this.#core;
    if (isTerminal(core.state)) return;
    if (core.state === "closing") return core.finish("failed", core.closeError ?? error);
    await this.sendClose(reasonFor(error), error.message, error);
  }

  /**
   * Sends CLOSE. Sealed: waits for CLOSE_ACK, re-sending CLOSE, then CLOSED_WITHOUT_ACK.
   * Signed (before keys are confirmed): no acknowledgement exists; the session ends.
   */
  async sendClose(reason: number, text: string, error?: MissiveError): Promise<void> {
    const core = this.#core;
    if (isTerminal(core.state) || core.state === "closing") return;
    const body = encodeCloseBody({ reason, text: text.slice(0, MAX_CLOSE_TEXT) });
    if (!core.sender.sealedOut) {
      const context = core.hs?.myContext;
      if (context) {
        await core.sender.emit(T.CLOSE, body, context).catch(() => {});
      }
      return core.finish("failed", error ?? new MissiveError("session", text), {
        by: "local",
        reason,
        text,
        acknowledged: false,
      });
    }
    core.moveTo("closing");
    core.closeError = error;
    core.error = error;
    this.#closeBody = body;
    this.#closeResends = 0;
    this.armIdle(false);
    if (core.data.queued > 0 || core.data.inflight > 0) {
      core.rejectPending(error ?? new MissiveError("session", "session: closing"));
    } else core.checkDrained();
    void core.sender.send(T.CLOSE, body);
    this.#armClose();
  }

  #armClose(): void {
    const core = this.#core;
    this.#closeTimer = core.clock.setTimer(core.opts.closeTimeoutMs, () => {
      this.#closeTimer = undefined;
      if (core.state !== "closing") return;
      const body = this.#closeBody as Bytes;
      if (this.#closeResends < core.opts.maxCloseResends) {
        this.#closeResends++;
        void core.sender.send(T.CLOSE, body);
        return this.#armClose();
      }
      void core.sender.send(T.CLOSED_WITHOUT_ACK, body);
      const c = decodeCloseBody(body);
      core.finish("failed", core.closeError, {
        by: "local",
        reason: c.reason,
        text: c.text,
        acknowledged: false,
      });
    });
  }

  /** The peer's CLOSE: acknowledged when sealed; the session ends. */
  async onPeerClose(frame: Frame, c: { reason: number; text: string }): Promise<void> {
    const core = this.#core;
    const error = c.reason === REASON_NORMAL ? undefined : new MissiveError(
      codeForReason(c.reason),
      `session: the peer closed the session (reason ${c.reason}): ${c.text}`,
      { cause: { by: "peer", reason: c.reason, text: c.text } satisfies PeerClose },
    );
    if (frame.form === "sealed") await core.sender.emit(T.CLOSE_ACK, EMPTY).catch(() => {});
    const final = error ?? core.closeError ??
      (frame.form === "signed"
        ? new MissiveError("session", "session: the peer closed during the handshake")
        : undefined);
    core.finish(final ? "failed" : "closed", final, {
      by: "peer",
      reason: c.reason,
      text: c.text,
      acknowledged: frame.form === "sealed",
    });
  }

  /** A signed CLOSE before HELLO_ACK that no acceptable server card verifies. */
  peerClosedUnverified(body: Bytes): void {
    const c = decodeCloseBody(body);
    this.#core.finish(
      "failed",
      new MissiveError(
        codeForReason(c.reason),
        `session: the server closed the handshake (unverified CLOSE, reason ${c.reason}): ${c.text}`,
      ),
      { by: "peer", reason: c.reason, text: c.text, acknowledged: false },
    );
  }

  /** CLOSE_ACK: our CLOSE was acknowledged. */
  onCloseAck(): void {
    const core = this.#core;
    core.finish(core.closeError ? "failed" : "closed", core.closeError, {
      by: "local",
      acknowledged: true,
    });
  }

  /** CLOSED_WITHOUT_ACK: the peer gave up waiting for our CLOSE_ACK. */
  onClosedWithoutAck(c: { reason: number; text: string }): void {
    const core = this.#core;
    core.finish(core.closeError ? "failed" : "closed", core.closeError, {
      by: "peer",
      reason: c.reason,
      text: c.text,
      acknowledged: false,
    });
  }

  /** The session ended: no timer fires any more. */
  stopTimers(): void {
    const clock = this.#core.clock;
    if (this.#idleTimer !== undefined) clock.clearTimer(this.#idleTimer);
    if (this.#closeTimer !== undefined) clock.clearTimer(this.#closeTimer);
    this.#idleTimer = this.#closeTimer = undefined;
  }
}
