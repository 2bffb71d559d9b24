/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Shared by gpu.bpf.c and its loader (src/gpu/probes.c, src/agent/gpu_collector.c). Fixed-width
 * fields only, largest first, padding named. The loader _Static_asserts every struct size.
 *
 * The CUDA API probes are two generic programs attached many times: gpu_enter (uprobe) and
 * gpu_exit (uretprobe). Each attachment carries a BPF cookie saying which API function it is
 * (an index into the agent's table, src/gpu/probes.c) and what to capture. BPF captures raw
 * machine state only (the six argument registers, the stack arguments, the return value,
 * up to two words behind argument pointers at return, the CPU stack); the agent decodes it
 * per function (src/gpu/decode.c, pure and unit-tested). So adding an API function is a row
 * in the agent's table, never a new BPF program.
 */
#ifndef AP_BPF_GPU_H
#define AP_BPF_GPU_H

#include "unwind_defer.h" /* the same rules; includes nothing */

/* Frames kept per stack (== AP_UNWIND_MAX_FRAMES: the walker fills that many). */
#define AP_GPU_STACK_DEPTH 127
#define AP_GPU_COMM_LEN 16
/* Calls in flight per thread whose arguments are kept (deeper ones are counted, not kept). */
#define AP_GPU_MAX_NEST 4
#define AP_GPU_NARGS 6	/* rdi, rsi, rdx, rcx, r8, r9 */
#define AP_GPU_NSARGS 5 /* the words above the return address at entry: stack arguments */

/* The cookie of an attachment: the function's index in the agent's table, flags, class. */
#define AP_GPU_CK_FN_MASK 0xffffull
#define AP_GPU_CK_ENTRY_ONLY (1ull << 16) /* sent at entry, no return probe (void calls) */
#define AP_GPU_CK_STACK_ARGS (1ull << 17) /* read the stack arguments at entry */
#define AP_GPU_CK_DEREF0 (1ull << 18)	  /* at return: read the u64 at args[0] */
#define AP_GPU_CK_DEREF1 (1ull << 19)	  /* at return: read the u64 at args[1] */
#define AP_GPU_CK_STACK (1ull << 20)	  /* capture the CPU stack */
#define AP_GPU_CK_CLASS_SHIFT 24	  /* bits 24..31: enum ap_gpu_class */
#define AP_GPU_CK_NESTED (1ull << 63)	  /* BPF only: inside a call of the same class */

/*
 * What a call is, for the nesting rule: a call that starts while a call of the same class is
 * in flight on its thread is part of that call and is not sent (`__cudaLaunchKernel`
 * tail-jumps to `cudaLaunchKernel`; cudart's allocations may reach the driver's; one launch
 * must count once). Calls of another class are sent.
 */
enum ap_gpu_class {
	AP_GPU_CLASS_OTHER = 0,
	AP_GPU_CLASS_REGISTER = 1,
	AP_GPU_CLASS_LAUNCH = 2,
	AP_GPU_CLASS_MEMORY = 3,
	AP_GPU_CLASS_COPY = 4,
	AP_GPU_CLASS_SYNC = 5,
};

/* ev.kind */
enum ap_gpu_ev_kind {
	AP_GPU_EV_CALL = 1, /* an API call (entry-only ones: dur_ns 0) */
	AP_GPU_EV_EXEC = 2, /* a process exec'd: discovery looks at it now, not at the rescan */
	AP_GPU_EV_EXIT = 3, /* a process that made CUDA calls exited */
	AP_GPU_EV_DLOPEN = 4, /* the dynamic loader changed a process's libraries
			       * (_dl_debug_state, the debugger hook): look at it again */
};

/* ev.flags */
#define AP_GPU_EVF_OUT0 1u	   /* out[0] was read */
#define AP_GPU_EVF_OUT1 2u	   /* out[1] was read */
#define AP_GPU_EVF_SARGS 4u	   /* sargs were read */
#define AP_GPU_EVF_STACK_PART 8u /* the stack walk did not reach the outermost frame */
#define AP_GPU_EVF_WAS_GPU 16u	   /* EXEC: the old image had made CUDA calls */

/*
 * One record on `gpu_events`: this header, then nframes u64 return addresses (leaf first;
 * the leaf is a return address too: stacks are taken at the call's return, in its caller).
 */
struct ap_gpu_event {
	__u64 ts_ns;		     /* entry, bpf_ktime_get_ns() */
	__u64 dur_ns;		     /* entry to return; 0 for entry-only calls */
	__u64 args[AP_GPU_NARGS];    /* at entry */
	__u64 sargs[AP_GPU_NSARGS];  /* [rsp+8] .. [rsp+40] at entry (AP_GPU_CK_STACK_ARGS) */
	__u64 out[2];		     /* at return: *(u64 *)args[0], *(u64 *)args[1] */
	__u64 ret;		     /* the return register */
	__u64 cookie;		     /* the attachment's cookie (function, flags) */
	__u32 pid;
	__u32 tid;
	__u32 kind;    /* enum ap_gpu_ev_kind */
	__u32 flags;   /* AP_GPU_EVF_* */
	__u32 nframes; /* u64 frames after the header */
	__u32 pad;
	char comm[AP_GPU_COMM_LEN];
};

/* A call whose stack BPF could not walk yet (its process's unwind tables are not loaded):
 * the header, then the register + stack snapshot the agent unwinds it from. */
struct ap_gpu_deferred {
	struct ap_gpu_event ev; /* nframes 0 */
	struct ap_user_snapshot snap;
};

/* Counters, one slot each in the per-CPU `gpu_stats` array. */
enum ap_gpu_stat {
	AP_GPU_STAT_CALLS = 0,	       /* calls sent to the agent */
	AP_GPU_STAT_EVENTS_LOST,       /* gpu_events full: a call lost */
	AP_GPU_STAT_INFLIGHT_FULL,     /* no in-flight slot for the thread: call lost */
	AP_GPU_STAT_NEST_OVERFLOW,     /* calls nested deeper than AP_GPU_MAX_NEST: lost */
	AP_GPU_STAT_NESTED,	       /* calls inside a call of the same class: folded into it */
	AP_GPU_STAT_UNMATCHED_RETURN,  /* a return without its entry (attached mid-call) */
	AP_GPU_STAT_UNBALANCED,	       /* a return of another function than the last entry */
	AP_GPU_STAT_DEREF_FAILED,      /* an out pointer could not be read at return */
	AP_GPU_STAT_SARGS_FAILED,      /* stack arguments could not be read */
	AP_GPU_STAT_STACK_ERR,	       /* the CPU stack could not be captured */
	AP_GPU_STAT_FILTERED,	       /* calls of processes outside --pid */
	AP_GPU_STAT_PROC_EVENTS_LOST,  /* exec/exit events lost (gpu_events full) */
	AP_GPU_STAT_MAX,
};

#endif
