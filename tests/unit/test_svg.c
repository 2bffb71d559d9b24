// SPDX-License-Identifier: MIT
/*
 * Flamegraph SVG: well-formed XML (python3's minidom parses it), frames laid out as a flame
 * graph with widths proportional to weight, names escaped, and, when node is installed, the
 * inline script's zoom and search run against a small DOM stand-in.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
/* cmocka.h needs the headers above */
#include <cmocka.h>

#include "format/format.h"
#include "lib/profile.h"

#define FRAME_W 1180.0
#define PAD 10.0

/* Parses the SVG (argv[1]) and prints one line per frame for the C side to check; with more
 * arguments also dumps the frames as JSON and the inline script for the node test. */
static const char check_py[] =
    "import sys, json, xml.dom.minidom as m\n"
    "doc = m.parse(sys.argv[1])\n"
    "svg = doc.documentElement\n"
    "assert svg.tagName == 'svg', svg.tagName\n"
    "def text(e):\n"
    "    return ''.join(n.data for n in e.childNodes\n"
    "                   if n.nodeType in (n.TEXT_NODE, n.CDATA_SECTION_NODE))\n"
    "ids = {t.getAttribute('id'): t for t in svg.getElementsByTagName('text')\n"
    "       if t.getAttribute('id')}\n"
    "print('TITLE', text(ids['title']))\n"
    "print('SUB', text(ids['subtitle']))\n"
    "print('DETAILS', text(ids['details']))\n"
    "print('ASSETS', len(svg.getElementsByTagName('script')),\n"
    "      len(svg.getElementsByTagName('style')))\n"
    "frames = []\n"
    "for g in svg.getElementsByTagName('g'):\n"
    "    if g.getAttribute('class') != 'f':\n"
    "        continue\n"
    "    r = g.getElementsByTagName('rect')[0]\n"
    "    f = dict(d=int(g.getAttribute('data-d')), s=int(g.getAttribute('data-s')),\n"
    "             v=int(g.getAttribute('data-v')), x=float(r.getAttribute('x')),\n"
    "             w=float(r.getAttribute('width')), y=int(r.getAttribute('y')),\n"
    "             fill=r.getAttribute('fill'),\n"
    "             title=text(g.getElementsByTagName('title')[0]),\n"
    "             label=text(g.getElementsByTagName('text')[0]))\n"
    "    frames.append(f)\n"
    "    print('F', f['d'], f['s'], f['v'], '%.3f' % f['x'], '%.3f' % f['w'], f['y'],\n"
    "          f['fill'], f['title'])\n"
    "if len(sys.argv) > 3:\n"
    "    root = {k: svg.getAttribute(k) for k in ('data-fw', 'data-pad', 'data-cw',\n"
    "                                             'data-total')}\n"
    "    cls = {k: ids[k].getAttribute('class') for k in ids}\n"
    "    txt = {k: text(ids[k]) for k in ids}\n"
    "    json.dump(dict(root=root, cls=cls, text=txt, frames=frames), open(sys.argv[2], 'w'))\n"
    "    open(sys.argv[3], 'w').write(text(svg.getElementsByTagName('script')[0]))\n";

/* A DOM stand-in just big enough for the flamegraph script, then zoom/search scenarios on
 * the profile built by build_profile(). */
static const char dom_js[] =
    "const fs = require('fs');\n"
    "const src = fs.readFileSync(process.argv[2], 'utf8');\n"
    "const data = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));\n"
    "let failed = 0;\n"
    "function check(c, msg) { if (!c) { failed++; console.log('FAIL: ' + msg); } }\n"
    "class El {\n"
    "  constructor(tag, attrs) {\n"
    "    this.nodeName = tag; this.nodeType = 1; this.parentNode = null;\n"
    "    this.attrs = Object.assign({}, attrs || {}); this.children = [];\n"
    "    this.textContent = ''; this.listeners = {};\n"
    "    const set = new Set((this.attrs['class'] || '').split(' ').filter(Boolean));\n"
    "    this.cls = set;\n"
    "    this.classList = { add: c => set.add(c), remove: c => set.delete(c),\n"
    "                       contains: c => set.has(c) };\n"
    "  }\n"
    "  getAttribute(k) { return k in this.attrs ? String(this.attrs[k]) : null; }\n"
    "  setAttribute(k, v) { this.attrs[k] = String(v); }\n"
    "  appendChild(c) { c.parentNode = this; this.children.push(c); return c; }\n"
    "  getElementsByTagName(t) {\n"
    "    const out = [];\n"
    "    const walk = e => { for (const c of e.children) { if (c.nodeName === t) out.push(c);\n"
    "                                                      walk(c); } };\n"
    "    walk(this); return out;\n"
    "  }\n"
    "  addEventListener(ev, fn) { this.listeners[ev] = fn; }\n"
    "}\n"
    "const root = new El('svg', data.root), ids = {};\n"
    "for (const id in data.text) {\n"
    "  ids[id] = root.appendChild(new El('text', { class: data.cls[id] || '' }));\n"
    "  ids[id].textContent = data.text[id];\n"
    "}\n"
    "ids.frames = root.appendChild(new El('g', { id: 'frames' }));\n"
    "const byName = {};\n"
    "for (const f of data.frames) {\n"
    "  const g = ids.frames.appendChild(new El('g', { class: 'f', 'data-s': f.s,\n"
    "                                                 'data-v': f.v, 'data-d': f.d }));\n"
    "  g.appendChild(new El('title')).textContent = f.title;\n"
    "  const r = g.appendChild(new El('rect', { x: f.x, width: f.w }));\n"
    "  g.appendChild(new El('text', { x: f.x + 3 })).textContent = f.label;\n"
    "  byName[f.title.substring(0, f.title.lastIndexOf(' ('))] = { g: g, r: r, f: f };\n"
    "}\n"
    "let answer = null;\n"
    "const document = { documentElement: root, getElementById: id => ids[id], listeners: {},\n"
    "  addEventListener(ev, fn) { this.listeners[ev] = fn; } };\n"
    "const window = { prompt: () => answer };\n"
    "new Function('document', 'window', src + '\\n;init({});')(document, window);\n"
    "const W = +data.root['data-fw'], PAD = +data.root['data-pad'];\n"
    "const near = (a, b) => Math.abs(a - b) < 0.02;\n"
    "const x = n => +byName[n].r.getAttribute('x');\n"
    "const w = n => +byName[n].r.getAttribute('width');\n"
    "const hidden = n => byName[n].g.cls.has('hide');\n"
    "const click = (el, n) => el.listeners.click({ target: byName[n] ? byName[n].r : el });\n"
    "ids.frames.listeners.mouseover({ target: byName['compute'].r });\n"
    "check(ids.details.textContent === byName['compute'].f.title, 'hover shows the title');\n"
    "click(ids.frames, 'compute');\n"
    "check(near(x('compute'), PAD) && near(w('compute'), W), 'zoomed frame spans the width');\n"
    "check(near(w('mul'), W * 45 / 60), 'child rescaled: ' + w('mul'));\n"
    "check(near(x('mul'), PAD + W * 15 / 60), 'child moved: ' + x('mul'));\n"
    "check(!hidden('main') && byName['main'].g.cls.has('anc') && near(w('main'), W),\n"
    "      'ancestor shown full width, faded');\n"
    "check(hidden('read_file') && hidden('vfs_read_[k]'), 'siblings and their subtrees hidden');\n"
    "check(!ids.unzoom.cls.has('hide'), 'reset zoom offered');\n"
    "answer = 'mul';\n"
    "ids.search.listeners.click({});\n"
    "check(ids.matched.textContent === 'Matched: 75.0%', 'zoomed match: ' +\n"
    "      ids.matched.textContent);\n"
    "ids.unzoom.listeners.click({});\n"
    "check(!hidden('read_file') && near(w('read_file'), W * 30 / 100), 'unzoom restores');\n"
    "check(!byName['main'].g.cls.has('anc') && ids.unzoom.cls.has('hide'), 'unzoom resets');\n"
    "check(ids.matched.textContent === 'Matched: 45.0%', 'match rescaled after unzoom: ' +\n"
    "      ids.matched.textContent);\n"
    "answer = '^read|vfs';\n"
    "ids.search.listeners.click({});\n"
    "check(ids.matched.textContent === 'Matched: 30.0%', 'nested matches counted once: ' +\n"
    "      ids.matched.textContent);\n"
    "check(byName['read_file'].g.cls.has('hl') && byName['vfs_read_[k]'].g.cls.has('hl') &&\n"
    "      !byName['compute'].g.cls.has('hl'), 'matches highlighted');\n"
    "answer = '[unknown';\n"
    "ids.search.listeners.click({});\n"
    "check(ids.matched.textContent === 'Matched: 10.0%', 'invalid regex falls back to text: ' +\n"
    "      ids.matched.textContent);\n"
    "click(ids.frames, 'compute');\n"
    "document.listeners.keydown({ key: 'Escape', preventDefault() {} });\n"
    "check(!hidden('read_file') && ids.matched.textContent.trim() === '',\n"
    "      'Escape resets zoom and search');\n"
    "check(!byName['read_file'].g.cls.has('hl'), 'Escape clears highlights');\n"
    "console.log(failed ? 'FAILED' : 'PASSED');\n"
    "process.exit(failed ? 1 : 0);\n";

struct fr {
	unsigned d;
	unsigned long long s, v;
	double x, w;
	int y;
	char fill[48];
	char title[1024];
};

struct summary {
	char title[1024], sub[1024], details[1024];
	int scripts, styles;
	struct fr frames[64];
	size_t n;
};

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	fclose(f);
}

static void chomp(char *s) { s[strcspn(s, "\n")] = '\0'; }

/* Writes the SVG of p into a temporary file and returns its path in `path`. */
static void write_svg(const struct ap_profile *p, const struct ap_write_opts *opts, char *path)
{
	int fd;
	FILE *f;

	strcpy(path, "/tmp/ap-test-svg-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	assert_int_equal(ap_write_svg(p, f, opts), 0);
	fclose(f);
}

/* Parses the SVG with python3 (well-formedness) and collects its frames. */
static void parse_svg(const char *svg, struct summary *sum)
{
	char py[] = "/tmp/ap-test-svg-py-XXXXXX", cmd[512], line[1024];
	int fd = mkstemp(py);
	FILE *pp;

	assert_true(fd >= 0);
	close(fd);
	write_file(py, check_py);
	snprintf(cmd, sizeof(cmd), "PYTHONIOENCODING=utf-8 python3 %s %s", py, svg);
	pp = popen(cmd, "r");
	assert_non_null(pp);
	memset(sum, 0, sizeof(*sum));
	while (fgets(line, sizeof(line), pp)) {
		struct fr *f = &sum->frames[sum->n];
		int off = 0;

		chomp(line);
		if (strncmp(line, "TITLE ", 6) == 0) {
			snprintf(sum->title, sizeof(sum->title), "%s", line + 6);
		} else if (strncmp(line, "SUB ", 4) == 0) {
			snprintf(sum->sub, sizeof(sum->sub), "%s", line + 4);
		} else if (strncmp(line, "DETAILS ", 8) == 0) {
			snprintf(sum->details, sizeof(sum->details), "%s", line + 8);
		} else if (sscanf(line, "ASSETS %d %d", &sum->scripts, &sum->styles) == 2) {
			continue;
		} else if (sum->n < 64 &&
			   sscanf(line, "F %u %llu %llu %lf %lf %d %47s %n", &f->d, &f->s, &f->v,
				  &f->x, &f->w, &f->y, f->fill, &off) == 7 &&
			   off) {
			snprintf(f->title, sizeof(f->title), "%s", line + off);
			sum->n++;
		}
	}
	assert_int_equal(pclose(pp), 0); /* python3 exits non-zero on a parse error */
	unlink(py);
}

/* The frame whose title starts with "name (". */
static const struct fr *find(const struct summary *sum, const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < sum->n; i++)
		if (strncmp(sum->frames[i].title, name, len) == 0 &&
		    strncmp(sum->frames[i].title + len, " (", 2) == 0)
			return &sum->frames[i];
	return NULL;
}

static const struct fr *must_find(const struct summary *sum, const char *name)
{
	const struct fr *f = find(sum, name);

	if (!f)
		fail_msg("frame \"%s\" not in the SVG", name);
	return f;
}

static void add(struct ap_profile *p, const char *comm, const uint32_t *frames, size_t n,
		uint64_t v0, uint64_t v1)
{
	struct ap_sample s = {0};

	s.stack = ap_profile_add_stack(p, frames, n);
	s.comm = ap_profile_intern(p, comm);
	s.pid = 42;
	s.values[0] = v0;
	s.values[1] = v1;
	assert_int_equal(ap_profile_add_sample(p, &s), 0);
}

static uint32_t u(struct ap_profile *p, const char *name)
{
	return ap_profile_add_named_frame(p, name, "app", AP_FRAME_USER);
}

static uint32_t k(struct ap_profile *p, const char *name)
{
	return ap_profile_add_named_frame(p, name, "[kernel.kallsyms]", AP_FRAME_KERNEL);
}

/*
 * all(100) > app(100) > main(100) > { [unknown] (libfoo.so)(10), compute(60) > mul(45),
 *                                     read_file(30) > ksys_read_[k](30) > vfs_read_[k](30) }
 */
static struct ap_profile *build_profile(void)
{
	struct ap_profile *p = ap_profile_new();
	uint32_t s1[4], s2[3], s3[2], s4[2];

	assert_non_null(p);
	assert_int_equal(ap_profile_add_value_type(p, "samples", "count"), 0);
	assert_int_equal(ap_profile_add_value_type(p, "cpu", "nanoseconds"), 0);
	s1[0] = k(p, "vfs_read");
	s1[1] = k(p, "ksys_read");
	s1[2] = u(p, "read_file");
	s1[3] = u(p, "main");
	s2[0] = u(p, "mul");
	s2[1] = u(p, "compute");
	s2[2] = u(p, "main");
	s3[0] = ap_profile_add_named_frame(p, "[unknown]", "libfoo.so", AP_FRAME_USER);
	s3[1] = u(p, "main");
	s4[0] = u(p, "compute");
	s4[1] = u(p, "main");
	add(p, "app", s1, 4, 30, 30000000);
	add(p, "app", s2, 3, 45, 45000000);
	add(p, "app", s3, 2, 10, 10000000);
	add(p, "app", s4, 2, 15, 15000000);
	ap_profile_set_time(p, 1700000000000000000ULL, 2000000000ULL);
	assert_int_equal(ap_profile_set_meta(p, "mode", "cpu"), 0);
	assert_int_equal(ap_profile_set_stat(p, "lost_samples", 3), 0);
	assert_int_equal(ap_profile_set_stat(p, "quiet_stat", 0), 0);
	return p;
}

static void assert_width(const struct fr *f, uint64_t v, uint64_t total)
{
	double want = FRAME_W * (double)v / (double)total;

	assert_int_equal(f->v, v);
	if (f->w < want - 0.01 || f->w > want + 0.01)
		fail_msg("%s: width %.3f, want %.3f", f->title, f->w, want);
}

static void test_layout(void **state)
{
	struct ap_profile *p = build_profile();
	struct ap_write_opts opts = {.value_index = 0};
	char path[64];
	struct summary sum;
	const struct fr *all, *app, *mainf, *unk, *comp, *mul, *rf, *ks, *vr;

	write_svg(p, &opts, path);
	parse_svg(path, &sum);
	unlink(path);

	assert_string_equal(sum.title, "CPU profile");
	assert_non_null(strstr(sum.sub, "100 samples in 2.00s"));
	assert_non_null(strstr(sum.sub, "lost_samples: 3"));
	assert_null(strstr(sum.sub, "quiet_stat"));
	assert_int_equal(sum.scripts, 1);
	assert_int_equal(sum.styles, 1);
	assert_int_equal(sum.n, 9);

	all = must_find(&sum, "all");
	app = must_find(&sum, "app");
	mainf = must_find(&sum, "main");
	unk = must_find(&sum, "[unknown] (libfoo.so)");
	comp = must_find(&sum, "compute");
	mul = must_find(&sum, "mul");
	rf = must_find(&sum, "read_file");
	ks = must_find(&sum, "ksys_read_[k]");
	vr = must_find(&sum, "vfs_read_[k]");

	/* root at the bottom, comm above it, user frames, kernel frames on top */
	assert_int_equal(all->d, 0);
	assert_int_equal(app->d, 1);
	assert_int_equal(mainf->d, 2);
	assert_int_equal(rf->d, 3);
	assert_int_equal(ks->d, 4);
	assert_int_equal(vr->d, 5);
	assert_true(all->y > app->y && app->y > mainf->y && mainf->y > rf->y && rf->y > ks->y &&
		    ks->y > vr->y);

	/* widths proportional to weight */
	assert_width(all, 100, 100);
	assert_width(app, 100, 100);
	assert_width(mainf, 100, 100);
	assert_width(unk, 10, 100);
	assert_width(comp, 60, 100);
	assert_width(mul, 45, 100);
	assert_width(rf, 30, 100);
	assert_width(vr, 30, 100);

	/* siblings sorted by name, each starting where the previous one ends */
	assert_int_equal(unk->s, 0);
	assert_int_equal(comp->s, 10);
	assert_int_equal(rf->s, 70);
	assert_true(rf->x > PAD + FRAME_W * 0.7 - 0.01 && rf->x < PAD + FRAME_W * 0.7 + 0.01);
	assert_int_equal(mul->s, 10 + 15); /* compute's own 15 come first (the shorter path) */

	assert_string_equal(comp->title, "compute (60 samples, 60.00%)");

	/* colours by kind: user warm, kernel blue-ish, unknown grey */
	{
		int r, g, b;

		assert_int_equal(sscanf(rf->fill, "rgb(%d,%d,%d)", &r, &g, &b), 3);
		assert_true(r >= 205 && b <= 55);
		assert_int_equal(sscanf(ks->fill, "rgb(%d,%d,%d)", &r, &g, &b), 3);
		assert_true(b > r && b >= 205);
		assert_int_equal(sscanf(unk->fill, "rgb(%d,%d,%d)", &r, &g, &b), 3);
		assert_true(r == g && g == b);
	}
	ap_profile_free(p);
}

static void test_escaping(void **state)
{
	struct ap_profile *p = ap_profile_new();
	uint32_t st[] = {u(p, "operator<"), u(p, "std::vector<int>::at(unsigned long) const"),
			 u(p, "a&b\"c'd"),  u(p, "bad\xff\xfename"),
			 u(p, "ctl\x01x"),  u(p, "caf\xc3\xa9 ]]> --> <!-- x")};
	struct ap_write_opts opts = {.value_index = -1, .title = "Mine <&> \"t\""};
	struct summary sum;
	char path[64];

	add(p, "<script>", st, 6, 7, 0);
	write_svg(p, &opts, path);
	parse_svg(path, &sum);
	unlink(path);
	assert_string_equal(sum.title, "Mine <&> \"t\"");
	must_find(&sum, "<script>");
	must_find(&sum, "operator<");
	must_find(&sum, "std::vector<int>::at(unsigned long) const");
	must_find(&sum, "a&b\"c'd");
	must_find(&sum, "bad\xef\xbf\xbd\xef\xbf\xbdname"); /* U+FFFD twice */
	must_find(&sum, "ctl?x");
	must_find(&sum, "caf\xc3\xa9 ]]> --> <!-- x");
	ap_profile_free(p);
}

static void test_narrow_frames_skipped_totals_kept(void **state)
{
	struct ap_profile *p = ap_profile_new();
	uint32_t big[] = {u(p, "big"), u(p, "main")}, tiny[] = {u(p, "tiny"), u(p, "main")};
	struct ap_write_opts opts = {.value_index = 0};
	struct summary sum;
	char path[64];

	add(p, "app", big, 2, 1000000, 0);
	add(p, "app", tiny, 2, 1, 0);
	write_svg(p, &opts, path);
	parse_svg(path, &sum);
	unlink(path);
	assert_null(find(&sum, "tiny"));
	assert_int_equal(must_find(&sum, "all")->v, 1000001);
	assert_int_equal(must_find(&sum, "main")->v, 1000001);
	assert_int_equal(must_find(&sum, "big")->v, 1000000);
	assert_non_null(strstr(sum.sub, "1,000,001 samples"));
	ap_profile_free(p);
}

static void test_same_function_merges_and_value_index(void **state)
{
	struct ap_profile *p = build_profile();
	struct ap_frame f = {0};
	uint32_t st[2];
	struct ap_write_opts opts = {.value_index = -1};
	struct summary sum;
	char path[64];

	/* "compute" at another address is another frame, but the same box */
	f.addr = 0x401000;
	f.name = ap_profile_intern(p, "compute");
	f.module = ap_profile_intern(p, "app");
	st[0] = ap_profile_add_frame(p, &f);
	st[1] = u(p, "main");
	assert_int_not_equal(st[0], ap_profile_add_named_frame(p, "compute", "app", AP_FRAME_USER));
	add(p, "app", st, 2, 20, 20000000);

	write_svg(p, &opts, path);
	parse_svg(path, &sum);
	unlink(path);
	/* -1 = cpu nanoseconds: durations in the titles */
	assert_string_equal(must_find(&sum, "compute")->title, "compute (80.0ms, 66.67%)");
	assert_non_null(strstr(sum.sub, "120ms in 2.00s"));
	ap_profile_free(p);
}

static void test_empty_profile(void **state)
{
	struct ap_profile *p = ap_profile_new();
	struct summary sum;
	char path[64];

	write_svg(p, NULL, path);
	parse_svg(path, &sum);
	unlink(path);
	assert_string_equal(sum.title, "Flame Graph");
	assert_string_equal(sum.details, "No samples.");
	assert_int_equal(sum.n, 0);
	ap_profile_free(p);
}

static void test_self_contained_and_deterministic(void **state)
{
	struct ap_profile *p = build_profile();
	char *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;
	FILE *f;

	f = open_memstream(&a, &alen);
	assert_int_equal(ap_write_svg(p, f, NULL), 0);
	fclose(f);
	f = open_memstream(&b, &blen);
	assert_int_equal(ap_format_write(p, AP_FORMAT_SVG, f, NULL), 0);
	fclose(f);
	assert_int_equal(alen, blen);
	assert_memory_equal(a, b, alen);
	/* nothing fetched from elsewhere: the only URL is the namespace */
	assert_null(strstr(a, "href"));
	assert_null(strstr(a, "@import"));
	assert_null(strstr(strstr(a, "http://www.w3.org/2000/svg") + 1, "http"));
	free(a);
	free(b);
	ap_profile_free(p);
}

static void test_script_behaviour(void **state)
{
	char svg[64], js[] = "/tmp/ap-test-svg-js-XXXXXX", data[] = "/tmp/ap-test-svg-d-XXXXXX",
		      script[] = "/tmp/ap-test-svg-s-XXXXXX", py[] = "/tmp/ap-test-svg-p-XXXXXX";
	struct ap_write_opts opts = {.value_index = 0};
	struct ap_profile *p;
	char cmd[1024];
	int fds[4], rc;

	if (system("node --version >/dev/null 2>&1") != 0) {
		print_message("SKIP: node not installed, script behaviour not checked\n");
		skip();
	}
	p = build_profile();
	write_svg(p, &opts, svg);
	fds[0] = mkstemp(js);
	fds[1] = mkstemp(data);
	fds[2] = mkstemp(script);
	fds[3] = mkstemp(py);
	for (int i = 0; i < 4; i++) {
		assert_true(fds[i] >= 0);
		close(fds[i]);
	}
	write_file(js, dom_js);
	write_file(py, check_py);
	snprintf(cmd, sizeof(cmd), "python3 %s %s %s %s >/dev/null && node %s %s %s", py, svg, data,
		 script, js, script, data);
	rc = system(cmd);
	unlink(svg);
	unlink(js);
	unlink(data);
	unlink(script);
	unlink(py);
	ap_profile_free(p);
	assert_int_equal(rc, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_layout),
	    cmocka_unit_test(test_escaping),
	    cmocka_unit_test(test_narrow_frames_skipped_totals_kept),
	    cmocka_unit_test(test_same_function_merges_and_value_index),
	    cmocka_unit_test(test_empty_profile),
	    cmocka_unit_test(test_self_contained_and_deterministic),
	    cmocka_unit_test(test_script_behaviour),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
