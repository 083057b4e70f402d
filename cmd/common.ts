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
import { parseArgs, type ParseArgsConfig } from "node:util";
import type { Io } from "./io.ts";
export { type Command, type Io, processIo } from "./io.ts";
import { type Bytes, concatBytes, toBase64, toHex, utf8 } from "../core/bytes.ts";
import { getCryptoProvider } from "../crypto/mod.ts";
import { MissiveError } from "../core/errors.ts";
import { ioReason, readFileLimited, readTextLimited } from "../core/files.ts";
import { type Card, CARD_PREFIX, fingerprint, parseCardText } from "../keys/card.ts";
import { ContactBook, contactsPath } from "../keys/contacts.ts";
import { type Identity, inspectKeyFile, readKeyFile } from "../keys/identity.ts";
import { configuredPluginPaths, loadPlugins } from "../plugin/loader.ts";
import { defaultRegistry } from "../stp/mod.ts";
import type { Registry } from "../plugin/registry.ts";
import { type AmpPlugin, type CliAmp, hasCli } from "../plugin/types.ts";
import type { OpenedMessage } from "../plugin/message.ts";
import type { X509Certificate } from "../keys/x509.ts";
import { MAX_X509_FILE } from "../keys/x509_limits.ts";
import type { ReplayCache } from "../plugin/replay.ts";
import { parseKeyText, type PskOptions } from "../stp/psk/mod.ts";
import type { SmimeIdentity, SmimeOptions } from "../stp/smime/mod.ts";
import { lazySmimeV1 } from "./smime_lazy.ts";
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

/** What each exit code means, in a few words (SPEC §11). */
const EXIT_WORDS: Record<number, string> = {
  0: "ok",
  1: "internal error",
  2: "usage",
  3: "malformed or too large",
  4: "authentication failed",
  5: "not a recipient",
  6: "replay",
  7: "untrusted sender",
  8: "unknown protocol",
  9: "key problem",
  10: "I/O error",
  11: "plugin error",
  12: "timeout",
  13: "network error",
  14: "session ended abnormally",
  15: "refused by the server",
  16: "queued locally, not accepted by a relay",
  17: "replay cache full",
};

/** The "Exit codes:" line of a subcommand's help: 0, 1 and 2, then the codes it uses. */
export function exitCodesLine(...codes: number[]): string {
  const all = [0, 1, 2, ...codes].filter((c, i, a) => a.indexOf(c) === i).sort((a, b) => a - b);
  const line = "Exit codes: " + all.map((c) => `${c} ${EXIT_WORDS[c]}`).join(", ") + ".";
  // Wrapped at 88 columns, continuation lines indented.
  const words = line.split(" ");
  const lines: string[] = [];
  let current = "";
  for (const w of words) {
    if (current && (current + " " + w).length > 88) {
      lines.push(current);
      current = "  " + w;
    } else current = current ? current + " " + w : w;
  }
  lines.push(current);
  return lines.join("\n");
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
    throw new MissiveError("usage", flagError(commandName(usage), e, options));
  }
  if ((parsed.values as { help?: boolean }).help) {
    await io.stdout(utf8(usage.trimEnd() + "\n"));
    return undefined;
  }
  if (parsed.positionals.length > maxPositionals) {
    throw new MissiveError(
      "usage",
      `${commandName(usage)}: unexpected argument ${
        JSON.stringify(parsed.positionals[maxPositionals])
      } (see --help)`,
    );
  }
  return parsed;
}

/** "seal" from a usage text that starts "missive seal …" ("relay send" for two words). */
function commandName(usage: string): string {
  const words = usage.trimStart().split(/\s+/);
  const sub = /^[a-z]+$/.test(words[2] ?? "") && ["relay", "session", "contacts"].includes(words[1])
    ? ` ${words[2]}`
    : "";
  return `${words[1]}${sub}`;
}

/**
 * Edit distance with adjacent transpositions counted as one edit (optimal string
 * alignment), for "did you mean" (small strings only): "--form" is one edit from "--from".
 */
function distance(a: string, b: string): number {
  const d = Array.from(
    { length: a.length + 1 },
    (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/** One line for a flag mistake, in missive's words, with a suggestion where one is close. */
function flagError(command: string, e: unknown, options: Options): string {
  const code = (e as { code?: string })?.code;
  const message = (e as Error)?.message ?? String(e);
  const flag = /'(-{1,2}[^' ]+)/.exec(message)?.[1] ?? "";
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
    const name = flag.replace(/^-+/, "").split("=")[0];
    const known = [...Object.keys(options), "help"];
    const close = known
      .map((k) => ({ k, d: distance(name, k) }))
      .filter(({ k, d }) => d <= Math.max(1, Math.floor(k.length / 3)) || k.startsWith(name))
      .sort((x, y) => x.d - y.d)[0];
    const hint = close ? ` (did you mean --${close.k}?)` : " (see --help)";
    return `${command}: unknown option ${flag.split("=")[0]}${hint}`;
  }
  if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
    return /argument missing/.test(message)
      ? `${command}: ${flag} needs a value (see --help)`
      : `${command}: ${flag} takes no value (see --help)`;
  }
  return `${command}: ${message.split("\n")[0]} (see --help)`;
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
        `cannot write ${path}: ${ioReason(e)}`,
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
  return askTerminal(prompt, { echo: false }).catch(() => {
    throw new MissiveError(
      "key",
      "a passphrase is needed: set MISSIVE_PASSPHRASE or run in a terminal",
    );
  });
}

/**
 * Asks one line on the terminal (/dev/tty, not stdin, which may carry data); without echo
 * for secrets. Rejects when there is no terminal.
 */
export function askTerminal(prompt: string, how: { echo: boolean }): Promise<string> {
  let fd: number;
  try {
    fd = openSync("/dev/tty", "r+");
  } catch (e) {
    return Promise.reject(e);
  }
  try {
    // "-F" names the terminal: passing a descriptor as the child's stdin is not portable
    // across runtimes.
    if (!how.echo) spawnSync("stty", ["-F", "/dev/tty", "-echo"], { stdio: "ignore" });
    writeSync(fd, prompt);
    const buf = new Uint8Array(1024);
    let line = "";
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n <= 0) break;
      line += new TextDecoder().decode(buf.subarray(0, n));
      if (line.includes("\n") || line.length > 4096) break;
    }
    if (!how.echo) writeSync(fd, "\n");
    return Promise.resolve(line.split(/\r?\n/)[0]);
  } finally {
    if (!how.echo) spawnSync("stty", ["-F", "/dev/tty", "echo"], { stdio: "ignore" });
    closeSync(fd);
  }
}

/** Loads a secret identity from a key file, asking for its passphrase if needed. */
export async function loadIdentity(io: Io, path: string): Promise<Identity> {
  const crypto = await getCryptoProvider();
  const text = readSmallText(path, "key file");
  if (/^missive-card:/m.test(text) && !text.includes("-----BEGIN MISSIVE SECRET KEY-----")) {
    throw new MissiveError(
      "key",
      `${path} is a public card, not a secret key: give the key file keygen wrote with -o`,
    );
  }
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
/** X.509 support (pkijs), loaded only for a file that holds a certificate or key. */
const x509 = () => import("../keys/x509.ts");

function isCertificateFile(bytes: Uint8Array): boolean {
  if (bytes.length > 0 && bytes[0] === 0x30) return true;
  return new TextDecoder().decode(bytes).includes("-----BEGIN CERTIFICATE-----");
}

/** File names in a --trust directory that hold X.509 certificates. */
const CERT_FILE = /\.(pem|crt|cer|der)$/i;

/**
 * True for a recipients file as `age -R` reads it (SPEC §26.7): its first line that is
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
  how: { io?: Io; purpose?: CardPurpose } = {},
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
          ...(await x509()).parseCertificates(
            readFileLimited(path, MAX_X509_FILE, "certificate"),
            path,
          ),
        );
      }
      cardSpecs.push(spec);
      continue;
    }
    const bytes = readFileLimited(spec, MAX_X509_FILE, "certificate or card");
    if (isCertificateFile(bytes)) {
      certificates.push(...(await x509()).parseCertificates(bytes, spec));
    } else if (isAgeRecipientsFile(bytes)) {
      const file = parseRecipientsFile(new TextDecoder().decode(bytes), spec);
      ageRecipients.push(...file.recipients);
      cardSpecs.push(...file.cardLines);
    } else cardSpecs.push(spec);
  }
  return { cards: await loadCards(cardSpecs, how), certificates, ageRecipients };
}

/** An X.509 identity from --cert and --key (decrypting the key with a passphrase if needed). */
export async function x509Identity(
  io: Io,
  flags: { cert?: string; key?: string },
): Promise<SmimeIdentity | undefined> {
  if (flags.cert === undefined) return undefined;
  if (flags.key === undefined) throw new MissiveError("usage", "--cert needs --key (PKCS #8)");
  const { parseCertificates, parsePrivateKey } = await x509();
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
  /** What the cards are for (default: trusted senders). */
  purpose?: CardPurpose;
  pskFile?: string;
  passphrase?: boolean;
  cert?: string;
  key?: string;
  /** --ttl (psk freshness), ms. */
  ttl?: number;
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
  const trust = await loadTrust(flags.trust ?? [], { io, purpose: flags.purpose ?? "trust" });
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
  if (flags.ttl !== undefined) options.ttlMs = flags.ttl;
  return { trusted: trust.cards, certificates: trust.certificates, options };
}

/** What a list of cards is for: recipients (`--to`) or trusted senders (`--trust`). */
export type CardPurpose = "to" | "trust";
/** The typed options of every built-in STP, as one object (each reads its own fields). */
export type CliStpOptions = PskOptions & SmimeOptions & AgeOptions;

/**
 * Loads cards from each argument, resolved in this order (issue 21, SECURITY.md): a
 * literal card line; an existing path — a card file, a file of several card lines (one per
 * line, `#` comments, like age's recipients file), a key file (its public card), or a
 * folder of *.card files; else an address in the contacts (`--trust` takes only verified
 * contacts; an unverified one as `--to` gets a warning).
 */
export async function loadCards(
  specs: readonly string[],
  how: { io?: Io; purpose?: CardPurpose } = {},
): Promise<Card[]> {
  const crypto = await getCryptoProvider();
  const cards: Card[] = [];
  let book: ContactBook | undefined;
  for (const spec of specs) {
    if (spec.startsWith("missive-card:")) {
      cards.push(await parseCardText(crypto, spec));
      continue;
    }
    if (!existsSync(spec)) {
      if (how.io && /^[^/\\\s]+@[^/\\\s]+$/.test(spec)) {
        book ??= await ContactBook.open(crypto, contactsPath(how.io.env));
        cards.push(contactCard(how.io, book, spec, how.purpose ?? "to"));
        continue;
      }
      throw new MissiveError(
        "io",
        `cannot read card ${spec}: no such file or folder` +
          (spec.includes("@") ? " (nor a contact: missive contacts add FILE)" : ""),
      );
    }
    const paths = statSync(spec).isDirectory()
      ? readdirSync(spec).filter((f) => f.endsWith(".card")).sort().map((f) => join(spec, f))
      : [spec];
    for (const path of paths) {
      const text = readSmallText(path, "card", 1024 * 1024);
      try {
        if (text.includes("-----BEGIN MISSIVE SECRET KEY-----")) {
          cards.push((await inspectKeyFile(crypto, text)).card);
          continue;
        }
        const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) =>
          l.startsWith(CARD_PREFIX)
        );
        if (lines.length <= 1) cards.push(await parseCardText(crypto, text));
        else for (const line of lines) cards.push(await parseCardText(crypto, line));
      } catch (e) {
        if (e instanceof MissiveError) throw new MissiveError(e.code, `${path}: ${e.message}`);
        throw e;
      }
    }
  }
  return cards;
}

/** The card of a contact, as `--to` or `--trust` may use it. */
function contactCard(io: Io, book: ContactBook, address: string, purpose: CardPurpose): Card {
  const contact = book.get(address);
  if (!contact) {
    throw new MissiveError(
      "usage",
      `${address} is neither a card file nor a contact (missive contacts add FILE, or give the card file)`,
    );
  }
  if (!contact.verified) {
    if (purpose === "trust") {
      throw new MissiveError(
        "untrusted",
        `${address} is in your contacts but not verified (it came from a relay): compare ` +
          `fingerprints, then run missive contacts verify ${address}`,
      );
    }
    note(
      io,
      `missive: warning: ${address} is not verified (its card came from a relay); run ` +
        `missive contacts verify ${address}`,
    );
  }
  return contact.card;
}

/** `--relay-card SPEC`: the relay's one card (`command` names the command in the error). */
export async function loadRelayCard(spec: string, command: string): Promise<Card> {
  const cards = await loadCards([spec]);
  if (cards.length !== 1) {
    throw new MissiveError("usage", `${command}: --relay-card must hold exactly one card`);
  }
  return cards[0];
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
  const registry = defaultRegistry().register(lazySmimeV1);
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

/**
 * Parses a duration flag, the one syntax of every duration: `500ms`, `10s`, `2m`, `1h`.
 * A bare number is read in the flag's old unit (`bareUnit`, seconds unless said) with a
 * one-line deprecation warning on stderr when `io` is given. Returns milliseconds.
 */
export function parseDuration(
  text: string,
  flag: string,
  options: { bareUnit?: "ms" | "s"; io?: Io; max?: number } = {},
): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  const unit = m?.[2] ?? options.bareUnit ?? "s";
  const scale = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit]!;
  const ms = m ? Number(m[1]) * scale : NaN;
  const max = options.max ?? 24 * 3600 * 1000;
  if (!(ms >= 1 && ms <= max)) {
    throw new MissiveError(
      "usage",
      `${flag} expects a duration like 500ms, 10s or 2m (at most ${max / 3_600_000} h)`,
    );
  }
  if (m && m[2] === undefined && options.io) {
    note(
      options.io,
      `missive: warning: ${flag} ${text} has no unit and is read as ${
        unit === "ms" ? "milliseconds" : "seconds"
      }; write ${text}${unit} (bare numbers will be refused in a later version)`,
    );
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
export async function replayCacheFor(path: string): Promise<ReplayCache & { close(): void }> {
  const { SqliteReplayCache } = await import("../queue/replay.ts");
  return new SqliteReplayCache(path);
}

/**
 * The warning after a signature verified by a card in no --trust card: `who` (the
 * sanitised address) and the fingerprint to compare out of band.
 */
export async function untrustedWarning(io: Io, who: string, card: Card): Promise<void> {
  const fp = await fingerprint(await getCryptoProvider(), card);
  note(
    io,
    `missive: warning: ${who} is in no --trust card; compare its fingerprint out of band: ${fp}`,
  );
}

/**
 * The lines on stderr after a message opened: who sent it and whether that was verified
 * and trusted (with the fingerprint to compare when not), when, and the STP's warnings.
 * Every sender-chosen string is sanitised (DESIGN §9).
 */
export async function senderNotes(io: Io, opened: OpenedMessage): Promise<void> {
  const { sender } = opened;
  const stpLabel = `${opened.stp.name} v${opened.stp.version}`;
  // A message that carries no time (timestamp 0: e.g. S/MIME without a signing time).
  const sent = opened.inner.timestamp > 0
    ? `sent ${formatTime(opened.inner.timestamp)}`
    : "sending time unknown";
  const who = sender ? sanitizeText(sender.address) : "";
  if (!sender) {
    note(io, `missive: ${stpLabel}: no sender; ${sent}`);
  } else if (!sender.verified) {
    note(io, `missive: ${stpLabel}: claimed sender ${who} (NOT verified); ${sent}`);
  } else {
    const id = sender.card ? `id ${toHex(sender.card.id)}` : "X.509";
    note(
      io,
      `missive: ${stpLabel} from ${who} (${id}): signature verified, ${
        sender.trusted ? "trusted" : "NOT trusted"
      }; ${sent}`,
    );
    if (!sender.trusted && sender.card) await untrustedWarning(io, who, sender.card);
  }
  for (const w of opened.warnings) note(io, `missive: warning: ${sanitizeText(w)}`);
}
