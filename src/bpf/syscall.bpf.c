// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Syscall latency: sys_enter stores the start time in task-local storage, sys_exit adds the
 * call to a per-CPU aggregate of (process, syscall): count, errors, total/min/max latency and
 * a log2 histogram. Errors per errno and slow calls' user stacks go to side maps touched only
 * by failing or slow calls, so the common path is two task-storage accesses, two clock reads
 * and one per-CPU hash update.
 *
 * Both programs are declared raw_tp; the loader turns them into tp_btf (same body, same
 * context: an array of u64 arguments) and keeps raw_tp only where tp_btf is refused.
 * Filters run at sys_enter: a filtered-out task never gets task storage, so its sys_exit
 * returns after one failed storage lookup.
 *
 * The maps are cumulative; the agent reads them while they fill and deletes only the entries
 * of processes that exited, so nothing is lost between a read and a delete.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "hist_bits.h"
#include "syscall.h"

#define EEXIST 17
#define MAX_ERRNO 4095
#define X86_TS_COMPAT 0x0002 /* arch/x86/include/asm/thread_info.h */
#define ARM64_TIF_32BIT 22   /* arch/arm64/include/asm/thread_info.h */

const volatile bool cfg_filter_pids = false;
const volatile bool cfg_filter_syscalls = false;
const volatile __u32 cfg_ncomms = 0;
const volatile __u64 cfg_comms[AP_SYS_MAX_COMMS][2] = {};
const volatile __u64 cfg_syscall_bits[AP_SYS_FILTER_BITS / 64] = {};
const volatile __u64 cfg_min_latency_ns = 0; /* 0: no slow-call accounting */
const volatile bool cfg_slow_stacks = false;
const volatile bool cfg_count_unmatched = false;
/* Key nrs (ABI bits included) of the calls that never return: exit, exit_group, compat ones. */
const volatile __u32 cfg_noreturn[4] = { ~0u, ~0u, ~0u, ~0u };

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct ap_sys_task);
} sys_tasks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256); /* AP_MAX_PIDS */
	__type(key, __u32);	  /* tgid */
	__type(value, __u8);
} target_pids SEC(".maps");

/* Allocated per key (no preallocation): a value is ~600 bytes on every CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384); /* resized by the loader */
	__type(key, struct ap_sys_key);
	__type(value, struct ap_sys_stats);
} sys_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, struct ap_sys_err_key);
	__type(value, __u64);
} sys_errnos SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct ap_sys_slow_key);
	__type(value, struct ap_sys_slow_val);
} sys_slow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 1); /* sized by the loader: 1 when --slow-stacks is off */
	__uint(key_size, sizeof(__u32));
	__uint(value_size, AP_SYS_STACK_DEPTH * sizeof(__u64));
} sys_stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, AP_SYS_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} sys_counters SEC(".maps");

/* Initial value of a new aggregate; never written. */
static struct ap_sys_stats zero_stats;

static __always_inline void stat_inc(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&sys_counters, &which);

	if (v)
		*v += 1; /* per-CPU slot, and a program never nests on its CPU: no atomic needed */
}

static __always_inline bool syscall_wanted(long id)
{
	if (id < 0 || id >= AP_SYS_FILTER_BITS)
		return false;
	return cfg_syscall_bits[id >> 6] & (1ULL << (id & 63));
}

static __always_inline bool comm_wanted(void)
{
	__u64 comm[2] = {};

	bpf_get_current_comm(comm, sizeof(comm)); /* zero-padded */
	for (__u32 i = 0; i < AP_SYS_MAX_COMMS; i++) {
		if (i >= cfg_ncomms)
			break;
		if (comm[0] == cfg_comms[i][0] && comm[1] == cfg_comms[i][1])
			return true;
	}
	return false;
}

/* The ABI of the current call: the same number means another syscall for a 32-bit task. */
static __always_inline __u32 abi_bits(struct task_struct *task)
{
#if defined(__TARGET_ARCH_x86)
	if (task->thread_info.status & X86_TS_COMPAT)
		return AP_SYS_ABI_COMPAT;
#elif defined(__TARGET_ARCH_arm64)
	if (task->thread_info.flags & (1UL << ARM64_TIF_32BIT))
		return AP_SYS_ABI_COMPAT;
#endif
	return 0;
}

/* This CPU's aggregate of `key`, created (with the process name) on first use. */
static __always_inline struct ap_sys_stats *stats_of(struct ap_sys_key *key)
{
	struct ap_sys_stats *v = bpf_map_lookup_elem(&sys_stats, key);
	struct task_struct *task;
	long err;

	if (v)
		return v;
	err = bpf_map_update_elem(&sys_stats, key, &zero_stats, BPF_NOEXIST);
	v = bpf_map_lookup_elem(&sys_stats, key); /* -EEXIST: another CPU created it */
	if (!v) {
		stat_inc(AP_SYS_STAT_STATS_FULL);
		return NULL;
	}
	if (!err) {
		task = bpf_get_current_task_btf();
		BPF_CORE_READ_STR_INTO(&v->comm, task, group_leader, comm);
	}
	return v;
}

static __always_inline void count_errno(const struct ap_sys_key *key, __u32 err)
{
	struct ap_sys_err_key ek = { .pid = key->pid, .nr = key->nr, .err = err };
	__u64 one = 1, *c;

	c = bpf_map_lookup_elem(&sys_errnos, &ek);
	if (c) {
		*c += 1;
		return;
	}
	if (bpf_map_update_elem(&sys_errnos, &ek, &one, BPF_NOEXIST) == 0)
		return;
	c = bpf_map_lookup_elem(&sys_errnos, &ek);
	if (c)
		*c += 1;
	else
		stat_inc(AP_SYS_STAT_ERRNO_FULL);
}

static __always_inline void record_slow(void *ctx, const struct ap_sys_key *key, __u64 delta)
{
	struct ap_sys_slow_key sk = { .pid = key->pid, .nr = key->nr };
	struct ap_sys_slow_val one = { .count = 1, .total_ns = delta }, *v;
	long id = bpf_get_stackid(ctx, &sys_stacks, BPF_F_USER_STACK);

	if (id < 0)
		stat_inc(id == -EEXIST ? AP_SYS_STAT_STACK_COLLISION : AP_SYS_STAT_STACK_ERR);
	sk.stack_id = id < 0 ? -1 : (__s32)id;

	v = bpf_map_lookup_elem(&sys_slow, &sk);
	if (!v) {
		if (bpf_map_update_elem(&sys_slow, &sk, &one, BPF_NOEXIST) == 0)
			return;
		v = bpf_map_lookup_elem(&sys_slow, &sk);
		if (!v) {
			stat_inc(AP_SYS_STAT_SLOW_FULL);
			return;
		}
	}
	__sync_fetch_and_add(&v->count, 1);
	__sync_fetch_and_add(&v->total_ns, delta);
}

SEC("raw_tp/sys_enter")
int BPF_PROG(sys_enter, struct pt_regs *regs, long id)
{
	struct task_struct *task;
	struct ap_sys_task *t;
	__u32 abi;

	if (cfg_filter_syscalls && !syscall_wanted(id))
		return 0;
	if (cfg_filter_pids) {
		__u32 tgid = bpf_get_current_pid_tgid() >> 32;

		if (!bpf_map_lookup_elem(&target_pids, &tgid))
			return 0;
	}
	if (cfg_ncomms && !comm_wanted())
		return 0;
	if (id < 0) /* not a syscall: a tracer or seccomp cancelled it */
		return 0;

	task = bpf_get_current_task_btf();
	abi = abi_bits(task);
	if (abi && cfg_filter_syscalls) /* --syscall names native calls */
		return 0;

	if (((__u32)id | abi) == cfg_noreturn[0] || ((__u32)id | abi) == cfg_noreturn[1] ||
	    ((__u32)id | abi) == cfg_noreturn[2] || ((__u32)id | abi) == cfg_noreturn[3]) {
		struct ap_sys_key key = { .pid = bpf_get_current_pid_tgid() >> 32,
					  .nr = (__u32)id | abi };
		struct ap_sys_stats *v = stats_of(&key);

		if (v)
			v->noreturn += 1;
		return 0;
	}

	t = bpf_task_storage_get(&sys_tasks, task, NULL, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!t) {
		stat_inc(AP_SYS_STAT_TASK_STORAGE_ERR);
		return 0;
	}
	t->nr = (__u32)id | abi;
	t->start_ns = bpf_ktime_get_ns();
	return 0;
}

SEC("raw_tp/sys_exit")
int BPF_PROG(sys_exit, struct pt_regs *regs, long ret)
{
	struct ap_sys_task *t;
	struct ap_sys_stats *v;
	struct ap_sys_key key;
	__u64 now, delta;

	t = bpf_task_storage_get(&sys_tasks, bpf_get_current_task_btf(), NULL, 0);
	if (!t || !t->start_ns) {
		/* with filters this is every filtered-out call: stay silent and cheap */
		if (cfg_count_unmatched)
			stat_inc(AP_SYS_STAT_UNMATCHED_EXIT);
		return 0;
	}
	now = bpf_ktime_get_ns();
	delta = now - t->start_ns;
	t->start_ns = 0;
	key.pid = bpf_get_current_pid_tgid() >> 32;
	key.nr = t->nr;

	v = stats_of(&key);
	if (!v)
		return 0;
	/* per-CPU value: plain read-modify-write */
	if (!v->count || delta < v->min_ns)
		v->min_ns = delta;
	if (delta > v->max_ns)
		v->max_ns = delta;
	v->count += 1;
	v->total_ns += delta;
	v->hist[ap_log2_u64(delta) & (AP_SYS_HIST_SLOTS - 1)] += 1;

	if (ret < 0 && ret >= -MAX_ERRNO) {
		v->errors += 1;
		count_errno(&key, (__u32)-ret);
	}
	if (cfg_min_latency_ns && delta >= cfg_min_latency_ns) {
		v->slow += 1;
		if (cfg_slow_stacks)
			record_slow(ctx, &key, delta);
	}
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
