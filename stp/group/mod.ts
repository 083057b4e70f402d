/**
 * `group` STP, type 3, version 1 (PhoneX STPSimpleGroup; SPEC §19): one ciphertext for
 * many recipients. The inner message is sealed once under a random payload key; one
 * ephemeral X25519 key per message gives every recipient device a key slot that wraps
 * the payload key. Slots carry an 8-byte hint derived from the recipient's shared
 * secret (one X25519 to open), or none in hidden mode (the opener tries each slot with
 * its one key-encryption key). The sender signs the header, every slot (by hash), a key
 * commitment and the ciphertext hash; the signature travels encrypted.
 * @module
 */
import type { StpPlugin, StpProperties } from "../../plugin/types.ts";
import { GROUP_TYPE } from "./_format.ts";
import { openGroup } from "./_open.ts";
import { sealGroup } from "./_seal.ts";

export { GROUP_TYPE } from "./_format.ts";
export { decodePayload as decodeGroupPayload, describePayload } from "./_format.ts";

const PROPERTIES: StpProperties = {
  confidentiality: true,
  authentication: "signature",
  nonRepudiation: true,
  forwardSecrecy: false,
  multiRecipient: true,
  hiddenRecipients: true,
};

/** The `group` STP (type 3, version 1). */
export const groupStp: StpPlugin = {
  kind: "stp",
  type: GROUP_TYPE,
  version: 1,
  name: "group",
  description:
    "many recipients: one AES-256-GCM ciphertext, one X25519 key slot each, Ed25519; optional hidden recipients",
  properties: PROPERTIES,
  seal: sealGroup,
  open: openGroup,
};
