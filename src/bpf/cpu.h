/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Shared by cpu.bpf.c and its loader. Fixed-width fields only, largest first, padding named. */
#ifndef AP_BPF_CPU_H
#define AP_BPF_CPU_H

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

/* Control events from BPF to the agent through the ring buffer. */
enum ap_proc_event_kind {
	AP_PROC_NEW = 1,  /* first sample of a process: snapshot its mappings now */
	AP_PROC_EXEC = 2, /* the process replaced its image */
	AP_PROC_EXIT = 3, /* the process exited (thread group leader) */
	AP_PROC_UNKNOWN_PC = 4, /* a user pc outside every known mapping (dlopen): re-scan */
};

struct ap_proc_event {
	__u64 ts_ns;
	__u32 kind; /* enum ap_proc_event_kind */
	__u32 pid;
	char comm[AP_TASK_COMM_LEN];
};

/*
 * A sample the in-kernel walker could not finish because its process's tables were not
 * loaded yet (a new process, a library just mapped, a binary still being compiled): it goes
 * to the agent with the top of its user stack and is unwound there, with the same tables and
 * step function, once they are in (docs/unwinding.md). Not counted in the kernel.
 */
#define AP_CPU_DEFER_STACK 8192 /* user stack bytes copied, as perf --call-graph dwarf */

struct ap_cpu_deferred {
	struct ap_cpu_key key;		  /* user_stack and kern_stack are 0 */
	__u64 kstack[AP_MAX_STACK_DEPTH]; /* kernel stack, leaf first, zero-terminated */
	__u64 ts_ns;			  /* when sampled (bpf_ktime_get_ns) */
	__u32 cpu;
	__u32 stack_len;		  /* bytes of stack[] copied, from sp up */
	/* the agent keeps everything above until the replay; what follows is the snapshot */
	__u64 pc, sp, bp;		  /* user registers */
	__u8 stack[AP_CPU_DEFER_STACK];
};

/* Failure counters, one slot each in the per-CPU `cpu_stats` array; reported by the agent. */
enum ap_cpu_stat {
	AP_CPU_STAT_SAMPLES = 0,	    /* samples seen (after the pid filter) */
	AP_CPU_STAT_IDLE,		    /* samples of the idle task, skipped unless asked for */
	AP_CPU_STAT_FILTERED,	    /* samples of processes outside --pid */
	AP_CPU_STAT_USER_STACK_ERR,    /* user stack capture failed (not "no user stack") */
	AP_CPU_STAT_KERN_STACK_ERR,    /* kernel stack capture failed */
	AP_CPU_STAT_STACKS_FULL,    /* stack map full: the sample keeps no stack */
	AP_CPU_STAT_COUNTS_FULL,	    /* aggregation map full: sample lost */
	AP_CPU_STAT_EVENTS_DROPPED,    /* ring buffer full: process event lost */
	AP_CPU_STAT_SAMPLE_EVENTS_DROPPED, /* per-event mode: sample ring buffer full */
	AP_CPU_STAT_UNWIND_DEFERRED,	   /* samples sent to the agent to unwind later */
	AP_CPU_STAT_UNWIND_DEFER_DROPPED,  /* ... that did not fit: counted with a partial stack */
	AP_CPU_STAT_MAX,
};

#endif
