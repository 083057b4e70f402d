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
import {
  type AmpPlugin,
  type AnyStp,
  type Inner,
  type OptionPairs,
  type Plugin,
  type SenderInfo,
  stpOptionsFromPairs,
  type StpPlugin,
  type StpProperties,
} from "./types.ts";

/** Inputs of `sealMessage`. `O` is the STP's options type. */
export interface SealRequest<T = unknown, O = unknown> {
  /** The registry the plugins came from, so external plugins' failures are named. */
  registry?: Registry;
  /**
   * The STP to seal with. A post-quantum version seals with its `classicalFallback`
   * (one `onWarning`) when a recipient's card has no hybrid key, unless `requirePq`.
   */
  stp: StpPlugin<O>;
  /** The AMP that encodes `message` into the inner body. */
  amp: AmpPlugin<T>;
  /** The application message, in the AMP's own form (e.g. `{ text }` for text). */
  message: T;
  /** The signing identity; every STP but psk and plain requires one. */
  sender?: Identity;
  /**
   * The recipients' cards. More than one is `usage` for an STP whose properties lack
   * `multiRecipient` (SPEC §2.6).
   */
  recipients?: readonly Card[];
  /** The envelope's sequence number (field 3, SPEC §2.1), bound by the STP. */
  sequenceNumber?: number;
  /** Attach the sender's card so a first-contact recipient can verify (default true). */
  includeCard?: boolean;
  /**
   * Send the destination address as a keyed hash (SPEC §5.3); `usage` for an STP without
   * the `hash-destination` feature (only simple has it).
   */
  hashDestination?: boolean;
  /**
   * Key slots without recipient hints (group; see SealContext). Refused for an STP whose
   * properties do not include hidden recipients.
   */
  hideRecipients?: boolean;
  /** The STP's options (its own type, e.g. psk's key); merged over `optionPairs`. */
  options?: O;
  /** Options as text (`--option NAME=VALUE`), parsed by the STP's `parseOptions`. */
  optionPairs?: OptionPairs;
  /** The primitives; default `getCryptoProvider()`. */
  crypto?: CryptoProvider;
  /** The inner timestamp, ms since the Unix epoch; default now. Injectable for vectors. */
  now?: number;
  /**
   * The source of every random byte the seal draws (nonce, keys, ephemerals); default the
   * runtime's CSPRNG. Injected only to make vectors. STPs wipe the secret buffers they
   * drew once used, so it must return fresh arrays (not views of kept state).
   */
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

  /** The code is `key` when `classicalRecipients` is non-empty, `usage` otherwise. */
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
function chooseStp<T, O>(request: SealRequest<T, O>, recipients: readonly Card[]): StpPlugin<O> {
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
 * Seals one application message: AMP encode → STP seal → envelope (DESIGN §1). Returns
 * the binary envelope bytes (SPEC §2.1). A request the STP cannot honour is refused with
 * `usage` (SPEC §2.6: hidden recipients, several recipients, a hashed destination, a
 * nonce that is not 16 bytes); `requirePq` refusals are `PostQuantumRequiredError`s.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createIdentity, defaultRegistry, getCryptoProvider, openMessage, sealMessage } from "../mod.ts";
 * const crypto = await getCryptoProvider();
 * const registry = defaultRegistry();
 * const caps = { stps: [[2, 3]] as const, amps: [[1, 1]] as const };
 * const alice = await createIdentity(crypto, { address: "alice@example.org", ...caps });
 * const bob = await createIdentity(crypto, { address: "bob@example.org", ...caps });
 * const simple = registry.find("stp", "simple");
 * const text = registry.find("amp", "text/1");
 * const sealed = await sealMessage({
 *   stp: simple, amp: text, message: { text: "hello bob" }, sender: alice, recipients: [bob.card],
 * });
 * assert.deepEqual([...sealed.subarray(0, 3)], [0xd9, 0xd9, 0xf7]); // SPEC §2.1 magic
 * const opened = await openMessage(sealed, { registry, identity: bob, trusted: [alice.card] });
 * assert.deepEqual(opened.message, { text: "hello bob" });
 * // simple cannot hide its recipients: refused, not ignored.
 * await assert.rejects(
 *   sealMessage({
 *     stp: simple, amp: text, message: { text: "x" }, sender: alice, recipients: [bob.card],
 *     hideRecipients: true,
 *   }),
 *   { code: "usage" },
 * );
 * ```
 */
export async function sealMessage<T, O = unknown>(request: SealRequest<T, O>): Promise<Bytes> {
  const { amp } = request;
  const recipients = request.recipients ?? [];
  const stp = chooseStp(request, recipients);
  checkSealRequest(stp, request);
  const options = await mergedOptions(stp, request.optionPairs, request.options);
  const crypto = request.crypto ?? await getCryptoProvider();
  const random = request.random ?? randomBytes;
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
    ? async (key: Uint8Array) => {
      const seed = random(64);
      try {
        return await xwingEncapsulateSeeded(key, seed);
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
      options,
    }));
  return encodeEnvelope({ ...header, payload });
}

/**
 * The rules every seal follows, whoever calls: options the STP cannot honour are
 * refused, not ignored (a hidden-recipients request that left an address in clear would
 * be worse than an error).
 */
function checkSealRequest<T, O>(stp: StpPlugin<O>, request: SealRequest<T, O>): void {
  const p = stp.properties;
  const recipients = request.recipients ?? [];
  if (request.nonce !== undefined && request.nonce.length !== 16) {
    throw new MissiveError("usage", `seal: a nonce is 16 bytes, not ${request.nonce.length}`);
  }
  if (request.hideRecipients && !p.hiddenRecipients) {
    throw new MissiveError(
      "usage",
      `seal: STP ${stp.name} cannot hide its recipients (use group)`,
    );
  }
  if (recipients.length > 1 && !p.multiRecipient) {
    throw new MissiveError(
      "usage",
      `seal: STP ${stp.name} seals to one recipient, not ${recipients.length} (use group)`,
    );
  }
  if (request.hashDestination && !stp.features?.includes("hash-destination")) {
    throw new MissiveError(
      "usage",
      `seal: STP ${stp.name} cannot send the destination as a hash (use simple)`,
    );
  }
}

/**
 * An STP's options from text pairs (its `parseOptions`) with typed options over them.
 * Typed options are one object whose fields each STP reads for itself, so an opener can
 * give a psk key and an smime identity at once, before it knows which STP will open.
 */
export async function mergedOptions<O>(
  stp: StpPlugin<O>,
  pairs: OptionPairs | undefined,
  typed: unknown,
): Promise<O> {
  const fromPairs = pairs && Object.keys(pairs).length > 0
    ? await stpOptionsFromPairs(stp, pairs)
    : undefined;
  if (typed === undefined) return (fromPairs ?? {}) as O;
  if (fromPairs === undefined) return typed as O;
  return { ...fromPairs, ...(typed as object) } as O;
}

/** Inputs of `openMessage`. */
export interface OpenRequest {
  /** Where the envelope's (type, version) pairs are looked up. */
  registry: Registry;
  /** The opener's identity; needed by every STP that encrypts to a recipient. */
  identity?: Identity;
  /**
   * Cards the opener trusts: a verified sender holding one's keys is `trusted`; a sender
   * whose card is not attached is looked up here.
   */
  trusted?: readonly Card[];
  /** Refuse (`untrusted`) a message whose sender is not verified against `trusted`. */
  requireTrust?: boolean;
  /**
   * Where (sender, nonce) pairs are remembered: a message seen before, or outside the
   * cache's time window, is `replay` (SPEC §10). None: no replay check.
   */
  replay?: ReplayCache;
  /**
   * Typed options for the STPs that may open the message (one object: each STP reads
   * its own fields, e.g. psk's `key`, smime's `identity`), merged over `optionPairs`.
   */
  options?: object;
  /** Options as text (`--option NAME=VALUE`), parsed by the opening STP. */
  optionPairs?: OptionPairs;
  /** The primitives; default `getCryptoProvider()`. */
  crypto?: CryptoProvider;
}

/** The result of opening a message. */
export interface OpenedMessage {
  /** The envelope header the message arrived under. */
  header: EnvelopeHeader;
  /** The STP that opened it, and what that STP protects (SPEC §2.6). */
  stp: { type: number; version: number; name: string; properties: StpProperties };
  /** The AMP that decoded the body. */
  amp: { type: number; version: number; name: string };
  /** The authenticated inner message: timestamp, nonce, addresses, encoded body. */
  inner: Inner;
  /** The decoded AMP message. */
  message: unknown;
  /**
   * Who sent it, when the STP tells; `trusted` is true only for a verified sender whose
   * keys are in a trusted card (or, smime, whose certificate chains to a trusted one).
   */
  sender?: SenderInfo & { trusted: boolean };
  /** Things the reader should know that are not failures. */
  warnings: string[];
}

/**
 * Opens one binary envelope: envelope → STP (by its pair) → trust decision → replay
 * check → AMP (by its pair), in the order of SPEC §10. Returns authenticated data or
 * throws a MissiveError: `malformed`/`too-large` (envelope or payload), `unknown-protocol`
 * (no plugin for a pair), `not-a-recipient` (for other keys), `auth-failed` (altered or
 * forged), `untrusted` (with `requireTrust`), `replay`. A message refused for trust is not
 * recorded in the replay cache.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   createIdentity, defaultRegistry, getCryptoProvider, MemoryReplayCache, openMessage, sealMessage,
 *   simpleV3, textV1,
 * } from "../mod.ts";
 * const crypto = await getCryptoProvider();
 * const registry = defaultRegistry();
 * const caps = { stps: [[2, 3]] as const, amps: [[1, 1]] as const };
 * const alice = await createIdentity(crypto, { address: "alice@example.org", ...caps });
 * const bob = await createIdentity(crypto, { address: "bob@example.org", ...caps });
 * const carol = await createIdentity(crypto, { address: "carol@example.org", ...caps });
 * const sealed = await sealMessage({
 *   stp: simpleV3, amp: textV1, message: { text: "hi" }, sender: alice, recipients: [bob.card],
 * });
 * const replay = new MemoryReplayCache();
 * const opened = await openMessage(sealed, {
 *   registry, identity: bob, trusted: [alice.card], requireTrust: true, replay,
 * });
 * assert.equal(opened.stp.name, "simple");
 * assert.equal(opened.sender?.address, "alice@example.org");
 * assert.equal(opened.sender?.trusted, true);
 * // The same message again is a replay; for carol it is "not for me".
 * await assert.rejects(openMessage(sealed, { registry, identity: bob, replay }), { code: "replay" });
 * await assert.rejects(openMessage(sealed, { registry, identity: carol }), {
 *   code: "not-a-recipient",
 * });
 * ```
 */
export async function openMessage(
  frame: Uint8Array,
  request: OpenRequest,
): Promise<OpenedMessage> {
  const { registry } = request;
  const crypto = request.crypto ?? await getCryptoProvider();
  const envelope = decodeEnvelope(frame);
  const header: EnvelopeHeader = {
    protocolType: envelope.protocolType,
    protocolVersion: envelope.protocolVersion,
    sequenceNumber: envelope.sequenceNumber,
  };
  const stp: AnyStp = registry.stp(envelope.protocolType, envelope.protocolVersion);
  const trusted = request.trusted ?? [];
  const options = await mergedOptions(stp, request.optionPairs, request.options);
  const opened = await registry.guard(stp, "open", () =>
    stp.open(envelope.payload, {
      header,
      crypto,
      identity: request.identity,
      trusted,
      options,
    }));
  const { inner } = opened;
  const senderCard = opened.sender?.card;
  const sender = opened.sender && {
    ...opened.sender,
    trusted: opened.sender.verified && (opened.sender.trustedByStp === true ||
      (senderCard !== undefined && trusted.some((t) => sameKeys(t, senderCard)))),
  };
  if (request.requireTrust) requireTrusted(sender);
  if (request.replay) {
    const who = senderCard ? toHex(senderCard.id) : opened.sender?.address ?? "";
    await request.replay.checkAndRemember(who, inner.nonce, inner.timestamp);
  }
  const amp = registry.amp(inner.ampType, inner.ampVersion);
  const message = await registry.guard(amp, "decode", () => amp.decode(inner.body));
  return {
    header,
    stp: { type: stp.type, version: stp.version, name: stp.name, properties: stp.properties },
    amp: { type: amp.type, version: amp.version, name: amp.name },
    inner,
    message,
    sender,
    warnings: opened.warnings,
  };
}

/**
 * The `requireTrust` rule of every open (messages, streams, receipts): the sender must be
 * verified and trusted, else `untrusted`.
 */
export function requireTrusted(sender: (SenderInfo & { trusted: boolean }) | undefined): void {
  if (sender?.trusted) return;
  const who = !sender
    ? "the message has no sender"
    : !sender.verified
    ? `${sender.address} is a claimed, unverified sender`
    : `${sender.address} is not a trusted card`;
  throw new MissiveError("untrusted", `untrusted sender: ${who}`);
}
