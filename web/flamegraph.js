// SPDX-License-Identifier: MIT
// Canvas flamegraph (icicle: root on top) of the aggregator's flamebearer JSON (docs/api.md).
// Single profiles have levels of 4-tuples [x delta, total, self, name]; diffs have 7-tuples
// [x_base delta, total_base, self_base, x_cmp delta, total_cmp, self_cmp, name]. A diff is drawn
// on the combined axis (base + comparison widths, as Pyroscope does), coloured by the change of
// the frame's share of its side's total: red grew, blue shrank.
// Only rows inside the viewport and frames at least half a pixel wide are drawn, once per
// animation frame, so a deep graph of max_nodes frames stays cheap to redraw on scroll or hover.

export const ROW = 18;
const FONT = '12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace';
const DIM = '#dedede';

// Decode the delta-encoded rows into absolute coordinates, and link each frame to its children
// (a contiguous run of the next row, since rows are sorted by x and children nest in parents).
export function decode(fb, diff) {
	const stride = diff ? 7 : 4;
	const levels = [];
	for (const row of fb.levels || []) {
		const n = Math.floor(row.length / stride);
		const L = {
			n, x: new Float64Array(n), w: new Float64Array(n), self: new Float64Array(n),
			name: new Int32Array(n), cs: new Int32Array(n), ce: new Int32Array(n),
		};
		if (diff) {
			L.bw = new Float64Array(n); L.bs = new Float64Array(n);
			L.cw = new Float64Array(n); L.cs2 = new Float64Array(n);
			let be = 0, ce = 0;
			for (let i = 0; i < n; i++) {
				const o = i * 7;
				const bx = be + row[o], cx = ce + row[o + 3];
				be = bx + row[o + 1]; ce = cx + row[o + 4];
				L.bw[i] = row[o + 1]; L.bs[i] = row[o + 2];
				L.cw[i] = row[o + 4]; L.cs2[i] = row[o + 5];
				L.x[i] = bx + cx; L.w[i] = row[o + 1] + row[o + 4];
				L.self[i] = row[o + 2] + row[o + 5]; L.name[i] = row[o + 6];
			}
		} else {
			let end = 0;
			for (let i = 0; i < n; i++) {
				const o = i * 4;
				const x = end + row[o];
				end = x + row[o + 1];
				L.x[i] = x; L.w[i] = row[o + 1]; L.self[i] = row[o + 2]; L.name[i] = row[o + 3];
			}
		}
		levels.push(L);
	}
	for (let d = 0; d < levels.length; d++) {
		const L = levels[d], C = levels[d + 1];
		let j = 0;
		for (let i = 0; i < L.n; i++) {
			if (!C) { L.cs[i] = L.ce[i] = 0; continue; }
			while (j < C.n && C.x[j] < L.x[i]) j++;
			L.cs[i] = j;
			const end = L.x[i] + L.w[i];
			while (j < C.n && C.x[j] < end) j++;
			L.ce[i] = j;
		}
	}
	return levels;
}

// Largest i with a[i] <= v (-1 if none).
function floorIndex(a, n, v) {
	let lo = 0, hi = n - 1, r = -1;
	while (lo <= hi) {
		const m = (lo + hi) >> 1;
		if (a[m] <= v) { r = m; lo = m + 1; } else hi = m - 1;
	}
	return r;
}

function hash(s) {
	let h = 2166136261;
	for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
	return h >>> 0;
}

// Warm colours like flamegraph.pl's, stable per function (hashed on the name up to its
// arguments, so a function keeps its colour across views).
function warm(name) {
	const h = hash(name.replace(/\(.*$/, ''));
	const r = 205 + (h & 0x3f) % 50;
	const g = 90 + ((h >>> 8) & 0xff) % 130;
	const b = 40 + ((h >>> 16) & 0xff) % 50;
	return `rgb(${r},${g},${b})`;
}

// The change of a frame's share, (cmp - base) / max(base, cmp) as the diff SVG colours it
// (docs/api.md, Diff): -1 only in the base, +1 only in the comparison.
export function diffColor(bPct, cPct) {
	const m = Math.max(bPct, cPct);
	if (m === 0) return 'rgb(210,210,210)';
	const rel = (cPct - bPct) / m;
	const a = Math.abs(rel);
	if (a < 0.01) return 'rgb(210,210,210)';
	const v = Math.round(215 - 165 * a);
	return rel > 0 ? `rgb(255,${v},${v})` : `rgb(${v},${v},255)`;
}

export class FlameGraph {
	constructor(canvas, tooltip, { format = String, onZoom = () => {} } = {}) {
		this.canvas = canvas;
		this.ctx = canvas.getContext('2d');
		this.tip = tooltip;
		this.format = format;
		this.onZoom = onZoom;
		this.levels = [];
		this.names = [];
		this.diff = false;
		this.zoom = null; // {d, i, x0, x1}
		this.hl = null; // Uint8Array over names, or null
		this.hover = null;
		this.queued = false;
		this.lastDrawn = { names: new Set(), frames: 0 };
		this.charW = 7.2;

		canvas.addEventListener('mousemove', (e) => this.onMove(e));
		canvas.addEventListener('mouseleave', () => { this.hover = null; this.hideTip(); });
		canvas.addEventListener('click', (e) => {
			const hit = this.hit(e);
			if (hit) this.zoomTo(hit.d, hit.i);
		});
		canvas.addEventListener('keydown', (e) => {
			if (e.key === 'Escape') { this.resetZoom(); e.preventDefault(); }
		});
		window.addEventListener('scroll', () => this.schedule(), { passive: true });
		new ResizeObserver(() => this.schedule()).observe(canvas.parentElement);
	}

	setData(fb, diff) {
		this.diff = diff;
		this.names = fb.names || [];
		this.levels = decode(fb, diff);
		this.zoom = null;
		this.hl = null;
		this.colors = diff ? null : this.names.map(warm);
		const root = this.levels[0];
		this.total = root ? root.w.reduce((a, b) => a + b, 0) : 0;
		this.btotal = diff && root ? root.bw.reduce((a, b) => a + b, 0) : 0;
		this.ctotal = diff && root ? root.cw.reduce((a, b) => a + b, 0) : 0;
		this.schedule();
	}

	clear() {
		this.setData({ names: [], levels: [] }, false);
	}

	get zoomName() {
		return this.zoom ? this.names[this.levels[this.zoom.d].name[this.zoom.i]] : null;
	}

	zoomTo(d, i) {
		const L = this.levels[d];
		if (!L) return;
		if (d === 0 || (this.zoom && this.zoom.d === d && this.zoom.i === i)) {
			this.resetZoom();
			return;
		}
		this.zoom = { d, i, x0: L.x[i], x1: L.x[i] + L.w[i] };
		this.onZoom(this.zoomName);
		this.schedule();
	}

	resetZoom() {
		if (!this.zoom) return;
		this.zoom = null;
		this.onZoom(null);
		this.schedule();
	}

	// Highlight the frames whose name satisfies pred (null: none). Returns what matched: the
	// frames and the share of the total under the topmost matching frames (a recursive
	// function is counted once), per side for a diff.
	highlight(pred) {
		if (!pred) {
			this.hl = null;
			this.schedule();
			return null;
		}
		const hl = new Uint8Array(this.names.length);
		let any = false;
		for (let k = 1; k < this.names.length; k++) {
			if (pred(this.names[k])) { hl[k] = 1; any = true; }
		}
		this.hl = hl;
		const res = { frames: 0, total: 0, base: 0, cmp: 0 };
		if (any) this.walk((d, i, L) => {
			if (!hl[L.name[i]] || d === 0) return true;
			res.frames++;
			res.total += L.w[i];
			if (this.diff) { res.base += L.bw[i]; res.cmp += L.cw[i]; }
			return false; // topmost only: do not descend
		});
		// count the frames below the topmost ones too, for the "N frames" figure
		let frames = 0;
		for (const L of this.levels) for (let i = 0; i < L.n; i++) if (hl[L.name[i]]) frames++;
		res.frames = frames;
		res.pct = this.total ? (100 * res.total) / this.total : 0;
		res.basePct = this.btotal ? (100 * res.base) / this.btotal : 0;
		res.cmpPct = this.ctotal ? (100 * res.cmp) / this.ctotal : 0;
		this.schedule();
		return res;
	}

	// Depth-first over the tree; visit(d, i, L) returns false to skip the children, and is
	// followed by leave(d, i, L) when given.
	walk(visit, leave) {
		const root = this.levels[0];
		if (!root) return;
		const sd = [], si = [], sx = [];
		for (let i = root.n - 1; i >= 0; i--) { sd.push(0); si.push(i); sx.push(0); }
		while (sd.length) {
			const d = sd.pop(), i = si.pop(), exit = sx.pop();
			const L = this.levels[d];
			if (exit) { leave(d, i, L); continue; }
			if (!visit(d, i, L)) continue;
			if (leave) { sd.push(d); si.push(i); sx.push(1); }
			for (let j = L.ce[i] - 1; j >= L.cs[i]; j--) { sd.push(d + 1); si.push(j); sx.push(0); }
		}
	}

	// Per function: self summed over its frames, total over its frames that have no caller of
	// the same name (recursion counted once). Diffs get both sides.
	functions() {
		const n = this.names.length;
		const onPath = new Int32Array(n);
		const self = new Float64Array(n), total = new Float64Array(n);
		const seen = new Uint8Array(n);
		let bs, cs, bt, ct;
		if (this.diff) {
			bs = new Float64Array(n); cs = new Float64Array(n);
			bt = new Float64Array(n); ct = new Float64Array(n);
		}
		this.walk((d, i, L) => {
			const k = L.name[i];
			if (d > 0) {
				seen[k] = 1;
				self[k] += L.self[i];
				if (this.diff) { bs[k] += L.bs[i]; cs[k] += L.cs2[i]; }
				if (onPath[k] === 0) {
					total[k] += L.w[i];
					if (this.diff) { bt[k] += L.bw[i]; ct[k] += L.cw[i]; }
				}
			}
			onPath[k]++;
			return true;
		}, (d, i, L) => { onPath[L.name[i]]--; });
		const rows = [];
		for (let k = 0; k < n; k++) {
			if (!seen[k]) continue;
			const r = { name: this.names[k], self: self[k], total: total[k] };
			if (this.diff) {
				r.baseSelf = bs[k]; r.cmpSelf = cs[k]; r.baseTotal = bt[k]; r.cmpTotal = ct[k];
				const bp = this.btotal ? bt[k] / this.btotal : 0;
				const cp = this.ctotal ? ct[k] / this.ctotal : 0;
				r.change = 100 * (cp - bp); // percentage points of each side's total
			}
			rows.push(r);
		}
		return rows;
	}

	// Where the topmost (then widest) visible frame named `name` is drawn, in CSS pixels
	// relative to the canvas: its centre and its left and right edges (the browser test
	// clicks and samples colours there).
	findFrame(name) {
		for (let d = 0; d < this.levels.length; d++) {
			const L = this.levels[d];
			let best = -1;
			for (let i = 0; i < L.n; i++) {
				if (this.names[L.name[i]] === name && (best < 0 || L.w[i] > L.w[best])) best = i;
			}
			if (best >= 0) {
				const [x0, x1] = this.view();
				const W = this.width();
				const a = Math.max(L.x[best], x0), b = Math.min(L.x[best] + L.w[best], x1);
				if (b <= a) continue;
				const k = W / (x1 - x0);
				return { d, i: best, x: ((a + b) / 2 - x0) * k, y: d * ROW + ROW / 2,
					left: (a - x0) * k, right: (b - x0) * k, width: W };
			}
		}
		return null;
	}

	view() {
		return this.zoom ? [this.zoom.x0, this.zoom.x1] : [0, this.total || 1];
	}

	width() {
		return this.canvas.parentElement.clientWidth;
	}

	schedule() {
		if (this.queued) return;
		this.queued = true;
		requestAnimationFrame(() => { this.queued = false; this.draw(); });
	}

	draw() {
		const dpr = window.devicePixelRatio || 1;
		const W = Math.max(1, this.width());
		const H = Math.max(ROW, this.levels.length * ROW);
		const c = this.canvas;
		if (c.width !== Math.round(W * dpr) || c.height !== Math.round(H * dpr)) {
			c.width = Math.round(W * dpr);
			c.height = Math.round(H * dpr);
			c.style.width = W + 'px';
			c.style.height = H + 'px';
		}
		const ctx = this.ctx;
		ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
		ctx.clearRect(0, 0, W, H);
		ctx.font = FONT;
		ctx.textBaseline = 'middle';
		this.charW = ctx.measureText('mmmmmmmmmm').width / 10 || 7.2;
		const drawn = new Set();
		let frames = 0;
		if (!this.total) { this.lastDrawn = { names: drawn, frames }; return; }

		// rows inside the viewport only
		const r = c.getBoundingClientRect();
		const top = Math.max(0, -r.top), bottom = Math.min(H, window.innerHeight - r.top);
		const d0 = Math.max(0, Math.floor(top / ROW));
		const d1 = Math.min(this.levels.length - 1, Math.ceil(bottom / ROW));
		const [x0, x1] = this.view();
		const k = W / (x1 - x0);
		for (let d = d0; d <= d1; d++) {
			const L = this.levels[d];
			const y = d * ROW;
			const ancestor = this.zoom && d < this.zoom.d;
			let i = Math.max(0, floorIndex(L.x, L.n, x0));
			for (; i < L.n && L.x[i] < x1; i++) {
				let px = (L.x[i] - x0) * k, pw = L.w[i] * k;
				if (px + pw <= 0) continue;
				if (px < 0) { pw += px; px = 0; }
				if (px + pw > W) pw = W - px;
				if (pw < 0.5) continue;
				frames++;
				const nk = L.name[i];
				const dim = this.hl && !this.hl[nk];
				let fill;
				if (dim) fill = DIM;
				else if (this.diff) {
					const bp = this.btotal ? L.bw[i] / this.btotal : 0;
					const cp = this.ctotal ? L.cw[i] / this.ctotal : 0;
					fill = diffColor(bp, cp);
				} else fill = this.colors[nk];
				ctx.globalAlpha = ancestor ? 0.55 : 1;
				ctx.fillStyle = fill;
				ctx.fillRect(px, y, pw > 2 ? pw - 1 : pw, ROW - 1);
				if (pw > 3 * this.charW + 6) {
					const name = this.names[nk];
					const fit = Math.floor((pw - 6) / this.charW);
					const label = name.length <= fit ? name : name.slice(0, Math.max(1, fit - 1)) + '…';
					ctx.fillStyle = dim ? '#888' : '#1a1a1a';
					ctx.fillText(label, px + 3, y + ROW / 2);
					drawn.add(name);
				}
			}
		}
		ctx.globalAlpha = 1;
		if (this.hover) {
			const { d, i } = this.hover;
			const L = this.levels[d];
			if (L) {
				const px = (L.x[i] - x0) * k, pw = L.w[i] * k;
				ctx.strokeStyle = '#000';
				ctx.lineWidth = 1;
				ctx.strokeRect(Math.max(0, px) + 0.5, d * ROW + 0.5, Math.min(W, pw) - 1, ROW - 2);
			}
		}
		this.lastDrawn = { names: drawn, frames };
	}

	hit(e) {
		const r = this.canvas.getBoundingClientRect();
		const mx = e.clientX - r.left, my = e.clientY - r.top;
		const d = Math.floor(my / ROW);
		const L = this.levels[d];
		if (!L || mx < 0) return null;
		const [x0, x1] = this.view();
		const v = x0 + (mx * (x1 - x0)) / this.width();
		const i = floorIndex(L.x, L.n, v);
		if (i < 0 || L.x[i] + L.w[i] <= v) return null;
		if (this.zoom && d < this.zoom.d && !(L.x[i] <= x0 && L.x[i] + L.w[i] >= x1)) return null;
		return { d, i };
	}

	onMove(e) {
		const hit = this.hit(e);
		const same = hit && this.hover && hit.d === this.hover.d && hit.i === this.hover.i;
		if (!same) { this.hover = hit; this.schedule(); }
		if (!hit) { this.hideTip(); return; }
		this.canvas.style.cursor = 'pointer';
		this.showTip(hit, e.clientX, e.clientY);
	}

	pct(v, of) {
		return of ? ((100 * v) / of).toFixed(2) + '%' : '–';
	}

	showTip({ d, i }, cx, cy) {
		const L = this.levels[d];
		const name = this.names[L.name[i]];
		const f = this.format;
		const rows = [];
		if (this.diff) {
			const bp = this.btotal ? (100 * L.bw[i]) / this.btotal : 0;
			const cp = this.ctotal ? (100 * L.cw[i]) / this.ctotal : 0;
			const ch = cp - bp;
			const rel = L.bw[i] ? ((L.cw[i] - L.bw[i]) / L.bw[i]) * 100 : null;
			rows.push(['Base total', `${f(L.bw[i])} (${this.pct(L.bw[i], this.btotal)})`]);
			rows.push(['Base self', `${f(L.bs[i])} (${this.pct(L.bs[i], this.btotal)})`]);
			rows.push(['Comparison total', `${f(L.cw[i])} (${this.pct(L.cw[i], this.ctotal)})`]);
			rows.push(['Comparison self', `${f(L.cs2[i])} (${this.pct(L.cs2[i], this.ctotal)})`]);
			rows.push(['Change', `${ch >= 0 ? '+' : ''}${ch.toFixed(2)} pp of total` +
				(rel === null ? ' (new)' : ` (${rel >= 0 ? '+' : ''}${rel.toFixed(1)}%)`)]);
		} else {
			rows.push(['Self', `${f(L.self[i])} (${this.pct(L.self[i], this.total)})`]);
			rows.push(['Total', `${f(L.w[i])} (${this.pct(L.w[i], this.total)})`]);
		}
		const tip = this.tip;
		tip.replaceChildren();
		const h = document.createElement('div');
		h.className = 'tip-name';
		h.textContent = name;
		tip.append(h);
		const t = document.createElement('table');
		for (const [k, v] of rows) {
			const tr = t.insertRow();
			tr.insertCell().textContent = k;
			tr.insertCell().textContent = v;
		}
		tip.append(t);
		tip.hidden = false;
		const w = tip.offsetWidth, hh = tip.offsetHeight;
		let x = cx + 14, y = cy + 14;
		if (x + w > window.innerWidth - 4) x = Math.max(4, cx - w - 14);
		if (y + hh > window.innerHeight - 4) y = Math.max(4, cy - hh - 14);
		tip.style.left = x + 'px';
		tip.style.top = y + 'px';
	}

	hideTip() {
		this.tip.hidden = true;
		this.canvas.style.cursor = '';
	}
}
