import type {
  AuthResult,
  ChannelMessage,
  ClientFrame,
  ErrorFrame,
  Event,
  Presence,
  Reply,
  RpcResult,
  ServerFrame,
  SubscribeResult,
  Subscribed,
  Synced,
  Welcome,
} from "./gen/frames.js";
import { type Backoff, backoffDelay, defaultBackoff, refreshDelay } from "./backoff.js";
import {
  ClosedError,
  CloseError,
  ConnectionLostError,
  DisconnectedError,
  ResyncRequiredError,
  TandemError,
  TimeoutError,
  UnsubscribedError,
  problemError,
} from "./errors.js";
import { importOptional } from "./optional.js";
import { type TokenSource, resolveToken } from "./token.js";

// This module imports nothing outside the package (no openapi-fetch), so a
// browser can load dist/esm/realtime.js as a plain ES module.

/** Made by the SDK, not sent by the server: a snapshot starts again; discard the state built from this subscription. */
export interface ResetEvent {
  type: "reset";
  topic: string;
  labels?: string;
  filter?: string;
}

/** What a subscription delivers: the server's event, synced and presence frames, plus the SDK's reset marker. */
export type RealtimeEvent = Event | Synced | Presence | ResetEvent;

/** The part of the WebSocket API the SDK uses (browsers' WebSocket, Node 22+'s global, or the `ws` package). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: any) => void) | null;
  onclose: ((ev: any) => void) | null;
  onerror: ((ev: any) => void) | null;
}
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export interface Status {
  state: "connected" | "disconnected" | "closed";
  /** Why the connection was lost or closed. */
  error?: Error;
  /** Milliseconds until the next attempt (disconnected). */
  delay?: number;
  attempt?: number;
  connectionId?: string;
}

export interface RealtimeOptions {
  baseUrl: string;
  /** A JWT (or a function returning a fresh one): sent in-band as the first frame, and again before it expires. */
  token?: TokenSource;
  /** An API key, sent in-band like a token when no token is given. */
  apiKey?: string;
  /**
   * The WebSocket implementation. Default: the global WebSocket (browsers,
   * Node 22+, Deno, Bun), else the `ws` package loaded on first connect
   * (Node 18 and 20: `npm install ws`).
   */
  WebSocket?: WebSocketConstructor;
  backoff?: Partial<Backoff>;
  onStatus?: (s: Status) => void;
  /** Sees every frame sent ("out") or received ("in"), e.g. for logging. */
  onFrame?: (direction: "in" | "out", frame: string) => void;
}

export interface SubscribeOptions {
  /** Label selector for resource topics, e.g. "env=prod". */
  labels?: string;
  /**
   * Filter expression for resource topics (docs/queries.md), e.g.
   * `data.status == "paid" && data.qty > 2`. A resource that starts
   * matching arrives as `resource.created`, one that stops matching as
   * `resource.deleted` (with its last state); a snapshot holds only
   * matching resources. A bad expression rejects subscribe() with a
   * TandemError (400) whose detail names the position. The server answers
   * with the canonical form (`Subscription.filter`), which every frame of
   * the subscription carries.
   */
  filter?: string;
  /** Resume after this cursor: every later event, in order, no gap, no duplicate (or a ResyncRequiredError). */
  since?: string;
  /** The current state first (or a channel's history), then `synced`, then live events. Not with `since`. */
  snapshot?: boolean;
  /** Presence metadata of this connection, for a channel's messages topic. */
  meta?: Record<string, unknown>;
  /** On resync-required, reload with a snapshot (after a reset event) instead of ending. */
  autoResync?: boolean;
  /** Receive events through this callback instead of async iteration. */
  onEvent?: (ev: RealtimeEvent) => void;
  /**
   * Bounds the events received but not yet taken by async iteration
   * (default 10,000; -1: no bound). When a resource or channel messages
   * subscription reaches it outside a snapshot, the SDK pauses it instead of
   * queueing without end: it unsubscribes, keeps the cursor of the last
   * queued event and, once the iterator has taken every queued event,
   * subscribes again from that cursor: nothing lost or repeated
   * (`pauses` counts these). If the server no longer holds that position,
   * the subscription gets resync-required like any resume. Presence
   * subscriptions and snapshots are never paused.
   */
  maxPending?: number;
}

export interface RpcOptions {
  /** Gives up waiting: the promise rejects with the signal's reason (the RPC may still run on the server). */
  signal?: AbortSignal;
  /** Gives up after this many ms (counted from the call) with a TimeoutError; a late reply is ignored. */
  timeoutMs?: number;
}

export const collectionTopic = (c: string) => `collections/${c}/resources`;
export const resourceTopic = (c: string, id: string) => `collections/${c}/resources/${id}`;
export const channelTopic = (ch: string) => `channels/${ch}/messages`;
export const presenceTopic = (ch: string) => `channels/${ch}/presence`;

let wsPackage: Promise<WebSocketConstructor> | undefined;

/**
 * The WebSocket constructor to dial with: the one given, the global one
 * (browsers, Node 22+), or the `ws` package (Node 18 and 20), imported on
 * first use (through importOptional, so that bundlers leave it out: a
 * browser never gets here; the CommonJS build loads it with require()).
 */
export function resolveWebSocket(given?: WebSocketConstructor): Promise<WebSocketConstructor> {
  if (given) return Promise.resolve(given);
  const g = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (g) return Promise.resolve(g);
  wsPackage ??= (async () => {
    let mod: { default?: unknown; WebSocket?: unknown };
    try {
      mod = (await importOptional("ws")) as typeof mod;
    } catch (e) {
      wsPackage = undefined;
      throw new Error(
        "no WebSocket implementation: this runtime has no global WebSocket (Node < 22) and the 'ws' package could not be loaded " +
          `(${(e as Error).message}); run \`npm install ws\` or pass { WebSocket }`,
      );
    }
    const WS = typeof mod.default === "function" ? mod.default : typeof mod.WebSocket === "function" ? mod.WebSocket : mod;
    return WS as WebSocketConstructor;
  })();
  return wsPackage;
}

// 4003 (disconnected by the server) is retried unless its `disconnect`
// frame said reconnect: false, which ends the connection before the close.
const FATAL_CODES = new Set([1008, 4010]);

/**
 * A subscription on a connection as the server identifies it: its topic and
 * the canonical label selector and filter that the subscribe reply gives
 * and every frame of the subscription carries.
 */
const subKey = (topic: string, labels?: string, filter?: string) => `${topic}\0${labels ?? ""}\0${filter ?? ""}`;
const STABLE_AFTER_MS = 10_000;

type Outgoing = ClientFrame extends infer F ? (F extends { ref: string } ? Omit<F, "ref"> : never) : never;

interface Pending {
  resolve(f: Reply): void;
  reject(e: Error): void;
  onReply?: (f: Reply) => void;
}

/**
 * A realtime connection that reconnects by itself (jittered exponential
 * backoff) and re-establishes every subscription from the last cursor it
 * saw, so subscribers get every event once, in order, across reconnects
 * and server restarts. Requests in flight when the connection drops reject
 * with ConnectionLostError (an RPC is never sent again: it may have run);
 * new ones wait for the next connection. Subscriptions the server made
 * (onServerSubscription) end when the connection drops and are not made
 * again by the SDK. A `disconnect` frame with `reconnect: false` ends the
 * connection with a DisconnectedError.
 */
export class Connection {
  /** Resolves with the reason once the connection has ended for good. */
  readonly closed: Promise<Error>;
  welcome?: Welcome;
  private resolveClosed!: (e: Error) => void;
  private readonly o: RealtimeOptions;
  private readonly backoff: Backoff;
  private readonly WS: WebSocketConstructor;
  private ws?: WebSocketLike;
  private gen = 0;
  private ref = 0;
  private attempt = 0;
  private upSince = 0;
  private endReason?: Error;
  private readonly subs = new Set<Subscription>();
  private readonly byKey = new Map<string, Subscription>();
  private readonly serverSubListeners = new Set<(s: Subscription) => void>();
  private pending = new Map<string, Pending>();
  private readyWaiters: Array<() => void> = [];
  private idleTimer?: ReturnType<typeof setTimeout>;
  private refreshTimer?: ReturnType<typeof setTimeout>;
  private reconnectTimer?: ReturnType<typeof setTimeout>;

  private constructor(o: RealtimeOptions, WS: WebSocketConstructor) {
    this.o = o;
    this.backoff = { ...defaultBackoff, ...o.backoff };
    this.WS = WS;
    this.closed = new Promise((r) => (this.resolveClosed = r));
  }

  /** Opens a connection; rejects when the first attempt fails (or when there is no WebSocket implementation). */
  static async open(o: RealtimeOptions): Promise<Connection> {
    const c = new Connection(o, await resolveWebSocket(o.WebSocket));
    const { ws, welcome, auth, early } = await c.dial();
    c.attach(ws, welcome, auth, early);
    return c;
  }

  private get refreshable(): boolean {
    return typeof this.o.token === "function";
  }

  private url(): string {
    const base = new URL(this.o.baseUrl, (globalThis as { location?: { href: string } }).location?.href);
    base.protocol = base.protocol === "https:" ? "wss:" : "ws:";
    base.pathname = base.pathname.replace(/\/+$/, "") + "/v1/ws";
    return base.toString();
  }

  private emit(s: Status): void {
    this.o.onStatus?.(s);
  }

  private sendOn(ws: WebSocketLike, frame: ClientFrame): void {
    const text = JSON.stringify(frame);
    ws.send(text);
    this.o.onFrame?.("out", text);
  }

  /**
   * Dials, reads the welcome, and authenticates in-band when credentials are
   * configured. Other frames that arrive after the welcome (e.g. the
   * `subscribed` of a server-side subscription) are kept in `early`, until
   * attach takes over the socket.
   */
  private dial(): Promise<{ ws: WebSocketLike; welcome: Welcome; auth?: AuthResult; early: ServerFrame[] }> {
    return new Promise((resolve, reject) => {
      const ws = new this.WS(this.url());
      let welcome: Welcome | undefined;
      const early: ServerFrame[] = [];
      let settled = false;
      const fail = (e: Error) => {
        if (settled) return;
        settled = true;
        ws.onmessage = ws.onclose = ws.onerror = null;
        try {
          ws.close();
        } catch {
          /* already closed */
        }
        reject(e);
      };
      const timer = setTimeout(() => fail(new Error("timed out waiting for the welcome frame")), 15_000);
      ws.onerror = (ev: { message?: string; error?: Error }) => {
        clearTimeout(timer);
        fail(new Error(`dial ${this.url()}: ${ev?.error?.message ?? ev?.message ?? "connection failed"}`));
      };
      ws.onclose = (ev: { code: number; reason: string }) => {
        clearTimeout(timer);
        fail(FATAL_CODES.has(ev.code) ? new CloseError(ev.code, ev.reason) : new Error(`closed during handshake: ${ev.code} ${ev.reason}`));
      };
      ws.onmessage = async (ev: { data: unknown }) => {
        const text = String(ev.data);
        this.o.onFrame?.("in", text);
        const f = JSON.parse(text) as ServerFrame;
        if (!welcome) {
          if (f.type !== "welcome") return fail(new Error(`first frame is not a welcome: ${text.slice(0, 200)}`));
          welcome = f;
          const token = (await resolveToken(this.o.token).catch((e: Error) => fail(e))) ?? this.o.apiKey;
          if (settled) return;
          if (!token) {
            clearTimeout(timer);
            settled = true;
            return resolve({ ws, welcome, early });
          }
          this.sendOn(ws, { type: "auth", ref: "auth", token });
          return;
        }
        if (f.type === "reply" && f.ref === "auth" && !settled) {
          clearTimeout(timer);
          if (!f.ok) return fail(problemError(f.problem));
          settled = true;
          return resolve({ ws, welcome, auth: f.body as AuthResult, early });
        }
        if (f.type === "disconnect" && !settled) {
          clearTimeout(timer);
          return fail(f.reconnect ? new Error(`disconnected during handshake: ${f.reason ?? ""}`) : new DisconnectedError(f.reason ?? "", false));
        }
        early.push(f);
      };
    });
  }

  private attach(ws: WebSocketLike, welcome: Welcome, auth: AuthResult | undefined, early: ServerFrame[]): void {
    this.ws = ws;
    this.gen++;
    this.welcome = welcome;
    this.upSince = Date.now();
    ws.onmessage = (ev: { data: unknown }) => this.onMessage(ws, String(ev.data));
    ws.onclose = (ev: { code: number; reason: string }) => this.detach(ws, new CloseError(ev.code, ev.reason));
    ws.onerror = () => {
      /* onclose follows */
    };
    this.emit({ state: "connected", connectionId: welcome.connectionId });
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    waiters.forEach((w) => w());
    const gen = this.gen;
    for (const s of this.subs) this.sendSubscribe(s, gen);
    this.armIdle(ws);
    if (auth?.expiresAt && this.refreshable) this.scheduleRefresh(gen, Date.parse(auth.expiresAt));
    for (const f of early) if (this.ws === ws) this.handleFrame(ws, f);
  }

  /** Without traffic for twice the heartbeat, ping; without a reply, drop the connection. */
  private armIdle(ws: WebSocketLike): void {
    clearTimeout(this.idleTimer);
    const hb = Math.max(1, this.welcome?.heartbeatSeconds ?? 30);
    this.idleTimer = setTimeout(() => {
      if (this.ws !== ws) return;
      const timeout = setTimeout(() => {
        if (this.ws === ws) {
          this.detach(ws, new Error("heartbeat timeout"));
          ws.close();
        }
      }, 10_000);
      this.ping().then(
        () => clearTimeout(timeout),
        () => clearTimeout(timeout),
      );
    }, (2 * hb + 10) * 1000);
  }

  private scheduleRefresh(gen: number, expiresAt: number): void {
    clearTimeout(this.refreshTimer);
    if (!Number.isFinite(expiresAt)) return;
    this.refreshTimer = setTimeout(async () => {
      if (this.gen !== gen || !this.ws) return;
      try {
        const res = await this.authenticate();
        if (res.expiresAt) this.scheduleRefresh(gen, Date.parse(res.expiresAt));
      } catch {
        // The server closes with 4001 at expiry; the reconnect then presents a fresh token.
      }
    }, refreshDelay(Date.now(), expiresAt));
  }

  private detach(ws: WebSocketLike, cause: Error): void {
    if (this.ws !== ws) return;
    this.ws = undefined;
    clearTimeout(this.idleTimer);
    clearTimeout(this.refreshTimer);
    const pending = this.pending;
    this.pending = new Map();
    this.byKey.clear();
    for (const s of [...this.subs]) {
      s.active = false;
      // A server-side subscription is the server's to make again, on the next connection.
      if (s.server && !this.endReason) {
        this.endSub(s, new ConnectionLostError(cause.message, `connection lost (${cause.message}): the server-side subscription of ${s.topic} ended`));
      }
    }
    for (const p of pending.values()) p.reject(new ConnectionLostError(cause.message));
    if (this.endReason) return this.finish(this.endReason);
    const code = cause instanceof CloseError ? cause.code : 0;
    if (FATAL_CODES.has(code) || (code === 4001 && !this.refreshable)) return this.finish(cause);
    if (Date.now() - this.upSince >= STABLE_AFTER_MS) this.attempt = 0;
    this.reconnect(cause, code === 4001);
  }

  private reconnect(cause: Error, immediate: boolean): void {
    const delay = immediate ? 0 : backoffDelay(this.backoff, this.attempt++);
    this.emit({ state: "disconnected", error: cause, delay, attempt: this.attempt });
    this.reconnectTimer = setTimeout(async () => {
      if (this.endReason) return;
      try {
        const { ws, welcome, auth, early } = await this.dial();
        if (this.endReason) {
          ws.close(1000);
          return;
        }
        this.attach(ws, welcome, auth, early);
      } catch (e) {
        if (this.endReason) return;
        const err = e as Error;
        const fatal =
          (err instanceof CloseError && !(err instanceof DisconnectedError && err.reconnect)) ||
          (err instanceof TandemError && (err.status === 403 || (err.status === 401 && !this.refreshable)));
        if (fatal) return this.finish(err);
        this.reconnect(err, false);
      }
    }, delay);
  }

  private finish(reason: Error): void {
    if (!this.endReason) this.endReason = reason;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.idleTimer);
    clearTimeout(this.refreshTimer);
    for (const s of [...this.subs]) this.endSub(s, this.endReason);
    for (const p of this.pending.values()) p.reject(this.endReason);
    this.pending.clear();
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    waiters.forEach((w) => w());
    this.emit({ state: "closed", error: this.endReason });
    this.resolveClosed(this.endReason);
  }

  /** Closes the connection (1000) and ends every subscription with ClosedError. */
  async close(): Promise<void> {
    if (this.endReason) return;
    this.endReason = new ClosedError();
    const ws = this.ws;
    if (ws) {
      this.detach(ws, this.endReason);
      ws.close(1000);
    } else {
      this.finish(this.endReason);
    }
    await this.closed;
  }

  private async waitReady(): Promise<WebSocketLike> {
    for (;;) {
      if (this.endReason) throw this.endReason;
      if (this.ws) return this.ws;
      await new Promise<void>((r) => this.readyWaiters.push(r));
    }
  }

  private nextRef(): string {
    return String(++this.ref);
  }

  /**
   * Sends a frame (waiting for a connection) and resolves with its
   * successful reply. The frame is sent once: if the connection drops
   * before the reply, the request rejects with ConnectionLostError.
   */
  private request(frame: Outgoing, opts: RpcOptions = {}): Promise<Reply> {
    const { signal, timeoutMs } = opts;
    return new Promise<Reply>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      let ref: string | undefined;
      let settled = false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        fn();
      };
      // Giving up forgets the ref, so a late reply is dropped.
      const giveUp = (e: unknown) =>
        settle(() => {
          if (ref !== undefined) this.pending.delete(ref);
          reject(e);
        });
      const onAbort = () => giveUp(signal!.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
      if (timeoutMs !== undefined) timer = setTimeout(() => giveUp(new TimeoutError(frame.type === "rpc" ? `rpc ${frame.method}` : frame.type, timeoutMs)), timeoutMs);
      this.waitReady().then(
        (ws) => {
          if (settled) return;
          ref = this.nextRef();
          this.pending.set(ref, {
            resolve: (r) => settle(() => (r.ok ? resolve(r) : reject(problemError(r.problem)))),
            reject: (e) => settle(() => reject(e)),
          });
          try {
            this.sendOn(ws, { ...frame, ref } as ClientFrame);
          } catch (e) {
            giveUp(e);
          }
        },
        (e) => settle(() => reject(e)),
      );
    });
  }

  /**
   * Calls a method of the application (forwarded to its RPC hook) and
   * resolves with the `data` of its result. Rejects with a TandemError when
   * the application (or the server: 404 unknown method, 403, 503
   * hook-unavailable) answers with a problem, with ConnectionLostError when
   * the connection drops before the reply (the RPC is never sent again: it
   * may have run), and with a TimeoutError or the signal's reason when
   * given up on. Called while reconnecting, it waits for the connection.
   * Any number may be in flight; replies come in any order.
   */
  async rpc(method: string, data?: unknown, options: RpcOptions = {}): Promise<unknown> {
    const r = await this.request({ type: "rpc", method, data }, options);
    return (r.body as RpcResult | undefined)?.data;
  }

  /**
   * Calls cb with every subscription the server makes for this connection
   * (a `subscribed` frame), including those already live when cb is
   * registered (e.g. made right after the connection opened; these in a
   * microtask, never before onServerSubscription returns). Such a
   * Subscription is iterated like one from subscribe() (its `server` is
   * true) and ends with an UnsubscribedError when the server ends it, with
   * ConnectionLostError when the connection drops (the SDK does not make it
   * again after a reconnect; the server may), or with ClosedError when
   * closed. Returns a function that removes cb.
   */
  onServerSubscription(cb: (s: Subscription) => void): () => void {
    this.serverSubListeners.add(cb);
    const live = [...this.subs].filter((s) => s.server && !s.ended);
    if (live.length) {
      queueMicrotask(() => {
        for (const s of live) if (this.serverSubListeners.has(cb) && !s.ended) cb(s);
      });
    }
    return () => void this.serverSubListeners.delete(cb);
  }

  /** Publishes data (any JSON value) to a channel; resolves with the stored message and its cursor. */
  async publish(channel: string, data: unknown): Promise<ChannelMessage> {
    const r = await this.request({ type: "publish", topic: channelTopic(channel), data });
    return r.body as ChannelMessage;
  }

  /** Application-level ping; resolves with the round-trip time in ms. */
  async ping(): Promise<number> {
    const t = Date.now();
    await this.request({ type: "ping" });
    return Date.now() - t;
  }

  /** Sends a fresh token in-band (done by itself before a token from a function expires). */
  async authenticate(): Promise<AuthResult> {
    const token = (await resolveToken(this.o.token)) ?? this.o.apiKey;
    if (!token) throw new Error("authenticate needs a token or an apiKey");
    const r = await this.request({ type: "auth", token });
    return r.body as AuthResult;
  }

  /**
   * Follows a topic. Resolves once the server accepted it. A connection
   * holds one subscription per topic, selector and filter (the server
   * answers 409 to a second). Rejects with ResyncRequiredError (a stale
   * `since`, without autoResync) or a TandemError (e.g. 400 for a bad
   * `labels` or `filter`, naming the position).
   */
  async subscribe(topic: string, options: SubscribeOptions = {}): Promise<Subscription> {
    if (options.since && options.snapshot) throw new Error("since and snapshot cannot be combined");
    if (this.endReason) throw this.endReason;
    const s = new Subscription(this, topic, options);
    this.subs.add(s);
    if (this.ws) this.sendSubscribe(s, this.gen);
    await s.first;
    return s;
  }

  /** Subscribes again, with a snapshot, to the topic of an ended subscription (e.g. after a ResyncRequiredError). */
  resync(ended: Subscription): Promise<Subscription> {
    return this.subscribe(ended.topic, { ...ended.options, since: undefined, snapshot: true });
  }

  /** @internal */
  async unsubscribe(s: Subscription): Promise<void> {
    if (s.ended) return;
    const wasActive = s.active;
    this.endSub(s, new ClosedError());
    if (wasActive && this.ws) {
      await this.request({ type: "unsubscribe", topic: s.topic, labels: s.labels || undefined, filter: s.filter || undefined }).catch(() => undefined);
    }
  }

  private endSub(s: Subscription, err: Error): void {
    if (s.ended) return;
    this.subs.delete(s);
    if (s.key && this.byKey.get(s.key) === s) this.byKey.delete(s.key);
    s.end(err);
  }

  /**
   * Unsubscribes s until its iterator has taken every queued event; frames
   * still in flight for it are dropped, since it leaves byKey.
   */
  private pause(s: Subscription): void {
    s.paused = true;
    s.pauses++;
    s.active = false;
    if (s.key && this.byKey.get(s.key) === s) this.byKey.delete(s.key);
    if (this.ws) {
      const ref = this.nextRef();
      this.pending.set(ref, { resolve: () => undefined, reject: () => undefined });
      this.sendOn(this.ws, { type: "unsubscribe", ref, topic: s.topic, labels: s.labels || undefined, filter: s.filter || undefined });
    }
  }

  /** @internal Subscribes a paused subscription again from its cursor (or on the next connection). */
  resumePaused(s: Subscription): void {
    if (!s.paused || s.ended || s.server) return;
    s.paused = false;
    this.sendSubscribe(s, this.gen);
  }

  private sendSubscribe(s: Subscription, gen: number): void {
    const ws = this.ws;
    if (!ws || this.gen !== gen || s.ended || s.active || s.paused || s.server) return;
    const frame: Outgoing = { type: "subscribe", topic: s.topic };
    if (s.options.labels) frame.labels = s.options.labels;
    if (s.options.filter) frame.filter = s.options.filter;
    if (s.options.meta) frame.meta = s.options.meta;
    let reset = false;
    if (s.presence) {
      // presence topics have no cursor: the server sends the state again
    } else if (s.snapshotting) {
      frame.snapshot = true;
      reset = s.sawSnapshot;
      s.sawSnapshot = false;
    } else if (s.cursor) {
      frame.since = s.cursor;
    }
    const since = frame.since;
    const ref = this.nextRef();
    this.pending.set(ref, { resolve: () => undefined, reject: () => undefined, onReply: (r) => this.subscribeReplied(s, gen, since, r) });
    if (reset) s.deliver({ type: "reset", topic: s.topic, labels: s.options.labels, filter: s.key ? s.filter : s.options.filter });
    this.sendOn(ws, { ...frame, ref } as ClientFrame);
  }

  private subscribeReplied(s: Subscription, gen: number, since: string | undefined, r: Reply): void {
    if (!r.ok) return this.subscriptionFailed(s, gen, problemError(r.problem, s.topic, s.options.labels, since));
    const res = r.body as SubscribeResult;
    if (s.ended) {
      // closed while the subscribe was in flight: undo it
      if (this.ws && this.gen === gen) {
        const ref = this.nextRef();
        this.pending.set(ref, { resolve: () => undefined, reject: () => undefined });
        this.sendOn(this.ws, { type: "unsubscribe", ref, topic: res.topic, labels: res.labels, filter: res.filter });
      }
      return;
    }
    s.key = subKey(res.topic, res.labels, res.filter);
    s.labels = res.labels;
    s.filter = res.filter;
    s.active = true;
    s.retries = 0;
    this.byKey.set(s.key, s);
    if (!s.snapshotting && !s.cursor) s.cursor = res.cursor;
    s.accepted();
  }

  private subscriptionFailed(s: Subscription, gen: number, err: TandemError): void {
    if (s.server) return this.endSub(s, err);
    if (err instanceof ResyncRequiredError && s.options.autoResync) {
      s.snapshotting = true;
      s.sawSnapshot = true;
      s.cursor = undefined;
      return this.sendSubscribe(s, gen);
    }
    if (err.status === 429 || err.status === 503) {
      setTimeout(() => this.sendSubscribe(s, gen), backoffDelay(this.backoff, s.retries++));
      return;
    }
    this.endSub(s, err);
  }

  private onMessage(ws: WebSocketLike, text: string): void {
    if (this.ws !== ws) return;
    this.o.onFrame?.("in", text);
    this.armIdle(ws);
    this.handleFrame(ws, JSON.parse(text) as ServerFrame);
  }

  private handleFrame(ws: WebSocketLike, f: ServerFrame): void {
    switch (f.type) {
      case "reply": {
        const p = this.pending.get(f.ref);
        if (!p) return;
        this.pending.delete(f.ref);
        p.onReply?.(f);
        p.resolve(f);
        return;
      }
      case "event":
      case "synced":
      case "bookmark":
      case "presence": {
        const s = this.byKey.get(f.type === "presence" ? subKey(f.topic) : subKey(f.topic, f.labels, f.filter));
        if (!s || s.ended) return;
        if (f.type === "event") {
          if (s.overLimit()) return this.pause(s);
          if (s.snapshotting) s.sawSnapshot = true;
          else s.cursor = f.cursor;
          s.deliver(f);
        } else if (f.type === "synced") {
          s.snapshotting = false;
          s.sawSnapshot = false;
          s.cursor = f.cursor;
          s.deliver(f);
        } else if (f.type === "bookmark") {
          if (!s.snapshotting) s.cursor = f.cursor;
        } else {
          s.deliver(f);
        }
        return;
      }
      case "error": {
        const e = f as ErrorFrame;
        if (!e.topic) return; // the connection is about to close; subscriptions resume from their cursors
        const key = subKey(e.topic, e.labels, e.filter);
        const s = this.byKey.get(key);
        if (!s || s.ended) return;
        this.byKey.delete(key);
        s.active = false;
        this.subscriptionFailed(s, this.gen, problemError(e.problem, s.topic, s.options.labels, s.cursor));
        return;
      }
      case "subscribed":
        return this.serverSubscribed(f);
      case "unsubscribed": {
        const s = this.byKey.get(subKey(f.topic, f.labels, f.filter));
        if (!s || s.ended) return;
        this.endSub(s, new UnsubscribedError(f.topic, f.labels));
        return;
      }
      case "disconnect": {
        // Nothing more comes on this socket (the server closes it with
        // 4003): drop it now, and stop for good unless reconnect is true.
        const err = new DisconnectedError(f.reason ?? "", f.reconnect);
        if (!f.reconnect) this.endReason ??= err;
        this.detach(ws, err);
        try {
          ws.close(1000);
        } catch {
          /* already closing */
        }
        return;
      }
    }
  }

  private serverSubscribed(f: Subscribed): void {
    const key = subKey(f.topic, f.labels, f.filter);
    const existing = this.byKey.get(key);
    // One subscription per topic, selector and filter: the one already here goes on receiving the topic's frames.
    if (existing && !existing.ended) return;
    const s = new Subscription(this, f.topic, { ...(f.labels ? { labels: f.labels } : {}), ...(f.filter ? { filter: f.filter } : {}) }, true);
    s.key = key;
    s.labels = f.labels;
    s.filter = f.filter;
    s.cursor = f.cursor;
    s.active = true;
    this.subs.add(s);
    this.byKey.set(key, s);
    s.accepted();
    for (const cb of [...this.serverSubListeners]) cb(s);
  }
}

/**
 * One topic followed over a Connection, across reconnects. Iterate it with
 * `for await` (which throws the error that ended it, e.g. a
 * ResyncRequiredError) or pass `onEvent`. A subscription the server made
 * (`server` true, see Connection.onServerSubscription) lasts as long as its
 * connection.
 */
export class Subscription implements AsyncIterable<RealtimeEvent> {
  readonly topic: string;
  readonly options: SubscribeOptions;
  /** Resolves with the reason once the subscription has ended. */
  readonly done: Promise<Error>;
  /** The cursor to resume from (the newest event or bookmark received). */
  cursor: string | undefined;
  /** The label selector as the server normalised it. */
  labels: string | undefined;
  /** The filter in the canonical form the server answered with (e.g. "data.qty > 2" for "data.qty>2"), as its events carry it. */
  filter: string | undefined;
  /** Why it ended. */
  error: Error | undefined;
  /** Made by the server (a `subscribed` frame), not by subscribe(): it ends when the connection drops, and is never paused. */
  readonly server: boolean;
  /** @internal */ readonly presence: boolean;
  /** @internal */ key?: string;
  /** @internal */ snapshotting: boolean;
  /** @internal */ sawSnapshot = false;
  /** @internal */ active = false;
  /** @internal */ ended = false;
  /** @internal */ retries = 0;
  /** @internal */ paused = false;
  /** How many times the subscription was paused because the application had `maxPending` events to take. */
  pauses = 0;
  /** @internal */ readonly first: Promise<void>;
  private resolveFirst!: () => void;
  private rejectFirst!: (e: Error) => void;
  private resolveDone!: (e: Error) => void;
  private readonly conn: Connection;
  private queue: RealtimeEvent[] = [];
  private wake?: () => void;

  /** @internal */
  constructor(conn: Connection, topic: string, options: SubscribeOptions, server = false) {
    this.conn = conn;
    this.topic = topic;
    this.options = options;
    this.server = server;
    this.presence = topic.startsWith("channels/") && topic.endsWith("/presence");
    this.snapshotting = !!options.snapshot && !this.presence;
    this.cursor = options.since;
    this.first = new Promise((res, rej) => {
      this.resolveFirst = res;
      this.rejectFirst = rej;
    });
    this.first.catch(() => undefined);
    this.done = new Promise((r) => (this.resolveDone = r));
  }

  /** @internal */
  accepted(): void {
    this.resolveFirst();
  }

  /** @internal Whether the next event would pass maxPending on a subscription that can be paused. */
  overLimit(): boolean {
    const max = this.options.maxPending ?? 10_000;
    return !this.options.onEvent && max > 0 && !this.presence && !this.server && !this.snapshotting && this.queue.length >= max;
  }

  /** @internal */
  deliver(ev: RealtimeEvent): void {
    if (this.ended) return;
    if (this.options.onEvent) {
      this.options.onEvent(ev);
      return;
    }
    this.queue.push(ev);
    this.wake?.();
  }

  /** @internal */
  end(err: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.error = err;
    this.active = false;
    if (err instanceof ClosedError) this.queue = [];
    this.rejectFirst(err);
    this.resolveDone(err);
    this.wake?.();
  }

  /** Unsubscribes; undelivered events are dropped. */
  close(): Promise<void> {
    return this.conn.unsubscribe(this);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<RealtimeEvent> {
    for (;;) {
      const ev = this.queue.shift();
      if (ev) {
        yield ev;
        continue;
      }
      if (this.ended) {
        if (this.error && !(this.error instanceof ClosedError)) throw this.error;
        return;
      }
      // Everything queued has been taken: a paused subscription picks up
      // where its queue ended.
      this.conn.resumePaused(this);
      await new Promise<void>((r) => (this.wake = r));
      this.wake = undefined;
    }
  }
}
