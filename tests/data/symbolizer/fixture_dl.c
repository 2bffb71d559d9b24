// SPDX-License-Identifier: MIT
/* libapfix_dl.so: loaded with dlopen after the fixture was snapshotted. */

__attribute__((noinline, noclone)) int ap_fixdl_delta(int x)
{
	__asm__ volatile("" : "+r"(x));
	return x * 5;
}
