/**
 * The import rule of docs/ARCHITECTURE.md, checked on every `npm test`:
 *
 * 1. a module imports only from its own layer or the layers below it (type-only imports
 *    count: they couple the code just as much);
 * 2. `transports/` imports only `core/` and `envelope/` (a transport moves frames);
 * 3. a file marked internal (`_name.ts`) is imported only from its own folder (or the
 *    folders below it), and from tests/ and bench/;
 * 4. there is no import cycle among library modules (type-only imports included);
 * 5. nothing reachable from the core entry point `mod.ts`, statically or through
 *    `import()`, reaches pkijs/asn1js (CMS), `node:sqlite` or NATS (`@nats-io/*`): those
 *    load only through the named entry points (deno.json `exports`) or `cmd/`.
 * 6. a sans-I/O folder (`session/`) sets no timer and touches no transport outside its
 *    driver: a grep of the code (comments removed) for the timer functions, `node:timers`,
 *    `.frames(` and imports of `transports/`.
 *
 * Usage: `deno run --allow-read scripts/check_layers.ts [--graph]`. Exits 1 and prints
 * one line per violation; `--graph` prints the layer table it checked against.
 * @module
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import process from "node:process";

/** Layers, bottom first. A folder may import its own layer and every layer below. */
export const LAYERS: readonly (readonly string[])[] = [
  ["core"],
  ["crypto", "envelope"],
  ["keys"],
  ["plugin"],
  ["amp", "stp"],
  ["stream", "transports", "sign"],
  ["session", "messaging"],
  ["queue", "relay"],
  ["chat"],
  ["cmd"],
  ["."], // the entry points at the root (mod.ts …)
];

/** Folders whose allowed imports are narrower than their layer's. */
const ONLY: Readonly<Record<string, readonly string[]>> = {
  transports: ["core", "envelope", "transports"],
  // Example plugins load like a user's: through the public entry points or the host API.
  plugins: ["."],
};

/** Folders that are not library code: they may import anything, internals included. */
const OUTSIDE = new Set(["tests", "bench", "scripts", "docs", "node_modules", "dist", ".git"]);

/**
 * Cycles known and owned by an open issue, by the exact set of files in the cycle. Empty
 * means none is tolerated.
 */
const KNOWN_CYCLES: readonly string[][] = [];

/**
 * Sans-I/O folders: a state machine that does no I/O and sets no timer, and the only
 * files of the folder that may (its driver and its clock).
 */
export const SANS_IO: Readonly<Record<string, readonly string[]>> = {
  session: ["session/session.ts", "session/clock.ts"],
};

/** What a sans-I/O file must not do: set timers, or read or write a transport. */
const IO_USES: readonly [RegExp, string][] = [
  [/\b(setTimeout|setInterval|setImmediate|clearTimeout|clearInterval|clearImmediate)\b/, "$1"],
  [/["']node:timers(?:\/promises)?["']/, "node:timers"],
  [/\.frames\s*\(/, "a transport's frames()"],
  [/\btransport\s*\.\s*(send|close|frames)\b/i, "transport.$1"],
];

const ROOT = normalize(join(dirname(new URL(import.meta.url).pathname), ".."));

function walk(root: string, dir: string, out: string[]): string[] {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const rel = relative(root, path);
    if (OUTSIDE.has(rel.split("/")[0])) continue;
    if (statSync(path).isDirectory()) walk(root, path, out);
    else if (name.endsWith(".ts") && !name.endsWith(".d.ts")) out.push(rel);
  }
  return out;
}

/**
 * The source with comments blanked out (strings kept), so a specifier quoted in a JSDoc
 * example or a comment is not taken for an import.
 */
export function stripComments(src: string): string {
  let out = "";
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    const next = src[i + 1];
    if (c === "/" && next === "/") {
      while (i < src.length && src[i] !== "\n") i++;
    } else if (c === "/" && next === "*") {
      const end = src.indexOf("*/", i + 2);
      const stop = end < 0 ? src.length : end + 2;
      out += src.slice(i, stop).replace(/[^\n]/g, " ");
      i = stop;
    } else if (c === '"' || c === "'" || c === "`") {
      let j = i + 1;
      while (j < src.length && src[j] !== c) j += src[j] === "\\" ? 2 : 1;
      out += src.slice(i, j + 1);
      i = j + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

const IMPORT = new RegExp(
  String
    .raw`(?:^|[;\n}])\s*(?:import|export)\s+(?:type\s+)?(?:[\w*{}\s,$]+?\s+from\s+)?["']([^"']+)["']` +
    String.raw`|\bimport\(\s*["']([^"']+)["']\s*\)`,
  "g",
);

/** Relative specifiers a module imports, statically or with `import()`. */
export function importsOf(src: string): string[] {
  return allImportsOf(src).filter((spec) => spec.startsWith("."));
}

/** Every specifier a module imports (relative, `node:`, packages). */
export function allImportsOf(src: string): string[] {
  const code = stripComments(src);
  const found: string[] = [];
  for (const m of code.matchAll(IMPORT)) found.push(m[1] ?? m[2]);
  return found;
}

/** Heavy dependencies the core entry point must not reach (rule 5). */
export const HEAVY = [/^pkijs$/, /^asn1js$/, /^node:sqlite$/, /^@nats-io\//];

/**
 * The heavy specifiers reachable from `entry` (a file under `root`), each with the chain
 * of modules that reaches it.
 */
export function heavyReach(root: string, entry: string): string[] {
  const seen = new Map<string, string | undefined>([[entry, undefined]]);
  const queue = [entry];
  const found: string[] = [];
  const chain = (file: string) => {
    const path: string[] = [];
    for (let f: string | undefined = file; f; f = seen.get(f)) path.unshift(f);
    return path.join(" → ");
  };
  while (queue.length > 0) {
    const file = queue.shift()!;
    let src: string;
    try {
      src = readFileSync(join(root, file), "utf8");
    } catch {
      continue;
    }
    for (const spec of allImportsOf(src)) {
      if (!spec.startsWith(".")) {
        if (HEAVY.some((re) => re.test(spec))) found.push(`${chain(file)} → ${spec}`);
        continue;
      }
      const target = normalize(join(dirname(file), spec));
      if (!seen.has(target)) {
        seen.set(target, file);
        queue.push(target);
      }
    }
  }
  return found;
}

function folderOf(file: string): string {
  return file.includes("/") ? file.split("/")[0] : ".";
}

function layerOf(folder: string): number {
  return LAYERS.findIndex((l) => l.includes(folder));
}

/** Strongly connected components with more than one file (Tarjan). */
function cycles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const stack: string[] = [];
  const on = new Set<string>();
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      const selfLoop = (graph.get(v) ?? []).includes(v);
      if (scc.length > 1 || selfLoop) out.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return out;
}

/** Timer or transport uses in a sans-I/O file's code (comments removed). */
function ioUses(file: string, src: string, drivers: readonly string[]): string[] {
  const code = stripComments(src);
  const found: string[] = [];
  for (const [pattern, name] of IO_USES) {
    const m = code.match(pattern);
    if (m) {
      found.push(
        `${file}: uses ${name.replace("$1", m[1] ?? "")}: timers and the transport ` +
          `belong to ${drivers.join(", ")}`,
      );
    }
  }
  return found;
}

/** Checks the tree under `root` (default: this repository); one line per violation. */
export function checkLayers(root = ROOT, knownCycles = KNOWN_CYCLES): string[] {
  const files = walk(root, root, []);
  const problems: string[] = [];
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const folder = folderOf(file);
    const layer = layerOf(folder);
    if (layer < 0 && !(folder in ONLY)) {
      problems.push(`${file}: folder ${folder}/ is in no layer (add it to LAYERS)`);
      continue;
    }
    const edges: string[] = [];
    const src = readFileSync(join(root, file), "utf8");
    const sansIo = folder in SANS_IO && !SANS_IO[folder].includes(file);
    if (sansIo) problems.push(...ioUses(file, src, SANS_IO[folder]));
    for (const spec of importsOf(src)) {
      const target = normalize(join(dirname(file), spec));
      edges.push(target);
      const to = folderOf(target);
      if (sansIo && to === "transports") {
        problems.push(
          `${file}: imports ${target}: only ${SANS_IO[folder].join(", ")} touch transports`,
        );
      }
      if (OUTSIDE.has(to)) {
        problems.push(`${file}: imports ${target}, which is not library code`);
        continue;
      }
      const allowed = ONLY[folder];
      if (allowed ? !allowed.includes(to) : layerOf(to) > layer) {
        problems.push(`${file}: imports ${target} (${to}/ is above ${folder}/)`);
      }
      const base = target.split("/").pop()!;
      const home = dirname(target);
      if (base.startsWith("_") && !(dirname(file) + "/").startsWith(home + "/")) {
        problems.push(`${file}: imports ${target}, internal to ${home}/`);
      }
    }
    graph.set(file, edges);
  }
  for (const reach of heavyReach(root, "mod.ts")) {
    problems.push(`the core entry point reaches a heavy dependency: ${reach}`);
  }
  const known = new Set(knownCycles.map((c) => [...c].sort().join(" ")));
  for (const scc of cycles(graph)) {
    if (known.has(scc.join(" "))) continue;
    problems.push(`import cycle: ${scc.join(" → ")}`);
  }
  return problems;
}

if (import.meta.main) {
  if (process.argv.includes("--graph")) {
    LAYERS.forEach((l, i) => console.log(`${i}: ${l.join(", ")}`));
  }
  const problems = checkLayers();
  for (const p of problems) console.error(`check-layers: ${p}`);
  if (problems.length > 0) process.exit(1);
  const modules = walk(ROOT, ROOT, []).length;
  console.error(`check-layers: ok (${modules} modules, ${LAYERS.length} layers)`);
}
