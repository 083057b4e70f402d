/**
 * What the `smime` STP is, without its CMS code (pkijs, asn1js): the type, version, name
 * and properties stp/smime/mod.ts builds `smimeV1` from, for a registry entry that loads
 * the implementation on first use (the CLI's: a command that never meets S/MIME never
 * loads pkijs, issue 12: 2–4 ms of every command's start-up in the compiled binary).
 * @module
 */
/** STP type number of `smime`. */
export const SMIME_TYPE = 1;

/** The `smime` STP's registry entry apart from its operations. */
export const SMIME_DESCRIPTOR = {
  kind: "stp",
  type: SMIME_TYPE,
  version: 1,
  name: "smime",
  description: "X.509 S/MIME: CMS SignedData inside EnvelopedData/AuthEnvelopedData (openssl cms)",
  properties: {
    confidentiality: true,
    authentication: "signature",
    nonRepudiation: true,
    forwardSecrecy: false,
    multiRecipient: true,
    hiddenRecipients: false,
  },
} as const;
