// A scripted Tandem for unit tests: a WebSocket server that sends
// `welcome` on every connection and then exactly what the test says, with
// every frame either way validated against spec/asyncapi.yaml. Connections
// and servers made with open() and script() end after each test.
import assert from "node:assert/strict";
import { after, afterEach } from "node:test";
import WebSocket, { WebSocketServer } from "ws";
import { type ClientFrame, type RealtimeEvent, type ServerFrame, type Status, type Subscription, Connection } from "../src/index.js";
import { frameViolation } from "./spec.js";

export const WAIT = 10_000; // bounds hangs; not a speed assertion

const violations: string[] = [];
function check(who: string, text: string): void {
  const v = frameViolation(text);
  if (v) violations.push(`${who}: ${v}: ${text}`);
}

after(() => assert.deepEqual(violations, [], "frames violating spec/asyncapi.yaml"));

/** Resolves with p, or rejects once WAIT has passed. */
export async function within<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error("timed out waiting for " + what)), WAIT)));
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** One connection as the scripted server sees it. */
export class Peer {
  readonly id: string;
  private readonly ws: WebSocket;
  private readonly inbox: ClientFrame[] = [];
  private wake?: () => void;
  closed = false;

  constructor(ws: WebSocket, id: string) {
    this.ws = ws;
    this.id = id;
    ws.on("message", (data) => {
      const text = String(data);
      check("server got", text);
      this.inbox.push(JSON.parse(text) as ClientFrame);
      this.wake?.();
    });
    ws.on("close", () => {
      this.closed = true;
      this.wake?.();
    });
  }

  send(f: ServerFrame): void {
    const text = JSON.stringify(f);
    check("server sent", text);
    this.ws.send(text);
  }

  /** The next frame the client sent. */
  async next(): Promise<ClientFrame> {
    const deadline = Date.now() + WAIT;
    for (;;) {
      const f = this.inbox.shift();
      if (f) return f;
      if (this.closed) throw new Error(`${this.id} closed while waiting for a frame`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.id}: no frame in time`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.wake = () => {
          clearTimeout(t);
          r();
        };
      });
      this.wake = undefined;
    }
  }

  /** The next frame, which must be of this type. */
  async expect<T extends ClientFrame["type"]>(type: T): Promise<Extract<ClientFrame, { type: T }>> {
    const f = await this.next();
    assert.equal(f.type, type, `expected ${type}, got ${JSON.stringify(f)}`);
    return f as Extract<ClientFrame, { type: T }>;
  }

  /** Answers a frame with ok: true. */
  ok(f: ClientFrame, body: NonNullable<Extract<ServerFrame, { type: "reply" }>["body"]> = {}): void {
    this.send({ type: "reply", ref: f.ref, ok: true, body });
  }

  close(code: number, reason = ""): void {
    this.ws.close(code, reason);
  }

  drop(): void {
    this.ws.terminate();
  }
}

/** A scripted Tandem: sends `welcome` on each connection, then does what the test says. */
export class Script {
  readonly url: string;
  readonly peers: Peer[] = [];
  private readonly wss: WebSocketServer;
  private waiters: Array<() => void> = [];
  /** Frames sent right after the welcome of every connection (in the same tick). */
  afterWelcome: ServerFrame[] = [];

  private constructor(wss: WebSocketServer) {
    this.wss = wss;
    const addr = wss.address() as { port: number };
    this.url = `http://127.0.0.1:${addr.port}`;
    wss.on("connection", (ws) => {
      const p = new Peer(ws, `conn-${this.peers.length + 1}`);
      p.send({ type: "welcome", connectionId: p.id, protocol: "tandem.v1", heartbeatSeconds: 30, maxFrameBytes: 65536 });
      for (const f of this.afterWelcome) p.send(f);
      this.peers.push(p);
      const w = this.waiters;
      this.waiters = [];
      w.forEach((f) => f());
    });
  }

  static start(): Promise<Script> {
    return new Promise((resolve, reject) => {
      const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
      wss.once("listening", () => resolve(new Script(wss)));
      wss.once("error", reject);
    });
  }

  /** The n-th connection (1-based) once it has been accepted. */
  async peer(n: number): Promise<Peer> {
    await within(
      (async () => {
        while (this.peers.length < n) await new Promise<void>((r) => this.waiters.push(r));
      })(),
      `connection ${n}`,
    );
    return this.peers[n - 1]!;
  }

  stop(): Promise<void> {
    for (const c of this.wss.clients) c.terminate();
    return new Promise((r) => this.wss.close(() => r()));
  }
}

const scripts: Script[] = [];
const conns: Connection[] = [];

afterEach(async () => {
  await Promise.all(conns.splice(0).map((c) => c.close()));
  await Promise.all(scripts.splice(0).map((s) => s.stop()));
});

export async function script(): Promise<Script> {
  const s = await Script.start();
  scripts.push(s);
  return s;
}

/** Opens a Connection to s, recording its statuses. */
export async function open(s: Script, statuses: Status[] = []): Promise<Connection> {
  const c = await Connection.open({
    baseUrl: s.url,
    WebSocket,
    backoff: { min: 20, max: 100 },
    onStatus: (st) => statuses.push(st),
    onFrame: (dir, text) => check(`client ${dir}`, text),
  });
  conns.push(c);
  return c;
}

/** Resolves once cond holds (checked every few ms), or rejects once WAIT has passed. */
export async function eventually(what: string, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + WAIT;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export const connects = (statuses: Status[]) => statuses.filter((st) => st.state === "connected").length;

/** Pulls events from a subscription with a deadline. */
export function reader(sub: Subscription) {
  const it = sub[Symbol.asyncIterator]();
  return async (): Promise<RealtimeEvent> => {
    const r = await within(it.next(), "an event");
    if (r.done) throw new Error("subscription ended: " + sub.error);
    return r.value;
  };
}
