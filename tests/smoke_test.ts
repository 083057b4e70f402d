import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runCli } from "./helpers.ts";

describe("cli in-process", () => {
  it("prints usage and exits 2 without a command", async () => {
    const r = await runCli([]);
    assert.equal(r.code, 2);
    assert.match(r.text, /Usage: missive COMMAND/);
  });
});
