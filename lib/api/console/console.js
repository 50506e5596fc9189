// deltatap web console (design.md, "Web console"; docs/console.md): the entry
// point, which routes by the URL's hash to one page module at a time:
//   #/              overview.js      #/session/ID    timeline.js
//   #/sessions      sessions.js      #/analytics?... analytics.js
// Everything shown comes from the daemon's JSON API (api.js). The page itself
// is served without a token; the API's token is asked for on the first 401.
//
// Plain ES modules, no build step: the daemon serves these files as they are
// in lib/api/console/, compiled into the binary (cmake/embed_assets.cmake),
// under a Content-Security-Policy that allows scripts from the daemon only.

import {analyticsPage} from './analytics.js';
import {ApiError} from './api.js';
import {clear, el, notice} from './dom.js';
import {overview} from './overview.js';
import {sessionsPage} from './sessions.js';
import {timelinePage} from './timeline.js';

const main = document.getElementById('main');
let generation = 0;  // bumped per route: answers that come late for an old page are dropped
let timer = null;
let charts = [];     // Chart.js instances of the current page, destroyed when it goes

// What a page module is given: whether it is still the page shown, where to
// show itself, and the two things the router cleans up when it goes.
function makeView(gen, render, args) {
  const view = {
    current: () => gen === generation,
    show(page) {
      if (gen !== generation) return;
      clear(main);
      main.appendChild(page);
    },
    keep(chart) { charts.push(chart); },
    // Renders the page again after `ms` (the overview's refresh), unless it went.
    again(ms) {
      timer = setTimeout(() => { if (gen === generation) run(view, render, args); }, ms);
    },
  };
  return view;
}

function reset() {
  generation++;
  if (timer) clearTimeout(timer);
  timer = null;
  for (const chart of charts) chart.destroy();
  charts = [];
  return generation;
}

async function run(view, render, args) {
  try {
    await render(view, ...args);
  } catch (e) {
    if (!view.current()) return;
    const page = el('div', {class: 'page', id: 'page-error'},
        notice('error', e instanceof ApiError || e instanceof SyntaxError ? e.message : 'The page failed: ' + e));
    if (e instanceof ApiError && e.status === 404 && String(e.message).includes('/api/analytics')) {
      page.appendChild(notice('info', 'This daemon has no analytics endpoints.'));
    }
    view.show(page);
  }
}

function start(render, ...args) {
  const view = makeView(reset(), render, args);
  view.show(el('p', {class: 'muted loading'}, 'Loading…'));
  return run(view, render, args);
}

function route() {
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path, rawQuery] = hash.split(/\?(.*)/s);
  const query = new URLSearchParams(rawQuery || '');
  let name = 'notfound';
  if (path === '/' || path === '') name = 'overview';
  else if (path === '/sessions') name = 'sessions';
  else if (path === '/analytics') name = 'analytics';
  else if (path.startsWith('/session/')) name = 'session';
  for (const link of document.querySelectorAll('nav a')) {
    const nav = link.getAttribute('data-nav');
    if (nav === name || (name === 'session' && nav === 'sessions')) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  document.body.setAttribute('data-page', name);
  if (name === 'overview') return start(overview);
  if (name === 'sessions') return start(sessionsPage);
  if (name === 'analytics') return start(analyticsPage, query);
  const view = makeView(reset(), null, []);
  if (name === 'session') {
    let id = null;
    try { id = decodeURIComponent(path.slice('/session/'.length)); } catch (e) { /* a bad escape */ }
    if (id) return start(timelinePage, id);
    return view.show(el('div', {class: 'page'}, notice('error', 'That link does not name a session.')));
  }
  view.show(el('div', {class: 'page'}, notice('error', 'No such page. '), el('a', {href: '#/'}, 'Overview')));
}

window.addEventListener('hashchange', route);
// Charts take their colours from the scheme: draw the page again when it changes.
window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', route);
route();
