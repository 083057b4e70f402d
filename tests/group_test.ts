/**
 * The `group` STP (SPEC §19): 50 recipients open with the sender verified and a 51st
 * identity gets not-a-recipient (code 5), with hints and with hidden recipients, through
 * the library and through the CLI (a directory of cards for --to); de-duplication; the
 * payload decoder against truncation, bit flips, oversize counts and garbage.
 * @module
 */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { concatBytes, toHex } from "../core/bytes.ts";
import { type CborValue, decodeCbor, encodeCbor } from "../core/cbor.ts";
import { nobleProvider } from "../crypto/mod.ts";
import { decodeEnvelope, encodeEnvelope } from "../envelope/mod.ts";
import { MissiveError } from "../core/errors.ts";
import { cardFileText } from "../keys/card.ts";
import { createIdentity, type Identity, writeKeyFile } from "../keys/identity.ts";
import { defaultRegistry, openMessage, sealMessage } from "../mod.ts";
import { decodeGroupPayload, GROUP_TYPE } from "../stp/group/mod.ts";
import { MAX_SLOTS } from "../stp/group/_format.ts";
import { runCli, tempDir } from "./helpers.ts";

const registry = defaultRegistry();
const group = registry.stp(GROUP_TYPE, 1);
const text = registry.find("amp", "text/1");
const caps = { stps: [[3, 1]] as const, amps: [[1, 1]] as const };

/** Fixed identities: seeds from the index, so the suite is reproducible. */
function member(i: number, address = `member${i}@example.org`): Promise<Identity> {
  return createIdentity(nobleProvider, {
    address,
    ...caps,
    created: 1_700_000_000_000,
    signingSeed: new Uint8Array(32).fill(i + 1).map((b, j) => (b + j) & 255),
    agreementKey: new Uint8Array(32).fill(i + 101).map((b, j) => (b * 7 + j) & 255),
    hybridSeed: new Uint8Array(32).fill(i + 51).map((b, j) => (b * 3 + j) & 255),
  });
}
const alice = await member(200, "alice@example.org");
const members = await Promise.all(Array.from({ length: 51 }, (_, i) => member(i)));
const [recipients, outsider] = [members.slice(0, 50), members[50]];

const seal = (opts: { hide?: boolean; to?: Identity[]; text?: string; seq?: number } = {}) =>
  sealMessage({
    stp: group,
    amp: text,
    message: { text: opts.text ?? "hello team" },
    sender: alice,
    recipients: (opts.to ?? recipients).map((m) => m.card),
    hideRecipients: opts.hide ?? false,
    sequenceNumber: opts.seq,
  });
const open = (frame: Uint8Array, as: Identity) =>
  openMessage(frame, { registry, identity: as, trusted: [alice.card] });
const code = (c: string) => (e: unknown) => e instanceof MissiveError && e.code === c;

describe("group STP through the library", () => {
  for (const hide of [false, true]) {
    const mode = hide ? "hidden recipients" : "recipient hints";
    it(`${mode}: 50 recipients open with the sender verified; a 51st is not a recipient`, async () => {
      const sealed = await seal({ hide });
      const payload = decodeGroupPayload(decodeEnvelope(sealed).payload);
      assert.equal(payload.slotCount, hide ? 64 : 50, "slot count (hidden: padded)");
      for (const m of recipients) {
        const opened = await open(sealed, m);
        assert.deepEqual(opened.message, { text: "hello team" });
        assert.equal(opened.stp.name, "group");
        assert.equal(opened.sender?.address, alice.card.address);
        assert.equal(opened.sender?.verified, true);
        assert.equal(opened.sender?.trusted, true);
        assert.equal(opened.inner.destination, m.card.address);
      }
      const refused = await open(sealed, outsider).then(() => null, (e) => e);
      assert.ok(code("not-a-recipient")(refused), String(refused));
      assert.equal((refused as MissiveError).exitCode, 5);
    });
  }

  it("duplicate recipients (same keys, given twice) get one slot", async () => {
    const to = [recipients[0], recipients[1], recipients[0], recipients[1], recipients[2]];
    const sealed = await seal({ to });
    assert.equal(decodeGroupPayload(decodeEnvelope(sealed).payload).slotCount, 3);
    for (const m of to) assert.equal((await open(sealed, m)).sender?.verified, true);
  });

  it("seals nothing without a sender or recipients (usage)", async () => {
    await assert.rejects(seal({ to: [] }), code("usage"));
    await assert.rejects(
      sealMessage({ stp: group, amp: text, message: { text: "x" }, recipients: [alice.card] }),
      code("usage"),
    );
  });

  it("binds the envelope header: another sequence number fails authentication", async () => {
    const env = decodeEnvelope(await seal({ seq: 7, to: recipients.slice(0, 3) }));
    const moved = encodeEnvelope({ ...env, sequenceNumber: 8 });
    await assert.rejects(open(moved, recipients[0]), code("auth-failed"));
  });

  it("a hinted slot altered is auth-failed for its owner; a hidden one is not-a-recipient", async () => {
    for (const hide of [false, true]) {
      const sealed = await seal({ hide, to: [recipients[0]] });
      const env = decodeEnvelope(sealed);
      const map = decodeCbor(env.payload) as Map<number, CborValue>;
      const slots = new Uint8Array(map.get(6) as Uint8Array);
      // Every slot's last byte (its GCM tag): the order of the slots is unchanged.
      const size = hide ? 48 : 56;
      for (let i = size - 1; i < slots.length; i += size) slots[i] ^= 1;
      map.set(6, slots);
      const bad = encodeEnvelope({ ...env, payload: encodeCbor(map) });
      await assert.rejects(
        open(bad, recipients[0]),
        code(hide ? "not-a-recipient" : "auth-failed"),
      );
    }
  });
});

describe("group payload decoder: bad input gives a typed error", () => {
  const samples = Promise.all([
    seal({ to: recipients.slice(0, 4) }),
    seal({ hide: true, to: recipients.slice(0, 2) }),
  ]);

  it("every truncation and every single-bit flip of the payload is refused or fails to open", async () => {
    for (const sealed of await samples) {
      const env = decodeEnvelope(sealed);
      for (let n = 0; n < env.payload.length; n++) {
        assert.throws(() => decodeGroupPayload(env.payload.subarray(0, n)), code("malformed"));
      }
      for (let i = 0; i < env.payload.length; i++) {
        const bad = env.payload.slice();
        bad[i] ^= 1 << (i % 8);
        const frame = encodeEnvelope({ ...env, payload: bad });
        const result = await open(frame, recipients[0]).then(() => null, (e) => e);
        assert.ok(result instanceof MissiveError, `bit flip at ${i} accepted: ${result}`);
      }
    }
  });

  /** The table with its first two 56-byte slots swapped: out of order, whatever the bytes. */
  const swapFirstTwoSlots = (table: Uint8Array) =>
    concatBytes(table.subarray(56, 112), table.subarray(0, 56), table.subarray(112));

  it("oversize and inconsistent slot counts are refused before the table is read", async () => {
    const env = decodeEnvelope((await samples)[0]);
    const map = decodeCbor(env.payload) as Map<number, CborValue>;
    const edit = (key: number, value: CborValue) =>
      encodeCbor(new Map([...map, [key, value]]) as Map<number, CborValue>);
    for (
      const bad of [
        edit(5, MAX_SLOTS + 1),
        edit(5, 2 ** 40),
        edit(5, 0),
        edit(5, 5),
        edit(4, 3),
        edit(6, concatBytes(map.get(6) as Uint8Array, new Uint8Array(56))),
        edit(6, swapFirstTwoSlots(map.get(6) as Uint8Array)),
        edit(99, "grease"),
      ]
    ) {
      assert.throws(() => decodeGroupPayload(bad), code("malformed"), toHex(bad.subarray(0, 16)));
    }
  });

  it("garbage is malformed", () => {
    for (
      const g of [
        new Uint8Array(0),
        new Uint8Array([0xff]),
        encodeCbor([1, 2]),
        encodeCbor(new Map()),
      ]
    ) {
      assert.throws(() => decodeGroupPayload(g), code("malformed"));
    }
  });
});

describe("group STP through the CLI", () => {
  const tmp = tempDir("missive-group-test-");
  after(() => tmp.cleanup());
  const path = (...p: string[]) => join(tmp.dir, ...p);
  const ready = (async () => {
    mkdirSync(path("team"));
    writeFileSync(path("alice.key"), await writeKeyFile(nobleProvider, alice), { mode: 0o600 });
    writeFileSync(path("alice.card"), await cardFileText(nobleProvider, alice.card));
    for (const [i, m] of members.entries()) {
      writeFileSync(path(`m${i}.key`), await writeKeyFile(nobleProvider, m), { mode: 0o600 });
      // member 0 as a file of its own, 1..49 in a directory, 50 nowhere.
      const dir = i === 0 ? tmp.dir : i < 50 ? path("team") : undefined;
      if (dir) writeFileSync(join(dir, `m${i}.card`), await cardFileText(nobleProvider, m.card));
    }
  })();

  for (const hide of [false, true]) {
    const flags = hide ? ["--hide-recipients"] : [];
    it(`seal --stp group --to CARD --to DIR/ ${flags.join(" ")}: 50 open, the 51st exits 5`, async () => {
      await ready;
      const sealed = await runCli(
        [
          "seal",
          "--stp",
          "group",
          "--from",
          path("alice.key"),
          "--to",
          path("m0.card"),
          "--to",
          path("team"),
          "--to",
          path("m0.card"),
          ...flags,
        ],
        { stdin: "hello from the CLI" },
      );
      assert.equal(sealed.code, 0, sealed.stderr);
      const inspected = await runCli(["inspect", "--json"], { stdin: sealed.stdout });
      const report = JSON.parse(inspected.text);
      assert.equal(report.stp, "group");
      assert.equal(report.protocolVersion, 2);
      assert.equal(report.kem, "mlkem768x25519");
      assert.equal(report.slots, hide ? 64 : 50);
      assert.equal(report.recipientsHidden, hide);
      for (let i = 0; i < 50; i++) {
        const r = await runCli(
          ["open", "--key", path(`m${i}.key`), "--trust", path("alice.card")],
          {
            stdin: sealed.stdout,
          },
        );
        assert.equal(r.code, 0, `member ${i}: ${r.stderr}`);
        assert.equal(r.text, "hello from the CLI");
        assert.match(
          r.stderr,
          /^missive: group v2 from alice@example\.org .*signature verified, trusted/,
        );
      }
      const r = await runCli(["open", "--key", path("m50.key"), "--trust", path("alice.card")], {
        stdin: sealed.stdout,
      });
      assert.equal(r.code, 5, r.stderr);
      assert.equal(r.stdout.length, 0);
      assert.match(r.stderr, /^missive: not a recipient[^\n]*\n$/);
    });
  }

  it("open of a damaged group envelope: typed exit code, one stderr line, nothing on stdout", async () => {
    await ready;
    const sealed = await runCli(
      ["seal", "--stp", "group", "--from", path("alice.key"), "--to", path("team")],
      { stdin: "secret" },
    );
    assert.equal(sealed.code, 0, sealed.stderr);
    const env = decodeEnvelope(sealed.stdout);
    const map = decodeCbor(env.payload) as Map<number, CborValue>;
    const cases: [Uint8Array, number][] = [
      [sealed.stdout.subarray(0, sealed.stdout.length - 9), 3],
      [encodeEnvelope({ ...env, payload: encodeCbor(new Map([...map, [5, 70_000]])) }), 3],
      [encodeEnvelope({ ...env, payload: encodeCbor(new Map([...map, [4, 7]])) }), 3],
      [encodeEnvelope({ ...env, payload: new Uint8Array([0xa1, 0x01]) }), 3],
      [
        encodeEnvelope({ ...env, payload: encodeCbor(new Map([...map, [8, new Uint8Array(32)]])) }),
        4,
      ],
    ];
    for (const [input, exit] of cases) {
      const r = await runCli(["open", "--key", path("m1.key"), "--trust", path("alice.card")], {
        stdin: input,
      });
      assert.equal(r.code, exit, r.stderr);
      assert.equal(r.stdout.length, 0, "nothing on stdout");
      assert.match(r.stderr, /^missive: [^\n]+\n$/);
    }
    // inspect shows the header of a damaged group envelope and says the slots are unreadable.
    const inspected = await runCli(["inspect", "--json"], { stdin: cases[3][0] });
    assert.equal(inspected.code, 0, inspected.stderr);
    const report = JSON.parse(inspected.text);
    assert.equal(report.slots, null);
    assert.match(report.payloadError, /^group payload: /);
  });

  it("--hide-recipients is refused for an STP without hidden multi-recipient slots", async () => {
    await ready;
    const r = await runCli([
      "seal",
      "--from",
      path("alice.key"),
      "--to",
      path("m0.card"),
      "--hide-recipients",
    ], {
      stdin: "x",
    });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stdout.length, 0);
  });
});
