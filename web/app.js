// SPDX-License-Identifier: MIT
// Aperture's web UI: the query bar, timeline, flamegraph, top table, diff view and the lock and
// syscall tables, over the aggregator's JSON API (docs/api.md). The whole view lives in the URL
// (docs/web-ui.md), so a link reopens it and back/forward walk through it.

import { FlameGraph } from './flamegraph.js';
import { Timeline } from './timeline.js';
import {
	fmtDur, fmtNum, formatSelector, formatter, niceStep, parseSelector, parseTime, selectorMode, withMode,
} from './query.js';

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = 'aperture-read-token';
const TABLE_CAP = 300; // rows rendered; the search box narrows the rest

// ---------------------------------------------------------------- API

class ApiError extends Error {
	constructor(code, message) {
		super(message);
		this.code = code;
	}
}

let tokenPrompt = null;
let tokenDeclined = false;

function askToken(refused) {
	if (tokenPrompt) return tokenPrompt;
	const dlg = $('token-dialog'), input = $('token-input');
	tokenPrompt = new Promise((resolve) => {
		dlg.querySelector('h2').textContent = refused
			? 'The read token was refused; enter it again' : 'Read token required';
		input.value = '';
		dlg.addEventListener('close', () => {
			const ok = dlg.returnValue === 'ok' && input.value.trim();
			resolve(ok ? input.value.trim() : null);
		}, { once: true });
		dlg.showModal();
		input.focus();
	}).finally(() => { tokenPrompt = null; });
	return tokenPrompt;
}

function apiURL(path, params) {
	const u = new URL(path, location.href);
	for (const [k, v] of Object.entries(params || {})) {
		if (v !== undefined && v !== null && v !== '') u.searchParams.set(k, v);
	}
	return u;
}

// GET an API route; JSON (or a Blob with {blob: true}). 401 asks for the read token once (all
// requests waiting on one dialog); the token lives in sessionStorage and goes out as Bearer.
async function api(path, params, { signal, blob = false } = {}) {
	const url = apiURL(path, params);
	for (let attempt = 0; ; attempt++) {
		const tok = sessionStorage.getItem(TOKEN_KEY);
		const headers = tok ? { Authorization: `Bearer ${tok}` } : {};
		const res = await fetch(url, { headers, signal });
		if (res.status === 401 && attempt < 2 && !tokenDeclined) {
			if (tok) sessionStorage.removeItem(TOKEN_KEY);
			const t = await askToken(Boolean(tok));
			if (!t) { tokenDeclined = true; throw new ApiError(401, 'a read token is needed for this aggregator'); }
			sessionStorage.setItem(TOKEN_KEY, t);
			continue;
		}
		if (!res.ok) {
			let msg = res.statusText || 'request failed';
			try {
				const text = await res.text();
				try { msg = JSON.parse(text).message || text; } catch { msg = text || msg; }
			} catch { /* keep the status text */ }
			throw new ApiError(res.status, msg.trim());
		}
		return blob ? res.blob() : res.json();
	}
}

// ---------------------------------------------------------------- state and URL

const DEFAULTS = {
	query: '', from: 'now-1h', until: 'now', value: '', view: 'single',
	to_query: '', to_from: '', to_until: '', search: '', focus: '', sort: '',
};
const state = { ...DEFAULTS };

function readURL() {
	const p = new URLSearchParams(location.search);
	for (const k of Object.keys(DEFAULTS)) state[k] = p.get(k) ?? DEFAULTS[k];
	if (state.view !== 'diff') state.view = 'single';
}

function urlOf() {
	const p = new URLSearchParams();
	for (const k of Object.keys(DEFAULTS)) {
		if (k === 'query' || k === 'from' || k === 'until' || state[k] !== DEFAULTS[k]) {
			if (state[k] !== '') p.set(k, state[k]);
		}
	}
	return '?' + p.toString();
}

// push: a new view (query, range, diff) that back should return from; else replace (typing in
// the search box, sorting).
function syncURL(push) {
	const url = urlOf();
	if (url === location.search) return;
	if (push) history.pushState(null, '', url); else history.replaceState(null, '', url);
}

function fillInputs() {
	$('query').value = state.query;
	$('from').value = state.from;
	$('until').value = state.until;
	$('to-query').value = state.to_query;
	$('to-from').value = state.to_from;
	$('to-until').value = state.to_until;
	$('search').value = state.search;
	const diff = state.view === 'diff';
	$('diff-form').hidden = !diff;
	$('view-single').setAttribute('aria-pressed', String(!diff));
	$('view-diff').setAttribute('aria-pressed', String(diff));
	$('dl-pprof').disabled = diff;
	$('dl-pprof').title = diff ? 'a diff has no pprof; download each side from the single view' : '';
	for (const b of document.querySelectorAll('.presets button')) {
		b.setAttribute('aria-pressed', String(state.from === `now-${b.dataset.range}` && state.until === 'now'));
	}
}

function readInputs() {
	state.query = $('query').value.trim();
	state.from = $('from').value.trim() || DEFAULTS.from;
	state.until = $('until').value.trim() || DEFAULTS.until;
	state.to_query = $('to-query').value.trim();
	state.to_from = $('to-from').value.trim();
	state.to_until = $('to-until').value.trim();
}

// ---------------------------------------------------------------- errors

function showError(where, err) {
	if (err && err.name === 'AbortError') return;
	const box = $('errors');
	const div = document.createElement('div');
	div.className = 'error';
	const code = err && err.code ? ` (${err.code})` : '';
	div.textContent = `${where}${code}: ${err && err.message ? err.message : String(err)}`;
	if (err && err.code === 401) {
		const b = document.createElement('button');
		b.type = 'button';
		b.textContent = 'Enter read token';
		b.addEventListener('click', () => { tokenDeclined = false; load(); });
		div.append(' ', b);
	}
	box.append(div);
}

function clearErrors() {
	$('errors').replaceChildren();
}

// ---------------------------------------------------------------- views

const tooltip = $('tooltip');
let fmt = fmtNum;
const fg = new FlameGraph($('flamegraph'), tooltip, {
	format: (v) => fmt(v),
	onZoom: (name) => {
		$('reset-zoom').disabled = !name;
		$('flamegraph').dataset.zoom = name || '';
	},
});
let seriesFmt = fmtNum;
const timeline = new Timeline($('timeline'), {
	format: (v) => seriesFmt(v),
	onSelect: (t0, t1) => {
		const a = String(Math.floor(t0 / 1000)), b = String(Math.ceil(t1 / 1000));
		if (state.view === 'diff' && document.querySelector('input[name=dragside]:checked').value === 'cmp') {
			state.to_from = a; state.to_until = b;
		} else {
			state.from = a; state.until = b;
		}
		fillInputs();
		syncURL(true);
		load();
	},
	onHover: (p) => {
		$('timeline-info').textContent = p ? `${new Date(p.t).toLocaleString()}: ${seriesFmt(p.v)}` : '';
	},
});
window.aperture = { fg, timeline, state }; // for the browser test and the console

let profile = null; // last flamebearer (single or diff)
let rows = []; // top-table rows
let lastSeries = null;

function valueTypeName(v) {
	return typeof v === 'string' ? v.split('/')[0] : (v && v.type) || '';
}

function renderValueTypes(fb) {
	const sel = $('value-type');
	if (!fb.value_types) return; // a diff names only the type it compares
	const types = (fb.value_types || []).map((v) => ({
		type: valueTypeName(v), unit: typeof v === 'string' ? v.split('/')[1] || '' : v.unit || '',
	}));
	const cur = fb.value_type ? fb.value_type.type : state.value;
	sel.replaceChildren(...types.map((t) => {
		const o = new Option(`${t.type} (${t.unit})`, t.type);
		o.selected = t.type === cur;
		return o;
	}));
	sel.disabled = types.length < 2;
}

function applyHighlight() {
	const info = $('match-info');
	let res = null, what = '';
	if (state.focus) {
		res = fg.highlight((n) => n === state.focus);
		what = `focused ${state.focus}`;
	} else if (state.search) {
		const s = state.search.toLowerCase();
		res = fg.highlight((n) => n.toLowerCase().includes(s));
		what = `matched “${state.search}”`;
	} else fg.highlight(null);
	if (!res) { info.textContent = ''; return; }
	if (!res.frames) { info.textContent = `${what}: no frames`; return; }
	info.textContent = state.view === 'diff'
		? `${what}: ${res.basePct.toFixed(2)}% of base → ${res.cmpPct.toFixed(2)}% of comparison (${res.frames} frames)`
		: `${what}: ${res.pct.toFixed(2)}% of total, ${fmt(res.total)} (${res.frames} frames)`;
}

// ---- generic sortable, capped table

function renderTable(table, columns, data, { sort, onSort, onRow, selected, cap = TABLE_CAP, filter }) {
	const [key, dir] = (sort || '').split(':');
	const col = columns.find((c) => c.key === key) || columns.find((c) => c.defaultSort) || columns[0];
	const desc = sort ? dir !== 'asc' : col.num;
	let view = filter ? data.filter(filter) : data.slice();
	const get = col.sortValue || ((r) => r[col.key]);
	view.sort((a, b) => {
		const x = get(a), y = get(b);
		const c = typeof x === 'string' ? x.localeCompare(y) : x - y;
		return desc ? -c : c;
	});
	const shown = view.length;
	if (view.length > cap) {
		const head = view.slice(0, cap);
		const sel = selected && view.find((r) => r.name === selected);
		if (sel && !head.includes(sel)) head.push(sel);
		view = head;
	}
	const thead = table.tHead;
	const hr = document.createElement('tr');
	for (const c of columns) {
		const th = document.createElement('th');
		th.scope = 'col';
		if (c.num) th.className = 'num';
		const active = c === col;
		th.setAttribute('aria-sort', active ? (desc ? 'descending' : 'ascending') : 'none');
		const b = document.createElement('button');
		b.type = 'button';
		b.textContent = c.label + (active ? (desc ? ' ▼' : ' ▲') : '');
		b.dataset.key = c.key;
		b.addEventListener('click', () => {
			const nd = active ? (desc ? 'asc' : 'desc') : (c.num ? 'desc' : 'asc');
			onSort(`${c.key}:${nd}`);
		});
		th.append(b);
		hr.append(th);
	}
	thead.replaceChildren(hr);
	const frag = document.createDocumentFragment();
	for (const r of view) {
		const tr = document.createElement('tr');
		for (const c of columns) {
			const td = document.createElement('td');
			if (c.num) td.className = 'num';
			const v = c.fmt ? c.fmt(r) : r[c.key];
			td.textContent = v;
			if (c.cls) { const k = c.cls(r); if (k) td.classList.add(k); }
			if (c.title) td.title = c.title(r);
			tr.append(td);
		}
		if (onRow) {
			tr.tabIndex = 0;
			tr.dataset.name = r.name;
			if (r.name === selected) tr.setAttribute('aria-selected', 'true');
			tr.addEventListener('click', () => onRow(r));
			tr.addEventListener('keydown', (e) => {
				if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); onRow(r); }
			});
		}
		frag.append(tr);
	}
	table.tBodies[0].replaceChildren(frag);
	return { shown, total: data.length, rendered: view.length };
}

function pctOf(v, of) {
	return of ? `${((100 * v) / of).toFixed(2)}%` : '–';
}

function renderTopTable() {
	const table = $('top-table');
	const diff = state.view === 'diff';
	const total = fg.total, bt = fg.btotal, ct = fg.ctotal;
	const columns = diff ? [
		{ key: 'name', label: 'Function', title: (r) => r.name },
		{ key: 'baseSelf', label: 'Base self', num: true, fmt: (r) => pctOf(r.baseSelf, bt), title: (r) => fmt(r.baseSelf) },
		{ key: 'cmpSelf', label: 'Cmp self', num: true, fmt: (r) => pctOf(r.cmpSelf, ct), title: (r) => fmt(r.cmpSelf) },
		{ key: 'baseTotal', label: 'Base total', num: true, fmt: (r) => pctOf(r.baseTotal, bt), title: (r) => fmt(r.baseTotal) },
		{ key: 'cmpTotal', label: 'Cmp total', num: true, fmt: (r) => pctOf(r.cmpTotal, ct), title: (r) => fmt(r.cmpTotal) },
		{
			key: 'change', label: 'Change', num: true, defaultSort: true,
			fmt: (r) => `${r.change >= 0 ? '+' : ''}${r.change.toFixed(2)} pp`,
			cls: (r) => (r.change > 0.005 ? 'grew' : r.change < -0.005 ? 'shrank' : ''),
			title: () => 'change of the total share, in percentage points',
		},
	] : [
		{ key: 'name', label: 'Function', title: (r) => r.name },
		{ key: 'self', label: 'Self', num: true, defaultSort: true, fmt: (r) => `${fmt(r.self)} · ${pctOf(r.self, total)}` },
		{ key: 'total', label: 'Total', num: true, fmt: (r) => `${fmt(r.total)} · ${pctOf(r.total, total)}` },
	];
	const s = state.search.toLowerCase();
	const res = renderTable(table, columns, rows, {
		sort: state.sort,
		onSort: (sort) => { state.sort = sort; syncURL(false); renderTopTable(); },
		onRow: (r) => {
			state.focus = state.focus === r.name ? '' : r.name;
			syncURL(false);
			applyHighlight();
			renderTopTable();
		},
		selected: state.focus,
		filter: s ? (r) => r.name.toLowerCase().includes(s) || r.name === state.focus : null,
	});
	const note = $('table-note');
	note.textContent = res.shown > TABLE_CAP
		? `showing the first ${TABLE_CAP} of ${res.shown} functions; search to narrow`
		: s ? `${res.shown} of ${res.total} functions match` : `${res.total} functions`;
}

function renderProfileInfo(fb) {
	const parts = [];
	if (fb.mode) parts.push(`mode ${fb.mode}`);
	if (fb.value_type) parts.push(`${fb.value_type.type} (${fb.value_type.unit})`);
	if (state.view === 'diff') {
		parts.push(`base total ${fmt(fg.btotal)}`, `comparison total ${fmt(fg.ctotal)}`);
	} else parts.push(`total ${fmt(fg.total)}`);
	let frames = 0;
	for (const L of fg.levels) frames += L.n;
	parts.push(`${frames.toLocaleString('en-US')} frames, depth ${fg.levels.length}`);
	if (fb.nodes_truncated) {
		parts.push(typeof fb.nodes_truncated === 'number'
			? `${fb.nodes_truncated.toLocaleString('en-US')} small frames merged into their callers`
			: 'small frames merged into their callers (max_nodes)');
	}
	$('profile-info').textContent = parts.join(' · ');
}

function setProfile(fb) {
	profile = fb;
	const diff = state.view === 'diff';
	fmt = formatter(fb.value_type ? fb.value_type.unit : '');
	fg.setData(fb, diff);
	$('reset-zoom').disabled = true;
	$('flamegraph').dataset.zoom = '';
	$('flame-legend').hidden = !diff;
	document.body.classList.toggle('diff', diff);
	const empty = !fg.total;
	$('flame-empty').hidden = !empty;
	$('flame-empty').textContent = empty ? 'No samples for this query and time range.' : '';
	renderValueTypes(fb);
	renderProfileInfo(fb);
	rows = fg.functions();
	applyHighlight();
	renderTopTable();
}

function clearProfile() {
	profile = null;
	rows = [];
	fg.clear();
	$('profile-info').textContent = '';
	$('flame-empty').hidden = true;
	$('match-info').textContent = '';
	renderTopTable();
}

// ---- timeline

function rangeMs(from, until) {
	const now = Date.now();
	return [parseTime(from, now), parseTime(until, now)];
}

function seriesIndex(s) {
	const want = state.value || (profile && profile.value_type && profile.value_type.type) || '';
	const i = (s.value_types || []).findIndex((v) => valueTypeName(v) === want);
	return i >= 0 ? i : 0;
}

function renderTimeline() {
	if (!lastSeries) return;
	const { domain, base, cmp } = lastSeries;
	// a point stands for the step [ts, ts + step): drawn at its middle
	const mk = (s, color, fill, label) => {
		const i = seriesIndex(s), half = (s.step_ms || 0) / 2;
		return { points: (s.points || []).map((p) => [p[0] + half, p[1 + i] || 0]), color, fill, label };
	};
	const series = [];
	if (base) series.push(mk(base, '#d2581e', 'rgba(210,88,30,0.18)', 'base'));
	if (cmp) series.push(mk(cmp, '#2a63c9', null, 'comparison'));
	const ref = base || cmp;
	if (ref) {
		const vt = (ref.value_types || [])[seriesIndex(ref)];
		seriesFmt = formatter(typeof vt === 'string' ? vt.split('/')[1] : vt && vt.unit);
	}
	// the range asked for, widened to whole steps (the server's step may be coarser than asked)
	let [a, b] = domain;
	for (const s of [base, cmp]) {
		const pts = (s && s.points) || [];
		if (!pts.length) continue;
		const step = s.step_ms || 0;
		a = isFinite(a) ? Math.min(a, pts[0][0]) : pts[0][0];
		b = isFinite(b) ? Math.max(b, pts[pts.length - 1][0] + step) : pts[pts.length - 1][0] + step;
	}
	if (!isFinite(a) || !isFinite(b) || b <= a) { b = Date.now(); a = b - 3600e3; }
	const ranges = [];
	if (state.view === 'diff') {
		const [f0, u0] = rangeMs(state.from, state.until);
		const [f1, u1] = rangeMs(state.to_from || state.from, state.to_until || state.until);
		ranges.push({ from: f0, until: u0, color: 'rgba(42,99,201,0.13)' });
		ranges.push({ from: f1, until: u1, color: 'rgba(220,40,40,0.13)' });
	}
	timeline.setData([a, b], series, ranges);
	const n = series.reduce((k, s) => k + s.points.filter((p) => p[1] > 0).length, 0);
	$('timeline').dataset.points = String(n);
	$('timeline').setAttribute('aria-label', `Samples over time: ${n} non-empty steps`);
}

// ---- mode picker

async function loadModes(signal) {
	const sel = $('mode');
	const current = selectorMode(state.query);
	const rest = withMode(state.query, '');
	let modes = [];
	try {
		modes = (await api('/api/v1/modes', { query: rest && rest !== '{}' ? rest : undefined, from: state.from, until: state.until }, { signal })).modes || [];
	} catch (e) {
		showError('modes', e);
	}
	if (signal.aborted) return [];
	if (current && !modes.includes(current)) modes = [current, ...modes];
	const opts = [new Option(modes.length ? '(any)' : '(no data)', '')];
	for (const m of modes) opts.push(new Option(m, m));
	sel.replaceChildren(...opts);
	sel.value = current;
	return modes;
}

// ---- lock and syscall tables

function renderModeTables(t) {
	const box = $('mode-tables');
	box.replaceChildren();
	const f = (ns) => fmtDur(ns || 0);
	const add = (title, columns, data, key) => {
		const h = document.createElement('h3');
		h.textContent = title;
		const table = document.createElement('table');
		table.className = 'data sortable';
		table.id = `${key}-table`;
		table.createTHead();
		table.createTBody();
		box.append(h, table);
		let sort = '';
		const draw = () => renderTable(table, columns, data, { sort, onSort: (s) => { sort = s; draw(); }, cap: 500 });
		draw();
	};
	if (t.syscalls && t.syscalls.length) {
		add('Syscalls', [
			{ key: 'name', label: 'Syscall' },
			{ key: 'calls', label: 'Calls', num: true, defaultSort: true, fmt: (r) => fmtNum(r.calls) },
			{ key: 'errors', label: 'Errors', num: true, fmt: (r) => fmtNum(r.errors || 0) },
			{ key: 'total_ns', label: 'Total', num: true, fmt: (r) => f(r.total_ns) },
			{ key: 'avg_ns', label: 'Avg', num: true, fmt: (r) => f(r.avg_ns) },
			{ key: 'p50_ns', label: 'p50', num: true, fmt: (r) => f(r.p50_ns) },
			{ key: 'p99_ns', label: 'p99', num: true, fmt: (r) => f(r.p99_ns) },
			{ key: 'slow', label: 'Slow', num: true, fmt: (r) => fmtNum(r.slow || 0) },
			{
				key: 'errnos', label: 'Errnos', sortValue: (r) => Object.keys(r.errnos || {}).join(','),
				fmt: (r) => Object.entries(r.errnos || {}).sort((a, b) => b[1] - a[1])
					.map(([k, v]) => `${k} ${v}`).join(', '),
			},
		], t.syscalls, 'syscalls');
	}
	if (t.locks && t.locks.length) {
		add('Locks', [
			{ key: 'kind', label: 'Kind' },
			{ key: 'name', label: 'Lock' },
			{ key: 'contentions', label: 'Contentions', num: true, fmt: (r) => fmtNum(r.contentions) },
			{ key: 'wait_ns', label: 'Wait', num: true, defaultSort: true, fmt: (r) => f(r.wait_ns) },
			{ key: 'p50_ns', label: 'p50', num: true, fmt: (r) => f(r.p50_ns) },
			{ key: 'p99_ns', label: 'p99', num: true, fmt: (r) => f(r.p99_ns) },
			{
				key: 'holders', label: 'Holders', sortValue: (r) => (r.holders || []).length,
				fmt: (r) => (r.holders || []).slice(0, 4)
					.map((h) => `${h.comm} ×${h.count} (${f(h.wait_ns)})`).join(', '),
			},
		], t.locks, 'locks');
	}
	if (!box.childElementCount) {
		box.textContent = 'No lock or syscall table rows for this query and range.';
	}
}

async function loadModeTables(mode, signal) {
	const panel = $('tables-panel');
	if (state.view === 'diff' || (mode !== 'lock' && mode !== 'syscall')) {
		panel.hidden = true;
		return;
	}
	panel.hidden = false;
	$('tables-h').textContent = mode === 'lock' ? 'Lock tables' : 'Syscall tables';
	try {
		const t = await api('/api/v1/tables', { query: state.query, from: state.from, until: state.until }, { signal });
		renderModeTables(t);
	} catch (e) {
		if (signal.aborted) return;
		$('mode-tables').replaceChildren();
		showError('tables', e);
	}
}

// ---- loading

let ctrl = null;
let loads = 0;

function queryParams() {
	const p = { query: state.query, from: state.from, until: state.until, value: state.value };
	if (state.view === 'diff') {
		p.to_query = state.to_query || state.query;
		p.to_from = state.to_from || state.from;
		p.to_until = state.to_until || state.until;
	}
	return p;
}

async function loadProfile(signal) {
	try {
		const p = queryParams();
		const fb = state.view === 'diff'
			? await api('/api/v1/diff', { ...p, format: 'flamegraph' }, { signal })
			: await api('/api/v1/flamegraph', p, { signal });
		setProfile(fb);
		return fb;
	} catch (e) {
		if (e.name === 'AbortError') throw e;
		clearProfile();
		showError(state.view === 'diff' ? 'diff' : 'flamegraph', e);
		return null;
	}
}

async function loadSeries(signal) {
	const now = Date.now();
	let [a, b] = rangeMs(state.from, state.until);
	const diff = state.view === 'diff';
	if (diff) {
		const [c, d] = rangeMs(state.to_from || state.from, state.to_until || state.until);
		a = Math.min(a, c); b = Math.max(b, d);
	}
	const span = isFinite(a) && isFinite(b) && b > a ? (b - a) / 1000 : 3600;
	const step = `${niceStep(span)}s`;
	const from = diff && isFinite(a) ? String(Math.floor(a / 1000)) : state.from;
	const until = diff && isFinite(b) ? String(Math.ceil(b / 1000)) : state.until;
	const get = (q) => api('/api/v1/series', { query: q, from, until, step }, { signal });
	try {
		const base = await get(state.query);
		let cmp = null;
		if (diff && state.to_query && state.to_query !== state.query) cmp = await get(state.to_query);
		lastSeries = { domain: [a, b], base, cmp, at: now };
		renderTimeline();
	} catch (e) {
		if (e.name === 'AbortError') throw e;
		lastSeries = { domain: [a, b], base: null, cmp: null };
		renderTimeline();
		showError('series', e);
	}
}

async function load() {
	if (ctrl) ctrl.abort();
	ctrl = new AbortController();
	const { signal } = ctrl;
	const seq = ++loads;
	document.body.dataset.loading = '1';
	clearErrors();
	fillInputs();
	try {
		if (!state.query) {
			const modes = await loadModes(signal);
			if (signal.aborted) return;
			if (modes.length) {
				const pick = modes.includes('cpu') ? 'cpu' : modes[0];
				state.query = formatSelector([{ name: 'mode', op: '=', value: pick }]);
				syncURL(false);
				fillInputs();
			} else {
				clearProfile();
				$('flame-empty').hidden = false;
				$('flame-empty').textContent = 'No profiles stored in this time range yet.';
				await loadSeries(signal);
				return;
			}
		}
		const mode = selectorMode(state.query);
		const jobs = [loadModes(signal), loadSeries(signal)];
		if (mode) jobs.push(loadModeTables(mode, signal));
		const fb = await loadProfile(signal);
		if (fb && !mode && fb.mode) jobs.push(loadModeTables(fb.mode, signal));
		await Promise.all(jobs);
		if (fb) renderTimeline(); // the value type may have become known
	} catch (e) {
		if (e.name !== 'AbortError') showError('load', e);
	} finally {
		if (seq === loads) {
			document.body.dataset.loading = '0';
			document.body.dataset.loads = String(seq);
		}
	}
}

// ---------------------------------------------------------------- autocompletion

class LabelComplete {
	constructor(input, list) {
		this.input = input;
		this.list = list;
		this.items = [];
		this.active = -1;
		this.ctx = null;
		this.seq = 0;
		input.addEventListener('input', () => this.update());
		input.addEventListener('focus', () => this.update());
		input.addEventListener('click', () => this.update());
		input.addEventListener('blur', () => setTimeout(() => this.close(), 120));
		input.addEventListener('keydown', (e) => this.key(e));
		list.addEventListener('mousedown', (e) => {
			const li = e.target.closest('li');
			if (!li) return;
			e.preventDefault();
			this.accept(Number(li.dataset.i));
		});
	}

	// What the caret is in: a label name after '{' or ',', or a value inside quotes.
	context() {
		const v = this.input.value, pos = this.input.selectionStart ?? v.length;
		const pre = v.slice(0, pos);
		const quotes = (pre.match(/(^|[^\\])"/g) || []).length;
		if (quotes % 2 === 1) {
			const m = pre.match(/([A-Za-z_][A-Za-z0-9_.]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)$/);
			return m ? { kind: 'value', name: m[1], partial: m[3], start: pos - m[3].length, pos } : null;
		}
		let m = pre.match(/([A-Za-z_][A-Za-z0-9_.]*)\s*(=~|!~|!=|=)\s*$/);
		if (m) return { kind: 'value', name: m[1], partial: '', start: pos, pos, open: true };
		m = pre.match(/(^|[{,])\s*([A-Za-z_][A-Za-z0-9_.]*)?$/);
		if (m) return { kind: 'name', partial: m[2] || '', start: pos - (m[2] || '').length, pos, brace: !pre.includes('{') };
		return null;
	}

	async update() {
		const ctx = this.context();
		this.ctx = ctx;
		if (!ctx) { this.close(); return; }
		const seq = ++this.seq;
		let all;
		try {
			all = await suggestions(ctx);
		} catch (e) {
			this.close();
			return;
		}
		if (seq !== this.seq) return;
		const p = ctx.partial.toLowerCase();
		this.items = all.filter((s) => s.toLowerCase().includes(p) && s !== ctx.partial).slice(0, 50);
		this.render();
	}

	render() {
		const { list, input } = this;
		if (!this.items.length || document.activeElement !== input) { this.close(); return; }
		this.active = Math.min(this.active, this.items.length - 1);
		list.replaceChildren(...this.items.map((s, i) => {
			const li = document.createElement('li');
			li.id = `${list.id}-${i}`;
			li.role = 'option';
			li.dataset.i = String(i);
			li.textContent = s;
			li.setAttribute('aria-selected', String(i === this.active));
			return li;
		}));
		list.hidden = false;
		input.setAttribute('aria-expanded', 'true');
		if (this.active >= 0) input.setAttribute('aria-activedescendant', `${list.id}-${this.active}`);
		else input.removeAttribute('aria-activedescendant');
	}

	close() {
		this.list.hidden = true;
		this.items = [];
		this.active = -1;
		this.input.setAttribute('aria-expanded', 'false');
		this.input.removeAttribute('aria-activedescendant');
	}

	key(e) {
		if (this.list.hidden) return;
		if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
			const n = this.items.length;
			this.active = e.key === 'ArrowDown' ? (this.active + 1) % n : (this.active - 1 + n) % n;
			this.render();
			e.preventDefault();
		} else if ((e.key === 'Enter' || e.key === 'Tab') && this.active >= 0) {
			this.accept(this.active);
			e.preventDefault();
		} else if (e.key === 'Escape') {
			this.close();
			e.preventDefault();
		}
	}

	accept(i) {
		const ctx = this.ctx, s = this.items[i];
		if (!ctx || s === undefined) return;
		const v = this.input.value;
		let ins;
		if (ctx.kind === 'name') ins = (ctx.brace ? '{' : '') + `${s}="`;
		else {
			const esc = s.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
			ins = ctx.open ? `"${esc}"` : `${esc}"`;
		}
		let after = v.slice(ctx.pos);
		if (ctx.kind === 'value' && !ctx.open && after.startsWith('"')) after = after.slice(1);
		let tail = after;
		if (ctx.brace && !after.includes('}')) tail = after + '}';
		this.input.value = v.slice(0, ctx.start) + ins + tail;
		const caret = ctx.start + ins.length;
		this.input.setSelectionRange(caret, caret);
		this.active = -1;
		this.update();
	}
}

const acCache = new Map();

function suggestions(ctx) {
	const range = `${state.from}|${state.until}`;
	const key = ctx.kind === 'name' ? `n|${range}` : `v|${ctx.name}|${range}`;
	if (!acCache.has(key)) {
		const p = ctx.kind === 'name'
			? api('/api/v1/labels', { from: state.from, until: state.until }).then((r) => r.names || [])
			: api('/api/v1/label-values', { name: ctx.name, from: state.from, until: state.until })
				.then((r) => r.values || []);
		p.catch(() => acCache.delete(key));
		acCache.set(key, p);
	}
	return acCache.get(key);
}

// ---------------------------------------------------------------- downloads

async function download(kind) {
	const diff = state.view === 'diff';
	const p = queryParams();
	const path = diff ? '/api/v1/diff' : '/api/v1/profile';
	const name = `aperture-${selectorMode(state.query) || 'profile'}${diff ? '-diff' : ''}-` +
		`${new Date().toISOString().replace(/[:.]/g, '-')}.${kind === 'pprof' ? 'pb.gz' : 'svg'}`;
	try {
		const blob = await api(path, { ...p, format: kind }, { blob: true });
		const a = document.createElement('a');
		a.href = URL.createObjectURL(blob);
		a.download = name;
		document.body.append(a);
		a.click();
		a.remove();
		setTimeout(() => URL.revokeObjectURL(a.href), 10000);
	} catch (e) {
		showError(`download ${kind}`, e);
	}
}

// ---------------------------------------------------------------- wiring

function run(push = true) {
	readInputs();
	state.focus = '';
	acCache.clear();
	syncURL(push);
	load();
}

$('query-form').addEventListener('submit', (e) => { e.preventDefault(); run(); });
$('diff-form').addEventListener('submit', (e) => { e.preventDefault(); run(); });
for (const b of document.querySelectorAll('.presets button')) {
	b.addEventListener('click', () => {
		$('from').value = `now-${b.dataset.range}`;
		$('until').value = 'now';
		run();
	});
}
$('mode').addEventListener('change', () => {
	readInputs();
	const q = withMode(state.query, $('mode').value);
	if (q === null) {
		clearErrors();
		showError('mode', new Error('the query is not a selector like {mode="cpu",comm="x"}; fix it to pick a mode'));
		return;
	}
	$('query').value = q;
	run();
});
$('view-single').addEventListener('click', () => {
	if (state.view === 'single') return;
	state.view = 'single';
	state.sort = '';
	run();
});
$('view-diff').addEventListener('click', () => {
	if (state.view === 'diff') return;
	state.view = 'diff';
	state.sort = '';
	fillInputs();
	// a first diff compares the previous range of the same length with the current one
	if (!$('to-from').value && !$('to-until').value) {
		const [a, b] = rangeMs(state.from, state.until);
		if (isFinite(a) && isFinite(b) && b > a) {
			$('to-from').value = state.from;
			$('to-until').value = state.until;
			$('from').value = String(Math.floor((2 * a - b) / 1000));
			$('until').value = String(Math.floor(a / 1000));
		}
	}
	run();
});
let searchTimer = 0;
$('search').addEventListener('input', () => {
	clearTimeout(searchTimer);
	searchTimer = setTimeout(() => {
		state.search = $('search').value.trim();
		syncURL(false);
		applyHighlight();
		renderTopTable();
	}, 120);
});
$('reset-zoom').addEventListener('click', () => fg.resetZoom());
$('value-type').addEventListener('change', () => {
	state.value = $('value-type').value;
	syncURL(true);
	load();
});
$('dl-pprof').addEventListener('click', () => download('pprof'));
$('dl-svg').addEventListener('click', () => download('svg'));
window.addEventListener('popstate', () => {
	readURL();
	load();
});
document.addEventListener('keydown', (e) => {
	if (e.key === '/' && document.activeElement === document.body) {
		$('search').focus();
		e.preventDefault();
	}
});

new LabelComplete($('query'), $('query-ac'));
new LabelComplete($('to-query'), $('to-query-ac'));
$('reset-zoom').disabled = true;
readURL();
load();
