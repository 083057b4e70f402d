/**
 * What every subcommand shares: flag parsing with --help, reading inputs with caps,
 * loading keys and cards, the registry with plugins, and writing outputs safely.
 * No protocol logic lives here or anywhere in cmd/ (STYLE §12).
 * @module
 */
import { spawnSync } from "node:child_process";
import {
  closeSync,
  existsSync,
  openSync,
  readdirSync,
  readSync,
  statSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { type Bytes, concatBytes, toBase64, toHex } from "../core/bytes.ts";
import { getCryptoProvider } from "../crypto/mod.ts";
import { MissiveError } from "../core/errors.ts";
import { readFileLimited, readTextLimited } from "../core/files.ts";
import { type Card, fingerprint, parseCardText } from "../keys/card.ts";
import { type Identity, inspectKeyFile, readKeyFile } from "../keys/identity.ts";
import { configuredPluginPaths, loadPlugins } from "../plugin/loader.ts";
import { defaultRegistry } from "../stp/mod.ts";
import type { Registry } from "../plugin/registry.ts";
import { type AmpPlugin, type CliAmp, hasCli } from "../plugin/types.ts";
import type { OpenedMessage } from "../plugin/message.ts";
import {
  MAX_X509_FILE,
  parseCertificates,
  parsePrivateKey,
  type X509Certificate,
} from "../keys/x509.ts";
import type { ReplayCache } from "../plugin/replay.ts";
import { parseKeyText, type PskOptions } from "../stp/psk/mod.ts";
import { type SmimeIdentity, type SmimeOptions, smimeStp } from "../stp/smime/mod.ts";
import {
  type AgeOptions,
  type AgeRecipient,
  isAgeRecipientText,
  MAX_KEY_FILE_BYTES,
  parseAgeRecipient,
  parseIdentityFile,
  parseRecipientsFile,
} from "../stp/age/mod.ts";
import { sanitizeText } from "../core/sanitize.ts";

/**
 * The process edges a command touches, so tests can run the CLI in-process with their
 * own stdin and capture what it writes. `processIo()` is the real thing.
 */
export interface Io {
  stdin(): AsyncIterable<Uint8Array>;
  /** Resolves once the bytes were handed to the OS (or the test's buffer). */
  stdout(data: Uint8Array): Promise<void>;
  stderr(line: string): void;
  stdoutIsTty: boolean;
  /** stderr is a terminal: progress lines for long streams (off when absent). */
  stderrIsTty?: boolean;
  /** stdin's descriptor, for streams to read in large blocks (absent: use `stdin()`). */
  stdinFd?: number;
  /** stdout's descriptor, for streams to write in large batches (absent: use `stdout()`). */
  stdoutFd?: number;
  env: Record<string, string | undefined>;
}

/** The real process's standard streams and environment. */
export function processIo(): Io {
  return {
    stdin: () => process.stdin as AsyncIterable<Uint8Array>,
    stdout: (data) =>
      new Promise<void>((resolve, reject) => {
        process.stdout.write(
          data,
          (err) => (err ? reject(new MissiveError("io", `stdout: ${err.message}`)) : resolve()),
        );
      }),
    stderr: (line) => void process.stderr.write(line),
    stdoutIsTty: Boolean(process.stdout.isTTY),
    stderrIsTty: Boolean(process.stderr.isTTY),
    stdinFd: 0,
    stdoutFd: 1,
    env: process.env,
  };
}

/** A subcommand: its usage text and its runner. */
export interface Command {
  summary: string;
  usage: string;
  run(args: string[], io: Io): Promise<void>;
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/**
 * Parses flags strictly. `--help`/`-h` prints `usage` and returns undefined (the
 * subcommand then exits 0). Unknown flags are a usage error naming the flag.
 */
export async function parseFlags<O extends Options>(
  io: Io,
  args: string[],
  options: O,
  usage: string,
  maxPositionals = 1,
) {
  let parsed;
  try {
    const all = { ...options, help: { type: "boolean" as const, short: "h" } };
    // Every command that loads plugins also takes --config FILE (plugin/loader.ts).
    if ("plugin" in options) (all as Options).config = { type: "string" };
    parsed = parseArgs({
      args,
      options: all,
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    throw new MissiveError("usage", `${(e as Error).message.split("\n")[0]} (see --help)`);
  }
  if ((parsed.values as { help?: boolean }).help) {
    await io.stdout(new TextEncoder().encode(usage.trimEnd() + "\n"));
    return undefined;
  }
  if (parsed.positionals.length > maxPositionals) {
    throw new MissiveError(
      "usage",
      `unexpected argument ${JSON.stringify(parsed.positionals[maxPositionals])} (see --help)`,
    );
  }
  return parsed;
}

/** Reads a whole stream or file, refusing more than `max` bytes before buffering it. */
export async function readInput(
  io: Io,
  path: string | undefined,
  max: number,
  what = "input",
): Promise<Bytes> {
  if (path !== undefined && path !== "-") return readFileLimited(path, max, what);
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of io.stdin()) {
    total += (chunk as Uint8Array).length;
    if (total > max) {
      throw new MissiveError("too-large", `${what} on stdin is larger than ${max} bytes`);
    }
    chunks.push(chunk as Uint8Array);
  }
  return concatBytes(...chunks);
}

/** Reads a small text file (a key or card), with a clear error. */
export function readSmallText(path: string, what: string, max = 64 * 1024): string {
  return readTextLimited(path, max, what);
}

/**
 * Writes output bytes to a file (created 0600 for plaintext, only after every check has
 * passed) or to stdout, waiting until stdout has taken them.
 */
export async function writeOutput(
  io: Io,
  path: string | undefined,
  data: Uint8Array,
  mode = 0o644,
): Promise<void> {
  if (path !== undefined && path !== "-") {
    try {
      writeFileSync(path, data, { mode });
    } catch (e) {
      throw new MissiveError(
        "io",
        `cannot write ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      );
    }
    return;
  }
  await io.stdout(data);
}

/** A time for people: ISO 8601, or the raw milliseconds when no Date can hold it. */
export function formatTime(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? `${ms} ms after the epoch` : d.toISOString();
}

/** Prints one line on stderr. */
export function note(io: Io, line: string): void {
  io.stderr(line + "\n");
}

/** Reads a passphrase: $MISSIVE_PASSPHRASE, else a prompt on the terminal (no echo). */
export function askPassphrase(io: Io, prompt: string): Promise<string> {
  const fromEnv = io.env.MISSIVE_PASSPHRASE;
  if (fromEnv !== undefined) return Promise.resolve(fromEnv);
  let fd: number;
  try {
    fd = openSync("/dev/tty", "r+");
  } catch {
    return Promise.reject(
      new MissiveError(
        "key",
        "a passphrase is needed: set MISSIVE_PASSPHRASE or run in a terminal",
      ),
    );
  }
  try {
    // "-F" names the terminal: passing a descriptor as the child's stdin is not portable
    // across runtimes.
    spawnSync("stty", ["-F", "/dev/tty", "-echo"], { stdio: "ignore" });
    writeSync(fd, prompt);
    const buf = new Uint8Array(1024);
    let line = "";
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n <= 0) break;
      line += new TextDecoder().decode(buf.subarray(0, n));
      if (line.includes("\n") || line.length > 4096) break;
    }
    writeSync(fd, "\n");
    return Promise.resolve(line.split(/\r?\n/)[0]);
  } finally {
    spawnSync("stty", ["-F", "/dev/tty", "echo"], { stdio: "ignore" });
    closeSync(fd);
  }
}

/** Loads a secret identity from a key file, asking for its passphrase if needed. */
export async function loadIdentity(io: Io, path: string): Promise<Identity> {
  const crypto = await getCryptoProvider();
  const text = readSmallText(path, "key file");
  const identity = await readKeyFile(
    crypto,
    text,
    () => askPassphrase(io, `Passphrase for ${path}: `),
  );
  warnIfExposed(io, path);
  return identity;
}

/** A warning when a secret key file can be read by its group or by others (like ssh's). */
function warnIfExposed(io: Io, path: string): void {
  let mode: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) return;
    mode = st.mode & 0o777;
  } catch {
    return;
  }
  if ((mode & 0o077) !== 0) {
    note(
      io,
      `missive: warning: key file ${path} is readable by others (mode ${mode.toString(8)}); ` +
        `run chmod 600 ${path}`,
    );
  }
}

/** True for an X.509 certificate file: PEM with a CERTIFICATE block, or DER (0x30). */
function isCertificateFile(bytes: Uint8Array): boolean {
  if (bytes.length > 0 && bytes[0] === 0x30) return true;
  return new TextDecoder().decode(bytes).includes("-----BEGIN CERTIFICATE-----");
}

/** File names in a --trust directory that hold X.509 certificates. */
const CERT_FILE = /\.(pem|crt|cer|der)$/i;

/**
 * True for a recipients file as `age -R` reads it (SPEC §24.7): its first line that is
 * not blank or a `#` comment is an `age1…` or `ssh-…` recipient.
 */
function isAgeRecipientsFile(bytes: Uint8Array): boolean {
  const first = new TextDecoder().decode(bytes.subarray(0, 64 * 1024)).split("\n")
    .map((l) => l.trim()).find((l) => l !== "" && !l.startsWith("#"));
  return first !== undefined && isAgeRecipientText(first);
}

/**
 * Splits --trust / --to arguments into missive cards, X.509 certificates and age
 * recipients: a certificate file (PEM or DER) is a certificate, and so is every *.pem,
 * *.crt, *.cer and *.der file in a directory (whose *.card files stay cards); an `age1…`
 * or `ssh-…` argument, or a recipients file (one per line, `#` comments, `missive-card:`
 * lines allowed), gives age recipients.
 */
export async function loadTrust(
  specs: readonly string[],
): Promise<{ cards: Card[]; certificates: X509Certificate[]; ageRecipients: AgeRecipient[] }> {
  const certificates: X509Certificate[] = [];
  const ageRecipients: AgeRecipient[] = [];
  const cardSpecs: string[] = [];
  for (const spec of specs) {
    if (isAgeRecipientText(spec)) {
      ageRecipients.push(parseAgeRecipient(spec, "recipient"));
      continue;
    }
    if (spec.startsWith("missive-card:") || !existsSync(spec)) {
      cardSpecs.push(spec);
      continue;
    }
    if (statSync(spec).isDirectory()) {
      for (const f of readdirSync(spec).filter((f) => CERT_FILE.test(f)).sort()) {
        const path = join(spec, f);
        certificates.push(
          ...parseCertificates(readFileLimited(path, MAX_X509_FILE, "certificate"), path),
        );
      }
      cardSpecs.push(spec);
      continue;
    }
    const bytes = readFileLimited(spec, MAX_X509_FILE, "certificate or card");
    if (isCertificateFile(bytes)) certificates.push(...parseCertificates(bytes, spec));
    else if (isAgeRecipientsFile(bytes)) {
      const file = parseRecipientsFile(new TextDecoder().decode(bytes), spec);
      ageRecipients.push(...file.recipients);
      cardSpecs.push(...file.cardLines);
    } else cardSpecs.push(spec);
  }
  return { cards: await loadCards(cardSpecs), certificates, ageRecipients };
}

/** An X.509 identity from --cert and --key (decrypting the key with a passphrase if needed). */
export async function x509Identity(
  io: Io,
  flags: { cert?: string; key?: string },
): Promise<SmimeIdentity | undefined> {
  if (flags.cert === undefined) return undefined;
  if (flags.key === undefined) throw new MissiveError("usage", "--cert needs --key (PKCS #8)");
  const chain = parseCertificates(
    readFileLimited(flags.cert, MAX_X509_FILE, "certificate"),
    flags.cert,
  );
  const key = await parsePrivateKey(
    readFileLimited(flags.key, MAX_X509_FILE, "private key"),
    () => askPassphrase(io, `Passphrase for ${flags.key}: `),
  );
  return { chain, key };
}

/** The flags from which a command builds typed STP options. */
export interface StpOptionFlags {
  /** --trust / --to: cards and X.509 certificates. */
  trust?: readonly string[];
  pskFile?: string;
  passphrase?: boolean;
  cert?: string;
  key?: string;
  /** --ttl (psk freshness). */
  ttl?: string;
  /** --identity: age identity files, OpenSSH private keys (age). */
  identity?: readonly string[];
}

/**
 * The typed options of the built-in STPs that need more than cards (psk's shared key or
 * passphrase, smime's X.509 identity and trust anchors, age's recipients and identities),
 * as one object each STP reads its own fields from; and the cards among `trust`.
 */
export async function typedStpOptions(
  io: Io,
  flags: StpOptionFlags,
): Promise<
  { trusted: Card[]; certificates: X509Certificate[]; options: CliStpOptions }
> {
  const trust = await loadTrust(flags.trust ?? []);
  const options: CliStpOptions = {};
  if (trust.ageRecipients.length > 0) options.ageRecipients = trust.ageRecipients;
  for (const path of flags.identity ?? []) {
    const identities = await parseIdentityFile(
      readFileLimited(path, MAX_KEY_FILE_BYTES, "identity file"),
      path,
      {
        crypto: await getCryptoProvider(),
        passphrase: () => askPassphrase(io, `Passphrase for ${path}: `),
      },
    );
    options.ageIdentities = [...(options.ageIdentities ?? []), ...identities];
  }
  if (flags.pskFile !== undefined) {
    options.key = parseKeyText(
      readTextLimited(flags.pskFile, MAX_PSK_FILE, "psk key file"),
      16,
      64,
      `psk key file ${flags.pskFile}`,
    );
  }
  if (flags.passphrase) options.passphrase = await askPassphrase(io, "Shared passphrase: ");
  const identity = await x509Identity(io, flags);
  if (identity) options.identity = identity;
  if (trust.certificates.length > 0) options.trustAnchors = trust.certificates;
  if (flags.ttl !== undefined) {
    if (!/^\d{1,12}$/.test(flags.ttl)) {
      throw new MissiveError("usage", "--ttl expects a number of seconds");
    }
    options.ttlMs = Number(flags.ttl) * 1000;
  }
  return { trusted: trust.cards, certificates: trust.certificates, options };
}

/** The typed options of every built-in STP, as one object (each reads its own fields). */
export type CliStpOptions = PskOptions & SmimeOptions & AgeOptions;

/**
 * Loads cards from each argument: a card file, a literal card line, a key file (its
 * public card), or a directory (every *.card file in it).
 */
export async function loadCards(specs: readonly string[]): Promise<Card[]> {
  const crypto = await getCryptoProvider();
  const cards: Card[] = [];
  for (const spec of specs) {
    if (spec.startsWith("missive-card:")) {
      cards.push(await parseCardText(crypto, spec));
      continue;
    }
    if (!existsSync(spec)) throw new MissiveError("io", `no such card file or directory: ${spec}`);
    const paths = statSync(spec).isDirectory()
      ? readdirSync(spec).filter((f) => f.endsWith(".card")).sort().map((f) => join(spec, f))
      : [spec];
    for (const path of paths) {
      const text = readSmallText(path, "card");
      try {
        cards.push(
          text.includes("-----BEGIN MISSIVE SECRET KEY-----")
            ? (await inspectKeyFile(crypto, text)).card
            : await parseCardText(crypto, text),
        );
      } catch (e) {
        if (e instanceof MissiveError) throw new MissiveError(e.code, `${path}: ${e.message}`);
        throw e;
      }
    }
  }
  return cards;
}

/**
 * The registry: built-ins and `smime` (X.509, so not in `defaultRegistry()`, whose STPs
 * all work with cards), then $MISSIVE_PLUGINS and the config file's plugins (`--config`,
 * $MISSIVE_CONFIG or the user's own config folder; never the current folder), then
 * --plugin.
 */
export async function loadRegistry(
  io: Io,
  flags: { plugin?: readonly string[]; config?: string } = {},
): Promise<Registry> {
  const registry = defaultRegistry().register(smimeStp);
  for (const { path, base } of configuredPluginPaths(io.env, flags.config)) {
    await loadPlugins(registry, [path], base);
  }
  await loadPlugins(registry, flags.plugin ?? []);
  return registry;
}

/** Largest shared-key file read (`--psk-file`): one line of base64. */
const MAX_PSK_FILE = 1024;

/** Parses repeated `name=value` flags into a record. */
export function parsePairs(
  pairs: readonly string[] | undefined,
  flag: string,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs ?? []) {
    const eq = p.indexOf("=");
    if (eq <= 0) {
      throw new MissiveError("usage", `${flag} expects name=value, got ${JSON.stringify(p)}`);
    }
    out[p.slice(0, eq)] = p.slice(eq + 1);
  }
  return out;
}

/** Parses a duration flag: `10s`, `500ms`, `2m`, or a number of seconds; in ms. */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  const ms = m ? Number(m[1]) * ({ ms: 1, s: 1000, m: 60_000 }[m[2] ?? "s"] as number) : NaN;
  if (!(ms >= 1 && ms <= 24 * 3600 * 1000)) {
    throw new MissiveError("usage", `${flag} expects a duration like 10s, 500ms or 2m (up to 24h)`);
  }
  return Math.round(ms);
}

/** Parses a positive integer flag, with an optional K or M (binary) suffix for sizes. */
export function parseCount(text: string, flag: string, max: number, sizes = false): number {
  const m = (sizes ? /^(\d+)([KkMm])?$/ : /^(\d+)$/).exec(text.trim());
  const n = m ? Number(m[1]) * (m[2] ? (/k/i.test(m[2]) ? 1024 : 1024 * 1024) : 1) : NaN;
  if (!(Number.isSafeInteger(n) && n >= 1 && n <= max)) {
    throw new MissiveError(
      "usage",
      `${flag} expects a whole number 1..${max}${sizes ? " (K, M allowed)" : ""}`,
    );
  }
  return n;
}

/**
 * Text shown on one terminal line: everything a peer or sender chose passes the one
 * sanitiser (core/sanitize.ts): controls, escape sequences and bidi overrides are shown
 * as escapes, never interpreted.
 */
export function oneLine(text: string): string {
  return sanitizeText(text);
}

/**
 * An AMP as the command line uses it: its own CLI capability when it has one; otherwise
 * messages cannot be built from input, are shown as their encoded bytes, and as JSON with
 * byte strings in base64.
 */
export function cliOf<T>(amp: AmpPlugin<T>): CliAmp<T> {
  if (hasCli(amp)) return amp;
  return {
    ...amp,
    fromInput() {
      throw new MissiveError(
        "usage",
        `AMP ${amp.name} (${amp.type}, ${amp.version}) has no command-line form; ` +
          "its messages are made with the library",
      );
    },
    toOutput: (message) => amp.encode(message),
    toJson: (message) => jsonable(message),
  };
}

/** Plain data as JSON-compatible values: bytes as base64, maps as objects. */
function jsonable(value: unknown): unknown {
  if (value instanceof Uint8Array) return { base64: toBase64(value) };
  if (Array.isArray(value)) return value.map(jsonable);
  if (value instanceof Map) {
    return Object.fromEntries([...value].map(([k, v]) => [String(k), jsonable(v)]));
  }
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonable(v)]));
  }
  return value;
}

/** The JSON report of an opened message (as `missive open --json` prints it). */
export async function messageReport(
  registry: Registry,
  opened: OpenedMessage,
): Promise<Record<string, unknown>> {
  const { sender } = opened;
  const amp = registry.amp(opened.amp.type, opened.amp.version);
  const fp = sender?.card ? await fingerprint(await getCryptoProvider(), sender.card) : undefined;
  return {
    stp: opened.stp,
    amp: opened.amp,
    sequenceNumber: opened.header.sequenceNumber ?? null,
    timestamp: formatTime(opened.inner.timestamp),
    nonce: toHex(opened.inner.nonce),
    destination: opened.inner.destination ?? null,
    sender: sender
      ? {
        address: sender.address,
        id: sender.card ? toHex(sender.card.id) : null,
        fingerprint: fp ?? null,
        verified: sender.verified,
        trusted: sender.trusted,
      }
      : null,
    warnings: opened.warnings,
    message: await registry.guard(amp, "toJson", () => cliOf(amp).toJson(opened.message)),
  };
}

/**
 * The replay cache of `--replay-db FILE`: SQLite, loaded only when the flag is given (the
 * library's core never imports `node:sqlite`).
 */
export async function replayCacheFor(path: string): Promise<ReplayCache> {
  const { SqliteReplayCache } = await import("../queue/replay.ts");
  return new SqliteReplayCache(path);
}

/**
 * The lines on stderr after a message opened: who sent it and whether that was verified
 * and trusted (with the fingerprint to compare when not), when, and the STP's warnings.
 * Every sender-chosen string is sanitised (DESIGN §9).
 */
export async function senderNotes(io: Io, opened: OpenedMessage): Promise<void> {
  const { sender } = opened;
  const stpLabel = `${opened.stp.name} v${opened.stp.version}`;
  const when = formatTime(opened.inner.timestamp);
  const who = sender ? sanitizeText(sender.address) : "";
  if (!sender) {
    note(io, `missive: ${stpLabel}: no sender; sent ${when}`);
  } else if (!sender.verified) {
    note(io, `missive: ${stpLabel}: claimed sender ${who} (NOT verified); sent ${when}`);
  } else {
    const id = sender.card ? `id ${toHex(sender.card.id)}` : "X.509";
    note(
      io,
      `missive: ${stpLabel} from ${who} (${id}): signature verified, ${
        sender.trusted ? "trusted" : "NOT trusted"
      }; sent ${when}`,
    );
    if (!sender.trusted && sender.card) {
      const fp = await fingerprint(await getCryptoProvider(), sender.card);
      note(
        io,
        `missive: warning: ${who} is in no --trust card; compare its fingerprint out of band: ${fp}`,
      );
    }
  }
  for (const w of opened.warnings) note(io, `missive: warning: ${sanitizeText(w)}`);
}
