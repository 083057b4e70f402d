/** `missive seal`: AMP message from stdin → sealed envelope on stdout. @module */
import { basename } from "node:path";
import { type Bytes, utf8 } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import { getCryptoProvider } from "../crypto/mod.ts";
import { armor, decodeEnvelope, MAX_ENVELOPE_SIZE, toLine } from "../envelope/mod.ts";
import type { Card } from "../keys/card.ts";
import type { Identity } from "../keys/identity.ts";
import { sealMessage } from "../plugin/message.ts";
import type { Registry } from "../plugin/registry.ts";
import type { AmpPlugin, AnyStp } from "../plugin/types.ts";
import { MAX_TEXT_BYTES } from "../amp/text.ts";
import { PSK_TYPE, sealBareFernet } from "../stp/psk/mod.ts";
import type { SmimeOptions } from "../stp/smime/mod.ts";
import { SMIME_TYPE } from "../stp/smime/descriptor.ts";
import {
  AGE_TYPE,
  type AgeRecipient,
  cardRecipients,
  encryptAge,
  scryptRecipient,
} from "../stp/age/mod.ts";
import { prefixedSource, streamSupport } from "../stream/mod.ts";
import {
  cliOf,
  type CliStpOptions,
  type Command,
  exitCodesLine,
  type Io,
  loadIdentity,
  loadRegistry,
  note,
  parseFlags,
  parsePairs,
  readInput,
  typedStpOptions,
} from "./common.ts";
import { openOutput, writeWhole } from "./output.ts";
import { inputSource, sealStreamCli, STREAM_THRESHOLD } from "./streaming.ts";

const usage = `missive seal --from KEY --to CARD [options] [INPUT] > sealed
       missive seal --stp group --from KEY --to CARD --to DIR/ ... [INPUT] > sealed
       missive seal --stp age --to age1… --to FILE ... [--armor] [INPUT] > file.age

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
                        certificate (PEM or DER); for --stp age also age1…,
                        age1pq1…, ssh-ed25519/ssh-rsa public keys (a .pub file) and
                        recipients files (one per line, # comments, as age -R)
  --cert CERT           smime: own X.509 certificate (PEM/DER; more PEM blocks = chain)
  --key KEY             smime: own PKCS #8 private key (PEM/DER; an encrypted one
                        asks for its passphrase, or reads $MISSIVE_PASSPHRASE)
  --cipher NAME         smime: aes-256-cbc (EnvelopedData, default) or aes-256-gcm
                        (AuthEnvelopedData)
  --compress            smime: zlib-compress the text before signing (CompressedData,
                        RFC 3274; PhoneX's compress, sign, encrypt)
  --psk-file FILE       shared key for --stp psk: one line of base64url (psk/2 needs
                        a 32-byte Fernet key, as Python's Fernet.generate_key())
  --passphrase          shared passphrase for --stp psk, or the passphrase of an age
                        file (scrypt; its only recipient) ($MISSIVE_PASSPHRASE or prompt)
  --format fernet       with --stp psk/2 and text/1: write a bare Fernet token (one
                        line) that any Fernet implementation opens, not an envelope
  --format smime|der    with --stp smime: write a bare S/MIME message (as openssl cms
                        -encrypt does) or the bare CMS DER, not an envelope
  --format age|envelope with --stp age: a bare age v1 file (the default: the input's
                        bytes as they are, no sender, no nonce, any size in constant
                        memory; age, rage and typage open it) or an envelope
  --armor               write -----BEGIN MISSIVE MESSAGE----- text (a bare age file:
                        -----BEGIN AGE ENCRYPTED FILE-----)
  --lines               write one base64 line (for "while read" loops)
  -o, --out FILE        write here instead of stdout (replaced only on success)
  --force               replace an existing -o FILE
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

Examples:
  echo "hi" | missive seal --from alice.key --to bob.card > msg.msv
  missive seal --from alice.key --to bob.card --armor < letter.txt > letter.asc
  missive seal --stp group --from alice.key --to team/ -o report.msv report.pdf
  missive seal --stp psk/2 --psk-file fernet.key --format fernet < msg.txt

${exitCodesLine(3, 8, 9, 10, 11)}
`;

const FLAGS = {
  stp: { type: "string", default: "simple" },
  version: { type: "string" },
  "psk-file": { type: "string" },
  passphrase: { type: "boolean" },
  format: { type: "string" },
  amp: { type: "string" },
  from: { type: "string" },
  to: { type: "string", multiple: true },
  cert: { type: "string" },
  key: { type: "string" },
  cipher: { type: "string" },
  compress: { type: "boolean" },
  armor: { type: "boolean" },
  lines: { type: "boolean" },
  out: { type: "string", short: "o" },
  force: { type: "boolean" },
  seq: { type: "string" },
  "no-card": { type: "boolean" },
  "hash-destination": { type: "boolean" },
  "hide-recipients": { type: "boolean" },
  field: { type: "string", multiple: true },
  option: { type: "string", multiple: true },
  plugin: { type: "string", multiple: true },
  stream: { type: "boolean" },
  "chunk-size": { type: "string" },
  quiet: { type: "boolean" },
  "require-pq": { type: "boolean" },
} as const;

/** `--require-pq`, and the fallback warning on stderr (DESIGN §4, post-quantum). */
const pqOptions = (io: Io, v: { "require-pq"?: boolean }) => ({
  requirePq: v["require-pq"] ?? false,
  onWarning: (message: string) => note(io, `missive: warning: ${message}`),
});

type SealFlags = {
  [K in keyof typeof FLAGS]?: (typeof FLAGS)[K] extends { multiple: true } ? string[]
    : (typeof FLAGS)[K] extends { type: "boolean" } ? boolean
    : string;
};

/** The output forms of `seal`. */
type OutputForm = "binary" | "armor" | "lines" | "fernet" | "smime" | "der" | "age" | "age-armor";

/** Everything `seal` decided before reading its input. */
interface SealPlan {
  registry: Registry;
  stp: AnyStp;
  amp: AmpPlugin;
  sender?: Identity;
  recipients: Card[];
  fields: Record<string, string>;
  options: CliStpOptions;
  optionPairs: Record<string, string>;
  sequenceNumber?: number;
  form: OutputForm;
}

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

/** The output form the flags ask for, refusing combinations that mean nothing. */
function outputForm(v: SealFlags, stp: AnyStp, io: Io): OutputForm {
  if (v.armor && v.lines) {
    throw new MissiveError("usage", "seal: choose --armor or --lines, not both");
  }
  const format = v.format ?? (stp.type === AGE_TYPE ? "age" : "envelope");
  if (!["envelope", "fernet", "smime", "der", "age"].includes(format)) {
    throw new MissiveError(
      "usage",
      `seal: --format must be envelope, fernet, smime, der or age, not ${format}`,
    );
  }
  if (format === "age") {
    if (stp.type !== AGE_TYPE) {
      throw new MissiveError("usage", "seal: --format age needs --stp age");
    }
    if (v.lines) throw new MissiveError("usage", "seal: an age file takes --armor, not --lines");
    if (!v.armor && (v.out === undefined || v.out === "-") && io.stdoutIsTty) {
      throw new MissiveError(
        "usage",
        "seal: refusing to write binary to a terminal; use --armor or -o FILE",
      );
    }
    return v.armor ? "age-armor" : "age";
  }
  if (format !== "envelope") {
    if (v.armor || v.lines) {
      throw new MissiveError("usage", `seal: --format ${format} takes no --armor/--lines`);
    }
    if ((format === "smime" || format === "der") && stp.type !== SMIME_TYPE) {
      throw new MissiveError("usage", `seal: --format ${format} needs --stp smime`);
    }
    return format as OutputForm;
  }
  const form = v.armor ? "armor" : v.lines ? "lines" : "binary";
  if (form === "binary" && (v.out === undefined || v.out === "-") && io.stdoutIsTty) {
    throw new MissiveError(
      "usage",
      "seal: refusing to write binary to a terminal; use --armor or -o FILE",
    );
  }
  return form;
}

/** Reads the flags into a plan: plugins, keys, recipients, options. */
async function sealPlan(io: Io, v: SealFlags): Promise<SealPlan> {
  let sequenceNumber: number | undefined;
  if (v.seq !== undefined) {
    sequenceNumber = Number(v.seq);
    if (!/^\d+$/.test(v.seq) || !Number.isSafeInteger(sequenceNumber)) {
      throw new MissiveError("usage", "seal: --seq must be a non-negative integer");
    }
  }
  const registry = await loadRegistry(io, v as { plugin?: string[]; config?: string });
  const stp = registry.find("stp", stpSpec(v.stp!, v.version));
  const form = outputForm(v, stp, io);
  const smime = stp.type === SMIME_TYPE;
  if (!smime && (v.cert || v.key || v.cipher || v.compress)) {
    throw new MissiveError(
      "usage",
      "seal: --cert, --key, --cipher and --compress are for --stp smime",
    );
  }
  if (smime && v.from) {
    throw new MissiveError("usage", "seal: --stp smime signs with --cert/--key, not --from");
  }
  const typed = await typedStpOptions(io, {
    trust: v.to,
    purpose: "to",
    pskFile: v["psk-file"],
    passphrase: v.passphrase,
    cert: v.cert,
    key: v.key,
  });
  if (!smime && typed.certificates.length > 0) {
    throw new MissiveError("usage", "seal: X.509 certificates in --to need --stp smime");
  }
  if (stp.type !== AGE_TYPE && typed.options.ageRecipients) {
    throw new MissiveError("usage", "seal: age1…/ssh-… recipients in --to need --stp age");
  }
  if (smime && typed.trusted.length > 0) {
    throw new MissiveError("usage", "seal: --stp smime encrypts to certificates, not cards");
  }
  const options = typed.options;
  delete options.trustAnchors;
  if (smime) {
    options.recipients = typed.certificates;
    if (v.cipher !== undefined) options.cipher = v.cipher as SmimeOptions["cipher"];
    if (v.compress) options.compress = true;
  }
  return {
    registry,
    stp,
    amp: registry.find("amp", v.amp ?? "text/1"),
    sender: v.from ? await loadIdentity(io, v.from) : undefined,
    recipients: typed.trusted,
    fields: parsePairs(v.field, "--field"),
    options,
    optionPairs: parsePairs(v.option, "--option"),
    sequenceNumber,
    form,
  };
}

export const seal: Command = {
  summary: "seal a message into an envelope",
  usage,
  async run(args, io) {
    const parsed = await parseFlags(io, args, FLAGS, usage);
    if (!parsed) return;
    const v = parsed.values as SealFlags;
    const plan = await sealPlan(io, v);
    if (plan.form === "age" || plan.form === "age-armor") {
      await sealAgeFile(io, parsed.positionals[0], v, plan);
      return;
    }
    const streamed = await maybeStream(io, parsed.positionals[0], v, plan);
    if (streamed.done) return;
    const input = streamed.input ?? await readInput(
      io,
      parsed.positionals[0],
      Math.min(MAX_TEXT_BYTES, MAX_ENVELOPE_SIZE),
      "message",
    );
    if (v.amp === undefined && !isUtf8(input)) binaryAsFile(io, plan, parsed.positionals[0]);
    const { registry, amp } = plan;
    const cli = cliOf(amp);
    const message = await registry.guard(amp, "fromInput", () => cli.fromInput(input, plan.fields));
    await writeWhole(io, v.out, await sealed(io, plan, message, v), {
      mode: 0o644,
      force: v.force,
    });
  },
};

/**
 * A bare age file (SPEC §26): the input's bytes as they are, for the cards (age1pq1… when
 * every card has an X-Wing key, else age1…), the age recipients and a passphrase; read and
 * written in constant memory.
 */
async function sealAgeFile(
  io: Io,
  path: string | undefined,
  v: SealFlags,
  plan: SealPlan,
): Promise<void> {
  if (plan.sender) throw new MissiveError("usage", "seal: an age file has no sender (no --from)");
  const amp = v.amp ?? "text/1";
  if (amp !== "text/1" || Object.keys(plan.fields).length > 0 || v.seq !== undefined) {
    throw new MissiveError(
      "usage",
      "seal: a bare age file holds the input as it is: no --amp, --field or --seq " +
        "(use --format envelope for those)",
    );
  }
  const others = plan.options.ageRecipients ?? [];
  const recipients: AgeRecipient[] = [
    ...cardRecipients(plan.recipients, others, {
      requirePq: v["require-pq"],
      onFallback: (reason) => note(io, `missive: warning: ${reason}`),
    }),
    ...others,
  ];
  if (plan.options.passphrase !== undefined) {
    recipients.push(scryptRecipient(plan.options.passphrase));
  }
  const input = inputSource(io, path);
  const out = openOutput(io, v.out, { mode: 0o644, force: v.force });
  try {
    await encryptAge(input.source, out.sink, { recipients, armor: plan.form === "age-armor" });
    out.commit();
  } catch (e) {
    out.abort();
    throw e;
  } finally {
    input.close();
  }
}

/** The bytes `seal` writes for one message, in the plan's output form. */
async function sealed(
  io: Io,
  plan: SealPlan,
  message: unknown,
  v: SealFlags,
): Promise<Bytes> {
  const { registry, stp, amp } = plan;
  if (plan.form === "fernet") {
    if (v["require-pq"]) {
      throw new MissiveError("usage", "seal: a Fernet token is not post-quantum");
    }
    if (stp.type !== PSK_TYPE || stp.version !== 2 || amp.type !== 1 || amp.version !== 1) {
      throw new MissiveError("usage", "seal: --format fernet needs --stp psk/2 and --amp text/1");
    }
    if (plan.sequenceNumber !== undefined) {
      throw new MissiveError("usage", "seal: --format fernet cannot carry --seq");
    }
    const body = await registry.guard(amp, "encode", () => amp.encode(message));
    const token = await sealBareFernet(await getCryptoProvider(), body, { options: plan.options });
    return utf8(token + "\n");
  }
  const envelope = await sealMessage({
    registry,
    stp,
    amp,
    message,
    sender: plan.sender,
    recipients: plan.recipients,
    sequenceNumber: plan.sequenceNumber,
    includeCard: !v["no-card"],
    hashDestination: v["hash-destination"] ?? false,
    hideRecipients: v["hide-recipients"] ?? false,
    options: plan.options,
    optionPairs: plan.optionPairs,
    ...pqOptions(io, v),
  });
  switch (plan.form) {
    case "smime":
      return (await import("../stp/smime/mod.ts")).smimeBytes(decodeEnvelope(envelope).payload);
    case "der":
      return decodeEnvelope(envelope).payload.slice();
    case "armor":
      return utf8(armor(envelope));
    case "lines":
      return utf8(toLine(envelope) + "\n");
    default:
      return envelope;
  }
}

/**
 * The stream path of `seal` (SPEC §20): streams with --stream, or when a streamable input
 * (see `streamSupport`, binary output) passes STREAM_THRESHOLD; then `done`. Otherwise
 * returns the input when it had to read it to decide, else nothing.
 */
async function maybeStream(
  io: Io,
  path: string | undefined,
  v: SealFlags,
  plan: SealPlan,
): Promise<{ done: boolean; input?: Bytes }> {
  const support = streamSupport(plan.stp, plan.amp);
  const refusal = plan.form !== "binary"
    ? "streams are binary (no --armor, --lines or --format)"
    : !support.ok
    ? support.reason
    : plan.sender
    ? undefined
    : "a stream needs --from";
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
    if (v.amp === undefined) {
      // The first 64 KiB decide whether the stream is text or a file (a character cut
      // at the end of the sample is not a fault).
      const sample = await source.read(64 * 1024);
      source = prefixedSource(sample, source);
      try {
        new TextDecoder("utf-8", { fatal: true }).decode(sample, { stream: true });
      } catch {
        binaryAsFile(io, plan, path);
      }
    }
    await sealStreamCli(io, {
      registry: plan.registry,
      stp: plan.stp,
      amp: plan.amp,
      fields: plan.fields,
      sender: plan.sender!,
      recipients: plan.recipients,
      source,
      out: v.out,
      force: v.force,
      chunkSize,
      quiet: v.quiet,
      sequenceNumber: plan.sequenceNumber,
      includeCard: !v["no-card"],
      hashDestination: v["hash-destination"] ?? false,
      options: plan.options,
      optionPairs: plan.optionPairs,
      sealOptions: { hideRecipients: v["hide-recipients"] ?? false, ...pqOptions(io, v) },
    });
    return { done: true };
  } finally {
    input.close();
  }
}

function isUtf8(bytes: Uint8Array): boolean {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/**
 * Input that is not UTF-8 text, with no --amp chosen, is sealed with the file AMP (named
 * after the input file, else "stdin.bin"), so `open` gives the bytes back exactly; said
 * on stderr.
 */
function binaryAsFile(io: Io, plan: SealPlan, path: string | undefined): void {
  const name = path && path !== "-" ? basename(path) : "stdin.bin";
  plan.amp = plan.registry.find("amp", "file/1");
  plan.fields = { name, ...plan.fields };
  note(io, `missive: the input is not UTF-8 text: sealed as a file (AMP file/1, name ${name})`);
}
