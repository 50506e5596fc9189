// dom: the only way the console makes elements. Text from the stream (session
// ids, states, repo names) is hostile: it enters the page as text nodes and
// attribute values only, never as markup, and an id in a URL goes through
// encodeURIComponent.

import {showTime} from './format.js';

// DOM: text only

// el('td', {class: 'num', 'data-count': 3}, 'text', node, ...): children that
// are strings become text nodes. Attributes go through setAttribute, so a
// value is never parsed as markup; no caller passes style or on* attributes.
export function el(tag, attrs, ...children) {
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

export function append(node, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

export function sessionLink(id) {
  return el('a', {href: '#/session/' + encodeURIComponent(id), class: 'sid'}, id);
}

export function notice(kind, ...text) {
  return el('p', {class: 'notice ' + kind, role: kind === 'error' ? 'alert' : null}, ...text);
}

// A labelled figure of a card: "Deltas" over "1,204".
export function figure(label, value, attrs) {
  return el('div', Object.assign({class: 'figure'}, attrs || {}),
      el('span', {class: 'label'}, label), el('span', {class: 'value'}, value));
}

// A time in the browser's zone, with the stored UTC time as its tooltip.
export function timeCell(tag, stored) {
  return el(tag, {title: stored || null, class: 'time'}, showTime(stored));
}
