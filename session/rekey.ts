/**
 * The re-key driver (SPEC §22.8): the server starts a new HELLO / HELLO_ACK / ACK
 * exchange under the current keys after `rekeyAfter` acknowledged DATA, with fresh
 * ephemeral keys on both sides; data is queued meanwhile (nothing lost or reordered)
 * and old keys are erased. Internal to the session (core.ts).
 * @module
 */
import { type Bytes, equalBytes } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import type { SessionCore } from "./core.ts";
import type { Answer } from "./exchange.ts";
import { answer, complete, type Handshake, initiate } from "./handshake.ts";
import { eraseKeys, type SessionKeys } from "./keyschedule.ts";
import { decodeHelloBody, MessageType } from "./messages.ts";

const T = MessageType;
const EMPTY: Bytes = new Uint8Array(0);

export class Rekeying {
  readonly #core: SessionCore;
  /** Acknowledged DATA (both directions) in all, and since the last re-key began. */
  #acknowledged = 0;
  #sinceRekey = 0;
  /** The acknowledged count a due re-key was triggered at (SPEC §22.8). */
  #rekeyDueAt = 0;
  #rekeyPending = false;

  constructor(core: SessionCore) {
    this.#core = core;
  }

  /** True when delivering `unacknowledged` more DATA makes a re-key due (server). */
  rekeyDueWith(unacknowledged: number): boolean {
    const core = this.#core;
    return core.role === "server" && core.opts.rekeyAfter > 0 &&
      this.#sinceRekey + unacknowledged >= core.opts.rekeyAfter;
  }

  /** Counts acknowledged DATA; the server starts a re-key at `rekeyAfter` (SPEC §22.8). */
  countAcknowledged(count: number): void {
    const core = this.#core;
    this.#acknowledged += count;
    this.#sinceRekey += count;
    if (core.role !== "server" || core.opts.rekeyAfter === 0) return;
    if (this.#sinceRekey < core.opts.rekeyAfter || this.#rekeyPending) return;
    this.#rekeyDueAt = this.#acknowledged;
    this.#sinceRekey = 0;
    if (core.state === "open") core.busy = this.#startRekey().catch((e) => core.abort(e));
    else if (core.state === "rekey-hello-sent") this.#rekeyPending = true;
  }

  /** Server: a re-key HELLO under the current keys (open → rekey-hello-sent). */
  async #startRekey(): Promise<void> {
    const core = this.#core;
    this.#rekeyPending = false;
    core.moveTo("rekey-hello-sent");
    const chain = core.chain;
    const hs = await initiate(
      core.provider,
      core.identity,
      core.opts.random,
      chain,
      this.#rekeyDueAt,
      core.exchange.takeEphemeral(),
    );
    if (core.state !== "rekey-hello-sent") return;
    core.hs = hs;
    void core.sender.send(T.HELLO, hs.helloBody, chain);
    core.rules.armIdle(true);
  }

  /**
   * Client: starts the answer to the server's re-key HELLO (the card check, X25519, key
   * derivation) while the receiver checks the HELLO's signature; failures surface when
   * `onRekeyHello` awaits it, after the signature.
   */
  prepareRekeyAnswer(helloBody: Bytes): Promise<Answer & { acknowledged?: number }> {
    const core = this.#core;
    const answering = (async () => {
      const peerBody = this.#checkSameCard(helloBody);
      const answered = await answer(core.provider, core.identity, core.random, {
        chain: core.chain,
        helloBody,
        peerEphemeral: peerBody.ephemeralKey,
        psk: core.psk,
      });
      return { ...answered, acknowledged: peerBody.acknowledged };
    })();
    answering.catch(() => {}); // awaited, or dropped with the session
    return answering;
  }

  /** Client: the server's verified re-key HELLO, under the current keys. */
  async onRekeyHello(answering: ReturnType<Rekeying["prepareRekeyAnswer"]>): Promise<void> {
    const core = this.#core;
    core.moveTo("rekey-await-ack");
    const { ackBody, keys, hs, acknowledged } = await answering;
    if (core.state !== "rekey-await-ack") return;
    core.nextKeys = keys;
    core.hs = { ...hs, dueAt: acknowledged ?? this.#acknowledged };
    void core.sender.send(T.HELLO_ACK, ackBody, hs.myContext);
    core.sender.sendNext = true;
    core.rules.armIdle(true);
  }

  /**
   * Server: starts deriving the new keys from the client's re-key HELLO_ACK while the
   * receiver checks its signature; failures surface in `onRekeyHelloAck`.
   */
  prepareRekeyCompletion(ackBody: Bytes): Promise<SessionKeys> {
    const core = this.#core;
    const hs = core.hs as Handshake;
    const completing = (async () =>
      await complete(core.provider, hs, {
        chain: core.chain,
        ackBody,
        peerEphemeral: this.#checkSameCard(ackBody).ephemeralKey,
        psk: core.psk,
      }))();
    completing.catch(() => {}); // awaited, or dropped with the session
    return completing;
  }

  /** Server: the client's verified re-key HELLO_ACK; switch keys and confirm with ACK. */
  async onRekeyHelloAck(completing: Promise<SessionKeys>): Promise<void> {
    const core = this.#core;
    const hs = core.hs as Handshake;
    const next = await completing;
    if (core.state !== "rekey-hello-sent" && core.state !== "closing") return;
    core.sender.emitAck(); // acknowledgements still due go out under the old keys
    const old = core.currentKeys;
    core.keys = next;
    core.chain = next.chain;
    void core.sender.send(T.ACK, EMPTY);
    void core.sender.afterWrites(() => eraseKeys(old));
    // Closing: the crossing CLOSE ends the session; no further re-key starts.
    const reopened = core.state === "rekey-hello-sent";
    if (reopened) core.moveTo("open");
    this.#rekeyed(old, hs.dueAt ?? this.#acknowledged);
    core.exchange.prepareRekeyEphemeral();
    if (this.#rekeyPending && reopened) {
      core.busy = this.#startRekey().catch((e) => core.abort(e));
    }
  }

  /** Client: the ACK under the new keys ends the re-key. */
  onRekeyAck(): void {
    const core = this.#core;
    const old = core.currentKeys;
    core.keys = core.nextKeys;
    core.nextKeys = undefined;
    core.sender.sendNext = false;
    core.chain = core.currentKeys.chain;
    void core.sender.afterWrites(() => eraseKeys(old));
    if (core.state === "rekey-await-ack") core.moveTo("open");
    this.#rekeyed(old, core.hs?.dueAt ?? this.#acknowledged);
  }

  #rekeyed(old: SessionKeys, acknowledged: number): void {
    const core = this.#core;
    core.event({
      type: "rekey",
      keyId: core.currentKeys.idHex,
      previousKeyId: old.idHex,
      acknowledged,
    });
    core.checkDrained();
    core.sender.pumpSend();
  }

  /** A re-key HELLO / HELLO_ACK must carry the peer's own card again. */
  #checkSameCard(body: Bytes) {
    const h = decodeHelloBody(body);
    if (!equalBytes(h.card, this.#core.provenPeer.bytes)) {
      throw new MissiveError("untrusted", "session: the peer changed its card during a re-key");
    }
    return h;
  }
}
