/**
 * The age v1 header (C2SP age, "Header"): the version line, recipient stanzas, the MAC
 * line; unpadded base64; a buffered reader with a cap on every line. Parsing is strict
 * (the ABNF of the spec, as age's internal/format), so re-encoding a parsed header gives
 * back its bytes, and the MAC is computed over that re-encoding (as age does).
 * @module
 */
import { type Bytes, concatBytes, fromBase64, utf8 } from "../../core/bytes.ts";
import { MissiveError } from "../../core/errors.ts";

/** A recipient stanza: its type (first argument), further arguments and body. */
export interface Stanza {
  /** The stanza's type, e.g. `X25519`, `mlkem768x25519`, `scrypt`, `ssh-ed25519`. */
  readonly type: string;
  /** The arguments after the type, as written (e.g. an ephemeral share in base64). */
  readonly args: readonly string[];
  /** The body: base64-decoded, typically the wrapped 16-byte file key and its tag. */
  readonly body: Uint8Array;
}

/** A parsed header: the stanzas and the 32-byte MAC. */
export interface AgeHeader {
  readonly stanzas: readonly Stanza[];
  readonly mac: Uint8Array;
}

/** Where an age file is read from: fills `target` unless the input ends (then fewer). */
export interface AgeSource {
  /** Fills `target` and returns how many bytes it wrote: fewer only at the end, 0 after it. */
  readInto(target: Uint8Array): Promise<number>;
}

/** Where an age file or its plaintext goes; parts must not change until it resolves. */
export interface AgeSink {
  /** Writes `parts` in order, as one batch. */
  write(parts: readonly Uint8Array[]): Promise<void>;
}

/** The version line of age v1. */
export const AGE_INTRO = "age-encryption.org/v1\n";
/** The first bytes of every binary age file (of any version). */
export const AGE_MAGIC = "age-encryption.org/";
/** Largest header read (about 2,600 hybrid recipients); more is `too-large`. */
export const MAX_HEADER_BYTES = 4 * 1024 * 1024;
/** Longest header line (an mlkem768x25519 argument line is 1,514 characters). */
export const MAX_LINE_BYTES = 16 * 1024;
/** Base64 columns per body line, and the bytes they hold (C2SP age, "Recipient stanza"). */
const COLUMNS = 64;
const BYTES_PER_LINE = 48;

/** The `parsing age header: …` error (age's ParseError), always `malformed`. */
export function headerError(why: string): MissiveError {
  return new MissiveError("malformed", `parsing age header: ${why}`);
}

/**
 * Unpadded base64, strictly: canonical (zero trailing bits), no `=`, no CR/LF or other
 * whitespace (C2SP age, "Conventions"). Undefined for anything else.
 */
export function decodeRawBase64(s: string): Bytes | undefined {
  if (s.includes("=") || s.length % 4 === 1) return undefined;
  return fromBase64(s + "=".repeat((4 - (s.length % 4)) % 4));
}

/** Unpadded base64. */
export function encodeRawBase64(b: Uint8Array): string {
  return b.toBase64({ omitPadding: true });
}

/** A stanza argument: one or more VCHARs (C2SP age ABNF `argument = 1*VCHAR`). */
export function isValidArgument(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 33 || c > 126) return false;
  }
  return true;
}

/** One stanza as text: the argument line, then the body in 64-column lines, the last short. */
function encodeStanza(s: Stanza): string {
  const b64 = encodeRawBase64(s.body);
  let out = "->";
  for (const a of [s.type, ...s.args]) out += " " + a;
  out += "\n";
  for (let i = 0; i + COLUMNS <= b64.length; i += COLUMNS) out += b64.slice(i, i + COLUMNS) + "\n";
  return out + b64.slice(b64.length - (b64.length % COLUMNS)) + "\n";
}

/** The header up to and including `---`: what the MAC covers (C2SP age, "Header MAC"). */
export function headerWithoutMac(stanzas: readonly Stanza[]): Bytes {
  return utf8(AGE_INTRO + stanzas.map(encodeStanza).join("") + "---");
}

/** The whole header, MAC line included. */
export function encodeHeader(stanzas: readonly Stanza[], mac: Uint8Array): Bytes {
  return concatBytes(headerWithoutMac(stanzas), utf8(` ${encodeRawBase64(mac)}\n`));
}

/**
 * A buffered reader over an AgeSource: lines with a cap, then the rest as blocks. A
 * reader that failed stays failed (age's readers do the same).
 */
export class AgeReader {
  readonly #source: AgeSource;
  #buffer = new Uint8Array(64 * 1024);
  #start = 0;
  #end = 0;
  #eof = false;
  /** Bytes consumed through `readLine` (the header's size so far). */
  consumed = 0;

  constructor(source: AgeSource) {
    this.#source = source;
  }

  async #fill(): Promise<boolean> {
    if (this.#eof) return false;
    if (this.#start > 0) {
      this.#buffer.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    const n = await this.#source.readInto(this.#buffer.subarray(this.#end));
    if (n === 0) this.#eof = true;
    this.#end += n;
    return n > 0;
  }

  /** At least `n` bytes buffered unless the input ends; returns them (a view). */
  async peek(n: number): Promise<Uint8Array> {
    while (this.#end - this.#start < n && await this.#fill());
    return this.#buffer.subarray(this.#start, Math.min(this.#end, this.#start + n));
  }

  /**
   * The next line with its LF, or what is left without one at the end of the input
   * (empty at the end). A line longer than `max` bytes is `too-large`.
   */
  async readLine(max: number, what: string): Promise<Uint8Array> {
    let scanned = 0;
    for (;;) {
      const at = this.#buffer.subarray(this.#start + scanned, this.#end).indexOf(0x0a);
      if (at >= 0) {
        const line = this.#buffer.slice(this.#start, this.#start + scanned + at + 1);
        this.#start += line.length;
        this.consumed += line.length;
        if (line.length > max) throw new MissiveError("too-large", `${what}: line too long`);
        return line;
      }
      scanned = this.#end - this.#start;
      if (scanned > max) throw new MissiveError("too-large", `${what}: line too long`);
      if (this.#end === this.#buffer.length && this.#start === 0) {
        const bigger = new Uint8Array(this.#buffer.length * 2);
        bigger.set(this.#buffer.subarray(0, this.#end));
        this.#buffer = bigger;
      }
      if (!(await this.#fill())) {
        const rest = this.#buffer.slice(this.#start, this.#end);
        this.#start = this.#end;
        this.consumed += rest.length;
        return rest;
      }
    }
  }

  /** Fills `target` from the buffer, then from the source; fewer bytes only at the end. */
  async readInto(target: Uint8Array): Promise<number> {
    const buffered = Math.min(this.#end - this.#start, target.length);
    target.set(this.#buffer.subarray(this.#start, this.#start + buffered));
    this.#start += buffered;
    if (buffered === target.length || this.#eof) return buffered;
    return buffered + await this.#source.readInto(target.subarray(buffered));
  }
}

const decoder = new TextDecoder("latin1");
const text = (line: Uint8Array) => decoder.decode(line);

/**
 * Reads and checks an age v1 header (C2SP age, ABNF of the header): `malformed` with
 * "parsing age header: …" for anything else, `too-large` past MAX_HEADER_BYTES.
 */
export async function readHeader(reader: AgeReader): Promise<AgeHeader> {
  const intro = await reader.readLine(MAX_LINE_BYTES, "parsing age header");
  if (intro.length === 0) throw headerError("file is empty");
  if (text(intro) !== AGE_INTRO) {
    const shown = JSON.stringify(text(intro.subarray(0, 64)));
    throw text(intro).startsWith(AGE_MAGIC) && intro.at(-1) === 0x0a
      ? headerError(`unsupported version: ${shown}`)
      : headerError(`unexpected intro: ${shown}`);
  }
  const stanzas: Stanza[] = [];
  for (;;) {
    if (reader.consumed > MAX_HEADER_BYTES) {
      throw new MissiveError("too-large", `parsing age header: larger than ${MAX_HEADER_BYTES}`);
    }
    const line = await reader.readLine(MAX_LINE_BYTES, "parsing age header");
    if (line.at(-1) !== 0x0a) throw headerError("unexpected end of header");
    const parts = text(line.subarray(0, -1)).split(" ");
    if (parts[0] === "---") {
      const mac = parts.length === 2 ? decodeRawBase64(parts[1]) : undefined;
      if (!mac || mac.length !== 32) throw headerError("malformed closing line");
      if (stanzas.length === 0) throw headerError("no recipient stanzas");
      return { stanzas, mac };
    }
    if (parts[0] !== "->" || parts.length < 2 || !parts.slice(1).every(isValidArgument)) {
      throw headerError(`malformed stanza opening line`);
    }
    stanzas.push({ type: parts[1], args: parts.slice(2), body: await readBody(reader) });
  }
}

/** A stanza body: full 64-column lines, then one shorter line (maybe empty). */
async function readBody(reader: AgeReader): Promise<Bytes> {
  const parts: Uint8Array[] = [];
  for (;;) {
    const line = await reader.readLine(MAX_LINE_BYTES, "parsing age header: stanza body");
    if (line.at(-1) !== 0x0a) throw headerError("unexpected end of header in a stanza body");
    const b = decodeRawBase64(text(line.subarray(0, -1)));
    if (!b) {
      const ended = line[0] === 0x2d; // "-": the next stanza or the MAC line came first
      throw headerError(
        ended ? "stanza ended without a short body line" : "malformed stanza body line",
      );
    }
    if (b.length > BYTES_PER_LINE) throw headerError("stanza body line too long");
    parts.push(b);
    if (b.length < BYTES_PER_LINE) return concatBytes(...parts);
    if (reader.consumed > MAX_HEADER_BYTES) {
      throw new MissiveError("too-large", `parsing age header: larger than ${MAX_HEADER_BYTES}`);
    }
  }
}

/** True when `bytes` start like an age file of any version ("age-encryption.org/"). */
export function looksLikeAgeFile(bytes: Uint8Array): boolean {
  const magic = utf8(AGE_MAGIC);
  if (bytes.length < magic.length) return false;
  for (let i = 0; i < magic.length; i++) if (bytes[i] !== magic[i]) return false;
  return true;
}
