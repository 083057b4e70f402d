/**
 * Test harness for the session state machine (session/machine.ts), with no event loop
 * and no transport: a `Wire` joins a client and a server machine through a
 * man-in-the-middle policy that records every frame (with its clear type) and may drop,
 * replace, reorder or inject frames. Time is a number the test moves; the machines'
 * timers are kept here and fired in order by `advance`. Every step awaits the machines'
 * `handle` calls and nothing else.
 * @module
 */
import type { Bytes } from "../core/bytes.ts";
import { nobleProvider } from "../crypto/mod.ts";
import type { MissiveError } from "../core/errors.ts";
import type { Identity } from "../keys/identity.ts";
import {
  type MachineOptions,
  type SessionInput,
  SessionMachine,
  type SessionOutput,
  type TimerName,
} from "../session/machine.ts";
import { decodeFrame, type Frame, messageTypeName } from "../session/messages.ts";
import type { SessionEvent } from "../session/options.ts";

export type Side = "client" | "server";
export type Direction = "c2s" | "s2c";

/** What the proxy does with one frame: pass it, drop it, or send other frames instead. */
export type Action = "forward" | "drop" | Uint8Array[];

export interface Seen {
  direction: Direction;
  bytes: Uint8Array;
  frame?: Frame;
  type?: string;
}

/** The start of every test's clock. */
export const T0 = 1_700_000_000_000;

type Input = SessionInput extends infer I ? I extends unknown ? Omit<I, "now"> : never : never;

/** The name of a frame's type, or "?" when it does not decode. */
export function typeOf(bytes: Uint8Array): string {
  try {
    return messageTypeName(decodeFrame(bytes, 1 << 24).type);
  } catch {
    return "?";
  }
}

/** One end: its machine and everything it asked for. */
export class End {
  readonly machine: SessionMachine;
  readonly outputs: SessionOutput[] = [];
  readonly delivered: string[] = [];
  readonly events: SessionEvent[] = [];
  /** Its timers, by name: when each is due. */
  readonly timers = new Map<TimerName, number>();
  /** Sends taken, acknowledged, and the error the rest failed with. */
  sent = 0;
  acknowledged = 0;
  failed?: MissiveError;
  ended?: { state: "closed" | "failed"; error?: MissiveError };

  constructor(options: MachineOptions) {
    this.machine = new SessionMachine(options);
  }

  /** The frames this end wrote, in order, from `outputs`. */
  get writes(): Bytes[] {
    return this.outputs.flatMap((o) => (o.type === "write" ? [o.frame] : []));
  }

  /** Records what one `handle` returned (the harness routes the writes). */
  record(out: SessionOutput[]): void {
    for (const o of out) {
      this.outputs.push(o);
      switch (o.type) {
        case "deliver":
          this.delivered.push(new TextDecoder().decode(o.data));
          break;
        case "acknowledged":
          this.acknowledged += o.count;
          break;
        case "sends-failed":
          this.failed ??= o.error;
          break;
        case "event":
          this.events.push(o.event);
          break;
        case "set-timer":
          this.timers.set(o.timer, o.at);
          break;
        case "clear-timer":
          this.timers.delete(o.timer);
          break;
        case "end":
          this.ended = { state: o.state, error: o.error };
          this.timers.clear();
          break;
      }
    }
  }
}

/** Options of both ends, beyond role, identity and crypto. */
type EndOptions = Omit<MachineOptions, "role" | "identity" | "provider">;

/** A client and a server machine joined through a proxy. */
export class Wire {
  now: number;
  readonly client: End;
  readonly server: End;
  readonly seen: Seen[] = [];
  policy: (s: Seen, index: number) => Action = () => "forward";
  readonly #queued: Record<Side, Uint8Array[]> = { client: [], server: [] };
  #counts: Record<Direction, number> = { c2s: 0, s2c: 0 };

  constructor(
    client: { identity: Identity } & EndOptions,
    server: { identity: Identity } & EndOptions,
    now = T0,
  ) {
    this.now = now;
    this.client = new End({ provider: nobleProvider, ...client, role: "client" });
    this.server = new End({ provider: nobleProvider, ...server, role: "server" });
  }

  end(side: Side): End {
    return side === "client" ? this.client : this.server;
  }

  /** Starts both ends (the server first, as a listener would) and runs the handshake. */
  async start(): Promise<void> {
    await this.input("server", { type: "start" });
    await this.input("client", { type: "start" });
    await this.run();
  }

  /** Feeds one input to one end and routes its writes through the proxy. */
  async input(side: Side, input: Input): Promise<SessionOutput[]> {
    const end = this.end(side);
    const out = await end.machine.handle({ ...input, now: this.now } as SessionInput);
    if (input.type === "send") end.sent++;
    end.record(out);
    const direction: Direction = side === "client" ? "c2s" : "s2c";
    for (const o of out) if (o.type === "write") this.#route(direction, o.frame);
    return out;
  }

  #route(direction: Direction, bytes: Bytes): void {
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
    const action = this.policy(seen, this.#counts[direction]++);
    const to = direction === "c2s" ? this.#queued.server : this.#queued.client;
    if (action === "forward") to.push(bytes);
    else if (action !== "drop") to.push(...action);
  }

  /** Puts raw bytes on the wire towards one side (not seen by the policy). */
  inject(direction: Direction, bytes: Uint8Array): void {
    (direction === "c2s" ? this.#queued.server : this.#queued.client).push(bytes);
  }

  /**
   * Delivers frames until none is on the wire: each side reads all frames waiting for it
   * (one batch), then gets `flush`, as the driver does after each read.
   */
  async run(): Promise<void> {
    for (let rounds = 0; rounds < 100_000; rounds++) {
      let moved = false;
      for (const side of ["server", "client"] as const) {
        const batch = this.#queued[side].splice(0);
        if (batch.length === 0) continue;
        moved = true;
        for (const bytes of batch) await this.input(side, { type: "frame", bytes });
        await this.input(side, { type: "flush" });
      }
      if (!moved) return;
    }
    throw new Error("the wire never went quiet");
  }

  /** One end sends one text message; the wire runs. */
  async send(side: Side, text: string): Promise<void> {
    await this.input(side, { type: "send", data: new TextEncoder().encode(text) });
    await this.run();
  }

  /** One end closes; the wire runs. */
  async close(side: Side): Promise<void> {
    await this.input(side, { type: "close" });
    await this.run();
  }

  /** Moves time forward by `ms`, firing each timer that falls due at its own time. */
  async advance(ms: number): Promise<void> {
    const target = this.now + ms;
    for (;;) {
      let next: { side: Side; timer: TimerName; at: number } | undefined;
      for (const side of ["client", "server"] as const) {
        for (const [timer, at] of this.end(side).timers) {
          if (at <= target && (!next || at < next.at)) next = { side, timer, at };
        }
      }
      if (!next) break;
      this.end(next.side).timers.delete(next.timer);
      this.now = Math.max(this.now, next.at);
      await this.input(next.side, { type: "timer", timer: next.timer });
      await this.run();
    }
    this.now = target;
  }

  /** Frames seen in one direction, by type name. */
  types(direction: Direction): string[] {
    return this.seen.filter((s) => s.direction === direction).map((s) => s.type ?? "?");
  }
}
