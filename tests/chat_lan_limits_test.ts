/**
 * The LAN carrier's direct-session listener under hostile connections (SPEC §27.6, the
 * relay's pre-authentication limits of §23.12): an oversize first frame, a handshake that
 * never completes, more connections from one address than it may hold. Each is cut and
 * reported with its reason, and the chat goes on: a peer then requests, is accepted, and
 * chats over a direct session. Real sockets on 127.0.0.1; multicast on loopback.
 */
import assert from "node:assert/strict";
import net from "node:net";
import process from "node:process";
import { test } from "node:test";
import { isMissiveError } from "../core/errors.ts";
import { getCryptoProvider } from "../crypto/mod.ts";
import { peerCloseOf } from "../session/options.ts";
import { Session } from "../session/session.ts";
import { connectTransport } from "../transports/mod.ts";
import type { Identity } from "../keys/identity.ts";
import {
  type ChatEvent,
  ChatModel,
  History,
  LAN_MAX_PER_ADDRESS,
  LAN_PREAUTH_FRAME,
  LanCarrier,
} from "../chat/mod.ts";
import { fixedIdentity } from "./helpers.ts";

async function until(what: string, ok: () => boolean, ms = 20_000) {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A raw TCP client; `closed` resolves when the listener cuts it. */
function connect(port: number): Promise<{ socket: net.Socket; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    const closed = new Promise<void>((r) => socket.once("close", () => r()));
    socket.on("error", () => {});
    socket.once("connect", () => resolve({ socket, closed }));
    socket.once("error", reject);
  });
}

const HANDSHAKE_MS = 1500;

async function lanChat(who: Identity, group: string) {
  const crypto = await getCryptoProvider();
  const history = await History.open(crypto, who, ":memory:");
  const carrier = new LanCarrier(who, {
    crypto,
    group,
    iface: "127.0.0.1",
    everyMs: 200,
    handshakeTimeoutMs: HANDSHAKE_MS,
  });
  const model = await ChatModel.open(who, history, carrier, { crypto, retryMs: 100 });
  const events: ChatEvent[] = [];
  model.on((e) => events.push(e));
  await model.start();
  const problems = () => events.flatMap((e) => e.type === "problem" ? [e.reason] : []).join("\n");
  return { model, carrier, events, problems };
}

test(
  "LAN listener: oversize first frame, slow handshake, too many connections: cut, logged, chat goes on",
  {
    timeout: 60_000,
  },
  async () => {
    const port = 40000 + Math.floor(Math.random() * 20000);
    const group = `239.255.77.81:${port}`;
    const bob = await lanChat(await fixedIdentity("bob@example.org", 20), group);
    const sockets: net.Socket[] = [];
    let alice: Awaited<ReturnType<typeof lanChat>> | undefined;
    try {
      const url = new URL(bob.carrier.url!.replace(/^tcp:/, "http:"));
      const listen = Number(url.port);

      // 1. An oversize first frame: a length prefix over the pre-authentication cap.
      const big = await connect(listen);
      sockets.push(big.socket);
      const header = new Uint8Array(4);
      new DataView(header.buffer).setUint32(0, LAN_PREAUTH_FRAME + 1);
      big.socket.write(header);
      big.socket.write(new Uint8Array(LAN_PREAUTH_FRAME + 1));
      await big.closed;
      await until(
        "the oversize frame is reported",
        () => /pre-authentication cap/.test(bob.problems()),
      );
      assert.match(
        bob.problems(),
        /direct session from tcp:\/\/127\.0\.0\.1:\d+ refused: pre-authentication cap/,
      );

      // 2. and 3. LAN_MAX_PER_ADDRESS silent connections hold every slot of 127.0.0.1: one
      // more is cut at once; the silent ones are cut at the handshake deadline.
      const silent = [];
      for (let i = 0; i < LAN_MAX_PER_ADDRESS; i++) {
        const c = await connect(listen);
        sockets.push(c.socket);
        silent.push(c);
      }
      const extra = await connect(listen);
      sockets.push(extra.socket);
      await extra.closed;
      await until("the per-address refusal is reported", () =>
        new RegExp(
          `${LAN_MAX_PER_ADDRESS} connections from 127\\.0\\.0\\.1 \\(at most ${LAN_MAX_PER_ADDRESS}\\)`,
        )
          .test(bob.problems()));
      await Promise.all(silent.map((c) => c.closed));
      await until(
        "the slow handshakes are reported",
        () =>
          (bob.problems().match(/no completed handshake within 1\.5 s/g) ?? []).length ===
            LAN_MAX_PER_ADDRESS,
      );

      // The chat goes on: alice finds bob, asks, is accepted, and they chat.
      alice = await lanChat(await fixedIdentity("alice@example.org", 10), group);
      for (let i = 0; i < 100; i++) {
        if (
          (await alice.model.online()).some((o) => o.address === "bob@example.org")
        ) {
          break;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      if (process.env.CHAT_TEST_VERBOSE) console.log(bob.problems());
      await alice.model.request("bob@example.org", "after the storm");
      await until("bob sees the request", () => bob.events.some((e) => e.type === "request"));
      await bob.model.accept("alice@example.org");
      await until("alice is accepted", () => alice!.events.some((e) => e.type === "accepted"));
      await alice.model.send("bob@example.org", "still here");
      await until(
        "bob reads",
        () =>
          bob.model.lines("alice@example.org").some((l) => l.text === "still here" && l.verified),
      );
      assert.equal(alice.problems(), "");
    } finally {
      for (const s of sockets) {
        s.destroy();
      }
      await alice?.model.close();
      await bob.model.close();
    }
  },
);

test("LAN listener with requirePq refuses a version 1 session (chat --require-pq)", {
  timeout: 30_000,
}, async () => {
  const crypto = await getCryptoProvider();
  const bobId = await fixedIdentity("bob@example.org", 20);
  const history = await History.open(crypto, bobId, ":memory:");
  const port = 40000 + Math.floor(Math.random() * 20000);
  const carrier = new LanCarrier(bobId, {
    crypto,
    group: `239.255.77.82:${port}`,
    iface: "127.0.0.1",
    everyMs: 200,
    requirePq: true,
  });
  const bob = await ChatModel.open(bobId, history, carrier, { crypto, retryMs: 100 });
  const events: ChatEvent[] = [];
  bob.on((e) => events.push(e));
  await bob.start();
  try {
    const alice = await fixedIdentity("alice@example.org", 21);
    const transport = await connectTransport(carrier.url!);
    try {
      await assert.rejects(
        Session.connect(transport, alice, { peer: bobId.card, versions: [1] }),
        (e: unknown) => isMissiveError(e, "untrusted") && peerCloseOf(e) !== undefined,
      );
    } finally {
      await transport.close().catch(() => {});
    }
    // A version 2 session to the same listener is accepted.
    const t2 = await connectTransport(carrier.url!);
    const s2 = await Session.connect(t2, alice, { peer: bobId.card });
    assert.equal(s2.version, 2);
    await s2.close();
  } finally {
    await bob.close();
  }
});
