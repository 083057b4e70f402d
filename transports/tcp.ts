/**
 * `tcp://host:port` (SPEC §21.3): length-prefixed frames (framing.ts) over node:net.
 * Back-pressure both ways: `send` waits for 'drain' when the socket's buffer is full, and
 * reading pauses while the frames not yet pulled by the consumer exceed a byte budget,
 * so a slow side never makes the other's memory grow without bound.
 * @module
 */
import net from "node:net";
import type { Bytes } from "../core/bytes.ts";
import { MissiveError } from "../core/errors.ts";
import { ioReason } from "../core/files.ts";
import { DEFAULT_LISTEN_FRAME, encodeFrame, FrameReader, MAX_FRAME_SIZE } from "./framing.ts";
import type { Listener, Transport, TransportControl, TransportLimits } from "./types.ts";

/** Bytes of received frames queued before reading pauses (plus at most one chunk). */
export const DEFAULT_QUEUE_BYTES = 1024 * 1024;
/** Connections a listener holds at once; more are refused (closed at once, logged). */
export const DEFAULT_MAX_CONNECTIONS = 1024;
/** How long `close` waits for the peer to close before it cuts the connection. */
const CLOSE_GRACE_MS = 2000;
const CONNECT_TIMEOUT_MS = 10_000;

/** Options of both sides. */
export interface TcpOptions {
  /** Largest frame accepted from the peer (connect: 64 MiB; listen: 1 MiB). */
  maxFrame?: number;
  /** Read-queue budget in bytes (default 1 MiB). */
  queueBytes?: number;
  /** Where a listener reports dropped peers and refused connections. */
  log?: (line: string) => void;
  /**
   * Drop the connection after this long with no bytes in either direction (a peer that
   * holds a slot and sends nothing, or trickles a frame). Default: never.
   */
  idleTimeoutMs?: number;
  /**
   * A frame over `maxFrame` waits, reading paused, until the consumer asks for the next
   * frame, and is refused only if it is still over the cap then (FrameReaderOptions).
   */
  holdOversize?: boolean;
}

/** Options of `listenTcp`. */
export interface TcpListenOptions extends TcpOptions {
  maxConnections?: number;
}

/** What a connection holds right now, for tests and diagnostics. */
export interface TcpStats {
  queuedFrames: number;
  queuedBytes: number;
  readingPaused: boolean;
  /** Bytes written but not yet taken by the kernel. */
  writeBuffered: number;
  waitingForDrain: boolean;
}

function checkQueueBytes(n: number): number {
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new MissiveError("usage", `tcp: the read-queue budget must be a positive integer`);
  }
  return n;
}

/**
 * Deno's node:net frees a closed socket's native state only when V8 collects the socket
 * object. A server whose JS heap stays small under a flood of short connections collects
 * rarely, and its RSS grows by about 1 KiB per connection (measured on Deno 2.9: +70 MiB
 * after 62,000 connections accepted and closed in 23 s; +12 MiB when collections run).
 * A listener therefore asks for a collection after every RECLAIM_EVERY closed
 * connections, at most once a second, where the runtime allows it (Deno); elsewhere
 * nothing happens.
 */
const RECLAIM_EVERY = 1024;
let collect: (() => void) | null | undefined;
let lastCollect = 0;

async function reclaim(): Promise<void> {
  if (collect === undefined) {
    collect = null;
    if ("Deno" in globalThis) {
      try {
        const v8 = await import("node:v8");
        const vm = await import("node:vm");
        v8.setFlagsFromString("--expose-gc");
        collect = vm.runInNewContext("gc") as () => void;
      } catch { /* not available: leave it to the runtime */ }
    }
  }
  const now = Date.now();
  if (collect && now - lastCollect >= 1000) {
    lastCollect = now;
    collect();
  }
}

/** `tcp://host:port`, with IPv6 hosts in brackets. */
export function tcpUrl(host: string, port: number): string {
  return `tcp://${host.includes(":") ? `[${host}]` : host}:${port}`;
}

/**
 * One TCP connection carrying frames. Its limits can change while it runs and it can be
 * cut at once (`TransportControl`): a relay holds a peer to small limits until it
 * authenticates, and drops a hostile peer without waiting for it.
 */
export class TcpTransport implements Transport, TransportControl {
  readonly remote: string;
  readonly #socket: net.Socket;
  readonly #reader: FrameReader;
  #queueBytes: number;
  #queue: Bytes[] = [];
  #queued = 0;
  #paused = false;
  #read: "reading" | "ended" | "failed" = "reading";
  #readError: MissiveError | undefined;
  #wake: (() => void) | undefined;
  #closing: Promise<void> | undefined;
  #sendChain: Promise<void> = Promise.resolve();
  #waitingForDrain = false;
  #corked = false;
  #iterated = false;

  constructor(socket: net.Socket, remote: string, options: TcpOptions = {}) {
    this.#socket = socket;
    this.remote = remote;
    this.#reader = new FrameReader(options.maxFrame ?? MAX_FRAME_SIZE, {
      holdOversize: options.holdOversize,
    });
    this.#queueBytes = checkQueueBytes(options.queueBytes ?? DEFAULT_QUEUE_BYTES);
    socket.setNoDelay(true);
    if (options.idleTimeoutMs !== undefined) {
      const ms = options.idleTimeoutMs;
      socket.setTimeout(ms);
      socket.on("timeout", () => {
        this.#failRead(new MissiveError("timeout", `${remote}: idle for ${ms / 1000} s`));
        socket.destroy();
      });
    }
    socket.on("data", (chunk: Uint8Array) => this.#onData(chunk));
    socket.on("end", () => this.#onEnd());
    socket.on("error", (e: Error) => this.#failRead(this.#networkError(e)));
    socket.on("close", () => {
      if (this.#read === "reading") {
        this.#failRead(new MissiveError("network", `${this.remote}: connection lost`));
      }
    });
  }

  /** The limits in force. */
  get limits(): TransportLimits {
    return { maxFrame: this.#reader.cap, queueBytes: this.#queueBytes };
  }

  /**
   * Changes the frame cap and the read-queue budget from now on (a frame already being
   * read keeps the cap it was checked against; a held one is decided on the next read).
   */
  setLimits(limits: Partial<TransportLimits>): void {
    if (limits.maxFrame !== undefined) this.#reader.cap = limits.maxFrame;
    if (limits.queueBytes !== undefined) this.#queueBytes = checkQueueBytes(limits.queueBytes);
    this.#resumeIfRoom();
  }

  /** Cuts the connection now (no FIN exchange): what is queued is dropped. */
  abort(reason = "connection aborted"): void {
    this.#failRead(new MissiveError("network", `${this.remote}: ${reason}`));
    this.#queue = [];
    this.#queued = 0;
    this.#socket.destroy();
    this.#notify();
  }

  #resumeIfRoom(): void {
    if (
      this.#paused && this.#read === "reading" && this.#reader.held === undefined &&
      this.#queued < this.#queueBytes / 2
    ) {
      this.#paused = false;
      this.#socket.resume();
    }
  }

  /** Queue and buffer sizes right now. */
  stats(): TcpStats {
    return {
      queuedFrames: this.#queue.length,
      queuedBytes: this.#queued,
      readingPaused: this.#paused,
      writeBuffered: this.#socket.writableLength,
      waitingForDrain: this.#waitingForDrain,
    };
  }

  #networkError(e: Error): MissiveError {
    const code = (e as NodeJS.ErrnoException).code;
    return new MissiveError("network", `${this.remote}: ${code ?? e.message}`, { cause: e });
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  #onData(chunk: Uint8Array): void {
    if (this.#read !== "reading" || this.#closing) return;
    let frames: Bytes[];
    try {
      frames = this.#reader.push(chunk);
    } catch (e) {
      this.#failRead(e as MissiveError);
      return;
    }
    this.#take(frames);
  }

  #take(frames: Bytes[]): void {
    for (const f of frames) {
      this.#queue.push(f);
      this.#queued += f.length;
    }
    // A held frame waits with reading paused: its bytes stay in the kernel.
    const full = this.#queued >= this.#queueBytes || this.#reader.held !== undefined;
    if (full && !this.#paused) {
      this.#paused = true;
      this.#socket.pause();
    }
    if (frames.length > 0 || this.#reader.held !== undefined) this.#notify();
  }

  /** The consumer wants a frame and none is queued: decide a held one now. */
  #releaseHeld(): void {
    if (this.#reader.held === undefined || this.#read !== "reading") return;
    try {
      this.#take(this.#reader.release());
    } catch (e) {
      this.#failRead(e as MissiveError);
      return;
    }
    this.#resumeIfRoom();
  }

  #onEnd(): void {
    if (this.#read !== "reading") return;
    try {
      this.#reader.end();
      this.#read = "ended";
    } catch (e) {
      this.#failRead(e as MissiveError);
      return;
    }
    this.#notify();
  }

  /** Stops reading for good: frames already queued are still delivered, then `error`. */
  #failRead(error: MissiveError): void {
    if (this.#read !== "reading") return;
    this.#read = "failed";
    this.#readError = error;
    this.#paused = true;
    this.#socket.pause();
    this.#notify();
  }

  async *frames(): AsyncGenerator<Uint8Array> {
    if (this.#iterated) throw new MissiveError("usage", "tcp: frames() can be read only once");
    this.#iterated = true;
    for (;;) {
      const frame = this.#queue.shift();
      if (frame) {
        this.#queued -= frame.length;
        this.#resumeIfRoom();
        yield frame;
        continue;
      }
      if (this.#closing) return;
      if (this.#reader.held !== undefined && this.#read === "reading") {
        this.#releaseHeld();
        continue;
      }
      if (this.#read === "failed") throw this.#readError!;
      if (this.#read === "ended") return;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  send(frame: Uint8Array): Promise<void> {
    // One write at a time: concurrent callers queue here, not in the socket's buffer.
    const run = this.#sendChain.then(() => this.#write(frame));
    this.#sendChain = run.catch(() => {});
    return run;
  }

  /**
   * Frames written in one turn of the event loop leave in one segment: the socket is
   * corked at the first write and uncorked on the next turn. Small frames sent back to
   * back (a session's DATA and DATA_ACK under a window) otherwise cost one syscall each.
   */
  #coalesce(socket: net.Socket): void {
    if (this.#corked) return;
    this.#corked = true;
    socket.cork();
    setImmediate(() => {
      this.#corked = false;
      if (!socket.destroyed) socket.uncork();
    });
  }

  async #write(frame: Uint8Array): Promise<void> {
    const data = encodeFrame(frame);
    const socket = this.#socket;
    if (this.#closing || socket.destroyed || !socket.writable) {
      throw new MissiveError("network", `${this.remote}: connection closed`);
    }
    this.#coalesce(socket);
    if (socket.write(data)) return;
    this.#waitingForDrain = true;
    try {
      await new Promise<void>((resolve, reject) => {
        const done = (error?: MissiveError) => {
          socket.off("drain", onDrain);
          socket.off("close", onClose);
          socket.off("error", onError);
          if (error) reject(error);
          else resolve();
        };
        const onDrain = () => done();
        const onClose = () =>
          done(new MissiveError("network", `${this.remote}: connection closed while sending`));
        const onError = (e: Error) => done(this.#networkError(e));
        socket.on("drain", onDrain);
        socket.on("close", onClose);
        socket.on("error", onError);
      });
    } finally {
      this.#waitingForDrain = false;
    }
  }

  /**
   * Sends FIN after what was written and resolves once it is flushed; the socket is
   * destroyed when the peer closes too, or after CLOSE_GRACE_MS (in the background).
   */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      const socket = this.#socket;
      this.#notify();
      if (socket.destroyed) return resolve();
      const timer = setTimeout(() => socket.destroy(), CLOSE_GRACE_MS);
      (timer as { unref?: () => void }).unref?.();
      socket.once("close", () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once("finish", () => resolve());
      // Reading resumes so the peer's FIN is seen; its data is discarded (#onData).
      socket.end();
      socket.resume();
    });
    return this.#closing;
  }
}

/** Connects to `host:port`; `network` if refused, `timeout` if it takes too long. */
export function connectTcp(
  host: string,
  port: number,
  options: TcpOptions & { timeoutMs?: number } = {},
): Promise<TcpTransport> {
  const url = tcpUrl(host, port);
  return new Promise((resolve, reject) => {
    // Half-open allowed on both sides: a peer that shuts down its sending side after its
    // last frame can still be answered (receipts); close() ends ours.
    const socket = net.connect({ host, port, allowHalfOpen: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new MissiveError("timeout", `${url}: no connection within the time limit`));
    }, options.timeoutMs ?? CONNECT_TIMEOUT_MS);
    socket.once("error", (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new MissiveError("network", `cannot connect to ${url}: ${ioReason(e)}`));
    });
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.removeAllListeners("error");
      resolve(new TcpTransport(socket, url, options));
    });
  });
}

/** A TCP server handing out one TcpTransport per connection. */
export class TcpListener implements Listener {
  readonly url: string;
  readonly #server: net.Server;
  readonly #pending: TcpTransport[] = [];
  readonly #open = new Set<TcpTransport>();
  #wake: (() => void) | undefined;
  #closing: Promise<void> | undefined;
  #closed = 0;

  private constructor(server: net.Server, url: string) {
    this.#server = server;
    this.url = url;
  }

  /** Binds `host:port` (port 0: any free port, see `url`). */
  static listen(host: string, port: number, options: TcpListenOptions = {}): Promise<TcpListener> {
    const max = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    const log = options.log ?? (() => {});
    const transportOptions = { ...options, maxFrame: options.maxFrame ?? DEFAULT_LISTEN_FRAME };
    return new Promise((resolve, reject) => {
      const server = net.createServer({ allowHalfOpen: true });
      let listener: TcpListener;
      server.on("connection", (socket: net.Socket) => {
        const remote = tcpUrl(socket.remoteAddress ?? "?", socket.remotePort ?? 0);
        socket.once("close", () => {
          if (++listener.#closed % RECLAIM_EVERY === 0) void reclaim();
        });
        if (listener.#closing || listener.#open.size >= max) {
          log(`refused ${remote}: ${listener.#closing ? "closing" : `${max} connections open`}`);
          socket.destroy();
          return;
        }
        const transport = new TcpTransport(socket, remote, transportOptions);
        listener.#open.add(transport);
        socket.once("close", () => listener.#open.delete(transport));
        listener.#pending.push(transport);
        const wake = listener.#wake;
        listener.#wake = undefined;
        wake?.();
      });
      server.once("error", (e: NodeJS.ErrnoException) => {
        reject(
          new MissiveError("network", `cannot listen on ${tcpUrl(host, port)}: ${ioReason(e)}`),
        );
      });
      server.listen({ host, port }, () => {
        const address = server.address() as net.AddressInfo;
        listener = new TcpListener(server, tcpUrl(address.address, address.port));
        server.removeAllListeners("error");
        server.on("error", (e: Error) => log(`${listener.url}: ${e.message}`));
        resolve(listener);
      });
    });
  }

  /** Connections that are open right now (accepted and not yet closed). */
  get openConnections(): number {
    return this.#open.size;
  }

  async *connections(): AsyncGenerator<Transport> {
    for (;;) {
      const next = this.#pending.shift();
      if (next) {
        yield next;
        continue;
      }
      if (this.#closing) return;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      const wake = this.#wake;
      this.#wake = undefined;
      wake?.();
      const stopped = new Promise<void>((resolve) => this.#server.close(() => resolve()));
      await Promise.all([...this.#open].map((t) => t.close()));
      await stopped;
    })();
    return this.#closing;
  }
}
