/**
 * `deno bench --allow-all bench/stream_bench.ts`: the stream library (SPEC §20) on 16 MiB
 * in memory — seal and open, unsigned and signed, 64 KiB / 256 KiB / 1 MiB chunks, 1 and 8
 * chunks in flight, WebCrypto and noble — plus the per-chunk costs that set the default
 * chunk sizes: one AES-256-GCM call with a prepared key vs importing it each time, and one
 * chunk signature (SHA-256 of the chunk + Ed25519). Figures: docs/BENCHMARKS.md, Streams.
 */
import { nobleProvider, webcryptoProvider } from "../crypto/mod.ts";
import { createIdentity, defaultRegistry } from "../mod.ts";
import { type ByteSink, bytesSource, openStream, sealStream } from "../stream/mod.ts";
import { chunkTranscript } from "../stream/_format.ts";

const registry = defaultRegistry();
const caps = { stps: [[2, 2]] as const, amps: [[1, 1]] as const };
const alice = await createIdentity(webcryptoProvider, { address: "alice@example.org", ...caps });
const bob = await createIdentity(webcryptoProvider, { address: "bob@example.org", ...caps });
const SIZE = 16 * 1024 * 1024;
const data = new Uint8Array(SIZE).map((_, i) => (i * 7) & 0xff);
const stp = registry.find("stp", "simple");

/** Counts bytes and keeps the last stream (no copies in the timed loop). */
function sinkInto(keep: Uint8Array[] | undefined): ByteSink & { n: number } {
  return {
    n: 0,
    write(parts) {
      for (const p of parts) {
        this.n += p.length;
        keep?.push(p);
      }
      return Promise.resolve();
    },
  };
}

async function seal(
  signed: boolean,
  inFlight: number,
  chunkSize: number,
  crypto = webcryptoProvider,
) {
  const parts: Uint8Array[] = [];
  await sealStream({
    registry,
    stp,
    sender: alice,
    recipients: [bob.card],
    source: bytesSource(data),
    sink: sinkInto(parts),
    signed,
    inFlight,
    chunkSize,
    crypto,
  });
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const CASES = [
  { signed: false, chunkSize: 64 * 1024, kind: "unsigned, 64 KiB chunks" },
  { signed: false, chunkSize: 256 * 1024, kind: "unsigned, 256 KiB chunks (default)" },
  { signed: true, chunkSize: 256 * 1024, kind: "signed, 256 KiB chunks (default)" },
  { signed: true, chunkSize: 1024 * 1024, kind: "signed, 1 MiB chunks" },
];
for (const { signed, chunkSize, kind } of CASES) {
  const sealed = await seal(signed, 8, chunkSize);
  for (const inFlight of [1, 8]) {
    const group = `16 MiB ${kind}`;
    Deno.bench(`seal 16 MiB, ${kind}, ${inFlight} in flight`, { group, n: 10 }, async () => {
      await sealStream({
        registry,
        stp,
        sender: alice,
        recipients: [bob.card],
        source: bytesSource(data),
        sink: sinkInto(undefined),
        signed,
        inFlight,
        chunkSize,
        crypto: webcryptoProvider,
      });
    });
    Deno.bench(`open 16 MiB, ${kind}, ${inFlight} in flight`, { group, n: 10 }, async () => {
      await openStream({
        registry,
        source: bytesSource(sealed),
        sink: sinkInto(undefined),
        identity: bob,
        inFlight,
        crypto: webcryptoProvider,
      });
    });
  }
}

Deno.bench("seal 16 MiB, unsigned, noble (pure JS)", { group: "noble", n: 2 }, async () => {
  await seal(false, 1, 256 * 1024, nobleProvider);
});

const key = new Uint8Array(32).fill(1);
const nonce = new Uint8Array(12);
const aad = new Uint8Array(40);
const chunk = data.subarray(0, 65536);
const prepared = await webcryptoProvider.aeadKey("aes-256-gcm", key);
Deno.bench(
  "AES-256-GCM 64 KiB, prepared key (AeadKey)",
  { group: "per chunk", baseline: true },
  async () => {
    await prepared.encrypt(nonce, chunk, aad);
  },
);
Deno.bench("AES-256-GCM 64 KiB, key imported per call", { group: "per chunk" }, async () => {
  await webcryptoProvider.aeadEncrypt("aes-256-gcm", key, nonce, chunk, aad);
});
for (const size of [65536, 1048576]) {
  const c = data.subarray(0, size + 16);
  Deno.bench(`chunk signature: SHA-256 of ${size / 1024} KiB + Ed25519 sign`, {
    group: "per chunk",
  }, async () => {
    const digest = await webcryptoProvider.sha256(c);
    await webcryptoProvider.ed25519Sign(
      alice.signingSeed,
      chunkTranscript(digest, 1, false, digest),
    );
  });
  const sig = await webcryptoProvider.ed25519Sign(
    alice.signingSeed,
    chunkTranscript(new Uint8Array(32), 1, false, await webcryptoProvider.sha256(c)),
  );
  Deno.bench(`chunk verification: SHA-256 of ${size / 1024} KiB + Ed25519 verify`, {
    group: "per chunk",
  }, async () => {
    const digest = await webcryptoProvider.sha256(c);
    await webcryptoProvider.ed25519Verify(
      alice.card.signingKey,
      chunkTranscript(new Uint8Array(32), 1, false, digest),
      sig,
    );
  });
}
