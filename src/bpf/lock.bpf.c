// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Lock contention, user and kernel, aggregated in the kernel.
 *
 * User locks: futex waits. sys_enter classifies the wait (from the futex operation, the
 * expected value and the glibc object around the futex word), reads the holder tid and
 * stores a start record per thread; sys_exit decides whether the thread slept (its voluntary
 * context-switch count moved), and if so adds the wait to the (lock, waiter, stacks)
 * aggregate and to the per-lock holder table. Nothing runs on the uncontended fast path:
 * glibc only enters the kernel when a lock is contended.
 *
 * The syscall hooks exist twice with one body: tracepoint/syscalls/sys_{enter,exit}_futex*
 * (run only for futex calls; need tracefs to attach; one pair attached to each futex
 * syscall's events) and tp_btf/sys_{enter,exit} (raw syscall tracepoints filtered by number;
 * need only BTF). The loader picks one pair before load and loads only that one: each
 * futex_exit body costs the verifier ~0.1 s.
 *
 * Kernel locks: tp_btf lock:contention_begin/end. Spinning locks keep their start in a
 * per-CPU slot (they cannot sleep), sleeping locks per thread; nested contention is ignored.
 *
 * Draining without losing waits: waits/holders/stacks are double-buffered; the agent flips
 * `active_slot`, lets in-flight programs finish, then reads and clears the other slot.
 *
 * Per-event mode (cfg_per_event, for filters): a wait that blocked goes to the agent through
 * `lock_events` instead of into waits/holders; its stacks stay in the slot's stacks map.
 *
 * Spills: a wait whose new key finds its waits (or holders) map full goes through
 * `lock_events` as the same record, and the agent adds it where the drain would have. Only
 * the ring buffer being full too loses it (counted): more distinct keys than a map holds in
 * one drain interval (thousands of new threads a second, a slow drain) cost records, not waits.
 *
 * User stacks are walked with the CFI tables (unwind.h). A process the walker has no tables
 * for is announced to the agent, and its wait goes to the agent with a stack snapshot, to be
 * unwound and recorded there (proc_announce.h): it is in neither waits nor holders.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "hist_bits.h"
#include "lock.h"
#include "regs.h"

/* unwind.h's and stack_store.h's stack: a lock stack's frames (leaf first, zero tail) */
struct ap_stack {
	__u64 ips[AP_LOCK_STACK_DEPTH];
};
#include "unwind.h"
#include "bpf_stats.h"
#include "stack_store.h"
#include "proc_announce.h"
#include "pid_filter.h"

#define EINTR 4
#define EAGAIN 11
#define EFAULT 14
#define EEXIST 17
#define ETIMEDOUT 110
#define ERESTARTSYS 512
#define ERESTART_RESTARTBLOCK 516

#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#define FUTEX_WAKE_OP 5
#define FUTEX_LOCK_PI 6
#define FUTEX_UNLOCK_PI 7
#define FUTEX_WAIT_BITSET 9
#define FUTEX_WAKE_BITSET 10
#define FUTEX_WAIT_REQUEUE_PI 11
#define FUTEX_LOCK_PI2 13
#define FUTEX_CMD_MASK 0x7f
#define FUTEX_TID_MASK 0x3fffffff
#define PID_MAX_LIMIT (4 * 1024 * 1024)

/* glibc (2.26+) object layout, x86_64 and aarch64 */
#define RWLOCK_FUTEX_USED 2u /* PTHREAD_RWLOCK_FUTEX_USED: waiters on this futex */
#define MUTEX_KIND_ALLOWED 0x393u /* kind bits of a futex-word mutex: type|robust|pshared|elision */

#if defined(__TARGET_ARCH_x86)
#define NR_FUTEX 202
#define NR_FUTEX_WAITV 449
#define NR_FUTEX_WAIT 455
#elif defined(__TARGET_ARCH_arm64)
#define NR_FUTEX 98
#define NR_FUTEX_WAITV 449
#define NR_FUTEX_WAIT 455
#endif

/* Which syscall a start record belongs to. */
enum { SC_FUTEX = 0, SC_FUTEX_WAITV = 1, SC_FUTEX_WAIT = 2 };

const volatile bool cfg_filter_comms = false;
const volatile bool cfg_user_stacks = true;
const volatile bool cfg_kernel_stacks = true;
const volatile __u32 cfg_self_pid = 0; /* the agent: never profiled */
/* Each wait that blocked goes to the agent as a record instead of into waits/holders. */
const volatile bool cfg_per_event = false;

/* Which waits/holders/stacks set the programs write; flipped by the agent when it drains. */
__u32 active_slot = 0;


struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, struct ap_lock_comm);
	__type(value, __u8);
} target_comms SEC(".maps");

/* Stacks keyed by a hash of their frames: a STACK_TRACE map's buckets collide and would drop
 * stacks (-EEXIST) or, with REUSE_STACKID, let one stack overwrite another's id. */
struct stack_map {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096); /* resized by the loader */
	__type(key, __u64);
	__type(value, struct ap_lock_stack_ips);
};

struct waits_map {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192); /* resized by the loader */
	__type(key, struct ap_lock_key);
	__type(value, struct ap_lock_val);
};

struct holders_map {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct ap_lock_holder_key);
	__type(value, struct ap_lock_holder_val);
};

struct stack_map stacks_0 SEC(".maps");
struct stack_map stacks_1 SEC(".maps");
struct waits_map waits_0 SEC(".maps");
struct waits_map waits_1 SEC(".maps");
struct holders_map holders_0 SEC(".maps");
struct holders_map holders_1 SEC(".maps");

/* A futex wait in progress, per thread. LRU: a thread killed inside the wait never reaches
 * sys_exit, and its record must not pin a slot forever. */
struct futex_start {
	__u64 ts;
	__u64 addr;  /* lock object address (see struct ap_lock_key) */
	__u64 nvcsw; /* voluntary switches at entry: moved at exit = the thread slept */
	__u64 waitv; /* futex_waitv: user pointer to the waiters array */
	__u32 holder;
	__u32 kind;
	__u32 op;
	__u32 nr; /* futex_waitv: number of waiters */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 32768);
	__type(key, __u32); /* tid */
	__type(value, struct futex_start);
} futex_starts SEC(".maps");

/* A kernel lock contention in progress. */
struct klock_start {
	__u64 ts;
	__u64 lock;
	__u32 flags;
	__u32 lclass;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32); /* tid */
	__type(value, struct klock_start);
} klock_starts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct klock_start);
} klock_cpu SEC(".maps");

/* Threads that released a contended futex: tid -> comm (holder names after they exit). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct ap_lock_comm);
} waker_comms SEC(".maps");

AP_BPF_STATS(lock_stats, AP_LOCK_STAT_MAX);
AP_BPF_STAT_HELPERS(lock_stats)

/* Per-event records, and spills of the full waits/holders maps (resized by the loader: smaller
 * when it only carries spills). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} lock_events SEC(".maps");

/* Initial value of a new aggregate (too big for the BPF stack). */
static const struct ap_lock_val zero_val;


/* --pid / --comm / the agent itself. */
static __always_inline bool task_wanted(__u32 tgid)
{
	if (cfg_self_pid && tgid == cfg_self_pid)
		return false;
	if (cfg_filter_pids && !ap_tgid_in_targets(tgid))
		return false;
	if (cfg_filter_comms) {
		struct ap_lock_comm c = {};

		bpf_get_current_comm(c.comm, sizeof(c.comm));
		if (!bpf_map_lookup_elem(&target_comms, &c))
			return false;
	}
	return true;
}

static __always_inline __u64 current_nvcsw(void)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();

	return BPF_CORE_READ(t, nvcsw);
}

/* ---- classification of a futex wait ---- */

/*
 * FUTEX_WAIT(_BITSET) with expected value 2: the "locked, with waiters" lock protocol.
 * pthread_mutex_t: __lock, __count, __owner (+8), __nusers, __kind (+16). Returns false when
 * the owner field is empty: the caller then tries the rwlock layout (a writer waiting for
 * readers also waits for 2) before settling for a bare futex lock.
 */
static __always_inline bool classify_mutex(struct futex_start *s, __u64 uaddr, bool *maybe)
{
	__u32 m[5];

	*maybe = false;
	if (uaddr & 7)
		return false;
	if (bpf_probe_read_user(m, sizeof(m), (void *)uaddr)) {
		stat_inc(AP_LOCK_STAT_USER_READ_ERR);
		return false;
	}
	if (m[4] & ~MUTEX_KIND_ALLOWED)
		return false; /* not a mutex kind (or PI/PP, which never wait like this) */
	if (m[2] > 0 && m[2] < PID_MAX_LIMIT) {
		s->kind = AP_LOCK_MUTEX;
		s->holder = m[2];
		return true;
	}
	/* owner not written yet / already cleared while users remain: a mutex, holder unknown */
	*maybe = m[3] > 0 && m[3] < PID_MAX_LIMIT;
	return false;
}

/*
 * pthread_rwlock_t waits: expected value 0 or 1 with PTHREAD_RWLOCK_FUTEX_USED (2). The object is
 * 8-byte aligned, so __wrphase_futex (+8) is 8-aligned and __writers_futex (+12) is not.
 * Layout: __readers, __writers, __wrphase_futex, __writers_futex, __pad3, __pad4,
 * __cur_writer (+24), __shared.
 */
static __always_inline bool classify_rwlock(struct futex_start *s, __u64 uaddr, __u32 val)
{
	__u64 base = (uaddr & 4) ? uaddr - 12 : uaddr - 8;
	__u32 r[8];

	if (bpf_probe_read_user(r, sizeof(r), (void *)base)) {
		stat_inc(AP_LOCK_STAT_USER_READ_ERR);
		return false;
	}
	if (r[4] || r[5]) /* __pad3, __pad4 are never written */
		return false;
	if (!r[0]) /* __readers: a waiter implies WRPHASE/WRLOCKED bits or readers */
		return false;
	if (r[2] > (RWLOCK_FUTEX_USED | 1) || r[3] > (RWLOCK_FUTEX_USED | 1))
		return false; /* __wrphase_futex, __writers_futex: 0/1 | FUTEX_USED */
	s->kind = AP_LOCK_RWLOCK;
	s->addr = base;
	if (!(uaddr & 4) && val == RWLOCK_FUTEX_USED)
		s->holder = AP_HOLDER_READERS; /* a writer waits for the read phase to end */
	else if (r[6] > 0 && r[6] < PID_MAX_LIMIT)
		s->holder = (__u32)r[6]; /* __cur_writer */
	return true;
}

/*
 * pthread_cond_t waits (glibc 2.25+): expected value 0 on __g_signals[g] (+40 or +44 of an
 * 8-byte aligned object, so g = bit 2 of the address). The waiter took a reference in
 * __wrefs (+36, units of 8) and in __g_refs[g] (+16/+20, units of 2) before sleeping.
 */
static __always_inline bool classify_condvar(struct futex_start *s, __u64 uaddr)
{
	__u64 g = (uaddr >> 2) & 1, base = uaddr - 40 - 4 * g;
	__u32 c[10];

	if (bpf_probe_read_user(c, sizeof(c), (void *)base)) {
		stat_inc(AP_LOCK_STAT_USER_READ_ERR);
		return false;
	}
	if (c[9] < 8 || c[4 + g] < 2)
		return false;
	s->kind = AP_LOCK_CONDVAR;
	s->addr = base;
	return true;
}

static __always_inline void classify(struct futex_start *s, __u64 uaddr, __u32 cmd, __u32 val)
{
	s->addr = uaddr;
	s->holder = AP_HOLDER_UNKNOWN;
	s->kind = AP_LOCK_OTHER;
	switch (cmd) {
	case FUTEX_LOCK_PI:
	case FUTEX_LOCK_PI2: {
		__u32 word = 0;

		s->kind = AP_LOCK_PI_MUTEX;
		if (bpf_probe_read_user(&word, sizeof(word), (void *)uaddr) == 0)
			s->holder = word & FUTEX_TID_MASK;
		else
			stat_inc(AP_LOCK_STAT_USER_READ_ERR);
		return;
	}
	case FUTEX_WAIT_REQUEUE_PI:
		s->kind = AP_LOCK_CONDVAR;
		return;
	case FUTEX_WAIT:
	case FUTEX_WAIT_BITSET: {
		bool maybe_mutex = false;

		if (val == 2 && classify_mutex(s, uaddr, &maybe_mutex))
			return;
		if ((val & ~1u) == RWLOCK_FUTEX_USED && classify_rwlock(s, uaddr, val))
			return;
		if (val == 2)
			s->kind = maybe_mutex ? AP_LOCK_MUTEX : AP_LOCK_FUTEX_LOCK;
		else if (val == 0)
			classify_condvar(s, uaddr);
		return;
	}
	}
}

static __always_inline bool is_wait_cmd(__u32 cmd)
{
	return cmd == FUTEX_WAIT || cmd == FUTEX_WAIT_BITSET || cmd == FUTEX_LOCK_PI ||
	       cmd == FUTEX_LOCK_PI2 || cmd == FUTEX_WAIT_REQUEUE_PI;
}

static __always_inline bool is_release_cmd(__u32 cmd)
{
	return cmd == FUTEX_WAKE || cmd == FUTEX_WAKE_BITSET || cmd == FUTEX_UNLOCK_PI ||
	       cmd == FUTEX_WAKE_OP;
}

/* Remember the comm of a thread releasing a contended futex (a holder). */
static __always_inline void note_releaser(__u32 tid)
{
	struct ap_lock_comm c = {};

	if (bpf_map_lookup_elem(&waker_comms, &tid))
		return;
	bpf_get_current_comm(c.comm, sizeof(c.comm));
	bpf_map_update_elem(&waker_comms, &tid, &c, BPF_ANY);
}

/* Start of futex(), futex_wait() or futex_waitv(). */
static __always_inline int futex_enter(__u32 which, __u64 uaddr, __u32 op, __u32 val, __u32 nr)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = (__u32)id, cmd = op & FUTEX_CMD_MASK;
	struct futex_start s = {};

	if (which == SC_FUTEX && !is_wait_cmd(cmd)) {
		if (is_release_cmd(cmd) && task_wanted(tgid))
			note_releaser(tid);
		return 0;
	}
	if (!task_wanted(tgid)) {
		stat_inc(AP_LOCK_STAT_FUTEX_FILTERED);
		return 0;
	}
	stat_inc(AP_LOCK_STAT_FUTEX_WAITS);
	s.op = which == SC_FUTEX_WAITV ? AP_FUTEX_OP_WAITV :
	       which == SC_FUTEX_WAIT  ? AP_FUTEX_OP_FUTEX_WAIT : cmd;
	if (which == SC_FUTEX_WAITV) {
		/* a wait on any of nr futexes: which one is known at exit */
		s.kind = AP_LOCK_OTHER;
		s.waitv = uaddr;
		s.nr = nr;
	} else {
		classify(&s, uaddr, which == SC_FUTEX_WAIT ? FUTEX_WAIT_BITSET : cmd, val);
	}
	s.nvcsw = current_nvcsw();
	s.ts = bpf_ktime_get_ns();
	if (bpf_map_update_elem(&futex_starts, &tid, &s, BPF_ANY))
		stat_inc(AP_LOCK_STAT_INFLIGHT_FULL);
	return 0;
}

/* The current kernel or user stack (frame-pointer walk) into `map`; its key, 0 when none. */
static __always_inline __u64 capture_stack(void *ctx, void *map, __u64 flags, __u32 err_stat)
{
	return ap_capture_stack(ctx, map, flags, &lock_stats, err_stat, AP_LOCK_STAT_STACKS_FULL);
}

/* The slot being written and its stacks and waits maps. Read once per event: the stacks,
 * the wait and a per-event record must agree on the slot. */
static __always_inline __u32 active_maps(void **stacks, void **waits)
{
	__u32 slot = active_slot;

	*stacks = slot ? (void *)&stacks_1 : (void *)&stacks_0;
	*waits = slot ? (void *)&waits_1 : (void *)&waits_0;
	return slot;
}

/* Result of a wait from the syscall's return value: where it is counted. */
static __always_inline void count_result(struct ap_lock_val *v, long ret)
{
	if (ret >= 0)
		return; /* acquired / woken: count - the others */
	if (ret == -ETIMEDOUT)
		__sync_fetch_and_add(&v->timeout, 1);
	else if (ret == -EINTR || (ret <= -ERESTARTSYS && ret >= -ERESTART_RESTARTBLOCK))
		__sync_fetch_and_add(&v->interrupted, 1);
	else
		__sync_fetch_and_add(&v->error, 1);
}

/* Returns false when the map is full (the caller spills the wait). */
static __always_inline bool add_wait(struct ap_lock_key *key, __u64 ns, long ret, void *waits)
{
	struct ap_lock_val *v = bpf_map_lookup_elem(waits, key);
	__u32 slot;

	if (!v) {
		/* EEXIST: another CPU inserted the same key first, which is fine */
		bpf_map_update_elem(waits, key, &zero_val, BPF_NOEXIST);
		v = bpf_map_lookup_elem(waits, key);
		if (!v)
			return false;
	}
	__sync_fetch_and_add(&v->count, 1);
	__sync_fetch_and_add(&v->total_ns, ns);
	if (ns > v->max_ns)
		v->max_ns = ns; /* racy by design: two CPUs can only lose a near-equal max */
	slot = ap_log2_u64(ns);
	if (slot >= AP_LOCK_HIST_SLOTS)
		slot = AP_LOCK_HIST_SLOTS - 1;
	__sync_fetch_and_add(&v->hist[slot], 1);
	count_result(v, ret);
	return true;
}

/* Returns false when the map is full (the caller spills the attribution). */
static __always_inline bool add_holder(struct ap_lock_holder_key *hk, __u64 ns, bool eagain)
{
	void *holders = active_slot ? (void *)&holders_1 : (void *)&holders_0;
	struct ap_lock_holder_val *h = bpf_map_lookup_elem(holders, hk), zero = {};

	if (!h) {
		bpf_map_update_elem(holders, hk, &zero, BPF_NOEXIST);
		h = bpf_map_lookup_elem(holders, hk);
		if (!h)
			return false;
	}
	if (eagain) {
		__sync_fetch_and_add(&h->eagain, 1);
	} else {
		__sync_fetch_and_add(&h->count, 1);
		__sync_fetch_and_add(&h->wait_ns, ns);
	}
	return true;
}

static __always_inline void fill_wait(struct ap_lock_event *e, const struct ap_lock_key *key,
				      __u64 ns, __u64 now, long ret, __u32 holder, __u32 slot,
				      __u32 parts)
{
	e->key = *key;
	e->wait_ns = ns;
	e->ts_ns = now;
	e->ret = ret;
	e->holder_tid = holder;
	e->cpu = bpf_get_smp_processor_id();
	e->slot = slot;
	e->parts = parts;
}

/* One record on lock_events: `parts` of a wait for the agent to add. Returns false when the
 * ring buffer is full (the caller counts the loss). */
static __always_inline bool send_wait(const struct ap_lock_key *key, __u64 ns, __u64 now,
				      long ret, __u32 holder, __u32 slot, __u32 parts)
{
	struct ap_lock_event *e = bpf_ringbuf_reserve(&lock_events, sizeof(*e), 0);

	if (!e)
		return false;
	fill_wait(e, key, ns, now, ret, holder, slot, parts);
	bpf_ringbuf_submit(e, 0);
	return true;
}

/* Per-event mode: one blocked wait (and its holder) to the agent. */
static __always_inline void emit_wait(const struct ap_lock_key *key, __u64 ns, __u64 now,
				      long ret, __u32 holder, __u32 slot)
{
	if (!send_wait(key, ns, now, ret, holder, slot, AP_LOCK_EV_WAIT | AP_LOCK_EV_HOLDER))
		stat_inc(AP_LOCK_STAT_EVENTS_LOST);
}

/* A full waits map (parts has AP_LOCK_EV_WAIT) or holders map: what did not fit goes to the
 * agent, which adds it as the drain would have. Only the ring being full too loses it. */
static __always_inline void spill(const struct ap_lock_key *key, __u64 ns, __u64 now, long ret,
				  __u32 holder, __u32 slot, __u32 parts)
{
	bool wait = parts & AP_LOCK_EV_WAIT;

	if (send_wait(key, ns, now, ret, holder, slot, parts))
		stat_inc(wait ? AP_LOCK_STAT_WAITS_SPILLED : AP_LOCK_STAT_HOLDERS_SPILLED);
	else
		stat_inc(wait ? AP_LOCK_STAT_WAITS_LOST : AP_LOCK_STAT_HOLDERS_LOST);
}

/* A user wait whose stack the agent unwinds (proc_announce.h): it carries what the wait
 * would have added, kernel stack included. Returns true when sent: then it is neither in
 * waits nor in holders (nor a per-event record) here. */
static __always_inline bool defer_wait(const struct ap_lock_key *key, __u64 ns, __u64 now,
				       long ret, __u32 holder, const struct ap_uregs *start)
{
	struct ap_lock_deferred *d = ap_defer_reserve(struct ap_lock_deferred);

	if (!d)
		return false;
	fill_wait(&d->ev, key, ns, now, ret, holder, 0, AP_LOCK_EV_WAIT | AP_LOCK_EV_HOLDER);
	ap_copy_captured_stack(d->kstack); /* valid when key->kern_stack is set */
	ap_defer_submit(d, &d->snap, key->pid, start);
	return true;
}

/* End of a futex wait syscall. */
static __always_inline int futex_exit(void *ctx, long ret)
{
	__u64 id = bpf_get_current_pid_tgid(), now = bpf_ktime_get_ns();
	__u32 tid = (__u32)id;
	struct ap_lock_holder_key hk = {};
	struct ap_uregs start = {};
	struct ap_lock_key key = {};
	struct futex_start *sp, s;
	void *stacks, *waits;
	struct ap_stack *st;
	bool defer = false;
	__u32 slot, n;
	long err;

	sp = bpf_map_lookup_elem(&futex_starts, &tid);
	if (!sp)
		return 0;
	s = *sp;
	bpf_map_delete_elem(&futex_starts, &tid);

	if (s.nr) {
		/* futex_waitv returns the index of the futex that woke it */
		__u64 i = ret >= 0 && ret < s.nr ? (__u64)ret : 0;

		if (bpf_probe_read_user(&s.addr, sizeof(s.addr),
					(void *)(s.waitv + i * sizeof(struct futex_waitv) +
						 offsetof(struct futex_waitv, uaddr))))
			stat_inc(AP_LOCK_STAT_USER_READ_ERR);
	}
	hk.addr = s.addr;
	hk.pid = id >> 32;
	hk.holder_tid = s.holder;
	hk.kind = s.kind;
	key.addr = s.addr;
	key.pid = id >> 32;
	key.tid = tid;
	key.kind = s.kind;
	key.flags = s.op;
	if (ret == -EAGAIN) {
		stat_inc(AP_LOCK_STAT_FUTEX_EAGAIN);
		if (!add_holder(&hk, 0, true)) /* the record names the lock, pid, kind, holder */
			spill(&key, 0, now, ret, s.holder, 0,
			      AP_LOCK_EV_HOLDER | AP_LOCK_EV_EAGAIN);
		return 0;
	}
	if (current_nvcsw() == s.nvcsw) {
		stat_inc(AP_LOCK_STAT_FUTEX_NO_SLEEP);
		return 0;
	}
	stat_inc(AP_LOCK_STAT_FUTEX_BLOCKED);

	slot = active_maps(&stacks, &waits);
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	/* the kernel stack first: a deferred wait copies it from the capture scratch */
	key.kern_stack = cfg_kernel_stacks ?
		capture_stack(ctx, stacks, 0, AP_LOCK_STAT_KERN_STACK_ERR) : 0;
	if (cfg_user_stacks) {
		st = ap_walk_user_stack(ctx, id >> 32, &start, &n, &defer, &err);
		if (err && err != -EFAULT) /* -EFAULT: no user stack (a kernel thread) */
			stat_inc(AP_LOCK_STAT_USER_STACK_ERR);
		if (defer && defer_wait(&key, now - s.ts, now, ret, s.holder, &start))
			return 0; /* recorded by the agent once unwound */
		if (st && n) /* a deferral that did not fit keeps the frames it has */
			key.user_stack = ap_store_stack(stacks, st, n, 0, 0, &lock_stats,
							AP_LOCK_STAT_STACKS_FULL);
	}
	if (cfg_per_event) {
		emit_wait(&key, now - s.ts, now, ret, s.holder, slot);
		return 0;
	}
	/* a spilled wait takes its holder along: one record, and both or neither recorded */
	if (!add_wait(&key, now - s.ts, ret, waits))
		spill(&key, now - s.ts, now, ret, s.holder, slot,
		      AP_LOCK_EV_WAIT | AP_LOCK_EV_HOLDER);
	else if (!add_holder(&hk, now - s.ts, false))
		spill(&key, now - s.ts, now, ret, s.holder, slot, AP_LOCK_EV_HOLDER);
	return 0;
}

/* ---- syscall hooks: per-syscall tracepoints (preferred) ---- */

/*
 * Attached to sys_{enter,exit}_futex, and by the loader to the futex_waitv and futex_wait
 * events when the kernel has them: every syscalls:sys_enter_* record is the syscall number (an
 * int: the upper half of `id` is padding, not zeroed) then the arguments, every sys_exit_* one
 * the number then the return value.
 */
SEC("tracepoint/syscalls/sys_enter_futex")
int futex_enter_tp(struct trace_event_raw_sys_enter *ctx)
{
	switch ((__u32)ctx->id) {
	case NR_FUTEX:
		return futex_enter(SC_FUTEX, ctx->args[0], (__u32)ctx->args[1],
				   (__u32)ctx->args[2], 0);
	case NR_FUTEX_WAITV:
		return futex_enter(SC_FUTEX_WAITV, ctx->args[0], 0, 0, (__u32)ctx->args[1]);
	case NR_FUTEX_WAIT:
		return futex_enter(SC_FUTEX_WAIT, ctx->args[0], 0, (__u32)ctx->args[1], 0);
	}
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_futex")
int futex_exit_tp(struct trace_event_raw_sys_exit *ctx)
{
	return futex_exit(ctx, ctx->ret);
}

/* ---- syscall hooks: raw syscall tracepoints (fallback when tracefs is absent) ---- */

#define SC_ARG0(r) PT_REGS_PARM1_CORE_SYSCALL(r)
#define SC_ARG1(r) PT_REGS_PARM2_CORE_SYSCALL(r)
#define SC_ARG2(r) PT_REGS_PARM3_CORE_SYSCALL(r)

SEC("tp_btf/sys_enter")
int BPF_PROG(futex_enter_raw, struct pt_regs *regs, long nr)
{
	switch (nr) {
	case NR_FUTEX:
		return futex_enter(SC_FUTEX, SC_ARG0(regs), (__u32)SC_ARG1(regs),
				   (__u32)SC_ARG2(regs), 0);
	case NR_FUTEX_WAITV:
		return futex_enter(SC_FUTEX_WAITV, SC_ARG0(regs), 0, 0, (__u32)SC_ARG1(regs));
	case NR_FUTEX_WAIT:
		return futex_enter(SC_FUTEX_WAIT, SC_ARG0(regs), 0, (__u32)SC_ARG1(regs), 0);
	}
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(futex_exit_raw, struct pt_regs *regs, long ret)
{
	long nr = ap_regs_syscall_nr(regs);

	if (nr != NR_FUTEX && nr != NR_FUTEX_WAITV && nr != NR_FUTEX_WAIT)
		return 0;
	return futex_exit(ctx, ret);
}

/* ---- kernel locks ---- */

static __always_inline __u32 klock_kind(__u32 flags)
{
	if (flags & AP_LCB_F_PERCPU)
		return AP_LOCK_K_PERCPU_RWSEM;
	if (flags & AP_LCB_F_RT)
		return AP_LOCK_K_RTMUTEX;
	if (flags & AP_LCB_F_MUTEX)
		return AP_LOCK_K_MUTEX;
	if (flags & AP_LCB_F_SPIN)
		return flags & (AP_LCB_F_READ | AP_LCB_F_WRITE) ? AP_LOCK_K_RWLOCK :
								  AP_LOCK_K_SPINLOCK;
	if (flags & (AP_LCB_F_READ | AP_LCB_F_WRITE))
		return AP_LOCK_K_RWSEM;
	return flags ? AP_LOCK_K_OTHER : AP_LOCK_K_SEMAPHORE;
}

/* Locks that can be named from the waiter's own task (perf lock does the same). */
static __always_inline __u32 klock_class(__u64 lock, __u32 flags)
{
	struct task_struct *t = bpf_get_current_task_btf();

	if (flags & AP_LCB_F_SPIN) {
		struct sighand_struct *sh = BPF_CORE_READ(t, sighand);
		struct cfs_rq *cfs = BPF_CORE_READ(t, se.cfs_rq);
		struct rq *rq = NULL;

		if (sh && lock == (__u64)&sh->siglock)
			return AP_LCLASS_SIGLOCK;
		/* the waiter's runqueue (the `runqueues` per-CPU symbol needs KALLSYMS_ALL) */
		if (cfs && bpf_core_field_exists(cfs->rq))
			rq = BPF_CORE_READ(cfs, rq);
		if (rq && bpf_core_field_exists(rq->__lock) && lock == (__u64)&rq->__lock)
			return AP_LCLASS_RQ_LOCK;
	} else {
		struct mm_struct *mm = BPF_CORE_READ(t, mm);

		if (mm && lock == (__u64)&mm->mmap_lock)
			return AP_LCLASS_MMAP_LOCK;
	}
	return AP_LCLASS_NONE;
}

SEC("tp_btf/contention_begin")
int BPF_PROG(klock_begin, void *lock, unsigned int flags)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id, zero = 0;
	struct klock_start *cur, s = {};

	if (!task_wanted(id >> 32))
		return 0;
	/* spinning locks cannot sleep: one per CPU at a time */
	if ((flags & (AP_LCB_F_SPIN | AP_LCB_F_MUTEX)) == AP_LCB_F_SPIN) {
		cur = bpf_map_lookup_elem(&klock_cpu, &zero);
		if (!cur)
			return 0;
		if (cur->lock) {
			if (cur->lock != (__u64)lock)
				stat_inc(AP_LOCK_STAT_KLOCK_NESTED);
			return 0;
		}
		cur->ts = bpf_ktime_get_ns();
		cur->lock = (__u64)lock;
		cur->flags = flags;
		cur->lclass = klock_class((__u64)lock, flags);
		stat_inc(AP_LOCK_STAT_KLOCK_BEGIN);
		return 0;
	}
	cur = bpf_map_lookup_elem(&klock_starts, &tid);
	if (cur) {
		/* a mutex reports begin again when it stops spinning and sleeps: keep the first */
		if (cur->lock != (__u64)lock)
			stat_inc(AP_LOCK_STAT_KLOCK_NESTED);
		return 0;
	}
	s.ts = bpf_ktime_get_ns();
	s.lock = (__u64)lock;
	s.flags = flags;
	s.lclass = klock_class((__u64)lock, flags);
	if (bpf_map_update_elem(&klock_starts, &tid, &s, BPF_NOEXIST))
		stat_inc(AP_LOCK_STAT_INFLIGHT_FULL);
	else
		stat_inc(AP_LOCK_STAT_KLOCK_BEGIN);
	return 0;
}

SEC("tp_btf/contention_end")
int BPF_PROG(klock_end, void *lock, int ret)
{
	__u64 id = bpf_get_current_pid_tgid(), now = bpf_ktime_get_ns();
	__u32 tid = (__u32)id, zero = 0;
	struct ap_lock_key key = {};
	struct klock_start *cur, s;
	void *stacks, *waits;
	__u32 slot;

	/* contention_end has no flags: a spinning contention on this CPU comes first, since
	 * a task cannot go to sleep on a lock while it spins on another */
	cur = bpf_map_lookup_elem(&klock_cpu, &zero);
	if (cur && cur->lock) {
		if (cur->lock != (__u64)lock)
			return 0;
		s = *cur;
		cur->lock = 0;
	} else {
		cur = bpf_map_lookup_elem(&klock_starts, &tid);
		if (!cur || cur->lock != (__u64)lock) {
			if (!cur && task_wanted(id >> 32))
				stat_inc(AP_LOCK_STAT_KLOCK_UNMATCHED);
			return 0;
		}
		s = *cur;
		bpf_map_delete_elem(&klock_starts, &tid);
	}

	slot = active_maps(&stacks, &waits);
	key.addr = s.lock;
	key.pid = id >> 32;
	key.tid = tid;
	key.kind = klock_kind(s.flags);
	key.flags = s.flags;
	key.lclass = s.lclass;
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	key.kern_stack = cfg_kernel_stacks ?
		capture_stack(ctx, stacks, 0, AP_LOCK_STAT_KERN_STACK_ERR) : 0;
	if (cfg_per_event) {
		emit_wait(&key, now - s.ts, now, ret, AP_HOLDER_UNKNOWN, slot);
		return 0;
	}
	if (!add_wait(&key, now - s.ts, ret, waits)) /* kernel locks have no holders */
		spill(&key, now - s.ts, now, ret, AP_HOLDER_UNKNOWN, slot, AP_LOCK_EV_WAIT);
	return 0;
}

/* ---- processes: exec and exit of the ones announced (proc_announce.h) ---- */

AP_PROC_EXEC_EXIT_PROGS("tp_btf", lock_exec, lock_exit, false, ap_proc_any)

char LICENSE[] SEC("license") = "Dual BSD/GPL";
