/**
 * Opening whatever a user hands over (SPEC §2.4): the one form-detection routine and
 * `openAny`, which opens every form missive reads — an envelope (binary, armor, one
 * line), a stream, a bare Fernet token, a bare CMS message (DER or S/MIME text), an age
 * file (binary or armored) — with the same trust and replay rules. `missive open` and `missive inspect` call these; no
 * other code guesses what an input is.
 * @module
 */
import { type Bytes, concatBytes, fromUtf8 } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import { getCryptoProvider } from "../crypto/mod.ts";
import {
  encodeEnvelope,
  looksArmored,
  looksLikeEnvelope,
  MAX_ARMOR_SIZE,
  unwrapAnyForm,
} from "../envelope/mod.ts";
import { type OpenedMessage, openMessage, type OpenRequest } from "../plugin/message.ts";
import {
  detectFernetToken,
  openBareFernet,
  parsePskOptions,
  type PskOptions,
} from "../stp/psk/mod.ts";
import { looksLikeSmime, unwrapSmimeEntity } from "../stp/smime/detect.ts";
import {
  ageIdentities,
  type AgeIdentity,
  type AgeOpened,
  type AgeOptions,
  AgePayloadError,
  decryptAge,
  looksLikeAgeArmor,
  looksLikeAgeFile,
  parseAgeOptions,
  scryptIdentity,
} from "../stp/age/mod.ts";
import {
  type ByteSink,
  type ByteSource,
  bytesSource,
  looksLikeStream,
  openStream,
  type OpenStreamResult,
  prefixedSource,
  StreamError,
} from "../stream/mod.ts";

/** The forms an input can take (SPEC §2.4), in the order they are tried. */
export type InputForm =
  | "stream"
  | "age"
  | "binary"
  | "cms"
  | "armor"
  | "smime"
  | "fernet"
  | "age-armor"
  | "line";

/** STP type and version the smime STP has (SPEC §18): bare CMS opens under this pair. */
const SMIME_PAIR = { protocolType: 1, protocolVersion: 1 } as const;

/** Bytes read before a non-stream input is refused as too large (the armor limit, §2.4). */
export const MAX_WHOLE_INPUT: number = MAX_ARMOR_SIZE;

/**
 * Bytes read from a source to tell the forms that are opened as they are read (a stream,
 * an age file; armored age may follow up to 1 KiB of white space) from the others.
 */
const SNIFF_BYTES = 1100;

/**
 * Which form `input` is in (SPEC §2.4). Binary forms are told by their first bytes; text
 * by its first line. Anything that is none of the others is tried as the line form, whose
 * decoder then refuses what is not an envelope.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { detectForm } from "./open.ts";
 * const text = (s: string) => new TextEncoder().encode(s);
 * assert.equal(detectForm(new Uint8Array([0xd9, 0xd9, 0xf7, 0xa3])), "binary");
 * assert.equal(detectForm(text("-----BEGIN MISSIVE MESSAGE-----\n")), "armor");
 * assert.equal(detectForm(text("2dn3owEC")), "line");
 * ```
 */
export function detectForm(input: Uint8Array): InputForm {
  if (looksLikeStream(input)) return "stream";
  if (looksLikeAgeFile(input)) return "age";
  if (looksLikeEnvelope(input)) return "binary";
  // A DER SEQUENCE: no text form of ours can start with the byte 0x30 ("0") followed by
  // a DER length, and a missive line never starts with "0".
  if (input.length > 0 && input[0] === 0x30) return "cms";
  let text: string;
  try {
    text = fromUtf8(input.subarray(0, Math.min(input.length, 16 * 1024)));
  } catch {
    // Invalid UTF-8 (possibly cut inside a character at 16 KiB): let the line decoder
    // look at the whole input and say what it is not.
    return "line";
  }
  if (looksArmored(text)) return "armor";
  if (looksLikeAgeArmor(text)) return "age-armor";
  if (looksLikeSmime(input)) return "smime";
  if (detectFernetToken(input)) return "fernet";
  return "line";
}

/**
 * Inputs of `openAny`: those of `openMessage` (an envelope is opened with them; the other
 * forms read what applies: age files the identity's keys, Fernet tokens psk's options),
 * and where a stream's plaintext goes.
 */
export interface OpenAnyRequest extends
  Pick<
    OpenRequest,
    | "registry"
    | "identity"
    | "trusted"
    | "requireTrust"
    | "replay"
    | "options"
    | "optionPairs"
    | "crypto"
  > {
  /** Where a stream's plaintext goes, chunk by chunk as each authenticates. */
  sink?: ByteSink;
  /**
   * Called when a stream's header is open, before any plaintext is written (to open an
   * output file only then).
   */
  onStreamHeader?: () => void | Promise<void>;
  /** Progress of a stream: plaintext bytes released so far. */
  onProgress?: (plaintextBytes: number) => void;
}

/** What `openAny` opened. */
export type OpenAnyResult =
  | { kind: "message"; form: "binary" | "armor" | "line" | "cms" | "smime"; opened: OpenedMessage }
  | { kind: "stream"; form: "stream"; stream: OpenStreamResult }
  | { kind: "fernet"; form: "fernet"; plaintext: Bytes; timestamp: number }
  | {
    kind: "age";
    form: "age" | "age-armor";
    opened: AgeOpened;
    /** The plaintext, when no sink was given (then held in memory, up to MAX_WHOLE_INPUT). */
    plaintext?: Bytes;
  };

/**
 * Opens an input in any form (SPEC §2.4): bytes, or a source to read (a stream is then
 * opened as it is read, in constant memory; anything else is read whole, up to
 * `MAX_WHOLE_INPUT` bytes). Returns authenticated content or throws a MissiveError; a
 * stream's plaintext goes to `request.sink` and only authenticated chunks are written.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { armor, createIdentity, defaultRegistry, getCryptoProvider, sealMessage, simpleV2, textV1 } from "../mod.ts";
 * import { openAny } from "./open.ts";
 * const crypto = await getCryptoProvider();
 * const caps = { stps: [[2, 2]] as const, amps: [[1, 1]] as const };
 * const alice = await createIdentity(crypto, { address: "alice@example.org", ...caps });
 * const bob = await createIdentity(crypto, { address: "bob@example.org", ...caps });
 * const sealed = await sealMessage({
 *   stp: simpleV2, amp: textV1, message: { text: "hi" }, sender: alice, recipients: [bob.card],
 * });
 * const input = new TextEncoder().encode(armor(sealed));
 * const result = await openAny(input, { registry: defaultRegistry(), identity: bob, trusted: [alice.card] });
 * assert.equal(result.kind, "message");
 * assert.equal(result.form, "armor");
 * if (result.kind === "message") assert.deepEqual(result.opened.message, { text: "hi" });
 * ```
 */
export async function openAny(
  input: Uint8Array | ByteSource,
  request: OpenAnyRequest,
): Promise<OpenAnyResult> {
  if (!(input instanceof Uint8Array)) {
    const first = await input.read(SNIFF_BYTES);
    const source = prefixedSource(first, input);
    if (looksLikeStream(first)) return await openStreamInput(source, request);
    const age = ageFormOf(first);
    if (age) return await openAgeInput(source, age, request);
    input = await readWhole(source);
  }
  const form = detectForm(input);
  switch (form) {
    case "stream":
      return await openStreamInput(bytesSource(input), request);
    case "age":
    case "age-armor":
      return await openAgeInput(bytesSource(input), form, request);
    case "fernet":
      return await openFernet(input, request);
    case "cms":
    case "smime": {
      const frame = encodeEnvelope({ ...SMIME_PAIR, payload: unwrapSmimeEntity(input) });
      return { kind: "message", form, opened: await openMessage(frame, request) };
    }
    default:
      return { kind: "message", form, opened: await openMessage(unwrapEnvelope(input), request) };
  }
}

/**
 * The envelope of an input in an envelope form; for anything that is no form of ours, a
 * `malformed` error that says what the input looks like instead ("a missive card").
 */
export function unwrapEnvelope(input: Uint8Array): Bytes {
  try {
    return unwrapAnyForm(input);
  } catch (e) {
    const what = looksLike(input);
    if (what && e instanceof MissiveError && e.code === "malformed") {
      throw new MissiveError("malformed", `not a missive message (it looks like ${what})`, {
        cause: e,
      });
    }
    throw e;
  }
}

/** Magic numbers of common files, for "it looks like …". */
const MAGIC: [number[], string][] = [
  [[0x89, 0x50, 0x4e, 0x47], "a PNG image"],
  [[0xff, 0xd8, 0xff], "a JPEG image"],
  [[0x25, 0x50, 0x44, 0x46], "a PDF document"],
  [[0x1f, 0x8b], "gzip-compressed data"],
  [[0x50, 0x4b, 0x03, 0x04], "a zip archive"],
  [[0x7f, 0x45, 0x4c, 0x46], "a program (ELF)"],
];

/** What an input that is no missive form looks like, in words; undefined when unsure. */
function looksLike(input: Uint8Array): string | undefined {
  for (const [magic, what] of MAGIC) {
    if (magic.every((b, i) => input[i] === b)) return what;
  }
  let text: string;
  try {
    text = fromUtf8(input.subarray(0, Math.min(input.length, 4096))).trimStart();
  } catch {
    return "binary data that is not a missive envelope";
  }
  if (/^missive-card:/m.test(text) || text.startsWith("# missive card")) {
    return "a missive card (a public key): give it with --trust or --to";
  }
  if (text.includes("-----BEGIN MISSIVE SECRET KEY-----")) {
    return "a missive secret key: give it with --key";
  }
  const pem = /^-----BEGIN ([A-Z0-9 ]+)-----/m.exec(text)?.[1];
  if (pem) return `a PEM ${pem.toLowerCase()}`;
  if (/^(age1|AGE-SECRET-KEY-)/.test(text)) return "an age key";
  if (text.length === 0) return undefined;
  return "text";
}

async function readWhole(source: ByteSource): Promise<Bytes> {
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const block = await source.read(Math.min(4 * 1024 * 1024, MAX_WHOLE_INPUT + 1 - total));
    if (block.length === 0) break;
    total += block.length;
    if (total > MAX_WHOLE_INPUT) {
      throw new MissiveError("too-large", `input: larger than ${MAX_WHOLE_INPUT} bytes`);
    }
    parts.push(block);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

async function openStreamInput(
  source: ByteSource,
  request: OpenAnyRequest,
): Promise<OpenAnyResult> {
  const sink = request.sink;
  if (!sink) {
    throw new MissiveError(
      "usage",
      "open: a stream is not held in memory (as --json would need): write it with -o FILE",
    );
  }
  const stream = await openStream({
    ...request,
    source,
    sink,
    onHeader: request.onStreamHeader,
    onProgress: request.onProgress,
  });
  return { kind: "stream", form: "stream", stream };
}

/**
 * A bare Fernet token (psk v2 without an envelope, SPEC §13.3): no sender, so it never
 * passes `requireTrust`, and no nonce, so it cannot go through a replay cache.
 */
async function openFernet(input: Uint8Array, request: OpenAnyRequest): Promise<OpenAnyResult> {
  if (request.requireTrust) {
    throw new MissiveError("untrusted", "untrusted sender: a Fernet token has no sender");
  }
  if (request.replay) {
    throw new MissiveError(
      "usage",
      "open: a replay cache needs an envelope; a Fernet token has no nonce",
    );
  }
  const token = detectFernetToken(input)!;
  const fromPairs = request.optionPairs ? parsePskOptions(request.optionPairs) : {};
  const options: PskOptions = { ...fromPairs, ...(request.options as PskOptions | undefined) };
  const crypto = request.crypto ?? await getCryptoProvider();
  const opened = await openBareFernet(crypto, token, options);
  return {
    kind: "fernet",
    form: "fernet",
    plaintext: opened.plaintext,
    timestamp: opened.timestamp,
  };
}

/** The age form `first` (an input's first bytes) starts, if any. */
function ageFormOf(first: Uint8Array): "age" | "age-armor" | undefined {
  if (looksLikeAgeFile(first)) return "age";
  return looksLikeAgeArmor(new TextDecoder("latin1").decode(first)) ? "age-armor" : undefined;
}

/**
 * An age file (SPEC §26): no sender, so it never passes `requireTrust`, and no nonce, so
 * it cannot go through a replay cache. Identities: the STP options' (`ageIdentities`,
 * `passphrase`) and the opener's missive identity (its X25519 key). The plaintext goes to
 * `request.sink` chunk by chunk as each authenticates, or, without a sink, into memory.
 */
async function openAgeInput(
  source: ByteSource,
  form: "age" | "age-armor",
  request: OpenAnyRequest,
): Promise<OpenAnyResult> {
  if (request.requireTrust) {
    throw new MissiveError("untrusted", "untrusted sender: an age file has no sender");
  }
  if (request.replay) {
    throw new MissiveError(
      "usage",
      "open: a replay cache needs an envelope; an age file has no nonce",
    );
  }
  const crypto = request.crypto ?? await getCryptoProvider();
  const fromPairs = request.optionPairs ? await parseAgeOptions(request.optionPairs, crypto) : {};
  const options: AgeOptions = { ...fromPairs, ...(request.options as AgeOptions | undefined) };
  const identities: AgeIdentity[] = [...(options.ageIdentities ?? [])];
  if (request.identity) identities.push(...ageIdentities(request.identity));
  if (options.passphrase !== undefined) identities.push(scryptIdentity(options.passphrase));
  const held: Uint8Array[] = [];
  let written = 0;
  const sink: ByteSink = {
    write(parts) {
      for (const p of parts) written += p.length;
      request.onProgress?.(written);
      if (request.sink) return request.sink.write(parts);
      if (written > MAX_WHOLE_INPUT) {
        throw new MissiveError("too-large", `age plaintext: larger than ${MAX_WHOLE_INPUT} bytes`);
      }
      held.push(...parts);
      return Promise.resolve();
    },
  };
  try {
    const opened = await decryptAge(source, sink, {
      identities,
      crypto,
      armored: form === "age-armor",
      onHeader: request.sink ? request.onStreamHeader : undefined,
    });
    return {
      kind: "age",
      form,
      opened,
      plaintext: request.sink ? undefined : concatBytes(...held),
    };
  } catch (e) {
    // A payload failure after released chunks is reported like a stream's (SPEC §26.5).
    if (e instanceof AgePayloadError) throw new StreamError(e, e.released);
    throw e;
  }
}
