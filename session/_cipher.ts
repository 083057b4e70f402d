/**
 * The data path's cipher (SPEC §22.5.3): the keys of one handshake, seen from one side.
 * A handshake (_handshake.ts) hands the state machine only this object — like
 * js-libp2p-noise's `performHandshake`, whose result is `{ payload, encrypt, decrypt }` —
 * so the keys and nonce counters never leave it: `seal` uses this side's direction,
 * `open` the peer's, each counter refuses to wrap, and an erased cipher refuses to work.
 * Internal to the session.
 * @module
 */
import { type Bytes, wipe } from "../core/bytes.ts";
import type { CryptoProvider } from "../crypto/provider.ts";
import { MissiveError } from "../core/errors.ts";
import {
  type DirectionKey,
  nonceAt,
  sealedAad,
  SESSION_AEAD,
  type SessionKeys,
} from "./_keyschedule.ts";
import {
  encodeFrame,
  type FrameHeader,
  messageTypeName,
  type SealedFrame,
  type SessionVersion,
} from "./messages.ts";

/** Which end of the session this side is: the directions are by role (SPEC §22.5.2). */
export type Role = "client" | "server";

export class SessionCipher {
  /** The key ID every frame sealed under these keys carries, and its hex form. */
  readonly id: Bytes;
  readonly idHex: string;
  /** The chain value these keys were derived with (C', SPEC §22.5.2): the next re-key's C. */
  readonly chain: Bytes;
  /** The session version these keys belong to: its AAD and envelope (SPEC §22.12). */
  readonly version: SessionVersion;
  readonly #provider: CryptoProvider;
  readonly #out: DirectionKey;
  readonly #in: DirectionKey;
  #erased = false;

  constructor(provider: CryptoProvider, keys: SessionKeys, role: Role) {
    this.#provider = provider;
    this.id = keys.id;
    this.idHex = keys.idHex;
    this.chain = keys.chain;
    this.version = keys.version;
    this.#out = role === "client" ? keys.clientToServer : keys.serverToClient;
    this.#in = role === "client" ? keys.serverToClient : keys.clientToServer;
  }

  /** Seals one message as a frame under this side's key; the nonce is its frame count. */
  async seal(header: FrameHeader, plaintext: Bytes): Promise<Bytes> {
    this.#check();
    const nonce = nonceAt(this.#out.counter);
    this.#out.counter++;
    const aad = sealedAad(header.seq, header.type, header.time, this.id, this.version);
    const ciphertext = await this.#provider.aeadEncrypt(
      SESSION_AEAD,
      this.#out.key,
      nonce,
      plaintext,
      aad,
    );
    return encodeFrame({ ...header, form: "sealed", keyId: this.id, ciphertext }, this.version);
  }

  /** Opens a frame the peer sealed under these keys; throws `auth-failed` on a bad tag. */
  async open(frame: SealedFrame): Promise<Bytes> {
    this.#check();
    const plaintext = await this.#provider.aeadDecrypt(
      SESSION_AEAD,
      this.#in.key,
      nonceAt(this.#in.counter),
      frame.ciphertext,
      sealedAad(frame.seq, frame.type, frame.time, frame.keyId, this.version),
    ).catch((e) => {
      throw new MissiveError(
        "auth-failed",
        `session: ${messageTypeName(frame.type)} failed authentication (bad tag)`,
        { cause: e },
      );
    });
    this.#in.counter++;
    return plaintext;
  }

  /** True once erased (after a re-key replaced these keys, or at the end). */
  get erased(): boolean {
    return this.#erased;
  }

  /** Erases both directions' keys; the cipher refuses to work afterwards. */
  erase(): void {
    wipe(this.#out.key);
    wipe(this.#in.key);
    this.#erased = true;
  }

  #check(): void {
    if (this.#erased) throw new MissiveError("internal", "session: keys used after erasure");
  }
}
