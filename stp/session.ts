/**
 * `session` STP, type 5, version 1 (SPEC §22): listed in the registry so `missive plugins`
 * shows it, but not a one-shot STP. A session frame only means something inside its live
 * session (keys, sequence numbers, state), so `seal` and `open` refuse with a usage error
 * that points to `missive session` and the `Session` class (SPEC §22.11).
 * @module
 */
import { MissiveError } from "../core/errors.ts";
import type { StpPlugin } from "../plugin/types.ts";

/** Envelope protocol type and version of the session (DESIGN §4, SPEC §22). */
export const SESSION_TYPE = 5;
/** The session protocol version this STP entry stands for. */
export const SESSION_VERSION = 1;
/** The post-quantum hybrid session version (ML-KEM-768 + X25519, SPEC §22.12). */
export const SESSION_PQ_VERSION = 2;

const NOT_ONE_SHOT = "the session STP (5, 1) is a live protocol, not a one-shot message: use " +
  "`missive session listen|connect` or Session.connect/accept (SPEC §22)";

/** The `session` STP registry entry. */
export const sessionV1: StpPlugin = {
  kind: "stp",
  type: SESSION_TYPE,
  version: SESSION_VERSION,
  name: "session",
  description: "live session: mutual auth, ephemeral X25519, re-key every N messages (PFS)",
  properties: {
    confidentiality: true,
    authentication: "signature",
    nonRepudiation: false,
    forwardSecrecy: true,
    multiRecipient: false,
    hiddenRecipients: false,
  },
  seal() {
    return Promise.reject(new MissiveError("usage", NOT_ONE_SHOT));
  },
  open() {
    return Promise.reject(new MissiveError("usage", NOT_ONE_SHOT));
  },
};
