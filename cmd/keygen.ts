/** `missive keygen`: a new identity. @module */
import { existsSync } from "node:fs";
import { getCryptoProvider } from "../crypto/mod.ts";
import { MissiveError } from "../errors.ts";
import { cardFileText, cardToText } from "../keys/card.ts";
import {
  createIdentity,
  DEFAULT_SCRYPT_LOG_N,
  MAX_SCRYPT_LOG_N,
  writeKeyFile,
} from "../keys/identity.ts";
import { utf8 } from "../bytes.ts";
import { SMIME_TYPE } from "../stp/smime/mod.ts";
import {
  askPassphrase,
  type Command,
  loadRegistry,
  note,
  parseFlags,
  writeOutput,
} from "./common.ts";

const usage = `missive keygen --name ADDRESS [--out FILE] [options]

Creates an identity (Ed25519 signing key, X25519 agreement key) and prints its public
card on stdout. The secret key file is written with mode 0600.

Options:
  --name ADDRESS      the identity's address, e.g. alice@example.org (required)
  -o, --out FILE      write the secret key here (default: stdout, card on stderr)
  --card-out FILE     also write the public card file here
  --passphrase        encrypt the key file (scrypt + XChaCha20-Poly1305); the
                      passphrase comes from $MISSIVE_PASSPHRASE or a terminal prompt
  --work-factor N     scrypt log2(N), ${10}..20 (default ${DEFAULT_SCRYPT_LOG_N})
  --force             overwrite existing files
  --plugin PATH       load a plugin module (its pairs join the card's capabilities)
`;

export const keygen: Command = {
  summary: "create an identity (secret key file + public card)",
  usage,
  async run(args, io) {
    const parsed = await parseFlags(
      io,
      args,
      {
        name: { type: "string" },
        out: { type: "string", short: "o" },
        "card-out": { type: "string" },
        passphrase: { type: "boolean" },
        "work-factor": { type: "string" },
        force: { type: "boolean" },
        plugin: { type: "string", multiple: true },
      },
      usage,
      0,
    );
    if (!parsed) return;
    const v = parsed.values;
    if (!v.name) throw new MissiveError("usage", "keygen: --name ADDRESS is required");
    for (const path of [v.out, v["card-out"]]) {
      if (path && path !== "-" && existsSync(path) && !v.force) {
        throw new MissiveError("usage", `keygen: ${path} exists (use --force to overwrite)`);
      }
    }
    let logN: number | undefined;
    if (v["work-factor"] !== undefined) {
      logN = Number(v["work-factor"]);
      if (!v.passphrase) {
        throw new MissiveError("usage", "keygen: --work-factor needs --passphrase");
      }
      if (!/^\d+$/.test(v["work-factor"]) || logN < 10 || logN > MAX_SCRYPT_LOG_N) {
        throw new MissiveError(
          "usage",
          `keygen: --work-factor must be an integer 10..${MAX_SCRYPT_LOG_N}`,
        );
      }
    }
    const registry = await loadRegistry(io, v.plugin);
    const { stps, amps } = registry.list();
    const crypto = await getCryptoProvider();
    const identity = await createIdentity(crypto, {
      address: v.name,
      // smime works with X.509 certificates, not cards: a card does not advertise it.
      stps: stps.filter((p) => p.type !== SMIME_TYPE).map((p) => [p.type, p.version] as const),
      amps: amps.map((p) => [p.type, p.version] as const),
    });
    let passphrase: string | undefined;
    if (v.passphrase) {
      passphrase = await askPassphrase(io, `Passphrase for the new key: `);
      if (passphrase.length === 0) throw new MissiveError("usage", "keygen: empty passphrase");
    }
    const keyText = await writeKeyFile(crypto, identity, { passphrase, logN });
    await writeOutput(io, v.out, utf8(keyText), 0o600);
    const cardText = await cardFileText(crypto, identity.card);
    if (v["card-out"]) await writeOutput(io, v["card-out"], utf8(cardText));
    if (v.out && v.out !== "-") {
      await writeOutput(io, undefined, utf8(cardToText(identity.card) + "\n"));
      note(io, `missive: wrote ${v.out} for ${identity.card.address}`);
    } else {
      note(io, cardText.trimEnd());
    }
  },
};
