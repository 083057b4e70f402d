/** `missive seal`: AMP message from stdin → sealed envelope on stdout. @module */
import { type Bytes, utf8 } from "../core/bytes.ts";
import type { Card } from "../keys/card.ts";
import type { Identity } from "../keys/identity.ts";
import type { Registry } from "../plugin/registry.ts";
import type { AmpPlugin, StpPlugin } from "../plugin/types.ts";
import { prefixedSource } from "../stream/mod.ts";
import { inputSource, sealStreamCli, STREAM_THRESHOLD, streamRefusal } from "./streaming.ts";
import { armor, decodeEnvelope, MAX_ENVELOPE_SIZE, toLine } from "../envelope/mod.ts";
import { MissiveError } from "../core/errors.ts";
import { sealMessage } from "../plugin/message.ts";
import { PSK_TYPE, sealBareFernet } from "../stp/psk/mod.ts";
import { getCryptoProvider } from "../crypto/mod.ts";
import { MAX_TEXT_BYTES } from "../amp/text.ts";
import { certificatesToPem } from "../keys/x509.ts";
import { SMIME_TYPE, smimeBytes } from "../stp/smime/mod.ts";
import {
  type Command,
  type Io,
  loadIdentity,
  loadRegistry,
  loadTrust,
  note,
  parseFlags,
  parsePairs,
  readInput,
  sharedSecretOptions,
  writeOutput,
  x509Options,
} from "./common.ts";

const usage = `missive seal --from KEY --to CARD [options] [INPUT] > sealed
       missive seal --stp group --from KEY --to CARD --to DIR/ ... [INPUT] > sealed

Reads a message (stdin or INPUT, "-" for stdin), encodes it with an AMP, protects it
with an STP and writes the envelope (binary, --armor or --lines).

Options:
  --stp NAME[/vN]       secure transport protocol (default simple: latest version);
                        see "missive plugins"
  --version N           STP version (same as --stp NAME/N)
  --amp NAME[/vN]       application message protocol (default text/1)
  --from KEY            sender's secret key file (simple, group, auth)
  --to CARD             recipient: card file, card line, key file or a directory of
                        *.card files (repeatable; group: every card gets a key
                        slot, duplicates once); for --stp smime an X.509
                        certificate (PEM or DER)
  --cert CERT           smime: own X.509 certificate (PEM/DER; more PEM blocks = chain)
  --key KEY             smime: own PKCS #8 private key (PEM/DER; an encrypted one
                        asks for its passphrase, or reads $MISSIVE_PASSPHRASE)
  --cipher NAME         smime: aes-256-cbc (EnvelopedData, default) or aes-256-gcm
                        (AuthEnvelopedData)
  --compress            smime: zlib-compress the text before signing (CompressedData,
                        RFC 3274; PhoneX's compress, sign, encrypt)
  --psk-file FILE       shared key for --stp psk: one line of base64url (psk/2 needs
                        a 32-byte Fernet key, as Python's Fernet.generate_key())
  --passphrase          shared passphrase for --stp psk ($MISSIVE_PASSPHRASE or prompt)
  --format fernet       with --stp psk/2 and text/1: write a bare Fernet token (one
                        line) that any Fernet implementation opens, not an envelope
  --format smime|der    with --stp smime: write a bare S/MIME message (as openssl cms
                        -encrypt does) or the bare CMS DER, not an envelope
  --armor               write -----BEGIN MISSIVE MESSAGE----- text
  --lines               write one base64 line (for "while read" loops)
  -o, --out FILE        write here instead of stdout
  --seq N               set the envelope sequence number (bound by the STP)
  --no-card             do not attach the sender's card (recipient must --trust it)
  --hash-destination    send the recipient's address as a keyed hash (simple)
  --hide-recipients     group: key slots carry no recipient hints and their count is
                        padded to a power of two; each recipient tries every slot
  --require-pq          refuse unless post-quantum (simple v3, group v2: every --to
                        card has an X-Wing key); without it a format-1 card makes
                        the whole message fall back to simple v2 / group v1, with
                        a warning
  --field NAME=VALUE    AMP field, e.g. --field title=Hi for notification (repeatable)
  --option NAME=VALUE   STP option, for plugins (repeatable)
  --plugin PATH         load a plugin module, or exec:NAME (missive-plugin-NAME
                        on PATH; repeatable)

Streams (SPEC §20): with --stream, or automatically when the input is larger than
16 MiB, the output is a stream: a header sealed by the STP (simple or group), then
AES-256-GCM chunks, each signed by the sender when several recipients hold the key.
Any size, in constant memory; binary only (no --armor/--lines). AMP text/1 or file/1.
  --stream              seal as a stream whatever the input size
  --chunk-size N        stream chunk size in bytes (default 262144; 256..16777216)
  --quiet               no progress line (shown only on a terminal, for long inputs)
`;

/** `--require-pq`, and the fallback warning on stderr (DESIGN §4, post-quantum). */
const pqOptions = (io: Io, v: { "require-pq"?: boolean }) => ({
  requirePq: v["require-pq"] ?? false,
  onWarning: (message: string) => note(io, `missive: warning: ${message}`),
});

/** `--stp NAME` plus `--version N` → `NAME/N`; a conflicting pair is a usage error. */
function stpSpec(stp: string, version: string | undefined): string {
  if (version === undefined) return stp;
  if (!/^\d{1,5}$/.test(version)) {
    throw new MissiveError("usage", "seal: --version must be a number");
  }
  const m = /^(.*?)(?:\/v?(\d+))?$/.exec(stp.trim())!;
  if (m[2] !== undefined && Number(m[2]) !== Number(version)) {
    throw new MissiveError("usage", `seal: --stp ${stp} and --version ${version} disagree`);
  }
  return `${m[1]}/${Number(version)}`;
}

/**
 * The stream path of `seal` (SPEC §20): streams with --stream, or when a streamable input
 * (STP simple/group, AMP text/1 or file/1, binary output) passes STREAM_THRESHOLD; then
 * `done`. Otherwise returns the input when it had to read it to decide, else nothing.
 */
async function maybeStream(
  io: Io,
  path: string | undefined,
  v: {
    stream?: boolean;
    "chunk-size"?: string;
    quiet?: boolean;
    out?: string;
    "no-card"?: boolean;
    "hash-destination"?: boolean;
    "hide-recipients"?: boolean;
    "require-pq"?: boolean;
  },
  c: {
    binary: boolean;
    stp: StpPlugin;
    amp: AmpPlugin;
    sender?: Identity;
    recipients: Card[];
    fields: Record<string, string>;
    /** The STP options `seal` built (--option pairs and whatever flags add). */
    options: Record<string, string>;
    sequenceNumber?: number;
    registry: Registry;
  },
): Promise<{ done: boolean; input?: Bytes }> {
  const refusal = !c.binary
    ? "streams are binary (no --armor, --lines or --format)"
    : streamRefusal(c.stp, c.amp) ?? (c.sender ? undefined : "a stream needs --from");
  if (v["chunk-size"] !== undefined && !v.stream) {
    throw new MissiveError("usage", "seal: --chunk-size goes with --stream");
  }
  if (v.stream && refusal) throw new MissiveError("usage", `seal: ${refusal}`);
  if (refusal) return { done: false };
  let chunkSize: number | undefined;
  if (v["chunk-size"] !== undefined) {
    chunkSize = Number(v["chunk-size"]);
    if (!/^\d{1,9}$/.test(v["chunk-size"])) {
      throw new MissiveError("usage", "seal: --chunk-size must be a number of bytes");
    }
  }
  const input = inputSource(io, path);
  try {
    let source = input.source;
    // A regular file over the threshold streams at once; else read up to the threshold
    // to decide (stdin, pipes; a file's size is only a hint, so it is read the same way).
    const large = input.fileSize !== undefined && input.fileSize > STREAM_THRESHOLD;
    if (!v.stream && !large) {
      const head = await source.read(STREAM_THRESHOLD + 1);
      if (head.length <= STREAM_THRESHOLD) return { done: false, input: head.slice() };
      source = prefixedSource(head, source);
    }
    await sealStreamCli(io, {
      registry: c.registry,
      stp: c.stp,
      amp: c.amp,
      fields: c.fields,
      sender: c.sender!,
      recipients: c.recipients,
      source,
      out: v.out,
      chunkSize,
      quiet: v.quiet,
      sequenceNumber: c.sequenceNumber,
      includeCard: !v["no-card"],
      hashDestination: v["hash-destination"] ?? false,
      options: c.options,
      sealOptions: { hideRecipients: v["hide-recipients"] ?? false, ...pqOptions(io, v) },
    });
    return { done: true };
  } finally {
    input.close();
  }
}

export const seal: Command = {
  summary: "seal a message into an envelope",
  usage,
  async run(args, io) {
    const parsed = await parseFlags(io, args, {
      stp: { type: "string", default: "simple" },
      version: { type: "string" },
      "psk-file": { type: "string" },
      passphrase: { type: "boolean" },
      format: { type: "string", default: "envelope" },
      amp: { type: "string", default: "text/1" },
      from: { type: "string" },
      to: { type: "string", multiple: true },
      cert: { type: "string" },
      key: { type: "string" },
      cipher: { type: "string" },
      compress: { type: "boolean" },
      armor: { type: "boolean" },
      lines: { type: "boolean" },
      out: { type: "string", short: "o" },
      seq: { type: "string" },
      "no-card": { type: "boolean" },
      "hash-destination": { type: "boolean" },
      "hide-recipients": { type: "boolean" },
      "require-pq": { type: "boolean" },
      field: { type: "string", multiple: true },
      option: { type: "string", multiple: true },
      plugin: { type: "string", multiple: true },
      stream: { type: "boolean" },
      "chunk-size": { type: "string" },
      quiet: { type: "boolean" },
    }, usage);
    if (!parsed) return;
    const v = parsed.values;
    if (v.armor && v.lines) {
      throw new MissiveError("usage", "seal: choose --armor or --lines, not both");
    }
    const binary = !v.armor && !v.lines && v.format !== "fernet" && v.format !== "smime";
    if (binary && (v.out === undefined || v.out === "-") && io.stdoutIsTty) {
      throw new MissiveError(
        "usage",
        "seal: refusing to write binary to a terminal; use --armor or -o FILE",
      );
    }
    let sequenceNumber: number | undefined;
    if (v.seq !== undefined) {
      sequenceNumber = Number(v.seq);
      if (!/^\d+$/.test(v.seq) || !Number.isSafeInteger(sequenceNumber)) {
        throw new MissiveError("usage", "seal: --seq must be a non-negative integer");
      }
    }
    const registry = await loadRegistry(io, v.plugin);
    const stp = registry.find("stp", stpSpec(v.stp!, v.version));
    if (!["envelope", "fernet", "smime", "der"].includes(v.format!)) {
      throw new MissiveError(
        "usage",
        `seal: --format must be envelope, fernet, smime or der, not ${v.format}`,
      );
    }
    const smime = stp.type === SMIME_TYPE;
    const { multiRecipient, hiddenRecipients } = stp.properties;
    if (v["hide-recipients"] && !(multiRecipient && hiddenRecipients)) {
      throw new MissiveError("usage", `seal: --hide-recipients needs --stp group, not ${stp.name}`);
    }
    if ((v.format === "smime" || v.format === "der") && !smime) {
      throw new MissiveError("usage", `seal: --format ${v.format} needs --stp smime`);
    }
    if (!smime && (v.cert || v.key || v.cipher || v.compress)) {
      throw new MissiveError(
        "usage",
        "seal: --cert, --key, --cipher and --compress are for --stp smime",
      );
    }
    if (smime && v.from) {
      throw new MissiveError("usage", "seal: --stp smime signs with --cert/--key, not --from");
    }
    const amp = registry.find("amp", v.amp!);
    const sender = v.from ? await loadIdentity(io, v.from) : undefined;
    const to = await loadTrust(v.to ?? []);
    if (!smime && to.certificates.length > 0) {
      throw new MissiveError("usage", "seal: X.509 certificates in --to need --stp smime");
    }
    if (smime && to.cards.length > 0) {
      throw new MissiveError("usage", "seal: --stp smime encrypts to certificates, not cards");
    }
    const recipients = to.cards;
    const fields = parsePairs(v.field, "--field");
    const options = {
      ...parsePairs(v.option, "--option"),
      ...await sharedSecretOptions(io, { pskFile: v["psk-file"], passphrase: v.passphrase }),
      ...await x509Options(io, { cert: v.cert, key: v.key }),
    };
    const streamed = await maybeStream(io, parsed.positionals[0], v, {
      binary: binary && v.format === "envelope",
      stp,
      amp,
      sender,
      recipients,
      fields,
      options,
      sequenceNumber,
      registry,
    });
    if (streamed.done) return;
    const input = streamed.input ?? await readInput(
      io,
      parsed.positionals[0],
      Math.min(MAX_TEXT_BYTES, MAX_ENVELOPE_SIZE),
      "message",
    );
    if (smime) {
      options["recipient-certs"] = certificatesToPem(to.certificates);
      if (v.cipher !== undefined) options.cipher = v.cipher;
      if (v.compress) options.compress = "zlib";
    }
    const message = await registry.guard(amp, "fromInput", () => amp.fromInput(input, fields));
    if (v.format === "fernet") {
      if (v["require-pq"]) {
        throw new MissiveError("usage", "seal: a Fernet token is not post-quantum");
      }
      if (stp.type !== PSK_TYPE || stp.version !== 2 || amp.type !== 1 || amp.version !== 1) {
        throw new MissiveError("usage", "seal: --format fernet needs --stp psk/2 and --amp text/1");
      }
      if (v.armor || v.lines || sequenceNumber !== undefined) {
        throw new MissiveError(
          "usage",
          "seal: --format fernet is already text; drop --armor/--lines/--seq",
        );
      }
      const body = await registry.guard(amp, "encode", () => amp.encode(message));
      const token = await sealBareFernet(await getCryptoProvider(), body, { options });
      await writeOutput(io, v.out, utf8(token + "\n"));
      return;
    }
    const sealed = await sealMessage({
      registry,
      stp,
      amp,
      message,
      sender,
      recipients,
      sequenceNumber,
      includeCard: !v["no-card"],
      hashDestination: v["hash-destination"] ?? false,
      hideRecipients: v["hide-recipients"] ?? false,
      options,
      ...pqOptions(io, v),
    });
    if (v.format === "smime" || v.format === "der") {
      if (v.armor || v.lines) {
        throw new MissiveError("usage", `seal: --format ${v.format} takes no --armor/--lines`);
      }
      const der = decodeEnvelope(sealed).payload;
      await writeOutput(io, v.out, v.format === "der" ? der : smimeBytes(der));
      return;
    }
    const out = v.armor ? utf8(armor(sealed)) : v.lines ? utf8(toLine(sealed) + "\n") : sealed;
    await writeOutput(io, v.out, out);
  },
};
