import { webcryptoProvider as w, nobleProvider as n } from "./crypto/mod.ts";
const k = new Uint8Array(32).fill(3), iv = new Uint8Array(12);
for (const size of [100, 500, 1000, 2000, 4000, 16000, 65536]) {
  const m = new Uint8Array(size);
  for (const [name, p] of [["web", w], ["noble", n]] as const) {
    const t0 = performance.now(); let c = 0;
    while (performance.now() - t0 < 300) { await p.aeadEncrypt("aes-256-gcm", k, iv, m, k); c++; }
    const h0 = performance.now(); let d = 0;
    while (performance.now() - h0 < 300) { await p.hmacSha256(k, m); d++; }
    console.log(size, name, "gcm", Math.round(c / 0.3), "hmac", Math.round(d / 0.3));
  }
}
