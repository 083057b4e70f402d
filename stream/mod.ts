/**
 * Streams (SPEC §20): seal and open inputs of any size in constant memory. A stream is a
 * magic, a header envelope sealed by an ordinary STP (simple or group) around a `stream`
 * descriptor, then AES-256-GCM chunks, each authenticated before its plaintext is
 * released. Sources and sinks (`ByteSource`, `ByteSink`) read and write in blocks: file
 * descriptors, async iterables, byte arrays.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createIdentity, defaultRegistry, getCryptoProvider, groupV1 } from "../mod.ts";
 * import { bytesSource, iterableSource, memorySink, openStream, sealStream } from "./mod.ts";
 * const crypto = await getCryptoProvider();
 * const caps = { stps: [[3, 1]] as const, amps: [[1, 1]] as const };
 * const alice = await createIdentity(crypto, { address: "alice@example.org", ...caps });
 * const bob = await createIdentity(crypto, { address: "bob@example.org", ...caps });
 * const carol = await createIdentity(crypto, { address: "carol@example.org", ...caps });
 * async function* pieces() {
 *   for (let i = 0; i < 10; i++) yield new Uint8Array(100).fill(i);
 * }
 * const sealed = memorySink();
 * const result = await sealStream({
 *   stp: groupV1, sender: alice, recipients: [bob.card, carol.card],
 *   source: iterableSource(pieces()), sink: sealed, chunkSize: 256,
 * });
 * assert.equal(result.signed, true); // two recipients hold the key: every chunk is signed
 * for (const reader of [bob, carol]) {
 *   const out = memorySink();
 *   await openStream({
 *     registry: defaultRegistry(), source: bytesSource(sealed.bytes()), sink: out,
 *     identity: reader, trusted: [alice.card],
 *   });
 *   assert.equal(out.length, 1000);
 *   assert.equal(out.bytes()[999], 9);
 * }
 * ```
 * @module
 */
export {
  DEFAULT_CHUNK,
  DEFAULT_SIGNED_CHUNK,
  looksLikeStream,
  MAX_STREAM_HEADER,
  STREAM_MAGIC,
  StreamError,
} from "./_format.ts";
export {
  type ByteSink,
  type ByteSource,
  bytesSource,
  callbackSink,
  fdSink,
  fdSource,
  iterableSource,
  memorySink,
  prefixedSource,
} from "./_io.ts";
export {
  needsSignedChunks,
  sealStream,
  type SealStreamRequest,
  type SealStreamResult,
  type StreamSupport,
  streamSupport,
} from "./_seal.ts";
export {
  type OpenedStreamHeader,
  openStream,
  openStreamHeader,
  type OpenStreamRequest,
  type OpenStreamResult,
  readStreamHeader,
} from "./_open.ts";

// Types that this entry point's signatures name (and the types those name), re-exported
// so that its documentation is complete on its own.
