/**
 * Wycheproof conformance (C2SP/wycheproof, testvectors_v1): every vector file in
 * ../shared/vectors/wycheproof/ runs through both crypto providers. The files are read in
 * place at run time and never copied into this tree. One `it` per (file, provider); a
 * failure lists every failing tcId, and each suite asserts a floor on the number of cases
 * it ran so that a changed file or filter cannot make it pass vacuously.
 * @module
 */
import { existsSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { type Bytes, concatBytes, equalBytes, fromHex, toHex } from "../core/bytes.ts";
import {
  type CryptoProvider,
  nobleProvider,
  nodeCryptoProvider,
  webcryptoProvider,
} from "../crypto/mod.ts";
import { MissiveError } from "../core/errors.ts";

const DIR = new URL("../../shared/vectors/wycheproof/", import.meta.url);
/** Every path (crypto/mod.ts PATHS): what the table may pick is checked here. */
const BOTH = [nobleProvider, webcryptoProvider, nodeCryptoProvider];

/** One Wycheproof test case: the common fields plus the file's own hex/number fields. */
interface Case {
  tcId: number;
  comment: string;
  flags: string[];
  result: "valid" | "invalid" | "acceptable";
  [field: string]: unknown;
}
interface Group {
  tests: Case[];
  [field: string]: unknown;
}

interface Suite {
  file: string;
  providers: CryptoProvider[];
  /** Minimum number of cases that must run. */
  floor: number;
  select?: (g: Group, t: Case) => boolean;
  /** Throws (an assertion error) when the provider disagrees with the vector. */
  check: (p: CryptoProvider, t: Case, g: Group) => Promise<void>;
}

/** The hex field `name` of a case (or group) as bytes. */
function hex(obj: Record<string, unknown>, name: string): Bytes {
  const b = fromHex(obj[name] as string);
  if (!b) throw new Error(`field ${name} is not hex`);
  return b;
}

/** Asserts that `op` fails, and if `code` is given, with that MissiveError code. */
async function refuses(op: () => Promise<unknown>, code?: string): Promise<void> {
  try {
    await op();
  } catch (e) {
    if (code) {
      assert.ok(
        e instanceof MissiveError && e.code === code,
        `threw ${String(e)}, expected MissiveError("${code}")`,
      );
    }
    return;
  }
  assert.fail("accepted, expected a refusal");
}

function sameHex(actual: Uint8Array, expected: Uint8Array, what: string): void {
  assert.ok(equalBytes(actual, expected), `${what}: got ${toHex(actual)}, want ${toHex(expected)}`);
}

/** AEAD cases: valid ones must encrypt to ct‖tag and decrypt back; others must not open. */
function aead(alg: "aes-256-gcm" | "chacha20-poly1305") {
  return async (p: CryptoProvider, t: Case, g: Group) => {
    const [key, iv, aad, msg] = [hex(t, "key"), hex(t, "iv"), hex(t, "aad"), hex(t, "msg")];
    const sealed = concatBytes(hex(t, "ct"), hex(t, "tag"));
    if (t.result === "valid") {
      sameHex(await p.aeadEncrypt(alg, key, iv, msg, aad), sealed, "encrypt");
      sameHex(await p.aeadDecrypt(alg, key, iv, sealed, aad), msg, "decrypt");
    } else {
      // A wrong-size nonce may be refused with any MissiveError; a bad tag is "auth-failed".
      await refuses(
        () => p.aeadDecrypt(alg, key, iv, sealed, aad),
        g.ivSize === 96 ? "auth-failed" : undefined,
      );
    }
  };
}

/** X25519 outcomes, per provider, for the report printed after the x25519 run. */
const x25519Refused = new Map<string, number[]>();

const SUITES: Suite[] = [
  {
    // The provider contract is 12-byte nonces and 16-byte tags; WebCrypto also refuses
    // other IV sizes. Both providers take 128-, 192- and 256-bit AES keys.
    file: "aes_gcm_test.json",
    providers: BOTH,
    floor: 190,
    select: (g) => g.ivSize === 96 && g.tagSize === 128,
    check: aead("aes-256-gcm"),
  },
  {
    // noble and node:crypto (where the runtime has it; else nodeCryptoProvider is noble):
    // WebCrypto has no ChaCha. The invalid-nonce-size groups must be refused.
    file: "chacha20_poly1305_test.json",
    providers: [nobleProvider, nodeCryptoProvider],
    floor: 320,
    check: aead("chacha20-poly1305"),
  },
  {
    // Truncated-tag groups (tagSize 128) compare the prefix of the full HMAC.
    file: "hmac_sha256_test.json",
    providers: BOTH,
    floor: 170,
    check: async (p, t, g) => {
      const mac = (await p.hmacSha256(hex(t, "key"), hex(t, "msg")))
        .subarray(0, (g.tagSize as number) / 8);
      const match = equalBytes(mac, hex(t, "tag"));
      assert.equal(match, t.result === "valid", `tag match ${match} for a ${t.result} case`);
    },
  },
  {
    file: "hkdf_sha256_test.json",
    providers: BOTH,
    floor: 80,
    check: async (p, t) => {
      const [ikm, salt, info, size] = [hex(t, "ikm"), hex(t, "salt"), hex(t, "info"), t.size];
      if ((size as number) > 255 * 32) {
        assert.equal(t.result, "invalid", "an output over 255 × 32 bytes must be invalid");
        await refuses(() => p.hkdfSha256(ikm, salt, info, size as number));
      } else {
        assert.equal(t.result, "valid", "unexpected non-valid case of a legal size");
        sameHex(await p.hkdfSha256(ikm, salt, info, size as number), hex(t, "okm"), "okm");
      }
    },
  },
  {
    // The file holds public keys only, so this checks verification (strict RFC 8032).
    file: "ed25519_test.json",
    providers: BOTH,
    floor: 145,
    check: async (p, t, g) => {
      const pub = hex(g.publicKey as Record<string, unknown>, "pk");
      const ok = await p.ed25519Verify(pub, hex(t, "msg"), hex(t, "sig"));
      assert.equal(ok, t.result === "valid", `verify returned ${ok} for a ${t.result} case`);
    },
  },
  {
    // valid: the exact shared secret. acceptable with a zero shared secret (low-order
    // public key): must throw "auth-failed" (RFC 7748 §6.1). Other acceptable (twist,
    // non-canonical public key): the exact secret, or a MissiveError, which is recorded.
    file: "x25519_test.json",
    providers: BOTH,
    floor: 500,
    check: async (p, t) => {
      const [priv, pub, want] = [hex(t, "private"), hex(t, "public"), hex(t, "shared")];
      if (t.result === "valid") {
        sameHex(await p.x25519(priv, pub), want, "shared");
      } else if (t.flags.includes("ZeroSharedSecret") || want.every((x) => x === 0)) {
        await refuses(() => p.x25519(priv, pub), "auth-failed");
      } else if (t.result === "acceptable") {
        let got: Bytes;
        try {
          got = await p.x25519(priv, pub);
        } catch (e) {
          assert.ok(e instanceof MissiveError, `threw a non-MissiveError: ${String(e)}`);
          x25519Refused.get(p.name)!.push(t.tcId);
          return;
        }
        sameHex(got, want, "shared");
      } else {
        let got: Bytes | undefined;
        try {
          got = await p.x25519(priv, pub);
        } catch {
          return;
        }
        assert.ok(!equalBytes(got, want), "an invalid case produced the listed secret");
      }
    },
  },
  // rsa_oaep_2048_sha256_mgf1sha256_test.json: see tests/wycheproof_rsa_test.ts (smime).
];

function load(file: string): Group[] {
  return JSON.parse(readFileSync(new URL(file, DIR), "utf8")).testGroups;
}

const present = existsSync(DIR);
const missing = `Wycheproof vectors not found at ${DIR.pathname}: ` +
  "the external-vector suite did NOT run";
if (!present) console.warn(missing);

describe("Wycheproof vectors", { skip: present ? false : missing }, () => {
  if (!present) return;
  for (const suite of SUITES) {
    const cases = load(suite.file).flatMap((g) =>
      g.tests.filter((t) => suite.select?.(g, t) ?? true).map((t) => ({ g, t }))
    );
    for (const p of suite.providers) {
      it(`${suite.file} via ${p.name} (${cases.length} cases)`, async () => {
        x25519Refused.set(p.name, []);
        const failures: string[] = [];
        let ran = 0;
        for (const { g, t } of cases) {
          ran++;
          try {
            await suite.check(p, t, g);
          } catch (e) {
            const what = `tcId ${t.tcId} (${t.result}; ${t.flags.join(",")}; ${t.comment})`;
            failures.push(`${what}: ${(e as Error).message}`);
          }
        }
        const where = `${suite.file} via ${p.name}`;
        assert.ok(ran >= suite.floor, `${where}: only ${ran} cases ran (floor ${suite.floor})`);
        const summary = `${where}: ${failures.length} of ${ran} failed`;
        assert.equal(failures.length, 0, [summary, ...failures].join("\n"));
        const refused = x25519Refused.get(p.name)!;
        if (suite.file.startsWith("x25519") && refused.length > 0) {
          console.log(`x25519 via ${p.name}: refused acceptable tcIds ${refused.join(",")}`);
        }
      });
    }
  }
});
