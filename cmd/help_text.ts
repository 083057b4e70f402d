/**
 * Shell completions and the manual page, generated from the subcommands' own help text,
 * so they never drift from `--help`: `missive completions bash|zsh|fish` and
 * `missive man` (roff for `man -l`, or save it as missive.1).
 * @module
 */
import { utf8 } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import { VERSION } from "../core/version.ts";
import { type Command, exitCodesLine } from "./common.ts";

/** What completion needs of one subcommand. */
interface CommandShape {
  name: string;
  summary: string;
  /** Long flags, e.g. "--from". */
  flags: string[];
  /** Sub-actions, e.g. relay's "register" (from usage lines "missive relay ACTION"). */
  actions: string[];
}

/** The flags and sub-actions a usage text documents. */
export function shapeOf(name: string, command: Command): CommandShape {
  const flags = new Set<string>(["--help"]);
  for (const m of command.usage.matchAll(/^\s+(?:-\w, )?(--[a-z0-9][a-z0-9-]*)/gm)) {
    flags.add(m[1]);
  }
  if (/--plugin/.test(command.usage)) flags.add("--config");
  const actions = new Set<string>();
  for (const m of command.usage.matchAll(new RegExp(`missive ${name} ([a-z][a-z-]*)`, "g"))) {
    if (!["add", "list"].includes(m[1]) || name === "contacts") actions.add(m[1]);
  }
  for (
    const m of command.usage.matchAll(new RegExp(`missive ${name} ([a-z]+(?:\\|[a-z]+)+)`, "g"))
  ) {
    for (const a of m[1].split("|")) actions.add(a);
  }
  return { name, summary: command.summary, flags: [...flags].sort(), actions: [...actions].sort() };
}

function bash(shapes: CommandShape[]): string {
  const cases = shapes.map((s) =>
    `    ${s.name}) opts="${[...s.actions, ...s.flags].join(" ")}" ;;`
  ).join("\n");
  return `# bash completion for missive ${VERSION}: eval "$(missive completions bash)"
_missive() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" cmd="\${COMP_WORDS[1]}" opts
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "${shapes.map((s) => s.name).join(" ")} --help --version" -- "$cur"))
    return
  fi
  case "$cmd" in
${cases}
    *) opts="" ;;
  esac
  if [[ "$cur" == -* ]] || [ -n "$opts" ]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  fi
  [ \${#COMPREPLY[@]} -eq 0 ] && COMPREPLY=($(compgen -f -- "$cur"))
}
complete -o filenames -F _missive missive
`;
}

function zsh(shapes: CommandShape[]): string {
  const q = (s: string) => s.replace(/'/g, "'\\''").replace(/:/g, "\\:");
  const cmds = shapes.map((s) => `    '${s.name}:${q(s.summary)}'`).join("\n");
  const cases = shapes.map((s) =>
    `    ${s.name}) _arguments '*:file:_files' ${
      s.actions.length > 0 ? `'1:action:(${s.actions.join(" ")})'` : ""
    } ${s.flags.map((f) => `'${f}[]'`).join(" ")} ;;`
  ).join("\n");
  return `#compdef missive
# zsh completion for missive ${VERSION}: missive completions zsh > "\${fpath[1]}/_missive"
_missive() {
  local -a commands
  commands=(
${cmds}
  )
  if (( CURRENT == 2 )); then
    _describe 'command' commands
    return
  fi
  case "$words[2]" in
${cases}
  esac
}
_missive "$@"
`;
}

function fish(shapes: CommandShape[]): string {
  const q = (s: string) => s.replace(/'/g, "\\'");
  const lines = [
    `# fish completion for missive ${VERSION}: missive completions fish > ~/.config/fish/completions/missive.fish`,
    "complete -c missive -f",
  ];
  for (const s of shapes) {
    lines.push(
      `complete -c missive -n '__fish_use_subcommand' -a '${s.name}' -d '${q(s.summary)}'`,
    );
    for (const a of s.actions) {
      lines.push(`complete -c missive -n '__fish_seen_subcommand_from ${s.name}' -a '${a}'`);
    }
    for (const f of s.flags) {
      lines.push(
        `complete -c missive -n '__fish_seen_subcommand_from ${s.name}' -l '${f.slice(2)}' -F`,
      );
    }
  }
  return lines.join("\n") + "\n";
}

/** roff-escaped text: backslashes, leading dots, hyphens, and non-ASCII as \[uXXXX]. */
function roff(text: string): string {
  return text.replace(/\\/g, "\\e").replace(/^([.'])/gm, "\\&$1").replace(/-/g, "\\-")
    .replace(
      /[^ -~\t\n]/gu,
      (c) => `\\[u${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}]`,
    );
}

function manPage(commands: Record<string, Command>): string {
  const parts = [
    `.TH MISSIVE 1 "" "missive ${VERSION}" "User Commands"`,
    ".SH NAME",
    "missive \\- layered secure messaging: sealed, authenticated envelopes over any pipe",
    ".SH SYNOPSIS",
    ".B missive",
    ".I COMMAND",
    "[options]",
    ".SH DESCRIPTION",
    roff(
      "missive seals application messages into authenticated, encrypted envelopes and moves " +
        "them over any pipe: a shell pipe, TCP, SIP MESSAGE. Each command below is shown " +
        "with its own help text (missive COMMAND --help prints the same).",
    ),
    ".SH COMMANDS",
  ];
  for (const [name, c] of Object.entries(commands)) {
    parts.push(`.SS ${name}`, roff(c.summary), ".PP", ".nf", roff(c.usage.trimEnd()), ".fi");
  }
  parts.push(
    ".SH EXIT STATUS",
    roff(exitCodesLine(3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17)),
    ".SH FILES",
    roff(
      "~/.config/missive/config.json (plugins to load; never a file in the current folder), " +
        "~/.config/missive/contacts.json (the address book).",
    ),
    ".SH SEE ALSO",
    "age(1), minisign(1), openssl\\-cms(1)",
  );
  return parts.join("\n") + "\n";
}

/** The `completions` subcommand over a table of commands. */
export function completionsCommand(commands: () => Record<string, Command>): Command {
  const usage = `missive completions bash|zsh|fish

Prints a completion script for the shell, made from every command's own help text.

Examples:
  eval "$(missive completions bash)"
  missive completions zsh > "\${fpath[1]}/_missive"
  missive completions fish > ~/.config/fish/completions/missive.fish

${exitCodesLine()}
`;
  return {
    summary: "print a shell completion script (bash, zsh, fish)",
    usage,
    async run(args, io) {
      const shell = args[0];
      if (shell === "--help" || shell === "-h") return await io.stdout(utf8(usage));
      const shapes = Object.entries(commands()).map(([n, c]) => shapeOf(n, c));
      const make = { bash, zsh, fish }[shell as "bash"];
      if (!make) throw new MissiveError("usage", "completions: give bash, zsh or fish");
      await io.stdout(utf8(make(shapes)));
    },
  };
}

/** The `man` subcommand: the manual page in roff. */
export function manCommand(commands: () => Record<string, Command>): Command {
  const usage = `missive man

Prints the manual page (roff), made from every command's own help text.

Examples:
  missive man | man -l -
  missive man > missive.1

${exitCodesLine()}
`;
  return {
    summary: "print the manual page (roff)",
    usage,
    async run(args, io) {
      if (args[0] === "--help" || args[0] === "-h") return await io.stdout(utf8(usage));
      if (args.length > 0) throw new MissiveError("usage", "man: takes no arguments");
      await io.stdout(utf8(manPage(commands())));
    },
  };
}
