// SPDX-License-Identifier: MIT
#include "syscall_record.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hash.h"
#include "lib/hashtab.h"
#include "lib/syscalls.h"

#define MAX_ERRNO 4095 /* returns in [-4095, -1] are errors, as the BPF side counts them */

_Static_assert(AP_SYS_HIST_SLOTS == AP_HIST_SLOTS, "syscall.h and hist_bits.h disagree");
_Static_assert(AP_SYS_ABI_COMPAT == AP_SYSCALL_ABI_COMPAT && AP_SYS_ABI_X32 == AP_SYSCALL_ABI_X32,
	       "syscall.h and syscalls.h disagree on the ABI bits");

struct ap_sys_table {
	struct ap_sys_entry *entries;
	size_t n, cap;
	struct ap_hidx entry_index; /* over entries[] */
};

static uint64_t key_hash(uint32_t pid, uint32_t nr)
{
	return ap_hash_mix64((uint64_t)pid << 32 | nr);
}

struct ap_sys_table *ap_sys_table_new(void)
{
	return calloc(1, sizeof(struct ap_sys_table));
}

void ap_sys_table_free(struct ap_sys_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		free(t->entries[i].errnos);
	free(t->entries);
	ap_hidx_release(&t->entry_index);
	free(t);
}

size_t ap_sys_table_len(const struct ap_sys_table *t)
{
	return t ? t->n : 0;
}

const struct ap_sys_entry *ap_sys_table_entry(const struct ap_sys_table *t, size_t i)
{
	return t && i < t->n ? &t->entries[i] : NULL;
}

static struct ap_sys_entry *find(const struct ap_sys_table *t, uint32_t pid, uint32_t nr)
{
	const struct ap_hidx *x = &t->entry_index;

	for (size_t i = ap_hidx_first(x, key_hash(pid, nr)); i != AP_HIDX_NONE;
	     i = ap_hidx_next(x, i)) {
		struct ap_sys_entry *e = &t->entries[i];

		if (e->pid == pid && e->nr == nr)
			return e;
	}
	return NULL;
}

const struct ap_sys_entry *ap_sys_table_find(const struct ap_sys_table *t, uint32_t pid,
					     uint32_t nr)
{
	return t ? find(t, pid, nr) : NULL;
}

static struct ap_sys_entry *get(struct ap_sys_table *t, uint32_t pid, uint32_t nr)
{
	struct ap_sys_entry *e = find(t, pid, nr);

	if (e)
		return e;
	if (t->n == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 64;
		struct ap_sys_entry *ne = realloc(t->entries, ncap * sizeof(*ne));

		if (!ne)
			return NULL;
		t->entries = ne;
		t->cap = ncap;
	}
	if (ap_hidx_add(&t->entry_index, t->n, key_hash(pid, nr)))
		return NULL;
	e = &t->entries[t->n++];
	memset(e, 0, sizeof(*e));
	e->pid = pid;
	e->nr = nr;
	return e;
}

void ap_sys_totals_add(struct ap_sys_totals *a, const struct ap_sys_totals *b)
{
	if (b->count) {
		if (!a->count || b->min_ns < a->min_ns)
			a->min_ns = b->min_ns;
		if (b->max_ns > a->max_ns)
			a->max_ns = b->max_ns;
	}
	a->count += b->count;
	a->errors += b->errors;
	a->total_ns += b->total_ns;
	a->slow += b->slow;
	a->noreturn += b->noreturn;
	for (int i = 0; i < AP_HIST_SLOTS; i++)
		a->hist[i] += b->hist[i];
}

int ap_sys_table_add_errno(struct ap_sys_table *t, uint32_t pid, uint32_t nr, uint32_t err,
			   uint64_t count)
{
	struct ap_sys_entry *e = get(t, pid, nr);
	struct ap_sys_errno_count *ec;

	if (!e)
		return -ENOMEM;
	for (size_t i = 0; i < e->nerrnos; i++) {
		if (e->errnos[i].err == err) {
			e->errnos[i].count += count;
			return 0;
		}
	}
	if (e->nerrnos == e->errnos_cap) {
		size_t ncap = e->errnos_cap ? e->errnos_cap * 2 : 4;

		ec = realloc(e->errnos, ncap * sizeof(*ec));
		if (!ec)
			return -ENOMEM;
		e->errnos = ec;
		e->errnos_cap = ncap;
	}
	ec = &e->errnos[e->nerrnos++];
	memset(ec, 0, sizeof(*ec));
	ec->err = err;
	ec->count = count;
	return 0;
}

int ap_sys_table_add_agg(struct ap_sys_table *t, const struct ap_sys_agg *a)
{
	struct ap_sys_totals v = {
		.count = a->count,
		.errors = a->errors,
		.total_ns = a->total_ns,
		.min_ns = a->min_ns,
		.max_ns = a->max_ns,
		.slow = a->slow,
		.noreturn = a->noreturn,
	};
	struct ap_sys_entry *e;
	int err;

	if (!a->key.pid || (!a->count && !a->noreturn))
		return 0; /* a way never used, or emptied */
	e = get(t, a->key.pid, a->key.nr);
	if (!e)
		return -ENOMEM;
	if (!e->comm[0]) {
		memcpy(e->comm, a->comm, AP_SYS_COMM_LEN);
		e->comm[AP_SYS_COMM_LEN] = '\0';
	}
	memcpy(v.hist, a->hist, sizeof(v.hist));
	ap_sys_totals_add(&e->sum, &v);
	for (int i = 0; i < AP_SYS_ERRNO_SLOTS; i++) {
		if (!a->errnos[i].err)
			break;
		err = ap_sys_table_add_errno(t, a->key.pid, a->key.nr, a->errnos[i].err,
					     a->errnos[i].count);
		if (err)
			return err;
	}
	return 0;
}

static int errno_cmp(const void *a, const void *b)
{
	const struct ap_sys_errno_count *x = a, *y = b;

	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	return x->err < y->err ? -1 : x->err > y->err;
}

void ap_sys_table_sort_errnos(struct ap_sys_table *t)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->entries[i].nerrnos > 1)
			qsort(t->entries[i].errnos, t->entries[i].nerrnos,
			      sizeof(*t->entries[i].errnos), errno_cmp);
}

int ap_sys_profile_init(struct ap_profile *p, uint64_t min_latency_ns)
{
	char buf[32];

	if (ap_profile_add_value_type(p, "calls", "count") ||
	    ap_profile_add_value_type(p, "latency", "nanoseconds"))
		return -ENOMEM;
	/* flamegraphs show where syscall time goes */
	ap_profile_set_default_value(p, AP_SYS_VALUE_LATENCY_NS);
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)min_latency_ns);
	if (ap_profile_set_meta(p, "mode", "syscall") ||
	    ap_profile_set_meta(p, "syscall_table_arch", ap_syscall_arch()) ||
	    ap_profile_set_meta(p, "min_latency_ns", buf))
		return -ENOMEM;
	return 0;
}

/* The pseudo frame and label of a key's syscall. */
static int syscall_frame(struct ap_profile *p, uint32_t nr, uint32_t *frame, uint32_t *labels)
{
	char name[64], fname[80];
	struct ap_label l = { 0 };

	ap_syscall_key_name(nr, name, sizeof(name));
	snprintf(fname, sizeof(fname), "syscall:%s", name);
	*frame = ap_profile_add_named_frame(p, fname, "[syscall]", AP_FRAME_USER);
	l.key = ap_profile_intern(p, "syscall");
	l.str = ap_profile_intern(p, name);
	if (*frame == UINT32_MAX || l.key == UINT32_MAX || l.str == UINT32_MAX)
		return -ENOMEM;
	*labels = ap_profile_add_labels(p, &l, 1);
	return *labels == UINT32_MAX ? -ENOMEM : 0;
}

int ap_sys_table_add_call(struct ap_sys_table *t, const struct ap_sys_call *call)
{
	struct ap_sys_totals v = { 0 };
	struct ap_sys_entry *e;
	uint64_t w = call->weight ? call->weight : 1;

	e = get(t, call->pid, call->nr);
	if (!e)
		return -ENOMEM;
	if (!e->comm[0]) {
		memcpy(e->comm, call->comm, AP_SYS_COMM_LEN);
		e->comm[AP_SYS_COMM_LEN] = '\0';
	}
	/* what the kernel's aggregate would hold after this call, `weight` times over */
	if (call->noreturn) {
		v.noreturn = w;
	} else {
		v.count = w;
		v.total_ns = call->latency_ns * w;
		v.min_ns = call->latency_ns;
		v.max_ns = call->latency_ns;
		v.hist[ap_hist_slot(call->latency_ns) & (AP_HIST_SLOTS - 1)] = w;
		if (call->min_latency_ns && call->latency_ns >= call->min_latency_ns)
			v.slow = w;
		if (call->ret < 0 && call->ret >= -MAX_ERRNO)
			v.errors = w;
	}
	ap_sys_totals_add(&e->sum, &v);
	if (v.errors)
		return ap_sys_table_add_errno(t, call->pid, call->nr, (uint32_t)-call->ret, w);
	return 0;
}

int ap_sys_record_slow(struct ap_profile *p, struct ap_symbolizer *sym, struct ap_sys_table *t,
		       const struct ap_sys_slow_event *ev, const __u64 *ustack)
{
	return ap_sys_record_slow_n(p, sym, t, ev, ustack, 1);
}

int ap_sys_record_slow_n(struct ap_profile *p, struct ap_symbolizer *sym,
			 struct ap_sys_table *t, const struct ap_sys_slow_event *ev,
			 const __u64 *ustack, uint64_t calls)
{
	uint32_t frames[AP_SYS_STACK_DEPTH + 1];
	struct ap_sys_entry *e = get(t, ev->pid, ev->nr);
	struct ap_sample s = { 0 };
	size_t n = 0;
	int err;

	if (!e)
		return -ENOMEM;
	if (!e->comm[0]) {
		memcpy(e->comm, ev->comm, AP_SYS_COMM_LEN);
		e->comm[AP_SYS_COMM_LEN] = '\0';
	}
	for (size_t i = 0; ustack && i < AP_SYS_STACK_DEPTH && ustack[i]; i++) {
		frames[n] = ap_symbolizer_user_frame(sym, p, (int)ev->pid, ustack[i], i > 0);
		if (frames[n++] == UINT32_MAX)
			return -ENOMEM;
	}
	err = syscall_frame(p, ev->nr, &frames[n++], &s.labels);
	if (err)
		return err;
	s.stack = ap_profile_add_stack(p, frames, n);
	s.comm = ap_profile_intern(p, e->comm);
	if (s.stack == UINT32_MAX || s.comm == UINT32_MAX)
		return -ENOMEM;
	s.pid = ev->pid;
	s.values[AP_SYS_VALUE_CALLS] = calls;
	s.values[AP_SYS_VALUE_LATENCY_NS] = ev->latency_ns * calls;
	if (ap_profile_add_sample(p, &s))
		return -ENOMEM;
	e->slow_stack_calls += calls;
	e->slow_stack_ns += ev->latency_ns * calls;
	return 0;
}

int ap_sys_profile_finish(struct ap_profile *p, struct ap_sys_table *t)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct ap_sys_entry *e = &t->entries[i];
		uint64_t calls = e->sum.count + e->sum.noreturn, ns = e->sum.total_ns;
		struct ap_sample s = { 0 };
		uint32_t frame;
		int err;

		/* the slow-stack samples already hold these (reads may differ by a call or two) */
		calls = calls > e->slow_stack_calls ? calls - e->slow_stack_calls : 0;
		ns = ns > e->slow_stack_ns ? ns - e->slow_stack_ns : 0;
		if (!calls && !ns)
			continue;
		err = syscall_frame(p, e->nr, &frame, &s.labels);
		if (err)
			return err;
		s.stack = ap_profile_add_stack(p, &frame, 1);
		s.comm = ap_profile_intern(p, e->comm);
		if (s.stack == UINT32_MAX || s.comm == UINT32_MAX)
			return -ENOMEM;
		s.pid = e->pid;
		s.values[AP_SYS_VALUE_CALLS] = calls;
		s.values[AP_SYS_VALUE_LATENCY_NS] = ns;
		if (ap_profile_add_sample(p, &s))
			return -ENOMEM;
	}
	return 0;
}
