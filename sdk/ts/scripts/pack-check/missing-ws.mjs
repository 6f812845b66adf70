// Run by scripts/pack-check.mjs under Node 20 in the scratch project without
// ws: REST works, and connect() rejects with an error that says to install
// ws (or pass { WebSocket }) instead of failing obscurely.
import assert from "node:assert/strict";
import { Tandem, unwrap } from "@tandem/sdk";

const { TANDEM_URL: url, TANDEM_TOKEN: token, LABEL: label } = process.env;
try {
  assert.equal(typeof globalThis.WebSocket, "undefined", "this runtime has no global WebSocket");
  const t = new Tandem({ baseUrl: url, token });
  const cols = await unwrap(t.rest.GET("/v1/collections"));
  assert.ok(Array.isArray(cols.items), "REST works without ws");
  const err = await t.connect().then(
    () => assert.fail("connect() succeeded without a WebSocket implementation"),
    (e) => e,
  );
  assert.match(String(err.message), /no WebSocket implementation.*npm install ws/);
  console.log(`ok ${label}: node ${process.version} without ws: REST works, connect() rejects with "${err.message.slice(0, 70)}…"`);
} catch (e) {
  console.error(`FAIL ${label}:`, e);
  process.exit(1);
}
