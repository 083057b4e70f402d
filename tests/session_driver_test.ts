/**
 * The session driver (session/session.ts) over the in-memory transport: messages both
 * ways with re-keys and an orderly close; request/response; a lost connection; refused
 * sends; read batches and their DATA_ACKs; the handshake deadline on a fake clock; and
 * the inbox byte budget, which stops the session reading the transport (back-pressure)
 * until the consumer drains it. The protocol itself is tested on the machine
 * (session_test.ts); these check what only the driver does.
 * @module
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { utf8 } from "../core/bytes.ts";
import { nobleProvider } from "../crypto/mod.ts";
import { isMissiveError } from "../core/errors.ts";
import { FakeClock } from "../session/clock.ts";
import { SessionMachine } from "../session/machine.ts";
import {
  type AcceptOptions,
  type ConnectOptions,
  peerCloseOf,
  type SessionEvent,
} from "../session/options.ts";
import { request, serveRequests } from "../session/request.ts";
import { Session } from "../session/session.ts";
import { memoryTransportPair } from "../transports/memory.ts";
import type { Transport } from "../transports/types.ts";
import { fixedIdentity } from "./helpers.ts";
import { typeOf } from "./session_proxy.ts";

const alice = await fixedIdentity("alice@example.org", 1);
const bob = await fixedIdentity("bob@example.org", 3);
const carol = await fixedIdentity("carol@example.org", 5);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** A transport that records the frames its session pulled, and how often it asked. */
function watched(t: Transport): { transport: Transport; pulled: string[]; asked(): number } {
  const pulled: string[] = [];
  let asked = 0;
  const transport: Transport = {
    remote: t.remote,
    send: (f) => t.send(f),
    close: () => t.close(),
    frames: () => {
      const it = t.frames()[Symbol.asyncIterator]();
      return {
        [Symbol.asyncIterator]: () => ({
          next: async () => {
            asked++;
            const r = await it.next();
            if (!r.done) pulled.push(typeOf(r.value));
            return r;
          },
          return: async () => (await it.return?.(), { done: true as const, value: undefined }),
        }),
      };
    },
  };
  return { transport, pulled, asked: () => asked };
}

/** A connected client (alice) and server (bob) over a memory pair, on a fake clock. */
async function pair(
  options: { client?: Partial<ConnectOptions>; server?: Partial<AcceptOptions> } = {},
  transports = memoryTransportPair(),
) {
  const clock = new FakeClock();
  const clientEvents: SessionEvent[] = [];
  const common = { clock, provider: nobleProvider };
  const [client, server] = await Promise.all([
    Session.connect(transports[0], alice, {
      ...common,
      peer: bob.card,
      onEvent: (e) => clientEvents.push(e),
      ...options.client,
    }),
    Session.accept(transports[1], bob, { ...common, trusted: [alice.card], ...options.server }),
  ]);
  return { clock, client, server, clientEvents };
}

/** Everything a session delivers, read in the background. */
function collect(session: Session): { got: string[]; done: Promise<unknown> } {
  const got: string[] = [];
  const done = (async () => {
    for await (const m of session.messages()) got.push(text(m));
  })().catch((e) => e);
  return { got, done };
}

describe("session driver", () => {
  it("messages both ways, in order, through re-keys; an orderly close", async () => {
    const p = await pair({ server: { rekeyAfter: 7 }, client: { window: 16 } });
    const atServer = collect(p.server);
    const atClient = collect(p.client);
    const up = Array.from({ length: 40 }, (_, i) => `up ${i}`);
    const down = Array.from({ length: 40 }, (_, i) => `down ${i}`);
    await Promise.all([
      ...up.map((l) => p.client.send(utf8(l))),
      ...down.map((l) => p.server.send(utf8(l))),
    ]);
    await p.client.close();
    await Promise.all([atServer.done, atClient.done, p.server.ended]);
    assert.deepEqual(atServer.got, up);
    assert.deepEqual(atClient.got, down);
    assert.equal(p.client.state, "closed");
    assert.equal(p.server.state, "closed");
    const events: string[] = [];
    for await (const e of p.client.events()) events.push(e.type);
    assert.equal(events[0], "handshake");
    assert.equal(events.at(-1), "close");
    assert.ok(events.filter((t) => t === "rekey").length >= 2, events.join());
    assert.deepEqual(p.clientEvents.map((e) => e.type), events);
    assert.equal(p.client.peer.address, "bob@example.org");
    assert.match(p.client.keyId ?? "", /^[0-9a-f]{16}$/);
  });

  it("request/response helper", async () => {
    const p = await pair();
    const served = serveRequests(p.server, (q) => utf8(`reading for ${text(q)}`));
    assert.equal(text(await request(p.client, utf8("sensor-1"))), "reading for sensor-1");
    assert.equal(text(await request(p.client, utf8("sensor-2"))), "reading for sensor-2");
    await p.client.close();
    await served;
  });

  it("a lost connection fails pending sends and the message stream with network", async () => {
    const [a, b] = memoryTransportPair();
    const p = await pair({ client: { window: 4 } }, [a, b]);
    const reading = collect(p.client);
    await b.close(); // the peer's end goes away: nothing more is read or acknowledged
    const sending = p.client.send(utf8("never acknowledged"));
    await assert.rejects(sending, (e) => isMissiveError(e, "network"));
    assert.ok(isMissiveError(await reading.done, "network"));
    assert.equal(p.client.state, "failed");
    await p.client.ended;
  });

  it("close is idempotent; send after close is refused; oversize is refused", async () => {
    const p = await pair({ client: { maxMessageSize: 10 } });
    await assert.rejects(p.client.send(new Uint8Array(11)), (e) => isMissiveError(e, "too-large"));
    const buffer = utf8("reused");
    const sent = p.client.send(buffer);
    buffer.fill(0); // the session took a copy
    const first = p.server.receive();
    await sent;
    assert.equal(text((await first)!), "reused");
    await Promise.all([p.client.close(), p.client.close()]);
    await p.client.close();
    assert.equal(p.client.state, "closed");
    await assert.rejects(p.client.send(utf8("late")), (e) => isMissiveError(e, "session"));
    await p.server.ended;
    assert.equal(p.server.state, "closed");
    assert.equal(await p.server.receive(), undefined);
  });

  it("refusals reject connect and accept with untrusted; the transport is closed", async () => {
    const [c, s] = await Promise.allSettled([
      Session.connect(memoryTransportPair()[0], alice, {}),
      Session.accept(memoryTransportPair()[1], bob, {}),
    ]);
    assert.ok(c.status === "rejected" && isMissiveError(c.reason, "usage"));
    assert.ok(s.status === "rejected" && isMissiveError(s.reason, "usage"));
    const refused = await Promise.allSettled([
      pair({ server: { trusted: [carol.card] } }),
    ]);
    assert.ok(refused[0].status === "rejected" && isMissiveError(refused[0].reason, "untrusted"));
  });

  it("a refused client gets the signed CLOSE even when the server's caller closes the transport as accept rejects", async () => {
    const [ct, memory] = memoryTransportPair();
    // A socket's way: a write takes a while, and closing drops what has not left yet.
    let closed = false;
    const st: Transport = {
      remote: memory.remote,
      frames: () => memory.frames(),
      send: async (frame) => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        if (!closed) await memory.send(frame);
      },
      close: () => {
        closed = true;
        return memory.close();
      },
    };
    const accepting = Session.accept(st, bob, { trusted: [carol.card] });
    // The relay's way: close the transport the moment accept fails.
    const served = accepting.catch(async (e) => {
      await st.close();
      return e;
    });
    const connecting = Session.connect(ct, alice, { peer: bob.card })
      .then(() => undefined, (e) => e);
    const [serverError, clientError] = await Promise.all([served, connecting]);
    assert.ok(isMissiveError(serverError, "untrusted"), String(serverError));
    assert.ok(isMissiveError(clientError, "untrusted"), String(clientError));
    // The client learned it from the server's signed CLOSE, not from a cut connection.
    assert.ok(peerCloseOf(clientError), `no peer CLOSE: ${clientError.message}`);
  });

  it("a window larger than one read batch: all delivered in order, several DATA_ACKs", async () => {
    const [a, b] = memoryTransportPair({ capacity: 1024 });
    const w = watched(a);
    const p = await pair({ client: { window: 256 } }, [w.transport, b]);
    const n = 600;
    const got: string[] = [];
    const reading = (async () => {
      for await (const m of p.server.messages()) {
        got.push(text(m));
        if (got.length === n) return;
      }
    })();
    await Promise.all(Array.from({ length: n }, (_, i) => p.client.send(utf8(`m${i}`))));
    await reading;
    assert.deepEqual(got, Array.from({ length: n }, (_, i) => `m${i}`));
    const acks = w.pulled.filter((t) => t === "DATA_ACK").length;
    assert.ok(acks >= n / 256 && acks <= n, `DATA_ACKs: ${acks}`);
    await p.client.close();
    await p.server.ended;
    assert.equal(p.server.state, "closed");
  });
});

describe("session driver: limits for a hostile peer", () => {
  it("handshakeTimeoutMs: a server that never answers fails connect with timeout", async () => {
    const clock = new FakeClock();
    const [a, b] = memoryTransportPair();
    const connecting = Session.connect(a, alice, {
      peer: bob.card,
      clock,
      provider: nobleProvider,
      handshakeTimeoutMs: 5_000,
    });
    const peer = b.frames()[Symbol.asyncIterator]();
    assert.equal(typeOf((await peer.next()).value), "HELLO"); // the deadline is set by now
    clock.advance(4_999);
    assert.equal(clock.pending, 2); // the handshake deadline and the idle timer
    clock.advance(1);
    await assert.rejects(connecting, (e) => isMissiveError(e, "timeout"));
    assert.equal(typeOf((await peer.next()).value), "CLOSE");
    assert.equal((await peer.next()).done, true); // and the transport was closed
    assert.equal(clock.pending, 0);
  });

  it("handshakeTimeoutMs: a client that stops after HELLO fails accept with timeout", async () => {
    const clock = new FakeClock();
    const [a, b] = memoryTransportPair();
    const accepting = Session.accept(b, bob, {
      trusted: [alice.card],
      clock,
      provider: nobleProvider,
    });
    // The client is a bare machine: it sends its HELLO and nothing more.
    const client = new SessionMachine({
      role: "client",
      identity: alice,
      provider: nobleProvider,
      peer: bob.card,
    });
    for (const o of await client.handle({ type: "start", now: clock.now() })) {
      if (o.type === "write") await a.send(o.frame);
    }
    const peer = a.frames()[Symbol.asyncIterator]();
    assert.equal(typeOf((await peer.next()).value), "HELLO_ACK");
    clock.advance(10_000);
    await assert.rejects(accepting, (e) => isMissiveError(e, "timeout"));
    assert.equal(typeOf((await peer.next()).value), "CLOSE");
  });

  it("maxInboxBytes: unread messages stop the reading until the consumer drains them", async () => {
    const [a, b] = memoryTransportPair({ capacity: 1024 });
    const w = watched(b);
    const p = await pair({ client: { window: 20 }, server: { maxInboxBytes: 3000 } }, [
      a,
      w.transport,
    ]);
    const size = 1000;
    const acked: boolean[] = [];
    const sends = Array.from({ length: 20 }, (_, i) => {
      acked.push(false);
      return p.client.send(new Uint8Array(size).fill(i)).then(() => void (acked[i] = true));
    });
    // 1000, 2000, 3000 bytes queued: still within the budget; the 4th goes over it.
    await Promise.all(sends.slice(0, 4));
    assert.deepEqual(w.pulled, ["HELLO", "ACK", "DATA", "DATA", "DATA", "DATA"]);
    assert.equal(w.asked(), 6, "the session stopped asking the transport for frames");
    assert.deepEqual(acked.slice(4), new Array(16).fill(false));
    // One message taken: 3000 bytes left, within the budget: one more frame is read.
    assert.equal((await p.server.receive())?.[0], 0);
    await sends[4];
    assert.equal(w.asked(), 7);
    assert.equal(acked[5], false);
    // Draining lets everything through, in order.
    const rest: number[] = [];
    for (let i = 1; i < 20; i++) rest.push((await p.server.receive())![0]);
    await Promise.all(sends);
    assert.deepEqual(rest, Array.from({ length: 19 }, (_, i) => i + 1));
    await p.client.close();
  });
});
