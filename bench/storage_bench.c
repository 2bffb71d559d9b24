// SPDX-License-Identifier: MIT
/*
 * Storage benchmark (docs/storage.md, "Figures"): fills a store the way a fleet would and
 * times the queries the issue names.
 *   - H hosts (default 100) push every 10 s for the last hour; the first L of them (default 10)
 *     for the last D hours (default 24);
 *   - each push: S samples (default 250) over the host's 10 processes, stacks drawn (skewed, as
 *     real profiles are) from a pool of K distinct stacks (default 3000, depth 8-40) over 2000
 *     functions;
 *   - W writer threads (default 16) call write() at once, as the HTTP server's pool does.
 * Prints samples/s written (wall and per CPU-second of the process), bytes per stored sample,
 * and p50/p99 of merges over "now-1h" x all hosts, "now-1h" x host007, "now-24h" x the L long
 * hosts (ranges not aligned to hours or minutes, the common case) and the whole hour before the
 * one "now" is in x all hosts. A fleet whose series are processes (docs/storage.md):
 * --hosts 100 --long-hosts 1 --hours 1 --procs 500 --samples 1000 [--stacks 30000 --comms 300]
 * (--comms C > 10: processes are named proc-0 .. proc-C-1 instead of 10 server names).
 *
 * usage: storage_bench [--spec sqlite:PATH] [--hosts H] [--long-hosts L] [--hours D]
 *                      [--samples S] [--stacks K] [--writers W] [--queries Q] [--procs P]
 *                      [--comms C]
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/profile.h"
#include "storage/storage.h"

#define SEC 1000000000ULL
#define HOUR (3600 * SEC)
#define VARIANTS 16

static int hosts = 100, long_hosts = 10, hours = 24, samples = 250, nstacks = 3000,
	   writers = 16, queries = 20, procs = 10, ncomms = 10;
static const char *spec;
static int reuse; /* --reuse END_S: query a store filled by an earlier run that ended at END_S */
static uint64_t end_ns; /* "now": not on an hour or minute */
static struct ap_profile **pool; /* [host % 10][variant] */
static atomic_ullong next_push, samples_written, pushes_written;
static uint64_t total_pushes;

struct push {
	int host;
	uint64_t t;
};
static struct push *plan;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double thread_cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* The stack pool: deterministic, shared prefixes (main -> a few dispatchers -> ...). */
static uint32_t **stacks;
static size_t *stack_len;

static void make_stacks(void)
{
	unsigned seed = 7;

	stacks = calloc((size_t)nstacks, sizeof(*stacks));
	stack_len = calloc((size_t)nstacks, sizeof(*stack_len));
	for (int k = 0; k < nstacks; k++) {
		size_t n = 8 + (size_t)(rand_r(&seed) % 33);

		stacks[k] = malloc(n * sizeof(uint32_t));
		stack_len[k] = n;
		for (size_t d = 0; d < n; d++) /* root first; shallow levels share few names */
			stacks[k][d] = d < 3 ? (uint32_t)(d * 10 + rand_r(&seed) % 3)
					     : (uint32_t)(rand_r(&seed) % 2000);
	}
}

static struct ap_profile *make_profile(int hostclass, int variant)
{
	static const char *const comms[] = { "postgres", "nginx", "java", "python3", "node",
					     "redis-server", "envoy", "kubelet", "containerd",
					     "sshd" };
	struct ap_profile *p = ap_profile_new();
	unsigned seed = (unsigned)(hostclass * 1000 + variant + 1);
	uint32_t fids[64];

	ap_profile_add_value_type(p, "samples", "count");
	ap_profile_add_value_type(p, "cpu", "nanoseconds");
	ap_profile_set_period(p, "cpu", "nanoseconds", 10101010);
	for (int i = 0; i < samples; i++) {
		double u = (double)rand_r(&seed) / RAND_MAX;
		int k = (int)(nstacks * pow(u, 3.0)) % nstacks;
		int proc = rand_r(&seed) % procs;
		struct ap_sample s = { 0 };
		char name[32], module[32];

		for (size_t d = 0; d < stack_len[k]; d++) {
			uint32_t f = stacks[k][d];

			snprintf(name, sizeof(name), "fn_%u", f);
			snprintf(module, sizeof(module), "lib%u.so", f % 40);
			/* leaf first */
			fids[stack_len[k] - 1 - d] = ap_profile_add_named_frame(p, name, module,
										 AP_FRAME_USER);
		}
		s.stack = ap_profile_add_stack(p, fids, stack_len[k]);
		s.pid = (uint32_t)(1000 + hostclass * 1000 + proc);
		if (ncomms > 10) { /* a whole system's variety of process names */
			char cn[32];

			snprintf(cn, sizeof(cn), "proc-%d", proc % ncomms);
			s.comm = ap_profile_intern(p, cn);
		} else {
			s.comm = ap_profile_intern(p, comms[proc % 10]);
		}
		s.values[0] = 1 + (uint64_t)(rand_r(&seed) % 20);
		s.values[1] = s.values[0] * 10101010;
		ap_profile_add_sample(p, &s);
	}
	return p;
}

static void *writer(void *arg)
{
	struct ap_store *s = arg;

	for (;;) {
		uint64_t i = atomic_fetch_add(&next_push, 1);
		char host[16], id[32], err[512];
		struct ap_label_kv labels[] = { { "mode", "cpu" }, { "host", host },
						{ "region", "eu-1" } };
		struct ap_store_write w = { .push_id = id, .labels = labels, .nlabels = 3 };
		const struct ap_profile *p;
		bool dup;
		int ret;

		if (i >= total_pushes)
			break;
		snprintf(host, sizeof(host), "host%03d", plan[i].host);
		snprintf(id, sizeof(id), "%016llx", (unsigned long long)i);
		p = pool[(plan[i].host % 10) * VARIANTS + (int)(i % VARIANTS)];
		w.profile = p;
		w.from_ns = plan[i].t;
		w.until_ns = plan[i].t + 10 * SEC;
		do {
			ret = s->ops->write(s, &w, &dup, err, sizeof(err));
			if (ret == -EAGAIN)
				usleep(1000);
		} while (ret == -EAGAIN);
		if (ret) {
			fprintf(stderr, "storage_bench: write: %s\n", err);
			exit(1);
		}
		atomic_fetch_add(&samples_written, ap_profile_nsamples(p));
		atomic_fetch_add(&pushes_written, 1);
	}
	return NULL;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* from 0: end_ns - range, sliding by 7 s per run; else exactly [from, from + range) */
static void time_merge_at(struct ap_store *s, const char *what, const char *selector,
			  uint64_t from, uint64_t range)
{
	double *t = calloc((size_t)queries, sizeof(double));
	double *ct = calloc((size_t)queries, sizeof(double));
	struct ap_selector sel;
	char err[512];
	size_t nsamp = 0;
	uint64_t tot = 0;

	if (ap_selector_parse(selector, &sel, err, sizeof(err))) {
		fprintf(stderr, "storage_bench: %s\n", err);
		exit(1);
	}
	for (int i = 0; i < queries; i++) {
		/* slide by a few seconds each time: not the same range twice */
		struct ap_store_query q = { .sel = &sel, .from_ns = end_ns - range - i * 7 * SEC,
					    .until_ns = end_ns - i * 7 * SEC };

		if (from) {
			q.from_ns = from;
			q.until_ns = from + range;
		}
		struct ap_profile *p = NULL;
		double t0 = now_s(), c0 = thread_cpu_s();

		if (s->ops->merge(s, &q, &p, err, sizeof(err))) {
			fprintf(stderr, "storage_bench: merge: %s\n", err);
			exit(1);
		}
		t[i] = now_s() - t0;
		ct[i] = thread_cpu_s() - c0;
		nsamp = ap_profile_nsamples(p);
		tot = ap_profile_total(p, 0);
		ap_profile_free(p);
	}
	qsort(t, (size_t)queries, sizeof(double), cmp_d);
	qsort(ct, (size_t)queries, sizeof(double), cmp_d);
	/* p99 of fewer than 100 runs: the slowest */
	printf("merge %-20s wall p50 %7.1f ms p99 %7.1f ms; CPU p50 %7.1f ms  (%d runs; %zu "
	       "(stack, comm) rows, %llu samples)\n",
	       what, t[queries / 2] * 1e3, t[(queries * 99) / 100] * 1e3, ct[queries / 2] * 1e3,
	       queries, nsamp, (unsigned long long)tot);
	free(ct);
	ap_selector_free(&sel);
	free(t);
}

static void time_merge(struct ap_store *s, const char *what, const char *selector,
		       uint64_t range)
{
	time_merge_at(s, what, selector, 0, range);
}

static void time_series(struct ap_store *s, const char *what, const char *selector,
			uint64_t range, uint64_t step)
{
	double *t = calloc((size_t)queries, sizeof(double));
	struct ap_selector sel;
	char err[512];
	size_t npoints = 0;

	if (ap_selector_parse(selector, &sel, err, sizeof(err)))
		exit(1);
	for (int i = 0; i < queries; i++) {
		struct ap_store_query q = { .sel = &sel, .from_ns = end_ns - range - i * 7 * SEC,
					    .until_ns = end_ns - i * 7 * SEC };
		struct ap_store_series out;
		double t0 = now_s();

		if (s->ops->series(s, &q, step, &out, err, sizeof(err))) {
			fprintf(stderr, "storage_bench: series: %s\n", err);
			exit(1);
		}
		t[i] = now_s() - t0;
		npoints = out.npoints;
		ap_store_series_free(&out);
	}
	qsort(t, (size_t)queries, sizeof(double), cmp_d);
	printf("series %-19s wall p50 %7.1f ms p99 %7.1f ms  (%d runs; %zu points of %llu s)\n",
	       what, t[queries / 2] * 1e3, t[(queries * 99) / 100] * 1e3, queries, npoints,
	       (unsigned long long)(step / SEC));
	ap_selector_free(&sel);
	free(t);
}

static uint64_t file_size(const char *path)
{
	char wal[4200];
	struct stat sb;
	uint64_t n = 0;

	if (!stat(path, &sb))
		n += (uint64_t)sb.st_size;
	snprintf(wal, sizeof(wal), "%s-wal", path);
	if (!stat(wal, &sb))
		n += (uint64_t)sb.st_size;
	return n;
}

int main(int argc, char **argv)
{
	static char defspec[4200];
	struct ap_store *s;
	struct ap_store_stats st;
	char err[512], sel[128];
	pthread_t *th;
	double t0, c0, wall, cpu;
	size_t n = 0;

	for (int i = 1; i + 1 < argc; i += 2) {
		int *dst = !strcmp(argv[i], "--hosts")	      ? &hosts
			   : !strcmp(argv[i], "--long-hosts") ? &long_hosts
			   : !strcmp(argv[i], "--hours")      ? &hours
			   : !strcmp(argv[i], "--samples")    ? &samples
			   : !strcmp(argv[i], "--stacks")     ? &nstacks
			   : !strcmp(argv[i], "--writers")    ? &writers
			   : !strcmp(argv[i], "--queries")    ? &queries
			   : !strcmp(argv[i], "--procs")      ? &procs
			   : !strcmp(argv[i], "--comms")      ? &ncomms
							      : NULL;

		if (!strcmp(argv[i], "--spec"))
			spec = argv[i + 1];
		else if (!strcmp(argv[i], "--reuse"))
			reuse = atoi(argv[i + 1]);
		else if (dst && atoi(argv[i + 1]) > 0)
			*dst = atoi(argv[i + 1]);
		else {
			fprintf(stderr, "usage: %s [--spec sqlite:PATH] [--hosts H] [--long-hosts L] "
					"[--hours D] [--samples S] [--stacks K] [--writers W] "
					"[--queries Q]\n",
				argv[0]);
			return 2;
		}
	}
	if (long_hosts > hosts)
		long_hosts = hosts;
	if (!spec) {
		snprintf(defspec, sizeof(defspec), "sqlite:/tmp/ap-storage-bench-%d/store.db",
			 (int)getpid());
		spec = defspec;
	}
	if (strncmp(spec, "sqlite:", 7) == 0 && !reuse)
		unlink(spec + 7);
	end_ns = (uint64_t)time(NULL) * SEC;
	end_ns = end_ns - end_ns % HOUR - 17 * 60 * SEC - 3 * SEC; /* hh:42:57 */
	if (reuse)
		end_ns = (uint64_t)reuse * SEC;

	make_stacks();
	pool = calloc(10 * VARIANTS, sizeof(*pool));
	for (int h = 0; h < 10; h++)
		for (int v = 0; v < VARIANTS; v++)
			pool[h * VARIANTS + v] = make_profile(h, v);
	/* pushes in time order across hosts, as they would arrive */
	total_pushes = (uint64_t)(hosts - long_hosts) * 360 + (uint64_t)long_hosts * 360 * hours;
	plan = malloc(total_pushes * sizeof(*plan));
	for (uint64_t k = (uint64_t)hours * 360; k-- > 0;) {
		uint64_t t = end_ns - (k + 1) * 10 * SEC;

		for (int h = 0; h < hosts; h++)
			if (h < long_hosts || k < 360)
				plan[n++] = (struct push){ h, t };
	}
	if (ap_store_open(spec, NULL, &s, err, sizeof(err))) {
		fprintf(stderr, "storage_bench: %s\n", err);
		return 1;
	}
	printf("storage_bench: %s; %d hosts x 1 h + %d of them x %d h, pushes every 10 s, "
	       "%d samples each, %d stacks, %d writer threads; ends at %llu (--reuse)\n",
	       spec, hosts, long_hosts, hours, samples, nstacks, writers,
	       (unsigned long long)(end_ns / SEC));
	if (reuse)
		total_pushes = 0;
	th = calloc((size_t)writers, sizeof(*th));
	t0 = now_s();
	c0 = cpu_s();
	for (int i = 0; i < writers; i++)
		pthread_create(&th[i], NULL, writer, s);
	for (int i = 0; i < writers; i++)
		pthread_join(th[i], NULL);
	wall = now_s() - t0;
	cpu = cpu_s() - c0;
	s->ops->stats(s, &st);
	printf("ingest: %llu pushes, %llu samples in %.1f s: %.0f samples/s, %.0f pushes/s; "
	       "%.1f CPU-s: %.0f samples per CPU-second\n",
	       (unsigned long long)pushes_written, (unsigned long long)samples_written, wall,
	       samples_written / wall, pushes_written / wall, cpu, samples_written / cpu);
	printf("size: %.1f MiB on disk, %.1f bytes per sample written, %llu series, %llu "
	       "stacks\n",
	       file_size(spec + 7) / 1048576.0,
	       samples_written ? (double)file_size(spec + 7) / samples_written : 0.0,
	       (unsigned long long)st.series, (unsigned long long)st.stacks);
	snprintf(sel, sizeof(sel), "{mode=\"cpu\"}");
	time_merge(s, "1 h x all hosts", sel, HOUR);
	/* one host, and the whole hour before the one "now" is in (hour rows only) */
	snprintf(sel, sizeof(sel), "{mode=\"cpu\",host=\"host%03d\"}", hosts > 7 ? 7 : 0);
	time_merge(s, "1 h x one host", sel, HOUR);
	snprintf(sel, sizeof(sel), "{mode=\"cpu\"}");
	time_merge_at(s, "exact hour x all", sel, end_ns - end_ns % HOUR - HOUR, HOUR);
	snprintf(sel, sizeof(sel), "{mode=\"cpu\",host=~\"host00[0-%d]\"}",
		 long_hosts > 10 ? 9 : long_hosts - 1);
	time_merge(s, "24 h x long hosts", sel, (uint64_t)hours * HOUR);
	time_series(s, "24 h x long hosts", sel, (uint64_t)hours * HOUR, 600 * SEC);
	snprintf(sel, sizeof(sel), "{mode=\"cpu\"}");
	time_series(s, "1 h x all hosts", sel, HOUR, 60 * SEC);
	time_series(s, "1 h x all, 10 s", sel, HOUR, 10 * SEC);
	ap_store_close(s);
	return 0;
}
