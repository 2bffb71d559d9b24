// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * CPU sampling: a perf_event program on a cpu-clock software event per CPU. Each sample is
 * counted in the kernel per (pid, tid, comm, user stack, kernel stack), so the agent's cost
 * does not grow with run length.
 *
 * Draining without losing samples: counts and stacks are double-buffered. The agent flips
 * `active_slot`, waits for in-flight programs to finish, then reads and clears the inactive
 * pair while new samples go to the other one.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "cpu.h"
#include "unwind.h"

#define EFAULT 14

const volatile bool cfg_filter_pids = false;
const volatile bool cfg_include_idle = false;
const volatile bool cfg_user_stacks = true;
const volatile bool cfg_kernel_stacks = true;
/* Send every sample to the agent (for user filters) instead of counting it in the kernel. */
const volatile bool cfg_per_event = false;
/* Samples whose process's unwind tables are not in yet go to the agent to be unwound later. */
const volatile bool cfg_defer_unwind = false;

/* Which counts/stacks pair samples go to; flipped by the agent when it drains. */
__u32 active_slot = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);   /* tgid */
	__type(value, __u8);
} target_pids SEC(".maps");

struct stack_map {
	/* Preallocated: allocating in the sampling interrupt can fail when the allocator's
	 * per-CPU cache runs dry, and a lost stack is worse than ~1 KiB per entry. */
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096); /* resized by the loader */
	__type(key, __u64);	   /* stack_hash() of the frames */
	__type(value, struct ap_stack);
};

/* Scratch space for capturing a stack: too big for the 512-byte BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ap_stack);
} stack_scratch SEC(".maps");

struct count_map {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096); /* resized by the loader */
	__type(key, struct ap_cpu_key);
	__type(value, __u64);
};

struct stack_map stacks_0 SEC(".maps");
struct stack_map stacks_1 SEC(".maps");
struct count_map counts_0 SEC(".maps");
struct count_map counts_1 SEC(".maps");

/* Processes already announced to the agent. LRU so that it never fills up. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} seen_pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} proc_events SEC(".maps");

/* Per-event mode only (resized to a page when unused). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1024 * 1024);
} sample_events SEC(".maps");

/* Samples to unwind in the agent (struct ap_cpu_deferred, ~9 KiB each). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 512 * 1024);
} unwind_deferred SEC(".maps");

/* When each process last asked the agent to re-scan its mappings (AP_PROC_UNKNOWN_PC). */
#define RESCAN_INTERVAL_NS (100ULL * 1000 * 1000)
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024); /* an evicted process may just ask again sooner */
	__type(key, __u32);
	__type(value, __u64);
} unwind_rescan SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, AP_CPU_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} cpu_stats SEC(".maps");

static __always_inline void stat_inc(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&cpu_stats, &which);

	if (v)
		*v += 1; /* per-CPU slot: no atomic needed */
}

static __always_inline void emit_proc_event(__u32 kind, __u32 pid)
{
	struct ap_proc_event *e = bpf_ringbuf_reserve(&proc_events, sizeof(*e), 0);

	if (!e) {
		stat_inc(AP_CPU_STAT_EVENTS_DROPPED);
		return;
	}
	e->ts_ns = bpf_ktime_get_ns();
	e->kind = kind;
	e->pid = pid;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
}

static __always_inline bool pid_wanted(__u32 tgid)
{
	return !cfg_filter_pids || bpf_map_lookup_elem(&target_pids, &tgid);
}

/* FNV-1a over the frames; 0 is reserved for "no stack". */
static __always_inline __u64 stack_hash(const struct ap_stack *st, __u32 n)
{
	__u64 h = 0xcbf29ce484222325ULL;

	for (__u32 i = 0; i < AP_MAX_STACK_DEPTH; i++) {
		if (i >= n)
			break;
		h ^= st->ips[i];
		h *= 0x100000001b3ULL;
	}
	return h ? h : 1;
}

/* Store a zero-tailed stack of n frames in `stacks`; returns its id (hash), 0 on failure.
 * `tag` goes into the top bits of the id (user stacks: how the walk ended). */
static __always_inline __u64 store_stack(void *stacks, struct ap_stack *st, __u32 n, __u64 tag)
{
	__u64 h = stack_hash(st, n);

	if (tag) {
		h = (h & ((1ULL << AP_UNWIND_STATUS_SHIFT) - 1)) | tag;
		h = h ? h : 1;
	}
	if (bpf_map_update_elem(stacks, &h, st, BPF_NOEXIST) &&
	    !bpf_map_lookup_elem(stacks, &h)) {
		stat_inc(AP_CPU_STAT_STACKS_FULL);
		return 0;
	}
	return h;
}

/* Capture the current kernel or user stack into `stacks`; returns its hash, 0 if none. */
static __always_inline __u64 capture_stack(void *ctx, void *stacks, __u64 flags, __u32 err_stat)
{
	__u32 zero = 0;
	struct ap_stack *st = bpf_map_lookup_elem(&stack_scratch, &zero);
	long len;

	if (!st)
		return 0;
	/* the helper zeroes the unused tail, so equal stacks are equal values */
	len = bpf_get_stack(ctx, st->ips, sizeof(st->ips), flags);
	if (len <= 0) {
		if (len != -EFAULT && len != 0) /* -EFAULT: no stack of this kind here */
			stat_inc(err_stat);
		return 0;
	}
	return store_stack(stacks, st, (__u32)len / sizeof(__u64), 0);
}

/* Ask the agent to re-read the mappings of a process that ran code outside all of them
 * (a library it dlopen()ed), at most every RESCAN_INTERVAL_NS. */
static __always_inline void request_rescan(__u32 tgid)
{
	__u64 now = bpf_ktime_get_ns(), *last = bpf_map_lookup_elem(&unwind_rescan, &tgid);

	if (last && now - *last < RESCAN_INTERVAL_NS)
		return;
	bpf_map_update_elem(&unwind_rescan, &tgid, &now, BPF_ANY);
	emit_proc_event(AP_PROC_UNKNOWN_PC, tgid);
}

/* The user stack: walked with the CFI tables (unwind.h), or by the kernel's frame-pointer
 * walk when tables are off. `start` gets the user registers; *retry is set when the walk
 * stopped only because tables were not loaded yet. */
static __always_inline __u64 capture_user_stack(struct bpf_perf_event_data *ctx, void *stacks,
						__u32 tgid, struct ap_uregs *start, bool *retry)
{
	struct pt_regs *regs = (struct pt_regs *)&ctx->regs;
	__u32 n, status, flags;
	struct ap_stack *st;
	__u64 cs;

	if (!cfg_unwind_tables)
		return capture_stack(ctx, stacks, BPF_F_USER_STACK, AP_CPU_STAT_USER_STACK_ERR);
	/* the context allows only 8-byte loads, and cs is a 16-bit field */
	cs = *(volatile __u64 *)((void *)regs + __builtin_offsetof(struct pt_regs, cs));
	/* a sample in kernel mode (pc 0 here) walks from the user registers saved at kernel
	 * entry */
	if ((cs & 3) == 3) {
		start->pc = regs->ip;
		start->sp = regs->sp;
		start->bp = regs->bp;
	}
	st = ap_unwind_user(start, tgid, &n, &status, &flags);
	/* a pc outside its mappings, or a process that was announced but has no tables (its
	 * announcement was lost, or its maps were unreadable then) */
	if ((flags & AP_UNWIND_F_UNKNOWN_PC) ||
	    ((flags & AP_UNWIND_F_NO_TABLES) && bpf_map_lookup_elem(&seen_pids, &tgid)))
		request_rescan(tgid);
	*retry = st && status != AP_UNWIND_COMPLETE && (flags & AP_UNWIND_F_RETRY);
	if (!st || !n)
		return 0;
	return store_stack(stacks, st, n, (__u64)status << AP_UNWIND_STATUS_SHIFT);
}

/* Hand a sample whose user stack cannot be unwound yet to the agent, with the top of its
 * stack. Returns true when sent: the caller does not count it then. */
static __always_inline bool defer_sample(const struct ap_cpu_key *key,
					 const struct ap_uregs *start)
{
	struct ap_cpu_deferred *d = bpf_ringbuf_reserve(&unwind_deferred, sizeof(*d), 0);
	__u32 zero = 0, i;
	struct ap_stack *ks;

	if (!d) {
		stat_inc(AP_CPU_STAT_UNWIND_DEFER_DROPPED);
		return false;
	}
	d->key = *key;
	d->key.user_stack = 0;
	d->key.kern_stack = 0;
	/* the kernel stack capture_stack() left in the scratch */
	ks = bpf_map_lookup_elem(&stack_scratch, &zero);
	d->kstack[0] = 0;
	if (key->kern_stack && ks)
		bpf_probe_read_kernel(d->kstack, sizeof(d->kstack), ks->ips);
	d->pc = start->pc;
	d->sp = start->sp;
	d->bp = start->bp;
	d->ts_ns = bpf_ktime_get_ns();
	d->cpu = bpf_get_smp_processor_id();
	if (!bpf_probe_read_user(d->stack, sizeof(d->stack), (const void *)start->sp)) {
		d->stack_len = sizeof(d->stack);
	} else {
		/* the stack ends within the window: copy what there is, 1 KiB at a time */
		for (i = 0; i < AP_CPU_DEFER_STACK / 1024; i++)
			if (bpf_probe_read_user(d->stack + i * 1024, 1024,
						(const void *)(start->sp + i * 1024)))
				break;
		d->stack_len = i * 1024;
	}
	bpf_ringbuf_submit(d, 0);
	stat_inc(AP_CPU_STAT_UNWIND_DEFERRED);
	return true;
}

static __always_inline void count_sample(void *counts, const struct ap_cpu_key *key)
{
	__u64 one = 1, *count = bpf_map_lookup_elem(counts, key);

	if (count) {
		__sync_fetch_and_add(count, 1);
	} else if (bpf_map_update_elem(counts, key, &one, BPF_NOEXIST)) {
		/* lost a race with another CPU inserting the same key, or the map is full */
		count = bpf_map_lookup_elem(counts, key);
		if (count)
			__sync_fetch_and_add(count, 1);
		else
			stat_inc(AP_CPU_STAT_COUNTS_FULL);
	}
}

static __always_inline void emit_sample(const struct ap_cpu_key *key, __u32 slot)
{
	struct ap_cpu_event *e = bpf_ringbuf_reserve(&sample_events, sizeof(*e), 0);

	if (!e) {
		stat_inc(AP_CPU_STAT_SAMPLE_EVENTS_DROPPED);
		return;
	}
	e->key = *key;
	e->ts_ns = bpf_ktime_get_ns();
	e->cpu = bpf_get_smp_processor_id();
	e->slot = slot;
	bpf_ringbuf_submit(e, 0);
}

SEC("perf_event")
int cpu_sample(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = (__u32)id;
	struct ap_cpu_key key = {};
	struct ap_uregs start = {};
	__u32 slot = active_slot;
	void *stacks, *counts;
	bool retry = false;
	__u8 yes = 1;

	if (tid == 0 && !cfg_include_idle) {
		stat_inc(AP_CPU_STAT_IDLE);
		return 0;
	}
	if (!pid_wanted(tgid)) {
		stat_inc(AP_CPU_STAT_FILTERED);
		return 0;
	}
	stat_inc(AP_CPU_STAT_SAMPLES);

	if (slot) {
		stacks = &stacks_1;
		counts = &counts_1;
	} else {
		stacks = &stacks_0;
		counts = &counts_0;
	}

	key.pid = tgid;
	key.tid = tid;
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	key.kern_stack = cfg_kernel_stacks ?
		capture_stack(ctx, stacks, 0, AP_CPU_STAT_KERN_STACK_ERR) : 0;
	key.user_stack = cfg_user_stacks && tgid ?
		capture_user_stack(ctx, stacks, tgid, &start, &retry) : 0;

	if (cfg_defer_unwind && retry && defer_sample(&key, &start))
		; /* counted by the agent once unwound */
	else if (cfg_per_event)
		emit_sample(&key, slot);
	else
		count_sample(counts, &key);

	if (tgid && !bpf_map_lookup_elem(&seen_pids, &tgid)) {
		bpf_map_update_elem(&seen_pids, &tgid, &yes, BPF_ANY);
		emit_proc_event(AP_PROC_NEW, tgid);
	}
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(cpu_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (!pid_wanted(tgid))
		return 0;
	/* the next sample re-announces it; tell the agent now so the new image is snapshotted */
	bpf_map_delete_elem(&seen_pids, &tgid);
	emit_proc_event(AP_PROC_EXEC, tgid);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(cpu_exit, struct task_struct *p)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;

	/* one event per process: when its main thread exits, and only if it was ever sampled */
	if ((__u32)id != tgid || !bpf_map_lookup_elem(&seen_pids, &tgid))
		return 0;
	bpf_map_delete_elem(&seen_pids, &tgid);
	emit_proc_event(AP_PROC_EXIT, tgid);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
