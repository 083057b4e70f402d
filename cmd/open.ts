/** `missive open`: any sealed input → verified plaintext. @module */
import { toBase64, utf8 } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import { sanitizeText } from "../core/sanitize.ts";
import { openAny, type OpenAnyResult } from "../messaging/open.ts";
import type { OpenedMessage } from "../plugin/message.ts";
import type { Registry } from "../plugin/registry.ts";
import { hasSummary } from "../plugin/types.ts";
import { StreamError } from "../stream/mod.ts";
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
  parseDuration,
  parseFlags,
  parsePairs,
  replayCacheFor,
  senderNotes,
  typedStpOptions,
} from "./common.ts";
import { openOutput, type Output } from "./output.ts";
import { inputSource, progress } from "./streaming.ts";

const usage = `missive open [--key KEY] [--trust CARD ...] [options] [INPUT] > message

Opens an envelope (binary, armored or one base64 line; stdin or INPUT), a bare
Fernet token with --psk-file (the token text as Python's Fernet writes it), a bare
S/MIME message or CMS DER with --cert/--key (as openssl cms writes them; also mail
clients' forms: detached multipart/signed and signed-only messages, which need no
--key, and encrypted-only ones, labelled unauthenticated), or an age file (binary or
armored) with --identity, --key or --passphrase, and writes the
message to stdout only after every check has passed. On stderr: the STP, the sender,
whether the signature verified against a trusted card, and the time it was sent.

Options:
  --key KEY             recipient's secret key file (not needed for auth or plain);
                        with --cert, a PKCS #8 private key (PEM/DER, maybe encrypted)
  --cert CERT           smime: own X.509 certificate (PEM/DER)
  --trust CARD          trusted sender: card file, card line, key file or directory of
                        *.card files (repeatable); for smime a CA certificate (PEM or
                        DER) or a directory of *.pem/*.crt/*.cer/*.der: the signer
                        must chain to one (else exit 7)
  --require-trust       fail (exit 7) unless the signer is a --trust card
  --identity FILE       age: an identity file (AGE-SECRET-KEY-1…, AGE-SECRET-KEY-PQ-1…;
                        passphrase-encrypted ones ask), an unencrypted OpenSSH private
                        key (ed25519, rsa) or a missive key file (repeatable); a
                        missive --key works too. age files have no sender: --require-
                        trust and --replay-db refuse them
  --psk-file FILE       shared key for psk envelopes and bare Fernet tokens
  --passphrase          shared passphrase for psk, or an age file's passphrase
                        ($MISSIVE_PASSPHRASE or prompt)
  --ttl DURATION        psk: refuse (exit 6) a message older than this (e.g. 1h), or more than
                        60 s in the future (default: any age, as Fernet)
  --json                print one JSON object (metadata and message) on stdout
  --replay-db FILE      refuse messages already seen (kept in FILE)
  -o, --out FILE        write the message here (mode 0600; written to a temporary file
                        and renamed only on success, so a failure leaves nothing)
  --force               replace an existing -o FILE
  --option NAME=VALUE   STP option, for plugins (repeatable)
  --plugin PATH         load a plugin module, or exec:NAME (missive-plugin-NAME
                        on PATH; repeatable)
  --quiet               no progress line when opening a long stream on a terminal

A stream (SPEC §20; "missive seal --stream", or any input over 16 MiB) is recognized
by its first bytes. Each chunk is written only after it authenticated; if a later chunk
fails, open exits non-zero and says how many bytes were already written: with -o FILE
they went to a temporary file that is removed (FILE is untouched); on stdout, discard
what came out.


Examples:
  missive open --key bob.key --trust alice.card < msg.msv
  missive open --key bob.key --trust alice.card --require-trust -o letter.txt letter.asc
  missive open --key bob.key --replay-db seen.db --json < msg.msv

${exitCodesLine(3, 4, 5, 6, 7, 8, 9, 10, 11, 17)}
`;

export const open: Command = {
  summary: "open an envelope and verify its sender",
  usage,
  async run(args, io) {
    const parsed = await parseFlags(io, args, {
      key: { type: "string" },
      cert: { type: "string" },
      identity: { type: "string", multiple: true },
      trust: { type: "string", multiple: true },
      "require-trust": { type: "boolean" },
      "psk-file": { type: "string" },
      passphrase: { type: "boolean" },
      ttl: { type: "string" },
      json: { type: "boolean" },
      "replay-db": { type: "string" },
      out: { type: "string", short: "o" },
      force: { type: "boolean" },
      option: { type: "string", multiple: true },
      plugin: { type: "string", multiple: true },
      quiet: { type: "boolean" },
    }, usage);
    if (!parsed) return;
    const v = parsed.values;
    const registry = await loadRegistry(io, v as { plugin?: string[]; config?: string });
    const identity = v.key && !v.cert ? await loadIdentity(io, v.key) : undefined;
    const { trusted, options } = await typedStpOptions(io, {
      trust: v.trust,
      pskFile: v["psk-file"],
      passphrase: v.passphrase,
      cert: v.cert,
      key: v.key,
      ttl: v.ttl === undefined ? undefined : parseDuration(v.ttl, "--ttl", { io }),
      identity: v.identity,
    });
    const input = inputSource(io, parsed.positionals[0]);
    let output: Output | undefined;
    const shown = progress(io, v.quiet, "opened");
    const outputFor =
      () => (output ??= forTerminal(io, openOutput(io, v.out, { mode: 0o600, force: v.force })));
    let replay: Awaited<ReturnType<typeof replayCacheFor>> | undefined;
    let result: OpenAnyResult;
    try {
      if (v["replay-db"]) replay = await replayCacheFor(v["replay-db"]);
      result = await openAny(input.source, {
        registry,
        identity,
        trusted,
        requireTrust: v["require-trust"],
        replay,
        options,
        optionPairs: parsePairs(v.option, "--option"),
        // With --json the content goes into the report: nothing is written as it is read.
        sink: v.json ? undefined : { write: (parts) => outputFor().sink.write(parts) },
        onStreamHeader() {
          if (v.json) {
            throw new MissiveError("usage", "open: --json cannot hold a stream; use -o FILE");
          }
          outputFor();
        },
        onProgress: shown.update,
      });
    } catch (e) {
      shown.done();
      output?.abort();
      if (e instanceof StreamError) {
        const outcome = output?.staged
          ? `had been written to a temporary file, now removed; ${v.out} was not touched`
          : `had been written to ${output?.name ?? "stdout"}`;
        throw new MissiveError(
          e.code,
          `${(e.cause as Error).message}; ${e.released} authenticated plaintext bytes ${outcome}`,
        );
      }
      throw e;
    } finally {
      input.close();
      replay?.close();
    }
    shown.done();
    if (result.kind === "stream") {
      output?.commit();
      await streamNotes(io, result.stream);
      return;
    }
    if (result.kind === "age") {
      await ageOutput(io, result, v.json ? outputFor() : undefined);
      outputFor().commit();
      return;
    }
    const out = outputFor();
    try {
      if (result.kind === "fernet") {
        const when = formatTime(result.timestamp * 1000);
        const body = v.json
          ? utf8(
            JSON.stringify({
              format: "fernet",
              timestamp: when,
              plaintext: toBase64(result.plaintext),
            }) + "\n",
          )
          : result.plaintext;
        await out.sink.write([body]);
        out.commit();
        note(
          io,
          `missive: fernet token (psk v2, bare): no sender, anyone with the key; sent ${when}`,
        );
        return;
      }
      await writeMessage(io, registry, result.opened, out, v.json);
    } catch (e) {
      out.abort();
      throw e;
    }
  },
};

/**
 * An opened age file: its --json report (with the plaintext), or the note on stderr
 * after the plaintext was written. Either says plainly that nobody is authenticated.
 */
async function ageOutput(
  io: Io,
  result: Extract<OpenAnyResult, { kind: "age" }>,
  json: Output | undefined,
): Promise<void> {
  const o = result.opened;
  if (json) {
    const report = {
      format: result.form,
      stanzas: o.stanzaTypes,
      identity: o.matched,
      sender: null,
      authenticated: false,
      replayProtection: false,
      plaintext: toBase64(result.plaintext!),
    };
    await json.sink.write([utf8(JSON.stringify(report) + "\n")]);
    return;
  }
  const by = {
    x25519: "an X25519 identity",
    hybrid: "a post-quantum hybrid identity",
    scrypt: "the passphrase",
    "ssh-ed25519": "an ssh-ed25519 key",
    "ssh-rsa": "an ssh-rsa key",
  }[o.matched];
  note(
    io,
    `missive: age file${o.armored ? " (armored)" : ""}, ${o.plaintextBytes} bytes, opened ` +
      `with ${by}: UNAUTHENTICATED, no sender: anyone who knows a recipient of this file ` +
      "could have written it",
  );
}

/** Writes an opened message (or its --json report) and its notes on stderr. */
async function writeMessage(
  io: Io,
  registry: Registry,
  opened: OpenedMessage,
  out: Output,
  json: boolean | undefined,
): Promise<void> {
  if (json) {
    await out.sink.write([utf8(JSON.stringify(await messageReport(registry, opened)) + "\n")]);
    out.commit();
    return;
  }
  const amp = cliOf(registry.amp(opened.amp.type, opened.amp.version));
  const body = await registry.guard(amp, "toOutput", () => amp.toOutput(opened.message));
  await out.sink.write([body]);
  out.commit();
  await senderNotes(io, opened);
  if (hasSummary(amp)) {
    const line = await registry.guard(amp, "summary", () => amp.summary(opened.message));
    note(io, `missive: ${line}`);
  }
}

/** The notes after a stream: sender, trust, and what was written. */
async function streamNotes(
  io: Io,
  stream: {
    opened: OpenedMessage;
    descriptor: { chunkSize: number; signed: boolean; name?: string; mediaType?: string };
    plaintextBytes: number;
    chunks: number;
  },
): Promise<void> {
  await senderNotes(io, stream.opened);
  const d = stream.descriptor;
  note(
    io,
    `missive: stream: ${stream.plaintextBytes} bytes in ${stream.chunks} chunks of ` +
      `${d.chunkSize}${d.signed ? ", each signed by the sender" : ""}` +
      (d.name !== undefined ? `; file ${JSON.stringify(d.name)} (${d.mediaType})` : ""),
  );
}

/**
 * On a terminal, what a sender chose is shown through the sanitiser (DESIGN §9): text
 * keeps its lines, escape sequences and bidi overrides show as escapes; bytes that are not
 * UTF-8 text are refused (use -o FILE or a pipe). Into a file or a pipe the output is the
 * message itself, byte for byte.
 */
function forTerminal(io: Io, out: Output): Output {
  if (out.name !== "stdout" || !io.stdoutIsTty) return out;
  const decoder = new TextDecoder("utf-8", { fatal: true });
  return {
    ...out,
    sink: {
      write(parts) {
        let text = "";
        try {
          for (const p of parts) text += decoder.decode(p, { stream: true });
        } catch {
          throw new MissiveError(
            "usage",
            "open: the message is binary; write it with -o FILE or into a pipe, not a terminal",
          );
        }
        return out.sink.write([utf8(sanitizeText(text, { multiline: true }))]);
      },
    },
  };
}
