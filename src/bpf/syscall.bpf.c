// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Syscall latency per (process, syscall): count, errors per errno, total/min/max latency and
 * a log2 histogram, aggregated in the kernel.
 *
 * The common path touches only per-CPU arrays, whose lookups the JIT inlines:
 *  - sys_enter writes the start time into this CPU's in-flight slot;
 *  - sys_exit finds it there (same thread, never switched out in between), and adds the call
 *    to this CPU's aggregation cache: a 2-way set-associative array of aggregates indexed by
 *    a hash of (pid, syscall).
 * A call whose thread is switched out (it blocked, or was preempted) is moved by sched_switch
 * from the slot into the thread's task-local storage, where its sys_exit finds it on any CPU.
 * When a set is full, its least recently used aggregate goes to the agent through the ring
 * buffer and the way is reused; at the end the agent reads what is left in the caches. Kernel
 * memory is fixed, nothing is read twice, and a failed eviction loses one call, counted.
 *
 * Per-event mode (cfg_per_event, for filters): every call goes to the agent as one record
 * through the same ring buffer instead of into the cache; the knob is a constant, so the
 * verifier removes that branch when it is off.
 *
 * Slow calls' user stacks (--slow-stacks) are walked with the CFI tables (unwind.h). A process
 * the walker has no tables for is announced to the agent, and its slow call goes to the agent
 * with a stack snapshot, to be unwound and recorded there (proc_announce.h).
 *
 * Filters run at sys_enter: a filtered-out call never takes the slot, and its sys_exit ends
 * after one failed task-storage lookup. The programs are declared raw_tp; the loader turns
 * them into tp_btf (same body, same u64-array context) and keeps raw_tp only as a fallback.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "hist_bits.h"
#include "syscall.h"
#include "regs.h"

/* unwind.h's stack: leaf first, zero tail (the same depth as a slow call's stack) */
struct ap_stack {
	__u64 ips[AP_SYS_STACK_DEPTH];
};
#include "unwind.h"
#include "bpf_stats.h"
#include "stack_store.h" /* stack_scratch (frame-pointer captures) and the hash */
#include "proc_announce.h"
#include "pid_filter.h"

#define EFAULT 14
#define ENOMEM 12
#define EEXIST 17
#define MAX_ERRNO 4095
#define X86_TS_COMPAT 0x0002 /* arch/x86/include/asm/thread_info.h */
#define ARM64_TIF_32BIT 22   /* arch/arm64/include/asm/thread_info.h */

const volatile __u32 cfg_self_tgid = 0; /* the agent: its own calls are not recorded */
const volatile bool cfg_filter_pids_map = false; /* more pids than fit inline */
const volatile __u32 cfg_npids_inline = 0;
const volatile __u32 cfg_pids[AP_SYS_INLINE_PIDS] = {};
const volatile bool cfg_filter_syscalls = false;
const volatile __u32 cfg_ncomms = 0;
const volatile __u64 cfg_comms[AP_SYS_MAX_COMMS][2] = {};
const volatile __u64 cfg_syscall_bits[AP_SYS_FILTER_BITS / 64] = {};
const volatile __u64 cfg_min_latency_ns = 0; /* 0: no slow-call accounting */
const volatile bool cfg_slow_stacks = false;
const volatile bool cfg_count_unmatched = false;
const volatile __u32 cfg_set_mask = 0; /* sets in sys_cache - 1 (a power of two - 1) */
/* Continuous mode: the cache is two halves of 2 x sets ways each (this many entries), and
 * active_slot picks the one calls go into. The agent flips it at an interval's end, waits for
 * the programs in flight, then reads and zeroes the other half: every call lands in exactly
 * one interval. 0: one half, never flipped (one-shot runs read the cache at the end). */
const volatile __u32 cfg_slot_entries = 0;
__u32 active_slot = 0;
const volatile __u64 cfg_wakeup_bytes = 0; /* wake the agent when this much is queued */
/* Every call goes to the agent as its own record instead of into the cache (filters). */
const volatile bool cfg_per_event = false;
/* Key nrs (ABI bits included) of the calls that never return: exit, exit_group, compat ones. */
const volatile __u32 cfg_noreturn[4] = { ~0u, ~0u, ~0u, ~0u };

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ap_sys_inflight);
} sys_inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct ap_sys_inflight);
} sys_spilled SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2); /* 2 ways x sets, set by the loader */
	__type(key, __u32);
	__type(value, struct ap_sys_agg);
} sys_cache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); /* resized by the loader */
} sys_events SEC(".maps");


/* Slow calls' user stacks by id (a 31-bit hash of the frames; a different stack already
 * under the same id is a collision, as a stack trace map's bucket was). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1); /* sized by the loader: 1 when --slow-stacks is off */
	__type(key, __u32);
	__type(value, struct ap_stack);
} sys_stacks SEC(".maps");

AP_BPF_STATS(sys_counters, AP_SYS_STAT_MAX);
AP_BPF_STAT_HELPERS(sys_counters)

/* A fresh cache way; never written. */
static struct ap_sys_agg empty_agg;

static __always_inline __u64 wakeup_flags(void)
{
	return bpf_ringbuf_query(&sys_events, BPF_RB_AVAIL_DATA) >= cfg_wakeup_bytes ?
		       BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

static __always_inline bool syscall_wanted(long id)
{
	if (id < 0 || id >= AP_SYS_FILTER_BITS)
		return false;
	return cfg_syscall_bits[id >> 6] & (1ULL << (id & 63));
}

static __always_inline bool pid_wanted(__u32 tgid)
{
	if (cfg_filter_pids_map)
		return ap_tgid_in_targets(tgid);
	for (__u32 i = 0; i < AP_SYS_INLINE_PIDS; i++) {
		if (i >= cfg_npids_inline)
			break;
		if (cfg_pids[i] == tgid)
			return true;
	}
	return false;
}

static __always_inline bool comm_wanted(void)
{
	__u64 comm[2] = {};

	bpf_get_current_comm(comm, sizeof(comm)); /* zero-padded */
	for (__u32 i = 0; i < AP_SYS_MAX_COMMS; i++) {
		if (i >= cfg_ncomms)
			break;
		if (comm[0] == cfg_comms[i][0] && comm[1] == cfg_comms[i][1])
			return true;
	}
	return false;
}

/* The ABI of the current call: the same number means another syscall for a 32-bit task. */
static __always_inline __u32 abi_bits(void)
{
#if defined(__TARGET_ARCH_x86)
	if (bpf_get_current_task_btf()->thread_info.status & X86_TS_COMPAT)
		return AP_SYS_ABI_COMPAT;
#elif defined(__TARGET_ARCH_arm64)
	if (bpf_get_current_task_btf()->thread_info.flags & (1UL << ARM64_TIF_32BIT))
		return AP_SYS_ABI_COMPAT;
#endif
	return 0;
}

/*
 * This CPU's aggregate of (pid, nr). On a miss the set's least recently used way is sent to
 * the agent and reused. NULL when the eviction failed: the caller's call is lost (counted).
 */
static __always_inline struct ap_sys_agg *agg_of(__u32 pid, __u32 nr, __u64 now)
{
	__u32 h = pid * 0x9e3779b1u ^ nr * 0x85ebca6bu;
	__u32 i0, i1;
	struct ap_sys_agg *a, *b, *victim;
	struct task_struct *task;

	h ^= h >> 15;
	i0 = (h & cfg_set_mask) << 1;
	if (cfg_slot_entries && active_slot)
		i0 += cfg_slot_entries;
	a = bpf_map_lookup_elem(&sys_cache, &i0);
	if (!a)
		return NULL;
	if (a->key.pid == pid && a->key.nr == nr)
		return a;
	i1 = i0 | 1;
	b = bpf_map_lookup_elem(&sys_cache, &i1);
	if (!b)
		return NULL;
	if (b->key.pid == pid && b->key.nr == nr)
		return b;

	victim = a->last_ns <= b->last_ns ? a : b;
	if (victim->key.pid) {
		if (bpf_ringbuf_output(&sys_events, victim, sizeof(*victim), wakeup_flags())) {
			stat_add(AP_SYS_STAT_CALLS_LOST, 1);
			return NULL;
		}
		stat_add(AP_SYS_STAT_EVICTIONS, 1);
	}
	/* updating a per-CPU array from BPF rewrites this CPU's copy only */
	bpf_map_update_elem(&sys_cache, victim == a ? &i0 : &i1, &empty_agg, BPF_ANY);
	victim->kind = AP_SYS_EV_STATS;
	victim->key.pid = pid;
	victim->key.nr = nr;
	task = bpf_get_current_task_btf();
	BPF_CORE_READ_STR_INTO(&victim->comm, task, group_leader, comm);
	return victim;
}

static __always_inline void count_errno(struct ap_sys_agg *a, __u32 err)
{
	struct ap_sys_errno_event *e;

	for (int i = 0; i < AP_SYS_ERRNO_SLOTS; i++) {
		if (a->errnos[i].err == err) {
			a->errnos[i].count += 1;
			return;
		}
		if (!a->errnos[i].err) {
			a->errnos[i].err = err;
			a->errnos[i].count = 1;
			return;
		}
	}
	e = bpf_ringbuf_reserve(&sys_events, sizeof(*e), 0);
	if (!e) {
		stat_add(AP_SYS_STAT_ERRNO_LOST, 1);
		return;
	}
	e->kind = AP_SYS_EV_ERRNO;
	e->pid = a->key.pid;
	e->nr = a->key.nr;
	e->err = err;
	bpf_ringbuf_submit(e, wakeup_flags());
}

/* A walked stack into sys_stacks by id (a 31-bit fold of its hash). Returns the id (>= 0) or
 * -errno (-EEXIST: collision), counted. */
static __always_inline long store_user_stack(const struct ap_stack *st, __u32 n)
{
	struct ap_stack *old;
	__u32 id;
	__u64 h;

	if (!st || !n) {
		stat_add(AP_SYS_STAT_STACK_ERR, 1);
		return -EFAULT;
	}
	h = ap_stack_hash(st, n);
	id = (__u32)(h ^ (h >> 32)) & 0x7fffffff;
	if (!bpf_map_update_elem(&sys_stacks, &id, st, BPF_NOEXIST))
		return id;
	old = bpf_map_lookup_elem(&sys_stacks, &id);
	if (!old) {
		stat_add(AP_SYS_STAT_STACK_ERR, 1);
		return -ENOMEM; /* full */
	}
	for (__u32 i = 0; i < AP_SYS_STACK_DEPTH; i++) {
		if (old->ips[i] != st->ips[i]) {
			stat_add(AP_SYS_STAT_STACK_COLLISION, 1);
			return -EEXIST;
		}
	}
	return id;
}

/* Per-event record of one call (stack_id: its user stack in sys_stacks, <0 none). */
static __always_inline void fill_call(struct ap_sys_call_event *e, __u32 tgid, __u32 tid,
				      __u32 nr, long ret, __u64 delta, __u64 now, __u32 flags,
				      long stack_id)
{
	struct task_struct *task = bpf_get_current_task_btf();

	e->kind = AP_SYS_EV_CALL;
	e->pid = tgid;
	e->tid = tid;
	e->nr = nr;
	e->ret = ret;
	e->latency_ns = delta;
	e->ts_ns = now;
	e->cpu = bpf_get_smp_processor_id();
	e->stack_id = stack_id < 0 ? -1 : (__s32)stack_id;
	e->flags = flags;
	e->pad = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	BPF_CORE_READ_STR_INTO(&e->pcomm, task, group_leader, comm);
}

static __always_inline void emit_slow(void *ctx, struct ap_sys_agg *a, __u64 delta, __u64 now)
{
	struct ap_sys_slow_event *e;
	struct ap_uregs start = {};
	struct ap_sys_deferred *d;
	struct ap_stack *st;
	long id, err; /* err: counted by store_user_stack() */
	bool defer;
	__u32 n;

	st = ap_walk_user_stack(ctx, a->key.pid, &start, &n, &defer, &err);
	d = defer ? ap_defer_reserve(struct ap_sys_deferred) : NULL;
	if (d) {
		/* the slow call's sample, recorded by the agent once unwound (unwind_defer.h) */
		fill_call(&d->ev, a->key.pid, (__u32)bpf_get_current_pid_tgid(), a->key.nr, 0,
			  delta, now, 0, -1);
		d->ev.kind = AP_SYS_EV_SLOW;
		__builtin_memcpy(d->ev.pcomm, a->comm, sizeof(d->ev.pcomm));
		ap_defer_submit(d, &d->snap, a->key.pid, &start);
		return;
	}
	e = bpf_ringbuf_reserve(&sys_events, sizeof(*e), 0);
	if (!e) {
		stat_add(AP_SYS_STAT_SLOW_LOST, 1);
		return;
	}
	id = store_user_stack(st, n);
	e->kind = AP_SYS_EV_SLOW;
	e->pid = a->key.pid;
	e->nr = a->key.nr;
	e->stack_id = id < 0 ? -1 : (__s32)id;
	e->latency_ns = delta;
	__builtin_memcpy(e->comm, a->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, wakeup_flags());
}

/* Per-event mode: one call to the agent. A full ring buffer loses the call (counted). */
static __always_inline void emit_call(void *ctx, __u32 tgid, __u32 tid, __u32 nr, long ret,
				      __u64 delta, __u64 now, __u32 flags)
{
	struct ap_sys_call_event *e;
	struct ap_sys_deferred *d;
	long id = -1;

	if (cfg_slow_stacks && cfg_min_latency_ns && delta >= cfg_min_latency_ns) {
		struct ap_uregs start = {};
		struct ap_stack *st;
		bool defer;
		long err; /* counted by store_user_stack() */
		__u32 n;

		st = ap_walk_user_stack(ctx, tgid, &start, &n, &defer, &err);
		d = defer ? ap_defer_reserve(struct ap_sys_deferred) : NULL;
		if (d) {
			/* the whole call, added by the agent once unwound (unwind_defer.h) */
			fill_call(&d->ev, tgid, tid, nr, ret, delta, now, flags, -1);
			ap_defer_submit(d, &d->snap, tgid, &start);
			return;
		}
		id = store_user_stack(st, n);
	}
	e = bpf_ringbuf_reserve(&sys_events, sizeof(*e), 0);
	if (!e) {
		stat_add(AP_SYS_STAT_CALLS_LOST, 1);
		return;
	}
	fill_call(e, tgid, tid, nr, ret, delta, now, flags, id);
	bpf_ringbuf_submit(e, wakeup_flags());
}

SEC("raw_tp/sys_enter")
int BPF_PROG(sys_enter, struct pt_regs *regs, long id)
{
	struct ap_sys_inflight *s;
	__u64 pid_tgid;
	__u32 tgid, nr, zero = 0;

	if (cfg_filter_syscalls && !syscall_wanted(id))
		return 0;
	pid_tgid = bpf_get_current_pid_tgid();
	tgid = pid_tgid >> 32;
	if (tgid == cfg_self_tgid)
		return 0;
	if (cfg_filter_pids && !pid_wanted(tgid))
		return 0;
	if (cfg_ncomms && !comm_wanted())
		return 0;
	if (id < 0) /* not a syscall: a tracer or seccomp cancelled it */
		return 0;
	nr = (__u32)id | abi_bits();
	if (cfg_filter_syscalls && (nr & AP_SYS_ABI_COMPAT)) /* --syscall names native calls */
		return 0;

	if (nr == cfg_noreturn[0] || nr == cfg_noreturn[1] || nr == cfg_noreturn[2] ||
	    nr == cfg_noreturn[3]) {
		struct ap_sys_agg *a;

		if (cfg_per_event) {
			emit_call(ctx, tgid, (__u32)pid_tgid, nr, 0, 0, bpf_ktime_get_ns(),
				  AP_SYS_CALL_NORETURN);
			return 0;
		}
		a = agg_of(tgid, nr, bpf_ktime_get_ns());

		if (a)
			a->noreturn += 1;
		return 0;
	}

	s = bpf_map_lookup_elem(&sys_inflight, &zero);
	if (!s)
		return 0;
	/* the owner goes in last: sched_switch must never see a half-written slot as ours */
	s->tid = 0;
	barrier();
	s->nr = nr;
	s->tgid = tgid;
	s->start_ns = bpf_ktime_get_ns();
	barrier();
	s->tid = (__u32)pid_tgid;
	return 0;
}

SEC("raw_tp/sys_exit")
int BPF_PROG(sys_exit, struct pt_regs *regs, long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid, zero = 0, tgid, nr;
	struct ap_sys_inflight *s, *t;
	struct ap_sys_agg *a;
	__u64 start, now, delta;

	s = bpf_map_lookup_elem(&sys_inflight, &zero);
	if (!s)
		return 0;
	if (s->tid == tid) {
		start = s->start_ns;
		nr = s->nr;
		tgid = s->tgid;
		s->tid = 0;
	} else {
		/* a filtered-out process never has a call in flight: spare it the lookup */
		if (cfg_filter_pids && !pid_wanted(pid_tgid >> 32))
			return 0;
		/* switched out since sys_enter (or not traced): look for the spilled call */
		t = bpf_task_storage_get(&sys_spilled, bpf_get_current_task_btf(), NULL, 0);
		if (!t || !t->start_ns ||
		    (t->nr & ~AP_SYS_ABI_COMPAT) != (__u32)ap_regs_syscall_nr(regs)) {
			if (cfg_count_unmatched)
				stat_add(AP_SYS_STAT_UNMATCHED_EXIT, 1);
			return 0;
		}
		start = t->start_ns;
		nr = t->nr;
		tgid = t->tgid;
		t->start_ns = 0;
	}
	now = bpf_ktime_get_ns();
	delta = now - start;
	if (cfg_per_event) { /* a constant: the verifier prunes this branch when off */
		emit_call(ctx, tgid, tid, nr, ret, delta, now, 0);
		return 0;
	}

	a = agg_of(tgid, nr, now);
	if (!a)
		return 0;
	/* per-CPU value: plain read-modify-write */
	if (!a->count || delta < a->min_ns)
		a->min_ns = delta;
	if (delta > a->max_ns)
		a->max_ns = delta;
	a->count += 1;
	a->total_ns += delta;
	a->last_ns = now;
	a->hist[ap_log2_u64(delta) & (AP_SYS_HIST_SLOTS - 1)] += 1;

	if (ret < 0 && ret >= -MAX_ERRNO) {
		a->errors += 1;
		count_errno(a, (__u32)-ret);
	}
	if (cfg_min_latency_ns && delta >= cfg_min_latency_ns) {
		a->slow += 1;
		if (cfg_slow_stacks)
			emit_slow(ctx, a, delta, now);
	}
	return 0;
}

/* Runs as the outgoing thread: move its call in flight, if any, into its task storage. */
SEC("raw_tp/sched_switch")
int BPF_PROG(sys_switch)
{
	struct ap_sys_inflight *s, *t;
	__u32 zero = 0;

	s = bpf_map_lookup_elem(&sys_inflight, &zero);
	if (!s || !s->tid)
		return 0;
	if (s->tid != (__u32)bpf_get_current_pid_tgid()) {
		/* its owner left this CPU unseen (a missed switch): the slot cannot be trusted */
		s->tid = 0;
		stat_add(AP_SYS_STAT_STALE_INFLIGHT, 1);
		return 0;
	}
	t = bpf_task_storage_get(&sys_spilled, bpf_get_current_task_btf(), NULL,
				 BPF_LOCAL_STORAGE_GET_F_CREATE);
	s->tid = 0;
	if (!t) {
		stat_add(AP_SYS_STAT_TASK_STORAGE_ERR, 1);
		return 0;
	}
	t->start_ns = s->start_ns;
	t->nr = s->nr;
	t->tgid = s->tgid;
	stat_add(AP_SYS_STAT_SPILLED, 1);
	return 0;
}

/* Exec and exit of the processes announced (proc_announce.h): --slow-stacks only. */
AP_PROC_EXEC_EXIT_PROGS("raw_tp", sys_exec, sys_exit_proc, false, ap_proc_any)

char LICENSE[] SEC("license") = "Dual BSD/GPL";
