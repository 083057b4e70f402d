/**
 * The import rule (docs/ARCHITECTURE.md, scripts/check_layers.ts): the repository passes
 * it, and the checker catches each kind of violation in a small tree made for the test.
 * @module
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { checkLayers, importsOf, stripComments } from "../scripts/check_layers.ts";

function has2(problems: string[], re: RegExp): void {
  assert.ok(problems.some((p) => re.test(p)), problems.join("\n"));
}

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), "missive-layers-"));
  for (const [path, src] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), src);
  }
  return root;
}

describe("import rule", () => {
  it("holds for this repository", () => {
    assert.deepEqual(checkLayers(), []);
  });

  it("reads static, type-only, re-export and dynamic imports, not ones in comments", () => {
    const src = [
      `import { a } from "./a.ts";`,
      `import type { B } from "../b.ts";`,
      `export { c } from "./c.ts";`,
      `export * from "./d.ts";`,
      `const e = await import("./e.ts");`,
      `/** @example`,
      ` * import { x } from "./x.ts";`,
      ` */`,
      `// import { y } from "./y.ts";`,
      `const url = "tcp://127.0.0.1:1"; import { z } from "node:fs";`,
    ].join("\n");
    assert.deepEqual(importsOf(src), ["./a.ts", "../b.ts", "./c.ts", "./d.ts", "./e.ts"]);
    assert.equal(stripComments(`"//not a comment" // gone`).trim(), `"//not a comment"`);
  });

  it("refuses up-layer imports, wire-layer imports beyond core/envelope, internals, cycles", () => {
    const root = tree({
      "core/bytes.ts": `export const x = 1;`,
      "core/bad.ts": `import type { K } from "../keys/card.ts";`,
      "keys/card.ts": `import { x } from "../core/bytes.ts"; export type K = 1;`,
      "transports/tcp.ts": `import { y } from "../keys/card.ts";`,
      "stp/_helper.ts": `export const h = 1;`,
      "amp/text.ts": `import { h } from "../stp/_helper.ts";`,
      "stp/group/open.ts": `import { h } from "../_helper.ts";`,
      "relay/a.ts": `import { b } from "./b.ts";`,
      "relay/b.ts": `import type { a } from "./a.ts";`,
      "weird/x.ts": ``,
      "mod.ts": `export * from "./relay/a.ts";`,
      "queue/db.ts": `import { DatabaseSync } from "node:sqlite";`,
    });
    try {
      const problems = checkLayers(root, []);
      const has = (re: RegExp) => assert.ok(problems.some((p) => re.test(p)), problems.join("\n"));
      has(/^core\/bad\.ts: imports keys\/card\.ts \(keys\/ is above core\/\)/);
      has(/^transports\/tcp\.ts: imports keys\/card\.ts/);
      has(/^amp\/text\.ts: imports stp\/_helper\.ts, internal to stp\//);
      has(/^import cycle: relay\/a\.ts → relay\/b\.ts$/);
      has(/^weird\/x\.ts: folder weird\/ is in no layer/);
      assert.ok(!problems.some((p) => p.includes("queue/db.ts")), "not reachable yet");
      // A subfolder may use its parent's internals.
      assert.ok(!problems.some((p) => p.startsWith("stp/group/open.ts")), problems.join("\n"));
      assert.equal(problems.length, 5, problems.join("\n"));
      // A known cycle, named exactly, is tolerated.
      assert.equal(checkLayers(root, [["relay/b.ts", "relay/a.ts"]]).length, 4);
      // The core entry point reaching node:sqlite, however deep, is refused.
      writeFileSync(
        join(root, "relay/b.ts"),
        `import type { a } from "./a.ts";\nawait import("../queue/db.ts");`,
      );
      has2(
        checkLayers(root, []),
        /core entry point reaches a heavy dependency: mod\.ts → relay\/a\.ts → relay\/b\.ts → queue\/db\.ts → node:sqlite/,
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("keeps timers and transports out of session/ but for its driver and clock", () => {
    const root = tree({
      "transports/types.ts": `export type Transport = { send(f: Uint8Array): Promise<void> };`,
      // The driver and the clock may.
      "session/session.ts": [
        `import type { Transport } from "../transports/types.ts";`,
        `import { setImmediate } from "node:timers";`,
        `export const go = (transport: Transport) => setImmediate(() => transport.send(x));`,
      ].join("\n"),
      "session/clock.ts": `export const t = setTimeout(() => {}, 1); clearTimeout(t);`,
      // The machine may name them in comments only.
      "session/machine.ts": `// not setTimeout, not transport.send(frame)\nexport const m = 1;`,
      "session/_wait.ts": `export const w = () => setTimeout(() => {}, 1);`,
      "session/_batch.ts": `import { setImmediate as later } from "node:timers";`,
      "session/_reader.ts": [
        `import type { Transport } from "../transports/types.ts";`,
        `export async function read(t: Transport) { for await (const f of t.frames()) f; }`,
      ].join("\n"),
      "session/_writer.ts": `export const w = (o: any) => o.transport.send(new Uint8Array(1));`,
    });
    try {
      const problems = checkLayers(root, []);
      const has = (re: RegExp) => assert.ok(problems.some((p) => re.test(p)), problems.join("\n"));
      has(
        /^session\/_wait\.ts: uses setTimeout: timers and the transport belong to session\/session\.ts/,
      );
      has(/^session\/_batch\.ts: uses setImmediate/);
      has(/^session\/_batch\.ts: uses node:timers/);
      has(/^session\/_reader\.ts: uses a transport's frames\(\)/);
      has(/^session\/_reader\.ts: imports transports\/types\.ts: only session\/session\.ts/);
      has(/^session\/_writer\.ts: uses transport\.send/);
      for (const allowed of ["session/session.ts", "session/clock.ts", "session/machine.ts"]) {
        assert.ok(!problems.some((p) => p.startsWith(allowed)), problems.join("\n"));
      }
      assert.equal(problems.length, 6, problems.join("\n"));
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
