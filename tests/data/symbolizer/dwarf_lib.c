// SPDX-License-Identifier: MIT
/* libapdw.so: a physical function with a two-level inline chain, linked by dwfix. */
#include "dwarf_fix.h"

static void *ap_dwl_ret;

__attribute__((noinline, noclone)) void ap_dwl_leaf(int x)
{
	ap_dwl_ret = __builtin_return_address(0);
	ap_dwfix_sink = x;
}

static inline __attribute__((always_inline)) int dwl_mid(int x)
{
	int r = ap_dwfix_mix(x + 1, ap_dwl_leaf); /* @line dwl_mid_call */
	return r ^ ap_dwfix_sink;
}

__attribute__((noinline, noclone)) int ap_dwl_outer(int x)
{
	int r = dwl_mid(x * 2); /* @line dwl_outer_call */
	return r + ap_dwfix_sink;
}

void *ap_dwl_ret_addr(void)
{
	return ap_dwl_ret;
}
