/** `missive selftest`: the crypto paths of this runtime agree (crypto/mod.ts). @module */
import { utf8 } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import { providerChoice, selfTest } from "../crypto/mod.ts";
import { type Command, exitCodesLine, parseFlags } from "./common.ts";

const usage = `missive selftest [--json]

Runs fixed inputs through every crypto path this runtime has (WebCrypto, node:crypto,
noble) and through the provider missive uses, and compares each with noble, the
portable reference; prints which path serves each family. missive runs nothing of this
at start-up: the choice is a table of measured figures (docs/BENCHMARKS.md).

Options:
  --json        one JSON object: runtime, the chosen paths, every result

Examples:
  missive selftest
  MISSIVE_CRYPTO=noble missive selftest

${exitCodesLine()}
`;

export const selftest: Command = {
  summary: "check that this runtime's crypto paths give identical bytes",
  usage,
  async run(args, io) {
    const parsed = await parseFlags(io, args, { json: { type: "boolean" } }, usage, 0);
    if (!parsed) return;
    const choice = await providerChoice();
    const results = await selfTest();
    const failed = results.filter((r) => !r.ok);
    if (parsed.values.json) {
      const report = { runtime: choice.runtime, families: choice.families, results };
      await io.stdout(utf8(JSON.stringify(report) + "\n"));
    } else {
      const lines = [
        `runtime: ${choice.runtime}`,
        ...Object.entries(choice.families).map(([f, p]) => `  ${f.padEnd(8)} ${p}`),
        ...results.map((r) =>
          `${r.ok ? "ok  " : "FAIL"} ${r.path.padEnd(9)} ${r.family}${
            r.detail ? ` (${r.detail})` : ""
          }`
        ),
      ];
      await io.stdout(utf8(lines.join("\n") + "\n"));
    }
    if (failed.length > 0) {
      throw new MissiveError(
        "internal",
        `selftest: ${failed.length} crypto path(s) disagree with noble on this runtime`,
      );
    }
  },
};
