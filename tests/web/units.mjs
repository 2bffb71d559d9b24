// SPDX-License-Identifier: MIT
// The UI's DOM-free code in node: time forms, selectors, value formats, the flamebearer decoder
// and the per-function table (recursion counted once), search statistics. Exit 1 on a failure.
import assert from 'assert/strict';
import path from 'path';
import { pathToFileURL } from 'url';

const web = process.env.AP_WEB_DIR || path.join(path.dirname(new URL(import.meta.url).pathname), '..', '..', 'web');
const q = await import(pathToFileURL(path.join(web, 'query.js')));
const fgm = await import(pathToFileURL(path.join(web, 'flamegraph.js')));

const tests = [];
const test = (name, fn) => tests.push([name, fn]);

test('parseTime', () => {
	const now = Date.UTC(2026, 11, 6, 12, 0, 0);
	assert.equal(q.parseTime('now', now), now);
	assert.equal(q.parseTime('', now), now);
	assert.equal(q.parseTime('now-1h', now), now - 3600e3);
	assert.equal(q.parseTime('now-15m', now), now - 900e3);
	assert.equal(q.parseTime('now-7d', now), now - 7 * 86400e3);
	assert.equal(q.parseTime('1700000000', now), 1700000000e3);
	assert.equal(q.parseTime('1700000000123', now), 1700000000123);
	assert.equal(q.parseTime('1700000000123456', now), 1700000000123.456);
	assert.equal(q.parseTime('1700000000123456789', now), 1700000000123.4568);
	assert.equal(q.parseTime('2026-12-06T10:00:00Z', now), Date.UTC(2026, 11, 6, 10));
	assert.ok(Number.isNaN(q.parseTime('yesterday', now)));
});

test('selectors', () => {
	assert.deepEqual(q.parseSelector(''), []);
	assert.deepEqual(q.parseSelector('{}'), []);
	assert.deepEqual(q.parseSelector(' { mode = "cpu" , comm=~"post.*",host!="a\\"b" } '), [
		{ name: 'mode', op: '=', value: 'cpu' },
		{ name: 'comm', op: '=~', value: 'post.*' },
		{ name: 'host', op: '!=', value: 'a"b' },
	]);
	assert.deepEqual(q.parseSelector('{service.name!~"x"}'), [{ name: 'service.name', op: '!~', value: 'x' }]);
	for (const bad of ['{mode=', 'mode="cpu"', '{mode=cpu}', '{mode="cpu" comm="x"}', '{="x"}']) {
		assert.equal(q.parseSelector(bad), null, bad);
	}
	const ms = [{ name: 'comm', op: '=', value: 'a\\b"c' }];
	assert.deepEqual(q.parseSelector(q.formatSelector(ms)), ms);
	assert.equal(q.selectorMode('{comm="x",mode="lock"}'), 'lock');
	assert.equal(q.selectorMode('{mode=~"l.*"}'), '');
	assert.equal(q.withMode('{comm="x",mode="lock"}', 'cpu'), '{mode="cpu",comm="x"}');
	assert.equal(q.withMode('{comm="x"}', 'cpu'), '{mode="cpu",comm="x"}');
	assert.equal(q.withMode('{mode="cpu"}', ''), '{}');
	assert.equal(q.withMode('{bad', 'cpu'), null);
});

test('formats and steps', () => {
	assert.equal(q.formatter('nanoseconds')(1.5e9), '1.50 s');
	assert.equal(q.formatter('nanoseconds')(2500), '2.5 µs');
	assert.equal(q.formatter('bytes')(3 * 1024 * 1024), '3.0 MiB');
	assert.equal(q.formatter('count')(12345), '12,345');
	assert.equal(q.niceStep(900), 5);
	assert.equal(q.niceStep(3600), 15);
	assert.equal(q.niceStep(7 * 86400), 3600);
});

// a graph object without a canvas: the decoder and the tree walks only
function graph(fb, diff) {
	const g = Object.create(fgm.FlameGraph.prototype);
	g.names = fb.names;
	g.levels = fgm.decode(fb, diff);
	g.diff = diff;
	g.schedule = () => {};
	const root = g.levels[0];
	g.total = root.w[0];
	g.btotal = diff ? root.bw[0] : 0;
	g.ctotal = diff ? root.cw[0] : 0;
	return g;
}

// total(10) -> a(7: self 1) -> b(6: self 2) -> a(4: self 4); total -> c(3: self 3)
const single = {
	names: ['total', 'a', 'b', 'c'],
	levels: [[0, 10, 0, 0], [0, 7, 1, 1, 0, 3, 3, 3], [0, 6, 2, 2], [0, 4, 4, 1]],
};

test('decode', () => {
	const L = fgm.decode(single, false);
	assert.deepEqual([...L[1].x], [0, 7]);
	assert.deepEqual([...L[1].w], [7, 3]);
	assert.deepEqual([...L[0].cs], [0]);
	assert.deepEqual([...L[0].ce], [2]);
	assert.deepEqual([...L[1].cs], [0, 1]); // a has child b, c none
	assert.deepEqual([...L[1].ce], [1, 1]);
	assert.deepEqual([...L[3].x], [0]);
});

test('functions: recursion counted once', () => {
	const rows = Object.fromEntries(graph(single, false).functions().map((r) => [r.name, r]));
	assert.deepEqual(Object.keys(rows).sort(), ['a', 'b', 'c']);
	assert.equal(rows.a.self, 5);
	assert.equal(rows.a.total, 7);
	assert.equal(rows.b.total, 6);
	assert.equal(rows.c.self, 3);
});

test('highlight: topmost matches', () => {
	const g = graph(single, false);
	const r = g.highlight((n) => n === 'a');
	assert.equal(r.total, 7);
	assert.equal(r.frames, 2);
	assert.equal(r.pct, 70);
	assert.equal(g.highlight((n) => n === 'zzz').total, 0);
	assert.equal(g.highlight(null), null);
});

test('diff decode and change', () => {
	// base: total 10 = a 10; cmp: total 10 = a 4 + c 6 (c is new)
	const fb = {
		names: ['total', 'a', 'c'],
		levels: [[0, 10, 0, 0, 10, 0, 0], [0, 10, 10, 0, 4, 4, 1, 0, 0, 0, 0, 6, 6, 2]],
	};
	const g = graph(fb, true);
	const L = g.levels[1];
	assert.deepEqual([...L.x], [0, 14]);
	assert.deepEqual([...L.w], [14, 6]);
	const rows = Object.fromEntries(g.functions().map((r) => [r.name, r]));
	assert.equal(rows.a.change, -60);
	assert.equal(rows.c.change, 60);
	assert.match(fgm.diffColor(0.1, 0.04), /^rgb\(\d+,\d+,255\)$/);
	assert.match(fgm.diffColor(0, 0.6), /^rgb\(255,/);
	assert.equal(fgm.diffColor(0.5, 0.5), 'rgb(210,210,210)');
});

let failed = 0;
for (const [name, fn] of tests) {
	try {
		fn();
		console.log(`ok   ${name}`);
	} catch (e) {
		failed++;
		console.log(`FAIL ${name}: ${e.message}`);
	}
}
process.exit(failed ? 1 : 0);
