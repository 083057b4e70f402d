/**
 * The plugin objects the registry holds for an executable plugin: every method is one
 * request to the plugin process. Their methods return promises (missive's callers await
 * every plugin call through `Registry.guard`), and replies are checked as strictly as a
 * decoder checks wire input.
 * @module
 */
import { type Bytes, randomBytes } from "../../core/bytes.ts";
import { type CborMap, CborReader, type CborValue } from "../../core/cbor.ts";
import { MAX_ENVELOPE_SIZE } from "../../envelope/mod.ts";
import { MissiveError } from "../../core/errors.ts";
import { MAX_ADDRESS_LENGTH } from "../../keys/address.ts";
import { decodeCard, MAX_CARD_SIZE } from "../../keys/card.ts";
import type { CryptoProvider } from "../../crypto/provider.ts";
import type { AmpPlugin, Inner, StpOpened, StpPlugin, StpProperties } from "../types.ts";
import { cardToCbor, hostCalls } from "./_hostcalls.ts";
import { clean, type PluginProcess } from "./_process.ts";

/** What the `hello` reply said about one plugin. */
export interface Descriptor {
  index: number;
  type: number;
  version: number;
  name: string;
  description: string;
}

const MAX_WARNINGS = 16;

type Fields = [string, CborValue][];

function caller(child: PluginProcess, d: Descriptor, kind: string) {
  const what = `${child.label} ${kind} "${d.name}"`;
  return {
    what,
    /**
     * One request; `parse` checks the reply, and a malformed reply becomes a plugin
     * error naming the plugin and the call (the plugin's own error replies pass as sent).
     */
    async call<T>(
      op: string,
      fields: Fields,
      parse: (v: CborValue) => T | Promise<T>,
      onHostCall?: Parameters<PluginProcess["request"]>[2],
    ): Promise<T> {
      const message = new Map<string, CborValue>([["op", op], ["plugin", d.index], ...fields]);
      const reply = await child.request(op, message, onHostCall);
      try {
        return await parse(reply);
      } catch (e) {
        if (e instanceof MissiveError && e.code === "malformed") {
          throw new MissiveError("plugin", `${what}: bad "${op}" reply: ${e.message}`);
        }
        throw e;
      }
    },
  };
}

function replyBytes(op: string, v: CborValue, max = MAX_ENVELOPE_SIZE): Bytes {
  if (!(v instanceof Uint8Array)) throw new MissiveError("malformed", `${op}: not a byte string`);
  if (v.length > max) throw new MissiveError("malformed", `${op}: longer than ${max} bytes`);
  return v as Bytes;
}

/** A JS message value as CBOR: plain objects become maps with text keys. */
export function toCbor(value: unknown, depth = 0): CborValue {
  if (depth > 16) throw new MissiveError("usage", "message nests too deeply");
  if (value === null || typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number" && Number.isSafeInteger(value)) return value;
  if (value instanceof Uint8Array) return value;
  if (Array.isArray(value)) return value.map((v) => toCbor(v, depth + 1));
  const entries = value instanceof Map
    ? [...value]
    : typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype
    ? Object.entries(value as object)
    : undefined;
  if (!entries) {
    throw new MissiveError(
      "usage",
      `an executable plugin's message holds integers, text, bytes, booleans, null, arrays and maps; got ${typeof value}`,
    );
  }
  return new Map(entries.map(([k, v]) => {
    if (typeof k !== "string" && !(typeof k === "number" && Number.isSafeInteger(k))) {
      throw new MissiveError("usage", "map keys must be integers or text");
    }
    return [k, toCbor(v, depth + 1)];
  }));
}

/** CBOR from a plugin as JSON data (for `toJson`): maps become objects. */
function toJsonValue(v: CborValue): unknown {
  if (v instanceof Uint8Array) throw new MissiveError("malformed", "toJson: bytes are not JSON");
  if (Array.isArray(v)) return v.map(toJsonValue);
  if (v instanceof Map) {
    return Object.fromEntries([...v].map(([k, x]) => [String(k), toJsonValue(x)]));
  }
  return v;
}

/** The AMP an executable plugin described. Messages are CBOR values. */
export function ampAdapter(child: PluginProcess, d: Descriptor): AmpPlugin {
  const c = caller(child, d, "amp");
  const run = <T>(op: string, fields: Fields, read: (v: CborValue) => T) =>
    Promise.resolve().then(() => c.call(op, fields, read));
  const plugin = {
    kind: "amp" as const,
    type: d.type,
    version: d.version,
    name: d.name,
    description: d.description,
    encode: (m: unknown) => run("encode", [["message", toCbor(m)]], (v) => replyBytes("encode", v)),
    decode: (body: Uint8Array) => run("decode", [["body", body]], (v) => v),
    fromInput: (input: Uint8Array, fields: Readonly<Record<string, string>>) =>
      run("fromInput", [["input", input], ["fields", toCbor({ ...fields })]], (v) => v),
    toOutput: (m: unknown) =>
      run("toOutput", [["message", toCbor(m)]], (v) => replyBytes("toOutput", v)),
    toJson: (m: unknown) => run("toJson", [["message", toCbor(m)]], toJsonValue),
  };
  // The contract's methods are synchronous; these return promises, which every caller
  // in missive awaits (Registry.guard). docs/PLUGINS.md says so for library users.
  return plugin as unknown as AmpPlugin;
}

function innerToCbor(inner: Inner): CborMap {
  const m = new Map<string, CborValue>([
    ["ampType", inner.ampType],
    ["ampVersion", inner.ampVersion],
    ["body", inner.body],
    ["timestamp", inner.timestamp],
    ["nonce", inner.nonce],
  ]);
  if (inner.sender !== undefined) m.set("sender", inner.sender);
  if (inner.destination !== undefined) m.set("destination", inner.destination);
  return m;
}

function innerFromCbor(v: CborValue | undefined): Inner {
  const r = CborReader.from(v ?? null, "inner").onlyKeys([
    "ampType",
    "ampVersion",
    "body",
    "timestamp",
    "nonce",
    "sender",
    "destination",
  ]);
  return {
    ampType: r.uint("ampType", 0xffff),
    ampVersion: r.uint("ampVersion", 0xffff),
    body: r.bytes("body", { max: MAX_ENVELOPE_SIZE }),
    timestamp: r.uint("timestamp"),
    nonce: r.bytes("nonce", 16),
    sender: r.optText("sender", MAX_ADDRESS_LENGTH),
    destination: r.optText("destination", MAX_ADDRESS_LENGTH),
  };
}

function headerToCbor(
  h: { protocolType: number; protocolVersion: number; sequenceNumber?: number },
) {
  return new Map<string, CborValue>([
    ["type", h.protocolType],
    ["version", h.protocolVersion],
    ["sequence", h.sequenceNumber ?? null],
  ]);
}

const optionsToCbor = (o: Readonly<Record<string, string>>) => new Map(Object.entries(o));

/** The STP an executable plugin described. */
export function stpAdapter(
  child: PluginProcess,
  d: Descriptor & { properties: StpProperties },
): StpPlugin {
  const c = caller(child, d, "stp");
  return {
    kind: "stp",
    type: d.type,
    version: d.version,
    name: d.name,
    description: d.description,
    properties: d.properties,
    seal: async (inner, ctx) => {
      const fields: Fields = [
        ["inner", innerToCbor(inner)],
        ["header", headerToCbor(ctx.header)],
        ["recipients", ctx.recipients.map(cardToCbor)],
        ["includeCard", ctx.includeCard],
        ["hashDestination", ctx.hashDestination],
        ["hideRecipients", ctx.hideRecipients ?? false],
        ["options", optionsToCbor(ctx.options)],
      ];
      if (ctx.sender) fields.push(["sender", cardToCbor(ctx.sender.card)]);
      const onHostCall = hostCalls({
        type: d.type,
        version: d.version,
        crypto: ctx.crypto,
        identity: ctx.sender,
        random: ctx.random,
        ephemeralAgreement: ctx.ephemeralAgreement,
      });
      return await c.call("seal", fields, (v) => replyBytes("seal", v), onHostCall);
    },
    open: async (payload, ctx) => {
      const fields: Fields = [
        ["payload", payload],
        ["header", headerToCbor(ctx.header)],
        ["trusted", ctx.trusted.map(cardToCbor)],
        ["options", optionsToCbor(ctx.options)],
      ];
      if (ctx.identity) fields.push(["identity", cardToCbor(ctx.identity.card)]);
      const onHostCall = hostCalls({
        type: d.type,
        version: d.version,
        crypto: ctx.crypto,
        identity: ctx.identity,
        random: randomBytes,
      });
      return await c.call("open", fields, (v) => openedFromCbor(v, ctx.crypto), onHostCall);
    },
  };
}

async function openedFromCbor(v: CborValue, crypto: CryptoProvider): Promise<StpOpened> {
  const reply = CborReader.from(v, "open reply").onlyKeys(["inner", "sender", "warnings"]);
  const warnings = reply.has("warnings") ? reply.array("warnings", MAX_WARNINGS) : [];
  const opened: StpOpened = {
    inner: innerFromCbor(reply.raw("inner")),
    warnings: warnings.map((w) => {
      if (typeof w !== "string") throw new MissiveError("malformed", "warnings: not text");
      return clean(w);
    }),
  };
  if (reply.has("sender")) {
    const s = CborReader.from(reply.raw("sender")!, "sender")
      .onlyKeys(["address", "card", "verified", "trustedByStp"]);
    const card = s.optBytes("card", { max: MAX_CARD_SIZE });
    opened.sender = {
      address: s.text("address", MAX_ADDRESS_LENGTH),
      card: card ? await decodeCard(crypto, card) : undefined,
      verified: s.bool("verified"),
    };
    if (s.has("trustedByStp")) opened.sender.trustedByStp = s.bool("trustedByStp");
  }
  return opened;
}
