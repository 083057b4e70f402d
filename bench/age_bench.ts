/**
 * The age library (SPEC §26) in memory, per ChaCha20-Poly1305 path, in whichever runtime
 * runs it (issue 17, docs/BENCHMARKS.md "age files"):
 *
 *     node_modules/.bin/deno run -A bench/age_bench.ts [MiB]
 *     node_modules/.bin/bun bench/age_bench.ts [MiB]
 *
 * Encrypts and decrypts MiB (default 256) of data from memory into a counting sink with
 * noble's ChaCha20-Poly1305 and with node:crypto's where this runtime has it (Deno; not
 * Bun). Best of 3; MB/s of plaintext.
 */
import process from "node:process";
import { getCryptoProvider, nobleProvider, providerChoice } from "../crypto/mod.ts";
import type { CryptoProvider } from "../crypto/provider.ts";
import { decryptAge, encryptAge, x25519Identity, x25519Recipient } from "../stp/age/mod.ts";

const mib = Number(process.argv[2] ?? 256);
const size = mib * 1024 * 1024;
const data = new Uint8Array(size).map((_, i) => (i * 7) & 0xff);
const secret = new Uint8Array(32).fill(5);

const source = (bytes: Uint8Array) => {
  let at = 0;
  return {
    readInto(t: Uint8Array) {
      const n = Math.min(t.length, bytes.length - at);
      t.set(bytes.subarray(at, at + n));
      at += n;
      return Promise.resolve(n);
    },
  };
};

async function once(crypto: CryptoProvider): Promise<[number, number]> {
  const parts: Uint8Array[] = [];
  const t0 = performance.now();
  await encryptAge(source(data), { write: (p) => Promise.resolve(void parts.push(...p)) }, {
    recipients: [x25519Recipient(await crypto.x25519PublicKey(secret))],
    crypto,
  });
  const t1 = performance.now();
  const file = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    file.set(p, at);
    at += p.length;
  }
  parts.length = 0;
  let n = 0;
  const t2 = performance.now();
  await decryptAge(source(file), {
    write: (p) => Promise.resolve(void p.forEach((x) => n += x.length)),
  }, {
    identities: [x25519Identity(secret)],
    crypto,
  });
  const t3 = performance.now();
  if (n !== size) throw new Error("round trip lost bytes");
  return [t1 - t0, t3 - t2];
}

const runtime = "Deno" in globalThis
  ? `Deno ${(globalThis as { Deno?: { version: { deno: string } } }).Deno!.version.deno}`
  : `Bun ${(globalThis as { Bun?: { version: string } }).Bun?.version}`;
const choice = await providerChoice();
const paths: [string, CryptoProvider][] = [["noble", nobleProvider]];
if (choice.families.chacha === "node") paths.push(["node:crypto", await getCryptoProvider()]);
console.log(
  `${runtime}; ${mib} MiB in memory; best of 3; ChaCha20-Poly1305 paths: ${
    paths.map((p) => p[0]).join(", ")
  }`,
);
for (const [name, crypto] of paths) {
  let seal = Infinity, open = Infinity;
  for (let i = 0; i < 3; i++) {
    const [s, o] = await once(crypto);
    seal = Math.min(seal, s);
    open = Math.min(open, o);
  }
  const mbs = (ms: number) => (size / 1e6 / (ms / 1000)).toFixed(0);
  console.log(
    `${name.padEnd(12)} seal ${mbs(seal).padStart(5)} MB/s   open ${mbs(open).padStart(5)} MB/s`,
  );
}
