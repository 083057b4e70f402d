/**
 * `group` STP, type 3 (PhoneX STPSimpleGroup; SPEC §19): one ciphertext for many
 * recipients. The inner message is sealed once under a random payload key; every
 * recipient device gets a key slot that wraps the payload key to it. Version 1: one
 * ephemeral X25519 key per message serves every slot, each with an 8-byte hint derived
 * from the recipient's shared secret (one X25519 to open), or none in hidden mode (the
 * opener tries each slot with its one key-encryption key). Version 2 (post-quantum,
 * §19.10): each slot is an X-Wing (ML-KEM-768 + X25519) encapsulation to the
 * recipient's hybrid key, still found by an X25519 hint. The sender signs the header,
 * every slot (by hash), a key commitment and the ciphertext hash; the signature travels
 * encrypted.
 * @module
 */
import type { StpPlugin, StpProperties } from "../../plugin/types.ts";
import { GROUP_TYPE } from "./_format.ts";
import { openGroup } from "./_open.ts";
import { sealGroup } from "./_seal.ts";

export { GROUP_PQ_VERSION, GROUP_TYPE, slotSize as groupSlotSize } from "./_format.ts";
export { decodePayload as decodeGroupPayload, describePayload } from "./_format.ts";

const PROPERTIES: StpProperties = {
  confidentiality: true,
  authentication: "signature",
  nonRepudiation: true,
  forwardSecrecy: false,
  multiRecipient: true,
  hiddenRecipients: true,
};

/** The `group` STP (type 3, version 1): X25519 key slots. */
export const groupV1: StpPlugin = {
  kind: "stp",
  type: GROUP_TYPE,
  version: 1,
  name: "group",
  description:
    "many recipients: one AES-256-GCM ciphertext, one X25519 key slot each, Ed25519; optional hidden recipients",
  properties: { ...PROPERTIES, kem: "x25519" },
  seal: (inner, ctx) => sealGroup(1, inner, ctx),
  open: (payload, ctx) => openGroup(1, payload, ctx),
};

/**
 * The `group` STP, version 2 (post-quantum): X-Wing key slots of 1,176 bytes; falls back
 * to version 1 when a recipient card has no hybrid key.
 */
export const groupV2: StpPlugin = {
  kind: "stp",
  type: GROUP_TYPE,
  version: 2,
  name: "group",
  description:
    "many recipients: one AES-256-GCM ciphertext, one X-Wing (ML-KEM-768 + X25519, post-quantum) key slot each, Ed25519; optional hidden recipients",
  properties: { ...PROPERTIES, kem: "mlkem768x25519" },
  classicalFallback: groupV1,
  seal: (inner, ctx) => sealGroup(2, inner, ctx),
  open: (payload, ctx) => openGroup(2, payload, ctx),
};
