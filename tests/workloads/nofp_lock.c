// SPDX-License-Identifier: MIT
/*
 * Contends a pthread mutex from a known call chain, built -O2 -fomit-frame-pointer, so only
 * CFI-based unwinding recovers the waiter's callers:
 *
 *   nl_thread -> nl_outer -> nl_middle -> nl_take (no frame) -> pthread_mutex_lock (libc)
 *
 * Each of THREADS threads holds the mutex ~200 us at a time, so the others block on it.
 * Usage: nofp_lock SECONDS [THREADS]  prints its pid once ready, runs SECONDS.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t nl_mutex = PTHREAD_MUTEX_INITIALIZER;
static double nl_end;
volatile unsigned long nl_sink;

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Frameless: takes the lock, works while holding it, lets go. */
__attribute__((noinline, noclone)) unsigned long nl_take(unsigned long n)
{
	unsigned long x;

	pthread_mutex_lock(&nl_mutex);
	x = nl_sink;
	for (unsigned long i = 0; i < n; i++)
		x = x * 6364136223846793005UL + 1442695040888963407UL;
	nl_sink = x;
	pthread_mutex_unlock(&nl_mutex);
	return x;
}

__attribute__((noinline, noclone)) unsigned long nl_middle(unsigned long n)
{
	unsigned long r = nl_take(n);

	nl_sink ^= r >> 3;
	return r * 3;
}

__attribute__((noinline, noclone)) unsigned long nl_outer(unsigned long n)
{
	unsigned long r = nl_middle(n);

	nl_sink += r;
	return r;
}

__attribute__((noinline, noclone)) void *nl_thread(void *arg)
{
	(void)arg;
	while (now() < nl_end)
		nl_outer(200000);
	return NULL;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 3.0;
	int n = argc > 2 ? atoi(argv[2]) : 4;
	pthread_t th[16];

	if (n < 2 || n > 16)
		n = 4;
	nl_end = now() + secs;
	printf("%d\n", (int)getpid());
	fflush(stdout);
	for (int i = 0; i < n; i++)
		pthread_create(&th[i], NULL, nl_thread, NULL);
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	return 0;
}
