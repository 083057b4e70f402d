/**
 * Opening a stream (SPEC §20.6): the header through the registry's STP (authenticated
 * sender, payload key), then each chunk authenticated — AEAD tag, and the sender's
 * signature in signed streams — before its plaintext reaches the sink, in order. Chunks
 * are read ahead and checked concurrently; any failure stops the stream with a
 * `StreamError` that says how many plaintext bytes had been released.
 * @module
 */
import { getCryptoProvider } from "../crypto/mod.ts";
import type { CryptoProvider } from "../crypto/provider.ts";
import { MissiveError } from "../core/errors.ts";
import type { Card } from "../keys/card.ts";
import type { Identity } from "../keys/identity.ts";
import type { Registry } from "../plugin/registry.ts";
import { type OpenedMessage, openMessage } from "../plugin/message.ts";
import type { ReplayCache } from "../plugin/replay.ts";
import { STREAM_TYPE, type StreamDescriptor } from "../amp/stream.ts";
import {
  chunkKeys,
  chunkNonce,
  chunkTranscript,
  LAST_FLAG,
  looksLikeStream,
  MAX_STREAM_HEADER,
  SIGNATURE_BYTES,
  STREAM_MAGIC,
  StreamError,
  TAG_BYTES,
} from "./_format.ts";
import { BatchWriter, type ByteSink, type ByteSource } from "./_io.ts";
import { inFlightFor, WRITE_BATCH } from "./_seal.ts";

/** Inputs of `openStream`. */
export interface OpenStreamRequest {
  /** Where the header envelope's STP and AMP are looked up. */
  registry: Registry;
  /** The stream's bytes, from its magic on. */
  source: ByteSource;
  /** Where authenticated plaintext goes, in order, chunk by chunk. */
  sink: ByteSink;
  /** The opener's identity, to open the header. */
  identity?: Identity;
  /** Cards the opener trusts (see `OpenRequest.trusted`). */
  trusted?: readonly Card[];
  /** Refuse (`untrusted`, nothing written) a sender not verified against `trusted`. */
  requireTrust?: boolean;
  /** Where the header's (sender, nonce) is checked for replay (SPEC §10). */
  replay?: ReplayCache;
  /** Typed STP options for the header (see OpenRequest.options). */
  options?: object;
  /** STP options as text, parsed by the header's STP. */
  optionPairs?: Readonly<Record<string, string>>;
  /** The primitives; default `getCryptoProvider()`. */
  crypto?: CryptoProvider;
  /** Chunks read ahead and checked concurrently (default 8, lowered to bound memory). */
  inFlight?: number;
  /**
   * Called once the header is open (and `requireTrust` passed) and before any chunk is
   * read: may throw to refuse the stream with nothing written.
   */
  onHeader?: (header: OpenedStreamHeader) => void | Promise<void>;
  /** Called after each batch is written with the plaintext bytes released so far. */
  onProgress?: (plaintextBytes: number) => void;
}

/** The opened header: the envelope's result (sender, STP) and the descriptor. */
export interface OpenedStreamHeader {
  /** The header envelope, opened: STP, verified sender, warnings. */
  opened: OpenedMessage;
  /** The stream's descriptor; its `payloadKey` is wiped once the chunk keys are derived. */
  descriptor: StreamDescriptor;
  /** Length of the header envelope in bytes. */
  headerBytes: number;
}

/** What `openStream` released. */
export interface OpenStreamResult extends OpenedStreamHeader {
  /** Plaintext bytes written to the sink, all authenticated. */
  plaintextBytes: number;
  /** Chunk records read, the final one included. */
  chunks: number;
}

const malformed = (why: string) => new MissiveError("malformed", `stream: ${why}`);

/** Reads the magic and the header envelope; allocation bounded by MAX_STREAM_HEADER. */
export async function readStreamHeader(source: ByteSource): Promise<Uint8Array> {
  const start = await source.read(STREAM_MAGIC.length + 4);
  if (!looksLikeStream(start)) throw malformed("missing the stream magic");
  if (start.length < STREAM_MAGIC.length + 4) throw malformed("truncated header length");
  const length = new DataView(start.buffer, start.byteOffset + 8, 4).getUint32(0);
  if (length === 0) throw malformed("empty header");
  if (length > MAX_STREAM_HEADER) {
    throw new MissiveError(
      "too-large",
      `stream: header of ${length} bytes, over ${MAX_STREAM_HEADER}`,
    );
  }
  const header = await source.read(length);
  if (header.length < length) throw malformed("truncated header");
  return header;
}

/** Opens the header and checks it may carry a stream (SPEC §20.6 steps 1-4). */
export async function openStreamHeader(
  header: Uint8Array,
  request: Omit<OpenStreamRequest, "source" | "sink">,
): Promise<OpenedStreamHeader> {
  const opened = await openMessage(header, {
    registry: request.registry,
    identity: request.identity,
    trusted: request.trusted,
    requireTrust: request.requireTrust,
    replay: request.replay,
    options: request.options,
    optionPairs: request.optionPairs,
    crypto: request.crypto,
  });
  if (opened.amp.type !== STREAM_TYPE || opened.amp.version !== 1) {
    throw malformed(`header carries AMP (${opened.amp.type}, ${opened.amp.version}), not stream/1`);
  }
  const descriptor = opened.message as StreamDescriptor;
  const props = opened.stp.properties;
  if (!props.confidentiality || props.authentication !== "signature" || !opened.sender?.verified) {
    throw new MissiveError(
      "auth-failed",
      `stream: STP ${opened.stp.name} gave no confidential key and verified sender`,
    );
  }
  if (props.multiRecipient && !descriptor.signed) {
    throw new MissiveError(
      "auth-failed",
      `stream: unsigned chunks under multi-recipient STP ${opened.stp.name} (any recipient could forge them)`,
    );
  }
  if (descriptor.signed && !opened.sender.card) {
    throw new MissiveError(
      "auth-failed",
      "stream: signed chunks but no sender card to verify them",
    );
  }
  return { opened, descriptor, headerBytes: header.length };
}

/**
 * Opens a stream from `source`, releasing authenticated plaintext to `sink` (SPEC §20.6).
 * The header fails as `openMessage` fails (`not-a-recipient`, `auth-failed`, `untrusted`,
 * `replay`, …); a bad or missing chunk after it throws a `StreamError` whose `released`
 * counts the bytes already written, every one from a chunk that authenticated. A
 * truncated stream (no final chunk) is `malformed`, never a short success.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createIdentity, defaultRegistry, getCryptoProvider, simpleV3 } from "../mod.ts";
 * import { bytesSource, memorySink, openStream, sealStream, StreamError } from "./mod.ts";
 * const crypto = await getCryptoProvider();
 * const caps = { stps: [[2, 3]] as const, amps: [[1, 1]] as const };
 * const alice = await createIdentity(crypto, { address: "alice@example.org", ...caps });
 * const bob = await createIdentity(crypto, { address: "bob@example.org", ...caps });
 * const sealed = memorySink();
 * await sealStream({
 *   stp: simpleV3, sender: alice, recipients: [bob.card],
 *   source: bytesSource(new Uint8Array(1000).fill(7)), sink: sealed, chunkSize: 256,
 * });
 * const registry = defaultRegistry();
 * const out = memorySink();
 * const opened = await openStream({
 *   registry, source: bytesSource(sealed.bytes()), sink: out, identity: bob,
 *   trusted: [alice.card], requireTrust: true,
 * });
 * assert.equal(opened.plaintextBytes, 1000);
 * assert.equal(opened.opened.sender?.address, "alice@example.org");
 * // Cut off before its final chunk: the chunks that authenticated are released, then an error.
 * const cut = sealed.bytes().subarray(0, sealed.length - 100);
 * const partial = memorySink();
 * await assert.rejects(
 *   openStream({ registry, source: bytesSource(cut), sink: partial, identity: bob }),
 *   (e) => e instanceof StreamError && e.code === "malformed" && e.released === partial.length,
 * );
 * ```
 */
export async function openStream(request: OpenStreamRequest): Promise<OpenStreamResult> {
  const crypto = request.crypto ?? await getCryptoProvider();
  const { source, sink } = request;
  const header = await readStreamHeader(source);
  const head = await openStreamHeader(header, { ...request, crypto });
  await request.onHeader?.(head);
  const { descriptor } = head;
  const keys = await chunkKeys(crypto, descriptor.payloadKey, header);
  descriptor.payloadKey.fill(0);
  const signerKey = head.opened.sender!.card?.signingKey;
  const { chunkSize, signed } = descriptor;
  const trailer = TAG_BYTES + (signed ? SIGNATURE_BYTES : 0);

  const openChunk = async (index: number, last: boolean, record: Uint8Array) => {
    const sealed = record.subarray(0, record.length - (signed ? SIGNATURE_BYTES : 0));
    const plain = keys.aead.decrypt(chunkNonce(index, last), sealed, keys.aad);
    plain.catch(() => {});
    if (signed) {
      const signature = record.subarray(sealed.length);
      const digest = await crypto.sha256(sealed);
      const ok = await crypto.ed25519Verify(
        signerKey!,
        chunkTranscript(keys.headerHash, index, last, digest),
        signature,
      );
      if (!ok) {
        throw new MissiveError("auth-failed", `stream: chunk ${index}: bad sender signature`);
      }
    }
    try {
      return await plain;
    } catch (e) {
      if (e instanceof MissiveError) {
        throw new MissiveError(e.code, `stream: chunk ${index}: ${e.message}`);
      }
      throw e;
    }
  };

  const writer = new BatchWriter(sink, WRITE_BATCH, request.onProgress);
  const window: Promise<Uint8Array>[] = [];
  const inFlight = inFlightFor(request.inFlight, chunkSize + trailer);
  // Record buffers reused round-robin, each refilled only after its chunk's job is done
  // (as in seal.ts); the plaintext each job returns is its own array.
  const buffers = Array.from({ length: inFlight + 2 }, () => new Uint8Array(chunkSize + trailer));
  const word = new Uint8Array(4);
  const words = new DataView(word.buffer);
  const take = async () => await writer.add(await window.shift()!);
  /** Reads record `index`: checks its length word before reading (or allocating) more. */
  const readRecord = async (index: number) => {
    if ((await source.readInto(word)) < 4) {
      throw malformed(`truncated: no final chunk (input ends before chunk ${index})`);
    }
    const value = words.getUint32(0);
    const last = (value & LAST_FLAG) !== 0;
    const length = value & ~LAST_FLAG;
    if (length > chunkSize) {
      throw malformed(`chunk ${index} claims ${length} bytes, over the chunk size ${chunkSize}`);
    }
    if (!last && length !== chunkSize) {
      throw malformed(`chunk ${index} is not final but holds ${length} bytes, not ${chunkSize}`);
    }
    if (last && length === 0 && index > 0) {
      throw malformed(`final chunk ${index} is empty (only an empty stream ends so)`);
    }
    const record = buffers[index % buffers.length].subarray(0, length + trailer);
    if ((await source.readInto(record)) < record.length) {
      throw malformed(`truncated inside chunk ${index}`);
    }
    if (last && (await source.read(1)).length > 0) {
      throw malformed(`data after the final chunk ${index}`);
    }
    return { last, record };
  };

  let index = 0;
  try {
    let readFailure: MissiveError | undefined;
    for (;; index++) {
      let next;
      try {
        next = await readRecord(index);
      } catch (e) {
        if (!(e instanceof MissiveError)) throw e;
        readFailure = e;
        break;
      }
      const job = openChunk(index, next.last, next.record);
      job.catch(() => {}); // awaited in order by take(); never an unhandled rejection
      window.push(job);
      // A chunk that fails here stops everything: later chunks are never released.
      if (window.length >= inFlight) await take();
      if (next.last) break;
    }
    // Chunks before a read failure are released in order if they authenticate.
    while (window.length > 0) await take();
    await writer.finish();
    if (readFailure) throw readFailure;
  } catch (e) {
    if (e instanceof MissiveError && !(e instanceof StreamError)) {
      // Release the authenticated chunks before the failure, so the count is exact:
      // every byte before the first bad chunk (SPEC §20.6).
      if (!writer.failed) await writer.finish();
      throw new StreamError(e, writer.written);
    }
    throw e;
  } finally {
    await Promise.allSettled(window);
  }
  return { ...head, plaintextBytes: writer.written, chunks: index + 1 };
}
