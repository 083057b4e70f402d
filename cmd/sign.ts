/** `missive sign`: a detached signature of a file (SPEC §24). @module */
import { basename } from "node:path";
import { utf8 } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import { signFile, signFileMinisign } from "../sign/mod.ts";
import { type Command, loadIdentity, parseFlags } from "./common.ts";
import { writeWhole } from "./output.ts";
import { inputSource, progress } from "./streaming.ts";

const usage = `missive sign --key KEY [options] [FILE] > FILE.sig

Writes a detached signature of FILE (stdin for none or "-") made with your secret key.
The file is read in blocks, so it may be of any size. The signature is text.

missive's format (default) carries your card, the file's length and SHA-512, the time
and a trusted comment; "missive verify" shows who signed and the fingerprint to compare.
With --format minisign the signature is minisign's (Ed25519 over BLAKE2b-512, with a
trusted comment): "minisign -Vm FILE -x FILE.sig -p KEY.pub" verifies it, given the
public key "missive card --minisign KEY > KEY.pub" writes.

Options:
  --key KEY             your secret key file (passphrase from $MISSIVE_PASSPHRASE or a prompt)
  --format FORMAT       missive (default) or minisign
  -t, --comment TEXT    the trusted comment, signed with the file (one line); default
                        file:NAME (minisign: timestamp:SECONDS<tab>file:NAME<tab>hashed)
  -o, --out FILE        write the signature here (written whole or not at all)
  --force               replace an existing -o FILE
  --quiet               no progress line for a long file on a terminal

Examples:
  missive sign --key alice.key release.tar.gz > release.tar.gz.sig
  missive verify --trust alice.card release.tar.gz.sig release.tar.gz
  missive card --minisign alice.key > alice.pub
  missive sign --key alice.key --format minisign -o release.tar.gz.minisig release.tar.gz
  minisign -Vm release.tar.gz -p alice.pub

Exit codes: 0 signed, 2 usage, 9 key problem, 10 I/O error.
`;

export const sign: Command = {
  summary: "sign a file: a detached signature (missive's or minisign's format)",
  usage,
  async run(args, io) {
    const parsed = await parseFlags(io, args, {
      key: { type: "string" },
      format: { type: "string" },
      comment: { type: "string", short: "t" },
      out: { type: "string", short: "o" },
      force: { type: "boolean" },
      quiet: { type: "boolean" },
    }, usage);
    if (!parsed) return;
    const v = parsed.values;
    const format = v.format ?? "missive";
    if (format !== "missive" && format !== "minisign") {
      throw new MissiveError("usage", `sign: --format is missive or minisign, not ${format}`);
    }
    if (v.key === undefined) throw new MissiveError("usage", "sign: which key? (--key KEY)");
    const identity = await loadIdentity(io, v.key);
    const path = parsed.positionals[0];
    const fileName = path === undefined || path === "-" ? undefined : basename(path);
    const input = inputSource(io, path);
    const shown = progress(io, v.quiet, "signed");
    let text: string;
    try {
      const options = { fileName, onProgress: shown.update };
      text = format === "missive"
        ? await signFile(input.source, identity, { ...options, comment: v.comment })
        : await signFileMinisign(input.source, identity, {
          ...options,
          trustedComment: v.comment,
        });
    } finally {
      shown.done();
      input.close();
    }
    await writeWhole(io, v.out, utf8(text), { mode: 0o644, force: v.force });
  },
};
