/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Log2 histograms shared by BPF programs and userspace. Slot i counts values v with
 * floor(log2(v)) == i (slot 0 also holds 0), so 64 slots cover every __u64. Slots are __u64:
 * __u32 slots wrap on long runs.
 */
#ifndef AP_BPF_HIST_BITS_H
#define AP_BPF_HIST_BITS_H

#define AP_HIST_SLOTS 64

/* floor(log2(v)), 0 for v == 0. Branch-light so the verifier and the hot path stay cheap. */
static __always_inline unsigned int ap_log2_u64(__u64 v)
{
	unsigned int r = 0, shift;

	shift = (v > 0xFFFFFFFFULL) << 5; v >>= shift; r |= shift;
	shift = (v > 0xFFFF) << 4; v >>= shift; r |= shift;
	shift = (v > 0xFF) << 3; v >>= shift; r |= shift;
	shift = (v > 0xF) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (unsigned int)(v >> 1);
	return r;
}

#endif
