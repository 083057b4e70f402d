/**
 * Loading module plugins (DESIGN §3, way 2): a module path or URL whose default export
 * is a plugin, an array of plugins, or a factory `(host) => plugin(s)` that receives
 * missive's host API, so a plugin file needs no imports of its own and loads the same
 * way under `deno run` and inside the compiled binary. Executable plugins (`exec:NAME`)
 * load through the same call (plugin/exec/mod.ts).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { Registry } from "../mod.ts";
 * import { loadPlugins } from "./loader.ts";
 * const dir = mkdtempSync(join(tmpdir(), "missive-plugin-"));
 * const file = join(dir, "shout.js");
 * // A factory plugin: everything it needs comes from the host, no imports.
 * writeFileSync(file, `export default (host) => ({
 *   kind: "amp", type: 4000, version: 1, name: "shout", description: "upper-case text",
 *   encode: (m) => host.bytes.utf8(m.toUpperCase()),
 *   decode: (b) => host.bytes.fromUtf8(b),
 * });`);
 * const registry = new Registry();
 * await loadPlugins(registry, [file]);
 * const shout = registry.amp(4000, 1);
 * assert.equal(shout.name, "shout");
 * assert.equal(shout.decode(shout.encode("hi")), "HI");
 * rmSync(dir, { recursive: true });
 * ```
 * @module
 */
import { existsSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { scryptAsync } from "@noble/hashes/scrypt.js";
import * as bytes from "../core/bytes.ts";
import * as cbor from "../core/cbor.ts";
import { getCryptoProvider } from "../crypto/mod.ts";
import type { CryptoProvider } from "../crypto/provider.ts";
import { MissiveError } from "../core/errors.ts";
import { VERSION } from "../core/version.ts";
import { checkOwnFile, readTextLimited } from "../core/files.ts";
import type { Registry } from "./registry.ts";
import { isExecSpec, loadExecPlugins, stopExecPlugins } from "./exec/mod.ts";
export { stopAllPlugins } from "./exec/mod.ts";
import type { Plugin } from "./types.ts";

/** The API a plugin factory receives. Stable across minor versions. */
export interface PluginHost {
  /** missive's version, for plugins that need a minimum. */
  readonly version: string;
  /** The crypto provider (WebCrypto where present, noble otherwise). */
  readonly crypto: CryptoProvider;
  /** Deterministic CBOR (encodeCbor, decodeCbor, CborReader, transcript). */
  readonly cbor: typeof cbor;
  /** Byte helpers (concatBytes, equalBytes, randomBytes, utf8, toHex, …). */
  readonly bytes: typeof bytes;
  /** The error type plugins must throw. */
  readonly MissiveError: typeof MissiveError;
  /**
   * scrypt (RFC 7914) with N = 2^logN, r = 8, p = 1 and a 32-byte output: the password
   * KDF for plugins that derive keys from passphrases (the provider's HKDF is not one).
   * `logN` must be an integer 10..20 (20 uses 1 GiB); anything else is a plugin error.
   */
  scrypt(passphrase: Uint8Array, salt: Uint8Array, logN: number): Promise<Uint8Array>;
}

/** Work-factor bounds of `PluginHost.scrypt` (typage refuses logN > 20 likewise). */
export const PLUGIN_SCRYPT_LOG_N = { min: 10, max: 20 } as const;

async function hostScrypt(
  passphrase: Uint8Array,
  salt: Uint8Array,
  logN: number,
): Promise<Uint8Array> {
  if (!(passphrase instanceof Uint8Array) || !(salt instanceof Uint8Array)) {
    throw new MissiveError("plugin", "host.scrypt: passphrase and salt must be Uint8Arrays");
  }
  if (!Number.isInteger(logN) || logN < PLUGIN_SCRYPT_LOG_N.min || logN > PLUGIN_SCRYPT_LOG_N.max) {
    throw new MissiveError(
      "plugin",
      `host.scrypt: logN must be an integer ${PLUGIN_SCRYPT_LOG_N.min}..${PLUGIN_SCRYPT_LOG_N.max}, got ${logN}`,
    );
  }
  return await scryptAsync(passphrase, salt, { N: 2 ** logN, r: 8, p: 1, dkLen: 32 });
}

export { VERSION } from "../core/version.ts";

/** Builds the host API handed to plugin factories. */
export async function pluginHost(): Promise<PluginHost> {
  return {
    version: VERSION,
    crypto: await getCryptoProvider(),
    cbor,
    bytes,
    MissiveError,
    scrypt: hostScrypt,
  };
}

function toSpecifier(path: string, base: string): string {
  if (/^(https?|file|npm|jsr):/.test(path)) return path;
  return pathToFileURL(isAbsolute(path) ? path : resolve(base, path)).href;
}

/**
 * Loads one plugin and returns the plugins it provides: an executable plugin (`exec:NAME`
 * or the path of an executable file that is not a module; plugin/exec/mod.ts) is
 * started and asked to describe itself, anything else is imported as a module.
 */
export async function importPluginModule(
  path: string,
  base: string = process.cwd(),
): Promise<Plugin[]> {
  if (isExecSpec(path, base)) return await loadExecPlugins(path, VERSION, base);
  const specifier = toSpecifier(path, base);
  let mod: { default?: unknown };
  try {
    mod = await import(specifier);
  } catch (e) {
    throw new MissiveError("plugin", `plugin ${path}: cannot load: ${(e as Error).message}`, {
      cause: e,
    });
  }
  let exported = mod.default;
  if (exported === undefined) throw new MissiveError("plugin", `plugin ${path}: no default export`);
  if (typeof exported === "function") {
    try {
      exported = await (exported as (host: PluginHost) => unknown)(await pluginHost());
    } catch (e) {
      if (e instanceof MissiveError) throw e;
      throw new MissiveError("plugin", `plugin ${path}: factory failed: ${(e as Error).message}`);
    }
  }
  const list = Array.isArray(exported) ? exported : [exported];
  if (list.length === 0) throw new MissiveError("plugin", `plugin ${path}: exports no plugins`);
  return list as Plugin[];
}

/**
 * Loads plugins into a registry (duplicates are refused by the registry, naming the
 * plugin that came second; an executable plugin refused so is stopped at once).
 */
export async function loadPlugins(
  registry: Registry,
  paths: readonly string[],
  base?: string,
): Promise<void> {
  for (const path of paths) {
    const plugins = await importPluginModule(path, base);
    try {
      registry.registerExternal(...plugins);
    } catch (e) {
      if (!(e instanceof MissiveError) || !isExecSpec(path, base)) throw e;
      stopExecPlugins(plugins);
      throw new MissiveError(e.code, `plugin ${path}: ${e.message}`);
    }
  }
}

/** Where a configuration file came from, for messages. */
export type ConfigSource = "--config" | "MISSIVE_CONFIG" | "user config";

/**
 * The configuration file to read, if any (SECURITY.md, "a folder"): `--config FILE`, else
 * `$MISSIVE_CONFIG`, else `config.json` in the user's own configuration folder
 * (`$XDG_CONFIG_HOME/missive/`, else `~/.config/missive/`) when it exists. Never a file
 * in the current folder: running missive inside a cloned repository or an unpacked
 * archive must not run its code.
 */
export function configPath(
  explicit: string | undefined,
  env: Readonly<Record<string, string | undefined>> = process.env,
): { path: string; source: ConfigSource } | undefined {
  if (explicit !== undefined) return { path: explicit, source: "--config" };
  if (env.MISSIVE_CONFIG) return { path: env.MISSIVE_CONFIG, source: "MISSIVE_CONFIG" };
  const base = env.XDG_CONFIG_HOME || (env.HOME ? join(env.HOME, ".config") : undefined);
  if (!base || !isAbsolute(base)) return undefined;
  const path = join(base, "missive", "config.json");
  return existsSync(path) ? { path, source: "user config" } : undefined;
}

/**
 * Refuses a configuration file another user could have written (see core/files.ts
 * `checkOwnFile`): it names code to run.
 */
export function checkConfigOwnership(
  path: string,
  uid: number | undefined = process.getuid?.(),
): void {
  checkOwnFile(path, "config", "refusing to load code it names", uid);
}

/** Plugin specifiers a config file or $MISSIVE_PLUGINS may name: local paths and exec:NAME. */
function checkLocal(spec: string, where: string): void {
  if (/^(https?|npm|jsr|data|blob|node):/i.test(spec)) {
    throw new MissiveError(
      "usage",
      `${where}: plugin ${JSON.stringify(spec)} is not a local path; remote code loads only ` +
        "with an explicit --plugin on the command line",
    );
  }
}

/**
 * Plugin paths from the environment and configuration: `MISSIVE_PLUGINS` (separated
 * by the platform's path delimiter, ":" here) and the `plugins` array of the config file
 * (see `configPath`), whose relative paths resolve against the file's folder. Both name
 * local files (or `exec:NAME`) only; the config file must pass `checkConfigOwnership`.
 */
export function configuredPluginPaths(
  env: Readonly<Record<string, string | undefined>> = process.env,
  explicitConfig?: string,
): { path: string; base: string }[] {
  const out: { path: string; base: string }[] = [];
  // Split on ":" but not on the "://" of a URL nor after the "exec" of `exec:NAME`.
  for (const p of (env.MISSIVE_PLUGINS ?? "").split(/(?<!(?:^|:)exec):(?!\/\/)/).filter(Boolean)) {
    checkLocal(p, "MISSIVE_PLUGINS");
    out.push({ path: p, base: process.cwd() });
  }
  const found = configPath(explicitConfig, env);
  if (found) {
    const config = found.path;
    checkConfigOwnership(config);
    let parsed: unknown;
    try {
      parsed = JSON.parse(readTextLimited(config, 1 << 20, "config"));
    } catch (e) {
      // An unreadable config is an I/O error; anything wrong inside it is a usage error.
      if (e instanceof MissiveError && e.code === "io") throw e;
      if (e instanceof MissiveError) throw new MissiveError("usage", e.message);
      throw new MissiveError("usage", `config ${config}: ${(e as Error).message}`);
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw new MissiveError("usage", `config ${config}: must be a JSON object`);
    }
    const plugins = (parsed as { plugins?: unknown })?.plugins;
    if (
      plugins !== undefined &&
      (!Array.isArray(plugins) || !plugins.every((p) => typeof p === "string"))
    ) {
      throw new MissiveError("usage", `config ${config}: "plugins" must be an array of paths`);
    }
    for (const p of (plugins as string[] | undefined) ?? []) {
      checkLocal(p, `config ${config}`);
      out.push({ path: p, base: dirname(resolve(config)) });
    }
  }
  return out;
}

// Types that this entry point's signatures name (and the types those name), re-exported
// so that its documentation is complete on its own.
export type { Registry } from "./registry.ts";
export type {
  AmpPlugin,
  AnyStp,
  Inner,
  OpenContext,
  OptionPairs,
  Plugin,
  SealContext,
  SenderInfo,
  StpFeature,
  StpOpened,
  StpPlugin,
  StpProperties,
} from "./types.ts";
