// SPDX-License-Identifier: MIT
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "lib/hist.h"

static void test_slots(void **state)
{
	assert_int_equal(ap_hist_slot(0), 0);
	assert_int_equal(ap_hist_slot(1), 0);
	assert_int_equal(ap_hist_slot(2), 1);
	assert_int_equal(ap_hist_slot(3), 1);
	assert_int_equal(ap_hist_slot(4), 2);
	assert_int_equal(ap_hist_slot(1023), 9);
	assert_int_equal(ap_hist_slot(1024), 10);
	assert_int_equal(ap_hist_slot(UINT64_MAX), 63);
	for (unsigned int i = 1; i < 63; i++) {
		assert_int_equal(ap_hist_slot(ap_hist_slot_low(i)), i);
		assert_int_equal(ap_hist_slot(ap_hist_slot_high(i) - 1), i);
	}
}

static void test_quantiles(void **state)
{
	uint64_t slots[AP_HIST_SLOTS] = { 0 };

	/* 90 values in [1024, 2048), 10 in [1 Mi, 2 Mi) */
	slots[10] = 90;
	slots[20] = 10;
	assert_int_equal(ap_hist_count(slots), 100);
	uint64_t p50 = ap_hist_quantile(slots, 0.5, 0, UINT64_MAX);
	assert_true(p50 >= 1024 && p50 < 2048);
	uint64_t p99 = ap_hist_quantile(slots, 0.99, 0, UINT64_MAX);
	assert_true(p99 >= (1u << 20) && p99 < (1u << 21));
	/* clamped to the known max */
	assert_int_equal(ap_hist_quantile(slots, 1.0, 0, 1500000), 1500000);
	memset(slots, 0, sizeof(slots));
	assert_int_equal(ap_hist_quantile(slots, 0.5, 0, UINT64_MAX), 0);
}

static void test_print(void **state)
{
	uint64_t slots[AP_HIST_SLOTS] = { 0 };
	char buf[4096] = "";
	FILE *f = fmemopen(buf, sizeof(buf) - 1, "w");

	slots[10] = 4;
	slots[12] = 8;
	ap_hist_print(f, slots, "ns", "  ");
	fclose(f);
	assert_non_null(strstr(buf, "1.02us -> 2.05us"));
	assert_non_null(strstr(buf, "|****************************************|"));
	assert_non_null(strstr(buf, "|********************"));
	/* the empty slot between the two is shown, with a zero count */
	assert_non_null(strstr(buf, "2.05us -> 4.10us"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slots),
		cmocka_unit_test(test_quantiles),
		cmocka_unit_test(test_print),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
