// SPDX-License-Identifier: MIT
/* Lock collector's pure handlers: hand-built BPF aggregates -> profile, lock table, reports. */
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

#include <pthread.h>

#include "agent/lock_record.h"

#define ADDR_MUTEX 0x5555000010c0ULL
#define ADDR_COND 0x555500001100ULL
#define ADDR_MMAP 0xffff888104068f38ULL
#define PID 4242

pthread_mutex_t g_unit_lock = PTHREAD_MUTEX_INITIALIZER;
int g_unit_data[8] = { 1 };

static void fake_name(void *ctx, uint32_t pid, uint64_t addr, bool kernel, char *buf,
		      size_t len)
{
	(void)ctx;
	(void)pid;
	snprintf(buf, len, "%s", addr == ADDR_MUTEX ? "g_fake" : kernel ? "" : "[heap]");
}

static void fake_comm(void *ctx, uint32_t pid, uint32_t tid, char *buf, size_t len)
{
	(void)ctx;
	snprintf(buf, len, "t%u", tid);
}

static const struct ap_lock_resolver fake = { NULL, fake_name, fake_comm };

static struct ap_lock_key key_of(uint64_t addr, uint32_t kind, uint32_t tid)
{
	struct ap_lock_key k = { 0 };

	k.addr = addr;
	k.pid = ap_lock_kind_is_kernel(kind) ? 100 + tid : PID;
	k.tid = tid;
	k.kind = kind;
	k.user_stack = 1;
	k.kern_stack = 0;
	snprintf(k.comm, sizeof(k.comm), "w%u", tid);
	return k;
}

/* count waits of `ns` each, all in one slot */
static struct ap_lock_val val_of(uint64_t count, uint64_t ns)
{
	struct ap_lock_val v = { 0 };

	v.count = count;
	v.total_ns = count * ns;
	v.max_ns = ns;
	v.hist[63 - __builtin_clzll(ns)] = count;
	return v;
}

static void test_names(void **state)
{
	char buf[64];

	assert_int_equal(ap_lock_kind_group(AP_LOCK_MUTEX), AP_LOCK_GROUP_LOCK);
	assert_int_equal(ap_lock_kind_group(AP_LOCK_FUTEX_LOCK), AP_LOCK_GROUP_LOCK);
	assert_int_equal(ap_lock_kind_group(AP_LOCK_K_RWSEM), AP_LOCK_GROUP_LOCK);
	assert_int_equal(ap_lock_kind_group(AP_LOCK_CONDVAR), AP_LOCK_GROUP_CONDVAR);
	assert_int_equal(ap_lock_kind_group(AP_LOCK_OTHER), AP_LOCK_GROUP_OTHER);
	assert_true(ap_lock_kind_is_kernel(AP_LOCK_K_SPINLOCK));
	assert_false(ap_lock_kind_is_kernel(AP_LOCK_PI_MUTEX));
	assert_string_equal(ap_lock_kind_name(AP_LOCK_PI_MUTEX), "pi-mutex");
	assert_string_equal(ap_lock_kind_name(AP_LOCK_K_PERCPU_RWSEM), "percpu-rwsem");
	assert_string_equal(ap_lock_flags_str(AP_LCB_F_SPIN | AP_LCB_F_WRITE, buf, sizeof(buf)),
			    "SPIN|WRITE");
	assert_string_equal(ap_lock_flags_str(0, buf, sizeof(buf)), "none");
	assert_string_equal(ap_lock_futex_op_name(6), "FUTEX_LOCK_PI");
	assert_string_equal(ap_lock_futex_op_name(AP_FUTEX_OP_WAITV), "futex_waitv");
}

/* A mutex wait becomes one profile sample with the lock as its top frame and both values. */
static void test_mutex_sample(void **state)
{
	struct ap_profile *p = ap_profile_new();
	struct ap_lock_table *t = ap_lock_table_new(&fake);
	struct ap_lock_record_stats st = { 0 };
	struct ap_lock_key k = key_of(ADDR_MUTEX, AP_LOCK_MUTEX, 11);
	struct ap_lock_val v = val_of(10, 2000000);
	const __u64 ustack[] = { 0x1000, 0x2000, 0 };
	const struct ap_lock_entry *e;
	const struct ap_sample *s;
	const struct ap_label *labels;
	const uint32_t *frames;
	size_t n, nl;

	assert_int_equal(ap_lock_profile_init(p), 0);
	assert_int_equal(ap_profile_default_value(p), AP_LOCK_VALUE_DELAY);
	assert_int_equal(ap_lock_record(p, NULL, t, &k, &v, NULL, ustack, &st), 0);
	assert_int_equal(ap_profile_nsamples(p), 1);
	s = ap_profile_sample(p, 0);
	assert_int_equal(s->values[AP_LOCK_VALUE_CONTENTIONS], 10);
	assert_int_equal(s->values[AP_LOCK_VALUE_DELAY], 20000000);
	assert_int_equal(s->pid, PID);
	assert_int_equal(s->tid, 11);
	assert_string_equal(ap_profile_str(p, s->comm), "w11");
	frames = ap_profile_stack(p, s->stack, &n);
	assert_int_equal(n, 3); /* lock frame + 2 user frames */
	assert_string_equal(ap_profile_str(p, ap_profile_frame(p, frames[0])->name),
			    "[mutex g_fake]");
	assert_string_equal(ap_profile_str(p, ap_profile_frame(p, frames[0])->module), "");
	assert_int_equal(ap_profile_frame(p, frames[0])->kind, AP_FRAME_USER);
	labels = ap_profile_labels(p, s->labels, &nl);
	assert_int_equal(nl, 3);
	assert_int_equal(st.lock_waits, 10);
	assert_int_equal(st.lock_wait_ns, 20000000);

	/* the same lock from another thread merges into one table entry */
	k.tid = 12;
	v = val_of(5, 4000000);
	assert_int_equal(ap_lock_record(p, NULL, t, &k, &v, NULL, ustack, &st), 0);
	assert_int_equal(ap_lock_table_count(t), 1);
	e = ap_lock_table_entry(t, 0);
	assert_int_equal(e->count, 15);
	assert_int_equal(e->total_ns, 40000000);
	assert_int_equal(e->max_ns, 4000000);
	assert_int_equal(e->nwaiters, 2);
	assert_int_equal(e->nstacks, 1); /* same stack, different threads */
	assert_int_equal(e->stacks[0].count, 15);
	assert_int_equal(e->hist[20] + e->hist[21], 15);
	assert_string_equal(e->name, "g_fake");
	(void)labels;
	ap_lock_table_free(t);
	ap_profile_free(p);
}

/* Holder entries name the holder and carry EAGAIN counts; unknown holders stay apart. */
static void test_holders(void **state)
{
	struct ap_lock_table *t = ap_lock_table_new(&fake);
	struct ap_lock_holder_key hk = { ADDR_MUTEX, PID, 77, AP_LOCK_MUTEX, 0 };
	struct ap_lock_holder_val hv = { 9, 18000000, 2, 0 };
	const struct ap_lock_entry *e;

	assert_int_equal(ap_lock_record_holder(t, &hk, &hv), 0);
	hk.holder_tid = AP_HOLDER_UNKNOWN;
	hv.count = 1;
	hv.wait_ns = 1000;
	hv.eagain = 0;
	assert_int_equal(ap_lock_record_holder(t, &hk, &hv), 0);
	hk.holder_tid = 77;
	assert_int_equal(ap_lock_record_holder(t, &hk, &hv), 0);
	e = ap_lock_table_entry(t, 0);
	assert_int_equal(ap_lock_table_count(t), 1);
	assert_int_equal(e->nholders, 2);
	assert_int_equal(e->holders[0].tid, 77);
	assert_string_equal(e->holders[0].comm, "t77");
	assert_int_equal(e->holders[0].count, 10);
	assert_int_equal(e->holders[0].eagain, 2);
	assert_int_equal(e->holders[1].tid, AP_HOLDER_UNKNOWN);
	assert_string_equal(e->holders[1].comm, "");
	assert_int_equal(e->eagain, 2);
	ap_lock_table_free(t);
}

/* Condition-variable and unclassified waits never reach the profile or the lock totals. */
static void test_condvar_apart(void **state)
{
	struct ap_profile *p = ap_profile_new();
	struct ap_lock_table *t = ap_lock_table_new(&fake);
	struct ap_lock_record_stats st = { 0 };
	struct ap_lock_key k = key_of(ADDR_COND, AP_LOCK_CONDVAR, 3);
	struct ap_lock_val v = val_of(7, 1000000);
	const struct ap_lock_entry **sorted;

	ap_lock_profile_init(p);
	assert_int_equal(ap_lock_record(p, NULL, t, &k, &v, NULL, NULL, &st), 0);
	k = key_of(0x7f0000001000ULL, AP_LOCK_OTHER, 3);
	assert_int_equal(ap_lock_record(p, NULL, t, &k, &v, NULL, NULL, &st), 0);
	assert_int_equal(ap_profile_nsamples(p), 0);
	assert_int_equal(st.lock_waits, 0);
	assert_int_equal(st.condvar_waits, 7);
	assert_int_equal(st.condvar_wait_ns, 7000000);
	assert_int_equal(st.other_waits, 7);
	assert_int_equal(ap_lock_table_sorted(t, AP_LOCK_GROUP_LOCK, &sorted), 0);
	free(sorted);
	assert_int_equal(ap_lock_table_sorted(t, AP_LOCK_GROUP_CONDVAR, &sorted), 1);
	assert_int_equal(sorted[0]->addr, ADDR_COND);
	free(sorted);
	ap_lock_table_free(t);
	ap_profile_free(p);
}

/* A bare futex lock later seen with a pthread layout becomes a mutex; kernel locks are one
 * entry per address whatever the waiter, named by class. */
static void test_merge_and_kernel(void **state)
{
	struct ap_profile *p = ap_profile_new();
	struct ap_lock_table *t = ap_lock_table_new(&fake);
	struct ap_lock_record_stats st = { 0 };
	struct ap_lock_key k = key_of(ADDR_MUTEX, AP_LOCK_FUTEX_LOCK, 1);
	struct ap_lock_val v = val_of(1, 5000);
	const __u64 kstack[] = { 0xffffffff81000010ULL, 0xffffffff81000020ULL, 0 };
	const struct ap_lock_entry **sorted;
	long n;

	ap_lock_profile_init(p);
	assert_int_equal(ap_lock_record(p, NULL, t, &k, &v, NULL, NULL, &st), 0);
	k.kind = AP_LOCK_MUTEX;
	assert_int_equal(ap_lock_record(p, NULL, t, &k, &v, NULL, NULL, &st), 0);
	k.kind = AP_LOCK_FUTEX_LOCK;
	assert_int_equal(ap_lock_record(p, NULL, t, &k, &v, NULL, NULL, &st), 0);
	assert_int_equal(ap_lock_table_count(t), 1);
	assert_int_equal(ap_lock_table_entry(t, 0)->kind, AP_LOCK_MUTEX);

	k = key_of(ADDR_MMAP, AP_LOCK_K_RWSEM, 5);
	k.flags = AP_LCB_F_WRITE;
	k.lclass = AP_LCLASS_MMAP_LOCK;
	k.user_stack = 0;
	v = val_of(100, 300000);
	assert_int_equal(ap_lock_record(p, NULL, t, &k, &v, kstack, NULL, &st), 0);
	k = key_of(ADDR_MMAP, AP_LOCK_K_RWSEM, 6); /* another process, same lock */
	k.flags = AP_LCB_F_READ;
	assert_int_equal(ap_lock_record(p, NULL, t, &k, &v, kstack, NULL, &st), 0);
	assert_int_equal(ap_lock_table_count(t), 2);
	n = ap_lock_table_sorted(t, AP_LOCK_GROUP_LOCK, &sorted);
	assert_int_equal(n, 2);
	assert_true(sorted[0]->kernel);
	assert_int_equal(sorted[0]->pid, 0);
	assert_int_equal(sorted[0]->count, 200);
	assert_int_equal(sorted[0]->flags, AP_LCB_F_READ | AP_LCB_F_WRITE);
	assert_string_equal(sorted[0]->name, "mmap_lock");
	assert_int_equal(sorted[0]->nwaiters, 2);
	free(sorted);
	assert_int_equal(st.kernel_waits, 200);
	assert_int_equal(st.lock_waits, 203);
	ap_lock_table_free(t);
	ap_profile_free(p);
}

static char *render(struct ap_lock_table *t, struct ap_profile *p, bool json)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	if (json)
		assert_int_equal(ap_lock_write_json(t, p, f), 0);
	else
		assert_int_equal(ap_lock_write_text(t, p, f, 10, true), 0);
	fclose(f);
	return buf;
}

static void test_reports(void **state)
{
	struct ap_profile *p = ap_profile_new();
	struct ap_lock_table *t = ap_lock_table_new(&fake);
	struct ap_lock_record_stats st = { 0 };
	struct ap_lock_key k = key_of(ADDR_MUTEX, AP_LOCK_MUTEX, 11);
	struct ap_lock_val v = val_of(4, 3000000);
	struct ap_lock_holder_key hk = { ADDR_MUTEX, PID, 77, AP_LOCK_MUTEX, 0 };
	struct ap_lock_holder_val hv = { 4, 12000000, 0, 0 };
	const __u64 ustack[] = { 0x1000, 0 };
	char *text, *json;

	ap_lock_profile_init(p);
	v.timeout = 1;
	ap_lock_record(p, NULL, t, &k, &v, NULL, ustack, &st);
	ap_lock_record_holder(t, &hk, &hv);
	k = key_of(ADDR_COND, AP_LOCK_CONDVAR, 3);
	v = val_of(2, 1000);
	ap_lock_record(p, NULL, t, &k, &v, NULL, NULL, &st);
	ap_profile_set_stat(p, "waits_lost", 3);

	text = render(t, p, false);
	assert_non_null(strstr(text, "Contended locks: 1, 4 waits, 12.0ms total wait"));
	assert_non_null(strstr(text, "#1 mutex 0x5555000010c0 g_fake  pid 4242  top waiter tid 11 (w11)"));
	assert_non_null(strstr(text, "avg 3.00ms  max 3.00ms"));
	assert_non_null(strstr(text, "holders (share of wait): 77 (t77) 100.0%\n"));
	assert_non_null(strstr(text, "1 timed out"));
	assert_non_null(strstr(text, "Condition-variable waits (not lock contention): 1, 2 waits"));
	assert_non_null(strstr(text, "distribution"));
	assert_non_null(strstr(text, "waits_lost=3"));
	free(text);

	json = render(t, p, true);
	assert_non_null(strstr(json, "\"locks\":[\n{\"addr\":\"0x5555000010c0\",\"kind\":\"mutex\""));
	assert_non_null(strstr(json, "\"contentions\":4,\"wait_ns_total\":12000000,"
				     "\"wait_ns_max\":3000000"));
	assert_non_null(strstr(json, "\"holders\":[{\"tid\":77,\"comm\":\"t77\",\"count\":4"));
	assert_non_null(strstr(json, "\"condvars\":[\n{\"addr\":\"0x555500001100\""));
	assert_non_null(strstr(json, "\"holder_note\":\"condition variables have no owner\""));
	assert_non_null(strstr(json, "\"stacks\":[{\"count\":4,\"wait_ns\":12000000,\"frames\":"
				     "[\"0x1000\"]}]"));
	assert_non_null(strstr(json, "\"waits_lost\":3"));
	free(json);
	ap_lock_table_free(t);
	ap_profile_free(p);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* Kernel lock names from a kallsyms file: bounded by the next symbol, text never named, and
 * only exact matches when the kernel lists (almost) no data symbols. */
static void test_kallsyms(void **state)
{
	char path[] = "/tmp/ap_lock_kallsymsXXXXXX", buf[128];
	struct ap_lock_names *n;
	FILE *f;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fprintf(f, "ffffffff81000000 T _stext\n");
	for (int i = 0; i < 1200; i++)
		fprintf(f, "%016llx d data_%d\n", 0xffffffff82000000ULL + 0x100ULL * i, i);
	fprintf(f, "ffffffff83000000 D tasklist_lock\n");
	fprintf(f, "ffffffff83000040 B jiffies_lock\n");
	fprintf(f, "ffffffff83000080 t some_text\n");
	fprintf(f, "ffffffffc0001000 d mod_lock\t[ext4]\n");
	fclose(f);
	n = ap_lock_names_new(NULL, NULL);
	assert_int_equal(ap_lock_ksym_lookup(n, path, 0xffffffff83000000ULL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "tasklist_lock");
	assert_int_equal(ap_lock_ksym_lookup(n, path, 0xffffffff83000048ULL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "jiffies_lock+0x8");
	assert_int_equal(ap_lock_ksym_lookup(n, path, 0xffffffff83000090ULL, buf, sizeof(buf)),
			 -ENOENT);
	assert_int_equal(ap_lock_ksym_lookup(n, path, 0xffffffffc0001010ULL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "mod_lock [ext4]+0x10");
	assert_int_equal(ap_lock_ksym_lookup(n, path, 0xffff888100000000ULL, buf, sizeof(buf)),
			 -ENOENT);
	ap_lock_names_free(n);

	/* a data symbol listed after a text symbol at its address still names it */
	write_file(path, "ffffffff81000000 T _stext\nffffffff83000000 t a_text_alias\n"
			 "ffffffff83000000 D init_lock\n");
	n = ap_lock_names_new(NULL, NULL);
	assert_int_equal(ap_lock_ksym_lookup(n, path, 0xffffffff83000000ULL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "init_lock");
	assert_int_equal(ap_lock_ksym_lookup(n, path, 0xffffffff81000000ULL, buf, sizeof(buf)),
			 -ENOENT);
	ap_lock_names_free(n);

	write_file(path, "ffffffff81000000 T _stext\nffffffff83000000 D __start_init_stack\n");
	n = ap_lock_names_new(NULL, NULL);
	assert_int_equal(ap_lock_ksym_lookup(n, path, 0xffffffff83008140ULL, buf, sizeof(buf)),
			 -ENOENT);
	assert_int_equal(ap_lock_ksym_lookup(n, path, 0xffffffff83000000ULL, buf, sizeof(buf)), 0);
	ap_lock_names_free(n);
	unlink(path);
}

/* User lock objects are named from this process's own ELF symbols, .bss and .data. */
static void test_user_names(void **state)
{
	struct ap_lock_names *n = ap_lock_names_new(NULL, NULL);
	struct ap_lock_resolver r;
	char buf[128];
	void *heap = malloc(64);

	ap_lock_names_resolver(n, &r);
	r.lock_name(r.ctx, (uint32_t)getpid(), (uint64_t)(uintptr_t)&g_unit_lock, false, buf,
		    sizeof(buf));
	assert_string_equal(buf, "g_unit_lock");
	r.lock_name(r.ctx, (uint32_t)getpid(), (uint64_t)(uintptr_t)&g_unit_data[2], false, buf,
		    sizeof(buf));
	assert_string_equal(buf, "g_unit_data+0x8");
	r.lock_name(r.ctx, (uint32_t)getpid(), (uint64_t)(uintptr_t)heap, false, buf, sizeof(buf));
	assert_true(buf[0] == '[' || buf[0] == '\0');
	r.thread_comm(r.ctx, (uint32_t)getpid(), (uint32_t)getpid(), buf, sizeof(buf));
	assert_string_equal(buf, "test_agent_lock");
	free(heap);
	ap_lock_names_free(n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_mutex_sample),
		cmocka_unit_test(test_holders),
		cmocka_unit_test(test_condvar_apart),
		cmocka_unit_test(test_merge_and_kernel),
		cmocka_unit_test(test_reports),
		cmocka_unit_test(test_kallsyms),
		cmocka_unit_test(test_user_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
