/**
 * CLI input rules shared by the AMPs built from `--field` values alone (receipt,
 * presence, control): no stdin content, and only the field names the AMP knows.
 * @module
 */
import { MissiveError } from "../core/errors.ts";

/**
 * Refuses non-empty input and unknown field names with a usage error that ends with
 * `hint` (e.g. "give --field status=NAME").
 */
export function requireFieldsOnly(
  name: string,
  input: Uint8Array,
  fields: Readonly<Record<string, string>>,
  allowed: readonly string[],
  hint: string,
): void {
  const unknown = Object.keys(fields).filter((k) => !allowed.includes(k));
  if (input.length > 0 || unknown.length > 0) {
    throw new MissiveError(
      "usage",
      `${name}: ${input.length > 0 ? "takes no input" : `unknown field ${unknown[0]}`}; ${hint}`,
    );
  }
}
