/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Shared by syscall.bpf.c and its loader. Fixed-width fields only, largest first, padding named. */
#ifndef AP_BPF_SYSCALL_H
#define AP_BPF_SYSCALL_H

#define AP_SYS_COMM_LEN 16
/* Log2 latency slots: AP_HIST_SLOTS of hist_bits.h (the loader asserts they agree). */
#define AP_SYS_HIST_SLOTS 64
/* Syscall filter bitmap: native numbers below this (x86_64 and arm64 have fewer than 512). */
#define AP_SYS_FILTER_BITS 512
#define AP_SYS_MAX_COMMS 16
/* User frames kept per slow-call stack. */
#define AP_SYS_STACK_DEPTH 127

/* ABI bits in ap_sys_key.nr (same values as src/lib/syscalls.h). */
#define AP_SYS_ABI_COMPAT 0x80000000u /* 32-bit compat task */
#define AP_SYS_ABI_X32 0x40000000u    /* x86_64 x32 ABI (__X32_SYSCALL_BIT) */

/* Aggregation key: one entry per (process, syscall). */
struct ap_sys_key {
	__u32 pid; /* thread group id */
	__u32 nr;  /* syscall number | AP_SYS_ABI_* */
};

/*
 * Per-CPU aggregate of one key. `count` calls returned (the histogram sums to it); `noreturn`
 * calls never return (exit, exit_group) and carry no latency.
 */
struct ap_sys_stats {
	__u64 count;
	__u64 errors;	/* returns in [-4095, -1] */
	__u64 total_ns;
	__u64 min_ns;	/* valid when count > 0 */
	__u64 max_ns;
	__u64 slow;	/* calls with latency >= cfg_min_latency_ns (when set) */
	__u64 noreturn;
	__u64 hist[AP_SYS_HIST_SLOTS]; /* log2(latency ns) */
	char comm[AP_SYS_COMM_LEN]; /* process (group leader) name, set when the key is created */
};

/* Errors per errno: updated only on failing calls, so the hot path stays small. */
struct ap_sys_err_key {
	__u32 pid;
	__u32 nr;
	__u32 err; /* positive errno */
	__u32 pad;
};

/* Slow calls per user stack (--slow-stacks). */
struct ap_sys_slow_key {
	__u32 pid;
	__u32 nr;
	__s32 stack_id; /* <0: capture failed */
	__u32 pad;
};

struct ap_sys_slow_val {
	__u64 count;
	__u64 total_ns;
};

/* Per-task state, in task-local storage: the call in flight. */
struct ap_sys_task {
	__u64 start_ns; /* 0: no call in flight that we saw begin */
	__u32 nr;
	__u32 pad;
};

/* Counters, one slot each in the per-CPU `sys_counters` array; reported by the agent. */
enum ap_sys_stat {
	AP_SYS_STAT_ENTERS = 0,	  /* sys_enter events that passed the filters */
	AP_SYS_STAT_TASK_STORAGE_ERR, /* no task storage for the start time: call lost */
	AP_SYS_STAT_UNMATCHED_EXIT,   /* exit of a call that began before tracing (or a fork
				       * child's first return); only counted without filters */
	AP_SYS_STAT_STATS_FULL,	  /* aggregation map full: call lost */
	AP_SYS_STAT_ERRNO_FULL,	  /* errno map full: errno of a failed call lost (still
				       * counted in errors) */
	AP_SYS_STAT_SLOW_FULL,	  /* slow-stack map full: slow call's stack lost */
	AP_SYS_STAT_STACK_ERR,	  /* user stack capture failed */
	AP_SYS_STAT_STACK_COLLISION, /* stack map bucket held by another stack */
	AP_SYS_STAT_MAX,
};

#endif
