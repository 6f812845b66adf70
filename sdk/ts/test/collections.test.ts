import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import WebSocket from "ws";
import { type Connection, Mirror, Tandem, TandemError, unwrap, updateCollection } from "../src/index.js";
import { Server } from "./server.js";
import { frameViolation } from "./spec.js";

const WAIT = 30_000; // bounds hangs; not a speed assertion

describe("updateCollection", () => {
  const violations: string[] = [];
  let server: Server | undefined;
  let conn: Connection | undefined;
  after(async () => {
    await conn?.close();
    await server?.stop();
    assert.deepEqual(server?.violations() ?? [], [], "the --strict server logged spec violations");
    assert.deepEqual(violations, [], "frames violating spec/asyncapi.yaml");
  });

  it("changes a collection, lists offenders, and the Mirror sees collection.updated", async () => {
    server = await Server.start();
    const t = new Tandem({
      baseUrl: server.url,
      WebSocket,
      onFrame: (dir, text) => {
        const v = frameViolation(text);
        if (v) violations.push(`${dir}: ${v}: ${text}`);
      },
    });
    const created = await unwrap(t.rest.POST("/v1/collections", { body: { name: "orders", schema: { type: "object" } } }));
    await unwrap(
      t.rest.PUT("/v1/collections/{collection}/resources/{id}", { params: { path: { collection: "orders", id: "o-1" } }, body: { data: { qty: 0 } } }),
    );
    conn = await t.connect();
    const mirror = await Mirror.open(conn, "orders");
    await mirror.synced;
    assert.equal(mirror.collection, undefined);

    const tight = { schema: { properties: { qty: { minimum: 1 } } } };
    await assert.rejects(updateCollection(t.rest, "orders", tight), (e: unknown) => {
      assert.ok(e instanceof TandemError);
      assert.equal(e.status, 422);
      assert.deepEqual(e.problem.offenders?.map((o) => o.id), ["o-1"]);
      return true;
    });
    await assert.rejects(updateCollection(t.rest, "orders", tight, { ifMatch: created.revision + 100, newWritesOnly: true }), (e: unknown) => {
      assert.ok(e instanceof TandemError);
      assert.equal(e.status, 412);
      return true;
    });
    const c = await updateCollection(t.rest, "orders", tight, { ifMatch: created.revision, newWritesOnly: true });
    assert.ok(c.revision > created.revision);
    const deadline = Date.now() + WAIT;
    const seen = () => mirror.collection; // changes under the event loop
    while (seen()?.revision !== c.revision) {
      assert.ok(Date.now() < deadline, "the mirror did not see collection.updated");
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(mirror.items.size, 1);
    assert.deepEqual(seen()?.schema, c.schema);
  });
});
