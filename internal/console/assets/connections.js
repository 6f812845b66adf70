// Tandem console, Connections view: the open WebSocket connections of
// every node (GET /v1/connections, or GET /v1/subjects/{subject}/
// connections for one subject), one page at a time, each with a
// Disconnect button (DELETE /v1/connections/{id}). Admin only: a 401 or
// 403 says the page needs an admin token.
import { $, el, rest, problemLines, needsAdmin, when } from './core.js';

const view = { query: null, next: '', count: 0, realtime: null };

function problem(text) {
  $('conns-problem').hidden = !text;
  $('conns-problem').textContent = text || '';
}

function refusal(r) {
  return needsAdmin(r.status) ? `needs an admin token (${problemLines(r.status, r.body)})` : problemLines(r.status, r.body);
}

function pathOf(subject, pageToken) {
  const p = new URLSearchParams();
  if (pageToken) p.set('pageToken', pageToken);
  const base = subject ? `/v1/subjects/${encodeURIComponent(subject)}/connections` : '/v1/connections';
  return base + (p.size ? '?' + p : '');
}

function subscriptionText(s) {
  return s.topic + (s.labels ? ` [${s.labels}]` : '') + (s.server ? ' (server-side)' : '');
}

function row(c) {
  const own = view.realtime && c.id === view.realtime.connectionId;
  const cell = el('td', { class: 'actions' });
  const tr = el('tr', { dataset: { id: c.id } },
    el('td', { class: 'mono' }, c.id, own ? el('span', { class: 'hint', text: ' (this page)' }) : null),
    el('td', { text: c.subject || '—' }),
    el('td', { class: 'mono', text: c.node }),
    el('td', { text: c.transport }),
    el('td', { class: 'mono', text: c.remoteAddress }),
    el('td', { text: when(c.connectedAt) }),
    el('td', {}, c.subscriptions.length
      ? el('ul', { class: 'plain' }, c.subscriptions.map((s) => el('li', { class: 'mono', text: subscriptionText(s) })))
      : el('span', { class: 'hint', text: 'none' })),
    cell,
  );
  cell.append(el('button', { type: 'button', class: 'small danger', text: 'Disconnect', onclick: () => disconnect(c, cell) }));
  return tr;
}

async function disconnect(c, cell) {
  const path = `/v1/connections/${encodeURIComponent(c.id)}?` + new URLSearchParams({ reason: 'disconnected from the console' });
  let r;
  try {
    r = await rest('DELETE', path);
  } catch (err) {
    cell.replaceChildren(el('span', { class: 'bad', text: `request failed: ${err.message}` }));
    return;
  }
  if (r.status === 200 || r.status === 404) {
    await list(false);
    $('conns-status').textContent = `${r.status === 200 ? `disconnected ${c.id}` : `${c.id} was already gone`} · ${$('conns-status').textContent}`;
    return;
  }
  cell.replaceChildren(el('span', { class: 'bad', role: 'alert', text: refusal(r) }));
}

// list loads the first page (more: the next page, appended).
async function list(more) {
  const subject = more && view.query !== null ? view.query : $('conns-subject').value.trim();
  const token = more ? view.next : '';
  problem('');
  $('conns-next').hidden = true;
  let r;
  try {
    r = await rest('GET', pathOf(subject, token));
  } catch (err) {
    problem(`request failed: ${err.message}`);
    return;
  }
  if (r.status !== 200) {
    problem(refusal(r));
    $('conns-rows').replaceChildren();
    $('conns-status').textContent = '';
    return;
  }
  if (!more) {
    view.count = 0;
    $('conns-rows').replaceChildren();
  }
  view.query = subject;
  view.next = r.body.nextPageToken || '';
  view.count += r.body.items.length;
  $('conns-rows').append(...r.body.items.map(row));
  $('conns-next').hidden = !view.next;
  const unreachable = r.body.unreachableNodes || [];
  $('conns-status').textContent = `${view.count} connection${view.count === 1 ? '' : 's'}${subject ? ` of ${subject}` : ''}` +
    (view.next ? ' · more follow' : '') + (unreachable.length ? ` · not answering: ${unreachable.join(', ')}` : '');
}

// start wires the view; realtime is the page's own connection (marked).
function start({ realtime }) {
  view.realtime = realtime;
  $('conns-form').addEventListener('submit', (e) => { e.preventDefault(); list(false); });
  $('conns-next').addEventListener('click', () => list(true));
}

function show() {
  list(false);
}

export { start, show };
