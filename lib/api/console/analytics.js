// analytics (#/analytics?since=30d&tz=ZONE&repo=R): the weekly 7x24 heatmap
// and a calendar heatmap (GET /api/analytics/heatmap), the duration histogram
// (durations) and approvals per day (approvals), drawn with Chart.js.

import {getJson} from './api.js';
import {refreshConnection} from './connection.js';
import {el, figure, notice} from './dom.js';
import {fmtCount, fmtMs, fmtRate, pad, showTime} from './format.js';

const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

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

function chart(view, canvas, config) {
  if (typeof Chart === 'undefined') return;
  const colours = palette();
  Chart.defaults.color = colours.muted;
  Chart.defaults.borderColor = colours.grid;
  config.options = Object.assign({animation: false, responsive: true, maintainAspectRatio: false}, config.options);
  view.keep(new Chart(canvas, config));
}

function durationsCard(view, d) {
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
      t.ended_without_outcome !== undefined ? figure('Ended without outcome', fmtCount(t.ended_without_outcome)) : null,
      figure('Span a gap', fmtCount(t.spanning_gaps)), figure('Inferred', fmtCount(t.inferred)),
      figure('To deletion', fmtCount(del.count)), figure('p50 to deletion', fmtMs(del.p50_ms))),
    outcomes.length ? el('div', {class: 'scroll'}, el('table', null,
      el('thead', null, el('tr', null, ['Outcome', 'Count', 'p50', 'p90', 'p99', 'max'].map((h, i) => el('th', {class: i ? 'num' : null}, h)))),
      el('tbody', null, outcomes.map(([name, o]) => el('tr', null, el('td', null, name),
        el('td', {class: 'num'}, fmtCount(o.count)), ['p50_ms', 'p90_ms', 'p99_ms', 'max_ms'].map((k) => el('td', {class: 'num'}, fmtMs(o[k])))))))) : null,
    t.spanning_gaps ? notice('info', t.spanning_gaps + ' of these durations span a gap: changes in between were not observed, so they are not to be trusted to the minute.') : null,
    el('div', {class: 'chart'}, canvas));
  const colours = palette();
  chart(view, canvas, {type: 'bar', data: {labels, datasets: [
    {label: 'created → succeeded/failed', data: t.histogram.map((b) => b.count), backgroundColor: colours.a},
    {label: 'created → deleted', data: t.histogram.map((b) => deletedBy.get(b.le_ms) || 0), backgroundColor: colours.b},
  ]}, options: {scales: {y: {beginAtZero: true, ticks: {precision: 0}}}}});
  return card;
}

function approvalsCard(view, a) {
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
  chart(view, canvas, {type: 'bar', data: {labels: days.map((d) => d.date), datasets: [
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

export async function analyticsPage(view, query) {
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
  view.show(page);
  const [durations, approvals, heatmap] = await Promise.all([
    getJson('/api/analytics/durations?' + analyticsQuery(p, false)),
    getJson('/api/analytics/approvals?' + analyticsQuery(p, true)),
    getJson('/api/analytics/heatmap?' + analyticsQuery(p, true)),
    refreshConnection().catch(() => null),
  ]);
  if (!view.current()) return;
  page.append(el('p', {class: 'muted'}, showTime(heatmap.since) + ' to ' + showTime(heatmap.until) +
      (heatmap.repo ? ', repo ' : ''), heatmap.repo ? el('strong', null, heatmap.repo) : null));
  const grid = el('div', {class: 'grid'});
  page.append(grid);
  grid.append(weeklyCard(heatmap), calendarCard(heatmap), durationsCard(view, durations), approvalsCard(view, approvals));
  page.setAttribute('data-loaded', 'true');
}
