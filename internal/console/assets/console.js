// Tandem console: a dependency-free page that speaks the WebSocket protocol
// of spec/asyncapi.yaml (served at /docs/asyncapi) and the REST API of
// spec/openapi.yaml. It keeps the newest cursor of every subscription and,
// when the connection drops, reconnects with jittered backoff and
// resubscribes with `since` set to that cursor, so no event is lost.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);

  // el builds DOM without innerHTML: children are nodes or text.
  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else if (k === 'dataset') Object.assign(e.dataset, v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  const store = {
    get(k) { try { return sessionStorage.getItem(k) || ''; } catch { return ''; } },
    set(k, v) { try { if (v) sessionStorage.setItem(k, v); else sessionStorage.removeItem(k); } catch { /* private mode */ } },
  };

  const state = {
    token: store.get('tandem.token'),
    presence: new Map(), // presence topic → Map(member id → member)
  };

  // A subscription is its topic, label selector and filter; frames carry the
  // canonical forms of the last two (as the subscribe reply gives them).
  const subKey = (topic, labels, filter) => topic + '\u0000' + (labels || '') + '\u0000' + (filter || '');
  const subLabel = (s) => [s.labels ? `[${s.labels}]` : '', s.filter ? `where ${s.filter}` : ''].filter(Boolean).join(' ');
  const isPresenceTopic = (t) => /^channels\/[^/]+\/presence$/.test(t);
  const isChannelTopic = (t) => t.startsWith('channels/');
  const shortCursor = (c) => (c && c.length > 28 ? c.slice(0, 12) + '…' + c.slice(-12) : c || '');
  const json = (v) => JSON.stringify(v);
  const problemText = (p) => (p ? `${p.status || ''} ${p.title || ''}${p.detail ? ': ' + p.detail : ''}`.trim() : '');
  const isResync = (p) => !!p && typeof p.type === 'string' && p.type.endsWith('/resync-required');

  class ProblemError extends Error {
    constructor(problem) { super(problemText(problem)); this.problem = problem; }
  }

  // ---------------------------------------------------------------- realtime

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
      const delay = Math.min(10000, 500 * 2 ** this.attempt) * (0.5 + Math.random() / 2);
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

  // ---------------------------------------------------------------- REST

  async function rest(method, path, body, contentType) {
    const headers = { Accept: 'application/json, application/problem+json' };
    if (state.token) headers.Authorization = 'Bearer ' + state.token;
    const init = { method, headers };
    if (body !== undefined) {
      headers['Content-Type'] = contentType || 'application/json';
      init.body = JSON.stringify(body);
    }
    const resp = await fetch(path, init);
    const text = await resp.text();
    let parsed = null;
    try { parsed = text ? JSON.parse(text) : null; } catch { parsed = text; }
    return { status: resp.status, statusText: resp.statusText, headers: resp.headers, body: parsed };
  }

  // ---------------------------------------------------------------- topic form

  function readTopic() {
    const kind = $('kind').value;
    const collection = $('collection').value.trim();
    const channel = $('channel').value.trim();
    let topic = '';
    switch (kind) {
      case 'resources': topic = `collections/${collection}/resources`; break;
      case 'resource': topic = `collections/${collection}/resources/${$('resource-id').value.trim()}`; break;
      case 'messages': topic = `channels/${channel}/messages`; break;
      case 'presence': topic = `channels/${channel}/presence`; break;
    }
    const resourceKind = kind === 'resources' || kind === 'resource';
    return {
      kind, topic, collection, channel, id: $('resource-id').value.trim(),
      labels: resourceKind ? $('labels').value.trim() : '',
      filter: resourceKind ? $('filter').value.trim() : '',
      since: $('since').value.trim(),
      snapshot: $('snapshot').checked && kind !== 'presence',
      name: kind === 'messages' ? $('member-name').value.trim() : '',
      withPresence: kind === 'messages' && $('with-presence').checked,
    };
  }

  // writeTopic fills the form from a topic string (e.g. from ?topic=).
  function writeTopic(topic) {
    let m;
    if ((m = /^collections\/([^/]+)\/resources$/.exec(topic))) { $('kind').value = 'resources'; $('collection').value = m[1]; }
    else if ((m = /^collections\/([^/]+)\/resources\/([^/]+)$/.exec(topic))) { $('kind').value = 'resource'; $('collection').value = m[1]; $('resource-id').value = m[2]; }
    else if ((m = /^channels\/([^/]+)\/messages$/.exec(topic))) { $('kind').value = 'messages'; $('channel').value = m[1]; }
    else if ((m = /^channels\/([^/]+)\/presence$/.exec(topic))) { $('kind').value = 'presence'; $('channel').value = m[1]; }
    else return false;
    return true;
  }

  function syncForm() {
    const t = readTopic();
    for (const e of document.querySelectorAll('[data-kinds]')) e.hidden = !e.dataset.kinds.split(' ').includes(t.kind);
    $('snapshot').disabled = t.kind === 'presence';
    $('topic').textContent = t.topic;
    if (t.kind === 'messages' || t.kind === 'presence') $('pub-channel').value = t.channel;
    if (t.kind === 'resources' || t.kind === 'resource') $('rest-collection').value = t.collection;
    if (t.kind === 'resource') $('rest-id').value = t.id;
    syncRestForm();
    renderSnippet();
  }

  // ---------------------------------------------------------------- rendering

  const MAX_LOG = 500;

  const ui = {
    status(s, text) {
      $('conn').dataset.state = s;
      $('conn-text').textContent = text;
      $('conn-toggle').textContent = s === 'closed' ? 'Connect' : 'Disconnect';
    },

    auth(body) {
      $('auth-state').textContent = body ? `Authenticated as ${body.subject}${body.expiresAt ? ', token expires ' + body.expiresAt : ''}.` : '';
    },

    log(type, frame, summary) {
      if (type === 'bookmark' && !$('show-bookmarks').checked) return;
      if (type === 'reply' && !$('show-replies').checked) return;
      const list = $('events');
      const badge = type === 'event' ? frame.event : type;
      const cursor = frame && frame.cursor;
      const li = el('li', { class: 'ev', dataset: { type, topic: (frame && frame.topic) || '' } },
        el('div', { class: 'ev-head' },
          el('time', { text: new Date().toLocaleTimeString() }),
          el('span', { class: `badge b-${type}`, text: badge }),
          frame && frame.topic ? el('code', { class: 'ev-topic', text: `${frame.topic} ${subLabel(frame)}`.trim() }) : null,
        ),
        summary ? el('div', { class: 'ev-summary', text: summary }) : null,
        cursor ? el('div', { class: 'ev-cursor' }, 'cursor ', el('code', { class: 'cursor', title: 'click to copy', text: cursor, onclick: () => copy(cursor) })) : null,
        frame && Object.keys(frame).length ? el('details', {}, el('summary', { text: 'frame' }), el('pre', { text: JSON.stringify(frame, null, 2) })) : null,
      );
      list.prepend(li);
      while (list.children.length > MAX_LOG) list.lastElementChild.remove();
    },

    subs() {
      const list = $('subs');
      const items = [...rt.subs.values()].map((s) => el('li', { class: 'sub', dataset: { status: s.status, topic: s.topic } },
        el('div', { class: 'sub-head' },
          el('span', { class: `pill p-${s.status}`, text: s.status }),
          el('code', { text: s.topic }),
          s.labels || s.filter ? el('span', { class: 'hint sub-select', text: subLabel(s) }) : null,
        ),
        el('div', { class: 'sub-meta' },
          isPresenceTopic(s.topic) ? 'presence has no cursor' :
            s.cursor ? el('span', {}, 'cursor ', el('code', { class: 'cursor', title: s.cursor + ' (click to copy)', text: shortCursor(s.cursor), onclick: () => copy(s.cursor) })) : 'no cursor yet',
          ` · ${s.count} event${s.count === 1 ? '' : 's'}`,
        ),
        s.problem ? el('div', { class: 'sub-problem', text: problemText(s.problem) }) : null,
        el('div', { class: 'row' },
          s.status === 'error' ? el('button', { type: 'button', class: 'small', text: 'Retry', onclick: () => rt.retry(s) }) : null,
          el('button', { type: 'button', class: 'small secondary', text: s.status === 'error' ? 'Remove' : 'Unsubscribe', onclick: () => rt.unsubscribe(s) }),
        ),
      ));
      list.replaceChildren(...items);
      $('subs-empty').hidden = items.length > 0;
    },

    presence() {
      const box = $('presence');
      if (state.presence.size === 0) {
        box.replaceChildren(el('p', { class: 'empty', text: 'Subscribe to channel messages (with presence) or to a presence topic.' }));
        return;
      }
      const blocks = [...state.presence.entries()].map(([topic, members]) => el('div', { class: 'presence-topic', dataset: { topic } },
        el('div', { class: 'presence-head' }, el('code', { text: topic.replace(/\/presence$/, '') }), ` · ${members.size} present`),
        el('ul', { class: 'members' }, [...members.values()].map((m) => el('li', { class: 'member', dataset: { member: m.id } },
          el('span', { class: 'dot', 'aria-hidden': 'true' }),
          el('span', { class: 'member-name', text: memberName(m) }),
          el('span', { class: 'hint', text: `${m.connections.length} connection${m.connections.length === 1 ? '' : 's'}${m.connections.some((c) => c.connectionId === rt.connectionId) ? ' · you' : ''}` }),
        ))),
      ));
      box.replaceChildren(...blocks);
    },
  };

  const rt = new Realtime(ui);

  // ---------------------------------------------------------------- actions

  function subscribeFromForm() {
    const t = readTopic();
    const opts = { topic: t.topic, labels: t.labels, filter: t.filter, since: t.since, snapshot: t.snapshot };
    if (t.kind === 'messages') opts.meta = t.name ? { name: t.name } : {};
    try {
      rt.subscribe(opts);
    } catch (err) {
      ui.log('error', null, err.message);
      return;
    }
    if (t.withPresence) {
      const ptopic = `channels/${t.channel}/presence`;
      if (!state.presence.has(ptopic)) state.presence.set(ptopic, new Map());
      try { rt.subscribe({ topic: ptopic }); } catch { /* already watching */ }
    }
    if (t.kind === 'presence' && !state.presence.has(t.topic)) state.presence.set(t.topic, new Map());
    ui.presence();
    const q = new URLSearchParams({ topic: t.topic });
    if (t.labels) q.set('labels', t.labels);
    if (t.filter) q.set('filter', t.filter);
    if (t.snapshot) q.set('snapshot', '1');
    if (t.name) q.set('name', t.name);
    history.replaceState(null, '', '?' + q.toString());
    if (!rt.want) rt.connect();
  }

  function parseMessage(text) {
    const s = text.trim();
    if (/^[[{"]|^-?\d|^(true|false|null)$/.test(s)) {
      try { return JSON.parse(s); } catch { /* plain text */ }
    }
    // The shape of sdk/go/examples/chat's messages, so both show each other's.
    const name = $('member-name').value.trim();
    return name ? { name, text } : { text };
  }

  async function publishFromForm() {
    const channel = $('pub-channel').value.trim();
    const data = parseMessage($('pub-data').value);
    const out = $('pub-result');
    out.textContent = 'publishing…';
    try {
      let msg;
      if (rt.open) {
        msg = await rt.publish(channel, data);
      } else {
        const r = await rest('POST', `/v1/channels/${encodeURIComponent(channel)}/messages`, { data });
        if (r.status !== 201) throw new ProblemError(r.body);
        msg = r.body;
      }
      out.textContent = `published #${msg.offset}`;
      out.title = msg.cursor;
      $('pub-data').value = '';
    } catch (err) {
      out.textContent = err.message;
    }
  }

  function restTarget() {
    const method = $('rest-method').value;
    const c = encodeURIComponent($('rest-collection').value.trim());
    const id = $('rest-id').value.trim();
    const path = method === 'POST' ? `/v1/collections/${c}/resources` : `/v1/collections/${c}/resources/${encodeURIComponent(id)}`;
    return { method, path, id };
  }

  function syncRestForm() {
    const { method, path } = restTarget();
    $('rest-path').textContent = path;
    for (const e of document.querySelectorAll('[data-methods]')) e.hidden = !e.dataset.methods.split(' ').includes(method);
  }

  function showRest(r) {
    const box = $('rest-result');
    box.hidden = false;
    const etag = r.headers && r.headers.get('ETag');
    box.dataset.ok = String(r.status < 300);
    box.textContent = `${r.status} ${r.statusText}${etag ? '  ETag ' + etag : ''}\n` + (r.body !== null ? JSON.stringify(r.body, null, 2) : '');
  }

  async function restFromForm() {
    const { method, path, id } = restTarget();
    let body;
    try {
      if (method !== 'DELETE') {
        const data = JSON.parse($('rest-data').value || '{}');
        const labelsText = $('rest-labels').value.trim();
        body = { data };
        if (labelsText) body.labels = JSON.parse(labelsText);
        if (method === 'POST' && id) body.id = id;
      }
    } catch (err) {
      showRest({ status: 0, statusText: 'not sent: invalid JSON', body: err.message });
      return;
    }
    try {
      showRest(await rest(method, path, body, method === 'PATCH' ? 'application/merge-patch+json' : 'application/json'));
    } catch (err) {
      showRest({ status: 0, statusText: 'request failed', body: err.message });
    }
  }

  async function createCollection() {
    const name = $('rest-collection').value.trim();
    try {
      showRest(await rest('POST', '/v1/collections', { name }));
    } catch (err) {
      showRest({ status: 0, statusText: 'request failed', body: err.message });
    }
  }

  async function copy(text) {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      const ta = el('textarea', {}, text);
      document.body.append(ta);
      ta.select();
      document.execCommand('copy');
      ta.remove();
    }
  }

  // ---------------------------------------------------------------- snippets

  let snippetLang = 'curl';

  const sq = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;

  function snippetFor(lang, t) {
    const base = location.origin;
    const auth = state.token ? ` \\\n  -H "Authorization: Bearer $TANDEM_TOKEN"` : '';
    const q = new URLSearchParams({ topic: t.topic });
    if (t.labels) q.set('labels', t.labels);
    if (t.filter) q.set('filter', t.filter);
    const sub = { type: 'subscribe', ref: '1', topic: t.topic };
    if (t.labels) sub.labels = t.labels;
    if (t.filter) sub.filter = t.filter;
    if (t.since) sub.since = t.since;
    else if (t.snapshot) sub.snapshot = true;
    if (t.kind === 'messages' && t.name) sub.meta = { name: t.name };
    const channel = t.channel;
    switch (lang) {
      case 'curl': {
        const lines = [];
        const sse = new URLSearchParams(q);
        if (t.since) sse.set('since', t.since);
        else if (t.snapshot) sse.set('snapshot', 'true');
        if (t.kind === 'resources') {
          const lq = new URLSearchParams();
          if (t.labels) lq.set('labels', t.labels);
          if (t.filter) lq.set('filter', t.filter);
          lines.push('# the current state', `curl -s ${sq(`${base}/v1/collections/${t.collection}/resources${lq.size ? '?' + lq : ''}`)}${auth}`);
        } else if (t.kind === 'resource') {
          lines.push('# the current state (ETag = revision)', `curl -si ${sq(`${base}/v1/collections/${t.collection}/resources/${t.id}`)}${auth}`);
        } else if (t.kind === 'messages') {
          lines.push('# publish', `curl -s -X POST ${sq(`${base}/v1/channels/${channel}/messages`)} \\\n  -H 'Content-Type: application/json' -d '{"data":{"text":"hello"}}'${auth}`,
            '', '# history', `curl -s ${sq(`${base}/v1/channels/${channel}/messages`)}${auth}`);
        } else {
          lines.push('# who is there', `curl -s ${sq(`${base}/v1/channels/${channel}/presence`)}${auth}`);
        }
        lines.push('', '# follow live over Server-Sent Events (Last-Event-ID / since resume)', `curl -N ${sq(`${base}/v1/events?${sse}`)}${auth}`);
        if (t.kind !== 'presence') {
          const lp = new URLSearchParams(q);
          lp.set('since', t.since || 'CURSOR');
          lp.set('wait', '30s');
          lines.push('', '# long-poll: pass the reply\'s cursor as the next since', `curl -s ${sq(`${base}/v1/changes?${lp}`)}${auth}`);
        }
        if (t.kind === 'resources' || t.kind === 'resource') {
          lines.push('', '# make a change', `curl -s -X PUT ${sq(`${base}/v1/collections/${t.collection}/resources/${t.kind === 'resource' ? t.id : 'o-1'}`)} \\\n  -H 'Content-Type: application/json' -d '{"data":{"item":"tea","qty":2}}'${auth}`);
        }
        return lines.join('\n');
      }
      case 'ws': {
        const lines = [`# ${base.replace(/^http/, 'ws')}/v1/ws — one JSON frame per message, e.g. with websocat:`,
          `websocat ${sq(base.replace(/^http/, 'ws') + '/v1/ws')}`];
        if (state.token) lines.push(json({ type: 'auth', ref: '0', token: '<token>' }));
        lines.push(json(sub));
        if (t.kind === 'messages') lines.push(json({ type: 'publish', ref: '2', topic: t.topic, data: { text: 'hello' } }));
        lines.push(json({ type: 'unsubscribe', ref: '3', topic: t.topic, ...(t.labels ? { labels: t.labels } : {}), ...(t.filter ? { filter: t.filter } : {}) }));
        return lines.join('\n');
      }
      case 'go':
        return goSnippet(t, base);
      case 'ts':
        return tsSnippet(t, base);
    }
    return '';
  }

  // goString quotes s for Go: a raw string when it has quotes but no
  // backquote (filters often hold "…"), else an interpreted one.
  const goString = (s) => (s.includes('"') && !/[`\r\n]/.test(s) ? '`' + s + '`' : json(s));

  // goSnippet is a complete program using the Go SDK (sdk/go); the browser
  // test compiles it for every kind of topic.
  function goSnippet(t, base) {
    const opts = [];
    if (t.labels) opts.push(`Labels: ${json(t.labels)}`);
    if (t.filter) opts.push(`Filter: ${goString(t.filter)}`);
    if (t.since) opts.push(`Since: ${json(t.since)}`);
    else if (t.snapshot) opts.push('Snapshot: true');
    if (t.kind === 'messages' && t.name) opts.push(`Meta: map[string]string{"name": ${json(t.name)}}`);
    const L = [
      '// go get github.com/tandemhq/tandem@latest',
      'package main',
      '',
      'import (',
      '\t"context"',
      '\t"fmt"',
      '\t"log"',
    ];
    if (state.token) L.push('\t"os"');
    L.push(
      '',
      '\ttandem "github.com/tandemhq/tandem/sdk/go"',
      ')',
      '',
      'func main() {',
      '\tctx := context.Background()',
      `\tc, err := tandem.New(${json(base)}${state.token ? ', tandem.WithToken(os.Getenv("TANDEM_TOKEN"))' : ''})`,
      '\tif err != nil {',
      '\t\tlog.Fatal(err)',
      '\t}',
      '\tconn, err := c.Connect(ctx)',
      '\tif err != nil {',
      '\t\tlog.Fatal(err)',
      '\t}',
      '\tdefer conn.Close()',
      '',
      '\t// Reconnects with backoff and resumes from the last cursor by itself.',
      `\tsub, err := conn.Subscribe(ctx, ${json(t.topic)}, ${opts.length ? `&tandem.SubscribeOptions{${opts.join(', ')}}` : 'nil'})`,
      '\tif err != nil {',
      '\t\tlog.Fatal(err)',
      '\t}',
    );
    if (t.kind === 'messages') {
      L.push(
        `\tif _, err := conn.Publish(ctx, ${json(t.channel)}, map[string]string{"text": "hello"}); err != nil {`,
        '\t\tlog.Fatal(err)',
        '\t}',
      );
    }
    L.push('\tfor ev := range sub.Events() {', '\t\tswitch ev.Type {');
    if (t.kind === 'resources' || t.kind === 'resource') {
      L.push('\t\tcase tandem.TypeEvent:', '\t\t\tfmt.Println(ev.Event, ev.Resource.Id, string(ev.Resource.Data), ev.Cursor)');
    } else if (t.kind === 'messages') {
      L.push('\t\tcase tandem.TypeEvent:', '\t\t\tfmt.Println(ev.Message.Offset, string(ev.Message.Data), ev.Cursor)');
    } else {
      L.push('\t\tcase tandem.TypePresence:', '\t\t\tfor _, m := range ev.Members {', '\t\t\t\tfmt.Println(ev.Action, m.Id)', '\t\t\t}');
    }
    if (t.kind !== 'presence') {
      L.push('\t\tcase tandem.TypeSynced:', '\t\t\tfmt.Println("synced at", ev.Cursor)');
    }
    L.push(
      '\t\t}',
      '\t}',
      '\t// The subscription ended: a *tandem.ResyncRequiredError when the',
      '\t// history after its cursor is gone (AutoResync reloads instead).',
      '\tlog.Fatal(sub.Err())',
      '}',
    );
    return L.join('\n');
  }

  // tsSnippet is a Node 20 ES module using the TypeScript SDK (sdk/ts,
  // @tandem/sdk); the browser test type-checks it for every kind of topic.
  function tsSnippet(t, base) {
    const opts = [];
    if (t.labels) opts.push(`labels: ${json(t.labels)}`);
    if (t.filter) opts.push(`filter: ${json(t.filter)}`);
    if (t.since) opts.push(`since: ${json(t.since)}`);
    else if (t.snapshot) opts.push('snapshot: true');
    if (t.kind === 'messages' && t.name) opts.push(`meta: { name: ${json(t.name)} }`);
    const L = [
      '// npm install @tandem/sdk ws',
      'import { Tandem } from "@tandem/sdk";',
      'import WebSocket from "ws"; // Node 20; browsers and Node 22+ have a global WebSocket',
      '',
      `const tandem = new Tandem({ baseUrl: ${json(base)}, WebSocket${state.token ? ', token: process.env.TANDEM_TOKEN' : ''} });`,
      'const conn = await tandem.connect();',
      '// Reconnects with backoff and resumes from the last cursor by itself.',
      `const sub = await conn.subscribe(${json(t.topic)}${opts.length ? `, { ${opts.join(', ')} }` : ''});`,
    ];
    if (t.kind === 'messages') L.push(`await conn.publish(${json(t.channel)}, { text: "hello" });`);
    L.push('try {', '  for await (const ev of sub) {', '    switch (ev.type) {');
    if (t.kind === 'resources' || t.kind === 'resource') {
      L.push('      case "event":', '        console.log(ev.event, ev.resource?.id, ev.resource?.data, ev.cursor);', '        break;');
    } else if (t.kind === 'messages') {
      L.push('      case "event":', '        console.log(ev.message?.offset, ev.message?.data, ev.cursor);', '        break;');
    } else {
      L.push('      case "presence":', '        for (const m of ev.members) console.log(ev.action, m.id);', '        break;');
    }
    if (t.kind !== 'presence') L.push('      case "synced":', '        console.log("synced at", ev.cursor);', '        break;');
    L.push(
      '    }',
      '  }',
      '} catch (err) {',
      '  // The subscription ended: a ResyncRequiredError when the history after',
      '  // its cursor is gone (autoResync: true reloads instead).',
      '  console.error(err);',
      '}',
      'await conn.close();',
    );
    return L.join('\n');
  }

  function renderSnippet() {
    $('snippet').textContent = snippetFor(snippetLang, readTopic());
    for (const b of $('snippet-tabs').querySelectorAll('[data-lang]')) b.setAttribute('aria-selected', String(b.dataset.lang === snippetLang));
  }

  // ---------------------------------------------------------------- wiring

  function init() {
    const params = new URLSearchParams(location.search);
    const preset = params.get('topic');
    if (preset && writeTopic(preset)) {
      if (params.has('labels')) $('labels').value = params.get('labels');
      if (params.has('filter')) $('filter').value = params.get('filter');
      if (params.has('since')) $('since').value = params.get('since');
      $('snapshot').checked = params.get('snapshot') === '1' || params.get('snapshot') === 'true';
    }
    if (params.has('name')) $('member-name').value = params.get('name');
    $('token').value = state.token;

    $('topic-form').addEventListener('input', syncForm);
    $('topic-form').addEventListener('change', syncForm);
    $('topic-form').addEventListener('submit', (e) => { e.preventDefault(); subscribeFromForm(); });
    $('publish-form').addEventListener('submit', (e) => { e.preventDefault(); publishFromForm(); });
    $('pub-data').addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); $('publish-form').requestSubmit(); }
    });
    $('rest-form').addEventListener('input', syncRestForm);
    $('rest-form').addEventListener('change', syncRestForm);
    $('rest-form').addEventListener('submit', (e) => { e.preventDefault(); restFromForm(); });
    $('create-collection').addEventListener('click', createCollection);
    $('token-form').addEventListener('submit', async (e) => {
      e.preventDefault();
      state.token = $('token').value.trim();
      store.set('tandem.token', state.token);
      renderSnippet();
      if (!state.token) { ui.auth(null); return; }
      if (rt.open) {
        try { await rt.authenticate(state.token); } catch (err) { $('auth-state').textContent = `Token refused: ${err.message}`; }
      } else {
        rt.connect();
      }
    });
    $('conn-toggle').addEventListener('click', () => (rt.want ? rt.disconnect() : rt.connect()));
    $('clear').addEventListener('click', () => $('events').replaceChildren());
    $('snippet-tabs').addEventListener('click', (e) => {
      const b = e.target.closest('[data-lang]');
      if (!b) return;
      snippetLang = b.dataset.lang;
      renderSnippet();
    });
    $('copy').addEventListener('click', async () => {
      await copy($('snippet').textContent);
      $('copy').textContent = 'Copied';
      setTimeout(() => { $('copy').textContent = 'Copy'; }, 1200);
    });

    syncForm();
    ui.subs();
    rt.connect();
    if (preset && writeTopic(preset)) subscribeFromForm();
  }

  // Exposed for debugging from the browser's console (and for tests).
  // query.js (the list panel) uses el, rest and problemText too.
  window.tandemConsole = { realtime: rt, state, el, rest, problemText };
  init();
})();
