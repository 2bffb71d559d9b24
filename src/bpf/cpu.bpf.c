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
#include "regs.h"
#include "unwind.h"
#include "bpf_stats.h"
#include "stack_store.h"
#include "proc_announce.h"
#include "pid_filter.h"

const volatile bool cfg_include_idle = false;
const volatile bool cfg_user_stacks = true;
const volatile bool cfg_kernel_stacks = true;
/* Send every sample to the agent (for user filters) instead of counting it in the kernel. */
const volatile bool cfg_per_event = false;

/* Which counts/stacks pair samples go to; flipped by the agent when it drains. */
__u32 active_slot = 0;


struct stack_map {
	/* Preallocated: allocating in the sampling interrupt can fail when the allocator's
	 * per-CPU cache runs dry, and a lost stack is worse than ~1 KiB per entry. */
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096); /* resized by the loader */
	__type(key, __u64);	   /* ap_stack_hash() of the frames */
	__type(value, struct ap_stack);
};

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

/* Per-event mode only (resized to a page when unused). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1024 * 1024);
} sample_events SEC(".maps");

AP_BPF_STATS(cpu_stats, AP_CPU_STAT_MAX);
AP_BPF_STAT_HELPERS(cpu_stats)

static __always_inline bool pid_wanted(__u32 tgid)
{
	return !cfg_filter_pids || ap_tgid_in_targets(tgid);
}

/* The user stack: walked with the CFI tables (unwind.h), or by the kernel's frame-pointer
 * walk when tables are off. `start` gets the user registers; *retry is set when the walk
 * stopped only because tables were not loaded yet. */
static __always_inline __u64 capture_user_stack(struct bpf_perf_event_data *ctx, void *stacks,
						__u32 tgid, struct ap_uregs *start, bool *retry)
{
	bpf_user_pt_regs_t *regs = &ctx->regs;
	__u32 n, status, flags;
	struct ap_stack *st;

	if (!cfg_unwind_tables)
		return ap_capture_stack(ctx, stacks, BPF_F_USER_STACK, &cpu_stats,
					AP_CPU_STAT_USER_STACK_ERR, AP_CPU_STAT_STACKS_FULL);
	/* a sample in kernel mode (pc 0 here) walks from the user registers saved at kernel
	 * entry */
	if (ap_regs_user_mode(regs)) {
		start->pc = PT_REGS_IP(regs);
		start->sp = PT_REGS_SP(regs);
		start->bp = PT_REGS_FP(regs);
	}
	st = ap_unwind_user(start, tgid, &n, &status, &flags);
	/* a pc outside its mappings, or no tables although announced: re-scan (the sample's
	 * own announcement, below, covers a process not seen yet) */
	if ((flags & AP_UNWIND_F_UNKNOWN_PC) ||
	    ((flags & AP_UNWIND_F_NO_TABLES) && bpf_map_lookup_elem(&seen_pids, &tgid)))
		ap_proc_request_rescan(tgid);
	*retry = ap_proc_should_defer(st, status, flags);
	if (!st || !n)
		return 0;
	return ap_store_stack(stacks, st, n, (__u64)status << AP_UNWIND_STATUS_SHIFT,
			      AP_UNWIND_STATUS_SHIFT, &cpu_stats, AP_CPU_STAT_STACKS_FULL);
}

/* Hand a sample whose user stack cannot be unwound yet to the agent, with the top of its
 * stack. Returns true when sent: the caller does not count it then. */
static __always_inline bool defer_sample(const struct ap_cpu_key *key,
					 const struct ap_uregs *start)
{
	struct ap_cpu_deferred *d = ap_defer_reserve(struct ap_cpu_deferred);

	if (!d)
		return false;
	d->key = *key;
	d->key.user_stack = 0;
	/* the kernel stack the capture left in the scratch (valid when key->kern_stack is) */
	ap_copy_captured_stack(d->kstack);
	d->ts_ns = bpf_ktime_get_ns();
	d->cpu = bpf_get_smp_processor_id();
	d->pad = 0;
	ap_defer_submit(d, &d->snap, key->pid, start);
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
		ap_capture_stack(ctx, stacks, 0, &cpu_stats, AP_CPU_STAT_KERN_STACK_ERR,
				 AP_CPU_STAT_STACKS_FULL) : 0;
	key.user_stack = cfg_user_stacks && tgid ?
		capture_user_stack(ctx, stacks, tgid, &start, &retry) : 0;

	if (cfg_defer_unwind && retry && defer_sample(&key, &start))
		; /* counted by the agent once unwound */
	else if (cfg_per_event)
		emit_sample(&key, slot);
	else
		count_sample(counts, &key);

	if (tgid)
		ap_proc_announce(tgid);
	return 0;
}

/* Exec and exit of processes (proc_announce.h). An exec of a wanted process is told to the
 * agent at once, so the new image is snapshotted before its next sample re-announces it;
 * an exit is one event per process, when its main thread exits, if it was ever sampled. */
AP_PROC_EXEC_EXIT_PROGS("tp_btf", cpu_exec, cpu_exit, true, pid_wanted)

char LICENSE[] SEC("license") = "Dual BSD/GPL";
