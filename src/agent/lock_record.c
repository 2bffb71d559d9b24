// SPDX-License-Identifier: MIT
/* Pure part of the lock collector: BPF aggregates -> profile samples + the per-lock table. */
#include "lock_record.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hash.h"
#include "lib/hashtab.h"
#include "lib/hist.h"

_Static_assert(AP_LOCK_HIST_SLOTS == AP_HIST_SLOTS, "lock histograms are the shared log2 ones");

/* Kernel-internal restart codes (include/linux/errno.h), as lock.bpf.c classifies them. */
#define LOCK_ERESTARTSYS 512
#define LOCK_ERESTART_RESTARTBLOCK 516

struct ap_lock_table {
	struct ap_lock_entry **v; /* owned; stable pointers */
	size_t n, cap;
	struct ap_hidx index; /* over v[] */
	struct ap_lock_resolver res;
};

/* ---- names ---- */

enum ap_lock_group ap_lock_kind_group(uint32_t kind)
{
	switch (kind) {
	case AP_LOCK_CONDVAR:
		return AP_LOCK_GROUP_CONDVAR;
	case AP_LOCK_OTHER:
	case AP_LOCK_UNKNOWN:
		return AP_LOCK_GROUP_OTHER;
	default:
		return AP_LOCK_GROUP_LOCK;
	}
}

bool ap_lock_kind_is_kernel(uint32_t kind)
{
	return kind >= AP_LOCK_K_SPINLOCK;
}

const char *ap_lock_kind_name(uint32_t kind)
{
	switch (kind) {
	case AP_LOCK_MUTEX: return "mutex";
	case AP_LOCK_PI_MUTEX: return "pi-mutex";
	case AP_LOCK_RWLOCK: return "rwlock";
	case AP_LOCK_FUTEX_LOCK: return "futex-lock";
	case AP_LOCK_CONDVAR: return "condvar";
	case AP_LOCK_OTHER: return "other";
	case AP_LOCK_K_SPINLOCK: return "spinlock";
	case AP_LOCK_K_RWLOCK: return "rwlock:k";
	case AP_LOCK_K_MUTEX: return "mutex:k";
	case AP_LOCK_K_RWSEM: return "rwsem";
	case AP_LOCK_K_PERCPU_RWSEM: return "percpu-rwsem";
	case AP_LOCK_K_RTMUTEX: return "rtmutex";
	case AP_LOCK_K_SEMAPHORE: return "semaphore";
	case AP_LOCK_K_OTHER: return "kernel-lock";
	default: return "unknown";
	}
}

bool ap_lock_kind_has_owner(uint32_t kind)
{
	return kind == AP_LOCK_MUTEX || kind == AP_LOCK_PI_MUTEX || kind == AP_LOCK_RWLOCK;
}

const char *ap_lock_flags_str(uint32_t flags, char *buf, size_t len)
{
	static const char *const names[] = { "SPIN", "READ", "WRITE", "RT", "PERCPU", "MUTEX" };
	size_t off = 0;

	if (!len)
		return buf;
	buf[0] = '\0';
	for (unsigned int i = 0; i < 6; i++) {
		if (!(flags & (1u << i)) || off >= len)
			continue;
		off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? "|" : "", names[i]);
	}
	if (!buf[0])
		snprintf(buf, len, "%s", flags ? "?" : "none");
	return buf;
}

const char *ap_lock_futex_op_name(uint32_t op)
{
	switch (op) {
	case 0: return "FUTEX_WAIT";
	case 6: return "FUTEX_LOCK_PI";
	case 9: return "FUTEX_WAIT_BITSET";
	case 11: return "FUTEX_WAIT_REQUEUE_PI";
	case 13: return "FUTEX_LOCK_PI2";
	case AP_FUTEX_OP_WAITV: return "futex_waitv";
	case AP_FUTEX_OP_FUTEX_WAIT: return "futex_wait";
	default: return "futex";
	}
}

/* ---- table ---- */

struct ap_lock_table *ap_lock_table_new(const struct ap_lock_resolver *res)
{
	struct ap_lock_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	if (res)
		t->res = *res;
	return t;
}

void ap_lock_table_free(struct ap_lock_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++) {
		free(t->v[i]->holders);
		free(t->v[i]->waiters);
		free(t->v[i]->stacks);
		free(t->v[i]);
	}
	free(t->v);
	ap_hidx_release(&t->index);
	free(t);
}

size_t ap_lock_table_count(const struct ap_lock_table *t)
{
	return t ? t->n : 0;
}

const struct ap_lock_entry *ap_lock_table_entry(const struct ap_lock_table *t, size_t i)
{
	return i < t->n ? t->v[i] : NULL;
}

static uint64_t ident_hash(uint64_t addr, uint32_t pid, bool kernel)
{
	return ap_hash_mix64(addr ^ ap_hash_mix64((uint64_t)pid << 1 | kernel));
}

/* More specific kinds win when one address was classified differently across waits. */
static int kind_rank(uint32_t kind)
{
	switch (kind) {
	case AP_LOCK_UNKNOWN: return 0;
	case AP_LOCK_OTHER: return 1;
	case AP_LOCK_FUTEX_LOCK: return 2;
	default: return 3;
	}
}

static void resolve_name(struct ap_lock_table *t, struct ap_lock_entry *e)
{
	if (e->kernel && e->lclass == AP_LCLASS_MMAP_LOCK)
		snprintf(e->name, sizeof(e->name), "mmap_lock");
	else if (e->kernel && e->lclass == AP_LCLASS_SIGLOCK)
		snprintf(e->name, sizeof(e->name), "siglock");
	else if (e->kernel && e->lclass == AP_LCLASS_RQ_LOCK)
		snprintf(e->name, sizeof(e->name), "rq_lock");
	else if (t->res.lock_name)
		t->res.lock_name(t->res.ctx, e->pid, e->addr, e->kernel, e->name, sizeof(e->name));
}

static struct ap_lock_entry *table_get(struct ap_lock_table *t, uint64_t addr, uint32_t pid,
				       bool kernel, uint32_t kind, uint32_t lclass)
{
	struct ap_lock_entry *e, **nv;
	uint64_t h;

	if (kernel)
		pid = 0;
	h = ident_hash(addr, pid, kernel);
	for (size_t i = ap_hidx_first(&t->index, h); i != AP_HIDX_NONE;
	     i = ap_hidx_next(&t->index, i)) {
		e = t->v[i];
		if (e->addr == addr && e->pid == pid && e->kernel == kernel) {
			if (kind_rank(kind) > kind_rank(e->kind))
				e->kind = kind;
			if (!e->lclass && lclass) {
				e->lclass = lclass;
				resolve_name(t, e);
			}
			return e;
		}
	}
	if (t->n == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 64;

		nv = realloc(t->v, ncap * sizeof(*nv));
		if (!nv)
			return NULL;
		t->v = nv;
		t->cap = ncap;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->addr = addr;
	e->pid = pid;
	e->kernel = kernel;
	e->kind = kind;
	e->lclass = lclass;
	if (ap_hidx_add(&t->index, t->n, h)) {
		free(e);
		return NULL;
	}
	resolve_name(t, e);
	t->v[t->n++] = e;
	return e;
}

/* Grow a (ptr, n, cap) array of `size`-byte elements to hold one more. */
static int grow(void **v, size_t n, size_t *cap, size_t size)
{
	void *nv;
	size_t ncap;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 4;
	nv = realloc(*v, ncap * size);
	if (!nv)
		return -ENOMEM;
	*v = nv;
	*cap = ncap;
	return 0;
}

static int add_waiter(struct ap_lock_entry *e, const struct ap_lock_key *k, uint64_t count,
		      uint64_t ns)
{
	struct ap_lock_waiter *w;

	for (size_t i = 0; i < e->nwaiters; i++) {
		w = &e->waiters[i];
		if (w->pid == k->pid && w->tid == k->tid) {
			w->count += count;
			w->wait_ns += ns;
			return 0;
		}
	}
	if (grow((void **)&e->waiters, e->nwaiters, &e->cap_waiters, sizeof(*w)))
		return -ENOMEM;
	w = &e->waiters[e->nwaiters++];
	memset(w, 0, sizeof(*w));
	w->pid = k->pid;
	w->tid = k->tid;
	memcpy(w->comm, k->comm, AP_LOCK_COMM_LEN);
	w->comm[AP_LOCK_COMM_LEN - 1] = '\0';
	w->count = count;
	w->wait_ns = ns;
	return 0;
}

static int add_stack(struct ap_lock_entry *e, uint32_t stack, uint64_t count, uint64_t ns)
{
	struct ap_lock_stack *s;

	for (size_t i = 0; i < e->nstacks; i++) {
		if (e->stacks[i].stack == stack) {
			e->stacks[i].count += count;
			e->stacks[i].wait_ns += ns;
			return 0;
		}
	}
	if (grow((void **)&e->stacks, e->nstacks, &e->cap_stacks, sizeof(*s)))
		return -ENOMEM;
	s = &e->stacks[e->nstacks++];
	s->stack = stack;
	s->count = count;
	s->wait_ns = ns;
	return 0;
}

static struct ap_lock_holder *get_holder(struct ap_lock_table *t, struct ap_lock_entry *e,
					 uint32_t tid)
{
	struct ap_lock_holder *h;

	for (size_t i = 0; i < e->nholders; i++)
		if (e->holders[i].tid == tid)
			return &e->holders[i];
	if (grow((void **)&e->holders, e->nholders, &e->cap_holders, sizeof(*h)))
		return NULL;
	h = &e->holders[e->nholders++];
	memset(h, 0, sizeof(*h));
	h->tid = tid;
	if (tid != AP_HOLDER_UNKNOWN && tid != AP_HOLDER_READERS && t->res.thread_comm)
		t->res.thread_comm(t->res.ctx, e->pid, tid, h->comm, sizeof(h->comm));
	return h;
}

static size_t stack_len(const __u64 *ips)
{
	size_t n = 0;

	while (ips && n < AP_LOCK_STACK_DEPTH && ips[n])
		n++;
	return n;
}

/* Frames of the tracing machinery at the leaf of a stack taken from a BPF program. */
static bool is_tracing_frame(const struct ap_profile *p, uint32_t frame)
{
	static const char *const prefixes[] = {
		"[unknown]", "bpf_", "__bpf_", "perf_trace_", "perf_syscall_", "trace_call_bpf",
		"__traceiter_", "__probestub_",
	};
	const char *name = ap_profile_str(p, ap_profile_frame(p, frame)->name);

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (!strncmp(name, prefixes[i], strlen(prefixes[i])))
			return true;
	return false;
}

static uint32_t raw_frame(struct ap_profile *p, uint64_t addr, bool kernel)
{
	struct ap_frame f = { 0 };
	char name[32];

	snprintf(name, sizeof(name), "0x%" PRIx64, addr);
	f.addr = addr;
	f.name = ap_profile_intern(p, name);
	f.module = ap_profile_intern(p, kernel ? "[kernel.kallsyms]" : "");
	f.kind = kernel ? AP_FRAME_KERNEL : AP_FRAME_USER;
	if (f.name == UINT32_MAX || f.module == UINT32_MAX)
		return UINT32_MAX;
	return ap_profile_add_frame(p, &f);
}

/* The pseudo frame on top of every lock stack: "[mutex g_lock]", "[spinlock 0xffff...]". */
static uint32_t lock_frame(struct ap_profile *p, const struct ap_lock_entry *e)
{
	struct ap_frame f = { 0 };
	char name[192];

	if (e->name[0])
		snprintf(name, sizeof(name), "[%s %s]", ap_lock_kind_name(e->kind), e->name);
	else
		snprintf(name, sizeof(name), "[%s 0x%" PRIx64 "]", ap_lock_kind_name(e->kind),
			 e->addr);
	/* no address and no module: nothing for a symbolizer to resolve, and no "[module]"
	 * that pprof readers would take for a kernel module */
	f.name = ap_profile_intern(p, name);
	f.module = ap_profile_intern(p, "");
	f.kind = AP_FRAME_USER;
	if (f.name == UINT32_MAX || f.module == UINT32_MAX)
		return UINT32_MAX;
	return ap_profile_add_frame(p, &f);
}

int ap_lock_profile_init(struct ap_profile *p)
{
	if (ap_profile_add_value_type(p, "contentions", "count") ||
	    ap_profile_add_value_type(p, "delay", "nanoseconds"))
		return -ENOMEM;
	/* flamegraphs and tables weigh by time spent waiting */
	ap_profile_set_default_value(p, AP_LOCK_VALUE_DELAY);
	return ap_profile_set_meta(p, "mode", "lock");
}

static int add_profile_sample(struct ap_profile *p, const struct ap_lock_entry *e,
			      const struct ap_lock_key *key, const struct ap_lock_val *val,
			      const uint32_t *frames, size_t n, const char *tag)
{
	uint32_t with_lock[2 * AP_LOCK_STACK_DEPTH + 1];
	struct ap_sample s = { 0 };
	struct ap_label l[4] = { { 0 } };
	char comm[AP_LOCK_COMM_LEN + 1], addr[24];
	size_t nl = 0;

	with_lock[0] = lock_frame(p, e);
	if (with_lock[0] == UINT32_MAX)
		return -ENOMEM;
	memcpy(with_lock + 1, frames, n * sizeof(*frames));
	snprintf(addr, sizeof(addr), "0x%" PRIx64, e->addr);
	l[nl].key = ap_profile_intern(p, "lock");
	l[nl++].str = ap_profile_intern(p, addr);
	l[nl].key = ap_profile_intern(p, "lock_kind");
	l[nl++].str = ap_profile_intern(p, ap_lock_kind_name(e->kind));
	if (e->name[0]) {
		l[nl].key = ap_profile_intern(p, "lock_name");
		l[nl++].str = ap_profile_intern(p, e->name);
	}
	if (tag && tag[0]) { /* set by a filter */
		l[nl].key = ap_profile_intern(p, "tag");
		l[nl++].str = ap_profile_intern(p, tag);
	}
	for (size_t i = 0; i < nl; i++)
		if (l[i].key == UINT32_MAX || l[i].str == UINT32_MAX)
			return -ENOMEM;
	memcpy(comm, key->comm, AP_LOCK_COMM_LEN);
	comm[AP_LOCK_COMM_LEN] = '\0';
	s.stack = ap_profile_add_stack(p, with_lock, n + 1);
	s.comm = ap_profile_intern(p, comm);
	s.labels = ap_profile_add_labels(p, l, nl);
	if (s.stack == UINT32_MAX || s.comm == UINT32_MAX || s.labels == UINT32_MAX)
		return -ENOMEM;
	s.pid = key->pid;
	s.tid = key->tid;
	s.values[AP_LOCK_VALUE_CONTENTIONS] = val->count;
	s.values[AP_LOCK_VALUE_DELAY] = val->total_ns;
	return ap_profile_add_sample(p, &s);
}

int ap_lock_record(struct ap_profile *p, struct ap_symbolizer *sym, struct ap_lock_table *t,
		   const struct ap_lock_key *key, const struct ap_lock_val *val,
		   const __u64 *kstack, const __u64 *ustack, struct ap_lock_record_stats *st)
{
	return ap_lock_record_tagged(p, sym, t, key, val, kstack, ustack, NULL, st);
}

void ap_lock_val_of_wait(struct ap_lock_val *v, uint64_t wait_ns, int64_t ret, uint64_t count,
			 uint64_t total_ns)
{
	memset(v, 0, sizeof(*v));
	v->count = count;
	v->total_ns = total_ns;
	v->max_ns = wait_ns;
	v->hist[ap_hist_slot(wait_ns) & (AP_LOCK_HIST_SLOTS - 1)] = count;
	/* where lock.bpf.c's count_result() puts it */
	if (ret >= 0)
		return;
	if (ret == -ETIMEDOUT)
		v->timeout = count;
	else if (ret == -EINTR || (ret <= -LOCK_ERESTARTSYS && ret >= -LOCK_ERESTART_RESTARTBLOCK))
		v->interrupted = count;
	else
		v->error = count;
}

int ap_lock_record_tagged(struct ap_profile *p, struct ap_symbolizer *sym,
			  struct ap_lock_table *t, const struct ap_lock_key *key,
			  const struct ap_lock_val *val, const __u64 *kstack, const __u64 *ustack,
			  const char *tag, struct ap_lock_record_stats *st)
{
	bool kernel = ap_lock_kind_is_kernel(key->kind);
	size_t nk = stack_len(kstack), nu = stack_len(ustack), n = 0;
	uint32_t frames[2 * AP_LOCK_STACK_DEPTH], stack;
	struct ap_lock_entry *e;
	enum ap_lock_group group;

	if (!val->count)
		return 0;
	e = table_get(t, key->addr, key->pid, kernel, key->kind, key->lclass);
	if (!e)
		return -ENOMEM;
	e->flags |= kernel ? key->flags : (key->flags < 32 ? 1u << key->flags : 0);
	e->count += val->count;
	e->total_ns += val->total_ns;
	if (val->max_ns > e->max_ns)
		e->max_ns = val->max_ns;
	e->timeout += val->timeout;
	e->interrupted += val->interrupted;
	e->error += val->error;
	for (unsigned int i = 0; i < AP_LOCK_HIST_SLOTS; i++)
		e->hist[i] += val->hist[i];
	if (add_waiter(e, key, val->count, val->total_ns))
		return -ENOMEM;

	/* leaf first: kernel frames sit on top of the user frames that entered the kernel */
	for (size_t i = 0; i < nk; i++) {
		frames[n] = sym ? ap_symbolizer_kernel_frame(sym, p, kstack[i], i > 0) :
				  raw_frame(p, kstack[i], true);
		if (frames[n] == UINT32_MAX)
			return -ENOMEM;
		/* the BPF program and the tracing glue that called it are not the waiter's */
		if (n == 0 && sym && is_tracing_frame(p, frames[n]))
			continue;
		n++;
	}
	for (size_t i = 0; i < nu; i++) {
		frames[n] = sym ? ap_symbolizer_user_frame(sym, p, (int)key->pid, ustack[i], i > 0) :
				  raw_frame(p, ustack[i], false);
		if (frames[n++] == UINT32_MAX)
			return -ENOMEM;
	}
	stack = ap_profile_add_stack(p, frames, n);
	if (stack == UINT32_MAX || add_stack(e, stack, val->count, val->total_ns))
		return -ENOMEM;

	if (nu == AP_LOCK_STACK_DEPTH)
		st->user_truncated += val->count;
	if (nk == AP_LOCK_STACK_DEPTH)
		st->kernel_truncated += val->count;
	group = ap_lock_kind_group(key->kind);
	if (group == AP_LOCK_GROUP_CONDVAR) {
		st->condvar_waits += val->count;
		st->condvar_wait_ns += val->total_ns;
		return 0;
	}
	if (group == AP_LOCK_GROUP_OTHER) {
		st->other_waits += val->count;
		st->other_wait_ns += val->total_ns;
		return 0;
	}
	st->lock_waits += val->count;
	st->lock_wait_ns += val->total_ns;
	if (kernel) {
		st->kernel_waits += val->count;
		st->kernel_wait_ns += val->total_ns;
	}
	return add_profile_sample(p, e, key, val, frames, n, tag) ? -ENOMEM : 0;
}

int ap_lock_record_holder(struct ap_lock_table *t, const struct ap_lock_holder_key *key,
			  const struct ap_lock_holder_val *val)
{
	struct ap_lock_entry *e;
	struct ap_lock_holder *h;

	if (!val->count && !val->eagain)
		return 0;
	e = table_get(t, key->addr, key->pid, ap_lock_kind_is_kernel(key->kind), key->kind, 0);
	if (!e)
		return -ENOMEM;
	e->eagain += val->eagain;
	h = get_holder(t, e, key->holder_tid);
	if (!h)
		return -ENOMEM;
	h->count += val->count;
	h->wait_ns += val->wait_ns;
	h->eagain += val->eagain;
	return 0;
}

static int cmp_total_desc(const void *a, const void *b)
{
	const struct ap_lock_entry *x = *(const struct ap_lock_entry *const *)a;
	const struct ap_lock_entry *y = *(const struct ap_lock_entry *const *)b;

	if (x->total_ns != y->total_ns)
		return x->total_ns < y->total_ns ? 1 : -1;
	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

long ap_lock_table_sorted(const struct ap_lock_table *t, enum ap_lock_group group,
			  const struct ap_lock_entry ***out)
{
	const struct ap_lock_entry **v = malloc((t->n ? t->n : 1) * sizeof(*v));
	size_t n = 0;

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < t->n; i++)
		if (ap_lock_kind_group(t->v[i]->kind) == group)
			v[n++] = t->v[i];
	if (n > 1) /* qsort(NULL, 0) is UB */
		qsort(v, n, sizeof(*v), cmp_total_desc);
	*out = v;
	return (long)n;
}
