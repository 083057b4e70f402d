const s = crypto.subtle;
const a = await s.generateKey({ name: "X25519" }, false, ["deriveBits"]) as CryptoKeyPair;
const b = await s.generateKey({ name: "X25519" }, true, ["deriveBits"]) as CryptoKeyPair;
const raw = new Uint8Array(await s.exportKey("raw", b.publicKey));
const pk8 = new Uint8Array(await s.exportKey("pkcs8", (await s.generateKey({ name: "X25519" }, true, ["deriveBits"]) as CryptoKeyPair).privateKey));
const ed = await s.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]) as CryptoKeyPair;
const m = new Uint8Array(200);
async function t(name: string, f: () => Promise<unknown>) {
  const c0 = process.cpuUsage(); const t0 = performance.now(); for (let i = 0; i < 3000; i++) await f();
  const el = performance.now() - t0; const c = process.cpuUsage(c0);
  console.log(name, (el / 3000 * 1000).toFixed(1), "µs wall", ((c.user + c.system) / 3000).toFixed(1), "µs cpu");
}
await t("derive", () => s.deriveBits({ name: "X25519", public: b.publicKey }, a.privateKey, 256));
await t("import raw x", () => s.importKey("raw", raw, { name: "X25519" }, false, []));
await t("import pkcs8 x", () => s.importKey("pkcs8", pk8, { name: "X25519" }, false, ["deriveBits"]));
await t("sign", () => s.sign("Ed25519", ed.privateKey, m));
await t("noop await", () => Promise.resolve(1));
