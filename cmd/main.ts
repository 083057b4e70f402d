/**
 * The missive command line: `missive COMMAND [options]`. Dispatches to one file per
 * subcommand; turns every failure into one line on stderr and a documented exit code.
 * @module
 */
import process from "node:process";
import { MissiveError } from "../core/errors.ts";
import { sanitizeText } from "../core/sanitize.ts";
import { VERSION } from "../plugin/loader.ts";
import { card } from "./card.ts";
import { contacts } from "./contacts.ts";
import { type Command, type Io, processIo } from "./common.ts";
import { completionsCommand, manCommand } from "./help_text.ts";
import { inspect } from "./inspect.ts";
import { keygen } from "./keygen.ts";
import { listen } from "./listen.ts";
import { open } from "./open.ts";
import { plugins } from "./plugins.ts";
import { relay } from "./relay.ts";
import { seal } from "./seal.ts";
import { serve } from "./serve.ts";
import { send } from "./send.ts";
import { session } from "./session.ts";
import { sign } from "./sign.ts";
import { verify } from "./verify.ts";

const commands: Record<string, Command> = { keygen, card, contacts, seal, open, inspect, plugins };
commands.serve = serve;
commands.relay = relay;
commands.send = send;
commands.listen = listen;
commands.session = session;
commands.completions = completionsCommand(() => commands);
commands.man = manCommand(() => commands);
commands.sign = sign;
commands.verify = verify;

function mainUsage(): string {
  const width = Math.max(...Object.keys(commands).map((k) => k.length));
  return [
    `missive ${VERSION}: layered secure messaging`,
    "",
    "Usage: missive COMMAND [options]      (missive COMMAND --help for details)",
    "",
    "Commands:",
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    "",
    "Example:",
    "  missive keygen --name alice@example.org -o alice.key > alice.card",
    "  missive keygen --name bob@example.org -o bob.key > bob.card",
    '  echo "hello bob" | missive seal --from alice.key --to bob.card |',
    "    missive open --key bob.key --trust alice.card",
    "",
    "Exit codes: 0 ok, 1 internal error, 2 usage, 3 malformed input, 4 authentication",
    "failed, 5 not a recipient, 6 replay, 7 untrusted sender, 8 unknown protocol,",
    "9 key problem, 10 I/O error, 11 plugin error, 12 timeout, 13 network error,",
    "14 session ended abnormally, 15 refused by the server, 17 replay cache full.",
    "",
  ].join("\n");
}

/** Runs the CLI with `argv` (without the program name); returns the exit code. */
export async function main(argv: string[], io: Io = processIo()): Promise<number> {
  const print = (text: string) => io.stdout(new TextEncoder().encode(text));
  const [name, ...rest] = argv;
  try {
    if (name === undefined || name === "help" || name === "--help" || name === "-h") {
      const topic = name === "help" ? commands[rest[0]] : undefined;
      if (name === "help" && rest[0] !== undefined && !topic) {
        throw new MissiveError("usage", `unknown command "${rest[0]}" (see missive --help)`);
      }
      await print(topic ? topic.usage : mainUsage());
      return name === undefined ? 2 : 0;
    }
    if (name === "version" || name === "--version" || name === "-V") {
      await print(`missive ${VERSION}\n`);
      return 0;
    }
    const command = commands[name];
    if (!command) throw new MissiveError("usage", `unknown command "${name}" (see missive --help)`);
    await command.run(rest, io);
    return 0;
  } catch (e) {
    // Error messages can quote what a peer or a file said: one sanitised line each.
    if (e instanceof MissiveError) {
      io.stderr(`missive: ${sanitizeText(e.message)}\n`);
      return e.exitCode;
    }
    io.stderr(`missive: internal error: ${
      sanitizeText(String((e as Error)?.stack ?? e), {
        multiline: true,
      })
    }\n`);
    return 1;
  }
}

/** Resolves once everything written to a standard stream so far has been handed on. */
function drained(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => stream.write("", () => resolve()));
}

if (import.meta.main) {
  const code = await main(process.argv.slice(2));
  // The command is done: exit now rather than when the last socket finishes closing (a
  // peer that never answers our FIN would hold `send --timeout 1s` for the close grace).
  await Promise.all([drained(process.stdout), drained(process.stderr)]);
  process.exit(code);
}
