/**
 * Session version 2 through a real relay listener (SPEC §22.12, §23.12): the
 * post-quantum HELLO of a hybrid card passes the pre-authentication frame cap
 * (PREAUTH_FRAME, 8 KiB) and the relay's session speaks version 2; the largest v2 HELLO
 * the SPEC allows (a 4,096-byte card, an s0 MAC) fits under the cap too, and a frame over
 * the cap is still dropped before it is read. Over TCP on 127.0.0.1, bounded.
 * @module
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { getCryptoProvider } from "../crypto/mod.ts";
import { MAX_CARD_SIZE } from "../keys/card.ts";
import { PREAUTH_FRAME } from "../relay/limits.ts";
import { connectRelay, type RunningRelay, serveRelay } from "../relay/link.ts";
import { RelayServer } from "../relay/server.ts";
import { RelayStore } from "../relay/store.ts";
import { XWING_PUBLIC_KEY_SIZE } from "../crypto/xwing.ts";
import { encodeFrame, encodeHelloBody, MessageType } from "../session/messages.ts";
import { Session } from "../session/session.ts";
import { connectTransport } from "../transports/mod.ts";
import { fixedIdentity } from "./helpers.ts";

const relayId = await fixedIdentity("relay@example.org", 200);
const alice = await fixedIdentity("alice@example.org", 1);
let running: RunningRelay;
const events: string[] = [];

before(async () => {
  const server = new RelayServer({
    store: RelayStore.open(":memory:"),
    crypto: await getCryptoProvider(),
    openRegistration: true,
    registrationsPerMinute: 0,
  });
  await server.start();
  running = await serveRelay("tcp://127.0.0.1:0", relayId, server, {
    log: (e) => events.push(JSON.stringify(e)),
    handshakeTimeoutMs: 2_000,
  });
});
after(async () => await running.close());

/** The largest v2 HELLO frame SPEC §22.12 allows: a 4,096-byte card and an s0 MAC. */
function largestHello(): Uint8Array {
  const body = encodeHelloBody({
    ephemeralKey: new Uint8Array(32).fill(9),
    card: new Uint8Array(MAX_CARD_SIZE).fill(0xa5),
    offered: [2, 1],
    kem: new Uint8Array(XWING_PUBLIC_KEY_SIZE).fill(1),
  });
  return encodeFrame({
    seq: 2 ** 31 - 1,
    type: MessageType.HELLO,
    time: Date.now(),
    form: "signed",
    body,
    signature: new Uint8Array(64),
    mac: new Uint8Array(32),
  }, 2);
}

describe("relay: session v2 under the pre-authentication cap", () => {
  it("a hybrid card's v2 HELLO passes; the relay's session speaks version 2", async () => {
    assert.equal(alice.card.hybridKey?.length, XWING_PUBLIC_KEY_SIZE);
    const client = await connectRelay(running.url, alice, relayId.card, { timeoutMs: 5_000 });
    try {
      const me = await client.register();
      assert.ok(me);
    } finally {
      await client.close();
    }
    // The same handshake by hand, to see its version and the size of the HELLO.
    const transport = await connectTransport(running.url, { timeoutMs: 5_000 });
    const sizes: number[] = [];
    const sent = transport.send.bind(transport);
    transport.send = (frame: Uint8Array) => {
      sizes.push(frame.length);
      return sent(frame);
    };
    const session = await Session.connect(transport, alice, { peer: relayId.card });
    assert.equal(session.version, 2);
    await session.close();
    assert.ok(sizes[0] > XWING_PUBLIC_KEY_SIZE && sizes[0] < PREAUTH_FRAME, `HELLO ${sizes[0]} B`);
    assert.ok(!events.some((e) => e.includes("preauth-frame")), "no frame over the cap");
  });

  it("the largest v2 HELLO fits the cap; one byte-heavier frame over it is dropped", async () => {
    const hello = largestHello();
    assert.ok(hello.length < PREAUTH_FRAME, `${hello.length} < ${PREAUTH_FRAME}`);
    const before = running.drops;
    const t = await connectTransport(running.url, { timeoutMs: 5_000 });
    await t.send(hello); // read and refused by the session (its card is no card), not by the cap
    for await (const _ of t.frames()) { /* the relay closes */ }
    await t.close();
    const oversize = await connectTransport(running.url, { timeoutMs: 5_000 });
    await oversize.send(new Uint8Array(PREAUTH_FRAME + 1));
    try {
      for await (const _ of oversize.frames()) { /* the relay drops the link */ }
    } catch { /* reset */ }
    await oversize.close();
    const after = running.drops;
    const grew = (k: string) => (after[k] ?? 0) - (before[k] ?? 0);
    assert.equal(grew("handshake-failed"), 1, JSON.stringify(after));
    assert.equal(grew("preauth-frame"), 1, JSON.stringify(after));
  });
});
