// SPDX-License-Identifier: MIT
/* libapdw_dl.so: loaded by dwfix with dlopen after it was snapshotted. */
#include "dwarf_fix.h"

static void *ap_dwd_ret;

__attribute__((noinline, noclone)) void ap_dwd_leaf(int x)
{
	ap_dwd_ret = __builtin_return_address(0);
	ap_dwfix_sink = x;
}

static inline __attribute__((always_inline)) int dwd_mid(int x)
{
	int r = ap_dwfix_mix(x - 1, ap_dwd_leaf); /* @line dwd_mid_call */
	return r | ap_dwfix_sink;
}

__attribute__((noinline, noclone)) int ap_dwd_outer(int x)
{
	int r = dwd_mid(x + 5); /* @line dwd_outer_call */
	return r - ap_dwfix_sink;
}

/* Runs the chain and returns the return address its leaf saw. */
void *ap_dwd_run(int x)
{
	ap_dwfix_sink += ap_dwd_outer(x);
	return ap_dwd_ret;
}
