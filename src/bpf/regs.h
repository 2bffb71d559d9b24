/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Register access that libbpf's bpf_tracing.h macros (PT_REGS_IP/SP/FP, PT_REGS_PARMn_SYSCALL)
 * do not cover, one definition per architecture (__TARGET_ARCH_*, set by cmake/bpf.cmake).
 * Everything else reads registers through those macros, so that a port touches only this
 * file and the CFI walker, which is x86-64 only (docs/unwinding.md). Include after
 * vmlinux.h, bpf_tracing.h and bpf_core_read.h.
 */
#ifndef AP_BPF_REGS_H
#define AP_BPF_REGS_H

#if !defined(__TARGET_ARCH_x86) && !defined(__TARGET_ARCH_arm64)
#error "unsupported BPF target architecture: define __TARGET_ARCH_x86 or __TARGET_ARCH_arm64"
#endif

/* The syscall number of the call these registers were saved at (a task's pt_regs at
 * sys_enter/sys_exit); read with CO-RE, since the struct differs between kernels. */
static __always_inline long ap_regs_syscall_nr(const struct pt_regs *regs)
{
#if defined(__TARGET_ARCH_x86)
	return BPF_CORE_READ(regs, orig_ax);
#else
	return BPF_CORE_READ(regs, syscallno);
#endif
}

/* The sixth integer argument at a function's entry (a uprobe's registers): libbpf's
 * bpf_tracing.h stops at PT_REGS_PARM5 before v1.2. */
static __always_inline unsigned long ap_regs_parm6(const struct pt_regs *regs)
{
#if defined(__TARGET_ARCH_x86)
	return regs->r9;
#else
	return regs->regs[5];
#endif
}

/* Whether a perf_event sample's registers (bpf_perf_event_data.regs) are user mode's. */
static __always_inline bool ap_regs_user_mode(const bpf_user_pt_regs_t *regs)
{
#if defined(__TARGET_ARCH_x86)
	/* the privilege level in cs; the context allows only 8-byte loads, and cs is a 16-bit
	 * field */
	__u64 cs = *(volatile const __u64 *)((const void *)regs +
					     __builtin_offsetof(struct pt_regs, cs));

	return (cs & 3) == 3;
#else
	/* PSTATE.M[3:0] is 0 (EL0t) in user mode */
	return (regs->pstate & 0xf) == 0;
#endif
}

#endif
