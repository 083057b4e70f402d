/**
 * `missive session listen|connect URL`: a live session (SPEC §22) between two terminals
 * or scripts. Lines of input are sent as messages; messages received are printed. The
 * protocol is session/; this file parses flags, loads keys and prints.
 * @module
 */
import process from "node:process";
import { setTimeout as exitTimer } from "node:timers";
import { type Bytes, fromUtf8, toHex, utf8 } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import { sanitizeText } from "../core/sanitize.ts";
import { readFileLimited } from "../core/files.ts";
import type { Card } from "../keys/card.ts";
import type { SessionEvent, SessionOptions } from "../session/options.ts";
import type { SessionVersion } from "../session/messages.ts";
import { Session } from "../session/session.ts";
import { connectTransport as connectTo, listenTransport as listenAt } from "../transports/mod.ts";
import type { Transport } from "../transports/types.ts";
import {
  type Command,
  exitCodesLine,
  type Io,
  loadCards,
  loadIdentity,
  note,
  parseDuration,
  parseFlags,
} from "./common.ts";

const usage = `missive session listen URL --key KEY (--trust CARD | --open) [options]
missive session connect URL --key KEY --trust CARD [options]

A live, mutually authenticated session (SPEC §22): HELLO / HELLO_ACK with ephemeral
X25519 keys signed by both identities, then every message encrypted and acknowledged,
with a fresh key exchange every N acknowledged messages. Session version 2 (the default,
SPEC §22.12) adds a fresh ML-KEM-768 + X25519 (X-Wing) encapsulation to every key
exchange, so recorded sessions stay secret if X25519 falls; version 1 peers are still
accepted unless --require-pq. Each line of input is sent as one message; each message
received is printed as one line.

listen serves one session and exits when it ends (the client closes it); it prints
"missive: listening on URL" on stderr first (with the real port when PORT is 0).
connect closes the session when its input ends and every line was acknowledged.

URL:
  tcp://HOST:PORT       a TCP connection (PORT 0 with listen: any free port)
  stdio:                frames on stdin/stdout (e.g. through socat or two FIFOs); then
                        lines come only from --input, and output goes to stderr

Options:
  --key KEY             this side's secret key file
  --trust CARD          listen: a client admitted; connect: the server's card (pinned);
                        card file, card line, key file or directory (repeatable)
  --open                listen: admit any client (open registration)
  --json                print one JSON object per line for each message and event:
                        handshake, rekey (with key IDs, "version" and "kem"), resend,
                        discard, close
  --require-pq          refuse a classical (session version 1) peer: only version 2,
                        post-quantum hybrid (ML-KEM-768 + X25519), is spoken
  --session-version N   speak only session version N (1: for peers older than
                        version 2; the default speaks 2 and accepts 1)
  --rekey-after N       listen: re-key after N acknowledged messages (default 10; 0 never)
  --window N            messages in flight before waiting for acknowledgements (default 1)
  --ttl DURATION        discard messages older than this (default 25s)
  --idle-timeout DURATION
                        ask for a resend after this long without an answer (default 45)
  --s0-file FILE        a pre-shared secret (at least 16 bytes) both sides must hold
  --input FILE          send the lines of FILE instead of standard input

Examples:
  missive session listen tcp://127.0.0.1:7800 --key srv.key --trust client.card --json
  seq 25 | missive session connect tcp://127.0.0.1:7800 --key cli.key --trust srv.card

${exitCodesLine(7, 9, 10, 12, 13, 14)}
`;

const flags = {
  key: { type: "string" },
  trust: { type: "string", multiple: true },
  open: { type: "boolean" },
  json: { type: "boolean" },
  "rekey-after": { type: "string" },
  window: { type: "string" },
  ttl: { type: "string" },
  "idle-timeout": { type: "string" },
  "s0-file": { type: "string" },
  input: { type: "string" },
  "require-pq": { type: "boolean" },
  "session-version": { type: "string" },
} as const;

const MAX_S0_FILE = 4096;

/** A timer that ends the process with the exit code main set; unref'd. */
const exitSoon = (ms: number) => exitTimer(() => process.exit(), ms);
const MAX_LINE = 1024 * 1024;

function count(value: string | undefined, name: string, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min) {
    throw new MissiveError("usage", `--${name} must be an integer ≥ ${min}, not ${value}`);
  }
  return n;
}

/** `--session-version N`: the one version to speak; with --require-pq it must be 2. */
function sessionVersions(
  value: string | undefined,
  requirePq: boolean,
): SessionVersion[] | undefined {
  if (value === undefined) return undefined;
  if (value !== "1" && value !== "2") {
    throw new MissiveError("usage", `--session-version must be 1 or 2, not ${value}`);
  }
  if (requirePq && value === "1") {
    throw new MissiveError(
      "usage",
      "--require-pq needs session version 2, not --session-version 1",
    );
  }
  return [Number(value) as SessionVersion];
}

/** Splits input chunks into lines (without \n or \r\n), each at most MAX_LINE bytes. */
async function* lines(
  input: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): AsyncGenerator<Bytes> {
  let pending = new Uint8Array(0);
  for await (const chunk of input) {
    const joined = new Uint8Array(pending.length + chunk.length);
    joined.set(pending);
    joined.set(chunk, pending.length);
    let start = 0;
    for (let i = 0; i < joined.length; i++) {
      if (joined[i] !== 0x0a) continue;
      const end = i > start && joined[i - 1] === 0x0d ? i - 1 : i;
      yield joined.slice(start, end);
      start = i + 1;
    }
    pending = joined.slice(start);
    if (pending.length > MAX_LINE) {
      throw new MissiveError("too-large", `input line longer than ${MAX_LINE} bytes`);
    }
  }
  if (pending.length > 0) yield pending;
}

/** How received messages and events are printed. */
function printer(io: Io, json: boolean, toStderr: boolean) {
  // On a terminal, what the peer sent is shown through the sanitiser; into a pipe or a
  // file it is the message itself, one line each.
  const tty = toStderr ? io.stderrIsTty : io.stdoutIsTty;
  let chain = Promise.resolve();
  const write = (line: string) => {
    chain = chain.then(() => (toStderr ? io.stderr(line + "\n") : io.stdout(utf8(line + "\n"))));
    return chain;
  };
  const text = (m: Uint8Array): { text: string } | { hex: string } => {
    try {
      return { text: fromUtf8(m) };
    } catch {
      return { hex: toHex(m) };
    }
  };
  return {
    message(m: Uint8Array) {
      if (json) return write(JSON.stringify({ type: "message", ...text(m) }));
      const t = text(m);
      if (!("text" in t)) return write(`[hex] ${t.hex}`);
      return write(tty ? sanitizeText(t.text) : t.text.replace(/[\r\n]/g, " "));
    },
    event(e: SessionEvent) {
      if (json) void write(JSON.stringify(e));
    },
    flush: () => chain,
  };
}

async function transportFor(
  io: Io,
  mode: "listen" | "connect",
  url: string,
): Promise<{ transport: Transport; release(): Promise<void> }> {
  // stdio: the frames are read from io.stdin; at the end that read is abandoned (return()),
  // which also lets the process exit without waiting for the peer's end of input.
  let reading: AsyncIterator<Uint8Array> | undefined;
  const stdio = {
    input: (): AsyncIterable<Uint8Array> => ({
      [Symbol.asyncIterator]: () => (reading = io.stdin()[Symbol.asyncIterator]()),
    }),
    output: (d: Uint8Array) => io.stdout(d),
  };
  const stopReading = () => {
    void reading?.return?.()?.catch(() => {});
    // Deno keeps a process alive while a read of stdin is pending, even after return()
    // or destroy(); over stdio the peer's end of input may never come (socat, FIFOs), so
    // the real process exits shortly after the command has finished (main sets the code).
    if (reading && io.stdin() === process.stdin) exitSoon(250).unref();
  };
  if (mode === "connect") {
    const transport = await connectTo(url, { stdio });
    return { transport, release: () => transport.close().finally(stopReading) };
  }
  const listener = await listenAt(url, { stdio, maxConnections: 1 });
  note(io, `missive: listening on ${listener.url}`);
  for await (const transport of listener.connections()) {
    return { transport, release: () => listener.close().finally(stopReading) };
  }
  throw new MissiveError("network", `${url}: the listener closed before a peer connected`);
}

export const session: Command = {
  summary: "live session: mutually authenticated, re-keyed messages (listen | connect)",
  usage,
  async run(args, io) {
    const [mode, ...rest] = args;
    if (mode === "--help" || mode === "-h" || mode === undefined) {
      if (mode === undefined) {
        throw new MissiveError("usage", "session: listen or connect? (see --help)");
      }
      await io.stdout(utf8(usage));
      return;
    }
    if (mode !== "listen" && mode !== "connect") {
      throw new MissiveError(
        "usage",
        `session: expected listen or connect, not ${JSON.stringify(mode)}`,
      );
    }
    const parsed = await parseFlags(io, rest, flags, usage, 1);
    if (!parsed) return;
    const f = parsed.values;
    const url = parsed.positionals[0];
    if (!url) throw new MissiveError("usage", `session ${mode}: a URL is required (see --help)`);
    if (!f.key) throw new MissiveError("usage", `session ${mode}: --key is required`);
    const stdioTransport = url.startsWith("stdio:");
    if (stdioTransport && f.input === undefined && mode === "connect") {
      note(io, "missive: stdio: carries the frames; no lines are sent without --input");
    }
    const identity = await loadIdentity(io, f.key);
    const cards: Card[] = await loadCards(f.trust ?? [], { io, purpose: "trust" });
    if (mode === "connect" && cards.length === 0) {
      throw new MissiveError("usage", "session connect: --trust SERVER.card is required");
    }
    if (mode === "listen" && cards.length === 0 && !f.open) {
      throw new MissiveError("usage", "session listen: --trust CLIENT.card or --open is required");
    }
    const out = printer(io, f.json ?? false, stdioTransport);
    const options: SessionOptions = {
      rekeyAfter: count(f["rekey-after"], "rekey-after", 10),
      window: count(f.window, "window", 1, 1),
      ttlMs: parseDuration(f.ttl ?? "25s", "--ttl", { io }),
      idleTimeoutMs: parseDuration(f["idle-timeout"] ?? "45s", "--idle-timeout", { io }),
      s0: f["s0-file"] ? readFileLimited(f["s0-file"], MAX_S0_FILE, "s0 file") : undefined,
      requirePq: f["require-pq"] ?? false,
      versions: sessionVersions(f["session-version"], f["require-pq"] ?? false),
      onEvent: (e) => out.event(e),
    };
    const { transport, release } = await transportFor(io, mode, url);
    try {
      const trust = cards.length === 1 ? { peer: cards[0] } : { trusted: cards };
      const s = mode === "connect"
        ? await Session.connect(transport, identity, { ...options, ...trust })
        : await Session.accept(transport, identity, {
          ...options,
          trusted: cards,
          authorize: f.open ? () => true : undefined,
        });
      const receiving = (async () => {
        for await (const m of s.messages()) await out.message(m);
      })();
      receiving.catch(() => {});
      const input = f.input !== undefined
        ? [readFileLimited(f.input, 64 * 1024 * 1024, "input")]
        : stdioTransport
        ? []
        : io.stdin();
      const sends: Promise<void>[] = [];
      for await (const line of lines(input)) {
        if (s.error || s.state === "closed" || s.state === "failed") break;
        sends.push(s.send(line));
        if (sends.length >= 1024) await Promise.all(sends.splice(0));
      }
      await Promise.all(sends);
      if (mode === "connect") await s.close();
      await receiving;
      await s.ended;
      if (s.error) throw s.error;
    } finally {
      await out.flush();
      await release();
    }
  },
};
