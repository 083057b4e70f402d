/**
 * CBOR codec throughput on the relay's message mix (issue 18's before/after figure):
 * `deno run -A bench/cbor_codec.ts` (or `bun bench/cbor_codec.ts`). Builds a fixed mix of
 * relay messages — sends with a 600-byte envelope, deliveries, acks, responses — single
 * and in bundles of 16, then times decoding (`decodeRelayMessages`, the relay's receive
 * path), generic `decodeCbor` over the same bytes, and encoding (`encodeRequest` …).
 * Prints messages per second, best of `ROUNDS` rounds of `SECONDS` each.
 * @module
 */
import process from "node:process";
import { decodeCbor } from "../core/cbor.ts";
import {
  decodeRelayMessages,
  encodeBundle,
  encodeDelivery,
  encodeRequest,
  encodeResponse,
} from "../relay/protocol.ts";

const SECONDS = Number(process.env.SECONDS ?? 1);
const ROUNDS = Number(process.env.ROUNDS ?? 3);

const envelope = new Uint8Array(600).map((_, i) => (i * 31) & 0xff);
const id = new Uint8Array(16).map((_, i) => i);
const builders: (() => Uint8Array)[] = [
  () => encodeRequest(7, { op: "send", to: "bob@example.org", envelope }),
  () => encodeRequest(8, { op: "send", to: id, envelope }),
  () =>
    encodeDelivery({
      message: 123456,
      senderId: id,
      sender: "alice@example.org",
      envelope,
      enqueued: 1_780_000_000_000,
    }),
  () => encodeRequest(9, { op: "ack", message: 123456, receipt: "accepted" }),
  () => encodeResponse({ rid: 7, status: "ok", count: 99 }),
  () => encodeResponse({ rid: 8, status: "quota", detail: "quota for this sender reached" }),
];
const singles = builders.map((b) => b());
const bundle = encodeBundle(Array.from({ length: 16 }, (_, i) => singles[i % singles.length]));
const mix = [...singles, bundle];
const messagesPerPass = singles.length + 16;
const bytesPerPass = mix.reduce((n, m) => n + m.length, 0);

function rate(label: string, pass: () => void, perPass: number): void {
  let best = 0;
  for (let round = 0; round < ROUNDS; round++) {
    let passes = 0;
    const start = performance.now();
    let now = start;
    while (now - start < SECONDS * 1000) {
      for (let i = 0; i < 50; i++) pass();
      passes += 50;
      now = performance.now();
    }
    best = Math.max(best, (passes * perPass) / ((now - start) / 1000));
  }
  console.log(`${label.padEnd(44)} ${Math.round(best).toLocaleString("en-US").padStart(12)} msg/s`);
}

const runtime = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined" ? "bun" : "deno";
console.log(
  `cbor codec, relay mix (${mix.length} frames, ${messagesPerPass} messages, ` +
    `${bytesPerPass} bytes per pass), ${runtime}`,
);
rate("decodeRelayMessages (relay receive path)", () => {
  for (const m of mix) decodeRelayMessages(m);
}, messagesPerPass);
rate("decodeCbor (generic strict decode)", () => {
  for (const m of singles) decodeCbor(m);
}, singles.length);
rate("encode (request/response/delivery)", () => {
  for (const b of builders) b();
}, builders.length);
