/**
 * A SIP user agent core over UDP (node:dgram) and TCP (node:net) on one port: client
 * transactions for the requests we send, server-side retransmission absorption and the
 * generic checks of RFC 3261 §8.2 for the requests we receive. What a MESSAGE means is
 * decided by the `onMessage` handler (transports/sip/mod.ts).
 * @module
 */
import type { Socket as UdpSocket } from "node:dgram";
import { connect as tcpConnect, type Server, type Socket } from "node:net";
import { MissiveError } from "../../core/errors.ts";
import {
  header,
  parseDatagram,
  serializeMessage,
  type SipHeader,
  type SipMessage,
  type SipRequest,
  type SipResponse,
} from "./_message.ts";
import {
  ACCEPTED_TYPES,
  ALLOWED_METHODS,
  badInputResponse,
  checkRequest,
  responseTo,
  serverTransactionKey,
  type SipReply,
  type SipTarget,
  sipToken,
} from "./_answer.ts";
import { bindSockets, defaultAdvertised, socketHost } from "./_sockets.ts";
import { SipStreamReader } from "./_stream.ts";
import {
  ClientTransaction,
  DEFAULT_TIMERS,
  realScheduler,
  type Scheduler,
  ServerTransactions,
  type SipTimers,
} from "./_transaction.ts";
import { DEFAULT_SIP_PORT, parseVia, type SipTransportName } from "./_uri.ts";

/**
 * Largest request sent over UDP (RFC 3261 §18.1.1: above 1300 bytes with an unknown
 * path MTU a request must go over a congestion-controlled transport). Larger ones go over
 * TCP, or are refused when the target pins UDP (SPEC §21.7.4).
 */
export const MAX_UDP_REQUEST = 1300;
/** Most TCP connections held at once; more are closed at once (and logged). */
export const MAX_TCP_CONNECTIONS = 1024;
/** A TCP connection idle this long is closed. */
export const TCP_IDLE_MS = 5 * 60 * 1000;

export { ACCEPTED_TYPES, ALLOWED_METHODS, responseTo, type SipReply, type SipTarget, sipToken };

/** Options of a user agent. */
export interface SipUaOptions {
  /** Address to bind (UDP and TCP share the port). */
  host: string;
  /** Port to bind; 0 picks a free one. */
  port: number;
  /** Host put in Via and Contact; defaults to `host`, or an interface address for 0.0.0.0. */
  advertisedHost?: string;
  timers?: SipTimers;
  /** Ends client transactions earlier than Timer F (milliseconds). */
  transactionLimitMs?: number;
  clock?: Scheduler;
  log?: (line: string) => void;
  /** Decides the answer to a MESSAGE (called once per transaction, not for retransmissions). */
  onMessage(request: SipRequest, source: SipTarget): SipReply;
}

type UaState = "open" | "closed";

/** The user agent: start() binds, request() sends, close() releases everything. */
export class SipUserAgent {
  #state: UaState = "open";
  #pendingSends = 0;
  #flushed?: () => void;
  readonly #udp: UdpSocket;
  readonly #server: Server;
  readonly #conns = new Map<string, Socket>();
  readonly #clients = new Map<string, { t: ClientTransaction; conn?: string }>();
  readonly #servers: ServerTransactions;
  readonly #options: SipUaOptions;
  readonly #timers: SipTimers;
  readonly #clock: Scheduler;
  readonly #log: (line: string) => void;
  /** The bound port (UDP and TCP). */
  readonly port: number;
  /** The host in our Via and Contact. */
  readonly advertisedHost: string;

  private constructor(options: SipUaOptions, udp: UdpSocket, server: Server, port: number) {
    this.#options = options;
    this.#udp = udp;
    this.#server = server;
    this.port = port;
    this.#timers = options.timers ?? DEFAULT_TIMERS;
    this.#clock = options.clock ?? realScheduler;
    this.#log = options.log ?? (() => {});
    this.#servers = new ServerTransactions(this.#timers, this.#clock);
    const advertised = options.advertisedHost ?? defaultAdvertised(options.host);
    // In URIs and Via an IPv6 address is bracketed (RFC 3261 §25.1).
    this.advertisedHost = advertised.includes(":") && !advertised.startsWith("[")
      ? `[${advertised}]`
      : advertised;
    udp.on(
      "message",
      (data: Uint8Array, rinfo: { address: string; port: number }) =>
        this.#onDatagram(data, { host: rinfo.address, port: rinfo.port, transport: "udp" }),
    );
    // A socket-level error must never crash a listener: log it and keep serving.
    udp.on("error", (e: Error) => this.#log(`sip: udp: ${e.message}`));
    server.on("error", (e: Error) => this.#log(`sip: tcp server: ${e.message}`));
    server.on("connection", (socket: Socket) => {
      if (this.#conns.size >= MAX_TCP_CONNECTIONS) {
        this.#log(`sip: refused a TCP connection: ${MAX_TCP_CONNECTIONS} already open`);
        socket.destroy();
        return;
      }
      this.#adopt(socket);
    });
  }

  /** Binds UDP and TCP on the same port (retrying a few ports when 0 was asked). */
  static async start(options: SipUaOptions): Promise<SipUserAgent> {
    const { udp, server, port } = await bindSockets(options.host, options.port);
    return new SipUserAgent(options, udp, server, port);
  }

  /** True when a TCP connection to (or from) host:port is open, for connection reuse. */
  connected(target: SipTarget): boolean {
    const socket = this.#conns.get(`${socketHost(target.host)}:${target.port}`);
    return target.transport === "tcp" && socket !== undefined && !socket.destroyed;
  }

  /** Our address as a URI for Contact headers. */
  contact(user: string | undefined, transport: SipTransportName): string {
    const u = user === undefined ? "" : user + "@";
    return `sip:${u}${this.advertisedHost}:${this.port}` +
      (transport === "udp" ? "" : ";transport=tcp");
  }

  /**
   * Sends a request in a new client transaction and resolves with its final response.
   * The Via and Max-Forwards headers are added here (§8.1.1.7, §8.1.1.6).
   */
  request(
    given: SipTarget,
    request: Omit<SipRequest, "kind">,
  ): Promise<SipResponse> {
    if (this.#state === "closed") {
      return Promise.reject(new MissiveError("network", "sip: user agent closed"));
    }
    const branch = "z9hG4bK" + sipToken();
    const serialize = (transport: SipTransportName) => {
      const proto = transport === "udp" ? "UDP" : "TCP";
      const via = `SIP/2.0/${proto} ${this.advertisedHost}:${this.port};branch=${branch};rport`;
      const headers: SipHeader[] = [["Via", via], ...request.headers];
      if (!header(headers, "Max-Forwards")) headers.push(["Max-Forwards", "70"]);
      return serializeMessage({ kind: "request", ...request, headers });
    };
    let target = given;
    let bytes = serialize(target.transport);
    if (target.transport === "udp" && bytes.length > MAX_UDP_REQUEST) {
      if (target.pinned) {
        return Promise.reject(
          new MissiveError(
            "too-large",
            `sip: the ${request.method} request is ${bytes.length} bytes, over the ` +
              `${MAX_UDP_REQUEST}-byte UDP limit (RFC 3261 §18.1.1), and the URI pins ` +
              `;transport=udp; use ;transport=tcp or leave the transport out`,
          ),
        );
      }
      // RFC 3261 §18.1.1: a congestion-controlled transport; same host and port.
      target = { ...target, transport: "tcp" };
      bytes = serialize("tcp");
    }
    const transaction = new ClientTransaction(() => this.#transmit(target, bytes), {
      reliable: target.transport === "tcp",
      timers: this.#timers,
      clock: this.#clock,
      what: `${request.method} to ${target.host}:${target.port}`,
      limitMs: this.#options.transactionLimitMs,
    });
    const conn = target.transport === "tcp"
      ? `${socketHost(target.host)}:${target.port}`
      : undefined;
    this.#clients.set(branch, { t: transaction, conn });
    const forget = () => this.#clients.delete(branch);
    transaction.done.then(forget, forget);
    return transaction.done;
  }

  /** Closes sockets and connections and fails pending transactions; idempotent. */
  async close(): Promise<void> {
    if (this.#state === "closed") return;
    this.#state = "closed";
    for (const { t } of this.#clients.values()) {
      t.abort(new MissiveError("network", "sip: user agent closed"));
    }
    this.#servers.clear();
    // Let the datagrams and bytes already handed over (a just-sent 200 OK) go out.
    const conns = [...this.#conns.values()];
    for (const socket of conns) socket.end();
    if (this.#pendingSends > 0 || conns.some((c) => c.writableLength > 0)) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        new Promise<void>((resolve) => (this.#flushed = resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, 200))),
      ]);
      clearTimeout(timer);
    }
    for (const socket of conns) socket.destroy();
    this.#conns.clear();
    await Promise.all([
      new Promise<void>((resolve) => this.#udp.close(() => resolve())),
      new Promise<void>((resolve) => this.#server.close(() => resolve())),
    ]);
  }

  #transmit(given: SipTarget, bytes: Uint8Array): void {
    const target = { ...given, host: socketHost(given.host) };
    if (this.#state === "closed") return;
    if (target.transport === "udp") {
      this.#sendUdp(bytes, target.port, target.host);
      return;
    }
    const key = `${target.host}:${target.port}`;
    let socket = this.#conns.get(key);
    if (!socket || socket.destroyed) {
      socket = tcpConnect({ host: target.host, port: target.port });
      this.#adopt(socket, key);
    }
    socket.write(bytes);
  }

  /** Attaches a stream reader to a TCP connection (accepted or opened). */
  #adopt(socket: Socket, key?: string): void {
    const id = key ?? `${socket.remoteAddress}:${socket.remotePort}`;
    this.#conns.set(id, socket);
    const reader = new SipStreamReader();
    const source = (): SipTarget => ({
      host: socket.remoteAddress ?? "",
      port: socket.remotePort ?? 0,
      transport: "tcp",
    });
    socket.setTimeout(TCP_IDLE_MS, () => {
      this.#log(`sip: tcp ${id}: idle for ${TCP_IDLE_MS / 1000} s, closed`);
      socket.destroy();
    });
    socket.on("data", (chunk: Uint8Array) => {
      if (socket.readableEnded || socket.destroyed || socket.writableEnded) return;
      let messages: SipMessage[];
      try {
        messages = reader.push(chunk);
      } catch (e) {
        this.#badInput(e, source(), (b) => socket.write(b));
        socket.end();
        return;
      }
      for (const m of messages) this.#dispatch(m, source(), (b) => socket.write(b));
    });
    socket.on("error", (e: Error) => {
      this.#log(`sip: tcp ${id}: ${e.message}`);
      // Requests waiting on this connection fail now rather than at Timer F.
      for (const { t, conn } of this.#clients.values()) {
        if (conn === id) t.abort(new MissiveError("network", `sip: tcp ${id}: ${e.message}`));
      }
    });
    socket.on("close", () => {
      if (this.#conns.get(id) === socket) this.#conns.delete(id);
      for (const { t, conn } of this.#clients.values()) {
        if (conn === id) t.abort(new MissiveError("network", `sip: tcp ${id}: connection closed`));
      }
    });
  }

  #onDatagram(data: Uint8Array, source: SipTarget): void {
    let message: SipMessage;
    try {
      message = parseDatagram(data);
    } catch (e) {
      this.#badInput(e, source, (b) => this.#sendResponseUdp(b, source, undefined));
      return;
    }
    this.#dispatch(message, source, (b, via) => this.#sendResponseUdp(b, source, via));
  }

  /** §18.2.2 with RFC 3581: answer the source address; the port from rport or Via. */
  #sendResponseUdp(bytes: Uint8Array, source: SipTarget, via: string | undefined): void {
    let port = source.port;
    if (via) {
      const v = parseVia(via);
      if (!v.params.has("rport")) port = v.port ?? DEFAULT_SIP_PORT;
    }
    this.#sendUdp(bytes, port, source.host);
  }

  #sendUdp(bytes: Uint8Array, port: number, host: string): void {
    this.#pendingSends++;
    this.#udp.send(bytes, port, host, (e) => {
      if (e) this.#log(`sip: send to ${host}:${port} failed: ${e.message}`);
      if (--this.#pendingSends === 0) this.#flushed?.();
    });
  }

  /** A message that failed to parse: answer 400/413 when the head is known, else drop. */
  #badInput(e: unknown, source: SipTarget, reply: (b: Uint8Array, via?: string) => void): void {
    const what = e instanceof Error ? e.message : String(e);
    this.#log(`sip: dropped a message from ${source.host}:${source.port}: ${what}`);
    const response = badInputResponse(e);
    if (response) reply(serializeMessage(response), header(response.headers, "Via"));
  }

  #dispatch(
    message: SipMessage,
    source: SipTarget,
    reply: (b: Uint8Array, via?: string) => void,
  ): void {
    if (this.#state === "closed") return;
    const via = header(message.headers, "Via");
    if (message.kind === "response") {
      // §17.1.3: match on the top Via branch and the CSeq method.
      let branch: string | undefined;
      try {
        branch = via ? parseVia(via).params.get("branch") : undefined;
      } catch { /* a response with a bad Via matches nothing */ }
      const t = branch ? this.#clients.get(branch)?.t : undefined;
      if (t) t.receive(message);
      else this.#log(`sip: a response matching no request from ${source.host}:${source.port}`);
      return;
    }
    if (message.method === "ACK" || !via) return;
    const key = serverTransactionKey(message);
    const seen = this.#servers.check(key);
    if (seen !== "new") {
      // A retransmission (§17.2.2): the same answer again, never a second delivery.
      if (seen !== "pending") reply(seen, via);
      return;
    }
    const answer = serializeMessage(responseTo(message, this.#answer(message, source), sipToken()));
    this.#servers.answered(key, answer);
    reply(answer, via);
  }

  /** §8.2 checks (answer.ts), then the MESSAGE handler; a throwing handler is a 500. */
  #answer(request: SipRequest, source: SipTarget): SipReply {
    return checkRequest(request) ?? this.#onMessage(request, source);
  }

  #onMessage(request: SipRequest, source: SipTarget): SipReply {
    try {
      return this.#options.onMessage(request, source);
    } catch (e) {
      this.#log(`sip: MESSAGE handler failed: ${(e as Error)?.message ?? e}`);
      return { status: 500, reason: "Server Internal Error" };
    }
  }
}
