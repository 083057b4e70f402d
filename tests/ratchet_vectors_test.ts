/**
 * The ratchet vectors (tests/vectors/ratchet.json, SPEC §25): every vector replays to its
 * recorded frames and outcomes through both crypto providers, failures leave the state
 * unchanged, the generator reproduces the file, and a second implementation written from
 * SPEC §25 alone — raw X25519, X-Wing, Ed25519, HKDF, HMAC and AES-GCM calls from noble,
 * deterministic CBOR from core/cbor.ts — reproduces every success vector byte for byte:
 * the bundle, every frame sent and every plaintext read.
 * @module
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { gcm } from "@noble/ciphers/aes.js";
import { ed25519, x25519 } from "@noble/curves/ed25519.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { ml_kem768_x25519 } from "@noble/post-quantum/hybrid.js";
import {
  type Bytes,
  concatBytes,
  equalBytes,
  fromHex,
  fromUtf8,
  toHex,
  utf8,
} from "../core/bytes.ts";
import { type CborMap, type CborValue, decodeCbor, encodeCbor, transcript } from "../core/cbor.ts";
import { nobleProvider, nodeCryptoProvider, webcryptoProvider } from "../crypto/mod.ts";
import { makeIdentities, PQ_IDENTITY_SPECS, randomStream } from "./vectors/common.ts";
import { playRatchetVector, type RatchetVector, ratchetVectors } from "./vectors/cases_ratchet.ts";

const file = JSON.parse(
  readFileSync(new URL("./vectors/ratchet.json", import.meta.url), "utf8"),
) as { identities: Record<string, string>[]; vectors: RatchetVector[] };
const vectors = file.vectors;
const ids = await makeIdentities(nobleProvider, PQ_IDENTITY_SPECS);

describe("ratchet vectors", () => {
  it("has at least as many failures as successes, and every case the issue lists", () => {
    const ok = vectors.filter((v) => v.expect.outcome === "success").length;
    assert.ok(ok >= 5 && vectors.length - ok >= ok, `${ok} of ${vectors.length}`);
    const names = vectors.map((v) => v.name).join(" ");
    for (
      const c of [
        "in-order",
        "out-of-order",
        "duplicate",
        "lost",
        "skipped-beyond-limit",
        "expired",
        "wrong-identity",
        "tampered-header",
        "tampered-body",
        "replayed-initial",
      ]
    ) assert.match(names, new RegExp(c), c);
  });

  for (
    const [name, provider] of [
      ["noble", nobleProvider],
      ["webcrypto", webcryptoProvider],
      ["node", nodeCryptoProvider],
    ] as const
  ) {
    it(`every vector replays exactly, failures leave the state unchanged (${name})`, async () => {
      for (const v of vectors) {
        const played = await playRatchetVector(provider, ids, v, randomStream);
        assert.equal(played.bundle, v.bundle.bytes, v.name);
        assert.deepEqual(played.steps, v.steps, v.name);
        assert.equal(played.outcome, v.expect.outcome, v.name);
        const last = v.steps[v.steps.length - 1];
        if (v.expect.outcome !== "success" && last.op === "receive") {
          assert.equal(last.expect?.stateUnchanged, true, v.name);
        }
      }
    });
  }

  it("the generator reproduces the committed vectors", async () => {
    const again = JSON.parse(
      JSON.stringify(await ratchetVectors(nobleProvider, ids, randomStream)),
    );
    assert.deepEqual(again, vectors);
  });

  it("SPEC §25 alone, with raw primitives, reproduces every success vector", () => {
    const done = vectors.filter((v) => v.expect.outcome === "success").map((v) => {
      specReplay(v);
      return v.name;
    });
    assert.ok(done.length >= 5, done.join(" "));
  });
});

// ---------------------------------------------------------------------------------------
// A second implementation of SPEC §25, for success vectors only.

const P = "missive/stp/ratchet/v1";
const hx = (s: string) => fromHex(s)!;
const identity = (name: string) => {
  const i = file.identities.find((x) => x.name === name)!;
  return {
    signingSeed: hx(i.signingSeed),
    secret: hx(i.agreementKey),
    signingKey: hx(i.signingKey),
    agreementKey: hx(i.agreementPublicKey),
    hybridKey: i.hybridKey ? hx(i.hybridKey) : null,
    id: hx(i.id),
    card: hx(i.card),
  };
};
type Ident = ReturnType<typeof identity>;

const kdfRk = (rk: Bytes, dh: Uint8Array) => {
  const okm = hkdf(sha256, dh, rk, transcript(`${P}/root`), 64);
  return { rk: okm.slice(0, 32) as Bytes, ck: okm.slice(32) as Bytes };
};
const kdfCk = (ck: Bytes) => ({
  mk: hmac(sha256, ck, transcript(`${P}/message`)) as Bytes,
  ck: hmac(sha256, ck, transcript(`${P}/chain`)) as Bytes,
});
const keys = (mk: Bytes) => {
  const okm = hkdf(sha256, mk, new Uint8Array(0), transcript(`${P}/keys`), 60);
  return { key: okm.slice(0, 32), iv: okm.slice(32, 44) };
};

interface SignedPrekey {
  id: number;
  secret: Bytes;
  seed: Bytes;
  pub: Bytes;
  kemPub: Bytes;
  created: number;
  sig: Bytes;
}

/** One side's Double Ratchet state (SPEC §25.6). */
interface Side {
  binding: Bytes;
  rk: Bytes;
  dhs: Bytes;
  dhr: Bytes | null;
  cks: Bytes | null;
  ckr: Bytes | null;
  ns: number;
  nr: number;
  pn: number;
  skipped: Map<string, Bytes>;
  initial: CborValue[] | null;
  initialMap: CborMap | null;
  draw: (n: number) => Bytes;
}

function specReplay(v: RatchetVector): void {
  const A = identity(v.initiator);
  const B = identity(v.responder);
  const k = randomStream(v.keyring.random);
  // §25.2: a signed prekey draws its X25519 secret, then its X-Wing seed.
  const makeSigned = (id: number, created: number): SignedPrekey => {
    const secret = k(32);
    const seed = k(32);
    const pub = x25519.getPublicKey(secret) as Bytes;
    const kemPub = ml_kem768_x25519.getPublicKey(seed) as Bytes;
    const sig = ed25519.sign(
      transcript(`${P}/prekey`, B.id, id, pub, kemPub, created),
      B.signingSeed,
    ) as Bytes;
    return { id, secret, seed, pub, kemPub, created, sig };
  };
  const signed = [makeSigned(1, v.keyring.created)];
  const oneTime = Array.from({ length: v.keyring.oneTime }, (_, i) => {
    const secret = k(32);
    return { id: i + 1, secret, pub: x25519.getPublicKey(secret) as Bytes };
  });
  const spk = signed[0];
  const opk = v.bundle.oneTime ? oneTime[0] : undefined;
  const spkMap = new Map<number, CborValue>([
    [1, spk.id],
    [2, spk.pub],
    [3, spk.kemPub],
    [4, spk.created],
    [5, spk.sig],
  ]);
  const bundle = new Map<number, CborValue>([[1, B.id], [2, spkMap]]);
  if (opk) bundle.set(3, new Map<number, CborValue>([[1, opk.id], [2, opk.pub]]));
  assert.equal(toHex(encodeCbor(bundle)), v.bundle.bytes, `${v.name}: bundle`);

  // §25.3, the initiator.
  const binding = (i: Ident, r: Ident) =>
    sha256(transcript(
      `${P}/identities`,
      i.signingKey,
      i.agreementKey,
      i.hybridKey,
      r.signingKey,
      r.agreementKey,
      r.hybridKey,
    )) as Bytes;
  const agreementInfo = (
    s: { id: number; pub: Bytes; kemPub: Bytes },
    o: { id: number; pub: Bytes } | undefined,
    e: Bytes,
    ct: Bytes,
  ) =>
    transcript(
      `${P}/agreement`,
      B.id,
      s.id,
      s.pub,
      sha256(s.kemPub),
      o?.id ?? null,
      o?.pub ?? null,
      e,
      sha256(ct),
    );
  const ia = randomStream(v.random.initiator);
  const e = ia(32);
  const E = x25519.getPublicKey(e) as Bytes;
  const { cipherText: ct, sharedSecret: ss } = ml_kem768_x25519.encapsulate(spk.kemPub, ia(64));
  const dh = [
    x25519.getSharedSecret(A.secret, spk.pub),
    x25519.getSharedSecret(e, B.agreementKey),
    x25519.getSharedSecret(e, spk.pub),
    ...(opk ? [x25519.getSharedSecret(e, opk.pub)] : []),
  ];
  const bindingAB = binding(A, B);
  const sk = hkdf(
    sha256,
    concatBytes(...dh, ss),
    bindingAB,
    agreementInfo(spk, opk, E, ct as Bytes),
    32,
  );
  const dhs = ia(32);
  const first = kdfRk(sk as Bytes, x25519.getSharedSecret(dhs, spk.pub));
  const initialFields: CborValue[] = [A.card, B.id, spk.id, opk?.id ?? null, E, ct as Bytes];
  const initialMap = new Map<number, CborValue>([[1, A.card], [2, B.id], [3, spk.id]]);
  if (opk) initialMap.set(4, opk.id);
  initialMap.set(5, E).set(6, ct as Bytes);
  const sides: Record<string, Side | undefined> = {
    initiator: {
      binding: bindingAB,
      rk: first.rk,
      dhs,
      dhr: spk.pub,
      cks: first.ck,
      ckr: null,
      ns: 0,
      nr: 0,
      pn: 0,
      skipped: new Map(),
      initial: initialFields,
      initialMap,
      draw: ia,
    },
  };
  const responderDraw = randomStream(v.random.responder);
  const usedOneTime = new Set<number>();

  const aad = (s: Side, h: { key: Bytes; pn: number; n: number }, initial: CborValue[] | null) =>
    transcript(`${P}/aad`, 9, 1, null, s.binding, h.key, h.pn, h.n, initial);
  const frames: Bytes[] = [];
  let nextSigned = 2;

  for (const step of v.steps) {
    if (step.op === "send") {
      const s = sides[step.by]!;
      const { mk, ck } = kdfCk(s.cks!);
      s.cks = ck;
      const h = { key: x25519.getPublicKey(s.dhs) as Bytes, pn: s.pn, n: s.ns };
      const inner = encodeCbor(
        new Map<number, CborValue>([[1, 1], [2, 1], [3, utf8(step.text)], [4, step.at]]),
      );
      const { key, iv } = keys(mk);
      const body = gcm(key, iv, aad(s, h, s.initial)).encrypt(inner);
      const payload = new Map<number, CborValue>([[1, h.key], [2, h.pn], [3, h.n], [4, body]]);
      if (s.initialMap) payload.set(5, s.initialMap);
      const frame = concatBytes(
        fromHex("d9d9f7")!,
        encodeCbor(new Map<number, CborValue>([[1, 9], [2, 1], [4, encodeCbor(payload)]])),
      );
      assert.equal(toHex(frame), step.frame, `${v.name}: frame ${frames.length}`);
      frames.push(frame);
      s.ns++;
    } else if (step.op === "receive") {
      const env = decodeCbor(frames[step.input.frame].subarray(3)) as CborMap;
      const p = decodeCbor(env.get(4) as Uint8Array) as CborMap;
      const h = { key: p.get(1) as Bytes, pn: p.get(2) as number, n: p.get(3) as number };
      const init = p.get(5) as CborMap | undefined;
      let s = sides[step.by];
      if (!s) {
        // §25.3, the responder: prekey secrets from the keyring by ID.
        const sp = signed.find((x) => x.id === init!.get(3))!;
        const oid = init!.get(4) as number | undefined;
        const op = oid === undefined ? undefined : oneTime.find((x) => x.id === oid)!;
        assert.ok(op === undefined || !usedOneTime.has(op.id), `${v.name}: one-time prekey reused`);
        if (op) usedOneTime.add(op.id);
        const e2 = init!.get(5) as Bytes;
        const ct2 = init!.get(6) as Bytes;
        const dh2 = [
          x25519.getSharedSecret(sp.secret, A.agreementKey),
          x25519.getSharedSecret(B.secret, e2),
          x25519.getSharedSecret(sp.secret, e2),
          ...(op ? [x25519.getSharedSecret(op.secret, e2)] : []),
        ];
        const ss2 = ml_kem768_x25519.decapsulate(ct2, sp.seed);
        const sk2 = hkdf(
          sha256,
          concatBytes(...dh2, ss2),
          bindingAB,
          agreementInfo(sp, op, e2, ct2),
          32,
        );
        s = sides[step.by] = {
          binding: bindingAB,
          rk: sk2 as Bytes,
          dhs: sp.secret,
          dhr: null,
          cks: null,
          ckr: null,
          ns: 0,
          nr: 0,
          pn: 0,
          skipped: new Map(),
          initial: null,
          initialMap: null,
          draw: responderDraw,
        };
      }
      const initialFields2 = init
        ? [
          init.get(1)!,
          init.get(2)!,
          init.get(3)!,
          init.get(4) ?? null,
          init.get(5)!,
          init.get(6)!,
        ]
        : null;
      const id = `${toHex(h.key)}/${h.n}`;
      let mk = s.skipped.get(id);
      s.skipped.delete(id);
      const skip = (until: number) => {
        for (; s!.nr < until; s!.nr++) {
          const step2 = kdfCk(s!.ckr!);
          s!.skipped.set(`${toHex(s!.dhr!)}/${s!.nr}`, step2.mk);
          s!.ckr = step2.ck;
        }
      };
      if (!mk) {
        if (!(s.dhr && equalBytes(h.key, s.dhr) && s.ckr)) {
          // DH ratchet step (§25.6 step 6).
          if (s.ckr) skip(h.pn);
          s.pn = s.ns;
          s.ns = 0;
          s.nr = 0;
          s.dhr = h.key;
          const r1 = kdfRk(s.rk, x25519.getSharedSecret(s.dhs, h.key));
          s.ckr = r1.ck;
          s.dhs = s.draw(32);
          const r2 = kdfRk(r1.rk, x25519.getSharedSecret(s.dhs, h.key));
          s.rk = r2.rk;
          s.cks = r2.ck;
        }
        skip(h.n);
        const step2 = kdfCk(s.ckr!);
        s.ckr = step2.ck;
        s.nr++;
        mk = step2.mk;
      }
      const { key, iv } = keys(mk);
      const inner = decodeCbor(
        gcm(key, iv, aad(s, h, initialFields2)).decrypt(p.get(4) as Bytes),
      ) as CborMap;
      assert.equal(fromUtf8(inner.get(3) as Uint8Array), step.expect?.text, `${v.name}: read`);
      // Reading anything ends the initiator's initial header.
      s.initial = null;
      s.initialMap = null;
    } else if (step.op === "restart") {
      if (step.forget) sides[step.by] = undefined;
    } else {
      const current = signed[signed.length - 1];
      if (step.at - current.created >= 7 * 86_400_000) {
        signed.push(makeSigned(nextSigned++, step.at));
      }
    }
  }
}
