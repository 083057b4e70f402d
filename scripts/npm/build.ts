/**
 * Builds the npm package of the library (`npm run pack`): JavaScript and `.d.ts` files
 * compiled by TypeScript from the entry points of deno.json's `exports` (Deno refuses
 * TypeScript inside node_modules, so the package ships JavaScript), a package.json with
 * one `exports` entry per entry point and the runtime dependencies, and the tarball
 * `dist/missive-VERSION.tgz` made by `npm pack`. Prints the tarball's path.
 *
 * The root package.json stays private: it is the development tree (tests, benchmarks,
 * the CLI); the package is what `dist/npm/` holds.
 * @module
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";

const root = join(import.meta.dirname!, "..", "..");
const out = join(root, "dist", "npm");
const rootPackage = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const denoConfig = JSON.parse(readFileSync(join(root, "deno.json"), "utf8"));

rmSync(out, { recursive: true, force: true });
execFileSync(
  process.execPath.includes("deno") ? "node" : process.execPath,
  [
    join(root, "node_modules", "typescript", "bin", "tsc"),
    "-p",
    join(import.meta.dirname!, "tsconfig.json"),
  ],
  { stdio: "inherit" },
);

const exportsMap: Record<string, { types: string; import: string }> = {};
for (const [name, path] of Object.entries(denoConfig.exports as Record<string, string>)) {
  const base = path.replace(/\.ts$/, "");
  exportsMap[name] = { types: `${base}.d.ts`, import: `${base}.js` };
}
const pkg = {
  name: rootPackage.name,
  version: rootPackage.version,
  description: rootPackage.description,
  license: rootPackage.license,
  type: "module",
  exports: exportsMap,
  // The declarations use node:* types (streams, child processes): TypeScript consumers
  // need them, so they come with the package.
  dependencies: {
    ...rootPackage.dependencies,
    "@types/node": rootPackage.devDependencies["@types/node"],
  },
  engines: { deno: ">=2.5", bun: ">=1.3" },
  sideEffects: false,
};
writeFileSync(join(out, "package.json"), JSON.stringify(pkg, null, 2) + "\n");
copyFileSync(join(root, "README.md"), join(out, "README.md"));
const tarball = execFileSync(
  "npm",
  ["pack", "--silent", "--pack-destination", join(root, "dist")],
  {
    cwd: out,
    encoding: "utf8",
  },
).trim().split("\n").pop()!;
console.log(join(root, "dist", tarball));
