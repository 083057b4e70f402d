/**
 * Transport URLs, parsed in this one place (SPEC §21): `stdio:[binary|armor|lines]`,
 * `tcp://host:port` and `sip:…`. Each scheme is one row of `SCHEMES`: how to parse its
 * URL, how to connect, how to listen, and whether a listener can answer on it (receipts).
 * A transport moves opaque frames (envelopes); sealing and opening are the caller's.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { connectTransport } from "./mod.ts";
 * // stdio with streams of our own: each frame goes out as one armor block (SPEC §21.3).
 * const written: string[] = [];
 * const link = await connectTransport("stdio:armor", {
 *   stdio: {
 *     input: async function* () {},
 *     output: (data) => {
 *       written.push(new TextDecoder().decode(data));
 *       return Promise.resolve();
 *     },
 *   },
 * });
 * await link.send(new Uint8Array([0xd9, 0xd9, 0xf7, 0xa0]));
 * await link.close();
 * assert.match(written.join(""), /^-----BEGIN MISSIVE MESSAGE-----\n/);
 * ```
 * @module
 */
import { MissiveError } from "../core/errors.ts";
import { checkFrameCap } from "./framing.ts";
import {
  STDIO_FRAMINGS,
  type StdioFraming,
  StdioListener,
  type StdioStreams,
  StdioTransport,
} from "./stdio.ts";
import { sipScheme } from "./sip/mod.ts";
import { connectTcp, TcpListener, tcpUrl } from "./tcp.ts";
import type { Listener, Transport } from "./types.ts";

export type { Listener, Transport } from "./types.ts";

/** Options for `connectTransport`. */
export interface ConnectOptions {
  /** Largest frame accepted from the peer. */
  maxFrame?: number;
  /** Where a transport reports what it skipped or dropped. */
  log?: (line: string) => void;
  /** Connection set-up limit (tcp). */
  timeoutMs?: number;
  /** The streams `stdio:` uses (default: the process's stdin and stdout). */
  stdio?: StdioStreams;
}

/** Options for `listenTransport`. */
export interface ListenOptions extends ConnectOptions {
  /** Connections held at once (tcp). */
  maxConnections?: number;
  /** Drop a peer silent this long, in either direction (tcp; default never). */
  idleTimeoutMs?: number;
  /** sip: register at this proxy first (`sip:HOST[:PORT][;transport=udp|tcp]`, §21.7.7). */
  register?: string;
}

/** One row of the scheme table: `A` is the parsed form of the scheme's URLs. */
interface Scheme<A> {
  /** What a URL of this scheme looks like, for error messages. */
  readonly form: string;
  /** True when a listener can send frames back to a peer (receipts, SPEC §21.5). */
  readonly replies: boolean;
  parse(url: string): A;
  connect(address: A, options: ConnectOptions): Promise<Transport>;
  listen(address: A, options: ListenOptions): Promise<Listener>;
}

const bad = (url: string, why: string): never => {
  throw new MissiveError("usage", `bad transport URL ${JSON.stringify(url)}: ${why}`);
};

/** `stdio:` alone is `stdio:binary`. */
function parseStdio(url: string): { framing: StdioFraming } {
  const framing = url.slice("stdio:".length) || "binary";
  if (!(STDIO_FRAMINGS as readonly string[]).includes(framing)) {
    bad(url, `stdio framing must be ${STDIO_FRAMINGS.join(", ")}`);
  }
  return { framing: framing as StdioFraming };
}

const HOST = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})))$/;

/** `tcp://host:port`: a name, IPv4 address or bracketed IPv6 address, and a port. */
function parseTcp(url: string): { host: string; port: number } {
  const m = /^tcp:\/\/(.+):(\d{1,5})\/?$/.exec(url);
  if (!m) bad(url, "expected tcp://HOST:PORT, e.g. tcp://127.0.0.1:7700");
  const h = HOST.exec(m![1]);
  if (!h) bad(url, `bad host ${JSON.stringify(m![1])}`);
  const port = Number(m![2]);
  if (port > 65535) bad(url, "port must be 0..65535");
  return { host: h![1] ?? h![2], port };
}

function withCap<O extends ConnectOptions>(options: O): O {
  if (options.maxFrame !== undefined) checkFrameCap(options.maxFrame);
  return options;
}

const stdioScheme: Scheme<{ framing: StdioFraming }> = {
  form: "stdio:[binary|armor|lines]",
  replies: false,
  parse: parseStdio,
  connect: (a, o) =>
    Promise.resolve(new StdioTransport({ ...withCap(o), framing: a.framing, streams: o.stdio })),
  listen: (a, o) =>
    Promise.resolve(new StdioListener({ ...withCap(o), framing: a.framing, streams: o.stdio })),
};

const tcpScheme: Scheme<{ host: string; port: number }> = {
  form: "tcp://HOST:PORT",
  replies: true,
  parse: parseTcp,
  connect: (a, o) => {
    if (a.port === 0) bad(tcpUrl(a.host, a.port), "cannot connect to port 0");
    return connectTcp(a.host, a.port, withCap(o));
  },
  listen: (a, o) => TcpListener.listen(a.host, a.port, withCap(o)),
};

/** The scheme table: a new transport is one row here (and its parse function above). */
const SCHEMES: Record<string, Scheme<never>> = {
  stdio: stdioScheme as Scheme<never>,
  tcp: tcpScheme as Scheme<never>,
  sip: sipScheme as Scheme<never>,
};

/** A parsed transport URL. */
export interface TransportAddress {
  /** The scheme, e.g. `tcp`. */
  scheme: string;
  /** The URL as given. */
  url: string;
  /** Whether a listener on this scheme can answer (receipts). */
  replies: boolean;
  /** The scheme's own parsed form. */
  address: unknown;
}

/**
 * Parses a transport URL; `usage` (naming the accepted forms) when it is not one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseTransportUrl } from "./mod.ts";
 * const tcp = parseTransportUrl("tcp://127.0.0.1:7700");
 * assert.equal(tcp.scheme, "tcp");
 * assert.equal(tcp.replies, true);
 * assert.deepEqual(tcp.address, { host: "127.0.0.1", port: 7700 });
 * assert.deepEqual(parseTransportUrl("stdio:").address, { framing: "binary" });
 * assert.throws(() => parseTransportUrl("udp://127.0.0.1:1"), { code: "usage" });
 * ```
 */
export function parseTransportUrl(url: string): TransportAddress {
  const m = /^([a-z][a-z0-9+.-]*):/.exec(url);
  const scheme = m ? SCHEMES[m[1]] : undefined;
  if (!m || !scheme) {
    const forms = Object.values(SCHEMES).map((s) => s.form).join(", ");
    bad(url, `use one of ${forms}`);
  }
  return { scheme: m![1], url, replies: scheme!.replies, address: scheme!.parse(url) };
}

/**
 * Opens a transport to the peer at `url`. A bad URL is `usage`; a peer that cannot be
 * reached is `network` (or `timeout` after `timeoutMs`, tcp).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { connectTransport, listenTransport } from "./mod.ts";
 * const listener = await listenTransport("tcp://127.0.0.1:0");
 * const client = await connectTransport(listener.url);
 * await client.send(new TextEncoder().encode("one frame"));
 * const received: string[] = [];
 * for await (const peer of listener.connections()) {
 *   for await (const frame of peer.frames()) {
 *     received.push(new TextDecoder().decode(frame));
 *     break;
 *   }
 *   break;
 * }
 * assert.deepEqual(received, ["one frame"]);
 * await client.close();
 * await listener.close();
 * ```
 */
export async function connectTransport(
  url: string,
  options: ConnectOptions = {},
): Promise<Transport> {
  const a = parseTransportUrl(url);
  return await SCHEMES[a.scheme].connect(a.address as never, options);
}

/**
 * Listens at `url` (for tcp, port 0 picks a free port: see `Listener.url`). A bad URL or
 * frame cap is `usage`; an address that cannot be bound is `network`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { listenTransport } from "./mod.ts";
 * const listener = await listenTransport("tcp://127.0.0.1:0", { maxFrame: 64 * 1024 });
 * const port = Number(listener.url.split(":").at(-1));
 * assert.match(listener.url, /^tcp:\/\/127\.0\.0\.1:\d+$/);
 * assert.ok(port > 0);
 * await listener.close();
 * ```
 */
export async function listenTransport(url: string, options: ListenOptions = {}): Promise<Listener> {
  const a = parseTransportUrl(url);
  return await SCHEMES[a.scheme].listen(a.address as never, options);
}

// Types that this entry point's signatures name (and the types those name), re-exported
// so that its documentation is complete on its own.
export type { StdioStreams } from "./stdio.ts";
