/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Shared by the BPF programs that walk user stacks with the CFI tables (cpu, lock, syscall:
 * through proc_announce.h) and their loaders. Fixed-width fields only, largest first, padding
 * named; the agent _Static_asserts the sizes.
 *
 * Two channels from BPF to the agent, the same in every mode:
 *  - process events (`proc_events`): a process's first event, exec, exit, and a pc outside
 *    its known mappings, so the agent loads its unwind tables (and symbols) at once;
 *  - deferred events (`unwind_deferred`): an event whose user stack could not be walked yet
 *    (its process's tables are not loaded, or still compiling) leaves as the mode's payload
 *    followed by a register + stack snapshot, and the agent unwinds it with the same tables
 *    once they are in, then records it exactly like one unwound in the kernel.
 */
#ifndef AP_BPF_UNWIND_DEFER_H
#define AP_BPF_UNWIND_DEFER_H

#define AP_PROC_COMM_LEN 16

enum ap_proc_event_kind {
	AP_PROC_NEW = 1,	/* first event of a process: load its tables, snapshot its mappings */
	AP_PROC_EXEC = 2,	/* the process replaced its image */
	AP_PROC_EXIT = 3,	/* the process exited (thread group leader) */
	AP_PROC_UNKNOWN_PC = 4, /* a user pc outside every known mapping (dlopen): re-scan */
};

struct ap_proc_event {
	__u64 ts_ns;
	__u32 kind; /* enum ap_proc_event_kind */
	__u32 pid;
	char comm[AP_PROC_COMM_LEN];
};

/* User stack bytes a deferred event carries, from sp up: twice perf --call-graph dwarf's
 * default of 8 KiB, which cut the deep stacks of interpreters and shells (docs/unwinding.md). */
#define AP_DEFER_STACK 16384

/* The file mapping the snapshot's pc was in when it was taken (all zero: none). A process
 * that dies within milliseconds of mapping a library can be gone before the agent reads its
 * mappings; this names the library anyway (the agent knows the file by device and inode
 * from other processes). dev is the kernel's encoding: major << 20 | minor. */
struct ap_snap_vma {
	__u64 start, end, pgoff; /* pgoff in pages */
	__u64 ino;
	__u32 dev;
	__u32 pad;
};

/* The tail of every deferred record: the mode's payload comes first (its size is fixed per
 * mode), this follows it. */
struct ap_user_snapshot {
	__u64 pc, sp, bp; /* user registers */
	struct ap_snap_vma pc_vma;
	__u32 pid;	  /* thread group id: whose tables unwind it */
	__u32 stack_len;  /* bytes of stack[] copied */
	__u8 stack[AP_DEFER_STACK];
};

/* Counters of both channels, one slot each in the per-CPU `proc_stats` array. */
enum ap_proc_stat {
	AP_PROC_STAT_EVENTS_DROPPED = 0, /* proc_events full: a process event lost */
	AP_PROC_STAT_DEFERRED,		 /* events sent to the agent to unwind later */
	AP_PROC_STAT_DEFER_DROPPED,	 /* ... that did not fit: kept with the partial stack */
	AP_PROC_STAT_MAX,
};

#endif
