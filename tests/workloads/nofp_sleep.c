// SPDX-License-Identifier: MIT
/*
 * Makes slow system calls from a known call chain, built -O2 -fomit-frame-pointer, so only
 * CFI-based unwinding recovers the callers of the frameless functions:
 *
 *   main -> ns_outer -> ns_middle -> ns_sleep (no frame) -> nanosleep (libc)
 *
 * Usage: nofp_sleep SECONDS [MICROSECONDS]  prints its pid once ready, then sleeps in steps
 *        of MICROSECONDS (default 2000) for SECONDS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

volatile unsigned long ns_sink;

/* Frameless: a tail of work after the call keeps it from being a tail call. */
__attribute__((noinline, noclone)) unsigned long ns_sleep(long usec)
{
	struct timespec ts = { usec / 1000000, (usec % 1000000) * 1000 };

	nanosleep(&ts, NULL);
	return ns_sink + 1;
}

__attribute__((noinline, noclone)) unsigned long ns_middle(long usec)
{
	unsigned long r = ns_sleep(usec);

	ns_sink ^= r;
	return r * 3;
}

__attribute__((noinline, noclone)) unsigned long ns_outer(long usec)
{
	unsigned long r = ns_middle(usec);

	ns_sink += r;
	return r;
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 3.0;
	long usec = argc > 2 ? atol(argv[2]) : 2000;
	double end;

	printf("%d\n", (int)getpid());
	fflush(stdout);
	end = now() + secs;
	while (now() < end)
		ns_outer(usec);
	return (int)(ns_sink & 0);
}
