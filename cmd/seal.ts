/** `missive seal`: AMP message from stdin → sealed envelope on stdout. @module */
import { utf8 } from "../bytes.ts";
import { armor, MAX_ENVELOPE_SIZE, toLine } from "../envelope.ts";
import { MissiveError } from "../errors.ts";
import { sealMessage } from "../registry.ts";
import { MAX_TEXT_BYTES } from "../amp/text.ts";
import {
  type Command,
  loadCards,
  loadIdentity,
  loadRegistry,
  parseFlags,
  parsePairs,
  readInput,
  writeOutput,
} from "./common.ts";

const usage = `missive seal --from KEY --to CARD [options] [INPUT] > sealed

Reads a message (stdin or INPUT, "-" for stdin), encodes it with an AMP, protects it
with an STP and writes the envelope (binary, --armor or --lines).

Options:
  --stp NAME[/vN]       secure transport protocol (default simple: latest version);
                        see "missive plugins"
  --amp NAME[/vN]       application message protocol (default text/1)
  --from KEY            sender's secret key file (simple, auth)
  --to CARD             recipient: card file, card line, key file or a directory of
                        *.card files (repeatable)
  --armor               write -----BEGIN MISSIVE MESSAGE----- text
  --lines               write one base64 line (for "while read" loops)
  -o, --out FILE        write here instead of stdout
  --seq N               set the envelope sequence number (bound by the STP)
  --no-card             do not attach the sender's card (recipient must --trust it)
  --hash-destination    send the recipient's address as a keyed hash (simple)
  --field NAME=VALUE    AMP field, e.g. --field title=Hi for notification (repeatable)
  --option NAME=VALUE   STP option, for plugins (repeatable)
  --plugin PATH         load a plugin module (repeatable)
`;

export const seal: Command = {
  summary: "seal a message into an envelope",
  usage,
  async run(args, io) {
    const parsed = await parseFlags(io, args, {
      stp: { type: "string", default: "simple" },
      amp: { type: "string", default: "text/1" },
      from: { type: "string" },
      to: { type: "string", multiple: true },
      armor: { type: "boolean" },
      lines: { type: "boolean" },
      out: { type: "string", short: "o" },
      seq: { type: "string" },
      "no-card": { type: "boolean" },
      "hash-destination": { type: "boolean" },
      field: { type: "string", multiple: true },
      option: { type: "string", multiple: true },
      plugin: { type: "string", multiple: true },
    }, usage);
    if (!parsed) return;
    const v = parsed.values;
    if (v.armor && v.lines) {
      throw new MissiveError("usage", "seal: choose --armor or --lines, not both");
    }
    const binary = !v.armor && !v.lines;
    if (binary && (v.out === undefined || v.out === "-") && io.stdoutIsTty) {
      throw new MissiveError(
        "usage",
        "seal: refusing to write binary to a terminal; use --armor or -o FILE",
      );
    }
    let sequenceNumber: number | undefined;
    if (v.seq !== undefined) {
      sequenceNumber = Number(v.seq);
      if (!/^\d+$/.test(v.seq) || !Number.isSafeInteger(sequenceNumber)) {
        throw new MissiveError("usage", "seal: --seq must be a non-negative integer");
      }
    }
    const registry = await loadRegistry(io, v.plugin);
    const stp = registry.find("stp", v.stp!);
    const amp = registry.find("amp", v.amp!);
    const sender = v.from ? await loadIdentity(io, v.from) : undefined;
    const recipients = await loadCards(v.to ?? []);
    const input = await readInput(
      io,
      parsed.positionals[0],
      Math.min(MAX_TEXT_BYTES, MAX_ENVELOPE_SIZE),
      "message",
    );
    const fields = parsePairs(v.field, "--field");
    const message = await registry.guard(amp, "fromInput", () => amp.fromInput(input, fields));
    const sealed = await sealMessage({
      registry,
      stp,
      amp,
      message,
      sender,
      recipients,
      sequenceNumber,
      includeCard: !v["no-card"],
      hashDestination: v["hash-destination"] ?? false,
      options: parsePairs(v.option, "--option"),
    });
    const out = v.armor ? utf8(armor(sealed)) : v.lines ? utf8(toLine(sealed) + "\n") : sealed;
    await writeOutput(io, v.out, out);
  },
};
