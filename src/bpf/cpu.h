/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Shared by cpu.bpf.c and its loader. Fixed-width fields only, largest first, padding named. */
#ifndef AP_BPF_CPU_H
#define AP_BPF_CPU_H

#include "unwind_defer.h" /* the same rules; includes nothing */

#define AP_TASK_COMM_LEN 16
/* Frames kept per stack (kernel.perf_event_max_stack defaults to 127). */
#define AP_MAX_STACK_DEPTH 127

/*
 * Stacks are stored in a hash map keyed by a 64-bit hash of their frames, computed in BPF:
 * unlike a stack trace map (keyed by bucket), two different stacks practically never collide.
 */
struct ap_stack {
	__u64 ips[AP_MAX_STACK_DEPTH]; /* leaf first; unused tail zeroed */
};

/* In-kernel aggregation key: one count per (process, thread, user stack, kernel stack). */
struct ap_cpu_key {
	__u64 user_stack; /* stack hash; 0: no user stack (kernel thread, or capture failed) */
	__u64 kern_stack; /* stack hash; 0: no kernel stack (sample taken in user mode) */
	__u32 pid;	  /* thread group id */
	__u32 tid;
	char comm[AP_TASK_COMM_LEN];
};

/*
 * Per-event delivery (when a filter must see every sample): the sample's key and the slot
 * whose stack map holds its stacks, instead of a count in the kernel.
 */
struct ap_cpu_event {
	struct ap_cpu_key key;
	__u64 ts_ns;
	__u32 cpu;
	__u32 slot; /* stacks are in stacks_<slot> until the drain that flips away from it */
};

/*
 * A sample the in-kernel walker could not finish because its process's tables were not
 * loaded yet (a new process, a library just mapped, a binary still being compiled): it goes
 * to the agent with the top of its user stack (unwind_defer.h) and is unwound there, with the
 * same tables and step function, once they are in (docs/unwinding.md). Not counted in the
 * kernel.
 */
struct ap_cpu_deferred {
	struct ap_cpu_key key;		  /* user_stack 0; kern_stack != 0: kstack is valid */
	__u64 kstack[AP_MAX_STACK_DEPTH]; /* kernel stack, leaf first, zero tail */
	__u64 ts_ns;			  /* when sampled (bpf_ktime_get_ns) */
	__u32 cpu;
	__u32 pad;
	/* the agent keeps everything above until the replay */
	struct ap_user_snapshot snap;
};

/* Failure counters, one slot each in the per-CPU `cpu_stats` array; reported by the agent.
 * Process events and deferred samples count in `proc_stats` (unwind_defer.h). */
enum ap_cpu_stat {
	AP_CPU_STAT_SAMPLES = 0,	    /* samples seen (after the pid filter) */
	AP_CPU_STAT_IDLE,		    /* samples of the idle task, skipped unless asked for */
	AP_CPU_STAT_FILTERED,	    /* samples of processes outside --pid */
	AP_CPU_STAT_USER_STACK_ERR,    /* user stack capture failed (not "no user stack") */
	AP_CPU_STAT_KERN_STACK_ERR,    /* kernel stack capture failed */
	AP_CPU_STAT_STACKS_FULL,    /* stack map full: the sample keeps no stack */
	AP_CPU_STAT_COUNTS_FULL,	    /* aggregation map full: sample lost */
	AP_CPU_STAT_SAMPLE_EVENTS_DROPPED, /* per-event mode: sample ring buffer full */
	AP_CPU_STAT_MAX,
};

#endif
