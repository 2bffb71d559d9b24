// SPDX-License-Identifier: MIT
/*
 * The GPU model (src/gpu/gpu_model.h) fed synthetic call and activity sequences that mirror
 * what the probes and the injection library produce (../shared/notes/gpu.md): exact counts,
 * names, stacks, the correlation join in both arrival orders, limits, rotate, and the JSON,
 * text and Chrome trace outputs parsed back.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "format/format.h"
#include "gpu/gpu_internal.h" /* the limits, to check the model stays within them */
#include "gpu/gpu_model.h"
#include "lib/json_parse.h"
#include "lib/profile.h"

#define PID 4242
#define TID 4243
#define ADD_ONE 0x401000ULL
#define SCALE 0x402000ULL
#define SCALE_HANDLE 0x7f0000009000ULL
#define SCALE_NAME "void aperture_ns::scale<float>(float*, float*, int)"

struct fx {
	struct ap_profile *p;
	struct ap_gpu_model *m;
	uint32_t st_main_run;	/* main > run_scale */
	uint32_t st_main_alloc; /* main > alloc_buffers */
	uint32_t st_main_sync;	/* main > wait_all */
};

/* A CPU stack as the collector would give it: leaf first. */
static uint32_t cpu_stack(struct ap_profile *p, const char *leaf, const char *mid)
{
	uint32_t f[3];

	f[0] = ap_profile_add_named_frame(p, leaf, "app", AP_FRAME_USER);
	f[1] = ap_profile_add_named_frame(p, mid, "app", AP_FRAME_USER);
	f[2] = ap_profile_add_named_frame(p, "main", "app", AP_FRAME_USER);
	return ap_profile_add_stack(p, f, 3);
}

static void fx_open(struct fx *x, const struct ap_gpu_model_opts *o)
{
	x->p = ap_profile_new();
	assert_non_null(x->p);
	x->m = ap_gpu_model_new(x->p, o);
	assert_non_null(x->m);
	x->st_main_run = cpu_stack(x->p, "cudaLaunchKernel", "run_scale");
	x->st_main_alloc = cpu_stack(x->p, "cudaMalloc", "alloc_buffers");
	x->st_main_sync = cpu_stack(x->p, "cudaDeviceSynchronize", "wait_all");
	assert_int_not_equal(x->st_main_run, 0);
}

static void fx_close(struct fx *x)
{
	ap_gpu_model_free(x->m);
	ap_profile_free(x->p);
}

static void call(struct fx *x, struct ap_gpu_call c)
{
	if (!c.pid)
		c.pid = PID;
	if (!c.tid)
		c.tid = TID;
	assert_int_equal(ap_gpu_model_add_call(x->m, &c), 0);
}

static void reg(struct fx *x, uint64_t func, const char *mangled)
{
	call(x, (struct ap_gpu_call){ .kind = AP_GPU_CALL_REGISTER_FUNCTION,
				      .api = "__cudaRegisterFunction", .func = func,
				      .name = mangled, .ts_ns = 10, .dur_ns = 1 });
}

static void launch(struct fx *x, uint64_t func, uint64_t ts, uint64_t dur, int32_t ret)
{
	call(x, (struct ap_gpu_call){ .kind = AP_GPU_CALL_LAUNCH, .api = "cudaLaunchKernel",
				      .func = func, .ts_ns = ts, .dur_ns = dur, .ret = ret,
				      .stack = x->st_main_run, .grid = { 4, 1, 1 },
				      .block = { 256, 1, 1 }, .shmem = 0 });
}

static void correlation(struct fx *x, uint64_t id, uint64_t ts, uint32_t stack)
{
	call(x, (struct ap_gpu_call){ .kind = AP_GPU_CALL_CORRELATION, .api = "correlation",
				      .correlation = id, .ts_ns = ts, .stack = stack, .cbid = 211 });
}

static void kernel_record(struct fx *x, uint64_t corr, uint64_t start, uint64_t dur,
			  const char *name)
{
	struct ap_gpu_activity a = { .kind = AP_GPU_ACT_KERNEL, .pid = PID, .correlation = corr,
				     .start_ns = start, .end_ns = start + dur, .name = name,
				     .stream = 7, .grid = { 4, 1, 1 }, .block = { 256, 1, 1 } };

	assert_int_equal(ap_gpu_model_add_activity(x->m, &a), 0);
}

/* ---- reading the outputs back ---- */

static char *write_mem(struct fx *x, int which, size_t *len)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);

	assert_non_null(f);
	assert_int_equal(ap_gpu_model_finish(x->m), 0);
	if (which == 0)
		assert_int_equal(ap_gpu_model_write_json(x->m, f), 0);
	else if (which == 1)
		assert_int_equal(ap_gpu_model_write_trace(x->m, f), 0);
	else
		assert_int_equal(ap_gpu_model_write_text(x->m, f, 20), 0);
	assert_int_equal(fclose(f), 0);
	if (len)
		*len = n;
	return buf;
}

static struct ap_json *parse(const char *buf, size_t len)
{
	char err[256] = "";
	struct ap_json *j = ap_json_parse(buf, len, err, sizeof(err));

	if (!j)
		fail_msg("invalid JSON: %s\n%s", err, buf);
	return j;
}

static struct ap_json *json_of(struct fx *x)
{
	size_t len;
	char *buf = write_mem(x, 0, &len);
	struct ap_json *j = parse(buf, len);

	free(buf);
	return j;
}

static uint64_t num(const struct ap_json *j, const char *key)
{
	uint64_t v = UINT64_MAX;
	const struct ap_json *m = ap_json_get(j, key);

	if (!m || ap_json_u64(m, &v))
		fail_msg("no integer '%s'", key);
	return v;
}

static const char *str(const struct ap_json *j, const char *key)
{
	const struct ap_json *m = ap_json_get(j, key);

	if (!m || m->type != AP_JSON_STRING)
		fail_msg("no string '%s'", key);
	return m->str;
}

static const struct ap_json *gpu_of(const struct ap_json *root, const char *key)
{
	const struct ap_json *g = ap_json_get(root, "gpu");

	assert_non_null(g);
	assert_non_null(ap_json_get(g, key));
	return ap_json_get(g, key);
}

static const struct ap_json *kernel_named(const struct ap_json *root, const char *name)
{
	const struct ap_json *ks = gpu_of(root, "kernels");

	for (size_t i = 0; i < ks->len; i++)
		if (!strcmp(str(&ks->items[i], "name"), name))
			return &ks->items[i];
	return NULL;
}

static const struct ap_json *api_named(const struct ap_json *root, const char *name)
{
	const struct ap_json *as = gpu_of(root, "api");

	for (size_t i = 0; i < as->len; i++)
		if (!strcmp(str(&as->items[i], "name"), name))
			return &as->items[i];
	return NULL;
}

static void assert_frames(const struct ap_json *frames, const char *const *want, size_t n)
{
	assert_int_equal(frames->type, AP_JSON_ARRAY);
	assert_int_equal(frames->len, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(frames->items[i].str, want[i]);
}

/* Sum of value `vi` over the samples whose leaf frame is `leaf`, and whose next frame is
 * `below` (NULL: the [gpu] frame alone). */
static uint64_t leaf_value(const struct ap_profile *p, const char *leaf, const char *below,
			   size_t vi)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < ap_profile_nsamples(p); i++) {
		const struct ap_sample *s = ap_profile_sample(p, i);
		size_t n;
		const uint32_t *f = ap_profile_stack(p, s->stack, &n);

		if (!n || strcmp(ap_profile_str(p, ap_profile_frame(p, f[0])->name), leaf))
			continue;
		if (below ? n < 2 || strcmp(ap_profile_str(p, ap_profile_frame(p, f[1])->name),
					   below)
			  : n != 1)
			continue;
		sum += s->values[vi];
	}
	return sum;
}

static size_t vi_of(const struct ap_profile *p, const char *type)
{
	int i = ap_profile_value_index(p, type);

	assert_true(i >= 0);
	return (size_t)i;
}

/* ---- tests ---- */

/* CUDA 13's sequence: registration, __cudaGetKernel (a real driver's handle differs from the
 * host stub), launches through the handle; the legacy sequence launches the stub itself. */
static void test_names_and_launches(void **state)
{
	struct fx x;
	struct ap_json *j;
	const struct ap_json *k;
	size_t vl;

	(void)state;
	fx_open(&x, NULL);
	vl = vi_of(x.p, "launches");
	call(&x, (struct ap_gpu_call){ .kind = AP_GPU_CALL_REGISTER_FATBIN,
				       .api = "__cudaRegisterFatBinary", .ts_ns = 5, .dur_ns = 1 });
	reg(&x, ADD_ONE, "_Z7add_onePii");
	reg(&x, SCALE, "_ZN11aperture_ns5scaleIfEEvPT_S2_i");
	call(&x, (struct ap_gpu_call){ .kind = AP_GPU_CALL_GET_KERNEL, .api = "__cudaGetKernel",
				       .func = SCALE, .handle = SCALE_HANDLE, .ts_ns = 20,
				       .dur_ns = 2, .ret = 35 });
	for (int i = 0; i < 3; i++)
		launch(&x, ADD_ONE, 100 + i * 10, 5, 0);
	launch(&x, SCALE_HANDLE, 200, 5, 35);
	launch(&x, SCALE_HANDLE, 210, 5, 35);
	launch(&x, 0x7777, 220, 5, 35);

	assert_int_equal(leaf_value(x.p, "[gpu] add_one(int*, int)", "cudaLaunchKernel", vl), 3);
	assert_int_equal(leaf_value(x.p, "[gpu] " SCALE_NAME, "cudaLaunchKernel", vl), 2);
	assert_int_equal(leaf_value(x.p, "[gpu] kernel@0x7777", "cudaLaunchKernel", vl), 1);
	assert_int_equal(ap_profile_total(x.p, vl), 6);

	j = json_of(&x);
	k = kernel_named(j, SCALE_NAME);
	assert_non_null(k);
	assert_string_equal(str(k, "mangled"), "_ZN11aperture_ns5scaleIfEEvPT_S2_i");
	assert_int_equal(num(k, "launches"), 2);
	assert_int_equal(num(k, "errors"), 2);
	assert_int_equal(num(k, "pid"), PID);
	{
		const struct ap_json *sh = ap_json_get(k, "shapes");
		const struct ap_json *ts = ap_json_get(k, "top_stacks");
		static const char *const want[] = { "main", "run_scale", "cudaLaunchKernel" };

		assert_int_equal(sh->len, 1);
		assert_int_equal(num(&sh->items[0], "launches"), 2);
		assert_string_equal(ap_json_get(&sh->items[0], "grid")->items[0].str, "4");
		assert_string_equal(ap_json_get(&sh->items[0], "block")->items[0].str, "256");
		assert_int_equal(ts->len, 1);
		assert_int_equal(num(&ts->items[0], "launches"), 2);
		assert_frames(ap_json_get(&ts->items[0], "frames"), want, 3);
	}
	k = kernel_named(j, "add_one(int*, int)");
	assert_non_null(k);
	assert_int_equal(num(k, "launches"), 3);
	assert_int_equal(num(k, "errors"), 0);
	k = kernel_named(j, "kernel@0x7777");
	assert_non_null(k);
	assert_int_equal(num(k, "launches"), 1);
	{
		const struct ap_json *st = gpu_of(j, "stats");

		assert_int_equal(num(st, "launches"), 6);
		assert_int_equal(num(st, "unnamed_launches"), 1);
		assert_int_equal(num(st, "registrations"), 2);
		assert_int_equal(num(st, "fatbins"), 1);
		assert_int_equal(num(st, "get_kernels"), 1);
	}
	k = api_named(j, "cudaLaunchKernel");
	assert_non_null(k);
	assert_int_equal(num(k, "calls"), 6);
	ap_json_free(j);

	/* CUDA 13: __cudaLaunchKernel tail-jumps into cudaLaunchKernel, so probes on both see
	 * one launch twice, one record inside the other: counted once */
	call(&x, (struct ap_gpu_call){ .kind = AP_GPU_CALL_LAUNCH, .api = "__cudaLaunchKernel",
				       .func = SCALE_HANDLE, .ts_ns = 1000, .dur_ns = 50,
				       .stack = x.st_main_run });
	call(&x, (struct ap_gpu_call){ .kind = AP_GPU_CALL_LAUNCH, .api = "cudaLaunchKernel",
				       .func = SCALE_HANDLE, .ts_ns = 1002, .dur_ns = 48,
				       .stack = x.st_main_run });
	assert_int_equal(ap_profile_total(x.p, vl), 7);
	j = json_of(&x);
	assert_int_equal(num(kernel_named(j, SCALE_NAME), "launches"), 3);
	assert_int_equal(num(gpu_of(j, "stats"), "launches_nested"), 1);
	assert_int_equal(num(api_named(j, "__cudaLaunchKernel"), "calls"), 1);
	k = api_named(j, "cudaLaunchKernel");
	assert_int_equal(num(k, "calls"), 7);
	assert_int_equal(num(ap_json_get(k, "errors"), "cudaErrorInsufficientDriver"), 3);
	assert_int_equal(num(k, "cpu_time_ns"), 6 * 5 + 48);
	ap_json_free(j);
	fx_close(&x);
}

/* A process that registered before the agent came: the host stub's ELF symbol names it (the
 * static build's stub is the L-marked local symbol); registration wins when both exist. */
static void test_symbol_fallback(void **state)
{
	struct fx x;
	struct ap_json *j;
	size_t vl;

	(void)state;
	fx_open(&x, NULL);
	vl = vi_of(x.p, "launches");
	assert_int_equal(ap_gpu_model_name_kernel(x.m, PID, SCALE,
						  "_ZN11aperture_nsL5scaleIfEEvPT_S2_i"), 0);
	launch(&x, SCALE, 100, 5, 0);
	assert_int_equal(leaf_value(x.p, "[gpu] " SCALE_NAME, "cudaLaunchKernel", vl), 1);

	reg(&x, ADD_ONE, "_Z7add_onePii");
	/* without a driver __cudaGetKernel hands back the host stub itself (the notes, 3.) */
	call(&x, (struct ap_gpu_call){ .kind = AP_GPU_CALL_GET_KERNEL, .api = "__cudaGetKernel",
				       .func = ADD_ONE, .handle = ADD_ONE, .ts_ns = 20, .dur_ns = 2,
				       .ret = 35 });
	assert_int_equal(ap_gpu_model_name_kernel(x.m, PID, ADD_ONE, "_Z5otherv"), 0);
	launch(&x, ADD_ONE, 200, 5, 0);
	assert_int_equal(leaf_value(x.p, "[gpu] add_one(int*, int)", "cudaLaunchKernel", vl), 1);
	assert_int_equal(leaf_value(x.p, "[gpu] other()", "cudaLaunchKernel", vl), 0);

	/* another process's stub at the same address is another kernel */
	call(&x, (struct ap_gpu_call){ .kind = AP_GPU_CALL_LAUNCH, .api = "cudaLaunchKernel",
				       .pid = PID + 1, .func = ADD_ONE, .ts_ns = 300, .dur_ns = 1,
				       .stack = x.st_main_run });
	/* an unjoined record with the device name finds the row named by the L-marked stub */
	kernel_record(&x, 0, 400, 90, "_ZN11aperture_ns5scaleIfEEvPT_S2_i");
	j = json_of(&x);
	assert_int_equal(num(kernel_named(j, SCALE_NAME), "launches"), 1);
	assert_int_equal(num(ap_json_get(kernel_named(j, SCALE_NAME), "gpu_time_ns"), "total"), 90);
	assert_int_equal(gpu_of(j, "kernels")->len, 3);
	assert_int_equal(num(kernel_named(j, "add_one(int*, int)"), "launches"), 1);
	assert_non_null(kernel_named(j, "kernel@0x401000"));
	ap_json_free(j);
	fx_close(&x);
}

static void alloc(struct fx *x, uint64_t ptr, uint64_t bytes, int32_t ret, uint32_t kind)
{
	call(x, (struct ap_gpu_call){ .kind = AP_GPU_CALL_ALLOC, .api = "cudaMalloc", .ptr = ptr,
				      .bytes = bytes, .ret = ret, .mem_kind = kind, .ts_ns = 50,
				      .dur_ns = 3, .stack = x->st_main_alloc });
}

static void gfree(struct fx *x, uint64_t ptr, int32_t ret)
{
	call(x, (struct ap_gpu_call){ .kind = AP_GPU_CALL_FREE, .api = "cudaFree", .ptr = ptr,
				      .ret = ret, .ts_ns = 60, .dur_ns = 3 });
}

static void test_memory_and_leaks(void **state)
{
	static const char *const at[] = { "main", "alloc_buffers", "cudaMalloc" };
	const struct ap_json *mem, *kinds;
	struct fx x;
	struct ap_json *j;

	(void)state;
	fx_open(&x, NULL);
	alloc(&x, 0xd000, 4096, 0, AP_GPU_MEM_DEVICE);
	alloc(&x, 0xe000, 1024, 0, AP_GPU_MEM_DEVICE);
	alloc(&x, 0xf000, 512, 0, AP_GPU_MEM_MANAGED);
	alloc(&x, 0, 1 << 20, 2, AP_GPU_MEM_DEVICE);	 /* out of memory */
	alloc(&x, 0xbad, 1 << 20, 35, AP_GPU_MEM_DEVICE); /* failed, pointer left behind */
	alloc(&x, 0, 64, 0, AP_GPU_MEM_HOST_PINNED);	 /* "succeeded" with NULL */
	gfree(&x, 0xe000, 0);
	gfree(&x, 0xabc, 0);	/* allocated before the agent came */
	gfree(&x, 0xd000, 35); /* failed: still live */
	gfree(&x, 0, 0);	/* cudaFree(NULL) */

	j = json_of(&x);
	mem = gpu_of(j, "memory");
	assert_int_equal(num(mem, "allocations"), 6);
	assert_int_equal(num(mem, "failed_allocations"), 3);
	assert_int_equal(num(mem, "allocated_bytes"), 4096 + 1024 + 512);
	assert_int_equal(num(mem, "frees"), 4);
	assert_int_equal(num(mem, "failed_frees"), 1);
	assert_int_equal(num(mem, "unknown_frees"), 1);
	assert_int_equal(num(mem, "freed_bytes"), 1024);
	assert_int_equal(num(mem, "live_bytes"), 4096 + 512);
	assert_int_equal(num(mem, "peak_bytes"), 4096 + 1024 + 512);
	assert_int_equal(num(mem, "leaks_total"), 0);
	assert_int_equal(ap_json_get(mem, "live_at_end")->len, 2);
	assert_int_equal(num(mem, "live_at_end_total"), 2);
	kinds = ap_json_get(mem, "by_kind");
	assert_int_equal(num(ap_json_get(kinds, "device"), "allocations"), 4);
	assert_int_equal(num(ap_json_get(kinds, "device"), "failed"), 2);
	assert_int_equal(num(ap_json_get(kinds, "managed"), "bytes"), 512);
	assert_int_equal(num(ap_json_get(kinds, "host_pinned"), "failed"), 1);
	assert_int_equal(num(ap_json_get(api_named(j, "cudaMalloc"), "errors"),
			     "cudaErrorMemoryAllocation"), 1);
	ap_json_free(j);

	ap_gpu_model_process_exit(x.m, PID);
	j = json_of(&x);
	mem = gpu_of(j, "memory");
	assert_int_equal(num(mem, "leaks_total"), 2);
	assert_int_equal(num(mem, "leaked_bytes"), 4096 + 512);
	assert_int_equal(num(mem, "live_bytes"), 0);
	assert_int_equal(ap_json_get(mem, "live_at_end")->len, 0);
	{
		const struct ap_json *l = ap_json_get(mem, "leaks");
		uint64_t sum = 0;

		assert_int_equal(l->len, 2);
		for (size_t i = 0; i < l->len; i++) {
			sum += num(&l->items[i], "bytes");
			assert_int_equal(num(&l->items[i], "pid"), PID);
			assert_frames(ap_json_get(&l->items[i], "frames"), at, 3);
			/* failed allocations never leak */
			assert_string_not_equal(str(&l->items[i], "ptr"), "0xbad");
		}
		assert_int_equal(sum, 4096 + 512);
	}
	ap_json_free(j);
	fx_close(&x);
}

static void test_sync_blocked_time(void **state)
{
	static const char *const site[] = { "main", "wait_all", "cudaDeviceSynchronize" };
	const struct ap_json *s;
	struct fx x;
	struct ap_json *j;

	(void)state;
	fx_open(&x, NULL);
	call(&x, (struct ap_gpu_call){ .kind = AP_GPU_CALL_SYNC, .api = "cudaDeviceSynchronize",
				       .ts_ns = 100, .dur_ns = 700, .stack = x.st_main_sync });
	call(&x, (struct ap_gpu_call){ .kind = AP_GPU_CALL_SYNC, .api = "cudaDeviceSynchronize",
				       .ts_ns = 900, .dur_ns = 300, .stack = x.st_main_sync });
	call(&x, (struct ap_gpu_call){ .kind = AP_GPU_CALL_SYNC, .api = "cudaStreamSynchronize",
				       .ts_ns = 1300, .dur_ns = 50, .stack = x.st_main_run,
				       .stream = 0xabcd });
	j = json_of(&x);
	s = gpu_of(j, "sync");
	assert_int_equal(s->len, 2);
	assert_string_equal(str(&s->items[0], "api"), "cudaDeviceSynchronize");
	assert_int_equal(num(&s->items[0], "calls"), 2);
	assert_int_equal(num(&s->items[0], "blocked_ns"), 1000);
	assert_int_equal(num(&s->items[0], "max_ns"), 700);
	assert_frames(ap_json_get(&s->items[0], "frames"), site, 3);
	assert_int_equal(num(&s->items[1], "blocked_ns"), 50);
	ap_json_free(j);
	fx_close(&x);
}

/* The injection library's correlation fires inside the launch, before the probes report the
 * launch at its return; the kernel record comes later and its GPU time lands on the launch. */
static void test_join_correlation_first(void **state)
{
	struct fx x;
	struct ap_json *j;
	const struct ap_json *k;
	size_t vl, vg;

	(void)state;
	fx_open(&x, NULL);
	vl = vi_of(x.p, "launches");
	vg = vi_of(x.p, "gpu_time");
	reg(&x, ADD_ONE, "_Z7add_onePii");
	reg(&x, SCALE, "_ZN11aperture_ns5scaleIfEEvPT_S2_i");
	correlation(&x, 77, 1500, 0);
	launch(&x, ADD_ONE, 1000, 1000, 0);
	correlation(&x, 78, 2500, 0);
	launch(&x, SCALE, 2400, 200, 0);
	kernel_record(&x, 78, 10000, 3000, "_ZN11aperture_ns5scaleIfEEvPT_S2_i");
	kernel_record(&x, 77, 5000, 5000, "_Z7add_onePii");

	assert_int_equal(leaf_value(x.p, "[gpu] add_one(int*, int)", "cudaLaunchKernel", vg),
			 5000);
	assert_int_equal(leaf_value(x.p, "[gpu] " SCALE_NAME, "cudaLaunchKernel", vg), 3000);
	assert_int_equal(ap_profile_total(x.p, vl), 2);
	assert_int_equal(ap_profile_total(x.p, vg), 8000);
	j = json_of(&x);
	k = kernel_named(j, "add_one(int*, int)");
	assert_int_equal(num(ap_json_get(k, "gpu_time_ns"), "total"), 5000);
	assert_int_equal(num(ap_json_get(k, "gpu_time_ns"), "records"), 1);
	assert_int_equal(num(&ap_json_get(k, "top_stacks")->items[0], "gpu_time_ns"), 5000);
	assert_int_equal(num(gpu_of(j, "stats"), "correlations_joined"), 2);
	assert_int_equal(num(gpu_of(j, "stats"), "correlations_unmatched"), 0);
	/* GPU time now weights the flamegraph */
	assert_int_equal(num(j, "default_value"), vg);
	ap_json_free(j);
	fx_close(&x);
}

/* The other orders: the launch before its correlation (rings read in another order), and
 * the kernel record before the launch; an unknown correlation and an orphan. */
static void test_join_other_orders(void **state)
{
	struct fx x;
	struct ap_json *j;
	const struct ap_json *k;
	size_t vg;

	(void)state;
	fx_open(&x, NULL);
	vg = vi_of(x.p, "gpu_time");
	reg(&x, ADD_ONE, "_Z7add_onePii");
	launch(&x, ADD_ONE, 1000, 1000, 0);
	correlation(&x, 1, 1200, 0);
	kernel_record(&x, 1, 9000, 100, "_Z7add_onePii");

	correlation(&x, 2, 3100, 0);
	kernel_record(&x, 2, 9500, 200, "_Z7add_onePii");
	launch(&x, ADD_ONE, 3000, 500, 0);

	/* no correlation known: the [gpu] frame alone */
	kernel_record(&x, 99, 9800, 400, "_Z7add_onePii");
	/* a correlation no probed call contains (a library we cannot probe): its own stack */
	correlation(&x, 3, 5000, x.st_main_sync);
	launch(&x, ADD_ONE, 6000, 10, 0);
	kernel_record(&x, 3, 9900, 800, "_ZN11aperture_ns5scaleIfEEvPT_S2_i");

	assert_int_equal(leaf_value(x.p, "[gpu] add_one(int*, int)", "cudaLaunchKernel", vg),
			 300);
	assert_int_equal(leaf_value(x.p, "[gpu] add_one(int*, int)", NULL, vg), 400);
	assert_int_equal(leaf_value(x.p, "[gpu] " SCALE_NAME, "cudaDeviceSynchronize", vg), 800);
	j = json_of(&x);
	assert_int_equal(num(gpu_of(j, "stats"), "correlations_joined"), 2);
	assert_int_equal(num(gpu_of(j, "stats"), "correlations_unmatched"), 1);
	assert_int_equal(num(gpu_of(j, "stats"), "correlations_orphaned"), 1);
	k = kernel_named(j, "add_one(int*, int)");
	assert_int_equal(num(k, "launches"), 3);
	/* the unjoined record's time is on the kernel's row too (its stack is [gpu] alone) */
	assert_int_equal(num(ap_json_get(k, "gpu_time_ns"), "total"), 700);
	assert_int_equal(num(ap_json_get(k, "gpu_time_ns"), "max"), 400);
	assert_int_equal(num(ap_json_get(k, "gpu_time_ns"), "records"), 3);
	assert_null(kernel_named(j, "[unnamed kernel]"));
	/* the orphan's kernel (no launch seen in this process) is a row of its own */
	assert_null(ap_json_get(kernel_named(j, SCALE_NAME), "func")->str);
	assert_int_equal(num(ap_json_get(kernel_named(j, SCALE_NAME), "gpu_time_ns"), "total"),
			 800);
	ap_json_free(j);
	fx_close(&x);
}

static void test_error_names(void **state)
{
	char buf[32];
	struct fx x;
	struct ap_json *j;

	(void)state;
	assert_string_equal(ap_gpu_error_name(35, false, buf, sizeof(buf)),
			    "cudaErrorInsufficientDriver");
	assert_string_equal(ap_gpu_error_name(34, false, buf, sizeof(buf)),
			    "cudaErrorStubLibrary");
	assert_string_equal(ap_gpu_error_name(2, false, buf, sizeof(buf)),
			    "cudaErrorMemoryAllocation");
	assert_string_equal(ap_gpu_error_name(700, false, buf, sizeof(buf)),
			    "cudaErrorIllegalAddress");
	assert_string_equal(ap_gpu_error_name(34, true, buf, sizeof(buf)),
			    "CUDA_ERROR_STUB_LIBRARY");
	assert_string_equal(ap_gpu_error_name(0, true, buf, sizeof(buf)), "CUDA_SUCCESS");
	assert_string_equal(ap_gpu_error_name(123456, false, buf, sizeof(buf)), "error 123456");
	assert_string_equal(ap_gpu_error_name(-1, true, buf, sizeof(buf)), "error -1");

	fx_open(&x, NULL);
	call(&x, (struct ap_gpu_call){ .kind = AP_GPU_CALL_LAUNCH, .api = "cuLaunchKernel",
				       .flags = AP_GPU_F_DRIVER_API, .func = 0x1234, .ret = 34,
				       .ts_ns = 5, .dur_ns = 1, .name = "_Z7add_onePii" });
	call(&x, (struct ap_gpu_call){ .kind = AP_GPU_CALL_OTHER, .api = "cudaGetDeviceCount",
				       .ret = 123456, .ts_ns = 7, .dur_ns = 1 });
	j = json_of(&x);
	assert_int_equal(num(ap_json_get(api_named(j, "cuLaunchKernel"), "errors"),
			     "CUDA_ERROR_STUB_LIBRARY"), 1);
	assert_int_equal(num(ap_json_get(api_named(j, "cudaGetDeviceCount"), "errors"),
			     "error 123456"), 1);
	/* the driver launch is named by what the collector resolved */
	assert_int_equal(num(kernel_named(j, "add_one(int*, int)"), "launches"), 1);
	ap_json_free(j);
	fx_close(&x);
}

static void test_copies(void **state)
{
	const struct ap_json *c;
	struct fx x;
	struct ap_json *j;
	struct ap_gpu_activity a = { .kind = AP_GPU_ACT_MEMCPY, .pid = PID, .copy_dir =
					     AP_GPU_COPY_H2D, .bytes = 4096, .start_ns = 100,
				     .end_ns = 350 };

	(void)state;
	fx_open(&x, NULL);
	call(&x, (struct ap_gpu_call){ .kind = AP_GPU_CALL_COPY, .api = "cudaMemcpy", .bytes = 4096,
				       .copy_dir = AP_GPU_COPY_H2D, .ts_ns = 10, .dur_ns = 40 });
	call(&x, (struct ap_gpu_call){ .kind = AP_GPU_CALL_COPY, .api = "cudaMemcpy", .bytes = 4096,
				       .copy_dir = AP_GPU_COPY_D2H, .ts_ns = 60, .dur_ns = 10,
				       .ret = 35 });
	call(&x, (struct ap_gpu_call){ .kind = AP_GPU_CALL_COPY, .api = "cudaMemsetAsync",
				       .bytes = 64, .ts_ns = 80, .dur_ns = 5 });
	assert_int_equal(ap_gpu_model_add_activity(x.m, &a), 0);
	j = json_of(&x);
	c = gpu_of(j, "copies");
	assert_int_equal(num(ap_json_get(c, "h2d"), "calls"), 1);
	assert_int_equal(num(ap_json_get(c, "h2d"), "bytes"), 4096);
	assert_int_equal(num(ap_json_get(c, "h2d"), "cpu_time_ns"), 40);
	assert_int_equal(num(ap_json_get(c, "h2d"), "gpu_time_ns"), 250);
	assert_int_equal(num(ap_json_get(c, "d2h"), "errors"), 1);
	assert_int_equal(num(ap_json_get(c, "d2h"), "bytes"), 0);
	assert_int_equal(num(ap_json_get(c, "d2h"), "requested_bytes"), 4096);
	assert_int_equal(num(ap_json_get(c, "memset"), "calls"), 1);
	ap_json_free(j);
	fx_close(&x);
}

/* Limits hit are counted, never silent. */
static void test_limits(void **state)
{
	struct ap_gpu_model_opts o = { .max_timeline_events = 5, .max_pending_correlations = 4 };
	struct fx x;
	struct ap_json *j;

	(void)state;
	fx_open(&x, &o);
	for (uint32_t i = 0; i < 10; i++) /* one per thread: nothing orphans them */
		call(&x, (struct ap_gpu_call){ .kind = AP_GPU_CALL_CORRELATION, .tid = 100 + i,
					       .correlation = i + 1, .ts_ns = 10 + i });
	for (uint32_t i = 0; i < 10; i++)
		call(&x, (struct ap_gpu_call){ .kind = AP_GPU_CALL_OTHER, .api = "cudaFoo",
					       .ts_ns = 1000 + i, .dur_ns = 0 });
	{ /* a name far too long: cut, and counted */
		char *longname = malloc(20001);

		assert_non_null(longname);
		memset(longname, 'a', 20000);
		longname[20000] = '\0';
		reg(&x, ADD_ONE, longname);
		free(longname);
	}
	launch(&x, ADD_ONE, 2000, 1, 0);
	/* more launching stacks than a kernel row keeps: the rest counted */
	for (int i = 0; i < 70; i++) {
		char leaf[32];

		snprintf(leaf, sizeof(leaf), "caller_%d", i);
		call(&x, (struct ap_gpu_call){ .kind = AP_GPU_CALL_LAUNCH, .api = "cudaLaunchKernel",
					       .func = SCALE, .ts_ns = 3000 + i, .dur_ns = 1,
					       .stack = cpu_stack(x.p, leaf, "run") });
	}
	j = json_of(&x);
	assert_int_equal(num(gpu_of(j, "stats"), "correlations_expired"), 6);
	assert_int_equal(num(gpu_of(j, "stats"), "timeline_dropped"), 10 + 1 + 1 + 70 - 5);
	assert_int_equal(num(gpu_of(j, "stats"), "names_truncated"), 1);
	assert_int_equal(num(gpu_of(j, "stats"), "kernel_stacks_dropped"), 6);
	{
		const struct ap_json *k = kernel_named(j, "kernel@0x402000");

		assert_non_null(k);
		assert_int_equal(num(k, "launches"), 70);
		assert_int_equal(num(k, "stacks"), 64);
		assert_int_equal(num(k, "stacks_other"), 6);
		k = &gpu_of(j, "kernels")->items[0];
		assert_true(strlen(str(k, "name")) <= 16384);
	}
	ap_json_free(j);
	assert_int_equal(ap_profile_get_stat(x.p, "gpu_correlations_expired"), 6);
	fx_close(&x);
}

/* Continuous mode: live allocations and a launch still waiting for its kernel record go
 * into the fresh profile; the launch counts in its own interval, its GPU time in the next. */
static void test_rotate(void **state)
{
	static const char *const at[] = { "main", "alloc_buffers", "cudaMalloc" };
	struct ap_profile *fresh, *old;
	struct fx x;
	struct ap_json *j, *root;
	const struct ap_json *t;
	char *tables = NULL;
	size_t len = 0, vl, vg;

	(void)state;
	fx_open(&x, NULL);
	vl = vi_of(x.p, "launches");
	vg = vi_of(x.p, "gpu_time");
	reg(&x, ADD_ONE, "_Z7add_onePii");
	alloc(&x, 0xd000, 4096, 0, AP_GPU_MEM_DEVICE);
	correlation(&x, 5, 150, 0);
	launch(&x, ADD_ONE, 100, 100, 0);
	correlation(&x, 6, 300, 0); /* its launch comes in the next interval */

	fresh = ap_profile_new();
	assert_non_null(fresh);
	assert_int_equal(ap_profile_add_value_type(fresh, "launches", "count"), 0);
	assert_int_equal(ap_profile_add_value_type(fresh, "gpu_time", "nanoseconds"), 0);
	assert_int_equal(ap_gpu_model_rotate(x.m, fresh, &tables, &len), 0);
	root = parse(tables, len); /* the aggregator's "aperture-gpu-report" */
	assert_string_equal(ap_json_get(root, "mode")->str, "gpu");
	assert_string_equal(ap_json_get(root, "format")->str, "aperture-gpu-report");
	t = ap_json_get(root, "gpu"); /* the "gpu" object of the interval */
	assert_non_null(t);
	assert_int_equal(ap_json_get(t, "kernels")->len, 1);
	assert_int_equal(num(&ap_json_get(t, "kernels")->items[0], "launches"), 1);
	assert_int_equal(num(ap_json_get(t, "memory"), "live_bytes"), 4096);
	ap_json_free(root);
	free(tables);
	old = x.p;
	x.p = fresh;
	x.st_main_run = cpu_stack(fresh, "cudaLaunchKernel", "run_scale"); /* the collector's */
	assert_int_equal(ap_profile_total(old, vl), 1);
	assert_int_equal(ap_profile_total(old, vg), 0);

	launch(&x, ADD_ONE, 290, 20, 0);
	kernel_record(&x, 5, 1000, 700, "_Z7add_onePii");
	kernel_record(&x, 6, 2000, 300, "_Z7add_onePii");
	assert_int_equal(ap_profile_total(fresh, vl), 1);
	assert_int_equal(leaf_value(fresh, "[gpu] add_one(int*, int)", "cudaLaunchKernel", vg),
			 1000);
	ap_gpu_model_process_exit(x.m, PID);
	j = json_of(&x);
	{
		const struct ap_json *l = ap_json_get(gpu_of(j, "memory"), "leaks");

		assert_int_equal(l->len, 1);
		assert_frames(ap_json_get(&l->items[0], "frames"), at, 3);
	}
	assert_int_equal(num(kernel_named(j, "add_one(int*, int)"), "launches"), 1);
	assert_int_equal(num(ap_json_get(kernel_named(j, "add_one(int*, int)"), "gpu_time_ns"),
			     "total"), 1000);
	assert_true(num(gpu_of(j, "stats"), "correlations_carried") >= 2);
	ap_json_free(j);
	ap_profile_free(old);
	fx_close(&x);
}

/* The JSON document: the generic profile (read back by the profile reader) plus "gpu". */
static void test_json_document(void **state)
{
	static const char *const keys[] = { "kernels", "api",	      "memory", "copies",
					    "sync",    "unprobeable", "stats" };
	struct ap_profile *back = ap_profile_new();
	char err[256], *buf;
	struct fx x;
	struct ap_json *j;
	size_t len;

	(void)state;
	fx_open(&x, NULL);
	reg(&x, ADD_ONE, "_Z7add_onePii");
	launch(&x, ADD_ONE, 100, 5, 35);
	assert_int_equal(ap_gpu_model_add_unprobeable(x.m, 9, "/opt/app/stripped", "no symbols"),
			 0);
	assert_int_equal(ap_gpu_model_add_unprobeable(x.m, 10, "/opt/app/stripped", "no symbols"),
			 0);
	buf = write_mem(&x, 0, &len);
	j = parse(buf, len);
	assert_string_equal(str(j, "format"), "aperture-profile");
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		assert_non_null(gpu_of(j, keys[i]));
	assert_int_equal(gpu_of(j, "unprobeable")->len, 1);
	assert_int_equal(num(&gpu_of(j, "unprobeable")->items[0], "processes"), 2);
	assert_string_equal(str(&gpu_of(j, "unprobeable")->items[0], "reason"), "no symbols");
	assert_non_null(ap_json_get(gpu_of(j, "stats"), "ringbuf_drops"));
	assert_int_equal(ap_read_json(buf, len, 0, back, err, sizeof(err)), 0);
	assert_int_equal(ap_profile_total(back, (size_t)ap_profile_value_index(back, "launches")),
			 1);
	ap_json_free(j);
	free(buf);
	ap_profile_free(back);
	fx_close(&x);
}

static size_t count_events(const struct ap_json *ev, const char *ph, const char *cat)
{
	size_t n = 0;

	for (size_t i = 0; i < ev->len; i++) {
		const struct ap_json *c = ap_json_get(&ev->items[i], "cat");

		if (strcmp(str(&ev->items[i], "ph"), ph))
			continue;
		if (cat && (!c || strcmp(c->str, cat)))
			continue;
		n++;
	}
	return n;
}

/* The Chrome trace: the shape Perfetto and chrome://tracing read. */
static void test_trace(void **state)
{
	struct fx x;
	struct ap_json *j;
	const struct ap_json *ev;
	char *buf;
	size_t len;
	bool stream_named = false, kernel_on_stream = false;

	(void)state;
	fx_open(&x, NULL);
	reg(&x, ADD_ONE, "_Z7add_onePii");
	correlation(&x, 1, 1500, 0);
	launch(&x, ADD_ONE, 1000, 1000, 0);
	call(&x, (struct ap_gpu_call){ .kind = AP_GPU_CALL_SYNC, .api = "cudaDeviceSynchronize",
				       .ts_ns = 2500, .dur_ns = 9000 });
	kernel_record(&x, 1, 3000, 4000, "_Z7add_onePii");
	buf = write_mem(&x, 1, &len);
	j = parse(buf, len);
	assert_string_equal(str(j, "displayTimeUnit"), "ns");
	ev = ap_json_get(j, "traceEvents");
	assert_non_null(ev);
	assert_int_equal(ev->type, AP_JSON_ARRAY);
	for (size_t i = 0; i < ev->len; i++) {
		const struct ap_json *e = &ev->items[i];
		const char *ph = str(e, "ph");

		assert_non_null(ap_json_get(e, "name"));
		assert_int_equal(ap_json_get(e, "pid")->type, AP_JSON_NUMBER);
		assert_int_equal(ap_json_get(e, "tid")->type, AP_JSON_NUMBER);
		if (!strcmp(ph, "X")) {
			assert_int_equal(ap_json_get(e, "ts")->type, AP_JSON_NUMBER);
			assert_int_equal(ap_json_get(e, "dur")->type, AP_JSON_NUMBER);
			if (!strcmp(str(e, "name"), "cudaLaunchKernel")) {
				const struct ap_json *a = ap_json_get(e, "args");

				assert_string_equal(str(a, "stream"), "0x0");
				assert_string_equal(str(a, "func"), "0x401000");
				assert_string_equal(ap_json_get(a, "grid")->items[0].str, "4");
				assert_int_equal(num(a, "correlation"), 1);
				assert_string_equal(str(a, "result"), "success");
			}
			if (!strcmp(str(e, "cat"), "kernel")) {
				assert_string_equal(str(e, "name"), "add_one(int*, int)");
				assert_string_equal(ap_json_get(e, "ts")->str, "3.000");
				assert_string_equal(ap_json_get(e, "dur")->str, "4.000");
				kernel_on_stream = num(e, "tid") >= (1u << 30);
			}
		} else if (!strcmp(ph, "M") && !strcmp(str(e, "name"), "thread_name")) {
			stream_named |= strstr(str(ap_json_get(e, "args"), "name"), "stream 7") != 0;
		} else {
			assert_true(!strcmp(ph, "M") || !strcmp(ph, "s") || !strcmp(ph, "f"));
		}
	}
	assert_int_equal(count_events(ev, "X", "cuda_api"), 3);
	assert_int_equal(count_events(ev, "X", "kernel"), 1);
	assert_int_equal(count_events(ev, "s", NULL), 1);
	assert_int_equal(count_events(ev, "f", NULL), 1);
	assert_true(stream_named);
	assert_true(kernel_on_stream);
	ap_json_free(j);
	free(buf);
	fx_close(&x);
}

static void test_text(void **state)
{
	static const char *const order[] = { "Kernels:", "API calls:", "Memory:", "Copies",
					     "Synchronisation", "Unprobeable binaries" };
	struct fx x;
	char *buf, *at;

	(void)state;
	fx_open(&x, NULL);
	reg(&x, SCALE, "_ZN11aperture_ns5scaleIfEEvPT_S2_i");
	launch(&x, SCALE, 100, 5, 35);
	alloc(&x, 0, 64, 35, AP_GPU_MEM_DEVICE);
	buf = write_mem(&x, 2, NULL);
	at = buf;
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		char *p = strstr(at, order[i]);

		if (!p)
			fail_msg("section '%s' missing or out of order:\n%s", order[i], buf);
		at = p;
	}
	assert_non_null(strstr(buf, SCALE_NAME));
	assert_non_null(strstr(buf, "cudaErrorInsufficientDriver=1"));
	free(buf);
	fx_close(&x);
}

/* Hostile input: random kinds, ids, pointers and names; small limits. No crash, outputs
 * stay valid JSON, the model stays within its limits. */
static void test_random_records(void **state)
{
	struct ap_gpu_model_opts o = { .max_timeline_events = 1000, .max_pending_correlations = 64 };
	static const char *const names[] = { "_Z7add_onePii", "_ZN11aperture_ns5scaleIfEEvPT_S2_i",
					     "not mangled", "_Z", "\xff\xfe bad utf8", "", NULL };
	uint64_t seed = 0x1234567;
	struct fx x;

	(void)state;
	fx_open(&x, &o);
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 20000; i++) {
			uint64_t r;
			struct ap_gpu_call c = { 0 };
			struct ap_gpu_activity a = { 0 };

			seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
			r = seed >> 11;
			c.kind = (uint32_t)(r % 12);
			c.pid = 1 + (uint32_t)((r >> 4) % 5);
			c.tid = c.pid + (uint32_t)((r >> 8) % 3);
			c.ts_ns = (r >> 12) % 100000;
			c.dur_ns = (r >> 20) % 1000;
			c.func = (r >> 30) % 64;
			c.handle = (r >> 36) % 64;
			c.ptr = (r >> 40) % 32;
			c.bytes = r % 4096;
			c.correlation = (r >> 24) % 256;
			c.ret = (int32_t)((r >> 50) % 4) - 1;
			c.stack = (uint32_t)((r >> 17) % 8); /* some past the end */
			c.mem_kind = (uint32_t)((r >> 3) % 6);
			c.copy_dir = (uint32_t)((r >> 5) % 9);
			c.api = names[(r >> 7) % 7];
			c.name = names[(r >> 9) % 7];
			c.comm = names[(r >> 13) % 7];
			assert_int_equal(ap_gpu_model_add_call(x.m, &c), 0);
			a.kind = (uint32_t)((r >> 2) % 6);
			a.pid = c.pid;
			a.correlation = c.correlation;
			a.start_ns = c.ts_ns;
			a.end_ns = c.ts_ns + ((r >> 44) % 3 ? c.dur_ns : 0) - (r & 1);
			a.name = c.name;
			a.copy_dir = c.copy_dir;
			a.stream = (uint32_t)r;
			a.device = (uint32_t)(r >> 32);
			assert_int_equal(ap_gpu_model_add_activity(x.m, &a), 0);
			if (r % 997 == 0)
				ap_gpu_model_process_exit(x.m, c.pid);
		}
		{
			char *buf;
			size_t len;
			struct ap_json *j;

			buf = write_mem(&x, 0, &len);
			j = parse(buf, len);
			assert_true(num(gpu_of(j, "stats"), "timeline_dropped") > 0);
			ap_json_free(j);
			free(buf);
			buf = write_mem(&x, 1, &len);
			ap_json_free(parse(buf, len));
			free(buf);
			free(write_mem(&x, 2, NULL));
			assert_int_equal(x.m->nevents, o.max_timeline_events);
		}
		{
			struct ap_profile *fresh = ap_profile_new();
			char *tables = NULL;
			size_t len = 0;

			assert_non_null(fresh);
			assert_int_equal(ap_profile_add_value_type(fresh, "launches", "count"), 0);
			assert_int_equal(ap_profile_add_value_type(fresh, "gpu_time", "nanoseconds"),
					 0);
			assert_int_equal(ap_gpu_model_rotate(x.m, fresh, &tables, &len), 0);
			ap_json_free(parse(tables, len));
			free(tables);
			assert_true(x.m->ncorrs <= o.max_pending_correlations);
			assert_true(x.m->nkernels <= GPU_MAX_KERNELS);
			assert_true(x.m->nthreads <= GPU_MAX_THREADS);
			assert_true(x.m->nleaks <= GPU_MAX_LEAKS);
			ap_profile_free(x.p);
			x.p = fresh;
			/* cpu stacks of the next round live in the fresh profile */
			x.st_main_run = cpu_stack(x.p, "cudaLaunchKernel", "run_scale");
		}
	}
	fx_close(&x);
}

/* The names the model shows: demangled, the static build's L-marked stub as the device name.
 * (S2_ is T*, the first parameter's type; S1_ would be T itself.) */
static void test_demangled_names(void **state)
{
	static const struct {
		const char *mangled, *shown;
	} cases[] = {
		{ "_ZN11aperture_ns5scaleIfEEvPT_S2_i", SCALE_NAME },
		{ "_ZN11aperture_nsL5scaleIfEEvPT_S2_i", SCALE_NAME },
		{ "_ZN11aperture_ns5scaleIfEEvPT_S1_i",
		  "void aperture_ns::scale<float>(float*, float, int)" },
		{ "_Z7add_onePii", "add_one(int*, int)" },
		{ "plain_c_kernel", "plain_c_kernel" },
	};
	struct fx x;

	(void)state;
	fx_open(&x, NULL);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char leaf[256];
		uint64_t same = 0; /* launches so far of kernels shown with this name */

		for (size_t j = 0; j <= i; j++)
			same += !strcmp(cases[j].shown, cases[i].shown);
		assert_int_equal(ap_gpu_model_name_kernel(x.m, PID, 0x1000 + i, cases[i].mangled), 0);
		launch(&x, 0x1000 + i, 100 + 10 * i, 1, 0);
		snprintf(leaf, sizeof(leaf), "[gpu] %s", cases[i].shown);
		assert_int_equal(leaf_value(x.p, leaf, "cudaLaunchKernel",
					    vi_of(x.p, "launches")), same);
	}
	fx_close(&x);
}

/* "trace" is a format name (and .trace.json an extension) that only the GPU mode writes */
static void test_trace_format_name(void **state)
{
	enum ap_format f = AP_FORMAT_NONE;
	struct ap_profile *p = ap_profile_new();
	FILE *out = fopen("/dev/null", "w");

	(void)state;
	assert_int_equal(ap_format_from_name("trace", &f), 0);
	assert_int_equal(f, AP_FORMAT_TRACE);
	assert_string_equal(ap_format_name(AP_FORMAT_TRACE), "trace");
	f = AP_FORMAT_NONE;
	assert_int_equal(ap_format_from_path("run.trace.json", &f), 0);
	assert_int_equal(f, AP_FORMAT_TRACE);
	assert_int_equal(ap_format_from_path("run.perfetto.json", &f), 0);
	assert_int_equal(f, AP_FORMAT_TRACE);
	assert_int_equal(ap_format_from_path("run.json", &f), 0);
	assert_int_equal(f, AP_FORMAT_JSON);
	assert_non_null(p);
	assert_non_null(out);
	assert_int_equal(ap_format_write(p, AP_FORMAT_TRACE, out, NULL), -ENOTSUP);
	fclose(out);
	ap_profile_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_and_launches),
		cmocka_unit_test(test_symbol_fallback),
		cmocka_unit_test(test_memory_and_leaks),
		cmocka_unit_test(test_sync_blocked_time),
		cmocka_unit_test(test_join_correlation_first),
		cmocka_unit_test(test_join_other_orders),
		cmocka_unit_test(test_error_names),
		cmocka_unit_test(test_copies),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_rotate),
		cmocka_unit_test(test_json_document),
		cmocka_unit_test(test_trace),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_random_records),
		cmocka_unit_test(test_trace_format_name),
		cmocka_unit_test(test_demangled_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
