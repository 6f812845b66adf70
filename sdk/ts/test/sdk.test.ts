import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import WebSocket from "ws";
import {
  type ClientFrame,
  type RealtimeEvent,
  type ServerFrame,
  type Subscription,
  ClosedError,
  Connection,
  Mirror,
  PresenceState,
  ResyncRequiredError,
  Tandem,
  TandemError,
  DisconnectedError,
  channelTopic,
  collectionTopic,
  presenceTopic,
  unwrap,
  updateCollection,
} from "../src/index.js";
import { createServer, type Server as HTTPServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Server, tandem } from "./server.js";
import { frameTypes, frameViolation } from "./spec.js";

const WAIT = 30_000; // bounds hangs; not a speed assertion

/** Every frame either way is validated against spec/asyncapi.yaml. */
const violations: string[] = [];
const servers: Server[] = [];
const conns: Connection[] = [];

function client(url: string, extra: Partial<ConstructorParameters<typeof Tandem>[0]> = {}): Tandem {
  return new Tandem({
    baseUrl: url,
    WebSocket,
    backoff: { min: 20, max: 250 },
    onFrame: (dir, text) => {
      const v = frameViolation(text);
      if (v) violations.push(`${dir}: ${v}: ${text}`);
    },
    ...extra,
  });
}

async function connect(t: Tandem): Promise<Connection> {
  const c = await t.connect();
  conns.push(c);
  return c;
}

async function server(extra: string[] = [], dataDir?: string): Promise<Server> {
  const s = await Server.start(extra, dataDir);
  servers.push(s);
  return s;
}

after(async () => {
  await Promise.all(conns.map((c) => c.close()));
  for (const s of servers) {
    await s.stop();
    assert.deepEqual(s.violations(), [], "the --strict server logged spec violations");
  }
  assert.deepEqual(violations, [], "frames violating spec/asyncapi.yaml");
});

/** Pulls events from a subscription with a deadline. */
function reader(sub: Subscription) {
  const it = sub[Symbol.asyncIterator]();
  return async (): Promise<RealtimeEvent> => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error("no event in time")), WAIT)));
    try {
      const r = await Promise.race([it.next(), timeout]);
      if (r.done) throw new Error("subscription ended: " + sub.error);
      return r.value;
    } finally {
      clearTimeout(timer);
    }
  };
}

function describeEvent(ev: RealtimeEvent): string {
  switch (ev.type) {
    case "event":
      return ev.resource ? `${ev.event} ${ev.resource.id} ${JSON.stringify(ev.resource.data)}` : `message ${JSON.stringify(ev.message?.data)}`;
    case "presence":
      return `presence ${ev.action} ${ev.members.map((m) => m.id).join(",")}`;
    default:
      return ev.type;
  }
}

async function eventually(what: string, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + WAIT;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function ensureCollection(t: Tandem, name: string): Promise<void> {
  const r = await t.rest.POST("/v1/collections", { body: { name } });
  if (r.response.status !== 201 && r.response.status !== 409) throw new Error(`create collection: ${r.response.status}`);
}

function put(t: Tandem, coll: string, id: string, data: Record<string, unknown>, labels?: Record<string, string>) {
  return unwrap(t.rest.PUT("/v1/collections/{collection}/resources/{id}", { params: { path: { collection: coll, id } }, body: { data, labels } }));
}

type Exhaustive<T extends never> = T;

describe("generated frame types", () => {
  it("cover exactly the frame types of spec/asyncapi.yaml", () => {
    const clientTypes = ["auth", "ping", "publish", "rpc", "subscribe", "unsubscribe"] as const satisfies readonly ClientFrame["type"][];
    const serverTypes = [
      "bookmark",
      "disconnect",
      "error",
      "event",
      "presence",
      "reply",
      "subscribed",
      "synced",
      "unsubscribed",
      "welcome",
    ] as const satisfies readonly ServerFrame["type"][];
    // Compile-time: no generated frame type is missing from the lists above.
    type _c = Exhaustive<Exclude<ClientFrame["type"], (typeof clientTypes)[number]>>;
    type _s = Exhaustive<Exclude<ServerFrame["type"], (typeof serverTypes)[number]>>;
    assert.deepEqual([...clientTypes, ...serverTypes].sort(), [...frameTypes].sort());
    assert.equal(frameViolation('{"type":"subscribe","ref":"1"}')?.includes("topic"), true);
  });
});

describe("realtime", () => {
  let s: Server;
  let t: Tandem;
  before(async () => {
    s = await server();
    t = client(s.url);
  });

  it("sends a snapshot, then synced, then live changes", async () => {
    await ensureCollection(t, "snap");
    await put(t, "snap", "a", { n: 1 });
    const conn = await connect(t);
    const sub = await conn.subscribe(collectionTopic("snap"), { snapshot: true });
    const next = reader(sub);
    assert.equal(describeEvent(await next()), 'resource.snapshot a {"n":1}');
    assert.equal(describeEvent(await next()), "synced");
    await put(t, "snap", "b", { n: 2 });
    await unwrap(t.rest.DELETE("/v1/collections/{collection}/resources/{id}", { params: { path: { collection: "snap", id: "a" } } }));
    const created = await next();
    assert.equal(describeEvent(created), 'resource.created b {"n":2}');
    const deleted = await next();
    assert.equal(describeEvent(deleted), 'resource.deleted a {"n":1}');
    assert.equal(sub.cursor, deleted.type === "event" ? deleted.cursor : "");
    await sub.close();
    assert.ok(sub.error instanceof ClosedError);
  });

  it("publishes with a reply and tracks presence", async () => {
    const alice = await connect(t);
    const watcher = await connect(t);
    const presence = new PresenceState();
    const pres = await watcher.subscribe(presenceTopic("chat:ts"));
    const nextPresence = reader(pres);
    assert.equal(presence.apply(await nextPresence()), true);
    assert.deepEqual(presence.members(), []);
    const got: RealtimeEvent[] = [];
    await alice.subscribe(channelTopic("chat:ts"), { meta: { name: "alice" }, onEvent: (ev) => got.push(ev) });
    const join = await nextPresence();
    assert.equal(join.type === "presence" && join.action, "join");
    presence.apply(join);
    assert.deepEqual(
      presence.members().map((m) => [m.id, m.connections[0]?.meta]),
      [[alice.welcome?.connectionId, { name: "alice" }]],
    );
    const m = await watcher.publish("chat:ts", { text: "hi" });
    assert.equal(m.offset, 1);
    await eventually("the message", () => got.length === 1);
    const ev = got[0]!;
    assert.equal(ev.type === "event" && ev.cursor, m.cursor);
    const rest = await unwrap(t.rest.GET("/v1/channels/{channel}/presence", { params: { path: { channel: "chat:ts" } } }));
    assert.equal(rest.members.length, 1);
    assert.ok((await alice.ping()) >= 0);
    await alice.close();
    const leave = await nextPresence();
    assert.equal(leave.type === "presence" && leave.action, "leave");
    presence.apply(leave);
    assert.deepEqual(presence.members(), []);
    await assert.rejects(alice.publish("chat:ts", 1), ClosedError);
  });

  it("pauses a subscription the application falls behind on and resumes it from its cursor", async () => {
    await ensureCollection(t, "slow");
    const conn = await connect(t);
    const sub = await conn.subscribe(collectionTopic("slow"), { maxPending: 8 });
    const n = 120;
    // Nobody iterates while every change is made.
    for (let i = 0; i < n; i++) await put(t, "slow", `r${String(i).padStart(3, "0")}`, { i });
    await eventually("a pause", () => sub.pauses > 0);
    const next = reader(sub);
    const ids: string[] = [];
    const cursors = new Set<string>();
    while (ids.length < n) {
      const ev = await next();
      assert.equal(ev.type, "event");
      if (ev.type !== "event" || !ev.resource) throw new Error("not a resource event");
      assert.ok(!cursors.has(ev.cursor), `cursor ${ev.cursor} twice`);
      cursors.add(ev.cursor);
      ids.push(ev.resource.id);
    }
    assert.deepEqual(ids, Array.from({ length: n }, (_, i) => `r${String(i).padStart(3, "0")}`));
    await sub.close();
  });

  it("reports problems as typed errors", async () => {
    const conn = await connect(t);
    await assert.rejects(conn.subscribe(collectionTopic("absent")), (e: unknown) => e instanceof TandemError && e.status === 404 && e.slug === "not-found");
    await assert.rejects(conn.subscribe("no/such/topic"), (e: unknown) => e instanceof TandemError && e.status === 400);
    await assert.rejects(
      unwrap(t.rest.GET("/v1/collections/{collection}", { params: { path: { collection: "absent" } } })),
      (e: unknown) => e instanceof TandemError && e.status === 404,
    );
    assert.ok((await conn.ping()) >= 0);
  });
});

describe("resume and resync", () => {
  it("keeps a gap-free mirror across a forced server restart", async () => {
    const s = await server();
    const statuses: string[] = [];
    const t = client(s.url, { onStatus: (st) => statuses.push(st.state) });
    await ensureCollection(t, "orders");
    for (let i = 0; i < 5; i++) await put(t, "orders", `o-${i}`, { v: -1 });
    const conn = await connect(t);
    let resets = 0;
    const mirror = await Mirror.open(conn, "orders", { onEvent: (_, ev) => void (ev.type === "reset" && resets++) });
    await mirror.synced;
    const seen: number[] = [];
    await (await connect(t)).subscribe(collectionTopic("orders"), {
      onEvent: (ev) => void (ev.type === "event" && ev.resource && seen.push(ev.resource.revision)),
    });

    const total = 240;
    const acked: number[] = [];
    let done = 0;
    const writer = (async () => {
      for (let i = 0; i < total; i++) {
        const id = `o-${i % 19}`;
        for (;;) {
          try {
            if (i % 7 === 6) {
              const r = await t.rest.DELETE("/v1/collections/{collection}/resources/{id}", { params: { path: { collection: "orders", id } } });
              if (r.response.status !== 204 && r.response.status !== 404) throw new Error(String(r.response.status));
            } else {
              acked.push((await put(t, "orders", id, { v: i }, { batch: String(i % 3) })).revision);
            }
            break;
          } catch {
            await new Promise((r) => setTimeout(r, 5)); // the server is down: retry
          }
        }
        done = i;
      }
    })();
    await eventually("a third of the writes", () => done >= total / 3);
    await s.stop("SIGKILL");
    await eventually("the client to notice", () => statuses.includes("disconnected"));
    await s.restart();
    await writer;

    const list = await unwrap(t.rest.GET("/v1/collections/{collection}/resources", { params: { path: { collection: "orders" }, query: { limit: 1000 } } }));
    const maxRev = Math.max(...acked, ...list.items.map((r) => r.revision));
    await eventually("the mirror to catch up", () => mirror.revision >= maxRev);
    await eventually("the raw stream to catch up", () => (seen.at(-1) ?? 0) >= maxRev);
    const summary = (items: Iterable<{ id: string; revision: number; data: unknown }>) =>
      JSON.stringify([...items].map((r) => [r.id, r.revision, r.data]).sort());
    assert.equal(summary(mirror.items.values()), summary(list.items));
    assert.equal(resets, 0, "a restart on the same data must resume, not reload");
    assert.ok(statuses.filter((x) => x === "connected").length >= 2, "no reconnect");
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i]! > seen[i - 1]!, `revision ${seen[i]} after ${seen[i - 1]}`);
    const set = new Set(seen);
    for (const r of acked) assert.ok(set.has(r), `acknowledged revision ${r} never arrived`);
  });

  it("surfaces resync-required for a stale cursor, and autoResync reloads", async () => {
    const a = await server();
    const b = await server();
    const ta = client(a.url);
    const tb = client(b.url);
    await ensureCollection(ta, "things");
    await ensureCollection(tb, "things");
    await put(tb, "things", "z", { n: 1 });
    const subA = await (await connect(ta)).subscribe(collectionTopic("things"));
    const cursor = subA.cursor!;
    const connB = await connect(tb);
    await assert.rejects(
      connB.subscribe(collectionTopic("things"), { since: cursor }),
      (e: unknown) => e instanceof ResyncRequiredError && e.cursor === cursor && e.status === 410,
    );
    const auto = await connB.subscribe(collectionTopic("things"), { since: cursor, autoResync: true });
    const next = reader(auto);
    assert.deepEqual([describeEvent(await next()), describeEvent(await next()), describeEvent(await next())], ["reset", 'resource.snapshot z {"n":1}', "synced"]);
  });

  it("ends a channel subscription whose history was lost in a restart", async () => {
    const s = await server();
    const t = client(s.url);
    const conn = await connect(t);
    const sub = await conn.subscribe(channelTopic("news"));
    const next = reader(sub);
    await conn.publish("news", { text: "before" });
    assert.equal(describeEvent(await next()), 'message {"text":"before"}');
    await s.stop("SIGKILL");
    await s.restart();
    await assert.rejects(next(), (e: unknown) => e instanceof ResyncRequiredError && e.topic === channelTopic("news"));
    const again = await conn.resync(sub);
    assert.equal(describeEvent(await reader(again)()), "synced");
  });
});

describe("auth", () => {
  it("authenticates in-band with a token function, and refuses without one", async () => {
    const secret = "ts-sdk-test-secret-0123456789abcdef";
    const s = await server(["--jwt-secret", secret]);
    let minted = 0;
    const token = () => {
      minted++;
      return tandem("token", "--secret", secret, "--sub", "alice", "--grant", "read:** publish:channels/** write:** admin:**", "--ttl", "1h");
    };
    const t = client(s.url, { token });
    await ensureCollection(t, "private");
    const conn = await connect(t);
    const sub = await conn.subscribe(collectionTopic("private"), { snapshot: true });
    assert.equal(describeEvent(await reader(sub)()), "synced");
    const res = await conn.authenticate();
    assert.equal(res.subject, "alice");
    assert.ok(res.expiresAt && Date.parse(res.expiresAt) > Date.now());
    assert.ok(minted >= 3);

    const anonymous = await connect(client(s.url));
    await assert.rejects(anonymous.subscribe(collectionTopic("private")), (e: unknown) => e instanceof TandemError && (e.status === 401 || e.status === 403));
    const denied = await unwrap(client(s.url).rest.GET("/v1/collections")).catch((e: unknown) => e);
    assert.ok(denied instanceof TandemError && denied.status === 401);
  });
});

describe("hooks, rpc and the connection API (real server)", () => {
  const hookSecret = "whsec_" + Buffer.from("ts-hook-secret-0123456789abcdef!").toString("base64");
  let app: HTTPServer;
  let s: Server;
  let t: Tandem;
  before(async () => {
    // The application: a game whose RPC accepts squares 0–8.
    app = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        const call = JSON.parse(body) as { method: string; data: { square?: number } };
        const sq = call.data?.square ?? -1;
        const answer =
          call.method === "game:move" && sq >= 0 && sq < 9
            ? { data: { accepted: true, square: sq } }
            : { problem: { status: 422, title: "illegal move" } };
        res.setHeader("Content-Type", "application/json");
        res.end(JSON.stringify(answer));
      });
    });
    await new Promise<void>((r) => app.listen(0, "127.0.0.1", r));
    const port = (app.address() as AddressInfo).port;
    s = await server(["--hook-rpc", `http://127.0.0.1:${port}/rpc`, "--hook-secret", hookSecret, "--hook-allow-private"]);
    t = client(s.url);
  });
  // Tandem keeps its hook connections alive (Go's idle timeout is 90 s):
  // close them too, or app.close waits for them.
  after(() => new Promise<void>((r) => {
    app.close(() => r());
    app.closeAllConnections();
  }));

  it("answers rpc with the application's result or its problem", async () => {
    const conn = await connect(t);
    assert.deepEqual(await conn.rpc("game:move", { square: 4 }), { accepted: true, square: 4 });
    const moves = await Promise.all([0, 1, 2, 3].map((sq) => conn.rpc("game:move", { square: sq })));
    assert.deepEqual(
      moves.map((m) => (m as { square: number }).square),
      [0, 1, 2, 3],
    );
    await assert.rejects(conn.rpc("game:move", { square: 12 }), (e: unknown) => e instanceof TandemError && e.problem.status === 422);
  });

  it("ends for good when the server disconnects it with reconnect=false", async () => {
    const statuses: string[] = [];
    const conn = await connect(client(s.url, { onStatus: (st) => statuses.push(st.state) }));
    const id = conn.welcome?.connectionId ?? "";
    assert.ok(id);
    const ids = async () => new Set((await unwrap(t.rest.GET("/v1/connections", {}))).items.map((c) => c.id));
    const before = await ids();
    assert.ok(before.has(id));
    const r = await t.rest.DELETE("/v1/connections/{connection}", { params: { path: { connection: id }, query: { reason: "maintenance", reconnect: false } } });
    assert.equal(r.response.status, 200);
    const err = await conn.closed;
    assert.ok(err instanceof DisconnectedError, String(err));
    assert.equal(err.reason, "maintenance");
    assert.equal(err.reconnect, false);
    // closed resolves only once the SDK is terminal (no reconnect timer left):
    // it never scheduled an attempt, and it said so.
    assert.deepEqual(statuses, ["connected", "closed"]);
    // The server stops listing a connection before it sends its close.
    const now = await ids();
    assert.ok(!now.has(id), "still listed after its close");
    assert.deepEqual([...now].filter((c) => !before.has(c)), [], "the SDK came back");
  });
});

describe("batch", () => {
  it("batch: applies atomically, and mirrors (one filtered) apply each batch whole", async () => {
    const s = await server();
    const t = client(s.url);
    for (const c of ["pairs", "other"]) await ensureCollection(t, c);
    const conn = await connect(t);
    const torn: string[] = [];
    const check = (m: Mirror) => {
      const ns = new Set([...m.items.values()].map((r) => (r.data as { n?: number }).n));
      if (ns.size > 1) torn.push(JSON.stringify([...ns]));
    };
    const all = await Mirror.open(conn, "pairs", { onEvent: (m) => check(m) });
    const prod = await Mirror.open(conn, "pairs", { labels: "env=prod", onEvent: (m) => check(m) });
    await Promise.all([all.synced, prod.synced]);
    let last = 0;
    for (let n = 0; n < 20; n++) {
      const r = await t.batch([
        { op: "put", collection: "pairs", id: "a", data: { n }, labels: { env: "prod" } },
        { op: "put", collection: "pairs", id: "b", data: { n }, labels: { env: "prod" } },
        { op: "put", collection: "other", id: "x", data: { n } },
        { op: "put", collection: "pairs", id: "c", data: { n }, labels: { env: "dev" } }, // the filtered mirror's last visible change is b
      ]);
      assert.equal(r.results.length, 4);
      assert.deepEqual(r.results.map((x) => x.revision), [r.lastRevision - 3, r.lastRevision - 2, r.lastRevision - 1, r.lastRevision]);
      last = r.lastRevision;
    }
    await eventually("both mirrors at the last batch", () => all.items.get("c")?.revision === last && prod.items.get("b")?.revision === last - 2);
    assert.deepEqual(torn, [], "a mirror showed half a batch");
    assert.equal(all.pending + prod.pending, 0);
    assert.deepEqual([...prod.items.keys()].sort(), ["a", "b"]);

    // A failing batch names its operation and writes nothing.
    await assert.rejects(
      t.batch([
        { op: "put", collection: "pairs", id: "a", data: {} },
        { op: "create", collection: "pairs", id: "b", data: {} },
      ]),
      (e: unknown) => e instanceof TandemError && e.status === 409 && e.problem.operation === 1,
    );
    assert.equal(all.items.get("a")?.revision, last - 3);
    // An idempotent retry replays the reply.
    const ops = [{ op: "patch" as const, collection: "pairs", id: "a", data: { extra: true }, labels: { env: null } }];
    const first = await t.batch(ops, { idempotencyKey: "k-1" });
    const again = await t.batch(ops, { idempotencyKey: "k-1" });
    assert.deepEqual(again, first);
  });
});

describe("filter (real server)", () => {
  it("filter: a filtered Mirror takes resources that start matching and drops those that stop; list pages with filter and orderBy", async () => {
    const s = await server();
    const t = client(s.url);
    await ensureCollection(t, "orders");
    await put(t, "orders", "a", { qty: 5 });
    await put(t, "orders", "b", { qty: 1 });
    const conn = await connect(t);
    const m = await Mirror.open(conn, "orders", { filter: "data.qty>2" });
    await m.synced;
    assert.deepEqual([...m.items.keys()], ["a"]);
    assert.equal(m.filter, "data.qty > 2", "the canonical filter");
    const keys = () => [...m.items.keys()].sort().join(",");
    for (const [id, qty, want] of [
      ["b", 3, "a,b"], // enters
      ["a", 2, "b"], // leaves
      ["c", 0, "b"], // never matches
      ["d", 9, "b,d"], // created matching
    ] as const) {
      const r = await put(t, "orders", id, { qty });
      await eventually(`${id} at ${qty}: ${want}`, () => keys() === want && (!m.items.has(id) || m.items.get(id)!.revision === r.revision));
    }

    const query = { filter: "data.qty >= 2", orderBy: "data.qty desc" };
    for (const pageSize of [undefined, 1, 2]) {
      const { items, revision } = await t.list("orders", { ...query, pageSize });
      assert.deepEqual(items.map((r) => r.id), ["d", "b", "a"], `pages of ${pageSize}`);
      assert.ok(revision >= 6);
    }
    const sizes: number[] = [];
    for await (const page of t.listPages("orders", { ...query, pageSize: 1 })) sizes.push(page.items.length);
    assert.deepEqual(sizes, [1, 1, 1]);
    assert.deepEqual((await t.list("orders", { ...query, limit: 2, pageSize: 1 })).items.map((r) => r.id), ["d", "b"]);
    await assert.rejects(t.list("orders", { filter: "data.qty >" }), (e: unknown) => e instanceof TandemError && e.status === 400 && e.message.includes("query filter: position 11"));
    await assert.rejects(t.list("orders", { orderBy: "data.qty sideways" }), (e: unknown) => e instanceof TandemError && e.status === 400 && e.message.includes("orderBy"));
    // A collection.updated event reaches the filtered mirror too.
    await updateCollection(t.rest, "orders", { indexes: [{ fields: ["data.qty"] }] });
    await eventually("collection.updated", () => m.collection?.indexes?.length === 1);
    await assert.rejects(Mirror.open(conn, "orders", { filter: "qty > 1" }), (e: unknown) => e instanceof TandemError && e.status === 400 && e.message.includes("qty"));
    await m.close();
  });
});
