/**
 * Capability negotiation (SPEC §23.8): a card lists the (STP, AMP) pairs its owner can
 * open and read; a sender picks, in its own order of preference, the best STP and the
 * best AMP that both it (its registry) and the recipient's card support.
 * @module
 */
import { MissiveError } from "../core/errors.ts";
import type { Card, ProtocolPair } from "../keys/card.ts";
import type { Registry } from "../plugin/registry.ts";
import type { AmpPlugin, StpPlugin } from "../plugin/types.ts";

/** STPs for one recipient with a card, best first: simple v3, v2, v1. */
export const STP_PREFERENCE: readonly ProtocolPair[] = [[2, 3], [2, 2], [2, 1]];
/** Text AMPs, best first: text v2 (compressed, own nonce), v1. */
export const TEXT_AMP_PREFERENCE: readonly ProtocolPair[] = [[1, 2], [1, 1]];

const has = (pairs: readonly ProtocolPair[], p: ProtocolPair) =>
  pairs.some(([t, v]) => t === p[0] && v === p[1]);

/** The protocols chosen for one message. */
export interface ProtocolChoice {
  /** The STP to seal with: the registry's plugin for the chosen (type, version). */
  stp: StpPlugin;
  /** The AMP to encode the text with (a text AMP unless `preferences.amps` says otherwise). */
  amp: AmpPlugin;
  /** For people: e.g. "simple/v2 + text/v2". */
  label: string;
}

/**
 * Picks the best STP and the best AMP that both `registry` and `recipient`'s card
 * support, in the order of `preferences` (default: `STP_PREFERENCE`,
 * `TEXT_AMP_PREFERENCE`). Only the card's lists are consulted: the card must be one the
 * caller has checked. Throws `unknown-protocol` naming what the recipient lists when
 * nothing matches.
 */
export function chooseProtocols(
  registry: Registry,
  recipient: Card,
  preferences: { stps?: readonly ProtocolPair[]; amps?: readonly ProtocolPair[] } = {},
): ProtocolChoice {
  const ours = registry.list();
  const mine = (list: { type: number; version: number }[]) =>
    list.map((p) => [p.type, p.version] as const);
  const pick = (
    prefs: readonly ProtocolPair[],
    local: readonly ProtocolPair[],
    theirs: readonly ProtocolPair[],
  ) => prefs.find((p) => has(local, p) && has(theirs, p));
  const stpPair = pick(preferences.stps ?? STP_PREFERENCE, mine(ours.stps), recipient.stps);
  const ampPair = pick(preferences.amps ?? TEXT_AMP_PREFERENCE, mine(ours.amps), recipient.amps);
  const show = (pairs: readonly ProtocolPair[]) =>
    pairs.map(([t, v]) => `${t}/${v}`).join(" ") || "none";
  if (!stpPair) {
    throw new MissiveError(
      "unknown-protocol",
      `${recipient.address} supports no STP we can send with (their card lists ${
        show(recipient.stps)
      })`,
    );
  }
  if (!ampPair) {
    throw new MissiveError(
      "unknown-protocol",
      `${recipient.address} reads no text AMP we can send (their card lists ${
        show(recipient.amps)
      })`,
    );
  }
  const stp = registry.stp(stpPair[0], stpPair[1]);
  const amp = registry.amp(ampPair[0], ampPair[1]);
  return { stp, amp, label: `${stp.name}/v${stp.version} + ${amp.name}/v${amp.version}` };
}
