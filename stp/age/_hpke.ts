/**
 * The HPKE base-mode key schedule (RFC 9180 §5.1) for age's mlkem768x25519 stanza: KEM
 * MLKEM768-X25519 (0x647a), KDF HKDF-SHA256 (0x0001), AEAD ChaCha20Poly1305 (0x0003).
 * A stanza seals one 16-byte file key, so only the first nonce (sequence 0) is used.
 * @module
 */
import { expand, extract } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { type Bytes, concatBytes, utf8 } from "../../core/bytes.ts";

/** HPKE KEM id of MLKEM768-X25519 (X-Wing) in draft-ietf-hpke-pq. */
export const KEM_MLKEM768_X25519 = 0x647a;
const KDF_HKDF_SHA256 = 0x0001;
const AEAD_CHACHA20POLY1305 = 0x0003;
const MODE_BASE = 0x00;
const EMPTY = new Uint8Array(0);

const u16 = (n: number) => new Uint8Array([n >> 8, n & 0xff]);

/** suite_id = "HPKE" ‖ I2OSP(kem_id, 2) ‖ I2OSP(kdf_id, 2) ‖ I2OSP(aead_id, 2) (§5.1). */
function suiteId(kem: number): Bytes {
  return concatBytes(utf8("HPKE"), u16(kem), u16(KDF_HKDF_SHA256), u16(AEAD_CHACHA20POLY1305));
}

/** LabeledExtract (§4). */
function labeledExtract(suite: Uint8Array, salt: Uint8Array, label: string, ikm: Uint8Array) {
  return extract(sha256, concatBytes(utf8("HPKE-v1"), suite, utf8(label), ikm), salt);
}

/** LabeledExpand (§4). */
function labeledExpand(
  suite: Uint8Array,
  prk: Uint8Array,
  label: string,
  info: Uint8Array,
  length: number,
): Bytes {
  const labeled = concatBytes(u16(length), utf8("HPKE-v1"), suite, utf8(label), info);
  return expand(sha256, prk, labeled, length) as Bytes;
}

/**
 * KeySchedule(mode_base, shared_secret, info, psk = "", psk_id = "") (§5.1): the AEAD
 * key and base nonce.
 */
export function hpkeBaseContext(
  kem: number,
  sharedSecret: Uint8Array,
  info: Uint8Array,
): { key: Bytes; nonce: Bytes } {
  const suite = suiteId(kem);
  const pskIdHash = labeledExtract(suite, EMPTY, "psk_id_hash", EMPTY);
  const infoHash = labeledExtract(suite, EMPTY, "info_hash", info);
  const context = concatBytes(new Uint8Array([MODE_BASE]), pskIdHash, infoHash);
  const secret = labeledExtract(suite, sharedSecret, "secret", EMPTY);
  return {
    key: labeledExpand(suite, secret, "key", context, 32),
    nonce: labeledExpand(suite, secret, "base_nonce", context, 12),
  };
}
