// SPDX-License-Identifier: MIT
/*
 * Benchmark helper: attach one pair of reference programs of bench/bpf/bench_floor.bpf.c to
 * sys_enter/sys_exit, print "ready", and keep them attached until stdin reaches EOF.
 *
 *   ap_bench_floor [floor|taskstorage]
 *     floor        two empty programs (default): the floor of any sys_enter/sys_exit tracer
 *     taskstorage  the minimal latency tracer: start time in task storage, one sum
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "bench_floor.skel.h"

int main(int argc, char **argv)
{
	const char *which = argc > 1 ? argv[1] : "floor";
	bool ts = strcmp(which, "taskstorage") == 0;
	struct bench_floor_bpf *skel;
	char buf[64];
	int err;

	if (!ts && strcmp(which, "floor") != 0) {
		fprintf(stderr, "usage: ap_bench_floor [floor|taskstorage]\n");
		return 2;
	}
	skel = bench_floor_bpf__open();
	if (!skel) {
		fprintf(stderr, "ap_bench_floor: open failed: %s\n", strerror(errno));
		return 1;
	}
	bpf_program__set_autoload(skel->progs.floor_enter, !ts);
	bpf_program__set_autoload(skel->progs.floor_exit, !ts);
	bpf_program__set_autoload(skel->progs.ts_enter, ts);
	bpf_program__set_autoload(skel->progs.ts_exit, ts);
	err = bench_floor_bpf__load(skel);
	if (!err)
		err = bench_floor_bpf__attach(skel);
	if (err) {
		fprintf(stderr, "ap_bench_floor: load/attach failed: %s\n", strerror(-err));
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
