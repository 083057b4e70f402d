/**
 * The live session (STP type 5, DESIGN §6, SPEC §22): a mutually authenticated,
 * encrypted, ordered message channel over any Transport, with re-keying, the proposal's
 * timers, and an explicit state machine (session/machine.ts). This is the public face;
 * the parts behind it are frames out (sender.ts), frames in (receiver.ts), the handshake
 * and re-key drivers (exchange.ts, rekey.ts) and the timer and close rules (rules.ts),
 * sharing one core (core.ts).
 * @module
 */
import type { Bytes } from "../core/bytes.ts";
import { getCryptoProvider } from "../crypto/mod.ts";
import { MissiveError } from "../core/errors.ts";
import type { Card } from "../keys/card.ts";
import type { Identity } from "../keys/identity.ts";
import type { Transport } from "../transports/types.ts";
import type { SecureChannel } from "./channel.ts";
import { SessionCore } from "./core.ts";
import { presharedKeys } from "./keyschedule.ts";
import { acceptsSend, isTerminal, type SessionState } from "./machine.ts";
import {
  type AcceptOptions,
  type ConnectOptions,
  REASON_NORMAL,
  type SessionEvent,
} from "./options.ts";

/**
 * A live session. Create one with `Session.connect` (client) or `Session.accept`
 * (server); both resolve once the handshake is complete.
 *
 * @example
 * ```ts
 * import { createIdentity, getCryptoProvider } from "../mod.ts";
 * import { Session } from "./session.ts";
 * import { memoryTransportPair } from "../transports/memory.ts";
 * const crypto = await getCryptoProvider();
 * const caps = { stps: [[5, 1]] as const, amps: [] };
 * const alice = await createIdentity(crypto, { address: "alice@example.org", ...caps });
 * const bob = await createIdentity(crypto, { address: "bob@example.org", ...caps });
 * const [a, b] = memoryTransportPair();
 * const [client, server] = await Promise.all([
 *   Session.connect(a, alice, { peer: bob.card }),
 *   Session.accept(b, bob, { trusted: [alice.card] }),
 * ]);
 * await client.send(new TextEncoder().encode("hello"));
 * for await (const m of server.messages()) {
 *   console.log(new TextDecoder().decode(m)); // hello
 *   break;
 * }
 * await client.close();
 * ```
 */
export class Session implements SecureChannel {
  readonly #core: SessionCore;

  private constructor(core: SessionCore) {
    this.#core = core;
  }

  /**
   * Opens a session as the client: sends HELLO, checks the server's card against
   * `peer` (pinned) or `trusted`, and resolves once the keys are confirmed. Throws
   * `untrusted` when either side refuses the other, `auth-failed`, `timeout`, `session`.
   */
  static async connect(
    transport: Transport,
    identity: Identity,
    options: ConnectOptions,
  ): Promise<Session> {
    if (!options.peer && !options.trusted?.length) {
      throw new MissiveError("usage", "session: connect needs the server's card (peer or trusted)");
    }
    const core = await Session.#create("client", transport, identity, options);
    await core.exchange.startClient();
    await core.handshake;
    return new Session(core);
  }

  /**
   * Accepts a session as the server on a transport whose peer will send HELLO.
   * Clients are admitted by `authorize(card)` or by `trusted`; others are refused with
   * CLOSE (reason 7) and this throws `untrusted`.
   */
  static async accept(
    transport: Transport,
    identity: Identity,
    options: AcceptOptions,
  ): Promise<Session> {
    if (!options.authorize && !options.trusted) {
      throw new MissiveError(
        "usage",
        "session: accept needs authorize(card) or a trusted list (use () => true for open registration)",
      );
    }
    const core = await Session.#create("server", transport, identity, options);
    core.moveTo("await-hello");
    core.exchange.prepareEphemeral();
    core.rules.armIdle(true);
    void core.receiver.pump();
    await core.handshake;
    return new Session(core);
  }

  static async #create(
    role: "client" | "server",
    transport: Transport,
    identity: Identity,
    options: ConnectOptions & AcceptOptions,
  ): Promise<SessionCore> {
    const provider = options.provider ?? await getCryptoProvider();
    const core = new SessionCore(role, transport, identity, provider, options);
    if (options.s0) core.psk = await presharedKeys(provider, options.s0);
    return core;
  }

  /** The peer's card, proven during the handshake. */
  get peer(): Card {
    return this.#core.provenPeer;
  }

  /** The current state (session/machine.ts). */
  get state(): SessionState {
    return this.#core.state;
  }

  /** The current key ID (16 hex digits), or undefined before the handshake. */
  get keyId(): string | undefined {
    return this.#core.keys?.idHex;
  }

  /** Why the session failed, once it has. */
  get error(): MissiveError | undefined {
    return this.#core.error;
  }

  /** Resolves when the session has ended (closed or failed); never rejects. */
  get ended(): Promise<void> {
    return this.#core.ended;
  }

  /**
   * Sends one message; resolves when the peer acknowledged it (DATA_ACK). During a
   * re-key the message is queued and sent, in order, under the new keys.
   */
  send(data: Uint8Array): Promise<void> {
    const core = this.#core;
    if (!acceptsSend(core.state)) {
      return Promise.reject(
        core.error ?? new MissiveError("session", `session: cannot send in state ${core.state}`),
      );
    }
    if (data.length > core.opts.maxMessageSize) {
      return Promise.reject(
        new MissiveError("too-large", `session: message larger than ${core.opts.maxMessageSize}`),
      );
    }
    const acknowledged = core.data.enqueue(data);
    core.sender.pumpSend();
    return acknowledged;
  }

  /**
   * The peer's messages, in order. The iteration ends at an orderly close and throws
   * the session's error when it failed. Several readers share one stream.
   */
  messages(): AsyncIterable<Uint8Array> {
    return this.#core.inbox;
  }

  /** The next message, or undefined once the session closed in order. */
  receive(): Promise<Bytes | undefined> {
    return this.#core.inbox.shift();
  }

  /** Events (handshake, rekey, resend, discard, close), buffered from the start. */
  events(): AsyncIterable<SessionEvent> {
    return this.#core.events;
  }

  /**
   * Closes in order: waits until every sent message was acknowledged, sends CLOSE and
   * waits for CLOSE_ACK (re-sending CLOSE, then CLOSED_WITHOUT_ACK). Idempotent.
   */
  async close(): Promise<void> {
    const core = this.#core;
    if (isTerminal(core.state)) return;
    if (core.state === "closing") return await core.ended;
    if (!acceptsSend(core.state)) {
      core.finish("failed", new MissiveError("session", "session: closed during the handshake"));
      return;
    }
    await core.drained();
    if (acceptsSend(core.state)) await core.rules.sendClose(REASON_NORMAL, "closed");
    await core.ended;
  }
}
