/**
 * The CCTV age corpus (npm `cctv-age`, 143 vectors) through every provider path that
 * applies: noble for everything, and this runtime's automatic provider (WebCrypto X25519
 * and hashes where it has them, node:crypto ChaCha20-Poly1305 in Deno). Every vector's
 * expected outcome is asserted, with the hash of the plaintext released before a payload
 * failure; and success vectors round-trip through the armor and the header encoder.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { inflateSync } from "node:zlib";
import * as cctv from "cctv-age";
import { MissiveError } from "../core/errors.ts";
import {
  getCryptoProvider,
  nobleProvider,
  nodeCryptoProvider,
  providerChoice,
  webcryptoProvider,
} from "../crypto/mod.ts";
import type { CryptoProvider } from "../crypto/provider.ts";
import { dearmorSource } from "../stp/age/_armor.ts";
import { AgeReader, encodeHeader, readHeader } from "../stp/age/_format.ts";
import {
  type AgeIdentity,
  AgePayloadError,
  armorAge,
  decryptAge,
  parseIdentityFile,
  scryptIdentity,
} from "../stp/age/mod.ts";

interface Vector {
  name: string;
  expect: string;
  payload?: string;
  identities: string[];
  passphrases: string[];
  armored: boolean;
  file: Uint8Array;
}

function parseVector(name: string, bytes: Uint8Array): Vector {
  const v: Vector = {
    name,
    expect: "",
    identities: [],
    passphrases: [],
    armored: false,
    file: bytes,
  };
  let compressed = false;
  for (;;) {
    const nl = v.file.indexOf(0x0a);
    const line = new TextDecoder().decode(v.file.subarray(0, nl));
    v.file = v.file.subarray(nl + 1);
    if (line === "") break;
    const [key, value] = [line.slice(0, line.indexOf(": ")), line.slice(line.indexOf(": ") + 2)];
    if (key === "expect") v.expect = value;
    else if (key === "payload") v.payload = value;
    else if (key === "identity") v.identities.push(value);
    else if (key === "passphrase") v.passphrases.push(value);
    else if (key === "armored") v.armored = value === "yes";
    else if (key === "compressed") compressed = value === "zlib";
  }
  if (compressed) v.file = new Uint8Array(inflateSync(v.file));
  return v;
}

const vectors = Object.entries(cctv as unknown as Record<string, Uint8Array>)
  .filter(([, bytes]) => bytes instanceof Uint8Array)
  .map(([name, bytes]) => parseVector(name, bytes))
  .sort((a, b) => a.name.localeCompare(b.name));

/** Every outcome class of the corpus and the MissiveError code missive gives it (SPEC §26.6). */
const CODES: Record<string, string | undefined> = {
  success: undefined,
  "no match": "not-a-recipient",
  "HMAC failure": "auth-failed",
  "header failure": "malformed",
  "payload failure": "auth-failed",
  "armor failure": "malformed",
};

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function identitiesOf(v: Vector, crypto: CryptoProvider): Promise<AgeIdentity[]> {
  const ids: AgeIdentity[] = [];
  for (const text of v.identities) {
    ids.push(...await parseIdentityFile(new TextEncoder().encode(text), v.name, { crypto }));
  }
  return [...ids, ...v.passphrases.map((p) => scryptIdentity(p))];
}

/** Decrypts a vector; the released plaintext and the error, if any. */
async function run(v: Vector, crypto: CryptoProvider, armored?: boolean) {
  let at = 0;
  const source = {
    readInto(t: Uint8Array) {
      const n = Math.min(t.length, v.file.length - at);
      t.set(v.file.subarray(at, at + n));
      at += n;
      return Promise.resolve(n);
    },
  };
  const parts: Uint8Array[] = [];
  const sink = {
    write(batch: readonly Uint8Array[]) {
      parts.push(...batch.map((p) => p.slice()));
      return Promise.resolve();
    },
  };
  let error: unknown;
  try {
    await decryptAge(source, sink, { identities: await identitiesOf(v, crypto), crypto, armored });
  } catch (e) {
    error = e;
  }
  const released = Buffer.concat(parts);
  return { released, error };
}

function check(v: Vector, released: Uint8Array, error: unknown): void {
  const want = CODES[v.expect];
  assert.ok(v.expect in CODES, `${v.name}: unknown expectation ${v.expect}`);
  if (want === undefined) {
    assert.equal(error, undefined, `${v.name}: ${error}`);
    assert.equal(sha256(released), v.payload, `${v.name}: payload hash`);
    return;
  }
  assert.ok(error instanceof MissiveError, `${v.name}: expected ${v.expect}, got ${error}`);
  assert.equal(error.code, want, `${v.name}: ${error.message}`);
  const message = error.message;
  if (v.expect === "payload failure") {
    assert.ok(error instanceof AgePayloadError, `${v.name}: not a payload error: ${message}`);
    assert.equal(error.released, released.length);
  } else {
    assert.ok(!(error instanceof AgePayloadError), `${v.name}: ${message}`);
    if (v.expect !== "armor failure") assert.equal(released.length, 0, v.name);
  }
  if (v.expect === "HMAC failure") assert.match(message, /header MAC/, v.name);
  if (v.expect === "header failure") assert.match(message, /^parsing age header/, v.name);
  if (v.expect === "armor failure") assert.match(message, /^invalid armor/, v.name);
  if (v.payload !== undefined) assert.equal(sha256(released), v.payload, `${v.name}: partial hash`);
}

const choice = await providerChoice();
const paths: [string, CryptoProvider][] = [
  ["noble", nobleProvider],
  [
    `auto (x25519 ${choice.families.x25519}, chacha ${choice.families.chacha})`,
    await getCryptoProvider(),
  ],
  // Every path the table can pick for ChaCha20-Poly1305 and X25519 here.
  ["webcrypto", webcryptoProvider],
  ["node", nodeCryptoProvider],
];

describe("CCTV age corpus", () => {
  it("holds the 143 vectors in six outcome classes", () => {
    const counts: Record<string, number> = {};
    for (const v of vectors) counts[v.expect] = (counts[v.expect] ?? 0) + 1;
    assert.equal(vectors.length, 143);
    assert.deepEqual(counts, {
      "armor failure": 22,
      "header failure": 62,
      "HMAC failure": 1,
      "no match": 13,
      "payload failure": 19,
      success: 26,
    });
  });

  for (const [label, crypto] of paths) {
    it(`every vector gives its expected outcome: ${label}`, async () => {
      for (const v of vectors) {
        const { released, error } = await run(v, crypto, v.armored);
        check(v, released, error);
      }
    });
  }

  it("headers re-encode to their own bytes, and canonical armor re-armors to itself", async () => {
    let headers = 0, armors = 0;
    for (const v of vectors) {
      if (v.expect === "header failure" || v.expect === "armor failure") continue;
      let file = v.file;
      if (v.armored) {
        const text = new TextDecoder().decode(v.file);
        let at = 0;
        const src = {
          readInto(t: Uint8Array) {
            const n = Math.min(t.length, v.file.length - at);
            t.set(v.file.subarray(at, at + n));
            at += n;
            return Promise.resolve(n);
          },
        };
        const inner = dearmorSource(src);
        const buf = new Uint8Array(1 << 20);
        const n = await inner.readInto(buf);
        file = buf.slice(0, n);
        if (!/\r|^\s|\s\s$/.test(text) && text.endsWith("\n")) {
          assert.equal(new TextDecoder().decode(armorAge(file)), text, `${v.name}: armor`);
          armors++;
        }
      }
      let at = 0;
      const reader = new AgeReader({
        readInto(t: Uint8Array) {
          const n = Math.min(t.length, file.length - at);
          t.set(file.subarray(at, at + n));
          at += n;
          return Promise.resolve(n);
        },
      });
      const header = await readHeader(reader);
      const encoded = encodeHeader(header.stanzas, header.mac);
      assert.deepEqual(encoded, file.subarray(0, encoded.length), `${v.name}: header`);
      headers++;
    }
    assert.ok(headers >= 55 && armors >= 3, `${headers} headers, ${armors} armors`);
  });

  it("form detection finds armor by itself, with the same outcome class", async () => {
    const crypto = await getCryptoProvider();
    for (const v of vectors) {
      const { released, error } = await run(v, crypto);
      const want = CODES[v.expect];
      if (want === undefined) {
        assert.equal(error, undefined, `${v.name}: ${error}`);
        assert.equal(sha256(released), v.payload, v.name);
      } else {
        // Armor with garbage before it is not recognised as armor: still `malformed`.
        assert.ok(error instanceof MissiveError, `${v.name}: ${error}`);
        assert.equal(error.code, want, `${v.name}: ${error.message}`);
      }
    }
  });
});
