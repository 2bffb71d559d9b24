// SPDX-License-Identifier: MIT
// The UI's pure helpers (no DOM): value formatting by unit, the time forms of docs/api.md,
// and selectors ({name op "value", ...}) parsed and written back. tests/web/units.mjs tests them
// in node.

export function fmtNum(v) {
	if (!isFinite(v)) return String(v);
	const a = Math.abs(v);
	if (a >= 1e9) return (v / 1e9).toFixed(2) + ' G';
	if (a >= 1e7) return (v / 1e6).toFixed(2) + ' M';
	return Math.round(v).toLocaleString('en-US');
}

export function fmtDur(ns) {
	const a = Math.abs(ns);
	if (a < 1e3) return `${Math.round(ns)} ns`;
	if (a < 1e6) return `${(ns / 1e3).toFixed(1)} µs`;
	if (a < 1e9) return `${(ns / 1e6).toFixed(1)} ms`;
	if (a < 120e9) return `${(ns / 1e9).toFixed(2)} s`;
	if (a < 7200e9) return `${(ns / 60e9).toFixed(1)} min`;
	return `${(ns / 3600e9).toFixed(1)} h`;
}

export function fmtBytes(b) {
	const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
	let i = 0;
	while (Math.abs(b) >= 1024 && i < u.length - 1) { b /= 1024; i++; }
	return `${i ? b.toFixed(1) : Math.round(b)} ${u[i]}`;
}

export function formatter(unit) {
	switch (unit) {
	case 'nanoseconds': return fmtDur;
	case 'bytes': return fmtBytes;
	case 'count': case 'samples': case '': case undefined: return fmtNum;
	default: return (v) => `${fmtNum(v)} ${unit}`;
	}
}

// `from`/`until` as the aggregator reads them (docs/api.md, "Time"), to milliseconds; NaN if
// unreadable (the server then says why).
export function parseTime(s, now = Date.now()) {
	s = String(s ?? '').trim();
	if (s === '' || s === 'now') return now;
	let m = s.match(/^now-(\d+(?:\.\d+)?)(s|m|h|d)$/);
	if (m) return now - parseFloat(m[1]) * { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[m[2]];
	if (/^\d+$/.test(s)) {
		const n = Number(s);
		if (s.length <= 11) return n * 1e3;
		if (s.length <= 14) return n;
		if (s.length <= 17) return n / 1e3;
		return n / 1e6;
	}
	return Date.parse(s);
}

export function niceStep(spanSec) {
	const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
		43200, 86400];
	const want = spanSec / 240;
	return steps.find((s) => s >= want) || 86400;
}

// {name op "value", ...} -> [{name, op, value}], [] for an empty query, null if unreadable.
export function parseSelector(s) {
	s = String(s || '').trim();
	if (!s) return [];
	const m = s.match(/^\{([\s\S]*)\}$/);
	if (!m) return null;
	const body = m[1], out = [];
	const re = /\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)/y;
	let i = 0;
	while (i < body.length) {
		if (/^\s*$/.test(body.slice(i))) break;
		re.lastIndex = i;
		const r = re.exec(body);
		if (!r) return null;
		out.push({ name: r[1], op: r[2], value: r[3].replace(/\\(.)/g, '$1') });
		i = re.lastIndex;
	}
	return out;
}

export const quote = (v) => '"' + String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"';

export function formatSelector(ms) {
	return '{' + ms.map((m) => `${m.name}${m.op}${quote(m.value)}`).join(',') + '}';
}

export function selectorMode(q) {
	const ms = parseSelector(q);
	const m = ms && ms.find((x) => x.name === 'mode' && x.op === '=');
	return m ? m.value : '';
}

export function withMode(q, mode) {
	const ms = parseSelector(q);
	if (!ms) return null;
	const rest = ms.filter((x) => x.name !== 'mode');
	return formatSelector(mode ? [{ name: 'mode', op: '=', value: mode }, ...rest] : rest);
}
