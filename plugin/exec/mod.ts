/**
 * Executable plugins (DESIGN §3, way 3): a program `missive-plugin-NAME` speaking
 * length-prefixed CBOR over stdin/stdout (docs/PLUGINS.md, "Executable plugins: the
 * protocol"). Loading is explicit (`--plugin exec:NAME`, `--plugin PATH`, MISSIVE_PLUGINS,
 * the config file); `scanPath` only lists candidates and runs nothing.
 * @module
 */
import { accessSync, constants, readdirSync, statSync } from "node:fs";
import { basename, delimiter, extname, isAbsolute, join, resolve } from "node:path";
import process from "node:process";
import { CborReader, type CborValue } from "../../core/cbor.ts";
import { MissiveError } from "../../core/errors.ts";
import { PROPERTY_FLAGS } from "../registry.ts";
import type { Plugin, StpProperties } from "../types.ts";
import { ampAdapter, stpAdapter } from "./_adapters.ts";
import { clean, DEFAULT_TIMEOUT_MS, PluginProcess } from "./_process.ts";

export { stopAllPlugins } from "./_process.ts";

const owners = new WeakMap<Plugin, PluginProcess>();

/** Stops the processes behind executable plugins (others in the list are ignored). */
export function stopExecPlugins(plugins: readonly Plugin[]): void {
  for (const p of plugins) owners.get(p)?.stop();
}

/** Protocol version missive speaks; sent in `hello`. */
export const EXEC_PROTOCOL = 1;
/** Prefix of executable plugin file names. */
export const EXEC_PREFIX = "missive-plugin-";
/** Extensions that mark a module plugin, never an executable one. */
const MODULE_EXTENSIONS = [".ts", ".mts", ".cts", ".tsx", ".js", ".mjs", ".cjs", ".jsx"];
const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
/** Most plugins one executable may describe. */
const MAX_PLUGINS = 64;

function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * True when `spec` names an executable plugin: `exec:NAME`, or a path (not a URL) to an
 * executable file whose extension is not a module's.
 */
export function isExecSpec(spec: string, base = process.cwd()): boolean {
  if (spec.startsWith("exec:")) return true;
  if (/^[a-z][a-z0-9+.-]*:/i.test(spec)) return false;
  if (MODULE_EXTENSIONS.includes(extname(spec).toLowerCase())) return false;
  return isExecutableFile(isAbsolute(spec) ? spec : resolve(base, spec));
}

/** Every `missive-plugin-*` executable on PATH, first occurrence of each name wins. */
export function scanPath(env = process.env): { name: string; path: string }[] {
  const seen = new Map<string, string>();
  for (const dir of (env.PATH ?? "").split(delimiter).filter(Boolean)) {
    let entries: string[];
    try {
      entries = readdirSync(dir);
    } catch {
      continue;
    }
    for (const f of entries.sort()) {
      const name = f.slice(EXEC_PREFIX.length);
      if (!f.startsWith(EXEC_PREFIX) || !NAME.test(name) || seen.has(name)) continue;
      if (isExecutableFile(join(dir, f))) seen.set(name, join(dir, f));
    }
  }
  return [...seen].map(([name, path]) => ({ name, path }));
}

/** The file an exec spec names: `exec:NAME` is looked up on PATH. */
export function resolveExecSpec(spec: string, base = process.cwd(), env = process.env): string {
  if (!spec.startsWith("exec:")) return isAbsolute(spec) ? spec : resolve(base, spec);
  const name = spec.slice(5);
  if (!NAME.test(name)) {
    throw new MissiveError("usage", `plugin ${spec}: a name is lower-case letters, digits, . _ -`);
  }
  const hit = scanPath(env).find((p) => p.name === name);
  if (!hit) {
    throw new MissiveError("plugin", `plugin ${spec}: no executable ${EXEC_PREFIX}${name} on PATH`);
  }
  return hit.path;
}

/** Per-message wait from `MISSIVE_PLUGIN_TIMEOUT` (seconds; 0 waits for ever). */
export function execTimeoutMs(env = process.env): number {
  const raw = env.MISSIVE_PLUGIN_TIMEOUT;
  if (raw === undefined || raw === "") return DEFAULT_TIMEOUT_MS;
  const s = Number(raw);
  if (!/^\d+(\.\d+)?$/.test(raw) || !(s <= 86_400)) {
    throw new MissiveError("usage", `MISSIVE_PLUGIN_TIMEOUT must be seconds 0..86400, got ${raw}`);
  }
  return Math.round(s * 1000);
}

/**
 * Starts an executable plugin, performs the `hello` handshake and returns the plugins
 * it describes. The process stays up for later calls and is killed when missive exits.
 */
export async function loadExecPlugins(
  spec: string,
  missiveVersion: string,
  base = process.cwd(),
  env = process.env,
): Promise<Plugin[]> {
  const path = resolveExecSpec(spec, base, env);
  if (!isExecutableFile(path)) {
    throw new MissiveError("plugin", `plugin ${spec}: ${path} is not an executable file`);
  }
  const label = `plugin ${basename(path)}`;
  const child = new PluginProcess(path, label, execTimeoutMs(env));
  try {
    const hello = await child.request(
      "hello",
      new Map<string, CborValue>([["op", "hello"], ["protocol", EXEC_PROTOCOL], [
        "missive",
        missiveVersion,
      ]]),
    );
    const plugins = describe(child, hello);
    for (const p of plugins) owners.set(p, child);
    return plugins;
  } catch (e) {
    child.stop();
    if (e instanceof MissiveError && e.code !== "plugin") {
      throw new MissiveError("plugin", `${label}: hello failed: ${e.message}`);
    }
    throw e;
  }
}

function describe(child: PluginProcess, hello: CborValue): Plugin[] {
  const fail = (why: string): never => {
    throw new MissiveError("plugin", `${child.label}: bad hello reply: ${why}`);
  };
  try {
    const r = CborReader.from(hello, "hello reply");
    const protocol = r.uint("protocol");
    if (protocol !== EXEC_PROTOCOL) fail(`speaks protocol ${protocol}, missive ${EXEC_PROTOCOL}`);
    const list = r.array("plugins", MAX_PLUGINS);
    if (list.length === 0) fail("describes no plugins");
    return list.map((d, index) => {
      const p = CborReader.from(d, `plugin ${index}`);
      const kind = p.text("kind", 3);
      const common = {
        index,
        type: p.uint("type", 0xffff),
        version: p.uint("version", 0xffff),
        name: p.text("name", 32),
        description: clean(p.text("description", 200), 200),
      };
      if (kind === "amp") return ampAdapter(child, common);
      if (kind !== "stp") fail(`plugin ${index}: kind must be "stp" or "amp"`);
      return stpAdapter(child, { ...common, properties: properties(p.raw("properties")) });
    });
  } catch (e) {
    if (e instanceof MissiveError && e.code === "malformed") fail(e.message);
    throw e;
  }
}

function properties(value: CborValue | undefined) {
  const r = CborReader.from(value ?? null, "properties");
  const out: Record<string, boolean | string> = {};
  for (const f of PROPERTY_FLAGS) out[f] = r.bool(f);
  out.authentication = r.text("authentication", 16);
  return out as unknown as StpProperties;
}
