/* SPDX-License-Identifier: MIT */
/*
 * libaperture_cupti.so: Aperture's CUPTI injection library. The CUDA driver loads it when
 * CUDA_INJECTION64_PATH names it and calls InitializeInjection() during cuInit. It asks CUPTI
 * for two things and re-exposes them as USDT probes the agent attaches to (probes.h):
 *
 *  - the correlation id of every launch (and copy/memset) API call, on the launching thread,
 *    from a CUPTI callback at API_ENTER: the agent joins it to the launch its uprobes saw on
 *    the same thread, and so to the CPU stack;
 *  - kernel, memcpy, memset and memory activity records (GPU-side start/end), from CUPTI's
 *    buffer completion, in batches of AP_GA_BATCH_MAX compact records on CLOCK_MONOTONIC.
 *
 * It runs inside someone's training job, so the launch path is a thread-local token bucket,
 * one relaxed atomic add and a nop: no allocation, no lock, no syscall (clock_gettime is the
 * vDSO). Activity buffers come from a pool allocated once; when all are in use CUPTI gets no
 * buffer and drops records, which it counts and we report. Nothing is silent: every drop is
 * in the stats probe, fired every flush period and at exit.
 *
 * It links libcupti (+libc) and nothing of Aperture's; bpf/gpu_activity.h is only the
 * record layout it shares with the agent.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cupti.h>

#include "probes.h"

#define AP_EXPORT __attribute__((visibility("default")))

_Static_assert(sizeof(struct ap_ga_rec) == 88, "ap_ga_rec layout is ABI");
_Static_assert(sizeof(struct ap_ga_lib_stats) == 112, "ap_ga_lib_stats layout is ABI");

/* How the agent recognises the library: this symbol, and an ELF note (name "Aperture",
 * type 0x41430001, description "cupti") in its own PT_NOTE segment, which can be checked
 * without a symbol table (src/gpu/activity.c). */
AP_EXPORT const char aperture_cupti_version[] = "aperture-cupti 1";
__asm__(".pushsection .note.aperture, \"a\", @note\n"
	".balign 4\n"
	".long 9\n"	     /* namesz: "Aperture\0" */
	".long 6\n"	     /* descsz: "cupti\0" */
	".long 0x41430001\n" /* type */
	".asciz \"Aperture\"\n"
	".balign 4\n"
	".asciz \"cupti\"\n"
	".balign 4\n"
	".popsection\n");

/* ---- configuration (environment, read once in InitializeInjection) ---- */

#define DEF_RATE 1000		/* correlation probes per second per thread */
#define DEF_BUF_SIZE (1u << 20) /* bytes per activity buffer */
#define DEF_BUF_COUNT 8
#define MAX_BUF_COUNT 64 /* the pool's free map is one 64-bit word */
#define DEF_FLUSH_MS 1000

static uint64_t cfg_rate;	/* 0: no limit */
static uint64_t cfg_cost_ns;	/* one token, in ns of credit (1e9 / rate) */
static uint64_t cfg_credit_max; /* the bucket: burst * cost */
static size_t cfg_buf_size;
static unsigned int cfg_buf_count;
static unsigned int cfg_flush_ms;
static unsigned int cfg_kinds; /* bit per KIND_BIT_* */
static uint32_t cfg_batch;     /* records per activity probe hit */

enum { KIND_BIT_KERNEL = 1, KIND_BIT_MEMCPY = 2, KIND_BIT_MEMSET = 4, KIND_BIT_MEMORY = 8 };

/* ---- counters (struct ap_ga_lib_stats, updated with relaxed atomics) ---- */

static _Atomic uint64_t n_correlations, n_rate_dropped, n_records, n_records_other, n_batches,
	n_buffers_completed, n_buffers_refused, n_cupti_dropped, n_flushes;
static uint64_t enable_failed;
static uint32_t clock_mode;
/* CUPTI's clock minus CLOCK_MONOTONIC, when the timestamp callback was refused. */
static _Atomic int64_t clock_offset;

/* ---- the launch path ---- */

static __thread struct {
	uint64_t credit; /* ns of credit; one token costs cfg_cost_ns */
	uint64_t last_ns;
	uint32_t runtime_depth; /* runtime API calls in flight on this thread */
} tl;

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A token from this thread's bucket. Refilled by elapsed time only when it runs dry, and on
 * CLOCK_MONOTONIC_COARSE (a vDSO read of a kernel variable, no clock hardware): a rate
 * limit needs no better than the tick, and the launch path stays free of clock reads while
 * tokens are left. */
static int take_token(void)
{
	struct timespec ts;
	uint64_t now, credit;

	if (!cfg_rate)
		return 1;
	if (tl.credit >= cfg_cost_ns) {
		tl.credit -= cfg_cost_ns;
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	if (!tl.last_ns) /* this thread's first call: a full bucket */
		credit = cfg_credit_max;
	else
		credit = tl.credit + (now - tl.last_ns);
	tl.last_ns = now;
	if (credit > cfg_credit_max)
		credit = cfg_credit_max;
	if (credit < cfg_cost_ns) {
		tl.credit = credit;
		return 0;
	}
	tl.credit = credit - cfg_cost_ns;
	return 1;
}

static void CUPTIAPI on_api(void *userdata, CUpti_CallbackDomain domain, CUpti_CallbackId cbid,
			    const void *data)
{
	const CUpti_CallbackData *cb = data;

	(void)userdata;
	if (domain == CUPTI_CB_DOMAIN_RUNTIME_API) {
		/* A runtime launch calls the driver's launch inside it (and CUDA 13's
		 * __cudaLaunchKernel calls cudaLaunchKernel): only the outermost call gets a
		 * probe; the kernel record carries its correlation id. */
		if (cb->callbackSite == CUPTI_API_EXIT) {
			if (tl.runtime_depth)
				tl.runtime_depth--;
			return;
		}
		if (tl.runtime_depth++)
			return;
	} else if (domain == CUPTI_CB_DOMAIN_DRIVER_API) {
		if (cb->callbackSite != CUPTI_API_ENTER || tl.runtime_depth)
			return;
	} else {
		return;
	}
	if (!take_token()) {
		atomic_fetch_add_explicit(&n_rate_dropped, 1, memory_order_relaxed);
		return;
	}
	atomic_fetch_add_explicit(&n_correlations, 1, memory_order_relaxed);
	AP_PROBE_CORRELATION(cb->correlationId, (uint32_t)cbid, (uint32_t)domain);
}

/* The APIs that launch work or copy: the correlation ids worth a probe. */
static const CUpti_CallbackId runtime_cbids[] = {
	CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000,
	CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_ptsz_v7000,
	CUPTI_RUNTIME_TRACE_CBID___cudaLaunchKernel_v13000,
	CUPTI_RUNTIME_TRACE_CBID___cudaLaunchKernel_ptsz_v13000,
	CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernelExC_v11060,
	CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernelExC_ptsz_v11060,
	CUPTI_RUNTIME_TRACE_CBID_cudaLaunchCooperativeKernel_v9000,
	CUPTI_RUNTIME_TRACE_CBID_cudaLaunchCooperativeKernel_ptsz_v9000,
	CUPTI_RUNTIME_TRACE_CBID_cudaGraphLaunch_v10000,
	CUPTI_RUNTIME_TRACE_CBID_cudaGraphLaunch_ptsz_v10000,
	CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy_v3020,
	CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyAsync_v3020,
	CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy_ptds_v7000,
	CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyAsync_ptsz_v7000,
	CUPTI_RUNTIME_TRACE_CBID_cudaMemset_v3020,
	CUPTI_RUNTIME_TRACE_CBID_cudaMemsetAsync_v3020,
};
static const CUpti_CallbackId driver_cbids[] = {
	CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel,
	CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel_ptsz,
	CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx,
	CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx_ptsz,
	CUPTI_DRIVER_TRACE_CBID_cuLaunchCooperativeKernel,
	CUPTI_DRIVER_TRACE_CBID_cuLaunchCooperativeKernel_ptsz,
	CUPTI_DRIVER_TRACE_CBID_cuGraphLaunch,
	CUPTI_DRIVER_TRACE_CBID_cuGraphLaunch_ptsz,
	CUPTI_DRIVER_TRACE_CBID_cuMemcpy,
	CUPTI_DRIVER_TRACE_CBID_cuMemcpyAsync,
	CUPTI_DRIVER_TRACE_CBID_cuMemcpyHtoD_v2,
	CUPTI_DRIVER_TRACE_CBID_cuMemcpyDtoH_v2,
	CUPTI_DRIVER_TRACE_CBID_cuMemcpyHtoDAsync_v2,
	CUPTI_DRIVER_TRACE_CBID_cuMemcpyDtoHAsync_v2,
};

/* ---- activity buffers: a pool allocated once, handed out with one atomic word ---- */

static uint8_t *pool;
static _Atomic uint64_t pool_free; /* bit i set: buffer i is free */

static void CUPTIAPI buf_requested(uint8_t **buffer, size_t *size, size_t *max_records)
{
	uint64_t f = atomic_load_explicit(&pool_free, memory_order_acquire);
	unsigned int i;

	*max_records = 0;
	do {
		if (!f) {
			/* CUPTI drops what it cannot store and counts it for us */
			atomic_fetch_add_explicit(&n_buffers_refused, 1, memory_order_relaxed);
			*buffer = NULL;
			*size = 0;
			return;
		}
		i = (unsigned int)__builtin_ctzll(f);
	} while (!atomic_compare_exchange_weak_explicit(&pool_free, &f, f & ~(1ull << i),
							memory_order_acq_rel,
							memory_order_acquire));
	*buffer = pool + (size_t)i * cfg_buf_size;
	*size = cfg_buf_size;
}

static void buf_release(uint8_t *buffer)
{
	size_t off;

	if (buffer < pool || buffer >= pool + (size_t)cfg_buf_count * cfg_buf_size)
		return; /* not ours: never happens with a conforming CUPTI */
	off = (size_t)(buffer - pool) / cfg_buf_size;
	atomic_fetch_or_explicit(&pool_free, 1ull << off, memory_order_release);
}

static uint64_t ts(uint64_t t)
{
	int64_t off;

	if (clock_mode != AP_GA_CLOCK_OFFSET || !t)
		return t;
	off = atomic_load_explicit(&clock_offset, memory_order_relaxed);
	return (uint64_t)((int64_t)t - off);
}

static uint32_t copy_dir(uint8_t kind)
{
	switch (kind) {
	case CUPTI_ACTIVITY_MEMCPY_KIND_HTOD:
	case CUPTI_ACTIVITY_MEMCPY_KIND_HTOA:
		return 2; /* AP_GPU_COPY_H2D */
	case CUPTI_ACTIVITY_MEMCPY_KIND_DTOH:
	case CUPTI_ACTIVITY_MEMCPY_KIND_ATOH:
		return 3; /* D2H */
	case CUPTI_ACTIVITY_MEMCPY_KIND_DTOD:
	case CUPTI_ACTIVITY_MEMCPY_KIND_ATOD:
	case CUPTI_ACTIVITY_MEMCPY_KIND_DTOA:
	case CUPTI_ACTIVITY_MEMCPY_KIND_ATOA:
		return 4; /* D2D */
	case CUPTI_ACTIVITY_MEMCPY_KIND_HTOH:
		return 1; /* H2H */
	case CUPTI_ACTIVITY_MEMCPY_KIND_PTOP:
		return 6; /* PEER */
	default:
		return 0;
	}
}

/* One CUPTI record into the compact form; 0 when it is of a kind we do not forward. */
static int convert(const CUpti_Activity *a, struct ap_ga_rec *r)
{
	memset(r, 0, sizeof(*r));
	switch (a->kind) {
	case CUPTI_ACTIVITY_KIND_KERNEL:
	case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL: {
		const CUpti_ActivityKernel10 *k = (const void *)a;

		r->kind = AP_GA_KERNEL;
		r->start_ns = ts(k->start);
		r->end_ns = ts(k->end);
		r->correlation = k->correlationId;
		r->device = k->deviceId;
		r->stream = k->streamId;
		r->grid[0] = (uint32_t)k->gridX;
		r->grid[1] = (uint32_t)k->gridY;
		r->grid[2] = (uint32_t)k->gridZ;
		r->block[0] = (uint32_t)k->blockX;
		r->block[1] = (uint32_t)k->blockY;
		r->block[2] = (uint32_t)k->blockZ;
		r->name_ptr = (uint64_t)(uintptr_t)k->name;
		return 1;
	}
	case CUPTI_ACTIVITY_KIND_MEMCPY: {
		const CUpti_ActivityMemcpy6 *m = (const void *)a;

		r->kind = AP_GA_MEMCPY;
		r->start_ns = ts(m->start);
		r->end_ns = ts(m->end);
		r->bytes = m->bytes;
		r->correlation = m->correlationId;
		r->device = m->deviceId;
		r->stream = m->streamId;
		r->copy_dir = copy_dir(m->copyKind);
		return 1;
	}
	case CUPTI_ACTIVITY_KIND_MEMSET: {
		const CUpti_ActivityMemset4 *m = (const void *)a;

		r->kind = AP_GA_MEMSET;
		r->start_ns = ts(m->start);
		r->end_ns = ts(m->end);
		r->bytes = m->bytes;
		r->correlation = m->correlationId;
		r->device = m->deviceId;
		r->stream = m->streamId;
		return 1;
	}
	case CUPTI_ACTIVITY_KIND_MEMORY2: {
		const CUpti_ActivityMemory4 *m = (const void *)a;

		r->kind = AP_GA_MEMORY;
		r->start_ns = r->end_ns = ts(m->timestamp);
		r->bytes = m->bytes;
		r->address = m->address;
		r->correlation = m->correlationId;
		r->device = m->deviceId;
		r->stream = m->streamId;
		r->op = m->memoryOperationType == CUPTI_ACTIVITY_MEMORY_OPERATION_TYPE_RELEASE
				? AP_GA_MEM_FREE
				: AP_GA_MEM_ALLOC;
		return 1;
	}
	default:
		return 0;
	}
}

static void fire_stats(void);

/*
 * One probe per batch of up to AP_GA_BATCH_MAX records copied into a stack array, not one
 * per record: each probe hit is a uprobe trap in the kernel when the agent is attached
 * (microseconds), while the BPF side reads a record in well under that; batching divides
 * the trap cost by up to 32 on CUPTI's completion thread (docs/gpu.md has the figures).
 * The copy also fixes the layout, so the agent never depends on CUPTI's record versions.
 */
static void CUPTIAPI buf_completed(CUcontext ctx, uint32_t stream, uint8_t *buffer, size_t size,
				   size_t valid)
{
	struct ap_ga_rec batch[AP_GA_BATCH_MAX];
	CUpti_Activity *rec = NULL;
	uint32_t n = 0;
	uint64_t other = 0, done = 0;
	size_t dropped = 0;

	(void)size;
	if (buffer && valid) {
		while (cuptiActivityGetNextRecord(buffer, valid, &rec) == CUPTI_SUCCESS) {
			if (!convert(rec, &batch[n])) {
				other++;
				continue;
			}
			if (++n == cfg_batch) {
				AP_PROBE_ACTIVITY(batch, n, AP_GA_ABI);
				atomic_fetch_add_explicit(&n_batches, 1, memory_order_relaxed);
				done += n;
				n = 0;
			}
		}
		if (n) {
			AP_PROBE_ACTIVITY(batch, n, AP_GA_ABI);
			atomic_fetch_add_explicit(&n_batches, 1, memory_order_relaxed);
			done += n;
		}
	}
	atomic_fetch_add_explicit(&n_records, done, memory_order_relaxed);
	atomic_fetch_add_explicit(&n_records_other, other, memory_order_relaxed);
	atomic_fetch_add_explicit(&n_buffers_completed, 1, memory_order_relaxed);
	if (cuptiActivityGetNumDroppedRecords(ctx, stream, &dropped) == CUPTI_SUCCESS && dropped)
		atomic_fetch_add_explicit(&n_cupti_dropped, dropped, memory_order_relaxed);
	if (buffer)
		buf_release(buffer);
}

/* ---- clock ---- */

static uint64_t CUPTIAPI monotonic_timestamp(void)
{
	return mono_ns();
}

/* CUPTI's clock (CLOCK_REALTIME here) minus CLOCK_MONOTONIC, from the tightest of a few
 * bracketed reads. */
static void measure_offset(void)
{
	uint64_t best = UINT64_MAX, c, a, b;
	int64_t off = 0;
	int i;

	for (i = 0; i < 5; i++) {
		a = mono_ns();
		if (cuptiGetTimestamp(&c) != CUPTI_SUCCESS)
			return;
		b = mono_ns();
		if (b - a < best) {
			best = b - a;
			off = (int64_t)c - (int64_t)(a + (b - a) / 2);
		}
	}
	atomic_store_explicit(&clock_offset, off, memory_order_relaxed);
}

/* ---- stats and the flush thread ---- */

static void fire_stats(void)
{
	struct ap_ga_lib_stats s = {
		.abi = AP_GA_ABI,
		.clock = clock_mode,
		.correlations = atomic_load_explicit(&n_correlations, memory_order_relaxed),
		.rate_dropped = atomic_load_explicit(&n_rate_dropped, memory_order_relaxed),
		.records = atomic_load_explicit(&n_records, memory_order_relaxed),
		.records_other = atomic_load_explicit(&n_records_other, memory_order_relaxed),
		.batches = atomic_load_explicit(&n_batches, memory_order_relaxed),
		.buffers_completed = atomic_load_explicit(&n_buffers_completed,
							  memory_order_relaxed),
		.buffers_refused = atomic_load_explicit(&n_buffers_refused, memory_order_relaxed),
		.cupti_dropped = atomic_load_explicit(&n_cupti_dropped, memory_order_relaxed),
		.enable_failed = enable_failed,
		.flushes = atomic_load_explicit(&n_flushes, memory_order_relaxed),
		.rate_per_s = cfg_rate,
		.buf_size = cfg_buf_size,
		.buf_count = cfg_buf_count,
	};

	AP_PROBE_STATS(&s);
}

static void flush(uint32_t flag)
{
	cuptiActivityFlushAll(flag);
	atomic_fetch_add_explicit(&n_flushes, 1, memory_order_relaxed);
	fire_stats();
}

/* Flushing on our own period (not only when a buffer fills) keeps the agent's GPU time
 * close to the launch, and the stats probe fires even when nothing runs. */
static void *flush_thread(void *arg)
{
	struct timespec ts = { cfg_flush_ms / 1000, (long)(cfg_flush_ms % 1000) * 1000000L };

	(void)arg;
	for (;;) {
		while (nanosleep(&ts, NULL) && errno == EINTR)
			;
		if (clock_mode == AP_GA_CLOCK_OFFSET)
			measure_offset(); /* follows NTP steps of CUPTI's realtime clock */
		flush(0);
	}
	return NULL;
}

static void at_exit(void)
{
	flush(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
}

/* ---- configuration ---- */

/* The one place this library writes (stderr of the process it is in): a user who set a knob
 * wrong, or whose CUPTI refused, must hear of it. */
static void __attribute__((format(printf, 1, 2))) warn(const char *fmt, ...)
{
	char line[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "aperture_cupti: %s\n", line);
}

static unsigned long long env_num(const char *name, unsigned long long def,
				  unsigned long long lo, unsigned long long hi)
{
	const char *v = getenv(name);
	unsigned long long n;
	char *end;

	if (!v || !*v)
		return def;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || *end || *v == '-' || n < lo || n > hi) {
		warn("%s='%s' is not a number in [%llu, %llu]; using %llu", name, v, lo, hi,
		     def);
		return def;
	}
	return n;
}

static unsigned int env_kinds(void)
{
	const char *v = getenv("APERTURE_CUPTI_KINDS");
	unsigned int k = 0;
	char buf[128], *save, *tok;

	if (!v || !*v)
		return KIND_BIT_KERNEL | KIND_BIT_MEMCPY | KIND_BIT_MEMSET | KIND_BIT_MEMORY;
	snprintf(buf, sizeof(buf), "%s", v);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(tok, "kernel"))
			k |= KIND_BIT_KERNEL;
		else if (!strcmp(tok, "memcpy"))
			k |= KIND_BIT_MEMCPY;
		else if (!strcmp(tok, "memset"))
			k |= KIND_BIT_MEMSET;
		else if (!strcmp(tok, "memory"))
			k |= KIND_BIT_MEMORY;
		else if (strcmp(tok, "none"))
			warn("APERTURE_CUPTI_KINDS: unknown kind '%s' ignored (kernel, memcpy, "
			     "memset, memory, none)",
			     tok);
	}
	return k;
}

static void read_config(void)
{
	unsigned long long burst;

	cfg_rate = env_num("APERTURE_CUPTI_RATE", DEF_RATE, 0, 1000000000ull);
	burst = env_num("APERTURE_CUPTI_BURST", cfg_rate ? cfg_rate : 1, 1, 1000000000ull);
	if (cfg_rate) {
		cfg_cost_ns = 1000000000ull / cfg_rate;
		if (!cfg_cost_ns)
			cfg_cost_ns = 1;
		cfg_credit_max = burst * cfg_cost_ns;
	}
	cfg_buf_size = env_num("APERTURE_CUPTI_BUF_SIZE", DEF_BUF_SIZE, 16384, 256ull << 20);
	cfg_buf_size &= ~(size_t)7; /* CUPTI wants 8-byte aligned buffers */
	cfg_buf_count = env_num("APERTURE_CUPTI_BUF_COUNT", DEF_BUF_COUNT, 1, MAX_BUF_COUNT);
	cfg_flush_ms = env_num("APERTURE_CUPTI_FLUSH_MS", DEF_FLUSH_MS, 10, 3600000);
	cfg_kinds = env_kinds();
	cfg_batch = env_num("APERTURE_CUPTI_BATCH", AP_GA_BATCH_MAX, 1, AP_GA_BATCH_MAX);
}

static const char *cupti_err(CUptiResult r)
{
	const char *s = NULL;

	if (cuptiGetResultString(r, &s) != CUPTI_SUCCESS || !s)
		return "unknown CUPTI error";
	return s;
}

static void enable_kind(CUpti_ActivityKind kind, unsigned int bit, unsigned int want,
			const char *what)
{
	CUptiResult r;

	if (!(cfg_kinds & want))
		return;
	r = cuptiActivityEnable(kind);
	if (r != CUPTI_SUCCESS) {
		enable_failed |= 1ull << bit;
		warn("cannot enable %s activity records: %s", what, cupti_err(r));
	}
}

/* Called by the CUDA driver (CUDA_INJECTION64_PATH) during cuInit, once per process. Returns
 * 1 when it set up, 0 when it could not (the process runs on, unprofiled). */
AP_EXPORT int InitializeInjection(void)
{
	static atomic_int done;
	CUpti_SubscriberHandle sub;
	pthread_t thr;
	pthread_attr_t attr;
	CUptiResult r;
	size_t i;

	if (atomic_exchange(&done, 1))
		return 1;
	read_config();

	pool = mmap(NULL, (size_t)cfg_buf_count * cfg_buf_size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (pool == MAP_FAILED) {
		warn("cannot map the activity buffers (%llu bytes); not profiling",
		     (unsigned long long)cfg_buf_count * cfg_buf_size);
		pool = NULL;
		return 0;
	}
	atomic_store(&pool_free, cfg_buf_count == 64 ? ~0ull : (1ull << cfg_buf_count) - 1);

	r = cuptiSubscribe(&sub, on_api, NULL);
	if (r != CUPTI_SUCCESS) {
		warn("cuptiSubscribe failed: %s; not profiling", cupti_err(r));
		return 0;
	}
	for (i = 0; i < sizeof(runtime_cbids) / sizeof(runtime_cbids[0]); i++)
		cuptiEnableCallback(1, sub, CUPTI_CB_DOMAIN_RUNTIME_API, runtime_cbids[i]);
	for (i = 0; i < sizeof(driver_cbids) / sizeof(driver_cbids[0]); i++)
		cuptiEnableCallback(1, sub, CUPTI_CB_DOMAIN_DRIVER_API, driver_cbids[i]);

	if (cuptiActivityRegisterTimestampCallback(monotonic_timestamp) == CUPTI_SUCCESS) {
		clock_mode = AP_GA_CLOCK_CALLBACK;
	} else {
		clock_mode = AP_GA_CLOCK_OFFSET;
		measure_offset();
	}
	r = cuptiActivityRegisterCallbacks(buf_requested, buf_completed);
	if (r != CUPTI_SUCCESS) {
		warn("cuptiActivityRegisterCallbacks failed: %s; no GPU-side time", cupti_err(r));
		return 0;
	}
	enable_kind(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, 0, KIND_BIT_KERNEL, "kernel");
	enable_kind(CUPTI_ACTIVITY_KIND_MEMCPY, 1, KIND_BIT_MEMCPY, "memcpy");
	enable_kind(CUPTI_ACTIVITY_KIND_MEMSET, 2, KIND_BIT_MEMSET, "memset");
	enable_kind(CUPTI_ACTIVITY_KIND_MEMORY2, 3, KIND_BIT_MEMORY, "memory");

	atexit(at_exit);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 * 1024 + sizeof(struct ap_ga_rec) * AP_GA_BATCH_MAX);
	if (pthread_create(&thr, &attr, flush_thread, NULL) == 0)
		pthread_setname_np(thr, "aperture-cupti");
	else
		warn("no flush thread: records arrive when a buffer fills and at exit");
	pthread_attr_destroy(&attr);
	return 1;
}
