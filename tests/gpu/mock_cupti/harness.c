/* SPDX-License-Identifier: MIT */
/*
 * The driver harness: does what the real libcuda does with CUDA_INJECTION64_PATH (dlopen the
 * library, call its InitializeInjection), then plays a CUDA program on several threads
 * against the mock CUPTI: launch API calls (CUDA 13's __cudaLaunchKernel -> cudaLaunchKernel
 * -> cuLaunchKernel nesting, the legacy cudaLaunchKernel, the driver's cuLaunchKernel),
 * copies and memsets, each invoking the subscriber's callback at API_ENTER/EXIT from inside a
 * function named like the real entry point (mock_cudaLaunchKernel...: a CPU stack through it
 * exists; the real names would clash with the toolkit's headers), and the GPU
 * work each causes as activity records whose correlation ids match.
 *
 *   harness [--threads T] [--launches N] [--wait] [--log FILE] [--check]
 *           [--expect-clock callback|offset] [--expect-rate-limited] [--expect-drops]
 *           [--expect-enable-failed MASK] [--bench N] [--bench-records N]
 *
 * --wait: after InitializeInjection print "ready PID" and wait for a line on stdin (a tracer
 * attaches in between). --log: every expected probe and record, one per line, for a test
 * that sees them elsewhere (tests/gpu/mock_cupti/test_activity_bpf.c). --check: the library
 * was built with AP_CUPTI_TEST_SINK, so its probes call the ap_cupti_sink_* functions below;
 * compare what they saw with what was played (exit 0 when all matched, 1 with the
 * differences). --bench N: time N launches on one thread, no checks; prints ns per launch.
 * --bench-records N: time N kernel records through the library's buffer completion.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cupti.h>

#include "bpf/gpu_activity.h"
#include "mock_cupti.h"

#define MAX_EXPECT (1 << 20)

/* Two kernels, as the device's module names them (mangled). */
const char harness_kernel_a[] = "_Z7add_onePii";
const char harness_kernel_b[] = "_ZN11aperture_ns5scaleIfEEvPT_S1_i";

struct exp_corr {
	uint32_t corr, cbid, domain, tid;
	uint64_t t_enter, t_exit; /* CLOCK_MONOTONIC around the API call (the --log only) */
	const char *kernel;	  /* a launch's kernel, or NULL */
};

static int same_corr(const struct exp_corr *a, const struct exp_corr *b)
{
	return a->corr == b->corr && a->cbid == b->cbid && a->domain == b->domain &&
	       a->tid == b->tid;
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct exp_corr *exp_corrs, *got_corrs;
static size_t nexp_corrs, ngot_corrs;
static struct ap_ga_rec *exp_recs, *got_recs;
static size_t nexp_recs, ngot_recs;
static struct ap_ga_lib_stats last_stats;
static int nstats;
static int offset_clock; /* records are stamped on CLOCK_REALTIME: compare with tolerance */
static int bench_mode;

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint32_t gettid_u32(void)
{
	return (uint32_t)gettid();
}

/* A probe the library must fire; returns its slot for expect_exit (-1: none). */
static long expect_corr(uint32_t corr, uint32_t cbid, uint32_t domain, uint64_t t_enter,
			const char *kernel)
{
	long i = -1;

	if (bench_mode)
		return -1;
	pthread_mutex_lock(&mu);
	if (nexp_corrs < MAX_EXPECT) {
		i = (long)nexp_corrs++;
		exp_corrs[i] = (struct exp_corr){ corr, cbid, domain, gettid_u32(), t_enter, 0,
						  kernel };
	}
	pthread_mutex_unlock(&mu);
	return i;
}

/* The call returned: its end time (the array does not move while the threads run). */
static void expect_exit(long i)
{
	uint64_t t = mono_ns();

	if (i < 0)
		return;
	pthread_mutex_lock(&mu);
	exp_corrs[i].t_exit = t;
	pthread_mutex_unlock(&mu);
}

static void expect_rec(const struct ap_ga_rec *r)
{
	if (bench_mode)
		return;
	pthread_mutex_lock(&mu);
	if (nexp_recs < MAX_EXPECT)
		exp_recs[nexp_recs++] = *r;
	pthread_mutex_unlock(&mu);
}

/* ---- the sink (AP_CUPTI_TEST_SINK builds of the library call these) ---- */

__attribute__((visibility("default"))) void ap_cupti_sink_correlation(uint32_t corr,
								       uint32_t cbid,
								       uint32_t domain)
{
	pthread_mutex_lock(&mu);
	if (ngot_corrs < MAX_EXPECT)
		got_corrs[ngot_corrs++] = (struct exp_corr){ corr, cbid, domain, gettid_u32(), 0, 0,
							     NULL };
	pthread_mutex_unlock(&mu);
}

__attribute__((visibility("default"))) void
ap_cupti_sink_activity(const struct ap_ga_rec *recs, uint32_t count, uint32_t abi)
{
	pthread_mutex_lock(&mu);
	if (abi != AP_GA_ABI || count > AP_GA_BATCH_MAX)
		fprintf(stderr, "FAIL: activity batch abi %u count %u\n", abi, count);
	for (uint32_t i = 0; i < count && ngot_recs < MAX_EXPECT; i++)
		got_recs[ngot_recs++] = recs[i];
	pthread_mutex_unlock(&mu);
}

__attribute__((visibility("default"))) void ap_cupti_sink_stats(const struct ap_ga_lib_stats *s)
{
	pthread_mutex_lock(&mu);
	last_stats = *s;
	nstats++;
	pthread_mutex_unlock(&mu);
}

/* ---- the CUDA side, named like the real entry points ---- */

/* the driver's launch: its own correlation id; a probe only when no runtime call is around
 * it (the library's rule), which the caller says */
__attribute__((noinline)) uint32_t mock_cuLaunchKernel(const char *kernel, int outermost)
{
	uint64_t t = mono_ns();
	uint32_t c = mock_cupti_next_correlation();
	long x = -1;

	if (mock_cupti_api(1, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel, 0, c, "cuLaunchKernel",
			   NULL) &&
	    outermost)
		x = expect_corr(c, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel, 1, t, kernel);
	mock_cupti_api(1, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel, 1, c, "cuLaunchKernel", NULL);
	expect_exit(x);
	__asm__ volatile("" ::: "memory"); /* not a tail call: keep the frame */
	return c;
}

__attribute__((noinline)) uint32_t mock_cudaLaunchKernel(const char *kernel, int outermost)
{
	uint64_t t = mono_ns();
	uint32_t c = mock_cupti_next_correlation();
	long x = -1;

	if (mock_cupti_api(2, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000, 0, c,
			   "cudaLaunchKernel", kernel) &&
	    outermost)
		x = expect_corr(c, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000, 2, t, kernel);
	mock_cuLaunchKernel(kernel, 0);
	mock_cupti_api(2, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000, 1, c,
		       "cudaLaunchKernel", kernel);
	expect_exit(x);
	__asm__ volatile("" ::: "memory");
	return c;
}

/* CUDA 13's <<<>>> lowering: __cudaLaunchKernel, which calls cudaLaunchKernel */
__attribute__((noinline)) uint32_t mock__cudaLaunchKernel(const char *kernel)
{
	uint64_t t = mono_ns();
	uint32_t c = mock_cupti_next_correlation();
	long x = -1;

	if (mock_cupti_api(2, CUPTI_RUNTIME_TRACE_CBID___cudaLaunchKernel_v13000, 0, c,
			   "__cudaLaunchKernel", kernel))
		x = expect_corr(c, CUPTI_RUNTIME_TRACE_CBID___cudaLaunchKernel_v13000, 2, t, kernel);
	mock_cudaLaunchKernel(kernel, 0);
	mock_cupti_api(2, CUPTI_RUNTIME_TRACE_CBID___cudaLaunchKernel_v13000, 1, c,
		       "__cudaLaunchKernel", kernel);
	expect_exit(x);
	__asm__ volatile("" ::: "memory");
	return c;
}

static uint32_t runtime_call(uint32_t cbid, const char *name)
{
	uint64_t t = mono_ns();
	uint32_t c = mock_cupti_next_correlation();
	long x = -1;

	if (mock_cupti_api(2, cbid, 0, c, name, NULL))
		x = expect_corr(c, cbid, 2, t, NULL);
	mock_cupti_api(2, cbid, 1, c, name, NULL);
	expect_exit(x);
	return c;
}

__attribute__((noinline)) uint32_t mock_cudaMemcpy(void)
{
	return runtime_call(CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy_v3020, "cudaMemcpy");
}

__attribute__((noinline)) uint32_t mock_cudaMemset(void)
{
	return runtime_call(CUPTI_RUNTIME_TRACE_CBID_cudaMemset_v3020, "cudaMemset");
}

__attribute__((noinline)) uint32_t mock_cudaMalloc(void)
{
	/* not a callback the library enables: no probe */
	return runtime_call(CUPTI_RUNTIME_TRACE_CBID_cudaMalloc_v3020, "cudaMalloc");
}

/* ---- the GPU side: the records each call causes (fields derived from the correlation) ---- */

static void stamp(struct ap_ga_rec *e, uint64_t dur, uint64_t *raw_start)
{
	*raw_start = mock_cupti_now();
	/* what the library must hand over: the same instant on CLOCK_MONOTONIC */
	e->start_ns = offset_clock ? mono_ns() : *raw_start;
	e->end_ns = e->start_ns + dur;
}

static void gpu_kernel(uint32_t c, const char *name)
{
	CUpti_ActivityKernel10 k;
	struct ap_ga_rec e = { 0 };
	uint64_t raw;

	memset(&k, 0, sizeof(k));
	stamp(&e, 1000 + (c % 97) * 10, &raw);
	k.kind = CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL;
	k.start = raw;
	k.end = raw + (e.end_ns - e.start_ns);
	k.completed = k.end;
	k.deviceId = c % 2;
	k.streamId = 7 + c % 3;
	k.gridX = (int32_t)(c % 5 + 1);
	k.gridY = (int32_t)(c % 3 + 1);
	k.gridZ = 1;
	k.blockX = (int32_t)(32 * (c % 4 + 1));
	k.blockY = 2;
	k.blockZ = 1;
	k.correlationId = c;
	k.name = name;
	e.kind = AP_GA_KERNEL;
	e.correlation = c;
	e.device = k.deviceId;
	e.stream = k.streamId;
	e.grid[0] = (uint32_t)k.gridX;
	e.grid[1] = (uint32_t)k.gridY;
	e.grid[2] = 1;
	e.block[0] = (uint32_t)k.blockX;
	e.block[1] = 2;
	e.block[2] = 1;
	e.name_ptr = (uint64_t)(uintptr_t)name;
	if (mock_cupti_record(&k) == 1)
		expect_rec(&e);
}

static void gpu_memcpy(uint32_t c)
{
	CUpti_ActivityMemcpy6 m;
	struct ap_ga_rec e = { 0 };
	uint64_t raw;

	memset(&m, 0, sizeof(m));
	stamp(&e, 500 + c % 13, &raw);
	m.kind = CUPTI_ACTIVITY_KIND_MEMCPY;
	m.copyKind = (c & 1) ? CUPTI_ACTIVITY_MEMCPY_KIND_DTOH : CUPTI_ACTIVITY_MEMCPY_KIND_HTOD;
	m.bytes = 4096ull * (c % 8 + 1);
	m.start = raw;
	m.end = raw + (e.end_ns - e.start_ns);
	m.deviceId = 0;
	m.streamId = 7;
	m.correlationId = c;
	e.kind = AP_GA_MEMCPY;
	e.bytes = m.bytes;
	e.correlation = c;
	e.stream = 7;
	e.copy_dir = (c & 1) ? 3 : 2; /* AP_GPU_COPY_D2H / H2D */
	if (mock_cupti_record(&m) == 1)
		expect_rec(&e);
}

static void gpu_memset(uint32_t c)
{
	CUpti_ActivityMemset4 m;
	struct ap_ga_rec e = { 0 };
	uint64_t raw;

	memset(&m, 0, sizeof(m));
	stamp(&e, 300, &raw);
	m.kind = CUPTI_ACTIVITY_KIND_MEMSET;
	m.bytes = 1024ull * (c % 4 + 1);
	m.start = raw;
	m.end = raw + 300;
	m.deviceId = 1;
	m.streamId = 9;
	m.correlationId = c;
	e.kind = AP_GA_MEMSET;
	e.bytes = m.bytes;
	e.correlation = c;
	e.device = 1;
	e.stream = 9;
	if (mock_cupti_record(&m) == 1)
		expect_rec(&e);
}

static void gpu_memory(uint32_t c, uint64_t addr, uint64_t bytes, int release)
{
	CUpti_ActivityMemory4 m;
	struct ap_ga_rec e = { 0 };
	uint64_t raw;

	memset(&m, 0, sizeof(m));
	stamp(&e, 0, &raw);
	m.kind = CUPTI_ACTIVITY_KIND_MEMORY2;
	m.memoryOperationType = release ? CUPTI_ACTIVITY_MEMORY_OPERATION_TYPE_RELEASE
					: CUPTI_ACTIVITY_MEMORY_OPERATION_TYPE_ALLOCATION;
	m.correlationId = c;
	m.address = addr;
	m.bytes = bytes;
	m.timestamp = raw;
	m.deviceId = 0;
	m.streamId = 0;
	e.kind = AP_GA_MEMORY;
	e.bytes = bytes;
	e.address = addr;
	e.correlation = c;
	e.op = release ? AP_GA_MEM_FREE : AP_GA_MEM_ALLOC;
	if (mock_cupti_record(&m) == 1)
		expect_rec(&e);
}

/* A record kind the library does not forward (counted as records_other). */
static void gpu_other(void)
{
	CUpti_ActivityName n;

	memset(&n, 0, sizeof(n));
	n.kind = CUPTI_ACTIVITY_KIND_NAME;
	mock_cupti_record(&n);
}

/* ---- the program ---- */

static int nlaunches = 100;

struct worker_arg {
	int idx;
};

__attribute__((noinline)) static void run_add_one(int i)
{
	const char *k = (i & 1) ? harness_kernel_b : harness_kernel_a;
	uint32_t c;

	/* <<<>>> in CUDA 13 (even), an explicit cudaLaunchKernel (odd) */
	c = (i % 2 == 0) ? mock__cudaLaunchKernel(k) : mock_cudaLaunchKernel(k, 1);
	gpu_kernel(c, k);
}

static void *worker(void *p)
{
	struct worker_arg *a = p;
	uint64_t addr = 0x7f0000000000ull + ((uint64_t)a->idx << 24);
	uint32_t c;

	c = mock_cudaMalloc();
	gpu_memory(c, addr, 1 << 20, 0);
	for (int i = 0; i < nlaunches; i++) {
		if (a->idx == 1) { /* a driver-API thread */
			c = mock_cuLaunchKernel(harness_kernel_a, 1);
			gpu_kernel(c, harness_kernel_a);
		} else {
			run_add_one(i);
		}
		if (i % 4 == 0) {
			c = mock_cudaMemcpy();
			gpu_memcpy(c);
		}
		if (i % 8 == 0) {
			c = mock_cudaMemset();
			gpu_memset(c);
		}
		if (i % 16 == 0)
			gpu_other();
	}
	gpu_memory(mock_cupti_next_correlation(), addr, 1 << 20, 1);
	return NULL;
}

static int cmp_corr(const void *a, const void *b)
{
	const struct exp_corr *x = a, *y = b;

	return x->corr < y->corr ? -1 : x->corr > y->corr;
}

static int cmp_rec(const void *a, const void *b)
{
	const struct ap_ga_rec *x = a, *y = b;

	if (x->correlation != y->correlation)
		return x->correlation < y->correlation ? -1 : 1;
	return x->kind < y->kind ? -1 : x->kind > y->kind;
}

static int same_rec(const struct ap_ga_rec *e, const struct ap_ga_rec *g)
{
	struct ap_ga_rec a = *e, b = *g;
	int64_t d = (int64_t)g->start_ns - (int64_t)e->start_ns;

	if (offset_clock) {
		/* converted through a measured offset: the same instant within 2 ms, and the
		 * same duration to the nanosecond */
		if (d < -2000000 || d > 2000000 || g->end_ns - g->start_ns != e->end_ns - e->start_ns)
			return 0;
		a.start_ns = b.start_ns;
		a.end_ns = b.end_ns;
	}
	return !memcmp(&a, &b, sizeof(a));
}

static int expect_drops;
static long expect_enable_failed;

static int check(int expect_rate_limited, int want_clock)
{
	int fails = 0;
	size_t i, j;

	qsort(exp_corrs, nexp_corrs, sizeof(*exp_corrs), cmp_corr);
	qsort(got_corrs, ngot_corrs, sizeof(*got_corrs), cmp_corr);
	qsort(exp_recs, nexp_recs, sizeof(*exp_recs), cmp_rec);
	qsort(got_recs, ngot_recs, sizeof(*got_recs), cmp_rec);

	if (expect_rate_limited) {
		/* each probe that fired was expected, once, on its thread; the rest were
		 * counted as dropped */
		for (i = j = 0; i < ngot_corrs; i++) {
			while (j < nexp_corrs && exp_corrs[j].corr < got_corrs[i].corr)
				j++;
			if (j == nexp_corrs || !same_corr(&exp_corrs[j], &got_corrs[i])) {
				fprintf(stderr, "FAIL: unexpected probe corr %u\n", got_corrs[i].corr);
				fails++;
			}
			j++;
		}
		if (last_stats.correlations != ngot_corrs ||
		    last_stats.correlations + last_stats.rate_dropped != nexp_corrs ||
		    !last_stats.rate_dropped) {
			fprintf(stderr,
				"FAIL: rate limit: fired %zu, stats %" PRIu64 " fired + %" PRIu64
				" dropped, %zu calls\n",
				ngot_corrs, (uint64_t)last_stats.correlations,
				(uint64_t)last_stats.rate_dropped, nexp_corrs);
			fails++;
		}
	} else {
		if (ngot_corrs != nexp_corrs) {
			fprintf(stderr, "FAIL: %zu correlation probes, expected %zu\n", ngot_corrs,
				nexp_corrs);
			fails++;
		}
		for (i = 0; i < nexp_corrs && i < ngot_corrs; i++)
			if (!same_corr(&exp_corrs[i], &got_corrs[i])) {
				fprintf(stderr,
					"FAIL: probe %zu: corr %u cbid %u domain %u tid %u, expected "
					"corr %u cbid %u domain %u tid %u\n",
					i, got_corrs[i].corr, got_corrs[i].cbid, got_corrs[i].domain,
					got_corrs[i].tid, exp_corrs[i].corr, exp_corrs[i].cbid,
					exp_corrs[i].domain, exp_corrs[i].tid);
				if (++fails > 10)
					break;
			}
		if (last_stats.rate_dropped) {
			fprintf(stderr, "FAIL: %" PRIu64 " probes rate-dropped without a limit\n",
				(uint64_t)last_stats.rate_dropped);
			fails++;
		}
	}

	if (ngot_recs != nexp_recs) {
		fprintf(stderr, "FAIL: %zu records, expected %zu\n", ngot_recs, nexp_recs);
		fails++;
	}
	for (i = 0; i < nexp_recs && i < ngot_recs; i++)
		if (!same_rec(&exp_recs[i], &got_recs[i])) {
			fprintf(stderr,
				"FAIL: record %zu: corr %u kind %u start %" PRIu64 " end %" PRIu64
				", expected corr %u kind %u start %" PRIu64 " end %" PRIu64 "\n",
				i, got_recs[i].correlation, got_recs[i].kind,
				(uint64_t)got_recs[i].start_ns, (uint64_t)got_recs[i].end_ns,
				exp_recs[i].correlation, exp_recs[i].kind,
				(uint64_t)exp_recs[i].start_ns, (uint64_t)exp_recs[i].end_ns);
			if (++fails > 20)
				break;
		}
	if (!nstats || last_stats.abi != AP_GA_ABI || last_stats.records != ngot_recs ||
	    last_stats.cupti_dropped != mock_cupti_dropped_total() ||
	    last_stats.clock != (uint32_t)want_clock) {
		fprintf(stderr,
			"FAIL: stats (%d seen): abi %u clock %u records %" PRIu64
			" cupti_dropped %" PRIu64 "; expected clock %d records %zu dropped %" PRIu64
			"\n",
			nstats, last_stats.abi, last_stats.clock, (uint64_t)last_stats.records,
			(uint64_t)last_stats.cupti_dropped, want_clock, ngot_recs,
			mock_cupti_dropped_total());
		fails++;
	}
	if (expect_drops && (!last_stats.cupti_dropped || !last_stats.buffers_refused)) {
		fprintf(stderr, "FAIL: expected dropped records and refused buffers\n");
		fails++;
	}
	if (!expect_drops && (last_stats.cupti_dropped || last_stats.buffers_refused)) {
		fprintf(stderr, "FAIL: records dropped without a reason\n");
		fails++;
	}
	if (last_stats.enable_failed != (uint64_t)expect_enable_failed) {
		fprintf(stderr, "FAIL: enable_failed %#" PRIx64 ", expected %#lx\n",
			(uint64_t)last_stats.enable_failed, expect_enable_failed);
		fails++;
	}
	printf("harness: %zu probes (%" PRIu64 " rate-dropped), %zu records, %" PRIu64
	       " other, %" PRIu64 " dropped by CUPTI, %" PRIu64 " buffers refused, %" PRIu64
	       " batches, enable_failed %#" PRIx64 "\n",
	       ngot_corrs, (uint64_t)last_stats.rate_dropped, ngot_recs,
	       (uint64_t)last_stats.records_other, (uint64_t)last_stats.cupti_dropped,
	       (uint64_t)last_stats.buffers_refused, (uint64_t)last_stats.batches,
	       (uint64_t)last_stats.enable_failed);
	return fails;
}

static int write_log(const char *path)
{
	FILE *f = fopen(path, "w");
	size_t i;

	if (!f) {
		fprintf(stderr, "harness: cannot write %s: %s\n", path, strerror(errno));
		return -1;
	}
	fprintf(f, "pid %d offset_clock %d\n", getpid(), offset_clock);
	for (i = 0; i < nexp_corrs; i++)
		fprintf(f, "C %u %u %u %u %" PRIu64 " %" PRIu64 " %s\n", exp_corrs[i].corr,
			exp_corrs[i].cbid, exp_corrs[i].domain, exp_corrs[i].tid,
			exp_corrs[i].t_enter, exp_corrs[i].t_exit,
			exp_corrs[i].kernel ? exp_corrs[i].kernel : "-");
	for (i = 0; i < nexp_recs; i++) {
		const struct ap_ga_rec *r = &exp_recs[i];

		fprintf(f,
			"R %u %u %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %u %u %u %u %u %u "
			"%u %u %u %u %s\n",
			r->correlation, r->kind, (uint64_t)r->start_ns, (uint64_t)r->end_ns,
			(uint64_t)r->bytes, (uint64_t)r->address, r->device, r->stream, r->grid[0],
			r->grid[1], r->grid[2], r->block[0], r->block[1], r->block[2], r->copy_dir,
			r->op, r->name_ptr ? (const char *)(uintptr_t)r->name_ptr : "-");
	}
	fprintf(f, "dropped %" PRIu64 "\n", mock_cupti_dropped_total());
	return fclose(f) ? -1 : 0;
}

static int exit_checked, exit_stats_at_exit, exit_want_records;
static void after_library_exit(void)
{
	/* Registered before InitializeInjection, so it runs after the library's own exit
	 * handler: its final stats must have come with every record. */
	if (exit_checked && (last_stats.records != (uint64_t)exit_want_records ||
			     nstats <= exit_stats_at_exit)) {
		fprintf(stderr, "FAIL: no final stats at exit (records %" PRIu64 ", want %d)\n",
			(uint64_t)last_stats.records, exit_want_records);
		_exit(1);
	}
}

int main(int argc, char **argv)
{
	const char *lib = getenv("CUDA_INJECTION64_PATH"), *log = NULL;
	int nthreads = 4, wait = 0, do_check = 0, rate_limited = 0, want_clock = 1;
	long bench = 0, bench_records = 0;
	pthread_t th[64];
	struct worker_arg args[64];
	int (*init)(void);
	void *h;
	int i, fails;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			nthreads = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--launches") && i + 1 < argc)
			nlaunches = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--wait"))
			wait = 1;
		else if (!strcmp(argv[i], "--log") && i + 1 < argc)
			log = argv[++i];
		else if (!strcmp(argv[i], "--check"))
			do_check = 1;
		else if (!strcmp(argv[i], "--expect-rate-limited"))
			rate_limited = 1;
		else if (!strcmp(argv[i], "--expect-clock") && i + 1 < argc)
			want_clock = !strcmp(argv[++i], "offset") ? 2 : 1;
		else if (!strcmp(argv[i], "--expect-drops"))
			expect_drops = 1;
		else if (!strcmp(argv[i], "--expect-enable-failed") && i + 1 < argc)
			expect_enable_failed = strtol(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--bench-records") && i + 1 < argc)
			bench_records = atol(argv[++i]);
		else if (!strcmp(argv[i], "--bench") && i + 1 < argc)
			bench = atol(argv[++i]);
		else {
			fprintf(stderr, "harness: unknown argument '%s'\n", argv[i]);
			return 2;
		}
	}
	if (nthreads < 1 || nthreads > 64 || nlaunches < 0) {
		fprintf(stderr, "harness: --threads 1..64, --launches >= 0\n");
		return 2;
	}
	exp_corrs = calloc(MAX_EXPECT, sizeof(*exp_corrs));
	got_corrs = calloc(MAX_EXPECT, sizeof(*got_corrs));
	exp_recs = calloc(MAX_EXPECT, sizeof(*exp_recs));
	got_recs = calloc(MAX_EXPECT, sizeof(*got_recs));
	if (!exp_corrs || !got_corrs || !exp_recs || !got_recs)
		return 2;
	atexit(after_library_exit);

	/* what libcuda does during cuInit */
	if (lib && *lib) {
		h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
		if (!h) {
			fprintf(stderr, "harness: dlopen %s: %s\n", lib, dlerror());
			return 2;
		}
		init = (int (*)(void))dlsym(h, "InitializeInjection");
		if (!init || init() != 1) {
			fprintf(stderr, "harness: InitializeInjection %s\n",
				init ? "failed" : "missing");
			return 2;
		}
	}
	offset_clock = want_clock == 2;

	if (wait && (bench || bench_records)) {
		char line[16];

		printf("ready %d\n", getpid());
		fflush(stdout);
		if (!fgets(line, sizeof(line), stdin))
			return 2;
	}
	if (bench_records) {
		uint64_t t0, t1;

		/* buffers fill and complete inside mock_cupti_record: the library's completion
		 * path (conversion and activity probes) runs inline and is timed with it */
		bench_mode = 1;
		t0 = mono_ns();
		for (long n = 0; n < bench_records; n++)
			gpu_kernel((uint32_t)n + 1, harness_kernel_a);
		cuptiActivityFlushAll(0);
		t1 = mono_ns();
		printf("bench %ld records %.1f ns/record\n", bench_records,
		       (double)(t1 - t0) / bench_records);
		return 0;
	}
	if (bench) {
		uint64_t t0, t1;

		bench_mode = 1;
		t0 = mono_ns();
		for (long n = 0; n < bench; n++)
			mock_cudaLaunchKernel(harness_kernel_a, 1);
		t1 = mono_ns();
		printf("bench %ld launches %.1f ns/launch\n", bench, (double)(t1 - t0) / bench);
		return 0;
	}
	if (wait) {
		char line[16];

		printf("ready %d\n", getpid());
		fflush(stdout);
		if (!fgets(line, sizeof(line), stdin))
			return 2;
	}
	for (i = 0; i < nthreads; i++) {
		args[i].idx = i;
		if (pthread_create(&th[i], NULL, worker, &args[i])) {
			fprintf(stderr, "harness: pthread_create failed\n");
			return 2;
		}
	}
	for (i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	cuptiActivityFlushAll(0);

	if (log && write_log(log))
		return 2;
	if (!do_check)
		return 0;
	/* the library's flush thread fires stats every APERTURE_CUPTI_FLUSH_MS */
	for (i = 0; i < 200; i++) {
		pthread_mutex_lock(&mu);
		int done = nstats && last_stats.records == ngot_recs &&
			   last_stats.buffers_completed && last_stats.flushes;
		pthread_mutex_unlock(&mu);
		if (done)
			break;
		usleep(10000);
	}
	fails = check(rate_limited, want_clock);
	if (fails) {
		fprintf(stderr, "harness: %d check(s) failed\n", fails);
		return 1;
	}
	exit_checked = 1;
	exit_stats_at_exit = nstats;
	exit_want_records = (int)ngot_recs;
	printf("harness: all checks passed\n");
	return 0;
}
