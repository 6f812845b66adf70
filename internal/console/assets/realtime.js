// Tandem console, the WebSocket client: speaks the protocol of
// spec/asyncapi.yaml (served at /docs/asyncapi), keeps the newest cursor of
// every subscription and, when the connection drops, reconnects with
// jittered backoff and resubscribes with `since` set to that cursor, so no
// event is lost. The page's views render it through the ui object given to
// the constructor.
import { state, subKey, subLabel, isPresenceTopic, shortCursor, json, problemText, isResync, ProblemError } from './core.js';

class Realtime {
  constructor(ui) {
    this.ui = ui;
    this.ws = null;
    this.want = false;     // the user wants a connection
    this.attempt = 0;      // reconnect attempts since the last welcome
    this.timer = 0;
    this.seq = 0;
    this.pending = new Map(); // ref → {resolve, reject, frame}
    this.subs = new Map();    // subKey → subscription
    this.connectionId = '';
    this.subject = '';
    this.redialNow = false; // the next close dials again at once
  }

  get open() { return !!this.ws && this.ws.readyState === WebSocket.OPEN; }

  url() {
    return (location.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + location.host + '/v1/ws';
  }

  connect() {
    this.want = true;
    clearTimeout(this.timer);
    if (!this.ws) this.dial();
  }

  disconnect() {
    this.want = false;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000, 'closed by the user');
    this.ui.status('closed', 'disconnected');
  }

  // redial closes the connection and dials again at once (a token of
  // another subject cannot be applied in-band); the subscriptions resume
  // from their cursors on the new connection.
  redial() {
    this.want = true;
    if (!this.ws) { this.connect(); return; }
    this.redialNow = true;
    this.ws.close(1000, 'new token');
  }

  dial() {
    const ws = new WebSocket(this.url());
    this.ws = ws;
    this.ui.status('connecting', this.attempt ? `reconnecting (attempt ${this.attempt})…` : 'connecting…');
    ws.onopen = () => this.onOpen(ws);
    ws.onmessage = (m) => this.onMessage(ws, m);
    ws.onclose = (e) => this.onClose(ws, e);
  }

  async onOpen(ws) {
    if (state.token) {
      try {
        await this.authenticate(state.token);
      } catch (err) {
        this.ui.log('error', { problem: err.problem }, `auth failed: ${err.message}`);
      }
    }
    if (ws !== this.ws) return;
    for (const sub of this.subs.values()) {
      if (sub.status !== 'error' && sub.status !== 'ended') this.sendSubscribe(sub);
    }
  }

  async authenticate(token) {
    const body = await this.request({ type: 'auth', token });
    this.subject = body.subject || '';
    this.ui.auth(body);
    return body;
  }

  send(frame) {
    if (!this.open) throw new Error('not connected');
    this.ws.send(JSON.stringify(frame));
  }

  // request sends a client frame with a fresh ref and resolves with the
  // reply's body (rejects with a ProblemError on ok:false).
  request(frame) {
    const ref = String(++this.seq);
    const f = { ...frame, ref };
    return new Promise((resolve, reject) => {
      try { this.send(f); } catch (err) { reject(err); return; }
      this.pending.set(ref, { resolve, reject, frame: f });
    });
  }

  // subscribe adds a subscription (kept across reconnects) and sends it.
  subscribe(opts) {
    const key = subKey(opts.topic, opts.labels, opts.filter);
    const old = this.subs.get(key) || [...this.subs.values()].find((s) => s.asked === key);
    if (old && old.status !== 'error' && old.status !== 'ended') {
      throw new Error(`already subscribed to ${opts.topic} ${subLabel(opts)}`.trim());
    }
    if (old) this.subs.delete(old.key);
    const sub = {
      key, asked: key, topic: opts.topic, labels: opts.labels || '', filter: opts.filter || '', meta: opts.meta,
      snapshot: !!opts.snapshot, cursor: opts.since || '', syncing: false,
      status: 'waiting', problem: null, count: 0, resyncs: 0,
    };
    this.subs.set(key, sub);
    if (this.open) this.sendSubscribe(sub);
    this.ui.subs();
    return sub;
  }

  sendSubscribe(sub) {
    const f = { type: 'subscribe', topic: sub.topic };
    if (sub.labels) f.labels = sub.labels;
    if (sub.filter) f.filter = sub.filter;
    if (sub.meta) f.meta = sub.meta;
    const resuming = !!sub.cursor;
    if (resuming) f.since = sub.cursor;
    else if (sub.snapshot) f.snapshot = true;
    sub.status = 'subscribing';
    sub.problem = null;
    this.ui.subs();
    this.request(f).then((body) => {
      if (this.subs.get(sub.key) !== sub) return;
      // Frames name the subscription by the canonical labels and filter.
      sub.labels = body.labels || '';
      sub.filter = body.filter || '';
      const key = subKey(sub.topic, sub.labels, sub.filter);
      if (key !== sub.key) {
        this.subs.delete(sub.key);
        sub.key = key;
        this.subs.set(key, sub);
      }
      // Presence sends its state as one presence frame, with no synced.
      sub.syncing = body.start === 'snapshot' && !isPresenceTopic(sub.topic);
      sub.status = sub.syncing ? 'syncing' : 'live';
      if (body.cursor && !sub.syncing) sub.cursor = body.cursor;
      if (resuming) this.ui.log('resume', body, `resumed after cursor ${shortCursor(f.since)} (start: ${body.start})`);
      this.ui.subs();
    }, (err) => {
      if (this.subs.get(sub.key) !== sub) return;
      if (!err.problem) { sub.status = 'waiting'; this.ui.subs(); return; } // connection lost: resent on reconnect
      this.failed(sub, err.problem);
    });
  }

  // failed handles a subscription the server refused or ended.
  failed(sub, problem) {
    if (isResync(problem) && sub.resyncs < 1 && !isPresenceTopic(sub.topic)) {
      // The history after our cursor is gone: start again from the state.
      sub.resyncs++;
      this.ui.log('resync', { problem }, `${sub.topic}: history after the cursor is gone; resubscribing with a snapshot`);
      sub.cursor = '';
      sub.snapshot = true;
      if (this.open) this.sendSubscribe(sub);
      return;
    }
    sub.status = 'error';
    sub.problem = problem;
    this.ui.subs();
  }

  unsubscribe(sub) {
    this.subs.delete(sub.key);
    if (isPresenceTopic(sub.topic)) state.presence.delete(sub.topic);
    this.ui.subs();
    this.ui.presence();
    if (this.open && (sub.status === 'live' || sub.status === 'syncing')) {
      const f = { type: 'unsubscribe', topic: sub.topic };
      if (sub.labels) f.labels = sub.labels;
      if (sub.filter) f.filter = sub.filter;
      this.request(f).catch((err) => this.ui.log('error', { problem: err.problem }, `unsubscribe: ${err.message}`));
    }
  }

  retry(sub) {
    sub.status = 'waiting';
    sub.problem = null;
    sub.resyncs = 0;
    if (this.open) this.sendSubscribe(sub);
    this.ui.subs();
  }

  publish(channel, data) {
    return this.request({ type: 'publish', topic: `channels/${channel}/messages`, data });
  }

  onMessage(ws, m) {
    if (ws !== this.ws) return;
    let f;
    try { f = JSON.parse(m.data); } catch { this.ui.log('error', null, 'non-JSON frame from the server'); return; }
    const sub = f.topic !== undefined ? this.subs.get(subKey(f.topic, f.labels, f.filter)) : undefined;
    switch (f.type) {
      case 'welcome':
        this.attempt = 0;
        this.connectionId = f.connectionId;
        this.ui.status('open', `connected · ${f.connectionId}`);
        this.ui.log('welcome', f, `connection ${f.connectionId} (${f.protocol}, heartbeat ${f.heartbeatSeconds}s)`);
        break;
      case 'reply': {
        const p = this.pending.get(f.ref);
        this.pending.delete(f.ref);
        this.ui.log('reply', f, replySummary(f, p && p.frame));
        if (!p) break;
        if (f.ok) p.resolve(f.body || {});
        else p.reject(new ProblemError(f.problem));
        break;
      }
      case 'event':
        if (sub) {
          sub.count++;
          if (!sub.syncing) sub.cursor = f.cursor;
        }
        this.ui.log('event', f, eventSummary(f));
        this.ui.subs();
        break;
      case 'synced':
        if (sub) {
          sub.syncing = false;
          sub.status = 'live';
          sub.cursor = f.cursor;
        }
        this.ui.log('synced', f, `snapshot complete; live from here`);
        this.ui.subs();
        break;
      case 'bookmark':
        if (sub && !sub.syncing) sub.cursor = f.cursor;
        this.ui.log('bookmark', f, 'current position');
        this.ui.subs();
        break;
      case 'presence':
        if (sub) sub.count++;
        applyPresence(f);
        this.ui.log('presence', f, presenceSummary(f));
        this.ui.presence();
        this.ui.subs();
        break;
      case 'disconnect':
        // Close code 4003 follows; reconnect: false means stay away.
        if (!f.reconnect) this.want = false;
        this.ui.log('disconnect', f, `disconnected by the server${f.reason ? ': ' + f.reason : ''}${f.reconnect ? '' : ' (not reconnecting)'}`);
        break;
      case 'error':
        for (const c of f.cursors || []) {
          const s = this.subs.get(subKey(c.topic, c.labels, c.filter));
          if (s) s.cursor = c.cursor;
        }
        this.ui.log('error', f, (f.topic ? f.topic + ': ' : '') + problemText(f.problem));
        if (f.topic && sub) this.failed(sub, f.problem);
        this.ui.subs();
        break;
      default:
        this.ui.log(f.type || 'frame', f, 'unknown frame type');
    }
  }

  onClose(ws, e) {
    if (ws !== this.ws) return;
    this.ws = null;
    this.connectionId = '';
    this.subject = '';
    for (const p of this.pending.values()) p.reject(new Error('connection closed'));
    this.pending.clear();
    for (const sub of this.subs.values()) {
      if (sub.status !== 'error' && sub.status !== 'ended') sub.status = 'waiting';
      sub.syncing = false;
    }
    for (const topic of state.presence.keys()) state.presence.set(topic, new Map());
    this.ui.subs();
    this.ui.presence();
    this.ui.log('close', { code: e.code, reason: e.reason }, `connection closed: ${e.code}${e.reason ? ' ' + e.reason : ''}`);
    if (!this.want) { this.ui.status('closed', 'disconnected'); return; }
    if (e.code === 4001 || e.code === 4010) {
      this.want = false;
      this.ui.status('closed', e.code === 4001 ? 'token expired: apply a fresh token to reconnect' : 'authentication required: apply a token to reconnect');
      return;
    }
    const delay = this.redialNow ? 0 : Math.min(10000, 500 * 2 ** this.attempt) * (0.5 + Math.random() / 2);
    this.redialNow = false;
    this.attempt++;
    this.ui.status('connecting', `closed (${e.code}); reconnecting in ${(delay / 1000).toFixed(1)}s`);
    this.timer = setTimeout(() => { if (this.want && !this.ws) this.dial(); }, delay);
  }
}

function applyPresence(f) {
  let members = state.presence.get(f.topic);
  if (!members || f.action === 'state') {
    members = new Map();
    state.presence.set(f.topic, members);
  }
  for (const m of f.members || []) {
    if (f.action === 'leave') members.delete(m.id);
    else members.set(m.id, m);
  }
}

function memberName(m) {
  for (const c of m.connections || []) {
    if (c.meta && typeof c.meta.name === 'string' && c.meta.name) return c.meta.name;
  }
  return m.id;
}

function presenceSummary(f) {
  const names = (f.members || []).map(memberName);
  if (f.action === 'state') return `${names.length} present${names.length ? ': ' + names.join(', ') : ''}`;
  return `${names.join(', ')} ${f.action === 'join' ? 'joined' : 'left'}`;
}

function eventSummary(f) {
  if (f.resource) {
    const r = f.resource;
    const labels = Object.keys(r.labels || {}).length ? ' ' + json(r.labels) : '';
    return `${r.id} · rev ${r.revision} · ${json(r.data)}${labels}`;
  }
  if (f.message) {
    const m = f.message;
    const d = m.data;
    const who = d && typeof d === 'object' && typeof d.name === 'string' ? d.name : m.publisher;
    const text = d && typeof d === 'object' && typeof d.text === 'string' ? d.text : json(d);
    return `${who ? who + ': ' : ''}${text}  (#${m.offset})`;
  }
  return '';
}

function replySummary(f, req) {
  const what = req ? `${req.type}${req.topic ? ' ' + req.topic : ''}` : `ref ${f.ref}`;
  if (!f.ok) return `${what} failed: ${problemText(f.problem)}`;
  const b = f.body || {};
  if (req && req.type === 'subscribe') return `${what} → start ${b.start}${b.cursor ? ' at ' + shortCursor(b.cursor) : ''}`;
  if (req && req.type === 'publish') return `${what} → offset ${b.offset}`;
  if (req && req.type === 'auth') return `auth → ${b.subject}${b.expiresAt ? ' until ' + b.expiresAt : ''}`;
  return `${what} → ok`;
}

export { Realtime, memberName };
