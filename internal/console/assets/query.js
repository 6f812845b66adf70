// Tandem console, live view's list panel: lists a collection's resources
// with the filter language and orderBy (GET /v1/collections/{c}/resources
// ?filter=…&orderBy=…&limit=…), one page at a time following nextPageToken,
// and shows the server's problem (which names the parameter and, for a bad
// expression, its position) when the query is refused.
import { $, el, json, rest, problemLines } from './core.js';

// The query of the last List (a page token continues only its own query).
let current = null;

function readQuery() {
  return {
    collection: $('query-collection').value.trim(),
    filter: $('query-filter').value.trim(),
    orderBy: $('query-order').value.trim(),
    limit: $('query-limit').value.trim(),
  };
}

function pathOf(q, pageToken) {
  const p = new URLSearchParams();
  if (q.filter) p.set('filter', q.filter);
  if (q.orderBy) p.set('orderBy', q.orderBy);
  if (q.limit) p.set('limit', q.limit);
  if (pageToken) p.set('pageToken', pageToken);
  return `/v1/collections/${encodeURIComponent(q.collection)}/resources${p.size ? '?' + p : ''}`;
}

function showProblem(text) {
  const box = $('query-problem');
  box.hidden = !text;
  box.textContent = text || '';
}

function row(r) {
  const labels = Object.keys(r.labels || {}).length ? ' ' + json(r.labels) : '';
  return el('li', { class: 'qr', dataset: { id: r.id } },
    el('span', { class: 'qr-id', text: r.id }), ` · rev ${r.revision} · `, el('code', { text: json(r.data) }), labels);
}

async function list(pageToken) {
  const q = pageToken && current ? current.query : readQuery();
  const path = pathOf(q, pageToken);
  $('query-path').textContent = 'GET ' + path;
  $('query-status').textContent = 'listing…';
  $('query-next').hidden = true;
  showProblem('');
  let r;
  try {
    r = await rest('GET', path);
  } catch (err) {
    $('query-status').textContent = '';
    showProblem(`request failed: ${err.message}`);
    return;
  }
  if (r.status !== 200) {
    $('query-status').textContent = '';
    showProblem(problemLines(r.status, r.body));
    if (!pageToken) $('query-items').replaceChildren();
    return;
  }
  const page = r.body;
  if (!pageToken) {
    current = { query: q, count: 0, pages: 0 };
    $('query-items').replaceChildren();
  }
  current.count += page.items.length;
  current.pages++;
  current.next = page.nextPageToken || '';
  $('query-items').append(...page.items.map(row));
  $('query-next').hidden = !current.next;
  $('query-status').textContent = `${current.count} resource${current.count === 1 ? '' : 's'} in ${current.pages} page${current.pages === 1 ? '' : 's'} · revision ${page.revision}${current.next ? ' · more follow' : ''}`;
}

// watch subscribes the topic form to the collection with this filter.
function watch() {
  const q = readQuery();
  $('kind').value = 'resources';
  $('collection').value = q.collection;
  $('filter').value = q.filter;
  $('snapshot').checked = true;
  $('topic-form').dispatchEvent(new Event('change'));
  $('topic-form').requestSubmit();
}

$('query-form').addEventListener('submit', (e) => { e.preventDefault(); list(''); });
$('query-next').addEventListener('click', () => { if (current && current.next) list(current.next); });
$('query-watch').addEventListener('click', watch);
$('query-form').addEventListener('input', () => { $('query-path').textContent = 'GET ' + pathOf(readQuery()); });
$('query-path').textContent = 'GET ' + pathOf(readQuery());
