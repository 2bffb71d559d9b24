// SPDX-License-Identifier: MIT
/*
 * Shared library of the no-frame-pointer workloads (built -O2 -fomit-frame-pointer): the
 * middle of their call chains, so that every chain crosses a library boundary through the PLT.
 */
#include "nofp_lib.h"

volatile unsigned long nflib_sink;

/* Calls back into the executable: the chain goes exe -> library -> exe. Work after the call
 * keeps it from being a tail call (which would legitimately drop this frame). */
__attribute__((noinline, noclone)) unsigned long nflib_middle(nf_callback cb, unsigned long n)
{
	unsigned long r = cb(n);

	nflib_sink += r;
	return r ^ nflib_sink;
}
