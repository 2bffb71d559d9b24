// SPDX-License-Identifier: MIT
/*
 * Process churn for the fault tests, the soak benchmark and the ThreadSanitizer run: starts
 * short-lived processes at a given rate, each busy for a while (so that CPU samples land in
 * it and the agent snapshots it while it exits), optionally exec()ing a program first.
 *
 *   ap_churn [-r PER_SECOND] [-d SECONDS] [-l BUSY_US] [-j MAX_LIVE] [-x PROGRAM]
 *
 * -r 0: as fast as possible (a burst). -d 0: until killed. Prints its pid on the first line
 * (tests/lib/aptest.py start_workload), and "started N" on stderr at the end.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Busy for `us` microseconds in a named function, so that samples have a stack to show. */
static __attribute__((noinline)) unsigned long churn_child_work(long us)
{
	double end = now() + (double)us / 1e6;
	volatile unsigned long x = 0;

	while (now() < end)
		for (int i = 0; i < 1000; i++)
			x += (unsigned long)i * 2654435761u;
	return x;
}

static long num(const char *s, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 0) {
		fprintf(stderr, "ap_churn: bad %s '%s'\n", what, s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	long rate = 200, secs = 10, busy_us = 2000, max_live = 64;
	const char *prog = NULL;
	unsigned long started = 0, failed = 0;
	long live = 0;
	double t0, next;
	int opt;

	while ((opt = getopt(argc, argv, "r:d:l:j:x:")) != -1) {
		switch (opt) {
		case 'r': rate = num(optarg, "rate"); break;
		case 'd': secs = num(optarg, "duration"); break;
		case 'l': busy_us = num(optarg, "busy time"); break;
		case 'j': max_live = num(optarg, "live processes"); break;
		case 'x': prog = optarg; break;
		default:
			fprintf(stderr, "usage: ap_churn [-r N/s] [-d s] [-l us] [-j live] [-x prog]\n");
			return 2;
		}
	}
	if (max_live < 1)
		max_live = 1;
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	printf("%d\n", getpid());
	fflush(stdout);

	t0 = now();
	next = t0;
	while (!stop && (secs == 0 || now() - t0 < (double)secs)) {
		pid_t pid;

		/* reap what has exited; stay under max_live children */
		while (live > 0 && waitpid(-1, NULL, live >= max_live ? 0 : WNOHANG) > 0)
			live--;
		if (rate > 0) {
			double t = now();

			if (t < next) {
				struct timespec ts = { 0, (long)((next - t) * 1e9) };

				nanosleep(&ts, NULL);
				continue;
			}
			next += 1.0 / (double)rate;
			if (next < t - 1.0)
				next = t; /* fell behind by more than a second: do not burst to catch up */
		}
		pid = fork();
		if (pid < 0) {
			failed++;
			continue;
		}
		if (pid == 0) {
			if (prog) {
				execl(prog, prog, (char *)NULL);
				_exit(127);
			}
			churn_child_work(busy_us);
			_exit(0);
		}
		started++;
		live++;
	}
	while (live > 0 && waitpid(-1, NULL, 0) > 0)
		live--;
	fprintf(stderr, "started %lu (fork failed %lu) in %.1f s\n", started, failed, now() - t0);
	return 0;
}
