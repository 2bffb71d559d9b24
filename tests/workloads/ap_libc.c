// SPDX-License-Identifier: MIT
/* Spends its time inside libc (qsort, memchr) for SECONDS (argv[1]): a workload whose hot
 * frames are symbolized from libc's debug file when one is installed. Prints its pid first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define N 4096

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 3.0;
	static int v[N];
	static char buf[1 << 16];
	struct timespec ts;
	unsigned long sink = 0;
	double end;

	printf("%d\n", (int)getpid());
	fflush(stdout);
	memset(buf, 'a', sizeof(buf) - 1);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	end = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + seconds;
	for (unsigned int round = 0;; round++) {
		for (int i = 0; i < N; i++)
			v[i] = (int)((i * 2654435761u) ^ round);
		qsort(v, N, sizeof(v[0]), cmp_int);
		for (int i = 0; i < 16; i++)
			sink += (unsigned long)(char *)memchr(buf, 'b' + i % 2, sizeof(buf)) & 1;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		if ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9 >= end)
			break;
	}
	return (int)(sink & 1);
}
