/**
 * SIP URIs (RFC 3261 §19.1), name-addr values (From, To, Contact) and Via values
 * (§20.42), parsed strictly for what a MESSAGE user agent needs.
 * @module
 */
import { MissiveError } from "../../core/errors.ts";

/** The transports missive speaks SIP over. */
export type SipTransportName = "udp" | "tcp";

/** A parsed `sip:[user@]host[:port][;params]` URI. */
export interface SipUri {
  user?: string;
  host: string;
  /** Explicit port, or undefined (the default, 5060, applies). */
  port?: number;
  /** `;transport=` lowered; "udp" when absent. */
  transport: SipTransportName;
  /**
   * True when the URI names its transport: a pinned "udp" is never switched to TCP for a
   * large request (SPEC §21.7.4).
   */
  transportPinned: boolean;
  /** The URI parameters other than transport, lowered names, in order. */
  params: [string, string | undefined][];
}

/** RFC 3261 §19.1.2: the port when the URI has none. */
export const DEFAULT_SIP_PORT = 5060;

const USER = /^[A-Za-z0-9\-_.!~*'()&=+$,;?/%]+$/;
const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/;
const IPV6 = /^\[[0-9A-Fa-f:.]{2,45}\]$/;

function bad(uri: string, why: string): never {
  throw new MissiveError("usage", `bad SIP URI ${JSON.stringify(uri.slice(0, 80))}: ${why}`);
}

/** Parses a SIP URI; throws `usage` with the reason (SPEC §21.7.1). */
export function parseSipUri(uri: string): SipUri {
  if (uri.length > 512) bad(uri, "longer than 512 characters");
  if (/^sips:/i.test(uri)) bad(uri, "sips: (TLS) is not supported; use sip:");
  if (!/^sip:/i.test(uri)) bad(uri, "expected sip:user@host[:port][;transport=udp|tcp]");
  const [hostPart, ...paramParts] = uri.slice(4).split(";");
  const at = hostPart.lastIndexOf("@");
  const user = at >= 0 ? hostPart.slice(0, at) : undefined;
  if (user !== undefined && !USER.test(user)) bad(uri, "bad user part");
  const hostPort = hostPart.slice(at + 1);
  const m = /^(\[[^\]]*\]|[^:]*)(?::([0-9]{1,5}))?$/.exec(hostPort);
  if (!m) bad(uri, "bad host or port");
  const host = m[1];
  if (!HOSTNAME.test(host) && !IPV6.test(host)) bad(uri, "bad host");
  const port = m[2] === undefined ? undefined : Number(m[2]);
  if (port !== undefined && port > 65535) bad(uri, "port above 65535");
  let transport: SipTransportName = "udp";
  let transportPinned = false;
  const params: [string, string | undefined][] = [];
  for (const part of paramParts) {
    if (part === "") bad(uri, "empty parameter");
    const eq = part.indexOf("=");
    const name = (eq < 0 ? part : part.slice(0, eq)).toLowerCase();
    const value = eq < 0 ? undefined : part.slice(eq + 1);
    if (name === "transport") {
      const t = value?.toLowerCase();
      if (t !== "udp" && t !== "tcp") bad(uri, "transport must be udp or tcp");
      transport = t;
      transportPinned = true;
    } else params.push([name, value]);
  }
  return { user, host, port, transport, transportPinned, params };
}

/** Formats a URI; an unpinned `transport=udp` is left out as it is the default. */
export function formatSipUri(uri: SipUri): string {
  let s = "sip:" + (uri.user !== undefined ? uri.user + "@" : "") + uri.host;
  if (uri.port !== undefined) s += ":" + uri.port;
  if (uri.transport !== "udp" || uri.transportPinned) s += ";transport=" + uri.transport;
  for (const [name, value] of uri.params) {
    s += ";" + name + (value === undefined ? "" : "=" + value);
  }
  return s;
}

/** A name-addr or addr-spec header value: the URI text and the header parameters. */
export interface NameAddr {
  uri: string;
  params: Map<string, string>;
}

/** Parses `"Name" <sip:...>;tag=x` or `sip:...;tag=x` (§20.10, §20.20, §20.39). */
export function parseNameAddr(value: string): NameAddr {
  let uri: string;
  let rest: string;
  const lt = value.indexOf("<");
  if (lt >= 0) {
    const gt = value.indexOf(">", lt);
    if (gt < 0) throw new MissiveError("malformed", "sip: '<' without '>' in an address");
    uri = value.slice(lt + 1, gt).trim();
    rest = value.slice(gt + 1);
  } else {
    // Without brackets, ';' parameters belong to the header, not the URI (§20).
    const semi = value.indexOf(";");
    uri = (semi < 0 ? value : value.slice(0, semi)).trim();
    rest = semi < 0 ? "" : value.slice(semi);
  }
  if (uri === "") throw new MissiveError("malformed", "sip: empty address");
  const params = new Map<string, string>();
  for (const p of rest.split(";").slice(1)) {
    const eq = p.indexOf("=");
    const name = (eq < 0 ? p : p.slice(0, eq)).trim().toLowerCase();
    if (name !== "") params.set(name, eq < 0 ? "" : p.slice(eq + 1).trim());
  }
  return { uri, params };
}

/** The identity part of an address: the URI without parameters, lowered scheme and host. */
export function addressKey(uri: string): string {
  const base = uri.split(";")[0].split("?")[0];
  const at = base.lastIndexOf("@");
  return at < 0 ? base.toLowerCase() : base.slice(0, at) + base.slice(at).toLowerCase();
}

/** A parsed Via value (first element of a Via header). */
export interface Via {
  transport: string;
  host: string;
  port?: number;
  params: Map<string, string>;
}

/** Parses the first comma-separated element of a Via header value. */
export function parseVia(value: string): Via {
  const first = value.split(",")[0].trim();
  const m =
    /^SIP\s*\/\s*2\.0\s*\/\s*([A-Za-z]+)\s+(\[[^\]]+\]|[^:;\s]+)(?::([0-9]{1,5}))?\s*(;.*)?$/
      .exec(first);
  if (!m) throw new MissiveError("malformed", `sip: bad Via ${JSON.stringify(first.slice(0, 80))}`);
  const params = new Map<string, string>();
  for (const p of (m[4] ?? "").split(";").slice(1)) {
    const eq = p.indexOf("=");
    const name = (eq < 0 ? p : p.slice(0, eq)).trim().toLowerCase();
    if (name !== "") params.set(name, eq < 0 ? "" : p.slice(eq + 1).trim());
  }
  const port = m[3] === undefined ? undefined : Number(m[3]);
  if (port !== undefined && port > 65535) throw new MissiveError("malformed", "sip: Via port");
  return { transport: m[1].toUpperCase(), host: m[2], port, params };
}
