import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { equalBytes, fromHex, utf8 } from "../core/bytes.ts";
import { readFileSync, rmSync } from "node:fs";
import { connect as tcpConnect } from "node:net";
import { armor, encodeEnvelope } from "../envelope/mod.ts";
import { MissiveError } from "../core/errors.ts";
import { connectSip, listenSip } from "../transports/sip/mod.ts";
import {
  header,
  MAX_SIP_BODY,
  MAX_SIP_HEAD,
  MAX_SIP_HEADERS,
  MAX_SIP_LINE,
  parseDatagram,
  serializeMessage,
  type SipResponse,
} from "../transports/sip/_message.ts";
import { SipStreamReader } from "../transports/sip/_stream.ts";
import { ClientTransaction } from "../transports/sip/_transaction.ts";
import { responseTo } from "../transports/sip/_answer.ts";
import { formatSipUri, parseSipUri, parseVia } from "../transports/sip/_uri.ts";
import type { Transport } from "../transports/types.ts";
import { FakeClock, rawMessage, RawUdp, testEnvelope } from "./sip/net.ts";
import {
  freePort,
  sippDir,
  sippTrace,
  startKamailio,
  startSipp,
  stopKamailio,
} from "./sip/peers.ts";

const code = (c: string) => (e: unknown) => e instanceof MissiveError && e.code === c;
// Short enough that nothing waits long, long enough that a loaded machine does not hit Timer F.
const FAST = { t1: 100, t2: 400 };
const VERY_FAST = { t1: 10, t2: 40 };

async function first<T>(it: AsyncIterable<T>): Promise<T> {
  for await (const x of it) return x;
  throw new Error("iterator ended");
}

async function take(t: Transport, n: number): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  if (n === 0) return out;
  for await (const f of t.frames()) {
    out.push(f);
    if (out.length === n) break;
  }
  return out;
}

describe("sip message parser", () => {
  const good = rawMessage(5070);

  it("parses a MESSAGE with compact headers and serializes it back", () => {
    const compact = utf8(
      "MESSAGE sip:bob@h SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\nf: <sip:a@h>;tag=1\r\n" +
        "t: <sip:bob@h>\r\ni: x\r\nCSeq: 1 MESSAGE\r\nc: text/plain\r\nl: 2\r\n\r\nhi",
    );
    const m = parseDatagram(compact);
    assert.equal(m.kind, "request");
    assert.equal(header(m.headers, "Call-ID"), "x");
    assert.equal(header(m.headers, "content-type"), "text/plain");
    assert.equal(new TextDecoder().decode(m.body), "hi");
    const again = parseDatagram(serializeMessage(m));
    assert.deepEqual(again, m);
  });

  it("parses responses and folded header lines", () => {
    const r = parseDatagram(
      utf8("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\n ;branch=z9hG4bKx\r\n\r\n"),
    );
    assert.equal((r as SipResponse).status, 200);
    assert.equal(parseVia(header(r.headers, "Via")!).params.get("branch"), "z9hG4bKx");
  });

  it("refuses every truncation of a request with a typed error", () => {
    let failures = 0;
    for (let n = 0; n < good.length; n++) {
      try {
        parseDatagram(good.subarray(0, n));
      } catch (e) {
        assert.ok(e instanceof MissiveError, `cut at ${n}: ${e}`);
        assert.ok(e.code === "malformed" || e.code === "too-large");
        failures++;
      }
    }
    assert.equal(failures, good.length); // every prefix is short of its Content-Length
  });

  it("refuses garbage, bit flips in the start line, and binary headers", () => {
    for (
      const bad of ["", "hello\r\n\r\n", "MESSAGE sip:x SIP/3.0\r\n\r\n", "SIP/2.0 99 x\r\n\r\n"]
    ) {
      assert.throws(() => parseDatagram(utf8(bad)), code("malformed"), bad);
    }
    assert.throws(
      () => parseDatagram(utf8("MESSAGE sip:x SIP/2.0\r\nno colon\r\n\r\n")),
      code("malformed"),
    );
    assert.throws(
      () => parseDatagram(new Uint8Array([0xff, 0xfe, 13, 10, 13, 10])),
      code("malformed"),
    );
    for (let i = 0; i < 200; i++) {
      const flipped = good.slice();
      flipped[i % 40] ^= 1 << (i % 8);
      try {
        parseDatagram(flipped);
      } catch (e) {
        assert.ok(e instanceof MissiveError, String(e));
      }
    }
  });

  it("enforces the caps: Content-Length, header count, line length, head size", () => {
    const cl = utf8(`MESSAGE sip:x SIP/2.0\r\nContent-Length: ${MAX_SIP_BODY + 1}\r\n\r\n`);
    assert.throws(() => parseDatagram(cl), code("too-large"));
    assert.throws(
      () => parseDatagram(utf8("MESSAGE sip:x SIP/2.0\r\nl: 99999999999\r\n\r\n")),
      code("malformed"),
    );
    assert.throws(
      () => parseDatagram(utf8("MESSAGE sip:x SIP/2.0\r\nl: 1\r\nl: 2\r\n\r\nab")),
      code("malformed"),
    );
    const many = "MESSAGE sip:x SIP/2.0\r\n" + "X-A: 1\r\n".repeat(MAX_SIP_HEADERS + 1) + "\r\n";
    assert.throws(() => parseDatagram(utf8(many)), code("too-large"));
    const long = `MESSAGE sip:x SIP/2.0\r\nX-A: ${"a".repeat(MAX_SIP_LINE)}\r\n\r\n`;
    assert.throws(() => parseDatagram(utf8(long)), code("too-large"));
    const noEnd = utf8("MESSAGE sip:x SIP/2.0\r\n" + "X: y\r\n".repeat(MAX_SIP_HEAD / 6));
    assert.throws(() => parseDatagram(noEnd), code("too-large"));
  });

  it("splits a TCP stream on Content-Length, across any chunking", () => {
    const a = rawMessage(1, { cseq: 1 });
    const b = rawMessage(1, { cseq: 2 });
    const stream = new Uint8Array([...utf8("\r\n\r\n"), ...a, ...b]);
    for (const size of [1, 7, 100, stream.length]) {
      const reader = new SipStreamReader();
      const got = [];
      for (let i = 0; i < stream.length; i += size) {
        got.push(...reader.push(stream.subarray(i, i + size)));
      }
      assert.equal(got.length, 2);
      assert.equal(header(got[1].headers, "CSeq"), "2 MESSAGE");
      assert.equal(reader.buffered, 0);
    }
  });

  it("fails a TCP stream without Content-Length, oversize or endless, and stays failed", () => {
    const noLength = new SipStreamReader();
    assert.throws(
      () => noLength.push(utf8("MESSAGE sip:x SIP/2.0\r\nVia: a\r\n\r\n")),
      code("malformed"),
    );
    assert.throws(() => noLength.push(rawMessage(1)), code("malformed"));
    const big = new SipStreamReader();
    assert.throws(
      () => big.push(utf8(`MESSAGE sip:x SIP/2.0\r\nContent-Length: ${MAX_SIP_BODY + 1}\r\n\r\n`)),
      code("too-large"),
    );
    const endless = new SipStreamReader();
    assert.throws(() => {
      for (let i = 0; i < 100; i++) endless.push(utf8("X".repeat(1024)));
    }, code("too-large"));
  });
});

describe("sip URIs", () => {
  it("parses user, host, port and transport, and formats them back", () => {
    const u = parseSipUri("sip:bob@127.0.0.1:5070;transport=TCP;lr");
    assert.deepEqual(u, {
      user: "bob",
      host: "127.0.0.1",
      port: 5070,
      transport: "tcp",
      transportPinned: true,
      params: [["lr", undefined]],
    });
    assert.equal(formatSipUri(u), "sip:bob@127.0.0.1:5070;transport=tcp;lr");
    assert.deepEqual(parseSipUri("sip:proxy.example.org"), {
      user: undefined,
      host: "proxy.example.org",
      port: undefined,
      transport: "udp",
      transportPinned: false,
      params: [],
    });
    // A pinned UDP stays pinned when formatted (SPEC §21.7.4); the default is left out.
    assert.equal(formatSipUri(parseSipUri("sip:bob@h;transport=UDP")), "sip:bob@h;transport=udp");
    assert.equal(formatSipUri(parseSipUri("sip:bob@h")), "sip:bob@h");
  });

  it("refuses bad URIs with a usage error", () => {
    for (
      const bad of [
        "tcp://x",
        "sips:bob@h",
        "sip:bob@",
        "sip:bob@h:99999",
        "sip:bob@h;transport=sctp",
        "sip:b b@h",
      ]
    ) {
      assert.throws(() => parseSipUri(bad), code("usage"), bad);
    }
  });
});

describe("sip client transaction timers (fake clock)", () => {
  it("retransmits on Timer E doubling from T1 to T2, then times out on Timer F", async () => {
    const clock = new FakeClock();
    const sends: number[] = [];
    const t = new ClientTransaction(() => sends.push(clock.now), {
      reliable: false,
      timers: { t1: 500, t2: 4000 },
      clock,
      what: "MESSAGE",
    });
    const outcome = t.done.then(() => "answered", (e) => e);
    clock.advance(40_000);
    assert.deepEqual(sends, [0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]);
    const e = await outcome;
    assert.ok(code("timeout")(e), String(e));
    assert.match((e as Error).message, /Timer F/);
  });

  it("spaces retransmissions by T2 after a provisional, stops on a final", async () => {
    const clock = new FakeClock();
    const sends: number[] = [];
    const t = new ClientTransaction(() => sends.push(clock.now), {
      reliable: false,
      timers: { t1: 500, t2: 4000 },
      clock,
      what: "MESSAGE",
    });
    clock.advance(600);
    t.receive({
      kind: "response",
      status: 100,
      reason: "Trying",
      headers: [],
      body: new Uint8Array(),
    });
    clock.advance(9000);
    t.receive({ kind: "response", status: 200, reason: "OK", headers: [], body: new Uint8Array() });
    clock.advance(60_000);
    assert.deepEqual(sends, [0, 500, 4600, 8600]);
    assert.equal((await t.done).status, 200);
  });

  it("does not retransmit over TCP", () => {
    const clock = new FakeClock();
    let sends = 0;
    const t = new ClientTransaction(() => sends++, {
      reliable: true,
      timers: { t1: 500, t2: 4000 },
      clock,
      what: "MESSAGE",
    });
    t.done.catch(() => {});
    clock.advance(40_000);
    assert.equal(sends, 1);
  });
});

describe("sip user agent on 127.0.0.1", () => {
  for (const [transport, host] of [["udp", "127.0.0.1"], ["tcp", "127.0.0.1"]]) {
    it(`round-trips MESSAGEs both ways over ${transport} on ${host}`, async () => {
      const listener = await listenSip(`sip:bob@${host}:0`, { timers: FAST });
      const port = Number(/:(\d+)$/.exec(listener.url)![1]);
      const suffix = transport === "tcp" ? ";transport=tcp" : "";
      const alice = await connectSip(`sip:bob@${host}:${port}${suffix}`, { timers: FAST });
      try {
        await alice.send(testEnvelope(1));
        await alice.send(testEnvelope(2));
        const peer = await first(listener.connections());
        assert.equal(peer.remote.replace(/:\d+$/, ""), `sip:missive@${host}`);
        const got = await take(peer, 2);
        assert.ok(equalBytes(got[0], testEnvelope(1)));
        assert.ok(equalBytes(got[1], testEnvelope(2)));
        await peer.send(testEnvelope(3)); // a receipt, back to alice's Contact
        const [back] = await take(alice, 1);
        assert.ok(equalBytes(back, testEnvelope(3)));
      } finally {
        await alice.close();
        await listener.close();
      }
    });
  }

  it("answers a retransmission with the same response and delivers once", async () => {
    const listener = await listenSip("sip:bob@127.0.0.1:0", { timers: FAST });
    const port = Number(/:(\d+)$/.exec(listener.url)![1]);
    const raw = await RawUdp.open();
    try {
      const one = rawMessage(port, { cseq: 1 });
      for (let i = 0; i < 3; i++) await raw.send(one, port);
      await raw.send(rawMessage(port, { cseq: 2, branch: "z9hG4bKtest2" }), port);
      const responses = (await raw.waitFor(4)) as SipResponse[];
      assert.deepEqual(responses.map((r) => r.status), [200, 200, 200, 200]);
      const tags = responses.slice(0, 3).map((r) => header(r.headers, "To"));
      assert.equal(new Set(tags).size, 1);
      const peer = await first(listener.connections());
      const got = await take(peer, 2);
      assert.ok(equalBytes(got[0], testEnvelope(1)));
      assert.ok(equalBytes(got[1], testEnvelope(2))); // not the duplicate of the first
    } finally {
      await raw.close();
      await listener.close();
    }
  });

  it("replies to a peer without Contact at its source address", async () => {
    const listener = await listenSip("sip:bob@127.0.0.1:0", { timers: FAST });
    const port = Number(/:(\d+)$/.exec(listener.url)![1]);
    const raw = await RawUdp.open();
    try {
      const request = new TextDecoder().decode(rawMessage(port, { callId: "nc" }))
        .replace("From: <sip:alice@127.0.0.1>;tag=a1", "From: <tel:+15551234>;tag=a1");
      await raw.send(utf8(request), port);
      const peer = await first(listener.connections());
      assert.equal((await take(peer, 1)).length, 1);
      const sending = peer.send(testEnvelope(9));
      const [, back] = await raw.waitFor(2); // our 200, then the MESSAGE
      assert.equal(back.kind, "request");
      assert.equal((back as { uri: string }).uri, `sip:127.0.0.1:${raw.port}`);
      assert.equal(header(back.headers, "Call-ID"), "nc");
      await raw.send(serializeMessage(responseTo(back, { status: 200, reason: "OK" }, "t")), port);
      await sending;
    } finally {
      await raw.close();
      await listener.close();
    }
  });

  it("answers bad requests with 4xx and keeps serving", async () => {
    const listener = await listenSip("sip:bob@127.0.0.1:0", { timers: FAST });
    const port = Number(/:(\d+)$/.exec(listener.url)![1]);
    const raw = await RawUdp.open();
    const cases: [Uint8Array, number][] = [
      [rawMessage(port, { callId: "c1", type: "image/png" }), 415],
      [rawMessage(port, { callId: "c2", body: "not an envelope" }), 400],
      [rawMessage(port, { callId: "c3", body: "" }), 400],
      [rawMessage(port, { callId: "c4", method: "INVITE" }), 405],
      [rawMessage(port, { callId: "c5", method: "OPTIONS", body: "" }), 200],
      [rawMessage(port, { callId: "c6", user: "carol" }), 404],
      [rawMessage(port, { callId: "c7", extra: ["Require: 100rel"] }), 420],
      [
        utf8(
          new TextDecoder().decode(rawMessage(port, { callId: "c8" })).replace(
            /Content-Length: \d+/,
            "Content-Length: 99999",
          ),
        ),
        400,
      ],
      [
        utf8(
          new TextDecoder().decode(rawMessage(port, { callId: "c9" })).replace(
            /CSeq: 1 MESSAGE/,
            "CSeq: 1 INFO",
          ),
        ),
        400,
      ],
      [rawMessage(port, { callId: "c10", body: "x", type: "text/plain" }), 400],
      [rawMessage(port, { callId: "c11", type: "text/plain" }), 200],
    ];
    try {
      for (const [bytes] of cases) await raw.send(bytes, port);
      await raw.send(utf8("garbage\r\n\r\n"), port); // dropped without an answer
      await raw.send(new Uint8Array([0xd9, 0xd9, 0xf7]), port);
      const got = (await raw.waitFor(cases.length)) as SipResponse[];
      const byCall = new Map(got.map((r) => [header(r.headers, "Call-ID"), r.status]));
      cases.forEach((c, i) => assert.equal(byCall.get(`c${i + 1}`), c[1], `case c${i + 1}`));
      const options = got.find((r) => header(r.headers, "Call-ID") === "c5")!;
      assert.match(header(options.headers, "Allow")!, /MESSAGE/);
      const peer = await first(listener.connections());
      assert.equal((await take(peer, 1)).length, 1); // c11 still got through
    } finally {
      await raw.close();
      await listener.close();
    }
  });

  it("over TCP, drops garbage and oversize lengths (413), logs them, and keeps serving", async () => {
    const logs: string[] = [];
    const listener = await listenSip("sip:bob@127.0.0.1:0", {
      timers: FAST,
      log: (line) => logs.push(line),
    });
    const port = Number(/:(\d+)$/.exec(listener.url)![1]);
    const exchange = (bytes: Uint8Array) =>
      new Promise<string>((resolve, reject) => {
        const socket = tcpConnect({ host: "127.0.0.1", port }, () => socket.write(bytes));
        let text = "";
        socket.on("data", (d: Uint8Array) => (text += new TextDecoder().decode(d)));
        socket.on("close", () => resolve(text));
        socket.on("error", reject);
      });
    try {
      assert.equal(await exchange(utf8("\x00\x01 garbage\r\n\r\n")), "");
      const oversize = new TextDecoder().decode(rawMessage(port, { callId: "big" }))
        .replace(/Content-Length: \d+/, `Content-Length: ${MAX_SIP_BODY + 1}`);
      assert.match(await exchange(utf8(oversize)), /^SIP\/2\.0 413 /);
      assert.match(
        await exchange(utf8("MESSAGE sip:bob@x SIP/2.0\r\nVia: SIP/2.0/TCP x\r\n\r\n")),
        /^SIP\/2\.0 400 /,
      );
      assert.equal(logs.length, 3, logs.join("\n"));
      const alice = await connectSip(`sip:bob@127.0.0.1:${port};transport=tcp`, { timers: FAST });
      await alice.send(testEnvelope(5));
      await alice.close();
      const peer = await first(listener.connections());
      assert.ok(equalBytes((await take(peer, 1))[0], testEnvelope(5)));
    } finally {
      await listener.close();
    }
  });

  it("a full peer table drops the least recent idle peer, else answers 503", async () => {
    for (const idleMs of [0, 3_600_000]) {
      const listener = await listenSip("sip:bob@127.0.0.1:0", {
        timers: FAST,
        maxPeers: 2,
        peerIdleMs: idleMs,
      });
      const port = Number(/:(\d+)$/.exec(listener.url)![1]);
      const senders = await Promise.all(
        [1, 2, 3].map((i) =>
          connectSip(`sip:bob@127.0.0.1:${port}`, { timers: FAST, fromUser: `u${i}` })
        ),
      );
      try {
        const peers = listener.connections()[Symbol.asyncIterator]();
        await senders[0].send(testEnvelope(1));
        const p1 = (await peers.next()).value as Transport;
        await take(p1, 1);
        await senders[1].send(testEnvelope(2));
        if (idleMs === 0) {
          await senders[2].send(testEnvelope(3)); // u1 is dropped to make room
          assert.equal((await take(p1, 1)).length, 0); // its frames() ended
          assert.match(((await peers.next()).value as Transport).remote, /^sip:u2@/);
          assert.match(((await peers.next()).value as Transport).remote, /^sip:u3@/);
        } else {
          await assert.rejects(senders[2].send(testEnvelope(3)), /503 Service Unavailable/);
        }
      } finally {
        await Promise.all(senders.map((t) => t.close()));
        await listener.close();
      }
    }
  });

  it("times out on Timer F when nobody answers, after retransmitting", async () => {
    // On a fake clock: with real 10 ms timers, a loaded machine that stalls the process
    // for the 640 ms of Timer F saw fewer than three transmissions.
    const silent = await RawUdp.open();
    const clock = new FakeClock();
    const alice = await connectSip(`sip:bob@127.0.0.1:${silent.port}`, {
      timers: VERY_FAST,
      clock,
    });
    try {
      const outcome = alice.send(testEnvelope(1)).then(() => "answered", (e) => e);
      await silent.waitFor(1, 60_000);
      clock.advance(VERY_FAST.t1); // Timer E: the first retransmission
      await silent.waitFor(2, 60_000);
      clock.advance(2 * VERY_FAST.t1); // Timer E doubled: the second
      await silent.waitFor(3, 60_000);
      clock.advance(64 * VERY_FAST.t1); // past Timer F
      const e = await outcome;
      assert.ok(code("timeout")(e), String(e));
      assert.match((e as Error).message, /Timer F/);
      const branches = silent.received.map((m) =>
        parseVia(header(m.headers, "Via")!).params.get("branch")
      );
      assert.equal(new Set(branches).size, 1);
    } finally {
      await alice.close();
      await silent.close();
    }
  });

  it("reports a 4xx final response as a network error with the status line", async () => {
    const listener = await listenSip("sip:carol@127.0.0.1:0", { timers: FAST });
    const port = Number(/:(\d+)$/.exec(listener.url)![1]);
    const alice = await connectSip(`sip:bob@127.0.0.1:${port}`, { timers: FAST });
    try {
      await assert.rejects(
        alice.send(testEnvelope(1)),
        (e) => code("network")(e) && /404 Not Found/.test(String(e)),
      );
    } finally {
      await alice.close();
      await listener.close();
    }
  });

  it("sends a request over 1300 bytes over TCP; a URI pinning ;transport=udp refuses it", async () => {
    const listener = await listenSip("sip:bob@127.0.0.1:0", { timers: FAST });
    const port = Number(/:(\d+)$/.exec(listener.url)![1]);
    const big = encodeEnvelope({
      protocolType: 7,
      protocolVersion: 1,
      payload: new Uint8Array(4000),
    });
    const small = testEnvelope(9);
    const plain = await connectSip(`sip:bob@127.0.0.1:${port}`, { timers: FAST });
    const pinned = await connectSip(`sip:bob@127.0.0.1:${port};transport=udp`, { timers: FAST });
    try {
      await assert.rejects(
        pinned.send(big),
        (e) =>
          code("too-large")(e) && /pins ;transport=udp/.test(String(e)) &&
          /transport=tcp/.test(String(e)),
      );
      await pinned.send(small); // small requests still go over the pinned UDP
      await plain.send(big); // RFC 3261 §18.1.1: over TCP, same host and port
      const peers = listener.connections()[Symbol.asyncIterator]();
      const got: Uint8Array[] = [];
      for (let i = 0; i < 2; i++) {
        const peer = (await peers.next()).value as Transport;
        got.push(...await take(peer, 1));
      }
      assert.ok(got.some((f) => equalBytes(f, big)));
      assert.ok(got.some((f) => equalBytes(f, small)));
    } finally {
      await plain.close();
      await pinned.close();
      await listener.close();
    }
  });

  it("a large request to an unpinned URI arrives over TCP (Via SIP/2.0/TCP), a small one over UDP", async () => {
    // A bare TCP server and a bare UDP socket on one port: each records what it gets.
    const { createServer } = await import("node:net");
    const { createSocket } = await import("node:dgram");
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    const udp = createSocket("udp4");
    await new Promise<void>((r) => udp.bind(port, "127.0.0.1", r));
    const tcpHeads: string[] = [];
    const udpHeads: string[] = [];
    server.on("connection", (socket) => {
      let text = "";
      socket.on("data", (d) => {
        text += new TextDecoder().decode(d);
        if (text.includes("\r\n\r\n")) tcpHeads.push(text.split("\r\n\r\n")[0]);
      });
    });
    udp.on("message", (d) => udpHeads.push(new TextDecoder().decode(d).split("\r\n\r\n")[0]));
    const big = encodeEnvelope({
      protocolType: 7,
      protocolVersion: 1,
      payload: new Uint8Array(2000),
    });
    const t = await connectSip(`sip:bob@127.0.0.1:${port}`, { timers: FAST, timeoutMs: 300 });
    try {
      await assert.rejects(t.send(big), code("timeout")); // nobody answers
      await assert.rejects(t.send(testEnvelope(1)), code("timeout"));
      assert.equal(tcpHeads.length, 1);
      assert.match(
        tcpHeads[0],
        /^MESSAGE sip:bob@127\.0\.0\.1:\d+ SIP\/2\.0\r\nVia: SIP\/2\.0\/TCP /,
      );
      assert.ok(udpHeads.length >= 1);
      assert.ok(udpHeads.every((h) => /\r\nVia: SIP\/2\.0\/UDP /.test(h)));
    } finally {
      await t.close();
      udp.close();
      server.close();
    }
  });
});

describe("sip registration (a scripted registrar)", () => {
  /** Answers REGISTER: 401 for carol, else 200 granting 60 s to the Contact sent. */
  async function registrar(): Promise<RawUdp> {
    const r = await RawUdp.open();
    r.socket.on("message", (data: Uint8Array, rinfo: { port: number }) => {
      const m = parseDatagram(data);
      if (m.kind !== "request") return;
      const carol = /carol/.test(header(m.headers, "To")!);
      const contact = header(m.headers, "Contact")!;
      const response = serializeMessage(
        responseTo(
          m,
          carol ? { status: 401, reason: "Unauthorized" } : {
            status: 200,
            reason: "OK",
            headers: [["Contact", `${contact};expires=60`]],
          },
          "reg",
        ),
      );
      r.socket.send(response, rinfo.port, "127.0.0.1");
    });
    return r;
  }

  it("registers, refreshes at half the granted time, unregisters on close", async () => {
    const r = await registrar();
    const clock = new FakeClock();
    const listener = await listenSip("sip:bob@127.0.0.1:0", {
      register: `sip:127.0.0.1:${r.port}`,
      clock,
    });
    try {
      assert.equal(listener.registration?.aor, `sip:bob@127.0.0.1:${r.port}`);
      clock.advance(29_000);
      assert.equal(r.received.length, 1);
      clock.advance(1_000);
      await r.waitFor(2);
      await listener.close();
      const [first, refresh, remove] = await r.waitFor(3);
      assert.equal(header(first.headers, "Expires"), "3600");
      assert.equal(header(refresh.headers, "CSeq"), "2 REGISTER");
      assert.equal(header(refresh.headers, "Call-ID"), header(first.headers, "Call-ID"));
      assert.equal(header(remove.headers, "Expires"), "0");
      assert.match(header(first.headers, "Contact")!, /^<sip:bob@127\.0\.0\.1:\d+>$/);
      assert.equal((first as { uri?: string }).uri, `sip:127.0.0.1:${r.port}`);
    } finally {
      await listener.close();
      await r.close();
    }
  });

  it("a registrar demanding authentication is refused, and the listener does not start", async () => {
    const r = await registrar();
    try {
      await assert.rejects(
        listenSip("sip:carol@127.0.0.1:0", { register: `sip:127.0.0.1:${r.port}` }),
        (e) => code("refused")(e) && /digest/.test(String(e)),
      );
      await assert.rejects(
        listenSip("sip:127.0.0.1:0", { register: `sip:127.0.0.1:${r.port}` }),
        code("usage"),
      );
    } finally {
      await r.close();
    }
  });
});

describe("sip against sipp (apt sip-tester)", () => {
  for (const transport of ["udp", "tcp"] as const) {
    it(`a sipp UAC's MESSAGE over ${transport} is answered 200 and delivered`, async () => {
      const listener = await listenSip("sip:bob@127.0.0.1:0");
      const port = Number(/:(\d+)$/.exec(listener.url)![1]);
      const envelope = testEnvelope(42);
      const dir = sippDir("uac_message.xml", { "body.txt": armor(envelope) });
      const sipp = startSipp(dir, "uac_message.xml", {
        port: await freePort(),
        remote: `127.0.0.1:${port}`,
        service: "bob",
        transport,
      });
      try {
        const peer = await first(listener.connections());
        assert.match(peer.remote, /^sip:sipp@127\.0\.0\.1:\d+$/);
        const [frame] = await take(peer, 1);
        assert.ok(equalBytes(frame, envelope));
        await peer.send(testEnvelope(43)); // the receipt the scenario waits for
        assert.equal(await sipp.exited, 0, sipp.output() + sippTrace(dir));
      } finally {
        await sipp.stop();
        await listener.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it(`connectSip over ${transport} to a sipp UAS is answered and the scenario passes`, async () => {
      const port = await freePort();
      const dir = sippDir("uas_message.xml");
      const sipp = startSipp(dir, "uas_message.xml", { port, transport });
      const suffix = transport === "tcp" ? ";transport=tcp" : "";
      try {
        // UDP retransmits until sipp is up; TCP retries the connection a few times.
        for (let attempt = 0;; attempt++) {
          const alice = await connectSip(`sip:bob@127.0.0.1:${port}${suffix}`);
          try {
            await alice.send(testEnvelope(7));
            break;
          } catch (e) {
            if (!code("network")(e) || attempt > 150) throw e;
            await new Promise((r) => setTimeout(r, 100));
          } finally {
            await alice.close();
          }
        }
        assert.equal(await sipp.exited, 0, sipp.output() + sippTrace(dir));
        assert.match(sippTrace(dir), /-----BEGIN MISSIVE MESSAGE-----/);
      } finally {
        await sipp.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

describe("sip through Kamailio (apt kamailio)", () => {
  it("registers, and a MESSAGE relayed by the proxy arrives (udp and tcp); receipts go back", async () => {
    const kamailio = await startKamailio();
    const bob = await listenSip("sip:bob@127.0.0.1:0", {
      register: `sip:127.0.0.1:${kamailio.port}`,
    });
    const carol = await listenSip("sip:carol@127.0.0.1:0", {
      register: `sip:127.0.0.1:${kamailio.port};transport=tcp`,
    });
    const alice = await connectSip(`sip:bob@127.0.0.1:${kamailio.port}`);
    const dave = await connectSip(`sip:carol@127.0.0.1:${kamailio.port};transport=tcp`);
    const nobody = await connectSip(`sip:zed@127.0.0.1:${kamailio.port}`);
    try {
      assert.equal(bob.registration?.aor, `sip:bob@127.0.0.1:${kamailio.port}`);
      await alice.send(testEnvelope(1));
      const peer = await first(bob.connections());
      assert.ok(equalBytes((await take(peer, 1))[0], testEnvelope(1)));
      await peer.send(testEnvelope(2)); // the receipt, to alice's Contact
      assert.ok(equalBytes((await take(alice, 1))[0], testEnvelope(2)));
      // Over 1300 bytes (a post-quantum message): to the proxy over TCP (SPEC §21.7.4).
      const large = encodeEnvelope({
        protocolType: 7,
        protocolVersion: 1,
        payload: new Uint8Array(3000).fill(7),
      });
      await alice.send(large);
      assert.ok(equalBytes((await take(peer, 1))[0], large));

      await dave.send(testEnvelope(3));
      const carolPeer = await first(carol.connections());
      assert.ok(equalBytes((await take(carolPeer, 1))[0], testEnvelope(3)));
      await carolPeer.send(testEnvelope(5)); // over TCP, straight to dave's Contact
      assert.ok(equalBytes((await take(dave, 1))[0], testEnvelope(5)));

      await assert.rejects(
        nobody.send(testEnvelope(4)),
        (e) => code("network")(e) && /404/.test(String(e)),
      );
      assert.match(kamailio.output(), /missive-test: relaying MESSAGE for bob/);
    } finally {
      await Promise.all([alice.close(), dave.close(), nobody.close()]);
      await bob.close();
      await carol.close();
      await stopKamailio(kamailio);
    }
  });
});

describe("sip parser vectors (tests/vectors/sip.json)", () => {
  interface Vector {
    name: string;
    input?: string;
    input_hex?: string;
    expect: { error?: string; message?: Record<string, unknown> & { body: string } };
  }
  const corpus = JSON.parse(
    readFileSync(new URL("./vectors/sip.json", import.meta.url), "utf8"),
  ) as { vectors: Vector[] };

  it("has more failure vectors than success vectors", () => {
    const failures = corpus.vectors.filter((v) => v.expect.error).length;
    assert.ok(failures >= corpus.vectors.length - failures);
  });

  for (const v of corpus.vectors) {
    it(v.name, () => {
      const bytes = v.input_hex !== undefined ? fromHex(v.input_hex)! : utf8(v.input!);
      if (v.expect.error) {
        assert.throws(() => parseDatagram(bytes), code(v.expect.error));
        return;
      }
      const m = parseDatagram(bytes);
      const { body, ...rest } = v.expect.message!;
      assert.deepEqual({ ...m, body: undefined }, { ...rest, body: undefined });
      assert.equal(new TextDecoder().decode(m.body), body);
    });
  }
});
