/**
 * age's ASCII armor (C2SP age, "ASCII armor"): strict PEM (RFC 7468 §3) labelled
 * `AGE ENCRYPTED FILE`, 64 columns, padded base64, no headers; LF or CRLF; white space
 * only before and after the block (at most 1 KiB each). Streaming both ways, one line at
 * a time, as age's armor package.
 * @module
 */
import { type Bytes, concatBytes, fromBase64, utf8 } from "../../core/bytes.ts";
import { isMissiveError, MissiveError } from "../../core/errors.ts";
import { AgeReader, type AgeSink, type AgeSource, looksLikeAgeFile } from "./_format.ts";

/** The first line of an armored age file (C2SP age, "ASCII armor"). */
export const ARMOR_BEGIN = "-----BEGIN AGE ENCRYPTED FILE-----";
/** The last line of an armored age file. */
export const ARMOR_END = "-----END AGE ENCRYPTED FILE-----";
const COLUMNS = 64;
const BYTES_PER_LINE = 48;
/** White space allowed before and after the block. */
const MAX_WHITESPACE = 1024;
/** Longest line read (an armor line is 64 columns; the markers fewer). */
const MAX_LINE = 2 * MAX_WHITESPACE;

const armorError = (why: string) => new MissiveError("malformed", `invalid armor: ${why}`);
const latin1 = new TextDecoder("latin1");
const isBlank = (s: string) => /^[\t\n\v\f\r ]*$/.test(s);

/** True when `text` is an armored age file: optional white space, then the BEGIN line. */
export function looksLikeAgeArmor(text: string): boolean {
  return text.replace(/^[\t\n\v\f\r ]+/, "").startsWith(ARMOR_BEGIN);
}

/** True when `head`, the first bytes of a file, is armored age rather than binary age. */
export function isArmoredAge(head: Uint8Array): boolean {
  return !looksLikeAgeFile(head) && looksLikeAgeArmor(latin1.decode(head));
}

/**
 * The bytes inside an armored age file, as a source read line by line. Every failure is
 * `malformed` ("invalid armor: …"), and a reader that failed stays failed.
 */
export function dearmorSource(source: AgeSource): AgeSource {
  const reader = new AgeReader(source);
  let started = false;
  let done = false;
  let failure: MissiveError | undefined;
  let pending: Uint8Array = new Uint8Array(0);

  const line = async (): Promise<string> => {
    let raw: Uint8Array;
    try {
      raw = await reader.readLine(MAX_LINE, "invalid armor");
    } catch (e) {
      if (isMissiveError(e, "too-large")) throw armorError("line too long");
      throw e;
    }
    if (raw.length === 0) throw armorError("unexpected end of input");
    let s = latin1.decode(raw);
    if (s.endsWith("\n")) s = s.slice(0, -1);
    if (s.endsWith("\r")) s = s.slice(0, -1);
    return s;
  };
  const drainTrailing = async () => {
    const rest = new Uint8Array(MAX_WHITESPACE);
    const n = await reader.readInto(rest);
    if (!isBlank(latin1.decode(rest.subarray(0, n)))) throw armorError("data after the END line");
    if (n === MAX_WHITESPACE) throw armorError("too much white space after the END line");
    done = true;
  };
  const nextBlock = async (): Promise<void> => {
    let skipped = 0;
    while (!started) {
      const s = await line();
      if (isBlank(s)) {
        skipped += s.length + 1;
        if (skipped > MAX_WHITESPACE) throw armorError("too much white space before the block");
        continue;
      }
      if (s !== ARMOR_BEGIN) throw armorError("invalid first line");
      started = true;
    }
    const s = await line();
    if (s === ARMOR_END) return await drainTrailing();
    if (s.length === 0) throw armorError("empty line");
    if (s.length > COLUMNS) throw armorError("line longer than 64 columns");
    const bytes = fromBase64(s);
    if (!bytes) throw armorError("invalid base64 line");
    pending = bytes;
    if (bytes.length < BYTES_PER_LINE) {
      if ((await line()) !== ARMOR_END) throw armorError("invalid closing line");
      await drainTrailing();
    }
  };
  return {
    async readInto(target) {
      let filled = 0;
      while (filled < target.length) {
        if (pending.length === 0) {
          if (failure) throw failure;
          if (done) break;
          try {
            await nextBlock();
          } catch (e) {
            failure = e instanceof MissiveError ? e : armorError(String(e));
            throw failure;
          }
          continue;
        }
        const take = Math.min(pending.length, target.length - filled);
        target.set(pending.subarray(0, take), filled);
        pending = pending.subarray(take);
        filled += take;
      }
      return filled;
    },
  };
}

/**
 * A sink that armors what is written to it into `sink`; `close` writes the last line
 * and the END line.
 */
export class ArmorWriter implements AgeSink {
  readonly #sink: AgeSink;
  #carry: Uint8Array = new Uint8Array(0);
  #started = false;

  constructor(sink: AgeSink) {
    this.#sink = sink;
  }

  #lines(bytes: Uint8Array): string {
    let out = "";
    for (let i = 0; i < bytes.length; i += BYTES_PER_LINE) {
      out += bytes.subarray(i, i + BYTES_PER_LINE).toBase64() + "\n";
    }
    return out;
  }

  async write(parts: readonly Uint8Array[]): Promise<void> {
    const all = concatBytes(this.#carry, ...parts);
    const whole = all.length - (all.length % BYTES_PER_LINE);
    this.#carry = all.slice(whole);
    let text = this.#started ? "" : ARMOR_BEGIN + "\n";
    this.#started = true;
    text += this.#lines(all.subarray(0, whole));
    if (text.length > 0) await this.#sink.write([utf8(text)]);
  }

  async close(): Promise<void> {
    const head = this.#started ? "" : ARMOR_BEGIN + "\n";
    const last = this.#carry.length > 0 ? this.#lines(this.#carry) : "";
    await this.#sink.write([utf8(head + last + ARMOR_END + "\n")]);
  }
}

/** Armors a whole age file held in memory. */
export function armorAge(file: Uint8Array): Bytes {
  const b64 = file.toBase64();
  let out = ARMOR_BEGIN + "\n";
  for (let i = 0; i < b64.length; i += COLUMNS) out += b64.slice(i, i + COLUMNS) + "\n";
  return utf8(out + ARMOR_END + "\n");
}
