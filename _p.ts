import { webcryptoProvider as w, nobleProvider as n } from "./crypto/mod.ts";
import { encodeCbor, decodeCbor } from "./cbor.ts";
const seed = new Uint8Array(32).fill(7); const msg = new Uint8Array(300);
async function time(name: string, f: () => Promise<unknown> | unknown, ms = 500) {
  const t0 = performance.now(); let k = 0; while (performance.now() - t0 < ms) { await f(); k++; } console.log(name, Math.round(k / ((performance.now() - t0) / 1000)), "/s");
}
const pub = await w.x25519PublicKey(seed); const edpub = await w.ed25519PublicKey(seed); const sig = await w.ed25519Sign(seed, msg);
await time("x25519PublicKey fresh", () => w.x25519PublicKey(crypto.getRandomValues(new Uint8Array(32))));
await time("x25519 cached", () => w.x25519(seed, pub));
await time("x25519Generate", () => w.x25519Generate());
await time("ed sign cached", () => w.ed25519Sign(seed, msg));
await time("ed verify cached", () => w.ed25519Verify(edpub, msg, sig));
await time("ed verify fresh pub", () => w.ed25519Verify(edpub.slice(), msg, sig));
await time("hkdf", () => w.hkdfSha256(seed, seed, seed, 76));
await time("hkdf noble", () => n.hkdfSha256(seed, seed, seed, 76));
await time("hmac", () => w.hmacSha256(seed, msg));
await time("hmac noble", () => n.hmacSha256(seed, msg));
await time("gcm", () => w.aeadEncrypt("aes-256-gcm", seed, seed.subarray(0,12), msg, seed));
await time("sha256", () => w.sha256(msg));
await time("cbor enc", () => encodeCbor(new Map<number, any>([[1, msg], [2, 5], [3, "abc"]])));
const e = encodeCbor(new Map<number, any>([[1, msg], [2, 5], [3, "abc"]]));
await time("cbor dec", () => decodeCbor(e));
