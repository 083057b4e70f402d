/**
 * The sockets of a SIP user agent: UDP and TCP bound on one port, and the host forms
 * sockets and URIs each want.
 * @module
 */
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { createServer, type Server } from "node:net";
import { networkInterfaces } from "node:os";
import { MissiveError } from "../../core/errors.ts";

/**
 * Binds UDP and TCP on the same host and port (RFC 3261 §18: a UA listens on both).
 * With port 0 the UDP port is picked first and tried for TCP, a few times over.
 */
export async function bindSockets(
  host: string,
  port: number,
): Promise<{ udp: UdpSocket; server: Server; port: number }> {
  for (let attempt = 0;; attempt++) {
    const udp = createSocket(host.includes(":") ? "udp6" : "udp4");
    try {
      await new Promise<void>((resolve, reject) => {
        udp.once("error", reject);
        udp.bind(port, host, () => resolve());
      });
    } catch (e) {
      udp.close();
      throw bindError(host, port, e);
    }
    const bound = udp.address().port;
    const server = createServer();
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(bound, host, () => resolve());
      });
      return { udp, server, port: bound };
    } catch (e) {
      udp.close();
      server.close();
      if (port !== 0 || attempt >= 5) throw bindError(host, port, e);
    }
  }
}

/** The host to advertise for a bound host: itself, or an interface address for 0.0.0.0. */
export function defaultAdvertised(host: string): string {
  if (host !== "0.0.0.0" && host !== "::") return host;
  for (const list of Object.values(networkInterfaces())) {
    for (const i of list ?? []) if (i.family === "IPv4" && !i.internal) return i.address;
  }
  return "127.0.0.1";
}

/** A host as sockets take it: an IPv6 address without its URI brackets. */
export function socketHost(host: string): string {
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

function bindError(host: string, port: number, e: unknown): MissiveError {
  return new MissiveError(
    "network",
    `sip: cannot listen on ${host}:${port}: ${(e as Error)?.message ?? e}`,
    { cause: e },
  );
}
