/**
 * Identities, cards and key files.
 * @module
 */
export { MAX_ADDRESS_LENGTH, normalizeAddress } from "./address.ts";
export {
  type Card,
  CARD_FORMAT,
  CARD_FORMAT_HYBRID,
  type CardFields,
  cardFileText,
  cardFormat,
  type CardKeys,
  cardToText,
  decodeCard,
  fingerprint,
  identityId,
  makeCard,
  MAX_CARD_SIZE,
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
