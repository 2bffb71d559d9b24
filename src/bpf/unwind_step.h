/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * One step of the user stack walk: from a frame's registers and its table row to the caller's
 * registers. Shared by the BPF walker (unwind.h) and the agent's replay of deferred samples
 * (src/unwind/unwinder_replay.c, also driven by the unit tests), so both run the same
 * arithmetic. The includer defines
 *   AP_UNWIND_READ(rctx, dst, addr)  read the u64 at user address addr into *dst, 0 on
 *                              success; rctx is what the caller passed to the step functions
 *   AP_UNWIND_INLINE           function attribute (__always_inline in BPF)
 * before including this file, and the __u64/__s16/... types.
 */
#ifndef AP_BPF_UNWIND_STEP_H
#define AP_BPF_UNWIND_STEP_H

#include "unwind_table.h"

struct ap_uregs {
	__u64 pc; /* leaf: the interrupted pc; caller frames: the return address */
	__u64 sp;
	__u64 bp;
	__u32 exact; /* pc is not a return address (leaf, or interrupted by a signal) */
	__u32 pad;
};

/* step results besides the ap_unwind_status values */
#define AP_STEP_OK 0
#define AP_STEP_USE_FP (-1)

/* The pc to look a frame up at: a return address may be the first byte after the function
 * (a call to a noreturn function), so callers are looked up one byte earlier. */
static AP_UNWIND_INLINE __u64 ap_unwind_lookup_pc(const struct ap_uregs *r)
{
	return r->exact ? r->pc : r->pc - 1;
}

/* Caller's registers by frame pointer: [RBP] = caller's RBP, [RBP + 8] = return address. */
static AP_UNWIND_INLINE int ap_unwind_fp_step(struct ap_uregs *r, void *rctx)
{
	__u64 ra = 0, bp = 0;

	if (r->bp == 0)
		return AP_UNWIND_COMPLETE; /* _start and thread entry clear RBP */
	if (r->bp < r->sp || (r->bp & 7))
		return AP_UNWIND_FAIL_CFA;
	if (AP_UNWIND_READ(rctx, &bp, r->bp) || AP_UNWIND_READ(rctx, &ra, r->bp + 8))
		return AP_UNWIND_FAIL_READ;
	r->sp = r->bp + 16;
	r->bp = bp;
	r->pc = ra;
	r->exact = 0;
	return ra ? AP_STEP_OK : AP_UNWIND_COMPLETE;
}

/* Caller's registers from a table row. Returns AP_STEP_OK, AP_STEP_USE_FP (no usable rule),
 * or the ap_unwind_status that ends the walk. */
static AP_UNWIND_INLINE int ap_unwind_row_step(const struct ap_unwind_row *row, struct ap_uregs *r,
					       void *rctx)
{
	__u8 kind = row->kind & AP_CFA_KIND_MASK;
	__s64 off = row->cfa_off;
	__u64 cfa, ra = 0, bp = r->bp;

	if (row->kind & AP_CFA_SCALED)
		off *= 8;
	switch (kind) {
	case AP_CFA_RSP:
		cfa = r->sp + off;
		break;
	case AP_CFA_RBP:
		cfa = r->bp + off;
		break;
	case AP_CFA_PLT:
		cfa = r->sp + off;
		if ((r->pc & 15) >= ((row->kind >> AP_CFA_PARAM_SHIFT) & AP_CFA_PARAM_MASK))
			cfa += 8;
		break;
	case AP_CFA_DEREF_RBP:
		if (AP_UNWIND_READ(rctx, &cfa, r->bp + off))
			return AP_UNWIND_FAIL_READ;
		break;
	case AP_CFA_SIGNAL: {
		__u64 sp = 0, pc = 0;

		/* __restore_rt runs with RSP at the ucontext the kernel pushed */
		if (AP_UNWIND_READ(rctx, &bp, r->sp + AP_UCTX_RBP) ||
		    AP_UNWIND_READ(rctx, &sp, r->sp + AP_UCTX_RSP) ||
		    AP_UNWIND_READ(rctx, &pc, r->sp + AP_UCTX_RIP))
			return AP_UNWIND_FAIL_READ;
		r->sp = sp;
		r->bp = bp;
		r->pc = pc;
		r->exact = 1; /* the interrupted instruction, not a return address */
		return pc ? AP_STEP_OK : AP_UNWIND_COMPLETE;
	}
	case AP_CFA_END:
		return AP_UNWIND_COMPLETE;
	default: /* AP_CFA_NONE, AP_CFA_UNSUPPORTED */
		return AP_STEP_USE_FP;
	}
	/* the caller's frame is above this one: anything else would loop */
	if (cfa <= r->sp || (cfa & 7))
		return AP_UNWIND_FAIL_CFA;
	if (AP_UNWIND_READ(rctx, &ra, cfa - 8))
		return AP_UNWIND_FAIL_READ;
	if (row->rbp_off == AP_RBP_AT_RBP) {
		if (AP_UNWIND_READ(rctx, &bp, r->bp))
			return AP_UNWIND_FAIL_READ;
	} else if (row->rbp_off == AP_RBP_LOST) {
		bp = 0;
	} else if (row->rbp_off != AP_RBP_SAME) {
		if (AP_UNWIND_READ(rctx, &bp, cfa + (__s64)row->rbp_off * 8))
			return AP_UNWIND_FAIL_READ;
	}
	r->sp = cfa;
	r->bp = bp;
	r->pc = ra;
	r->exact = 0;
	return ra ? AP_STEP_OK : AP_UNWIND_COMPLETE;
}

#endif
