// sessions (#/sessions): every session of the ledger (GET /api/sessions), with
// search, a live/ended filter and sorting, shown PAGE_ROWS at a time.

import {getJson} from './api.js';
import {refreshConnection} from './connection.js';
import {clear, el, sessionLink} from './dom.js';
import {fmtCount, showTime} from './format.js';

const PAGE_ROWS = 200;

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

export async function sessionsPage(view) {
  const [answer] = await Promise.all([getJson('/api/sessions'), refreshConnection()]);
  if (!view.current()) return;
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
  view.show(page);
}
