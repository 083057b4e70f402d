/**
 * One conformance suite over every STP and AMP, built in or shipped in plugins/
 * (STYLE §16): round trip, tamper at every byte, truncation, wrong key, unknown fields.
 */
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { utf8 } from "../core/bytes.ts";
import { type CborValue, decodeCbor, encodeCbor } from "../core/cbor.ts";
import { nobleProvider } from "../crypto/mod.ts";
import { decodeEnvelope, encodeEnvelope } from "../envelope/mod.ts";
import { MissiveError } from "../core/errors.ts";
import { importPluginModule } from "../plugin/loader.ts";
import { stopAllPlugins } from "../plugin/exec/mod.ts";
import { defaultRegistry, openMessage, type Registry, sealMessage } from "../mod.ts";
import { type AmpPlugin, type CliAmp, hasCli, type StpPlugin } from "../plugin/types.ts";
import { fixedIdentity, ROOT } from "./helpers.ts";
import { RATCHET_TYPE } from "../stp/ratchet/mod.ts";

const pluginDir = join(ROOT, "plugins");
const registry: Registry = defaultRegistry();
// Module plugins and executable plugins (missive-plugin-*, stopped after the suite).
const shipped = (f: string) => f.endsWith(".ts") || f.startsWith("missive-plugin-");
for (const f of readdirSync(pluginDir).filter(shipped).sort()) {
  registry.register(...(await importPluginModule(join(pluginDir, f))));
}
after(stopAllPlugins);
const [alice, bob, carol] = [
  await fixedIdentity("alice@example.org", 1),
  await fixedIdentity("bob@example.org", 3),
  await fixedIdentity("carol@example.org", 5),
];
/** Options every STP gets; plugins read what they need (the passphrase example does). */
const options = { passphrase: "conformance-suite passphrase 0123456789", "work-factor": "10" };
const wrongOptions = { passphrase: "another passphrase, also long enough 987" };
/** age refuses a passphrase beside other recipients (it must be a file's only one). */
const optionsFor = (stp: StpPlugin) => (stp.name === "age" ? {} : options);
const SAMPLE_INPUT = utf8('{"greeting": "hello", "n": [1, 2, 3]}\n');
const SAMPLE_FIELDS = { title: "Conformance", kind: "test" };
const listed = registry.list();
// The ratchet (type 9) is listed but not one-shot: its seal/open refuse with `usage` (SPEC
// §25.9); tests/ratchet_test.ts runs the same checks (round trip, tamper, truncation,
// wrong key, unknown fields) through its conversation API.
const stps = listed.stps.filter((p) => p.type !== RATCHET_TYPE);
const amps = listed.amps;
const text = registry.find("amp", "text/1");

const isMissive = (e: unknown) => e instanceof MissiveError;
/** Input and fields for AMPs that take neither SAMPLE_INPUT nor SAMPLE_FIELDS. */
const SAMPLES: Record<string, [Uint8Array, Record<string, string>]> = {
  receipt: [new Uint8Array(0), { nonce: "00".repeat(16), status: "accepted" }],
  presence: [new Uint8Array(0), { status: "busy", note: "in a meeting" }],
  control: [new Uint8Array(0), { action: "request", session: "0123" }],
  file: [SAMPLE_INPUT, { name: "sample.json", type: "application/json" }],
  stream: [new Uint8Array(0), { "chunk-size": "4096", signed: "yes" }],
};
/**
 * A sample message: with AMP fields (title, kind) for AMPs that take them. AMP calls are
 * awaited: an executable plugin's AMP answers with promises (docs/PLUGINS.md §9.6).
 */
async function sample(amp: CliAmp): Promise<unknown> {
  try {
    return await amp.fromInput(SAMPLE_INPUT, SAMPLE_FIELDS);
  } catch (e) {
    if (!(e instanceof MissiveError && e.code === "usage")) throw e;
    const own = SAMPLES[amp.name];
    return await (own ? amp.fromInput(...own) : amp.fromInput(SAMPLE_INPUT, {}));
  }
}
const seal = (stp: StpPlugin, amp: AmpPlugin = text, message: unknown = { text: "conformance" }) =>
  sealMessage({
    stp,
    amp,
    message,
    sender: alice,
    recipients: [bob.card],
    optionPairs: optionsFor(stp),
    crypto: nobleProvider,
  });
const open = (frame: Uint8Array, as = bob, opts: Record<string, string> = options) =>
  openMessage(frame, {
    registry,
    identity: as,
    trusted: [alice.card],
    optionPairs: opts,
    crypto: nobleProvider,
  });

describe("conformance: every STP", () => {
  it("covers the built-ins and the example plugins", () => {
    assert.ok(stps.length >= 5, `only ${stps.length} STPs`);
    assert.ok(amps.length >= 4, `only ${amps.length} AMPs`);
  });

  for (const stp of stps) {
    const label = `${stp.name} v${stp.version} (${stp.type}, ${stp.version})`;
    // age authenticates no sender, but its ciphertext is still protected.
    const protecting = stp.properties.authentication !== "none" ||
      stp.properties.confidentiality;

    it(`${label}: round trip keeps AMP pair, body, nonce and timestamp`, async () => {
      const sealed = await sealMessage({
        stp,
        amp: text,
        message: { text: "round trip ✓" },
        sender: alice,
        recipients: [bob.card],
        optionPairs: optionsFor(stp),
        now: 1_800_000_000_123,
      });
      const opened = await open(sealed);
      assert.deepEqual(opened.message, { text: "round trip ✓" });
      assert.equal(opened.inner.timestamp, 1_800_000_000_123);
      assert.equal(opened.inner.nonce.length, 16);
      assert.deepEqual([opened.stp.type, opened.stp.version], [stp.type, stp.version]);
      if (protecting && stp.properties.authentication === "signature") {
        assert.equal(opened.sender?.verified, true);
        assert.equal(opened.sender?.trusted, true);
      }
      if (!protecting) assert.ok(opened.warnings.some((w) => /INSECURE/.test(w)));
    });

    if (protecting) {
      it(`${label}: any single-byte change and any truncation fails with a MissiveError`, async () => {
        const sealed = await seal(stp);
        for (let i = 0; i < sealed.length; i++) {
          const bad = sealed.slice();
          bad[i] ^= 0x41;
          // simple v1 leaves the timestamp unauthenticated by design; see tamper_test.
          const result = await open(bad).then((o) => o, (e) => e);
          if (!(result instanceof Error)) {
            assert.equal(
              stp.name === "simple" && stp.version === 1,
              true,
              `${label}: byte ${i} flip accepted`,
            );
            assert.deepEqual(result.message, { text: "conformance" });
            continue;
          }
          assert.ok(isMissive(result), `${label}: byte ${i}: ${result}`);
        }
        for (let n = 0; n < sealed.length; n++) {
          await assert.rejects(
            open(sealed.subarray(0, n)),
            isMissive,
            `${label}: truncated to ${n}`,
          );
        }
      });

      it(`${label}: unknown payload fields are refused (they would not be authenticated)`, async () => {
        const env = decodeEnvelope(await seal(stp));
        let payload: CborValue;
        try {
          payload = decodeCbor(env.payload);
        } catch {
          return assert.ok(true, "payload is not CBOR: nothing to extend");
        }
        if (!(payload instanceof Map)) return;
        payload.set(99, "grease");
        await assert.rejects(
          open(encodeEnvelope({ ...env, payload: encodeCbor(payload) })),
          isMissive,
        );
      });
    }

    if (stp.properties.confidentiality) {
      it(`${label}: the wrong key or secret cannot open it`, async () => {
        const sealed = await seal(stp);
        await assert.rejects(
          open(sealed, carol, wrongOptions),
          (e) => e instanceof MissiveError && ["not-a-recipient", "auth-failed"].includes(e.code),
        );
      });
    }
  }
});

describe("conformance: every AMP", () => {
  it("every AMP offers the command-line capability (the round trip below uses it)", () => {
    for (const amp of amps) assert.ok(hasCli(amp), amp.name);
  });
  for (const amp of amps.filter(hasCli)) {
    const label = `${amp.name} v${amp.version} (${amp.type}, ${amp.version})`;
    it(`${label}: fromInput → encode → seal → open → decode round trip`, async () => {
      const message = await sample(amp);
      const opened = await open(await seal(registry.find("stp", "simple"), amp, message));
      assert.deepEqual(
        await amp.toJson(opened.message as never),
        await amp.toJson(message as never),
      );
      assert.ok((await amp.toOutput(opened.message as never)).length > 0);
    });

    it(`${label}: garbage and truncated bodies fail with a MissiveError (or decode consistently)`, async () => {
      const good = await amp.encode(await sample(amp) as never);
      const inputs = [
        new Uint8Array([0xff, 0xfe, 0xfd]),
        new Uint8Array([0xd8, 0x80]),
        encodeCbor(new Map([[99, "grease"]])),
        ...Array.from({ length: good.length }, (_, n) => good.subarray(0, n)),
      ];
      for (const input of inputs) {
        try {
          const decoded = await amp.decode(input);
          // Accepting is fine only for formats where these bytes are valid (e.g. text).
          assert.deepEqual(await amp.decode(await amp.encode(decoded as never)), decoded);
        } catch (e) {
          assert.ok(isMissive(e), `${label}: ${e}`);
        }
      }
    });
  }
});
