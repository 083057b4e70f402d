/** `missive inspect`: the envelope header, no keys needed. @module */
import { utf8 } from "../core/bytes.ts";
import { decodeEnvelope, type Envelope, MAX_ARMOR_SIZE } from "../envelope/mod.ts";
import { isMissiveError } from "../core/errors.ts";
import { detectForm, unwrapEnvelope } from "../messaging/open.ts";
import { detectFernetToken } from "../stp/psk/mod.ts";
import { unwrapSmimeEntity } from "../stp/smime/detect.ts";
import {
  type Command,
  exitCodesLine,
  type Io,
  loadRegistry,
  parseFlags,
  writeOutput,
} from "./common.ts";
import type { Registry } from "../plugin/registry.ts";
import type { AnyStp } from "../plugin/types.ts";
import { type ByteSource, bytesSource, readStreamHeader } from "../stream/mod.ts";
import { readAgeHeader } from "../stp/age/mod.ts";
import { sanitizeText } from "../core/sanitize.ts";
import { inputSource, sniffInput } from "./streaming.ts";
import { describePayload, GROUP_PQ_VERSION, GROUP_TYPE } from "../stp/group/mod.ts";
import { describeRatchetPayload, RATCHET_TYPE } from "../stp/ratchet/mod.ts";

const usage = `missive inspect [--json] [INPUT]

Shows an envelope's header without opening it: its form (binary, armor, line), the STP
(type, version) and name when a plugin knows it, the key agreement ("kem":
mlkem768x25519 for post-quantum simple v3, group v2 and ratchet, x25519 for the
classical versions), the sequence number and payload size; for group, the number of
key slots and whether recipients are hidden; for ratchet, the clear header (ratchet
key, message number and, on an initial message, the prekeys it names). Bare forms are recognized too (SPEC §2.4): a CMS
message (DER or S/MIME text) is shown as the smime STP's payload; a Fernet token shows
its (unencrypted) timestamp.

A stream (SPEC §20) is recognized by its first bytes: inspect reads only its header
and shows the header envelope's STP and size (form "stream").

Options:
  --json            one JSON object
  --plugin PATH     load a plugin module or exec:NAME, to name its STP (repeatable)

Examples:
  missive inspect msg.msv
  missive inspect --json < letter.asc

${exitCodesLine(3, 8, 10, 11)}
`;

/** A stream's header: its envelope's STP, without keys (the chunks are not read). */
async function inspectStream(io: Io, registry: Registry, source: ByteSource, json?: boolean) {
  const header = await readStreamHeader(source);
  await writeReport(io, registry, decodeEnvelope(header), {
    fields: { form: "stream", headerSize: header.length },
    formLine: `stream (header envelope ${header.length} bytes; chunks follow, not read)`,
    json,
  });
}

/** Prints what anyone can see of an envelope: its form, STP, sequence number, size, slots. */
async function writeReport(
  io: Io,
  registry: Registry,
  envelope: Envelope,
  how: { fields: Record<string, unknown>; formLine: string; json?: boolean },
) {
  let stp: AnyStp | null = null;
  try {
    stp = registry.stp(envelope.protocolType, envelope.protocolVersion);
  } catch (e) {
    if (!isMissiveError(e, "unknown-protocol")) throw e;
  }
  const details = envelope.protocolType === RATCHET_TYPE
    ? ratchetReport(envelope)
    : groupReport(envelope);
  const report = {
    ...how.fields,
    protocolType: envelope.protocolType,
    protocolVersion: envelope.protocolVersion,
    stp: stp ? stp.name : null,
    kem: stp?.properties.kem ?? null,
    sequenceNumber: envelope.sequenceNumber ?? null,
    payloadSize: envelope.payload.length,
    properties: stp?.properties ?? null,
    ...details.json,
  };
  const text = how.json ? JSON.stringify(report) + "\n" : [
    `form:             ${how.formLine}`,
    `protocol:         type ${envelope.protocolType}, version ${envelope.protocolVersion}` +
    (stp ? ` (${stp.name}: ${stp.description})` : " (unknown STP)"),
    ...(stp?.properties.kem ? [`key agreement:    ${kemLine(stp.properties.kem)}`] : []),
    `sequence number:  ${envelope.sequenceNumber ?? "none"}`,
    `payload:          ${envelope.payload.length} bytes`,
    ...details.lines,
    "",
  ].join("\n");
  await writeOutput(io, undefined, utf8(text));
}

function kemLine(kem: string): string {
  return kem === "mlkem768x25519"
    ? "mlkem768x25519 (X-Wing: ML-KEM-768 + X25519, post-quantum)"
    : `${kem} (classical)`;
}

/**
 * A ratchet message's header is clear data (SPEC §25.4): ratchet key, chain position and,
 * on an initial message, the prekeys it names. Reported, never fatal, when malformed.
 */
function ratchetReport(envelope: Envelope): { json: Record<string, unknown>; lines: string[] } {
  if (envelope.protocolVersion !== 1) return { json: {}, lines: [] };
  try {
    const h = describeRatchetPayload(envelope.payload);
    const i = h.initial;
    return {
      json: { ratchet: h },
      lines: [
        `ratchet key:      ${h.ratchetKey}`,
        `message:          ${h.messageNumber} (previous chain: ${h.previousChainLength})`,
        ...(i
          ? [
            `initial message:  to ID ${i.recipientId}, signed prekey ${i.signedPrekeyId}, ` +
            `one-time prekey ${i.oneTimePrekeyId ?? "none"}`,
          ]
          : []),
      ],
    };
  } catch (e) {
    if (!isMissiveError(e, "malformed")) throw e;
    return {
      json: { ratchet: null, payloadError: e.message },
      lines: [`ratchet header:   unreadable (${e.message})`],
    };
  }
}

/**
 * Group slots are clear data: anyone sees their count and whether they are hidden
 * (SPEC §19.6). A malformed group payload is reported, not fatal: inspect shows headers.
 */
function groupReport(envelope: Envelope): { json: Record<string, unknown>; lines: string[] } {
  const version = envelope.protocolVersion;
  if (envelope.protocolType !== GROUP_TYPE || (version !== 1 && version !== GROUP_PQ_VERSION)) {
    return { json: {}, lines: [] };
  }
  try {
    const { slots, hidden } = describePayload(envelope.payload, version);
    const how = hidden ? "recipients hidden; count padded" : "with recipient hints";
    return {
      json: { slots, recipientsHidden: hidden },
      lines: [`key slots:        ${slots} (${how})`],
    };
  } catch (e) {
    if (!isMissiveError(e, "malformed")) throw e;
    return {
      json: { slots: null, payloadError: e.message },
      lines: [`key slots:        unreadable (${e.message})`],
    };
  }
}

export const inspect: Command = {
  summary: "show an envelope's header (no keys needed)",
  usage,
  async run(args, io) {
    const parsed = await parseFlags(io, args, {
      json: { type: "boolean" },
      plugin: { type: "string", multiple: true },
    }, usage);
    if (!parsed) return;
    const registry = await loadRegistry(
      io,
      parsed.values as { plugin?: string[]; config?: string },
    );
    const json = parsed.values.json;
    const { source, close } = inputSource(io, parsed.positionals[0]);
    let sniffed;
    try {
      sniffed = await sniffInput(source, MAX_ARMOR_SIZE, "input");
      if ("stream" in sniffed) {
        await inspectStream(io, registry, sniffed.stream, json);
        return;
      }
    } finally {
      close();
    }
    const input = sniffed.input;
    const form = detectForm(input);
    if (form === "age" || form === "age-armor") {
      await ageReport(io, input, json);
      return;
    }
    if (form === "fernet") {
      await fernetReport(io, detectFernetToken(input)!, input.length, json);
      return;
    }
    const envelope = form === "cms" || form === "smime"
      ? { protocolType: 1, protocolVersion: 1, payload: unwrapSmimeEntity(input) }
      : decodeEnvelope(unwrapEnvelope(input));
    const bare = form === "cms" || form === "smime" ? ", no envelope" : "";
    await writeReport(io, registry, envelope, {
      fields: { form, size: input.length },
      formLine: `${form} (${input.length} bytes${bare})`,
      json,
    });
  },
};

/**
 * An age file (SPEC §26): its recipient stanzas' types are in the clear; there is no
 * sender, no timestamp and no nonce.
 */
async function ageReport(io: Io, input: Uint8Array, json?: boolean) {
  const header = await readAgeHeader(bytesSource(input));
  const types = header.stanzas.map((s) => s.type);
  const report = {
    form: header.armored ? "age-armor" : "age",
    size: input.length,
    stp: "age",
    protocolType: 8,
    protocolVersion: 1,
    stanzas: types,
    sender: null,
    replayProtection: false,
  };
  const text = json ? JSON.stringify(report) + "\n" : [
    `form:             age v1 file${
      header.armored ? ", armored" : ""
    } (${input.length} bytes, no envelope)`,
    `protocol:         age (8, 1): no sender (anyone who knows a recipient can write one), no nonce`,
    `recipients:       ${types.length} stanza(s): ${types.map((t) => sanitizeText(t)).join(", ")}`,
    "",
  ].join("\n");
  await writeOutput(io, undefined, utf8(text));
}

/**
 * A bare Fernet token: its version byte and timestamp are in the clear (SPEC §13.3); the
 * rest is ciphertext and a MAC only the key holder can check.
 */
async function fernetReport(io: Io, token: Uint8Array, size: number, json?: boolean) {
  const seconds = new DataView(token.buffer, token.byteOffset + 1, 8).getBigUint64(0);
  const time = seconds <= 8_640_000_000_000n
    ? new Date(Number(seconds) * 1000).toISOString()
    : `${seconds} s after the epoch`;
  const report = {
    form: "fernet",
    size,
    stp: "psk",
    protocolType: 6,
    protocolVersion: 2,
    timestamp: time,
    sender: null,
    replayProtection: false,
  };
  const text = json ? JSON.stringify(report) + "\n" : [
    `form:             fernet token (${size} bytes, no envelope)`,
    `protocol:         psk v2 (bare Fernet): no sender, no nonce, anyone with the key`,
    `timestamp:        ${time} (unencrypted, not yet verified)`,
    "",
  ].join("\n");
  await writeOutput(io, undefined, utf8(text));
}
