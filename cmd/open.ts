/** `missive open`: sealed envelope → verified plaintext. @module */
import { toBase64, toHex, utf8 } from "../core/bytes.ts";
import { getCryptoProvider } from "../crypto/mod.ts";
import { maxArmoredLength } from "../core/armor.ts";
import { encodeEnvelope, MAX_ENVELOPE_SIZE, unwrapAnyForm } from "../envelope/mod.ts";
import { MissiveError } from "../core/errors.ts";
import { fingerprint } from "../keys/card.ts";
import { openMessage } from "../plugin/message.ts";
import { FileReplayCache } from "../plugin/replay.ts";
import { inputSource, openStreamCli, sniffInput } from "./streaming.ts";
import { hasSummary } from "../plugin/types.ts";
import { detectFernetToken, openBareFernet } from "../stp/psk/mod.ts";
import { certificatesToPem } from "../keys/x509.ts";
import { looksLikeSmime, SMIME_TYPE, unwrapSmimeEntity } from "../stp/smime/mod.ts";
import {
  type Command,
  formatTime,
  type Io,
  loadIdentity,
  loadRegistry,
  loadTrust,
  messageReport,
  note,
  parseFlags,
  parsePairs,
  sharedSecretOptions,
  writeOutput,
  x509Options,
} from "./common.ts";

const usage = `missive open [--key KEY] [--trust CARD ...] [options] [INPUT] > message

Opens an envelope (binary, armored or one base64 line; stdin or INPUT), a bare
Fernet token with --psk-file (the token text as Python's Fernet writes it), or a bare
S/MIME message or CMS DER with --cert/--key (as openssl cms writes them), and writes the
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
  --psk-file FILE       shared key for psk envelopes and bare Fernet tokens
  --passphrase          shared passphrase for psk ($MISSIVE_PASSPHRASE or prompt)
  --ttl SECONDS         psk: refuse (exit 6) a message older than this, or more than
                        60 s in the future (default: any age, as Fernet)
  --json                print one JSON object (metadata and message) on stdout
  --replay-db FILE      refuse messages already seen (kept in FILE)
  -o, --out FILE        write the message here (created only on success, mode 0600)
  --option NAME=VALUE   STP option, for plugins (repeatable)
  --plugin PATH         load a plugin module, or exec:NAME (missive-plugin-NAME
                        on PATH; repeatable)
  --quiet               no progress line when opening a long stream on a terminal

A stream (SPEC §20; "missive seal --stream", or any input over 16 MiB) is recognized
by its first bytes. Each chunk is written only after it authenticated; if a later chunk
fails, open exits non-zero, says how many bytes were already written, and removes the
-o FILE it was writing (on stdout, discard what came out).

Exit codes: 0 ok, 2 usage, 3 malformed, 4 authentication failed, 5 not a recipient,
6 replay (seen before; psk: expired --ttl or clock skew), 7 untrusted sender, 8 unknown protocol, 9 key problem, 10 I/O, 11 plugin.
`;

/** The input: a whole envelope (bounded), or a stream to open chunk by chunk (§20). */
async function readEnvelopeOrStream(io: Io, path: string | undefined) {
  const { source, close } = inputSource(io, path);
  try {
    const sniffed = await sniffInput(source, maxArmoredLength(MAX_ENVELOPE_SIZE), "envelope");
    // A stream keeps reading after this function: the descriptor closes with the process.
    if ("stream" in sniffed) return sniffed;
    close();
    return sniffed;
  } catch (e) {
    close();
    throw e;
  }
}

export const open: Command = {
  summary: "open an envelope and verify its sender",
  usage,
  async run(args, io) {
    const parsed = await parseFlags(io, args, {
      key: { type: "string" },
      cert: { type: "string" },
      trust: { type: "string", multiple: true },
      "require-trust": { type: "boolean" },
      "psk-file": { type: "string" },
      passphrase: { type: "boolean" },
      ttl: { type: "string" },
      json: { type: "boolean" },
      "replay-db": { type: "string" },
      out: { type: "string", short: "o" },
      option: { type: "string", multiple: true },
      plugin: { type: "string", multiple: true },
      quiet: { type: "boolean" },
    }, usage);
    if (!parsed) return;
    const v = parsed.values;
    const registry = await loadRegistry(io, v.plugin);
    const identity = v.key && !v.cert ? await loadIdentity(io, v.key) : undefined;
    const trust = await loadTrust(v.trust ?? []);
    const trusted = trust.cards;
    const sniffed = await readEnvelopeOrStream(io, parsed.positionals[0]);
    const options = {
      ...parsePairs(v.option, "--option"),
      ...await sharedSecretOptions(io, { pskFile: v["psk-file"], passphrase: v.passphrase }),
      ...await x509Options(io, { cert: v.cert, key: v.key }),
    };
    if (trust.certificates.length > 0) {
      options["trust-certs"] = certificatesToPem(trust.certificates);
    }
    if (v.ttl !== undefined) options.ttl = v.ttl;
    if ("stream" in sniffed) {
      await openStreamCli(io, {
        registry,
        source: sniffed.stream,
        identity,
        trusted,
        requireTrust: v["require-trust"],
        replay: v["replay-db"] ? new FileReplayCache(v["replay-db"]) : undefined,
        options,
        out: v.out,
        json: v.json,
        quiet: v.quiet,
      });
      return;
    }
    const input = sniffed.input;
    const token = detectFernetToken(input);
    if (token) {
      if (v["require-trust"]) {
        throw new MissiveError("untrusted", "untrusted sender: a Fernet token has no sender");
      }
      if (v["replay-db"]) {
        throw new MissiveError(
          "usage",
          "open: --replay-db needs an envelope; a Fernet token has no nonce",
        );
      }
      const bare = await openBareFernet(await getCryptoProvider(), token, options);
      const when = formatTime(bare.timestamp * 1000);
      if (v.json) {
        const report = { format: "fernet", timestamp: when, plaintext: toBase64(bare.plaintext) };
        await writeOutput(io, v.out, utf8(JSON.stringify(report) + "\n"), 0o600);
        return;
      }
      await writeOutput(io, v.out, bare.plaintext, 0o600);
      note(
        io,
        `missive: fernet token (psk v2, bare): no sender, anyone with the key; sent ${when}`,
      );
      return;
    }
    // Bare CMS (DER starts with a SEQUENCE, 0x30) or S/MIME text: the smime STP's
    // payload without an envelope; no envelope form can start with either.
    const bareCms = input[0] === 0x30 || looksLikeSmime(input);
    const frame = bareCms
      ? encodeEnvelope({
        protocolType: SMIME_TYPE,
        protocolVersion: 1,
        payload: unwrapSmimeEntity(input),
      })
      : unwrapAnyForm(input);
    const opened = await openMessage(registry, frame, {
      identity,
      trusted,
      replay: v["replay-db"] ? new FileReplayCache(v["replay-db"]) : undefined,
      options,
    });
    const { sender } = opened;
    if (v["require-trust"] && !sender?.trusted) {
      const who = sender
        ? `${sender.address} is not a --trust card`
        : "the message has no verified sender";
      throw new MissiveError("untrusted", `untrusted sender: ${who}`);
    }
    const amp = registry.amp(opened.amp.type, opened.amp.version);
    const crypto = await getCryptoProvider();
    const fp = sender?.card ? await fingerprint(crypto, sender.card) : undefined;
    const stpLabel = `${opened.stp.name} v${opened.stp.version}`;
    if (v.json) {
      const report = await messageReport(registry, opened);
      await writeOutput(io, v.out, utf8(JSON.stringify(report) + "\n"), 0o600);
      return;
    }
    const output = await registry.guard(amp, "toOutput", () => amp.toOutput(opened.message));
    await writeOutput(io, v.out, output, 0o600);
    const when = formatTime(opened.inner.timestamp);
    if (!sender) {
      note(io, `missive: ${stpLabel}: no sender; sent ${when}`);
    } else if (!sender.verified) {
      note(
        io,
        `missive: ${stpLabel}: claimed sender ${sender.address} (NOT verified); sent ${when}`,
      );
    } else {
      const id = sender.card ? `id ${toHex(sender.card.id)}` : "X.509";
      note(
        io,
        `missive: ${stpLabel} from ${sender.address} (${id}): signature verified, ${
          sender.trusted ? "trusted" : "NOT trusted"
        }; sent ${when}`,
      );
      if (!sender.trusted && sender.card) {
        note(
          io,
          `missive: warning: ${sender.address} is in no --trust card; compare its fingerprint out of band: ${fp}`,
        );
      }
    }
    if (hasSummary(amp)) {
      const line = await registry.guard(amp, "summary", () => amp.summary(opened.message));
      note(io, `missive: ${line}`);
    }
    for (const w of opened.warnings) note(io, `missive: warning: ${w}`);
  },
};
