// SPDX-License-Identifier: MIT
/*
 * Fixture of tests/unit/test_unwind_cfi.c, built -O2 -fomit-frame-pointer into
 * libunwfix.so (.eh_frame) and libunwfix_dbg.so (.debug_frame only, compressed).
 * unwfix_a -> unwfix_b (realigned frame: CFA from RBP) -> unwfix_c (large frame) -> cb
 */
typedef void (*unwfix_cb)(void *arg);

volatile unsigned long unwfix_sink;

__attribute__((noinline, noclone)) void unwfix_c(unwfix_cb cb, void *arg)
{
	volatile char big[40000]; /* CFA offset beyond 16 bits after scaling */

	big[unwfix_sink & 1023] = 1;
	cb(arg);
	unwfix_sink += big[(unwfix_sink >> 3) & 1023];
}

__attribute__((noinline, noclone)) void unwfix_b(unwfix_cb cb, void *arg)
{
	unsigned long buf[8] __attribute__((aligned(64)));

	for (int i = 0; i < 8; i++)
		buf[i] = unwfix_sink + (unsigned long)i;
	__asm__ volatile("" : : "r"(buf) : "memory");
	unwfix_c(cb, arg);
	unwfix_sink += buf[unwfix_sink & 7];
}

__attribute__((noinline, noclone)) void unwfix_a(unwfix_cb cb, void *arg)
{
	unwfix_b(cb, arg);
	unwfix_sink++;
}
