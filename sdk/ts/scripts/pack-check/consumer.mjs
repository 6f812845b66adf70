// Run by scripts/pack-check.mjs in a scratch project that installed the
// packed tarball: import from "@tandem/sdk" (the ES module build) against a
// live `tandem serve`. Env: TANDEM_URL, TANDEM_TOKEN, LABEL, EXPECT_WS
// ("ws": no global WebSocket, the SDK loads the ws package; "global": the
// runtime's WebSocket, and ws is not installed).
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { Tandem, TandemError, collectionTopic, unwrap } from "@tandem/sdk";

const require = createRequire(import.meta.url);

const WAIT = 20_000;

async function next(it, what) {
  let timer;
  const timeout = new Promise((_, rej) => (timer = setTimeout(() => rej(new Error("no event in time: " + what)), WAIT)));
  try {
    const r = await Promise.race([it.next(), timeout]);
    if (r.done) throw new Error("subscription ended: " + what);
    return r.value;
  } finally {
    clearTimeout(timer);
  }
}

async function main() {
  const { TANDEM_URL: url, TANDEM_TOKEN: token, LABEL: label, EXPECT_WS: expectWs } = process.env;
  assert.match(import.meta.resolve("@tandem/sdk"), /\/dist\/esm\/index\.js$/, "import resolves the ES module build");
  if (expectWs === "global") {
    assert.equal(typeof globalThis.WebSocket, "function", "this runtime has a global WebSocket");
    assert.throws(() => require.resolve("ws"), "ws must not be installed here");
  } else {
    assert.equal(typeof globalThis.WebSocket, "undefined", "this runtime has no global WebSocket");
    require.resolve("ws");
  }

  const t = new Tandem({ baseUrl: url, token });
  const coll = `pack-${label}`;
  unwrap(await t.rest.POST("/v1/collections", { body: { name: coll } }));

  // Realtime: subscribe (no WebSocket passed: the SDK picks one), write over REST, receive the event.
  const conn = await t.connect();
  const sub = await conn.subscribe(collectionTopic(coll));
  const data = { runtime: process.version, format: "esm", n: 1 };
  const put = await unwrap(t.rest.PUT("/v1/collections/{collection}/resources/{id}", { params: { path: { collection: coll, id: "r1" } }, body: { data } }));
  assert.equal(put.id, "r1");
  const ev = await next(sub[Symbol.asyncIterator](), "r1 created");
  assert.equal(ev.type, "event");
  assert.equal(ev.event, "resource.created");
  assert.equal(ev.topic, collectionTopic(coll));
  assert.equal(ev.resource.id, "r1");
  assert.deepEqual(ev.resource.data, data);
  const cursor = ev.cursor;
  assert.ok(cursor, "the event carries a cursor");
  await conn.close();

  // Resume: what was written while disconnected arrives after the cursor.
  await unwrap(t.rest.PUT("/v1/collections/{collection}/resources/{id}", { params: { path: { collection: coll, id: "r2" } }, body: { data: { n: 2 } } }));
  const conn2 = await t.connect();
  const sub2 = await conn2.subscribe(collectionTopic(coll), { since: cursor });
  const ev2 = await next(sub2[Symbol.asyncIterator](), "r2 after resume");
  assert.equal(ev2.event, "resource.created");
  assert.equal(ev2.resource.id, "r2");
  assert.deepEqual(ev2.resource.data, { n: 2 });
  await conn2.close();

  // Errors: a problem becomes a TandemError with the HTTP status.
  const err = await unwrap(t.rest.GET("/v1/collections/{collection}", { params: { path: { collection: "absent-" + label } } })).catch((e) => e);
  assert.ok(err instanceof TandemError, "a TandemError: " + err);
  assert.equal(err.status, 404);

  console.log(`ok ${label}: node ${process.version}, import, WebSocket from ${expectWs}, event ${ev.resource.id} and resumed ${ev2.resource.id}`);
}

await main().catch((e) => {
  console.error(`FAIL ${process.env.LABEL}:`, e);
  process.exit(1);
});
