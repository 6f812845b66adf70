// Tandem console, Collections view: lists the collections (GET
// /v1/collections); for the one picked, a table of its resources one page
// at a time (GET …/resources with labels, filter, orderBy and limit,
// following nextPageToken forwards and the tokens seen so far backwards),
// and its schema, indexes and description pretty-printed. Rows open in the
// editor (editor.js) or are deleted, after a confirmation, with If-Match
// set to the row's revision.
import { $, el, json, rest, problemLines, needsAdmin, when } from './core.js';
import * as editor from './editor.js';

// The collection on screen, its definition and where its table is.
const view = {
  name: '',
  collection: null,
  query: null,  // the query of the pages (a token continues only its own)
  tokens: [''], // the page token of every page seen; tokens[page] is on screen
  page: 0,
  next: '',
};

function showBox(id, text) {
  $(id).hidden = !text;
  $(id).textContent = text || '';
}

function adminHint(status) {
  return needsAdmin(status) ? ' — needs a token with the read grant (apply one above)' : '';
}

async function loadCollections() {
  showBox('cols-problem', '');
  let r;
  try {
    r = await rest('GET', '/v1/collections');
  } catch (err) {
    showBox('cols-problem', `request failed: ${err.message}`);
    return;
  }
  if (r.status !== 200) {
    showBox('cols-problem', problemLines(r.status, r.body) + adminHint(r.status));
    $('cols').replaceChildren();
    return;
  }
  const items = r.body.items;
  $('cols-empty').hidden = items.length > 0;
  $('cols').replaceChildren(...items.map((c) => el('li', {},
    el('button', {
      type: 'button', class: 'pick', dataset: { collection: c.name }, 'aria-pressed': String(c.name === view.name),
      onclick: () => pick(c.name),
    }, c.name, c.schema ? el('span', { class: 'hint', text: ' · schema' }) : null),
  )));
  if (view.name && !items.some((c) => c.name === view.name)) {
    view.name = '';
    $('col-panel').hidden = true;
    editor.close();
  }
}

// pick shows a collection: its first page and its schema.
async function pick(name) {
  view.name = name;
  for (const b of $('cols').querySelectorAll('[data-collection]')) b.setAttribute('aria-pressed', String(b.dataset.collection === name));
  $('col-h').textContent = name;
  $('col-panel').hidden = false;
  $('col-panel').dataset.collection = name;
  editor.close();
  await Promise.all([loadDefinition(), list(readQuery(), 0)]);
}

async function loadDefinition() {
  const name = view.name;
  let r;
  try {
    r = await rest('GET', `/v1/collections/${encodeURIComponent(name)}`);
  } catch (err) {
    $('col-schema-text').textContent = `request failed: ${err.message}`;
    return;
  }
  if (name !== view.name) return;
  if (r.status !== 200) {
    view.collection = null;
    $('col-meta').textContent = '';
    $('col-schema-text').textContent = problemLines(r.status, r.body);
    return;
  }
  const c = r.body;
  view.collection = c;
  const indexes = (c.indexes || []).map((i) => i.fields.join(', '));
  $('col-meta').textContent = [
    `revision ${c.revision} · created ${when(c.createdAt)} · updated ${when(c.updatedAt)}`,
    indexes.length ? `indexes: ${indexes.map((i) => `(${i})`).join(' ')}` : 'no indexes',
    c.description || '',
  ].filter(Boolean).join(' · ');
  $('col-schema-text').textContent = c.schema ? JSON.stringify(c.schema, null, 2) : 'No schema: any JSON object is accepted as data.';
}

function readQuery() {
  return {
    labels: $('res-labels').value.trim(),
    filter: $('res-filter').value.trim(),
    orderBy: $('res-order').value.trim(),
    limit: $('res-limit').value.trim(),
  };
}

function pathOf(q, pageToken) {
  const p = new URLSearchParams();
  if (q.labels) p.set('labels', q.labels);
  if (q.filter) p.set('filter', q.filter);
  if (q.orderBy) p.set('orderBy', q.orderBy);
  if (q.limit) p.set('limit', q.limit);
  if (pageToken) p.set('pageToken', pageToken);
  return `/v1/collections/${encodeURIComponent(view.name)}/resources${p.size ? '?' + p : ''}`;
}

// list shows page number page of query q (page 0 starts a new query).
async function list(q, page) {
  if (page === 0) view.tokens = [''];
  const token = view.tokens[page];
  showBox('res-problem', '');
  $('res-page').textContent = 'listing…';
  let r;
  try {
    r = await rest('GET', pathOf(q, token));
  } catch (err) {
    showBox('res-problem', `request failed: ${err.message}`);
    return;
  }
  if (r.status !== 200) {
    showBox('res-problem', problemLines(r.status, r.body) + adminHint(r.status));
    $('res-page').textContent = '';
    if (page === 0) $('res-rows').replaceChildren();
    return;
  }
  view.query = q;
  view.page = page;
  view.next = r.body.nextPageToken || '';
  if (view.next) view.tokens[page + 1] = view.next;
  $('res-rows').replaceChildren(...r.body.items.map(row));
  if (r.body.items.length === 0) {
    $('res-rows').append(el('tr', {}, el('td', { colspan: 6, class: 'empty', text: page === 0 ? 'No resources match.' : 'No more resources.' })));
  }
  $('res-prev').disabled = page === 0;
  $('res-next').disabled = !view.next;
  const n = r.body.items.length;
  $('res-page').textContent = `page ${page + 1} · ${n} resource${n === 1 ? '' : 's'} · revision ${r.body.revision}${view.next ? ' · more follow' : ''}`;
}

// reload shows the page on screen again (after a change).
function reload() {
  if (view.name && view.query) return list(view.query, view.page);
  return Promise.resolve();
}

function row(r) {
  const labels = Object.entries(r.labels || {}).map(([k, v]) => `${k}=${v}`).join(', ');
  const data = json(r.data);
  const actions = el('td', { class: 'actions' });
  const tr = el('tr', { dataset: { id: r.id, revision: String(r.revision) } },
    el('td', { class: 'mono', text: r.id }),
    el('td', { text: String(r.revision) }),
    el('td', { class: 'mono', text: labels }),
    el('td', { class: 'mono data', title: data, text: data.length > 120 ? data.slice(0, 119) + '…' : data }),
    el('td', { text: when(r.updatedAt) }),
    actions,
  );
  const plain = () => actions.replaceChildren(
    el('button', { type: 'button', class: 'small secondary', text: 'Edit', onclick: () => editor.edit(view.name, r.id) }),
    el('button', { type: 'button', class: 'small secondary danger', text: 'Delete', onclick: confirming }),
  );
  function confirming() {
    actions.replaceChildren(
      el('span', { class: 'hint', text: `Delete ${r.id}? ` }),
      el('button', { type: 'button', class: 'small danger', text: 'Confirm delete', onclick: () => remove(r, actions) }),
      el('button', { type: 'button', class: 'small secondary', text: 'Keep', onclick: plain }),
    );
  }
  plain();
  return tr;
}

// remove deletes r if it is still at the revision shown.
async function remove(r, cell) {
  let resp;
  try {
    resp = await rest('DELETE', `/v1/collections/${encodeURIComponent(view.name)}/resources/${encodeURIComponent(r.id)}`,
      undefined, undefined, { 'If-Match': `"${r.revision}"` });
  } catch (err) {
    cell.replaceChildren(el('span', { class: 'bad', text: `request failed: ${err.message}` }));
    return;
  }
  if (resp.status === 204 || resp.status === 404) {
    if (editor.editing(view.name, r.id)) editor.close();
    await reload();
    return;
  }
  const text = resp.status === 412 ? 'changed meanwhile, reload' : problemLines(resp.status, resp.body);
  cell.replaceChildren(el('span', { class: 'bad', role: 'alert', text }),
    el('button', { type: 'button', class: 'small secondary', text: 'Reload', onclick: reload }));
}

function pane(name) {
  for (const b of $('col-tabs').querySelectorAll('[data-pane]')) b.setAttribute('aria-selected', String(b.dataset.pane === name));
  $('col-resources').hidden = name !== 'resources';
  $('col-schema').hidden = name !== 'schema';
  if (name === 'schema' && view.name) loadDefinition();
}

// start wires the view (once); show loads it each time it is shown.
function start() {
  $('cols-refresh').addEventListener('click', () => { loadCollections(); if (view.name) pick(view.name); });
  $('res-query').addEventListener('submit', (e) => { e.preventDefault(); list(readQuery(), 0); });
  $('res-next').addEventListener('click', () => { if (view.next) list(view.query, view.page + 1); });
  $('res-prev').addEventListener('click', () => { if (view.page > 0) list(view.query, view.page - 1); });
  $('res-new').addEventListener('click', () => editor.create(view.name));
  $('col-tabs').addEventListener('click', (e) => { const b = e.target.closest('[data-pane]'); if (b) pane(b.dataset.pane); });
  editor.start({ saved: reload });
}

function show() {
  loadCollections();
  if (view.name) reload();
}

export { start, show };
