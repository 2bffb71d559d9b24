// SPDX-License-Identifier: MIT
/* Label selectors (storage/selector.c): syntax, every operator, errors with offsets, limits. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "storage/storage.h"

static const struct ap_label_kv db1[] = {
	{ "mode", "cpu" }, { "host", "db1" }, { "comm", "postgres" }, { "pid", "42" },
	{ "service.name", "pg" },
};
#define NDB1 (sizeof(db1) / sizeof(db1[0]))

static bool matches(const char *sel)
{
	struct ap_selector s;
	char err[256];
	bool r;

	assert_int_equal(ap_selector_parse(sel, &s, err, sizeof(err)), 0);
	r = ap_selector_match(&s, db1, NDB1);
	ap_selector_free(&s);
	return r;
}

/* Returns the error text of a refused selector. */
static const char *refused(const char *sel)
{
	static char err[512];
	struct ap_selector s;

	err[0] = 0;
	assert_int_equal(ap_selector_parse(sel, &s, err, sizeof(err)), -EINVAL);
	assert_null(s.m);
	assert_int_equal(s.n, 0);
	assert_true(err[0]);
	return err;
}

static void test_ops(void **state)
{
	(void)state;
	assert_true(matches(""));
	assert_true(matches("{}"));
	assert_true(matches("  { }  "));
	assert_true(matches("{host=\"db1\"}"));
	assert_false(matches("{host=\"db2\"}"));
	assert_true(matches("{host!=\"db2\"}"));
	assert_false(matches("{host!=\"db1\"}"));
	assert_true(matches("{comm=~\"post.*\"}"));
	assert_false(matches("{comm=~\"post\"}")); /* anchored: the whole value */
	assert_false(matches("{comm=~\"gres\"}"));
	assert_true(matches("{comm!~\"nginx|redis\"}"));
	assert_false(matches("{comm!~\"post.*\"}"));
	assert_true(matches("{comm=~\"a|postgres\"}")); /* the alternation is grouped */
	/* several matchers: all must hold */
	assert_true(matches("{mode=\"cpu\",host=\"db1\",comm=~\"post.*\",pid!=\"1\"}"));
	assert_false(matches("{mode=\"cpu\",host=\"db1\",pid=\"1\"}"));
	/* dotted label names */
	assert_true(matches("{service.name=\"pg\"}"));
	/* whitespace everywhere, a trailing comma */
	assert_true(matches(" {\n host = \"db1\" ,\tcomm =~ \"p.*\" , } "));
}

static void test_missing_labels(void **state)
{
	(void)state;
	/* a missing label is the empty string (Prometheus) */
	assert_true(matches("{container_id=\"\"}"));
	assert_false(matches("{container_id!=\"\"}"));
	assert_true(matches("{container_id!=\"abc\"}"));
	assert_false(matches("{container_id=\"abc\"}"));
	assert_true(matches("{container_id=~\"x?\"}"));
	assert_false(matches("{container_id=~\".+\"}"));
	assert_true(matches("{container_id!~\".+\"}"));
}

static void test_prefix_and_mode(void **state)
{
	struct ap_selector s;
	char err[256];

	(void)state;
	assert_int_equal(ap_selector_parse("cpu", &s, err, sizeof(err)), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(ap_selector_mode(&s), "cpu");
	ap_selector_free(&s);
	assert_int_equal(ap_selector_parse("lock{host=\"db1\"}", &s, err, sizeof(err)), 0);
	assert_string_equal(ap_selector_mode(&s), "lock");
	assert_false(ap_selector_match(&s, db1, NDB1));
	ap_selector_free(&s);
	/* Pyroscope's profile type id: the part before ':' */
	assert_int_equal(ap_selector_parse("process_cpu:cpu:nanoseconds:cpu:nanoseconds{a=\"b\"}",
					   &s, err, sizeof(err)),
			 0);
	assert_string_equal(ap_selector_mode(&s), "process_cpu");
	ap_selector_free(&s);
	assert_int_equal(ap_selector_parse("{mode=~\"c.*\"}", &s, err, sizeof(err)), 0);
	assert_null(ap_selector_mode(&s)); /* only = names a mode */
	ap_selector_free(&s);
	assert_int_equal(ap_selector_parse("{host=\"a\",mode=\"syscall\"}", &s, err, sizeof(err)), 0);
	assert_string_equal(ap_selector_mode(&s), "syscall");
	ap_selector_free(&s);
	assert_true(matches("cpu{host=\"db1\"}"));
	assert_false(matches("wall"));
}

static void test_escapes(void **state)
{
	static const struct ap_label_kv odd[] = { { "v", "a\"b\\c\nd" } };
	struct ap_selector s;
	char err[256];

	(void)state;
	assert_int_equal(ap_selector_parse("{v=\"a\\\"b\\\\c\\nd\"}", &s, err, sizeof(err)), 0);
	assert_string_equal(s.m[0].value, "a\"b\\c\nd");
	assert_true(ap_selector_match(&s, odd, 1));
	ap_selector_free(&s);
	assert_int_equal(ap_selector_parse("{v='x'}", &s, err, sizeof(err)), 0);
	assert_string_equal(s.m[0].value, "x");
	ap_selector_free(&s);
}

static void test_errors(void **state)
{
	const char *e;

	(void)state;
	e = refused("{host=\"db1\"");
	assert_non_null(strstr(e, "at the end"));
	e = refused("{host=db1}");
	assert_non_null(strstr(e, "byte 6"));
	assert_non_null(strstr(e, "double-quoted"));
	e = refused("{host==\"x\"}");
	assert_non_null(strstr(e, "byte 6"));
	e = refused("{1host=\"x\"}");
	assert_non_null(strstr(e, "label name"));
	e = refused("{host=\"x\" comm=\"y\"}");
	assert_non_null(strstr(e, "',' or '}'"));
	e = refused("{host=\"x\"} extra");
	assert_non_null(strstr(e, "after '}'"));
	e = refused("{host=\"x\\q\"}");
	assert_non_null(strstr(e, "escape"));
	e = refused("{host~\"x\"}");
	assert_non_null(strstr(e, "operator"));
	e = refused("{comm=~\"(\"}");
	assert_non_null(strstr(e, "bad regex"));
	e = refused("{comm=~\"(a)\\\\1\"}");
	assert_non_null(strstr(e, "back-reference"));
	e = refused("{comm=~\"((a{100}){100}){100}\"}");
	assert_non_null(strstr(e, "repeats too much"));
	e = refused("{comm=~\"a+++++++++++++++++++++++\"}"); /* minutes in regcomp */
	assert_non_null(strstr(e, "repeats a repetition"));
	e = refused("{comm=~\")++++++++\"}"); /* glibc reads the ')' as a character */
	assert_non_null(strstr(e, "repeats a repetition"));
	e = refused("{comm=~\"*+++++++\"}");
	assert_non_null(strstr(e, "repeats a repetition"));
	e = refused("{comm=~\"(((a+)+)+)+\"}");
	assert_non_null(strstr(e, "more than 2 deep"));
	assert_true(matches("{comm=~\"(p[a-z]+)+\"}")); /* two levels are fine */
	assert_true(matches("{comm=~\"[*+]*p.*s{1,2}.*\"}"));
	e = refused("cpu cpu");
	assert_non_null(strstr(e, "expected '{'"));
	e = refused("{a=\"x\",}}");
	assert_non_null(strstr(e, "after '}'"));
}

static void test_limits(void **state)
{
	char *big = malloc(70000), err[256];
	struct ap_selector s;
	size_t n = 0;

	(void)state;
	/* 64 matchers pass, 65 do not */
	n += (size_t)sprintf(big, "{");
	for (int i = 0; i < 64; i++)
		n += (size_t)sprintf(big + n, "l%d=\"v\",", i);
	sprintf(big + n, "}");
	assert_int_equal(ap_selector_parse(big, &s, err, sizeof(err)), 0);
	assert_int_equal(s.n, 64);
	ap_selector_free(&s);
	sprintf(big + n, "x=\"y\"}");
	assert_non_null(strstr(refused(big), "more than 64 matchers"));
	/* a value over 1024 bytes */
	memset(big, 'a', 69999);
	memcpy(big, "{a=\"", 4);
	strcpy(big + 4 + 1100, "\"}");
	assert_non_null(strstr(refused(big), "longer than 1024"));
	/* the whole text over 64 KiB */
	memset(big, ' ', 69999);
	big[69999] = 0;
	assert_non_null(strstr(refused(big), "longer than"));
	free(big);
	/* a NULL text selects everything */
	assert_int_equal(ap_selector_parse(NULL, &s, err, sizeof(err)), 0);
	assert_int_equal(s.n, 0);
	assert_true(ap_selector_match(&s, db1, NDB1));
	ap_selector_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ops),	     cmocka_unit_test(test_missing_labels),
		cmocka_unit_test(test_prefix_and_mode), cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_errors),	     cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
