/**
 * Frame vectors (SPEC §21.2): a byte stream read with a cap, and what a reader must make
 * of it — the frames, then (for failures) the error. Each case declares its outcome;
 * building fails if the implementation disagrees.
 *
 *     node_modules/.bin/deno run -A tests/vectors/cases_framing.ts
 *
 * writes tests/vectors/framing.json (also checked by tests/transport_test.ts).
 * @module
 */
import { writeFileSync } from "node:fs";
import { concatBytes, toHex, utf8 } from "../../core/bytes.ts";
import { MissiveError } from "../../core/errors.ts";
import { encodeFrame, FrameReader, MAX_FRAME_SIZE } from "../../transports/framing.ts";
import { toJsonText } from "./generate.ts";

interface FrameCase {
  name: string;
  comment: string;
  cap: number;
  stream: Uint8Array;
  /** The frames a reader yields before it ends or fails. */
  frames: Uint8Array[];
  error?: "malformed" | "too-large";
}

const u32 = (n: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
};

function cases(): FrameCase[] {
  const ab = utf8("ab");
  const c = utf8("c");
  const full = new Uint8Array(16).fill(0x5a);
  return [
    {
      name: "one-frame",
      comment: "one frame of 2 bytes",
      cap: MAX_FRAME_SIZE,
      stream: encodeFrame(ab),
      frames: [ab],
    },
    {
      name: "two-frames",
      comment: "two frames back to back (the SPEC §21.2 example)",
      cap: MAX_FRAME_SIZE,
      stream: concatBytes(encodeFrame(ab), encodeFrame(c)),
      frames: [ab, c],
    },
    {
      name: "at-cap",
      comment: "a frame of exactly the cap (16)",
      cap: 16,
      stream: encodeFrame(full, 16),
      frames: [full],
    },
    {
      name: "zero-length",
      comment: "length 0 is malformed",
      cap: MAX_FRAME_SIZE,
      stream: concatBytes(encodeFrame(ab), u32(0)),
      frames: [ab],
      error: "malformed",
    },
    {
      name: "over-cap",
      comment: "length 17 with cap 16, refused from the length alone (no body follows)",
      cap: 16,
      stream: u32(17),
      frames: [],
      error: "too-large",
    },
    {
      name: "over-envelope-limit",
      comment: "length 2^26 + 1 is over the largest cap (64 MiB)",
      cap: MAX_FRAME_SIZE,
      stream: u32(MAX_FRAME_SIZE + 1),
      frames: [],
      error: "too-large",
    },
    {
      name: "http-garbage",
      comment: "an HTTP request read as a length: 0x47455420 is over a 1 MiB cap",
      cap: 1024 * 1024,
      stream: utf8("GET / HTTP/1.1\r\n\r\n"),
      frames: [],
      error: "too-large",
    },
    {
      name: "truncated-length",
      comment: "the stream ends after 2 of the 4 length bytes",
      cap: MAX_FRAME_SIZE,
      stream: concatBytes(encodeFrame(c), u32(2).subarray(0, 2)),
      frames: [c],
      error: "malformed",
    },
    {
      name: "truncated-body",
      comment: "the stream ends after 1 of 2 body bytes",
      cap: MAX_FRAME_SIZE,
      stream: encodeFrame(ab).subarray(0, 5),
      frames: [],
      error: "malformed",
    },
  ];
}

/** Reads `stream` in one piece: the frames, then the error code if it failed. */
export function readFrames(
  stream: Uint8Array,
  cap: number,
): { frames: Uint8Array[]; error?: string } {
  const reader = new FrameReader(cap);
  const frames: Uint8Array[] = [];
  try {
    // Byte by byte: the outcome must not depend on how the stream is cut.
    for (const b of stream) frames.push(...reader.push(new Uint8Array([b])));
    reader.end();
    return { frames };
  } catch (e) {
    if (!(e instanceof MissiveError)) throw e;
    return { frames, error: e.code };
  }
}

/** The framing.json document. */
export function framingVectors(): Record<string, unknown> {
  const vectors = cases().map((v) => {
    const got = readFrames(v.stream, v.cap);
    const want = { frames: v.frames.map(toHex), error: v.error };
    if (
      JSON.stringify({ frames: got.frames.map(toHex), error: got.error }) !== JSON.stringify(want)
    ) {
      throw new Error(`framing vector ${v.name}: the reader disagrees with the declared outcome`);
    }
    return {
      name: v.name,
      comment: v.comment,
      cap: v.cap,
      stream: toHex(v.stream),
      expect: {
        outcome: v.error ?? "success",
        ...(v.error ? { error: v.error } : {}),
        frames: want.frames,
      },
    };
  });
  return {
    description: "Length-prefixed frames (SPEC §21.2): read `stream` (hex) with frame cap `cap`; " +
      "a reader yields `expect.frames` (hex) in order and then ends (success) or fails with the " +
      "error code `expect.error` (SPEC §11). The outcome does not depend on how the stream is cut.",
    vectors,
  };
}

if (import.meta.main) {
  writeFileSync(new URL("framing.json", import.meta.url), toJsonText(framingVectors()));
  console.log(`framing.json: ${(framingVectors().vectors as unknown[]).length} vectors`);
}
