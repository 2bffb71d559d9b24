/* SPDX-License-Identifier: MIT */
/*
 * Shared by the DWARF fixtures: an always-inline helper that lives in a header, so that the
 * innermost inline frame of a chain has a different source file from its callers. Lines the
 * tests look for carry an "@line NAME" marker; the tests find them with grep.
 */
#ifndef AP_DWARF_FIX_H
#define AP_DWARF_FIX_H

extern volatile int ap_dwfix_sink;

static inline __attribute__((always_inline)) int ap_dwfix_mix(int x, void (*leaf)(int))
{
	leaf(x); /* @line mix_call */
	return x * 3 + ap_dwfix_sink;
}

#endif
