/** `missive plugins`: every registered (type, version) and what it gives. @module */
import { utf8 } from "../core/bytes.ts";
import { providerChoice } from "../crypto/mod.ts";
import { scanPath } from "../plugin/exec/mod.ts";
import { type Command, exitCodesLine, loadRegistry, parseFlags, writeOutput } from "./common.ts";

const usage = `missive plugins [--plugin PATH ...] [--scan] [--json]

Lists every STP and AMP by (type, version) with its name and properties: built-ins,
$MISSIVE_PLUGINS, the "plugins" of the config file (--config FILE, $MISSIVE_CONFIG, or
~/.config/missive/config.json; never ./missive.json), and --plugin.

Options:
  --plugin PATH     load a plugin module, or an executable plugin: exec:NAME runs
                    missive-plugin-NAME from PATH (repeatable)
  --scan            also list the missive-plugin-* executables on PATH, without
                    running them (load one with --plugin exec:NAME)
  --json            one JSON object

An executable plugin must answer each message within $MISSIVE_PLUGIN_TIMEOUT seconds
(default 30). docs/PLUGINS.md §9 specifies the protocol.

Examples:
  missive plugins
  missive plugins --plugin plugins/json_amp.ts --json
  missive plugins --scan

${exitCodesLine(11)}
`;

export const plugins: Command = {
  summary: "list STPs and AMPs with their (type, version) and properties",
  usage,
  async run(args, io) {
    const parsed = await parseFlags(
      io,
      args,
      {
        json: { type: "boolean" },
        scan: { type: "boolean" },
        plugin: { type: "string", multiple: true },
      },
      usage,
      0,
    );
    if (!parsed) return;
    const registry = await loadRegistry(
      io,
      parsed.values as { plugin?: string[]; config?: string },
    );
    const { stps, amps } = registry.list();
    const choice = await providerChoice();
    const onPath = parsed.values.scan ? scanPath(io.env) : undefined;
    if (parsed.values.json) {
      const report = {
        crypto: choice.families,
        stps: stps.map((p) => ({
          type: p.type,
          version: p.version,
          name: p.name,
          description: p.description,
          properties: p.properties,
        })),
        amps: amps.map((p) => ({
          type: p.type,
          version: p.version,
          name: p.name,
          description: p.description,
        })),
        ...(onPath ? { executablesOnPath: onPath } : {}),
      };
      await writeOutput(io, undefined, utf8(JSON.stringify(report) + "\n"));
      return;
    }
    const lines = ["STPs (secure transport protocols):", "  type  ver  name          properties"];
    for (const p of stps) {
      const pr = p.properties;
      const props = [
        pr.confidentiality ? "encrypted" : "NOT encrypted",
        pr.authentication === "none" ? "NOT authenticated" : `auth: ${pr.authentication}`,
        pr.nonRepudiation ? "non-repudiation" : "",
        pr.forwardSecrecy ? "forward secrecy" : "",
        pr.multiRecipient ? "multi-recipient" : "",
        pr.hiddenRecipients ? "hidden recipients" : "",
      ].filter(Boolean).join(", ");
      lines.push(
        `  ${String(p.type).padStart(4)}  ${String(p.version).padStart(3)}  ${
          p.name.padEnd(12)
        }  ${props}`,
      );
      lines.push(`${" ".repeat(25)}${p.description}`);
    }
    lines.push(
      "",
      "AMPs (application message protocols):",
      "  type  ver  name          description",
    );
    for (const p of amps) {
      lines.push(
        `  ${String(p.type).padStart(4)}  ${String(p.version).padStart(3)}  ${
          p.name.padEnd(12)
        }  ${p.description}`,
      );
    }
    if (onPath) {
      lines.push("", "Executable plugins on PATH (not loaded; use --plugin exec:NAME):");
      for (const p of onPath) lines.push(`  ${p.name.padEnd(18)}  ${p.path}`);
      if (onPath.length === 0) lines.push("  (none)");
    }
    const fam = Object.entries(choice.families).map(([f, n]) => `${f}=${n}`).join(" ");
    lines.push("", `crypto provider: ${fam}`, "");
    await writeOutput(io, undefined, utf8(lines.join("\n")));
  },
};
