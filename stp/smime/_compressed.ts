/**
 * CMS CompressedData (RFC 3274) for the `smime` STP: zlib (RFC 1950) through node:zlib,
 * with decompression capped at 16 MiB (as AMP text v2). Built and read with asn1js
 * schema objects and pkijs's EncapsulatedContentInfo; no hand-written DER.
 * @module
 */
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import type { Bytes } from "../../core/bytes.ts";
import { MissiveError } from "../../core/errors.ts";
import { CMS, parseBerItem } from "./_cms.ts";
import { zlib } from "../../core/zlib.ts";

/** id-alg-zlibCompress (RFC 3274 §2). */
export const ZLIB_COMPRESS = "1.2.840.113549.1.9.16.3.8";
/** Largest decompressed content accepted (the AMP text limit). */
export const MAX_DECOMPRESSED = 16 * 1024 * 1024;

/** The content decompressed, with its declared type. */
export interface Decompressed {
  contentType: string;
  content: Bytes;
}

/** A CompressedData (RFC 3274 §1.1) of `content` (id-data): its schema object. */
export function compressedData(
  content: Uint8Array,
  contentType: string = CMS.data,
): asn1js.Sequence {
  const z = zlib().deflateSync(content);
  return new asn1js.Sequence({
    value: [
      new asn1js.Integer({ value: 0 }),
      new pkijs.AlgorithmIdentifier({ algorithmId: ZLIB_COMPRESS }).toSchema(),
      new pkijs.EncapsulatedContentInfo({
        eContentType: contentType,
        eContent: new asn1js.OctetString({
          valueHex: new Uint8Array(z.buffer, z.byteOffset, z.byteLength),
        }),
      }).toSchema(),
    ],
  });
}

/** The DER of a CompressedData of `content` (as SignedData's eContent carries it). */
export function compressedDataDer(content: Uint8Array): Bytes {
  return new Uint8Array(compressedData(content).toBER(false));
}

/**
 * Decompresses a CompressedData (its parsed schema, or its BER as eContent carries it).
 * Version 0, zlib with absent parameters and encapsulated content only; anything else is
 * `malformed` or `unknown-protocol`; more than 16 MiB out is `too-large`.
 */
export function decompress(input: asn1js.AsnType | Uint8Array): Decompressed {
  const schema = input instanceof Uint8Array ? parseBerItem(input, "CompressedData") : input;
  const fields = schema instanceof asn1js.Sequence && schema.idBlock.tagClass === 1
    ? schema.valueBlock.value
    : [];
  const [version, algorithm, encap] = fields;
  if (
    fields.length !== 3 || !(version instanceof asn1js.Integer) ||
    version.idBlock.tagNumber !== 2 || version.valueBlock.valueHexView.length !== 1 ||
    version.valueBlock.valueDec !== 0
  ) {
    throw new MissiveError("malformed", "smime: CompressedData needs version 0 and 3 fields");
  }
  let alg: pkijs.AlgorithmIdentifier;
  let eci: pkijs.EncapsulatedContentInfo;
  try {
    alg = new pkijs.AlgorithmIdentifier({ schema: algorithm });
    eci = new pkijs.EncapsulatedContentInfo({ schema: encap });
  } catch (e) {
    throw new MissiveError("malformed", `smime: CompressedData: ${(e as Error).message}`);
  }
  if (alg.algorithmId !== ZLIB_COMPRESS) {
    throw new MissiveError("unknown-protocol", `smime: compression ${alg.algorithmId} is not zlib`);
  }
  if (alg.algorithmParams !== undefined) {
    throw new MissiveError("malformed", "smime: zlib takes no parameters (RFC 3274 §2)");
  }
  const eContent = eci.eContent;
  if (!(eContent instanceof asn1js.OctetString)) {
    throw new MissiveError("malformed", "smime: CompressedData has no encapsulated content");
  }
  let content: Uint8Array;
  try {
    content = zlib().inflateSync(new Uint8Array(eContent.getValue()), {
      maxOutputLength: MAX_DECOMPRESSED,
    });
  } catch (e) {
    const tooBig = (e as { code?: string }).code === "ERR_BUFFER_TOO_LARGE";
    throw new MissiveError(
      tooBig ? "too-large" : "malformed",
      tooBig
        ? `smime: compressed content expands to more than ${MAX_DECOMPRESSED} bytes`
        : "smime: compressed content is not valid zlib data",
    );
  }
  return {
    contentType: eci.eContentType,
    content: Uint8Array.from(content),
  };
}
