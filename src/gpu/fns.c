// SPDX-License-Identifier: MIT
/*
 * The probed CUDA API functions and the decoding of their raw captures (probes.h).
 *
 * Argument positions are x86-64 SysV: indices 0-5 are rdi, rsi, rdx, rcx, r8, r9; 6-10 the
 * stack arguments above the return address at entry. A dim3 passed by value takes two
 * registers (x | y << 32, then z), measured in docs/gpu.md's notes.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "probes.h"

enum layout {
	L_OTHER = 0,	/* counted and timed; bytes/stream where the row says */
	L_REG_FATBIN,	/* __cudaRegisterFatBinary: the handle is the return value */
	L_REG_FUNC,	/* __cudaRegisterFunction(handle, hostFun, deviceFun, deviceName, ...) */
	L_GET_KERNEL,	/* __cudaGetKernel(cudaKernel_t *out, hostFun) */
	L_RT_LAUNCH,	/* (func, dim3 grid, dim3 block, args, shmem, stream) */
	L_DRV_LAUNCH,	/* (f, gx, gy, gz, bx, by, bz, shmem, stream, params, extra) */
	L_ALLOC,	/* (void **out, size, ...) */
	L_ALLOC_PITCH,	/* (void **out, size_t *pitch, width, height, ...) */
	L_FREE,		/* (ptr, ...) */
	L_COPY,		/* bytes/dir/stream where the row says */
	L_COPY_2D,	/* (dst, dpitch, src, spitch, width, height, kind, [stream]) */
	L_SYNC,		/* stream where the row says */
	L_DRV_GET_FUNC, /* cuModuleGetFunction(CUfunction *out, CUmodule, const char *name) */
};

#define S(i) (6 + (i)) /* stack argument i */
#define NA -1

/* Shorthands: name, kind, class, group, layout, flags, mem kind, bytes, stream, dir, fixed */
#define REG(n, k, l) { n, k, AP_GPU_CLASS_REGISTER, AP_GPU_GROUP_LAUNCH, l, 0, 0, NA, NA, NA, 0 }
#define LAUNCH(n, l, f) { n, AP_GPU_CALL_LAUNCH, AP_GPU_CLASS_LAUNCH, AP_GPU_GROUP_LAUNCH, l, f, 0, NA, NA, NA, 0 }
#define ALLOC(n, l, f, mk, b, st) { n, AP_GPU_CALL_ALLOC, AP_GPU_CLASS_MEMORY, AP_GPU_GROUP_MEMORY, l, f, mk, b, st, NA, 0 }
#define FREE(n, f, st) { n, AP_GPU_CALL_FREE, AP_GPU_CLASS_MEMORY, AP_GPU_GROUP_MEMORY, L_FREE, f, 0, NA, st, NA, 0 }
#define COPY(n, f, b, st, d, fd) { n, AP_GPU_CALL_COPY, AP_GPU_CLASS_COPY, AP_GPU_GROUP_COPY, L_COPY, f, 0, b, st, d, fd }
#define COPY2D(n, f, st, d) { n, AP_GPU_CALL_COPY, AP_GPU_CLASS_COPY, AP_GPU_GROUP_COPY, L_COPY_2D, f, 0, NA, st, d, 0 }
#define MEMSET(n, f, b, st) { n, AP_GPU_CALL_OTHER, AP_GPU_CLASS_COPY, AP_GPU_GROUP_COPY, L_OTHER, f, 0, b, st, NA, 0 }
#define SYNC(n, f, st) { n, AP_GPU_CALL_SYNC, AP_GPU_CLASS_SYNC, AP_GPU_GROUP_SYNC, L_SYNC, f, 0, NA, st, NA, 0 }
#define OTHER(n, f, st) { n, AP_GPU_CALL_OTHER, AP_GPU_CLASS_OTHER, AP_GPU_GROUP_LAUNCH, L_OTHER, f, 0, NA, st, NA, 0 }

#define DRV AP_GPU_F_DRIVER_API
#define ASY AP_GPU_F_ASYNC
#define PT AP_GPU_F_PTSZ

const struct ap_gpu_fn ap_gpu_fns[] = {
	/* registration: names kernels (host stub -> device name; cudaKernel_t -> host stub) */
	REG("__cudaRegisterFatBinary", AP_GPU_CALL_REGISTER_FATBIN, L_REG_FATBIN),
	REG("__cudaRegisterFunction", AP_GPU_CALL_REGISTER_FUNCTION, L_REG_FUNC),
	REG("__cudaGetKernel", AP_GPU_CALL_GET_KERNEL, L_GET_KERNEL),

	/* launches: CUDA 13's <<<>>> (__cudaLaunchKernel), the legacy sequence and explicit
	 * calls (cudaLaunchKernel), per-thread default stream variants, the driver */
	LAUNCH("__cudaLaunchKernel", L_RT_LAUNCH, 0),
	LAUNCH("__cudaLaunchKernel_ptsz", L_RT_LAUNCH, PT),
	LAUNCH("cudaLaunchKernel", L_RT_LAUNCH, 0),
	LAUNCH("cudaLaunchKernel_ptsz", L_RT_LAUNCH, PT),
	LAUNCH("cudaLaunchCooperativeKernel", L_RT_LAUNCH, 0),
	LAUNCH("cudaLaunchCooperativeKernel_ptsz", L_RT_LAUNCH, PT),
	LAUNCH("cuLaunchKernel", L_DRV_LAUNCH, DRV),
	LAUNCH("cuLaunchKernel_ptsz", L_DRV_LAUNCH, DRV | PT),
	LAUNCH("cuLaunchCooperativeKernel", L_DRV_LAUNCH, DRV),
	LAUNCH("cuLaunchCooperativeKernel_ptsz", L_DRV_LAUNCH, DRV | PT),

	/* allocations and frees */
	ALLOC("cudaMalloc", L_ALLOC, 0, AP_GPU_MEM_DEVICE, 1, NA),
	ALLOC("cudaMallocManaged", L_ALLOC, 0, AP_GPU_MEM_MANAGED, 1, NA),
	ALLOC("cudaMallocHost", L_ALLOC, 0, AP_GPU_MEM_HOST_PINNED, 1, NA),
	ALLOC("cudaHostAlloc", L_ALLOC, 0, AP_GPU_MEM_HOST_PINNED, 1, NA),
	ALLOC("cudaMallocPitch", L_ALLOC_PITCH, 0, AP_GPU_MEM_DEVICE, NA, NA),
	ALLOC("cudaMallocAsync", L_ALLOC, ASY, AP_GPU_MEM_ASYNC, 1, 2),
	ALLOC("cudaMallocAsync_ptsz", L_ALLOC, ASY | PT, AP_GPU_MEM_ASYNC, 1, 2),
	ALLOC("cudaMallocFromPoolAsync", L_ALLOC, ASY, AP_GPU_MEM_ASYNC, 1, 3),
	ALLOC("cudaMallocFromPoolAsync_ptsz", L_ALLOC, ASY | PT, AP_GPU_MEM_ASYNC, 1, 3),
	FREE("cudaFree", 0, NA),
	FREE("cudaFreeHost", 0, NA),
	FREE("cudaFreeAsync", ASY, 1),
	FREE("cudaFreeAsync_ptsz", ASY | PT, 1),
	ALLOC("cuMemAlloc_v2", L_ALLOC, DRV, AP_GPU_MEM_DEVICE, 1, NA),
	ALLOC("cuMemAllocManaged", L_ALLOC, DRV, AP_GPU_MEM_MANAGED, 1, NA),
	ALLOC("cuMemAllocHost_v2", L_ALLOC, DRV, AP_GPU_MEM_HOST_PINNED, 1, NA),
	ALLOC("cuMemHostAlloc", L_ALLOC, DRV, AP_GPU_MEM_HOST_PINNED, 1, NA),
	ALLOC("cuMemAllocPitch_v2", L_ALLOC_PITCH, DRV, AP_GPU_MEM_DEVICE, NA, NA),
	ALLOC("cuMemAllocAsync", L_ALLOC, DRV | ASY, AP_GPU_MEM_ASYNC, 1, 2),
	ALLOC("cuMemAllocAsync_ptsz", L_ALLOC, DRV | ASY | PT, AP_GPU_MEM_ASYNC, 1, 2),
	ALLOC("cuMemAllocFromPoolAsync", L_ALLOC, DRV | ASY, AP_GPU_MEM_ASYNC, 1, 3),
	ALLOC("cuMemAllocFromPoolAsync_ptsz", L_ALLOC, DRV | ASY | PT, AP_GPU_MEM_ASYNC, 1, 3),
	FREE("cuMemFree_v2", DRV, NA),
	FREE("cuMemFreeHost", DRV, NA),
	FREE("cuMemFreeAsync", DRV | ASY, 1),
	FREE("cuMemFreeAsync_ptsz", DRV | ASY | PT, 1),

	/* copies (bytes, direction) and memsets (bytes; timed and counted as API calls) */
	COPY("cudaMemcpy", 0, 2, NA, 3, 0),
	COPY("cudaMemcpy_ptds", PT, 2, NA, 3, 0),
	COPY("cudaMemcpyAsync", ASY, 2, 4, 3, 0),
	COPY("cudaMemcpyAsync_ptsz", ASY | PT, 2, 4, 3, 0),
	COPY2D("cudaMemcpy2D", 0, NA, S(0)),
	COPY2D("cudaMemcpy2D_ptds", PT, NA, S(0)),
	COPY2D("cudaMemcpy2DAsync", ASY, S(1), S(0)),
	COPY2D("cudaMemcpy2DAsync_ptsz", ASY | PT, S(1), S(0)),
	COPY("cudaMemcpyToSymbol", 0, 2, NA, 4, 0),
	COPY("cudaMemcpyToSymbol_ptds", PT, 2, NA, 4, 0),
	COPY("cudaMemcpyFromSymbol", 0, 2, NA, 4, 0),
	COPY("cudaMemcpyFromSymbol_ptds", PT, 2, NA, 4, 0),
	COPY("cudaMemcpyToSymbolAsync", ASY, 2, 5, 4, 0),
	COPY("cudaMemcpyToSymbolAsync_ptsz", ASY | PT, 2, 5, 4, 0),
	COPY("cudaMemcpyFromSymbolAsync", ASY, 2, 5, 4, 0),
	COPY("cudaMemcpyFromSymbolAsync_ptsz", ASY | PT, 2, 5, 4, 0),
	COPY("cudaMemcpyPeer", 0, 4, NA, NA, AP_GPU_COPY_PEER),
	COPY("cudaMemcpyPeerAsync", ASY, 4, 5, NA, AP_GPU_COPY_PEER),
	COPY("cuMemcpy", DRV, 2, NA, NA, AP_GPU_COPY_DEFAULT),
	COPY("cuMemcpyAsync", DRV | ASY, 2, 3, NA, AP_GPU_COPY_DEFAULT),
	COPY("cuMemcpyHtoD_v2", DRV, 2, NA, NA, AP_GPU_COPY_H2D),
	COPY("cuMemcpyDtoH_v2", DRV, 2, NA, NA, AP_GPU_COPY_D2H),
	COPY("cuMemcpyDtoD_v2", DRV, 2, NA, NA, AP_GPU_COPY_D2D),
	COPY("cuMemcpyHtoDAsync_v2", DRV | ASY, 2, 3, NA, AP_GPU_COPY_H2D),
	COPY("cuMemcpyDtoHAsync_v2", DRV | ASY, 2, 3, NA, AP_GPU_COPY_D2H),
	COPY("cuMemcpyDtoDAsync_v2", DRV | ASY, 2, 3, NA, AP_GPU_COPY_D2D),
	COPY("cuMemcpyPeer", DRV, 4, NA, NA, AP_GPU_COPY_PEER),
	MEMSET("cudaMemset", 0, 2, NA),
	MEMSET("cudaMemset_ptds", PT, 2, NA),
	MEMSET("cudaMemsetAsync", ASY, 2, 3),
	MEMSET("cudaMemsetAsync_ptsz", ASY | PT, 2, 3),

	/* synchronisation: the time the thread was blocked */
	SYNC("cudaDeviceSynchronize", 0, NA),
	SYNC("cudaStreamSynchronize", 0, 0),
	SYNC("cudaStreamSynchronize_ptsz", PT, 0),
	SYNC("cudaEventSynchronize", 0, NA),
	SYNC("cuCtxSynchronize", DRV, NA),
	SYNC("cuStreamSynchronize", DRV, 0),
	SYNC("cuStreamSynchronize_ptsz", DRV | PT, 0),
	SYNC("cuEventSynchronize", DRV, NA),

	/* other calls: timed and counted (not cudaGetLastError, called after every <<<>>>) */
	OTHER("cudaGetDeviceCount", 0, NA),
	OTHER("cudaSetDevice", 0, NA),
	OTHER("cudaStreamCreate", 0, NA),
	OTHER("cudaStreamCreateWithFlags", 0, NA),
	OTHER("cudaStreamCreateWithPriority", 0, NA),
	OTHER("cudaStreamDestroy", 0, 0),
	OTHER("cudaEventCreate", 0, NA),
	OTHER("cudaEventCreateWithFlags", 0, NA),
	OTHER("cudaEventRecord", 0, 1),
	OTHER("cudaEventRecord_ptsz", PT, 1),
	OTHER("cudaEventDestroy", 0, NA),
	OTHER("cudaEventElapsedTime", 0, NA),
	OTHER("cudaStreamWaitEvent", 0, 0),
	OTHER("cudaGraphLaunch", 0, 1),
	OTHER("cudaGraphLaunch_ptsz", PT, 1),
	OTHER("cudaFuncGetAttributes", 0, NA),
	OTHER("cuInit", DRV, NA),
	OTHER("cuDeviceGetCount", DRV, NA),
	OTHER("cuCtxCreate_v2", DRV, NA),
	OTHER("cuModuleLoadData", DRV, NA),
	OTHER("cuModuleLoadDataEx", DRV, NA),
	/* names the driver's launches: the CUfunction it returns -> the kernel's name */
	{ "cuModuleGetFunction", AP_GPU_CALL_REGISTER_FUNCTION, AP_GPU_CLASS_REGISTER,
	  AP_GPU_GROUP_LAUNCH, L_DRV_GET_FUNC, DRV, 0, NA, NA, NA, 0 },
	OTHER("cuStreamCreate", DRV, NA),
	OTHER("cuGraphLaunch", DRV, 1),
};

const size_t ap_gpu_nfns = sizeof(ap_gpu_fns) / sizeof(ap_gpu_fns[0]);

_Static_assert(sizeof(ap_gpu_fns) / sizeof(ap_gpu_fns[0]) <= AP_GPU_CK_FN_MASK,
	       "too many functions for the cookie");

int ap_gpu_groups_parse(const char *s, unsigned int *groups, char *err, size_t errlen)
{
	static const struct {
		const char *name;
		unsigned int bit;
	} names[] = {
		{ "launch", AP_GPU_GROUP_LAUNCH }, { "memory", AP_GPU_GROUP_MEMORY },
		{ "copy", AP_GPU_GROUP_COPY },	   { "sync", AP_GPU_GROUP_SYNC },
		{ "all", AP_GPU_GROUP_ALL },
	};
	unsigned int g = 0;
	const char *p = s;

	while (p && *p) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p), i;

		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (strlen(names[i].name) == n && strncmp(p, names[i].name, n) == 0)
				break;
		if (i == sizeof(names) / sizeof(names[0])) {
			snprintf(err, errlen, "unknown probe group '%.*s' (available: launch, "
				 "memory, copy, sync, all)", (int)(n > 40 ? 40 : n), p);
			return -EINVAL;
		}
		g |= names[i].bit;
		p = end ? end + 1 : NULL;
	}
	if (!g) {
		snprintf(err, errlen, "no probe group given (available: launch, memory, copy, "
			 "sync, all)");
		return -EINVAL;
	}
	*groups = g;
	return 0;
}

int ap_gpu_fn_find(const char *name, size_t len)
{
	const char *at = memchr(name, '@', len);

	if (at)
		len = (size_t)(at - name);
	/* every probed name starts with "cu" or "__cu": most symbols are out at once */
	if (len < 3 || !(name[0] == 'c' || name[0] == '_'))
		return -1;
	for (size_t i = 0; i < ap_gpu_nfns; i++)
		if (strlen(ap_gpu_fns[i].name) == len && memcmp(ap_gpu_fns[i].name, name, len) == 0)
			return (int)i;
	return -1;
}

bool ap_gpu_fn_wanted(size_t idx, unsigned int groups)
{
	return idx < ap_gpu_nfns && ((ap_gpu_fns[idx].group & groups) ||
				     ap_gpu_fns[idx].cls == AP_GPU_CLASS_REGISTER);
}

static bool uses_stack_args(const struct ap_gpu_fn *f)
{
	return f->layout == L_RT_LAUNCH || f->layout == L_DRV_LAUNCH || f->bytes >= 6 ||
	       f->stream >= 6 || f->dir >= 6;
}

uint64_t ap_gpu_fn_cookie(size_t idx)
{
	const struct ap_gpu_fn *f = &ap_gpu_fns[idx];
	uint64_t c = idx | ((uint64_t)f->cls << AP_GPU_CK_CLASS_SHIFT);

	if (f->layout == L_REG_FUNC)
		c |= AP_GPU_CK_ENTRY_ONLY | AP_GPU_CK_READ_NAME;
	if (uses_stack_args(f))
		c |= AP_GPU_CK_STACK_ARGS;
	if (f->layout == L_ALLOC || f->layout == L_ALLOC_PITCH || f->layout == L_GET_KERNEL ||
	    f->layout == L_DRV_GET_FUNC)
		c |= AP_GPU_CK_DEREF0;
	if (f->layout == L_ALLOC_PITCH)
		c |= AP_GPU_CK_DEREF1;
	/* where the time went is the point of launches, memory, copies and syncs */
	if (f->cls == AP_GPU_CLASS_LAUNCH || f->cls == AP_GPU_CLASS_MEMORY ||
	    f->cls == AP_GPU_CLASS_COPY || f->cls == AP_GPU_CLASS_SYNC)
		c |= AP_GPU_CK_STACK;
	return c;
}

/* Argument i of the record: a register, or a stack argument when they were read. */
static uint64_t arg(const struct ap_gpu_event *e, int i)
{
	if (i < 0)
		return 0;
	if (i < AP_GPU_NARGS)
		return e->args[i];
	if (i < AP_GPU_NARGS + AP_GPU_NSARGS && (e->flags & AP_GPU_EVF_SARGS))
		return e->sargs[i - AP_GPU_NARGS];
	return 0;
}

/* cudaMemcpyKind -> enum ap_gpu_copy_dir */
static uint32_t copy_dir(uint64_t kind)
{
	switch (kind) {
	case 0:
		return AP_GPU_COPY_H2H;
	case 1:
		return AP_GPU_COPY_H2D;
	case 2:
		return AP_GPU_COPY_D2H;
	case 3:
		return AP_GPU_COPY_D2D;
	case 4:
		return AP_GPU_COPY_DEFAULT;
	default:
		return AP_GPU_COPY_UNKNOWN;
	}
}

int ap_gpu_decode(const struct ap_gpu_event *e, struct ap_gpu_call *c, uint64_t *name_addr)
{
	uint64_t idx = e->cookie & AP_GPU_CK_FN_MASK;
	const struct ap_gpu_fn *f;

	*name_addr = 0;
	if (e->kind != AP_GPU_EV_CALL || idx >= ap_gpu_nfns)
		return -EINVAL;
	f = &ap_gpu_fns[idx];
	memset(c, 0, sizeof(*c));
	c->ts_ns = e->ts_ns;
	c->dur_ns = e->dur_ns;
	c->api = f->name;
	c->pid = e->pid;
	c->tid = e->tid;
	c->kind = f->kind;
	c->flags = f->flags;
	/* cudaError_t and CUresult are ints: the low half of rax */
	c->ret = (int32_t)(uint32_t)e->ret;
	c->stream = arg(e, f->stream);
	c->bytes = arg(e, f->bytes);
	if (f->dir >= 0)
		c->copy_dir = copy_dir(arg(e, f->dir));
	else
		c->copy_dir = f->fixed_dir;
	switch (f->layout) {
	case L_REG_FATBIN:
		c->handle = e->ret; /* the void ** it returns, not an error code */
		c->ret = 0;
		break;
	case L_REG_FUNC:
		c->func = e->args[1];
		c->handle = e->args[0];
		c->ret = 0; /* void */
		*name_addr = e->args[2];
		break;
	case L_GET_KERNEL:
		c->func = e->args[1];
		c->handle = (e->flags & AP_GPU_EVF_OUT0) ? e->out[0] : 0;
		break;
	case L_DRV_GET_FUNC:
		/* only a success wrote a CUfunction: else it is an API call like any other */
		if (c->ret != 0 || !(e->flags & AP_GPU_EVF_OUT0) || !e->out[0]) {
			c->kind = AP_GPU_CALL_OTHER;
			break;
		}
		c->func = e->out[0];
		*name_addr = e->args[2];
		break;
	case L_RT_LAUNCH:
		c->func = e->args[0];
		c->grid[0] = (uint32_t)e->args[1];
		c->grid[1] = (uint32_t)(e->args[1] >> 32);
		c->grid[2] = (uint32_t)e->args[2];
		c->block[0] = (uint32_t)e->args[3];
		c->block[1] = (uint32_t)(e->args[3] >> 32);
		c->block[2] = (uint32_t)e->args[4];
		c->shmem = (uint32_t)arg(e, S(0));
		c->stream = arg(e, S(1));
		break;
	case L_DRV_LAUNCH:
		c->func = e->args[0];
		c->grid[0] = (uint32_t)e->args[1];
		c->grid[1] = (uint32_t)e->args[2];
		c->grid[2] = (uint32_t)e->args[3];
		c->block[0] = (uint32_t)e->args[4];
		c->block[1] = (uint32_t)e->args[5];
		c->block[2] = (uint32_t)arg(e, S(0));
		c->shmem = (uint32_t)arg(e, S(1));
		c->stream = arg(e, S(2));
		break;
	case L_ALLOC:
		c->mem_kind = f->mem_kind;
		/* a failed call leaves *out as it was: only a success has an allocation */
		c->ptr = (e->flags & AP_GPU_EVF_OUT0) && c->ret == 0 ? e->out[0] : 0;
		break;
	case L_ALLOC_PITCH:
		c->mem_kind = f->mem_kind;
		c->ptr = (e->flags & AP_GPU_EVF_OUT0) && c->ret == 0 ? e->out[0] : 0;
		/* pitch (read at return) x height */
		c->bytes = (e->flags & AP_GPU_EVF_OUT1) && c->ret == 0 ? e->out[1] * e->args[3]
								       : e->args[2] * e->args[3];
		break;
	case L_FREE:
		c->ptr = e->args[0];
		break;
	case L_COPY_2D:
		c->bytes = e->args[4] * e->args[5]; /* width (bytes) x height */
		break;
	default:
		break;
	}
	return 0;
}
