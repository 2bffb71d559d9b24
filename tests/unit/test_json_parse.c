// SPDX-License-Identifier: MIT
/* The strict JSON parser (src/lib/json_parse.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/json_parse.h"

static struct ap_json *parse(const char *s, char *err, size_t errlen)
{
	return ap_json_parse(s, strlen(s), err, errlen);
}

static void test_values(void **state)
{
	char err[256];
	struct ap_json *j = parse(" {\"a\": [1, -2.5e3, true, false, null, \"x\\ty\"],\n"
				  "  \"b\": {\"c\": \"\\u00e9\\ud83d\\ude00\"}, \"e\": []}\n",
				  err, sizeof(err));
	const struct ap_json *a, *c;
	(void)state;
	assert_non_null(j);
	assert_int_equal(j->type, AP_JSON_OBJECT);
	assert_int_equal(j->len, 3);
	a = ap_json_get(j, "a");
	assert_non_null(a);
	assert_int_equal(a->type, AP_JSON_ARRAY);
	assert_int_equal(a->len, 6);
	assert_string_equal(a->items[0].str, "1");
	assert_string_equal(a->items[1].str, "-2.5e3");
	assert_true(a->items[2].type == AP_JSON_BOOL && a->items[2].boolean);
	assert_true(a->items[3].type == AP_JSON_BOOL && !a->items[3].boolean);
	assert_int_equal(a->items[4].type, AP_JSON_NULL);
	assert_string_equal(a->items[5].str, "x\ty");
	c = ap_json_get(ap_json_get(j, "b"), "c");
	assert_string_equal(c->str, "\xc3\xa9\xf0\x9f\x98\x80");
	assert_int_equal(c->line, 2);
	assert_int_equal(ap_json_get(j, "e")->len, 0);
	assert_null(ap_json_get(j, "missing"));
	assert_null(ap_json_get(a, "a"));
	ap_json_free(j);
}

static void test_rejects(void **state)
{
	static const char *const bad[] = {
		"",
		"[1,]",
		"{\"a\":1,}",
		"[1 2]",
		"{\"a\" 1}",
		"{a:1}",
		"'x'",
		"01",
		"1.",
		"-",
		".5",
		"1e",
		"tru",
		"nul",
		"[1]]",
		"\"abc",
		"\"\\x\"",
		"\"\\u12\"",
		"\"\\ud800\"",
		"\"a\nb\"",
		"\"\xff\"",
		"\"\xc0\xaf\"",
		"{\"a\":1,\"a\":2}",
		"[1] x",
		"// c\n1",
		"\"\xed\xa0\x80\"",
	};
	char err[256];
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ap_json *j = parse(bad[i], err, sizeof(err));
		if (j)
			fail_msg("accepted %s", bad[i]);
		assert_non_null(strstr(err, "line "));
	}
}

static void test_depth_and_position(void **state)
{
	char deep[200], err[256];
	(void)state;
	memset(deep, '[', sizeof(deep) - 1);
	deep[sizeof(deep) - 1] = '\0';
	assert_null(parse(deep, err, sizeof(err)));
	assert_non_null(strstr(err, "nesting deeper than"));
	assert_null(parse("[\n  1,\n  @]", err, sizeof(err)));
	assert_string_equal(err, "line 3, column 3: unexpected character '@'");
}

static void test_integers(void **state)
{
	char err[256];
	struct ap_json *j = parse("[0, 18446744073709551615, 18446744073709551616, -1, "
				  "-9223372036854775808, 1.5, \"0xffffffff81000000\", \"42\", "
				  "\"0x\", true, \"-0x10\"]",
				  err, sizeof(err));
	uint64_t u;
	int64_t s;
	(void)state;
	assert_non_null(j);
	assert_int_equal(ap_json_u64(&j->items[0], &u), 0);
	assert_int_equal(u, 0);
	assert_int_equal(ap_json_u64(&j->items[1], &u), 0);
	assert_true(u == UINT64_MAX);
	assert_int_equal(ap_json_u64(&j->items[2], &u), -ERANGE);
	assert_int_equal(ap_json_u64(&j->items[3], &u), -ERANGE);
	assert_int_equal(ap_json_i64(&j->items[3], &s), 0);
	assert_int_equal(s, -1);
	assert_int_equal(ap_json_i64(&j->items[4], &s), 0);
	assert_true(s == INT64_MIN);
	assert_int_equal(ap_json_i64(&j->items[1], &s), -ERANGE);
	assert_int_equal(ap_json_u64(&j->items[5], &u), -EINVAL);
	assert_int_equal(ap_json_u64(&j->items[6], &u), 0);
	assert_true(u == 0xffffffff81000000ull);
	assert_int_equal(ap_json_u64(&j->items[7], &u), 0);
	assert_int_equal(u, 42);
	assert_int_equal(ap_json_u64(&j->items[8], &u), -EINVAL);
	assert_int_equal(ap_json_u64(&j->items[9], &u), -EINVAL);
	assert_int_equal(ap_json_i64(&j->items[10], &s), 0);
	assert_int_equal(s, -16);
	assert_int_equal(ap_json_u64(NULL, &u), -EINVAL);
	ap_json_free(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_rejects),
		cmocka_unit_test(test_depth_and_position),
		cmocka_unit_test(test_integers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
