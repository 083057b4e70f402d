/**
 * The envelope layer (DESIGN §1, SPEC §2): the binary envelope in deterministic CBOR,
 * its two text forms (armor and one line), and the detection of which form an input is.
 * The envelope knows nothing of cryptography.
 * @module
 */
export {
  decodeEnvelope,
  encodeEnvelope,
  type Envelope,
  ENVELOPE_MAGIC,
  type EnvelopeHeader,
  looksLikeEnvelope,
  MAX_ENVELOPE_SIZE,
  MAX_PROTOCOL_NUMBER,
} from "./binary.ts";
export { armor, dearmor, fromLine, looksArmored, MAX_ARMOR_SIZE, toLine } from "./text.ts";
export { unwrapAnyForm } from "./detect.ts";
