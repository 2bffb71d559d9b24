// SPDX-License-Identifier: MIT
// The web UI in Debian's chromium, driven by playwright-core, against a real aggregator that
// test_web_ui.py filled with real agent runs and one synthetic 200k-stack push. Each step
// checks what the page shows (DOM, canvas pixels, downloads), saves screenshots to AP_UI_ART
// and prints one JSON line of figures at the end. Exit 0 on success, 1 with the failing step.
//
// Environment (set by test_web_ui.py): AP_UI_URL, AP_UI_ART, AP_UI_JS (tests/js),
// AP_UI_QUERY (the workload's selector), AP_UI_A_FROM/AP_UI_A_UNTIL (phase A: ap_chain) and
// AP_UI_B_FROM/AP_UI_B_UNTIL (phase B: ap_spin) in unix seconds, AP_UI_BIG_QUERY,
// AP_UI_BIG_FROM, AP_UI_BIG_UNTIL; with AP_UI_PHASE=token only the read-token step runs,
// against AP_UI_TOKEN_URL (an aggregator with --read-token-file) with AP_UI_TOKEN.
import { createRequire } from 'module';
import fs from 'fs';
import path from 'path';

const env = process.env;
const require = createRequire(path.join(env.AP_UI_JS, 'package.json'));
const { chromium } = require('playwright-core');

const BASE = env.AP_UI_URL;
const ART = env.AP_UI_ART;
const Q = env.AP_UI_QUERY;
const A = [env.AP_UI_A_FROM, env.AP_UI_A_UNTIL];
const B = [env.AP_UI_B_FROM, env.AP_UI_B_UNTIL];
const figures = {};
const pageErrors = [];

function check(cond, msg) {
	if (!cond) throw new Error(msg);
}

function watch(page, tag) {
	page.on('pageerror', (e) => pageErrors.push(`${tag}: ${e.message}`));
	page.on('console', (m) => {
		if (m.type() === 'error' && !/status of 4\d\d/.test(m.text())) pageErrors.push(`${tag} console: ${m.text()}`);
	});
}

// Wait for a load the page started to finish (body[data-loading=0] with a newer load count).
async function loaded(page, after = 0, timeout = 60000) {
	await page.waitForFunction((n) => document.body.dataset.loading === '0' &&
		Number(document.body.dataset.loads || 0) > n, after, { timeout });
}

const loadsOf = (page) => page.evaluate(() => Number(document.body.dataset.loads || 0));

async function act(page, fn, timeout) {
	const n = await loadsOf(page);
	await fn();
	await loaded(page, n, timeout);
}

async function errorsText(page) {
	return (await page.textContent('#errors')).trim();
}

async function noErrors(page, where) {
	const t = await errorsText(page);
	check(!t, `${where}: the page shows errors: ${t}`);
}

// The colour drawn at the right end of a frame (away from its label), as [r, g, b].
async function frameColor(page, name) {
	return page.evaluate((name) => {
		const fg = window.aperture.fg;
		const f = fg.findFrame(name);
		if (!f) return null;
		const c = document.getElementById('flamegraph');
		const dpr = c.width / c.clientWidth;
		const x = Math.max(f.left + 1, f.right - 4);
		const px = c.getContext('2d').getImageData(Math.floor(x * dpr), Math.floor(f.y * dpr), 1, 1).data;
		return [px[0], px[1], px[2]];
	}, name);
}

const isDim = (c) => c && c[0] === c[1] && c[1] === c[2] && c[0] > 200; // #dedede

async function frameBox(page, name) {
	const f = await page.evaluate((n) => window.aperture.fg.findFrame(n), name);
	check(f, `no frame named ${name} is drawn`);
	const bb = await (await page.$('#flamegraph')).boundingBox();
	return { ...f, px: bb.x + f.x, py: bb.y + f.y };
}

async function tableNames(page, n = 1000) {
	return page.$$eval('#top-table tbody tr', (rs, n) => rs.slice(0, n).map((r) => r.dataset.name), n);
}

async function shot(page, name) {
	await page.screenshot({ path: path.join(ART, name), fullPage: true });
}

const steps = [];
function step(name, fn) {
	steps.push([name, fn]);
}

let browser, ctx, page;

step('landing page', async () => {
	await page.goto(BASE + '/');
	await loaded(page);
	await noErrors(page, 'landing');
	const q = await page.inputValue('#query');
	check(/mode="/.test(q), `the landing page picked no mode: query is ${JSON.stringify(q)}`);
	check(await page.$('label[for=query]') && await page.$('#from') && await page.getByLabel('Until'),
		'inputs have no labels');
	await shot(page, '01-landing.png');
});

step('label autocompletion', async () => {
	await page.fill('#query', '{');
	await page.focus('#query');
	await page.keyboard.press('End');
	await page.keyboard.type('co');
	await page.waitForFunction(() => [...document.querySelectorAll('#query-ac:not([hidden]) li')]
		.some((li) => li.textContent === 'comm'), null, { timeout: 15000 })
		.catch(async () => { throw new Error(`label names offered for "co": ${await page.textContent('#query-ac')}`); });
	const names = await page.$$eval('#query-ac li', (l) => l.map((x) => x.textContent));
	await page.keyboard.press('ArrowDown');
	while (await page.textContent('#query-ac li[aria-selected=true]') !== 'comm') await page.keyboard.press('ArrowDown');
	await page.keyboard.press('Enter');
	check(names.length > 0 && (await page.inputValue('#query')).startsWith('{comm="'), 'accepting a name does not insert name="');
	await page.keyboard.type('ap_ch');
	const offered = () => page.$$eval('#query-ac:not([hidden]) li', (l) => l.map((x) => x.textContent));
	try {
		await page.waitForFunction(() => [...document.querySelectorAll('#query-ac:not([hidden]) li')]
			.some((li) => li.textContent === 'ap_chain'), null, { timeout: 15000 });
	} catch (e) {
		throw new Error(`values offered for comm: ${await offered()}`);
	}
	await page.keyboard.press('Escape');
});

step('query shows the workload', async () => {
	await page.fill('#query', Q);
	await page.fill('#from', A[0]);
	await page.fill('#until', A[1]);
	await act(page, () => page.click('#run'));
	await noErrors(page, 'query');
	const drawn = await page.evaluate(() => [...window.aperture.fg.lastDrawn.names]);
	for (const f of ['chain_outer', 'chain_middle', 'chain_inner']) {
		check(drawn.includes(f), `the flamegraph does not show ${f}; drawn: ${drawn.slice(0, 30)}`);
	}
	const names = await tableNames(page);
	check(names.includes('chain_inner') && names.includes('chain_outer'),
		`the top table lacks the workload's functions: ${names.slice(0, 20)}`);
	const url = new URL(page.url());
	check(url.searchParams.get('query') === Q && url.searchParams.get('from') === A[0],
		`the URL does not hold the view: ${page.url()}`);
	figures.functions = names.length;
	await shot(page, '02-query.png');
});

step('timeline shows points', async () => {
	await page.waitForFunction(() => Number(document.getElementById('timeline').dataset.points || 0) > 0,
		null, { timeout: 15000 });
	figures.timeline_points = await page.evaluate(() => Number(document.getElementById('timeline').dataset.points));
	// dragging across the chart selects a range: from/until become unix seconds inside the old one
	const bb = await (await page.$('#timeline')).boundingBox();
	const y = bb.y + bb.height / 2;
	const [d0, d1] = await page.evaluate(() => window.aperture.timeline.domain);
	await act(page, async () => {
		await page.mouse.move(bb.x + 56 + (bb.width - 64) * 0.3, y);
		await page.mouse.down();
		await page.mouse.move(bb.x + 56 + (bb.width - 64) * 0.5, y, { steps: 5 });
		await page.mouse.move(bb.x + 56 + (bb.width - 64) * 0.7, y, { steps: 5 });
		await page.mouse.up();
	});
	const f = Number(await page.inputValue('#from')), u = Number(await page.inputValue('#until'));
	// 30% to 70% of the chart's time axis (its domain: the range widened to whole steps)
	const want = [(d0 + 0.3 * (d1 - d0)) / 1000, (d0 + 0.7 * (d1 - d0)) / 1000];
	check(f < u && Math.abs(f - want[0]) <= 1.5 && Math.abs(u - want[1]) <= 1.5,
		`the drag selected [${f}, ${u}], expected about [${want}] (range [${A}])`);
	const url = new URL(page.url());
	check(url.searchParams.get('from') === String(f) && url.searchParams.get('until') === String(u),
		`the dragged range is not in the URL: ${page.url()}`);
	await noErrors(page, 'drag');
	await act(page, () => page.goBack());
	check(await page.inputValue('#from') === A[0], 'back after a drag does not restore the range');
});

step('tooltip', async () => {
	const f = await frameBox(page, 'chain_inner');
	await page.mouse.move(f.px, f.py);
	await page.waitForSelector('#tooltip:not([hidden])', { timeout: 5000 });
	const t = await page.textContent('#tooltip');
	check(t.includes('chain_inner') && t.includes('Self') && t.includes('Total') && /\d%/.test(t),
		`tooltip: ${t}`);
	await page.mouse.move(2, 2);
});

step('search highlights', async () => {
	await page.fill('#search', 'chain_');
	await page.waitForFunction(() => /%/.test(document.getElementById('match-info').textContent));
	await page.waitForTimeout(150); // the redraw is on the next animation frame
	const info = await page.textContent('#match-info');
	const pct = parseFloat((info.match(/([\d.]+)% of total/) || [])[1]);
	check(pct > 0 && pct <= 100, `match info: ${info}`);
	figures.search_matched_pct = pct;
	check(!isDim(await frameColor(page, 'chain_inner')), 'a matching frame is drawn dimmed');
	check(isDim(await frameColor(page, 'total')), 'a frame that does not match is not dimmed');
	const names = await tableNames(page);
	check(names.length && names.every((n) => n.includes('chain_')), `the table is not filtered: ${names}`);
	await shot(page, '03-search.png');
});

step('sort and focus from the table', async () => {
	await page.fill('#search', '');
	await page.waitForFunction(() => document.getElementById('match-info').textContent === '');
	await page.click('#top-table th button[data-key=total]');
	const sort = await page.getAttribute('#top-table th:nth-child(3)', 'aria-sort');
	check(sort === 'descending', `Total header aria-sort ${sort}`);
	const order = await page.evaluate(() => {
		const rows = window.aperture.fg.functions().sort((a, b) => b.total - a.total);
		return rows.map((r) => r.total);
	});
	const shown = await page.$$eval('#top-table tbody tr', (rs) => rs.map((r) => r.dataset.name));
	const totals = await page.evaluate((names) => {
		const m = new Map(window.aperture.fg.functions().map((r) => [r.name, r.total]));
		return names.map((n) => m.get(n));
	}, shown);
	check(totals.every((v, i) => i === 0 || totals[i - 1] >= v), 'rows are not sorted by total');
	check(totals[0] === order[0], 'the first row is not the largest total');
	await page.click('#top-table tbody tr[data-name="chain_middle"]');
	await page.waitForTimeout(150);
	check((await page.textContent('#match-info')).includes('focused chain_middle'), 'no focus info');
	check(await page.getAttribute('#top-table tbody tr[data-name="chain_middle"]', 'aria-selected') === 'true',
		'the focused row is not selected');
	check(!isDim(await frameColor(page, 'chain_middle')), 'the focused function is dimmed');
	check(isDim(await frameColor(page, 'chain_inner')), 'another function is not dimmed under focus');
	check(new URL(page.url()).searchParams.get('focus') === 'chain_middle', 'the focus is not in the URL');
});

step('shared URL restores the view', async () => {
	const url = page.url();
	const before = { names: await tableNames(page, 50), info: await page.textContent('#match-info') };
	const ctx2 = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
	const p2 = await ctx2.newPage();
	watch(p2, 'shared');
	await p2.goto(url);
	await loaded(p2);
	await noErrors(p2, 'shared');
	check(await p2.inputValue('#query') === Q, 'query not restored');
	check(await p2.inputValue('#from') === A[0] && await p2.inputValue('#until') === A[1], 'range not restored');
	const after = { names: await tableNames(p2, 50), info: await p2.textContent('#match-info') };
	check(JSON.stringify(after.names) === JSON.stringify(before.names),
		`the top table differs: ${after.names.slice(0, 8)} vs ${before.names.slice(0, 8)}`);
	check(after.info === before.info, `highlight differs: ${after.info} vs ${before.info}`);
	await shot(p2, '04-shared-url.png');
	await ctx2.close();
});

step('back and forward', async () => {
	await page.click('#top-table tbody tr[data-name="chain_middle"]'); // unfocus
	const url = page.url();
	await act(page, () => page.goBack());
	check(page.url() !== url, 'back did not change the URL');
	check(await page.inputValue('#query') !== Q || await page.inputValue('#from') !== A[0],
		'back did not restore the previous view');
	await act(page, () => page.goForward());
	check(await page.inputValue('#query') === Q && await page.inputValue('#from') === A[0],
		'forward did not restore the view');
});

step('click zooms, Escape resets', async () => {
	// both workloads (phases A and B): each process is part of the width until zoomed into
	await page.fill('#query', '{mode="cpu"}');
	await page.fill('#from', A[0]);
	await page.fill('#until', B[1]);
	await act(page, () => page.click('#run'));
	await noErrors(page, 'zoom');
	const drawn = () => page.evaluate(() => [...window.aperture.fg.lastDrawn.names]);
	check((await drawn()).includes('spin_other_work'), 'phase B is not drawn before the zoom');
	const f = await frameBox(page, 'ap_chain');
	check(f.right - f.left < 0.95 * f.width, `ap_chain already fills the width: ${JSON.stringify(f)}`);
	const inner = await page.evaluate(() => window.aperture.fg.findFrame('chain_inner'));
	await page.mouse.click(f.px, f.py);
	await page.waitForFunction(() => document.getElementById('flamegraph').dataset.zoom === 'ap_chain',
		null, { timeout: 5000 });
	await page.waitForTimeout(150); // the redraw is on the next animation frame
	const z = await page.evaluate(() => window.aperture.fg.findFrame('ap_chain'));
	check(z.left <= 1 && z.right >= z.width - 1, `the zoomed frame does not fill the width: ${JSON.stringify(z)}`);
	const inner2 = await page.evaluate(() => window.aperture.fg.findFrame('chain_inner'));
	check(inner2.right - inner2.left > 1.05 * (inner.right - inner.left), 'chain_inner is not wider after the zoom');
	check(!(await drawn()).includes('spin_other_work'), 'a frame outside the zoomed one is still drawn');
	await shot(page, '05-zoom.png');
	await page.focus('#flamegraph');
	await page.keyboard.press('Escape');
	await page.waitForFunction(() => document.getElementById('flamegraph').dataset.zoom === '');
	await page.waitForTimeout(150);
	check((await drawn()).includes('spin_other_work'), 'Escape did not zoom out');
});

step('API errors are shown', async () => {
	await page.fill('#query', '{mode=');
	await act(page, () => page.click('#run'));
	const t = await errorsText(page);
	check(/\(400\)/.test(t) && t.length > 12, `a malformed query shows no 400 message: "${t}"`);
	figures.error_shown = t.slice(0, 160);
	await shot(page, '06-error.png');
});

step('diff of two ranges', async () => {
	const all = '{mode="cpu"}';
	await page.fill('#query', all);
	await page.fill('#from', A[0]);
	await page.fill('#until', A[1]);
	await act(page, () => page.click('#run'));
	await act(page, () => page.click('#view-diff'));
	await page.fill('#from', A[0]);
	await page.fill('#until', A[1]);
	await page.fill('#to-from', B[0]);
	await page.fill('#to-until', B[1]);
	await act(page, () => page.click('#diff-form button[type=submit]'));
	await noErrors(page, 'diff');
	const rows = await page.evaluate(() => window.aperture.fg.functions());
	const get = (n) => rows.find((r) => r.name === n);
	const inner = get('chain_inner'), spin = get('spin_other_work');
	check(inner && inner.change < 0, `chain_inner did not shrink: ${JSON.stringify(inner)}`);
	check(spin && spin.change > 0, `spin_other_work did not grow: ${JSON.stringify(spin)}`);
	const cb = await frameColor(page, 'chain_inner'), cr = await frameColor(page, 'spin_other_work');
	check(cb && cb[2] > cb[0] + 40, `chain_inner is not blue: ${cb}`);
	check(cr && cr[0] > cr[2] + 40, `spin_other_work is not red: ${cr}`);
	const f = await frameBox(page, 'spin_other_work');
	await page.mouse.move(f.px, f.py);
	await page.waitForSelector('#tooltip:not([hidden])');
	const t = await page.textContent('#tooltip');
	check(t.includes('Base total') && t.includes('Comparison total') && t.includes('Change'), `diff tooltip: ${t}`);
	await page.mouse.move(2, 2);
	const u = new URL(page.url());
	check(u.searchParams.get('view') === 'diff' && u.searchParams.get('to_from') === B[0], `diff URL: ${page.url()}`);
	figures.diff_chain_inner_pp = Number(inner.change.toFixed(2));
	figures.diff_spin_pp = Number(spin.change.toFixed(2));
	await shot(page, '07-diff.png');
	// the diff link reopens as a diff
	const p2 = await ctx.newPage();
	watch(p2, 'diff link');
	await p2.goto(page.url());
	await loaded(p2);
	check(await p2.evaluate(() => window.aperture.fg.diff), 'a diff link does not reopen as a diff');
	check(JSON.stringify(await tableNames(p2, 30)) === JSON.stringify(await tableNames(page, 30)),
		'the diff link shows another table');
	await p2.close();
});

step('downloads', async () => {
	await act(page, () => page.click('#view-single'));
	await page.fill('#query', Q);
	await page.fill('#from', A[0]);
	await page.fill('#until', A[1]);
	await act(page, () => page.click('#run'));
	for (const [btn, kind] of [['#dl-svg', 'svg'], ['#dl-pprof', 'pprof']]) {
		const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 30000 }), page.click(btn)]);
		const file = path.join(ART, `download.${kind === 'svg' ? 'svg' : 'pb.gz'}`);
		await dl.saveAs(file);
		const buf = fs.readFileSync(file);
		if (kind === 'svg') check(buf.toString('utf8', 0, 4096).includes('<svg'), 'the SVG download is no SVG');
		else check(buf[0] === 0x1f && buf[1] === 0x8b, 'the pprof download is not gzipped');
		figures[`download_${kind}_bytes`] = buf.length;
	}
	await noErrors(page, 'downloads');
});

step('lock mode shows its tables', async () => {
	await page.goto(`${BASE}/?query=${encodeURIComponent('{mode="lock"}')}&from=${A[0]}&until=${A[1]}`);
	await loaded(page);
	await noErrors(page, 'lock mode');
	check(!(await page.isHidden('#tables-panel')), 'the lock tables panel is hidden in lock mode');
	const rows = await page.$$eval('#locks-table tbody tr', (rs) => rs.map((r) => r.textContent));
	check(rows.length > 0, 'the locks table is empty');
	check(rows.some((r) => r.includes('hog')), `no lock row names ap_locks' hog as a holder: ${rows.slice(0, 5)}`);
	const n = await page.evaluate(() => window.aperture.fg.levels.reduce((k, L) => k + L.n, 0));
	check(n > 2, 'the lock flamegraph is empty');
	figures.lock_rows = rows.length;
	await page.click('#locks-table th button[data-key=contentions]');
	check(await page.getAttribute('#locks-table th:nth-child(3)', 'aria-sort') === 'descending',
		'the locks table does not sort by contentions');
	await shot(page, '09-locks.png');
});

step('200k-stack profile stays responsive', async () => {
	const p = await ctx.newPage();
	watch(p, 'large');
	await p.addInitScript(() => {
		window.__longest = 0;
		new PerformanceObserver((l) => {
			for (const e of l.getEntries()) window.__longest = Math.max(window.__longest, e.duration);
		}).observe({ type: 'longtask', buffered: true });
	});
	const u = `${BASE}/?query=${encodeURIComponent(env.AP_UI_BIG_QUERY)}&from=${env.AP_UI_BIG_FROM}&until=${env.AP_UI_BIG_UNTIL}`;
	const t0 = Date.now();
	await p.goto(u);
	await loaded(p, 0, 180000);
	figures.large_load_ms = Date.now() - t0;
	await noErrors(p, 'large');
	const st = await p.evaluate(() => {
		const fg = window.aperture.fg;
		let frames = 0;
		for (const L of fg.levels) frames += L.n;
		return { frames, drawn: fg.lastDrawn.frames, rows: document.querySelectorAll('#top-table tbody tr').length,
			note: document.getElementById('table-note').textContent };
	});
	check(st.frames > 1000, `the large profile has only ${st.frames} frames`);
	check(st.rows <= 301, `the table renders ${st.rows} rows (not capped)`);
	figures.large_frames = st.frames;
	figures.large_table_rows = st.rows;
	figures.large_table_note = st.note;
	// interactions still answer: a search and a hover
	const t1 = Date.now();
	await p.fill('#search', 'leaf_1');
	await p.waitForFunction(() => /%|no frames/.test(document.getElementById('match-info').textContent), null,
		{ timeout: 30000 });
	figures.large_search_ms = Date.now() - t1;
	const bb = await (await p.$('#flamegraph')).boundingBox();
	await p.mouse.move(bb.x + bb.width / 2, bb.y + 9);
	await p.waitForSelector('#tooltip:not([hidden])', { timeout: 30000 });
	figures.large_longest_task_ms = Math.round(await p.evaluate(() => window.__longest));
	await shot(p, '08-large.png');
	await p.close();
});

const TOKEN_STEP = 'read token asked once';
step(TOKEN_STEP, async () => {
	const c = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
	const p = await c.newPage();
	watch(p, 'token');
	let dialogs = 0;
	await p.exposeFunction('__dialogOpened', () => { dialogs++; });
	await p.addInitScript(() => {
		const orig = HTMLDialogElement.prototype.showModal;
		HTMLDialogElement.prototype.showModal = function () { window.__dialogOpened(); return orig.call(this); };
	});
	await p.goto(`${env.AP_UI_TOKEN_URL || BASE}/?query=${encodeURIComponent(Q)}&from=${A[0]}&until=${A[1]}`);
	await p.waitForSelector('#token-dialog[open]', { timeout: 30000 });
	await p.fill('#token-input', env.AP_UI_TOKEN);
	await p.click('#token-form button[value=ok]');
	await loaded(p);
	await noErrors(p, 'token');
	check((await tableNames(p)).includes('chain_inner'), 'no data with the read token');
	check(dialogs === 1, `the token dialog opened ${dialogs} times`);
	check(await p.evaluate(() => sessionStorage.getItem('aperture-read-token')) === env.AP_UI_TOKEN,
		'the token is not in sessionStorage');
	await c.close();
});

async function main() {
	fs.mkdirSync(ART, { recursive: true });
	browser = await chromium.launch({ executablePath: env.AP_UI_CHROMIUM || '/usr/bin/chromium',
		args: ['--no-sandbox'] });
	ctx = await browser.newContext({ viewport: { width: 1400, height: 1000 }, acceptDownloads: true });
	page = await ctx.newPage();
	watch(page, 'main');
	let failed = null;
	// phase "token" runs against an aggregator that wants a read token, the rest without
	const tokenPhase = env.AP_UI_PHASE === 'token';
	for (const [name, fn] of steps.filter(([n]) => (n === TOKEN_STEP) === tokenPhase)) {
		const t0 = Date.now();
		try {
			await fn();
			console.log(`ok   ${name} (${Date.now() - t0} ms)`);
		} catch (e) {
			console.log(`FAIL ${name}: ${e.message}`);
			failed = name;
			await page.screenshot({ path: path.join(ART, 'failure.png'), fullPage: true }).catch(() => {});
			break;
		}
	}
	if (!failed && pageErrors.length) failed = `page errors: ${pageErrors.join(' | ')}`;
	else if (pageErrors.length) console.log(`page errors: ${pageErrors.join(' | ')}`);
	console.log('FIGURES ' + JSON.stringify(figures));
	await browser.close();
	if (failed) {
		console.log(`FAIL: ${failed}`);
		process.exit(1);
	}
}

main().catch((e) => {
	console.log(`FAIL: ${e.stack || e}`);
	process.exit(1);
});
