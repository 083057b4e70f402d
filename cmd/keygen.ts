/** `missive keygen`: a new identity. @module */
import { existsSync } from "node:fs";
import { getCryptoProvider } from "../crypto/mod.ts";
import { MissiveError } from "../core/errors.ts";
import { cardFileText, cardToText } from "../keys/card.ts";
import {
  createIdentity,
  DEFAULT_SCRYPT_LOG_N,
  MAX_SCRYPT_LOG_N,
  writeKeyFile,
} from "../keys/identity.ts";
import { utf8 } from "../core/bytes.ts";
import { normalizeAddress } from "../keys/address.ts";
import {
  certificatesToPem,
  createSelfSigned,
  encryptedPrivateKeyToPem,
  MAX_CERT_DAYS,
  privateKeyToPem,
} from "../keys/x509.ts";
import { SMIME_TYPE } from "../stp/smime/descriptor.ts";
import { newAgeIdentityFile, scryptRecipient, sealAgeBytes } from "../stp/age/mod.ts";
import {
  askPassphrase,
  type Command,
  exitCodesLine,
  type Io,
  loadRegistry,
  note,
  parseFlags,
} from "./common.ts";
import { writeWhole } from "./output.ts";

/** Default validity of a `--x509` certificate, in days. */
const DEFAULT_CERT_DAYS = 365;

const usage = `missive keygen --name ADDRESS -o FILE [options] > CARD
       missive keygen --age [--pq] -o FILE > RECIPIENT

Creates an identity (Ed25519 signing key, X25519 agreement key), writes the secret key
file (mode 0600) and prints its public card on stdout.

Options:
  --name ADDRESS      the identity's address, e.g. alice@example.org (required)
  -o, --out FILE      write the secret key here (required: the card goes to stdout, so
                      "keygen > x.card" cannot leak a key); "-o -" writes only the
                      secret key to stdout (the card then goes nowhere: use --card-out)
  --card-out FILE     also write the public card file here
  --passphrase        encrypt the key file (scrypt + XChaCha20-Poly1305); the
                      passphrase comes from $MISSIVE_PASSPHRASE or a terminal prompt
  --work-factor N     scrypt log2(N), ${10}..20 (default ${DEFAULT_SCRYPT_LOG_N})
  --force             overwrite existing files
  --plugin PATH       load a plugin module or exec:NAME (its pairs join the card's
                      capabilities)

X.509 (for --stp smime):
  --x509              instead, make a PKCS #8 private key (-o) and a self-signed
                      certificate for ADDRESS (--cert-out; default stdout), RSA-2048
  --ec                with --x509: an EC P-256 key instead of RSA-2048
  --cert-out FILE     with --x509: write the certificate (PEM) here
  --days N            with --x509: validity in days (default 365)
  With --x509, --passphrase encrypts the key as PKCS #8 PBES2 (PBKDF2-SHA-256,
  AES-256-CBC), which openssl reads.

age (for --stp age, age, rage, typage):
  --age               instead, write an age identity file as age-keygen does
                      (AGE-SECRET-KEY-1…) and print its recipient (age1…) on stdout
  --pq                with --age: a post-quantum hybrid identity (AGE-SECRET-KEY-PQ-1…,
                      recipient age1pq1…; age 1.3+, typage; not Debian's age 1.1)
  With --age, --passphrase writes it encrypted as age -p does (scrypt, armored),
  which age and missive open --identity read after asking for the passphrase.

Examples:
  missive keygen --name alice@example.org -o alice.key > alice.card
  missive keygen --name alice@example.org -o alice.key --passphrase   # encrypted key file
  missive keygen --x509 --ec --name bob@example.org -o bob-x.key --cert-out bob-x.pem
  missive keygen --age -o me.agekey > me.age.pub                      # as age-keygen

${exitCodesLine(9, 10, 11)}
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
        x509: { type: "boolean" },
        ec: { type: "boolean" },
        "cert-out": { type: "string" },
        days: { type: "string" },
        age: { type: "boolean" },
        pq: { type: "boolean" },
      },
      usage,
      0,
    );
    if (!parsed) return;
    const v = parsed.values;
    if (v.pq && !v.age) throw new MissiveError("usage", "keygen: --pq goes with --age");
    if (v.age) {
      if (v.name || v.x509 || v["card-out"] || v.plugin || v["work-factor"] !== undefined) {
        throw new MissiveError("usage", "keygen: --age takes only -o, --pq, --passphrase, --force");
      }
      await ageKeygen(io, v);
      return;
    }
    if (!v.name) throw new MissiveError("usage", "keygen: --name ADDRESS is required");
    if (v.out === undefined) {
      throw new MissiveError(
        "usage",
        "keygen: give -o FILE for the secret key (the card is printed on stdout); " +
          "-o - writes the secret key alone to stdout",
      );
    }
    if (!v.x509 && (v.ec || v["cert-out"] || v.days !== undefined)) {
      throw new MissiveError("usage", "keygen: --ec, --cert-out and --days need --x509");
    }
    if (v.x509 && (v["card-out"] || v["work-factor"] !== undefined || v.plugin)) {
      throw new MissiveError("usage", "keygen: --x509 takes no --card-out/--work-factor/--plugin");
    }
    for (const path of [v.out, v["card-out"], v["cert-out"]]) {
      if (path && path !== "-" && existsSync(path) && !v.force) {
        throw new MissiveError(
          "usage",
          `keygen: ${path} already exists; choose another name or add --force to replace it`,
        );
      }
    }
    if (v.x509) {
      await x509Keygen(io, v);
      return;
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
    const registry = await loadRegistry(io, v as { plugin?: string[]; config?: string });
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
    await writeWhole(io, v.out, utf8(keyText), { mode: 0o600, force: v.force });
    const cardText = await cardFileText(crypto, identity.card);
    if (v["card-out"]) {
      await writeWhole(io, v["card-out"], utf8(cardText), { mode: 0o644, force: v.force });
    }
    if (v.out !== "-") {
      await io.stdout(utf8(cardToText(identity.card) + "\n"));
      note(io, `missive: wrote ${v.out} for ${identity.card.address}`);
    }
  },
};

/** `keygen --age`: an age identity file (0600) and its recipient on stdout. */
async function ageKeygen(
  io: Io,
  v: { out?: string; pq?: boolean; passphrase?: boolean; force?: boolean },
): Promise<void> {
  if (v.out === undefined) {
    throw new MissiveError(
      "usage",
      "keygen: give -o FILE for the identity (its recipient is printed)",
    );
  }
  if (v.out !== "-" && existsSync(v.out) && !v.force) {
    throw new MissiveError("usage", `keygen: ${v.out} already exists; add --force to replace it`);
  }
  const { text, recipient } = await newAgeIdentityFile({ pq: v.pq });
  let bytes = utf8(text);
  if (v.passphrase) {
    const passphrase = await askPassphrase(io, "Passphrase for the new identity: ");
    if (passphrase.length === 0) throw new MissiveError("usage", "keygen: empty passphrase");
    bytes = await sealAgeBytes(bytes, { recipients: [scryptRecipient(passphrase)], armor: true });
  }
  await writeWhole(io, v.out, bytes, { mode: 0o600, force: v.force });
  if (v.out !== "-") {
    await io.stdout(utf8(recipient + "\n"));
    note(io, `missive: wrote ${v.out} (age ${v.pq ? "post-quantum hybrid" : "X25519"} identity)`);
  }
}

/** `keygen --x509`: a PKCS #8 key and a self-signed certificate. */
async function x509Keygen(
  io: Io,
  v: { name?: string; out?: string; ec?: boolean; days?: string; passphrase?: boolean } & {
    "cert-out"?: string;
  },
): Promise<void> {
  const address = normalizeAddress(v.name!);
  const days = v.days === undefined ? DEFAULT_CERT_DAYS : Number(v.days);
  if (v.days !== undefined && (!/^\d{1,6}$/.test(v.days) || days < 1 || days > MAX_CERT_DAYS)) {
    throw new MissiveError("usage", `keygen: --days must be an integer 1..${MAX_CERT_DAYS}`);
  }
  let passphrase: string | undefined;
  if (v.passphrase) {
    passphrase = await askPassphrase(io, `Passphrase for the new key: `);
    if (passphrase.length === 0) throw new MissiveError("usage", "keygen: empty passphrase");
  }
  const { cert, key } = await createSelfSigned({ address, kind: v.ec ? "ec-p256" : "rsa", days });
  const keyText = passphrase === undefined
    ? privateKeyToPem(key)
    : await encryptedPrivateKeyToPem(key, passphrase);
  await writeWhole(io, v.out, utf8(keyText), { mode: 0o600, force: true });
  await writeWhole(io, v["cert-out"], utf8(certificatesToPem([cert])), {
    mode: 0o644,
    force: true,
  });
  if (v.out && v.out !== "-") {
    const what = v["cert-out"] && v["cert-out"] !== "-" ? ` and ${v["cert-out"]}` : "";
    note(io, `missive: wrote ${v.out}${what} for ${address} (${key.kind}, ${days} days)`);
  }
}
