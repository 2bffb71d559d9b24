// SPDX-License-Identifier: MIT
/*
 * The GPU probes' pure parts: decoding of raw captures (src/gpu/fns.c), the cookies, probe
 * groups, the ELF scan of CUDA files (elf_scan.c) on fixtures built by the test build
 * (tests/unit/gpu_probes.cmake), stub symbol -> device name, and reading a name from a live
 * process (kernel_names.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "gpu/kernel_names.h"
#include "gpu/probes.h"
#include "symbol/symbolizer.h"

static int fn_index(const char *name)
{
	int i = ap_gpu_fn_find(name, strlen(name));

	assert_true(i >= 0);
	return i;
}

static struct ap_gpu_event call_of(const char *name)
{
	struct ap_gpu_event e;

	memset(&e, 0, sizeof(e));
	e.kind = AP_GPU_EV_CALL;
	e.cookie = ap_gpu_fn_cookie((size_t)fn_index(name));
	e.pid = 100;
	e.tid = 101;
	e.ts_ns = 5000;
	e.dur_ns = 70;
	return e;
}

/* The registers measured for cudaLaunchKernel(0x1111, dim3(3,5,7), dim3(32,2,1),
 * (void **)0x2222, 0x80, (cudaStream_t)0xabcd) (the GPU notes, section 3). */
static void test_decode_runtime_launch(void **state)
{
	struct ap_gpu_event e = call_of("cudaLaunchKernel");
	struct ap_gpu_call c;
	uint64_t name_addr;

	(void)state;
	e.args[0] = 0x1111;
	e.args[1] = 0x500000003ull;
	e.args[2] = 0x7;
	e.args[3] = 0x200000020ull;
	e.args[4] = 0x1;
	e.args[5] = 0x2222;
	e.sargs[0] = 0x80;
	e.sargs[1] = 0xabcd;
	e.flags = AP_GPU_EVF_SARGS;
	e.ret = 35;
	assert_int_equal(ap_gpu_decode(&e, &c, &name_addr), 0);
	assert_int_equal(c.kind, AP_GPU_CALL_LAUNCH);
	assert_string_equal(c.api, "cudaLaunchKernel");
	assert_int_equal(c.func, 0x1111);
	assert_int_equal(c.grid[0], 3);
	assert_int_equal(c.grid[1], 5);
	assert_int_equal(c.grid[2], 7);
	assert_int_equal(c.block[0], 32);
	assert_int_equal(c.block[1], 2);
	assert_int_equal(c.block[2], 1);
	assert_int_equal(c.shmem, 0x80);
	assert_int_equal(c.stream, 0xabcd);
	assert_int_equal(c.ret, 35);
	assert_int_equal(c.pid, 100);
	assert_int_equal(c.tid, 101);
	assert_int_equal(c.dur_ns, 70);
	assert_int_equal(name_addr, 0);

	/* stack arguments that could not be read are not made up */
	e.flags = 0;
	assert_int_equal(ap_gpu_decode(&e, &c, &name_addr), 0);
	assert_int_equal(c.shmem, 0);
	assert_int_equal(c.stream, 0);
}

/* cuLaunchKernel(f=0x1234, 3, 5, 7, 32, 2, 1, 256, stream 0x99, params, extra): measured
 * against the stub driver (notes, section 3). */
static void test_decode_driver_launch(void **state)
{
	struct ap_gpu_event e = call_of("cuLaunchKernel");
	struct ap_gpu_call c;
	uint64_t name_addr;

	(void)state;
	e.args[0] = 0x1234;
	e.args[1] = 3;
	e.args[2] = 5;
	e.args[3] = 7;
	e.args[4] = 32;
	e.args[5] = 2;
	e.sargs[0] = 1;
	e.sargs[1] = 256;
	e.sargs[2] = 0x99;
	e.flags = AP_GPU_EVF_SARGS;
	e.ret = 34;
	assert_int_equal(ap_gpu_decode(&e, &c, &name_addr), 0);
	assert_int_equal(c.kind, AP_GPU_CALL_LAUNCH);
	assert_true(c.flags & AP_GPU_F_DRIVER_API);
	assert_int_equal(c.func, 0x1234);
	assert_int_equal(c.grid[2], 7);
	assert_int_equal(c.block[0], 32);
	assert_int_equal(c.block[1], 2);
	assert_int_equal(c.block[2], 1);
	assert_int_equal(c.shmem, 256);
	assert_int_equal(c.stream, 0x99);
	assert_int_equal(c.ret, 34);
}

static void test_decode_alloc(void **state)
{
	struct ap_gpu_event e = call_of("cudaMalloc");
	struct ap_gpu_call c;
	uint64_t name_addr;

	(void)state;
	e.args[0] = 0x7ffd0000; /* void **devPtr */
	e.args[1] = 4096;
	e.out[0] = 0x7f0000200000ull;
	e.flags = AP_GPU_EVF_OUT0;
	assert_int_equal(ap_gpu_decode(&e, &c, &name_addr), 0);
	assert_int_equal(c.kind, AP_GPU_CALL_ALLOC);
	assert_int_equal(c.mem_kind, AP_GPU_MEM_DEVICE);
	assert_int_equal(c.ptr, 0x7f0000200000ull);
	assert_int_equal(c.bytes, 4096);
	assert_int_equal(c.ret, 0);

	/* a failed call: whatever *devPtr holds is not an allocation */
	e.ret = 2; /* cudaErrorMemoryAllocation */
	assert_int_equal(ap_gpu_decode(&e, &c, &name_addr), 0);
	assert_int_equal(c.ptr, 0);
	assert_int_equal(c.ret, 2);

	/* the out pointer could not be read: no pointer */
	e.ret = 0;
	e.flags = 0;
	assert_int_equal(ap_gpu_decode(&e, &c, &name_addr), 0);
	assert_int_equal(c.ptr, 0);

	e = call_of("cudaMallocAsync_ptsz");
	e.args[1] = 64;
	e.args[2] = 0x55; /* stream */
	e.out[0] = 0x1000;
	e.flags = AP_GPU_EVF_OUT0;
	assert_int_equal(ap_gpu_decode(&e, &c, &name_addr), 0);
	assert_int_equal(c.mem_kind, AP_GPU_MEM_ASYNC);
	assert_int_equal(c.stream, 0x55);
	assert_true(c.flags & AP_GPU_F_PTSZ);
	assert_true(c.flags & AP_GPU_F_ASYNC);

	e = call_of("cudaHostAlloc");
	e.args[1] = 100;
	e.out[0] = 0x2000;
	e.flags = AP_GPU_EVF_OUT0;
	assert_int_equal(ap_gpu_decode(&e, &c, &name_addr), 0);
	assert_int_equal(c.mem_kind, AP_GPU_MEM_HOST_PINNED);

	/* cudaMallocPitch(&p, &pitch, width 100, height 3): pitch 128 read at return */
	e = call_of("cudaMallocPitch");
	e.args[2] = 100;
	e.args[3] = 3;
	e.out[0] = 0x3000;
	e.out[1] = 128;
	e.flags = AP_GPU_EVF_OUT0 | AP_GPU_EVF_OUT1;
	assert_int_equal(ap_gpu_decode(&e, &c, &name_addr), 0);
	assert_int_equal(c.bytes, 384);
	assert_int_equal(c.ptr, 0x3000);

	e = call_of("cudaFree");
	e.args[0] = 0x3000;
	assert_int_equal(ap_gpu_decode(&e, &c, &name_addr), 0);
	assert_int_equal(c.kind, AP_GPU_CALL_FREE);
	assert_int_equal(c.ptr, 0x3000);
}

static void test_decode_copies_syncs(void **state)
{
	struct ap_gpu_event e = call_of("cudaMemcpyAsync");
	struct ap_gpu_call c;
	uint64_t name_addr;

	(void)state;
	e.args[2] = 256;
	e.args[3] = 2; /* cudaMemcpyDeviceToHost */
	e.args[4] = 0x77;
	assert_int_equal(ap_gpu_decode(&e, &c, &name_addr), 0);
	assert_int_equal(c.kind, AP_GPU_CALL_COPY);
	assert_int_equal(c.bytes, 256);
	assert_int_equal(c.copy_dir, AP_GPU_COPY_D2H);
	assert_int_equal(c.stream, 0x77);
	assert_true(c.flags & AP_GPU_F_ASYNC);

	e.args[3] = 9; /* not a cudaMemcpyKind */
	assert_int_equal(ap_gpu_decode(&e, &c, &name_addr), 0);
	assert_int_equal(c.copy_dir, AP_GPU_COPY_UNKNOWN);

	e = call_of("cuMemcpyHtoD_v2");
	e.args[2] = 512;
	assert_int_equal(ap_gpu_decode(&e, &c, &name_addr), 0);
	assert_int_equal(c.copy_dir, AP_GPU_COPY_H2D);
	assert_int_equal(c.bytes, 512);

	/* cudaMemcpy2D(dst, dpitch, src, spitch, width 40, height 5, kind on the stack) */
	e = call_of("cudaMemcpy2D");
	e.args[4] = 40;
	e.args[5] = 5;
	e.sargs[0] = 1;
	e.flags = AP_GPU_EVF_SARGS;
	assert_int_equal(ap_gpu_decode(&e, &c, &name_addr), 0);
	assert_int_equal(c.bytes, 200);
	assert_int_equal(c.copy_dir, AP_GPU_COPY_H2D);

	e = call_of("cudaStreamSynchronize_ptsz");
	e.args[0] = 0x42;
	e.dur_ns = 800;
	assert_int_equal(ap_gpu_decode(&e, &c, &name_addr), 0);
	assert_int_equal(c.kind, AP_GPU_CALL_SYNC);
	assert_int_equal(c.stream, 0x42);
	assert_int_equal(c.dur_ns, 800);

	e = call_of("cudaDeviceSynchronize");
	e.args[0] = 0x42; /* garbage in an unused register */
	assert_int_equal(ap_gpu_decode(&e, &c, &name_addr), 0);
	assert_int_equal(c.stream, 0);
}

static void test_decode_registration(void **state)
{
	struct ap_gpu_event e = call_of("__cudaRegisterFunction");
	struct ap_gpu_call c;
	uint64_t name_addr;

	(void)state;
	/* (handle, hostFun, deviceFun, deviceName, -1, 0...): arg2 == arg3, the mangled name */
	e.args[0] = 0xaaaa;
	e.args[1] = 0x401000;
	e.args[2] = 0x402000;
	e.args[3] = 0x402000;
	e.args[4] = 0xffffffff;
	e.ret = 0xdeadbeef; /* void: whatever rax held */
	assert_int_equal(ap_gpu_decode(&e, &c, &name_addr), 0);
	assert_int_equal(c.kind, AP_GPU_CALL_REGISTER_FUNCTION);
	assert_int_equal(c.func, 0x401000);
	assert_int_equal(name_addr, 0x402000);
	assert_int_equal(c.ret, 0);
	assert_null(c.name);

	e = call_of("__cudaGetKernel");
	e.args[0] = 0x7ffd1000;
	e.args[1] = 0x401000;
	e.out[0] = 0x9999;
	e.flags = AP_GPU_EVF_OUT0;
	e.ret = 35;
	assert_int_equal(ap_gpu_decode(&e, &c, &name_addr), 0);
	assert_int_equal(c.kind, AP_GPU_CALL_GET_KERNEL);
	assert_int_equal(c.func, 0x401000);
	assert_int_equal(c.handle, 0x9999);
	assert_int_equal(c.ret, 35);

	e = call_of("__cudaRegisterFatBinary");
	e.ret = 0x55550000;
	assert_int_equal(ap_gpu_decode(&e, &c, &name_addr), 0);
	assert_int_equal(c.kind, AP_GPU_CALL_REGISTER_FATBIN);
	assert_int_equal(c.handle, 0x55550000);
	assert_int_equal(c.ret, 0);

	/* the driver's cuModuleGetFunction(&f, mod, name) names the CUfunction it returns */
	e = call_of("cuModuleGetFunction");
	e.args[0] = 0x7ffd2000;
	e.args[2] = 0x403000;
	e.out[0] = 0xf00d;
	e.flags = AP_GPU_EVF_OUT0;
	assert_int_equal(ap_gpu_decode(&e, &c, &name_addr), 0);
	assert_int_equal(c.kind, AP_GPU_CALL_REGISTER_FUNCTION);
	assert_int_equal(c.func, 0xf00d);
	assert_int_equal(name_addr, 0x403000);
	e.ret = 34; /* the stub driver: nothing was written */
	assert_int_equal(ap_gpu_decode(&e, &c, &name_addr), 0);
	assert_int_equal(c.kind, AP_GPU_CALL_OTHER);
	assert_int_equal(name_addr, 0);
	assert_int_equal(c.ret, 34);

	/* not a call, or not a function of the table */
	e.kind = AP_GPU_EV_EXIT;
	assert_int_equal(ap_gpu_decode(&e, &c, &name_addr), -EINVAL);
	e.kind = AP_GPU_EV_CALL;
	e.cookie = ap_gpu_nfns;
	assert_int_equal(ap_gpu_decode(&e, &c, &name_addr), -EINVAL);
}

static void test_cookies(void **state)
{
	uint64_t ck;

	(void)state;
	ck = ap_gpu_fn_cookie((size_t)fn_index("cudaMalloc"));
	assert_int_equal(ck & AP_GPU_CK_FN_MASK, fn_index("cudaMalloc"));
	assert_true(ck & AP_GPU_CK_DEREF0);
	assert_true(ck & AP_GPU_CK_STACK);
	assert_false(ck & AP_GPU_CK_ENTRY_ONLY);
	assert_int_equal((ck >> AP_GPU_CK_CLASS_SHIFT) & 0xff, AP_GPU_CLASS_MEMORY);

	ck = ap_gpu_fn_cookie((size_t)fn_index("__cudaRegisterFunction"));
	assert_true(ck & AP_GPU_CK_ENTRY_ONLY);
	assert_false(ck & AP_GPU_CK_STACK);

	/* the two launch entry points share a class: the tail call folds into one launch */
	ck = ap_gpu_fn_cookie((size_t)fn_index("__cudaLaunchKernel"));
	assert_true(ck & AP_GPU_CK_STACK_ARGS);
	assert_int_equal((ck >> AP_GPU_CK_CLASS_SHIFT) & 0xff, AP_GPU_CLASS_LAUNCH);
	ck = ap_gpu_fn_cookie((size_t)fn_index("cudaLaunchKernel"));
	assert_int_equal((ck >> AP_GPU_CK_CLASS_SHIFT) & 0xff, AP_GPU_CLASS_LAUNCH);
	ck = ap_gpu_fn_cookie((size_t)fn_index("cuLaunchKernel"));
	assert_int_equal((ck >> AP_GPU_CK_CLASS_SHIFT) & 0xff, AP_GPU_CLASS_LAUNCH);

	ck = ap_gpu_fn_cookie((size_t)fn_index("cudaMallocPitch"));
	assert_true(ck & AP_GPU_CK_DEREF1);
	ck = ap_gpu_fn_cookie((size_t)fn_index("cudaMemcpy2DAsync"));
	assert_true(ck & AP_GPU_CK_STACK_ARGS);
	ck = ap_gpu_fn_cookie((size_t)fn_index("cudaMemcpyAsync"));
	assert_false(ck & AP_GPU_CK_STACK_ARGS);
	/* other calls are timed and counted, without the cost of a stack */
	ck = ap_gpu_fn_cookie((size_t)fn_index("cudaStreamCreate"));
	assert_false(ck & AP_GPU_CK_STACK);
}

static void test_fn_find_and_groups(void **state)
{
	const char *v = "cudaMalloc@@libcudart.so.13";
	unsigned int g = 0;
	char err[200];

	(void)state;
	assert_int_equal(ap_gpu_fn_find(v, strlen(v)), fn_index("cudaMalloc"));
	assert_int_equal(ap_gpu_fn_find("cudaMallocX", 11), -1);
	assert_int_equal(ap_gpu_fn_find("cudaMalloc", 9), -1); /* a prefix is not the name */
	assert_int_equal(ap_gpu_fn_find("malloc", 6), -1);
	assert_int_equal(ap_gpu_fn_find("cudaGetLastError", 16), -1); /* deliberately not */

	assert_int_equal(ap_gpu_groups_parse("memory", &g, err, sizeof(err)), 0);
	/* registration goes with launch, which every group needs to name kernels */
	assert_int_equal(g, AP_GPU_GROUP_MEMORY | AP_GPU_GROUP_LAUNCH);
	assert_int_equal(ap_gpu_groups_parse("launch,copy,sync", &g, err, sizeof(err)), 0);
	assert_int_equal(g, AP_GPU_GROUP_LAUNCH | AP_GPU_GROUP_COPY | AP_GPU_GROUP_SYNC);
	assert_int_equal(ap_gpu_groups_parse("all", &g, err, sizeof(err)), 0);
	assert_int_equal(g, AP_GPU_GROUP_ALL);
	assert_int_equal(ap_gpu_groups_parse("launch,bogus", &g, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "'bogus'"));
	assert_int_equal(ap_gpu_groups_parse("", &g, err, sizeof(err)), -EINVAL);
	assert_int_equal(ap_gpu_groups_parse(",", &g, err, sizeof(err)), -EINVAL);
	/* every row's group is one of the four */
	for (size_t i = 0; i < ap_gpu_nfns; i++)
		assert_true(ap_gpu_fns[i].group && !(ap_gpu_fns[i].group & ~AP_GPU_GROUP_ALL));
}

/* The symbol's address per nm(1), an independent reader. */
static long long nm_addr(const char *path, const char *sym)
{
	char cmd[600], line[512];
	long long addr = -1;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "nm '%s'", path);
	f = popen(cmd, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		char name[400], type;
		unsigned long long a;

		if (sscanf(line, "%llx %c %399s", &a, &type, name) == 3 && strcmp(name, sym) == 0)
			addr = (long long)a;
	}
	pclose(f);
	return addr;
}

static int open_fixture(const char *name, char *path, size_t len)
{
	int fd;

	snprintf(path, len, "%s/%s", AP_TEST_BIN_DIR, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fail_msg("fixture %s missing (built by tests/unit/gpu_probes.cmake): %s", path,
			 strerror(errno));
	return fd;
}

static void test_scan_static(void **state)
{
	static const char *const fns[] = { "cudaMalloc", "cudaFree", "cudaLaunchKernel",
					   "__cudaLaunchKernel", "__cudaRegisterFunction",
					   "cudaMemcpy", "cudaStreamSynchronize" };
	struct ap_gpu_scan s;
	char path[512];
	int fd = open_fixture("gpufix_static", path, sizeof(path));

	(void)state;
	assert_int_equal(ap_gpu_scan_fd(fd, &s), 0);
	assert_int_equal(s.cls, AP_GPU_FILE_PROBE);
	assert_true(s.has_symtab);
	assert_true(s.has_fatbin);
	assert_false(s.driver);
	/* and cudaLaunchKernel_ptsz; __cudaLaunchKernel_ptsz only jumps into it: folded */
	assert_int_equal(s.nsites, sizeof(fns) / sizeof(fns[0]) + 1);
	assert_int_equal(s.folded, 1);
	for (size_t k = 0; k < s.nsites; k++)
		assert_int_not_equal(s.sites[k].fn, fn_index("__cudaLaunchKernel_ptsz"));
	for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
		long long addr = nm_addr(path, fns[i]);
		bool found = false;

		assert_true(addr > 0);
		for (size_t k = 0; k < s.nsites; k++) {
			if (s.sites[k].fn != (uint32_t)fn_index(fns[i]))
				continue;
			found = true;
			/* the fixture's text is loaded at its file offset (ld's default layout) */
			assert_int_equal(s.sites[k].offset, (uint64_t)addr);
		}
		assert_true(found);
	}
	ap_gpu_scan_free(&s);
	close(fd);
}

static void test_scan_stripped_and_importer(void **state)
{
	struct ap_gpu_scan s;
	char path[512];
	int fd;

	(void)state;
	fd = open_fixture("gpufix_static.stripped", path, sizeof(path));
	assert_int_equal(ap_gpu_scan_fd(fd, &s), 0);
	assert_int_equal(s.cls, AP_GPU_FILE_UNPROBEABLE);
	assert_false(s.has_symtab);
	assert_true(s.has_fatbin);
	assert_int_equal(s.nsites, 0);
	assert_non_null(strstr(s.reason, "stripped"));
	ap_gpu_scan_free(&s);
	close(fd);

	fd = open_fixture("libgpufix_uses.so", path, sizeof(path));
	assert_int_equal(ap_gpu_scan_fd(fd, &s), 0);
	assert_int_equal(s.cls, AP_GPU_FILE_USES_SHARED);
	assert_true(s.imports_cuda);
	ap_gpu_scan_free(&s);
	close(fd);

	/* a file without anything CUDA (this test), and one that is not ELF */
	fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	assert_int_equal(ap_gpu_scan_fd(fd, &s), 0);
	assert_int_equal(s.cls, AP_GPU_FILE_NONE);
	ap_gpu_scan_free(&s);
	close(fd);
	fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	assert_int_equal(ap_gpu_scan_fd(fd, &s), 0);
	assert_int_equal(s.cls, AP_GPU_FILE_NONE);
	close(fd);
}

static void test_stub_names(void **state)
{
	const char *stub = "_ZN11aperture_nsL5scaleIfEEvPT_S1_i";
	char path[512], buf[128];
	char *name, *d1, *d2;
	long long addr;
	int fd;

	(void)state;
	fd = open_fixture("gpufix_static", path, sizeof(path));
	addr = nm_addr(path, stub);
	assert_true(addr > 0);
	name = ap_gpu_elf_symbol_at(fd, (uint64_t)addr);
	assert_non_null(name);
	assert_string_equal(name, stub);
	free(name);
	/* inside a function, not only at its start */
	addr = nm_addr(path, "main");
	assert_true(addr > 0);
	name = ap_gpu_elf_symbol_at(fd, (uint64_t)addr + 4);
	assert_non_null(name);
	assert_string_equal(name, "main");
	free(name);
	assert_null(ap_gpu_elf_symbol_at(fd, 0x7fffffff));
	close(fd);

	/* the stub's local-linkage name reads as the device's, and demangles the same */
	snprintf(buf, sizeof(buf), "%s", stub);
	ap_gpu_stub_to_device_name(buf);
	assert_string_equal(buf, "_ZN11aperture_ns5scaleIfEEvPT_S1_i");
	d1 = ap_symbolizer_demangle(stub);
	d2 = ap_symbolizer_demangle(buf);
	assert_non_null(d1);
	assert_non_null(d2);
	assert_string_equal(d1, d2);
	assert_string_equal(d2, "void aperture_ns::scale<float>(float*, float, int)");
	free(d1);
	free(d2);

	snprintf(buf, sizeof(buf), "_ZL7add_onePii");
	ap_gpu_stub_to_device_name(buf);
	assert_string_equal(buf, "_Z7add_onePii");
	snprintf(buf, sizeof(buf), "_Z7add_onePii"); /* nothing to drop */
	ap_gpu_stub_to_device_name(buf);
	assert_string_equal(buf, "_Z7add_onePii");
	snprintf(buf, sizeof(buf), "_ZN1a1bL1cEv"); /* two namespaces deep */
	ap_gpu_stub_to_device_name(buf);
	assert_string_equal(buf, "_ZN1a1b1cEv");
	snprintf(buf, sizeof(buf), "_ZN99xE"); /* a length past the end: left alone */
	ap_gpu_stub_to_device_name(buf);
	assert_string_equal(buf, "_ZN99xE");
	snprintf(buf, sizeof(buf), "main");
	ap_gpu_stub_to_device_name(buf);
	assert_string_equal(buf, "main");
}

static const char kernel_name[] = "_Z7add_onePii";

static void test_read_proc_string(void **state)
{
	char buf[64], small[6];

	(void)state;
	assert_int_equal(ap_gpu_read_proc_string(getpid(), (uint64_t)(uintptr_t)kernel_name, buf,
						 sizeof(buf)),
			 0);
	assert_string_equal(buf, kernel_name);
	assert_int_equal(ap_gpu_read_proc_string(getpid(), (uint64_t)(uintptr_t)kernel_name,
						 small, sizeof(small)),
			 -ENAMETOOLONG);
	assert_true(ap_gpu_read_proc_string(getpid(), 8, buf, sizeof(buf)) < 0);
	assert_int_equal(ap_gpu_read_proc_string(getpid(), 0, buf, sizeof(buf)), -EINVAL);
	/* not a name: control characters */
	{
		static const char junk[] = "ab\x01" "cd";

		assert_int_equal(ap_gpu_read_proc_string(getpid(), (uint64_t)(uintptr_t)junk, buf,
							 sizeof(buf)),
				 -EINVAL);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_runtime_launch),
		cmocka_unit_test(test_decode_driver_launch),
		cmocka_unit_test(test_decode_alloc),
		cmocka_unit_test(test_decode_copies_syncs),
		cmocka_unit_test(test_decode_registration),
		cmocka_unit_test(test_cookies),
		cmocka_unit_test(test_fn_find_and_groups),
		cmocka_unit_test(test_scan_static),
		cmocka_unit_test(test_scan_stripped_and_importer),
		cmocka_unit_test(test_stub_names),
		cmocka_unit_test(test_read_proc_string),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
