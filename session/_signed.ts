/**
 * The signed part of HELLO, HELLO_ACK and pre-key control messages (SPEC §22.5.1):
 * Ed25519 by the sender's identity key over the signature input, and an HMAC under
 * SHA-512(s0) when a pre-shared secret is configured. Internal to the session.
 * @module
 */
import { type Bytes, equalBytes } from "../core/bytes.ts";
import type { CryptoProvider } from "../crypto/provider.ts";
import { MissiveError } from "../core/errors.ts";
import type { Card } from "../keys/card.ts";
import type { Identity } from "../keys/identity.ts";
import { type PresharedKeys, signatureInput, signedMac } from "./_keyschedule.ts";
import type { FrameHeader, SessionVersion, SignedPart } from "./messages.ts";

/** Signs (and, with s0, MACs) a body for the given header and context. */
export async function signPart(
  provider: CryptoProvider,
  identity: Identity,
  header: FrameHeader,
  body: Bytes,
  context: Uint8Array,
  psk: PresharedKeys | undefined,
  version: SessionVersion = 1,
): Promise<SignedPart> {
  const input = signatureInput(header, body, context, version);
  const signature = await provider.ed25519Sign(identity.signingSeed, input);
  const mac = psk ? await signedMac(provider, psk.macKey, input, signature, version) : undefined;
  return { body, signature, mac };
}

/**
 * Verifies a signed part against `signer`'s card. The MAC must be present exactly when
 * s0 is configured. Throws `auth-failed` naming what failed.
 */
export async function verifyPart(
  provider: CryptoProvider,
  signer: Card,
  header: FrameHeader,
  part: SignedPart,
  context: Uint8Array,
  psk: PresharedKeys | undefined,
  version: SessionVersion = 1,
): Promise<void> {
  const input = signatureInput(header, part.body, context, version);
  if (!(await provider.ed25519Verify(signer.signingKey, input, part.signature))) {
    throw new MissiveError("auth-failed", `session: bad signature from ${signer.address}`);
  }
  if (psk && !part.mac) {
    throw new MissiveError("auth-failed", "session: the peer sent no s0 MAC (is s0 configured?)");
  }
  if (!psk && part.mac) {
    throw new MissiveError(
      "auth-failed",
      "session: the peer MACs with a pre-shared s0 that is not configured here",
    );
  }
  if (psk && part.mac) {
    const expected = await signedMac(provider, psk.macKey, input, part.signature, version);
    if (!equalBytes(expected, part.mac)) {
      throw new MissiveError("auth-failed", "session: bad s0 MAC (different pre-shared secret?)");
    }
  }
}
