// SPDX-License-Identifier: MIT
/*
 * DWARF symbolizer fixture, built -O2 -g. It runs a physical function with a two-level inline
 * chain (ap_dwm_outer <- dwm_mid <- ap_dwfix_mix) in itself and in libapdw.so, and prints the
 * return address each chain's leaf call saw ("main_ret", "lib_ret") and the leaf's own address
 * ("leaf"). Then it serves stdin until EOF: "dlopen" loads argv[1] (libapdw_dl.so), runs its
 * chain and prints "dl_ret". It never outlives a broken test by more than the alarm below.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dwarf_fix.h"

volatile int ap_dwfix_sink;
static void *ap_dwm_ret;

int ap_dwl_outer(int x);
void *ap_dwl_ret_addr(void);

__attribute__((noinline, noclone)) void ap_dwm_leaf(int x) /* @line leaf_decl */
{
	ap_dwm_ret = __builtin_return_address(0); /* @line leaf_body */
	ap_dwfix_sink = x;
}

static inline __attribute__((always_inline)) int dwm_mid(int x)
{
	int r = ap_dwfix_mix(x + 1, ap_dwm_leaf); /* @line dwm_mid_call */
	return r ^ ap_dwfix_sink;
}

__attribute__((noinline, noclone)) int ap_dwm_outer(int x)
{
	int r = dwm_mid(x * 2); /* @line dwm_outer_call */
	return r + ap_dwfix_sink;
}

int main(int argc, char **argv)
{
	char line[64];

	alarm(60);
	ap_dwfix_sink = ap_dwm_outer(argc) + ap_dwl_outer(argc);
	printf("main_ret %p\nlib_ret %p\nleaf %p\nready\n", ap_dwm_ret, ap_dwl_ret_addr(),
	       (void *)ap_dwm_leaf);
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		if (!strncmp(line, "dlopen", 6) && argc > 1) {
			void *h = dlopen(argv[1], RTLD_NOW);
			void *(*run)(int) = h ? (void *(*)(int))dlsym(h, "ap_dwd_run") : NULL;

			printf("dl_ret %p\n", run ? run(argc) : NULL);
			fflush(stdout);
		}
	}
	return ap_dwfix_sink == 42;
}
