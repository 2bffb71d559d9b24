/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Shared by lock.bpf.c and its loader (lock_collector.c). Fixed-width fields only, largest
 * first, padding named. The loader _Static_asserts every struct size.
 *
 * Lock contention comes from two sources:
 *  - user space: futex waits seen at the futex syscall tracepoints (futex, futex_wait,
 *    futex_waitv), classified from the operation and the glibc object layout;
 *  - kernel: the lock:contention_begin/contention_end tracepoints.
 * Both are aggregated in the kernel per (lock, waiter, stacks) with a log2 histogram.
 */
#ifndef AP_BPF_LOCK_H
#define AP_BPF_LOCK_H

#include "unwind_defer.h" /* the same rules; includes nothing */

#define AP_LOCK_COMM_LEN 16
/* Frames kept per stack (kernel.perf_event_max_stack defaults to 127). */
#define AP_LOCK_STACK_DEPTH 127
#define AP_LOCK_HIST_SLOTS 64 /* == AP_HIST_SLOTS */

/* What a wait was on. User kinds first, kernel kinds from AP_LOCK_K_SPINLOCK on. */
enum ap_lock_kind {
	AP_LOCK_UNKNOWN = 0,
	AP_LOCK_MUTEX = 1,	/* glibc pthread_mutex_t (layout checked), holder from __owner */
	AP_LOCK_PI_MUTEX = 2,	/* FUTEX_LOCK_PI(2): holder tid in the futex word */
	AP_LOCK_RWLOCK = 3,	/* glibc pthread_rwlock_t; holder from __cur_writer */
	AP_LOCK_FUTEX_LOCK = 4, /* "2 = locked with waiters" protocol without a pthread layout:
				 * glibc-internal locks, Rust/other futex mutexes; no holder */
	AP_LOCK_CONDVAR = 5,	/* glibc pthread_cond_t (__g_signals), or WAIT_REQUEUE_PI */
	AP_LOCK_OTHER = 6,	/* any other futex wait: join, semaphore, barrier, waitv, ... */
	AP_LOCK_K_SPINLOCK = 16,
	AP_LOCK_K_RWLOCK = 17,	/* rwlock_t (spinning) */
	AP_LOCK_K_MUTEX = 18,
	AP_LOCK_K_RWSEM = 19,
	AP_LOCK_K_PERCPU_RWSEM = 20,
	AP_LOCK_K_RTMUTEX = 21,
	AP_LOCK_K_SEMAPHORE = 22,
	AP_LOCK_K_OTHER = 23,
};

/* lock:contention_begin flags (include/trace/events/lock.h; #defines, not in BTF). */
#define AP_LCB_F_SPIN (1U << 0)
#define AP_LCB_F_READ (1U << 1)
#define AP_LCB_F_WRITE (1U << 2)
#define AP_LCB_F_RT (1U << 3)
#define AP_LCB_F_PERCPU (1U << 4)
#define AP_LCB_F_MUTEX (1U << 5)

/* Kernel locks BPF recognises by address from the waiter's task (perf lock does the same). */
enum ap_lock_class {
	AP_LCLASS_NONE = 0,
	AP_LCLASS_MMAP_LOCK = 1, /* current->mm->mmap_lock */
	AP_LCLASS_SIGLOCK = 2,	 /* current->sighand->siglock */
	AP_LCLASS_RQ_LOCK = 3,	 /* this CPU's runqueue lock (runqueues.__lock) */
};

/* key.flags of user waits: the futex command (FUTEX_WAIT = 0, ...), or one of these. */
#define AP_FUTEX_OP_WAITV 0x100u      /* futex_waitv(2) */
#define AP_FUTEX_OP_FUTEX_WAIT 0x101u /* futex_wait(2) (futex2, Linux 6.7+) */

/* Holder tid values that are not tids. */
#define AP_HOLDER_UNKNOWN 0u	   /* not knowable (kind has no owner field, or racing) */
#define AP_HOLDER_READERS 0xFFFFFFFEu /* rwlock held by readers: no single owner */

/*
 * Aggregation key: one entry per (lock, waiter thread, kind/flags, stacks). For user locks
 * addr is the user address of the lock object (the pthread_mutex_t / pthread_rwlock_t /
 * pthread_cond_t start when the layout was recognised, else the futex word); for kernel
 * locks it is the kernel address of the lock.
 */
struct ap_lock_key {
	__u64 addr;
	__u64 user_stack; /* key in the stacks map (a hash of the frames), 0: none */
	__u64 kern_stack; /* same for the kernel stack */
	__u32 pid;	  /* thread group id of the waiter */
	__u32 tid;
	__u32 kind;	     /* enum ap_lock_kind */
	__u32 flags;	     /* kernel: LCB_F_* of contention_begin; user: futex op (cmd) */
	__u32 lclass;	     /* enum ap_lock_class (kernel locks) */
	__u32 pad;
	char comm[AP_LOCK_COMM_LEN];
};

/* A captured stack, as stored in the stacks maps: leaf first, zero-filled after the end. */
struct ap_lock_stack_ips {
	__u64 ips[AP_LOCK_STACK_DEPTH];
};

/* Aggregated waits of one key. count = waits that blocked; acquired (or woken) = count -
 * timeout - interrupted - error. EAGAIN returns (no sleep) are counted per holder. */
struct ap_lock_val {
	__u64 count;
	__u64 total_ns;
	__u64 max_ns;
	__u64 timeout;
	__u64 interrupted;
	__u64 error;
	__u64 pad[2];
	__u64 hist[AP_LOCK_HIST_SLOTS]; /* log2 of wait ns */
};

/* Holder attribution, per lock: who held it when waits on it started. */
struct ap_lock_holder_key {
	__u64 addr;
	__u32 pid;
	__u32 holder_tid; /* AP_HOLDER_* when not a tid */
	__u32 kind;
	__u32 pad;
};

struct ap_lock_holder_val {
	__u64 count;   /* blocked waits attributed to this holder */
	__u64 wait_ns; /* their total wait */
	__u64 eagain;  /* waits that found the value changed */
	__u64 pad;
};

/* A thread seen releasing a contended futex (FUTEX_WAKE / FUTEX_UNLOCK_PI): its comm, so a
 * holder that exits before the agent looks at /proc still has a name. */
struct ap_lock_comm {
	char comm[AP_LOCK_COMM_LEN];
};

/*
 * Per-event mode (a filter must see every wait): a wait that blocked goes to the agent as one
 * record instead of into the waits/holders aggregates; the agent aggregates the ones the filter
 * keeps into the same tables. The stacks stay in stacks_<slot> (by hash, as in the key) until
 * the drain that flips away from that slot has read the ring buffer.
 *
 * The same record carries what did not fit in a full waits or holders map (a spill, in either
 * mode): `parts` says which aggregates the agent adds it to, as the drain would have.
 */
#define AP_LOCK_EV_WAIT 1u   /* into the waits aggregate (key, wait_ns, ret) */
#define AP_LOCK_EV_HOLDER 2u /* into the holders one: (addr, pid, holder_tid, kind) */
#define AP_LOCK_EV_EAGAIN 4u /* with HOLDER only: an EAGAIN return, not a blocked wait */

struct ap_lock_event {
	struct ap_lock_key key; /* the aggregation key the wait would have had */
	__u64 wait_ns;
	__u64 ts_ns;	  /* end of the wait (CLOCK_MONOTONIC) */
	__s64 ret;	  /* user waits: the syscall's return; kernel: contention_end's ret */
	__u32 holder_tid; /* user waits: AP_HOLDER_* or the holder's tid; kernel: 0 */
	__u32 cpu;
	__u32 slot;  /* stacks_<slot> holds key.user_stack / key.kern_stack */
	__u32 parts; /* AP_LOCK_EV_* */
};

/*
 * A user wait whose stack the in-kernel walker could not finish because its process's tables
 * were not loaded yet (its first waits): the wait as a per-event record would carry it, with
 * its kernel stack, then the register + stack snapshot the agent unwinds it from
 * (unwind_defer.h). Neither in waits nor in holders: the agent adds it to both once unwound.
 */
struct ap_lock_deferred {
	struct ap_lock_event ev;	   /* key.user_stack 0; slot 0 */
	__u64 kstack[AP_LOCK_STACK_DEPTH]; /* when key.kern_stack != 0: the kernel stack, leaf
					    * first, zero tail */
	struct ap_user_snapshot snap;
};

/* Failure and volume counters, one slot each in the per-CPU `lock_stats` array. Process
 * events and deferred waits count in `proc_stats` (unwind_defer.h). */
enum ap_lock_stat {
	AP_LOCK_STAT_FUTEX_WAITS = 0,	/* futex wait syscalls seen (after filters) */
	AP_LOCK_STAT_FUTEX_BLOCKED,	/* ... that slept */
	AP_LOCK_STAT_FUTEX_NO_SLEEP,	/* returned without sleeping, not EAGAIN (not counted) */
	AP_LOCK_STAT_FUTEX_EAGAIN,	/* value changed before sleeping */
	AP_LOCK_STAT_FUTEX_FILTERED,	/* waits of processes outside --pid / --comm */
	AP_LOCK_STAT_USER_READ_ERR,	/* the lock object could not be read (classified other) */
	AP_LOCK_STAT_INFLIGHT_FULL,	/* in-flight map full: wait lost */
	AP_LOCK_STAT_KLOCK_BEGIN,	/* kernel contention_begin seen (after filters) */
	AP_LOCK_STAT_KLOCK_NESTED,	/* nested kernel contention ignored */
	AP_LOCK_STAT_KLOCK_UNMATCHED,	/* contention_end without a begin (started before attach) */
	AP_LOCK_STAT_USER_STACK_ERR,	/* user stack capture failed */
	AP_LOCK_STAT_KERN_STACK_ERR,	/* kernel stack capture failed */
	AP_LOCK_STAT_STACKS_FULL,	/* stacks map full: a wait recorded without its stack */
	AP_LOCK_STAT_WAITS_SPILLED,	/* waits map full: wait sent on lock_events instead */
	AP_LOCK_STAT_WAITS_LOST,	/* ... and lock_events full too: wait (and holder) lost */
	AP_LOCK_STAT_HOLDERS_SPILLED,	/* holders map full: attribution sent on lock_events */
	AP_LOCK_STAT_HOLDERS_LOST,	/* ... and lock_events full too: attribution lost */
	AP_LOCK_STAT_EVENTS_LOST,	/* per-event mode: ring buffer full, wait lost */
	AP_LOCK_STAT_MAX,
};

#endif
