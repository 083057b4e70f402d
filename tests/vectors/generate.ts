/**
 * The known-answer vector corpus (docs/SPEC.md §12), made from fixed seeds:
 *
 *     node_modules/.bin/deno run -A tests/vectors/generate.ts
 *
 * writes tests/vectors/{envelope,armor,card,keyfile,simple,group,auth,plain,psk,amp,stream,session,session_v2,
 * framing,relay,signature}.json, the post-quantum files {card_v2,keyfile_v2,simple_v3,group_v2,weak_keys}.json
 * and ratchet.json.
 * Every
 * vector states its inputs (secret keys, random draws, clock, plaintext), the exact
 * bytes, and the expected outcome. Each case below declares the outcome it is meant to
 * have; generation fails if the implementation disagrees, so the corpus records intent,
 * not accident. tests/vectors_test.ts re-runs `buildCorpus` and requires the committed
 * files to match byte for byte (except the few bodies made by the runtime's zlib, which
 * are flagged `"deterministic": false`).
 *
 * Layout: common.ts (deterministic inputs, CBOR-in-JSON mutations, AMP bodies),
 * messages.ts (sealing/opening message vectors from their inputs), and one file of case
 * tables per area: cases_simple.ts, cases_group.ts, cases_auth_psk_plain.ts, cases_formats.ts (envelope,
 * armor), cases_keys.ts (cards, key files), cases_amp.ts.
 * @module
 */
import { framingVectors } from "./cases_framing.ts";
import { nobleProvider } from "../../crypto/noble.ts";
import type { CryptoProvider } from "../../crypto/provider.ts";
import { fromHex } from "../../core/bytes.ts";
import type { Identity } from "../../keys/identity.ts";

import { ampVectors } from "./cases_amp.ts";
import { chatVectors } from "./cases_chat.ts";
import { authCases, plainCases, pskCases } from "./cases_auth_psk_plain.ts";
import { armorVectors, envelopeVectors } from "./cases_formats.ts";
import { groupCases, groupIntermediates } from "./cases_group.ts";
import { cardVectors, keyFileVectors } from "./cases_keys.ts";
import { ratchetVectors } from "./cases_ratchet.ts";
import { relayVectors } from "./cases_relay.ts";
import { sessionVectors } from "./cases_session.ts";
import { sessionV2Vectors } from "./cases_session_v2.ts";
import { signatureVectors } from "./cases_signature.ts";
import { simpleCases } from "./cases_simple.ts";
import { streamVectors } from "./cases_stream.ts";
import {
  get,
  IDENTITY_SPECS,
  identityJson,
  makeIdentities,
  PQ_IDENTITY_SPECS,
  randomStream,
} from "./common.ts";
import { groupV2Cases, simpleV3Cases } from "./cases_pq.ts";
import { cardV2Vectors, keyFileV2Vectors, weakKeyVectors } from "./cases_pq_keys.ts";
import { buildMessageVectors, type MessageCase, resolvePlaceholders } from "./messages.ts";

import { writeFileSync } from "node:fs";

// ---------------------------------------------------------------------------------------
// The corpus

const MESSAGE_FILE_NOTE =
  "Message vectors. For each: seal.* are the inputs (identities by name, see " +
  "`identities`; random draws in the order taken; clock in ms), `mutations` edit the sealed envelope, " +
  "`envelope` is the exact result, `open` says how to open it and `expect` the outcome (SPEC §12).";

/** Every vector file, by file name, made with `provider`. */
export async function buildCorpus(provider: CryptoProvider): Promise<Record<string, unknown>> {
  const ids = await makeIdentities(provider);
  const identities = await Promise.all(
    IDENTITY_SPECS.map((s) => identityJson(provider, s, get(ids, s.name))),
  );
  const messages = async (prefix: string, description: string, cases: MessageCase[]) => ({
    description: `${description} ${MESSAGE_FILE_NOTE}`,
    identities,
    vectors: await buildMessageVectors(provider, ids, prefix, resolvePlaceholders(cases, ids)),
  });
  const pqIds = await makeIdentities(provider, PQ_IDENTITY_SPECS);
  const pqIdentities = await Promise.all(
    PQ_IDENTITY_SPECS.map((s) => identityJson(provider, s, get(pqIds, s.name))),
  );
  const pqMessages = async (prefix: string, description: string, cases: MessageCase[]) => ({
    description: `${description} ${MESSAGE_FILE_NOTE} The identities are hybrid (format-2 ` +
      "cards) but for dave (format 1).",
    identities: pqIdentities,
    vectors: await buildMessageVectors(provider, pqIds, prefix, resolvePlaceholders(cases, pqIds)),
  });
  return {
    "envelope.json": {
      description: "Envelope decoding (SPEC §2.1): `input` hex through decodeEnvelope (operation " +
        "decode) or through the whole open path with the built-in registry (operation open).",
      vectors: envelopeVectors(),
    },
    "armor.json": {
      description: "The three message forms (SPEC §2.2–2.4): `input` (text, as UTF-8, or hex) " +
        "through form detection; success gives the binary envelope. canonical: the text is exactly " +
        "what the writer produces.",
      vectors: await armorVectors(provider, ids),
    },
    "card.json": {
      description: "Identity cards (SPEC §3). parse-text: the one-line or card-file text form; " +
        "decode: CBOR bytes. Failure inputs made from alice's card list their `mutations`.",
      identities,
      vectors: await cardVectors(provider, ids),
    },
    "keyfile.json": {
      description: "Secret key files (SPEC §4): `text` is the file; `inputs` the passphrase and, " +
        "for encrypted files, scrypt logN, salt and XChaCha20-Poly1305 nonce.",
      identities,
      vectors: await keyFileVectors(provider, ids),
    },
    "simple.json": await messages(
      "simple",
      "STP simple, type 2, versions 1 and 2 (SPEC §5).",
      simpleCases(),
    ),
    "group.json": await withGroupIntermediates(
      await messages(
        "group",
        "STP group, type 3, version 1 (SPEC §19); seal.recipients lists every recipient in " +
          "the order given, seal.random.padding the dummy slots of hidden mode. Success " +
          "vectors state the opener's intermediate values (SPEC §19.7).",
        groupCases(),
      ),
      ids,
    ),
    "auth.json": await messages("auth", "STP auth, type 4, version 1 (SPEC §6).", authCases()),
    "plain.json": await messages("plain", "STP plain, type 7, version 1 (SPEC §7).", plainCases()),
    "psk.json": await messages(
      "psk",
      "STP psk, type 6, versions 1 and 2 (SPEC §13); seal.options and open.options hold the " +
        "shared secret.",
      pskCases(),
    ),
    "stream.json": {
      description:
        "Streams (SPEC §20): success vectors give the inputs (`seal`; plaintext byte i " +
        "is i mod 251) and the exact stream bytes; failure vectors apply `mutations` to a base " +
        "vector's bytes. `expect.released` is how many plaintext bytes an opener writes before " +
        "it stops: every byte of the chunks before the first bad one, none of a bad chunk.",
      identities,
      vectors: await streamVectors(provider, ids),
    },
    "amp.json": {
      description:
        "AMP bodies (SPEC §8–9, §14–17): `body` hex decoded by the AMP (type, version) in " +
        "`amp`. Vectors marked deterministic: false hold bytes from the generating runtime's zlib.",
      vectors: ampVectors(),
    },
    "session.json": {
      description: "STP session, type 5 (SPEC §22): recorded exchanges. The side under test " +
        "receives `inputs` in order and must send exactly `expect.outputs`, deliver " +
        "`expect.delivered` and end with `expect.outcome`; see tests/vectors/cases_session.ts.",
      identities,
      vectors: await sessionVectors(provider, ids),
    },
    "session_v2.json": {
      description: "STP session version 2 (SPEC §22.12: X25519 and an X-Wing encapsulation " +
        "per handshake), in the format of session.json; `versions` names the versions each " +
        "side speaks. See tests/vectors/cases_session_v2.ts for the random-stream order.",
      identities,
      vectors: await sessionV2Vectors(provider, ids),
    },
    "framing.json": framingVectors(),
    "signature.json": {
      description: "Detached signatures (SPEC §24): check `signature` (the text, as UTF-8) " +
        "against `file` (hex) trusting the cards of `verify.trusted` (identity names), with " +
        "`verify.requireTrust`. Success vectors give their `sign` inputs (Ed25519 is " +
        "deterministic: the text is reproduced exactly) and what the verifier reports.",
      identities,
      vectors: await signatureVectors(provider, ids),
    },
    "relay.json": {
      description: "Relay protocol messages (SPEC §23): `input` hex through the relay message " +
        "decoder; success gives the decoded message (byte strings in hex).",
      vectors: relayVectors(),
    },
    "card_v2.json": {
      description: "Hybrid identity cards, format 2 (SPEC §3): as card.json, with the X-Wing key " +
        "(field 9) derived from each identity's hybridSeed. `resigned` failures carry a valid " +
        "self-signature over a weak key.",
      identities: pqIdentities,
      vectors: await cardV2Vectors(provider, pqIds),
    },
    "keyfile_v2.json": {
      description: "Secret key files of hybrid identities, format 2 (SPEC §4): as keyfile.json; " +
        "the secret is Ed25519 seed ‖ X25519 key ‖ X-Wing seed (96 bytes).",
      identities: pqIdentities,
      vectors: await keyFileV2Vectors(provider, pqIds),
    },
    "simple_v3.json": await pqMessages(
      "simple3",
      "STP simple, type 2, version 3: X-Wing (SPEC §5.10). seal.random.encapsulationSeed is " +
        "the 64 bytes of X-Wing encapsulation randomness (ML-KEM m ‖ X25519 ephemeral).",
      simpleV3Cases(),
    ),
    "group_v2.json": await withGroupIntermediates(
      await pqMessages(
        "group2",
        "STP group, type 3, version 2: X-Wing slots (SPEC §19.10); seal.random lists one " +
          "encapsulationSeed per distinct recipient in the order given and, in hidden mode, the " +
          "padding (hint ‖ wrapped key of each dummy), the throwaway X-Wing seed and one " +
          "encapsulation seed per dummy slot.",
        groupV2Cases(),
      ),
      pqIds,
    ),
    "ratchet.json": {
      description: "STP ratchet, type 9 (SPEC §25): recorded conversations. The responder's " +
        "keyring is made at keyring.created from its random stream; the initiator starts from " +
        "`bundle.bytes`; then every step in order: `send` must produce exactly `frame`, " +
        "`receive` (frame = index of a sent frame, mutations applied) must give `expect`, " +
        "`restart` serialises and restores (forget: drop the conversation, keep the keyring), " +
        "`rotate` rotates the keyring. See tests/vectors/cases_ratchet.ts for the random draws.",
      identities: pqIdentities,
      vectors: await ratchetVectors(provider, pqIds, randomStream),
    },
    "chat.json": {
      description: "Chat (SPEC §27): `chat-message` bodies (hex `input`) through the chat AMP " +
        "decoder; `announce` datagrams through the LAN receiver (decode, card, signature, then " +
        "freshness against `now` and replay against `last`, the time last accepted from that " +
        "card; `sign` gives a success's inputs); `history-row` rows opened with the identity's " +
        "history key (given) at row number `row`.",
      identities,
      vectors: await chatVectors(provider, ids),
    },
    "weak_keys.json": {
      description: "Weak keys (SPEC §1.4, §3.7): `decode` a card (CBOR hex), or `verify` an " +
        "Ed25519 signature (publicKey, message, signature); small-order and non-canonical points, " +
        "S ≥ L, and weak X25519 keys are refused (card: key; verify: auth-failed, i.e. false).",
      identities,
      vectors: await weakKeyVectors(provider, ids),
    },
  };
}

/** Adds the SPEC §19.7 intermediate values to each group success vector. */
function withGroupIntermediates<T extends { vectors: unknown[] }>(
  doc: T,
  ids: Map<string, Identity>,
): T {
  const vectors = doc.vectors.map((v) => {
    const mv = v as { envelope: string; open: { identity?: string }; expect: { outcome: string } };
    if (mv.expect.outcome !== "success") return v;
    const got = groupIntermediates(fromHex(mv.envelope)!, get(ids, mv.open.identity!), ids);
    return { ...mv, intermediates: got };
  });
  return { ...doc, vectors };
}

/** The JSON text of one vector file, as committed. */
export function toJsonText(doc: unknown): string {
  return jsonLines(doc, "") + "\n";
}

/** JSON with one-space indentation; arrays of scalars (and of such arrays) on one line. */
function jsonLines(v: unknown, indent: string): string {
  const flat = (x: unknown): boolean =>
    x === null || typeof x !== "object" || (Array.isArray(x) && x.every(flat));
  if (flat(v)) return JSON.stringify(v);
  const inner = indent + " ";
  if (Array.isArray(v)) {
    return `[\n${v.map((x) => inner + jsonLines(x, inner)).join(",\n")}\n${indent}]`;
  }
  const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
  if (entries.length === 0) return "{}";
  const body = entries.map(([k, x]) => `${inner}${JSON.stringify(k)}: ${jsonLines(x, inner)}`);
  return `{\n${body.join(",\n")}\n${indent}}`;
}

if (import.meta.main) {
  const corpus = await buildCorpus(nobleProvider);
  for (const [file, doc] of Object.entries(corpus)) {
    writeFileSync(new URL(file, import.meta.url), toJsonText(doc));
    console.log(`${file}: ${(doc as { vectors: unknown[] }).vectors.length} vectors`);
  }
}
