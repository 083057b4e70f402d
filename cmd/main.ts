/**
 * The missive command line: `missive COMMAND [options]`. Dispatches to one file per
 * subcommand; turns every failure into one line on stderr and a documented exit code.
 * @module
 */
import process from "node:process";
import { utf8 } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import { sanitizeText } from "../core/sanitize.ts";
import { VERSION } from "../core/version.ts";
import { type Command, type Io, processIo } from "./io.ts";

/**
 * Every subcommand: its one-line summary, and how to load it. A command's module (and
 * everything it imports: CMS, SQLite, the relay…) is evaluated only when that command
 * runs, so `missive --version` or a seal loads little (docs/BENCHMARKS.md, start-up).
 */
const COMMANDS: Record<string, { summary: string; load(): Promise<Command> }> = {
  keygen: {
    summary: "create an identity (secret key file + public card)",
    load: async () => (await import("./keygen.ts")).keygen,
  },
  card: {
    summary: "print the public card of a key or card (one line)",
    load: async () => (await import("./card.ts")).card,
  },
  contacts: {
    summary: "the local address book: add, list, verify, remove cards",
    load: async () => (await import("./contacts.ts")).contacts,
  },
  seal: {
    summary: "seal a message into an envelope",
    load: async () => (await import("./seal.ts")).seal,
  },
  open: {
    summary: "open an envelope and verify its sender",
    load: async () => (await import("./open.ts")).open,
  },
  inspect: {
    summary: "show an envelope's header (no keys needed)",
    load: async () => (await import("./inspect.ts")).inspect,
  },
  plugins: {
    summary: "list STPs and AMPs with their (type, version) and properties",
    load: async () => (await import("./plugins.ts")).plugins,
  },
  serve: {
    summary: "run a relay: directory, presence, durable store-and-forward",
    load: async () => (await import("./serve.ts")).serve,
  },
  relay: {
    summary: "talk to a relay: register, lookup, list, status, send, inbox, watch",
    load: async () => (await import("./relay.ts")).relay,
  },
  chat: {
    summary: "chat with friends: requests, presence, encrypted conversations (relay or LAN)",
    load: async () => (await import("./chat.ts")).chat,
  },
  send: {
    summary: "seal a message and send it over a transport (tcp, sip, stdio)",
    load: async () => (await import("./send.ts")).send,
  },
  listen: {
    summary: "receive messages over a transport (tcp, sip, stdio) and answer with receipts",
    load: async () => (await import("./listen.ts")).listen,
  },
  session: {
    summary: "live session: mutually authenticated, re-keyed messages (listen | connect)",
    load: async () => (await import("./session.ts")).session,
  },
  sign: {
    summary: "sign a file: a detached signature (missive's or minisign's format)",
    load: async () => (await import("./sign.ts")).sign,
  },
  verify: {
    summary: "check a detached signature of a file (missive's or minisign's)",
    load: async () => (await import("./verify.ts")).verify,
  },
  selftest: {
    summary: "check that this runtime's crypto paths give identical bytes",
    load: async () => (await import("./selftest.ts")).selftest,
  },
  completions: {
    summary: "print a shell completion script (bash, zsh, fish)",
    load: async () => (await import("./help_text.ts")).completionsCommand(await loadAll()),
  },
  man: {
    summary: "print the manual page (roff)",
    load: async () => (await import("./help_text.ts")).manCommand(await loadAll()),
  },
};

/** Every command loaded (for the completions and the manual page, made from their help). */
async function loadAll(): Promise<() => Record<string, Command>> {
  const all: Record<string, Command> = {};
  for (const [name, c] of Object.entries(COMMANDS)) {
    all[name] = name === "completions" || name === "man"
      // These two are made from the others; here they need only a name and a summary.
      ? { summary: c.summary, usage: `missive ${name}\n`, run: () => Promise.resolve() }
      : await c.load();
  }
  return () => all;
}

function mainUsage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  return [
    `missive ${VERSION}: layered secure messaging`,
    "",
    "Usage: missive COMMAND [options]      (missive COMMAND --help for details)",
    "",
    "Commands:",
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
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
    "14 session ended abnormally, 15 refused by the server, 16 queued locally (not accepted",
    "by a relay), 17 replay cache full.",
    "",
  ].join("\n");
}

/** Runs the CLI with `argv` (without the program name); returns the exit code. */
export async function main(argv: string[], io: Io = processIo()): Promise<number> {
  const print = (text: string) => io.stdout(utf8(text));
  const [name, ...rest] = argv;
  try {
    if (name === undefined || name === "help" || name === "--help" || name === "-h") {
      const topic = name === "help" ? await COMMANDS[rest[0]]?.load() : undefined;
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
    const entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
    if (!entry) throw new MissiveError("usage", `unknown command "${name}" (see missive --help)`);
    await (await entry.load()).run(rest, io);
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

if (import.meta.main) {
  const io = processIo();
  const code = await main(process.argv.slice(2), io);
  // The command is done: exit now rather than when the last socket finishes closing (a
  // peer that never answers our FIN would hold `send --timeout 1s` for the close grace).
  await io.flush?.();
  process.exit(code);
}
