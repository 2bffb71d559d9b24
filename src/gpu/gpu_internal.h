/* SPDX-License-Identifier: MIT */
/*
 * The GPU model's insides, shared by its files: the state (gpu_model.c), the correlation join
 * and activity records (gpu_join.c), the writers (gpu_report_json.c, gpu_report_text.c,
 * gpu_trace.c) and continuous mode's rotate (gpu_rotate.c). Not for use outside src/gpu.
 *
 * Everything that grows with the input is bounded (GPU_MAX_*); what a limit turns away is
 * counted in struct gpu_stats and reported in every output.
 */
#ifndef AP_GPU_INTERNAL_H
#define AP_GPU_INTERNAL_H

#include "gpu_model.h"
#include "lib/hashtab.h"

#define GPU_MAX_PROCS 65536
#define GPU_MAX_NAMES_PER_PROC 65536	/* kernel names (host stubs) of one process */
#define GPU_MAX_HANDLES_PER_PROC 65536	/* cudaKernel_t -> host stub */
#define GPU_MAX_NAMES 1048576		/* kernel names, all processes */
#define GPU_MAX_HANDLES 1048576		/* handles, all processes */
#define GPU_MAX_THREADS 65536
#define GPU_MAX_KERNELS 16384		/* kernel rows of one interval */
#define GPU_MAX_SHAPES 16		/* launch shapes per kernel row; more: "other" */
#define GPU_MAX_KSTACKS 64		/* launching stacks per kernel row; more: "other" */
#define GPU_MAX_APIS 1024
#define GPU_MAX_API_ERRS 16		/* distinct error codes per API; more: "other" */
#define GPU_MAX_LIVE 1048576		/* live allocations tracked, all processes */
#define GPU_MAX_LEAKS 10000		/* leaks kept with their stacks (all are counted) */
#define GPU_MAX_SYNC_SITES 4096
#define GPU_MAX_UNPROBEABLE 1024
#define GPU_MAX_STRINGS 1048576		/* the model's own string table: strings */
#define GPU_MAX_STRING_BYTES (64u << 20) /* ... and their bytes */
#define GPU_MAX_NAME_LEN 16384		/* longer names (templates can be KBs) are cut */
#define GPU_THREAD_QUEUE 8		/* correlations waiting for their call, per thread */
#define GPU_THREAD_RECENT 4		/* calls waiting for their correlation, per thread */
#define GPU_MAX_LEAF_CACHE 1048576	/* launch stacks remembered (a cache: no drop) */
#define GPU_DEFAULT_TIMELINE 1000000
#define GPU_DEFAULT_PENDING 65536
#define GPU_NDIRS 7			/* enum ap_gpu_copy_dir */

/* Where a kernel name came from; a stronger source replaces a weaker one. */
enum gpu_name_src {
	GPU_NAME_SYMBOL = 1,   /* the host stub's ELF symbol (late attach) */
	GPU_NAME_LAUNCH = 2,   /* the collector knew it at launch, or an activity record */
	GPU_NAME_REGISTER = 3, /* __cudaRegisterFunction */
};

struct gpu_name {
	struct ap_hnode node;
	uint64_t func;
	uint32_t mangled; /* model strings */
	uint32_t display; /* demangled, or the mangled name when it does not demangle */
	uint32_t src;	  /* enum gpu_name_src */
};

struct gpu_handle {
	struct ap_hnode node;
	uint64_t handle, func;
};

struct gpu_alloc {
	struct ap_hnode node;
	uint64_t ptr, bytes, ts;
	uint32_t stack; /* profile stack id (carried over by rotate) */
	uint32_t kind, tid;
};

struct gpu_proc {
	struct ap_hnode node;
	uint32_t pid;
	uint32_t comm; /* model string */
	struct ap_htab names, handles, allocs;
	size_t nnames, nhandles, nallocs;
	uint64_t live_bytes;
};

/* One launch (or other correlatable call) as the join needs it. */
struct gpu_launch {
	uint64_t ts, dur;
	uint64_t kfunc;	      /* the kernel row's func (host stub), LAUNCH only */
	uint32_t cpu_stack;   /* profile stack: the call's CPU stack */
	uint32_t sample_stack; /* profile stack: + the [gpu] leaf (LAUNCH only) */
	uint32_t pid, tid;
	uint32_t comm;	      /* profile string */
	uint32_t kind;	      /* enum ap_gpu_call_kind */
	uint32_t api;	      /* model string */
	size_t event;	      /* timeline index + 1; 0: none */
};

enum gpu_corr_state {
	GPU_CORR_PENDING = 0, /* waiting on its thread for the call that contains it */
	GPU_CORR_JOINED = 1,  /* l holds the call */
	GPU_CORR_ORPHAN = 2,  /* no probed call contains it: its own stack (if any) is used */
};

struct gpu_thread;

struct gpu_corr {
	struct ap_hnode node;
	struct gpu_corr *older, *newer; /* the eviction order (oldest first) */
	struct gpu_thread *thr;		/* set while queued on it (PENDING) */
	uint64_t id, ts;
	uint32_t pid, tid, stack, cbid;
	uint32_t state;
	bool has_activity;
	struct gpu_launch l;
	/* kernel records that came while PENDING, applied once it is joined or orphaned */
	uint64_t early_ns, early_max, early_n;
	uint32_t early_name; /* model string: the mangled name */
};

struct gpu_thread {
	struct ap_hnode node;
	uint32_t pid, tid;
	struct gpu_corr *queue[GPU_THREAD_QUEUE];
	size_t nqueue;
	struct gpu_launch recent[GPU_THREAD_RECENT]; /* a ring; kind 0 = empty slot */
	size_t recent_next;
};

struct gpu_shape {
	uint32_t grid[3], block[3], shmem;
	uint64_t n;
};

struct gpu_kstack {
	uint32_t stack; /* profile stack: CPU frames */
	uint64_t launches, gpu_ns;
};

struct gpu_kernel {
	struct ap_hnode node;
	struct ap_hnode name_node; /* launch rows with a name, in kernels_by_name */
	bool name_indexed;
	uint32_t pid;
	uint64_t func;	   /* host stub; 0 for rows made from activity records alone */
	uint32_t keyname;  /* model string: the mangled name for func == 0 rows, else 0 */
	uint32_t mangled;  /* model string, 0 while unknown */
	uint32_t display;
	uint64_t launches, errors;
	uint64_t gpu_total, gpu_max, gpu_records;
	struct gpu_shape shapes[GPU_MAX_SHAPES];
	size_t nshapes;
	uint64_t shapes_other;
	struct gpu_kstack *stacks;
	size_t nstacks, cap;
	uint64_t stacks_other;
};

struct gpu_api {
	struct ap_hnode node;
	uint32_t name; /* model string */
	bool driver;
	uint64_t calls, errors, cpu_ns;
	struct {
		int32_t code;
		uint64_t n;
	} errs[GPU_MAX_API_ERRS];
	size_t nerrs;
	uint64_t errs_other;
};

struct gpu_sync {
	struct ap_hnode node;
	uint32_t api;	/* model string */
	uint32_t stack; /* profile stack */
	uint64_t calls, blocked_ns, max_ns;
};

struct gpu_copy {
	uint64_t calls, errors, bytes, requested_bytes, cpu_ns;
	uint64_t gpu_ns, gpu_records, gpu_bytes;
};

struct gpu_leak {
	uint64_t ptr, bytes, ts;
	uint32_t pid, tid, stack, kind;
};

struct gpu_unprobeable {
	uint32_t pid, path, reason; /* model strings */
	uint64_t processes;
};

enum gpu_event_type {
	GPU_EV_API = 0,
	GPU_EV_KERNEL = 1,
	GPU_EV_MEMCPY = 2,
	GPU_EV_MEMSET = 3,
	GPU_EV_MEMORY = 4,
};

/* One timeline event for the Chrome trace. */
struct gpu_event {
	uint64_t ts, dur;
	uint64_t a, b; /* API: launch func, stream; alloc/free ptr, bytes; copy stream, bytes;
			* sync stream; registration func, handle. Activity: b = bytes */
	uint64_t corr;
	uint32_t pid, tid; /* activity: tid unused */
	uint32_t name;	   /* model string: the API, or the kernel's display name */
	int32_t ret;
	uint32_t device, stream; /* activity */
	uint32_t grid[3], block[3];
	uint32_t shmem;
	uint8_t type, kind, dir, pad;
};

/* The run's counters (not reset by rotate), in every output's "stats" and, prefixed "gpu_",
 * in the profile's stats. */
#define GPU_STATS(X)                                                                            \
	X(calls) X(bad_records) X(bad_stacks) X(registrations) X(fatbins) X(get_kernels)        \
	X(named_by_symbol) X(launches) X(launches_nested) X(unnamed_launches)                   \
	X(activity_records) X(activity_kernels) X(activity_memcpy) X(activity_memset)           \
	X(activity_memory) X(correlations) X(correlations_joined) X(correlations_orphaned)      \
	X(correlations_unmatched) X(correlations_expired) X(correlations_carried)               \
	X(timeline_dropped) X(names_dropped) X(handles_dropped) X(procs_dropped)                \
	X(threads_dropped) X(kernels_dropped) X(kernel_stacks_dropped) X(apis_dropped)          \
	X(sync_dropped) X(live_untracked) X(leaks_dropped) X(unprobeable_dropped)               \
	X(strings_dropped) X(names_truncated) X(alloc_replaced) X(nomem)

struct gpu_stats {
#define GPU_STAT_FIELD(n) uint64_t n;
	GPU_STATS(GPU_STAT_FIELD)
#undef GPU_STAT_FIELD
};

struct gpu_mem {
	uint64_t allocations, failed_allocations, allocated_bytes;
	uint64_t frees, failed_frees, unknown_frees, freed_bytes;
	uint64_t live_bytes, peak_bytes; /* all processes */
	uint64_t leaks, leaked_bytes;	 /* all leaks, kept or not */
	struct {
		uint64_t allocations, failed, bytes;
	} by_kind[4];
};

struct ap_gpu_model {
	struct ap_profile *p;
	struct ap_profile *strs; /* the model's own strings: they outlive a rotate */
	size_t max_events, max_corr;
	bool timeline_off;
	int vi_launch, vi_gpu;
	uint32_t empty_stack;
	uint64_t first_ts, last_ts; /* over calls and activity, for the text header */

	struct ap_htab procs, threads, kernels, apis, syncs, corrs, demangled;
	struct ap_htab kernels_by_name; /* (pid, display) -> launch row: unjoined GPU time */
	struct ap_htab leaf_stacks;	/* (CPU stack, kernel) -> launch stack, this profile's */
	size_t nleaf_stacks;
	size_t nprocs, nthreads, nkernels, napis, nsyncs, ncorrs;
	struct gpu_corr *oldest, *newest;
	size_t nlive, nnames, nhandles;
	size_t string_bytes;

	struct gpu_copy copies[GPU_NDIRS], memset;
	struct gpu_mem mem;
	struct gpu_leak *leaks;
	size_t nleaks, leaks_cap;
	struct gpu_unprobeable *unprobeable;
	size_t nunprobeable, unprobeable_cap;
	struct gpu_event *events;
	size_t nevents, events_cap;
	struct gpu_stats st;
};

/* gpu_model.c */
uint32_t gpu_str(struct ap_gpu_model *m, const char *s);
const char *gpu_s(const struct ap_gpu_model *m, uint32_t id);
uint32_t gpu_display_of(struct ap_gpu_model *m, uint32_t mangled);
struct gpu_proc *gpu_proc_get(struct ap_gpu_model *m, uint32_t pid, bool create);
struct gpu_kernel *gpu_kernel_get(struct ap_gpu_model *m, uint32_t pid, uint64_t func,
				  uint32_t keyname, bool create);
/* The launch row of a kernel by its display (demangled) name, or NULL. */
struct gpu_kernel *gpu_kernel_by_name(struct ap_gpu_model *m, uint32_t pid, uint32_t display);
void gpu_kernel_set_name(struct ap_gpu_model *m, struct gpu_kernel *k, uint32_t mangled,
			 uint32_t display);
int gpu_kernel_stack(struct gpu_kernel *k, uint32_t stack, uint64_t launches, uint64_t gpu_ns);
void gpu_kernel_shape(struct gpu_kernel *k, const uint32_t grid[3], const uint32_t block[3],
		      uint32_t shmem);
int gpu_set_name(struct ap_gpu_model *m, struct gpu_proc *pr, uint64_t func,
		 const char *mangled, uint32_t src);
uint32_t gpu_leaf_stack(struct ap_gpu_model *m, uint32_t cpu_stack, uint32_t display);
uint32_t gpu_check_stack(struct ap_gpu_model *m, uint32_t stack);
int gpu_sample(struct ap_gpu_model *m, uint32_t stack, uint32_t pid, uint32_t tid, uint32_t comm,
	       uint64_t launches, uint64_t gpu_ns);
uint32_t gpu_proc_comm(struct ap_gpu_model *m, uint32_t pid); /* a profile string id */
int gpu_setup_profile(struct ap_gpu_model *m, struct ap_profile *p);
size_t gpu_event_add(struct ap_gpu_model *m, const struct gpu_event *e);
void gpu_note_ts(struct ap_gpu_model *m, uint64_t ts, uint64_t end);
struct gpu_copy *gpu_copy_bucket(struct ap_gpu_model *m, uint32_t dir, const char *api);
const char *gpu_mem_kind_name(uint32_t kind);
const char *gpu_dir_name(uint32_t dir);

struct gpu_name *gpu_name_find(struct gpu_proc *pr, uint64_t func);
struct gpu_handle *gpu_handle_find(struct gpu_proc *pr, uint64_t handle);
struct gpu_alloc *gpu_alloc_find(struct gpu_proc *pr, uint64_t ptr);
bool gpu_free_node(struct ap_hnode *n, void *ctx); /* frees an entry whose node is first */

/* gpu_calls.c */
void gpu_proc_free(struct ap_gpu_model *m, struct gpu_proc *pr, bool leaks);

/* gpu_join.c */
struct gpu_thread *gpu_thread_get(struct ap_gpu_model *m, uint32_t pid, uint32_t tid,
				  bool create);
int gpu_join_call(struct ap_gpu_model *m, struct gpu_thread *t, const struct gpu_launch *l);
int gpu_join_correlation(struct ap_gpu_model *m, const struct ap_gpu_call *c);
void gpu_threads_exit(struct ap_gpu_model *m, uint32_t pid);
void gpu_corr_free_all(struct ap_gpu_model *m);
void gpu_corr_unlink(struct ap_gpu_model *m, struct gpu_corr *c);

/* gpu_report_json.c: the "gpu" object's value (no key) */
void gpu_write_tables(struct ap_gpu_model *m, FILE *out, const char *indent);
/* frames of a profile stack, root first, as a JSON array */
void gpu_write_frames(const struct ap_profile *p, FILE *out, uint32_t stack);

/* sorting for the writers (malloc'd arrays of pointers; NULL with n 0 when empty) */
struct gpu_kernel **gpu_sorted_kernels(struct ap_gpu_model *m, size_t *n);
struct gpu_api **gpu_sorted_apis(struct ap_gpu_model *m, size_t *n);
struct gpu_sync **gpu_sorted_syncs(struct ap_gpu_model *m, size_t *n);
void gpu_sort_kernel(struct gpu_kernel *k);

/* gpu_rotate.c */
void gpu_tables_reset(struct ap_gpu_model *m);

#endif
