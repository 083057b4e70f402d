/**
 * The receipt exchange of `send`/`listen` (SPEC §21.5): a listener answers every frame a
 * peer sends with exactly one receipt (AMP receipt, SPEC §14) on the same transport, in
 * order, sealed with STP auth under the listener's identity. The sender matches it to its
 * message by nonce and accepts it only when signed by the card it sent to.
 * @module
 */
import { type Bytes, equalBytes, randomBytes } from "../core/bytes.ts";
import type { CryptoProvider } from "../crypto/provider.ts";
import { decodeEnvelope } from "../envelope/mod.ts";
import { MissiveError } from "../core/errors.ts";
import type { Card } from "../keys/card.ts";
import type { Identity } from "../keys/identity.ts";
import type { Registry } from "../plugin/registry.ts";
import { openMessage, sealMessage, type SealRequest } from "../plugin/message.ts";
import { type Receipt, RECEIPT_TYPE, type ReceiptStatus } from "../amp/receipt.ts";
import { AUTH_TYPE } from "../stp/auth.ts";
import type { Transport } from "../transports/types.ts";

/** Nonce of a receipt for a frame whose own nonce could not be read (SPEC §21.5). */
export const UNKNOWN_NONCE: Bytes = new Uint8Array(16);
/** Largest receipt frame a sender accepts. */
export const MAX_RECEIPT_FRAME = 64 * 1024;

/** A sealed frame and the inner nonce a receipt will name. */
export interface SealedFrame {
  /** The binary envelope, ready for `Transport.send`. */
  frame: Bytes;
  /** The message's 16-byte inner nonce, which its receipt names (SPEC §14). */
  nonce: Bytes;
}

/**
 * `sealMessage`, also returning the message's inner nonce (see `MessageServer` for a
 * complete send-and-receipt example).
 */
export async function sealWithNonce<T>(request: SealRequest<T>): Promise<SealedFrame> {
  const nonce = request.nonce ?? (request.random ?? randomBytes)(16);
  return { frame: await sealMessage({ ...request, nonce }), nonce };
}

/** The receipt status for a failure to open a message (S2WMP codes, SPEC §14). */
export function receiptStatusFor(error: MissiveError): ReceiptStatus {
  switch (error.code) {
    case "malformed":
    case "too-large":
    case "unknown-protocol":
      return "unparsable";
    case "untrusted":
      return "unknown-id";
    default:
      return "undecryptable";
  }
}

/** Seals a receipt with STP auth v1 under the listener's identity. */
export function sealReceipt(
  registry: Registry,
  identity: Identity,
  receipt: Receipt,
  crypto?: CryptoProvider,
): Promise<Bytes> {
  const detail = receipt.detail?.slice(0, 1024);
  return sealMessage({
    registry,
    stp: registry.stp(AUTH_TYPE, 1),
    amp: registry.amp(RECEIPT_TYPE, 1),
    message: detail === undefined ? receipt : { ...receipt, detail },
    sender: identity,
    crypto,
  });
}

/**
 * Opens a receipt for the message with `nonce`: it must be STP auth v1 carrying a
 * receipt AMP, signed by one
 * of `expected` (the cards the message was sealed to), and name `nonce` — or, for a
 * status other than accepted, the unknown nonce. Anything else is `auth-failed` or
 * `malformed`.
 */
export async function openReceipt(
  frame: Uint8Array,
  expect: {
    registry: Registry;
    nonce: Uint8Array;
    cards: readonly Card[];
    crypto?: CryptoProvider;
  },
): Promise<Receipt> {
  const envelope = decodeEnvelope(frame);
  if (envelope.protocolType !== AUTH_TYPE || envelope.protocolVersion !== 1) {
    throw new MissiveError(
      "malformed",
      `a receipt must be STP auth v1, not (${envelope.protocolType}, ${envelope.protocolVersion})`,
    );
  }
  const opened = await openMessage(frame, {
    registry: expect.registry,
    trusted: expect.cards,
    crypto: expect.crypto,
  });
  if (opened.amp.type !== RECEIPT_TYPE || opened.amp.version !== 1) {
    throw new MissiveError(
      "malformed",
      `expected a receipt, got AMP ${opened.amp.name} (${opened.amp.type}, ${opened.amp.version})`,
    );
  }
  const receipt = opened.message as Receipt;
  if (!opened.sender?.trusted) {
    const who = opened.sender?.verified ? opened.sender.address : "an unverified sender";
    throw new MissiveError(
      "auth-failed",
      `the receipt is not signed by the --to card but by ${who} (it says: ${receipt.status})`,
    );
  }
  const named = equalBytes(receipt.nonce, expect.nonce) ||
    (receipt.status !== "accepted" && equalBytes(receipt.nonce, UNKNOWN_NONCE));
  if (!named) throw new MissiveError("malformed", "receipt names another message's nonce");
  return receipt;
}

/** A pending message of a `ReceiptChannel`. */
interface Waiting {
  nonce: Bytes;
  resolve(r: Receipt): void;
  reject(e: unknown): void;
}

/**
 * The sending side of one transport (example: `MessageServer`): `send` writes a sealed
 * frame and resolves with its verified receipt. Several sends may be in flight; receipts come back in order.
 * A failure (timeout, bad receipt, lost connection) fails every pending send and the
 * channel stays failed.
 */
export class ReceiptChannel {
  readonly #transport: Transport;
  readonly #registry: Registry;
  readonly #cards: readonly Card[];
  readonly #crypto: CryptoProvider | undefined;
  readonly #waiting: Waiting[] = [];
  #frames: AsyncIterator<Uint8Array> | undefined;
  #failed: unknown;

  /**
   * A channel over `transport`: receipts are opened with `options.registry` and accepted
   * only when signed by one of `options.cards` (the cards the messages were sealed to).
   */
  constructor(
    transport: Transport,
    options: { registry: Registry; cards: readonly Card[]; crypto?: CryptoProvider },
  ) {
    this.#transport = transport;
    this.#registry = options.registry;
    this.#cards = options.cards;
    this.#crypto = options.crypto;
  }

  #fail(error: unknown): void {
    this.#failed ??= error;
    for (const w of this.#waiting.splice(0)) w.reject(this.#failed);
    void this.#transport.close();
  }

  async #readLoop(): Promise<void> {
    try {
      for (;;) {
        const next = await this.#frames!.next();
        if (next.done) {
          throw new MissiveError("network", `${this.#transport.remote}: closed without a receipt`);
        }
        const head = this.#waiting[0];
        if (!head) throw new MissiveError("malformed", "a receipt arrived for no message");
        const receipt = await openReceipt(next.value, {
          registry: this.#registry,
          nonce: head.nonce,
          cards: this.#cards,
          crypto: this.#crypto,
        });
        this.#waiting.shift();
        head.resolve(receipt);
        if (this.#waiting.length === 0) return;
      }
    } catch (e) {
      this.#fail(e);
    }
  }

  /** Sends `sealed` and waits at most `timeoutMs` for its receipt. */
  async send(sealed: SealedFrame, timeoutMs: number): Promise<Receipt> {
    if (this.#failed) throw this.#failed;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const receipt = new Promise<Receipt>((resolve, reject) => {
      this.#waiting.push({ nonce: sealed.nonce, resolve, reject });
      timer = setTimeout(() => {
        this.#fail(
          new MissiveError("timeout", `no receipt from ${this.#transport.remote} in time`),
        );
      }, timeoutMs);
    });
    receipt.catch(() => {}); // it may fail before it is awaited; the await below reports it
    if (this.#waiting.length === 1) {
      this.#frames ??= this.#transport.frames()[Symbol.asyncIterator]();
      void this.#readLoop();
    }
    try {
      await this.#transport.send(sealed.frame);
      return await receipt;
    } catch (e) {
      this.#fail(e);
      throw this.#failed;
    } finally {
      clearTimeout(timer);
    }
  }
}
