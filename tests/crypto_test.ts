import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { randomBytes } from "../core/bytes.ts";
import {
  type CryptoProvider,
  getCryptoProvider,
  nobleProvider,
  nodeCryptoProvider,
  providerChoice,
  runtimeName,
  selfTest,
  webcryptoProvider,
} from "../crypto/mod.ts";
import { MissiveError } from "../core/errors.ts";

/** Runs the same random inputs through two providers and demands identical bytes. */
async function agree(a: CryptoProvider, b: CryptoProvider, rounds: number) {
  for (let i = 0; i < rounds; i++) {
    const key = randomBytes(32),
      nonce = randomBytes(12),
      data = randomBytes(i * 37),
      aad = randomBytes(i % 50);
    const both = async <T>(f: (p: CryptoProvider) => Promise<T>) => {
      const [x, y] = await Promise.all([f(a), f(b)]);
      assert.deepEqual(x, y);
      return x;
    };
    await both((p) => p.sha256(data));
    await both((p) => p.sha512(data));
    await both((p) => p.hmacSha256(key, data));
    await both((p) => p.hkdfSha256(key, nonce, aad, 1 + (i % 100)));
    const sealed = await both((p) => p.aeadEncrypt("aes-256-gcm", key, nonce, data, aad));
    await both((p) => p.aeadDecrypt("aes-256-gcm", key, nonce, sealed, aad));
    const cc = await both((p) => p.aeadEncrypt("chacha20-poly1305", key, nonce, data, aad));
    await both((p) => p.aeadDecrypt("chacha20-poly1305", key, nonce, cc, aad));
    const bulk = randomBytes(20_000 + i);
    for (const alg of ["aes-256-gcm", "chacha20-poly1305"] as const) {
      const out = await both(async (p) => (await p.aeadKey(alg, key)).encrypt(nonce, bulk, aad));
      await both(async (p) => (await p.aeadKey(alg, key)).decrypt(nonce, out, aad));
    }
    const cbcKey = i % 2 === 0 ? key.subarray(0, 16) : key, iv = key.subarray(8, 24);
    const cbc = await both((p) => p.aesCbcEncrypt(cbcKey, iv, data));
    assert.equal(cbc.length, (Math.floor(data.length / 16) + 1) * 16);
    assert.deepEqual(await both((p) => p.aesCbcDecrypt(cbcKey, iv, cbc)), data);
    const pub = await both((p) => p.ed25519PublicKey(key));
    const sig = await both((p) => p.ed25519Sign(key, data));
    assert.equal(await both((p) => p.ed25519Verify(pub, data, sig)), true);
    const xpub = await both((p) => p.x25519PublicKey(key));
    const other = randomBytes(32);
    await both((p) => p.x25519(other, xpub));
  }
}

describe("crypto providers", () => {
  it("WebCrypto and noble give identical bytes on random inputs", async () => {
    await agree(webcryptoProvider, nobleProvider, 60);
  });

  it("node:crypto and noble give identical bytes on random inputs", async () => {
    await agree(nodeCryptoProvider, nobleProvider, 60);
  });

  it("the table's provider agrees with noble (size-based routing included)", async () => {
    await agree(await getCryptoProvider(), nobleProvider, 60);
    const choice = await providerChoice();
    assert.equal(choice.runtime, runtimeName());
    for (const f of ["ed25519", "x25519", "ml-kem"] as const) {
      assert.ok(["webcrypto", "noble", "node"].includes(choice.families[f]), choice.families[f]);
    }
  });

  it("the self-test: every path agrees with noble on this runtime", async () => {
    const results = await selfTest();
    assert.ok(results.length >= 12);
    for (const r of results) assert.ok(r.ok, `${r.path} ${r.family}: ${r.detail}`);
  });

  it("AES-CBC refuses bad lengths and bad padding with malformed, in both providers", async () => {
    const key = randomBytes(16), iv = randomBytes(16);
    // A block that decrypts to ...00 can never be valid PKCS #7 padding.
    const zeroEnd = await nobleProvider.aesCbcEncrypt(key, iv, new Uint8Array(16));
    for (const p of [webcryptoProvider, nobleProvider, nodeCryptoProvider]) {
      for (const bad of [new Uint8Array(0), new Uint8Array(15), zeroEnd.subarray(0, 16)]) {
        await assert.rejects(
          p.aesCbcDecrypt(key, iv, bad),
          (e) => e instanceof MissiveError && e.code === "malformed",
          `${p.name}: ${bad.length} bytes`,
        );
      }
    }
  });

  it("AEAD open fails with auth-failed on any tag or ciphertext change", async () => {
    for (const p of [webcryptoProvider, nobleProvider]) {
      const key = randomBytes(32), nonce = randomBytes(12);
      const sealed = await p.aeadEncrypt(
        "aes-256-gcm",
        key,
        nonce,
        randomBytes(40),
        new Uint8Array(),
      );
      for (let i = 0; i < sealed.length; i++) {
        const bad = sealed.slice();
        bad[i] ^= 1;
        await assert.rejects(
          p.aeadDecrypt("aes-256-gcm", key, nonce, bad, new Uint8Array()),
          (e) => e instanceof MissiveError && e.code === "auth-failed",
        );
      }
    }
  });

  it("x25519Ephemeral returns a public key whose agreement matches the peer's side", async () => {
    for (const p of [webcryptoProvider, nobleProvider]) {
      const peer = randomBytes(32);
      const peerPublic = await nobleProvider.x25519PublicKey(peer);
      const seen = new Set<string>();
      for (let i = 0; i < 20; i++) {
        const { publicKey, shared } = await p.x25519Ephemeral(peerPublic);
        assert.deepEqual(shared, await nobleProvider.x25519(peer, publicKey));
        seen.add(publicKey.join());
      }
      assert.equal(seen.size, 20, `${p.name}: ephemeral keys repeat`);
      await assert.rejects(
        p.x25519Ephemeral(new Uint8Array(32)),
        (e) => e instanceof MissiveError && e.code === "auth-failed",
      );
    }
  });

  it("x25519 refuses low-order points in both providers", async () => {
    for (const p of [webcryptoProvider, nobleProvider]) {
      await assert.rejects(
        p.x25519(randomBytes(32), new Uint8Array(32)),
        (e) => e instanceof MissiveError && e.code === "auth-failed",
      );
    }
  });
});
