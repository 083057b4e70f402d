/**
 * Sealing a stream (SPEC §20.5): the header is an ordinary envelope made by the chosen
 * STP around a `stream` descriptor; the content follows in AES-256-GCM chunks, several in
 * flight at once, signed per chunk when more than the recipient could hold the key.
 * Memory stays flat: at most `inFlight` chunks plus one read block are held.
 * @module
 */
import { type Bytes, randomBytes } from "../core/bytes.ts";
import { getCryptoProvider } from "../crypto/mod.ts";
import type { CryptoProvider } from "../crypto/provider.ts";
import { MissiveError } from "../core/errors.ts";
import type { Card } from "../keys/card.ts";
import type { Identity } from "../keys/identity.ts";
import type { Registry } from "../plugin/registry.ts";
import { sealMessage, type SealRequest } from "../plugin/message.ts";
import type { AnyStp } from "../plugin/types.ts";
import { FILE_TYPE } from "../amp/file.ts";
import { STREAMABLE_AMPS, type StreamDescriptor, streamV1 } from "../amp/stream.ts";
import {
  chunkKeys,
  chunkNonce,
  chunkTranscript,
  DEFAULT_CHUNK,
  DEFAULT_SIGNED_CHUNK,
  headerPrefix,
  MAX_STREAM_HEADER,
  recordWord,
  STREAM_MAGIC,
} from "./_format.ts";
import { BatchWriter, type ByteSink, type ByteSource } from "./_io.ts";

/** Chunks sealed concurrently unless told otherwise. */
export const DEFAULT_IN_FLIGHT = 8;
/** Chunk buffers (in flight plus two) stay under this many bytes, whatever the chunk size. */
const BUFFER_BUDGET = 48 * 1024 * 1024;

/**
 * How many chunks may be in flight: at most `wanted`, and few enough that the reused
 * buffers (one per chunk in flight, plus two) fit the budget.
 */
export function inFlightFor(wanted: number | undefined, bufferSize: number): number {
  const fit = Math.floor(BUFFER_BUDGET / bufferSize) - 2;
  return Math.max(1, Math.min(wanted ?? DEFAULT_IN_FLIGHT, fit));
}
/** Output is handed to the sink in batches of about this many bytes. */
export const WRITE_BATCH = 1024 * 1024;

/** Inputs of `sealStream`. */
export interface SealStreamRequest {
  /** The registry the STP came from, so an external plugin's failures are named. */
  registry?: Registry;
  /** A confidential STP that signs (simple, group); others are `usage` (`streamSupport`). */
  stp: AnyStp;
  /** The sender: seals the header and, in signed streams, signs every chunk. */
  sender: Identity;
  /** The recipients' cards, as for `sealMessage`. */
  recipients: readonly Card[];
  /** The content AMP: text/1 (default) or file/1 with `name` and `mediaType`. */
  content?: { ampType: number; ampVersion: number; name?: string; mediaType?: string };
  /** The plaintext, read in chunks until it ends. */
  source: ByteSource;
  /** Where the stream's bytes go: magic, header, then chunk records (SPEC §20.1). */
  sink: ByteSink;
  /** Default 256 KiB (DEFAULT_CHUNK, DEFAULT_SIGNED_CHUNK). */
  chunkSize?: number;
  /** Sign every chunk; default: when the STP is multi-recipient or recipients ≠ 1. */
  signed?: boolean;
  /**
   * Chunks sealed concurrently (default `DEFAULT_IN_FLIGHT`, 8); lowered so the chunk
   * buffers stay under 48 MiB whatever the chunk size.
   */
  inFlight?: number;
  /** Attach the sender's card to the header (default true), as for `sealMessage`. */
  includeCard?: boolean;
  /** The header's destination as a keyed hash (simple only), as for `sealMessage`. */
  hashDestination?: boolean;
  /** The header envelope's sequence number (SPEC §2.1). */
  sequenceNumber?: number;
  /** The STP's options for the header, passed to `sealMessage` as its `options`. */
  options?: Record<string, string>;
  /**
   * More header sealing options, passed to sealMessage as they are (e.g. a multi-recipient
   * STP's `hideRecipients`); the fields above win.
   */
  sealOptions?: Partial<SealRequest<StreamDescriptor>>;
  /** The primitives; default `getCryptoProvider()`. */
  crypto?: CryptoProvider;
  /** The header's timestamp, ms; default now. Injectable for vectors (as in sealMessage). */
  now?: number;
  /** Every random byte (payload key, header); the CSPRNG unless making vectors. */
  random?: (length: number) => Bytes;
  /** Called after each batch is written with the plaintext bytes consumed so far. */
  onProgress?: (plaintextBytes: number) => void;
}

/** What `sealStream` did. */
export interface SealStreamResult {
  /** Plaintext bytes read from the source. */
  plaintextBytes: number;
  /** Bytes written to the sink: magic, header and every chunk record. */
  streamBytes: number;
  /** Chunk records written (at least one: an empty input is one empty final chunk). */
  chunks: number;
  /** Plaintext bytes per chunk, as the descriptor says. */
  chunkSize: number;
  /** Whether every chunk carries the sender's signature (SPEC §20.4). */
  signed: boolean;
  /** SHA-256 of the header envelope, which every chunk's AAD and signature bind. */
  headerHash: Bytes;
}

/** Whether a stream can be sealed, and when not, why (for people). */
export type StreamSupport = { ok: true } | { ok: false; reason: string };

/**
 * Whether `stp` and the content AMP can carry a stream (SPEC §20): the STP must protect
 * the payload key and sign for the sender (simple, group); the content must be text/1 or
 * file/1. The one rule `sealStream` and the CLI both apply.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { authV1, simpleV2 } from "../mod.ts";
 * import { streamSupport } from "./mod.ts";
 * assert.deepEqual(streamSupport(simpleV2, { type: 1, version: 1 }), { ok: true });
 * assert.equal(streamSupport(authV1, { type: 1, version: 1 }).ok, false);
 * assert.equal(streamSupport(simpleV2, { type: 2, version: 1 }).ok, false);
 * ```
 */
export function streamSupport(
  stp: AnyStp,
  amp: { type: number; version: number } = { type: 1, version: 1 },
): StreamSupport {
  const p = stp.properties;
  if (!p.confidentiality || p.authentication !== "signature") {
    return {
      ok: false,
      reason: `STP ${stp.name} cannot carry a stream (it needs confidentiality and a sender ` +
        "signature: simple or group)",
    };
  }
  if (!STREAMABLE_AMPS.some(([t, v]) => t === amp.type && v === amp.version)) {
    return {
      ok: false,
      reason: `AMP (${amp.type}, ${amp.version}) cannot be streamed (use text/1 or file/1)`,
    };
  }
  return { ok: true };
}

/** Signed chunks are required when anyone but one recipient may hold the payload key. */
export function needsSignedChunks(stp: AnyStp, recipients: number): boolean {
  return stp.properties.multiRecipient || recipients !== 1;
}

/**
 * Seals `source` as a stream into `sink` (SPEC §20.5), in constant memory. Refused with
 * `usage`: an STP or content AMP that cannot carry a stream (`streamSupport`), or
 * `signed: false` where more than one party could hold the payload key; a header over
 * `MAX_STREAM_HEADER` is `too-large`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createIdentity, defaultRegistry, getCryptoProvider, simpleV3 } from "../mod.ts";
 * import { bytesSource, memorySink, openStream, sealStream, STREAM_MAGIC } from "./mod.ts";
 * const crypto = await getCryptoProvider();
 * const caps = { stps: [[2, 3]] as const, amps: [[1, 1]] as const };
 * const alice = await createIdentity(crypto, { address: "alice@example.org", ...caps });
 * const bob = await createIdentity(crypto, { address: "bob@example.org", ...caps });
 * const data = new Uint8Array(1000).map((_, i) => i % 251);
 * const sealed = memorySink();
 * const result = await sealStream({
 *   stp: simpleV3, sender: alice, recipients: [bob.card],
 *   source: bytesSource(data), sink: sealed, chunkSize: 256,
 * });
 * assert.equal(result.plaintextBytes, 1000);
 * assert.equal(result.chunks, 4);
 * assert.equal(result.signed, false); // one recipient: the AEAD alone authenticates
 * assert.deepEqual(sealed.bytes().subarray(0, 8), STREAM_MAGIC);
 * const out = memorySink();
 * await openStream({
 *   registry: defaultRegistry(), source: bytesSource(sealed.bytes()), sink: out,
 *   identity: bob, trusted: [alice.card],
 * });
 * assert.deepEqual(out.bytes(), data);
 * ```
 */
export async function sealStream(request: SealStreamRequest): Promise<SealStreamResult> {
  const crypto = request.crypto ?? await getCryptoProvider();
  const random = request.random ?? randomBytes;
  const { stp, sender, source, sink } = request;
  const content = request.content ?? { ampType: 1, ampVersion: 1 };
  const support = streamSupport(stp, { type: content.ampType, version: content.ampVersion });
  if (!support.ok) throw new MissiveError("usage", `stream: ${support.reason}`);
  const signed = request.signed ?? needsSignedChunks(stp, request.recipients.length);
  if (!signed && needsSignedChunks(stp, request.recipients.length)) {
    throw new MissiveError("usage", "stream: more than one recipient holds the key; sign chunks");
  }
  const chunkSize = request.chunkSize ?? (signed ? DEFAULT_SIGNED_CHUNK : DEFAULT_CHUNK);
  const payloadKey = random(32);
  const descriptor: StreamDescriptor = {
    ampType: content.ampType,
    ampVersion: content.ampVersion,
    payloadKey,
    chunkSize,
    signed,
    ...(content.ampType === FILE_TYPE ? { name: content.name, mediaType: content.mediaType } : {}),
  };
  const header = await sealMessage({
    ...request.sealOptions,
    registry: request.registry,
    stp,
    amp: streamV1,
    message: descriptor,
    sender,
    recipients: request.recipients,
    sequenceNumber: request.sequenceNumber,
    includeCard: request.includeCard,
    hashDestination: request.hashDestination,
    options: request.options,
    crypto,
    now: request.now,
    random: request.random,
  });
  if (header.length > MAX_STREAM_HEADER) {
    throw new MissiveError("too-large", `stream: header over ${MAX_STREAM_HEADER} bytes`);
  }
  const keys = await chunkKeys(crypto, payloadKey, header);
  payloadKey.fill(0);
  const seed = sender.signingSeed;

  const sealChunk = async (index: number, plain: Uint8Array, last: boolean) => {
    // Unsigned chunks go out as the cipher's parts, uncopied (a gathering write joins them).
    if (!signed && keys.aead.encryptParts) {
      const parts = await keys.aead.encryptParts(chunkNonce(index, last), plain, keys.aad);
      return [recordWord(plain.length, last), ...parts];
    }
    const sealed = await keys.aead.encrypt(chunkNonce(index, last), plain, keys.aad);
    const parts: Uint8Array[] = [recordWord(plain.length, last), sealed];
    if (signed) {
      const digest = await crypto.sha256(sealed);
      parts.push(
        await crypto.ed25519Sign(seed, chunkTranscript(keys.headerHash, index, last, digest)),
      );
    }
    return parts;
  };

  let plaintextBytes = 0;
  let consumed = 0;
  const writer = new BatchWriter(sink, WRITE_BATCH, () => request.onProgress?.(plaintextBytes));
  await writer.add(STREAM_MAGIC, headerPrefix(header.length), header);
  const window: Promise<Uint8Array[]>[] = [];
  const inFlight = inFlightFor(request.inFlight, chunkSize);
  const take = async () => await writer.add(...await window.shift()!);
  // Buffers are reused round-robin: buffer i % n is refilled only after chunk i's job is
  // done (the window holds fewer than n - 1 jobs), so no provider sees bytes change.
  const buffers = Array.from({ length: inFlight + 2 }, () => new Uint8Array(chunkSize));
  let index = 0;
  try {
    // One chunk of look-ahead: a full chunk is the last one only if the input ends there.
    let length = await source.readInto(buffers[0]);
    for (;;) {
      const next = buffers[(index + 1) % buffers.length];
      const nextLength = length === chunkSize ? await source.readInto(next) : 0;
      const last = nextLength === 0;
      const job = sealChunk(index, buffers[index % buffers.length].subarray(0, length), last);
      job.catch(() => {}); // awaited in order below; never an unhandled rejection
      window.push(job);
      consumed += length;
      if (window.length >= inFlight) {
        await take();
        plaintextBytes = consumed;
      }
      if (last) break;
      length = nextLength;
      index++;
    }
    while (window.length > 0) await take();
    plaintextBytes = consumed;
    await writer.finish();
    return {
      plaintextBytes,
      streamBytes: writer.written,
      chunks: index + 1,
      chunkSize,
      signed,
      headerHash: keys.headerHash,
    };
  } finally {
    // Leave no chunk job unobserved when the source or sink failed.
    await Promise.allSettled(window);
  }
}
