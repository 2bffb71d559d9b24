// SPDX-License-Identifier: MIT
#include "syscall_record.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "syscalls.h"

_Static_assert(AP_SYS_HIST_SLOTS == AP_HIST_SLOTS, "syscall.h and hist_bits.h disagree");
_Static_assert(AP_SYS_ABI_COMPAT == AP_SYSCALL_ABI_COMPAT && AP_SYS_ABI_X32 == AP_SYSCALL_ABI_X32,
	       "syscall.h and syscalls.h disagree on the ABI bits");

/* What was last read for one slow-stack key (the kernel's values are cumulative). */
struct slow_seen {
	struct ap_sys_slow_key key;
	uint64_t count;
	uint64_t ns;
};

/* Open-addressing index: slot holds position + 1, 0 = empty; capacity a power of two. */
struct index {
	uint32_t *slots;
	size_t cap;
};

struct ap_sys_table {
	struct ap_sys_entry *entries;
	size_t n, cap;
	struct index entry_index;
	struct slow_seen *slow;
	size_t nslow, slow_cap;
	struct index slow_index;
};

static uint64_t mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static uint64_t key_hash(uint32_t pid, uint32_t nr, uint32_t extra)
{
	return mix(((uint64_t)pid << 32 | nr) ^ mix(extra + 0x9e3779b97f4a7c15ULL));
}

/* Rebuild the index over items[0..n) with room for at least `need` items. */
static int index_grow(struct index *ix, size_t need, size_t n,
		      uint64_t (*hash_of)(const void *, size_t), const void *items)
{
	size_t cap = ix->cap ? ix->cap * 2 : 64;
	uint32_t *slots;

	while (cap < need * 2)
		cap *= 2;
	slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		size_t s = hash_of(items, i) & (cap - 1);

		while (slots[s])
			s = (s + 1) & (cap - 1);
		slots[s] = (uint32_t)(i + 1);
	}
	free(ix->slots);
	ix->slots = slots;
	ix->cap = cap;
	return 0;
}

static uint64_t entry_hash_at(const void *items, size_t i)
{
	const struct ap_sys_entry *e = (const struct ap_sys_entry *)items + i;

	return key_hash(e->pid, e->nr, 0);
}

static uint64_t slow_hash_at(const void *items, size_t i)
{
	const struct slow_seen *s = (const struct slow_seen *)items + i;

	return key_hash(s->key.pid, s->key.nr, (uint32_t)s->key.stack_id);
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
	free(t->entry_index.slots);
	free(t->slow);
	free(t->slow_index.slots);
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
	size_t s;

	if (!t->entry_index.cap)
		return NULL;
	s = key_hash(pid, nr, 0) & (t->entry_index.cap - 1);
	for (; t->entry_index.slots[s]; s = (s + 1) & (t->entry_index.cap - 1)) {
		struct ap_sys_entry *e = &t->entries[t->entry_index.slots[s] - 1];

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
	size_t s;

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
	if ((t->n + 1) * 2 > t->entry_index.cap &&
	    index_grow(&t->entry_index, t->n + 1, t->n, entry_hash_at, t->entries))
		return NULL;
	e = &t->entries[t->n++];
	memset(e, 0, sizeof(*e));
	e->pid = pid;
	e->nr = nr;
	s = key_hash(pid, nr, 0) & (t->entry_index.cap - 1);
	while (t->entry_index.slots[s])
		s = (s + 1) & (t->entry_index.cap - 1);
	t->entry_index.slots[s] = (uint32_t)t->n;
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

void ap_sys_totals_from_percpu(struct ap_sys_totals *out, char comm[AP_SYS_COMM_LEN + 1],
			       const struct ap_sys_stats *percpu, int ncpu)
{
	memset(out, 0, sizeof(*out));
	comm[0] = '\0';
	for (int c = 0; c < ncpu; c++) {
		const struct ap_sys_stats *v = &percpu[c];
		struct ap_sys_totals one = {
			.count = v->count,
			.errors = v->errors,
			.total_ns = v->total_ns,
			.min_ns = v->min_ns,
			.max_ns = v->max_ns,
			.slow = v->slow,
			.noreturn = v->noreturn,
		};

		memcpy(one.hist, v->hist, sizeof(one.hist));
		ap_sys_totals_add(out, &one);
		/* only the CPU that created the key wrote the name */
		if (!comm[0] && v->comm[0]) {
			memcpy(comm, v->comm, AP_SYS_COMM_LEN);
			comm[AP_SYS_COMM_LEN] = '\0';
		}
	}
}

int ap_sys_table_set(struct ap_sys_table *t, const struct ap_sys_key *key, const char *comm,
		     const struct ap_sys_totals *live)
{
	struct ap_sys_entry *e = get(t, key->pid, key->nr);

	if (!e)
		return -ENOMEM;
	if (comm && comm[0])
		snprintf(e->comm, sizeof(e->comm), "%s", comm);
	e->live = *live;
	e->sum = e->base;
	ap_sys_totals_add(&e->sum, &e->live);
	return 0;
}

int ap_sys_table_set_errno(struct ap_sys_table *t, const struct ap_sys_err_key *key,
			   uint64_t live)
{
	struct ap_sys_entry *e = get(t, key->pid, key->nr);
	struct ap_sys_errno_count *ec;

	if (!e)
		return -ENOMEM;
	for (size_t i = 0; i < e->nerrnos; i++) {
		if (e->errnos[i].err == key->err) {
			e->errnos[i].count = e->errnos[i].base + live;
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
	ec->err = key->err;
	ec->count = live;
	return 0;
}

int ap_sys_table_slow_delta(struct ap_sys_table *t, const struct ap_sys_slow_key *key,
			    uint64_t count, uint64_t total_ns, uint64_t *dcount, uint64_t *dns)
{
	struct index *ix = &t->slow_index;
	struct slow_seen *s = NULL;
	size_t pos;

	if (ix->cap) {
		pos = key_hash(key->pid, key->nr, (uint32_t)key->stack_id) & (ix->cap - 1);
		for (; ix->slots[pos]; pos = (pos + 1) & (ix->cap - 1)) {
			struct slow_seen *c = &t->slow[ix->slots[pos] - 1];

			if (c->key.pid == key->pid && c->key.nr == key->nr &&
			    c->key.stack_id == key->stack_id) {
				s = c;
				break;
			}
		}
	}
	if (!s) {
		if (t->nslow == t->slow_cap) {
			size_t ncap = t->slow_cap ? t->slow_cap * 2 : 64;
			struct slow_seen *ns = realloc(t->slow, ncap * sizeof(*ns));

			if (!ns)
				return -ENOMEM;
			t->slow = ns;
			t->slow_cap = ncap;
		}
		if ((t->nslow + 1) * 2 > ix->cap &&
		    index_grow(ix, t->nslow + 1, t->nslow, slow_hash_at, t->slow))
			return -ENOMEM;
		s = &t->slow[t->nslow++];
		memset(s, 0, sizeof(*s));
		s->key = *key;
		s->key.pad = 0;
		pos = key_hash(key->pid, key->nr, (uint32_t)key->stack_id) & (ix->cap - 1);
		while (ix->slots[pos])
			pos = (pos + 1) & (ix->cap - 1);
		ix->slots[pos] = (uint32_t)t->nslow;
	}
	/* a counter never goes back; if it seems to, the kernel entry was recreated */
	*dcount = count >= s->count ? count - s->count : count;
	*dns = total_ns >= s->ns ? total_ns - s->ns : total_ns;
	s->count = count;
	s->ns = total_ns;
	return 0;
}

void ap_sys_table_retire_pid(struct ap_sys_table *t, uint32_t pid)
{
	for (size_t i = 0; i < t->n; i++) {
		struct ap_sys_entry *e = &t->entries[i];

		if (e->pid != pid)
			continue;
		e->base = e->sum;
		memset(&e->live, 0, sizeof(e->live));
		for (size_t j = 0; j < e->nerrnos; j++)
			e->errnos[j].base = e->errnos[j].count;
	}
	for (size_t i = 0; i < t->nslow; i++) {
		if (t->slow[i].key.pid == pid) {
			t->slow[i].count = 0;
			t->slow[i].ns = 0;
		}
	}
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

int ap_sys_record_slow(struct ap_profile *p, struct ap_symbolizer *sym, struct ap_sys_table *t,
		       const struct ap_sys_slow_key *key, uint64_t count, uint64_t total_ns,
		       const __u64 *ustack)
{
	uint32_t frames[AP_SYS_STACK_DEPTH + 1];
	struct ap_sys_entry *e = find(t, key->pid, key->nr);
	struct ap_sample s = { 0 };
	size_t n = 0;
	int err;

	if (!e)
		return -ENOENT;
	for (size_t i = 0; ustack && i < AP_SYS_STACK_DEPTH && ustack[i]; i++) {
		frames[n] = ap_symbolizer_user_frame(sym, p, (int)key->pid, ustack[i], i > 0);
		if (frames[n++] == UINT32_MAX)
			return -ENOMEM;
	}
	err = syscall_frame(p, key->nr, &frames[n++], &s.labels);
	if (err)
		return err;
	s.stack = ap_profile_add_stack(p, frames, n);
	s.comm = ap_profile_intern(p, e->comm);
	if (s.stack == UINT32_MAX || s.comm == UINT32_MAX)
		return -ENOMEM;
	s.pid = key->pid;
	s.values[AP_SYS_VALUE_CALLS] = count;
	s.values[AP_SYS_VALUE_LATENCY_NS] = total_ns;
	if (ap_profile_add_sample(p, &s))
		return -ENOMEM;
	e->slow_stack_calls += count;
	e->slow_stack_ns += total_ns;
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
