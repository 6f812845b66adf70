// Renders the AsyncAPI 3 document (fetched as JSON from /asyncapi.json,
// converted from spec/asyncapi.yaml by the server) as a readable page:
// overview, servers, channels, operations, messages with their payload
// schemas and examples, and every component schema. No dependencies.
'use strict';
(() => {
  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  let doc = {};

  // resolve follows a local JSON pointer ("#/components/schemas/X").
  function resolve(ref) {
    if (typeof ref !== 'string' || !ref.startsWith('#/')) return undefined;
    let v = doc;
    for (const raw of ref.slice(2).split('/')) {
      const k = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
      if (v === null || typeof v !== 'object' || !(k in v)) return undefined;
      v = v[k];
    }
    return v;
  }

  const lastSegment = (ref) => decodeURIComponent(ref.split('/').pop());

  // anchorFor maps a $ref to the id of the card that renders its target.
  function anchorFor(ref) {
    let m;
    if ((m = /^#\/components\/schemas\/([^/]+)$/.exec(ref))) return 'schema-' + m[1];
    if ((m = /^#\/components\/messages\/([^/]+)$/.exec(ref))) return 'message-' + m[1];
    if ((m = /^#\/operations\/([^/]+)$/.exec(ref))) return 'op-' + m[1];
    if ((m = /^#\/channels\/([^/]+)$/.exec(ref))) return 'channel-' + m[1];
    if ((m = /^#\/servers\/([^/]+)$/.exec(ref))) return 'server-' + m[1];
    const target = resolve(ref);
    if (target && typeof target.$ref === 'string' && target.$ref !== ref) return anchorFor(target.$ref);
    return '';
  }

  function refLink(ref, label) {
    const a = anchorFor(ref);
    return a ? el('a', { href: '#' + a }, label || lastSegment(ref)) : el('code', { text: label || ref });
  }

  // deref returns the object a {$ref} points at (one level), or the object.
  function deref(v) {
    return v && typeof v.$ref === 'string' ? resolve(v.$ref) || v : v;
  }

  // text renders a description: paragraphs and `inline code`.
  function text(s) {
    if (!s) return null;
    return el('div', { class: 'desc' }, String(s).trim().split(/\n\s*\n/).map((para) => {
      const p = el('p');
      String(para).replace(/\s*\n\s*/g, ' ').split('`').forEach((part, i) => {
        p.append(i % 2 ? el('code', { text: part }) : document.createTextNode(part));
      });
      return p;
    }));
  }

  function typeLabel(s) {
    if (!s || typeof s !== 'object') return 'any';
    if (s.$ref) return null;
    if (s.const !== undefined) return `${s.type || 'const'} = ${JSON.stringify(s.const)}`;
    if (Array.isArray(s.type)) return s.type.join(' | ');
    if (s.type === 'array') {
      const it = s.items;
      if (it && it.$ref) return `array of ${lastSegment(it.$ref)}`;
      return `array of ${(it && typeLabel(it)) || 'any'}`;
    }
    if (s.type) return s.type + (s.format ? ` (${s.format})` : '');
    if (s.oneOf) return 'one of';
    if (s.anyOf) return 'any of';
    if (s.allOf) return 'all of';
    return 'any JSON value';
  }

  function constraints(s) {
    const out = [];
    if (!s || typeof s !== 'object') return out;
    if (Array.isArray(s.enum)) out.push('one of ' + s.enum.map((v) => JSON.stringify(v)).join(', '));
    if (s.pattern) out.push(`pattern ${s.pattern}`);
    if (s.minLength !== undefined || s.maxLength !== undefined) out.push(`length ${s.minLength ?? 0}–${s.maxLength ?? '∞'}`);
    if (s.minimum !== undefined) out.push(`≥ ${s.minimum}`);
    if (s.maximum !== undefined) out.push(`≤ ${s.maximum}`);
    if (s.minItems !== undefined || s.maxItems !== undefined) out.push(`${s.minItems ?? 0}–${s.maxItems ?? '∞'} items`);
    if (s.default !== undefined) out.push(`default ${JSON.stringify(s.default)}`);
    return out;
  }

  function typeCell(s) {
    const cell = el('span');
    if (s && s.$ref) {
      cell.append(refLink(s.$ref));
      const target = resolve(s.$ref);
      const t = typeLabel(target);
      if (t && !(target && target.properties)) cell.append(el('span', { class: 'type' }, ' ', t));
      constraints(target).forEach((c) => cell.append(el('span', { class: 'constraint', text: c })));
    } else {
      cell.append(el('span', { class: 'type', text: typeLabel(s) }));
      constraints(s).forEach((c) => cell.append(el('span', { class: 'constraint', text: c })));
    }
    return cell;
  }

  const hasStructure = (s) => !!s && typeof s === 'object' && !s.$ref &&
    !!(s.properties || s.oneOf || s.anyOf || s.allOf || (s.items && (s.items.properties || s.items.oneOf)) ||
       (s.additionalProperties && typeof s.additionalProperties === 'object'));

  // schema renders one schema: its type, constraints, description, the
  // table of its properties (nested structures inline), and combinators.
  function schema(s, depth) {
    const box = el('div', { class: 'schema' });
    if (!s || typeof s !== 'object') return box;
    if (s.$ref) {
      box.append(el('div', {}, 'See ', refLink(s.$ref)));
      return box;
    }
    if (depth > 8) { box.append(el('span', { class: 'hint', text: '…' })); return box; }
    const head = el('div', {}, el('span', { class: 'type', text: typeLabel(s) }));
    constraints(s).forEach((c) => head.append(el('span', { class: 'constraint', text: c })));
    box.append(head);
    if (s.description) box.append(text(s.description));
    if (s.properties) {
      const req = new Set(s.required || []);
      box.append(el('table', { class: 'props' }, el('tbody', {}, Object.entries(s.properties).map(([name, p]) => el('tr', {},
        el('td', { class: 'pname' }, name, req.has(name) ? el('span', { class: 'req', title: 'required', text: 'required' }) : null),
        el('td', {}, typeCell(p), p && p.description ? text(p.description) : null, hasStructure(p) ? schema({ ...p, description: undefined }, depth + 1) : null),
      )))));
      if (s.required) {
        const missing = s.required.filter((r) => !(r in s.properties));
        if (missing.length) box.append(el('div', { class: 'hint' }, 'also required: ', missing.join(', ')));
      }
    } else if (Array.isArray(s.required) && s.required.length) {
      box.append(el('div', { class: 'hint' }, 'requires ', s.required.join(', ')));
    }
    if (s.additionalProperties === false && s.properties) box.append(el('div', { class: 'hint', text: 'No other members.' }));
    else if (s.additionalProperties && typeof s.additionalProperties === 'object') {
      box.append(el('div', { class: 'hint' }, 'Other members: ', typeCell(s.additionalProperties)));
      if (hasStructure(s.additionalProperties)) box.append(schema(s.additionalProperties, depth + 1));
    }
    if (s.type === 'array' && s.items && hasStructure(s.items)) box.append(el('div', { class: 'hint', text: 'Items:' }), schema(s.items, depth + 1));
    for (const comb of ['oneOf', 'anyOf', 'allOf']) {
      if (!Array.isArray(s[comb])) continue;
      const label = { oneOf: 'Exactly one of:', anyOf: 'Any of:', allOf: 'All of:' }[comb];
      box.append(el('div', { class: 'hint', text: label }), el('ul', {}, s[comb].map((alt) => el('li', {},
        alt.$ref ? refLink(alt.$ref) : (alt.required && !alt.type && !alt.properties ? `has ${alt.required.join(', ')}` : schema(alt, depth + 1))))));
    }
    return box;
  }

  function section(id, title, ...children) {
    return el('section', { id }, el('h2', { text: title }), ...children);
  }

  function render(d) {
    doc = d;
    const info = d.info || {};
    const main = document.getElementById('doc');
    const toc = [];
    const parts = [];
    document.title = `${info.title || 'AsyncAPI'} ${info.version || ''}`.trim();

    parts.push(section('overview', `${info.title || 'AsyncAPI document'} ${info.version ? 'v' + info.version : ''}`,
      el('p', { class: 'hint' }, `AsyncAPI ${d.asyncapi || '?'}`, d.defaultContentType ? ` · default content type ${d.defaultContentType}` : '',
        info.license ? ` · license ${info.license.name}` : ''),
      text(info.description)));
    toc.push(['overview', 'Overview', []]);

    const servers = Object.entries(d.servers || {});
    if (servers.length) {
      parts.push(section('servers', 'Servers', servers.map(([name, s]) => el('div', { class: 'card', id: 'server-' + name },
        el('h3', {}, name), el('div', {}, el('code', { text: `${s.protocol}://${s.host}${s.pathname || ''}` })), text(s.description)))));
      toc.push(['servers', 'Servers', []]);
    }

    const channels = Object.entries(d.channels || {});
    if (channels.length) {
      parts.push(section('channels', 'Channels', channels.map(([name, c]) => el('div', { class: 'card', id: 'channel-' + name },
        el('h3', {}, c.title || name, ' ', el('code', { text: c.address || '' })), text(c.description),
        el('div', { class: 'hint' }, 'Messages: ', Object.entries(c.messages || {}).flatMap(([mname, m], i) => [i ? ', ' : '', m.$ref ? refLink(m.$ref, mname) : mname]))))));
      toc.push(['channels', 'Channels', []]);
    }

    const ops = Object.entries(d.operations || {});
    if (ops.length) {
      const rows = ops.map(([name, o]) => {
        const msgs = (o.messages || []).map((m) => (m.$ref ? refLink(m.$ref) : 'message'));
        const replies = ((o.reply && o.reply.messages) || []).map((m) => (m.$ref ? refLink(m.$ref) : 'message'));
        const join = (xs) => xs.flatMap((x, i) => [i ? ', ' : '', x]);
        return el('tr', { id: 'op-' + name, class: 'op' },
          el('td', {}, el('code', { text: name })),
          el('td', {}, el('span', { class: `dir dir-${o.action}`, text: o.action === 'send' ? 'client → server' : 'server → client' })),
          el('td', {}, o.summary || '', o.description ? text(o.description) : null),
          el('td', {}, join(msgs)),
          el('td', {}, replies.length ? join(replies) : '—'));
      });
      parts.push(section('operations', 'Operations',
        el('p', { class: 'hint', text: '“send” operations are frames the client sends (each answered by a reply with the same ref); “receive” operations are frames the server sends.' }),
        el('table', { class: 'ops' }, el('thead', {}, el('tr', {}, ['Operation', 'Direction', 'Summary', 'Message', 'Reply'].map((h) => el('th', { text: h })))), el('tbody', {}, rows))));
      toc.push(['operations', 'Operations', []]);
    }

    const messages = Object.entries((d.components && d.components.messages) || {});
    if (messages.length) {
      parts.push(section('messages', 'Messages', messages.map(([name, m]) => {
        const payload = m.payload || {};
        const target = deref(payload);
        return el('div', { class: 'card message', id: 'message-' + name },
          el('h3', {}, m.title || name, ' ', el('code', { text: name })),
          text(m.summary), text(m.description),
          m.correlationId ? el('div', { class: 'hint' }, 'Correlated by ', el('code', { text: (deref(m.correlationId) || {}).location || '' })) : null,
          el('div', { class: 'hint' }, 'Payload', payload.$ref ? [': ', refLink(payload.$ref)] : ''),
          schema(target, 0),
          (m.examples || []).map((ex) => el('div', { class: 'example' },
            el('div', { class: 'hint', text: `Example${ex.name ? ' “' + ex.name + '”' : ''}${ex.summary ? ': ' + ex.summary : ''}` }),
            el('pre', { text: JSON.stringify(ex.payload, null, 2) }))));
      })));
      toc.push(['messages', 'Messages', messages.map(([name, m]) => ['message-' + name, m.title || name])]);
    }

    const schemas = Object.entries((d.components && d.components.schemas) || {});
    if (schemas.length) {
      parts.push(section('schemas', 'Schemas', schemas.map(([name, s]) => el('div', { class: 'card', id: 'schema-' + name },
        el('h3', {}, el('code', { text: name })), schema(s, 0)))));
      toc.push(['schemas', 'Schemas', schemas.map(([name]) => ['schema-' + name, name])]);
    }

    main.replaceChildren(...parts);
    document.getElementById('toc').replaceChildren(el('ul', {}, toc.map(([id, label, kids]) => el('li', {},
      el('a', { href: '#' + id, text: label }),
      kids.length ? el('ul', {}, kids.map(([kid, kl]) => el('li', {}, el('a', { href: '#' + kid, text: kl })))) : null))));
    if (location.hash) {
      const target = document.getElementById(location.hash.slice(1));
      if (target) target.scrollIntoView();
    }
  }

  fetch('/asyncapi.json', { headers: { Accept: 'application/json' } })
    .then((r) => {
      if (!r.ok) throw new Error(`GET /asyncapi.json: ${r.status} ${r.statusText}`);
      return r.json();
    })
    .then(render)
    .catch((err) => {
      document.getElementById('doc').replaceChildren(el('p', { class: 'error-box', text: `Could not load the AsyncAPI document: ${err.message}` }),
        el('p', {}, 'The raw document is at ', el('a', { href: '/asyncapi.yaml', text: '/asyncapi.yaml' }), '.'));
    });
})();
