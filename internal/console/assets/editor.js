// Tandem console, resource editor of the Collections view: creates a
// resource (POST, the JSON of ResourceCreate) or replaces one (PUT with
// If-Match set to the ETag it was read at, the JSON of ResourceReplace).
// A 422 schema violation lists each of the problem's errors[] under the
// editor, by its JSON pointer into the body, and selects the line of the
// editor that holds that member; a 412 says the resource changed meanwhile
// and offers to reload it.
import { $, el, rest, problemLines, problemText } from './core.js';

const TEMPLATE = '{\n  "id": "",\n  "data": {},\n  "labels": {}\n}';

// What the editor holds: a new resource of collection, or resource id at
// etag.
const ed = { collection: '', id: '', etag: '', saved: () => {} };

const resourcePath = (c, id) => `/v1/collections/${encodeURIComponent(c)}/resources${id ? '/' + encodeURIComponent(id) : ''}`;

function message(text, ok) {
  const box = $('res-message');
  box.hidden = !text;
  box.textContent = text || '';
  box.dataset.ok = String(!!ok);
}

function clearErrors() {
  $('res-errors').hidden = true;
  $('res-errors').replaceChildren();
  $('res-editor').removeAttribute('aria-invalid');
  $('res-reload').hidden = true;
  message('');
}

function open(title, hint, text, saveLabel) {
  $('editor-panel').hidden = false;
  $('editor-h').textContent = title;
  $('editor-hint').textContent = hint;
  $('res-editor').value = text;
  $('res-save').textContent = saveLabel;
  clearErrors();
}

// create opens the editor on a new resource of collection c.
function create(c) {
  Object.assign(ed, { collection: c, id: '', etag: '' });
  open(`New resource in ${c}`, 'POST: "id" is optional (empty or left out: the server makes a sortable one); "labels" too.', TEMPLATE, 'Create');
  $('res-editor').focus();
}

// edit reads resource id of collection c and opens it at its ETag.
async function edit(c, id) {
  Object.assign(ed, { collection: c, id, etag: '' });
  open(`Edit ${id}`, 'loading…', '', 'Save');
  let r;
  try {
    r = await rest('GET', resourcePath(c, id));
  } catch (err) {
    message(`request failed: ${err.message}`);
    return;
  }
  if (ed.collection !== c || ed.id !== id) return;
  if (r.status !== 200) {
    message(problemLines(r.status, r.body));
    return;
  }
  ed.etag = r.headers.get('ETag') || `"${r.body.revision}"`;
  $('editor-hint').textContent = `PUT with If-Match: ${ed.etag} (revision ${r.body.revision}): the save fails if someone changed it since.`;
  $('editor-panel').dataset.etag = ed.etag;
  $('res-editor').value = JSON.stringify({ data: r.body.data, labels: r.body.labels || {} }, null, 2);
}

function close() {
  Object.assign(ed, { collection: '', id: '', etag: '' });
  $('editor-panel').hidden = true;
}

const editing = (c, id) => ed.collection === c && ed.id === id;

// pointerLines maps every JSON pointer in v to its line in
// JSON.stringify(v, null, 2), which is what the editor holds when sent.
function pointerLines(v) {
  const lines = new Map();
  let line = 1;
  const walk = (x, ptr) => {
    lines.set(ptr, line);
    if (!x || typeof x !== 'object') return;
    const entries = Array.isArray(x) ? x.map((c, i) => [String(i), c]) : Object.entries(x);
    if (entries.length === 0) return;
    for (const [k, c] of entries) {
      line++;
      walk(c, ptr + '/' + k.replace(/~/g, '~0').replace(/\//g, '~1'));
    }
    line++; // the closing bracket
  };
  walk(v, '');
  return lines;
}

// lineOf finds the line of pointer, or of its nearest member that exists.
function lineOf(lines, pointer) {
  for (let p = pointer; ; p = p.slice(0, p.lastIndexOf('/'))) {
    if (lines.has(p)) return lines.get(p);
    if (!p) return 1;
  }
}

function selectLine(n) {
  const ta = $('res-editor');
  const text = ta.value;
  let start = 0;
  for (let i = 1; i < n; i++) start = text.indexOf('\n', start) + 1;
  const end = text.indexOf('\n', start);
  ta.focus();
  ta.setSelectionRange(start, end < 0 ? text.length : end);
}

// showFieldErrors lists a problem's errors[] by pointer under the editor.
function showFieldErrors(problem, body) {
  const lines = pointerLines(body);
  const errs = (problem.errors || []).filter((e) => e.pointer !== undefined || e.name);
  const list = $('res-errors');
  list.replaceChildren(...errs.map((e) => {
    const pointer = e.pointer !== undefined ? e.pointer : '';
    const line = lineOf(lines, pointer);
    return el('li', { class: 'field-error', dataset: { pointer } },
      el('button', { type: 'button', class: 'link mono', title: 'select it in the editor', text: pointer || e.name, onclick: () => selectLine(line) }),
      el('span', { class: 'hint', text: ` line ${line}: ` }),
      el('span', { class: 'field-detail', text: e.detail }),
    );
  }));
  list.hidden = errs.length === 0;
  $('res-editor').setAttribute('aria-invalid', 'true');
  if (errs.length) selectLine(lineOf(lines, errs[0].pointer || ''));
}

async function save() {
  clearErrors();
  let body;
  try {
    body = JSON.parse($('res-editor').value);
  } catch (err) {
    $('res-editor').setAttribute('aria-invalid', 'true');
    message(`not sent: the editor does not hold valid JSON (${err.message})`);
    return;
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    message('not sent: the editor must hold a JSON object');
    return;
  }
  if (!ed.id && body.id === '') delete body.id;
  if (!ed.id && body.labels && Object.keys(body.labels).length === 0) delete body.labels;
  // Sent as shown: the lines of the errors are the editor's lines.
  $('res-editor').value = JSON.stringify(body, null, 2);
  const { collection, id, etag } = ed;
  if (id && !etag) {
    message('not sent: the resource was not read (no ETag to send as If-Match); reload it');
    $('res-reload').hidden = false;
    return;
  }
  let r;
  try {
    r = id
      ? await rest('PUT', resourcePath(collection, id), body, 'application/json', etag ? { 'If-Match': etag } : {})
      : await rest('POST', resourcePath(collection, ''), body);
  } catch (err) {
    message(`request failed: ${err.message}`);
    return;
  }
  if (r.status === 200 || r.status === 201) {
    const res = r.body;
    Object.assign(ed, { id: res.id, etag: r.headers.get('ETag') || `"${res.revision}"` });
    $('editor-panel').dataset.etag = ed.etag;
    $('editor-h').textContent = `Edit ${res.id}`;
    $('res-save').textContent = 'Save';
    $('editor-hint').textContent = `PUT with If-Match: ${ed.etag} (revision ${res.revision}).`;
    $('res-editor').value = JSON.stringify({ data: res.data, labels: res.labels || {} }, null, 2);
    message(`${r.status === 201 ? 'created' : 'saved'} ${res.id} at revision ${res.revision}`, true);
    await ed.saved();
    return;
  }
  if (r.status === 412) {
    message(`changed meanwhile, reload (${problemText(r.body)})`);
    $('res-reload').hidden = false;
    return;
  }
  if (r.status === 422 && r.body && Array.isArray(r.body.errors)) showFieldErrors(r.body, body);
  message(problemLines(r.status, r.body));
}

// start wires the editor; saved runs after each successful save.
function start({ saved }) {
  ed.saved = saved;
  $('res-save').addEventListener('click', save);
  $('res-close').addEventListener('click', close);
  $('res-reload').addEventListener('click', () => { if (ed.id) edit(ed.collection, ed.id); });
  $('res-editor').addEventListener('input', () => $('res-editor').removeAttribute('aria-invalid'));
}

export { start, create, edit, close, editing, pointerLines };
