/**
 * Bech32 (BIP 173) as age uses it: no length limit on the data part (an `age1pq1…`
 * recipient is 1,950 characters), all upper or all lower case, checksum over the lower
 * case string (C2SP age, "Conventions"). This is an encoding with a checksum, not a
 * cryptographic primitive.
 * @module
 */
import type { Bytes } from "../../core/bytes.ts";
import { MissiveError } from "../../core/errors.ts";

const CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
const GENERATOR = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
/** Longest string decoded: an age1pq1 recipient is 1,950 characters; this leaves room. */
export const MAX_BECH32_LENGTH = 4096;

/** BIP 173 "bech32_polymod". */
function polymod(values: Iterable<number>): number {
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= GENERATOR[i];
  }
  return chk >>> 0;
}

function hrpExpand(hrp: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < hrp.length; i++) out.push(hrp.charCodeAt(i) >> 5);
  out.push(0);
  for (let i = 0; i < hrp.length; i++) out.push(hrp.charCodeAt(i) & 31);
  return out;
}

/** Regroups bits (BIP 173 "convertbits"); `pad` false refuses non-zero leftover bits. */
function convertBits(data: ArrayLike<number>, from: number, to: number, pad: boolean): number[] {
  let acc = 0, bits = 0;
  const out: number[] = [];
  const maxv = (1 << to) - 1;
  for (let i = 0; i < data.length; i++) {
    acc = (acc << from) | data[i];
    bits += from;
    while (bits >= to) {
      bits -= to;
      out.push((acc >>> bits) & maxv);
    }
    acc &= (1 << bits) - 1;
  }
  if (pad) {
    if (bits > 0) out.push((acc << (to - bits)) & maxv);
  } else if (bits >= from || ((acc << (to - bits)) & maxv) !== 0) {
    throw new Error("non-zero padding");
  }
  return out;
}

/** Encodes `bytes` under the human-readable part `hrp` (lower case output). */
export function bech32Encode(hrp: string, bytes: Uint8Array): string {
  const lower = hrp.toLowerCase();
  const words = convertBits(bytes, 8, 5, true);
  const mod = polymod([...hrpExpand(lower), ...words, 0, 0, 0, 0, 0, 0]) ^ 1;
  let out = lower + "1";
  for (const w of words) out += CHARSET[w];
  for (let i = 0; i < 6; i++) out += CHARSET[(mod >>> (5 * (5 - i))) & 31];
  return out;
}

/**
 * Decodes a Bech32 string: its human-readable part (lower case) and bytes. `what` names
 * the thing in the `key` error (a recipient or an identity is a key).
 */
export function bech32Decode(text: string, what: string): { hrp: string; bytes: Bytes } {
  const fail = (why: string): never => {
    throw new MissiveError("key", `${what}: ${why}`);
  };
  if (text.length > MAX_BECH32_LENGTH) fail(`longer than ${MAX_BECH32_LENGTH} characters`);
  const lower = text.toLowerCase();
  if (lower !== text && text.toUpperCase() !== text) fail("mixed case");
  const sep = lower.lastIndexOf("1");
  if (sep < 1 || sep + 7 > lower.length) fail("not Bech32 (no separator or checksum)");
  const hrp = lower.slice(0, sep);
  for (let i = 0; i < hrp.length; i++) {
    const c = hrp.charCodeAt(i);
    if (c < 33 || c > 126) fail("invalid character in the prefix");
  }
  const words: number[] = [];
  for (const ch of lower.slice(sep + 1)) {
    const w = CHARSET.indexOf(ch);
    if (w < 0) fail(`invalid character ${JSON.stringify(ch)}`);
    words.push(w);
  }
  if (polymod([...hrpExpand(hrp), ...words]) !== 1) fail("bad Bech32 checksum");
  let bytes: number[] = [];
  try {
    bytes = convertBits(words.slice(0, -6), 5, 8, false);
  } catch {
    fail("invalid Bech32 padding");
  }
  return { hrp, bytes: new Uint8Array(bytes) };
}
