// Tandem console, Node view: the node's readiness checks (GET /readyz,
// whose 503 names the failing dependency), and from its Prometheus text
// (GET /metrics) the version and the gauges that tell whether it keeps
// up: the change feed's lag behind the store, webhook lag, the broker's
// pending deliveries and delivery lag, connections, subscriptions and
// queued bytes.
import { $, el, rest, problemLines } from './core.js';

// GAUGES are the series shown, in order, with what they mean. A histogram
// is shown as its mean (from _sum and _count).
const GAUGES = [
  ['tandem_change_feed_lag_revisions', 'store revisions committed but not yet broadcast by this node (0: caught up)'],
  ['tandem_store_revision', 'newest committed store revision'],
  ['tandem_change_feed_revision', 'newest revision this node broadcast'],
  ['tandem_webhook_lag', 'events a webhook has not been delivered yet'],
  ['tandem_broker_pending_deliveries', 'Redis deliveries not yet handed to local subscribers'],
  ['tandem_broker_delivery_lag_seconds', 'mean publish-to-delivery time of channel messages (seconds)'],
  ['tandem_ws_connections', 'open WebSocket connections on this node'],
  ['tandem_ws_subscriptions', 'WebSocket subscriptions on this node'],
  ['tandem_queued_bytes', 'bytes queued for slow clients'],
];

// parseLabels reads `a="x",b="y\"z"` (the inside of {…}).
function parseLabels(s) {
  const labels = {};
  const re = /\s*([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?/gy;
  let m;
  while ((m = re.exec(s)) !== null) {
    labels[m[1]] = m[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
  }
  return labels;
}

// parseMetrics reads Prometheus text exposition into samples
// {name, labels, value}.
function parseMetrics(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    samples.push({ name: m[1], labels: m[2] ? parseLabels(m[2]) : {}, value: Number(m[3]) });
  }
  return samples;
}

const labelText = (l) => Object.entries(l).map(([k, v]) => `${k}="${v}"`).join(', ');
const num = (v) => (Number.isInteger(v) ? String(v) : v.toPrecision(4));

function gaugeRows(samples) {
  const rows = [];
  for (const [name, meaning] of GAUGES) {
    const direct = samples.filter((s) => s.name === name);
    const sums = samples.filter((s) => s.name === name + '_sum');
    if (direct.length) {
      for (const s of direct) rows.push({ name, labels: s.labels, value: num(s.value), meaning });
    } else if (sums.length) {
      for (const s of sums) {
        const key = labelText(s.labels);
        const count = samples.find((c) => c.name === name + '_count' && labelText(c.labels) === key);
        const n = count ? count.value : 0;
        rows.push({ name, labels: s.labels, value: n ? num(s.value / n) : 'no samples', meaning: `${meaning}; ${n} sample${n === 1 ? '' : 's'}` });
      }
    }
  }
  return rows;
}

function problem(text) {
  $('node-problem').hidden = !text;
  $('node-problem').textContent = text || '';
}

async function refresh() {
  problem('');
  const [ready, metrics] = await Promise.allSettled([rest('GET', '/readyz'), fetch('/metrics').then(async (r) => ({ status: r.status, text: await r.text() }))]);
  const lines = [];
  if (ready.status === 'fulfilled' && ready.value.body && typeof ready.value.body === 'object' && ready.value.body.status) {
    const h = ready.value.body;
    $('node-status').textContent = `${h.status} (${ready.value.status})`;
    $('node-status').className = `pill ${h.status === 'ok' ? 'p-live' : 'p-error'}`;
    $('node-checks').tBodies[0].replaceChildren(...Object.entries(h.checks || {}).map(([name, v]) => el('tr', { dataset: { check: name } },
      el('td', { class: 'mono', text: name }),
      el('td', {}, el('span', { class: `pill ${v === 'ok' ? 'p-live' : 'p-error'}`, text: v })),
    )));
  } else {
    $('node-status').textContent = 'unknown';
    $('node-status').className = 'pill p-error';
    lines.push(ready.status === 'rejected' ? `/readyz: ${ready.reason.message}` : `/readyz: ${problemLines(ready.value.status, ready.value.body)}`);
  }
  if (metrics.status === 'fulfilled' && metrics.value.status === 200) {
    const samples = parseMetrics(metrics.value.text);
    const build = samples.find((s) => s.name === 'tandem_build_info');
    $('node-version').textContent = build && build.labels.version ? build.labels.version : 'not reported';
    $('node-gauges').tBodies[0].replaceChildren(...gaugeRows(samples).map((g) => el('tr', { dataset: { metric: g.name } },
      el('td', { class: 'mono', text: g.name }),
      el('td', { class: 'mono', text: labelText(g.labels) }),
      el('td', { class: 'num', text: g.value }),
      el('td', { class: 'hint', text: g.meaning }),
    )));
  } else {
    lines.push(metrics.status === 'rejected' ? `/metrics: ${metrics.reason.message}` : `/metrics: status ${metrics.value.status}`);
  }
  problem(lines.join('\n'));
  $('node-updated').textContent = `· read ${new Date().toLocaleTimeString()}`;
}

function start() {
  $('node-refresh').addEventListener('click', refresh);
}

function show() {
  refresh();
}

export { start, show, parseMetrics };
