// deltatap web console (design.md, "Web console"; docs/console.md).
//
// One page, routed by the URL's hash: #/ (overview), #/sessions,
// #/session/ID (a session's timeline) and #/analytics. Everything shown comes
// from the daemon's JSON API; the page itself is served without a token, and
// the API's token is asked for once, when a request answers 401, and kept in
// sessionStorage for this tab.
//
// Text from the stream (session ids, states, repo names) is hostile input: it
// only ever enters the page as text nodes (el() below, textContent) or
// attribute values (setAttribute), never as markup, and an id in a URL goes
// through encodeURIComponent. The Content-Security-Policy the daemon sends
// (no inline script, scripts from the daemon only) is the second wall.
'use strict';

(function () {
  const TOKEN_KEY = 'deltatap.token';
  const PAGE_ROWS = 200;          // sessions shown at once; "show more" adds as many
  const DELTA_PAGE = 1000;        // /api/deltas' largest page
  const OVERVIEW_REFRESH_MS = 5000;
  const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

  const main = document.getElementById('main');
  let generation = 0;             // bumped per route: late answers of an old page are dropped
  let charts = [];                // Chart.js instances of the current page
  let timer = null;

  // ---------------------------------------------------------------------------
  // DOM: text only

  // el('td', {class: 'num', 'data-count': 3}, 'text', node, ...): children that
  // are strings become text nodes. Attributes go through setAttribute, so a
  // value is never parsed as markup; no caller passes style or on* attributes.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    if (attrs) {
      for (const [name, value] of Object.entries(attrs)) {
        if (value === undefined || value === null || value === false) continue;
        node.setAttribute(name, value === true ? '' : String(value));
      }
    }
    append(node, children);
    return node;
  }

  function append(node, children) {
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function sessionLink(id) {
    return el('a', {href: '#/session/' + encodeURIComponent(id), class: 'sid'}, id);
  }

  function notice(kind, ...text) {
    return el('p', {class: 'notice ' + kind, role: kind === 'error' ? 'alert' : null}, ...text);
  }

  // ---------------------------------------------------------------------------
  // Formatting

  const pad = (n, w = 2) => String(n).padStart(w, '0');

  // A stored (UTC) time in the browser's zone, to the millisecond; the stored
  // text when it does not parse.
  function showTime(stored) {
    if (!stored) return '–';
    const t = new Date(stored);
    if (Number.isNaN(t.getTime())) return stored;
    return t.getFullYear() + '-' + pad(t.getMonth() + 1) + '-' + pad(t.getDate()) + ' ' +
        pad(t.getHours()) + ':' + pad(t.getMinutes()) + ':' + pad(t.getSeconds()) + '.' +
        pad(t.getMilliseconds(), 3);
  }

  function timeCell(tag, stored) {
    return el(tag, {title: stored || null, class: 'time'}, showTime(stored));
  }

  function fmtCount(n) {
    return n === null || n === undefined ? '–' : Number(n).toLocaleString('en');
  }

  function fmtBytes(n) {
    if (n === null || n === undefined) return '–';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let v = Number(n), u = 0;
    while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
    return (u ? v.toFixed(1) : String(v)) + ' ' + units[u];
  }

  function fmtMs(ms) {
    if (ms === null || ms === undefined) return '–';
    if (ms < 1000) return ms + ' ms';
    const s = ms / 1000;
    if (s < 60) return s.toFixed(1) + ' s';
    const m = Math.floor(s / 60);
    if (m < 60) return m + ' min ' + pad(Math.floor(s % 60)) + ' s';
    const h = Math.floor(m / 60);
    if (h < 24) return h + ' h ' + pad(m % 60) + ' min';
    return Math.floor(h / 24) + ' d ' + (h % 24) + ' h';
  }

  function fmtRate(rate) {
    return rate === null || rate === undefined ? '–' : (rate * 100).toFixed(1) + ' %';
  }

  // ---------------------------------------------------------------------------
  // The API: Bearer token asked for once, on the first 401

  class ApiError extends Error {
    constructor(status, body, path) {
      const detail = body && (body.detail || body.error);
      super((detail ? detail : 'HTTP ' + status) + ' (' + path + ')');
      this.status = status;
    }
  }

  let tokenPrompt = null;  // one prompt at a time, shared by every waiting request

  function askToken(refused) {
    if (tokenPrompt) return tokenPrompt;
    const dialog = document.getElementById('token-dialog');
    const form = document.getElementById('token-form');
    const input = document.getElementById('token-input');
    document.getElementById('token-reason').textContent = refused
      ? 'The daemon refused that token; enter the one in its [http] token.'
      : 'This daemon asks for its API token ([http] token).';
    tokenPrompt = new Promise((resolve) => {
      const done = (event) => {
        event.preventDefault();
        const token = input.value.trim();
        if (!token) return;
        form.removeEventListener('submit', done);
        sessionStorage.setItem(TOKEN_KEY, token);
        input.value = '';
        dialog.close();
        tokenPrompt = null;
        resolve(token);
      };
      form.addEventListener('submit', done);
      dialog.addEventListener('cancel', (event) => event.preventDefault(), {once: true});
      dialog.showModal();
      input.focus();
    });
    return tokenPrompt;
  }

  // GET `path` from the API; resolves to the Response once it is not a 401.
  async function request(path) {
    for (;;) {
      const token = sessionStorage.getItem(TOKEN_KEY);
      const headers = {Accept: 'application/json'};
      if (token) headers.Authorization = 'Bearer ' + token;
      const response = await fetch(path, {headers, cache: 'no-store', credentials: 'omit'});
      if (response.status !== 401) return response;
      if (token) sessionStorage.removeItem(TOKEN_KEY);
      await askToken(Boolean(token));
    }
  }

  async function failure(response, path) {
    let body = null;
    try { body = await response.json(); } catch (e) { /* not JSON */ }
    return new ApiError(response.status, body, path);
  }

  async function getJson(path, okStatuses = [200]) {
    const response = await request(path);
    if (!okStatuses.includes(response.status)) throw await failure(response, path);
    return response.json();
  }

  async function getText(path) {
    const response = await request(path);
    if (response.status !== 200) throw await failure(response, path);
    return response.text();
  }

  // ---------------------------------------------------------------------------
  // JSON with exact numbers: states keep every digit (a traceId of 2^53 + 1 must
  // not show as its neighbour), as the CLI's timeline does. Values become
  // {k:'object', m:[[key, value], ...]} (document order), {k:'array', items},
  // {k:'string', t}, {k:'number', t: digits as sent}, {k:'true'|'false'|'null'}.

  function parseExact(text) {
    let i = 0;
    const fail = (what) => { throw new SyntaxError('bad JSON at ' + i + ': ' + what); };
    const ws = () => { while (i < text.length && ' \t\n\r'.includes(text[i])) i++; };
    const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
    function str() {
      const start = i;
      i++;
      for (;;) {
        const c = text.charCodeAt(i);
        if (Number.isNaN(c)) fail('unterminated string');
        if (c === 34) break;
        i += c === 92 ? 2 : 1;
      }
      i++;
      return JSON.parse(text.slice(start, i));
    }
    function value(depth) {
      if (depth > 600) fail('too deep');
      ws();
      const c = text[i];
      if (c === '{') {
        i++;
        const m = [];
        ws();
        if (text[i] === '}') { i++; return {k: 'object', m}; }
        for (;;) {
          ws();
          if (text[i] !== '"') fail('key expected');
          const key = str();
          ws();
          if (text[i++] !== ':') fail(': expected');
          m.push([key, value(depth + 1)]);
          ws();
          if (text[i] === ',') { i++; continue; }
          if (text[i++] === '}') return {k: 'object', m};
          fail(', or } expected');
        }
      }
      if (c === '[') {
        i++;
        const items = [];
        ws();
        if (text[i] === ']') { i++; return {k: 'array', items}; }
        for (;;) {
          items.push(value(depth + 1));
          ws();
          if (text[i] === ',') { i++; continue; }
          if (text[i++] === ']') return {k: 'array', items};
          fail(', or ] expected');
        }
      }
      if (c === '"') return {k: 'string', t: str()};
      for (const word of ['true', 'false', 'null']) {
        if (text.startsWith(word, i)) { i += word.length; return {k: word}; }
      }
      NUMBER.lastIndex = i;
      const number = NUMBER.exec(text);
      if (!number) fail('value expected');
      i += number[0].length;
      return {k: 'number', t: number[0]};
    }
    const result = value(0);
    ws();
    if (i !== text.length) fail('trailing text');
    return result;
  }

  function member(node, key) {
    if (!node || node.k !== 'object') return undefined;
    const found = node.m.find(([name]) => name === key);
    return found ? found[1] : undefined;
  }

  // A scalar member as a plain value: string text, number as a JS number.
  function scalar(node, key) {
    const v = member(node, key);
    if (!v) return undefined;
    if (v.k === 'string') return v.t;
    if (v.k === 'number') return Number(v.t);
    if (v.k === 'true') return true;
    if (v.k === 'false') return false;
    return null;
  }

  // ---------------------------------------------------------------------------
  // Field-level changes, as lib/cli/state_diff.cc computes them

  function compact(node) {
    switch (node.k) {
      case 'string': return JSON.stringify(node.t);
      case 'number': return node.t;
      case 'object': return '{' + node.m.map(([k, v]) => JSON.stringify(k) + ':' + compact(v)).join(',') + '}';
      case 'array': return '[' + node.items.map(compact).join(',') + ']';
      default: return node.k;
    }
  }

  // A string bare unless it could be mistaken for something else.
  function showValue(node) {
    if (node.k === 'string') {
      const s = node.t;
      const plain = s !== '' && s[0] !== ' ' && s[s.length - 1] !== ' ' &&
          !['true', 'false', 'null'].includes(s) && !s.includes(' → ') &&
          !/[\u0000-\u001f"]/.test(s) &&
          !/^-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/.test(s) &&
          !/^-?(?:inf|infinity|nan)$/i.test(s);
      if (plain) return s;
    }
    return compact(node);
  }

  function pathJoin(path, key) {
    if (/^[A-Za-z_$-][A-Za-z0-9_$-]*$/.test(key)) return path ? path + '.' + key : key;
    return path + '[' + JSON.stringify(key) + ']';
  }

  function same(a, b) {
    if (a.k !== b.k) return false;
    if (a.k === 'object') {
      return a.m.length === b.m.length &&
          a.m.every(([key, value]) => { const o = member(b, key); return o && same(value, o); });
    }
    if (a.k === 'array') {
      return a.items.length === b.items.length && a.items.every((item, n) => same(item, b.items[n]));
    }
    return a.t === b.t;
  }

  function diff(path, a, b, out) {
    if (a.k === 'object' && b.k === 'object') {
      for (const [key, value] of a.m) {
        const other = member(b, key);
        if (!other) out.push({op: 'removed', path: pathJoin(path, key), before: value});
        else diff(pathJoin(path, key), value, other, out);
      }
      for (const [key, value] of b.m) {
        if (!member(a, key)) out.push({op: 'added', path: pathJoin(path, key), after: value});
      }
      return;
    }
    if (!same(a, b)) out.push({op: 'changed', path: path || '(state)', before: a, after: b});
  }

  function leaves(path, node, out) {
    if (node.k === 'object' && node.m.length) {
      for (const [key, value] of node.m) leaves(pathJoin(path, key), value, out);
      return;
    }
    out.push({op: 'added', path: path || '(state)', after: node});
  }

  function changesOf(delta) {
    const before = member(delta, 'before');
    const after = member(delta, 'after');
    const out = [];
    if (before && after) diff('', before, after, out);
    else if (after && scalar(delta, 'type') === 'created') leaves('', after, out);
    return out;
  }

  // ---------------------------------------------------------------------------
  // Connection pill (every page)

  async function refreshConnection() {
    const pill = document.getElementById('connection');
    try {
      const stats = await getJson('/api/stats');
      pill.className = 'pill ' + (stats.connected === true ? 'ok' : stats.connected === false ? 'bad' : '');
      pill.textContent = stats.connected === true ? 'connected'
          : stats.connected === false ? 'disconnected' : 'offline';
      return stats;
    } catch (e) {
      pill.className = 'pill bad';
      pill.textContent = 'no answer';
      throw e;
    }
  }

  // ---------------------------------------------------------------------------
  // Overview

  function figure(label, value, attrs) {
    return el('div', Object.assign({class: 'figure'}, attrs || {}),
        el('span', {class: 'label'}, label), el('span', {class: 'value'}, value));
  }

  async function overview(gen) {
    const [stats, ready, sessions] = await Promise.all([
      refreshConnection(),
      getJson('/readyz', [200, 503]),
      getJson('/api/sessions'),
    ]);
    if (gen !== generation) return;
    const rows = sessions.sessions;
    const live = rows.filter((s) => s.live).length;
    const gapped = rows.filter((s) => s.gaps > 0)
        .sort((a, b) => (a.lastSeen < b.lastSeen ? 1 : a.lastSeen > b.lastSeen ? -1 : 0));
    const inferred = rows.reduce((n, s) => n + s.inferred, 0);
    const gaps = rows.reduce((n, s) => n + s.gaps, 0);

    const page = el('div', {class: 'page', id: 'page-overview'});
    page.append(
      el('h1', null, 'Overview'),
      el('section', {class: 'card'},
        el('h2', null, 'Connection'),
        el('div', {class: 'figures'},
          figure('Stream', stats.connected === true ? 'connected' : stats.connected === false ? 'disconnected' : 'offline',
              {'data-connected': String(stats.connected)}),
          figure('Ready', ready.status),
          figure('Started', showTime(stats.startedAt)),
          figure('Stream URL', stats.streamUrl || '–')),
        ready.reasons && ready.reasons.length
          ? el('ul', {class: 'reasons'}, ready.reasons.map((r) => el('li', null, r))) : null),
      el('section', {class: 'card'},
        el('h2', null, 'Counts'),
        el('div', {class: 'figures'},
          figure('Deltas', fmtCount(stats.deltaCount), {id: 'count-deltas'}),
          figure('Sessions', fmtCount(stats.sessionCount), {id: 'count-sessions'}),
          figure('Live sessions', fmtCount(live), {id: 'count-live'}),
          figure('Gaps', fmtCount(gaps)),
          figure('Inferred deltas', fmtCount(inferred)),
          figure('Quarantined', fmtCount(stats.rejectedCount)),
          figure('Oldest', showTime(stats.oldest)),
          figure('Newest', showTime(stats.newest)),
          figure('Memory', fmtBytes(stats.memoryBytes)))),
      el('section', {class: 'card'},
        el('h2', null, 'Last snapshot'),
        el('div', {class: 'figures'},
          figure('Storage', stats.enabled ? 'on' : 'off'),
          figure('Written', showTime(stats.lastSnapshotAt), {id: 'last-snapshot'}),
          figure('File', fmtBytes(stats.fileSize)),
          figure('Journal', fmtBytes(stats.journalBytes))),
        stats.lastSnapshotError ? notice('error', 'Last snapshot failed: ', stats.lastSnapshotError) : null),
      el('section', {class: 'card'},
        el('h2', null, 'Recent gaps'),
        gapped.length === 0
          ? el('p', {class: 'muted'}, 'No session has a gap: every change was observed.')
          : el('div', {class: 'scroll'}, el('table', {id: 'recent-gaps'},
              el('thead', null, el('tr', null, el('th', null, 'Session'), el('th', {class: 'num'}, 'Gaps'),
                el('th', {class: 'num'}, 'Inferred'), el('th', null, 'Last seen'))),
              el('tbody', null, gapped.slice(0, 10).map((s) => el('tr', null,
                el('td', null, sessionLink(s.sessionId)), el('td', {class: 'num'}, fmtCount(s.gaps)),
                el('td', {class: 'num'}, fmtCount(s.inferred)), timeCell('td', s.lastSeen))))))));
    show(page);
    timer = setTimeout(() => { if (gen === generation) run(overview, gen, false); }, OVERVIEW_REFRESH_MS);
  }

  // ---------------------------------------------------------------------------
  // Sessions

  const sessionView = {q: '', filter: 'all', sort: 'lastSeen', shown: PAGE_ROWS};

  function stateOf(s) {
    const st = s.lastState && typeof s.lastState === 'object' ? s.lastState : {};
    const approval = st.approval && typeof st.approval === 'object' ? st.approval.state : st.approval;
    return {
      repo: typeof st.repo === 'string' ? st.repo : '',
      plan: typeof st.planStatus === 'string' ? st.planStatus : '',
      approval: typeof approval === 'string' ? approval : '',
    };
  }

  const SORTS = {
    lastSeen: (a, b) => cmp(b.lastSeen, a.lastSeen),
    firstSeen: (a, b) => cmp(b.firstSeen, a.firstSeen),
    id: (a, b) => cmp(a.sessionId, b.sessionId),
    deltas: (a, b) => total(b) - total(a),
    gaps: (a, b) => b.gaps - a.gaps || cmp(b.lastSeen, a.lastSeen),
  };
  function cmp(a, b) { return a < b ? -1 : a > b ? 1 : 0; }
  function total(s) { return s.created + s.updated + s.deleted; }

  async function sessionsPage(gen) {
    const [answer] = await Promise.all([getJson('/api/sessions'), refreshConnection()]);
    if (gen !== generation) return;
    const all = answer.sessions.map((s) => Object.assign({}, s, stateOf(s)));
    const body = el('tbody');
    const count = el('p', {class: 'muted', id: 'sessions-count'});
    const more = el('button', {type: 'button', class: 'more'}, 'Show more');

    const search = el('input', {type: 'search', id: 'session-search', placeholder: 'Search id, repo, state',
      'aria-label': 'Search sessions', value: sessionView.q});
    const filter = el('select', {id: 'session-filter', 'aria-label': 'Live or ended'},
        ['all', 'live', 'ended'].map((v) => el('option', {value: v, selected: v === sessionView.filter}, v)));
    const sort = el('select', {id: 'session-sort', 'aria-label': 'Sort by'},
        [['lastSeen', 'last seen'], ['firstSeen', 'first seen'], ['id', 'id'], ['deltas', 'deltas'], ['gaps', 'gaps']]
            .map(([v, label]) => el('option', {value: v, selected: v === sessionView.sort}, 'sort: ' + label)));

    function render() {
      const q = sessionView.q.toLowerCase();
      const rows = all.filter((s) =>
        (sessionView.filter === 'all' || (sessionView.filter === 'live') === s.live) &&
        (!q || s.sessionId.toLowerCase().includes(q) || s.repo.toLowerCase().includes(q) ||
            s.plan.toLowerCase().includes(q) || s.approval.toLowerCase().includes(q)));
      rows.sort(SORTS[sessionView.sort]);
      clear(body);
      for (const s of rows.slice(0, sessionView.shown)) {
        body.appendChild(el('tr', {'data-session': s.sessionId},
          el('td', {class: 'session'}, sessionLink(s.sessionId)),
          el('td', {class: 'wide'}, s.repo || '–'),
          el('td', {'data-label': 'plan'}, s.plan || '–'),
          el('td', {class: 'wide'}, s.approval || '–'),
          el('td', {class: 'num', 'data-label': 'deltas'}, fmtCount(total(s))),
          el('td', {class: 'num' + (s.gaps ? ' warn' : ''), 'data-label': 'gaps'}, fmtCount(s.gaps)),
          el('td', {class: 'num wide'}, fmtCount(s.inferred)),
          el('td', {class: 'time', title: s.lastSeen, 'data-label': 'last seen'}, showTime(s.lastSeen)),
          el('td', null, el('span', {class: 'pill ' + (s.live ? 'ok' : '')}, s.live ? 'live' : 'ended'))));
      }
      count.textContent = rows.length === all.length
        ? fmtCount(all.length) + ' sessions'
        : fmtCount(rows.length) + ' of ' + fmtCount(all.length) + ' sessions';
      more.hidden = rows.length <= sessionView.shown;
    }
    search.addEventListener('input', () => { sessionView.q = search.value; sessionView.shown = PAGE_ROWS; render(); });
    filter.addEventListener('change', () => { sessionView.filter = filter.value; render(); });
    sort.addEventListener('change', () => { sessionView.sort = sort.value; render(); });
    more.addEventListener('click', () => { sessionView.shown += PAGE_ROWS; render(); });

    const page = el('div', {class: 'page', id: 'page-sessions'},
      el('h1', null, 'Sessions'),
      el('div', {class: 'controls'}, search, filter, sort),
      count,
      el('div', {class: 'scroll'}, el('table', {id: 'sessions-table'},
        el('thead', null, el('tr', null, el('th', null, 'Session'), el('th', {class: 'wide'}, 'Repo'),
          el('th', null, 'Plan'), el('th', {class: 'wide'}, 'Approval'), el('th', {class: 'num'}, 'Deltas'),
          el('th', {class: 'num'}, 'Gaps'), el('th', {class: 'num wide'}, 'Inferred'), el('th', null, 'Last seen'),
          el('th', null, ''))),
        body)),
      more);
    render();
    show(page);
  }

  // ---------------------------------------------------------------------------
  // A session's timeline, as `deltatap timeline` tells it

  const INFERRED = {
    resync: 'inferred: re-announced after a backend restart',
    reconcile: 'inferred: reconciled with the backend\'s live sessions',
  };

  async function fetchHistory(id, gen) {
    const deltas = [];
    let cursor = null;
    do {
      let path = '/api/deltas/' + encodeURIComponent(id) + '?limit=' + DELTA_PAGE;
      if (cursor) path += '&before=' + encodeURIComponent(cursor);
      const page = parseExact(await getText(path));
      if (gen !== generation) return null;
      deltas.push(...member(page, 'deltas').items);
      const next = member(page, 'next');
      cursor = next && next.k === 'string' ? next.t : null;
    } while (cursor);
    // Arrival order (the ids) is the order it happened; times never reorder it.
    deltas.sort((a, b) => scalar(a, 'id') - scalar(b, 'id'));
    return deltas;
  }

  function changeItem(change) {
    const value = (node) => el('span', {class: 'value'}, showValue(node));
    if (change.op === 'changed') {
      return el('li', {class: 'change', 'data-path': change.path},
          el('span', {class: 'path'}, change.path), ': ', value(change.before), ' → ', value(change.after));
    }
    const added = change.op === 'added';
    return el('li', {class: 'change ' + change.op, 'data-path': change.path},
        el('span', {class: 'path'}, (added ? '+ ' : '- ') + change.path), ': ',
        value(added ? change.after : change.before));
  }

  async function timelinePage(gen, id) {
    const deltas = await fetchHistory(id, gen);
    if (deltas === null) return;
    refreshConnection().catch(() => {});
    const page = el('div', {class: 'page', id: 'page-timeline'});
    page.append(el('p', {class: 'crumbs'}, el('a', {href: '#/sessions'}, '← Sessions')),
        el('h1', {class: 'session-title'}, 'Session ', el('span', {class: 'sid', id: 'session-id'}, id)));
    if (deltas.length === 0) {
      page.append(notice('info', 'No deltas stored for this session.'));
      return show(page);
    }
    const gaps = deltas.filter((d) => scalar(d, 'gap') === true).length;
    const inferred = deltas.filter((d) => scalar(d, 'origin') !== 'stream').length;
    const first = scalar(deltas[0], 'timestamp'), last = scalar(deltas[deltas.length - 1], 'timestamp');
    page.append(el('p', {class: 'summary'},
        deltas.length + (deltas.length === 1 ? ' delta, ' : ' deltas, ') + showTime(first) + ' to ' + showTime(last),
        gaps ? el('span', {class: 'tag gap'}, gaps + (gaps === 1 ? ' gap' : ' gaps')) : null,
        inferred ? el('span', {class: 'tag inferred'}, inferred + ' inferred') : null));

    const list = el('ol', {class: 'timeline', id: 'timeline'});
    let previous = null;
    for (const delta of deltas) {
      const type = scalar(delta, 'type');
      const origin = scalar(delta, 'origin') || 'stream';
      const time = scalar(delta, 'timestamp');
      if (scalar(delta, 'gap') === true) {
        list.appendChild(el('li', {class: 'gap-marker', role: 'note'}, previous
          ? 'changes between ' + showTime(scalar(previous, 'timestamp')) + ' and ' + showTime(time) + ' were not observed'
          : 'changes before ' + showTime(time) + ' were not observed'));
      }
      const backwards = previous && new Date(time) < new Date(scalar(previous, 'timestamp'));
      const head = el('div', {class: 'step-head'},
          timeCell('span', time), el('span', {class: 'type ' + type}, type),
          el('span', {class: 'id muted'}, '#' + scalar(delta, 'id')),
          backwards ? el('span', {class: 'tag backwards'}, 'timestamp earlier than the previous step') : null,
          INFERRED[origin] ? el('span', {class: 'tag inferred'}, INFERRED[origin]) : null);
      let body;
      if (type === 'deleted') {
        body = el('p', {class: 'muted'}, '(session deleted)');
      } else {
        const changes = changesOf(delta);
        const items = el('ul', {class: 'changes'}, changes.map(changeItem));
        if (changes.length === 0) body = el('p', {class: 'muted'}, '(no field changed)');
        else if (type === 'created') body = el('details', null, el('summary', null, changes.length + ' fields (its first state)'), items);
        else body = items;
      }
      list.appendChild(el('li', {class: 'step' + (origin !== 'stream' ? ' is-inferred' : ''),
        'data-id': scalar(delta, 'id'), 'data-origin': origin, 'data-gap': String(scalar(delta, 'gap') === true)},
      head, body));
      previous = delta;
    }
    page.append(list);
    show(page);
  }

  // ---------------------------------------------------------------------------
  // Analytics

  function readAnalyticsParams(query) {
    const localZone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
    return {
      since: query.get('since') || '30d',
      repo: query.get('repo') || '',
      tz: query.get('tz') || localZone,
      localZone,
    };
  }

  function analyticsQuery(p, withTz) {
    const q = new URLSearchParams({since: p.since});
    if (p.repo) q.set('repo', p.repo);
    if (withTz) q.set('tz', p.tz);
    return q.toString();
  }

  function palette() {
    const css = getComputedStyle(document.documentElement);
    const v = (name) => css.getPropertyValue(name).trim();
    return {text: v('--text'), muted: v('--muted'), grid: v('--grid'), a: v('--chart-a'), b: v('--chart-b'),
      c: v('--chart-c')};
  }

  function chart(canvas, config) {
    if (typeof Chart === 'undefined') return;
    const colours = palette();
    Chart.defaults.color = colours.muted;
    Chart.defaults.borderColor = colours.grid;
    config.options = Object.assign({animation: false, responsive: true, maintainAspectRatio: false}, config.options);
    charts.push(new Chart(canvas, config));
  }

  function durationsCard(d) {
    const t = d.to_terminal, del = d.to_deleted;
    const labelOf = (b, i, all) => (b.le_ms === null ? '> ' + fmtMs(all[i - 1] ? all[i - 1].le_ms : 0) : '≤ ' + fmtMs(b.le_ms));
    const labels = t.histogram.map(labelOf);
    const deletedBy = new Map(del.histogram.map((b) => [b.le_ms, b.count]));
    const canvas = el('canvas', {id: 'durations-chart', 'aria-label': 'Histogram of session durations', role: 'img'});
    const outcomes = Object.entries(t.by_outcome || {});
    const card = el('section', {class: 'card', id: 'durations'},
      el('h2', null, 'How long sessions take'),
      el('div', {class: 'figures'},
        figure('To a terminal plan', fmtCount(t.count)),
        figure('p50', fmtMs(t.p50_ms)), figure('p90', fmtMs(t.p90_ms)), figure('p99', fmtMs(t.p99_ms)),
        figure('max', fmtMs(t.max_ms)), figure('Still open', fmtCount(t.open)),
        figure('Span a gap', fmtCount(t.spanning_gaps)), figure('Inferred', fmtCount(t.inferred)),
        figure('To deletion', fmtCount(del.count)), figure('p50 to deletion', fmtMs(del.p50_ms))),
      outcomes.length ? el('div', {class: 'scroll'}, el('table', null,
        el('thead', null, el('tr', null, ['Outcome', 'Count', 'p50', 'p90', 'p99', 'max'].map((h, i) => el('th', {class: i ? 'num' : null}, h)))),
        el('tbody', null, outcomes.map(([name, o]) => el('tr', null, el('td', null, name),
          el('td', {class: 'num'}, fmtCount(o.count)), ['p50_ms', 'p90_ms', 'p99_ms', 'max_ms'].map((k) => el('td', {class: 'num'}, fmtMs(o[k])))))))) : null,
      t.spanning_gaps ? notice('info', t.spanning_gaps + ' of these durations span a gap: changes in between were not observed, so they are not to be trusted to the minute.') : null,
      el('div', {class: 'chart'}, canvas));
    const colours = palette();
    chart(canvas, {type: 'bar', data: {labels, datasets: [
      {label: 'created → succeeded/failed', data: t.histogram.map((b) => b.count), backgroundColor: colours.a},
      {label: 'created → deleted', data: t.histogram.map((b) => deletedBy.get(b.le_ms) || 0), backgroundColor: colours.b},
    ]}, options: {scales: {y: {beginAtZero: true, ticks: {precision: 0}}}}});
    return card;
  }

  function approvalsCard(a) {
    const canvas = el('canvas', {id: 'approvals-chart', 'aria-label': 'Approvals per day', role: 'img'});
    const card = el('section', {class: 'card', id: 'approvals'},
      el('h2', null, 'Approvals'),
      el('div', {class: 'figures'},
        figure('Approved', fmtCount(a.approved)), figure('Rejected', fmtCount(a.rejected)),
        figure('Pending', fmtCount(a.pending)), figure('Approval rate', fmtRate(a.rate), {id: 'approval-rate'}),
        figure('Decision p50', fmtMs(a.time_to_decision && a.time_to_decision.p50_ms)),
        figure('Decision p90', fmtMs(a.time_to_decision && a.time_to_decision.p90_ms)),
        figure('Inferred', fmtCount(a.inferred))),
      el('div', {class: 'chart'}, canvas));
    const colours = palette();
    const days = a.per_day || [];
    chart(canvas, {type: 'bar', data: {labels: days.map((d) => d.date), datasets: [
      {label: 'approved', data: days.map((d) => d.approved), backgroundColor: colours.a, stack: 'n', yAxisID: 'y'},
      {label: 'rejected', data: days.map((d) => d.rejected), backgroundColor: colours.b, stack: 'n', yAxisID: 'y'},
      {label: 'approval rate', type: 'line', yAxisID: 'rate', borderColor: colours.c, backgroundColor: colours.c,
        data: days.map((d) => (d.approved + d.rejected ? (100 * d.approved) / (d.approved + d.rejected) : null)),
        spanGaps: true},
    ]}, options: {scales: {y: {beginAtZero: true, stacked: true, ticks: {precision: 0}},
      rate: {position: 'right', min: 0, max: 100, grid: {drawOnChartArea: false}, ticks: {callback: (v) => v + ' %'}}}}});
    return card;
  }

  // Shade 0..4 of a count against the largest: classes, not inline styles
  // (the Content-Security-Policy allows no style attributes).
  // On a log scale: one busy hour must not wash every other cell out.
  function level(count, max) {
    if (count <= 0 || max <= 0) return 0;
    return Math.min(4, 1 + Math.floor((3 * Math.log1p(count)) / Math.log1p(max)));
  }

  function weeklyCard(h) {
    const max = Math.max(0, ...h.weekly.flat());
    const grid = el('div', {class: 'heatmap weekly', id: 'heatmap-weekly', role: 'table',
      'data-total': h.total, 'aria-label': 'Deltas by day of week and hour (' + h.tz + ')'});
    grid.appendChild(el('span', {class: 'corner'}));
    for (let hour = 0; hour < 24; hour++) grid.appendChild(el('span', {class: 'hour'}, hour % 3 === 0 ? String(hour) : ''));
    h.weekly.forEach((row, day) => {
      grid.appendChild(el('span', {class: 'day'}, DAYS[day]));
      row.forEach((count, hour) => grid.appendChild(el('span', {
        class: 'cell l' + level(count, max), 'data-count': count, 'data-day': day, 'data-hour': hour,
        title: DAYS[day] + ' ' + pad(hour) + ':00–' + pad(hour) + ':59: ' + fmtCount(count) + ' deltas'})));
    });
    return el('section', {class: 'card', id: 'weekly'},
      el('h2', null, 'When the team is busy'),
      el('p', {class: 'muted'}, fmtCount(h.total) + ' deltas, hours in ' + h.tz +
        (h.inferred ? '; ' + fmtCount(h.inferred) + ' of them inferred' : '')),
      el('div', {class: 'scroll'}, grid), legend(max));
  }

  function legend(max) {
    return el('p', {class: 'legend muted'}, 'fewer ', [0, 1, 2, 3, 4].map((l) => el('span', {class: 'cell l' + l})),
        ' more (max ' + fmtCount(max) + ')');
  }

  function calendarCard(h) {
    const days = h.days || [];
    const max = Math.max(0, ...days.map((d) => d.deltas));
    const grid = el('div', {class: 'heatmap calendar', id: 'heatmap-calendar'});
    if (days.length) {
      // Columns are weeks (Monday first), rows weekdays; dates are the API's
      // local calendar days, read as plain dates (no zone arithmetic here).
      const dayOfWeek = (date) => (new Date(date + 'T00:00:00Z').getUTCDay() + 6) % 7;
      const offset = dayOfWeek(days[0].date);
      let column = null;
      days.forEach((d, n) => {
        const slot = n + offset;
        if (!column || slot % 7 === 0) {
          column = el('div', {class: 'week'});
          if (n === 0) for (let k = 0; k < offset; k++) column.appendChild(el('span', {class: 'cell blank'}));
          grid.appendChild(column);
        }
        column.appendChild(el('span', {class: 'cell l' + level(d.deltas, max), 'data-date': d.date,
          'data-count': d.deltas, title: d.date + ': ' + fmtCount(d.deltas) + ' deltas'}));
      });
    }
    return el('section', {class: 'card', id: 'calendar'},
      el('h2', null, 'Day by day'),
      el('p', {class: 'muted'}, days.length ? days[0].date + ' to ' + days[days.length - 1].date + ' (' + h.tz + ')' : 'no days'),
      el('div', {class: 'scroll'}, grid), legend(max));
  }

  async function analyticsPage(gen, query) {
    const p = readAnalyticsParams(query);
    const since = el('select', {id: 'analytics-since', 'aria-label': 'Window'},
        ['1d', '7d', '30d', '90d', '365d'].map((v) => el('option', {value: v, selected: v === p.since}, 'last ' + v)));
    if (![...since.options].some((o) => o.selected)) since.appendChild(el('option', {value: p.since, selected: true}, 'since ' + p.since));
    const repo = el('input', {type: 'search', id: 'analytics-repo', placeholder: 'repo (all)', 'aria-label': 'Repository', value: p.repo});
    const zones = [...new Set(['UTC', p.localZone, p.tz])];
    const tz = el('select', {id: 'analytics-tz', 'aria-label': 'Time zone'}, zones.map((z) => el('option', {value: z, selected: z === p.tz}, z)));
    const go = () => {
      const next = {since: since.value, repo: repo.value.trim(), tz: tz.value};
      location.hash = '#/analytics?' + analyticsQuery(next, true);
    };
    since.addEventListener('change', go);
    tz.addEventListener('change', go);
    repo.addEventListener('change', go);

    const page = el('div', {class: 'page', id: 'page-analytics'},
      el('h1', null, 'Analytics'), el('div', {class: 'controls'}, since, repo, tz));
    show(page);
    const [durations, approvals, heatmap] = await Promise.all([
      getJson('/api/analytics/durations?' + analyticsQuery(p, false)),
      getJson('/api/analytics/approvals?' + analyticsQuery(p, false)),
      getJson('/api/analytics/heatmap?' + analyticsQuery(p, true)),
      refreshConnection().catch(() => null),
    ]);
    if (gen !== generation) return;
    page.append(el('p', {class: 'muted'}, showTime(heatmap.since) + ' to ' + showTime(heatmap.until) +
        (heatmap.repo ? ', repo ' : ''), heatmap.repo ? el('strong', null, heatmap.repo) : null));
    const grid = el('div', {class: 'grid'});
    page.append(grid);
    grid.append(weeklyCard(heatmap), calendarCard(heatmap), durationsCard(durations), approvalsCard(approvals));
    page.setAttribute('data-loaded', 'true');
  }

  // ---------------------------------------------------------------------------
  // Routing

  function show(page) {
    clear(main);
    main.appendChild(page);
  }

  function reset() {
    generation++;
    if (timer) clearTimeout(timer);
    timer = null;
    for (const c of charts) c.destroy();
    charts = [];
    return generation;
  }

  async function run(render, gen, showLoading, ...args) {
    if (showLoading) show(el('p', {class: 'muted loading'}, 'Loading…'));
    try {
      await render(gen, ...args);
    } catch (e) {
      if (gen !== generation) return;
      const page = el('div', {class: 'page', id: 'page-error'},
          notice('error', e instanceof ApiError || e instanceof SyntaxError ? e.message : 'The page failed: ' + e));
      if (e instanceof ApiError && e.status === 404 && String(e.message).includes('/api/analytics')) {
        page.appendChild(notice('info', 'This daemon has no analytics endpoints.'));
      }
      show(page);
    }
  }

  function route() {
    const gen = reset();
    const hash = location.hash.replace(/^#/, '') || '/';
    const [path, rawQuery] = hash.split(/\?(.*)/s);
    const query = new URLSearchParams(rawQuery || '');
    let name = 'notfound';
    if (path === '/' || path === '') name = 'overview';
    else if (path === '/sessions') name = 'sessions';
    else if (path === '/analytics') name = 'analytics';
    else if (path.startsWith('/session/')) name = 'session';
    for (const link of document.querySelectorAll('nav a')) {
      const on = link.getAttribute('data-nav') === name || (name === 'session' && link.getAttribute('data-nav') === 'sessions');
      if (on) link.setAttribute('aria-current', 'page'); else link.removeAttribute('aria-current');
    }
    document.body.setAttribute('data-page', name);
    if (name === 'overview') return run(overview, gen, true);
    if (name === 'sessions') return run(sessionsPage, gen, true);
    if (name === 'analytics') return run(analyticsPage, gen, true, query);
    if (name === 'session') {
      let id;
      try { id = decodeURIComponent(path.slice('/session/'.length)); } catch (e) { id = null; }
      if (!id) return show(notice('error', 'That link does not name a session.'));
      return run(timelinePage, gen, true, id);
    }
    show(el('div', {class: 'page'}, notice('error', 'No such page. '), el('a', {href: '#/'}, 'Overview')));
  }

  window.addEventListener('hashchange', route);
  // Charts take their colours from the scheme: redraw the page when it changes.
  window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', route);
  route();
})();
