// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The floor of any syscall tracer built on sys_enter/sys_exit: the same two tp_btf programs
 * as syscall.bpf.c with empty bodies. bench/syscall_overhead.py loads them (through
 * tests/workloads/ap_bench_floor.c) to show how much of --mode syscall's cost is the
 * tracepoints themselves.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

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

char LICENSE[] SEC("license") = "Dual BSD/GPL";
