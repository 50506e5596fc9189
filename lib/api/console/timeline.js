// timeline (#/session/ID): one session's history as `deltatap timeline` tells
// it: in arrival order (the ids), field by field, with gaps and inferred steps
// marked and a time that runs backwards said so.

import {getText} from './api.js';
import {refreshConnection} from './connection.js';
import {el, notice, timeCell} from './dom.js';
import {showTime} from './format.js';
import {changesOf, member, parseExact, scalar, showValue} from './state_diff.js';

const DELTA_PAGE = 1000;  // /api/deltas' largest page

// A session's timeline, as `deltatap timeline` tells it

const INFERRED = {
  resync: 'inferred: re-announced after a backend restart',
  reconcile: 'inferred: reconciled with the backend\'s live sessions',
};

async function fetchHistory(view, id) {
  const deltas = [];
  let cursor = null;
  do {
    let path = '/api/deltas/' + encodeURIComponent(id) + '?limit=' + DELTA_PAGE;
    if (cursor) path += '&before=' + encodeURIComponent(cursor);
    const page = parseExact(await getText(path));
    if (!view.current()) return null;
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

export async function timelinePage(view, id) {
  const deltas = await fetchHistory(view, id);
  if (deltas === null) return;
  refreshConnection().catch(() => {});
  const page = el('div', {class: 'page', id: 'page-timeline'});
  page.append(el('p', {class: 'crumbs'}, el('a', {href: '#/sessions'}, '← Sessions')),
      el('h1', {class: 'session-title'}, 'Session ', el('span', {class: 'sid', id: 'session-id'}, id)));
  if (deltas.length === 0) {
    page.append(notice('info', 'No deltas stored for this session.'));
    return view.show(page);
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
  view.show(page);
}
