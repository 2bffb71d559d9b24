// SPDX-License-Identifier: MIT
/*
 * The flamegraph JSON of /api/v1/flamegraph (ap_write_flamebearer): parsed back and checked
 * box by box against the input rows, pruning to max_nodes keeps every total, value types by
 * name, and a 200k-stack profile goes through (its time is printed, not asserted).
 */
#include "test_flame_util.h"

static const struct row rows_a[] = {
    {"bash", "main;foo;bar", 10}, {"bash", "main;foo", 5},     {"bash", "main;baz", 3},
    {"py", "run;loop", 2},	  {"bash", "main;foo;bar", 4}, /* the same stack in another process:
								  merges */
};
#define NA (sizeof(rows_a) / sizeof(rows_a[0]))

static char *write_fb(const struct ap_profile *p, const struct ap_flamebearer_opts *o, size_t *len)
{
	struct capture c;

	capture_open(&c);
	assert_int_equal(ap_write_flamebearer(p, c.f, o), 0);
	capture_close(&c);
	*len = c.len;
	return c.buf;
}

/* Expected total of the box at the path `prefix` (comm;frames), from the input rows. */
static uint64_t expected_total(const char *prefix, uint64_t (*value)(const struct row *))
{
	uint64_t sum = 0;
	size_t plen = strlen(prefix);

	for (size_t i = 0; i < NA; i++) {
		char line[256];

		snprintf(line, sizeof(line), "%s;%s", rows_a[i].comm, rows_a[i].stack);
		if (strncmp(line, prefix, plen) == 0 && (line[plen] == ';' || !line[plen]))
			sum += value(&rows_a[i]);
	}
	return sum;
}

static uint64_t samples_of(const struct row *r) { return r->w; }
static uint64_t cpu_of(const struct row *r) { return r->w * 1000; }

static void check_against_rows(uint64_t (*value)(const struct row *), const char *type)
{
	struct ap_profile *p = profile_of(rows_a, NA, 1);
	struct ap_flamebearer_opts o = {.value_type = type};
	struct ap_json *j;
	struct box *b;
	size_t len, n;
	char *out = write_fb(p, &o, &len);
	uint64_t total = 0, max_self = 0;

	for (size_t i = 0; i < NA; i++)
		total += value(&rows_a[i]);
	j = parse_json(out, len);
	assert_string_equal(ap_json_get(j, "mode")->str, "cpu");
	assert_string_equal(ap_json_get(ap_json_get(j, "value_type"), "type")->str,
			    type ? type : "samples");
	assert_int_equal(ap_json_get(j, "value_types")->len, 2);
	assert_int_equal(json_u64(j, "total"), total);
	assert_int_equal(json_u64(j, "nodes_truncated"), 0);
	n = decode_levels(j, 1, &b);
	/* root, bash, py, main, run, foo, baz, loop, bar */
	assert_int_equal(n, 9);
	assert_int_equal(b[0].total[0], total);
	assert_int_equal(check_nesting(b, n, 1, 0), total);
	for (size_t i = 1; i < n; i++) {
		char path[256];
		uint64_t self = b[i].total[0];

		box_path(b, n, 1, i, path, sizeof(path));
		assert_int_equal(b[i].total[0], expected_total(path, value));
		/* self = what ends here: the total minus the children's */
		for (size_t k = 1; k < n; k++)
			if (b[k].depth == b[i].depth + 1 && b[k].x[0] >= b[i].x[0] &&
			    b[k].x[0] + b[k].total[0] <= b[i].x[0] + b[i].total[0])
				self -= b[k].total[0];
		assert_int_equal(b[i].self[0], self);
		if (b[i].self[0] > max_self)
			max_self = b[i].self[0];
	}
	assert_int_equal(json_u64(j, "max_self"), max_self);
	/* layout as Pyroscope's: siblings by name, children from their parent's left edge */
	assert_string_equal(b[1].name, "bash");
	assert_int_equal(b[1].x[0], 0);
	assert_string_equal(b[2].name, "py");
	assert_int_equal(b[2].x[0], b[1].total[0]);
	free(b);
	ap_json_free(j);
	free(out);
	ap_profile_free(p);
}

static void test_boxes_match_rows(void **state)
{
	(void)state;
	check_against_rows(samples_of, NULL);
	check_against_rows(cpu_of, "cpu");
}

static void test_exact_levels(void **state)
{
	struct ap_profile *p = profile_of(rows_a, NA, 1);
	struct ap_json *j;
	size_t len;
	char *out = write_fb(p, NULL, &len);
	const struct ap_json *lv;
	/* rows of [x delta, total, self, name index]: names in first-seen order, row by row */
	static const uint64_t want[][12] = {
	    {0, 24, 0, 0},
	    {0, 22, 0, 1, 0, 2, 0, 2},		   /* bash, py */
	    {0, 22, 0, 3, 0, 2, 0, 4},		   /* main, run */
	    {0, 3, 3, 5, 0, 19, 5, 6, 0, 2, 2, 7}, /* baz, foo, loop */
	    {3, 14, 14, 8},			   /* bar under foo, which starts at 3 */
	};
	static const size_t want_len[] = {4, 8, 8, 12, 4};
	static const char *const want_names[] = {"total", "bash", "py",	  "main", "run",
						 "baz",	  "foo",  "loop", "bar"};

	(void)state;
	j = parse_json(out, len);
	lv = ap_json_get(j, "levels");
	assert_int_equal(lv->len, 5);
	for (size_t d = 0; d < 5; d++) {
		assert_int_equal(lv->items[d].len, want_len[d]);
		for (size_t k = 0; k < want_len[d]; k++)
			assert_int_equal(item_u64(&lv->items[d].items[k]), want[d][k]);
	}
	assert_int_equal(ap_json_get(j, "names")->len, 9);
	for (size_t i = 0; i < 9; i++)
		assert_string_equal(ap_json_get(j, "names")->items[i].str, want_names[i]);
	assert_int_equal(json_u64(j, "max_self"), 14);
	ap_json_free(j);
	free(out);
	ap_profile_free(p);
}

/* max_nodes: the largest subtrees stay, the others fold into their parent's self. */
static void test_pruning_keeps_totals(void **state)
{
	struct ap_profile *p = profile_of(rows_a, NA, 1);

	(void)state;
	for (size_t max = 1; max <= 10; max++) {
		struct ap_flamebearer_opts o = {.max_nodes = max};
		struct ap_json *j;
		struct box *b;
		size_t len, n;
		char *out = write_fb(p, &o, &len);

		j = parse_json(out, len);
		n = decode_levels(j, 1, &b);
		assert_int_equal(n, max < 9 ? max : 9);
		assert_int_equal(json_u64(j, "nodes_truncated"), 9 - n);
		assert_int_equal(json_u64(j, "total"), 24);
		assert_int_equal(b[0].total[0], 24);
		/* nothing lost: every unit of weight is some box's self */
		assert_int_equal(check_nesting(b, n, 1, 0), 24);
		if (max == 4) { /* root, bash 22, main 22, foo 19 */
			assert_string_equal(b[2].name, "main");
			assert_int_equal(b[2].self[0], 3); /* baz folded */
			assert_string_equal(b[3].name, "foo");
			assert_int_equal(b[3].self[0], 19); /* bar folded */
			assert_int_equal(b[0].self[0], 2);  /* py folded into the root */
		}
		free(b);
		ap_json_free(j);
		free(out);
	}
	ap_profile_free(p);
}

static void test_bad_value_type_and_empty(void **state)
{
	struct ap_profile *p = profile_of(rows_a, NA, 1), *e = profile_of(NULL, 0, 1);
	struct ap_flamebearer_opts o = {.value_type = "alloc_space"};
	struct ap_json *j;
	struct capture c;
	size_t len;
	char *out;

	(void)state;
	capture_open(&c);
	assert_int_equal(ap_write_flamebearer(p, c.f, &o), -EINVAL);
	capture_close(&c);
	free(c.buf);
	out = write_fb(e, NULL, &len);
	j = parse_json(out, len);
	assert_int_equal(json_u64(j, "total"), 0);
	assert_int_equal(ap_json_get(j, "levels")->len, 1); /* the root alone */
	ap_json_free(j);
	free(out);
	ap_profile_free(p);
	ap_profile_free(e);
}

/* Names are JSON-escaped, invalid UTF-8 included. */
static void test_names_escaped(void **state)
{
	static const struct row r[] = {{"a\"b", "x\\y;\x01z;bad\xff", 1}};
	struct ap_profile *p = profile_of(r, 1, 1);
	struct ap_json *j;
	size_t len;
	char *out = write_fb(p, NULL, &len);
	const struct ap_json *names;

	(void)state;
	j = parse_json(out, len);
	names = ap_json_get(j, "names");
	assert_int_equal(names->len, 5);
	assert_string_equal(names->items[1].str, "a\"b");
	assert_string_equal(names->items[2].str, "x\\y");
	assert_string_equal(names->items[3].str, "\x01z");
	assert_string_equal(names->items[4].str, "bad\xef\xbf\xbd");
	ap_json_free(j);
	free(out);
	ap_profile_free(p);
}

/* 200k distinct stacks: must finish, within max_nodes, totals kept. */
static void test_200k_stacks(void **state)
{
	struct ap_profile *p = synthetic_profile(200000, 7);
	struct ap_json *j;
	struct box *b;
	size_t len, n;
	double t0, t1;
	char *out;

	(void)state;
	t0 = now_s();
	out = write_fb(p, NULL, &len);
	t1 = now_s();
	printf("flamebearer: %zu stacks, %zu samples -> %zu bytes of JSON in %.3f s of CPU\n",
	       ap_profile_nstacks(p), ap_profile_nsamples(p), len, t1 - t0);
	j = parse_json(out, len);
	n = decode_levels(j, 1, &b);
	assert_true(n <= 16384);
	assert_true(json_u64(j, "nodes_truncated") > 0);
	assert_int_equal(json_u64(j, "total"), ap_profile_total(p, 0));
	assert_int_equal(b[0].total[0], ap_profile_total(p, 0));
	{
		uint64_t selfs = 0;

		for (size_t i = 0; i < n; i++)
			selfs += b[i].self[0];
		assert_int_equal(selfs, ap_profile_total(p, 0));
	}
	free(b);
	ap_json_free(j);
	free(out);
	ap_profile_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_boxes_match_rows),
	    cmocka_unit_test(test_exact_levels),
	    cmocka_unit_test(test_pruning_keeps_totals),
	    cmocka_unit_test(test_bad_value_type_and_empty),
	    cmocka_unit_test(test_names_escaped),
	    cmocka_unit_test(test_200k_stacks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
