/**
 * Identity addresses (`alice@example.org`): validated and normalised to lower case so
 * that two spellings of one address are one identity.
 * @module
 */
import { MissiveError } from "../core/errors.ts";

const LOCAL = /^[a-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$/;
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** ASCII letters lowered, nothing else changed: the only case mapping addresses get. */
export function lowerAscii(text: string): string {
  return text.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/** Largest address length (RFC 5321 §4.5.3.1.3 path limit minus brackets). */
export const MAX_ADDRESS_LENGTH = 254;

/**
 * Validates an address and returns its normal form: ASCII letters lowered, nothing else
 * changed. Any character outside printable ASCII is refused before, so no Unicode case
 * mapping can turn a look-alike (U+212A KELVIN SIGN, the Turkish dotted İ) into the
 * letter it resembles (SPEC §3.2). Throws `MissiveError(code)` naming what is wrong.
 */
export function normalizeAddress(input: string, code: "usage" | "malformed" = "usage"): string {
  const fail = (why: string): never => {
    throw new MissiveError(code, `invalid address ${JSON.stringify(input)}: ${why}`);
  };
  if (!/^[\x20-\x7e]*$/.test(input.trim())) fail("only ASCII letters, digits and . _ - + …");
  const address = lowerAscii(input.trim());
  if (address.length === 0 || address.length > MAX_ADDRESS_LENGTH) fail("empty or too long");
  const at = address.lastIndexOf("@");
  if (at <= 0 || at === address.length - 1) fail("expected name@domain");
  const local = address.slice(0, at);
  const domain = address.slice(at + 1);
  if (!LOCAL.test(local) || local.startsWith(".") || local.endsWith(".") || local.includes("..")) {
    fail("bad characters or dots before @");
  }
  const labels = domain.split(".");
  if (domain.length > 253 || !labels.every((l) => LABEL.test(l))) fail("bad domain");
  return address;
}
