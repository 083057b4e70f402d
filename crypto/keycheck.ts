/**
 * Weak-key checks (SPEC §1.4, §3.7). Ed25519: a point of small order as a public key lets
 * a trivial signature "verify" any message (R = identity, S = 0 under A = identity); both
 * providers refuse small-order and non-canonical encodings of A and of R before verifying,
 * the way libsodium's crypto_sign_verify_detached does. Cards must hold keys of prime
 * order. X25519: a small-order key makes every shared secret all-zero or predictable.
 * @module
 */
import { ed25519, ED25519_TORSION_SUBGROUP } from "@noble/curves/ed25519.js";
import { type Bytes, fromHex, toHex } from "../core/bytes.ts";

/**
 * The y-coordinates (sign bit cleared) of the eight points of order dividing 8, taken from
 * noble's list of the torsion subgroup: five distinct values (1, −1, 0 and ±y of order 8).
 */
const SMALL_ORDER_Y: readonly Bytes[] = (() => {
  const seen = new Map<string, Bytes>();
  for (const hex of ED25519_TORSION_SUBGROUP) {
    const y = fromHex(hex)!;
    y[31] &= 0x7f;
    seen.set(toHex(y), y);
  }
  return [...seen.values()];
})();

/** True when the 255-bit little-endian value of `b` (bit 255 cleared) is ≥ p = 2^255 − 19. */
function atLeastP(b: Uint8Array): boolean {
  if ((b[31] & 0x7f) !== 0x7f) return false;
  for (let i = 30; i >= 1; i--) if (b[i] !== 0xff) return false;
  return b[0] >= 0xed;
}

function sameY(b: Uint8Array, y: Uint8Array): boolean {
  if ((b[31] & 0x7f) !== y[31]) return false;
  for (let i = 0; i < 31; i++) if (b[i] !== y[i]) return false;
  return true;
}

/**
 * True when 32 bytes are no canonical encoding of an Ed25519 point of large order: a
 * y-coordinate ≥ p (RFC 8032 §5.1.3 step 1), or the y of a point of order 1, 2, 4 or 8
 * (which also covers x = 0 with the sign bit set, RFC 8032 §5.1.3 step 4: y = ±1 only).
 * Byte comparisons only; verification refuses such A and R values before any curve work.
 * Points that are not on the curve at all are left to the verifier, which rejects them.
 */
export function isWeakEd25519Point(encoding: Uint8Array): boolean {
  if (encoding.length !== 32 || atLeastP(encoding)) return true;
  return SMALL_ORDER_Y.some((y) => sameY(encoding, y));
}

/**
 * Why an Ed25519 public key is unfit for a card, or undefined when it is fit: it must be a
 * canonical encoding of a point on the curve, of prime order (no torsion component: keys
 * made from a seed always are, and a cofactored and a cofactorless verifier then agree).
 */
export function ed25519KeyProblem(publicKey: Uint8Array): string | undefined {
  if (publicKey.length !== 32) return "not 32 bytes";
  if (atLeastP(publicKey)) return "not a canonical encoding (y ≥ p)";
  if (isWeakEd25519Point(publicKey)) return "a point of small order";
  let point;
  try {
    point = ed25519.Point.fromBytes(publicKey, false);
  } catch {
    return "not a point on Ed25519";
  }
  if (!point.isTorsionFree()) return "not of prime order (it has a torsion component)";
  return undefined;
}

/** p = 2^255 − 19, little-endian: the first non-canonical u-coordinate. */
const P_LE = fromHex("ed" + "ff".repeat(30) + "7f")!;

/**
 * Why an X25519 public key is not canonical, or undefined: bit 255 set (RFC 7748 §5
 * masks it, so two encodings would name one key) or a value ≥ p. Small order is checked
 * by the caller with a scalar multiplication (an all-zero result, RFC 7748 §6.1), which
 * covers the curve and its twist.
 */
export function x25519EncodingProblem(publicKey: Uint8Array): string | undefined {
  if (publicKey.length !== 32) return "not 32 bytes";
  if (publicKey[31] & 0x80) return "bit 255 is set";
  for (let i = 31; i >= 0; i--) {
    if (publicKey[i] !== P_LE[i]) return publicKey[i] > P_LE[i] ? "a value ≥ p" : undefined;
  }
  return "a value ≥ p";
}
