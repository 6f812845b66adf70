// RPCs, server disconnects and server-side subscriptions, against a scripted
// WebSocket server that speaks spec/asyncapi.yaml (these frames' server side
// is not in this tree). Every frame either way is validated against the spec.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type ServerFrame,
  type Status,
  type Subscription,
  ClosedError,
  type Connection,
  ConnectionLostError,
  DisconnectedError,
  Mirror,
  PROBLEM_BASE,
  TandemError,
  TimeoutError,
  UnsubscribedError,
  channelTopic,
  collectionTopic,
  presenceTopic,
} from "../src/index.js";
import { connects, eventually, open, reader, script, within } from "./script.js";

/** The first server-side subscription conn is given. */
function serverSubscription(conn: Connection): Promise<Subscription> {
  return within(
    new Promise<Subscription>((resolve) => {
      const off = conn.onServerSubscription((s) => {
        off();
        resolve(s);
      });
    }),
    "a server-side subscription",
  );
}

const time = "2026-01-01T00:00:00Z";
function message(topic: string, offset: number, data: unknown): ServerFrame {
  const cursor = `c${offset}`;
  const channel = topic.split("/")[1]!;
  return { type: "event", topic, event: "message", cursor, message: { channel, offset, cursor, data, time } };
}

describe("rpc", () => {
  it("resolves with the data of the reply", async () => {
    const s = await script();
    const conn = await open(s);
    const p = await s.peer(1);
    const call = conn.rpc("game:move", { from: "e2", to: "e4" });
    const f = await p.expect("rpc");
    assert.equal(f.method, "game:move");
    assert.deepEqual(f.data, { from: "e2", to: "e4" });
    p.ok(f, { data: { accepted: true, board: [1, 2] } });
    assert.deepEqual(await within(call, "the rpc"), { accepted: true, board: [1, 2] });

    const bare = conn.rpc("game:state");
    const g = await p.expect("rpc");
    assert.equal("data" in g, false, "no data member without data");
    p.ok(g, { data: null });
    assert.equal(await within(bare, "the rpc"), null);
  });

  it("rejects with a TandemError carrying the problem", async () => {
    const s = await script();
    const conn = await open(s);
    const p = await s.peer(1);
    const call = conn.rpc("game:move", { from: "e2", to: "e9" });
    const f = await p.expect("rpc");
    p.send({ type: "reply", ref: f.ref, ok: false, problem: { type: "https://chess.example/illegal-move", title: "Illegal move", status: 422, detail: "e9 is off the board" } });
    await assert.rejects(within(call, "the rpc"), (e: unknown) => {
      assert.ok(e instanceof TandemError);
      assert.equal(e.status, 422);
      assert.equal(e.problem.detail, "e9 is off the board");
      return true;
    });

    const down = conn.rpc("game:move", {});
    const g = await p.expect("rpc");
    p.send({ type: "reply", ref: g.ref, ok: false, problem: { type: PROBLEM_BASE + "hook-unavailable", title: "Hook unavailable", status: 503 } });
    await assert.rejects(within(down, "the rpc"), (e: unknown) => e instanceof TandemError && e.status === 503 && e.slug === "hook-unavailable");
  });

  it("matches concurrent rpcs to replies that come in any order", async () => {
    const s = await script();
    const conn = await open(s);
    const p = await s.peer(1);
    const n = 8;
    const calls = Array.from({ length: n }, (_, i) => conn.rpc(`math:square`, i));
    const frames = [];
    for (let i = 0; i < n; i++) frames.push(await p.expect("rpc"));
    assert.equal(new Set(frames.map((f) => f.ref)).size, n, "every rpc has its own ref");
    // Answer in reverse, one problem in the middle.
    for (const f of [...frames].reverse()) {
      const x = f.data as number;
      if (x === 3) p.send({ type: "reply", ref: f.ref, ok: false, problem: { type: "about:blank", title: "Not today", status: 409 } });
      else p.ok(f, { data: x * x });
    }
    const results = await within(Promise.allSettled(calls), "every rpc");
    results.forEach((r, i) => {
      if (i === 3) assert.ok(r.status === "rejected" && r.reason instanceof TandemError && r.reason.status === 409);
      else assert.deepEqual(r, { status: "fulfilled", value: i * i });
    });
  });

  it("rejects an rpc in flight when the connection drops, and does not send it again", async () => {
    const s = await script();
    const statuses: Status[] = [];
    const conn = await open(s, statuses);
    const p1 = await s.peer(1);
    const call = conn.rpc("bank:transfer", { amount: 10 });
    await p1.expect("rpc");
    p1.drop();
    await assert.rejects(within(call, "the rpc"), ConnectionLostError);

    const p2 = await s.peer(2);
    await eventually("the reconnect", () => connects(statuses) === 2);
    // The first frame of the new connection is the ping, not the transfer again.
    const ping = conn.ping();
    const f = await p2.next();
    assert.equal(f.type, "ping", `got ${JSON.stringify(f)}`);
    p2.ok(f);
    await within(ping, "the ping");
  });

  it("gives up on timeoutMs and on an aborted signal, ignoring a late reply", async () => {
    const s = await script();
    const conn = await open(s);
    const p = await s.peer(1);
    const slow = conn.rpc("slow:op", 1, { timeoutMs: 50 });
    const f = await p.expect("rpc");
    await assert.rejects(within(slow, "the timeout"), (e: unknown) => e instanceof TimeoutError && e.message.includes("slow:op"));
    p.ok(f, { data: "late" }); // dropped: nobody waits for this ref any more

    const ac = new AbortController();
    const aborted = conn.rpc("slow:op", 2, { signal: ac.signal });
    const g = await p.expect("rpc");
    ac.abort(new Error("user gave up"));
    await assert.rejects(within(aborted, "the abort"), /user gave up/);
    p.ok(g, { data: "late" });

    const pre = new AbortController();
    pre.abort();
    await assert.rejects(conn.rpc("slow:op", 3, { signal: pre.signal }), (e: unknown) => (e as Error).name === "AbortError");

    // The connection is still fine, and the late replies went nowhere.
    const ok = conn.rpc("slow:op", 4);
    const h = await p.expect("rpc");
    assert.equal(h.data, 4);
    p.ok(h, { data: "on time" });
    assert.equal(await within(ok, "the rpc"), "on time");
  });
});

describe("disconnect", () => {
  it("with reconnect false ends the connection without reconnecting", async () => {
    const s = await script();
    const statuses: Status[] = [];
    const conn = await open(s, statuses);
    const p = await s.peer(1);
    const subscribing = conn.subscribe(collectionTopic("orders"));
    const sf = await p.expect("subscribe");
    p.ok(sf, { topic: sf.topic, cursor: "c1", start: "live" });
    const sub = await within(subscribing, "the subscription");
    const inFlight = conn.rpc("game:move", {});
    await p.expect("rpc");

    p.send({ type: "disconnect", code: 4003, reason: "kicked by an admin", reconnect: false });
    p.close(4003, "disconnected");

    const reason = await within(conn.closed, "the connection to end");
    assert.ok(reason instanceof DisconnectedError);
    assert.equal(reason.reason, "kicked by an admin");
    assert.equal(reason.reconnect, false);
    assert.equal(reason.code, 4003);
    await assert.rejects(inFlight, ConnectionLostError);
    assert.equal(await within(sub.done, "the subscription to end"), reason);
    await assert.rejects(reader(sub)(), DisconnectedError);
    await assert.rejects(conn.rpc("game:move", {}), DisconnectedError);
    await assert.rejects(conn.subscribe(channelTopic("lobby")), DisconnectedError);
    // A reconnect is always announced by a "disconnected" status, synchronously
    // when the socket is dropped; the connection went straight to closed.
    assert.deepEqual(
      statuses.map((st) => st.state),
      ["connected", "closed"],
    );
    assert.equal(statuses.at(-1)?.error, reason);
    assert.equal(s.peers.length, 1);
  });

  it("with reconnect true reconnects and resumes the subscriptions", async () => {
    const s = await script();
    const statuses: Status[] = [];
    const conn = await open(s, statuses);
    const p1 = await s.peer(1);
    const topic = channelTopic("lobby");
    const subscribing = conn.subscribe(topic);
    const sf = await p1.expect("subscribe");
    p1.ok(sf, { topic, cursor: "c1", start: "live" });
    const sub = await within(subscribing, "the subscription");
    const next = reader(sub);
    p1.send(message(topic, 2, { text: "before" }));
    assert.equal((await next()).type, "event");
    assert.equal(sub.cursor, "c2");

    p1.send({ type: "disconnect", code: 4003, reason: "rebalancing", reconnect: true });
    p1.close(4003, "disconnected");
    const p2 = await s.peer(2);
    const again = await p2.expect("subscribe");
    assert.equal(again.topic, topic);
    assert.equal(again.since, "c2");
    p2.ok(again, { topic, cursor: "c2", start: "since" });
    p2.send(message(topic, 3, { text: "after" }));
    const ev = await next();
    assert.ok(ev.type === "event" && ev.message?.offset === 3);
    const lost = statuses.find((st) => st.state === "disconnected");
    assert.ok(lost?.error instanceof DisconnectedError && lost.error.reconnect && lost.error.reason === "rebalancing");

    // A 4003 close without a disconnect frame is retried too.
    p2.close(4003, "");
    const p3 = await s.peer(3);
    const third = await p3.expect("subscribe");
    assert.equal(third.since, "c3");
    p3.ok(third, { topic, cursor: "c3", start: "since" });
    await eventually("the third connection", () => connects(statuses) === 3);
    assert.equal(sub.ended, false);
  });
});

describe("server-side subscriptions", () => {
  it("surface as subscriptions that receive their topic's frames, and end when the connection drops", async () => {
    const s = await script();
    const chat = channelTopic("chat:lobby");
    const orders = collectionTopic("orders");
    // Sent in the same tick as the welcome: before the application can listen.
    s.afterWelcome = [{ type: "subscribed", topic: chat, cursor: "c10", start: "live" }];
    const statuses: Status[] = [];
    const conn = await open(s, statuses);
    const p1 = await s.peer(1);
    const sub = await serverSubscription(conn);
    assert.equal(sub.topic, chat);
    assert.equal(sub.server, true);
    assert.equal(sub.cursor, "c10");
    const next = reader(sub);
    p1.send(message(chat, 11, { text: "hello" }));
    p1.send({ type: "bookmark", topic: chat, cursor: "c12" });
    p1.send(message(chat, 13, { text: "again" }));
    const a = await next();
    assert.ok(a.type === "event" && a.message?.data && (a.message.data as { text: string }).text === "hello");
    const b = await next();
    assert.ok(b.type === "event" && b.cursor === "c13");
    assert.equal(sub.cursor, "c13");

    // A later one, with a selector, and a presence one.
    const got: Subscription[] = [];
    const off = conn.onServerSubscription((x) => got.push(x));
    assert.equal(got.length, 0, "not called before onServerSubscription returns");
    await eventually("the live one", () => got.length === 1);
    assert.deepEqual(got, [sub], "a listener is given the live ones first");
    p1.send({ type: "subscribed", topic: orders, labels: "env=prod", cursor: "c20", start: "live" });
    p1.send({ type: "subscribed", topic: presenceTopic("chat:lobby"), start: "live" });
    await eventually("two more server-side subscriptions", () => got.length === 3);
    off();
    const [, labelled, presence] = got as [Subscription, Subscription, Subscription];
    assert.equal(labelled.labels, "env=prod");
    const resource = { id: "o-1", collection: "orders", data: { item: "tea" }, labels: { env: "prod" }, revision: 21, createdAt: time, updatedAt: time };
    p1.send({ type: "event", topic: orders, event: "resource.created", cursor: "c21", resource }); // no labels: another subscription's
    p1.send({ type: "event", topic: orders, labels: "env=prod", event: "resource.created", cursor: "c21", resource });
    const created = await reader(labelled)();
    assert.ok(created.type === "event" && created.resource?.id === "o-1" && created.labels === "env=prod");
    p1.send({ type: "presence", topic: presenceTopic("chat:lobby"), action: "state", members: [{ id: "ann", connections: [{ connectionId: "x" }] }] });
    const state = await reader(presence)();
    assert.ok(state.type === "presence" && state.members[0]?.id === "ann");

    // The server's to make again: the SDK ends them and subscribes to none of them.
    p1.drop();
    for (const x of got) assert.ok((await within(x.done, "the end")) instanceof ConnectionLostError, `${x.topic} ended with ${x.error}`);
    await assert.rejects(next(), ConnectionLostError);
    const p2 = await s.peer(2);
    await eventually("the reconnect", () => connects(statuses) === 2);
    const ping = conn.ping();
    const f = await p2.next();
    assert.equal(f.type, "ping", `got ${JSON.stringify(f)}`);
    p2.ok(f);
    await within(ping, "the ping");
    // The new connection's own subscribed (sent after its welcome) is a new Subscription.
    const fresh = await serverSubscription(conn);
    assert.notEqual(fresh, sub);
    assert.equal(fresh.ended, false);
  });

  it("end, like client ones, with an UnsubscribedError on unsubscribed", async () => {
    const s = await script();
    const chat = channelTopic("chat:lobby");
    const orders = collectionTopic("orders");
    const conn = await open(s);
    const p = await s.peer(1);
    const subscribing = conn.subscribe(orders, { labels: "env=prod" });
    const sf = await p.expect("subscribe");
    assert.equal(sf.labels, "env=prod");
    p.ok(sf, { topic: orders, labels: "env=prod", cursor: "c1", start: "live" });
    const mine = await within(subscribing, "the subscription");

    const pending = serverSubscription(conn);
    p.send({ type: "subscribed", topic: chat, cursor: "c5", start: "live" });
    const theirs = await pending;
    const next = reader(theirs);
    p.send(message(chat, 6, { text: "last" }));
    p.send({ type: "unsubscribed", topic: chat });
    p.send(message(chat, 7, { text: "after the end" })); // dropped
    const last = await next();
    assert.ok(last.type === "event" && last.message?.offset === 6);
    await assert.rejects(next(), (e: unknown) => e instanceof UnsubscribedError && e.topic === chat && e.labels === undefined);

    p.send({ type: "unsubscribed", topic: orders, labels: "env=prod" });
    const why = await within(mine.done, "the client subscription to end");
    assert.ok(why instanceof UnsubscribedError && why.topic === orders && why.labels === "env=prod");
    assert.match(why.message, /unsubscribed by the server/);

    // Neither is made again; the connection goes on. A server-side one closed
    // by the application is unsubscribed like any other.
    const again = serverSubscription(conn);
    p.send({ type: "subscribed", topic: chat, cursor: "c7", start: "live" });
    const third = await again;
    const closing = third.close();
    const u = await p.expect("unsubscribe");
    assert.equal(u.topic, chat);
    p.ok(u);
    await within(closing, "the close");
    assert.ok(third.error instanceof ClosedError);
    const ping = conn.ping();
    p.ok(await p.expect("ping"));
    await within(ping, "the ping");
  });
});

describe("batch mirror (scripted)", () => {
  it("batch: holds a batch's events back until its end event, then applies them at once", async () => {
    const s = await script();
    const conn = await open(s);
    let calls = 0;
    const opening = Mirror.open(conn, "c", { onEvent: () => void calls++ });
    const p = await s.peer(1);
    const sub = await p.expect("subscribe");
    p.ok(sub, { topic: sub.topic, cursor: "c0", start: "snapshot" });
    p.send({ type: "synced", topic: sub.topic, cursor: "c0" });
    const m = await within(opening, "the mirror");
    await within(m.synced, "synced");
    calls = 0;
    const topic = collectionTopic("c");
    const ev = (id: string, revision: number, end: boolean, batch = true): ServerFrame => ({
      type: "event",
      topic,
      event: "resource.created",
      cursor: `c${revision}`,
      resource: { id, collection: "c", data: {}, labels: {}, revision, createdAt: time, updatedAt: time },
      ...(batch ? { batch: { id: "b1", lastRevision: 4, end } } : {}),
    });
    p.send(ev("a", 1, false));
    p.send(ev("b", 2, false));
    await eventually("two held events", () => m.pending === 2);
    assert.equal(m.items.size, 0, "half a batch is visible");
    assert.equal(calls, 0);
    assert.equal(m.cursor, "c0");
    p.send(ev("c", 3, true)); // the last this mirror sees; revision 4 is elsewhere
    await eventually("the batch applied", () => m.items.size === 3);
    assert.equal(m.pending, 0);
    assert.equal(calls, 1);
    assert.equal(m.cursor, "c3");
    p.send(ev("d", 5, false, false));
    await eventually("a single change applied", () => m.items.size === 4 && calls === 2);
  });
});
