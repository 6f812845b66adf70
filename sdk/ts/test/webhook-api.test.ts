// The webhook API helpers (tandem.webhooks) against a live server delivering
// to a loopback receiver; every delivery is checked with verifyWebhook.
import assert from "node:assert/strict";
import { type IncomingHttpHeaders, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { Tandem, TandemError, WebhookVerificationError, collectionTopic, unwrap, verifyWebhook } from "../src/index.js";
import { Server } from "./server.js";

const WAIT = 30_000; // bounds hangs; not a speed assertion

interface Delivery {
  headers: IncomingHttpHeaders;
  body: Buffer;
  json: { type?: string; event?: string; cursor?: string; webhook?: string; resource?: { id: string; data: unknown } };
}

async function eventually<T>(what: string, probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + WAIT;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("webhook API", () => {
  let s: Server;
  let t: Tandem;
  const deliveries: Delivery[] = [];
  const receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      deliveries.push({ headers: req.headers, body, json: JSON.parse(body.toString("utf8")) });
      res.writeHead(204).end();
    });
  });
  let hookUrl = "";

  before(async () => {
    await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
    hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    s = await Server.start(["--webhook-allow-private", "--webhook-retry-min", "10ms", "--webhook-retry-max", "50ms"]);
    t = new Tandem({ baseUrl: s.url });
  });

  after(async () => {
    await s?.stop();
    receiver.closeAllConnections();
    await new Promise((r) => receiver.close(r));
    assert.deepEqual(s?.violations() ?? [], [], "the --strict server logged spec violations");
  });

  /** The first delivery after index `from` that `match` accepts. */
  const delivery = (what: string, from: number, match: (d: Delivery) => boolean) =>
    eventually(what, () => deliveries.slice(from).find(match));

  it("creates, tests, delivers, pauses, resumes, rotates and deletes", async () => {
    await unwrap(t.rest.POST("/v1/collections", { body: { name: "orders" } }));
    const topic = collectionTopic("orders");
    const wh = await t.webhooks.create({ topic, url: hookUrl, description: "orders" });
    assert.match(wh.id, /^wh_/);
    assert.match(wh.secret ?? "", /^whsec_/);
    assert.equal(wh.state, "active");
    assert.equal(wh.enabled, true);
    assert.equal(wh.maxBatch, 1);
    const secret = wh.secret!;
    assert.deepEqual(
      (await t.webhooks.list()).map((w) => [w.id, w.secret]),
      [[wh.id, undefined]],
    );

    // A signed ping.
    const result = await t.webhooks.test(wh.id);
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(result.status, 204);
    const ping = await delivery("the ping", 0, (d) => d.json.type === "webhook.ping");
    assert.equal(ping.json.webhook, wh.id);
    await verifyWebhook(secret, ping.headers, ping.body);

    // A resource event, verified; the same body altered is refused.
    const created = await unwrap(t.rest.POST("/v1/collections/{collection}/resources", { params: { path: { collection: "orders" } }, body: { data: { n: 1 } } }));
    const ev = await delivery("the resource.created delivery", 0, (d) => d.json.event === "resource.created" && d.json.resource?.id === created.id);
    await verifyWebhook(secret, ev.headers, ev.body);
    assert.equal(ev.headers["webhook-id"], ev.json.cursor);
    assert.deepEqual(ev.json.resource?.data, { n: 1 });
    const tampered = ev.body.toString("utf8").replace('"n":1', '"n":2');
    assert.notEqual(tampered, ev.body.toString("utf8"));
    await assert.rejects(verifyWebhook(secret, ev.headers, tampered), (e: unknown) => e instanceof WebhookVerificationError && e.reason === "signature");

    const settled = await eventually("lag 0 and state active", async () => {
      const w = await t.webhooks.get(wh.id);
      return w.lag === 0 && w.state === "active" && w.lastSuccessAt ? w : undefined;
    });
    assert.equal(settled.secret, undefined);
    assert.equal(settled.cursor, ev.json.cursor);

    // Pause and resume.
    const paused = await t.webhooks.update(wh.id, { enabled: false });
    assert.equal(paused.state, "paused");
    assert.equal(paused.enabled, false);
    const resumed = await t.webhooks.resume(wh.id);
    assert.equal(resumed.state, "active");
    assert.equal(resumed.enabled, true);
    assert.equal(resumed.cursor, settled.cursor);

    // Rotation: a new secret, and during the grace period each delivery verifies with either.
    const rotated = await t.webhooks.update(wh.id, { rotateSecret: true });
    assert.match(rotated.secret ?? "", /^whsec_/);
    assert.notEqual(rotated.secret, secret);
    assert.ok(rotated.previousSecretExpiresAt);
    const mark = deliveries.length;
    const second = await unwrap(t.rest.POST("/v1/collections/{collection}/resources", { params: { path: { collection: "orders" } }, body: { data: { n: 2 } } }));
    const ev2 = await delivery("the delivery after the rotation", mark, (d) => d.json.resource?.id === second.id);
    await verifyWebhook(rotated.secret!, ev2.headers, ev2.body);
    await verifyWebhook(secret, ev2.headers, ev2.body);

    // Refusals are TandemErrors carrying the problem.
    await assert.rejects(
      t.webhooks.create({ topic, url: "ftp://x.example/" }),
      (e: unknown) =>
        e instanceof TandemError && (e.status === 422 || e.status === 400) && (e.problem.errors ?? []).some((f) => f.pointer === "/url"),
    );
    await assert.rejects(t.webhooks.resume("wh_00000000000000000000"), (e: unknown) => e instanceof TandemError && e.status === 404);

    // A retried create with the same Idempotency-Key replays the first reply.
    const once = await t.webhooks.create({ topic, url: hookUrl, maxBatch: 5 }, { idempotencyKey: "create-1" });
    const again = await t.webhooks.create({ topic, url: hookUrl, maxBatch: 5 }, { idempotencyKey: "create-1" });
    assert.deepEqual([again.id, again.secret, again.maxBatch], [once.id, once.secret, 5]);
    await t.webhooks.delete(once.id);

    await t.webhooks.delete(wh.id);
    await assert.rejects(t.webhooks.get(wh.id), (e: unknown) => e instanceof TandemError && e.status === 404 && e.slug === "not-found");
    await assert.rejects(t.webhooks.delete(wh.id), (e: unknown) => e instanceof TandemError && e.status === 404);
    assert.deepEqual(await t.webhooks.list(), []);
  });
});
