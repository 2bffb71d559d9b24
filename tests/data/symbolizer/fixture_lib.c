// SPDX-License-Identifier: MIT
/* libapfix.so: an exported function and a file-local one (in .symtab only). */

__attribute__((noinline, noclone)) static int ap_fixlib_hidden(int x)
{
	__asm__ volatile("" : "+r"(x));
	return x ^ 0x5a;
}

__attribute__((noinline, noclone)) int ap_fixlib_gamma(int x)
{
	__asm__ volatile("" : "+r"(x));
	return ap_fixlib_hidden(x) + 7;
}

/* The address as the library itself sees it, so the executable's PLT never stands in. */
void *ap_fixlib_gamma_addr(void)
{
	return (void *)ap_fixlib_gamma;
}
