// SPDX-License-Identifier: MIT
/*
 * Makes an exact number of known syscalls, for syscall-mode tests and the benchmark.
 *
 *   ap_syscalls [-n N] [-e M] [-s S] [-w]
 *     prints its pid, then for each round makes exactly N getppid() calls, M openat() calls
 *     that fail with ENOENT and S nanosleep(2 ms) calls from slow_call_site() (called by
 *     slow_calls_outer()), then prints "done". With -w a round starts on each line read from
 *     stdin ("go") and the program exits at EOF; without -w it makes one round.
 *   ap_syscalls --loop N
 *     times N getppid() calls and prints the mean ns per call (benchmark).
 *
 * Between "go" and "done" the program makes no other getppid, openat or nanosleep call.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SLOW_NS 2000000L

/*
 * The slow call is issued by an inline syscall instruction in this function, not through a
 * libc wrapper: libc is built without frame pointers, and a wrapper that sets up no frame
 * makes a frame-pointer unwinder skip its caller. This way the stack is exact.
 */
__attribute__((noinline)) long slow_call_site(void)
{
	struct timespec ts = { 0, SLOW_NS };
#if defined(__x86_64__)
	long ret;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "0"((long)SYS_nanosleep), "D"(&ts), "S"(0L)
			 : "rcx", "r11", "memory");
	return ret;
#elif defined(__aarch64__)
	register long x8 __asm__("x8") = SYS_nanosleep;
	register long x0 __asm__("x0") = (long)&ts;
	register long x1 __asm__("x1") = 0;

	__asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1) : "memory");
	return x0;
#else
	return syscall(SYS_nanosleep, &ts, NULL);
#endif
}

__attribute__((noinline)) void slow_calls_outer(long n)
{
	for (long i = 0; i < n; i++)
		slow_call_site();
}

__attribute__((noinline)) void fast_calls(long n)
{
	for (long i = 0; i < n; i++)
		getppid();
}

__attribute__((noinline)) long failing_calls(long n)
{
	long failed = 0;

	for (long i = 0; i < n; i++) {
		int fd = openat(AT_FDCWD, "/nonexistent/aperture-test", O_RDONLY);

		if (fd >= 0)
			close(fd);
		else
			failed++;
	}
	return failed;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long arg_count(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < 0) {
		fprintf(stderr, "ap_syscalls: bad count '%s'\n", s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	long n = 0, m = 0, s = 0, loop = -1;
	int wait_stdin = 0;
	char line[64];

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-w") == 0)
			wait_stdin = 1;
		else if (i + 1 < argc && strcmp(argv[i], "-n") == 0)
			n = arg_count(argv[++i]);
		else if (i + 1 < argc && strcmp(argv[i], "-e") == 0)
			m = arg_count(argv[++i]);
		else if (i + 1 < argc && strcmp(argv[i], "-s") == 0)
			s = arg_count(argv[++i]);
		else if (i + 1 < argc && strcmp(argv[i], "--loop") == 0)
			loop = arg_count(argv[++i]);
		else {
			fprintf(stderr, "usage: ap_syscalls [-n N] [-e M] [-s S] [-w] | --loop N\n");
			return 2;
		}
	}
	if (loop >= 0) {
		double t0 = now_s();

		fast_calls(loop);
		printf("%.3f\n", loop ? (now_s() - t0) * 1e9 / (double)loop : 0.0);
		return 0;
	}
	printf("%d\n", (int)getpid());
	fflush(stdout);
	do {
		long failed;

		if (wait_stdin && !fgets(line, sizeof(line), stdin))
			break;
		fast_calls(n);
		failed = failing_calls(m);
		slow_calls_outer(s);
		printf("done %ld\n", failed);
		fflush(stdout);
	} while (wait_stdin);
	return 0;
}
