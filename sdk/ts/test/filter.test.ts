// Filters against a scripted server (frames validated against
// spec/asyncapi.yaml): subscriptions of one topic told apart by their
// canonical labels and filter, across a reconnect; refusals; and the list
// helpers' paging over a scripted fetch.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type ServerFrame,
  type Subscribe,
  type Subscription,
  Mirror,
  PROBLEM_BASE,
  Tandem,
  TandemError,
  collectionTopic,
} from "../src/index.js";
import { eventually, open, reader, script, within } from "./script.js";

const time = "2026-01-01T00:00:00Z";
const topic = collectionTopic("orders");

/** A resource.created event of the subscription with these canonical labels and filter. */
function created(id: string, cursor: string, labels?: string, filter?: string): ServerFrame {
  return {
    type: "event",
    topic,
    ...(labels ? { labels } : {}),
    ...(filter ? { filter } : {}),
    event: "resource.created",
    cursor,
    resource: { id, collection: "orders", data: {}, labels: {}, revision: 1, createdAt: time, updatedAt: time },
  };
}

/** The body of a subscribe reply that answers f with the canonical labels and filter. */
function canonical(f: Subscribe, labels?: string, filter?: string) {
  return {
    topic: f.topic,
    ...(labels ? { labels } : {}),
    ...(filter ? { filter } : {}),
    cursor: f.since ?? "c0",
    start: f.since ? ("since" as const) : ("live" as const),
  };
}

describe("filter (scripted)", () => {
  it("filter: routes frames by the canonical labels and filter of the reply, also after a reconnect", async () => {
    const s = await script();
    const conn = await open(s);
    let p = await s.peer(1);
    const subs: Array<{ name: string; labels?: string; filter?: string; opts: { labels?: string; filter?: string }; sub?: Subscription }> = [
      { name: "all", opts: {} },
      { name: "big", opts: { filter: "data.qty>2" }, filter: "data.qty > 2" },
      { name: "small-prod", opts: { labels: "env = prod", filter: "data.qty<=2||!exists(data.qty)" }, labels: "env=prod", filter: "data.qty <= 2 || !exists(data.qty)" },
    ];
    for (const x of subs) {
      const subscribing = conn.subscribe(topic, x.opts);
      const f = await p.expect("subscribe");
      assert.equal(f.filter, x.opts.filter, `${x.name}: the filter as written`);
      assert.equal(f.labels, x.opts.labels);
      p.ok(f, canonical(f, x.labels, x.filter));
      x.sub = await within(subscribing, "subscribe");
      assert.equal(x.sub.filter, x.filter, `${x.name}: the canonical filter`);
    }
    const routes = async (round: string) => {
      p.send(created("not-canonical", "x" + round, undefined, "data.qty>2")); // matches none
      for (const x of subs) p.send(created(`${x.name}-${round}`, `${x.name}-${round}`, x.labels, x.filter));
      for (const x of subs) {
        const ev = await reader(x.sub!)();
        assert.ok(ev.type === "event" && ev.resource?.id === `${x.name}-${round}` && ev.filter === x.filter, `${x.name} got ${JSON.stringify(ev)}`);
      }
    };
    await routes("1");

    // After a reconnect each is made again with its filter, from its cursor.
    p.drop();
    p = await s.peer(2);
    const again = new Map<string | undefined, Subscribe>();
    for (let i = 0; i < subs.length; i++) {
      const f = await p.expect("subscribe");
      again.set(f.filter, f);
    }
    for (const x of subs) {
      const f = again.get(x.opts.filter);
      assert.ok(f && f.labels === x.opts.labels && f.since === `${x.name}-1`, `${x.name}: resubscribed with ${JSON.stringify(f)}`);
      p.ok(f, canonical(f, x.labels, x.filter));
    }
    await eventually("all resubscribed", () => subs.every((x) => x.sub!.active));
    await routes("2");

    // close() unsubscribes with the canonical filter.
    const closing = subs[1]!.sub!.close();
    const u = await p.expect("unsubscribe");
    assert.deepEqual([u.filter, u.labels], ["data.qty > 2", undefined]);
    p.ok(u);
    await within(closing, "close");
    // An error frame ends only the subscription of its labels and filter.
    p.send({ type: "error", topic, labels: subs[2]!.labels, filter: subs[2]!.filter, problem: { type: PROBLEM_BASE + "forbidden", title: "Forbidden", status: 403 } });
    const err = await within(subs[2]!.sub!.done, "the end of small-prod");
    assert.ok(err instanceof TandemError && err.status === 403, String(err));
    p.send(created("all-3", "all-3"));
    const ev = await reader(subs[0]!.sub!)();
    assert.ok(ev.type === "event" && ev.resource?.id === "all-3");
  });

  it("filter: a refused filter rejects subscribe and Mirror.open with the problem naming its position", async () => {
    const s = await script();
    const conn = await open(s);
    const p = await s.peer(1);
    const detail = "filter: position 11: expected a value (a string, number, true, false or null), found end of the expression";
    const starts: Array<() => Promise<unknown>> = [() => conn.subscribe(topic, { filter: "data.qty >" }), () => Mirror.open(conn, "orders", { filter: "data.qty >" })];
    for (const start of starts) {
      const starting = start();
      const f = await p.expect("subscribe");
      assert.equal(f.filter, "data.qty >");
      p.send({ type: "reply", ref: f.ref, ok: false, problem: { type: PROBLEM_BASE + "invalid-request", title: "The request is invalid", status: 400, detail } });
      await assert.rejects(within(starting, "the refusal"), (e: unknown) => e instanceof TandemError && e.status === 400 && e.message.includes("position 11"));
    }
  });
});

describe("filter list paging (scripted fetch)", () => {
  it("filter: listPages sends filter, orderBy and each nextPageToken; list stops at limit", async () => {
    const seen: URLSearchParams[] = [];
    const ids = ["a", "b", "c", "d", "e"];
    const fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      seen.push(url.searchParams);
      const limit = Number(url.searchParams.get("limit"));
      const from = Number(url.searchParams.get("pageToken") ?? "0");
      const items = ids.slice(from, from + limit).map((id) => ({ id, collection: "orders", data: {}, labels: {}, revision: 7, createdAt: time, updatedAt: time }));
      const next = from + limit < ids.length ? { nextPageToken: String(from + limit) } : {};
      void init;
      return new Response(JSON.stringify({ items, revision: 7, ...next }), { status: 200, headers: { "Content-Type": "application/json" } });
    };
    const t = new Tandem({ baseUrl: "http://tandem.test", fetch: fetch as typeof globalThis.fetch });
    const cases = [
      { opts: { filter: "data.qty > 2", orderBy: "data.qty desc", pageSize: 2 }, want: ids, limits: ["2", "2", "2"] },
      { opts: { filter: "data.qty > 2" }, want: ids, limits: ["100"] },
      { opts: { labels: "env=prod", limit: 3, pageSize: 2 }, want: ["a", "b", "c"], limits: ["2", "1"] },
      { opts: { pageToken: "3" }, want: ["d", "e"], limits: ["1000"] },
    ];
    for (const c of cases) {
      seen.length = 0;
      const { items, revision } = await t.list("orders", c.opts);
      assert.deepEqual(items.map((r) => r.id), c.want, JSON.stringify(c.opts));
      assert.equal(revision, 7);
      assert.deepEqual(seen.map((q) => q.get("limit")), c.limits, JSON.stringify(c.opts));
      for (const [i, q] of seen.entries()) {
        assert.equal(q.get("filter"), "filter" in c.opts ? c.opts.filter : null);
        assert.equal(q.get("orderBy"), "orderBy" in c.opts ? c.opts.orderBy : null);
        assert.equal(q.get("labels"), "labels" in c.opts ? c.opts.labels : null);
        if (i > 0) assert.ok(q.get("pageToken"), "later pages carry the token");
      }
    }
    let pages = 0;
    for await (const page of t.listPages("orders", { pageSize: 2 })) {
      pages++;
      assert.ok(page.items.length <= 2);
    }
    assert.equal(pages, 3);
  });

  it("filter: list throws the server's problem", async () => {
    const problem = { type: PROBLEM_BASE + "needs-index", title: "The query needs an index", status: 422, detail: "declare an index on data.n" };
    const fetch = async () => new Response(JSON.stringify(problem), { status: 422, headers: { "Content-Type": "application/problem+json" } });
    const t = new Tandem({ baseUrl: "http://tandem.test", fetch: fetch as typeof globalThis.fetch });
    await assert.rejects(t.list("big", { filter: "data.n < 0" }), (e: unknown) => e instanceof TandemError && e.slug === "needs-index" && e.message.includes("data.n"));
  });
});
