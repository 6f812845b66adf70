// Tandem console, snippets: curl, WebSocket, Go SDK and TS SDK code for the
// live view's topic (the browser test compiles the Go and TS ones).
import { state, json } from './core.js';

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

export { snippetFor };
