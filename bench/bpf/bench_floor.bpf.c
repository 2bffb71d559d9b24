// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Reference tracers for bench/syscall_overhead.py, loaded by tests/workloads/ap_bench_floor.c:
 *
 *  - floor_*: the same two tp_btf programs as syscall.bpf.c with empty bodies: what any
 *    sys_enter/sys_exit tracer pays before doing any work;
 *  - ts_*: the minimal latency tracer of the research notes: start time in task-local
 *    storage at sys_enter, latency summed into a per-CPU counter at sys_exit (no per-key
 *    aggregation, no histogram).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} ts_start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} ts_total SEC(".maps");

SEC("tp_btf/sys_enter")
int BPF_PROG(floor_enter, struct pt_regs *regs, long id)
{
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(floor_exit, struct pt_regs *regs, long ret)
{
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(ts_enter, struct pt_regs *regs, long id)
{
	__u64 *start = bpf_task_storage_get(&ts_start, bpf_get_current_task_btf(), NULL,
					    BPF_LOCAL_STORAGE_GET_F_CREATE);

	if (start)
		*start = bpf_ktime_get_ns();
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(ts_exit, struct pt_regs *regs, long ret)
{
	__u64 *start = bpf_task_storage_get(&ts_start, bpf_get_current_task_btf(), NULL, 0);
	__u32 zero = 0;
	__u64 *total;

	if (!start || !*start)
		return 0;
	total = bpf_map_lookup_elem(&ts_total, &zero);
	if (total)
		*total += bpf_ktime_get_ns() - *start;
	*start = 0;
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
