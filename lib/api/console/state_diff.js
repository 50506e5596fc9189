// state_diff: what a delta changed, field by field, computed as
// lib/cli/state_diff.cc does (objects key by key into nested paths, anything
// else as a whole value), on JSON read with exact numbers.
// Pure functions.

// JSON with exact numbers: states keep every digit (a traceId of 2^53 + 1 must
// not show as its neighbour), as the CLI's timeline does. Values become
// {k:'object', m:[[key, value], ...]} (document order), {k:'array', items},
// {k:'string', t}, {k:'number', t: digits as sent}, {k:'true'|'false'|'null'}.

export function parseExact(text) {
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

export function member(node, key) {
  if (!node || node.k !== 'object') return undefined;
  const found = node.m.find(([name]) => name === key);
  return found ? found[1] : undefined;
}

// A scalar member as a plain value: string text, number as a JS number.
export function scalar(node, key) {
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
export function showValue(node) {
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

export function changesOf(delta) {
  const before = member(delta, 'before');
  const after = member(delta, 'after');
  const out = [];
  if (before && after) diff('', before, after, out);
  else if (after && scalar(delta, 'type') === 'created') leaves('', after, out);
  return out;
}
