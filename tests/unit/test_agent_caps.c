// SPDX-License-Identifier: MIT
/* The capability rules of src/agent/caps.c: what loading needs, what the run loop keeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "agent/caps.h"

/* kernel numbers (include/uapi/linux/capability.h) */
enum { DAC_OVERRIDE = 1, DAC_READ_SEARCH = 2, SETPCAP = 8, SYS_PTRACE = 19, SYS_ADMIN = 21,
       SYS_RESOURCE = 24, SYSLOG = 34, PERFMON = 38, BPF = 39, CHECKPOINT_RESTORE = 40,
       LAST_618 = 40 /* 6.18's cap_last_cap */ };

#define B(c) AP_CAP_BIT(c)
#define ALL ((B(LAST_618) << 1) - 1)

static void test_loading_needs_bpf_and_perfmon(void **state)
{
	char msg[512];

	(void)state;
	assert_false(ap_caps_describe_missing(B(BPF) | B(PERFMON), LAST_618, msg, sizeof(msg)));
	assert_string_equal(msg, "");
	assert_false(ap_caps_describe_missing(ALL, LAST_618, msg, sizeof(msg)));

	assert_true(ap_caps_describe_missing(B(BPF) | B(SYS_PTRACE), LAST_618, msg, sizeof(msg)));
	assert_non_null(strstr(msg, "missing CAP_PERFMON (needed to open perf events"));
	assert_null(strstr(msg, "CAP_BPF"));

	assert_true(ap_caps_describe_missing(B(PERFMON), LAST_618, msg, sizeof(msg)));
	assert_non_null(strstr(msg, "missing CAP_BPF (needed to load BPF programs"));
	assert_null(strstr(msg, "CAP_PERFMON"));

	/* both missing: both named */
	assert_true(ap_caps_describe_missing(0, LAST_618, msg, sizeof(msg)));
	assert_non_null(strstr(msg, "missing CAP_BPF ("));
	assert_non_null(strstr(msg, " and CAP_PERFMON ("));
}

static void test_sys_admin_stands_in(void **state)
{
	char msg[512];

	(void)state;
	/* the kernel accepts CAP_SYS_ADMIN for both */
	assert_false(ap_caps_describe_missing(B(SYS_ADMIN), LAST_618, msg, sizeof(msg)));
	/* before 5.8 there is no CAP_BPF or CAP_PERFMON: CAP_SYS_ADMIN is what to ask for */
	assert_true(ap_caps_describe_missing(B(SYS_PTRACE), 37, msg, sizeof(msg)));
	assert_non_null(strstr(msg, "missing CAP_SYS_ADMIN (needed to load"));
	assert_null(strstr(msg, "CAP_BPF"));
	/* bits the kernel does not know do not count */
	assert_true(ap_caps_describe_missing(B(BPF) | B(PERFMON), 37, msg, sizeof(msg)));
}

static void test_small_buffer(void **state)
{
	char msg[16];

	(void)state;
	assert_true(ap_caps_describe_missing(0, LAST_618, msg, sizeof(msg)));
	assert_int_equal(strlen(msg), sizeof(msg) - 1);
}

static void test_keep(void **state)
{
	const uint64_t granted = B(BPF) | B(PERFMON) | B(SYS_PTRACE) | B(DAC_READ_SEARCH) |
				 B(CHECKPOINT_RESTORE) | B(SYSLOG);
	const uint64_t kept = B(BPF) | B(SYS_PTRACE) | B(DAC_READ_SEARCH) | B(CHECKPOINT_RESTORE);

	(void)state;
	/* the unit's set: CAP_PERFMON and CAP_SYSLOG go (their jobs are done by then) */
	assert_int_equal(ap_caps_keep_mask(granted, LAST_618), kept);
	/* root: also CAP_DAC_OVERRIDE (the profile is renamed into place at the end); CAP_SYS_ADMIN,
	 * CAP_SETPCAP, CAP_SYS_RESOURCE... go */
	assert_int_equal(ap_caps_keep_mask(ALL, LAST_618), kept | B(DAC_OVERRIDE));
	/* nothing is added that was not held */
	assert_int_equal(ap_caps_keep_mask(B(PERFMON), LAST_618), 0);
	assert_int_equal(ap_caps_keep_mask(0, LAST_618), 0);
	/* before CAP_BPF/CAP_CHECKPOINT_RESTORE, CAP_SYS_ADMIN does their jobs: kept */
	assert_int_equal(ap_caps_keep_mask((B(38) - 1), 37) & B(SYS_ADMIN), B(SYS_ADMIN));
	assert_int_equal(ap_caps_keep_mask(ALL, LAST_618) & (B(SYS_ADMIN) | B(SETPCAP) |
							      B(SYS_RESOURCE) | B(PERFMON)), 0);
	/* CAP_SYS_ADMIN standing in for a CAP_BPF or CAP_CHECKPOINT_RESTORE not granted: kept */
	assert_int_equal(ap_caps_keep_mask(B(SYS_ADMIN) | B(SYS_PTRACE), LAST_618),
			 B(SYS_ADMIN) | B(SYS_PTRACE));
	assert_int_equal(ap_caps_keep_mask((granted & ~B(CHECKPOINT_RESTORE)) | B(SYS_ADMIN),
					   LAST_618),
			 (kept & ~B(CHECKPOINT_RESTORE)) | B(SYS_ADMIN));
}

static void test_names(void **state)
{
	char buf[16];

	(void)state;
	assert_string_equal(ap_caps_name(BPF, buf, sizeof(buf)), "CAP_BPF");
	assert_string_equal(ap_caps_name(CHECKPOINT_RESTORE, buf, sizeof(buf)),
			    "CAP_CHECKPOINT_RESTORE");
	assert_string_equal(ap_caps_name(5, buf, sizeof(buf)), "CAP_5");
	assert_string_equal(ap_caps_name(63, buf, sizeof(buf)), "CAP_63");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loading_needs_bpf_and_perfmon),
		cmocka_unit_test(test_sys_admin_stands_in),
		cmocka_unit_test(test_small_buffer),
		cmocka_unit_test(test_keep),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
