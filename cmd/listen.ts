/** `missive listen URL`: receive, open and print (or hand to a command) each message. @module */
import { spawn } from "node:child_process";
import { toHex, utf8 } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import { sanitizeText } from "../core/sanitize.ts";
import type { Registry } from "../plugin/registry.ts";
import type { OpenedMessage } from "../plugin/message.ts";
import { MemoryReplayCache } from "../plugin/replay.ts";
import { DEFAULT_LISTEN_FRAME, MAX_FRAME_SIZE } from "../transports/framing.ts";
import { listenTransport as listenAt, parseTransportUrl } from "../transports/mod.ts";
import { MessageServer } from "../messaging/serve.ts";
import {
  cliOf,
  type Command,
  exitCodesLine,
  formatTime,
  type Io,
  loadIdentity,
  loadRegistry,
  messageReport,
  note,
  oneLine,
  parseCount,
  parseDuration,
  parseFlags,
  parsePairs,
  replayCacheFor,
  typedStpOptions,
} from "./common.ts";

const usage = `missive listen URL --key KEY [options]

Listens at URL, opens every message that arrives (with a replay check) and prints one
line per message on stdout: sender, verification, text. Over tcp:// every message is
answered with a receipt signed by KEY (SPEC §21.5). At start it prints
"missive: listening on URL" on stderr (with the real port when PORT is 0).

URL:
  tcp://HOST:PORT       serve many connections at once (PORT 0: any free port)
  stdio:[binary|armor|lines]
                        read frames from stdin until it ends (no receipts)
  sip:USER@HOST[:PORT][;transport=udp|tcp]
                        answer SIP MESSAGEs (UDP and TCP on PORT, default 5060);
                        receipts go back as MESSAGEs (SPEC §21.7)

Options:
  --key KEY             recipient's secret key file (opens messages, signs receipts)
  --trust CARD          trusted sender: card file, card line, key file or directory
                        of *.card files (repeatable)
  --require-trust       refuse messages whose signer is in no --trust card (receipt
                        status unknown-id)
  --json                print one JSON object per message (as open --json, plus "peer")
  --exec CMD            run CMD with sh -c for each message, the message on its stdin,
                        instead of printing; its stdout and stderr are passed through.
                        Environment (quote these: senders choose their addresses):
                          MISSIVE_SENDER       claimed sender address ("" if none)
                          MISSIVE_SENDER_ID    identity ID in hex ("" if unknown)
                          MISSIVE_VERIFIED     1 if a signature proved the sender, else 0
                          MISSIVE_TRUSTED      1 if the signer is a --trust card, else 0
                          MISSIVE_STP          e.g. simple/2     MISSIVE_AMP  e.g. text/1
                          MISSIVE_NONCE        the message's nonce (hex)
                          MISSIVE_TIMESTAMP    when it was sealed (ISO 8601)
                          MISSIVE_PEER         where it came from (e.g. tcp://1.2.3.4:5)
  --replay-db FILE      remember seen messages in FILE (default: in memory)
  --max-frame SIZE      largest frame accepted (default 1M; K and M suffixes; at most
                        64M); a peer that announces more is dropped
  --count N             exit after N messages were delivered (for scripts and tests)
  --idle-timeout DURATION
                        drop a tcp peer silent this long in both directions (default 5m)
  --register PROXY      with sip: URLs, register USER at PROXY (a SIP registrar,
                        sip:HOST[:PORT][;transport=udp|tcp]) and keep it refreshed
  --psk-file FILE       shared key for psk messages
  --passphrase          shared passphrase for psk ($MISSIVE_PASSPHRASE or prompt)
  --option NAME=VALUE   STP option, for plugins (repeatable)
  --plugin PATH         load a plugin module, or exec:NAME (missive-plugin-NAME
                        on PATH; repeatable)

Bad frames and refused messages are reported on stderr; the listener keeps serving.
On stdio, listen exits when stdin ends: 0, or 3 if it ended inside a broken frame.

Examples:
  missive listen tcp://127.0.0.1:7700 --key bob.key --trust alice.card
  missive listen tcp://0.0.0.0:7700 --key bob.key --json --count 1
  missive listen tcp://127.0.0.1:7700 --key bob.key --exec 'notify-send "$MISSIVE_SENDER"'
  missive listen sip:bob@127.0.0.1:5070 --key bob.key --register sip:127.0.0.1:5060
  missive send stdio:lines --from alice.key --to bob.card < msg | missive listen stdio:lines --key bob.key

${exitCodesLine(3, 9, 10, 11, 13, 17)}
`;

/** How a message's sender stands, in words. */
function standing(opened: OpenedMessage): string {
  const s = opened.sender;
  if (!s) return "no sender";
  if (!s.verified) return "NOT verified";
  return s.trusted ? "verified, trusted" : "verified, NOT trusted";
}

/** Runs `command` with the message on stdin; passes its output through. */
async function runExec(
  io: Io,
  command: string,
  env: Record<string, string>,
  input: Uint8Array,
): Promise<number> {
  // The command inherits the environment but never the passphrase that unlocked our key.
  const inherited = Object.fromEntries(
    Object.entries(io.env).filter(([k]) => k !== "MISSIVE_PASSPHRASE"),
  );
  const child = spawn("/bin/sh", ["-c", command], {
    env: { ...inherited, ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  const writes: Promise<void>[] = [];
  child.stdout!.on("data", (d: Uint8Array) => writes.push(io.stdout(new Uint8Array(d))));
  child.stderr!.on("data", (d: Uint8Array) => io.stderr(new TextDecoder().decode(d)));
  child.stdin!.on("error", () => {}); // the command need not read its input
  child.stdin!.end(input);
  const code = await new Promise<number>((resolve, reject) => {
    child.on("error", (e) => reject(new MissiveError("io", `--exec: ${e.message}`)));
    child.on("close", (c, signal) => resolve(c ?? (signal ? 128 : 1)));
  });
  await Promise.all(writes);
  return code;
}

/** Prints or hands over one opened message. */
async function deliver(
  io: Io,
  registry: Registry,
  opened: OpenedMessage,
  peer: string,
  how: { json?: boolean; exec?: string },
): Promise<void> {
  const amp = registry.amp(opened.amp.type, opened.amp.version);
  if (how.json) {
    const report = { peer, ...await messageReport(registry, opened) };
    await io.stdout(utf8(JSON.stringify(report) + "\n"));
    return;
  }
  const body = await registry.guard(amp, "toOutput", () => cliOf(amp).toOutput(opened.message));
  const s = opened.sender;
  if (how.exec !== undefined) {
    // Every value a sender or peer chose passes the sanitiser: no NUL (which would make
    // the spawn fail) and no control or bidi character reaches the command's environment.
    const code = await runExec(io, how.exec, {
      MISSIVE_SENDER: sanitizeText(s?.address ?? ""),
      MISSIVE_SENDER_ID: s?.card ? toHex(s.card.id) : "",
      MISSIVE_VERIFIED: s?.verified ? "1" : "0",
      MISSIVE_TRUSTED: s?.trusted ? "1" : "0",
      MISSIVE_STP: `${opened.stp.name}/${opened.stp.version}`,
      MISSIVE_AMP: `${opened.amp.name}/${opened.amp.version}`,
      MISSIVE_NONCE: toHex(opened.inner.nonce),
      MISSIVE_TIMESTAMP: formatTime(opened.inner.timestamp),
      MISSIVE_PEER: sanitizeText(peer),
    }, body);
    if (code !== 0) {
      note(io, `missive: --exec exited ${code} for message ${toHex(opened.inner.nonce)}`);
    }
    return;
  }
  const text = new TextDecoder().decode(body);
  await io.stdout(
    utf8(`${oneLine(s?.address ?? "(no sender)")} (${standing(opened)}): ${oneLine(text)}\n`),
  );
}

export const listen: Command = {
  summary: "receive messages over a transport (tcp, sip, stdio) and answer with receipts",
  usage,
  async run(args, io) {
    const parsed = await parseFlags(io, args, {
      key: { type: "string" },
      trust: { type: "string", multiple: true },
      "require-trust": { type: "boolean" },
      json: { type: "boolean" },
      exec: { type: "string" },
      "replay-db": { type: "string" },
      "max-frame": { type: "string" },
      count: { type: "string" },
      "idle-timeout": { type: "string", default: "5m" },
      register: { type: "string" },
      "psk-file": { type: "string" },
      passphrase: { type: "boolean" },
      option: { type: "string", multiple: true },
      plugin: { type: "string", multiple: true },
    }, usage);
    if (!parsed) return;
    const v = parsed.values;
    const url = parsed.positionals[0];
    if (url === undefined) throw new MissiveError("usage", "listen: give a URL (see --help)");
    const address = parseTransportUrl(url);
    if (v.key === undefined) throw new MissiveError("usage", "listen: --key is required");
    if (v.json && v.exec !== undefined) {
      throw new MissiveError("usage", "listen: choose --json or --exec, not both");
    }
    if (v.register !== undefined && address.scheme !== "sip") {
      throw new MissiveError("usage", "listen: --register needs a sip: URL");
    }
    const maxFrame = v["max-frame"] === undefined
      ? DEFAULT_LISTEN_FRAME
      : parseCount(v["max-frame"], "--max-frame", MAX_FRAME_SIZE, true);
    const limit = v.count === undefined ? undefined : parseCount(v.count, "--count", 1e9);
    const registry = await loadRegistry(io, v as { plugin?: string[]; config?: string });
    const identity = await loadIdentity(io, v.key);
    const { trusted, options } = await typedStpOptions(io, {
      trust: v.trust,
      pskFile: v["psk-file"],
      passphrase: v.passphrase,
    });
    // Reasons can quote what a peer sent (a claimed address): escaped, one line each.
    const log = (line: string) => note(io, `missive: ${oneLine(line)}`);
    const listener = await listenAt(url, {
      maxFrame,
      idleTimeoutMs: parseDuration(v["idle-timeout"]!, "--idle-timeout"),
      log,
      stdio: { input: io.stdin, output: io.stdout },
      register: v.register,
    });
    note(io, `missive: listening on ${listener.url}`);
    const replayDb = v["replay-db"] ? await replayCacheFor(v["replay-db"]) : undefined;
    const server = new MessageServer(listener, {
      registry,
      identity,
      trusted,
      requireTrust: v["require-trust"],
      replay: replayDb ?? new MemoryReplayCache(),
      options,
      optionPairs: parsePairs(v.option, "--option"),
      receipts: address.replies,
      limit,
      log,
      deliver: (opened, peer) =>
        deliver(io, registry, opened, peer, { json: v.json, exec: v.exec }),
    });
    try {
      await server.run();
    } finally {
      await server.stop();
      replayDb?.close();
    }
    // On stdio the one peer is the input: a broken stream is the command's failure.
    if (address.scheme === "stdio" && server.dropped > 0) {
      throw new MissiveError(
        "malformed",
        "listen: the input ended with a broken frame (see above)",
      );
    }
  },
};
