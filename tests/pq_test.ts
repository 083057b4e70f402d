/**
 * Post-quantum STP versions (SPEC §5.10, §19.10): simple v3 and group v2 between hybrid
 * identities; the whole-message fallback to simple v2 / group v1 with one warning when a
 * recipient card is classical; `requirePq` / `--require-pq` refusing instead; tampering
 * with X-Wing ciphertexts; dummy slots that look like real ones; and the sizes SPEC
 * §19.10.5 states (recipients under the 64 MiB envelope, the 1 MiB listener frame and the
 * relay's 64 KiB default).
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { type Bytes, toHex } from "../core/bytes.ts";
import { type CborMap, decodeCbor, encodeCbor } from "../core/cbor.ts";
import { MissiveError } from "../core/errors.ts";
import { getCryptoProvider, XWING_CIPHERTEXT_SIZE } from "../crypto/mod.ts";
import { decodeEnvelope, encodeEnvelope, MAX_ENVELOPE_SIZE } from "../envelope/mod.ts";
import { cardFileText } from "../keys/card.ts";
import { type Identity, writeKeyFile } from "../keys/identity.ts";
import {
  defaultRegistry,
  openMessage,
  PostQuantumRequiredError,
  sealMessage,
  type SealRequest,
} from "../mod.ts";
import { decodeGroupPayload } from "../stp/group/mod.ts";
import { fixedIdentity, runCli, tempDir } from "./helpers.ts";

const registry = defaultRegistry();
const crypto = await getCryptoProvider();
const text = registry.find("amp", "text/1");
const code = (c: string) => (e: unknown) => e instanceof MissiveError && e.code === c;

const alice = await fixedIdentity("alice@example.org", 1);
const bob = await fixedIdentity("bob@example.org", 10);
const carol = await fixedIdentity("carol@example.org", 20, { hybrid: false });
const team = await Promise.all(
  Array.from({ length: 12 }, (_, i) => fixedIdentity(`m${i}@example.org`, 30 + 3 * i)),
);

function seal(stp: string, to: Identity[], extra: Partial<SealRequest<unknown>> = {}) {
  return sealMessage({
    stp: registry.find("stp", stp),
    amp: text,
    message: { text: "hello" },
    sender: alice,
    recipients: to.map((i) => i.card),
    crypto,
    ...extra,
  });
}
const open = (frame: Uint8Array, as: Identity) =>
  openMessage(frame, { registry, identity: as, trusted: [alice.card], crypto });
const payloadOf = (frame: Uint8Array) => decodeCbor(decodeEnvelope(frame).payload) as CborMap;
/** Re-encodes an envelope whose payload map was edited. */
function withPayload(frame: Uint8Array, edit: (m: CborMap) => void): Bytes {
  const env = decodeEnvelope(frame);
  const m = decodeCbor(env.payload) as CborMap;
  edit(m);
  return encodeEnvelope({ ...env, payload: encodeCbor(m) });
}

describe("simple v3 (X-Wing)", () => {
  it("seals to a hybrid card with version 3 and opens; the KEM is named", async () => {
    const frame = await seal("simple", [bob]);
    assert.equal(decodeEnvelope(frame).protocolVersion, 3);
    assert.equal((payloadOf(frame).get(5) as Bytes).length, XWING_CIPHERTEXT_SIZE);
    const opened = await open(frame, bob);
    assert.deepEqual(opened.message, { text: "hello" });
    assert.equal(opened.stp.properties.kem, "mlkem768x25519");
    assert.equal(opened.sender?.trusted, true);
  });

  it("an altered X-Wing ciphertext, ML-KEM or X25519 part, is auth-failed", async () => {
    const frame = await seal("simple", [bob]);
    for (const at of [0, 500, XWING_CIPHERTEXT_SIZE - 32, XWING_CIPHERTEXT_SIZE - 1]) {
      const bad = withPayload(frame, (m) => {
        const ct = (m.get(5) as Bytes).slice();
        ct[at] ^= 1;
        m.set(5, ct);
      });
      await assert.rejects(open(bad, bob), code("auth-failed"), `byte ${at}`);
    }
    const lowOrder = withPayload(frame, (m) => {
      const ct = (m.get(5) as Bytes).slice();
      ct.fill(0, XWING_CIPHERTEXT_SIZE - 32);
      m.set(5, ct);
    });
    await assert.rejects(open(lowOrder, bob), code("auth-failed"));
    const short = withPayload(frame, (m) => m.set(5, (m.get(5) as Bytes).slice(1)));
    await assert.rejects(open(short, bob), code("malformed"));
  });

  it("not for me is decided before decapsulating; a v2 payload under version 3 is malformed", async () => {
    const frame = await seal("simple", [bob]);
    await assert.rejects(open(frame, team[0]), code("not-a-recipient"));
    const v2 = await seal("simple/2", [bob]);
    const moved = encodeEnvelope({ ...decodeEnvelope(v2), protocolVersion: 3 });
    await assert.rejects(open(moved, bob), code("malformed"));
  });
});

describe("falling back, or refusing, for classical cards", () => {
  it("simple: a classical card makes the message simple v2, with exactly one warning", async () => {
    const warnings: string[] = [];
    const frame = await seal("simple", [carol], { onWarning: (w) => warnings.push(w) });
    assert.equal(decodeEnvelope(frame).protocolVersion, 2);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /carol@example\.org has no post-quantum key .* simple v2/);
    assert.deepEqual((await open(frame, carol)).message, { text: "hello" });
  });

  it("group: one classical card makes the whole message group v1, with one warning", async () => {
    const warnings: string[] = [];
    const to = [bob, carol, ...team.slice(0, 3)];
    const frame = await seal("group", to, { onWarning: (w) => warnings.push(w) });
    assert.equal(decodeEnvelope(frame).protocolVersion, 1);
    assert.equal(warnings.length, 1);
    for (const r of to) assert.deepEqual((await open(frame, r)).message, { text: "hello" });
  });

  it("requirePq refuses classical cards (key) and STPs without a post-quantum KEM (usage)", async () => {
    const refused = async (p: Promise<unknown>, c: string, who: string[]) =>
      await assert.rejects(p, (e) => {
        assert.ok(e instanceof PostQuantumRequiredError);
        assert.equal(e.code, c);
        assert.deepEqual(e.classicalRecipients, who);
        return true;
      });
    const warnings: string[] = [];
    await refused(
      seal("simple", [carol], { requirePq: true, onWarning: (w) => warnings.push(w) }),
      "key",
      ["carol@example.org"],
    );
    await refused(seal("group", [bob, carol], { requirePq: true }), "key", ["carol@example.org"]);
    await refused(seal("simple/2", [bob], { requirePq: true }), "usage", []);
    await refused(seal("group/1", [bob], { requirePq: true }), "usage", []);
    await refused(seal("auth", [], { requirePq: true }), "usage", []);
    assert.deepEqual(warnings, []);
    const ok = await seal("group", [bob, ...team.slice(0, 2)], { requirePq: true });
    assert.equal(decodeEnvelope(ok).protocolVersion, 2);
  });
});

describe("group v2 (X-Wing slots)", () => {
  for (const hide of [false, true]) {
    it(`${hide ? "hidden" : "hinted"}: 12 recipients open, an outsider is not a recipient`, async () => {
      const frame = await seal("group", team, { hideRecipients: hide });
      assert.equal(decodeEnvelope(frame).protocolVersion, 2);
      const p = decodeGroupPayload(decodeEnvelope(frame).payload, 2);
      assert.equal(p.slotCount, hide ? 16 : 12);
      assert.equal(p.slots.length, p.slotCount * 1176);
      for (const m of team) {
        const opened = await open(frame, m);
        assert.deepEqual(opened.message, { text: "hello" });
        assert.equal(opened.stp.properties.kem, "mlkem768x25519");
      }
      await assert.rejects(open(frame, bob), code("not-a-recipient"));
    });
  }

  it("dummy slots carry real-looking X-Wing ciphertexts (canonical X25519 parts)", async () => {
    const frame = await seal("group", team.slice(0, 5), { hideRecipients: true });
    const p = decodeGroupPayload(decodeEnvelope(frame).payload, 2);
    assert.equal(p.slotCount, 8);
    for (let i = 0; i < p.slotCount; i++) {
      const xPart = p.slots.subarray(i * 1176 + 8 + 1088, i * 1176 + 8 + 1120);
      assert.equal(xPart[31] & 0x80, 0, `slot ${i}: an X25519 public key has bit 255 clear`);
    }
  });

  it("an altered slot fails for every recipient: its owner at the unwrap, the rest at the signature", async () => {
    const frame = await seal("group", team.slice(0, 3));
    for (let slot = 0; slot < 3; slot++) {
      const bad = withPayload(frame, (m) => {
        const slots = (m.get(6) as Bytes).slice();
        slots[slot * 1176 + 8 + 100] ^= 1; // inside the ML-KEM ciphertext
        m.set(6, slots);
      });
      // The signature covers SHA-256(slots), so no recipient accepts the altered table.
      for (const m of team.slice(0, 3)) await assert.rejects(open(bad, m), code("auth-failed"));
    }
  });

  it("decoding: a table not slotCount × 1176 bytes, or a v1 table under version 2, is malformed", async () => {
    const frame = await seal("group", team.slice(0, 2));
    const short = withPayload(frame, (m) => m.set(6, (m.get(6) as Bytes).slice(1)));
    await assert.rejects(open(short, team[0]), code("malformed"));
    const v1 = await seal("group/1", team.slice(0, 2));
    const moved = encodeEnvelope({ ...decodeEnvelope(v1), protocolVersion: 2 });
    await assert.rejects(open(moved, team[0]), code("malformed"));
  });

  it("a slot table that cannot fit 64 MiB is refused before any key work, naming the limit", async () => {
    const huge = new Uint8Array(MAX_ENVELOPE_SIZE - 8000);
    const big = { ...text, encode: () => huge };
    await assert.rejects(
      sealMessage({
        stp: registry.find("stp", "group"),
        amp: big,
        message: { text: "" },
        sender: alice,
        recipients: team.slice(0, 3).map((m) => m.card),
        hideRecipients: true,
        crypto,
      }),
      (e) =>
        code("too-large")(e) &&
        /group v2: 3 recipients need 4 key slots of 1176 bytes .* at most 2 slots/.test(
          String(e),
        ),
    );
  });

  it("sizes: 1,176 bytes per recipient; the recipient counts SPEC §19.10.5 states", async () => {
    const sizes = [];
    for (const n of [1, 2, 3]) sizes.push((await seal("group", team.slice(0, n))).length);
    assert.equal(sizes[1] - sizes[0], 1176);
    assert.equal(sizes[2] - sizes[1], 1176);
    // Beyond 255 and 65,535 bytes the CBOR length heads of the slot table and the payload
    // grow by 1 and 2 bytes: size(n) = base + 1176 n + 3 for the counts below.
    const base = sizes[0] - 1176;
    const size = (n: number) => base + 1176 * n + 3;
    const most = (cap: number) => Math.floor((cap - base - 3) / 1176);
    // "hello" with the sender's card attached (a hybrid card listing every built-in pair).
    assert.equal(alice.card.bytes.length, 1450);
    assert.equal(base, 1729); // SPEC §19.10.5: 1,729 + 1,176·n
    assert.equal(most(64 * 1024), 54);
    assert.equal(most(1024 * 1024), 890);
    assert.ok(size(54) <= 64 * 1024 && size(55) > 64 * 1024);
    assert.ok(size(890) <= 1024 * 1024 && size(891) > 1024 * 1024);
    assert.equal(Math.floor((MAX_ENVELOPE_SIZE - base - 5) / 1176), 57_063);
  });
});

describe("--require-pq and the fallback warning through the CLI", () => {
  const tmp = tempDir("missive-pq-cli-");
  after(() => tmp.cleanup());
  const file = (name: string) => join(tmp.dir, name);
  const ready = (async () => {
    writeFileSync(file("alice.key"), await writeKeyFile(crypto, alice), { mode: 0o600 });
    writeFileSync(file("bob.card"), await cardFileText(crypto, bob.card));
    writeFileSync(file("carol.card"), await cardFileText(crypto, carol.card));
  })();

  it("seal --require-pq to a classical card: exit 9, one line, nothing on stdout", async () => {
    await ready;
    const r = await runCli(
      ["seal", "--require-pq", "--from", file("alice.key"), "--to", file("carol.card")],
      { stdin: "hi" },
    );
    assert.equal(r.code, 9, r.stderr);
    assert.equal(r.stdout.length, 0);
    assert.equal(r.stderr.trim().split("\n").length, 1);
    assert.match(r.stderr, /carol@example\.org has a card without a post-quantum key/);
  });

  it("seal to a classical card: one warning, simple v2, inspect says x25519", async () => {
    await ready;
    const r = await runCli(
      ["seal", "--from", file("alice.key"), "--to", file("carol.card"), "--to", file("bob.card")],
      { stdin: "hi" },
    );
    assert.equal(r.code, 2, "simple takes one recipient");
    const one = await runCli(["seal", "--from", file("alice.key"), "--to", file("carol.card")], {
      stdin: "hi",
    });
    assert.equal(one.code, 0, one.stderr);
    assert.equal(one.stderr.match(/warning/g)?.length, 1, one.stderr);
    const report = JSON.parse((await runCli(["inspect", "--json"], { stdin: one.stdout })).text);
    assert.equal(report.protocolVersion, 2);
    assert.equal(report.kem, "x25519");
  });

  it("seal --require-pq to hybrid cards: group v2, inspect says mlkem768x25519", async () => {
    await ready;
    const r = await runCli([
      "seal",
      "--stp",
      "group",
      "--require-pq",
      "--from",
      file("alice.key"),
      "--to",
      file("bob.card"),
    ], { stdin: "hi" });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    const report = JSON.parse((await runCli(["inspect", "--json"], { stdin: r.stdout })).text);
    assert.deepEqual([report.protocolVersion, report.kem, report.slots], [2, "mlkem768x25519", 1]);
  });

  it("send --require-pq refuses a classical recipient before any transport", async () => {
    await ready;
    const r = await runCli([
      "send",
      "stdio:lines",
      "--require-pq",
      "--from",
      file("alice.key"),
      "--to",
      file("carol.card"),
    ], { stdin: "hi" });
    assert.equal(r.code, 9, r.stderr);
    assert.equal(r.stdout.length, 0);
    const ok = await runCli([
      "send",
      "stdio:lines",
      "--require-pq",
      "--from",
      file("alice.key"),
      "--to",
      file("bob.card"),
    ], { stdin: "hi" });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(
      toHex(decodeEnvelope(Uint8Array.fromBase64(ok.text.trim())).payload).length > 0,
      true,
    );
  });
});
