/**
 * The two walks through the stack (DESIGN §1): `sealMessage` (AMP → STP → envelope) and
 * `openMessage` (envelope → STP → AMP), with plugins found in a Registry.
 * @module
 */
import { type Bytes, randomBytes, toHex, wipe } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import { getCryptoProvider } from "../crypto/mod.ts";
import type { CryptoProvider } from "../crypto/provider.ts";
import { decodeEnvelope, encodeEnvelope, type EnvelopeHeader } from "../envelope/mod.ts";
import { type Card, sameKeys } from "../keys/card.ts";
import type { Identity } from "../keys/identity.ts";
import { Registry } from "./registry.ts";
import type { ReplayCache } from "./replay.ts";
import type { AmpPlugin, Inner, Plugin, SenderInfo, StpPlugin, StpProperties } from "./types.ts";

/** Inputs of `sealMessage`. */
export interface SealRequest<T = unknown> {
  /** The registry the plugins came from, so external plugins' failures are named. */
  registry?: Registry;
  stp: StpPlugin;
  amp: AmpPlugin<T>;
  message: T;
  sender?: Identity;
  recipients?: readonly Card[];
  sequenceNumber?: number;
  includeCard?: boolean;
  hashDestination?: boolean;
  /** Key slots without recipient hints (group; see SealContext). */
  hideRecipients?: boolean;
  options?: Record<string, string>;
  crypto?: CryptoProvider;
  /**
   * Clock and randomness, injectable to make vectors. STPs wipe the secret buffers they
   * drew once used, so `random` must return fresh arrays (not views of kept state).
   */
  now?: number;
  random?: (length: number) => Bytes;
  /**
   * The inner message's 16-byte nonce, when the caller needs to know it (to match a
   * receipt); drawn from `random` otherwise.
   */
  nonce?: Bytes;
}

function guardOf<T>(
  registry: Registry | undefined,
  p: Plugin,
  what: string,
  f: () => T | Promise<T>,
) {
  return (registry ?? new Registry()).guard(p, what, f);
}

/**
 * Seals one application message: AMP encode → STP seal → envelope. Returns the binary
 * envelope bytes.
 *
 * @example
 * ```ts
 * import { createIdentity, defaultRegistry, getCryptoProvider, openMessage, sealMessage } from "../mod.ts";
 * const crypto = await getCryptoProvider();
 * const registry = defaultRegistry();
 * const caps = { stps: [[2, 2]] as const, amps: [[1, 1]] as const };
 * const alice = await createIdentity(crypto, { address: "alice@example.org", ...caps });
 * const bob = await createIdentity(crypto, { address: "bob@example.org", ...caps });
 * const sealed = await sealMessage({
 *   stp: registry.find("stp", "simple"), amp: registry.find("amp", "text/1"),
 *   message: { text: "hello bob" }, sender: alice, recipients: [bob.card],
 * });
 * const opened = await openMessage(registry, sealed, { identity: bob, trusted: [alice.card] });
 * console.log(opened.message, opened.sender?.trusted); // { text: "hello bob" } true
 * ```
 */
export async function sealMessage<T>(request: SealRequest<T>): Promise<Bytes> {
  const crypto = request.crypto ?? await getCryptoProvider();
  const random = request.random ?? randomBytes;
  const { stp, amp } = request;
  const recipients = request.recipients ?? [];
  if (request.nonce !== undefined && request.nonce.length !== 16) {
    throw new MissiveError("usage", `seal: a nonce is 16 bytes, not ${request.nonce.length}`);
  }
  const inner: Inner = {
    ampType: amp.type,
    ampVersion: amp.version,
    body: await guardOf(request.registry, amp, "encode", () => amp.encode(request.message)),
    timestamp: request.now ?? Date.now(),
    nonce: request.nonce ?? random(16),
    sender: request.sender?.card.address,
    destination: recipients[0]?.address,
  };
  const header: EnvelopeHeader = {
    protocolType: stp.type,
    protocolVersion: stp.version,
    sequenceNumber: request.sequenceNumber,
  };
  // Injected randomness (vectors) must also decide the ephemeral key; otherwise the
  // provider makes it and keeps the private half to itself.
  const ephemeralAgreement = request.random
    ? async (peer: Uint8Array) => {
      const secret = random(32);
      const [publicKey, shared] = await Promise.all([
        crypto.x25519PublicKey(secret),
        crypto.x25519(secret, peer),
      ]);
      wipe(secret);
      return { publicKey, shared };
    }
    : (peer: Uint8Array) => crypto.x25519Ephemeral(peer);
  const payload = await guardOf(request.registry, stp, "seal", () =>
    stp.seal(inner, {
      header,
      crypto,
      sender: request.sender,
      recipients,
      random,
      ephemeralAgreement,
      includeCard: request.includeCard ?? true,
      hashDestination: request.hashDestination ?? false,
      hideRecipients: request.hideRecipients ?? false,
      options: request.options ?? {},
    }));
  return encodeEnvelope({ ...header, payload });
}

/** Inputs of `openMessage`. */
export interface OpenRequest {
  identity?: Identity;
  trusted?: readonly Card[];
  replay?: ReplayCache;
  options?: Record<string, string>;
  crypto?: CryptoProvider;
}

/** The result of opening a message. */
export interface OpenedMessage {
  header: EnvelopeHeader;
  stp: { type: number; version: number; name: string; properties: StpProperties };
  amp: { type: number; version: number; name: string };
  inner: Inner;
  /** The decoded AMP message. */
  message: unknown;
  sender?: SenderInfo & { trusted: boolean };
  warnings: string[];
}

/**
 * Opens one binary envelope: envelope → STP (by its pair) → replay check → AMP (by its
 * pair). Returns authenticated data or throws a MissiveError.
 */
export async function openMessage(
  registry: Registry,
  frame: Uint8Array,
  request: OpenRequest = {},
): Promise<OpenedMessage> {
  const crypto = request.crypto ?? await getCryptoProvider();
  const envelope = decodeEnvelope(frame);
  const header: EnvelopeHeader = {
    protocolType: envelope.protocolType,
    protocolVersion: envelope.protocolVersion,
    sequenceNumber: envelope.sequenceNumber,
  };
  const stp = registry.stp(envelope.protocolType, envelope.protocolVersion);
  const trusted = request.trusted ?? [];
  const opened = await registry.guard(stp, "open", () =>
    stp.open(envelope.payload, {
      header,
      crypto,
      identity: request.identity,
      trusted,
      options: request.options ?? {},
    }));
  const { inner } = opened;
  if (request.replay) {
    const who = opened.sender?.card ? toHex(opened.sender.card.id) : opened.sender?.address ?? "";
    await request.replay.checkAndRemember(who, inner.nonce, inner.timestamp);
  }
  const amp = registry.amp(inner.ampType, inner.ampVersion);
  const message = await registry.guard(amp, "decode", () => amp.decode(inner.body));
  const senderCard = opened.sender?.card;
  return {
    header,
    stp: { type: stp.type, version: stp.version, name: stp.name, properties: stp.properties },
    amp: { type: amp.type, version: amp.version, name: amp.name },
    inner,
    message,
    sender: opened.sender && {
      ...opened.sender,
      trusted: opened.sender.verified && (opened.sender.trustedByStp === true ||
        (senderCard !== undefined && trusted.some((t) => sameKeys(t, senderCard)))),
    },
    warnings: opened.warnings,
  };
}
