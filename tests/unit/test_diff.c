// SPDX-License-Identifier: MIT
/*
 * ap_write_diff on two known profiles: every per-function and per-stack delta recomputed here
 * from the input rows (normalised and absolute, two value types), the 7-tuple flamegraph
 * parsed back and checked box by box, pruning keeps both totals, the folded, text and SVG
 * outputs, normalisation's rounding, value types matched by name, and a 200k-stack diff.
 */
#include "test_flame_util.h"

#include <errno.h>
#include <unistd.h>

/* Separate models: frames get other addresses and ids on each side, and rows come in
 * another order. */
static const struct row base_rows[] = {
    {"bash", "main;foo;bar", 10},
    {"bash", "main;foo", 5},
    {"bash", "main;baz", 3},
    {"py", "run;loop", 2},
    {"bash", "main;rd;vfs_read_[k]", 4},
    {"bash", "main;rec;rec", 2},
};
static const struct row cmp_rows[] = {
    {"bash", "main;rec;rec", 4},
    {"py", "run;loop", 4},
    {"bash", "main;qux", 6},
    {"bash", "main;baz", 10},
    {"bash", "main;rd;vfs_read_[k]", 8},
    {"bash", "main;foo;bar", 20},
};
#define NB (sizeof(base_rows) / sizeof(base_rows[0]))
#define NC (sizeof(cmp_rows) / sizeof(cmp_rows[0]))

static uint64_t rows_total(const struct row *r, size_t n)
{
	uint64_t t = 0;

	for (size_t i = 0; i < n; i++)
		t += r[i].w;
	return t;
}

/* The leaf and whether `name` is among the frames (the display name: "_[k]" kept). */
static bool row_has(const struct row *r, const char *name, bool leaf_only)
{
	char copy[256], *save = NULL, *last = NULL;
	bool has = false;

	snprintf(copy, sizeof(copy), "%s", r->stack);
	for (char *t = strtok_r(copy, ";", &save); t; t = strtok_r(NULL, ";", &save)) {
		has = has || strcmp(t, name) == 0;
		last = t;
	}
	return leaf_only ? last && strcmp(last, name) == 0 : has;
}

struct expect {
	uint64_t mult;	 /* value type: 1 samples, 1000 cpu */
	uint64_t num[2]; /* side s scaled by num/den (exact in these tests) */
	uint64_t den[2];
};

static uint64_t fn_value(const struct expect *e, int side, const char *name, bool self)
{
	const struct row *r = side ? cmp_rows : base_rows;
	size_t n = side ? NC : NB;
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		if (row_has(&r[i], name, self))
			v += r[i].w * e->mult;
	return v * e->num[side] / e->den[side];
}

/* The weight at `path`: of the stacks under it (a flamegraph box), or of exactly that stack. */
static uint64_t path_value(const struct expect *e, int side, const char *path, bool exact)
{
	const struct row *r = side ? cmp_rows : base_rows;
	size_t n = side ? NC : NB, plen = strlen(path);
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++) {
		char line[256];

		snprintf(line, sizeof(line), "%s;%s", r[i].comm, r[i].stack);
		if (strncmp(line, path, plen) == 0 &&
		    (!line[plen] || (!exact && line[plen] == ';')))
			v += r[i].w * e->mult;
	}
	return v * e->num[side] / e->den[side];
}

static uint64_t stack_value(const struct expect *e, int side, const char *path)
{
	return path_value(e, side, path, true);
}

static uint64_t box_value(const struct expect *e, int side, const char *path)
{
	return path_value(e, side, path, false);
}

static char *run_diff(const struct ap_profile *b, const struct ap_profile *c,
		      enum ap_diff_format fmt, const struct ap_diff_opts *o, size_t *len)
{
	struct capture cap;

	capture_open(&cap);
	assert_int_equal(ap_write_diff(b, c, fmt, cap.f, o), 0);
	capture_close(&cap);
	*len = cap.len;
	return cap.buf;
}

static struct expect expect_for(bool normalize, bool cpu)
{
	uint64_t tb = rows_total(base_rows, NB), tc = rows_total(cmp_rows, NC);
	struct expect e = {.mult = cpu ? 1000 : 1, .num = {1, 1}, .den = {1, 1}};

	if (normalize) { /* 52 / 26: exact, so the expected values are exact too */
		e.num[0] = tc;
		e.den[0] = tb;
		assert_int_equal(tc % tb, 0);
	}
	return e;
}

static uint64_t absd(uint64_t a, uint64_t b) { return a > b ? a - b : b - a; }

static void check_json(bool normalize, bool cpu)
{
	struct ap_profile *b = profile_of(base_rows, NB, 1), *c = profile_of(cmp_rows, NC, 2);
	struct ap_diff_opts o = {.normalize = normalize, .value_type = cpu ? "cpu" : NULL};
	struct expect e = expect_for(normalize, cpu);
	static const char *const fn_names[] = {"main", "foo", "bar",	      "baz", "qux",
					       "rd",   "rec", "vfs_read_[k]", "run", "loop"};
	const struct ap_json *fns, *stacks;
	struct ap_json *j;
	uint64_t prev = UINT64_MAX;
	size_t len;
	char *out = run_diff(b, c, AP_DIFF_JSON, &o, &len);

	j = parse_json(out, len);
	assert_int_equal(json_u64(j, "base_total_raw"), rows_total(base_rows, NB) * e.mult);
	assert_int_equal(json_u64(j, "base_total"),
			 rows_total(base_rows, NB) * e.mult * e.num[0] / e.den[0]);
	assert_int_equal(json_u64(j, "cmp_total"), rows_total(cmp_rows, NC) * e.mult);
	assert_int_equal(ap_json_get(j, "normalized")->boolean, normalize);
	assert_string_equal(ap_json_get(ap_json_get(j, "value_type"), "type")->str,
			    cpu ? "cpu" : "samples");
	fns = ap_json_get(j, "functions");
	assert_int_equal(fns->len, sizeof(fn_names) / sizeof(fn_names[0]));
	for (size_t i = 0; i < fns->len; i++) {
		const struct ap_json *f = &fns->items[i];
		const char *name = ap_json_get(f, "name")->str;
		uint64_t d;
		bool known = false;

		for (size_t k = 0; k < sizeof(fn_names) / sizeof(fn_names[0]); k++)
			known = known || strcmp(fn_names[k], name) == 0;
		assert_true(known);
		assert_int_equal(json_u64(f, "base_self"), fn_value(&e, 0, name, true));
		assert_int_equal(json_u64(f, "cmp_self"), fn_value(&e, 1, name, true));
		assert_int_equal(json_u64(f, "base_total"), fn_value(&e, 0, name, false));
		assert_int_equal(json_u64(f, "cmp_total"), fn_value(&e, 1, name, false));
		/* sorted by the size of the change in self weight */
		d = absd(json_u64(f, "base_self"), json_u64(f, "cmp_self"));
		assert_true(d <= prev);
		prev = d;
	}
	/* recursion counts once per stack: rec's total is its stack's weight, not twice that */
	stacks = ap_json_get(j, "stacks");
	assert_int_equal(stacks->len, 7); /* the union of both sides' stacks */
	prev = UINT64_MAX;
	for (size_t i = 0; i < stacks->len; i++) {
		const struct ap_json *s = &stacks->items[i], *fr = ap_json_get(s, "frames");
		char path[256] = "";
		uint64_t d;

		for (size_t k = 0; k < fr->len; k++) {
			if (k)
				strcat(path, ";");
			strcat(path, fr->items[k].str);
		}
		assert_int_equal(json_u64(s, "base"), stack_value(&e, 0, path));
		assert_int_equal(json_u64(s, "cmp"), stack_value(&e, 1, path));
		assert_true(json_u64(s, "base") || json_u64(s, "cmp"));
		d = absd(json_u64(s, "base"), json_u64(s, "cmp"));
		assert_true(d <= prev);
		prev = d;
	}
	ap_json_free(j);
	free(out);
	ap_profile_free(b);
	ap_profile_free(c);
}

static void test_json_deltas(void **state)
{
	(void)state;
	check_json(true, false);
	check_json(false, false);
	check_json(true, true);
	check_json(false, true);
}

/* The numbers a reader sees, spelled out once (normalised: base ×2). */
static void test_json_known_values(void **state)
{
	struct ap_profile *b = profile_of(base_rows, NB, 1), *c = profile_of(cmp_rows, NC, 2);
	struct ap_diff_opts o = {.normalize = true, .top_n = 3};
	struct ap_json *j;
	const struct ap_json *f;
	size_t len;
	char *out = run_diff(b, c, AP_DIFF_JSON, &o, &len);

	(void)state;
	j = parse_json(out, len);
	f = ap_json_get(j, "functions");
	assert_int_equal(f->len, 3);
	assert_string_equal(ap_json_get(&f->items[0], "name")->str, "foo"); /* 10 -> 0 */
	assert_int_equal(json_u64(&f->items[0], "base_self"), 10);
	assert_int_equal(json_u64(&f->items[0], "cmp_self"), 0);
	assert_int_equal(json_u64(&f->items[0], "base_total"), 30);
	assert_int_equal(json_u64(&f->items[0], "cmp_total"), 20);
	assert_string_equal(ap_json_get(&f->items[1], "name")->str, "qux"); /* 0 -> 6 */
	assert_string_equal(ap_json_get(&f->items[2], "name")->str, "baz"); /* 6 -> 10 */
	assert_int_equal(json_u64(j, "functions_truncated"), 7);
	assert_int_equal(ap_json_get(j, "stacks")->len, 3);
	assert_int_equal(json_u64(j, "stacks_truncated"), 4);
	ap_json_free(j);
	free(out);
	ap_profile_free(b);
	ap_profile_free(c);
}

static void check_flamegraph(bool normalize, size_t max_nodes)
{
	struct ap_profile *b = profile_of(base_rows, NB, 1), *c = profile_of(cmp_rows, NC, 2);
	struct ap_diff_opts o = {.normalize = normalize, .max_nodes = max_nodes};
	struct expect e = expect_for(normalize, false);
	uint64_t tb = rows_total(base_rows, NB) * e.num[0] / e.den[0],
		 tc = rows_total(cmp_rows, NC);
	struct ap_json *j;
	struct box *bx;
	size_t len, n;
	char *out = run_diff(b, c, AP_DIFF_FLAMEGRAPH, &o, &len);

	j = parse_json(out, len);
	n = decode_levels(j, 2, &bx);
	/* root, bash, py, main, run, baz, foo, qux, rd, rec, loop, bar, vfs_read, rec */
	if (max_nodes) {
		assert_int_equal(n, max_nodes < 14 ? max_nodes : 14);
	} else {
		assert_int_equal(n, 14);
	}
	assert_int_equal(json_u64(j, "nodes_truncated"), 14 - n);
	assert_int_equal(bx[0].total[0], tb);
	assert_int_equal(bx[0].total[1], tc);
	assert_int_equal(json_u64(j, "base_total"), tb);
	assert_int_equal(json_u64(j, "cmp_total"), tc);
	/* nothing lost by pruning: each side's selfs add up to its total */
	assert_int_equal(check_nesting(bx, n, 2, 0), tb);
	assert_int_equal(check_nesting(bx, n, 2, 1), tc);
	for (size_t i = 1; i < n; i++) {
		char path[256];

		box_path(bx, n, 2, i, path, sizeof(path));
		assert_int_equal(bx[i].total[0], box_value(&e, 0, path));
		assert_int_equal(bx[i].total[1], box_value(&e, 1, path));
	}
	free(bx);
	ap_json_free(j);
	free(out);
	ap_profile_free(b);
	ap_profile_free(c);
}

static void test_flamegraph(void **state)
{
	(void)state;
	check_flamegraph(true, 0);
	check_flamegraph(false, 0);
	for (size_t m = 1; m <= 15; m++) {
		check_flamegraph(true, m);
		check_flamegraph(false, m);
	}
}

/* Folded: one "stack base cmp" line per stack of either side. */
static void test_folded(void **state)
{
	struct ap_profile *b = profile_of(base_rows, NB, 1), *c = profile_of(cmp_rows, NC, 2);

	(void)state;
	for (int norm = 0; norm < 2; norm++) {
		struct ap_diff_opts o = {.normalize = norm};
		struct expect e = expect_for(norm, false);
		size_t len, lines = 0;
		char *out = run_diff(b, c, AP_DIFF_FOLDED, &o, &len), *save = NULL;

		for (char *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
			char path[256];
			unsigned long long vb, vc;

			assert_int_equal(sscanf(l, "%255s %llu %llu", path, &vb, &vc), 3);
			assert_int_equal(vb, stack_value(&e, 0, path));
			assert_int_equal(vc, stack_value(&e, 1, path));
			lines++;
		}
		assert_int_equal(lines, 7);
		free(out);
	}
	ap_profile_free(b);
	ap_profile_free(c);
}

static void test_text(void **state)
{
	struct ap_profile *b = profile_of(base_rows, NB, 1), *c = profile_of(cmp_rows, NC, 2);
	struct ap_diff_opts o = {.normalize = true};
	size_t len;
	char *out = run_diff(b, c, AP_DIFF_TEXT, &o, &len), *foo, *qux, *baz;

	(void)state;
	assert_non_null(strstr(out, "Base:       26, scaled to 52"));
	assert_non_null(strstr(out, "Comparison: 52 (+26, +100.00%)"));
	foo = strstr(out, "-10  -100.00%  foo\n");
	qux = strstr(out, "+6       new  qux\n");
	baz = strstr(out, "+4   +66.67%  baz\n");
	if (!foo || !qux || !baz)
		fail_msg("unexpected table:\n%s", out);
	assert_true(foo < qux && qux < baz); /* by size of the change */
	free(out);
	o.normalize = false;
	out = run_diff(b, c, AP_DIFF_TEXT, &o, &len);
	assert_null(strstr(out, "scaled"));
	assert_non_null(strstr(out, "+7  +233.33%  baz\n")); /* 3 -> 10 */
	free(out);
	ap_profile_free(b);
	ap_profile_free(c);
}

/* The fill of the box whose tooltip starts with `name (`, as r, g, b. */
static void box_fill(const char *svg, const char *name, int rgb[3])
{
	char key[128];
	const char *t, *f;

	snprintf(key, sizeof(key), "<title>%s (", name);
	t = strstr(svg, key);
	if (!t)
		fail_msg("no box %s", name);
	f = strstr(t, "fill=\"rgb(");
	assert_non_null(f);
	assert_int_equal(sscanf(f, "fill=\"rgb(%d,%d,%d)", &rgb[0], &rgb[1], &rgb[2]), 3);
}

static void test_svg(void **state)
{
	struct ap_profile *b = profile_of(base_rows, NB, 1), *c = profile_of(cmp_rows, NC, 2);
	struct ap_diff_opts o = {.normalize = true};
	char path[] = "/tmp/ap-diff-XXXXXX", cmd[256];
	size_t len;
	char *out = run_diff(b, c, AP_DIFF_SVG, &o, &len);
	int rgb[3], fd;

	(void)state;
	box_fill(out, "qux", rgb); /* new: full red */
	assert_true(rgb[0] == 255 && rgb[1] == 0 && rgb[2] == 0);
	box_fill(out, "foo", rgb); /* 30 -> 20: blue */
	assert_true(rgb[2] == 255 && rgb[0] < 225 && rgb[0] > 0);
	box_fill(out, "bar", rgb); /* 20 -> 20: neutral */
	assert_true(rgb[0] == rgb[1] && rgb[1] == rgb[2]);
	box_fill(out, "baz", rgb); /* 6 -> 10: red, paler than qux */
	assert_true(rgb[0] == 255 && rgb[1] > 0 && rgb[1] < 225);
	assert_non_null(strstr(out, "<title>qux (base 0 samples, comparison 6 samples, new)"));
	assert_non_null(
	    strstr(out, "<title>foo (base 30 samples, comparison 20 samples, -33.33%)"));
	assert_non_null(strstr(out, "<script"));
	assert_null(strstr(out, "href")); /* self-contained */
	/* well-formed XML */
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, out, len), (ssize_t)len);
	close(fd);
	snprintf(cmd, sizeof(cmd),
		 "python3 -c 'import sys, xml.dom.minidom as m; m.parse(sys.argv[1])' %s", path);
	assert_int_equal(system(cmd), 0);
	unlink(path);
	free(out);
	ap_profile_free(b);
	ap_profile_free(c);
}

/* Normalising with a ratio that is not whole: every stack within one unit of its exact
 * share, the sum exact. */
static void test_normalize_rounding(void **state)
{
	static const struct row br[] = {
	    {"x", "a", 1}, {"x", "b", 1}, {"x", "c", 1}, {"x", "d", 7}, {"y", "e", 3}};
	static const struct row cr[] = {{"x", "a", 17}};
	struct ap_profile *b = profile_of(br, 5, 1), *c = profile_of(cr, 1, 2);
	struct ap_diff_opts o = {.normalize = true};
	const struct ap_json *stacks;
	struct ap_json *j;
	uint64_t sum = 0;
	size_t len;
	char *out = run_diff(b, c, AP_DIFF_JSON, &o, &len);

	(void)state;
	j = parse_json(out, len);
	assert_int_equal(json_u64(j, "base_total"), 17);
	assert_int_equal(json_u64(j, "base_total_raw"), 13);
	stacks = ap_json_get(j, "stacks");
	assert_int_equal(stacks->len, 5);
	for (size_t i = 0; i < stacks->len; i++) {
		const struct ap_json *fr = ap_json_get(&stacks->items[i], "frames");
		uint64_t v = json_u64(&stacks->items[i], "base"), raw = 0;
		double exact;

		for (size_t k = 0; k < 5; k++)
			if (strcmp(fr->items[1].str, br[k].stack) == 0)
				raw = br[k].w;
		exact = (double)raw * 17.0 / 13.0;
		assert_true((double)v > exact - 1.0 && (double)v < exact + 1.0);
		sum += v;
	}
	assert_int_equal(sum, 17);
	ap_json_free(j);
	free(out);
	ap_profile_free(b);
	ap_profile_free(c);
}

/* Value types are matched by name; a type one side lacks is refused. */
static void test_value_types(void **state)
{
	struct ap_profile *b = profile_of(base_rows, NB, 1), *c = profile_of(cmp_rows, NC, 2);
	struct ap_profile *only = ap_profile_new();
	struct ap_diff_opts o = {.value_type = "cpu"};
	struct ap_sample s = {.values = {5}};
	enum ap_diff_format f;
	struct capture cap;
	uint32_t fr;

	(void)state;
	assert_non_null(only);
	assert_int_equal(ap_profile_add_value_type(only, "samples", "count"), 0);
	fr = ap_profile_add_named_frame(only, "main", "app", AP_FRAME_USER);
	s.stack = ap_profile_add_stack(only, &fr, 1);
	assert_int_equal(ap_profile_add_sample(only, &s), 0);
	capture_open(&cap);
	assert_int_equal(ap_write_diff(only, c, AP_DIFF_JSON, cap.f, &o), -EINVAL);
	o.value_type = "alloc_space";
	assert_int_equal(ap_write_diff(b, c, AP_DIFF_TEXT, cap.f, &o), -EINVAL);
	capture_close(&cap);
	free(cap.buf);
	assert_int_equal(ap_diff_format_from_name("flamegraph", &f), 0);
	assert_int_equal(f, AP_DIFF_FLAMEGRAPH);
	assert_int_equal(ap_diff_format_from_name("SVG", &f), 0);
	assert_int_equal(f, AP_DIFF_SVG);
	assert_int_equal(ap_diff_format_from_name("pprof", &f), -EINVAL);
	ap_profile_free(only);
	ap_profile_free(b);
	ap_profile_free(c);
}

/* An empty base: everything is new, nothing divides by zero. */
static void test_empty_side(void **state)
{
	struct ap_profile *b = profile_of(NULL, 0, 1), *c = profile_of(cmp_rows, NC, 2);
	struct ap_diff_opts o = {.normalize = true};
	size_t len;
	char *out;
	struct ap_json *j;

	(void)state;
	for (int f = AP_DIFF_FLAMEGRAPH; f <= AP_DIFF_SVG; f++) {
		out = run_diff(b, c, (enum ap_diff_format)f, &o, &len);
		assert_true(len > 0);
		free(out);
		out = run_diff(c, b, (enum ap_diff_format)f, &o, &len);
		assert_true(len > 0);
		free(out);
	}
	out = run_diff(b, c, AP_DIFF_JSON, &o, &len);
	j = parse_json(out, len);
	assert_int_equal(json_u64(j, "base_total"), 0);
	assert_int_equal(json_u64(j, "cmp_total"), rows_total(cmp_rows, NC));
	ap_json_free(j);
	free(out);
	ap_profile_free(b);
	ap_profile_free(c);
}

static void test_200k_stacks(void **state)
{
	struct ap_profile *b = synthetic_profile(200000, 1), *c = synthetic_profile(200000, 2);
	struct ap_diff_opts o = {.normalize = true};
	struct ap_json *j;
	struct box *bx;
	size_t len, n;
	double t0, t1;
	char *out;

	(void)state;
	t0 = now_s();
	out = run_diff(b, c, AP_DIFF_FLAMEGRAPH, &o, &len);
	t1 = now_s();
	printf("diff flamegraph: 2 x 200000 stacks -> %zu bytes in %.3f s of CPU\n", len, t1 - t0);
	j = parse_json(out, len);
	n = decode_levels(j, 2, &bx);
	assert_true(n <= 16384);
	assert_int_equal(bx[0].total[1], ap_profile_total(c, 0));
	assert_int_equal(bx[0].total[0], ap_profile_total(c, 0)); /* normalised */
	free(bx);
	ap_json_free(j);
	free(out);
	t0 = now_s();
	out = run_diff(b, c, AP_DIFF_TEXT, &o, &len);
	t1 = now_s();
	printf("diff text: 2 x 200000 stacks in %.3f s of CPU\n", t1 - t0);
	assert_non_null(strstr(out, "Showing top 25"));
	free(out);
	/* the SVG builds only boxes wide enough to draw */
	t0 = now_s();
	out = run_diff(b, c, AP_DIFF_SVG, &o, &len);
	t1 = now_s();
	printf("diff svg: 2 x 200000 stacks -> %zu bytes in %.3f s of CPU\n", len, t1 - t0);
	assert_non_null(strstr(out, "</svg>"));
	free(out);
	ap_profile_free(b);
	ap_profile_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_json_deltas),
	    cmocka_unit_test(test_json_known_values),
	    cmocka_unit_test(test_flamegraph),
	    cmocka_unit_test(test_folded),
	    cmocka_unit_test(test_text),
	    cmocka_unit_test(test_svg),
	    cmocka_unit_test(test_normalize_rounding),
	    cmocka_unit_test(test_value_types),
	    cmocka_unit_test(test_empty_side),
	    cmocka_unit_test(test_200k_stacks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
