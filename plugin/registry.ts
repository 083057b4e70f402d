/**
 * The plugin registry (DESIGN §1, §3): the only place that maps (type, version) numbers
 * to STP and AMP plugins. The two walks through the stack are in message.ts.
 * @module
 */
import { MAX_PROTOCOL_NUMBER } from "../envelope/mod.ts";
import { MissiveError } from "../core/errors.ts";
import type { AmpPlugin, AnyStp, Plugin } from "./types.ts";
import type { ProtocolPair } from "../keys/card.ts";

const key = (type: number, version: number) => `${type}/${version}`;

/** The boolean fields of StpProperties (checked on every STP plugin). */
export const PROPERTY_FLAGS = [
  "confidentiality",
  "nonRepudiation",
  "forwardSecrecy",
  "multiRecipient",
  "hiddenRecipients",
] as const;

/** Every seal feature an STP may list (see StpFeature). */
const STP_FEATURES: readonly unknown[] = ["hash-destination"];

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
  const fields = p as unknown as Record<string, unknown>;
  const methods = p.kind === "stp" ? ["seal", "open"] : ["encode", "decode"];
  for (const m of methods) {
    if (typeof fields[m] !== "function") fail(`missing method ${m}()`);
  }
  // Optional capabilities come whole: the CLI capability of an AMP is three methods.
  const optional = p.kind === "stp" ? [["parseOptions"]] : [["fromInput", "toOutput", "toJson"]];
  for (const group of optional) {
    if (group.some((m) => fields[m] !== undefined)) {
      for (const m of group) if (typeof fields[m] !== "function") fail(`missing method ${m}()`);
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
    const features = fields.features;
    if (
      features !== undefined &&
      !(Array.isArray(features) && features.every((f) => STP_FEATURES.includes(f)))
    ) {
      fail(`features must be a list of ${STP_FEATURES.map((f) => `"${f}"`).join(", ")}`);
    }
  }
}

/**
 * Maps (type, version) pairs to plugins (SPEC §2.5). `defaultRegistry()` holds the
 * built-ins; a registry of your own holds exactly what you register. Lookups of a pair
 * nobody registered are `unknown-protocol`; a plugin that fails its checks, or claims a
 * pair already taken, is `plugin`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Registry, simpleV3, textV1 } from "../mod.ts";
 * const registry = new Registry().register(simpleV3, textV1);
 * assert.equal(registry.stp(2, 3).name, "simple");
 * assert.equal(registry.find("amp", "text").version, 1);
 * assert.equal(registry.find("stp", "simple/3"), registry.stp(2, 3));
 * assert.throws(() => registry.stp(2, 1), { code: "unknown-protocol" });
 * assert.throws(() => registry.register(textV1), { code: "plugin" }); // (1, 1) is taken
 * assert.throws(() => registry.find("stp", "group"), { code: "usage" });
 * ```
 */
export class Registry {
  readonly #stps = new Map<string, AnyStp>();
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
  stp(type: number, version: number): AnyStp {
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
  find<K extends Plugin["kind"]>(kind: K, spec: string): K extends "stp" ? AnyStp : AmpPlugin {
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
    return hits[0] as K extends "stp" ? AnyStp : AmpPlugin;
  }

  /** Every registered plugin, STPs then AMPs, each sorted by (type, version). */
  list(): { stps: AnyStp[]; amps: AmpPlugin[] } {
    const order = (a: Plugin, b: Plugin) => a.type - b.type || a.version - b.version;
    return {
      stps: [...this.#stps.values()].sort(order),
      amps: [...this.#amps.values()].sort(order),
    };
  }

  /**
   * The (type, version) pair of every registered STP and AMP: what a card made with this
   * registry says its holder can open (`createIdentity(crypto, { address,
   * ...registry.capabilities() })`).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { defaultRegistry } from "../mod.ts";
   * const { stps, amps } = defaultRegistry().capabilities();
   * assert.ok(stps.some(([type, version]) => type === 2 && version === 3)); // simple v3
   * assert.ok(amps.some(([type]) => type === 1)); // text
   * ```
   */
  capabilities(): { stps: ProtocolPair[]; amps: ProtocolPair[] } {
    const { stps, amps } = this.list();
    return {
      stps: stps.map((p) => [p.type, p.version] as const),
      amps: amps.map((p) => [p.type, p.version] as const),
    };
  }
}
