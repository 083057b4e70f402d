/**
 * Messaging over any transport (SPEC §21.5): `MessageServer` opens what arrives on a
 * listener and answers each frame with a signed receipt; `sealWithNonce`, `openReceipt`
 * and `ReceiptChannel` are the sending side. `openAny` opens input in any form (SPEC
 * §2.4). Transports themselves are in `./transports`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createIdentity, defaultRegistry, getCryptoProvider, textV1 } from "../mod.ts";
 * import { connectTransport, listenTransport } from "../transports/mod.ts";
 * import { MessageServer, openReceipt, sealWithNonce } from "./mod.ts";
 * const crypto = await getCryptoProvider();
 * const registry = defaultRegistry();
 * const caps = { stps: [[2, 2]] as const, amps: [[1, 1]] as const };
 * const alice = await createIdentity(crypto, { address: "alice@example.org", ...caps });
 * const bob = await createIdentity(crypto, { address: "bob@example.org", ...caps });
 * const got: string[] = [];
 * const server = new MessageServer(await listenTransport("tcp://127.0.0.1:0"), {
 *   registry, identity: bob, trusted: [alice.card], limit: 1,
 *   deliver: (opened) => void got.push((opened.message as { text: string }).text),
 * });
 * const running = server.run();
 * const link = await connectTransport(server.url);
 * const { frame, nonce } = await sealWithNonce({
 *   registry, stp: registry.find("stp", "simple"), amp: textV1,
 *   message: { text: "hello" }, sender: alice, recipients: [bob.card],
 * });
 * await link.send(frame);
 * for await (const answer of link.frames()) {
 *   const receipt = await openReceipt(answer, { registry, cards: [bob.card], nonce });
 *   assert.equal(receipt.status, "accepted");
 *   break;
 * }
 * await link.close();
 * await running;
 * assert.deepEqual(got, ["hello"]);
 * ```
 * @module
 */
export {
  MAX_RECEIPT_FRAME,
  openReceipt,
  ReceiptChannel,
  receiptStatusFor,
  type SealedFrame,
  sealReceipt,
  sealWithNonce,
} from "./receipts.ts";
export { MessageServer, type ServeOptions } from "./serve.ts";
export {
  detectForm,
  type InputForm,
  openAny,
  type OpenAnyRequest,
  type OpenAnyResult,
} from "./open.ts";

// Types that this entry point's signatures name (and the types those name), re-exported
// so that its documentation is complete on its own.
