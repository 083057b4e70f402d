/**
 * The in-memory Transport pair (transports/memory.ts): order, back-pressure, close.
 * @module
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isMissiveError } from "../core/errors.ts";
import { memoryTransportPair } from "../transports/memory.ts";

describe("memoryTransportPair", () => {
  it("delivers frames in order, both ways, as copies", async () => {
    const [a, b] = memoryTransportPair();
    const frame = new Uint8Array([1, 2, 3]);
    await a.send(frame);
    frame[0] = 9;
    await a.send(new Uint8Array([4]));
    await b.send(new Uint8Array([5]));
    const got: number[][] = [];
    for await (const f of b.frames()) {
      got.push([...f]);
      if (got.length === 2) break;
    }
    assert.deepEqual(got, [[1, 2, 3], [4]]);
    for await (const f of a.frames()) {
      assert.deepEqual([...f], [5]);
      break;
    }
  });

  it("makes send wait while the peer's queue is full", async () => {
    const [a, b] = memoryTransportPair({ capacity: 2 });
    await a.send(new Uint8Array([1]));
    await a.send(new Uint8Array([2]));
    let third = false;
    const pending = a.send(new Uint8Array([3])).then(() => (third = true));
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(third, false);
    const it = b.frames()[Symbol.asyncIterator]();
    assert.deepEqual([...(await it.next()).value], [1]);
    await pending;
    assert.equal(third, true);
  });

  it("ends the peer's frames after close and refuses later sends", async () => {
    const [a, b] = memoryTransportPair();
    await a.send(new Uint8Array([7]));
    await a.close();
    await a.close();
    const got: number[] = [];
    for await (const f of b.frames()) got.push(f[0]);
    assert.deepEqual(got, [7]);
    await assert.rejects(b.send(new Uint8Array([1])), (e) => isMissiveError(e, "network"));
  });

  it("refuses oversize frames and a second reader", async () => {
    const [a, b] = memoryTransportPair({ maxFrame: 4 });
    await assert.rejects(a.send(new Uint8Array(5)), (e) => isMissiveError(e, "too-large"));
    b.frames()[Symbol.asyncIterator]().next();
    await assert.rejects(
      b.frames()[Symbol.asyncIterator]().next(),
      (e) => isMissiveError(e, "usage"),
    );
    await a.close();
  });
});
