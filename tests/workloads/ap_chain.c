// SPDX-License-Identifier: MIT
/*
 * Burns CPU in a known call chain: main -> chain_outer -> chain_middle -> chain_inner.
 * Usage: ap_chain SECONDS   prints its pid, spins for SECONDS of wall time and exits.
 *        ap_chain -n CALLS   prints its pid, does a fixed amount of work (CALLS chains) and
 *                            exits: the benchmark's unit of work.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static volatile unsigned long sink;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

__attribute__((noinline)) void chain_done(unsigned long x)
{
	sink = x;
}

/* Not a leaf (it calls chain_done): gcc gives leaf functions no frame even with
 * -fno-omit-frame-pointer, which would hide chain_middle from a frame-pointer unwinder. */
__attribute__((noinline)) void chain_inner(unsigned long n)
{
	unsigned long x = sink;

	for (unsigned long i = 0; i < n; i++)
		x = x * 6364136223846793005UL + 1442695040888963407UL;
	chain_done(x);
}

__attribute__((noinline)) void chain_middle(unsigned long n)
{
	chain_inner(n);
	sink++;
}

__attribute__((noinline)) void chain_outer(unsigned long n)
{
	chain_middle(n);
	sink++;
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 3.0, end;

	printf("%d\n", (int)getpid());
	fflush(stdout);
	if (argc > 2 && argv[1][0] == '-' && argv[1][1] == 'n') {
		long calls = atol(argv[2]);

		for (long i = 0; i < calls; i++)
			chain_outer(2000000);
		return 0;
	}
	end = now() + seconds;
	while (now() < end)
		chain_outer(2000000);
	return 0;
}
