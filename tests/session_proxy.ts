/**
 * Test helpers for the session: a man-in-the-middle proxy between two memory transports
 * that records every frame (with its clear type) and applies a per-direction policy, and
 * a helper that lets async work settle without real waits.
 * @module
 */
import { decodeFrame, type Frame, messageTypeName } from "../session/messages.ts";
import type { Transport } from "../transports/types.ts";
import { memoryTransportPair } from "../transports/memory.ts";

export type Direction = "c2s" | "s2c";

/** What the proxy does with one frame: pass it, drop it, or send other frames instead. */
export type Action = "forward" | "drop" | Uint8Array[];

export interface Seen {
  direction: Direction;
  bytes: Uint8Array;
  frame?: Frame;
  type?: string;
}

/** A proxy between a client-side and a server-side transport. */
export class Proxy {
  readonly client: Transport;
  readonly server: Transport;
  readonly seen: Seen[] = [];
  policy: (s: Seen, index: number) => Action = () => "forward";
  readonly #toServer: Transport;
  readonly #toClient: Transport;

  constructor() {
    const [client, proxyA] = memoryTransportPair({ names: ["client", "proxy-a"] });
    const [proxyB, server] = memoryTransportPair({ names: ["proxy-b", "server"] });
    this.client = client;
    this.server = server;
    this.#toClient = proxyA;
    this.#toServer = proxyB;
    void this.#pump(proxyA, proxyB, "c2s");
    void this.#pump(proxyB, proxyA, "s2c");
  }

  /** Frames seen in one direction, by type name. */
  types(direction: Direction): string[] {
    return this.seen.filter((s) => s.direction === direction).map((s) => s.type ?? "?");
  }

  /** Injects raw bytes towards one side. */
  async inject(direction: Direction, bytes: Uint8Array): Promise<void> {
    await (direction === "c2s" ? this.#toServer : this.#toClient).send(bytes);
  }

  async close(): Promise<void> {
    await this.#toClient.close();
    await this.#toServer.close();
  }

  async #pump(from: Transport, to: Transport, direction: Direction): Promise<void> {
    try {
      let index = 0;
      for await (const bytes of from.frames()) {
        let frame: Frame | undefined;
        try {
          frame = decodeFrame(bytes, 1 << 24);
        } catch { /* not a frame: recorded as "?" */ }
        const seen: Seen = {
          direction,
          bytes,
          frame,
          type: frame ? messageTypeName(frame.type) : undefined,
        };
        this.seen.push(seen);
        const action = this.policy(seen, index++);
        if (action === "forward") await to.send(bytes);
        else if (action !== "drop") { for (const b of action) await to.send(b); }
      }
    } catch { /* a side closed */ }
    await to.close();
  }
}

/** Lets pending promises and immediates run (no timers, no real waiting). */
export async function settle(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((r) => setTimeout(r, 0));
}

/** Settles until `check` holds (bounded by rounds, not time). */
export async function until(check: () => boolean, what: string, rounds = 2000): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    if (check()) return;
    await new Promise<void>((r) => setImmediate(r));
  }
  throw new Error(`never happened: ${what}`);
}
