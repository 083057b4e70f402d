/**
 * The two walks through the stack (DESIGN §1): `sealMessage` (AMP → STP → envelope) and
 * `openMessage` (envelope → STP → AMP), with plugins found in a Registry.
 * @module
 */
import { type Bytes, randomBytes, toHex, wipe } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import { getCryptoProvider, xwingEncapsulateSeeded } from "../crypto/mod.ts";
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
  /**
   * Refuse, with a `PostQuantumRequiredError`, to seal without a post-quantum KEM: when
   * the STP has none, or when a recipient's card has no hybrid key (where a post-quantum
   * STP would otherwise fall back to its classical version).
   */
  requirePq?: boolean;
  /**
   * Told once when sealing falls back from a post-quantum STP version to its classical
   * one (a recipient card without a hybrid key); the CLI prints it.
   */
  onWarning?: (message: string) => void;
}

/**
 * Sealing refused under `requirePq`: the STP has no post-quantum KEM (code `usage`), or
 * these recipients' cards have no hybrid key (code `key`).
 */
export class PostQuantumRequiredError extends MissiveError {
  /** Addresses of the recipient cards without a hybrid key (format 1). */
  readonly classicalRecipients: readonly string[];

  constructor(message: string, classicalRecipients: readonly string[]) {
    super(classicalRecipients.length > 0 ? "key" : "usage", message);
    this.name = "PostQuantumRequiredError";
    this.classicalRecipients = classicalRecipients;
  }
}

const listed = (addresses: readonly string[]) =>
  addresses.length <= 3
    ? addresses.join(", ")
    : `${addresses.slice(0, 3).join(", ")} and ${addresses.length - 3} more`;

/**
 * The STP version that seals to these recipients (DESIGN §4, post-quantum): a
 * post-quantum version when every card has a hybrid key; its classical version, as a
 * whole (one classical slot would void the protection of all), with one warning,
 * otherwise; `requirePq` refuses both the fallback and STPs without a post-quantum KEM.
 */
function chooseStp(request: SealRequest<unknown>, recipients: readonly Card[]): StpPlugin {
  const { stp } = request;
  const label = `${stp.name} v${stp.version}`;
  if (stp.properties.kem !== "mlkem768x25519") {
    if (request.requirePq) {
      throw new PostQuantumRequiredError(
        `post-quantum protection required, but ${label} has no post-quantum key agreement ` +
          "(use simple v3 or group v2, or drop --require-pq)",
        [],
      );
    }
    return stp;
  }
  const classical = recipients.filter((c) => !c.hybridKey).map((c) => c.address);
  if (classical.length === 0 || !stp.classicalFallback) return stp;
  const fallback = stp.classicalFallback;
  const whose = `${listed(classical)} ${classical.length === 1 ? "has" : "have"}`;
  if (request.requirePq) {
    throw new PostQuantumRequiredError(
      `post-quantum protection required, but ${whose} a card without a post-quantum key ` +
        "(format 1): ask for a new card, or drop --require-pq",
      classical,
    );
  }
  request.onWarning?.(
    `${whose} no post-quantum key (format-1 card): the whole message is sealed with ` +
      `${fallback.name} v${fallback.version} (X25519 only), not ${label}`,
  );
  return fallback;
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
  const { amp } = request;
  const recipients = request.recipients ?? [];
  const stp = chooseStp(request, recipients);
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
  // The same for X-Wing: the 64 bytes of randomness are drawn when called, in call order.
  const kemEncapsulate = request.random
    ? (key: Uint8Array) => {
      const seed = random(64);
      try {
        return Promise.resolve(xwingEncapsulateSeeded(key, seed));
      } catch (e) {
        return Promise.reject(e);
      } finally {
        wipe(seed);
      }
    }
    : (key: Uint8Array) => crypto.xwingEncapsulate(key);
  const payload = await guardOf(request.registry, stp, "seal", () =>
    stp.seal(inner, {
      header,
      crypto,
      sender: request.sender,
      recipients,
      random,
      ephemeralAgreement,
      kemEncapsulate,
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
