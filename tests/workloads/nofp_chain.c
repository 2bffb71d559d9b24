// SPDX-License-Identifier: MIT
/*
 * Burns CPU in known call chains, built -O2 -fomit-frame-pointer (as most distribution
 * binaries are), so only CFI-based unwinding can recover them:
 *
 *   lib: main -> nf_outer -> [nf_inlined, inlined] -> nflib_middle (libnofp_lib.so, via the
 *        PLT) -> nf_inner (callback, realigns its stack: CFA from RBP) -> nf_leaf (no frame)
 *   dl:  main -> nf_dl_caller -> nfdl_work (libnofp_dl.so, dlopen()ed) -> nfdl_leaf (no frame)
 *
 *   sig: lib, plus a profiling timer whose handler runs nf_on_signal -> nf_sig_work ->
 *        nf_leaf on top of whatever it interrupted (through the __restore_rt trampoline)
 *   late: lib for the first half, then dlopen() and dl (a library loaded while profiled)
 *
 * A frame-pointer unwinder loses the callers of every frameless function (here: all of them).
 * Usage: nofp_chain SECONDS [lib|dl|both|sig|late]  prints its pid once ready, runs SECONDS
 *        nofp_chain -n CALLS [lib|dl|both]          fixed amount of work (the benchmark's unit)
 *        nofp_chain -w ...                          then waits for a line on stdin to start
 */
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "nofp_lib.h"

#define WORK 2000000UL

volatile unsigned long nf_sink;
static unsigned long (*dl_work)(unsigned long n);

/* A leaf: no calls, so gcc gives it no frame at all (CFA = RSP + 8 throughout). */
__attribute__((noinline, noclone)) unsigned long nf_leaf(unsigned long n)
{
	unsigned long x = nf_sink;

	for (unsigned long i = 0; i < n; i++)
		x = x * 6364136223846793005UL + 1442695040888963407UL;
	return x;
}

/* Over-aligned local: gcc realigns the stack and addresses the frame through RBP. */
__attribute__((noinline, noclone)) unsigned long nf_inner(unsigned long n)
{
	unsigned long buf[8] __attribute__((aligned(64)));
	unsigned long r;

	for (int i = 0; i < 8; i++)
		buf[i] = n + (unsigned long)i;
	__asm__ volatile("" : : "r"(buf) : "memory");
	r = nf_leaf(n);
	return r + buf[(r >> 3) & 7];
}

/* Inlined into nf_outer: a symbolizer with DWARF shows it as an inline frame; the physical
 * chain goes nf_outer -> nflib_middle. */
static inline __attribute__((always_inline)) unsigned long nf_inlined(unsigned long n)
{
	return nflib_middle(nf_inner, n) * 3;
}

__attribute__((noinline, noclone)) unsigned long nf_outer(unsigned long n)
{
	unsigned long r = nf_inlined(n);

	nf_sink += r;
	return r;
}

__attribute__((noinline, noclone)) unsigned long nf_dl_caller(unsigned long n)
{
	unsigned long r = dl_work(n);

	nf_sink ^= r;
	return r;
}

__attribute__((noinline, noclone)) unsigned long nf_sig_work(unsigned long n)
{
	unsigned long r = nf_leaf(n);

	nf_sink ^= r;
	return r;
}

__attribute__((noinline, noclone)) void nf_on_signal(int sig)
{
	nf_sig_work(WORK / 8);
	nf_sink += (unsigned long)sig;
}

static int load_dl(void)
{
	/* found next to the executable (RUNPATH $ORIGIN) */
	void *dl = dlopen("libnofp_dl.so", RTLD_NOW);

	dl_work = dl ? (unsigned long (*)(unsigned long))dlsym(dl, "nfdl_work") : NULL;
	if (!dl_work) {
		fprintf(stderr, "dlopen libnofp_dl.so: %s\n", dlerror());
		return -1;
	}
	return 0;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void one_call(const char *mode, unsigned long i)
{
	if (!dl_work || !strcmp(mode, "lib") || !strcmp(mode, "sig") ||
	    (!strcmp(mode, "both") && !(i & 1)))
		nf_outer(WORK);
	else
		nf_dl_caller(WORK);
}

int main(int argc, char **argv)
{
	int wait_go = argc > 1 && !strcmp(argv[1], "-w");
	char go[16];

	if (wait_go) {
		argv++;
		argc--;
	}
	int fixed = argc > 1 && !strcmp(argv[1], "-n");
	const char *mode = argc > 2 + fixed ? argv[2 + fixed] : "both";

	if (argc < 2 + fixed) {
		fprintf(stderr, "usage: %s SECONDS|-n CALLS [lib|dl|both]\n", argv[0]);
		return 2;
	}
	if ((!strcmp(mode, "dl") || !strcmp(mode, "both")) && load_dl())
		return 1;
	if (!strcmp(mode, "sig")) {
		struct itimerval it = { { 0, 2000 }, { 0, 2000 } };

		signal(SIGPROF, nf_on_signal);
		setitimer(ITIMER_PROF, &it, NULL);
	}
	printf("%d\n", (int)getpid());
	fflush(stdout);
	if (wait_go && !fgets(go, sizeof(go), stdin))
		return 1;
	if (fixed) {
		long calls = atol(argv[2]);

		for (long i = 0; i < calls; i++)
			one_call(mode, (unsigned long)i);
	} else {
		double start = now(), end = start + atof(argv[1]);

		for (unsigned long i = 0; now() < end; i++) {
			if (!strcmp(mode, "late") && !dl_work && now() > (start + end) / 2 &&
			    load_dl())
				return 1;
			one_call(mode, i);
		}
	}
	return 0;
}
