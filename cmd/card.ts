/** `missive card`: print the public card of a key or card file. @module */
import { getCryptoProvider } from "../crypto/mod.ts";
import { toHex, utf8 } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import { existsSync, statSync } from "node:fs";
import {
  cardFileText,
  cardSignaturesInText,
  cardToText,
  fingerprint,
  signCard,
  signedCardFileText,
} from "../keys/card.ts";
import { minisignPublicKeyText } from "../sign/mod.ts";
import { hybridRecipientText, x25519RecipientText } from "../stp/age/mod.ts";
import {
  type Command,
  exitCodesLine,
  formatTime,
  loadCards,
  loadIdentity,
  parseFlags,
  readSmallText,
  writeOutput,
} from "./common.ts";

const usage =
  `missive card KEY-OR-CARD [--json | --file | --minisign | --sign CA.KEY | --age [--pq]]

Prints the public card of a secret key file (no passphrase needed) or of a card file or
line, as one line for shell use.

Options:
  --json     address, ID, fingerprint, capabilities and the card line as JSON
  --file     a card file: comment lines (address, ID, fingerprint) and the card line
  --minisign the signing key as a minisign public key file (KEY.pub, for minisign -V
             -p KEY.pub); its key ID is the first 8 bytes of the card's ID
  --sign CA.KEY
             a card file signed by the CA key (SPEC §23.11): users who trust the CA's
             card accept it without pinning it (missive relay --relay-ca CA.CARD);
             signatures already in the file are kept
  --age      the card's age recipient (age1…, its X25519 key), for age -r and
             missive seal --stp age; a missive key file opens what is sealed to it
  --pq       with --age: the post-quantum recipient (age1pq1…, the card's X-Wing
             key; age 1.3+, typage)

Examples:
  missive card alice.key > alice.card           # the public card of a key file
  missive card --json bob.card                  # address, ID, fingerprint
  missive card --file --sign ca.key bob.card > bob.signed.card
  missive card --age --pq bob.card              # bob's age1pq1… recipient

${exitCodesLine(3, 9, 10)}
`;

export const card: Command = {
  summary: "print the public card of a key or card (one line)",
  usage,
  async run(args, io) {
    const parsed = await parseFlags(io, args, {
      json: { type: "boolean" },
      file: { type: "boolean" },
      minisign: { type: "boolean" },
      sign: { type: "string" },
      age: { type: "boolean" },
      pq: { type: "boolean" },
    }, usage);
    if (!parsed) return;
    const [spec] = parsed.positionals;
    if (!spec) throw new MissiveError("usage", "card: which key or card file? (see --help)");
    const cards = await loadCards([spec]);
    if (cards.length !== 1) {
      throw new MissiveError("usage", `card: ${spec} holds ${cards.length} cards`);
    }
    const c = cards[0];
    const crypto = await getCryptoProvider();
    let out: string;
    if (parsed.values.pq && !parsed.values.age) {
      throw new MissiveError("usage", "card: --pq goes with --age (the age1pq1… recipient)");
    }
    if (parsed.values.age && parsed.values.pq) {
      if (!c.hybridKey) {
        throw new MissiveError(
          "usage",
          `card: ${c.address}'s card has no post-quantum key (a format-1 card); ` +
            "use --age alone, or make a new identity with missive keygen",
        );
      }
      out = hybridRecipientText(c.hybridKey) + "\n";
    } else if (parsed.values.age) {
      out = x25519RecipientText(c.agreementKey) + "\n";
    } else if (parsed.values.sign !== undefined) {
      const ca = await loadIdentity(io, parsed.values.sign);
      const existing = existsSync(spec) && statSync(spec).isFile()
        ? cardSignaturesInText(readSmallText(spec, "card"))
        : [];
      const signatures = [
        ...existing.filter((s) => toHex(s.caId) !== toHex(ca.card.id)),
        await signCard(crypto, c, ca),
      ];
      out = await signedCardFileText(crypto, c, signatures, [ca.card]);
    } else if (parsed.values.json) {
      out = JSON.stringify({
        address: c.address,
        id: toHex(c.id),
        fingerprint: await fingerprint(crypto, c),
        created: formatTime(c.created),
        stps: c.stps,
        amps: c.amps,
        card: cardToText(c),
      }) + "\n";
    } else if (parsed.values.minisign) {
      out = minisignPublicKeyText(c);
    } else if (parsed.values.file) {
      out = await cardFileText(crypto, c);
    } else {
      out = cardToText(c) + "\n";
    }
    await writeOutput(io, undefined, utf8(out));
  },
};
