// SPDX-License-Identifier: MIT
// The timeline chart of /api/v1/series on a canvas: one filled line per series, shaded ranges
// (the diff view's base and comparison), and a drag selection that reports a time range.

const PAD_L = 56, PAD_R = 8, PAD_T = 8, PAD_B = 20;

function niceTime(ms, span) {
	const d = new Date(ms);
	const p = (n) => String(n).padStart(2, '0');
	const hm = `${p(d.getHours())}:${p(d.getMinutes())}`;
	if (span < 5 * 60e3) return `${hm}:${p(d.getSeconds())}`;
	if (span > 36 * 3600e3) return `${p(d.getMonth() + 1)}-${p(d.getDate())} ${hm}`;
	return hm;
}

export class Timeline {
	constructor(canvas, { format = String, onSelect = () => {}, onHover = () => {} } = {}) {
		this.canvas = canvas;
		this.ctx = canvas.getContext('2d');
		this.format = format;
		this.onSelect = onSelect;
		this.onHover = onHover;
		this.domain = [Date.now() - 3600e3, Date.now()];
		this.series = [];
		this.ranges = [];
		this.drag = null;
		this.hoverX = null;
		this.queued = false;

		canvas.addEventListener('pointerdown', (e) => {
			if (e.button !== 0) return;
			canvas.setPointerCapture(e.pointerId);
			const x = this.localX(e);
			this.drag = { a: x, b: x };
			this.schedule();
		});
		canvas.addEventListener('pointermove', (e) => {
			const x = this.localX(e);
			if (this.drag) this.drag.b = x;
			this.hoverX = x;
			this.onHover(this.valueAt(x));
			this.schedule();
		});
		canvas.addEventListener('pointerup', (e) => {
			if (!this.drag) return;
			const { a, b } = this.drag;
			this.drag = null;
			this.schedule();
			if (Math.abs(b - a) < 4) return; // a click, not a selection
			const t0 = this.timeAt(Math.min(a, b)), t1 = this.timeAt(Math.max(a, b));
			this.onSelect(t0, t1);
		});
		canvas.addEventListener('pointerleave', () => {
			this.hoverX = null;
			this.onHover(null);
			this.schedule();
		});
		new ResizeObserver(() => this.schedule()).observe(canvas.parentElement);
	}

	// series: [{points: [[ms, v], ...], color, label}], ranges: [{from, until, color}] in ms
	setData(domain, series, ranges = []) {
		this.domain = domain;
		this.series = series;
		this.ranges = ranges;
		this.schedule();
	}

	localX(e) {
		const r = this.canvas.getBoundingClientRect();
		return Math.min(Math.max(e.clientX - r.left, PAD_L), r.width - PAD_R);
	}

	timeAt(x) {
		const W = this.canvas.clientWidth;
		const [a, b] = this.domain;
		return a + ((x - PAD_L) / Math.max(1, W - PAD_L - PAD_R)) * (b - a);
	}

	xAt(t, W) {
		const [a, b] = this.domain;
		return PAD_L + ((t - a) / Math.max(1, b - a)) * (W - PAD_L - PAD_R);
	}

	valueAt(x) {
		const s = this.series[0];
		if (!s || !s.points.length) return null;
		const t = this.timeAt(x);
		let best = s.points[0];
		for (const p of s.points) if (Math.abs(p[0] - t) < Math.abs(best[0] - t)) best = p;
		return { t: best[0], v: best[1] };
	}

	schedule() {
		if (this.queued) return;
		this.queued = true;
		requestAnimationFrame(() => { this.queued = false; this.draw(); });
	}

	draw() {
		const c = this.canvas, dpr = window.devicePixelRatio || 1;
		const W = Math.max(100, c.parentElement.clientWidth), H = c.clientHeight || 110;
		if (c.width !== Math.round(W * dpr) || c.height !== Math.round(H * dpr)) {
			c.width = Math.round(W * dpr);
			c.height = Math.round(H * dpr);
			c.style.width = W + 'px';
		}
		const ctx = this.ctx;
		ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
		ctx.clearRect(0, 0, W, H);
		ctx.font = '11px system-ui, sans-serif';
		const plotH = H - PAD_T - PAD_B;
		let max = 0;
		for (const s of this.series) for (const p of s.points) max = Math.max(max, p[1]);
		const yAt = (v) => PAD_T + plotH - (max ? (v / max) * plotH : 0);

		for (const r of this.ranges) {
			const a = Math.max(PAD_L, this.xAt(r.from, W)), b = Math.min(W - PAD_R, this.xAt(r.until, W));
			if (b > a) {
				ctx.fillStyle = r.color;
				ctx.fillRect(a, PAD_T, b - a, plotH);
			}
		}
		// axes
		ctx.strokeStyle = '#c8c8c8';
		ctx.lineWidth = 1;
		ctx.beginPath();
		ctx.moveTo(PAD_L - 0.5, PAD_T);
		ctx.lineTo(PAD_L - 0.5, PAD_T + plotH + 0.5);
		ctx.lineTo(W - PAD_R, PAD_T + plotH + 0.5);
		ctx.stroke();
		ctx.fillStyle = '#666';
		ctx.textBaseline = 'middle';
		ctx.textAlign = 'right';
		ctx.fillText(this.format(max), PAD_L - 4, PAD_T + 5);
		ctx.fillText('0', PAD_L - 4, PAD_T + plotH);
		ctx.textAlign = 'center';
		ctx.textBaseline = 'top';
		const [t0, t1] = this.domain, span = t1 - t0;
		const ticks = Math.max(2, Math.floor((W - PAD_L - PAD_R) / 110));
		for (let k = 0; k <= ticks; k++) {
			const t = t0 + (span * k) / ticks;
			const x = this.xAt(t, W);
			ctx.fillText(niceTime(t, span), Math.min(Math.max(x, PAD_L + 20), W - PAD_R - 20), PAD_T + plotH + 4);
		}
		ctx.save();
		ctx.beginPath();
		ctx.rect(PAD_L, 0, W - PAD_L - PAD_R, PAD_T + plotH + 1);
		ctx.clip();
		for (const s of this.series) {
			if (!s.points.length) continue;
			ctx.beginPath();
			s.points.forEach((p, k) => {
				const x = this.xAt(p[0], W), y = yAt(p[1]);
				if (k === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
			});
			ctx.strokeStyle = s.color;
			ctx.lineWidth = 1.5;
			ctx.stroke();
			if (s.fill) {
				const last = s.points[s.points.length - 1], first = s.points[0];
				ctx.lineTo(this.xAt(last[0], W), yAt(0));
				ctx.lineTo(this.xAt(first[0], W), yAt(0));
				ctx.closePath();
				ctx.fillStyle = s.fill;
				ctx.fill();
			}
			if (s.points.length < 60) {
				ctx.fillStyle = s.color;
				for (const p of s.points) {
					if (!p[1]) continue;
					ctx.beginPath();
					ctx.arc(this.xAt(p[0], W), yAt(p[1]), 2.2, 0, 2 * Math.PI);
					ctx.fill();
				}
			}
		}
		ctx.restore();
		if (this.drag) {
			const a = Math.min(this.drag.a, this.drag.b), b = Math.max(this.drag.a, this.drag.b);
			ctx.fillStyle = 'rgba(40,110,220,0.18)';
			ctx.fillRect(a, PAD_T, b - a, plotH);
			ctx.strokeStyle = 'rgba(40,110,220,0.8)';
			ctx.strokeRect(a + 0.5, PAD_T + 0.5, b - a, plotH);
		} else if (this.hoverX !== null) {
			ctx.strokeStyle = 'rgba(0,0,0,0.35)';
			ctx.beginPath();
			ctx.moveTo(this.hoverX + 0.5, PAD_T);
			ctx.lineTo(this.hoverX + 0.5, PAD_T + plotH);
			ctx.stroke();
		}
	}
}
