// SPDX-License-Identifier: MIT
/* The agent's filter plumbing: --filter flags, filter records built from BPF data, and the
 * per-event aggregation that must give exactly what the kernel's aggregates give. */
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
#include "agent/collector.h"
#include "agent/cpu_record.h"
#include "agent/filter_hook.h"
#include "lib/hist.h"
#include "agent/lock_record.h"
#include "lib/profile.h"
#include "agent/syscall_record.h"

#define SDK_FILTER(name) AP_BIN_DIR "/" name ".wasm"

/* Parse "agent -m cpu" followed by the NULL-terminated flags. */
static int parse(struct ap_agent_opts *o, ...)
{
	char *argv[32] = { "agent", "-m", "cpu" };
	int argc = 3;
	va_list ap;

	va_start(ap, o);
	while (argc < 31 && (argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	memset(o, 0, sizeof(*o));
	o->prog = "agent";
	return ap_agent_parse_args(argc, argv, o);
}

static void test_options(void **state)
{
	struct ap_agent_opts o;

	(void)state;
	assert_int_equal(parse(&o, NULL), 0);
	assert_null(o.filter);
	assert_false(o.per_event);
	assert_int_equal(parse(&o, "--filter", "f.wasm", NULL), 0);
	assert_string_equal(o.filter, "f.wasm");
	assert_true(o.per_event); /* a filter sees every event */
	assert_int_equal(o.filter_engine, AP_FILTER_ENGINE_AUTO);
	assert_int_equal(o.filter_on_error, AP_FILTER_ON_ERROR_KEEP);
	assert_int_equal(o.filter_fuel, 0); /* 0: the engine's default */
	assert_int_equal(parse(&o, "--filter", "f.wasm", "--filter-config", "pid=1,comm=x",
			       "--filter-on-error", "drop", "--filter-engine", "interp",
			       "--filter-fuel", "5000", "--filter-memory-pages", "16",
			       "--filter-call-depth", "64", NULL),
			 0);
	assert_string_equal(o.filter_config, "pid=1,comm=x");
	assert_int_equal(o.filter_on_error, AP_FILTER_ON_ERROR_DROP);
	assert_int_equal(o.filter_engine, AP_FILTER_ENGINE_INTERP);
	assert_int_equal(o.filter_fuel, 5000);
	assert_int_equal(o.filter_memory_pages, 16);
	assert_int_equal(o.filter_call_depth, 64);
	/* usage errors */
	assert_int_equal(parse(&o, "--filter-config", "pid=1", NULL), AP_EXIT_USAGE);
	assert_int_equal(parse(&o, "--filter-fuel", "10", NULL), AP_EXIT_USAGE);
	assert_int_equal(parse(&o, "--filter", "", NULL), AP_EXIT_USAGE);
	assert_int_equal(parse(&o, "--filter", "f", "--filter-on-error", "maybe", NULL),
			 AP_EXIT_USAGE);
	assert_int_equal(parse(&o, "--filter", "f", "--filter-engine", "jit", NULL),
			 AP_EXIT_USAGE);
	assert_int_equal(parse(&o, "--filter", "f", "--filter-fuel", "0", NULL), AP_EXIT_USAGE);
	assert_int_equal(parse(&o, "--filter", "f", "--filter-memory-pages", "16385", NULL),
			 AP_EXIT_USAGE);
	assert_int_equal(parse(&o, "--filter", "f", "--filter-call-depth", "501", NULL),
			 AP_EXIT_USAGE);
	assert_int_equal(parse(&o, "--filter", NULL), AP_EXIT_USAGE);
}

static void test_event_records(void **state)
{
	static struct ap_filter_event ev;
	__u64 ks[4] = { 0xffffffff81000010, 0xffffffff81000020, 0xffffffff81000030, 0 };
	__u64 us[8] = { 0x401000, 0x401100, 0x401200, 0x401300, 0x401400, 0x401500 };
	__u64 back[8];
	char comm[AP_FILTER_COMM_LEN];

	(void)state;
	ap_filter_event_init(&ev, AP_FILTER_EV_CPU, 42, 43, 1000, 1, "a_very_long_thread_name",
			     1);
	assert_string_equal(ap_filter_event_comm(&ev, comm), "a_very_long_thr"); /* 15 + NUL */
	assert_int_equal(ev.abi_version, AP_FILTER_ABI_VERSION);
	ap_filter_event_add_stack(&ev, true, ks, 127);
	ap_filter_event_add_stack(&ev, false, us, 4); /* the capture depth: truncated */
	assert_int_equal(ev.n_kernel, 3);
	assert_int_equal(ev.n_user, 4);
	assert_int_equal(ev.size, AP_FILTER_EVENT_SIZE(7));
	assert_int_equal(ev.flags, AP_FILTER_F_USER_TRUNCATED);
	assert_true(ev.frames[0] == ks[0] && ev.frames[3] == us[0] && ev.frames[6] == us[3]);
	assert_int_equal(ap_filter_event_stack(&ev, false, back, 7), 4);
	assert_memory_equal(back, us, 4 * sizeof(__u64));
	assert_true(back[4] == 0);
	assert_int_equal(ap_filter_event_stack(&ev, true, back, 2), 2); /* bounded */
	assert_true(back[2] == 0);
	ap_filter_event_add_stack(&ev, false, NULL, 127); /* no stack: nothing */
	assert_int_equal(ev.n_user, 4);
}

/* Per-event syscall aggregation equals the kernel's aggregate of the same calls. */
static void test_syscall_calls(void **state)
{
	static const struct {
		uint64_t ns;
		int64_t ret;
		bool noreturn;
	} calls[] = {
		{ 500, 0, false },   { 1500, -2, false }, { 3000000, 0, false }, { 900, -2, false },
		{ 700, -11, false }, { 800, -13, false }, { 600, -1, false },	  { 400, -9, false },
		{ 0, 0, true },	     { 2500000, 5, false },
	};
	struct ap_sys_table *ev = ap_sys_table_new(), *kern = ap_sys_table_new();
	static struct ap_sys_agg a;
	const struct ap_sys_entry *x, *y;
	uint64_t min_lat = 1000000;

	(void)state;
	assert_non_null(ev);
	assert_non_null(kern);
	/* the kernel's way: one aggregate, errnos beyond its 4 slots as single events */
	a.kind = AP_SYS_EV_STATS;
	a.key.pid = 42;
	a.key.nr = 257;
	strcpy(a.comm, "proc");
	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
		struct ap_sys_call c = { .pid = 42, .nr = 257, .ret = calls[i].ret,
					 .latency_ns = calls[i].ns, .min_latency_ns = min_lat,
					 .noreturn = calls[i].noreturn };

		strcpy(c.comm, "proc");
		assert_int_equal(ap_sys_table_add_call(ev, &c), 0);
		if (calls[i].noreturn) {
			a.noreturn++;
			continue;
		}
		if (!a.count || calls[i].ns < a.min_ns)
			a.min_ns = calls[i].ns;
		if (calls[i].ns > a.max_ns)
			a.max_ns = calls[i].ns;
		a.count++;
		a.total_ns += calls[i].ns;
		a.hist[ap_hist_slot(calls[i].ns)]++;
		a.slow += calls[i].ns >= min_lat;
		if (calls[i].ret < 0) {
			uint32_t err = (uint32_t)-calls[i].ret;
			int s = 0;

			a.errors++;
			while (s < AP_SYS_ERRNO_SLOTS && a.errnos[s].err && a.errnos[s].err != err)
				s++;
			if (s < AP_SYS_ERRNO_SLOTS) {
				a.errnos[s].err = err;
				a.errnos[s].count++;
			} else {
				assert_int_equal(ap_sys_table_add_errno(kern, 42, 257, err, 1), 0);
			}
		}
	}
	assert_int_equal(ap_sys_table_add_agg(kern, &a), 0);
	ap_sys_table_sort_errnos(ev);
	ap_sys_table_sort_errnos(kern);
	x = ap_sys_table_find(ev, 42, 257);
	y = ap_sys_table_find(kern, 42, 257);
	assert_non_null(x);
	assert_non_null(y);
	assert_memory_equal(&x->sum, &y->sum, sizeof(x->sum));
	assert_string_equal(x->comm, y->comm);
	assert_int_equal(x->nerrnos, y->nerrnos);
	assert_int_equal(x->nerrnos, 5);
	assert_memory_equal(x->errnos, y->errnos, x->nerrnos * sizeof(*x->errnos));
	assert_int_equal(x->sum.slow, 2);

	/* a call a filter scaled by 3 counts as three */
	{
		struct ap_sys_call c = { .pid = 7, .nr = 0, .ret = -2, .latency_ns = 100,
					 .weight = 3 };

		assert_int_equal(ap_sys_table_add_call(ev, &c), 0);
		x = ap_sys_table_find(ev, 7, 0);
		assert_int_equal(x->sum.count, 3);
		assert_int_equal(x->sum.total_ns, 300);
		assert_int_equal(x->sum.errors, 3);
		assert_int_equal(x->errnos[0].count, 3);
		assert_int_equal(ap_hist_count(x->sum.hist), 3);
	}
	ap_sys_table_free(ev);
	ap_sys_table_free(kern);
}

/* Per-event lock aggregation equals the kernel's aggregate of the same waits. */
static void test_lock_waits(void **state)
{
	static const struct {
		uint64_t ns;
		int64_t ret;
	} waits[] = { { 1000, 0 }, { 5000, -110 }, { 3000, -4 }, { 2000, -512 }, { 7000, -22 },
		      { 9000, 0 } };
	struct ap_lock_table *ev = ap_lock_table_new(NULL), *kern = ap_lock_table_new(NULL);
	struct ap_profile *pe = ap_profile_new(), *pk = ap_profile_new();
	struct ap_lock_record_stats se = { 0 }, sk = { 0 };
	struct ap_lock_key key = { .addr = 0x1000, .pid = 42, .tid = 43, .kind = AP_LOCK_MUTEX };
	struct ap_lock_val agg = { 0 }, one;
	const struct ap_lock_entry *x, *y;

	(void)state;
	assert_true(ev && kern && pe && pk);
	assert_int_equal(ap_lock_profile_init(pe), 0);
	assert_int_equal(ap_lock_profile_init(pk), 0);
	strcpy(key.comm, "waiter");
	for (size_t i = 0; i < sizeof(waits) / sizeof(waits[0]); i++) {
		ap_lock_val_of_wait(&one, waits[i].ns, waits[i].ret, 1, waits[i].ns);
		assert_int_equal(ap_lock_record(pe, NULL, ev, &key, &one, NULL, NULL, &se), 0);
		/* what lock.bpf.c's add_wait() accumulates */
		agg.count++;
		agg.total_ns += waits[i].ns;
		if (waits[i].ns > agg.max_ns)
			agg.max_ns = waits[i].ns;
		agg.hist[ap_hist_slot(waits[i].ns)]++;
		agg.timeout += waits[i].ret == -110;
		agg.interrupted += waits[i].ret == -4 || waits[i].ret == -512;
		agg.error += waits[i].ret == -22;
	}
	assert_int_equal(ap_lock_record(pk, NULL, kern, &key, &agg, NULL, NULL, &sk), 0);
	x = ap_lock_table_entry(ev, 0);
	y = ap_lock_table_entry(kern, 0);
	assert_true(x && y);
	assert_int_equal(x->count, y->count);
	assert_int_equal(x->total_ns, y->total_ns);
	assert_int_equal(x->max_ns, y->max_ns);
	assert_int_equal(x->timeout, 1);
	assert_int_equal(x->interrupted, 2);
	assert_int_equal(x->error, 1);
	assert_int_equal(x->timeout, y->timeout);
	assert_int_equal(x->interrupted, y->interrupted);
	assert_int_equal(x->error, y->error);
	assert_memory_equal(x->hist, y->hist, sizeof(x->hist));
	assert_memory_equal(&se, &sk, sizeof(se));
	assert_int_equal(ap_profile_total(pe, AP_LOCK_VALUE_DELAY),
			 ap_profile_total(pk, AP_LOCK_VALUE_DELAY));
	assert_int_equal(ap_profile_nsamples(pe), ap_profile_nsamples(pk));
	/* a scaled wait: three waits' worth */
	ap_lock_val_of_wait(&one, 1000, 0, 3, 3000);
	assert_int_equal(one.count, 3);
	assert_int_equal(one.hist[ap_hist_slot(1000)], 3);
	assert_int_equal(one.max_ns, 1000);
	ap_profile_free(pe);
	ap_profile_free(pk);
	ap_lock_table_free(ev);
	ap_lock_table_free(kern);
}

static struct ap_filter_hook *load(const char *path, const char *config)
{
	struct ap_agent_opts o = { .prog = "agent" };
	struct ap_filter_hook *h = NULL;
	char err[512];

	o.filter = path;
	o.filter_config = config;
	o.filter_engine = AP_FILTER_ENGINE_INTERP;
	if (ap_filter_hook_new(&o, "cpu", NULL, &h, err, sizeof(err)))
		fail_msg("%s", err);
	return h;
}

/* CPU samples through real SDK filters: dropped ones are not recorded, scaled ones are. */
static void test_cpu_hook(void **state)
{
	struct ap_collector c = { 0 };
	struct ap_cpu_record_stats rs = { 0 };
	struct ap_cpu_key k42 = { .pid = 42, .tid = 42 }, k7 = { .pid = 7, .tid = 8 };
	struct ap_agent_opts bad = { .prog = "agent", .filter = "/nonexistent/f.wasm" };
	struct ap_filter_hook *h = NULL;
	char err[512];

	(void)state;
	if (access(SDK_FILTER("process_filter"), R_OK) != 0) {
		print_message("skipped: %s not built\n", SDK_FILTER("process_filter"));
		skip();
	}
	assert_int_equal(ap_filter_hook_new(&bad, "cpu", NULL, &h, err, sizeof(err)), -ENOENT);
	assert_null(h);
	assert_non_null(strstr(err, "/nonexistent/f.wasm"));

	strcpy(k42.comm, "app");
	strcpy(k7.comm, "other");
	c.profile = ap_profile_new();
	assert_int_equal(ap_cpu_profile_init(c.profile, 100), 0);
	c.filter = load(SDK_FILTER("process_filter"), "pid=42");
	for (int i = 0; i < 3; i++) {
		assert_int_equal(ap_cpu_record_event(&c, &k42, 1000 + i, 0, NULL, NULL, &rs), 0);
		assert_int_equal(ap_cpu_record_event(&c, &k7, 1000 + i, 1, NULL, NULL, &rs), 0);
	}
	assert_int_equal(ap_profile_nsamples(c.profile), 1);
	assert_int_equal(ap_profile_sample(c.profile, 0)->pid, 42);
	assert_int_equal(ap_profile_total(c.profile, 0), 3);
	ap_filter_hook_report(c.filter, c.profile);
	assert_int_equal(ap_profile_get_stat(c.profile, "filter_events_seen"), 6);
	assert_int_equal(ap_profile_get_stat(c.profile, "filter_kept"), 3);
	assert_int_equal(ap_profile_get_stat(c.profile, "filter_dropped"), 3);
	assert_int_equal(ap_profile_get_stat(c.profile, "filter_traps_fuel"), 0);
	ap_filter_hook_free(c.filter);
	ap_profile_free(c.profile);

	/* sampling n=2 with scale=1: every other sample, weighing 2 */
	if (access(SDK_FILTER("sampling_filter"), R_OK) != 0)
		return;
	c.profile = ap_profile_new();
	assert_int_equal(ap_cpu_profile_init(c.profile, 100), 0);
	c.filter = load(SDK_FILTER("sampling_filter"), "n=2,scale=1");
	for (int i = 0; i < 6; i++)
		assert_int_equal(ap_cpu_record_event(&c, &k42, 1000 + i, 0, NULL, NULL, &rs), 0);
	assert_int_equal(ap_profile_total(c.profile, 0), 6);
	assert_int_equal(ap_profile_total(c.profile, 1), 6 * 10000000ULL); /* cpu ns at 100 Hz */
	ap_filter_hook_report(c.filter, c.profile);
	assert_int_equal(ap_profile_get_stat(c.profile, "filter_transformed"), 3);
	assert_int_equal(ap_profile_get_stat(c.profile, "filter_dropped"), 3);
	ap_filter_hook_free(c.filter);
	ap_profile_free(c.profile);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_options),	      cmocka_unit_test(test_event_records),
		cmocka_unit_test(test_syscall_calls), cmocka_unit_test(test_lock_waits),
		cmocka_unit_test(test_cpu_hook),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
