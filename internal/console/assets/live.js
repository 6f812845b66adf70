// Tandem console, live view: subscribe to a topic and watch its events
// with their cursors, publish to a channel, watch presence, change
// resources over REST, copy curl/SDK snippets. It owns the page's one
// WebSocket connection (realtime.js) and the token form in the header.
import { $, el, store, state, subLabel, isPresenceTopic, shortCursor, problemText, ProblemError, rest, copy, jwtSubject } from './core.js';
import { Realtime, memberName } from './realtime.js';
import { snippetFor } from './snippets.js';

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

// ---------------------------------------------------------------- snippets

let snippetLang = 'curl';

function renderSnippet() {
  $('snippet').textContent = snippetFor(snippetLang, readTopic());
  for (const b of $('snippet-tabs').querySelectorAll('[data-lang]')) b.setAttribute('aria-selected', String(b.dataset.lang === snippetLang));
}

// ---------------------------------------------------------------- wiring

// start wires the view and connects; it returns the page's connection.
function start() {
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
    document.dispatchEvent(new CustomEvent('tandem:token')); // the admin views reload
    if (!state.token) { ui.auth(null); return; }
    const sub = jwtSubject(state.token);
    if (rt.open && rt.subject && sub && sub !== rt.subject) {
      rt.redial(); // a refreshed token must keep the subject: a new connection
    } else if (rt.open) {
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
  return rt;
}

export { start };
