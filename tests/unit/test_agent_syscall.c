// SPDX-License-Identifier: MIT
/* Syscall mode's pure parts: name tables, the aggregate table, the profile, the reports,
 * and the --syscall flag. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent/agent.h"
#include "format/format.h"
#include "lib/profile.h"
#include "symbol/symbolizer.h"
#include "agent/syscall_record.h"
#include "lib/syscalls.h"

static void test_syscall_table(void **state)
{
	char buf[64];
	int nr;

	nr = ap_syscall_from_name("getppid");
	assert_true(nr >= 0);
	assert_string_equal(ap_syscall_name(nr), "getppid");
	assert_int_equal(ap_syscall_from_name("sys_getppid"), nr);
	assert_int_equal(ap_syscall_from_name("no_such_call"), -ENOENT);
	assert_int_equal(ap_syscall_from_name(""), -ENOENT);
	assert_null(ap_syscall_name(-1));
	assert_null(ap_syscall_name(100000));
	assert_true(ap_syscall_count() > 200);
	/* every name maps back to its own number */
	for (int i = 0; i < ap_syscall_count(); i++)
		if (ap_syscall_name(i))
			assert_int_equal(ap_syscall_from_name(ap_syscall_name(i)), i);
	/* an unknown number is never given another call's name */
	assert_string_equal(ap_syscall_key_name(4000, buf, sizeof(buf)), "syscall_4000");
	assert_string_equal(ap_syscall_key_name((uint32_t)nr, buf, sizeof(buf)), "getppid");
	assert_string_equal(ap_syscall_key_abi((uint32_t)nr), ap_syscall_arch());
#if defined(__x86_64__)
	assert_string_equal(ap_syscall_arch(), "x86_64");
	assert_int_equal(ap_syscall_from_name("read"), 0);
	assert_int_equal(nr, 110);
	assert_int_equal(ap_syscall_from_name("openat"), 257);
	/* ia32 getpid is 20 (x86_64's 20 is writev) */
	assert_string_equal(ap_syscall_compat_abi(), "ia32");
	assert_string_equal(ap_syscall_key_name(20 | AP_SYSCALL_ABI_COMPAT, buf, sizeof(buf)),
			    "ia32:getpid");
	assert_string_equal(ap_syscall_key_abi(20 | AP_SYSCALL_ABI_COMPAT), "ia32");
	assert_int_equal(ap_syscall_compat_from_name("exit_group"), 252);
	assert_string_equal(ap_syscall_key_name(0 | AP_SYSCALL_ABI_X32, buf, sizeof(buf)),
			    "x32:read");
#endif
}

static void test_errno_names(void **state)
{
	char buf[16];

	assert_string_equal(ap_errno_name(ENOENT), "ENOENT");
	assert_string_equal(ap_errno_name(EAGAIN), "EAGAIN"); /* not EWOULDBLOCK */
	assert_string_equal(ap_errno_name(EACCES), "EACCES");
	assert_string_equal(ap_errno_name(EINTR), "EINTR");
	assert_string_equal(ap_errno_name(512), "ERESTARTSYS");
	assert_string_equal(ap_errno_name(516), "ERESTART_RESTARTBLOCK");
	assert_null(ap_errno_name(0));
	assert_null(ap_errno_name(4000));
	assert_string_equal(ap_errno_label(4000, buf, sizeof(buf)), "E4000");
	assert_string_equal(ap_errno_label(ENOENT, buf, sizeof(buf)), "ENOENT");
}

/* A kernel aggregate of (pid, nr) with `n` calls of `ns` each. */
static void make_agg(struct ap_sys_agg *a, uint32_t pid, uint32_t nr, uint64_t n, uint64_t ns,
		     const char *comm)
{
	memset(a, 0, sizeof(*a));
	a->kind = AP_SYS_EV_STATS;
	a->key.pid = pid;
	a->key.nr = nr;
	a->count = n;
	a->total_ns = n * ns;
	a->min_ns = ns;
	a->max_ns = ns;
	a->hist[ap_hist_slot(ns)] = n;
	strncpy(a->comm, comm, sizeof(a->comm));
}

static void test_table_merge(void **state)
{
	struct ap_sys_table *t = ap_sys_table_new();
	const struct ap_sys_entry *e;
	struct ap_sys_agg a, b;

	assert_non_null(t);
	/* the same key from two CPUs (or evicted, then final) */
	make_agg(&a, 100, 2, 30, 1000, "app");
	a.errors = 5;
	a.errnos[0].err = ENOENT;
	a.errnos[0].count = 4;
	a.errnos[1].err = EACCES;
	a.errnos[1].count = 1;
	make_agg(&b, 100, 2, 10, 50000, "");
	b.errors = 3;
	b.errnos[0].err = EACCES;
	b.errnos[0].count = 3;
	b.slow = 10;
	assert_int_equal(ap_sys_table_add_agg(t, &a), 0);
	assert_int_equal(ap_sys_table_add_agg(t, &b), 0);
	/* an errno that did not fit the kernel's aggregate arrives on its own */
	assert_int_equal(ap_sys_table_add_errno(t, 100, 2, EPERM, 1), 0);
	/* unused and emptied ways are ignored */
	memset(&b, 0, sizeof(b));
	assert_int_equal(ap_sys_table_add_agg(t, &b), 0);
	b.key.pid = 7;
	assert_int_equal(ap_sys_table_add_agg(t, &b), 0);
	assert_int_equal(ap_sys_table_len(t), 1);

	e = ap_sys_table_find(t, 100, 2);
	assert_non_null(e);
	assert_string_equal(e->comm, "app");
	assert_int_equal(e->sum.count, 40);
	assert_int_equal(e->sum.errors, 8);
	assert_int_equal(e->sum.total_ns, 30 * 1000 + 10 * 50000);
	assert_int_equal(e->sum.min_ns, 1000);
	assert_int_equal(e->sum.max_ns, 50000);
	assert_int_equal(e->sum.slow, 10);
	assert_int_equal(ap_hist_count(e->sum.hist), 40);
	ap_sys_table_sort_errnos(t);
	assert_int_equal(e->nerrnos, 3);
	assert_int_equal(e->errnos[0].err, ENOENT); /* 4, then EACCES 4 (lower number first) */
	assert_int_equal(e->errnos[0].count, 4);
	assert_int_equal(e->errnos[1].err, EACCES);
	assert_int_equal(e->errnos[1].count, 4);
	assert_int_equal(e->errnos[2].err, EPERM);

	/* many keys: the index grows and finds them all */
	for (uint32_t i = 0; i < 5000; i++) {
		make_agg(&a, 1000 + i / 100, i % 100, 1, 10, "x");
		assert_int_equal(ap_sys_table_add_agg(t, &a), 0);
	}
	assert_int_equal(ap_sys_table_len(t), 5001);
	for (uint32_t i = 0; i < 5000; i++)
		assert_int_equal(ap_sys_table_find(t, 1000 + i / 100, i % 100)->sum.count, 1);
	assert_null(ap_sys_table_find(t, 99, 2));
	ap_sys_table_free(t);
	ap_sys_table_free(NULL);
}

__attribute__((noinline)) void unit_slow_caller(void)
{
	__asm__ volatile("");
}

static void test_profile(void **state)
{
	struct ap_profile *p = ap_profile_new();
	struct ap_sys_table *t = ap_sys_table_new();
	struct ap_symbolizer *sym = ap_symbolizer_new();
	struct ap_sys_slow_event ev = { 0 };
	int nsleep = ap_syscall_from_name("nanosleep"), nread = ap_syscall_from_name("read");
	__u64 ustack[2] = { (__u64)(uintptr_t)&unit_slow_caller, 0 }; /* leaf: exact */
	struct ap_sys_agg a;
	bool found_slow = false;
	char name[256];

	assert_non_null(p);
	assert_non_null(t);
	assert_non_null(sym);
	assert_int_equal(ap_sys_profile_init(p, 1000000), 0);
	assert_int_equal(ap_profile_nvalues(p), 2);
	assert_int_equal(ap_profile_default_value(p), AP_SYS_VALUE_LATENCY_NS);
	assert_string_equal(ap_profile_get_meta(p, "mode"), "syscall");

	/* 3 nanosleeps of 2 ms, 2 of them slow with a stack; 10 reads of 1 us */
	make_agg(&a, (uint32_t)getpid(), (uint32_t)nsleep, 3, 2000000, "unit");
	assert_int_equal(ap_sys_table_add_agg(t, &a), 0);
	make_agg(&a, (uint32_t)getpid(), (uint32_t)nread, 10, 1000, "unit");
	assert_int_equal(ap_sys_table_add_agg(t, &a), 0);
	ev.kind = AP_SYS_EV_SLOW;
	ev.pid = (uint32_t)getpid();
	ev.nr = (uint32_t)nsleep;
	ev.latency_ns = 2000000;
	strcpy(ev.comm, "unit");
	assert_int_equal(ap_sys_record_slow(p, sym, t, &ev, ustack), 0);
	assert_int_equal(ap_sys_record_slow(p, sym, t, &ev, ustack), 0);
	assert_int_equal(ap_sys_profile_finish(p, t), 0);

	/* nothing counted twice: the profile's totals are the table's */
	assert_int_equal(ap_profile_total(p, AP_SYS_VALUE_CALLS), 13);
	assert_int_equal(ap_profile_total(p, AP_SYS_VALUE_LATENCY_NS), 3 * 2000000 + 10 * 1000);
	for (size_t i = 0; i < ap_profile_nsamples(p); i++) {
		const struct ap_sample *s = ap_profile_sample(p, i);
		const uint32_t *frames;
		size_t n, nl;
		const struct ap_label *l = ap_profile_labels(p, s->labels, &nl);

		frames = ap_profile_stack(p, s->stack, &n);
		assert_true(n >= 1);
		/* the root is the syscall, and the sample carries its name as a label */
		ap_frame_display_name(p, frames[n - 1], name, sizeof(name));
		assert_int_equal(strncmp(name, "syscall:", 8), 0);
		assert_int_equal(nl, 1);
		assert_string_equal(ap_profile_str(p, l[0].key), "syscall");
		assert_string_equal(name + 8, ap_profile_str(p, l[0].str));
		assert_string_equal(ap_profile_str(p, s->comm), "unit");
		if (n == 2) {
			ap_frame_display_name(p, frames[0], name, sizeof(name));
			assert_string_equal(name, "unit_slow_caller");
			assert_int_equal(s->values[AP_SYS_VALUE_CALLS], 2);
			found_slow = true;
		}
	}
	assert_true(found_slow);
	ap_symbolizer_free(sym);
	ap_sys_table_free(t);
	ap_profile_free(p);
}

/* A table of two processes for the report tests. */
static struct ap_sys_table *report_table(void)
{
	struct ap_sys_table *t = ap_sys_table_new();
	struct ap_sys_agg a;

	make_agg(&a, 4242, (uint32_t)ap_syscall_from_name("getppid"), 1000, 300, "worker");
	ap_sys_table_add_agg(t, &a);
	make_agg(&a, 4242, (uint32_t)ap_syscall_from_name("openat"), 37, 2000, "worker");
	a.errors = 37;
	a.errnos[0].err = ENOENT;
	a.errnos[0].count = 37;
	ap_sys_table_add_agg(t, &a);
	make_agg(&a, 4243, (uint32_t)ap_syscall_from_name("nanosleep"), 3, 2000000, "sleeper");
	a.slow = 3;
	ap_sys_table_add_agg(t, &a);
	make_agg(&a, 4243, (uint32_t)ap_syscall_from_name("exit_group"), 0, 0, "sleeper");
	a.noreturn = 1;
	ap_sys_table_add_agg(t, &a);
	ap_sys_table_sort_errnos(t);
	return t;
}

static char *render(int (*fn)(const struct ap_sys_table *, const struct ap_profile *, FILE *,
			      const struct ap_sys_report_opts *),
		    const struct ap_sys_table *t, const struct ap_sys_report_opts *o)
{
	struct ap_profile *p = ap_profile_new();
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	ap_profile_set_time(p, 0, 2000000000ULL);
	ap_profile_set_stat(p, "calls_lost", 0);
	assert_int_equal(fn(t, p, f, o), 0);
	fclose(f);
	ap_profile_free(p);
	return buf;
}

static void test_text_report(void **state)
{
	struct ap_sys_table *t = report_table();
	struct ap_sys_report_opts o = { .histograms = true, .min_latency_ns = 1000000 };
	char *out = render(ap_sys_write_text, t, &o), *row, *first, *second;

	/* sorted by total time: nanosleep (6 ms) before openat (74 us) before getppid (300 us)? */
	first = strstr(out, "nanosleep");
	second = strstr(out, "getppid");
	assert_non_null(first);
	assert_non_null(second);
	assert_true(first < second);
	row = strstr(out, "openat");
	assert_non_null(row);
	assert_non_null(strstr(row, "ENOENT 37"));
	assert_non_null(strstr(out, "1,000"));
	assert_non_null(strstr(out, "1,041 calls"));
	assert_non_null(strstr(out, "2 processes"));
	assert_non_null(strstr(out, "worker"));
	assert_non_null(strstr(out, "sleeper"));
	assert_non_null(strstr(out, "exit_group"));
	assert_non_null(strstr(out, "slow"));
	/* getppid: every call 300 ns, so p50 and p99 clamp to 300ns */
	row = strstr(out, "  getppid");
	assert_non_null(row);
	assert_non_null(strstr(out, "300ns"));
	/* --hist: a distribution per row */
	assert_non_null(strstr(out, "|****************************************|"));
	assert_null(strstr(out, "warning"));
	free(out);

	/* one process: named once in the header, no pid column; top_n cuts rows */
	o.histograms = false;
	o.top_n = 1;
	ap_sys_table_free(t);
	t = ap_sys_table_new();
	{
		struct ap_sys_agg a;

		make_agg(&a, 1, 0, 5, 100, "solo");
		ap_sys_table_add_agg(t, &a);
		make_agg(&a, 1, 1, 5, 10, "solo");
		ap_sys_table_add_agg(t, &a);
	}
	out = render(ap_sys_write_text, t, &o);
	assert_non_null(strstr(out, "Process 1 (solo)"));
	assert_non_null(strstr(out, "1 more rows"));
	assert_null(strstr(out, "|*"));
	free(out);
	ap_sys_table_free(t);
}

static void test_json_report(void **state)
{
	struct ap_sys_table *t = report_table();
	struct ap_sys_report_opts o = { .min_latency_ns = 1000000 };
	char *out = render(ap_sys_write_json, t, &o);

	assert_non_null(strstr(out, "\"mode\": \"syscall\""));
	assert_non_null(strstr(out, "\"name\": \"getppid\""));
	assert_non_null(strstr(out, "\"comm\": \"worker\""));
	assert_non_null(strstr(out, "\"count\": 1000"));
	assert_non_null(strstr(out, "\"errors\": {\"ENOENT\": 37}"));
	assert_non_null(strstr(out, "\"errors\": {}"));
	assert_non_null(strstr(out, "\"noreturn\": 1"));
	assert_non_null(strstr(out, "\"min_ns\": 300"));
	assert_non_null(strstr(out, "\"hist\": [{\"low_ns\": 256, \"high_ns\": 512, \"count\": 1000}]"));
	assert_non_null(strstr(out, "\"calls_lost\": 0"));
	free(out);
	ap_sys_table_free(t);
}

static int parse(struct ap_agent_opts *o, const char *a1, const char *a2, const char *a3,
		 const char *a4)
{
	char *argv[] = { "agent", "-m", "syscall", (char *)a1, (char *)a2, (char *)a3, (char *)a4,
			 NULL };
	int argc = 3;

	while (argv[argc])
		argc++;
	memset(o, 0, sizeof(*o));
	o->prog = "agent";
	return ap_agent_parse_args(argc, argv, o);
}

static void test_options(void **state)
{
	struct ap_agent_opts o;

	assert_int_equal(parse(&o, "--syscall", "getppid,openat", "--syscall", "getppid"), 0);
	assert_int_equal(o.nsyscalls, 2);
	assert_int_equal(o.syscalls[0], ap_syscall_from_name("getppid"));
	assert_int_equal(o.syscalls[1], ap_syscall_from_name("openat"));
	assert_int_equal(parse(&o, "--syscall", "getppid,nope", NULL, NULL), AP_EXIT_USAGE);
	assert_int_equal(parse(&o, "--syscall", ",", NULL, NULL), AP_EXIT_USAGE);
	assert_int_equal(parse(&o, "--slow-stacks", NULL, NULL, NULL), AP_EXIT_USAGE);
	assert_int_equal(parse(&o, "--slow-stacks", "--min-latency", "1ms", NULL), 0);
	assert_int_equal(o.min_latency_ns, 1000000);
	assert_true(o.slow_stacks);
	assert_int_equal(parse(&o, "--unwind-memory", "256M", NULL, NULL), 0);
	assert_int_equal(o.unwind_memory, 256ULL << 20);
	assert_int_equal(parse(&o, "--unwind-memory", "512K", NULL, NULL), AP_EXIT_USAGE);
	assert_int_equal(parse(&o, "--unwind-memory", "lots", NULL, NULL), AP_EXIT_USAGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_syscall_table), cmocka_unit_test(test_errno_names),
		cmocka_unit_test(test_table_merge),   cmocka_unit_test(test_profile),
		cmocka_unit_test(test_text_report),   cmocka_unit_test(test_json_report),
		cmocka_unit_test(test_options),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
