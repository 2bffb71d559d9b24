// SPDX-License-Identifier: MIT
/*
 * Benchmark helper: attach the two empty tp_btf programs of src/bpf/bench_floor.bpf.c to
 * sys_enter/sys_exit, print "ready", and keep them attached until stdin reaches EOF. The cost
 * they add to a syscall is the floor of any sys_enter/sys_exit tracer.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "bench_floor.skel.h"

int main(void)
{
	struct bench_floor_bpf *skel = bench_floor_bpf__open_and_load();
	char buf[64];
	int err;

	if (!skel) {
		fprintf(stderr, "ap_bench_floor: load failed: %s\n", strerror(errno));
		return 1;
	}
	err = bench_floor_bpf__attach(skel);
	if (err) {
		fprintf(stderr, "ap_bench_floor: attach failed: %s\n", strerror(-err));
		bench_floor_bpf__destroy(skel);
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	while (read(0, buf, sizeof(buf)) > 0)
		;
	bench_floor_bpf__destroy(skel);
	return 0;
}
