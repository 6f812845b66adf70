// Tandem console, shared helpers: DOM building, the tab's token, REST
// calls and problem rendering, used by every view's module.
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
const shortCursor = (c) => (c && c.length > 28 ? c.slice(0, 12) + '…' + c.slice(-12) : c || '');
const json = (v) => JSON.stringify(v);
const problemText = (p) => (p ? `${p.status || ''} ${p.title || ''}${p.detail ? ': ' + p.detail : ''}`.trim() : '');
const isResync = (p) => !!p && typeof p.type === 'string' && p.type.endsWith('/resync-required');

class ProblemError extends Error {
  constructor(problem) { super(problemText(problem)); this.problem = problem; }
}

// rest calls the REST API with the page's token and resolves with the
// status, headers and parsed body (problem bodies too); it rejects only
// when the request could not be made. extra adds headers (If-Match).
async function rest(method, path, body, contentType, extra) {
  const headers = { Accept: 'application/json, application/problem+json', ...(extra || {}) };
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

// problemLines renders a problem with the fields it names (errors[]).
function problemLines(status, body) {
  if (!body || typeof body !== 'object') return `${status} ${typeof body === 'string' ? body : ''}`.trim();
  const lines = [problemText(body)];
  for (const e of body.errors || []) {
    const name = e.name || e.pointer || '';
    if (e.detail && !(body.detail || '').includes(e.detail)) lines.push(`${e.in || ''} ${name}: ${e.detail}`.trim());
  }
  return lines.join('\n');
}

// jwtSubject is the sub claim of a JWT, or '' for anything else (an API
// key): read to tell whether a new token keeps the connection's subject,
// never trusted for anything (the server checks the token).
function jwtSubject(token) {
  const parts = token.split('.');
  if (parts.length !== 3) return '';
  try {
    const claims = JSON.parse(atob(parts[1].replace(/-/g, '+').replace(/_/g, '/')));
    return typeof claims.sub === 'string' ? claims.sub : '';
  } catch {
    return '';
  }
}

// needsAdmin tells whether a status refuses the page's credentials.
const needsAdmin = (status) => status === 401 || status === 403;

// when formats an RFC 3339 time for a table cell.
function when(t) {
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? String(t || '') : d.toLocaleString();
}

export {
  $, el, store, state, subKey, subLabel, isPresenceTopic, shortCursor, json, problemText, isResync,
  ProblemError, rest, copy, problemLines, needsAdmin, when, jwtSubject,
};
