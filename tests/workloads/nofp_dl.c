// SPDX-License-Identifier: MIT
/*
 * Library the no-frame-pointer workload loads with dlopen() after it started (built -O2
 * -fomit-frame-pointer): nfdl_work -> nfdl_leaf, a leaf without a frame of its own.
 */
volatile unsigned long nfdl_sink;

__attribute__((noinline, noclone)) unsigned long nfdl_leaf(unsigned long n)
{
	unsigned long x = nfdl_sink;

	for (unsigned long i = 0; i < n; i++)
		x = x * 2862933555777941757UL + 3037000493UL;
	return x;
}

__attribute__((noinline, noclone)) unsigned long nfdl_work(unsigned long n)
{
	unsigned long r = nfdl_leaf(n);

	nfdl_sink = r;
	return r + 1;
}
