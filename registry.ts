/**
 * The plugin registry (DESIGN §1, §3): the only place that maps (type, version) numbers
 * to STP and AMP plugins, and the two walks through the stack — `seal` (AMP → STP →
 * envelope) and `open` (envelope → STP → AMP).
 * @module
 */
import { type Bytes, randomBytes, toHex, wipe } from "./bytes.ts";
import { getCryptoProvider } from "./crypto/mod.ts";
import type { CryptoProvider } from "./crypto/provider.ts";
import {
  decodeEnvelope,
  encodeEnvelope,
  type EnvelopeHeader,
  MAX_PROTOCOL_NUMBER,
} from "./envelope.ts";
import { MissiveError } from "./errors.ts";
import { type Card, sameKeys } from "./keys/card.ts";
import type { Identity } from "./keys/identity.ts";
import type { ReplayCache } from "./replay.ts";
import type { AmpPlugin, Inner, Plugin, SenderInfo, StpPlugin, StpProperties } from "./types.ts";

const key = (type: number, version: number) => `${type}/${version}`;

/** The boolean fields of StpProperties (checked on every STP plugin). */
export const PROPERTY_FLAGS = [
  "confidentiality",
  "nonRepudiation",
  "forwardSecrecy",
  "multiRecipient",
  "hiddenRecipients",
] as const;

/** Validates the fields every plugin must have; refuses a broken plugin early. */
function checkPlugin(p: Plugin): void {
  const where = `plugin ${JSON.stringify((p as { name?: unknown })?.name ?? "?")}`;
  const fail = (why: string): never => {
    throw new MissiveError("plugin", `${where}: ${why}`);
  };
  if (typeof p !== "object" || p === null || (p.kind !== "stp" && p.kind !== "amp")) {
    fail(`kind must be "stp" or "amp"`);
  }
  for (const field of ["type", "version"] as const) {
    const v = p[field];
    if (!Number.isInteger(v) || v < 0 || v > MAX_PROTOCOL_NUMBER) {
      fail(`${field} must be an integer 0..65535`);
    }
  }
  if (typeof p.name !== "string" || !/^[a-z][a-z0-9-]{0,31}$/.test(p.name)) {
    fail("name must be lower-case letters, digits, dashes");
  }
  const methods = p.kind === "stp"
    ? ["seal", "open"]
    : ["encode", "decode", "fromInput", "toOutput", "toJson"];
  for (const m of methods) {
    if (typeof (p as unknown as Record<string, unknown>)[m] !== "function") {
      fail(`missing method ${m}()`);
    }
  }
  if (typeof p.description !== "string") fail("description must be a string");
  if (p.kind === "stp") {
    const props = p.properties as unknown as Record<string, unknown> | undefined;
    if (typeof props !== "object" || props === null) fail("properties must be an object");
    for (const flag of PROPERTY_FLAGS) {
      if (typeof props![flag] !== "boolean") fail(`properties.${flag} must be a boolean`);
    }
    if (!["none", "signature", "shared-key"].includes(props!.authentication as string)) {
      fail(`properties.authentication must be "none", "signature" or "shared-key"`);
    }
  }
}

/** Maps (type, version) pairs to plugins. */
export class Registry {
  readonly #stps = new Map<string, StpPlugin>();
  readonly #amps = new Map<string, AmpPlugin>();
  /** Plugins loaded from outside (modules): their failures are `plugin` errors. */
  readonly #external = new WeakSet<Plugin>();

  /**
   * Registers plugins, all or none: every plugin is checked, and a (type, version)
   * already taken (or taken twice in the batch) is refused, naming both plugins.
   */
  register(...plugins: Plugin[]): this {
    const claimed = new Map<string, Plugin>();
    for (const p of plugins) {
      checkPlugin(p);
      const table: Map<string, Plugin> = p.kind === "stp" ? this.#stps : this.#amps;
      const k = `${p.kind}:${key(p.type, p.version)}`;
      const taken = table.get(key(p.type, p.version)) ?? claimed.get(k);
      if (taken) {
        throw new MissiveError(
          "plugin",
          `${p.kind} (${p.type}, ${p.version}) "${p.name}" is already registered as "${taken.name}"`,
        );
      }
      claimed.set(k, p);
    }
    for (const p of plugins) {
      const table: Map<string, Plugin> = p.kind === "stp" ? this.#stps : this.#amps;
      table.set(key(p.type, p.version), p);
    }
    return this;
  }

  /** Registers plugins loaded from outside missive (see `register`). */
  registerExternal(...plugins: Plugin[]): this {
    this.register(...plugins);
    for (const p of plugins) this.#external.add(p);
    return this;
  }

  /**
   * Runs a plugin call and turns a foreign exception into a MissiveError: `plugin` for
   * an external plugin (it broke its contract), `internal` for a built-in (a bug).
   */
  async guard<T>(plugin: Plugin, what: string, f: () => T | Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      if (e instanceof MissiveError) throw e;
      const code = this.#external.has(plugin) ? "plugin" : "internal";
      const name = `${plugin.kind} "${plugin.name}" (${plugin.type}, ${plugin.version})`;
      throw new MissiveError(code, `${name} ${what} failed: ${(e as Error)?.message ?? e}`, {
        cause: e,
      });
    }
  }

  /** The STP for a pair; `unknown-protocol` names the pair when there is none. */
  stp(type: number, version: number): StpPlugin {
    const p = this.#stps.get(key(type, version));
    if (!p) {
      throw new MissiveError("unknown-protocol", `unknown STP (type ${type}, version ${version})`);
    }
    return p;
  }

  /** The AMP for a pair; `unknown-protocol` names the pair when there is none. */
  amp(type: number, version: number): AmpPlugin {
    const p = this.#amps.get(key(type, version));
    if (!p) {
      throw new MissiveError("unknown-protocol", `unknown AMP (type ${type}, version ${version})`);
    }
    return p;
  }

  /**
   * Finds a plugin by name: `simple` (highest version), `simple/1` or `simple/v1`, or a
   * bare `type/version` pair like `2/1`.
   */
  find<K extends Plugin["kind"]>(kind: K, spec: string): K extends "stp" ? StpPlugin : AmpPlugin {
    const table: Map<string, Plugin> = kind === "stp" ? this.#stps : this.#amps;
    const m = /^([a-z0-9-]+)(?:\/v?(\d+))?$/.exec(spec.trim().toLowerCase());
    const all = [...table.values()];
    let hits: Plugin[] = [];
    if (m) {
      const [, name, version] = m;
      hits = all.filter((p) =>
        (p.name === name || String(p.type) === name) &&
        (version === undefined || p.version === Number(version))
      );
    }
    if (hits.length === 0) {
      const names = all.map((p) => `${p.name}/v${p.version}`).join(", ");
      throw new MissiveError("usage", `no ${kind.toUpperCase()} named "${spec}" (have: ${names})`);
    }
    hits.sort((a, b) => b.version - a.version);
    return hits[0] as K extends "stp" ? StpPlugin : AmpPlugin;
  }

  /** Every registered plugin, STPs then AMPs, each sorted by (type, version). */
  list(): { stps: StpPlugin[]; amps: AmpPlugin[] } {
    const order = (a: Plugin, b: Plugin) => a.type - b.type || a.version - b.version;
    return {
      stps: [...this.#stps.values()].sort(order),
      amps: [...this.#amps.values()].sort(order),
    };
  }
}

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
 * import { createIdentity, defaultRegistry, getCryptoProvider, openMessage, sealMessage } from "./mod.ts";
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
