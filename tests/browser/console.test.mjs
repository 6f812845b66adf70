// Headless-Chromium tests of the console served by `tandem serve`
// (Debian chromium driven by playwright-core). Each test starts the real
// binary on 127.0.0.1 with a fresh data directory, drives the page like a
// person would, and checks what the page shows. Screenshots go to
// tests/browser/artifacts/. The last test type-checks the Go and TS SDK
// snippets the page offers (go vet; tsc with sdk/ts's pinned toolchain).
//
//   npm ci && npm test            (from tests/browser; or `make test-browser`)
//   TANDEM_BIN=bin/tandem npm test   reuse a built binary
//   CHROMIUM=/path/to/chromium       another browser binary
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const artifacts = path.join(here, 'artifacts');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const WAIT = 15_000;

let work;
let bin;
let browser;

before(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'tandem-browser-'));
  mkdirSync(artifacts, { recursive: true });
  bin = process.env.TANDEM_BIN ? path.resolve(process.env.TANDEM_BIN) : path.join(work, 'tandem');
  if (!process.env.TANDEM_BIN) {
    execFileSync('go', ['build', '-o', bin, './cmd/tandem'], { cwd: repo, stdio: 'inherit' });
  }
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // As root in a container, and with no network but loopback.
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  if (browser) await browser.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

// startTandem runs `tandem serve` and resolves once it logs its address.
function startTandem({ dataDir, addr = '127.0.0.1:0', extra = [] }) {
  const proc = spawn(bin, ['serve', '--addr', addr, '--data-dir', dataDir, '--strict', ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let logs = '';
  const server = {
    proc,
    logs: () => logs,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = once(proc, 'exit');
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`tandem did not start:\n${logs}`)); }, 20_000);
    const onData = (d) => {
      logs += d;
      const m = /msg="tandem listening" addr=(\S+)/.exec(logs);
      if (m && !server.url) {
        clearTimeout(timer);
        server.addr = m[1];
        server.url = `http://${m[1]}`;
        resolve(server);
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (!server.url) reject(new Error(`tandem exited (${code ?? signal}) before listening:\n${logs}`));
    });
  });
}

async function rest(server, method, p, body, token) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  const r = await fetch(server.url + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

// openPage opens a tab that records script errors, console errors and any
// request that leaves the server's origin (there must be none).
async function openPage(context, server, query = '') {
  const page = await context.newPage();
  const problems = [];
  const origin = server.url;
  const wsOrigin = origin.replace(/^http/, 'ws');
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    // A reconnecting page logs refused WebSocket dials while the server is down.
    if (msg.type() === 'error' && !/WebSocket connection to .* failed/.test(msg.text())) problems.push(`console error: ${msg.text()}`);
  });
  page.on('request', (req) => {
    const u = req.url();
    if (!u.startsWith(origin + '/') && !u.startsWith('data:')) problems.push(`request outside the origin: ${u}`);
  });
  page.on('websocket', (ws) => {
    if (ws.url() !== `${wsOrigin}/v1/ws`) problems.push(`WebSocket outside the origin: ${ws.url()}`);
  });
  await page.goto(`${origin}/${query}`);
  await page.locator('#conn[data-state="open"]').waitFor({ timeout: WAIT });
  page.problems = problems;
  return page;
}

const eventEntry = (page, ...texts) => {
  let loc = page.locator('#events li.ev');
  for (const t of texts) loc = loc.filter({ hasText: t });
  return loc;
};

const subEntry = (page, topic) => page.locator(`#subs li.sub[data-topic="${topic}"]`);

async function subscribe(page, { kind, collection, channel, name, snapshot = false }) {
  await page.selectOption('#kind', kind);
  if (collection) await page.fill('#collection', collection);
  if (channel) await page.fill('#channel', channel);
  if (name) await page.fill('#member-name', name);
  await page.setChecked('#snapshot', snapshot);
  await page.click('#subscribe');
}

async function memberNames(page, topic) {
  return page.locator(`#presence .presence-topic[data-topic="${topic}"] .member-name`).allTextContents();
}

async function waitForMembers(page, topic, want) {
  const sorted = [...want].sort();
  await page.waitForFunction(([t, w]) => {
    const names = [...document.querySelectorAll(`#presence .presence-topic[data-topic="${t}"] .member-name`)].map((e) => e.textContent).sort();
    return JSON.stringify(names) === JSON.stringify(w);
  }, [topic, sorted], { timeout: WAIT });
}

test('a collection subscription shows REST changes live and resumes across a server restart', async (t) => {
  const dataDir = path.join(work, 'resources');
  let server = await startTandem({ dataDir });
  const context = await browser.newContext();
  t.after(async () => { await context.close(); await server.stop(); });
  try {
    assert.equal((await rest(server, 'POST', '/v1/collections', { name: 'orders' })).status, 201);
    const page = await openPage(context, server);

    await subscribe(page, { kind: 'resources', collection: 'orders', snapshot: true });
    const sub = subEntry(page, 'collections/orders/resources');
    await sub.and(page.locator('[data-status="live"]')).waitFor({ timeout: WAIT });
    await eventEntry(page, 'synced', 'snapshot complete').waitFor({ timeout: WAIT });

    // A change made over REST from Node appears in the page with its cursor.
    const put = await rest(server, 'PUT', '/v1/collections/orders/resources/o-1', { data: { item: 'tea', qty: 2 }, labels: { env: 'prod' } });
    assert.equal(put.status, 201);
    const created = eventEntry(page, 'resource.created', 'o-1', '"item":"tea"');
    await created.waitFor({ timeout: WAIT });
    const cursor = (await created.locator('.ev-cursor .cursor').textContent()).trim();
    assert.ok(cursor.length > 0, 'the event shows its cursor');
    await page.waitForFunction(([topic, c]) => {
      const code = document.querySelector(`#subs li.sub[data-topic="${topic}"] .cursor`);
      return code && code.title.startsWith(c);
    }, ['collections/orders/resources', cursor], { timeout: WAIT });

    // Changes made from the page's own REST form arrive too.
    await page.selectOption('#rest-method', 'PUT');
    await page.fill('#rest-collection', 'orders');
    await page.fill('#rest-id', 'o-2');
    await page.fill('#rest-data', '{"item": "coffee", "qty": 1}');
    await page.click('#rest-send');
    await page.locator('#rest-result', { hasText: '201' }).waitFor({ timeout: WAIT });
    await eventEntry(page, 'resource.created', 'o-2', 'coffee').waitFor({ timeout: WAIT });
    await page.selectOption('#rest-method', 'DELETE');
    await page.click('#rest-send');
    await page.locator('#rest-result', { hasText: '204' }).waitFor({ timeout: WAIT });
    await eventEntry(page, 'resource.deleted', 'o-2').waitFor({ timeout: WAIT });
    assert.equal((await rest(server, 'GET', '/v1/collections/orders/resources/o-2')).status, 404);

    // Forced restart. While the page is cut off, another server process on
    // the same data (and another port, so the page cannot reach it) makes a
    // change; the page must get it by resuming from its cursor.
    const addr = server.addr;
    await server.stop();
    await page.locator('#conn[data-state="connecting"]').waitFor({ timeout: WAIT });
    const side = await startTandem({ dataDir });
    try {
      assert.equal((await rest(side, 'PUT', '/v1/collections/orders/resources/o-3', { data: { item: 'cake' } })).status, 201);
    } finally {
      await side.stop();
    }
    server = await startTandem({ dataDir, addr });
    await page.locator('#conn[data-state="open"]').waitFor({ timeout: 30_000 });
    await eventEntry(page, 'resumed after cursor', 'start: since').waitFor({ timeout: WAIT });
    await eventEntry(page, 'resource.created', 'o-3', 'cake').waitFor({ timeout: WAIT });
    // …and live changes continue after the replay.
    assert.equal((await rest(server, 'PUT', '/v1/collections/orders/resources/o-4', { data: { item: 'pie' } })).status, 201);
    await eventEntry(page, 'resource.created', 'o-4', 'pie').waitFor({ timeout: WAIT });
    // No gap and no duplicate: every change exactly once.
    for (const [ev, id] of [['resource.created', 'o-1'], ['resource.created', 'o-2'], ['resource.deleted', 'o-2'], ['resource.created', 'o-3'], ['resource.created', 'o-4']]) {
      assert.equal(await eventEntry(page, ev, `${id} · rev`).count(), 1, `${ev} ${id} shown once`);
    }

    await page.screenshot({ path: path.join(artifacts, 'console-resources.png'), fullPage: true });
    assert.deepEqual(page.problems, []);
  } catch (err) {
    t.diagnostic(`server log:\n${server.logs()}`);
    throw err;
  }
});

test('a browser EventSource over two topics gets bookmark events and resumes across a restart from its composite id', async (t) => {
  const dataDir = path.join(work, 'eventsource');
  let server = await startTandem({ dataDir, extra: ['--bookmark-interval', '300ms'] });
  const context = await browser.newContext();
  t.after(async () => { await context.close(); await server.stop(); });
  try {
    for (const name of ['orders', 'notes']) assert.equal((await rest(server, 'POST', '/v1/collections', { name })).status, 201);
    const page = await context.newPage();
    await page.goto(`${server.url}/healthz`);
    await page.evaluate(() => {
      const got = { events: [], bookmarks: [], opens: 0 };
      window.got = got;
      const es = new EventSource('/v1/events?topic=collections/orders/resources&topic=collections/notes/resources');
      es.onopen = () => { got.opens++; };
      // The README's recipe: keep the id of events and of bookmarks.
      es.addEventListener('event', (e) => {
        const f = JSON.parse(e.data);
        got.events.push(`${f.topic.split('/')[1]}/${f.resource.id}`);
        got.cursor = e.lastEventId;
      });
      es.addEventListener('bookmark', (e) => {
        got.bookmarks.push({ id: e.lastEventId, topic: JSON.parse(e.data).topic });
        got.cursor = e.lastEventId;
      });
    });
    await page.waitForFunction(() => window.got.opens === 1, null, { timeout: WAIT });
    assert.equal((await rest(server, 'PUT', '/v1/collections/orders/resources/o-1', { data: {} })).status, 201);
    assert.equal((await rest(server, 'PUT', '/v1/collections/notes/resources/n-1', { data: {} })).status, 201);
    await page.waitForFunction(() => window.got.events.length === 2, null, { timeout: WAIT });
    // Bookmarks of both topics arrive, each with the stream's composite id.
    await page.waitForFunction(() => new Set(window.got.bookmarks.map((b) => b.topic)).size === 2, null, { timeout: WAIT });
    const bookmarks = await page.evaluate(() => window.got.bookmarks);
    for (const b of bookmarks) assert.match(b.id, /^s1\./, 'a bookmark carries the composite id');

    // Restart; meanwhile another process on the same data writes o-2.
    const addr = server.addr;
    await server.stop();
    const side = await startTandem({ dataDir });
    try {
      assert.equal((await rest(side, 'PUT', '/v1/collections/orders/resources/o-2', { data: {} })).status, 201);
    } finally {
      await side.stop();
    }
    server = await startTandem({ dataDir, addr, extra: ['--bookmark-interval', '300ms'] });
    await page.waitForFunction(() => window.got.opens === 2, null, { timeout: 30_000 });
    assert.equal((await rest(server, 'PUT', '/v1/collections/notes/resources/n-2', { data: {} })).status, 201);
    await page.waitForFunction(() => window.got.events.length >= 4, null, { timeout: WAIT });
    // Every change exactly once: Last-Event-ID resumed both topics.
    const events = await page.evaluate(() => window.got.events);
    assert.deepEqual([...events].sort(), ['notes/n-1', 'notes/n-2', 'orders/o-1', 'orders/o-2']);
    // The cursor the application kept resumes a new EventSource with ?since=.
    const resumed = await page.evaluate(() => new Promise((resolve, reject) => {
      const es = new EventSource('/v1/events?topic=collections/orders/resources&topic=collections/notes/resources&since=' + encodeURIComponent(window.got.cursor));
      es.onopen = () => fetch('/v1/collections/orders/resources/o-3', { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: '{"data":{}}' });
      es.addEventListener('event', (e) => { es.close(); resolve(JSON.parse(e.data).resource.id); });
      setTimeout(() => { es.close(); reject(new Error('no event after resuming with since')); }, 10_000);
    }));
    assert.equal(resumed, 'o-3', 'resuming from the kept cursor replays nothing already seen');
  } catch (err) {
    t.diagnostic(`server log:\n${server.logs()}`);
    throw err;
  }
});

test('the list panel filters and orders pages, shows a bad filter\'s position, and watches the filter live', async (t) => {
  const server = await startTandem({ dataDir: path.join(work, 'queries') });
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  t.after(async () => { await context.close(); await server.stop(); });
  try {
    assert.equal((await rest(server, 'POST', '/v1/collections', { name: 'orders' })).status, 201);
    for (let i = 1; i <= 5; i++) {
      assert.equal((await rest(server, 'PUT', `/v1/collections/orders/resources/o${i}`, { data: { qty: i } })).status, 201);
    }
    const page = await openPage(context, server);
    const shown = () => page.locator('#query-items li.qr').evaluateAll((lis) => lis.map((li) => li.dataset.id));

    // A filter and an order, two to a page: the next page continues the query.
    await page.fill('#query-collection', 'orders');
    await page.fill('#query-filter', 'data.qty > 2');
    await page.fill('#query-order', 'data.qty desc');
    await page.fill('#query-limit', '2');
    await page.click('#query-run');
    await page.locator('#query-status', { hasText: '2 resources in 1 page' }).waitFor({ timeout: WAIT });
    assert.deepEqual(await shown(), ['o5', 'o4']);
    assert.match(await page.locator('#query-status').textContent(), /more follow/);
    assert.match(await page.locator('#query-path').textContent(), /filter=data\.qty\+%3E\+2&orderBy=data\.qty\+desc&limit=2/);
    await page.click('#query-next');
    await page.locator('#query-status', { hasText: '3 resources in 2 pages' }).waitFor({ timeout: WAIT });
    assert.deepEqual(await shown(), ['o5', 'o4', 'o3']);
    assert.ok(await page.locator('#query-next').isHidden(), 'no next page after the last');

    // A bad expression: the server's problem, naming the position, and no rows.
    await page.fill('#query-filter', 'data.qty >');
    await page.click('#query-run');
    const problem = page.locator('#query-problem');
    await problem.waitFor({ state: 'visible', timeout: WAIT });
    assert.match(await problem.textContent(), /^400 The request is invalid: query filter: position 11: /);
    assert.deepEqual(await shown(), []);
    await page.fill('#query-order', 'data.qty sideways');
    await page.fill('#query-filter', '');
    await page.click('#query-run');
    await problem.filter({ hasText: 'orderBy: position 10' }).waitFor({ timeout: WAIT });
    await page.fill('#query-order', '');
    await page.fill('#query-filter', 'data.qty>3');
    await page.click('#query-run');
    await page.locator('#query-status', { hasText: '2 resources in 1 page' }).waitFor({ timeout: WAIT });
    assert.ok(await problem.isHidden(), 'the problem goes once the query works');

    // Watch live: a subscription with the filter, named by its canonical form;
    // a resource entering it arrives as created, one leaving as deleted.
    await page.click('#query-watch');
    const sub = subEntry(page, 'collections/orders/resources');
    await sub.and(page.locator('[data-status="live"]')).waitFor({ timeout: WAIT });
    assert.equal((await sub.locator('.sub-select').textContent()).trim(), 'where data.qty > 3');
    await eventEntry(page, 'resource.snapshot', 'o4 · rev').waitFor({ timeout: WAIT }); // 'o4' alone can occur in a cursor
    assert.equal(await eventEntry(page, 'resource.snapshot', 'o3 · rev').count(), 0);
    assert.equal((await rest(server, 'PUT', '/v1/collections/orders/resources/o1', { data: { qty: 9 } })).status, 200);
    assert.equal((await rest(server, 'PUT', '/v1/collections/orders/resources/o5', { data: { qty: 0 } })).status, 200);
    assert.equal((await rest(server, 'PUT', '/v1/collections/orders/resources/o2', { data: { qty: 1 } })).status, 200);
    assert.equal((await rest(server, 'PUT', '/v1/collections/orders/resources/o3', { data: { qty: 10 } })).status, 200);
    await eventEntry(page, 'resource.created', 'o1 · rev').waitFor({ timeout: WAIT });
    await eventEntry(page, 'resource.deleted', 'o5 · rev', 'where data.qty > 3').waitFor({ timeout: WAIT });
    await eventEntry(page, 'resource.created', 'o3 · rev').waitFor({ timeout: WAIT }); // after o2's change in the stream
    assert.equal(await eventEntry(page, 'o2 · rev').count(), 0, 'a change outside the filter is not shown');

    // The subscribe form takes a filter too, from the URL as well.
    const page2 = await openPage(context, server, '?topic=collections/orders/resources&filter=' + encodeURIComponent('data.qty >= 9'));
    await subEntry(page2, 'collections/orders/resources').and(page2.locator('[data-status="live"]')).waitFor({ timeout: WAIT });
    assert.equal(await page2.inputValue('#filter'), 'data.qty >= 9');
    await page.screenshot({ path: path.join(artifacts, 'console-queries.png'), fullPage: true });
    // The refused lists are expected here; nothing else may go wrong.
    assert.deepEqual([...page.problems, ...page2.problems].filter((p) => !/status of 400/.test(p)), []);
  } catch (err) {
    t.diagnostic(`server log:\n${server.logs()}`);
    throw err;
  }
});

test('a cursor the server cannot honour makes the page reload with a snapshot', async (t) => {
  // Two stores, two epochs: a cursor of one means nothing to the other.
  const other = await startTandem({ dataDir: path.join(work, 'epoch-a') });
  const server = await startTandem({ dataDir: path.join(work, 'epoch-b') });
  const context = await browser.newContext();
  t.after(async () => { await context.close(); await other.stop(); await server.stop(); });
  try {
    assert.equal((await rest(other, 'POST', '/v1/collections', { name: 'orders' })).status, 201);
    const foreign = (await rest(other, 'GET', '/v1/changes?topic=collections/orders/resources&wait=1ms')).body.cursor;
    assert.ok(foreign);
    assert.equal((await rest(server, 'POST', '/v1/collections', { name: 'orders' })).status, 201);
    assert.equal((await rest(server, 'PUT', '/v1/collections/orders/resources/kept', { data: { n: 1 } })).status, 201);

    const page = await openPage(context, server);
    await page.fill('#since', foreign);
    await subscribe(page, { kind: 'resources', collection: 'orders' });
    await eventEntry(page, 'resync', 'resubscribing with a snapshot').waitFor({ timeout: WAIT });
    await eventEntry(page, 'resource.snapshot', 'kept').waitFor({ timeout: WAIT });
    await eventEntry(page, 'synced').waitFor({ timeout: WAIT });
    await subEntry(page, 'collections/orders/resources').and(page.locator('[data-status="live"]')).waitFor({ timeout: WAIT });
    assert.equal((await rest(server, 'PUT', '/v1/collections/orders/resources/after', { data: { n: 2 } })).status, 201);
    await eventEntry(page, 'resource.created', 'after').waitFor({ timeout: WAIT });
    assert.deepEqual(page.problems, []);
  } catch (err) {
    t.diagnostic(`server log:\n${server.logs()}`);
    throw err;
  }
});

// spawnLines runs a program and lets a test wait for lines of its output.
function spawnLines(cmd, args) {
  const proc = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  return {
    proc,
    output: () => out,
    async waitFor(re, timeout = WAIT) {
      const deadline = Date.now() + timeout;
      while (!re.test(out)) {
        if (Date.now() > deadline) throw new Error(`no ${re} in the output of ${path.basename(cmd)}:\n${out}`);
        if (proc.exitCode !== null) throw new Error(`${path.basename(cmd)} exited (${proc.exitCode}):\n${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}

test('two tabs chat on a channel with presence, joined by the Go SDK chat example', async (t) => {
  const server = await startTandem({ dataDir: path.join(work, 'chat') });
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  let carol;
  t.after(async () => { carol?.proc.kill(); await context.close(); await server.stop(); });
  const topic = 'channels/chat:lobby/presence';
  try {
    // Alice arrives by link (the page subscribes by itself), Bob by the form.
    const alice = await openPage(context, server, '?topic=channels/chat:lobby/messages&name=alice');
    await subEntry(alice, 'channels/chat:lobby/messages').and(alice.locator('[data-status="live"]')).waitFor({ timeout: WAIT });
    await subEntry(alice, topic).and(alice.locator('[data-status="live"]')).waitFor({ timeout: WAIT });
    await waitForMembers(alice, topic, ['alice']);

    const bob = await openPage(context, server);
    await subscribe(bob, { kind: 'messages', channel: 'chat:lobby', name: 'bob' });
    await waitForMembers(bob, topic, ['alice', 'bob']);
    await waitForMembers(alice, topic, ['alice', 'bob']);
    await eventEntry(alice, 'presence', 'bob joined').waitFor({ timeout: WAIT });

    // Alice types and presses Enter; Bob sees it, and answers with the button.
    await alice.fill('#pub-data', 'hello from alice');
    await alice.press('#pub-data', 'Enter');
    await eventEntry(bob, 'message', 'alice: hello from alice').waitFor({ timeout: WAIT });
    await alice.locator('#pub-result', { hasText: 'published #1' }).waitFor({ timeout: WAIT });
    await bob.fill('#pub-data', 'hi alice');
    await bob.click('#publish');
    await eventEntry(alice, 'message', 'bob: hi alice').waitFor({ timeout: WAIT });
    await eventEntry(bob, 'message', 'bob: hi alice').waitFor({ timeout: WAIT });

    // The history agrees with what the pages showed.
    const history = await rest(server, 'GET', '/v1/channels/chat:lobby/messages');
    assert.deepEqual(history.body.items.map((m) => m.data), [{ name: 'alice', text: 'hello from alice' }, { name: 'bob', text: 'hi alice' }]);

    // Carol joins from a terminal with sdk/go/examples/chat (README walkthrough).
    const chatBin = path.join(work, 'chat-example');
    execFileSync('go', ['build', '-o', chatBin, './examples/chat'], { cwd: path.join(repo, 'sdk', 'go'), stdio: 'inherit' }); // the SDK's own module
    carol = spawnLines(chatBin, ['-url', server.url, '-name', 'carol', '-room', 'lobby']);
    await carol.waitFor(/alice: hello from alice[\s\S]*bob: hi alice/); // the room's history
    await waitForMembers(alice, topic, ['alice', 'bob', 'carol']);
    await eventEntry(bob, 'presence', 'carol joined').waitFor({ timeout: WAIT });
    carol.proc.stdin.write('hi from go\n');
    await eventEntry(alice, 'message', 'carol: hi from go').waitFor({ timeout: WAIT });
    await alice.fill('#pub-data', 'welcome carol');
    await alice.press('#pub-data', 'Enter');
    await carol.waitFor(/alice: welcome carol/);

    await alice.screenshot({ path: path.join(artifacts, 'console.png'), fullPage: true });

    // Carol quits and Bob closes his tab: Alice sees them leave.
    carol.proc.stdin.end();
    await once(carol.proc, 'exit');
    await eventEntry(alice, 'presence', 'carol left').waitFor({ timeout: WAIT });
    const bobProblems = bob.problems;
    await bob.close();
    await eventEntry(alice, 'presence', 'bob left').waitFor({ timeout: WAIT });
    await waitForMembers(alice, topic, ['alice']);
    assert.deepEqual(await memberNames(alice, topic), ['alice']);
    assert.deepEqual([...bobProblems, ...alice.problems], []);
  } catch (err) {
    t.diagnostic(`server log:\n${server.logs()}`);
    if (carol) t.diagnostic(`chat example output:\n${carol.output()}`);
    throw err;
  }
});

test('the token is sent as the auth frame and as a bearer header', async (t) => {
  const secret = 'browser-test-secret-0123456789abcdef';
  const server = await startTandem({ dataDir: path.join(work, 'auth'), extra: ['--jwt-secret', secret] });
  const context = await browser.newContext();
  t.after(async () => { await context.close(); await server.stop(); });
  try {
    const token = execFileSync(bin, ['token', '--secret', secret, '--sub', 'carol', '--ttl', '10m',
      '--grant', 'admin:**', '--grant', 'read:**', '--grant', 'write:**', '--grant', 'publish:**'], { encoding: 'utf8' }).trim();
    assert.equal((await rest(server, 'POST', '/v1/collections', { name: 'secrets' })).status, 401);
    assert.equal((await rest(server, 'POST', '/v1/collections', { name: 'secrets' }, token)).status, 201);

    const page = await openPage(context, server);
    // Without a token the subscription is refused…
    await subscribe(page, { kind: 'resources', collection: 'secrets' });
    const sub = subEntry(page, 'collections/secrets/resources');
    await sub.and(page.locator('[data-status="error"]')).waitFor({ timeout: WAIT });
    assert.match(await sub.locator('.sub-problem').textContent(), /^401/);
    // …with one it works, on the WebSocket and for REST from the page.
    await page.fill('#token', token);
    await page.click('#token-form button[type="submit"]');
    await page.locator('#auth-state', { hasText: 'Authenticated as carol' }).waitFor({ timeout: WAIT });
    await sub.locator('button', { hasText: 'Retry' }).click();
    await sub.and(page.locator('[data-status="live"]')).waitFor({ timeout: WAIT });
    await page.fill('#rest-collection', 'secrets');
    await page.fill('#rest-id', 's-1');
    await page.fill('#rest-data', '{"pin": 1234}');
    await page.click('#rest-send');
    await page.locator('#rest-result', { hasText: '201' }).waitFor({ timeout: WAIT });
    await eventEntry(page, 'resource.created', 's-1', '"pin":1234').waitFor({ timeout: WAIT });
    // The snippets never contain the token itself.
    await page.click('#snippet-tabs [data-lang="curl"]');
    const snippet = await page.locator('#snippet').textContent();
    assert.ok(snippet.includes('Authorization: Bearer $TANDEM_TOKEN'));
    assert.ok(!snippet.includes(token));
    // The page's 401 replies are expected here; nothing else may go wrong.
    assert.deepEqual(page.problems.filter((p) => !/status of 401/.test(p)), []);
  } catch (err) {
    t.diagnostic(`server log:\n${server.logs()}`);
    throw err;
  }
});

// rowIDs lists the IDs of a table's rows in order.
const rowIDs = (page, tbody) => page.locator(`${tbody} tr[data-id]`).evaluateAll((trs) => trs.map((tr) => tr.dataset.id));

// Expected refusals log a console error ("…status of 412…"); nothing else may.
const unexpected = (problems, ...statuses) => problems.filter((p) => !statuses.some((s) => p.includes(`status of ${s}`)));

test('the Collections view pages, filters, shows the schema, creates, edits with If-Match and deletes', async (t) => {
  const server = await startTandem({ dataDir: path.join(work, 'collections') });
  const context = await browser.newContext({ viewport: { width: 1500, height: 1000 } });
  t.after(async () => { await context.close(); await server.stop(); });
  const schema = { type: 'object', properties: { qty: { type: 'integer', minimum: 0 }, item: { type: 'string' } }, required: ['qty'] };
  try {
    assert.equal((await rest(server, 'POST', '/v1/collections', { name: 'orders', schema })).status, 201);
    assert.equal((await rest(server, 'POST', '/v1/collections', { name: 'empty' })).status, 201);
    for (let i = 1; i <= 5; i++) {
      const r = await rest(server, 'PUT', `/v1/collections/orders/resources/o${i}`, { data: { qty: i }, labels: { env: i % 2 ? 'prod' : 'dev' } });
      assert.equal(r.status, 201);
    }
    const page = await openPage(context, server);
    await page.click('#tab-collections');
    assert.equal(await page.evaluate(() => location.hash), '#collections');
    await page.locator('#cols [data-collection="empty"]').waitFor({ timeout: WAIT });
    await page.click('#cols [data-collection="orders"]');

    // Two to a page: forwards to the last page, and back.
    await page.fill('#res-limit', '2');
    await page.click('#res-apply');
    const pageText = page.locator('#res-page');
    await pageText.filter({ hasText: /^page 1 · 2 resources/ }).waitFor({ timeout: WAIT });
    assert.deepEqual(await rowIDs(page, '#res-rows'), ['o1', 'o2']);
    assert.ok(await page.locator('#res-prev').isDisabled());
    await page.click('#res-next');
    await pageText.filter({ hasText: /^page 2 · 2 resources/ }).waitFor({ timeout: WAIT });
    assert.deepEqual(await rowIDs(page, '#res-rows'), ['o3', 'o4']);
    await page.click('#res-next');
    await pageText.filter({ hasText: /^page 3 · 1 resource / }).waitFor({ timeout: WAIT });
    assert.deepEqual(await rowIDs(page, '#res-rows'), ['o5']);
    assert.ok(await page.locator('#res-next').isDisabled(), 'no next page after the last');
    await page.click('#res-prev');
    await pageText.filter({ hasText: /^page 2 · 2 resources/ }).waitFor({ timeout: WAIT });
    assert.deepEqual(await rowIDs(page, '#res-rows'), ['o3', 'o4']);

    // A label selector, a filter and an order.
    await page.fill('#res-labels', 'env=prod');
    await page.fill('#res-filter', 'data.qty > 1');
    await page.fill('#res-order', 'data.qty desc');
    await page.fill('#res-limit', '20');
    await page.click('#res-apply');
    await pageText.filter({ hasText: /^page 1 · 2 resources/ }).waitFor({ timeout: WAIT });
    assert.deepEqual(await rowIDs(page, '#res-rows'), ['o5', 'o3']);
    await page.fill('#res-filter', 'data.qty >');
    await page.click('#res-apply');
    await page.locator('#res-problem').filter({ hasText: /^400 .*filter/ }).waitFor({ timeout: WAIT });
    await page.fill('#res-labels', '');
    await page.fill('#res-filter', '');
    await page.fill('#res-order', '');
    await page.click('#res-apply');
    await pageText.filter({ hasText: /^page 1 · 5 resources/ }).waitFor({ timeout: WAIT });
    assert.ok(await page.locator('#res-problem').isHidden());

    // The schema, pretty-printed.
    await page.click('#col-tabs [data-pane="schema"]');
    const schemaBox = page.getByTestId('schema');
    await schemaBox.filter({ hasText: '"minimum": 0' }).waitFor({ timeout: WAIT });
    assert.deepEqual(JSON.parse(await schemaBox.textContent()), schema);
    assert.match(await schemaBox.textContent(), /^{\n  "type": "object",/);
    await page.click('#col-tabs [data-pane="resources"]');

    // Create a valid resource: its row appears.
    await page.click('#res-new');
    await page.fill('#res-editor', '{"id": "o0", "data": {"qty": 7, "item": "tea"}, "labels": {"env": "prod"}}');
    await page.click('#res-save');
    await page.locator('#res-message').filter({ hasText: /^created o0 at revision \d+$/ }).waitFor({ timeout: WAIT });
    await page.locator('#res-rows tr[data-id="o0"]').waitFor({ timeout: WAIT });
    assert.deepEqual((await rest(server, 'GET', '/v1/collections/orders/resources/o0')).body.data, { qty: 7, item: 'tea' });

    // An invalid one: the schema error at its field, nothing created.
    await page.click('#res-new');
    await page.fill('#res-editor', '{"id": "bad", "data": {"item": "cake", "qty": "many"}}');
    await page.click('#res-save');
    const fieldError = page.getByTestId('field-errors').locator('li[data-pointer="/data/qty"]');
    await fieldError.waitFor({ timeout: WAIT });
    assert.equal((await fieldError.textContent()).trim(), '/data/qty line 5: got string, want integer');
    assert.equal(await page.getAttribute('#res-editor', 'aria-invalid'), 'true');
    // The editor selects the offending line.
    assert.equal(await page.evaluate(() => { const ta = document.getElementById('res-editor'); return ta.value.slice(ta.selectionStart, ta.selectionEnd); }), '    "qty": "many"');
    assert.match(await page.locator('#res-message').textContent(), /^422 The data does not match the collection schema/);
    assert.equal((await rest(server, 'GET', '/v1/collections/orders/resources/bad')).status, 404);

    // Edit with a stale ETag: 412, "changed meanwhile"; reloaded, the save works.
    await page.locator('#res-rows tr[data-id="o1"]').getByRole('button', { name: 'Edit', exact: true }).click();
    await page.locator('#editor-hint').filter({ hasText: 'If-Match: "' }).waitFor({ timeout: WAIT });
    const etag = await page.getAttribute('#editor-panel', 'data-etag');
    assert.match(await page.inputValue('#res-editor'), /"qty": 1/);
    const sideways = await rest(server, 'PUT', '/v1/collections/orders/resources/o1', { data: { qty: 100 } });
    assert.equal(sideways.status, 200);
    await page.fill('#res-editor', '{"data": {"qty": 11}, "labels": {"env": "prod"}}');
    await page.click('#res-save');
    await page.locator('#res-message').filter({ hasText: /^changed meanwhile, reload/ }).waitFor({ timeout: WAIT });
    assert.equal((await rest(server, 'GET', '/v1/collections/orders/resources/o1')).body.data.qty, 100);
    await page.click('#res-reload');
    await page.waitForFunction((old) => { const p = document.getElementById('editor-panel'); return p.dataset.etag && p.dataset.etag !== old; }, etag, { timeout: WAIT });
    assert.match(await page.inputValue('#res-editor'), /"qty": 100/);
    await page.fill('#res-editor', '{"data": {"qty": 11}, "labels": {"env": "prod"}}');
    await page.click('#res-save');
    await page.locator('#res-message').filter({ hasText: /^saved o1 at revision \d+$/ }).waitFor({ timeout: WAIT });
    assert.equal((await rest(server, 'GET', '/v1/collections/orders/resources/o1')).body.data.qty, 11);
    await page.locator('#res-rows tr[data-id="o1"] td.data').filter({ hasText: '{"qty":11}' }).waitFor({ timeout: WAIT });

    // Delete, after a confirmation.
    const o2 = page.locator('#res-rows tr[data-id="o2"]');
    await o2.getByRole('button', { name: 'Delete', exact: true }).click();
    await o2.getByRole('button', { name: 'Confirm delete', exact: true }).click();
    await o2.waitFor({ state: 'detached', timeout: WAIT });
    assert.equal((await rest(server, 'GET', '/v1/collections/orders/resources/o2')).status, 404);
    assert.deepEqual(await rowIDs(page, '#res-rows'), ['o0', 'o1', 'o3', 'o4', 'o5']);

    await page.screenshot({ path: path.join(artifacts, 'console-collections.png'), fullPage: true });
    assert.deepEqual(unexpected(page.problems, 400, 412, 422), []);
  } catch (err) {
    t.diagnostic(`server log:\n${server.logs()}`);
    throw err;
  }
});

test('the Connections view needs an admin token, lists live connections and disconnects one', async (t) => {
  const secret = 'browser-test-secret-connections-0123456789';
  const server = await startTandem({ dataDir: path.join(work, 'connections'), extra: ['--jwt-secret', secret] });
  const context = await browser.newContext({ viewport: { width: 1500, height: 900 } });
  t.after(async () => { await context.close(); await server.stop(); });
  const mint = (sub, ...grants) => execFileSync(bin, ['token', '--secret', secret, '--sub', sub, '--ttl', '10m',
    ...grants.flatMap((g) => ['--grant', g])], { encoding: 'utf8' }).trim();
  const admin = mint('ops', 'admin:**', 'read:**');
  const reader = mint('reader', 'read:**');
  try {
    assert.equal((await rest(server, 'POST', '/v1/collections', { name: 'orders' }, admin)).status, 201);
    const applyToken = async (p, token, subject) => {
      await p.fill('#token', token);
      await p.click('#token-form button[type="submit"]');
      const state = p.locator('#auth-state');
      await state.filter({ hasText: new RegExp(`^(Authenticated as ${subject}|Token refused)`) }).waitFor({ timeout: WAIT });
      assert.match(await state.textContent(), new RegExp(`^Authenticated as ${subject}`));
    };

    // Another tab: a reader watching the collection.
    const other = await openPage(context, server);
    await applyToken(other, reader, 'reader');
    await subscribe(other, { kind: 'resources', collection: 'orders' });
    await subEntry(other, 'collections/orders/resources').and(other.locator('[data-status="live"]')).waitFor({ timeout: WAIT });
    const otherID = await other.evaluate(() => window.tandemConsole.realtime.connectionId);

    // A reader's token is refused…
    const page = await openPage(context, server, '#connections');
    await applyToken(page, reader, 'reader');
    await page.locator('#conns-problem').filter({ hasText: /^needs an admin token \(403 / }).waitFor({ timeout: WAIT });
    // …an admin's lists every connection, this page's own marked.
    await applyToken(page, admin, 'ops');
    const row = page.locator(`#conns-rows tr[data-id="${otherID}"]`);
    await row.waitFor({ timeout: WAIT });
    const cells = await row.locator('td').allTextContents();
    assert.equal(cells[1], 'reader');
    assert.equal(cells[3], 'websocket');
    assert.match(cells[4], /^127\.0\.0\.1:\d+$/);
    assert.equal(cells[6], 'collections/orders/resources');
    // The admin token has another subject: the page made a new connection
    // for it, which a refresh lists.
    const ownID = await page.evaluate(() => window.tandemConsole.realtime.connectionId);
    await page.click('#conns-refresh');
    const own = page.locator(`#conns-rows tr[data-id="${ownID}"]`);
    await own.waitFor({ timeout: WAIT });
    assert.match(await own.locator('td').first().textContent(), /\(this page\)$/);
    assert.equal(await own.locator('td').nth(1).textContent(), 'ops');
    assert.deepEqual((await rowIDs(page, '#conns-rows')).sort(), [ownID, otherID].sort());

    // The subject filter.
    await page.fill('#conns-subject', 'reader');
    await page.click('#conns-refresh');
    await page.locator('#conns-status').filter({ hasText: /^1 connection of reader$/ }).waitFor({ timeout: WAIT });
    assert.deepEqual(await rowIDs(page, '#conns-rows'), [otherID]);

    // Disconnect: the other tab is told why, and reconnects as a new connection.
    await row.getByRole('button', { name: 'Disconnect', exact: true }).click();
    await page.locator('#conns-status').filter({ hasText: `disconnected ${otherID}` }).waitFor({ timeout: WAIT });
    await eventEntry(other, 'disconnect', 'disconnected by the server: disconnected from the console').waitFor({ timeout: WAIT });
    await eventEntry(other, 'close', 'connection closed: 4003').waitFor({ timeout: WAIT });
    await other.waitForFunction((old) => { const id = window.tandemConsole.realtime.connectionId; return id && id !== old; }, otherID, { timeout: WAIT });
    await page.click('#conns-refresh');
    const newID = await other.evaluate(() => window.tandemConsole.realtime.connectionId);
    await page.locator(`#conns-rows tr[data-id="${newID}"]`).waitFor({ timeout: WAIT });
    assert.equal(await row.count(), 0, 'the disconnected connection is gone');

    await page.screenshot({ path: path.join(artifacts, 'console-connections.png'), fullPage: true });
    assert.deepEqual(unexpected(page.problems, 401, 403), []); // before a token, and with the reader's
    assert.deepEqual(other.problems, []);
  } catch (err) {
    t.diagnostic(`server log:\n${server.logs()}`);
    throw err;
  }
});

test('the Node view shows the readiness checks, the lag gauges and the version', async (t) => {
  const server = await startTandem({ dataDir: path.join(work, 'node') });
  const context = await browser.newContext({ viewport: { width: 1300, height: 900 } });
  t.after(async () => { await context.close(); await server.stop(); });
  try {
    const page = await openPage(context, server, '#node');
    for (const check of ['store', 'broker']) {
      await page.locator(`#node-checks tr[data-check="${check}"]`).filter({ hasText: 'ok' }).waitFor({ timeout: WAIT });
    }
    assert.equal(await page.locator('#node-status').textContent(), 'ok (200)');
    const version = JSON.parse(execFileSync(bin, ['version', '--json'], { encoding: 'utf8' })).version;
    assert.equal(await page.locator('#node-version').textContent(), version);
    const gauge = (name) => page.locator(`#node-gauges tr[data-metric="${name}"] td.num`);
    assert.equal(await gauge('tandem_change_feed_lag_revisions').textContent(), '0');
    // The view read /metrics as the page loaded, maybe before its WebSocket
    // was up: read again.
    await page.click('#node-refresh');
    await gauge('tandem_ws_connections').filter({ hasText: /^1$/ }).waitFor({ timeout: WAIT }); // this page
    await page.locator('#node-gauges tr[data-metric="tandem_broker_delivery_lag_seconds"]').filter({ hasText: 'no samples' }).waitFor({ timeout: WAIT });

    // After writes, Refresh shows the store's new revision.
    assert.equal((await rest(server, 'POST', '/v1/collections', { name: 'orders' })).status, 201);
    assert.equal((await rest(server, 'PUT', '/v1/collections/orders/resources/o1', { data: { qty: 1 } })).status, 201);
    const { revision } = (await rest(server, 'GET', '/v1/collections/orders/resources')).body;
    await page.click('#node-refresh');
    await gauge('tandem_store_revision').filter({ hasText: new RegExp(`^${revision}$`) }).waitFor({ timeout: WAIT });
    await page.waitForFunction(() => document.querySelector('#node-gauges tr[data-metric="tandem_change_feed_lag_revisions"] td.num')?.textContent === '0', null, { timeout: WAIT });

    await page.screenshot({ path: path.join(artifacts, 'console-node.png'), fullPage: true });
    assert.deepEqual(page.problems, []);
  } catch (err) {
    t.diagnostic(`server log:\n${server.logs()}`);
    throw err;
  }
});

test('the AsyncAPI page renders operations, messages and schemas', async (t) => {
  const server = await startTandem({ dataDir: path.join(work, 'docs') });
  const context = await browser.newContext({ viewport: { width: 1300, height: 1000 } });
  t.after(async () => { await context.close(); await server.stop(); });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (err) => errors.push(err.message));
  page.on('console', (msg) => { if (msg.type() === 'error') errors.push(msg.text()); });
  page.on('request', (req) => { if (!req.url().startsWith(server.url + '/')) errors.push(`outside request ${req.url()}`); });
  await page.goto(`${server.url}/docs/asyncapi`);
  await page.locator('#operations table.ops').waitFor({ timeout: WAIT });
  const spec = await (await fetch(`${server.url}/asyncapi.json`)).json();
  for (const op of Object.keys(spec.operations)) {
    assert.equal(await page.locator(`#op-${op}`).count(), 1, `operation ${op} rendered`);
  }
  for (const m of Object.keys(spec.components.messages)) {
    assert.equal(await page.locator(`#message-${m}`).count(), 1, `message ${m} rendered`);
  }
  // A payload schema is readable: the subscribe frame's members, with the
  // required ones marked and $refs linked to their schema.
  const subscribeCard = page.locator('#message-subscribe');
  for (const member of ['type', 'ref', 'topic', 'labels', 'since', 'snapshot', 'meta']) {
    assert.equal(await subscribeCard.locator('td.pname', { hasText: new RegExp(`^${member}`) }).count(), 1, `subscribe.${member}`);
  }
  assert.equal(await subscribeCard.locator('td.pname', { hasText: /^topicrequired$/ }).count(), 1);
  await page.screenshot({ path: path.join(artifacts, 'asyncapi.png') });
  await subscribeCard.locator('a[href="#schema-Topic"]').first().click();
  assert.equal(await page.evaluate(() => location.hash), '#schema-Topic');
  assert.ok(await page.locator('#schema-Topic').isVisible());
  assert.deepEqual(errors, []);
});

test('the Go and TypeScript SDK snippets compile against sdk/go and sdk/ts', async (t) => {
  const server = await startTandem({ dataDir: path.join(work, 'snippets') });
  const context = await browser.newContext();
  // Inside the module so the Go SDK resolves; a leading underscore keeps
  // the go tool's ./... patterns away from it.
  const dir = path.join(here, '_snippets');
  t.after(async () => { await context.close(); await server.stop(); rmSync(dir, { recursive: true, force: true }); });
  const page = await openPage(context, server);
  const cases = [
    { name: 'resources', kind: 'resources', collection: 'orders', labels: 'env=prod', snapshot: true },
    { name: 'resource', kind: 'resource', collection: 'orders', id: 'o-1', since: 'c29tZS1jdXJzb3I' },
    { name: 'messages', kind: 'messages', channel: 'chat:lobby', member: 'alice' },
    { name: 'presence', kind: 'presence', channel: 'chat:lobby' },
    { name: 'token', kind: 'resources', collection: 'orders', token: 'not-a-real-token' },
    { name: 'filter', kind: 'resources', collection: 'orders', filter: 'data.status == "paid" && data.qty > 2', snapshot: true },
  ];
  const pkgs = [];
  mkdirSync(path.join(dir, 'ts'), { recursive: true });
  for (const c of cases) {
    await page.selectOption('#kind', c.kind);
    if (c.collection) await page.fill('#collection', c.collection);
    if (c.id) await page.fill('#resource-id', c.id);
    if (c.channel) await page.fill('#channel', c.channel);
    if (c.kind.startsWith('resource')) await page.fill('#labels', c.labels || '');
    if (c.kind.startsWith('resource')) await page.fill('#filter', c.filter || '');
    if (c.kind === 'messages') await page.fill('#member-name', c.member || '');
    if (c.kind !== 'presence') await page.setChecked('#snapshot', !!c.snapshot);
    await page.fill('#since', c.since || '');
    await page.fill('#token', c.token || '');
    await page.click('#token-form button[type="submit"]');
    await page.click('#snippet-tabs [data-lang="go"]');
    const goSrc = await page.locator('#snippet').textContent();
    assert.match(goSrc, /^package main$/m, `${c.name}: a Go program`);
    mkdirSync(path.join(dir, c.name), { recursive: true });
    writeFileSync(path.join(dir, c.name, 'main.go'), goSrc + '\n'); // as pasted into a file
    pkgs.push(`./tests/browser/_snippets/${c.name}`);
    await page.click('#snippet-tabs [data-lang="ts"]');
    const tsSrc = await page.locator('#snippet').textContent();
    assert.match(tsSrc, /from "@tandem\/sdk"/, `${c.name}: uses the TS SDK`);
    writeFileSync(path.join(dir, 'ts', `${c.name}.ts`), tsSrc + '\n');
  }

  const fmt = spawnSync('gofmt', ['-d', dir], { encoding: 'utf8' });
  assert.equal(fmt.stdout + fmt.stderr, '', 'Go snippets are gofmt-formatted');
  const vet = spawnSync('go', ['vet', ...pkgs], { cwd: repo, encoding: 'utf8' });
  assert.equal(vet.status, 0, `go vet of the Go snippets failed:\n${vet.stderr}`);

  // Type-check the TS snippets (strict) against the SDK's sources, with the
  // SDK's own pinned toolchain.
  const sdk = path.join(repo, 'sdk', 'ts');
  if (!existsSync(path.join(sdk, 'node_modules', '.bin', 'tsc'))) {
    execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: sdk, stdio: 'inherit' });
  }
  writeFileSync(path.join(dir, 'ts', 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2022', 'DOM'],
      strict: true, noEmit: true, skipLibCheck: true,
      types: ['node'], typeRoots: [path.join(sdk, 'node_modules', '@types')],
      paths: { '@tandem/sdk': [path.join(sdk, 'src', 'index.ts')], ws: [path.join(sdk, 'node_modules', '@types', 'ws')] },
    },
    include: ['*.ts'],
  }, null, 2));
  const tsc = spawnSync(path.join(sdk, 'node_modules', '.bin', 'tsc'), ['-p', path.join(dir, 'ts', 'tsconfig.json')], { encoding: 'utf8' });
  assert.equal(tsc.status, 0, `tsc of the TS snippets failed:\n${tsc.stdout}${tsc.stderr}`);
});
