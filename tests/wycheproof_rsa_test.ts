/**
 * Wycheproof RSA-OAEP-2048 (SHA-256, MGF1-SHA-256) through the smime STP's key path:
 * keys/x509.ts parses the PKCS #8 key and imports it into WebCrypto, which decrypts.
 * RSA is WebCrypto-only (DESIGN §4: noble has no RSA), so there is one provider here.
 * Vectors are read from ../shared/vectors/wycheproof, never copied into the tree.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import process from "node:process";
import { describe, it } from "node:test";
import { fromHex, toHex } from "../core/bytes.ts";
import { importPrivateKey, parsePrivateKey } from "../keys/x509.ts";

const FILE = new URL(
  "../../shared/vectors/wycheproof/rsa_oaep_2048_sha256_mgf1sha256_test.json",
  import.meta.url,
);

interface OaepCase {
  tcId: number;
  msg: string;
  ct: string;
  label: string;
  result: "valid" | "invalid" | "acceptable";
  flags: string[];
}
interface OaepGroup {
  sha: string;
  mgfSha: string;
  privateKeyPkcs8: string;
  tests: OaepCase[];
}

const present = existsSync(FILE);
if (!present && process.env.CI !== "true") {
  console.warn(`Wycheproof RSA-OAEP vectors not found at ${FILE.pathname}: this suite did NOT run`);
}

describe("Wycheproof RSA-OAEP (smime key transport)", {
  skip: !present && process.env.CI !== "true",
}, () => {
  it("decrypts every valid case and refuses every invalid one", async () => {
    assert.ok(present, `missing ${FILE.pathname} (CI needs ../shared)`);
    const groups: OaepGroup[] = JSON.parse(readFileSync(FILE, "utf8")).testGroups;
    const failures: string[] = [];
    let ran = 0;
    for (const group of groups) {
      assert.equal(group.sha, "SHA-256");
      assert.equal(group.mgfSha, "SHA-256");
      const key = await parsePrivateKey(fromHex(group.privateKeyPkcs8)!);
      const handle = await importPrivateKey(key, { name: "RSA-OAEP", hash: "SHA-256" }, [
        "decrypt",
      ]);
      for (const t of group.tests) {
        ran++;
        let out: Uint8Array | undefined;
        try {
          out = new Uint8Array(
            await crypto.subtle.decrypt(
              { name: "RSA-OAEP", label: fromHex(t.label)! },
              handle,
              fromHex(t.ct)!,
            ),
          );
        } catch {
          out = undefined;
        }
        if (t.result === "valid" && (!out || toHex(out) !== t.msg)) {
          failures.push(
            `tcId ${t.tcId} (valid ${t.flags.join(",")}): ${out ? "wrong plaintext" : "refused"}`,
          );
        }
        if (t.result === "invalid" && out) {
          failures.push(`tcId ${t.tcId} (invalid ${t.flags.join(",")}): accepted`);
        }
      }
    }
    assert.ok(ran >= 35, `only ${ran} cases ran`);
    assert.deepEqual(failures, []);
  });
});
