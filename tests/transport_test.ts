import assert from "node:assert/strict";
import net from "node:net";
import { describe, it } from "node:test";
import { readFileSync } from "node:fs";
import { concatBytes, fromHex, randomBytes, toHex, utf8 } from "../core/bytes.ts";
import { armor, toLine } from "../envelope/mod.ts";
import { MissiveError } from "../core/errors.ts";
import { encodeFrame, FrameReader, MAX_FRAME_SIZE } from "../transports/framing.ts";
import { connectTransport, listenTransport, parseTransportUrl } from "../transports/mod.ts";
import { type StdioFraming, StdioTransport } from "../transports/stdio.ts";
import { connectTcp, TcpListener, type TcpTransport } from "../transports/tcp.ts";
import type { Listener, Transport } from "../transports/types.ts";
import { framingVectors, readFrames } from "./vectors/cases_framing.ts";
import { toJsonText } from "./vectors/generate.ts";

const isCode = (code: string) => (e: unknown) => e instanceof MissiveError && e.code === code;

/** Splits `bytes` at random points. */
function chop(bytes: Uint8Array, pieces: number): Uint8Array[] {
  const cuts = [...Array(pieces)].map(() => Math.floor(Math.random() * (bytes.length + 1)));
  cuts.push(0, bytes.length);
  cuts.sort((a, b) => a - b);
  return cuts.slice(1).map((c, i) => bytes.subarray(cuts[i], c));
}

/** Waits for `cond`, yielding to the event loop; fails after `limitMs` (never asserted on). */
async function until(cond: () => boolean, what: string, limitMs = 20_000): Promise<void> {
  const give = Date.now() + limitMs;
  while (!cond()) {
    if (Date.now() > give) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Echoes every frame back; a peer whose stream breaks is logged and closed. */
async function serveEcho(listener: Listener, log: string[]): Promise<void> {
  const peers: Promise<void>[] = [];
  for await (const t of listener.connections()) {
    peers.push((async () => {
      try {
        for await (const f of t.frames()) await t.send(f);
      } catch (e) {
        log.push(`${t.remote}: ${(e as Error).message}`);
      } finally {
        await t.close();
      }
    })());
  }
  await Promise.all(peers);
}

/** Writes raw bytes to a TCP port and waits until the server closes the connection. */
function rawPeer(port: number, bytes: Uint8Array, end = true): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port }, () => {
      s.write(bytes);
      if (end) s.end();
    });
    s.on("data", () => {});
    s.on("error", () => resolve());
    s.on("close", () => resolve());
  });
}

function portOf(l: Listener): number {
  return Number(l.url.split(":").pop());
}

describe("length-prefixed framing", () => {
  it("round-trips frames however the stream is cut", () => {
    for (let round = 0; round < 50; round++) {
      const frames = [...Array(1 + (round % 5))].map((_, i) => randomBytes(1 + i * 37 + round));
      const stream = concatBytes(...frames.map((f) => encodeFrame(f)));
      const reader = new FrameReader(4096);
      const got = chop(stream, round % 7).flatMap((c) => reader.push(c));
      reader.end();
      assert.deepEqual(got, frames);
      assert.equal(reader.pending, 0);
    }
  });

  it("refuses an oversize length from the header alone, before any body arrives", () => {
    const reader = new FrameReader(1000);
    assert.throws(() => reader.push(new Uint8Array([0, 0, 0x03, 0xe9])), isCode("too-large"));
    // A reader that failed stays failed.
    assert.throws(() => reader.push(encodeFrame(utf8("x"))), isCode("too-large"));
    assert.throws(() => new FrameReader().push(utf8("GET / HTTP/1.1\r\n")), isCode("too-large"));
  });

  it("refuses a zero length and truncated streams", () => {
    assert.throws(() => new FrameReader().push(new Uint8Array(4)), isCode("malformed"));
    for (const partial of [new Uint8Array([0, 0]), encodeFrame(utf8("hello")).subarray(0, 7)]) {
      const reader = new FrameReader();
      assert.deepEqual(reader.push(partial), []);
      assert.ok(reader.pending > 0);
      assert.throws(() => reader.end(), isCode("malformed"));
    }
  });

  it("never holds more than one frame and its header", () => {
    const cap = 64;
    const reader = new FrameReader(cap);
    const stream = concatBytes(...[...Array(20)].map(() => encodeFrame(randomBytes(cap), cap)));
    let max = 0;
    for (const c of chop(stream, 40)) {
      reader.push(c);
      max = Math.max(max, reader.pending);
    }
    assert.ok(max <= cap + 4, `held ${max} bytes`);
  });

  it("encodes only frames of 1..cap bytes", () => {
    assert.deepEqual(encodeFrame(utf8("ab")), new Uint8Array([0, 0, 0, 2, 0x61, 0x62]));
    assert.throws(() => encodeFrame(new Uint8Array(0)), isCode("usage"));
    assert.throws(() => encodeFrame(new Uint8Array(11), 10), isCode("too-large"));
    assert.throws(() => new FrameReader(MAX_FRAME_SIZE + 1), isCode("usage"));
  });
});

describe("transport URLs", () => {
  it("parses stdio, tcp (names, IPv4, bracketed IPv6) and recognises sip", () => {
    assert.deepEqual(parseTransportUrl("stdio:").address, { framing: "binary" });
    assert.deepEqual(parseTransportUrl("stdio:lines").address, { framing: "lines" });
    assert.deepEqual(parseTransportUrl("tcp://127.0.0.1:7700").address, {
      host: "127.0.0.1",
      port: 7700,
    });
    assert.deepEqual(parseTransportUrl("tcp://[::1]:0").address, { host: "::1", port: 0 });
    assert.deepEqual(parseTransportUrl("tcp://relay.example.org:7700/").address, {
      host: "relay.example.org",
      port: 7700,
    });
    assert.equal(parseTransportUrl("tcp://h:1").replies, true);
    assert.equal(parseTransportUrl("stdio:armor").replies, false);
  });

  it("refuses bad URLs with a usage error that names the accepted forms", async () => {
    for (
      const url of [
        "",
        "tcp://127.0.0.1",
        "tcp://127.0.0.1:99999",
        "tcp://:7700",
        "tcp://a b:1",
        "tcp://[zz]:1",
        "stdio:base64",
        "http://example.org",
        "127.0.0.1:7700",
      ]
    ) {
      assert.throws(() => parseTransportUrl(url), isCode("usage"), url);
    }
    await assert.rejects(connectTransport("tcp://127.0.0.1:0"), isCode("usage"));
    assert.throws(() => parseTransportUrl("sips:bob@127.0.0.1"), isCode("usage")); // SPEC §21.7.1
    await assert.rejects(listenTransport("tcp://127.0.0.1:1", { maxFrame: 0 }), isCode("usage"));
  });
});

describe("tcp transport", () => {
  it("carries frames both ways, and a refused connection is a network error", async () => {
    const listener = await listenTransport("tcp://127.0.0.1:0");
    const log: string[] = [];
    const serving = serveEcho(listener, log);
    const t = await connectTransport(listener.url);
    const sent = [utf8("one"), randomBytes(200_000), utf8("three")];
    for (const f of sent) await t.send(f);
    const got: Uint8Array[] = [];
    for await (const f of t.frames()) {
      got.push(f);
      if (got.length === sent.length) break;
    }
    assert.deepEqual(got, sent);
    await t.close();
    await listener.close();
    await serving;
    assert.deepEqual(log, []);
    await assert.rejects(connectTransport(listener.url), isCode("network"));
  });

  it("drops peers sending garbage, oversize lengths or truncated frames, and serves others", async () => {
    const listener = await TcpListener.listen("127.0.0.1", 0, { maxFrame: 1024 });
    const log: string[] = [];
    const serving = serveEcho(listener, log);
    const port = portOf(listener);
    const good = await connectTransport(listener.url);
    await good.send(utf8("before"));
    await Promise.all([
      rawPeer(port, utf8("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), false),
      rawPeer(port, new Uint8Array([0, 0, 4, 1, 1, 2, 3]), false), // 1025 > cap
      rawPeer(port, new Uint8Array([0, 0, 0, 10, 1, 2, 3])), // 3 of 10 bytes, then FIN
      rawPeer(port, new Uint8Array([0, 0])), // half a length prefix
      rawPeer(port, new Uint8Array(4)), // length 0
    ]);
    await good.send(utf8("after"));
    const got: string[] = [];
    for await (const f of good.frames()) {
      got.push(new TextDecoder().decode(f));
      if (got.length === 2) break;
    }
    assert.deepEqual(got, ["before", "after"]);
    const fresh = await connectTransport(listener.url);
    await fresh.send(utf8("new peer"));
    for await (const f of fresh.frames()) {
      assert.equal(new TextDecoder().decode(f), "new peer");
      break;
    }
    await Promise.all([good.close(), fresh.close()]);
    await listener.close();
    await serving;
    assert.equal(log.length, 5, log.join("\n"));
    assert.equal(log.filter((l) => /over the 1024-byte cap/.test(l)).length, 2, log.join("\n"));
    assert.equal(log.filter((l) => /truncated/.test(l)).length, 2, log.join("\n"));
    assert.equal(log.filter((l) => /length 0/.test(l)).length, 1, log.join("\n"));
  });

  it("drops a peer that stays silent past the idle timeout, and serves others", async () => {
    const listener = await TcpListener.listen("127.0.0.1", 0, { idleTimeoutMs: 200 });
    const log: string[] = [];
    const serving = serveEcho(listener, log);
    // Announces a 100-byte frame, sends 3 bytes, then nothing.
    await rawPeer(portOf(listener), new Uint8Array([0, 0, 0, 100, 1, 2, 3]), false);
    assert.equal(log.length, 1, log.join("\n"));
    assert.match(log[0], /idle for 0\.2 s/);
    const t = await connectTransport(listener.url);
    await t.send(utf8("still here"));
    for await (const f of t.frames()) {
      assert.equal(new TextDecoder().decode(f), "still here");
      break;
    }
    await t.close();
    await listener.close();
    await serving;
  });

  it("refuses connections beyond maxConnections, logged", async () => {
    const log: string[] = [];
    const listener = await TcpListener.listen("127.0.0.1", 0, {
      maxConnections: 2,
      log: (l) => log.push(l),
    });
    const a = await connectTransport(listener.url);
    const b = await connectTransport(listener.url);
    await until(() => listener.openConnections === 2, "two connections");
    const c = await connectTransport(listener.url);
    // The third is closed at once: its stream ends (or breaks) without a frame.
    const frames = await collect(c).catch((e) => (isCode("network")(e) ? [] : Promise.reject(e)));
    assert.deepEqual(frames, []);
    assert.match(log.join("\n"), /2 connections open/);
    await Promise.all([a.close(), b.close(), c.close()]);
    await listener.close();
  });

  it("back-pressure: a reader that does not read stalls the sender at a bounded size", async () => {
    const queueBytes = 256 * 1024;
    const listener = await TcpListener.listen("127.0.0.1", 0, { maxFrame: 65536, queueBytes });
    const accepted = listener.connections()[Symbol.asyncIterator]().next();
    const client = await connectTcp("127.0.0.1", portOf(listener)) as TcpTransport;
    const server = (await accepted).value as TcpTransport;
    const frame = randomBytes(65536);
    const total = 1024; // 64 MiB: far more than the kernel's socket buffers
    let completed = 0;
    let maxWriteBuffered = 0;
    const sending = (async () => {
      for (let i = 0; i < total; i++) {
        await client.send(frame);
        completed++;
        maxWriteBuffered = Math.max(maxWriteBuffered, client.stats().writeBuffered);
      }
    })();
    // The server never pulls: its queue fills, reading pauses, the kernel buffers fill
    // and the sender ends up waiting for 'drain' — a state that lasts until someone reads.
    await until(
      () => server.stats().readingPaused && client.stats().waitingForDrain,
      "the sender to stall",
    );
    const stalledAt = completed;
    assert.ok(stalledAt < total, `sender never stalled (${stalledAt} sends)`);
    // Bound: the budget plus one read chunk (its size is the runtime's: 64 KiB in Deno,
    // up to 512 KiB in Bun) — and far below the 64 MiB offered.
    const bound = queueBytes + 1024 * 1024;
    const s = server.stats();
    assert.ok(s.queuedBytes <= bound, `server queued ${s.queuedBytes} bytes`);
    assert.ok(maxWriteBuffered <= 2 * 65536 + 4 * 2, `client buffered ${maxWriteBuffered} bytes`);
    // Now read: everything arrives, in order, and the sender finishes.
    let received = 0;
    for await (const f of server.frames()) {
      assert.equal(f.length, 65536);
      assert.ok(server.stats().queuedBytes <= bound);
      if (++received === total) break;
    }
    await sending;
    assert.equal(completed, total);
    await client.close();
    await listener.close();
  });
});

/** In-memory stdio streams: `input` is fed in pieces, `output` collected. */
function memoryStdio(framing: StdioFraming, input: Uint8Array[], log: string[], maxFrame?: number) {
  const out: Uint8Array[] = [];
  const t = new StdioTransport({
    framing,
    maxFrame,
    log: (l) => log.push(l),
    streams: {
      input: async function* () {
        yield* input;
      },
      output: (d) => {
        out.push(d);
        return Promise.resolve();
      },
    },
  });
  return { t, output: () => concatBytes(...out) };
}

async function collect(t: Transport): Promise<Uint8Array[]> {
  const got: Uint8Array[] = [];
  for await (const f of t.frames()) got.push(f);
  return got;
}

describe("stdio transport", () => {
  it("round-trips each framing through send() then frames()", async () => {
    for (const framing of ["binary", "armor", "lines"] as const) {
      const frames = [utf8("first"), randomBytes(3000), utf8("third")];
      const writer = memoryStdio(framing, [], []);
      for (const f of frames) await writer.t.send(f);
      const log: string[] = [];
      const reader = memoryStdio(framing, chop(writer.output(), 9), log);
      assert.deepEqual(await collect(reader.t), frames, framing);
      assert.deepEqual(log, []);
    }
  });

  it("lines: skips (and logs) garbage and overlong lines, keeps reading", async () => {
    const log: string[] = [];
    const input = utf8(
      [toLine(utf8("ok-1")), "not base64 !!", "", toLine(new Uint8Array(100)), toLine(utf8("ok-2"))]
        .join("\n") + "\r\n",
    );
    const { t } = memoryStdio("lines", chop(input, 5), log, 50);
    const got = (await collect(t)).map((f) => new TextDecoder().decode(f));
    assert.deepEqual(got, ["ok-1", "ok-2"]);
    assert.equal(log.length, 2, log.join("\n"));
    assert.match(log[0], /line 2 skipped: not canonical base64/);
    assert.match(log[1], /line 4 skipped: \d+ bytes is over the 50-byte cap/);
  });

  it("armor: skips text outside blocks, bad and oversize blocks, keeps reading", async () => {
    const log: string[] = [];
    const bad = armor(utf8("good")).replace(/\n(.)/, "\n!$1");
    const input = utf8(
      "junk before\n" + armor(utf8("good-1")) + bad + armor(new Uint8Array(500)) + "\n" +
        armor(utf8("good-2")) + "-----BEGIN MISSIVE MESSAGE-----\nAAAA\n",
    );
    const { t } = memoryStdio("armor", chop(input, 6), log, 100);
    const got = (await collect(t)).map((f) => new TextDecoder().decode(f));
    assert.deepEqual(got, ["good-1", "good-2"]);
    assert.equal(log.length, 4, log.join("\n"));
    assert.match(log[0], /text outside an armor block/);
    assert.match(log[1], /skipped: invalid armor/);
    assert.match(log[2], /over the 100-byte cap/);
    assert.match(log[3], /ended inside an armor block/);
  });

  it("binary: an oversize length or a truncated frame ends the stream with a typed error", async () => {
    const over = memoryStdio(
      "binary",
      [encodeFrame(utf8("a")), new Uint8Array([0, 1, 0, 0])],
      [],
      1024,
    );
    const got: Uint8Array[] = [];
    await assert.rejects(async () => {
      for await (const f of over.t.frames()) got.push(f);
    }, isCode("too-large"));
    assert.deepEqual(got, [utf8("a")]);
    const cut = memoryStdio("binary", [encodeFrame(utf8("abcdef")).subarray(0, 6)], []);
    await assert.rejects(collect(cut.t), isCode("malformed"));
  });
});

describe("framing vectors (tests/vectors/framing.json)", () => {
  it("the committed corpus is what the cases make, and a reader meets every outcome", () => {
    const committed = readFileSync(new URL("./vectors/framing.json", import.meta.url), "utf8");
    assert.equal(committed, toJsonText(framingVectors()));
    const doc = JSON.parse(committed) as {
      vectors: {
        name: string;
        cap: number;
        stream: string;
        expect: { outcome: string; error?: string; frames: string[] };
      }[];
    };
    const outcomes = doc.vectors.map((v) => v.expect.outcome);
    assert.ok(
      outcomes.filter((o) => o !== "success").length >=
        outcomes.filter((o) => o === "success").length,
    );
    for (const v of doc.vectors) {
      const got = readFrames(fromHex(v.stream)!, v.cap);
      assert.deepEqual(got.frames.map(toHex), v.expect.frames, v.name);
      assert.equal(got.error ?? "success", v.expect.outcome, v.name);
      assert.equal(got.error, v.expect.error, v.name);
    }
  });
});
