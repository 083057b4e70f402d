/**
 * Streams (SPEC §20): seal and open inputs of any size in constant memory.
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
