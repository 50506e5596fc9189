// format: numbers, sizes, durations and times as the console shows them.
// Pure functions.

export const pad = (n, w = 2) => String(n).padStart(w, '0');

// A stored (UTC) time in the browser's zone, to the millisecond; the stored
// text when it does not parse.
export function showTime(stored) {
  if (!stored) return '–';
  const t = new Date(stored);
  if (Number.isNaN(t.getTime())) return stored;
  return t.getFullYear() + '-' + pad(t.getMonth() + 1) + '-' + pad(t.getDate()) + ' ' +
      pad(t.getHours()) + ':' + pad(t.getMinutes()) + ':' + pad(t.getSeconds()) + '.' +
      pad(t.getMilliseconds(), 3);
}

export function fmtCount(n) {
  return n === null || n === undefined ? '–' : Number(n).toLocaleString('en');
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = Number(n), u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return (u ? v.toFixed(1) : String(v)) + ' ' + units[u];
}

export function fmtMs(ms) {
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

export function fmtRate(rate) {
  return rate === null || rate === undefined ? '–' : (rate * 100).toFixed(1) + ' %';
}
