/** `missive contacts`: the local address book of cards (keys/contacts.ts). @module */
import { utf8 } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import { sanitizeText } from "../core/sanitize.ts";
import { getCryptoProvider } from "../crypto/mod.ts";
import { type Card, fingerprint } from "../keys/card.ts";
import { type Contact, ContactBook, contactsPath } from "../keys/contacts.ts";
import {
  askTerminal,
  type Command,
  exitCodesLine,
  type Io,
  loadCards,
  loadIdentity,
  note,
  parseFlags,
} from "./common.ts";

const usage = `missive contacts add FILE ...            add cards you chose (verified)
       missive contacts add --from-relay ADDRESS --relay URL --relay-card CARD --key KEY
                                                fetch a card from a relay (NOT verified)
       missive contacts list [--json]
       missive contacts verify ADDRESS [--fingerprint FP]
       missive contacts remove ADDRESS

The address book lets --to ADDRESS and --trust ADDRESS work without a card file: each
resolves, in order, an existing path, then an address in the contacts. A card you add
from a file you chose counts as verified. A card fetched from a relay does not (the relay
is not trusted to say who owns an address) until "contacts verify" shows its fingerprint,
you compare it with the owner's out of band, and confirm: --trust takes only verified
contacts; --to takes the others with a warning.

The book is $MISSIVE_CONTACTS, else $XDG_CONFIG_HOME/missive/contacts.json, else
~/.config/missive/contacts.json: written 0600, refused when another user could have
written it (like the config).

Options:
  --json                 (list) one JSON object per contact, one per line
  --fingerprint FP       (verify) the fingerprint the owner read to you; it must match
  --from-relay ADDRESS   (add) look the address up in a relay's directory
  --relay URL, --relay-card CARD, --key KEY
                         (add --from-relay) the relay to ask, and your own key

Examples:
  missive contacts add bob.card carol.card
  missive contacts list
  missive contacts verify bob@example.org --fingerprint "3f2a 9c01 …"
  echo hi | missive seal --from alice.key --to bob@example.org > msg.msv

${exitCodesLine(3, 7, 9, 10, 13, 15)}
`;

/** One line for a contact, for people. */
async function describe(c: Contact): Promise<string> {
  const fp = await fingerprint(await getCryptoProvider(), c.card);
  const state = c.verified ? "verified" : "NOT verified";
  return `${sanitizeText(c.card.address)}  ${state}  (from ${c.source}; fingerprint ${fp})`;
}

async function open(io: Io): Promise<ContactBook> {
  return await ContactBook.open(await getCryptoProvider(), contactsPath(io.env));
}

/** Adds cards, saying when one replaces a contact with other keys. */
async function addCards(io: Io, book: ContactBook, cards: Card[], verified: boolean) {
  for (const card of cards) {
    const replaced = book.add(card, { verified, source: verified ? "file" : "relay" });
    if (replaced) {
      note(
        io,
        `missive: warning: ${sanitizeText(card.address)} had other keys in your contacts; ` +
          "replaced (compare the new fingerprint before trusting it)",
      );
    }
    note(io, `missive: added ${await describe(book.get(card.address)!)}`);
  }
  book.save();
}

/** `contacts add --from-relay`: a lookup through a relay, stored unverified. */
async function addFromRelay(
  io: Io,
  book: ContactBook,
  v: { "from-relay"?: string; relay?: string; "relay-card"?: string; key?: string },
) {
  if (!v.relay || !v["relay-card"] || !v.key) {
    throw new MissiveError(
      "usage",
      "contacts add --from-relay needs --relay URL --relay-card CARD --key KEY",
    );
  }
  const identity = await loadIdentity(io, v.key);
  const [relayCard] = await loadCards([v["relay-card"]], { io, purpose: "trust" });
  const { connectRelay } = await import("../relay/link.ts");
  const client = await connectRelay(v.relay, identity, relayCard);
  try {
    const found = await client.lookup(v["from-relay"]!);
    await addCards(io, book, [found.card], false);
  } finally {
    await client.close();
  }
}

/** `contacts verify`: show the fingerprint; mark verified when it was confirmed. */
async function verify(io: Io, book: ContactBook, address: string, given?: string) {
  const c = book.get(address);
  if (!c) throw new MissiveError("usage", `contacts: no contact ${address}`);
  const fp = await fingerprint(await getCryptoProvider(), c.card);
  note(io, `missive: ${sanitizeText(c.card.address)}: fingerprint ${fp}`);
  const same = (a: string) => a.replace(/\s+/g, "").toLowerCase() === fp.replace(/\s+/g, "");
  if (given !== undefined) {
    if (!same(given)) {
      throw new MissiveError(
        "untrusted",
        `the fingerprint you gave does not match ${address}'s card: do not trust it`,
      );
    }
  } else {
    const answer = await askTerminal(
      `Does ${address}'s owner read you exactly this fingerprint? Type yes to confirm: `,
      { echo: true },
    ).catch(() => {
      throw new MissiveError(
        "usage",
        "contacts verify: give --fingerprint FP (no terminal to ask on)",
      );
    });
    if (answer.trim().toLowerCase() !== "yes") {
      throw new MissiveError("untrusted", `not confirmed: ${address} stays unverified`);
    }
  }
  book.markVerified(address);
  book.save();
  note(io, `missive: ${sanitizeText(c.card.address)} is verified`);
}

export const contacts: Command = {
  summary: "the local address book: add, list, verify, remove cards",
  usage,
  async run(args, io) {
    const [action, ...rest] = args;
    if (action === undefined || action === "--help" || action === "-h") {
      await io.stdout(utf8(usage));
      return;
    }
    const parsed = await parseFlags(
      io,
      rest,
      {
        json: { type: "boolean" },
        fingerprint: { type: "string" },
        "from-relay": { type: "string" },
        relay: { type: "string" },
        "relay-card": { type: "string" },
        key: { type: "string" },
      },
      usage,
      action === "add" ? 1000 : 1,
    );
    if (!parsed) return;
    const v = parsed.values;
    const book = await open(io);
    const [first] = parsed.positionals;
    switch (action) {
      case "add":
        if (v["from-relay"] !== undefined) return await addFromRelay(io, book, v);
        if (parsed.positionals.length === 0) {
          throw new MissiveError("usage", "contacts add: give card files (or --from-relay)");
        }
        return await addCards(io, book, await loadCards(parsed.positionals), true);
      case "list":
        for (const c of book.list()) {
          const line = v.json
            ? JSON.stringify({
              address: c.card.address,
              fingerprint: await fingerprint(await getCryptoProvider(), c.card),
              verified: c.verified,
              source: c.source,
              added: c.added,
            })
            : await describe(c);
          await io.stdout(utf8(line + "\n"));
        }
        return;
      case "verify":
        if (!first) throw new MissiveError("usage", "contacts verify: give an ADDRESS");
        return await verify(io, book, first, v.fingerprint);
      case "remove":
        if (!first) throw new MissiveError("usage", "contacts remove: give an ADDRESS");
        if (!book.remove(first)) throw new MissiveError("usage", `contacts: no contact ${first}`);
        book.save();
        note(io, `missive: removed ${sanitizeText(first)}`);
        return;
    }
    throw new MissiveError(
      "usage",
      `contacts: unknown action "${action}" (add, list, verify, remove)`,
    );
  },
};
