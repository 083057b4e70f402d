/**
 * The library as others install it (issue 21, item 3): `npm run pack` builds the package
 * (JavaScript + .d.ts, one export per entry point), which is installed from its tarball
 * into a folder outside the tree and imported there under Deno and Bun — values and
 * types. Heavy (a build and an install): registered under Deno only, and it drives both
 * runtimes itself.
 * @module
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { describe, it } from "node:test";
import { ROOT } from "./helpers.ts";

const DENO = join(ROOT, "node_modules", ".bin", "deno");
const BUN = join(ROOT, "node_modules", ".bin", "bun");

const CONSUMER = `
import assert from "node:assert/strict";
import { createIdentity, defaultRegistry, getCryptoProvider, type Identity, openMessage, sealMessage, simpleV2, textV1 } from "missive";
import { bytesSource, memorySink, openStream, sealStream } from "missive/stream";
import { RelayStore } from "missive/relay";
import { smimeV1 } from "missive/smime";
import { Session } from "missive/session";
import { parseTransportUrl } from "missive/transports";
import { MessageServer } from "missive/messaging";
import { pluginHost } from "missive/plugins";

const crypto = await getCryptoProvider();
const caps = { stps: [[2, 2]] as const, amps: [[1, 1]] as const };
const alice: Identity = await createIdentity(crypto, { address: "alice@example.org", ...caps });
const bob = await createIdentity(crypto, { address: "bob@example.org", ...caps });
const sealed = await sealMessage({
  stp: simpleV2, amp: textV1, message: { text: "hi" }, sender: alice, recipients: [bob.card],
});
const registry = defaultRegistry();
const opened = await openMessage(sealed, { registry, identity: bob, trusted: [alice.card] });
assert.deepEqual(opened.message, { text: "hi" });
const out = memorySink();
await sealStream({ stp: simpleV2, sender: alice, recipients: [bob.card], source: bytesSource(new Uint8Array(1000)), sink: out });
const back = memorySink();
await openStream({ registry, source: bytesSource(out.bytes()), sink: back, identity: bob });
assert.equal(back.bytes().length, 1000);
assert.equal(typeof RelayStore.open, "function");
assert.equal(smimeV1.name, "smime");
assert.equal(typeof Session.connect, "function");
assert.equal(parseTransportUrl("tcp://127.0.0.1:1").scheme, "tcp");
assert.equal(typeof MessageServer, "function");
assert.equal((await pluginHost()).version.length > 0, true);
console.log("consumer ok");
`;

if (!process.versions.bun) {
  describe("the npm package", () => {
    it("installs from its tarball outside the tree and imports under Deno and Bun", () => {
      const tarball = execFileSync(DENO, ["run", "--allow-all", "scripts/npm/build.ts"], {
        cwd: ROOT,
        encoding: "utf8",
        stdio: ["ignore", "pipe", "inherit"],
      }).trim().split("\n").pop()!;
      const dir = mkdtempSync(join(tmpdir(), "missive-consumer-"));
      try {
        writeFileSync(
          join(dir, "package.json"),
          JSON.stringify({ name: "consumer", private: true, type: "module" }),
        );
        execFileSync(
          "npm",
          ["install", "--no-audit", "--no-fund", "--prefer-offline", "--silent", tarball],
          { cwd: dir, stdio: "inherit" },
        );
        writeFileSync(join(dir, "use.ts"), CONSUMER);
        // Types from the .d.ts files, then the run, under Deno.
        execFileSync(DENO, ["check", "use.ts"], { cwd: dir, stdio: "inherit" });
        const deno = execFileSync(DENO, ["run", "--allow-all", "use.ts"], {
          cwd: dir,
          encoding: "utf8",
        });
        assert.match(deno, /consumer ok/);
        const bun = execFileSync(BUN, ["use.ts"], { cwd: dir, encoding: "utf8" });
        assert.match(bun, /consumer ok/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
