/** `missive verify`: check a detached signature of a file (SPEC §24). @module */
import { existsSync, statSync } from "node:fs";
import { toHex } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import { readFileLimited } from "../core/files.ts";
import { sanitizeText } from "../core/sanitize.ts";
import { getCryptoProvider } from "../crypto/mod.ts";
import type { Card } from "../keys/card.ts";
import {
  cardMinisignKey,
  detectSignatureFormat,
  formatKeyId,
  MAX_MINISIGN_TEXT,
  MAX_SIGNATURE_TEXT,
  type MinisignPublicKey,
  parseMinisignPublicKey,
  verifyFile,
  verifyFileMinisign,
} from "../sign/mod.ts";
import {
  type Command,
  formatTime,
  type Io,
  loadCards,
  note,
  parseFlags,
  untrustedWarning,
} from "./common.ts";
import { inputSource, progress } from "./streaming.ts";

const usage = `missive verify [--trust CARD ...] [--require-trust] SIGNATURE FILE

Checks a detached signature of FILE ("-" for stdin): missive's format (from "missive
sign") or minisign's. On stderr: who signed, whether that signer is trusted, when, and
the trusted comment. Nothing is written on stdout.

A missive signature carries the signer's card: without --trust it is reported
"verified, NOT trusted" with the fingerprint to compare out of band (exit 0, or 7 with
--require-trust); with --trust, a signer who is none of them is refused (exit 7). A
minisign signature carries only a key ID: --trust is required.

Options:
  --trust CARD          trusted signer (repeatable): a card file, card line, key file or
                        folder of *.card files; for a minisign signature a minisign
                        public key file (KEY.pub), its base64 line, or a missive card
  --require-trust       fail (exit 7) unless the signer is a --trust card (implied
                        by --trust)
  --quiet               no progress line for a long file on a terminal

Examples:
  missive verify --trust alice.card release.tar.gz.sig release.tar.gz
  missive verify --trust minisign.pub release.tar.gz.minisig release.tar.gz

Exit codes: 0 verified, 2 usage, 3 malformed signature, 4 the file changed or the
signature is bad, 7 signer not trusted, 8 unsupported signature format, 10 I/O error.
`;

export const verify: Command = {
  summary: "check a detached signature of a file (missive's or minisign's)",
  usage,
  async run(args, io) {
    const parsed = await parseFlags(
      io,
      args,
      {
        trust: { type: "string", multiple: true },
        "require-trust": { type: "boolean" },
        quiet: { type: "boolean" },
      },
      usage,
      2,
    );
    if (!parsed) return;
    const v = parsed.values;
    const [sigPath, filePath] = parsed.positionals;
    if (sigPath === undefined || filePath === undefined) {
      throw new MissiveError("usage", "verify: give the signature file and the file (see --help)");
    }
    if (sigPath === "-") {
      throw new MissiveError("usage", "verify: the signature must be a file (FILE may be -)");
    }
    const sigBytes = readFileLimited(
      sigPath,
      Math.max(MAX_SIGNATURE_TEXT, MAX_MINISIGN_TEXT),
      "signature",
    );
    const format = detectSignatureFormat(sigBytes);
    const trust = v.trust ?? [];
    if (format === "minisign" && trust.length === 0) {
      throw new MissiveError(
        "usage",
        "verify: a minisign signature carries no key: give the signer's public key with " +
          "--trust KEY.pub",
      );
    }
    const crypto = await getCryptoProvider();
    const keys = format === "minisign" ? await minisignKeys(trust) : [];
    const cards = format === "missive" ? await missiveCards(trust) : [];
    const input = inputSource(io, filePath);
    const shown = progress(io, v.quiet, "checked");
    try {
      if (format === "minisign") {
        const ok = await verifyFileMinisign(sigBytes, input.source, keys, {
          crypto,
          onProgress: shown.update,
        });
        shown.done();
        note(
          io,
          `missive: minisign signature verified with key ID ${formatKeyId(ok.key.keyId)}` +
            ` (a --trust key)${ok.algorithm === "Ed" ? "; legacy, not prehashed" : ""}`,
        );
        note(io, `missive: trusted comment: ${commentText(ok.trustedComment)}`);
        return;
      }
      const ok = await verifyFile(new TextDecoder().decode(sigBytes), input.source, {
        trusted: cards,
        // Naming trusted signers means only they will do, as with minisign's key.
        requireTrust: v["require-trust"] || trust.length > 0,
        crypto,
        onProgress: shown.update,
      });
      shown.done();
      await signerNotes(io, ok.signer, ok.trusted, ok.created);
      note(io, `missive: trusted comment: ${sanitizeText(ok.comment)}`);
    } finally {
      shown.done();
      input.close();
    }
  },
};

/** The lines after a missive signature verified: who, trusted or not, when. */
async function signerNotes(io: Io, signer: Card, trusted: boolean, created: number) {
  const who = `${sanitizeText(signer.address)} (id ${toHex(signer.id)})`;
  note(
    io,
    `missive: signature by ${who} verified, ${trusted ? "trusted" : "NOT trusted"}; ` +
      `signed ${formatTime(created)}`,
  );
  if (!trusted) await untrustedWarning(io, sanitizeText(signer.address), signer);
}

/** A minisign trusted comment for a terminal: its bytes as UTF-8, sanitised. */
function commentText(bytes: Uint8Array): string {
  return sanitizeText(new TextDecoder().decode(bytes));
}

/** Largest --trust file read here (minisign key, or a card file). */
const MAX_TRUST_FILE = 64 * 1024;

/** A minisign public key's text: a `.pub` file, or its one base64 line. */
function isMinisignKeyText(bytes: Uint8Array): boolean {
  const text = new TextDecoder().decode(bytes.subarray(0, 256));
  return text.startsWith("untrusted comment:") || /^RW[A-Za-z0-9+/]{54}\s*$/.test(text);
}

function readTrustFile(spec: string): Uint8Array | undefined {
  if (spec.startsWith("missive-card:") || !existsSync(spec) || statSync(spec).isDirectory()) {
    return undefined;
  }
  return readFileLimited(spec, MAX_TRUST_FILE, "--trust file");
}

/** The keys of --trust for a minisign signature: minisign keys, or missive cards' keys. */
async function minisignKeys(specs: readonly string[]): Promise<MinisignPublicKey[]> {
  const keys: MinisignPublicKey[] = [];
  for (const spec of specs) {
    const bytes = readTrustFile(spec);
    if (bytes && isMinisignKeyText(bytes)) {
      keys.push(withSource(() => parseMinisignPublicKey(bytes), spec));
    } else if (!bytes && /^RW[A-Za-z0-9+/]{54}$/.test(spec)) {
      keys.push(parseMinisignPublicKey(spec));
    } else {
      keys.push(...(await loadCards([spec])).map(cardMinisignKey));
    }
  }
  return keys;
}

/** The cards of --trust for a missive signature; a minisign key there is a usage error. */
async function missiveCards(specs: readonly string[]): Promise<Card[]> {
  for (const spec of specs) {
    const bytes = readTrustFile(spec);
    if ((bytes && isMinisignKeyText(bytes)) || /^RW[A-Za-z0-9+/]{54}$/.test(spec)) {
      throw new MissiveError(
        "usage",
        `verify: ${spec} is a minisign public key; a missive signature is checked with the ` +
          "signer's card (--trust CARD)",
      );
    }
  }
  return await loadCards(specs);
}

function withSource<T>(f: () => T, spec: string): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof MissiveError) throw new MissiveError(e.code, `${spec}: ${e.message}`);
    throw e;
  }
}
