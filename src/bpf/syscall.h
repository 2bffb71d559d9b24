/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Shared by syscall.bpf.c and its loader. Fixed-width fields only, largest first, padding named. */
#ifndef AP_BPF_SYSCALL_H
#define AP_BPF_SYSCALL_H

#include "unwind_defer.h" /* the same rules; includes nothing */

#define AP_SYS_COMM_LEN 16
/* Log2 latency slots: AP_HIST_SLOTS of hist_bits.h (the loader asserts they agree). */
#define AP_SYS_HIST_SLOTS 64
/* Syscall filter bitmap: native numbers below this (x86_64 and arm64 have fewer than 512). */
#define AP_SYS_FILTER_BITS 512
#define AP_SYS_MAX_COMMS 16
/* --pid lists up to this long are compared inline; longer ones use a hash map. */
#define AP_SYS_INLINE_PIDS 8
/* Errnos counted inside an aggregate; more distinct ones go out as single events. */
#define AP_SYS_ERRNO_SLOTS 4
/* User frames kept per slow-call stack. */
#define AP_SYS_STACK_DEPTH 127

/* ABI bits in ap_sys_key.nr (same values as src/lib/syscalls.h). */
#define AP_SYS_ABI_COMPAT 0x80000000u /* 32-bit compat task */
#define AP_SYS_ABI_X32 0x40000000u    /* x86_64 x32 ABI (__X32_SYSCALL_BIT) */

/* Ring buffer record kinds (first field of every record). */
enum ap_sys_event_kind {
	AP_SYS_EV_STATS = 1, /* an aggregate evicted from the per-CPU cache: struct ap_sys_agg */
	AP_SYS_EV_ERRNO = 2, /* one failed call whose errno did not fit the aggregate */
	AP_SYS_EV_SLOW = 3,  /* one slow call with its user stack (--slow-stacks) */
	AP_SYS_EV_CALL = 4,  /* per-event mode: one call, instead of the cache (filters) */
};

/* Aggregation key: (process, syscall). */
struct ap_sys_key {
	__u32 pid; /* thread group id; 0 = empty cache way */
	__u32 nr;  /* syscall number | AP_SYS_ABI_* */
};

struct ap_sys_errno_slot {
	__u32 err; /* positive errno; 0 = free */
	__u32 pad;
	__u64 count;
};

/*
 * Aggregate of one key on one CPU: a way of the per-CPU cache, and (unchanged) the record
 * that carries it to the agent when it is evicted. `count` calls returned and the histogram
 * sums to it; `noreturn` calls never return (exit, exit_group) and carry no latency.
 */
struct ap_sys_agg {
	__u32 kind; /* AP_SYS_EV_STATS */
	__u32 pad;
	__u64 count;
	__u64 errors;	/* returns in [-4095, -1] */
	__u64 total_ns;
	__u64 min_ns;	/* valid when count > 0 */
	__u64 max_ns;
	__u64 slow;	/* calls with latency >= cfg_min_latency_ns (when set) */
	__u64 noreturn;
	__u64 last_ns;	/* last use, for LRU eviction inside a set */
	__u64 hist[AP_SYS_HIST_SLOTS]; /* log2(latency ns) */
	struct ap_sys_errno_slot errnos[AP_SYS_ERRNO_SLOTS];
	struct ap_sys_key key;
	char comm[AP_SYS_COMM_LEN]; /* process (group leader) name when the way was filled */
};

struct ap_sys_errno_event {
	__u32 kind; /* AP_SYS_EV_ERRNO */
	__u32 pid;
	__u32 nr;
	__u32 err;
};

/* Ring buffer records start with their kind; the fields after it stay naturally aligned. */
struct ap_sys_slow_event {
	__u32 kind; /* AP_SYS_EV_SLOW */
	__u32 pid;
	__u32 nr;
	__s32 stack_id; /* <0: capture failed */
	__u64 latency_ns;
	char comm[AP_SYS_COMM_LEN];
};

/* ap_sys_call_event.flags */
#define AP_SYS_CALL_NORETURN 0x1u /* exit, exit_group: counted at entry, no latency */

/*
 * Per-event mode (a filter must see every call): each call goes to the agent as one record,
 * which aggregates the ones the filter keeps into the same table the cache fills.
 */
struct ap_sys_call_event {
	__u32 kind; /* AP_SYS_EV_CALL */
	__u32 pid;
	__u32 tid;
	__u32 nr;	    /* syscall number | AP_SYS_ABI_* */
	__s64 ret;	    /* return value; 0 for calls that never return */
	__u64 latency_ns;   /* entry to exit; 0 for calls that never return */
	__u64 ts_ns;	    /* at exit (entry for calls that never return) */
	__u32 cpu;
	__s32 stack_id;	    /* slow call with --slow-stacks: its user stack in sys_stacks; <0 none */
	__u32 flags;	    /* AP_SYS_CALL_* */
	__u32 pad;
	char comm[AP_SYS_COMM_LEN];  /* the calling thread */
	char pcomm[AP_SYS_COMM_LEN]; /* its process (group leader), as the aggregates keep it */
};

/*
 * A slow call whose user stack the in-kernel walker could not finish because its process's
 * tables were not loaded yet (its first slow calls): the record that would have carried it,
 * then the register + stack snapshot the agent unwinds it from (unwind_defer.h). ev.kind says
 * which record: AP_SYS_EV_CALL (per-event mode, the whole call) or AP_SYS_EV_SLOW (the slow
 * call's profile sample only: pid, nr, latency_ns and pcomm, the aggregate's comm, are set;
 * the call itself is in the cache). ev.stack_id is -1.
 */
struct ap_sys_deferred {
	struct ap_sys_call_event ev;
	struct ap_user_snapshot snap;
};

/* The call in flight on a CPU (per-CPU array), or spilled to task storage when its thread
 * was switched out. */
struct ap_sys_inflight {
	__u64 start_ns;
	__u32 tid;  /* owner; 0 = free */
	__u32 tgid;
	__u32 nr;
	__u32 pad;
};

/* Counters, one slot each in the per-CPU `sys_counters` array; reported by the agent. Process
 * events and deferred slow calls count in `proc_stats` (unwind_defer.h). */
enum ap_sys_stat {
	AP_SYS_STAT_SPILLED = 0,      /* calls whose thread was switched out (blocking calls) */
	AP_SYS_STAT_TASK_STORAGE_ERR, /* spill failed: no task storage; call lost */
	AP_SYS_STAT_UNMATCHED_EXIT,   /* exit of a call that began before tracing (or a fork
				       * child's first return); counted only without filters */
	AP_SYS_STAT_STALE_INFLIGHT,   /* in-flight slot of a thread no longer on the CPU */
	AP_SYS_STAT_EVICTIONS,	      /* aggregates sent to the agent to make room */
	AP_SYS_STAT_CALLS_LOST,	      /* calls dropped: ring buffer full at eviction */
	AP_SYS_STAT_ERRNO_LOST,	      /* errnos dropped (the calls still count as errors) */
	AP_SYS_STAT_SLOW_LOST,	      /* slow-call stack events dropped */
	AP_SYS_STAT_STACK_ERR,	      /* user stack capture failed */
	AP_SYS_STAT_STACK_COLLISION,  /* stack map bucket held by another stack */
	AP_SYS_STAT_MAX,
};

#endif
