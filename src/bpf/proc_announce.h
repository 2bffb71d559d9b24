/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Processes announced to the agent, and events deferred to it (unwind_defer.h), for every
 * program that walks user stacks with the CFI tables (cpu, lock, syscall).
 *
 * A process whose tables are not loaded is walked by frame pointers only, which loses every
 * caller of a frameless function. So the first time a program sees a process it announces
 * it through `proc_events` (the agent loads its tables at once, not at its next drain), and
 * an event the walker could not finish for want of tables goes to the agent as a register +
 * stack snapshot (`unwind_deferred`) to be unwound there with the same tables. The loader
 * sets cfg_defer_unwind when it reads unwind_deferred (else it shrinks it to one page).
 * Include after unwind.h, bpf_stats.h and stack_store.h.
 *
 * The agent side is src/agent/unwind_events.c; docs/unwinding.md has the whole story.
 */
#ifndef AP_BPF_PROC_ANNOUNCE_H
#define AP_BPF_PROC_ANNOUNCE_H

#include "unwind_defer.h"

/* Events whose user stack cannot be walked yet go to the agent (unwind_deferred). */
const volatile bool cfg_defer_unwind = false;

/* Processes already announced. LRU so that it never fills up: an evicted process is
 * announced again, which costs the agent one re-read of its mappings. */
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

/* Deferred events: the mode's payload + struct ap_user_snapshot, whose stack is cut to what
 * the thread's stack holds (a main thread's stack ends at mm->start_stack: a short-lived
 * program's first samples need 1-3 KiB, not 8). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 512 * 1024); /* one page when not deferring */
} unwind_deferred SEC(".maps");

/* Where a deferred record is put together before it is sent with its real length (a ring
 * buffer reservation has a fixed size). Per CPU: a program does not nest on its CPU. */
#define AP_DEFER_SCRATCH (20 * 1024)
struct ap_defer_scratch {
	__u8 b[AP_DEFER_SCRATCH];
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ap_defer_scratch);
} defer_scratch SEC(".maps");

/* When each process last asked the agent to re-scan its mappings (AP_PROC_UNKNOWN_PC). */
#define AP_RESCAN_INTERVAL_NS (20ULL * 1000 * 1000)
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024); /* an evicted process may just ask again sooner */
	__type(key, __u32);
	__type(value, __u64);
} unwind_rescan SEC(".maps");

AP_BPF_STATS(proc_stats, AP_PROC_STAT_MAX);

static __always_inline void ap_proc_emit(__u32 kind, __u32 pid)
{
	struct ap_proc_event *e = bpf_ringbuf_reserve(&proc_events, sizeof(*e), 0);

	if (!e) {
		ap_stat_add(&proc_stats, AP_PROC_STAT_EVENTS_DROPPED, 1);
		return;
	}
	e->ts_ns = bpf_ktime_get_ns();
	e->kind = kind;
	e->pid = pid;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
}

/* Announce a process the first time it is seen. Returns false when it was known. */
static __always_inline bool ap_proc_announce(__u32 tgid)
{
	__u8 yes = 1;

	if (bpf_map_lookup_elem(&seen_pids, &tgid))
		return false;
	bpf_map_update_elem(&seen_pids, &tgid, &yes, BPF_ANY);
	ap_proc_emit(AP_PROC_NEW, tgid);
	return true;
}

/* Ask the agent to re-read a process's mappings, at most every AP_RESCAN_INTERVAL_NS. */
static __always_inline void ap_proc_request_rescan(__u32 tgid)
{
	__u64 now = bpf_ktime_get_ns(), *last = bpf_map_lookup_elem(&unwind_rescan, &tgid);

	if (last && now - *last < AP_RESCAN_INTERVAL_NS)
		return;
	bpf_map_update_elem(&unwind_rescan, &tgid, &now, BPF_ANY);
	ap_proc_emit(AP_PROC_UNKNOWN_PC, tgid);
}

/*
 * After a walk (ap_unwind_user's flags): tell the agent what the walker lacked. A process
 * without tables is announced; one announced already without tables (its announcement was
 * lost, or its mappings were unreadable then) and a pc outside every known mapping (a
 * library it dlopen()ed) ask for a re-scan. A walk that had its tables costs nothing here.
 */
static __always_inline void ap_proc_walked(__u32 tgid, __u32 flags)
{
	if (flags & AP_UNWIND_F_UNKNOWN_PC)
		ap_proc_request_rescan(tgid);
	else if ((flags & AP_UNWIND_F_NO_TABLES) && !ap_proc_announce(tgid))
		ap_proc_request_rescan(tgid);
}

/* Whether a walk stopped only for want of tables: worth deferring to the agent. */
static __always_inline bool ap_proc_should_defer(const struct ap_stack *st, __u32 status,
						 __u32 flags)
{
	return cfg_defer_unwind && st && status != AP_UNWIND_COMPLETE &&
	       (flags & AP_UNWIND_F_RETRY);
}

/*
 * The user stack of an event in a system call (lock waits, slow calls): walked with the CFI
 * tables from the user registers saved at kernel entry (into `start`), the process announced
 * or re-scanned as the walk needs (ap_proc_walked), or by the kernel's frame-pointer walk
 * when the tables are off. Returns the frames (*n of them) in a per-CPU scratch, NULL when
 * there are none (*err: bpf_get_stack's error, -EFAULT being "no user stack"). *defer: the
 * walk stopped only for want of tables: the caller sends the event to the agent, or stores
 * what there is when that fails.
 */
static __always_inline struct ap_stack *ap_walk_user_stack(void *ctx, __u32 tgid,
							   struct ap_uregs *start, __u32 *n,
							   bool *defer, long *err)
{
	__u32 zero = 0, status, flags;
	struct ap_stack *st;
	long len;

	*n = 0;
	*defer = false;
	*err = 0;
	if (cfg_unwind_tables) {
		st = ap_unwind_user(start, tgid, n, &status, &flags);
		/* one LRU lookup, and only for a process the walker had no tables for */
		ap_proc_walked(tgid, flags);
		*defer = ap_proc_should_defer(st, status, flags);
		return st;
	}
	st = bpf_map_lookup_elem(&stack_scratch, &zero);
	if (!st)
		return NULL;
	/* the helper zero-fills the rest of the buffer, so equal stacks are equal values */
	len = bpf_get_stack(ctx, st->ips, sizeof(st->ips), BPF_F_USER_STACK);
	if (len <= 0) {
		*err = len;
		return NULL;
	}
	*n = (__u32)len / sizeof(__u64);
	return st;
}

/*
 * At sched_process_exec. `any`: tell the agent about every process (CPU: its next sample
 * announces it again anyway); else only about one it knows (announced, or given tables up
 * front with --pid): a process never seen is announced by its first event.
 */
static __always_inline void ap_proc_exec(__u32 tgid, bool any)
{
	struct ap_unwind_pid_key pk = { .pid = tgid };
	__u8 yes = 1;

	if (any) {
		bpf_map_delete_elem(&seen_pids, &tgid);
	} else if (!bpf_map_lookup_elem(&seen_pids, &tgid)) {
		if (!bpf_map_lookup_elem(&unwind_pids, &pk))
			return;
		/* known from --pid: its exit is worth reporting too */
		bpf_map_update_elem(&seen_pids, &tgid, &yes, BPF_ANY);
	}
	/* Its tables describe the image it just replaced: walked with them, the new image's
	 * pcs fall outside every mapping, or worse, inside an old one. Without its first chunk
	 * the process has no tables: its samples are deferred until the agent, told below,
	 * has loaded the new ones. */
	bpf_map_delete_elem(&unwind_pids, &pk);
	ap_proc_emit(AP_PROC_EXEC, tgid);
}

/* At sched_process_exit: one event per announced process, when its main thread exits. */
static __always_inline void ap_proc_exit(void)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;

	if ((__u32)id != tgid || !bpf_map_lookup_elem(&seen_pids, &tgid))
		return;
	bpf_map_delete_elem(&seen_pids, &tgid);
	ap_proc_emit(AP_PROC_EXIT, tgid);
}

/* For AP_PROC_EXEC_EXIT_PROGS: every process is of interest (the mode has no pid filter of
 * its own here, or ap_proc_exec(.., false) filters by what is known). */
static __always_inline bool ap_proc_any(__u32 tgid)
{
	return true;
}

/*
 * The exec and exit programs every mode that announces processes attaches (one definition,
 * so the three programs cannot drift apart):
 *   sec        "tp_btf" or "raw_tp" (syscall.bpf.c's loader turns raw_tp into tp_btf);
 *   exec_prog, exit_prog  the programs' names (the loaders' skeleton fields);
 *   any        ap_proc_exec's `any`: true tells the agent about every exec (CPU mode);
 *   wanted     a bool function of the tgid: execs of other processes are ignored
 *              (ap_proc_any: none are).
 * Both programs read nothing from their context, so one body serves both section kinds.
 */
#define AP_PROC_EXEC_EXIT_PROGS(sec, exec_prog, exit_prog, any, wanted)                       \
	SEC(sec "/sched_process_exec")                                                         \
	int BPF_PROG(exec_prog)                                                                \
	{                                                                                      \
		__u32 tgid = bpf_get_current_pid_tgid() >> 32;                                 \
                                                                                               \
		if (wanted(tgid))                                                              \
			ap_proc_exec(tgid, (any));                                             \
		return 0;                                                                      \
	}                                                                                      \
                                                                                               \
	SEC(sec "/sched_process_exit")                                                         \
	int BPF_PROG(exit_prog)                                                                \
	{                                                                                      \
		ap_proc_exit();                                                                \
		return 0;                                                                      \
	}

/*
 * Deferred records: reserve one (type: the mode's record, its last member a struct
 * ap_user_snapshot named snap), fill the payload, then ap_defer_submit(). NULL when the ring
 * has no room for a whole record (counted): the caller records the event with the stack it
 * has.
 */
#define ap_defer_reserve(type)                                                                \
	({                                                                                     \
		_Static_assert(sizeof(type) <= AP_DEFER_SCRATCH, "deferred record too big");    \
		(type *)ap_defer_reserve_bytes(sizeof(type));                                  \
	})

static __always_inline void *ap_defer_reserve_bytes(__u64 size)
{
	__u32 zero = 0;
	void *d;

	/* room for the longest record: the one sent is never longer */
	if (bpf_ringbuf_query(&unwind_deferred, BPF_RB_RING_SIZE) <
	    bpf_ringbuf_query(&unwind_deferred, BPF_RB_AVAIL_DATA) + size + 8) {
		ap_stat_add(&proc_stats, AP_PROC_STAT_DEFER_DROPPED, 1);
		return NULL;
	}
	d = bpf_map_lookup_elem(&defer_scratch, &zero);
	if (!d)
		ap_stat_add(&proc_stats, AP_PROC_STAT_DEFER_DROPPED, 1);
	return d;
}

static long ap_defer_vma_end(struct task_struct *task, struct vm_area_struct *vma, void *ctx)
{
	*(__u64 *)ctx = vma->vm_end;
	return 0;
}

static long ap_defer_vma_file(struct task_struct *task, struct vm_area_struct *vma, void *ctx)
{
	struct ap_snap_vma *v = ctx;
	struct file *f = BPF_CORE_READ(vma, vm_file);

	if (!f)
		return 0;
	v->start = BPF_CORE_READ(vma, vm_start);
	v->end = BPF_CORE_READ(vma, vm_end);
	v->pgoff = BPF_CORE_READ(vma, vm_pgoff);
	v->ino = BPF_CORE_READ(f, f_inode, i_ino);
	v->dev = BPF_CORE_READ(f, f_inode, i_sb, s_dev);
	return 0;
}

/*
 * How much of the stack above sp to copy: for a main thread no further than the end of its
 * frames (mm->start_stack: above it are argv and the environment; 64 bytes of them are
 * harmless), for another thread than the end of the mapping sp is in (its stack), and never
 * more than the window.
 *
 * One bpf_find_vma per event: in a sampling interrupt the mmap lock is released through a
 * per-CPU irq_work, and a second call before it ran fails (EBUSY). A main thread's bound
 * needs none, so its call goes to naming the pc's file (ap_defer_send).
 */
static __always_inline __u32 ap_defer_stack_len(__u64 sp, bool main_thread)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 top = 0, len = AP_DEFER_STACK, start;

	if (main_thread) {
		start = BPF_CORE_READ(task, mm, start_stack);
		if (start > sp && start - sp + 64 < len)
			len = start - sp + 64;
	} else if (!bpf_find_vma(task, sp, ap_defer_vma_end, &top, 0) && top > sp &&
		   top - sp < len) {
		len = top - sp;
	}
	len = (len + 7) & ~7ULL;
	return len > AP_DEFER_STACK ? AP_DEFER_STACK : (__u32)len;
}

/* Copy the user registers and the top of the user stack into the record and send it, as
 * long as it needs to be. `head`: the offset of the snapshot in the record. */
static __always_inline void ap_defer_send(void *d, struct ap_user_snapshot *s, __u64 head,
					  __u32 tgid, const struct ap_uregs *start)
{
	bool main_thread = (__u32)bpf_get_current_pid_tgid() == tgid;
	__u32 i, len = ap_defer_stack_len(start->sp, main_thread);
	struct ap_snap_vma vma = {}; /* bpf_find_vma's context must be on the stack */
	__u64 size;

	s->pc = start->pc;
	s->sp = start->sp;
	s->bp = start->bp;
	s->pid = tgid;
	if (main_thread) /* see ap_defer_stack_len */
		bpf_find_vma(bpf_get_current_task_btf(), start->pc, ap_defer_vma_file, &vma, 0);
	s->pc_vma = vma;
	if (len > AP_DEFER_STACK)
		len = AP_DEFER_STACK; /* for the verifier */
	if (len && !bpf_probe_read_user(s->stack, len, (const void *)start->sp)) {
		s->stack_len = len;
	} else {
		/* the stack ends within the window: copy what there is, 1 KiB at a time */
		for (i = 0; i < AP_DEFER_STACK / 1024; i++)
			if (bpf_probe_read_user(s->stack + i * 1024, 1024,
						(const void *)(start->sp + i * 1024)))
				break;
		s->stack_len = i * 1024;
	}
	size = head + offsetof(struct ap_user_snapshot, stack) + s->stack_len;
	if (size > AP_DEFER_SCRATCH)
		size = AP_DEFER_SCRATCH; /* never: the record type fits, checked at compile time */
	/* another CPU may have filled the ring since the reservation: then it is lost */
	if (bpf_ringbuf_output(&unwind_deferred, d, size, 0)) {
		ap_stat_add(&proc_stats, AP_PROC_STAT_DEFER_DROPPED, 1);
		return;
	}
	ap_stat_add(&proc_stats, AP_PROC_STAT_DEFERRED, 1);
}

/* s is &d->snap: its offset folds to a constant */
#define ap_defer_submit(d, s, tgid, start)                                                     \
	ap_defer_send((d), (s), (__u64)((char *)(s) - (char *)(d)), (tgid), (start))

#endif
