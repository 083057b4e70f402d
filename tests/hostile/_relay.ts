/**
 * Harness for the hostile-relay suite: a real `missive serve` subprocess on loopback
 * (`deno run cmd/main.ts serve`, JSON logs), attackers that bind other loopback source
 * addresses (127.0.0.2, .3, .4), and relay clients over real sessions on TCP.
 * Everything started here is stopped by PID.
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import process from "node:process";
import { nobleProvider } from "../../crypto/mod.ts";
import { cardFileText } from "../../keys/card.ts";
import { type Identity, writeKeyFile } from "../../keys/identity.ts";
import { RelayClient } from "../../relay/client.ts";
import { Session } from "../../session/session.ts";
import { TcpTransport } from "../../transports/tcp.ts";
import type { Transport } from "../../transports/types.ts";
import { DENO, ENTRY, fixedIdentity, ROOT } from "../helpers.ts";

/** A `missive serve` subprocess. */
export interface ServeProcess {
  child: ChildProcess;
  pid: number;
  host: string;
  port: number;
  url: string;
  relay: Identity;
  /** Parsed `--log-json` lines so far. */
  events(): Record<string, unknown>[];
  stderr(): string;
  /** Resident set size now, KiB (from /proc). */
  rssKiB(): number;
  stop(): Promise<void>;
}

let relayIdentity: Identity | undefined;

/** The relay's fixed identity (its key file is written into each test's folder). */
export async function relayId(): Promise<Identity> {
  return relayIdentity ??= await fixedIdentity("relay@example.org", 200);
}

/** Starts `missive serve tcp://127.0.0.1:0 --key … --db DIR/relay.db --log-json ARGS`. */
export async function startServe(dir: string, args: string[] = []): Promise<ServeProcess> {
  const relay = await relayId();
  const keyPath = join(dir, "relay.key");
  writeFileSync(keyPath, await writeKeyFile(nobleProvider, relay), { mode: 0o600 });
  writeFileSync(join(dir, "relay.card"), await cardFileText(nobleProvider, relay.card));
  const child = spawn(DENO, [
    "run",
    "--allow-all",
    "--quiet",
    ENTRY,
    "serve",
    "tcp://127.0.0.1:0",
    "--key",
    keyPath,
    "--db",
    join(dir, "relay.db"),
    "--log-json",
    ...args,
  ], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stderr!.on("data", (d: Uint8Array) => (err += new TextDecoder().decode(d)));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`serve did not start: ${err}`));
    }, 30_000);
    child.stderr!.on("data", (d: Uint8Array) => {
      out += new TextDecoder().decode(d);
      const m = /relay listening on (\S+)|"event":"listen","url":"([^"]+)"/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1] ?? m[2]);
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`serve exited: ${err}`));
    });
  });
  const m = /^tcp:\/\/([^:]+):(\d+)$/.exec(url)!;
  const pid = child.pid!;
  return {
    child,
    pid,
    host: m[1],
    port: Number(m[2]),
    url,
    relay,
    events: () =>
      err.split("\n").filter((l) => l.startsWith("{")).map((l) => {
        try {
          return JSON.parse(l);
        } catch {
          return {};
        }
      }),
    stderr: () => err,
    rssKiB: () => {
      try {
        const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
        return m ? Number(m[1]) : 0;
      } catch {
        return 0;
      }
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        process.kill(pid, "SIGKILL");
        await exited;
      }
    },
  };
}

/** A raw TCP connection from `localAddress` (an attacker's socket). */
export function rawConnect(
  port: number,
  localAddress: string,
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port, localAddress });
    socket.once("connect", () => {
      socket.removeAllListeners("error");
      socket.on("error", () => {});
      resolve(socket);
    });
    socket.once("error", reject);
  });
}

/** Resolves when `socket` is closed (by either side), or with false after `ms`. */
export function closedWithin(socket: net.Socket, ms: number): Promise<boolean> {
  if (socket.destroyed || socket.readableEnded) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    const done = () => {
      clearTimeout(timer);
      resolve(true);
    };
    socket.once("close", done);
    socket.once("end", done);
  });
}

/**
 * A transport that can go deaf: once `deaf` is set it stops handing frames to its
 * session, so the session acknowledges nothing more and its socket's reading stops
 * (the TCP read queue fills, then the socket pauses): a peer that never reads.
 */
class Deafening implements Transport {
  readonly #inner: Transport;
  readonly remote: string;
  readonly #closed: Promise<void>;
  deaf = false;
  constructor(inner: Transport, closed: Promise<void>) {
    this.#inner = inner;
    this.remote = inner.remote;
    this.#closed = closed;
  }
  send(frame: Uint8Array): Promise<void> {
    // A write into a connection the relay has cut fails; the reading side reports it.
    return this.#inner.send(frame).catch(() => {});
  }
  async *frames(): AsyncGenerator<Uint8Array> {
    for await (const frame of this.#inner.frames()) {
      if (this.deaf) return await this.#closed;
      yield frame;
    }
  }
  close(): Promise<void> {
    return this.#inner.close();
  }
}

/** A session to the relay from `localAddress`, as `who`. */
export async function sessionFrom(
  serve: ServeProcess,
  who: Identity,
  localAddress: string,
  options: { window?: number } = {},
): Promise<{ session: Session; socket: net.Socket; deafen: () => void }> {
  const socket = await rawConnect(serve.port, localAddress);
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  const transport = new Deafening(new TcpTransport(socket, serve.url), closed);
  const session = await Session.connect(transport, who, {
    peer: serve.relay.card,
    ...(options.window ? { window: options.window } : {}),
  });
  return { session, socket, deafen: () => (transport.deaf = true) };
}

/** A relay client from `localAddress`, as `who`. */
export async function clientFrom(
  serve: ServeProcess,
  who: Identity,
  localAddress = "127.0.0.1",
  timeoutMs = 10_000,
): Promise<RelayClient> {
  const { session } = await sessionFrom(serve, who, localAddress);
  return new RelayClient(session, { timeoutMs });
}

/** Polls `check` every 50 ms until it holds or `ms` passed; returns whether it held. */
export async function eventually(check: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

let seed = 100;
/** A fresh identity with fixed keys per run (seeds 100…199). */
export async function someone(name: string): Promise<Identity> {
  if (seed >= 199) seed = 100;
  return await fixedIdentity(`${name}@example.org`, seed++);
}
