/**
 * missive's version, as in package.json (a test checks they agree).
 * @module
 */

/** missive's version. */
export const VERSION = "0.1.0";
