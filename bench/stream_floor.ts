/**
 * The runtime's floor for a stream (issue 12): a bare AES-256-GCM pass over a file with
 * the same shape as missive's stream seal — 256 KiB chunks, 4 in flight, read and written
 * with `node:fs` — and nothing else (no header, no framing, no signature). What `missive
 * seal` under `deno run` is measured against: it cannot be faster than this in the same
 * runtime. Prints wall seconds and peak RSS (from /proc/self/status, VmHWM).
 *
 *     deno run -A bench/stream_floor.ts IN OUT [webcrypto|node]
 *     bun bench/stream_floor.ts IN OUT [webcrypto|node]
 * @module
 */
import { createCipheriv } from "node:crypto";
import { closeSync, openSync, readFileSync, readSync, writeSync } from "node:fs";
import process from "node:process";

const [input, output, path = "webcrypto"] = process.argv.slice(2);
if (!input || !output) {
  console.error("usage: stream_floor.ts IN OUT [webcrypto|node]");
  process.exit(2);
}
const CHUNK = 256 * 1024;
const IN_FLIGHT = 4;
const keyBytes = crypto.getRandomValues(new Uint8Array(32));
const key = await crypto.subtle.importKey("raw", keyBytes, "AES-GCM", false, ["encrypt"]);

function nonce(i: number): Uint8Array<ArrayBuffer> {
  const n = new Uint8Array(12);
  new DataView(n.buffer).setUint32(8, i);
  return n;
}

async function encrypt(i: number, data: Uint8Array<ArrayBuffer>): Promise<Uint8Array[]> {
  if (path === "node") {
    const c = createCipheriv("aes-256-gcm", keyBytes, nonce(i));
    const body = c.update(data);
    c.final();
    return [body, c.getAuthTag()];
  }
  return [
    new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce(i) }, key, data)),
  ];
}

const start = performance.now();
const fdIn = openSync(input, "r");
const fdOut = openSync(output, "w");
const buffers = Array.from({ length: IN_FLIGHT + 1 }, () => new Uint8Array(CHUNK));
const window: Promise<Uint8Array[]>[] = [];
let i = 0;
for (;;) {
  const buf = buffers[i % buffers.length];
  const n = readSync(fdIn, buf, 0, CHUNK, null);
  if (n === 0) break;
  window.push(encrypt(i, buf.subarray(0, n)));
  i++;
  if (window.length >= IN_FLIGHT) {
    for (const part of await window.shift()!) writeSync(fdOut, part);
  }
}
while (window.length > 0) for (const part of await window.shift()!) writeSync(fdOut, part);
closeSync(fdIn);
closeSync(fdOut);
const seconds = (performance.now() - start) / 1000;
const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))?.[1];
console.log(
  JSON.stringify({
    path,
    chunks: i,
    seconds: Number(seconds.toFixed(3)),
    peakRssMiB: Number((Number(hwm) / 1024).toFixed(1)),
  }),
);
