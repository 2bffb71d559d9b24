// SPDX-License-Identifier: MIT
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib/parse.h"

static void test_duration_units(void **state)
{
	uint64_t ns = 0;

	assert_int_equal(ap_parse_duration_ns("10s", &ns), 0);
	assert_int_equal(ns, 10000000000ULL);
	assert_int_equal(ap_parse_duration_ns("10", &ns), 0);
	assert_int_equal(ns, 10000000000ULL);
	assert_int_equal(ap_parse_duration_ns("250ms", &ns), 0);
	assert_int_equal(ns, 250000000ULL);
	assert_int_equal(ap_parse_duration_ns("1.5s", &ns), 0);
	assert_int_equal(ns, 1500000000ULL);
	assert_int_equal(ap_parse_duration_ns("2m", &ns), 0);
	assert_int_equal(ns, 120000000000ULL);
	assert_int_equal(ap_parse_duration_ns("1h", &ns), 0);
	assert_int_equal(ns, 3600000000000ULL);
	assert_int_equal(ap_parse_duration_ns("0.5ms", &ns), 0);
	assert_int_equal(ns, 500000ULL);
	assert_int_equal(ap_parse_duration_ns("1.25m", &ns), 0);
	assert_int_equal(ns, 75000000000ULL);
	assert_int_equal(ap_parse_duration_ns("750us", &ns), 0);
	assert_int_equal(ns, 750000ULL);
}

static void test_duration_rejects(void **state)
{
	uint64_t ns = 7;

	assert_int_equal(ap_parse_duration_ns("", &ns), -EINVAL);
	assert_int_equal(ap_parse_duration_ns("s", &ns), -EINVAL);
	assert_int_equal(ap_parse_duration_ns("10x", &ns), -EINVAL);
	assert_int_equal(ap_parse_duration_ns("-1s", &ns), -EINVAL);
	assert_int_equal(ap_parse_duration_ns("1.s", &ns), -EINVAL);
	assert_int_equal(ap_parse_duration_ns("10 s", &ns), -EINVAL);
	assert_int_equal(ap_parse_duration_ns("0s", &ns), -ERANGE);
	assert_int_equal(ap_parse_duration_ns("99999999999999999999h", &ns), -ERANGE);
	assert_int_equal(ap_parse_duration_ns("9999999h", &ns), -ERANGE);
	assert_int_equal(ns, 7);
}

static void test_u64_and_pid(void **state)
{
	uint64_t v;
	int pid;

	assert_int_equal(ap_parse_u64("99", 1, 100000, &v), 0);
	assert_int_equal(v, 99);
	assert_int_equal(ap_parse_u64("0", 1, 100000, &v), -ERANGE);
	assert_int_equal(ap_parse_u64("100001", 1, 100000, &v), -ERANGE);
	assert_int_equal(ap_parse_u64("12a", 1, 100000, &v), -EINVAL);
	assert_int_equal(ap_parse_u64("+5", 1, 100000, &v), -EINVAL);
	assert_int_equal(ap_parse_u64("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE);
	assert_int_equal(ap_parse_pid("1234", &pid), 0);
	assert_int_equal(pid, 1234);
	assert_int_equal(ap_parse_pid("0", &pid), -ERANGE);
	assert_int_equal(ap_parse_pid("4294967296", &pid), -ERANGE);
	assert_int_equal(ap_parse_pid("abc", &pid), -EINVAL);
}

static void test_size_units(void **state)
{
	uint64_t v = 0;

	(void)state;
	assert_int_equal(ap_parse_size("4096", 0, UINT64_MAX, &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(ap_parse_size("64K", 0, UINT64_MAX, &v), 0);
	assert_int_equal(v, 64 << 10);
	assert_int_equal(ap_parse_size("128m", 0, UINT64_MAX, &v), 0);
	assert_int_equal(v, 128ULL << 20);
	assert_int_equal(ap_parse_size("2GiB", 0, UINT64_MAX, &v), 0);
	assert_int_equal(v, 2ULL << 30);
	assert_int_equal(ap_parse_size("1MiB", 0, UINT64_MAX, &v), 0);
	assert_int_equal(v, 1ULL << 20);
	/* rejected, and v untouched */
	v = 7;
	assert_int_equal(ap_parse_size("", 0, UINT64_MAX, &v), -EINVAL);
	assert_int_equal(ap_parse_size("-1M", 0, UINT64_MAX, &v), -EINVAL);
	assert_int_equal(ap_parse_size("12X", 0, UINT64_MAX, &v), -EINVAL);
	assert_int_equal(ap_parse_size("12MB!", 0, UINT64_MAX, &v), -EINVAL);
	assert_int_equal(ap_parse_size("1.5G", 0, UINT64_MAX, &v), -EINVAL);
	assert_int_equal(ap_parse_size("99999999999999G", 0, UINT64_MAX, &v), -ERANGE);
	assert_int_equal(ap_parse_size("512K", 1 << 20, UINT64_MAX, &v), -ERANGE);
	assert_int_equal(ap_parse_size("2G", 0, 1ULL << 30, &v), -ERANGE);
	assert_int_equal(v, 7);
}

/* The one duration style of every report: three significant digits, the unit, no space. */
static void test_format_duration(void **state)
{
	char buf[32];

	(void)state;
	assert_string_equal(ap_format_duration(0, buf, sizeof(buf)), "0ns");
	assert_string_equal(ap_format_duration(999, buf, sizeof(buf)), "999ns");
	assert_string_equal(ap_format_duration(1500, buf, sizeof(buf)), "1.50us");
	assert_string_equal(ap_format_duration(12345, buf, sizeof(buf)), "12.3us");
	/* rounds up into the next unit rather than printing "1000us" */
	assert_string_equal(ap_format_duration(999960, buf, sizeof(buf)), "1.00ms");
	assert_string_equal(ap_format_duration(4560000, buf, sizeof(buf)), "4.56ms");
	assert_string_equal(ap_format_duration(2000000000ULL, buf, sizeof(buf)), "2.00s");
	assert_string_equal(ap_format_duration(120000000000ULL, buf, sizeof(buf)), "120s");
	/* a short buffer is cut, never overrun */
	assert_string_equal(ap_format_duration(4560000, buf, 4), "4.5");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration_units),
		cmocka_unit_test(test_duration_rejects),
		cmocka_unit_test(test_u64_and_pid),
		cmocka_unit_test(test_size_units),
		cmocka_unit_test(test_format_duration),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
