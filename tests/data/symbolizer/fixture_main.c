// SPDX-License-Identifier: MIT
/*
 * Symbolizer test fixture, built as a PIE and as a non-PIE executable. Run, it prints the
 * runtime addresses of its functions (and of a function in libapfix.so) on stdout, then serves
 * commands from stdin until EOF: "dlopen" loads the library named by argv[1] and prints the
 * address of its function. It never outlives a broken test by more than the alarm below.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void *ap_fixlib_gamma_addr(void);
int ap_fixlib_gamma(int x);

__attribute__((noinline, noclone)) int ap_fix_alpha(int x)
{
	__asm__ volatile("" : "+r"(x));
	return x * 3 + 1;
}

__attribute__((noinline, noclone)) int ap_fix_beta(int x)
{
	__asm__ volatile("" : "+r"(x));
	return ap_fix_alpha(x) + ap_fixlib_gamma(x);
}

/*
 * Symbols with exact extents for the size rules: ap_fix_sized covers 4 bytes and is followed
 * by a 12-byte gap no symbol covers; ap_fix_nosize has no size, so it runs up to ap_fix_after.
 */
__asm__(".text\n"
	".globl ap_fix_sized\n"
	".type ap_fix_sized, @function\n"
	"ap_fix_sized:\n"
	"	nop\n	nop\n	nop\n	ret\n"
	".size ap_fix_sized, 4\n"
	".fill 12, 1, 0xcc\n"
	".globl ap_fix_nosize\n"
	".type ap_fix_nosize, @function\n"
	"ap_fix_nosize:\n"
	".fill 16, 1, 0x90\n"
	".globl ap_fix_after\n"
	".type ap_fix_after, @function\n"
	"ap_fix_after:\n"
	"	ret\n"
	".size ap_fix_after, 1\n");

int main(int argc, char **argv)
{
	char line[64];

	alarm(60);
	printf("alpha %p\nbeta %p\ngamma %p\nready\n", (void *)ap_fix_alpha, (void *)ap_fix_beta,
	       ap_fixlib_gamma_addr());
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		if (!strncmp(line, "dlopen", 6) && argc > 1) {
			void *h = dlopen(argv[1], RTLD_NOW);

			printf("delta %p\n", h ? dlsym(h, "ap_fixdl_delta") : NULL);
			fflush(stdout);
		}
	}
	return ap_fix_beta(argc) == 42;
}
