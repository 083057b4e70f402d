/**
 * The plugin contracts (DESIGN §3). Plugins implement these and nothing else; the
 * registry is the only place that maps (type, version) numbers to them.
 * @module
 */
import type { Bytes } from "../core/bytes.ts";
import type { CryptoProvider } from "../crypto/provider.ts";
import type { EnvelopeHeader } from "../envelope/mod.ts";
import type { Card } from "../keys/card.ts";
import type { Identity } from "../keys/identity.ts";

/**
 * What an STP protects (SPEC §2.6), shown by `missive plugins` and reported on open.
 * Capabilities of the protocol, not facts about one message.
 */
export interface StpProperties {
  /** Only the recipients (or holders of the shared key) can read the content. */
  confidentiality: boolean;
  /** How the sender is authenticated. */
  authentication: "none" | "signature" | "shared-key";
  /** A third party can check who signed (signatures, not MACs). */
  nonRepudiation: boolean;
  /** A key stolen later does not open messages recorded earlier. */
  forwardSecrecy: boolean;
  /**
   * One message can be opened by several recipients' keys; when false, `sealMessage`
   * refuses more than one recipient (`usage`).
   */
  multiRecipient: boolean;
  /**
   * The message can travel without naming its recipients in the clear; when false,
   * `sealMessage` refuses `hideRecipients` (`usage`).
   */
  hiddenRecipients: boolean;
  /**
   * The KEM that protects the content key for recipients: `"mlkem768x25519"` (X-Wing, a
   * post-quantum hybrid: secure if either ML-KEM-768 or X25519 holds) or `"x25519"`;
   * absent for STPs without recipient keys (auth, psk, plain).
   */
  kem?: "mlkem768x25519" | "x25519";
}

/** The application message as the STP layer sees it (DESIGN §3). */
export interface Inner {
  /** The AMP's type number (SPEC §2.5), which the registry maps to a decoder. */
  ampType: number;
  /** The AMP's version. */
  ampVersion: number;
  /** The AMP-encoded message (`AmpPlugin.encode`), opaque to the STP. */
  body: Uint8Array;
  /** Milliseconds since the Unix epoch. */
  timestamp: number;
  /** 16 random bytes, unique per message; the replay cache keys on it. */
  nonce: Uint8Array;
  /** Sender address, when the STP carries one. */
  sender?: string;
  /** Destination address, when the STP carries it in the clear. */
  destination?: string;
}

/**
 * Options as text, the way `--option NAME=VALUE` gives them. Every STP accepts this form:
 * one with typed options turns it into them with `parseOptions`.
 */
export type OptionPairs = Readonly<Record<string, string>>;

/** Everything an STP may use to seal. `O` is the STP's options type. */
export interface SealContext<O = OptionPairs> {
  /** The envelope header the payload will travel under; STPs bind it. */
  header: EnvelopeHeader;
  /** The primitives to seal with; STPs call no other crypto. */
  crypto: CryptoProvider;
  /** The signing identity; STPs that sign (every one but psk and plain) require it. */
  sender?: Identity;
  /** The recipients' cards; empty for STPs without recipient keys. */
  recipients: readonly Card[];
  /** Secure random bytes; replaced by a seeded source only to make vectors. */
  random(length: number): Bytes;
  /**
   * A fresh ephemeral X25519 key agreed with `peerPublicKey`: its public key and the
   * shared secret. From the provider normally; from `random(32)` when randomness is
   * injected (vectors), so sealing stays reproducible.
   */
  ephemeralAgreement(peerPublicKey: Uint8Array): Promise<{ publicKey: Bytes; shared: Bytes }>;
  /**
   * X-Wing encapsulation to a card's hybrid key: the ciphertext and shared secret. From the
   * provider normally; from `random(64)`, drawn when called, when randomness is injected
   * (vectors). Absent in contexts made before post-quantum STPs: use the provider's.
   */
  kemEncapsulate?(hybridPublicKey: Uint8Array): Promise<{ ciphertext: Bytes; shared: Bytes }>;
  /** Include the sender's card in the message (default true: first contact works). */
  includeCard: boolean;
  /** Send the destination as a keyed hash instead of the address (simple). */
  hashDestination: boolean;
  /** Key slots without recipient hints, their count padded (group; SPEC §19.6). */
  hideRecipients?: boolean;
  /** The STP's own options (e.g. a shared key); `{}` when none were given. */
  options: O;
}

/** Everything an STP may use to open. `O` is the STP's options type. */
export interface OpenContext<O = OptionPairs> {
  /** The envelope header the payload arrived under; STPs check it against what they bound. */
  header: EnvelopeHeader;
  /** The primitives to open with. */
  crypto: CryptoProvider;
  /** The opener's identity, for STPs that encrypt to a recipient. */
  identity?: Identity;
  /** Cards the opener trusts; also where a sender's card is found when not attached. */
  trusted: readonly Card[];
  /** The STP's own options; `{}` when none were given. */
  options: O;
}

/** Who sent a message, as established by the STP. */
export interface SenderInfo {
  /** The sender's address as the message states it (proved only when `verified`). */
  address: string;
  /** The sender's card when known (attached or found among trusted cards). */
  card?: Card;
  /** True only when a signature or key check proved the sender. */
  verified: boolean;
  /**
   * For STPs without cards: the STP itself established trust (smime: the signer's
   * X.509 path to a --trust certificate). Cards are not consulted then.
   */
  trustedByStp?: boolean;
}

/** An STP's result: authenticated inner message (or, for `plain`, an unprotected one). */
export interface StpOpened {
  /** The inner message; its `body` is still AMP-encoded. */
  inner: Inner;
  /** Who sent it, when the STP can tell (absent for plain and psk). */
  sender?: SenderInfo;
  /** Things the reader should know that are not failures (e.g. a classical fallback). */
  warnings: string[];
}

/**
 * Seal features an STP may honour beyond what its properties say; `sealMessage` refuses
 * a request for one the STP does not list.
 * - `hash-destination`: the destination address travels as a keyed hash (simple).
 */
export type StpFeature = "hash-destination";

/**
 * A secure transport protocol plugin. `O` is the type of its options: plugins that take
 * none, or take text, keep the default (`OptionPairs`); a built-in with structured options
 * (psk's key, smime's certificates) declares its own type and `parseOptions`.
 */
export interface StpPlugin<O = OptionPairs> {
  /** Tells STPs from AMPs in a `Plugin` union. */
  readonly kind: "stp";
  /** The envelope's protocol type (SPEC §2.5), 0..65535. */
  readonly type: number;
  /** The envelope's protocol version, 0..65535. */
  readonly version: number;
  /** Short lower-case name, e.g. "simple". */
  readonly name: string;
  /** One line for `missive plugins`. */
  readonly description: string;
  /** What the protocol protects (SPEC §2.6). */
  readonly properties: StpProperties;
  /** Seal features this STP honours (see `StpFeature`); none when absent. */
  readonly features?: readonly StpFeature[];
  /**
   * For a post-quantum version: the classical version of the same protocol, which
   * `sealMessage` uses (with one warning) when a recipient's card has no hybrid key,
   * unless the caller requires post-quantum protection.
   */
  readonly classicalFallback?: StpPlugin<O>;
  /**
   * Turns `--option NAME=VALUE` pairs into this STP's options, refusing names it does not
   * know (`usage`). Absent: the pairs are the options.
   */
  parseOptions?(pairs: OptionPairs): O | Promise<O>;
  /**
   * Protects `inner` and returns the envelope payload (field 4). Throws a MissiveError
   * (`usage` for a request it cannot honour, `key` for an unusable key).
   */
  seal(inner: Inner, ctx: SealContext<O>): Promise<Uint8Array>;
  /** Returns authenticated data or throws a MissiveError; never unauthenticated bytes. */
  open(payload: Uint8Array, ctx: OpenContext<O>): Promise<StpOpened>;
}

/** An STP of any options type, as the registry holds it. */
// deno-lint-ignore no-explicit-any
export type AnyStp = StpPlugin<any>;

/** The options of an STP from `--option` pairs: `parseOptions` when it has one. */
export async function stpOptionsFromPairs<O>(stp: StpPlugin<O>, pairs: OptionPairs): Promise<O> {
  return stp.parseOptions ? await stp.parseOptions(pairs) : pairs as O;
}

/** An application message protocol plugin: bytes in and out, nothing else. */
export interface AmpPlugin<T = unknown> {
  /** Tells AMPs from STPs in a `Plugin` union. */
  readonly kind: "amp";
  /** The inner message's AMP type (SPEC §2.5), 0..65535. */
  readonly type: number;
  /** The AMP version, 0..65535. */
  readonly version: number;
  /** Short lower-case name, e.g. "text". */
  readonly name: string;
  /** One line for `missive plugins`. */
  readonly description: string;
  /** The message's bytes (the inner `body`); throws `usage` for a message it cannot encode. */
  encode(message: T): Uint8Array;
  /** Throws MissiveError("malformed") on bad input. */
  decode(bytes: Uint8Array): T;
}

/**
 * Optional AMP capability for the command line: building a message from input bytes and
 * `--field` pairs, the bytes `missive open` writes, and the `--json` form. An AMP without
 * it can still be sealed and opened by the library; the CLI then refuses to build one and
 * shows a received one as its encoded bytes.
 */
export interface AmpCli<T = unknown> {
  /** Builds a message from stdin bytes and `--field name=value` pairs. */
  fromInput(input: Uint8Array, fields: Readonly<Record<string, string>>): T;
  /** The bytes `missive open` writes to stdout. */
  toOutput(message: T): Uint8Array;
  /** The message as JSON-compatible data for `--json`. */
  toJson(message: T): unknown;
}

/** An AMP with the command-line capability (every built-in AMP). */
export type CliAmp<T = unknown> = AmpPlugin<T> & AmpCli<T>;

/** True when an AMP offers the command-line capability. */
export function hasCli<T>(amp: AmpPlugin<T>): amp is CliAmp<T> {
  const a = amp as Partial<AmpCli<T>>;
  return typeof a.fromInput === "function" && typeof a.toOutput === "function" &&
    typeof a.toJson === "function";
}

/**
 * Optional AMP capability: a one-line description of a message for people, printed on
 * stderr by `missive open` when stdout carries raw content (a file's bytes, say).
 */
export interface AmpSummary<T = unknown> {
  /** One line describing `message`; the CLI sanitises it before printing. */
  summary(message: T): string;
}

/** True when an AMP offers `summary`. */
export function hasSummary<T>(amp: AmpPlugin<T>): amp is AmpPlugin<T> & AmpSummary<T> {
  return typeof (amp as Partial<AmpSummary<T>>).summary === "function";
}

/** Either kind of plugin. */
// deno-lint-ignore no-explicit-any
export type Plugin = AnyStp | AmpPlugin<any>;
