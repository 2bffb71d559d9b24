// SPDX-License-Identifier: MIT
// ap_gpu_drv: a CUDA driver-API program (C, linked against libcuda.so.1) that makes known
// calls, for the GPU mode's tests (tests/bpf/test_gpu_driver.py) and the GPU check.
//
//   ap_gpu_drv ITER [PTX_FILE]
//
// Prints its pid, then: cuInit, cuDeviceGetCount, cuDeviceGet, cuDevicePrimaryCtxRetain,
// cuCtxSetCurrent, cuModuleLoadData (the PTX of drv_add_one, read from PTX_FILE, default
// ap_gpu_drv.ptx beside the executable), cuModuleGetFunction, cuMemAlloc x2 and one
// deliberate leak (cuMemAlloc of LEAK_BYTES); ITER x: run_copy_in (cuMemcpyHtoD),
// run_launch (cuLaunchKernel(f, 3,5,7, 32,2,1, 256, 0, params, NULL)), run_copy_out
// (cuMemcpyDtoH), run_sync (cuCtxSynchronize); then cuMemFree x2. The last line is
// "RESULT {json}" with every call counted by the name the program calls (the header maps
// cuMemAlloc to cuMemAlloc_v2 etc.; the names printed are the exported symbols).
// Without a driver it cannot start; against the toolkit's stub libcuda.so (as libcuda.so.1 on
// LD_LIBRARY_PATH) every call returns 34 CUDA_ERROR_STUB_LIBRARY but is made.
// AP_GPU_WAIT=ctor|main and AP_GPU_HOLD=1 wait for a line on stdin, as ap_gpu_prog does.
#include <cuda.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))
#define N_ELEMS 1024
#define LEAK_BYTES (5u * 1024 * 1024)
#define MAX_APIS 32

static struct {
	const char *name;
	long calls, errors, code[2]; /* code: the last error code and how often */
} apis[MAX_APIS];

static CUresult count(const char *name, CUresult rc)
{
	int i;

	for (i = 0; i < MAX_APIS && apis[i].name && strcmp(apis[i].name, name); i++)
		;
	if (i == MAX_APIS)
		abort();
	apis[i].name = name;
	apis[i].calls++;
	if (rc != CUDA_SUCCESS) {
		apis[i].errors++;
		apis[i].code[0] = rc;
		apis[i].code[1]++;
	}
	return rc;
}
/* the exported symbol's name: the header's macro (cuMemAlloc -> cuMemAlloc_v2) is expanded
 * by the inner macro before it is stringified */
#define STR_(x) #x
#define NAME(f) STR_(f)
#define CALL(f, ...) count(NAME(f), f(__VA_ARGS__))

static CUdevice dev;
static CUcontext ctx;
static CUmodule mod;
static CUfunction fn;
static CUdeviceptr d_a, d_b, d_leak;
static int h_buf[N_ELEMS];
static long launches;
static long h2d_calls, h2d_bytes, d2h_calls, d2h_bytes;

static void wait_line(void)
{
	char line[64];
	if (!fgets(line, sizeof line, stdin))
		exit(3);
}

__attribute__((constructor(101))) static void early(void)
{
	const char *w = getenv("AP_GPU_WAIT");
	printf("%d\n", (int)getpid());
	fflush(stdout);
	if (w && !strcmp(w, "ctor"))
		wait_line();
}

static char *read_ptx(const char *path)
{
	static char buf[64 << 10];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	return buf;
}

NOINLINE void run_setup(const char *ptx)
{
	int n = -1;

	CALL(cuInit, 0);
	CALL(cuDeviceGetCount, &n);
	CALL(cuDeviceGet, &dev, 0);
	CALL(cuDevicePrimaryCtxRetain, &ctx, dev);
	CALL(cuCtxSetCurrent, ctx);
	CALL(cuModuleLoadData, &mod, ptx);
	CALL(cuModuleGetFunction, &fn, mod, "drv_add_one");
	CALL(cuMemAlloc, &d_a, N_ELEMS * sizeof(int));
	CALL(cuMemAlloc, &d_b, N_ELEMS * sizeof(int));
}

NOINLINE void run_leak(void)
{
	CALL(cuMemAlloc, &d_leak, LEAK_BYTES);
}

NOINLINE void run_copy_in(void)
{
	CALL(cuMemcpyHtoD, d_a, h_buf, sizeof h_buf);
	h2d_calls++;
	h2d_bytes += sizeof h_buf;
}

NOINLINE void run_launch(void)
{
	int n = N_ELEMS;
	void *params[] = { &d_a, &n };

	CALL(cuLaunchKernel, fn, 3, 5, 7, 32, 2, 1, 256, 0, params, NULL);
	launches++;
}

NOINLINE void run_copy_out(void)
{
	CALL(cuMemcpyDtoH, h_buf, d_a, sizeof h_buf / 2);
	d2h_calls++;
	d2h_bytes += sizeof h_buf / 2;
}

NOINLINE void run_sync(void)
{
	CALL(cuCtxSynchronize);
}

NOINLINE void run_free(void)
{
	CALL(cuMemFree, d_a);
	CALL(cuMemFree, d_b);
}

int main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : 1;
	const char *w = getenv("AP_GPU_WAIT");
	char def[4096], *ptx;
	const char *path = argc > 2 ? argv[2] : NULL;
	ssize_t len;

	if (iters < 0 || iters > 10000000) {
		fprintf(stderr, "usage: %s ITER [PTX_FILE]\n", argv[0]);
		return 2;
	}
	if (!path) {
		len = readlink("/proc/self/exe", def, sizeof def - 16);
		if (len < 0)
			return 2;
		def[len] = 0;
		strcpy(strrchr(def, '/') + 1, "ap_gpu_drv.ptx");
		path = def;
	}
	ptx = read_ptx(path);
	if (!ptx) {
		fprintf(stderr, "ap_gpu_drv: cannot read the PTX file %s\n", path);
		return 2;
	}
	if (w && !strcmp(w, "main"))
		wait_line();
	run_setup(ptx);
	run_leak();
	for (long i = 0; i < iters; i++) {
		run_copy_in();
		run_launch();
		run_copy_out();
		run_sync();
	}
	run_free();
	printf("RESULT {\"iterations\": %ld, \"api\": {", iters);
	for (int i = 0; i < MAX_APIS && apis[i].name; i++)
		printf("%s\"%s\": {\"calls\": %ld, \"errors\": %ld, \"codes\": {\"%ld\": %ld}}",
		       i ? ", " : "", apis[i].name, apis[i].calls, apis[i].errors, apis[i].code[0],
		       apis[i].code[1]);
	printf("}, \"kernels\": {\"drv_add_one\": [{\"grid\": [3, 5, 7], \"block\": [32, 2, 1], "
	       "\"shmem\": 256, \"launches\": %ld}]}, \"copies\": {\"h2d\": {\"calls\": %ld, "
	       "\"bytes\": %ld}, \"d2h\": {\"calls\": %ld, \"bytes\": %ld}}, "
	       "\"leak\": {\"ptr\": \"0x%llx\", \"bytes\": %u}}\n",
	       launches, h2d_calls, h2d_bytes, d2h_calls, d2h_bytes, (unsigned long long)d_leak,
	       LEAK_BYTES);
	if (getenv("AP_GPU_HOLD")) { /* stay alive (after the RESULT line) until told to exit */
		fflush(stdout);
		wait_line();
	}
	return 0;
}
