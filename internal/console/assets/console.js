// Tandem console: one page, dependency-free, that speaks the WebSocket
// protocol of spec/asyncapi.yaml and the REST API of spec/openapi.yaml.
// This module is its entry: it starts the views, each in its own module,
// and switches between them (tabs, and the URL's #fragment):
//
//   - Live (live.js, query.js): subscribe, watch events, publish, presence;
//   - Collections (collections.js, editor.js): browse, create, edit, delete;
//   - Connections (connections.js): who is connected, disconnect;
//   - Node (node.js): readiness checks, lag gauges, version.
import { $, el, state, rest, problemText } from './core.js';
import { start as startLive } from './live.js';
import './query.js';
import * as collections from './collections.js';
import * as connections from './connections.js';
import * as node from './node.js';

const views = { live: null, collections, connections, node };

// show makes one view visible; an admin view loads (again) each time it
// is shown, so what it lists is current.
function show(name, push) {
  if (!(name in views)) name = 'live';
  for (const b of $('views').querySelectorAll('[data-view]')) {
    const on = b.dataset.view === name;
    b.setAttribute('aria-selected', String(on));
    $('view-' + b.dataset.view).hidden = !on;
  }
  if (push) history.replaceState(null, '', name === 'live' ? location.pathname + location.search : '#' + name);
  if (views[name]) views[name].show();
}

const rt = startLive();
collections.start();
connections.start({ realtime: rt });
node.start();

$('views').addEventListener('click', (e) => {
  const b = e.target.closest('[data-view]');
  if (b) show(b.dataset.view, true);
});
window.addEventListener('hashchange', () => show(location.hash.slice(1), false));
// A new token may see more (or less): reload the view on screen.
document.addEventListener('tandem:token', () => {
  const name = location.hash.slice(1);
  if (views[name]) views[name].show();
});
show(location.hash.slice(1), false);

// Exposed for debugging from the browser's console (and for tests).
window.tandemConsole = { realtime: rt, state, el, rest, problemText };
