/** `missive send URL`: seal a message and send it; wait for the recipient's receipt. @module */
import { toHex, utf8 } from "../core/bytes.ts";
import { RECEIPT_TYPE } from "../amp/receipt.ts";
import { MAX_TEXT_BYTES } from "../amp/text.ts";
import { MAX_ENVELOPE_SIZE } from "../envelope/mod.ts";
import { isMissiveError, MissiveError } from "../core/errors.ts";
import { SMIME_TYPE } from "../stp/smime/descriptor.ts";
import { connectTransport, parseTransportUrl } from "../transports/mod.ts";
import { MAX_RECEIPT_FRAME, ReceiptChannel, sealWithNonce } from "../messaging/receipts.ts";
import {
  cliOf,
  type Command,
  loadCards,
  loadIdentity,
  loadRegistry,
  note,
  oneLine,
  parseDuration,
  parseFlags,
  parsePairs,
  readInput,
  typedStpOptions,
} from "./common.ts";

const usage = `missive send URL --from KEY --to CARD [options] [INPUT] < message

Seals a message (stdin or INPUT) as "missive seal" does and sends it to URL. Over
tcp:// and sip: it then waits for the listener's receipt (SPEC §21.5), checks that
the recipient's card signed it, and exits 0 only when the message was accepted.

URL:
  tcp://HOST:PORT       a "missive listen" (receipt awaited)
  sip:USER@HOST[:PORT][;transport=udp|tcp]
                        a SIP MESSAGE to a "missive listen sip:..." directly or
                        through a proxy (receipt awaited; SPEC §21.7); over UDP
                        a request is at most 1300 bytes, use ;transport=tcp
  stdio:[binary|armor|lines]
                        write the frame to stdout (no receipt: nothing answers)

Options:
  --from KEY            sender's secret key file
  --to CARD             recipient: card file, card line, key file or directory of
                        *.card files (repeatable); receipts must be signed by one
  --stp NAME[/vN]       secure transport protocol (default simple); not smime
  --amp NAME[/vN]       application message protocol (default text/1)
  --field NAME=VALUE    AMP field (repeatable), as for seal
  --option NAME=VALUE   STP option, for plugins (repeatable)
  --psk-file FILE       shared key for --stp psk
  --passphrase          shared passphrase for --stp psk ($MISSIVE_PASSPHRASE or prompt)
  --no-card             do not attach the sender's card
  --hash-destination    send the recipient's address as a keyed hash (simple)
  --hide-recipients     group: key slots carry no recipient hints, count padded
  --require-pq          refuse unless post-quantum (as for seal)
  --timeout DURATION    connecting plus waiting for the receipt (default 10s; 500ms,
                        2m, or seconds)
  --no-receipt          do not wait for a receipt (exit 0 once the frame is sent);
                        implied for --amp receipt, which is never answered
  --json                print one JSON object on stdout: where, the message's nonce,
                        and the receipt's status (or "sent" without a receipt)
  --plugin PATH         load a plugin module, or exec:NAME (missive-plugin-NAME
                        on PATH; repeatable)

Exit codes: 0 accepted (or sent, without a receipt), 2 usage, 4 the receipt is not
signed by the recipient, 9 key problem, 10 I/O error, 11 plugin error, 12 timeout (no
receipt in time), 13 network (cannot connect, lost), 15 the recipient refused the
message (its status is printed).

Examples:
  missive listen tcp://127.0.0.1:7700 --key bob.key          # terminal 1
  echo hi | missive send tcp://127.0.0.1:7700 --from alice.key --to bob.card
  echo hi | missive send 'sip:bob@127.0.0.1:5070;transport=tcp' --from alice.key --to bob.card
  missive send stdio:lines --from alice.key --to bob.card < note.txt >> outbox
`;

export const send: Command = {
  summary: "seal a message and send it over a transport (tcp, sip, stdio)",
  usage,
  async run(args, io) {
    const parsed = await parseFlags(
      io,
      args,
      {
        from: { type: "string" },
        to: { type: "string", multiple: true },
        stp: { type: "string", default: "simple" },
        amp: { type: "string", default: "text/1" },
        field: { type: "string", multiple: true },
        option: { type: "string", multiple: true },
        "psk-file": { type: "string" },
        passphrase: { type: "boolean" },
        "no-card": { type: "boolean" },
        "hash-destination": { type: "boolean" },
        "hide-recipients": { type: "boolean" },
        "require-pq": { type: "boolean" },
        timeout: { type: "string", default: "10s" },
        "no-receipt": { type: "boolean" },
        json: { type: "boolean" },
        plugin: { type: "string", multiple: true },
      },
      usage,
      2,
    );
    if (!parsed) return;
    const v = parsed.values;
    const [url, inputPath] = parsed.positionals;
    if (url === undefined) throw new MissiveError("usage", "send: give a URL (see --help)");
    const address = parseTransportUrl(url);
    const timeoutMs = parseDuration(v.timeout!, "--timeout", { io });
    const registry = await loadRegistry(io, v as { plugin?: string[]; config?: string });
    const stp = registry.find("stp", v.stp!);
    if (stp.type === SMIME_TYPE) {
      throw new MissiveError(
        "usage",
        "send: --stp smime is not supported here (it takes X.509 flags); use missive seal",
      );
    }
    const amp = registry.find("amp", v.amp!);
    // A receipt is never answered with a receipt (SPEC §14).
    const wantReceipt = address.replies && !v["no-receipt"] && amp.type !== RECEIPT_TYPE;
    const sender = v.from ? await loadIdentity(io, v.from) : undefined;
    const recipients = await loadCards(v.to ?? [], { io, purpose: "to" });
    if (wantReceipt && recipients.length === 0) {
      throw new MissiveError(
        "usage",
        "send: receipts are checked against the --to card; give --to or --no-receipt",
      );
    }
    const input = await readInput(
      io,
      inputPath,
      Math.min(MAX_TEXT_BYTES, MAX_ENVELOPE_SIZE),
      "message",
    );
    const message = await registry.guard(
      amp,
      "fromInput",
      () => cliOf(amp).fromInput(input, parsePairs(v.field, "--field")),
    );
    const sealed = await sealWithNonce({
      registry,
      stp,
      amp,
      message,
      sender,
      recipients,
      includeCard: !v["no-card"],
      hashDestination: v["hash-destination"] ?? false,
      hideRecipients: v["hide-recipients"] ?? false,
      requirePq: v["require-pq"] ?? false,
      onWarning: (m) => note(io, `missive: warning: ${m}`),
      options: (await typedStpOptions(io, { pskFile: v["psk-file"], passphrase: v.passphrase }))
        .options,
      optionPairs: parsePairs(v.option, "--option"),
    });
    const deadline = Date.now() + timeoutMs; // one budget: connecting and the receipt
    const transport = await connectTransport(url, {
      timeoutMs,
      maxFrame: MAX_RECEIPT_FRAME,
      stdio: { input: io.stdin, output: io.stdout },
    });
    const report = (status: string) =>
      v.json
        ? io.stdout(utf8(
          JSON.stringify({ to: transport.remote, nonce: toHex(sealed.nonce), status }) + "\n",
        ))
        : Promise.resolve();
    try {
      if (!wantReceipt) {
        await transport.send(sealed.frame);
        await report("sent");
        return;
      }
      const channel = new ReceiptChannel(transport, { registry, cards: recipients });
      const receipt = await channel.send(sealed, Math.max(1, deadline - Date.now())).catch(
        (e) => {
          if (!isMissiveError(e, "timeout")) throw e;
          throw new MissiveError("timeout", `${e.message} (--timeout ${v.timeout})`);
        },
      );
      const why = receipt.detail ? ` (${oneLine(receipt.detail)})` : "";
      await report(receipt.status);
      if (receipt.status !== "accepted") {
        throw new MissiveError(
          "refused",
          `${transport.remote} refused the message: ${receipt.status}${why}`,
        );
      }
      note(io, `missive: delivered to ${transport.remote}: accepted (receipt verified)`);
    } finally {
      await transport.close();
    }
  },
};
