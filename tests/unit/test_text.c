// SPDX-License-Identifier: MIT
/* Top-N text table: self and cumulative weights, recursion counted once, header with stats. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* cmocka.h needs the headers above */
#include <cmocka.h>

#include "format/format.h"
#include "lib/profile.h"

struct row {
	double self_pct, cum_pct;
	char self[32], cum[32], name[128], module[128];
};

struct table {
	char *text;
	struct row rows[32];
	size_t n;
};

static void render(const struct ap_profile *p, const struct ap_write_opts *opts, struct table *t)
{
	size_t len = 0;
	FILE *f = open_memstream(&t->text, &len);
	char *save = NULL, *copy, *line;
	bool in_table = false;

	assert_non_null(f);
	assert_int_equal(ap_write_text(p, f, opts), 0);
	fclose(f);
	t->n = 0;
	copy = strdup(t->text);
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct row *r = &t->rows[t->n];
		int n;

		if (strncmp(line, "   self%", 8) == 0) {
			in_table = true;
			continue;
		}
		if (!in_table || t->n == 32)
			continue;
		memset(r, 0, sizeof(*r));
		n = sscanf(line, "%lf%% %31s %lf%% %31s %127s %127s", &r->self_pct, r->self,
			   &r->cum_pct, r->cum, r->name, r->module);
		if (n < 5)
			r->name[0] = '\0';
		t->n++;
	}
	free(copy);
}

static const struct row *find(const struct table *t, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->rows[i].name, name) == 0)
			return &t->rows[i];
	fail_msg("no row for %s in:\n%s", name, t->text);
	return NULL;
}

static void assert_near(double a, double b)
{
	if (a < b - 0.005 || a > b + 0.005)
		fail_msg("%.3f != %.3f", a, b);
}

static void add(struct ap_profile *p, const uint32_t *frames, size_t n, uint64_t v0, uint64_t v1)
{
	struct ap_sample s = {0};

	s.stack = ap_profile_add_stack(p, frames, n);
	s.comm = ap_profile_intern(p, "app");
	s.values[0] = v0;
	s.values[1] = v1;
	assert_int_equal(ap_profile_add_sample(p, &s), 0);
}

static uint32_t u(struct ap_profile *p, const char *name)
{
	return ap_profile_add_named_frame(p, name, "app", AP_FRAME_USER);
}

/*
 * leaf first:  [fib fib fib main] 10   [helper fib main] 5   [main] 5   [write_[k] helper main] 20
 * self:  fib 10, helper 5, main 5, write 20        total 40
 * cum:   fib 15 (not 35: recursion counts once), helper 25, main 40, write 20
 */
static struct ap_profile *build(void)
{
	struct ap_profile *p = ap_profile_new();
	uint32_t a[] = {u(p, "fib"), u(p, "fib"), u(p, "fib"), u(p, "main")};
	uint32_t b[] = {u(p, "helper"), u(p, "fib"), u(p, "main")};
	uint32_t c[] = {u(p, "main")};
	uint32_t d[] = {
	    ap_profile_add_named_frame(p, "write", "[kernel.kallsyms]", AP_FRAME_KERNEL),
	    u(p, "helper"), u(p, "main")};

	assert_int_equal(ap_profile_add_value_type(p, "samples", "count"), 0);
	assert_int_equal(ap_profile_add_value_type(p, "cpu", "nanoseconds"), 0);
	add(p, a, 4, 10, 10000000);
	add(p, b, 3, 5, 5000000);
	add(p, c, 1, 5, 5000000);
	add(p, d, 3, 20, 20000000);
	ap_profile_set_time(p, 0, 3000000000ULL);
	assert_int_equal(ap_profile_set_stat(p, "lost_samples", 1234), 0);
	assert_int_equal(ap_profile_set_stat(p, "stack_errors", 0), 0);
	assert_int_equal(ap_profile_set_stat(p, "unwind_errors", 7), 0);
	return p;
}

static void test_self_and_cumulative(void **state)
{
	struct ap_profile *p = build();
	struct ap_write_opts opts = {.value_index = 0};
	struct table t = {0};
	const struct row *r;

	render(p, &opts, &t);
	assert_int_equal(t.n, 4);
	/* sorted by self, descending */
	assert_string_equal(t.rows[0].name, "write_[k]");
	assert_string_equal(t.rows[0].module, "[kernel.kallsyms]");
	assert_string_equal(t.rows[1].name, "fib");

	r = find(&t, "fib");
	assert_string_equal(r->self, "10");
	assert_string_equal(r->cum, "15");
	assert_near(r->self_pct, 25.0);
	assert_near(r->cum_pct, 37.5);
	r = find(&t, "helper");
	assert_string_equal(r->self, "5");
	assert_string_equal(r->cum, "25");
	r = find(&t, "main");
	assert_string_equal(r->self, "5");
	assert_string_equal(r->cum, "40");
	assert_near(r->cum_pct, 100.0);
	assert_string_equal(r->module, "app");
	r = find(&t, "write_[k]");
	assert_string_equal(r->cum, "20");
	assert_near(r->self_pct, 50.0);

	/* header: total, duration, non-zero stats only */
	assert_non_null(strstr(t.text, "Total: 40 samples in 3.00s"));
	assert_non_null(strstr(t.text, "lost_samples=1,234"));
	assert_non_null(strstr(t.text, "unwind_errors=7"));
	assert_null(strstr(t.text, "stack_errors"));
	free(t.text);
	ap_profile_free(p);
}

static void test_top_n_and_nanoseconds(void **state)
{
	struct ap_profile *p = build();
	struct ap_write_opts opts = {.value_index = -1, .top_n = 2};
	struct table t = {0};

	render(p, &opts, &t);
	assert_int_equal(t.n, 2);
	assert_non_null(strstr(t.text, "top 2 of 4 functions"));
	assert_non_null(strstr(t.text, "Total: 40.0ms"));
	assert_non_null(strstr(t.text, " 50.00%       20.0ms   50.00%       20.0ms  write_[k]"));
	assert_non_null(strstr(t.text, " 25.00%       10.0ms   37.50%       15.0ms  fib"));
	free(t.text);
	ap_profile_free(p);
}

static void test_functions_group_by_name_and_module(void **state)
{
	struct ap_profile *p = ap_profile_new();
	struct ap_frame f = {0};
	uint32_t s1[1], s2[1], s3[1], s4[1];
	struct table t = {0};

	assert_int_equal(ap_profile_add_value_type(p, "samples", "count"), 0);
	f.name = ap_profile_intern(p, "crc32");
	f.module = ap_profile_intern(p, "libz.so");
	f.addr = 0x1000;
	s1[0] = ap_profile_add_frame(p, &f);
	f.addr = 0x1004; /* same function, another address: one row */
	s2[0] = ap_profile_add_frame(p, &f);
	f.module = ap_profile_intern(p, "app"); /* same name in another module: another row */
	s3[0] = ap_profile_add_frame(p, &f);
	s4[0] = ap_profile_add_named_frame(p, "[unknown]", "libc.so.6", AP_FRAME_USER);
	add(p, s1, 1, 3, 0);
	add(p, s2, 1, 4, 0);
	add(p, s3, 1, 2, 0);
	add(p, s4, 1, 1, 0);
	render(p, NULL, &t);
	assert_int_equal(t.n, 3);
	assert_string_equal(t.rows[0].name, "crc32");
	assert_string_equal(t.rows[0].module, "libz.so");
	assert_string_equal(t.rows[0].self, "7");
	assert_string_equal(t.rows[1].module, "app");
	assert_string_equal(t.rows[1].self, "2");
	/* "[unknown] (libc.so.6)" is split by sscanf: check the raw text */
	assert_non_null(strstr(t.text, "[unknown] (libc.so.6)"));
	free(t.text);
	ap_profile_free(p);
}

static void test_empty_and_hostile_names(void **state)
{
	struct ap_profile *p = ap_profile_new();
	uint32_t st[1];
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_int_equal(ap_write_text(p, f, NULL), 0);
	fflush(f);
	assert_non_null(strstr(buf, "Total: 0 samples"));
	assert_non_null(strstr(buf, "No samples."));

	fclose(f);
	free(buf);

	/* an escape sequence in a symbol must not reach the terminal */
	f = open_memstream(&buf, &len);
	st[0] = ap_profile_add_named_frame(p, "evil\x1b]0;pwned\x07", "m\x1b", AP_FRAME_USER);
	add(p, st, 1, 1, 0);
	assert_int_equal(ap_write_text(p, f, NULL), 0);
	fclose(f);
	assert_null(strchr(buf, 0x1b));
	assert_null(strchr(buf, 0x07));
	assert_non_null(strstr(buf, "evil?]0;pwned?"));
	free(buf);
	ap_profile_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_self_and_cumulative),
	    cmocka_unit_test(test_top_n_and_nanoseconds),
	    cmocka_unit_test(test_functions_group_by_name_and_module),
	    cmocka_unit_test(test_empty_and_hostile_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
