/**
 * Identities, cards and key files.
 * @module
 */
export { MAX_ADDRESS_LENGTH, normalizeAddress } from "./address.ts";
export {
  type Card,
  type CardFields,
  cardFileText,
  cardToText,
  decodeCard,
  fingerprint,
  identityId,
  makeCard,
  parseCardText,
  type ProtocolPair,
  sameKeys,
} from "./card.ts";
export {
  createIdentity,
  type CreateIdentityOptions,
  DEFAULT_SCRYPT_LOG_N,
  type Identity,
  inspectKeyFile,
  type KeyFileInfo,
  MAX_SCRYPT_LOG_N,
  readKeyFile,
  writeKeyFile,
} from "./identity.ts";
