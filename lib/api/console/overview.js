// overview (#/): connection and readiness, counts, the last snapshot, and the
// sessions with gaps, newest first; refreshed every few seconds.

import {getJson} from './api.js';
import {refreshConnection} from './connection.js';
import {el, figure, notice, sessionLink, timeCell} from './dom.js';
import {fmtBytes, fmtCount, showTime} from './format.js';

const OVERVIEW_REFRESH_MS = 5000;

export async function overview(view) {
  const [stats, ready, sessions] = await Promise.all([
    refreshConnection(),
    getJson('/readyz', [200, 503]),
    getJson('/api/sessions'),
  ]);
  if (!view.current()) return;
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
  view.show(page);
  view.again(OVERVIEW_REFRESH_MS);
}
