/**
 * `missive chat`: the chat for people (DESIGN §7a, SPEC §27) — through a relay, or on a
 * LAN with no server. Flags → the chat library (chat/) → the view (chat_screen.ts).
 * @module
 */
import { appendFileSync } from "node:fs";
import { isatty } from "node:tty";
import { PRESENCE_STATUSES, type PresenceStatus } from "../amp/presence.ts";
import { utf8 } from "../core/bytes.ts";
import { isMissiveError, MissiveError } from "../core/errors.ts";
import { sanitizeText } from "../core/sanitize.ts";
import { getCryptoProvider } from "../crypto/mod.ts";
import type { Card } from "../keys/card.ts";
import { ContactBook, contactsPath } from "../keys/contacts.ts";
import {
  type Carrier,
  type ChatEvent,
  ChatModel,
  findRelayOnLan,
  History,
  LanCarrier,
  offlineCarrier,
  RelayCarrier,
} from "../chat/mod.ts";
import {
  type Command,
  exitCodesLine,
  type Io,
  loadIdentity,
  loadRelayCard,
  parseDuration,
  parseFlags,
} from "./common.ts";
import { ChatScreen } from "./chat_screen.ts";

const usage = `missive chat --relay URL --relay-card RELAY.CARD --key ME.KEY [options]
missive chat --lan --key ME.KEY [options]
missive chat --export ADDRESS --key ME.KEY [--db FILE]

Chat with friends: requests, presence, conversations end-to-end encrypted by the ratchet
STP (forward secrecy; the relay never reads a line), history kept encrypted on disk.
Through a relay (it registers you and keeps what waits for you), or with --lan on a
local network with no server: peers are found by signed multicast announcements and
talk over direct sessions. On a terminal: a conversation area and an input line;
otherwise the same commands are read from stdin, one per line (scripts).

Commands:
  /request ADDRESS [NOTE]  ask to be friends (your card, a signed note, prekeys)
  /accept ADDRESS          accept a request
  /refuse ADDRESS [REASON] refuse a request (they are told)
  /unfriend ADDRESS [REASON]  end a friendship (they are told; /remove too); the
                           lines stay in the history, either side may /request again
  /friends                 friends and requests, with presence and notes
  /list                    who is online (invisible users are never listed)
  /chat ADDRESS            talk to ADDRESS: other lines go there (// for a "/")
  /forward FROM TO [N]     forward your last N lines (default 1, at most 100) with
                           friend FROM to friend TO: shown as forwarded by you, the
                           original author named but not verified
  /status STATUS [NOTE]    online, busy, away or invisible; the note: to friends
  /history [ADDRESS] [N]   the last N lines (default 20)
  /help   /exit

Lines show the time, the author, ✓ for a verified author, and for yours the delivery
state: queued (waiting in this client), sent (accepted by the relay, or by the peer's
session on a LAN), delivered, read.

Options:
  --relay URL            the relay (or $MISSIVE_RELAY), e.g. tcp://127.0.0.1:7900
  --relay-card FILE      the relay's card: the session refuses any other relay. With
                         --lan and no --relay: use the relay found on the LAN with this card
  --key FILE             your secret key
  --db FILE              the history (default: the key file's name + .chat.db), 0600,
                         encrypted under a key derived from the key file
  --lan                  no server: announce yourself and find peers on the LAN
  --lan-group ADDR:PORT  multicast group or broadcast address (default 239.255.77.77:7901)
  --lan-interface IP     the interface for multicast and direct sessions (e.g. 127.0.0.1)
  --log FILE             append problems (bad input from peers, each with its reason)
                         here instead of stderr
  --export ADDRESS       print that conversation as JSON and exit
  --timeout DURATION     connection and request time limit (default 15s; 500ms, 1m)
  --require-pq           sessions (with the relay, or direct on the LAN) must be
                         post-quantum (version 2): a version 1 peer is refused

A real LAN needs UDP to the group's port and TCP to each peer's announced port let through
host firewalls, and multicast on the local segment (TTL 1; no routing across subnets); a
broadcast address (e.g. 192.168.1.255:7901) works where multicast is filtered.

${exitCodesLine(3, 9, 10, 12, 13)}
`;

const HELP = usage.split("\n\n")[2];

/** Where problems go: a --log file, stderr, or the screen when stderr is the terminal. */
function problemLog(io: Io, screen: ChatScreen, path: string | undefined) {
  return (reason: string) => {
    const line = `${new Date().toISOString()} ${sanitizeText(reason)}\n`;
    if (path) {
      try {
        appendFileSync(path, line, { mode: 0o600 });
        return;
      } catch { /* fall through to stderr */ }
    }
    if (screen.full && io.stderrIsTty) screen.say(sanitizeText(reason), "problem");
    else io.stderr(`missive chat: ${line.slice(25)}`);
  };
}

export const chat: Command = {
  summary: "chat with friends: requests, presence, encrypted conversations (relay or LAN)",
  usage,
  async run(args, io) {
    const parsed = await parseFlags(
      io,
      args,
      {
        relay: { type: "string" },
        "relay-card": { type: "string" },
        key: { type: "string" },
        db: { type: "string" },
        lan: { type: "boolean" },
        "lan-group": { type: "string" },
        "lan-interface": { type: "string" },
        log: { type: "string" },
        export: { type: "string" },
        timeout: { type: "string" },
        "require-pq": { type: "boolean" },
      },
      usage,
      0,
    );
    if (!parsed) return;
    const v = parsed.values;
    if (!v.key) throw new MissiveError("usage", "chat: --key FILE is required");
    const timeoutMs = v.timeout === undefined
      ? 15_000
      : parseDuration(v.timeout, "--timeout", { bareUnit: "ms", io });
    const requirePq = v["require-pq"] === true;
    const crypto = await getCryptoProvider();
    const identity = await loadIdentity(io, v.key);
    const history = await History.open(crypto, identity, v.db ?? `${v.key}.chat.db`);
    if (v.export !== undefined) {
      const model = await ChatModel.open(identity, history, offlineCarrier(), { crypto });
      await io.stdout(utf8(JSON.stringify(model.exportConversation(v.export), null, 2) + "\n"));
      return await model.close();
    }
    const url = v.relay ?? (v.lan ? undefined : io.env.MISSIVE_RELAY);
    if (!v.lan && !url) throw new MissiveError("usage", "chat: --relay URL or --lan is required");
    const relayCard = v["relay-card"] ? [await loadRelayCard(v["relay-card"], "chat")] : [];
    if (url && !relayCard.length) {
      throw new MissiveError("usage", "chat: --relay-card FILE is required (the relay's card)");
    }
    const full = io.stdoutIsTty && io.stdinFd !== undefined && isatty(io.stdinFd);
    const screen = new ChatScreen(io, { full });
    const problem = problemLog(io, screen, v.log);
    let carrier: Carrier;
    if (url) {
      carrier = new RelayCarrier(url, identity, relayCard[0], { timeoutMs, requirePq });
    } else if (relayCard.length) {
      screen.say(`looking for relay ${sanitizeText(relayCard[0].address)} on the LAN…`, "notice");
      const found = await findRelayOnLan({
        crypto,
        group: v["lan-group"],
        iface: v["lan-interface"],
        accepted: relayCard,
        timeoutMs,
        onProblem: problem,
      });
      screen.say(`relay found at ${found.url} (its card matches --relay-card)`, "notice");
      carrier = new RelayCarrier(found.url, identity, relayCard[0], { timeoutMs, requirePq });
    } else {
      carrier = new LanCarrier(identity, {
        crypto,
        group: v["lan-group"],
        iface: v["lan-interface"],
        relayCards: await verifiedContacts(io),
        timeoutMs,
        requirePq,
      });
    }
    const model = await ChatModel.open(identity, history, carrier, { crypto });
    const ui = new ChatView(model, screen, problem, carrier.name);
    try {
      await model.start();
      await screen.read((line) => ui.command(line));
      if (!full) await ui.drain(timeoutMs);
    } finally {
      screen.close();
      await model.close();
    }
  },
};

/** Cards of verified contacts: a relay heard on the LAN with one of these is trusted. */
async function verifiedContacts(io: Io): Promise<Card[]> {
  try {
    const book = await ContactBook.open(await getCryptoProvider(), contactsPath(io.env));
    return book.list().filter((c) => c.verified).map((c) => c.card);
  } catch {
    return [];
  }
}

const s = (text: string) => sanitizeText(text);

/** The commands and the events, between the model and the screen. */
class ChatView {
  #current?: string;
  #link = "connecting";

  constructor(
    readonly model: ChatModel,
    readonly screen: ChatScreen,
    readonly problem: (reason: string) => void,
    readonly where: string,
  ) {
    model.on((e) => this.#event(e));
    this.#status();
  }

  #status(): void {
    const me = this.model.identity.card.address;
    const to = this.#current ? ` · chat: ${this.#current}` : "";
    this.screen.setStatus(`-- ${me}${to} · ${this.where}: ${this.#link} --`);
  }

  #event(e: ChatEvent): void {
    const sc = this.screen;
    switch (e.type) {
      case "line":
        return sc.add({ line: e.line, self: this.model.identity.card.address });
      case "line-state":
        return sc.changed(e.line);
      case "request":
        return sc.say(
          `friend request from ${s(e.address)}${e.note ? `: "${s(e.note)}"` : ""} ` +
            `(/accept ${s(e.address)} or /refuse ${s(e.address)})`,
          "notice",
        );
      case "accepted":
        return sc.say(
          e.by === "you"
            ? `you accepted ${s(e.address)}'s request: /chat ${s(e.address)}`
            : `${s(e.address)} accepted your request: /chat ${s(e.address)}`,
          "notice",
        );
      case "refused":
        return sc.say(
          e.by === "you"
            ? `you refused ${s(e.address)}'s request`
            : `${s(e.address)} refused your request${e.reason ? `: ${s(e.reason)}` : ""}`,
          "notice",
        );
      case "ended":
        return sc.say(
          (e.by === "you"
            ? `you ended the friendship with ${s(e.address)}`
            : `${s(e.address)} ended the friendship`) + (e.reason ? `: ${s(e.reason)}` : ""),
          "notice",
        );
      case "presence":
        return sc.say(`${s(e.address)} is ${e.status}${e.note ? ` (${s(e.note)})` : ""}`, "notice");
      case "link":
        this.#link = e.up ? "connected" : "down (lines are queued)";
        this.#status();
        return sc.say(s(e.detail), "notice");
      case "notice":
        return sc.say(s(e.text), "notice");
      case "problem":
        return this.problem(e.reason);
    }
  }

  /** Waits (line mode, input ended) until the outbox is empty or `ms` passed. */
  async drain(ms: number): Promise<void> {
    const end = Date.now() + ms;
    while (this.model.queued > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  }

  async command(input: string): Promise<void> {
    const line = input.trim();
    if (!line) return;
    try {
      if (!line.startsWith("/") || line.startsWith("//")) {
        return await this.#say(line.replace(/^\//, ""));
      }
      const [name, ...rest] = line.split(/\s+/);
      await this.#run(name.toLowerCase(), rest, line);
    } catch (e) {
      if (!isMissiveError(e)) throw e;
      this.screen.say(s(e.message), "problem");
    }
  }

  async #say(text: string): Promise<void> {
    if (!this.#current) {
      throw new MissiveError("usage", "no conversation chosen: /chat ADDRESS first");
    }
    await this.model.send(this.#current, text);
  }

  async #run(name: string, args: string[], line: string): Promise<void> {
    const sc = this.screen;
    const need = (n: number, what: string) => {
      if (args.length < n) throw new MissiveError("usage", `${name} ${what}`);
    };
    const tail = (n: number) => line.split(/\s+/).slice(n + 1).join(" ") || undefined;
    switch (name) {
      case "/request":
        need(1, "ADDRESS [NOTE]");
        return await this.model.request(args[0], tail(1));
      case "/accept":
        need(1, "ADDRESS");
        return await this.model.accept(args[0]);
      case "/refuse":
        need(1, "ADDRESS [REASON]");
        return await this.model.refuse(args[0], tail(1));
      case "/friends": {
        const friends = await this.model.friends();
        if (!friends.length) return sc.say("no friends yet: /request ADDRESS");
        for (const f of friends) {
          sc.say(`  ${s(f.address)}  ${f.state}  ${f.presence}${f.note ? `  — ${s(f.note)}` : ""}`);
        }
        return;
      }
      case "/list": {
        const online = await this.model.online();
        if (!online.length) return sc.say("nobody else is online");
        for (const o of online) {
          sc.say(
            `  ${s(o.address)}  ${o.kind === "relay" ? "relay" : o.status}${
              o.where ? `  ${s(o.where)}` : ""
            }`,
          );
        }
        return;
      }
      case "/chat": {
        need(1, "ADDRESS");
        this.#current = args[0].toLowerCase();
        this.#status();
        sc.say(`talking to ${s(this.#current)}`, "notice");
        for (const l of this.model.lines(this.#current, 10)) sc.add({ line: l, self: "" });
        return await this.model.view(this.#current);
      }
      case "/forward": {
        need(2, "FROM TO [N]");
        const n = args[2] === undefined ? 1 : /^\d+$/.test(args[2]) ? Number(args[2]) : NaN;
        const count = await this.model.forward(args[0], args[1], n);
        return sc.say(
          `forwarded ${count} line${count === 1 ? "" : "s"} to ${s(args[1])}`,
          "notice",
        );
      }
      case "/unfriend":
      case "/remove":
        need(1, "ADDRESS [REASON]");
        return await this.model.unfriend(args[0], tail(1));
      case "/status": {
        need(1, "online|busy|away|invisible [NOTE]");
        if (!(PRESENCE_STATUSES as readonly string[]).includes(args[0])) {
          throw new MissiveError("usage", `/status: one of ${PRESENCE_STATUSES.join(", ")}`);
        }
        await this.model.setStatus(args[0] as PresenceStatus, tail(1));
        return sc.say(`you are ${args[0]}`, "notice");
      }
      case "/history": {
        const n = args.length && /^\d+$/.test(args[args.length - 1]) ? Number(args.pop()) : 20;
        for (const l of this.model.lines(args[0] ?? this.#current, n)) {
          sc.add({ line: l, self: "" });
        }
        return;
      }
      case "/help":
        return sc.say(HELP);
      case "/exit":
      case "/quit":
        return this.screen.close();
      default:
        throw new MissiveError("usage", `unknown command ${name} (/help)`);
    }
  }
}
