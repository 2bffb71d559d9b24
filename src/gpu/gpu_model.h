/* SPDX-License-Identifier: MIT */
/*
 * The GPU mode's model: what the CUDA probes saw (API calls, decoded), and what the CUPTI
 * injection library reported (GPU-side activity), turned into one profile plus the mode's
 * own tables. Pure: it takes decoded records, never touches BPF, so the collector, the
 * activity loader and the unit tests feed it the same way.
 *
 * Who fills what:
 *  - the collector (src/agent/gpu_collector.c) decodes its ring buffer into struct
 *    ap_gpu_call, with the launching CPU stack already symbolized into the model's profile
 *    (an ap_profile_add_stack id, leaf first, CPU frames only);
 *  - the activity loader (src/gpu/activity.c) decodes the injection library's USDT records
 *    into AP_GPU_CALL_CORRELATION calls and struct ap_gpu_activity, on the agent's clock;
 *  - the model joins: host stub -> kernel name (registration, __cudaGetKernel's handle, or
 *    the ELF symbol for processes that registered before the agent came), correlation id ->
 *    launch (-> CPU stack), and keeps the tables (docs/gpu.md, "JSON").
 *
 * Profile: value types `launches/count` (always) and `gpu_time/nanoseconds` (filled from
 * kernel activity records); each launch is a sample whose stack is the launching CPU stack
 * with one more leaf frame named "[gpu] <demangled kernel name>".
 */
#ifndef AP_GPU_MODEL_H
#define AP_GPU_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/profile.h"

enum ap_gpu_call_kind {
	AP_GPU_CALL_OTHER = 0,		/* an API call timed and counted, nothing decoded */
	AP_GPU_CALL_REGISTER_FATBIN = 1,   /* __cudaRegisterFatBinary */
	AP_GPU_CALL_REGISTER_FUNCTION = 2, /* func = host stub, name = mangled device name */
	AP_GPU_CALL_GET_KERNEL = 3,	   /* func = host stub, handle = what it wrote to *out */
	AP_GPU_CALL_LAUNCH = 4,		   /* func = host stub / cudaKernel_t / CUfunction */
	AP_GPU_CALL_ALLOC = 5,		   /* ptr = the allocation (0 when it failed), bytes */
	AP_GPU_CALL_FREE = 6,		   /* ptr */
	AP_GPU_CALL_COPY = 7,		   /* bytes, copy_dir, stream */
	AP_GPU_CALL_SYNC = 8,		   /* stream (0 for device/context-wide syncs) */
	AP_GPU_CALL_CORRELATION = 9,	   /* injection library: CUPTI's correlation id of the
					    * API call in flight on (pid, tid) at ts_ns */
};

enum ap_gpu_mem_kind {
	AP_GPU_MEM_DEVICE = 0,	    /* cudaMalloc, cudaMallocPitch, cuMemAlloc */
	AP_GPU_MEM_MANAGED = 1,	    /* cudaMallocManaged */
	AP_GPU_MEM_HOST_PINNED = 2, /* cudaMallocHost, cudaHostAlloc */
	AP_GPU_MEM_ASYNC = 3,	    /* cudaMallocAsync, cudaMallocFromPoolAsync (stream-ordered) */
};

enum ap_gpu_copy_dir {
	AP_GPU_COPY_UNKNOWN = 0,
	AP_GPU_COPY_H2H = 1,
	AP_GPU_COPY_H2D = 2,
	AP_GPU_COPY_D2H = 3,
	AP_GPU_COPY_D2D = 4,
	AP_GPU_COPY_DEFAULT = 5, /* cudaMemcpyDefault: the direction follows from the pointers */
	AP_GPU_COPY_PEER = 6,
};

#define AP_GPU_F_DRIVER_API 0x1u /* a driver (cu*) call, not a runtime (cuda*) call */
#define AP_GPU_F_ASYNC 0x2u	 /* an *Async variant */
#define AP_GPU_F_PTSZ 0x4u	 /* a _ptsz/_ptds (per-thread default stream) variant */

/* One API call seen by the probes, decoded. Fields that do not apply to a kind are 0. */
struct ap_gpu_call {
	uint64_t ts_ns;	 /* entry, CLOCK_MONOTONIC (bpf_ktime_get_ns) */
	uint64_t dur_ns; /* entry to return (the thread's time in the call); 0: no return seen */
	uint64_t func;	 /* REGISTER_FUNCTION/GET_KERNEL/LAUNCH: see enum ap_gpu_call_kind */
	uint64_t handle; /* GET_KERNEL: the cudaKernel_t written to *out */
	uint64_t stream;
	uint64_t ptr;
	uint64_t bytes;
	uint64_t correlation; /* CORRELATION: CUPTI's correlation id */
	const char *api;  /* the probed function ("cudaMalloc", "cuLaunchKernel"); copied */
	const char *name; /* REGISTER_FUNCTION: mangled device name; LAUNCH: the name when the
			   * collector already knows it, else NULL (the model looks func up) */
	uint32_t pid;
	uint32_t tid;
	uint32_t kind; /* enum ap_gpu_call_kind */
	int32_t ret;   /* the call's return code (cudaError_t or CUresult); 0: success */
	uint32_t stack; /* the CPU stack in the model's profile (leaf first); 0: none */
	uint32_t flags; /* AP_GPU_F_* */
	uint32_t grid[3];
	uint32_t block[3];
	uint32_t shmem;
	uint32_t mem_kind; /* enum ap_gpu_mem_kind */
	uint32_t copy_dir; /* enum ap_gpu_copy_dir */
	uint32_t cbid;	   /* CORRELATION: CUPTI's callback id of the API call */
	const char *comm;  /* the thread's name (samples' comm), or NULL; copied */
};

enum ap_gpu_activity_kind {
	AP_GPU_ACT_KERNEL = 1,
	AP_GPU_ACT_MEMCPY = 2,
	AP_GPU_ACT_MEMSET = 3,
	AP_GPU_ACT_MEMORY = 4, /* an allocation or free as the driver saw it */
};

/* One GPU-side activity record from the injection library, on the agent's clock. */
struct ap_gpu_activity {
	uint64_t start_ns; /* CLOCK_MONOTONIC */
	uint64_t end_ns;
	uint64_t correlation; /* joins the API call (AP_GPU_CALL_CORRELATION) that caused it */
	uint64_t bytes;
	const char *name; /* KERNEL: the mangled name, or NULL; copied */
	uint32_t pid;
	uint32_t kind; /* enum ap_gpu_activity_kind */
	uint32_t device;
	uint32_t stream;
	uint32_t copy_dir; /* enum ap_gpu_copy_dir */
	uint32_t grid[3];
	uint32_t block[3];
};

struct ap_gpu_model_opts {
	size_t max_timeline_events; /* kept for the Chrome trace; beyond: counted, dropped;
				     * 0: the default (1,000,000) */
	size_t max_pending_correlations; /* launches waiting for their activity record;
					  * 0: the default (65,536) */
	bool no_timeline; /* no Chrome trace will be written: keep no timeline events */
};

struct ap_gpu_model;

/* The CUDA name of a return code: cudaError_t ("cudaErrorInsufficientDriver" = 35) or, with
 * `driver`, CUresult ("CUDA_ERROR_STUB_LIBRARY" = 34); an unknown code is "error N" (in buf,
 * which is then returned). */
const char *ap_gpu_error_name(int32_t code, bool driver, char *buf, size_t len);

/* The model fills `p` (which the caller owns and keeps alive). NULL with errno set.
 * It adds the value types when `p` has none, and interns the empty stack so that stack id 0
 * of a fresh profile is "no stack" (struct ap_gpu_call's stack 0). */
struct ap_gpu_model *ap_gpu_model_new(struct ap_profile *p, const struct ap_gpu_model_opts *o);
void ap_gpu_model_free(struct ap_gpu_model *m);

/* Record one call / one activity record. Returns 0 or -errno (-ENOMEM). Limits hit are
 * counted in the stats (ap_gpu_model_finish), never an error. */
int ap_gpu_model_add_call(struct ap_gpu_model *m, const struct ap_gpu_call *c);
int ap_gpu_model_add_activity(struct ap_gpu_model *m, const struct ap_gpu_activity *a);

/* Name a host stub of a process that registered its kernels before the agent attached:
 * the collector found `mangled` as the ELF symbol at `func`. Registration wins when both
 * are known. Returns 0 or -errno. */
int ap_gpu_model_name_kernel(struct ap_gpu_model *m, uint32_t pid, uint64_t func,
			     const char *mangled);

/* A probed binary that cannot be probed (stripped static cudart, vendor library without
 * symbols): reported by path with the reason in every output. Returns 0 or -errno. */
int ap_gpu_model_add_unprobeable(struct ap_gpu_model *m, uint32_t pid, const char *path,
				 const char *reason);

/* The process exited: what it still had allocated becomes its leaks. */
void ap_gpu_model_process_exit(struct ap_gpu_model *m, uint32_t pid);

/* Before writing: put the run's counters (drops, limits) into the profile's stats. */
int ap_gpu_model_finish(struct ap_gpu_model *m);

/* The mode's own outputs (docs/gpu.md): the JSON report (profile + tables), the text
 * report (top kernels, API calls, memory, copies, syncs), and the Chrome trace event JSON
 * timeline. Return 0 or -errno (-EIO when the stream failed). */
int ap_gpu_model_write_json(struct ap_gpu_model *m, FILE *out);
int ap_gpu_model_write_text(struct ap_gpu_model *m, FILE *out, size_t top_n);
int ap_gpu_model_write_trace(struct ap_gpu_model *m, FILE *out);

/*
 * Continuous mode: the tables of the interval so far as JSON (malloc'd into *tables,
 * *tables_len bytes), then go on into `fresh` (an empty profile shaped like the old one,
 * which the caller now owns). Live allocations, kernel names and launches still waiting for
 * their activity record carry over (their stacks are copied into `fresh`), so a kernel
 * whose GPU time arrives in the next interval is counted there. Returns 0 or -errno.
 */
int ap_gpu_model_rotate(struct ap_gpu_model *m, struct ap_profile *fresh, char **tables,
			size_t *tables_len);

#endif
