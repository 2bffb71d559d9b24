// SPDX-License-Identifier: MIT
/*
 * Filter cost per event (not a test): the same filter logic run natively, on the aot engine
 * and on the interpreter, through the path the agent uses (ap_filter_run: event copy into
 * linear memory, call, verdict checks). Reports the median over batches of the per-call time,
 * and the ratio to native, against the targets aot <= 3x native and interp <= 500 ns.
 *
 * Usage: bench_filter_cost [--filters DIR] [--bench-filters DIR] [--seconds S] [--json]
 *   --filters: the SDK examples (build/filters), --bench-filters: build/bench
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "filter/filter.h"

/* The native builds of the same sources (compiled with -DAP_FILTER_NATIVE, renamed). */
int32_t native_simple_filter(struct ap_filter_event *ev, uint32_t len);
int32_t native_process_filter(struct ap_filter_event *ev, uint32_t len);
int32_t native_process_init(const char *cfg, uint32_t len);
int32_t native_sampling_filter(struct ap_filter_event *ev, uint32_t len);
int32_t native_sampling_init(const char *cfg, uint32_t len);

/* Host functions for the native builds. */
void ap_host_log(int32_t level, const char *msg, uint32_t len)
{
	(void)level;
	(void)msg;
	(void)len;
}

uint64_t ap_timestamp(void)
{
	return 0;
}

int32_t ap_frame_symbol(uint32_t frame, char *buf, uint32_t cap)
{
	(void)frame;
	(void)buf;
	(void)cap;
	return -1;
}

int32_t ap_frame_module(uint32_t frame, char *buf, uint32_t cap)
{
	return ap_frame_symbol(frame, buf, cap);
}

uint32_t ap_agent_pid(void)
{
	return (uint32_t)getpid();
}

struct logic {
	const char *name, *dir_kind, *config;
	int32_t (*native)(struct ap_filter_event *, uint32_t);
	int32_t (*native_init)(const char *, uint32_t);
};

static const struct logic logics[] = {
	{ "simple (pid >= 1000 && comm == nginx)", "bench", NULL, native_simple_filter, NULL },
	{ "process_filter pid=42,comm=nginx", "sdk", "pid=42,comm=nginx", native_process_filter,
	  native_process_init },
	{ "sampling_filter n=10", "sdk", "n=10", native_sampling_filter, native_sampling_init },
};
static const char *const wasm_names[] = { "filter_simple", "process_filter", "sampling_filter" };

#define NEVENTS 64
#define BATCH 1000
static struct ap_filter_event events[NEVENTS];
static uint64_t native_mem[AP_FILTER_BUFFER_SIZE / 8];
static volatile int64_t sink;

static void make_events(void)
{
	static const char *const comms[] = { "nginx", "redis-server", "sshd", "nginx" };
	for (int i = 0; i < NEVENTS; i++) {
		struct ap_filter_event *ev = &events[i];
		memset(ev, 0, sizeof(*ev));
		ev->abi_version = AP_FILTER_ABI_VERSION;
		ev->type = AP_FILTER_EV_SYSCALL;
		ev->pid = i % 3 == 0 ? 42 : 990 + (uint32_t)i;
		ev->tid = ev->pid;
		ev->weight = 1;
		snprintf(ev->comm, sizeof(ev->comm), "%s", comms[i % 4]);
		ev->n_kernel = 5;
		ev->n_user = 20;
		for (int k = 0; k < 25; k++)
			ev->frames[k] =
			    (k < 5 ? 0xffffffff81000000ull : 0x400000ull) + (uint64_t)k * 64;
		ev->size = AP_FILTER_EVENT_SIZE(25);
	}
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* ns per call of one batch: f == NULL runs the native build of l. */
static double batch(struct ap_filter *f, const struct logic *l, int calls)
{
	struct ap_filter_event out;
	double t0 = now_ns();
	int64_t acc = 0;

	for (int i = 0; i < calls; i++) {
		const struct ap_filter_event *ev = &events[i % NEVENTS];
		if (f) {
			acc += ap_filter_run(f, ev, &out);
		} else {
			/* the same copy into "linear memory", then the call */
			struct ap_filter_event *w = (struct ap_filter_event *)native_mem;
			uint32_t n = (uint32_t)ev->n_kernel + ev->n_user;
			memcpy(w, ev, AP_FILTER_HEADER_SIZE);
			for (uint32_t k = 0; k < n; k++)
				w->frames[k] = ev->frames[k];
			acc += l->native(w, ev->size);
		}
	}
	sink += acc;
	return (now_ns() - t0) / calls;
}

#define MAX_ROUNDS 4000

/* Batches of the three runs of one logic interleaved, so that a busy machine slows them
 * alike; medians (and minima) per run. At least 30 rounds, then until `seconds` pass. */
static void measure(struct ap_filter *const fs[3], const struct logic *l, double seconds,
		    double med[3], double min[3])
{
	static double t[3][MAX_ROUNDS];
	double end = now_ns() + seconds * 1e9;
	size_t n = 0;

	do {
		for (int e = 0; e < 3; e++)
			if (e == 0 || fs[e])
				t[e][n] = batch(fs[e], l, e == 2 ? BATCH / 10 : BATCH);
		n++;
	} while (n < MAX_ROUNDS && (n < 30 || now_ns() < end));
	for (int e = 0; e < 3; e++) {
		med[e] = min[e] = -1;
		if (e && !fs[e])
			continue;
		qsort(t[e], n, sizeof(t[e][0]), cmp_double);
		med[e] = t[e][n / 2];
		min[e] = t[e][0];
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "filters", required_argument, NULL, 'f' },
		{ "bench-filters", required_argument, NULL, 'b' },
		{ "seconds", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	const char *sdk_dir = "build/filters", *bench_dir = "build/bench";
	double seconds = 2.0, res[3][3], best[3][3];
	char why[256], cache[] = "/tmp/aperture-bench-filter-XXXXXX", cmd[64];
	bool json = false, aot = true;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			sdk_dir = optarg;
			break;
		case 'b':
			bench_dir = optarg;
			break;
		case 's':
			seconds = atof(optarg);
			break;
		case 'j':
			json = true;
			break;
		default:
			fprintf(stderr,
				"usage: %s [--filters DIR] [--bench-filters DIR] "
				"[--seconds S] [--json]\n",
				argv[0]);
			return 2;
		}
	}
	if (!mkdtemp(cache)) {
		perror("mkdtemp");
		return 1;
	}
	make_events();
	if (!ap_filter_aot_available(NULL, why, sizeof(why))) {
		fprintf(stderr, "bench_filter_cost: aot engine unavailable: %s\n", why);
		aot = false;
	}
	for (size_t li = 0; li < 3; li++) {
		const struct logic *l = &logics[li];
		struct ap_filter *fs[3] = { NULL, NULL, NULL };
		char path[1024], err[1024];
		if (l->native_init)
			l->native_init(l->config, (uint32_t)strlen(l->config));
		snprintf(path, sizeof(path), "%s/%s.wasm",
			 strcmp(l->dir_kind, "sdk") == 0 ? sdk_dir : bench_dir, wasm_names[li]);
		for (int e = 1; e < 3; e++) {
			struct ap_filter_opts o;
			if (e == 1 && !aot)
				continue;
			ap_filter_opts_init(&o);
			o.engine = e == 1 ? AP_FILTER_ENGINE_AOT : AP_FILTER_ENGINE_INTERP;
			o.cache_dir = cache;
			if (ap_filter_load(path, l->config, &o, &fs[e], err, sizeof(err))) {
				fprintf(stderr, "bench_filter_cost: %s\n", err);
				return 1;
			}
		}
		measure(fs, l, seconds, res[li], best[li]);
		ap_filter_free(fs[1]);
		ap_filter_free(fs[2]);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", cache);
	if (system(cmd) != 0)
		fprintf(stderr, "bench_filter_cost: could not remove %s\n", cache);
	if (json) {
		printf("{\"unit\":\"ns/event\",\"event_bytes\":%u,\"results\":[",
		       AP_FILTER_EVENT_SIZE(25));
		for (size_t li = 0; li < 3; li++)
			printf("%s{\"logic\":\"%s\",\"native\":%.1f,\"aot\":%.1f,\"interp\":%.1f,"
			       "\"min\":{\"native\":%.1f,\"aot\":%.1f,\"interp\":%.1f}}",
			       li ? "," : "", logics[li].name, res[li][0], res[li][1], res[li][2],
			       best[li][0], best[li][1], best[li][2]);
		printf("],\"targets\":{\"aot_over_native\":3,\"interp_ns\":500}}\n");
		return 0;
	}
	printf("Filter cost per event: ns, median over interleaved batches (%d calls; %d for the\n"
	       "interpreter), event copy (%u bytes) included, fastest batch in brackets;\n"
	       "targets: aot <= 3x native, interp <= 500 ns\n\n",
	       BATCH, BATCH / 10, AP_FILTER_EVENT_SIZE(25));
	printf("%-38s %14s %16s %7s %18s %6s\n", "logic", "native", "aot", "x", "interp", "x");
	for (size_t li = 0; li < 3; li++) {
		printf("%-38s %6.1f [%5.1f] ", logics[li].name, res[li][0], best[li][0]);
		if (res[li][1] >= 0)
			printf("%8.1f [%5.1f] %6.1fx ", res[li][1], best[li][1],
			       res[li][1] / res[li][0]);
		else
			printf("%16s %7s ", "n/a", "");
		printf("%9.1f [%6.1f] %5.0fx\n", res[li][2], best[li][2], res[li][2] / res[li][0]);
	}
	return 0;
}
