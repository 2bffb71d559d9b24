// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * CUDA API calls (runtime, driver, registration), seen by uprobes and uretprobes.
 *
 * Two programs serve every probed function: gpu_enter keeps the call's arguments per thread,
 * gpu_exit sends the whole call (arguments, return value, out pointers read at return, the
 * time in the call, the CPU stack) on one ring buffer. The cookie of each attachment says
 * which function it is and what to capture (gpu.h); the agent decodes. Entry-only functions
 * (void calls such as __cudaRegisterFunction) are sent from gpu_enter.
 *
 * Calls in flight are a small stack per thread (AP_GPU_MAX_NEST): returns pop in LIFO order,
 * including the chained return of a tail call (`__cudaLaunchKernel` jumps to
 * `cudaLaunchKernel`; the kernel runs both uretprobes at the one return, newest first). A
 * call that starts inside a call of the same class is part of it and is not sent, so a
 * launch counts once whichever of its entry points are probed.
 *
 * The CPU stack is taken at the return, in the caller (the uretprobe has put the real return
 * address back into the registers): walked with the CFI tables like every mode (unwind.h),
 * and sent to the agent as a snapshot when the process's tables are not loaded yet
 * (proc_announce.h). Exec and exit of processes are sent too: exec so that discovery looks
 * at a new program at once, exit of a process that made CUDA calls so that its live
 * allocations become leaks.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "gpu.h"
#include "regs.h"

struct ap_stack {
	__u64 ips[AP_GPU_STACK_DEPTH];
};
#include "unwind.h"
#include "bpf_stats.h"
#include "stack_store.h"
#include "proc_announce.h"
#include "pid_filter.h"

const volatile __u32 cfg_self_pid = 0; /* the agent: never traced */

struct inflight_call {
	__u64 ts;
	__u64 cookie;
	__u64 args[AP_GPU_NARGS];
	__u64 sargs[AP_GPU_NSARGS];
	__u32 flags; /* AP_GPU_EVF_SARGS */
	__u32 pad;
};

/* Calls in flight per thread. depth counts also the calls too deep to keep, so that their
 * returns pop nothing they should not. LRU: a thread killed inside a call never returns. */
struct inflight {
	__u32 depth;
	__u32 pad;
	struct inflight_call c[AP_GPU_MAX_NEST];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct inflight);
} gpu_inflight SEC(".maps");

/* Processes that made CUDA calls: their exit is sent. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} gpu_pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); /* resized by the loader */
} gpu_events SEC(".maps");

/* One record put together before it is sent with its real length. */
struct event_scratch {
	struct ap_gpu_event ev;
	__u64 ips[AP_GPU_STACK_DEPTH];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct event_scratch);
} gpu_scratch SEC(".maps");

AP_BPF_STATS(gpu_stats, AP_GPU_STAT_MAX);
AP_BPF_STAT_HELPERS(gpu_stats)

static const struct inflight inflight_zero;

static __always_inline __u32 class_of(__u64 cookie)
{
	return (__u32)(cookie >> AP_GPU_CK_CLASS_SHIFT) & 0xff;
}

static __always_inline bool wanted(__u32 tgid)
{
	if (tgid == cfg_self_pid)
		return false;
	if (cfg_filter_pids && !ap_tgid_in_targets(tgid)) {
		stat_inc(AP_GPU_STAT_FILTERED);
		return false;
	}
	return true;
}

static __always_inline void read_args(struct pt_regs *ctx, __u64 *args)
{
	args[0] = PT_REGS_PARM1(ctx);
	args[1] = PT_REGS_PARM2(ctx);
	args[2] = PT_REGS_PARM3(ctx);
	args[3] = PT_REGS_PARM4(ctx);
	args[4] = PT_REGS_PARM5(ctx);
	args[5] = ap_regs_parm6(ctx);
}

/* The stack arguments at entry: above the return address at [sp]. */
static __always_inline __u32 read_sargs(struct pt_regs *ctx, __u64 *sargs)
{
	if (bpf_probe_read_user(sargs, AP_GPU_NSARGS * sizeof(__u64),
				(const void *)(PT_REGS_SP(ctx) + 8))) {
		stat_inc(AP_GPU_STAT_SARGS_FAILED);
		return 0;
	}
	return AP_GPU_EVF_SARGS;
}

static __always_inline void mark_pid(__u32 tgid)
{
	__u8 yes = 1;

	if (!bpf_map_lookup_elem(&gpu_pids, &tgid))
		bpf_map_update_elem(&gpu_pids, &tgid, &yes, BPF_ANY);
}

/* The header and the CPU stack of a call, into the scratch, then out; or deferred. */
static __always_inline void send_call(void *ctx, struct event_scratch *s, __u32 tgid,
				      __u64 cookie)
{
	struct ap_gpu_deferred *d;
	struct ap_uregs start = {};
	struct ap_stack *st = NULL;
	bool defer = false;
	long err = 0;
	__u32 n = 0;
	__u64 size;

	s->ev.kind = AP_GPU_EV_CALL;
	s->ev.nframes = 0;
	bpf_get_current_comm(s->ev.comm, sizeof(s->ev.comm));
	mark_pid(tgid);
	if (cookie & AP_GPU_CK_STACK) {
		st = ap_walk_user_stack(ctx, tgid, &start, &n, &defer, &err);
		if (!st && err && err != -14 /* EFAULT: no user stack */)
			stat_inc(AP_GPU_STAT_STACK_ERR);
	}
	d = defer ? ap_defer_reserve(struct ap_gpu_deferred) : NULL;
	if (d) {
		__builtin_memcpy(&d->ev, &s->ev, sizeof(d->ev));
		ap_defer_submit(d, &d->snap, tgid, &start);
		stat_inc(AP_GPU_STAT_CALLS);
		return;
	}
	if (st) {
		if (n > AP_GPU_STACK_DEPTH)
			n = AP_GPU_STACK_DEPTH;
		bpf_probe_read_kernel(s->ips, sizeof(s->ips), st->ips);
		s->ev.nframes = n;
		if (defer)
			s->ev.flags |= AP_GPU_EVF_STACK_PART;
	}
	size = sizeof(s->ev) + (__u64)n * sizeof(__u64);
	if (size > sizeof(*s))
		size = sizeof(*s);
	if (bpf_ringbuf_output(&gpu_events, s, size, 0)) {
		stat_inc(AP_GPU_STAT_EVENTS_LOST);
		return;
	}
	stat_inc(AP_GPU_STAT_CALLS);
}

static __always_inline int on_entry(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx), id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, zero = 0, d;
	struct inflight_call *c;
	struct event_scratch *s;
	struct inflight *fl;

	if (!wanted(tgid))
		return 0;
	if (cookie & AP_GPU_CK_ENTRY_ONLY) {
		s = bpf_map_lookup_elem(&gpu_scratch, &zero);
		if (!s)
			return 0;
		__builtin_memset(&s->ev, 0, sizeof(s->ev));
		s->ev.ts_ns = bpf_ktime_get_ns();
		s->ev.cookie = cookie;
		s->ev.pid = tgid;
		s->ev.tid = (__u32)id;
		read_args(ctx, s->ev.args);
		if (cookie & AP_GPU_CK_STACK_ARGS)
			s->ev.flags |= read_sargs(ctx, s->ev.sargs);
		send_call(ctx, s, tgid, cookie);
		return 0;
	}
	fl = bpf_map_lookup_elem(&gpu_inflight, &id);
	if (!fl) {
		bpf_map_update_elem(&gpu_inflight, &id, &inflight_zero, BPF_NOEXIST);
		fl = bpf_map_lookup_elem(&gpu_inflight, &id);
		if (!fl) {
			stat_inc(AP_GPU_STAT_INFLIGHT_FULL);
			return 0;
		}
	}
	d = fl->depth;
	if (d >= 64) { /* returns lost (longjmp, exceptions): start over */
		stat_inc(AP_GPU_STAT_UNBALANCED);
		d = 0;
	}
	fl->depth = d + 1;
	if (d >= AP_GPU_MAX_NEST) {
		stat_inc(AP_GPU_STAT_NEST_OVERFLOW);
		return 0;
	}
	c = &fl->c[d];
	c->ts = bpf_ktime_get_ns();
	c->cookie = cookie;
	c->flags = 0;
	if (d > 0 && d - 1 < AP_GPU_MAX_NEST &&
	    class_of(fl->c[d - 1].cookie) == class_of(cookie))
		c->cookie |= AP_GPU_CK_NESTED;
	read_args(ctx, c->args);
	if (cookie & AP_GPU_CK_STACK_ARGS)
		c->flags = read_sargs(ctx, c->sargs);
	return 0;
}

static __always_inline int on_return(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx), id = bpf_get_current_pid_tgid(), now;
	__u32 tgid = id >> 32, zero = 0, d;
	struct inflight_call *c;
	struct event_scratch *s;
	struct inflight *fl;

	if (!wanted(tgid))
		return 0;
	now = bpf_ktime_get_ns();
	fl = bpf_map_lookup_elem(&gpu_inflight, &id);
	if (!fl || fl->depth == 0) {
		stat_inc(AP_GPU_STAT_UNMATCHED_RETURN);
		return 0;
	}
	d = fl->depth - 1;
	fl->depth = d;
	if (d >= AP_GPU_MAX_NEST)
		return 0; /* counted at entry */
	c = &fl->c[d];
	if ((c->cookie & AP_GPU_CK_FN_MASK) != (cookie & AP_GPU_CK_FN_MASK)) {
		/* an entry or a return went missing: what is kept cannot be trusted */
		stat_inc(AP_GPU_STAT_UNBALANCED);
		fl->depth = 0;
		return 0;
	}
	if (c->cookie & AP_GPU_CK_NESTED) {
		stat_inc(AP_GPU_STAT_NESTED);
		return 0;
	}
	s = bpf_map_lookup_elem(&gpu_scratch, &zero);
	if (!s)
		return 0;
	__builtin_memset(&s->ev, 0, sizeof(s->ev));
	s->ev.ts_ns = c->ts;
	s->ev.dur_ns = now - c->ts;
	s->ev.cookie = cookie;
	s->ev.pid = tgid;
	s->ev.tid = (__u32)id;
	s->ev.flags = c->flags;
	__builtin_memcpy(s->ev.args, c->args, sizeof(s->ev.args));
	__builtin_memcpy(s->ev.sargs, c->sargs, sizeof(s->ev.sargs));
	s->ev.ret = PT_REGS_RC(ctx);
	if ((cookie & AP_GPU_CK_DEREF0) && s->ev.args[0]) {
		if (bpf_probe_read_user(&s->ev.out[0], sizeof(__u64), (const void *)s->ev.args[0]))
			stat_inc(AP_GPU_STAT_DEREF_FAILED);
		else
			s->ev.flags |= AP_GPU_EVF_OUT0;
	}
	if ((cookie & AP_GPU_CK_DEREF1) && s->ev.args[1]) {
		if (bpf_probe_read_user(&s->ev.out[1], sizeof(__u64), (const void *)s->ev.args[1]))
			stat_inc(AP_GPU_STAT_DEREF_FAILED);
		else
			s->ev.flags |= AP_GPU_EVF_OUT1;
	}
	send_call(ctx, s, tgid, cookie);
	return 0;
}

/*
 * The same two bodies, attached one probe per function (perf_event uprobes, any kernel with
 * uprobes) or all functions of a file at once (uprobe_multi links, Linux 6.6+: one syscall
 * instead of two per function, which took 2-3 ms each here, so that a program found at its
 * exec is probed before its first calls). The loader sets the multi programs' attach type
 * (libbpf 1.1 does not know "uprobe.multi") and drops them on a kernel without it.
 */
SEC("uprobe")
int gpu_enter(struct pt_regs *ctx)
{
	return on_entry(ctx);
}

SEC("uretprobe")
int gpu_exit(struct pt_regs *ctx)
{
	return on_return(ctx);
}

SEC("uprobe")
int gpu_enter_multi(struct pt_regs *ctx)
{
	return on_entry(ctx);
}

SEC("uprobe")
int gpu_exit_multi(struct pt_regs *ctx)
{
	return on_return(ctx);
}

static __always_inline void send_proc(__u32 kind, __u32 tgid, __u32 flags)
{
	struct ap_gpu_event *e = bpf_ringbuf_reserve(&gpu_events, sizeof(*e), 0);

	if (!e) {
		stat_inc(AP_GPU_STAT_PROC_EVENTS_LOST);
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = bpf_ktime_get_ns();
	e->kind = kind;
	e->flags = flags;
	e->pid = tgid;
	e->tid = (__u32)bpf_get_current_pid_tgid();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
}

/* ld.so's _dl_debug_state(), which it calls around every change of a process's libraries
 * (dlopen, dlclose, startup) for debuggers: discovery looks at the process again at once
 * instead of at its next rescan. */
SEC("uprobe")
int gpu_dl_state(struct pt_regs *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (tgid == cfg_self_pid || (cfg_filter_pids && !ap_tgid_in_targets(tgid)))
		return 0;
	send_proc(AP_GPU_EV_DLOPEN, tgid, 0);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(gpu_exec)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32, flags = 0;

	if (tgid == cfg_self_pid || (cfg_filter_pids && !ap_tgid_in_targets(tgid)))
		return 0;
	ap_proc_exec(tgid, false);
	/* the old image made CUDA calls: what it still holds leaks now */
	if (bpf_map_lookup_elem(&gpu_pids, &tgid)) {
		bpf_map_delete_elem(&gpu_pids, &tgid);
		flags = AP_GPU_EVF_WAS_GPU;
	}
	send_proc(AP_GPU_EV_EXEC, tgid, flags);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(gpu_exit_proc)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;

	ap_proc_exit();
	if ((__u32)id != tgid || !bpf_map_lookup_elem(&gpu_pids, &tgid))
		return 0;
	bpf_map_delete_elem(&gpu_pids, &tgid);
	send_proc(AP_GPU_EV_EXIT, tgid, AP_GPU_EVF_WAS_GPU);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
