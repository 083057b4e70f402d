/**
 * `missive chat`'s view: a scrolling conversation area, a status line and an input line
 * in a terminal (plain ANSI: cursor moves, clear, the alternate screen; no colours when
 * NO_COLOR is set), or — when stdin or stdout is not a terminal — one printed line per
 * entry and commands read line by line. Every peer-chosen string is sanitised here.
 * @module
 */
import process from "node:process";
import { utf8 } from "../core/bytes.ts";
import { sanitizeText } from "../core/sanitize.ts";
import type { ChatLine } from "../chat/mod.ts";
import type { Io } from "./io.ts";

/** One entry of the conversation area: rendered anew on every redraw (states change). */
export type Entry = { line: ChatLine; self: string } | {
  text: string;
  kind: "notice" | "problem" | "plain";
};

const two = (n: number) => String(n).padStart(2, "0");
const clock = (ms: number) => {
  const d = new Date(ms);
  return `${two(d.getHours())}:${two(d.getMinutes())}`;
};
const safe = (s: string) => sanitizeText(s);

/** An entry as text (sanitised), without colours. */
export function renderEntry(e: Entry): string {
  if ("text" in e) {
    const mark = e.kind === "problem" ? "!! " : e.kind === "notice" ? "-- " : "";
    return mark + e.text;
  }
  const l = e.line;
  const text = safe(l.text);
  if (l.direction === "out") {
    const fwd = l.forwardedBy ? ` (forwarded, written by ${safe(l.author)})` : "";
    return `${clock(l.time)} → ${safe(l.peer)}${fwd}: ${text} [${l.state}]`;
  }
  if (l.forwardedBy) {
    return `${clock(l.time)} <${safe(l.peer)}> forwarded by ${safe(l.forwardedBy)}, written by ` +
      `${safe(l.author)} (not verified): ${text}`;
  }
  return `${clock(l.time)} <${safe(l.author)}>${l.verified ? " ✓" : " ?"} ${text}`;
}

/** Splits text into rows of at most `width` characters. */
function wrap(text: string, width: number): string[] {
  const rows: string[] = [];
  const chars = [...text];
  for (let i = 0; i < chars.length || rows.length === 0; i += width) {
    rows.push(chars.slice(i, i + width).join(""));
  }
  return rows;
}

/** The view. A class: it owns the terminal's mode and the entries shown. */
export class ChatScreen {
  readonly #io: Io;
  readonly full: boolean;
  readonly #color: boolean;
  readonly #entries: Entry[] = [];
  #input = "";
  #status = "";
  #pending = false;
  #onLine?: (line: string) => void;
  #closed = false;
  #escape = "";

  constructor(io: Io, options: { full: boolean }) {
    this.#io = io;
    this.full = options.full;
    this.#color = options.full && io.stdoutIsTty && !io.env.NO_COLOR;
  }

  #write(text: string): void {
    void this.#io.stdout(utf8(text)).catch(() => {});
  }

  /** Adds an entry: printed at once in line mode, shown on the next redraw on a terminal. */
  add(entry: Entry): void {
    this.#entries.push(entry);
    if (this.#entries.length > 2000) this.#entries.splice(0, 1000);
    if (this.full) this.redraw();
    else this.#write(renderEntry(entry) + "\n");
  }

  /** Lines for people (help, lists); `text` is already safe or sanitised by the caller. */
  say(text: string, kind: "notice" | "problem" | "plain" = "plain"): void {
    for (const row of text.split("\n")) this.add({ text: row, kind });
  }

  /** A line's state changed: redraw (terminal) or say so (line mode). */
  changed(line: ChatLine): void {
    if (this.full) return this.redraw();
    this.#write(`${clock(Date.now())} ${line.state}: → ${safe(line.peer)}: ${safe(line.text)}\n`);
  }

  setStatus(text: string): void {
    this.#status = text;
    if (this.full) this.redraw();
  }

  /** Coalesces redraws to one per turn of the event loop. */
  redraw(): void {
    if (!this.full || this.#pending || this.#closed) return;
    this.#pending = true;
    setTimeout(() => {
      this.#pending = false;
      if (!this.#closed) this.#paint();
    }, 0);
  }

  #paint(): void {
    const cols = Math.max(20, process.stdout.columns || 80);
    const rows = Math.max(5, process.stdout.rows || 24);
    const area = rows - 2;
    const shown: string[] = [];
    for (let i = this.#entries.length - 1; i >= 0 && shown.length < area; i--) {
      const e = this.#entries[i];
      const wrapped = wrap(renderEntry(e), cols);
      const colored = this.#color && "text" in e && e.kind !== "plain"
        ? wrapped.map((r) => `\x1b[2m${r}\x1b[0m`)
        : wrapped;
      shown.unshift(...colored);
    }
    const visible = shown.slice(-area);
    const status = wrap(this.#status, cols)[0].padEnd(cols, this.#color ? " " : "-");
    const prompt = "> ";
    const room = cols - prompt.length - 1;
    const input = [...this.#input].slice(-room).join("");
    let out = "\x1b[H\x1b[2J";
    for (let i = 0; i < area; i++) out += `\x1b[${i + 1};1H${visible[i] ?? ""}`;
    out += `\x1b[${rows - 1};1H` + (this.#color ? `\x1b[7m${status}\x1b[0m` : status);
    out += `\x1b[${rows};1H${prompt}${input}`;
    this.#write(out);
  }

  /**
   * Reads commands: keys in raw mode on a terminal (a small line editor: characters,
   * backspace, Ctrl-U, Enter; Ctrl-C or Ctrl-D on an empty line ends), else lines from
   * stdin. Resolves when input ends.
   */
  async read(onLine: (line: string) => Promise<void>): Promise<void> {
    if (!this.full) {
      let rest = "";
      const decoder = new TextDecoder();
      for await (const chunk of this.#io.stdin()) {
        rest += decoder.decode(chunk as Uint8Array, { stream: true });
        if (rest.length > 1 << 20) rest = rest.slice(-(1 << 16)); // a line longer than 1 MiB: cut
        let nl: number;
        while ((nl = rest.indexOf("\n")) >= 0) {
          const line = rest.slice(0, nl).replace(/\r$/, "");
          rest = rest.slice(nl + 1);
          await onLine(line);
          if (this.#closed) return;
        }
      }
      if (rest) await onLine(rest);
      return;
    }
    const stdin = process.stdin;
    stdin.setRawMode?.(true);
    stdin.resume();
    this.#write("\x1b[?1049h");
    process.stdout.on?.("resize", () => this.redraw());
    this.redraw();
    await new Promise<void>((resolve) => {
      let busy = Promise.resolve();
      this.#onLine = (line) => {
        busy = busy.then(() => onLine(line)).then(() => {
          if (this.#closed) resolve();
        });
      };
      stdin.on("data", (chunk: Uint8Array | string) => {
        const text = typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk);
        if (this.#key(text)) resolve();
      });
      stdin.on("end", () => resolve());
    });
  }

  /** Handles typed keys; true when the user asked to leave. */
  #key(text: string): boolean {
    for (const ch of text) {
      if (this.#escape) {
        // Skip escape sequences (arrows, function keys): ESC [ … final byte.
        this.#escape += ch;
        if (this.#escape.length > 1 && /[@-~]/.test(ch) && !(this.#escape === "\x1b[")) {
          this.#escape = "";
        }
        if (this.#escape.length > 16) this.#escape = "";
        continue;
      }
      if (ch === "\x1b") this.#escape = ch;
      else if (ch === "\x03" || (ch === "\x04" && this.#input === "")) return true;
      else if (ch === "\r" || ch === "\n") {
        const line = this.#input;
        this.#input = "";
        this.#onLine?.(line);
      } else if (ch === "\x7f" || ch === "\b") this.#input = [...this.#input].slice(0, -1).join("");
      else if (ch === "\x15") this.#input = "";
      else if (ch >= " " && this.#input.length < 4096) this.#input += ch;
    }
    this.redraw();
    return false;
  }

  /** Leaves the terminal as it was. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.full) return;
    process.stdin.setRawMode?.(false);
    process.stdin.pause();
    this.#write("\x1b[?1049l");
  }
}
