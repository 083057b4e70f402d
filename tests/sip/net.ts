/**
 * Test helpers for SIP: a fake clock, a raw UDP peer, and request builders.
 * @module
 */
import { createSocket, type Socket } from "node:dgram";
import { utf8 } from "../../core/bytes.ts";
import { armor, encodeEnvelope } from "../../envelope/mod.ts";
import type { Scheduler } from "../../transports/sip/_transaction.ts";
import { parseDatagram, type SipMessage } from "../../transports/sip/_message.ts";

/** A manual clock: timers fire only in advance(). */
export class FakeClock implements Scheduler {
  now = 0;
  #next = 0;
  #timers = new Map<number, { at: number; f: () => void }>();

  set(f: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#timers.set(id, { at: this.now + ms, f });
    return id;
  }

  clear(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  /** Runs every timer due within `ms`, in time order. */
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      let best: [number, { at: number; f: () => void }] | undefined;
      for (const e of this.#timers) if (e[1].at <= end && (!best || e[1].at < best[1].at)) best = e;
      if (!best) break;
      this.#timers.delete(best[0]);
      this.now = best[1].at;
      best[1].f();
    }
    this.now = end;
  }
}

/** A test envelope (the transport does not look inside). */
export function testEnvelope(seed: number): Uint8Array {
  return encodeEnvelope({
    protocolType: 7,
    protocolVersion: 1,
    payload: utf8(`message ${seed}`),
  });
}

/** A raw MESSAGE request as text lines joined by CRLF. */
export function rawMessage(
  port: number,
  options: {
    callId?: string;
    cseq?: number;
    branch?: string;
    body?: string;
    type?: string;
    method?: string;
    extra?: string[];
    user?: string;
  } = {},
): Uint8Array {
  const body = options.body ?? armor(testEnvelope(options.cseq ?? 1));
  const method = options.method ?? "MESSAGE";
  const lines = [
    `${method} sip:${options.user ?? "bob"}@127.0.0.1:${port} SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${port + 1};branch=${options.branch ?? "z9hG4bKtest1"};rport`,
    `Max-Forwards: 70`,
    `From: <sip:alice@127.0.0.1>;tag=a1`,
    `To: <sip:bob@127.0.0.1:${port}>`,
    `Call-ID: ${options.callId ?? "call-1"}`,
    `CSeq: ${options.cseq ?? 1} ${method}`,
    ...(options.type === "" ? [] : [`Content-Type: ${options.type ?? "application/missive"}`]),
    ...(options.extra ?? []),
    `Content-Length: ${utf8(body).length}`,
    "",
    body,
  ];
  return utf8(lines.join("\r\n"));
}

/** A UDP socket on 127.0.0.1 that collects parsed datagrams. */
export class RawUdp {
  readonly received: SipMessage[] = [];
  #waiters: (() => void)[] = [];
  private constructor(readonly socket: Socket, readonly port: number) {
    socket.on("message", (data: Uint8Array) => {
      this.received.push(parseDatagram(data));
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  static async open(): Promise<RawUdp> {
    const socket = createSocket("udp4");
    await new Promise<void>((r) => socket.bind(0, "127.0.0.1", () => r()));
    return new RawUdp(socket, socket.address().port);
  }

  send(bytes: Uint8Array, port: number): Promise<void> {
    return new Promise((resolve, reject) =>
      this.socket.send(bytes, port, "127.0.0.1", (e) => (e ? reject(e) : resolve()))
    );
  }

  /** Waits until at least `n` datagrams arrived (bounded by `ms`). */
  async waitFor(n: number, ms = 5000): Promise<SipMessage[]> {
    const deadline = Date.now() + ms;
    while (this.received.length < n) {
      if (Date.now() > deadline) {
        throw new Error(`waited for ${n} datagrams, got ${this.received.length}`);
      }
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        setTimeout(r, 50);
      });
    }
    return this.received;
  }

  close(): Promise<void> {
    return new Promise((r) => this.socket.close(() => r()));
  }
}
